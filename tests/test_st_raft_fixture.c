/*  test_st_raft_fixture.c: the store's state machine (st_fsm.h) under
    raft's deterministic in-process cluster (raft/fixture.h): three
    servers, each applying to its own LMDB, a seeded schedule of
    partitions (a server cut off from both others), dropped messages (a
    saturated link) and heals, and a client that proposes session_starts
    to whichever server leads, one at a time, counting a write as
    acknowledged only when raft's apply callback hands it the FSM's reply.
    Checks, after healing: no two leaders in one term (watched at every
    fixture event), every acknowledged session present on every server,
    every server at the same applied index with byte-identical LMDBs.   */
#include "test_st_util.h"

#include "st_entry.h"
#include "st_fsm.h"

#include <raft.h>
#include <raft/fixture.h>

#define S_SERVERS 3
#define S_ROUNDS 100
#define S_MAX_TERMS 4096

typedef struct {
    st_fixture_t *store;
    st_fsm_t *fsm;
    struct raft_fsm raft_fsm;
    struct raft_fixture *fixture;
    unsigned index;
} s_server_t;

static s_server_t s_servers[S_SERVERS];
static raft_id s_leader_of_term[S_MAX_TERMS];
static bool s_two_leaders;

static int
s_apply (struct raft_fsm *fsm, const struct raft_buffer *buf, void **result)
{
    s_server_t *server = fsm->data;
    struct raft *raft = raft_fixture_get (server->fixture, server->index);
    st_fsm_result_t *out = NULL;
    //  As st_raft.c: raft 0.15 applies in index order, last_applied after.
    int rc = st_fsm_apply (server->fsm, raft_last_applied (raft) + 1, buf->base, buf->len, &out);
    *result = out;
    return rc ? RAFT_IOERR : 0;
}

static int
s_snapshot (struct raft_fsm *fsm, struct raft_buffer *bufs[], unsigned *n_bufs)
{
    s_server_t *server = fsm->data;
    void *data;
    size_t size;
    if (st_fsm_snapshot (server->fsm, &data, &size))
        return RAFT_IOERR;
    *bufs = raft_malloc (sizeof **bufs);
    (*bufs)[0].base = raft_malloc (size);
    memcpy ((*bufs)[0].base, data, size);
    (*bufs)[0].len = size;
    *n_bufs = 1;
    free (data);
    return 0;
}

static int
s_restore (struct raft_fsm *fsm, struct raft_buffer *buf)
{
    s_server_t *server = fsm->data;
    if (st_fsm_restore (server->fsm, buf->base, buf->len))
        return RAFT_IOERR;
    raft_free (buf->base);
    return 0;
}

//  After every fixture event: at most one leader per term.
static void
s_watch (struct raft_fixture *f, struct raft_fixture_event *event)
{
    (void) event;
    for (unsigned i = 0; i < S_SERVERS; i++) {
        struct raft *raft = raft_fixture_get (f, i);
        if (raft_state (raft) != RAFT_LEADER || raft->current_term >= S_MAX_TERMS)
            continue;
        raft_id *seen = &s_leader_of_term[raft->current_term];
        if (*seen && *seen != raft->id)
            s_two_leaders = true;
        *seen = raft->id;
    }
}

static void
s_heal (struct raft_fixture *f)
{
    for (unsigned i = 0; i < S_SERVERS; i++)
        for (unsigned j = 0; j < S_SERVERS; j++)
            if (i != j) {
                raft_fixture_reconnect (f, i, j);
                raft_fixture_desaturate (f, i, j);
            }
}

typedef struct {
    struct raft_apply req;
    bool done;
    int status;
    st_fsm_result_t *result;
    s_server_t *proposer;
} s_proposal_t;

static void
s_applied (struct raft_apply *req, int status, void *result)
{
    s_proposal_t *proposal = req->data;
    proposal->done = true;
    proposal->status = status;
    proposal->result = result;
    if (status)
        st_fsm_await_none (proposal->proposer->fsm);
}

static bool
s_proposal_done (struct raft_fixture *f, void *arg)
{
    (void) f;
    return ((s_proposal_t *) arg)->done;
}

//  Proposes one session_start on the leader; true when acknowledged.
static bool
s_propose (struct raft_fixture *f, const char *session_id, uint64_t serial)
{
    unsigned leader = raft_fixture_leader_index (f);
    if (leader >= S_SERVERS)
        return false;
    s_server_t *server = &s_servers[leader];
    cm_envelope_t *start = st_req (CM_MSG_SESSION_START, "alice");
    cm_map_set_str (start->payload, "session_id", session_id);
    cm_map_set_str (start->payload, "query", "partitioned?");
    st_entry_t entry = {.kind = ST_ENTRY_BATCH, .now_ms = 1764000000000LL + (int64_t) serial,
                        .origin = server->index + 1, .requests = &start, .n = 1};
    memcpy (entry.seed, &serial, sizeof serial);
    entry.seed[15] = 0x5a;
    char *data;
    size_t size;
    assert_int_equal (st_entry_encode (&entry, &data, &size), 0);
    cm_envelope_destroy (&start);
    struct raft_buffer buf = {raft_malloc (size), size};
    memcpy (buf.base, data, size);
    free (data);
    s_proposal_t proposal = {.proposer = server};
    proposal.req.data = &proposal;
    st_fsm_await (server->fsm, entry.seed);
    if (raft_apply (raft_fixture_get (f, leader), &proposal.req, &buf, 1, s_applied)) {
        raft_free (buf.base);
        st_fsm_await_none (server->fsm);
        return false;
    }
    //  raft always calls back: committed, or failed when leadership goes.
    //  A leader cut off may wait long for either: after 5 s (fixture
    //  time) the network heals, as it does in the end.
    if (!raft_fixture_step_until (f, s_proposal_done, &proposal, 5000)) {
        s_heal (f);
        while (!proposal.done)
            raft_fixture_step_until (f, s_proposal_done, &proposal, 5000);
    }
    bool acked = proposal.status == 0 && proposal.result
                 && proposal.result->replies[0]->type == CM_MSG_OK;
    st_fsm_result_destroy (&proposal.result);
    return acked;
}

