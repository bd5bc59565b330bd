/*  svc_raft.c: the store replicated by raft, as real processes: three
    chatmesh-store nodes on random loopback ports (svc_cluster.h).

    - A follower answers a write with CM_ENOTLEADER "leader is <the
      leader's endpoint>" and executes nothing.
    - Failover: a client writes (session_start, then an upvote on its
      answer) through whichever node leads, recording every acknowledged
      write; the leader is killed with SIGKILL; a new leader serves a write
      within 5 s; the killed node is restarted and catches up (snapshots
      every 64 entries, so a node that was down is also fed snapshots);
      3 rounds, each killing the node leading then.
    - The leader frozen (SIGSTOP, like a leader cut off the network): a
      new leader serves writes within 5 s; thawed, the old one steps down
      and names the new leader. At the end every
      acknowledged write is readable on the leader, every node has applied
      the same index, and once stopped the three LMDBs hold the same
      records (SHA-256 over every key and value of every named db).      */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "cm_error.h"
#include "cm_rpc.h"
#include "cm_time.h"
#include "st_db.h"
#include "st_fsm.h"
#include "svc_cluster.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define S_ROUNDS 3
#define S_WRITES_PER_ROUND 40
#define S_MAX_ACKED (S_ROUNDS * S_WRITES_PER_ROUND * 2 + 16)

typedef struct {
    char session_id[64];
    char user[32];
    char assistant_id[96];
    bool voted;
} s_acked_t;

static s_acked_t s_acked[S_MAX_ACKED];
static size_t s_acked_count;

static cm_envelope_t *
s_request (cm_msg_t type, const char *user)
{
    char id[40];
    cm_request_id (id, sizeof id);
    cm_envelope_t *request = cm_envelope_new (type, id);
    cm_map_set_str (request->payload, "user", user);
    return request;
}

static cm_envelope_t *
s_session_start (const char *user, const char *session_id)
{
    cm_envelope_t *request = s_request (CM_MSG_SESSION_START, user);
    cm_map_set_str (request->payload, "session_id", session_id);
    cm_map_set_str (request->payload, "query", "is it replicated?");
    return request;
}

//  One session_start and one upvote through the leader; records what was
//  acknowledged. A reply "outcome unknown" (CM_ETIMEOUT, leadership lost
//  mid-commit) is retried as is, like a caller would. false when no node
//  answered within deadline_ms.
static bool
s_write_pair (svc_cluster_t *cluster, int serial, int deadline_ms)
{
    s_acked_t *item = &s_acked[s_acked_count];
    memset (item, 0, sizeof *item);
    snprintf (item->user, sizeof item->user, "u%d", serial);
    snprintf (item->session_id, sizeof item->session_id, "raft-%06d", serial);
    cm_envelope_t *reply = NULL;
    int64_t until = cm_mono_ms () + deadline_ms;
    while (!reply && cm_mono_ms () < until) {
        cm_envelope_t *request = s_session_start (item->user, item->session_id);
        int rc = svc_cluster_write (cluster, request, (int) (until - cm_mono_ms ()), &reply, NULL);
        cm_envelope_destroy (&request);
        if (rc)
            return false;
        if (reply->type == CM_MSG_ERROR
            && cm_map_int (reply->payload, "code", 0) == CM_ETIMEOUT)
            cm_envelope_destroy (&reply);
    }
    if (!reply)
        return false;
    assert_int_equal (reply->type, CM_MSG_OK);
    const cm_value_t *data = cm_map_get (reply->payload, "data");
    snprintf (item->assistant_id, sizeof item->assistant_id, "%s",
              cm_map_str_or (data, "assistant_message_id", ""));
    assert_true (item->assistant_id[0]);
    cm_envelope_destroy (&reply);
    s_acked_count++;
    while (cm_mono_ms () < until) {
        cm_envelope_t *vote = s_request (CM_MSG_FEEDBACK_PUT, item->user);
        cm_map_set_str (vote->payload, "message_id", item->assistant_id);
        cm_map_set_str (vote->payload, "feedback_type", "upvote");
        int rc = svc_cluster_write (cluster, vote, (int) (until - cm_mono_ms ()), &reply, NULL);
        cm_envelope_destroy (&vote);
        if (rc)
            return false;
        bool unknown = reply->type == CM_MSG_ERROR
                       && cm_map_int (reply->payload, "code", 0) == CM_ETIMEOUT;
        if (!unknown) {
            assert_int_equal (reply->type, CM_MSG_OK);
            item->voted = true;
        }
        cm_envelope_destroy (&reply);
        if (!unknown)
            return true;
    }
    return false;
}

