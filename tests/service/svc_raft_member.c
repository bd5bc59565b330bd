/*  svc_raft_member.c: raft membership changes of the replicated store, as
    real processes (svc_cluster.h): three nodes bootstrapped, a fourth
    started with CHATMESH_STORE_JOIN.

    - Bad cluster_change requests get a precise error and change nothing
      (unknown op, id 0, add without raft_address, an id or raft address
      in use, remove of an id that is no member, any change sent to a
      follower: CM_ENOTLEADER with the hint); the last voter of a
      one-node cluster cannot be removed; a node added that never
      answers stays a spare (CM_EBACKEND) until removed.
    - The joiner bootstraps nothing: it is no voter and knows no members
      until `chatmesh-cluster add` (sent to a follower, which hints the
      leader) adds it; then it is a voter on the leader's configuration,
      reaches the leader's applied index, and serves a read of a write
      made after it joined (min_index = that write's applied_index).
    - `chatmesh-cluster remove` of an original follower: it is no longer
      a member on any remaining node, writes go on through the leader, and
      a second remove of it is refused (CM_ENOTFOUND, exit 1). Then the
      leader removes itself: one of the two voters left leads and serves
      writes.                                                           */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "cm_error.h"
#include "cm_leader.h"
#include "cm_rpc.h"
#include "cm_time.h"
#include "svc_cluster.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define S_BOOT 3
#define S_JOINER 3 //  node index of the fourth node

static cm_envelope_t *
s_request (cm_msg_t type)
{
    char id[40];
    cm_request_id (id, sizeof id);
    return cm_envelope_new (type, id);
}

static cm_envelope_t *
s_change (const char *op, long long id, const char *raft_address)
{
    cm_envelope_t *request = s_request (CM_MSG_CLUSTER_CHANGE);
    cm_map_set_str (request->payload, "op", op);
    cm_map_set_int (request->payload, "id", id);
    if (raft_address)
        cm_map_set_str (request->payload, "raft_address", raft_address);
    return request;
}

//  Sends request to node i and checks the error reply's code and message.
static void
s_assert_error (svc_cluster_t *cluster, int i, cm_envelope_t *request, int code,
                const char *message)
{
    cm_envelope_t *reply = NULL;
    assert_int_equal (svc_cluster_call (cluster, i, request, 35000, &reply), 0);
    assert_int_equal (reply->type, CM_MSG_ERROR);
    assert_int_equal (cm_map_int (reply->payload, "code", 0), code);
    assert_string_equal (cm_map_str_or (reply->payload, "message", ""), message);
    cm_envelope_destroy (&reply);
    cm_envelope_destroy (&request);
}

//  Node i's ping raft map as "id:role,id:role" (members) into buffer, and
//  its raft.voter; false when it did not answer.
static bool
s_members (svc_cluster_t *cluster, int i, char *buffer, size_t size, bool *voter)
{
    cm_envelope_t *ping = s_request (CM_MSG_PING), *reply = NULL;
    int rc = svc_cluster_call (cluster, i, ping, 1000, &reply);
    cm_envelope_destroy (&ping);
    const cm_value_t *raft = rc == 0 && reply->type == CM_MSG_OK
                                 ? cm_map_get (reply->payload, "raft")
                                 : NULL;
    const cm_value_t *members = raft ? cm_map_get (raft, "members") : NULL;
    if (!members) {
        cm_envelope_destroy (&reply);
        return false;
    }
    size_t used = 0;
    buffer[0] = 0;
    for (size_t m = 0; m < cm_value_len (members); m++) {
        const cm_value_t *member = cm_arr_at (members, m);
        used += (size_t) snprintf (buffer + used, size - used, "%s%lld:%s", m ? "," : "",
                                   (long long) cm_map_int (member, "id", 0),
                                   cm_map_str_or (member, "role", ""));
    }
    const cm_value_t *is_voter = cm_map_get (raft, "voter");
    *voter = is_voter && is_voter->type == CM_T_BOOL && is_voter->u.b;
    cm_envelope_destroy (&reply);
    return true;
}

