/*  test_st_fsm.c: the replicated store's state machine on two LMDB dirs:
    the same entries applied to both give byte-identical databases (ids
    from the entry's seed, its clock, the audit order from the index), the
    applied index moves in the same txn, replays are skipped, only the
    awaited entry hands back its replies, a damaged entry is skipped alike
    everywhere, and a snapshot restores a third node to the same bytes.  */
#include "test_st_util.h"

#include "st_entry.h"
#include "st_fsm.h"

typedef struct {
    st_fixture_t *f;
    st_fsm_t *fsm;
} s_node_t;

static void
s_node_new (s_node_t *node, uint64_t id)
{
    node->f = st_fixture_new (1 << 20, 3);
    node->fsm = st_fsm_new (node->f->ops, node->f->db, id);
    assert_non_null (node->fsm);
}

static void
s_node_destroy (s_node_t *node)
{
    st_fsm_destroy (&node->fsm);
    st_fixture_destroy (&node->f);
}

static void
s_digest (s_node_t *node, char digest[65])
{
    assert_int_equal (st_fsm_digest (node->f->db, digest), 0);
}

//  Encodes a batch of requests (taken) and the claims (taken) from
//  origin 1 with a seed made of `serial`.
static char *
s_entry (st_entry_kind_t kind, int serial, int64_t now, cm_envelope_t **requests, size_t n,
         cm_envelope_t **claims, size_t m, size_t *size, unsigned char *seed)
{
    st_entry_t entry = {.kind = kind, .now_ms = now, .origin = 1, .requests = requests, .n = n,
                        .claims = claims, .m = m};
    memset (entry.seed, serial, ST_DET_SEED_BYTES);
    if (seed)
        memcpy (seed, entry.seed, ST_DET_SEED_BYTES);
    char *data;
    assert_int_equal (st_entry_encode (&entry, &data, size), 0);
    for (size_t i = 0; i < n; i++)
        cm_envelope_destroy (&requests[i]);
    for (size_t i = 0; i < m; i++)
        cm_envelope_destroy (&claims[i]);
    return data;
}

static cm_envelope_t *
s_start (const char *user, const char *session_id)
{
    cm_envelope_t *request = st_req (CM_MSG_SESSION_START, user);
    cm_map_set_str (request->payload, "session_id", session_id);
    cm_map_set_str (request->payload, "query", "hello");
    return request;
}

//  Applies data at index on every node; node 0 awaits it when seed is set
//  and its result is returned (else NULL).
static st_fsm_result_t *
s_apply_all (s_node_t *nodes, size_t count, uint64_t index, const char *data, size_t size,
             const unsigned char *seed)
{
    st_fsm_result_t *mine = NULL;
    for (size_t i = 0; i < count; i++) {
        if (i == 0 && seed)
            st_fsm_await (nodes[i].fsm, seed);
        st_fsm_result_t *result = NULL;
        assert_int_equal (st_fsm_apply (nodes[i].fsm, index, data, size, &result), 0);
        if (i == 0 && seed) {
            assert_non_null (result);
            mine = result;
        }
        else
            assert_null (result);
        assert_int_equal (st_fsm_applied (nodes[i].fsm), index);
    }
    return mine;
}

