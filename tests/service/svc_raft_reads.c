/*  svc_raft_reads.c: reads from followers without losing read-your-writes
    (store/st_reads.h, proto/cm_leader.h), as real processes: three
    chatmesh-store nodes on random loopback ports (svc_cluster.h).

    - A write's OK reply carries applied_index, the raft index of the
      entry that applied it; it grows from write to write and the leader
      has applied it when the reply comes.
    - A follower serves a read whose min_index it has applied (the data
      is there), and answers CM_ENOTLEADER "leader is <leader>" to one
      ahead of it or without min_index; a bad min_index is CM_EPROTO with
      the reason; the leader serves any min_index.
    - A gateway with CHATMESH_STORE_READS=any and the three endpoints
      (beside a mesh of its own, with a regenerator of the cluster)
      reads its own writes: 200 times a rename, then a GET that must show
      that title. Once every node has applied the last write, reads
      through it are served where they land (no "not leader" more).     */
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
#include "svc_harness.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_NODES 3
#define S_ROUNDS 200
#define S_QUIET_READS 30

static cm_envelope_t *
s_request (cm_msg_t type, const char *user, const char *session_id)
{
    char id[40];
    cm_request_id (id, sizeof id);
    cm_envelope_t *request = cm_envelope_new (type, id);
    cm_map_set_str (request->payload, "user", user);
    cm_map_set_str (request->payload, "session_id", session_id);
    return request;
}

//  A session_start through the leader; its reply's applied_index.
static long long
s_start_session (svc_cluster_t *cluster, const char *user, const char *session_id)
{
    cm_envelope_t *request = s_request (CM_MSG_SESSION_START, user, session_id);
    cm_map_set_str (request->payload, "query", "who reads this?");
    cm_envelope_t *reply = NULL;
    assert_int_equal (svc_cluster_write (cluster, request, 10000, &reply, NULL), 0);
    assert_int_equal (reply->type, CM_MSG_OK);
    long long index = cm_map_int (reply->payload, CM_LEADER_APPLIED_FIELD, -1);
    cm_envelope_destroy (&reply);
    cm_envelope_destroy (&request);
    return index;
}

//  Waits until node i has applied index (5 s). true when it did.
static bool
s_await_applied (svc_cluster_t *cluster, int i, long long index)
{
    int64_t until = cm_mono_ms () + 5000;
    while (cm_mono_ms () < until) {
        if (svc_cluster_applied (cluster, i) >= index)
            return true;
        zclock_sleep (20);
    }
    return false;
}

//  A session_get to node i with min_index (< 0: none); the reply.
static cm_envelope_t *
s_get (svc_cluster_t *cluster, int i, const char *session_id, long long min_index)
{
    cm_envelope_t *request = s_request (CM_MSG_SESSION_GET, "alice", session_id);
    if (min_index >= 0)
        cm_map_set_int (request->payload, CM_LEADER_MIN_FIELD, min_index);
    cm_envelope_t *reply = NULL;
    assert_int_equal (svc_cluster_call (cluster, i, request, 2000, &reply), 0);
    cm_envelope_destroy (&request);
    return reply;
}

static void
s_assert_refused (cm_envelope_t **reply_p, int code, const char *message)
{
    cm_envelope_t *reply = *reply_p;
    assert_int_equal (reply->type, CM_MSG_ERROR);
    assert_int_equal (cm_map_int (reply->payload, "code", 0), code);
    assert_string_equal (cm_map_str_or (reply->payload, "message", ""), message);
    cm_envelope_destroy (reply_p);
}

static void
test_a_write_reply_carries_its_applied_index (void **state)
{
    svc_cluster_t *cluster = *state;
    long long first = s_start_session (cluster, "alice", "reads-index-1");
    assert_true (first > 0);
    long long leader_applied = -1;
    int leader = svc_cluster_leader (cluster, &leader_applied);
    assert_true (leader >= 0);
    assert_true (leader_applied >= first);
    long long second = s_start_session (cluster, "alice", "reads-index-2");
    assert_true (second > first);
}

static void
test_a_follower_serves_what_it_has_applied (void **state)
{
    svc_cluster_t *cluster = *state;
    long long index = s_start_session (cluster, "alice", "reads-follower");
    assert_true (index > 0);
    int leader = svc_cluster_leader (cluster, NULL);
    assert_true (leader >= 0);
    int follower = (leader + 1) % S_NODES;
    assert_true (s_await_applied (cluster, follower, index));
    long long applied = svc_cluster_applied (cluster, follower);

    //  At or below its applied index: served, and the write is there.
    for (long long min = 0; min <= index; min += index) {
        cm_envelope_t *reply = s_get (cluster, follower, "reads-follower", min);
        assert_int_equal (reply->type, CM_MSG_OK);
        const cm_value_t *session = cm_map_get (reply->payload, "session");
        assert_string_equal (cm_map_str_or (session, "session_id", ""), "reads-follower");
        assert_null (cm_map_get (reply->payload, CM_LEADER_APPLIED_FIELD));
        cm_envelope_destroy (&reply);
    }
    //  Ahead of it, or without min_index: the leader's, named.
    char hint[160];
    snprintf (hint, sizeof hint, "leader is %s", svc_cluster_endpoint (cluster, leader));
    cm_envelope_t *reply = s_get (cluster, follower, "reads-follower", applied + 1000);
    s_assert_refused (&reply, CM_ENOTLEADER, hint);
    reply = s_get (cluster, follower, "reads-follower", -1);
    s_assert_refused (&reply, CM_ENOTLEADER, hint);
    //  A bad min_index is refused with the reason, on any node.
    cm_envelope_t *bad = s_request (CM_MSG_SESSION_GET, "alice", "reads-follower");
    cm_map_set_str (bad->payload, CM_LEADER_MIN_FIELD, "7");
    for (int i = 0; i < S_NODES; i++) {
        assert_int_equal (svc_cluster_call (cluster, i, bad, 2000, &reply), 0);
        s_assert_refused (&reply, CM_EPROTO, "field 'min_index' must be a non-negative integer");
    }
    cm_envelope_destroy (&bad);
    //  The leader serves any min_index.
    reply = s_get (cluster, leader, "reads-follower", applied + 1000);
    assert_int_equal (reply->type, CM_MSG_OK);
    cm_envelope_destroy (&reply);
}