//  Polls node i until its members read expected (5 s). true if they did.
static bool
s_await_members (svc_cluster_t *cluster, int i, const char *expected)
{
    char members[256] = "";
    bool voter;
    int64_t until = cm_mono_ms () + 5000;
    while (cm_mono_ms () < until) {
        if (s_members (cluster, i, members, sizeof members, &voter)
            && strcmp (members, expected) == 0)
            return true;
        usleep (20000);
    }
    printf ("node %d members '%s', expected '%s'\n", i + 1, members, expected);
    return false;
}

//  A session_start through the leader; its applied_index.
static long long
s_write (svc_cluster_t *cluster, const char *session_id)
{
    cm_envelope_t *request = s_request (CM_MSG_SESSION_START), *reply = NULL;
    cm_map_set_str (request->payload, "user", "mia");
    cm_map_set_str (request->payload, "session_id", session_id);
    cm_map_set_str (request->payload, "query", "who votes?");
    assert_int_equal (svc_cluster_write (cluster, request, 10000, &reply, NULL), 0);
    cm_envelope_destroy (&request);
    assert_int_equal (reply->type, CM_MSG_OK);
    long long index = cm_map_int (reply->payload, CM_LEADER_APPLIED_FIELD, -1);
    assert_true (index > 0);
    cm_envelope_destroy (&reply);
    return index;
}

//  Runs chatmesh-cluster with args; its exit status.
static int
s_cli (const char *args)
{
    char command[1024];
    snprintf (command, sizeof command, "%s/store/chatmesh-cluster %s", getenv ("CHATMESH_BIN_DIR"),
              args);
    int status = system (command);
    return WIFEXITED (status) ? WEXITSTATUS (status) : -1;
}

static void
test_bad_changes_change_nothing (void **state)
{
    svc_cluster_t *cluster = *state;
    int leader = svc_cluster_leader (cluster, NULL);
    assert_true (leader >= 0);
    int follower = (leader + 1) % S_BOOT;
    char address[64], hint[128];
    svc_cluster_raft_address (cluster, 0, address, sizeof address);
    snprintf (hint, sizeof hint, "leader is %s", svc_cluster_endpoint (cluster, leader));
    s_assert_error (cluster, leader, s_change ("grow", 9, NULL), CM_EINVAL,
                    "op must be \"add\" or \"remove\"");
    s_assert_error (cluster, leader, s_change ("add", 0, "127.0.0.1:1"), CM_EINVAL,
                    "id must be 1 or more");
    s_assert_error (cluster, leader, s_change ("add", 9, NULL), CM_EINVAL,
                    "raft_address is required to add");
    s_assert_error (cluster, leader, s_change ("remove", 9, "127.0.0.1:1"), CM_EINVAL,
                    "remove takes no raft_address");
    s_assert_error (cluster, leader, s_change ("add", 1, "127.0.0.1:1"), CM_ECONFLICT,
                    "node 1 is already a member (voter)");
    s_assert_error (cluster, leader, s_change ("add", 9, address), CM_ECONFLICT,
                    "the raft address is already a member's");
    s_assert_error (cluster, leader, s_change ("remove", 9, NULL), CM_ENOTFOUND,
                    "node 9 is not a member");
    //  A follower names the leader once it has heard from it.
    int64_t until = cm_mono_ms () + 5000;
    bool named = false;
    while (!named && cm_mono_ms () < until) {
        cm_envelope_t *change = s_change ("remove", 1, NULL), *refusal = NULL;
        assert_int_equal (svc_cluster_call (cluster, follower, change, 5000, &refusal), 0);
        assert_int_equal (cm_map_int (refusal->payload, "code", 0), CM_ENOTLEADER);
        named = strcmp (cm_map_str_or (refusal->payload, "message", ""), hint) == 0;
        cm_envelope_destroy (&refusal);
        cm_envelope_destroy (&change);
        if (!named)
            usleep (50000);
    }
    assert_true (named);
    cm_envelope_t *untyped = s_request (CM_MSG_CLUSTER_CHANGE);
    cm_map_set_str (untyped->payload, "op", "add");
    cm_envelope_t *reply = NULL;
    assert_int_equal (svc_cluster_call (cluster, leader, untyped, 5000, &reply), 0);
    assert_int_equal (cm_map_int (reply->payload, "code", 0), CM_EPROTO);
    cm_envelope_destroy (&reply);
    cm_envelope_destroy (&untyped);
    assert_int_equal (s_cli ("remove 9 2>/dev/null"), 2); //  no endpoint: usage
    for (int i = 0; i < S_BOOT; i++)
        assert_true (s_await_members (cluster, i, "1:voter,2:voter,3:voter"));
}