static void
test_partitions_lose_no_acknowledged_write (void **state)
{
    (void) state;
    struct raft_fixture f;
    assert_int_equal (raft_fixture_initialize (&f), 0);
    for (unsigned i = 0; i < S_SERVERS; i++) {
        s_server_t *server = &s_servers[i];
        server->store = st_fixture_new (1 << 20, 3);
        server->fsm = st_fsm_new (server->store->ops, server->store->db, i + 1);
        server->raft_fsm = (struct raft_fsm) {.version = 1, .data = server, .apply = s_apply,
                                              .snapshot = s_snapshot, .restore = s_restore};
        server->fixture = &f;
        server->index = i;
        assert_int_equal (raft_fixture_grow (&f, &server->raft_fsm), 0);
    }
    //  Snapshots (LMDB copies, st_fsm_snapshot) every 32 entries.
    for (unsigned i = 0; i < S_SERVERS; i++) {
        raft_set_snapshot_threshold (raft_fixture_get (&f, i), 32);
        raft_set_snapshot_trailing (raft_fixture_get (&f, i), 16);
    }
    struct raft_configuration conf;
    assert_int_equal (raft_fixture_configuration (&f, S_SERVERS, &conf), 0);
    assert_int_equal (raft_fixture_bootstrap (&f, &conf), 0);
    raft_configuration_close (&conf);
    assert_int_equal (raft_fixture_start (&f), 0);
    raft_fixture_hook (&f, s_watch);

    unsigned seed = 27;
    char acked[S_ROUNDS + 1][32];
    size_t acked_count = 0, partitions = 0, drops = 0;
    for (int round = 0; round < S_ROUNDS; round++) {
        int fault = rand_r (&seed) % 6;
        unsigned victim = (unsigned) rand_r (&seed) % S_SERVERS;
        if (fault == 0) { //  cut one server off from both others
            for (unsigned j = 0; j < S_SERVERS; j++)
                if (j != victim) {
                    raft_fixture_disconnect (&f, victim, j);
                    raft_fixture_disconnect (&f, j, victim);
                }
            partitions++;
        }
        else if (fault == 1) { //  drop every message on one link
            raft_fixture_saturate (&f, victim, (victim + 1) % S_SERVERS);
            raft_fixture_saturate (&f, (victim + 1) % S_SERVERS, victim);
            drops++;
        }
        else if (fault == 2)
            s_heal (&f);
        raft_fixture_step_until_has_leader (&f, 5000);
        char session_id[32];
        snprintf (session_id, sizeof session_id, "p-%03d", round);
        if (s_propose (&f, session_id, (uint64_t) round + 1))
            snprintf (acked[acked_count++], sizeof acked[0], "%s", session_id);
    }
    s_heal (&f);
    assert_true (raft_fixture_step_until_has_leader (&f, 10000));
    //  A last write in the healed cluster commits everything before it.
    assert_true (s_propose (&f, "p-final", 100000));
    snprintf (acked[acked_count++], sizeof acked[0], "p-final");
    unsigned leader = raft_fixture_leader_index (&f);
    raft_index last = raft_last_applied (raft_fixture_get (&f, leader));
    assert_true (raft_fixture_step_until_applied (&f, S_SERVERS, last, 20000));
    print_message ("%zu of %d writes acknowledged through %zu partitions and %zu dropped "
                   "links; last index %llu\n",
                   acked_count, S_ROUNDS + 1, partitions, drops, (unsigned long long) last);
    assert_false (s_two_leaders);
    assert_true (acked_count > S_ROUNDS / 4);
    assert_true (partitions > 3);

    char digest[S_SERVERS][65];
    for (unsigned i = 0; i < S_SERVERS; i++) {
        s_server_t *server = &s_servers[i];
        for (size_t k = 0; k < acked_count; k++) {
            cm_envelope_t *get = st_req (CM_MSG_SESSION_GET, "alice"), *reply = NULL;
            cm_map_set_str (get->payload, "session_id", acked[k]);
            if (st_ops_read (server->store->ops, get, server->store->now, &reply))
                fail_msg ("server %u lost acknowledged session %s", i + 1, acked[k]);
            cm_envelope_destroy (&reply);
            cm_envelope_destroy (&get);
        }
        assert_int_equal (st_fsm_digest (server->store->db, digest[i]), 0);
    }
    assert_string_equal (digest[0], digest[1]);
    assert_string_equal (digest[0], digest[2]);

    raft_fixture_close (&f);
    for (unsigned i = 0; i < S_SERVERS; i++) {
        st_fsm_destroy (&s_servers[i].fsm);
        st_fixture_destroy (&s_servers[i].store);
    }
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_partitions_lose_no_acknowledged_write),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