//  The gateway's chatmesh_store_not_leader_total (one shard), or -1.
static long long
s_not_leader_total (const char *url)
{
    svc_response_t r = {0};
    long long total = -1;
    if (svc_http_at (url, "GET", "/metrics", NULL, NULL, NULL, NULL, &r) == 0 && r.status == 200) {
        const char *line = strstr (r.body, "\nchatmesh_store_not_leader_total{");
        const char *value = line ? strchr (line, '}') : NULL;
        if (value)
            total = strtoll (value + 1, NULL, 10);
    }
    svc_response_free (&r);
    return total;
}

static void
test_a_gateway_reading_from_any_node_reads_its_writes (void **state)
{
    svc_cluster_t *cluster = *state;
    assert_true (s_start_session (cluster, "alice", "reads-gateway") > 0);
    svc_mesh_t *mesh = svc_mesh_start (NULL);
    assert_non_null (mesh);
    char endpoints[512];
    snprintf (endpoints, sizeof endpoints, "CHATMESH_STORE_ENDPOINT=%s,%s,%s",
              svc_cluster_endpoint (cluster, 0), svc_cluster_endpoint (cluster, 1),
              svc_cluster_endpoint (cluster, 2));
    //  A regenerator of the cluster: the gateway is ready only with one.
    const char *regenerator[] = {endpoints, NULL};
    assert_true (svc_mesh_spawn_extra (mesh, "regenerator", regenerator) >= 0);
    const char *env[] = {endpoints, "CHATMESH_STORE_READS=any", "CHAT_ACTIONS_RATE_LIMIT=0", NULL};
    assert_int_equal (svc_mesh_spawn_gateway2 (mesh, env), 0);
    const char *url = svc_mesh_url2 (mesh);
    char *token = svc_token (mesh, "alice", 3600);
    int stale = 0;
    for (int round = 0; round < S_ROUNDS; round++) {
        char title[64], body[96];
        snprintf (title, sizeof title, "title %d", round);
        snprintf (body, sizeof body, "{\"title\": \"%s\"}", title);
        svc_response_t r = {0};
        assert_int_equal (
            svc_http_at (url, "PATCH", "/api/sessions/reads-gateway", token, body, NULL, NULL, &r), 0);
        assert_int_equal (r.status, 200);
        //  The index is the gateway's: never in a client's body.
        assert_null (json_object_get (r.json, CM_LEADER_APPLIED_FIELD));
        svc_response_free (&r);
        assert_int_equal (
            svc_http_at (url, "GET", "/api/sessions/reads-gateway", token, NULL, NULL, NULL, &r), 0);
        assert_int_equal (r.status, 200);
        const char *seen = svc_json_str (r.json, "session", "title");
        if (!seen || strcmp (seen, title) != 0) {
            fprintf (stderr, "round %d: wrote \"%s\", read \"%s\"\n", round, title, seen ? seen : "?");
            stale++;
        }
        svc_response_free (&r);
    }
    long long bounced = s_not_leader_total (url);
    printf ("%d write-then-read rounds: %d stale reads, %lld reads sent on to the leader\n",
            S_ROUNDS, stale, bounced);
    assert_int_equal (stale, 0);
    assert_true (bounced >= 0);
    //  Once every node has the last write, a read is served where it lands.
    long long applied = -1;
    assert_true (svc_cluster_leader (cluster, &applied) >= 0);
    for (int i = 0; i < S_NODES; i++)
        assert_true (s_await_applied (cluster, i, applied));
    //  (Counted now: /metrics's own store reads may have bounced before.)
    bounced = s_not_leader_total (url);
    for (int i = 0; i < S_QUIET_READS; i++) {
        svc_response_t r = {0};
        assert_int_equal (
            svc_http_at (url, "GET", "/api/sessions/reads-gateway", token, NULL, NULL, NULL, &r), 0);
        assert_int_equal (r.status, 200);
        char last[64];
        snprintf (last, sizeof last, "title %d", S_ROUNDS - 1);
        assert_string_equal (svc_json_str (r.json, "session", "title"), last);
        svc_response_free (&r);
    }
    assert_int_equal (s_not_leader_total (url), bounced);
    free (token);
    svc_mesh_stop (&mesh);
}

static int
s_setup (void **state)
{
    *state = svc_cluster_start (S_NODES, NULL);
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
        cmocka_unit_test (test_a_write_reply_carries_its_applied_index),
        cmocka_unit_test (test_a_follower_serves_what_it_has_applied),
        cmocka_unit_test (test_a_gateway_reading_from_any_node_reads_its_writes),
    };
    return cmocka_run_group_tests (tests, s_setup, s_teardown);
}