static void
test_join_add_then_remove (void **state)
{
    svc_cluster_t *cluster = *state;
    for (int i = 0; i < 20; i++) {
        char session_id[32];
        snprintf (session_id, sizeof session_id, "before-%d", i);
        s_write (cluster, session_id);
    }
    assert_int_equal (svc_cluster_spawn (cluster, S_JOINER), 0);
    //  Up, but bootstrapped nothing: no members, no vote.
    char members[256];
    bool voter = true, answered = false;
    int64_t until = cm_mono_ms () + 5000;
    while (!answered && cm_mono_ms () < until)
        if (!(answered = s_members (cluster, S_JOINER, members, sizeof members, &voter)))
            usleep (50000);
    assert_true (answered);
    assert_false (voter);
    assert_string_equal (members, "");

    int leader = svc_cluster_leader (cluster, NULL);
    assert_true (leader >= 0);
    int follower = (leader + 1) % S_BOOT;
    char address[64], args[512];
    svc_cluster_raft_address (cluster, S_JOINER, address, sizeof address);
    snprintf (args, sizeof args, "add %d %s %s", svc_cluster_id (cluster, S_JOINER), address,
              svc_cluster_endpoint (cluster, follower));
    int64_t started = cm_mono_ms ();
    assert_int_equal (s_cli (args), 0);
    printf ("chatmesh-cluster add took %lld ms\n", (long long) (cm_mono_ms () - started));
    assert_true (s_await_members (cluster, leader, "1:voter,2:voter,3:voter,4:voter"));
    assert_true (s_await_members (cluster, S_JOINER, "1:voter,2:voter,3:voter,4:voter"));
    //  chatmesh-ping shows it as an operator sees it.
    char command[512], line[1024] = "";
    snprintf (command, sizeof command, "%s/proto/chatmesh-ping %s", getenv ("CHATMESH_BIN_DIR"),
              svc_cluster_endpoint (cluster, S_JOINER));
    FILE *ping = popen (command, "r");
    assert_non_null (ping);
    assert_non_null (fgets (line, sizeof line, ping));
    assert_int_equal (pclose (ping), 0);
    assert_non_null (strstr (line, " raft.voter=true"));
    assert_non_null (strstr (line, " raft.members=1:voter,2:voter,3:voter,4:voter"));
    //  Caught up: the leader's applied index, and a write made now is
    //  readable on it by that write's index.
    long long index = s_write (cluster, "after-join");
    long long applied = -1;
    until = cm_mono_ms () + 5000;
    while (cm_mono_ms () < until && (applied = svc_cluster_applied (cluster, S_JOINER)) < index)
        usleep (20000);
    assert_true (applied >= index);
    cm_envelope_t *get = s_request (CM_MSG_SESSION_GET), *reply = NULL;
    cm_map_set_str (get->payload, "user", "mia");
    cm_map_set_str (get->payload, "session_id", "after-join");
    cm_map_set_int (get->payload, CM_LEADER_MIN_FIELD, index);
    assert_int_equal (svc_cluster_call (cluster, S_JOINER, get, 2000, &reply), 0);
    assert_int_equal (reply->type, CM_MSG_OK);
    cm_envelope_destroy (&reply);
    cm_envelope_destroy (&get);

    //  Remove an original follower.
    leader = svc_cluster_leader (cluster, NULL);
    int removed = (leader + 1) % S_BOOT;
    snprintf (args, sizeof args, "remove %d %s", svc_cluster_id (cluster, removed),
              svc_cluster_endpoint (cluster, removed));
    assert_int_equal (s_cli (args), 0);
    char expected[128];
    size_t used = 0;
    for (int i = 0; i < S_BOOT + 1; i++)
        if (i != removed)
            used += (size_t) snprintf (expected + used, sizeof expected - used, "%s%d:voter",
                                       used ? "," : "", svc_cluster_id (cluster, i));
    for (int i = 0; i < S_BOOT + 1; i++)
        if (i != removed)
            assert_true (s_await_members (cluster, i, expected));
    for (int i = 0; i < 10; i++) {
        char session_id[32];
        snprintf (session_id, sizeof session_id, "after-remove-%d", i);
        s_write (cluster, session_id);
    }
    snprintf (args, sizeof args, "remove %d %s", svc_cluster_id (cluster, removed),
              svc_cluster_endpoint (cluster, S_JOINER));
    assert_int_equal (s_cli (args), 1);

    //  The leader removes itself: the two left elect one and take writes.
    leader = svc_cluster_leader (cluster, NULL);
    snprintf (args, sizeof args, "remove %d %s", svc_cluster_id (cluster, leader),
              svc_cluster_endpoint (cluster, leader));
    assert_int_equal (s_cli (args), 0);
    used = 0;
    for (int i = 0; i < S_BOOT + 1; i++)
        if (i != removed && i != leader)
            used += (size_t) snprintf (expected + used, sizeof expected - used, "%s%d:voter",
                                       used ? "," : "", svc_cluster_id (cluster, i));
    s_write (cluster, "after-leader-removed");
    int successor = svc_cluster_leader (cluster, NULL);
    assert_true (successor >= 0 && successor != leader && successor != removed);
    assert_true (s_await_members (cluster, successor, expected));
}