static void
test_replicas_identical (void **state)
{
    (void) state;
    s_node_t nodes[2];
    s_node_new (&nodes[0], 1);
    s_node_new (&nodes[1], 2);
    int64_t now = 1764000000000LL;
    size_t size;
    unsigned char seed[ST_DET_SEED_BYTES];

    //  Index 2 (1 is raft's configuration): two sessions in one batch.
    cm_envelope_t *starts[2] = {s_start ("alice", "s-a"), s_start ("bob", "s-b")};
    char *data = s_entry (ST_ENTRY_BATCH, 1, now, starts, 2, NULL, 0, &size, seed);
    st_fsm_result_t *result = s_apply_all (nodes, 2, 2, data, size, seed);
    free (data);
    assert_int_equal (result->n, 2);
    assert_int_equal (result->replies[0]->type, CM_MSG_OK);
    assert_true (cm_value_len (result->events) > 0);
    const cm_value_t *reply_data = cm_map_get (result->replies[0]->payload, "data");
    char message_id[128];
    snprintf (message_id, sizeof message_id, "%s",
              cm_map_str_or (reply_data, "user_message_id", ""));
    char assistant_id[128];
    snprintf (assistant_id, sizeof assistant_id, "%s",
              cm_map_str_or (reply_data, "assistant_message_id", ""));
    st_fsm_result_destroy (&result);

    //  Index 3: a rename and a vote (audit records ordered by the entry's
    //  sequence), a refused edit (its answer is still being generated),
    //  a new session, and a parked claim, which runs because that session
    //  made a task claimable and leases it with the entry's clock.
    cm_envelope_t *rename = st_req (CM_MSG_SESSION_RENAME, "alice");
    cm_map_set_str (rename->payload, "session_id", "s-a");
    cm_map_set_str (rename->payload, "title", "replicated");
    cm_envelope_t *vote = st_req (CM_MSG_FEEDBACK_PUT, "alice");
    cm_map_set_str (vote->payload, "message_id", assistant_id);
    cm_map_set_str (vote->payload, "feedback_type", "upvote");
    cm_envelope_t *edit = st_req (CM_MSG_MESSAGE_EDIT, "alice");
    cm_map_set_str (edit->payload, "message_id", message_id);
    cm_map_set_str (edit->payload, "content", "hello again");
    cm_envelope_t *batch[4] = {rename, vote, edit, s_start ("carol", "s-c")};
    cm_envelope_t *claim = st_req (CM_MSG_TASK_CLAIM, NULL);
    cm_map_set_str (claim->payload, "worker", "rg-test-1");
    data = s_entry (ST_ENTRY_BATCH, 2, now + 1000, batch, 4, &claim, 1, &size, seed);
    result = s_apply_all (nodes, 2, 3, data, size, seed);
    free (data);
    for (size_t i = 0; i < 2; i++)
        if (result->replies[i]->type != CM_MSG_OK)
            fail_msg ("request %zu: %s", i, cm_map_str_or (result->replies[i]->payload, "message", ""));
    assert_int_equal (result->replies[0]->type, CM_MSG_OK);
    assert_int_equal (result->replies[1]->type, CM_MSG_OK);
    assert_int_equal (result->replies[2]->type, CM_MSG_ERROR);
    assert_non_null (result->claim_replies[0]);
    assert_int_equal (result->claim_replies[0]->type, CM_MSG_OK);
    st_fsm_result_destroy (&result);

    //  Index 5 (4 was a barrier: raft does not hand it to the FSM): the
    //  upkeep, an hour later, requeues the expired lease.
    data = s_entry (ST_ENTRY_UPKEEP, 3, now + 3600 * 1000, NULL, 0, NULL, 0, &size, NULL);
    s_apply_all (nodes, 2, 5, data, size, NULL);
    free (data);

    char a[65], b[65];
    s_digest (&nodes[0], a);
    s_digest (&nodes[1], b);
    assert_string_equal (a, b);
    uint64_t applied;
    assert_int_equal (st_db_applied (nodes[1].f->db, NULL, &applied), 0);
    assert_int_equal (applied, 5);

    //  A replay of an index LMDB holds changes nothing.
    cm_envelope_t *again[1] = {s_start ("dave", "s-d")};
    data = s_entry (ST_ENTRY_BATCH, 4, now, again, 1, NULL, 0, &size, NULL);
    st_fsm_result_t *none = NULL;
    assert_int_equal (st_fsm_apply (nodes[1].fsm, 3, data, size, &none), 0);
    assert_null (none);
    free (data);
    s_digest (&nodes[1], b);
    assert_string_equal (a, b);

    //  The same entry with another seed would mint other ids: the seed,
    //  not the node, decides them.
    s_node_t other;
    s_node_new (&other, 9);
    cm_envelope_t *first[2] = {s_start ("alice", "s-a"), s_start ("bob", "s-b")};
    data = s_entry (ST_ENTRY_BATCH, 77, now, first, 2, NULL, 0, &size, NULL);
    assert_int_equal (st_fsm_apply (other.fsm, 2, data, size, &none), 0);
    free (data);
    s_node_t fresh;
    s_node_new (&fresh, 8);
    cm_envelope_t *same[2] = {s_start ("alice", "s-a"), s_start ("bob", "s-b")};
    data = s_entry (ST_ENTRY_BATCH, 1, now, same, 2, NULL, 0, &size, NULL);
    assert_int_equal (st_fsm_apply (fresh.fsm, 2, data, size, &none), 0);
    free (data);
    char c[65], d[65];
    s_digest (&other, c);
    s_digest (&fresh, d);
    assert_string_not_equal (c, d);
    s_node_destroy (&other);
    s_node_destroy (&fresh);
    s_node_destroy (&nodes[0]);
    s_node_destroy (&nodes[1]);
}