static void
test_follower_names_the_leader (void **state)
{
    svc_cluster_t *cluster = *state;
    int leader = svc_cluster_leader (cluster, NULL);
    assert_true (leader >= 0);
    int follower = (leader + 1) % 3;
    cm_envelope_t *request = s_session_start ("alice", "not-on-a-follower");
    cm_envelope_t *reply = NULL;
    assert_int_equal (svc_cluster_call (cluster, follower, request, 2000, &reply), 0);
    assert_int_equal (reply->type, CM_MSG_ERROR);
    assert_int_equal (cm_map_int (reply->payload, "code", 0), CM_ENOTLEADER);
    char expected[128];
    snprintf (expected, sizeof expected, "leader is %s", svc_cluster_endpoint (cluster, leader));
    assert_string_equal (cm_map_str_or (reply->payload, "message", ""), expected);
    cm_envelope_destroy (&reply);
    //  Reads without min_index too (the leader's only, st_reads.h), but
    //  not ping.
    cm_envelope_t *get = s_request (CM_MSG_SESSION_GET, "alice");
    cm_map_set_str (get->payload, "session_id", "not-on-a-follower");
    assert_int_equal (svc_cluster_call (cluster, follower, get, 2000, &reply), 0);
    assert_int_equal (cm_map_int (reply->payload, "code", 0), CM_ENOTLEADER);
    cm_envelope_destroy (&reply);
    //  Nothing was executed: the leader has no such session.
    assert_int_equal (svc_cluster_call (cluster, leader, get, 2000, &reply), 0);
    assert_int_equal (cm_map_int (reply->payload, "code", 0), CM_ENOTFOUND);
    cm_envelope_destroy (&reply);
    cm_envelope_destroy (&get);
    cm_envelope_destroy (&request);
}

//  The leader frozen (SIGSTOP: alive, but silent to everyone, like a
//  leader cut off the network): the others elect a new leader that serves
//  writes within 5 s; thawed, the old leader learns the new term, steps
//  down and names the new leader, and catches up (the final digest check
//  of the next test covers its LMDB too).
static void
test_frozen_leader_steps_down (void **state)
{
    svc_cluster_t *cluster = *state;
    int serial = 900000;
    for (int i = 0; i < 10; i++)
        assert_true (s_write_pair (cluster, serial++, 10000));
    int old = svc_cluster_leader (cluster, NULL);
    assert_true (old >= 0);
    assert_int_equal (svc_cluster_signal (cluster, old, SIGSTOP), 0);
    int64_t frozen = cm_mono_ms ();
    assert_true (s_write_pair (cluster, serial++, 5000));
    int64_t took = cm_mono_ms () - frozen;
    printf ("froze node %d, a write was acknowledged %lld ms later\n", old + 1, (long long) took);
    assert_true (took < 5000);
    for (int i = 0; i < 10; i++)
        assert_true (s_write_pair (cluster, serial++, 10000));
    int leader = svc_cluster_leader (cluster, NULL);
    assert_true (leader >= 0 && leader != old);
    assert_int_equal (svc_cluster_signal (cluster, old, SIGCONT), 0);
    //  Thawed, it refuses a write and names the new leader (the first
    //  answer may still be "leader unknown" while it hears the new term).
    char expected[128];
    snprintf (expected, sizeof expected, "leader is %s", svc_cluster_endpoint (cluster, leader));
    int64_t until = cm_mono_ms () + 5000;
    bool named = false;
    while (!named && cm_mono_ms () < until) {
        cm_envelope_t *request = s_session_start ("zed", "to-the-old-leader"), *reply = NULL;
        if (svc_cluster_call (cluster, old, request, 1000, &reply) == 0) {
            assert_int_equal (reply->type, CM_MSG_ERROR);
            named = strcmp (cm_map_str_or (reply->payload, "message", ""), expected) == 0;
        }
        cm_envelope_destroy (&reply);
        cm_envelope_destroy (&request);
        if (!named)
            usleep (50000);
    }
    assert_true (named);
}

//  Waits (15 s at most) until every node has the leader's applied index;
//  the leader. Fails the test otherwise.
static int
s_await_same_applied (svc_cluster_t *cluster)
{
    int64_t until = cm_mono_ms () + 15000;
    bool same = false;
    int leader = -1;
    while (!same && cm_mono_ms () < until) {
        long long applied = -1;
        leader = svc_cluster_leader (cluster, &applied);
        same = leader >= 0 && applied > 0;
        for (int i = 0; same && i < 3; i++)
            same = svc_cluster_applied (cluster, i) == applied;
        if (!same)
            usleep (50000);
    }
    assert_true (same);
    return leader;
}