static void
test_the_last_voter_stays (void **state)
{
    (void) state;
    svc_cluster_t *single = svc_cluster_start (1, NULL);
    assert_non_null (single);
    s_assert_error (single, 0, s_change ("remove", 1, NULL), CM_EBADSTATE,
                    "node 1 is the last voter");
    assert_true (s_await_members (single, 0, "1:voter"));
    //  A node that never answers: raft_add commits it as a spare, its
    //  promotion fails (raft gives up catching it up), and it stays a
    //  spare until removed.
    s_assert_error (single, 0, s_change ("add", 2, "127.0.0.1:1"), CM_EBACKEND,
                    "promoting to voter of node 2 failed: no connection to remote server "
                    "available");
    assert_true (s_await_members (single, 0, "1:voter,2:spare"));
    s_assert_error (single, 0, s_change ("add", 2, "127.0.0.1:1"), CM_ECONFLICT,
                    "node 2 is already a member (not a voter: remove it first)");
    char args[256];
    snprintf (args, sizeof args, "remove 2 %s", svc_cluster_endpoint (single, 0));
    assert_int_equal (s_cli (args), 0);
    assert_true (s_await_members (single, 0, "1:voter"));
    svc_cluster_stop (&single);
}

static int
s_setup (void **state)
{
    *state = svc_cluster_start_joinable (S_BOOT, 1, NULL);
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
        cmocka_unit_test (test_bad_changes_change_nothing),
        cmocka_unit_test (test_join_add_then_remove),
        cmocka_unit_test (test_the_last_voter_stays),
    };
    return cmocka_run_group_tests (tests, s_setup, s_teardown);
}