static void
test_only_the_awaited_entry_answers (void **state)
{
    (void) state;
    s_node_t node;
    s_node_new (&node, 1);
    size_t size;
    unsigned char seed[ST_DET_SEED_BYTES], other[ST_DET_SEED_BYTES];
    cm_envelope_t *start[1] = {s_start ("alice", "s-a")};
    char *data = s_entry (ST_ENTRY_BATCH, 5, 1764000000000LL, start, 1, NULL, 0, &size, seed);
    memset (other, 6, sizeof other);
    st_fsm_await (node.fsm, other); //  awaits another entry
    st_fsm_result_t *result = NULL;
    assert_int_equal (st_fsm_apply (node.fsm, 2, data, size, &result), 0);
    assert_null (result);
    free (data);
    //  An entry of another origin with the awaited seed is not ours either.
    cm_envelope_t *next[1] = {s_start ("bob", "s-b")};
    st_entry_t entry = {.kind = ST_ENTRY_BATCH, .now_ms = 1, .origin = 2, .requests = next,
                        .n = 1};
    memcpy (entry.seed, other, sizeof other);
    assert_int_equal (st_entry_encode (&entry, &data, &size), 0);
    cm_envelope_destroy (&next[0]);
    assert_int_equal (st_fsm_apply (node.fsm, 3, data, size, &result), 0);
    assert_null (result);
    free (data);
    s_node_destroy (&node);
}

static void
test_damaged_entry_skipped_alike (void **state)
{
    (void) state;
    s_node_t nodes[2];
    s_node_new (&nodes[0], 1);
    s_node_new (&nodes[1], 2);
    const char junk[16] = "not an entry...";
    s_apply_all (nodes, 2, 2, junk, sizeof junk, NULL);
    char a[65], b[65];
    s_digest (&nodes[0], a);
    s_digest (&nodes[1], b);
    assert_string_equal (a, b);
    s_node_destroy (&nodes[0]);
    s_node_destroy (&nodes[1]);
}

static void
test_snapshot_restores_a_new_node (void **state)
{
    (void) state;
    s_node_t leader, newcomer;
    s_node_new (&leader, 1);
    s_node_new (&newcomer, 2);
    size_t size;
    for (int i = 0; i < 20; i++) {
        char session[32];
        snprintf (session, sizeof session, "s-%d", i);
        cm_envelope_t *start[1] = {s_start ("alice", session)};
        char *data = s_entry (ST_ENTRY_BATCH, i + 1, 1764000000000LL + i, start, 1, NULL, 0,
                              &size, NULL);
        st_fsm_result_t *none;
        assert_int_equal (st_fsm_apply (leader.fsm, (uint64_t) i + 2, data, size, &none), 0);
        free (data);
    }
    void *snapshot;
    size_t snapshot_size;
    assert_int_equal (st_fsm_snapshot (leader.fsm, &snapshot, &snapshot_size), 0);
    assert_int_equal (st_fsm_restore (newcomer.fsm, snapshot, snapshot_size), 0);
    assert_int_equal (st_fsm_applied (newcomer.fsm), 21);
    char a[65], b[65];
    s_digest (&leader, a);
    s_digest (&newcomer, b);
    assert_string_equal (a, b);
    //  A node already there keeps its LMDB.
    assert_int_equal (st_fsm_restore (leader.fsm, snapshot, snapshot_size), 0);
    s_digest (&leader, b);
    assert_string_equal (a, b);
    //  Not a snapshot.
    assert_int_equal (st_fsm_restore (newcomer.fsm, "CMRX", 4), CM_EPROTO);
    free (snapshot);
    s_node_destroy (&leader);
    s_node_destroy (&newcomer);
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_replicas_identical),
        cmocka_unit_test (test_only_the_awaited_entry_answers),
        cmocka_unit_test (test_damaged_entry_skipped_alike),
        cmocka_unit_test (test_snapshot_restores_a_new_node),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