static void
test_failover_loses_nothing (void **state)
{
    svc_cluster_t *cluster = *state;
    int serial = 0;
    int victims[S_ROUNDS];
    for (int round = 0; round < S_ROUNDS; round++) {
        for (int i = 0; i < S_WRITES_PER_ROUND; i++)
            assert_true (s_write_pair (cluster, serial++, 10000));
        int leader = svc_cluster_leader (cluster, NULL);
        assert_true (leader >= 0);
        victims[round] = leader;
        assert_int_equal (svc_cluster_kill (cluster, leader, SIGKILL), 0);
        int64_t killed = cm_mono_ms ();
        assert_true (s_write_pair (cluster, serial++, 5000));
        int64_t took = cm_mono_ms () - killed;
        printf ("round %d: killed node %d, a write was acknowledged %lld ms later\n", round + 1,
                leader + 1, (long long) took);
        assert_true (took < 5000);
        for (int i = 0; i < S_WRITES_PER_ROUND / 2; i++)
            assert_true (s_write_pair (cluster, serial++, 10000));
        assert_int_equal (svc_cluster_spawn (cluster, leader), 0);
    }
    (void) victims;

    //  Everyone catches up to the same applied index.
    int leader = s_await_same_applied (cluster);
    //  The leader of the last election has applied its barrier (it serves
    //  every read); the followers say they do not.
    int64_t until = cm_mono_ms () + 5000;
    while (svc_cluster_reads_ready (cluster, leader) != 1 && cm_mono_ms () < until)
        usleep (20000);
    assert_int_equal (svc_cluster_reads_ready (cluster, leader), 1);
    for (int i = 0; i < 3; i++)
        if (i != leader)
            assert_int_equal (svc_cluster_reads_ready (cluster, i), 0);

    //  Every acknowledged write is there.
    size_t votes = 0;
    for (size_t i = 0; i < s_acked_count; i++) {
        cm_envelope_t *get = s_request (CM_MSG_SESSION_GET, s_acked[i].user);
        cm_map_set_str (get->payload, "session_id", s_acked[i].session_id);
        cm_envelope_t *reply = NULL;
        assert_int_equal (svc_cluster_call (cluster, leader, get, 2000, &reply), 0);
        if (reply->type != CM_MSG_OK)
            printf ("acknowledged session %s: %s\n", s_acked[i].session_id,
                    cm_map_str_or (reply->payload, "message", ""));
        assert_int_equal (reply->type, CM_MSG_OK);
        cm_envelope_destroy (&reply);
        cm_envelope_destroy (&get);
        if (!s_acked[i].voted)
            continue;
        cm_envelope_t *feedback = s_request (CM_MSG_FEEDBACK_GET, s_acked[i].user);
        cm_map_set_str (feedback->payload, "message_id", s_acked[i].assistant_id);
        assert_int_equal (svc_cluster_call (cluster, leader, feedback, 2000, &reply), 0);
        assert_int_equal (reply->type, CM_MSG_OK);
        const cm_value_t *summary = cm_map_get (reply->payload, "feedback_summary");
        assert_int_equal (cm_map_int (summary, "upvotes", 0), 1);
        votes++;
        cm_envelope_destroy (&reply);
        cm_envelope_destroy (&feedback);
    }
    printf ("%zu sessions and %zu votes acknowledged, all present\n", s_acked_count, votes);
    assert_true (s_acked_count >= S_ROUNDS * (S_WRITES_PER_ROUND * 3 / 2));

    //  Stopped, the three LMDBs hold the same records. An upkeep entry
    //  (every second here) may commit while the nodes stop, so one node
    //  can stop an entry short: then the applied indexes differ, and the
    //  nodes are started again to catch up and stopped once more. Equal
    //  indexes must mean equal records.
    char digests[3][65];
    bool compared = false;
    for (int attempt = 0; attempt < 5 && !compared; attempt++) {
        if (attempt > 0) {
            for (int i = 0; i < 3; i++)
                assert_int_equal (svc_cluster_spawn (cluster, i), 0);
            s_await_same_applied (cluster);
        }
        for (int i = 0; i < 3; i++)
            assert_int_equal (svc_cluster_kill (cluster, i, SIGTERM), 0);
        uint64_t applied[3];
        for (int i = 0; i < 3; i++) {
            st_db_t *db = NULL;
            assert_int_equal (st_db_open (svc_cluster_store_dir (cluster, i), 1 << 20, false, &db),
                              0);
            assert_int_equal (st_db_applied (db, NULL, &applied[i]), 0);
            assert_int_equal (st_fsm_digest (db, digests[i]), 0);
            st_db_destroy (&db);
            printf ("node %d: applied %llu, %s\n", i + 1, (unsigned long long) applied[i],
                    digests[i]);
        }
        compared = applied[0] == applied[1] && applied[0] == applied[2];
    }
    assert_true (compared);
    assert_string_equal (digests[0], digests[1]);
    assert_string_equal (digests[0], digests[2]);
}

static int
s_setup (void **state)
{
    //  Upkeep every second: its entries go through raft too.
    const char *env[] = {"CHATMESH_STORE_RAFT_SNAPSHOT_ENTRIES=64", "CHAT_ACTIONS_CLEANUP_INTERVAL=1",
                         NULL};
    *state = svc_cluster_start (3, env);
    return *state ? 0 : -1;
}

static int
s_teardown (void **state)
{
    svc_cluster_t *cluster = *state;
    svc_cluster_stop (&cluster);
    return 0;
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_follower_names_the_leader),
        cmocka_unit_test (test_frozen_leader_steps_down),
        cmocka_unit_test (test_failover_loses_nothing),
    };
    return cmocka_run_group_tests (tests, s_setup, s_teardown);
}
