/*  test_cm_leader: the ENOTLEADER hint, the resend rules, and calls
    through cm_leader_link against fake store nodes (ROUTERs on loopback
    in a thread) that lead, name the leader, hold an election, go silent
    or are not there at all.                                             */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "cm_config.h"
#include "cm_error.h"
#include "cm_leader.h"
#include "cm_msg.h"
#include "cm_rpc.h"
#include "cm_time.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

//  ---------------------------------------------------------------------
//  The hint and the rules

static void
test_hint_names_the_leader_or_an_election (void **state)
{
    (void) state;
    char endpoint[CM_ENDPOINT_MAX + 1] = "";
    assert_int_equal (cm_leader_hint_parse ("leader is tcp://10.0.0.2:7001", endpoint,
                                            sizeof endpoint),
                      1);
    assert_string_equal (endpoint, "tcp://10.0.0.2:7001");
    strcpy (endpoint, "untouched");
    assert_int_equal (cm_leader_hint_parse ("leader unknown", endpoint, sizeof endpoint), 0);
    assert_string_equal (endpoint, "untouched");
}

static void
test_hint_garbage_is_refused (void **state)
{
    (void) state;
    char endpoint[CM_ENDPOINT_MAX + 1];
    const char *bad[] = {"",
                         "leader is ",
                         "leader is",
                         "Leader is tcp://a:1",
                         "leader unknown ",
                         "not the leader",
                         "leader is tcp://a:1,tcp://b:1",
                         "leader is tcp://a:1 extra",
                         "leader is tcp://a:1\n"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        if (cm_leader_hint_parse (bad[i], endpoint, sizeof endpoint) != CM_EINVAL)
            fail_msg ("\"%s\" was taken as a hint", bad[i]);
    assert_int_equal (cm_leader_hint_parse (NULL, endpoint, sizeof endpoint), CM_EINVAL);
}

static void
test_hint_too_long_is_refused (void **state)
{
    (void) state;
    char message[sizeof CM_LEADER_IS + CM_ENDPOINT_MAX + 2];
    char endpoint[CM_ENDPOINT_MAX + 1];
    //  Exactly CM_ENDPOINT_MAX bytes fit; one more does not.
    snprintf (message, sizeof message, "%s%0*d", CM_LEADER_IS, CM_ENDPOINT_MAX, 7);
    assert_int_equal (cm_leader_hint_parse (message, endpoint, sizeof endpoint), 1);
    assert_int_equal (strlen (endpoint), CM_ENDPOINT_MAX);
    snprintf (message, sizeof message, "%s%0*d", CM_LEADER_IS, CM_ENDPOINT_MAX + 1, 7);
    assert_int_equal (cm_leader_hint_parse (message, endpoint, sizeof endpoint), CM_EINVAL);
    //  And the caller's buffer bounds it too.
    char small[8];
    assert_int_equal (cm_leader_hint_parse ("leader is tcp://a:1", small, sizeof small),
                      CM_EINVAL);
}

static void
test_list_and_reads_setting (void **state)
{
    (void) state;
    cm_leader_t *leader = cm_leader_new ("tcp://a:1,,tcp://b:1,tcp://c:1", CM_READS_LEADER);
    assert_non_null (leader);
    assert_int_equal (cm_leader_count (leader), 3);
    assert_string_equal (cm_leader_endpoint (leader, 2), "tcp://c:1");
    assert_null (cm_leader_endpoint (leader, 3));
    assert_int_equal (cm_leader_find (leader, "tcp://b:1"), 1);
    assert_int_equal (cm_leader_find (leader, "tcp://d:1"), -1);
    assert_int_equal (cm_leader_current (leader), 0);
    cm_leader_destroy (&leader);
    assert_null (leader);
    assert_null (cm_leader_new ("", CM_READS_LEADER));
    assert_null (cm_leader_new (",", CM_READS_LEADER));
    assert_null (cm_leader_new ("tcp://a:1,tcp://a:1", CM_READS_LEADER));
    char many[512] = "";
    for (int i = 0; i <= CM_LEADER_ENDPOINTS_MAX; i++)
        snprintf (many + strlen (many), sizeof many - strlen (many), "%stcp://n%d:1",
                  i ? "," : "", i);
    assert_null (cm_leader_new (many, CM_READS_LEADER));
    char why_many[128];
    assert_int_equal (cm_leader_check (many, why_many, sizeof why_many), CM_EINVAL);
    assert_non_null (strstr (why_many, "more than"));
    *strrchr (many, ',') = '\0'; //  CM_LEADER_ENDPOINTS_MAX of them
    leader = cm_leader_new (many, CM_READS_LEADER);
    assert_non_null (leader);
    cm_leader_destroy (&leader);

    char why[128] = "";
    assert_int_equal (cm_leader_check ("tcp://a:1,tcp://b:1,tcp://a:1", why, sizeof why),
                      CM_EINVAL);
    assert_string_equal (why, "node tcp://a:1 is listed twice");
    assert_int_equal (cm_leader_check (",,", why, sizeof why), CM_EINVAL);
    assert_string_equal (why, "no store endpoint");
    assert_int_equal (cm_leader_check ("tcp://a:1", why, sizeof why), 0);

    cm_reads_t reads;
    assert_int_equal (cm_reads_parse ("any", &reads), 0);
    assert_int_equal (reads, CM_READS_ANY);
    assert_int_equal (cm_reads_parse ("leader", &reads), 0);
    assert_int_equal (reads, CM_READS_LEADER);
    assert_int_equal (cm_reads_parse ("Any", &reads), CM_EINVAL);
    assert_int_equal (cm_reads_parse (NULL, &reads), CM_EINVAL);
}

static void
test_which_requests_are_resent_after_a_timeout (void **state)
{
    (void) state;
    cm_value_t *plain = cm_map_new ();
    cm_value_t *keyed = cm_map_new ();
    cm_map_set_str (keyed, "idem_key", "k-1");
    assert_true (cm_leader_resendable (CM_MSG_SESSION_GET, plain));
    assert_true (cm_leader_resendable (CM_MSG_EVENTS_AFTER, plain));
    assert_true (cm_leader_resendable (CM_MSG_PING, plain));
    assert_false (cm_leader_resendable (CM_MSG_SESSION_START, plain));
    assert_true (cm_leader_resendable (CM_MSG_SESSION_START, keyed));
    assert_false (cm_leader_resendable (CM_MSG_FEEDBACK_PUT, plain));
    assert_true (cm_leader_resendable (CM_MSG_FEEDBACK_PUT, keyed));
    assert_false (cm_leader_resendable (CM_MSG_RATE_CONSUME, keyed));
    assert_true (cm_leader_resendable (CM_MSG_TASK_CLAIM, plain));
    assert_true (cm_leader_resendable (CM_MSG_TASK_COMPLETE, plain));
    assert_true (cm_leader_resendable (CM_MSG_TASK_FAIL, plain));
    assert_true (cm_leader_resendable (CM_MSG_TASK_PROGRESS, plain));
    assert_false (cm_leader_resendable (CM_MSG_TASK_EVENT, plain));
    cm_map_set_str (keyed, "idem_key", "");
    assert_false (cm_leader_resendable (CM_MSG_SESSION_START, keyed));
    cm_value_destroy (&plain);
    cm_value_destroy (&keyed);
}

//  ---------------------------------------------------------------------
//  Fake store nodes

typedef enum {
    NODE_LEADER,  //  answers OK (writes with applied_index 7)
    NODE_HINT,    //  ENOTLEADER naming node `points_to`
    NODE_OUTSIDE, //  ENOTLEADER naming an endpoint not in the list
    NODE_UNKNOWN, //  ENOTLEADER "leader unknown"
    NODE_SILENT   //  takes the request, never answers
} s_mode_t;

#define NODES 3
#define DEAD_ENDPOINT "tcp://127.0.0.1:1"

typedef struct {
    zsock_t *routers[NODES];
    char endpoints[NODES][64];
    atomic_int modes[NODES]; //  s_mode_t, changed while the nodes run
    atomic_int points_to[NODES];
    atomic_int received[NODES];
    atomic_llong min_index[NODES]; //  of the last request, -1 when none
    atomic_bool die[NODES]; //  the node's ROUTER is closed (a kill -9)
    atomic_bool dead[NODES];
    atomic_bool stop;
    pthread_t thread;
} s_cluster_t;

static void
s_answer (s_cluster_t *c, int node, zmsg_t *msg)
{
    zframe_t *identity = zmsg_pop (msg);
    zframe_t *body = zmsg_pop (msg);
    cm_envelope_t *request = NULL;
    if (cm_frame_decode (body, &request) == 0) {
        atomic_fetch_add (&c->received[node], 1);
        atomic_store (&c->min_index[node], cm_map_int (request->payload, CM_LEADER_MIN_FIELD, -1));
        cm_envelope_t *reply = NULL;
        char message[128];
        switch ((s_mode_t) atomic_load (&c->modes[node])) {
        case NODE_LEADER:
            reply = cm_envelope_reply_ok (request, cm_map_new ());
            if (cm_msg_access (request->type) == CM_ACCESS_WRITE)
                cm_map_set_int (reply->payload, CM_LEADER_APPLIED_FIELD, 7);
            break;
        case NODE_HINT:
            snprintf (message, sizeof message, "leader is %s", c->endpoints[c->points_to[node]]);
            reply = cm_envelope_reply_error (request, CM_ENOTLEADER, message);
            break;
        case NODE_OUTSIDE:
            reply = cm_envelope_reply_error (request, CM_ENOTLEADER, "leader is tcp://10.9.9.9:1");
            break;
        case NODE_UNKNOWN:
            reply = cm_envelope_reply_error (request, CM_ENOTLEADER, CM_LEADER_UNKNOWN);
            break;
        case NODE_SILENT:
            break;
        }
        if (reply)
            cm_router_reply (c->routers[node], identity, reply);
        cm_envelope_destroy (&reply);
    }
    cm_envelope_destroy (&request);
    zframe_destroy (&identity);
    zframe_destroy (&body);
}

static void *
s_cluster_run (void *arg)
{
    s_cluster_t *c = arg;
    while (!atomic_load (&c->stop)) {
        zmq_pollitem_t items[NODES];
        int which[NODES], count = 0;
        for (int i = 0; i < NODES; i++) {
            if (atomic_load (&c->die[i]) && c->routers[i]) {
                zsock_destroy (&c->routers[i]);
                atomic_store (&c->dead[i], true);
            }
            if (c->routers[i]) {
                which[count] = i;
                items[count++] = (zmq_pollitem_t) {zsock_resolve (c->routers[i]), 0, ZMQ_POLLIN, 0};
            }
        }
        if (zmq_poll (items, count, 10) <= 0)
            continue;
        for (int k = 0; k < count; k++)
            if (items[k].revents & ZMQ_POLLIN) {
                zmsg_t *msg = zmsg_recv (c->routers[which[k]]);
                if (msg)
                    s_answer (c, which[k], msg);
                zmsg_destroy (&msg);
            }
    }
    return NULL;
}

static s_cluster_t *
s_cluster_start (s_mode_t a, s_mode_t b, s_mode_t c_mode)
{
    s_cluster_t *c = calloc (1, sizeof *c);
    s_mode_t modes[NODES] = {a, b, c_mode};
    for (int i = 0; i < NODES; i++) {
        c->routers[i] = zsock_new (ZMQ_ROUTER);
        int port = zsock_bind (c->routers[i], "tcp://127.0.0.1:*");
        assert_true (port > 0);
        snprintf (c->endpoints[i], sizeof c->endpoints[i], "tcp://127.0.0.1:%d", port);
        c->modes[i] = modes[i];
        atomic_store (&c->min_index[i], -1);
    }
    assert_int_equal (pthread_create (&c->thread, NULL, s_cluster_run, c), 0);
    return c;
}

static void
s_cluster_stop (s_cluster_t **c_p)
{
    s_cluster_t *c = *c_p;
    atomic_store (&c->stop, true);
    pthread_join (c->thread, NULL);
    for (int i = 0; i < NODES; i++)
        zsock_destroy (&c->routers[i]);
    free (c);
    *c_p = NULL;
}

//  The list "node a,node b,..." of the given node indexes (-1: a dead one).
static cm_leader_t *
s_leader (s_cluster_t *c, cm_reads_t reads, int first, int second, int third)
{
    int order[] = {first, second, third};
    char list[256] = "";
    for (int i = 0; i < 3; i++) {
        if (order[i] == -2)
            continue;
        const char *endpoint = order[i] == -1 ? DEAD_ENDPOINT : c->endpoints[order[i]];
        snprintf (list + strlen (list), sizeof list - strlen (list), "%s%s", *list ? "," : "",
                  endpoint);
    }
    cm_leader_t *leader = cm_leader_new (list, reads);
    assert_non_null (leader);
    return leader;
}

static int
s_call (cm_leader_link_t *link, cm_msg_t type, const char *idem_key, int timeout_ms,
        int attempt_ms)
{
    cm_envelope_t *request = cm_envelope_new (type, NULL);
    cm_request_id (request->request_id, sizeof request->request_id);
    //  The nodes decode what they get: fill the type's required fields.
    size_t count;
    const cm_field_t *fields = cm_msg_schema (type, &count);
    for (size_t i = 0; i < count; i++)
        if (fields[i].required && fields[i].type == CM_T_STR)
            cm_map_set_str (request->payload, fields[i].name, "x");
        else if (fields[i].required && fields[i].type == CM_T_INT)
            cm_map_set_int (request->payload, fields[i].name, 1);
        else if (fields[i].required && fields[i].type == CM_T_MAP)
            cm_map_set (request->payload, fields[i].name, cm_map_new ());
    if (idem_key)
        cm_map_set_str (request->payload, "idem_key", idem_key);
    cm_envelope_t *reply = NULL;
    int rc = cm_leader_link_call (link, request, timeout_ms, attempt_ms, &reply);
    if (rc == 0) {
        assert_int_equal (reply->type, CM_MSG_OK);
        //  The index is cm_leader's: it never reaches the caller's client.
        assert_null (cm_map_get (reply->payload, CM_LEADER_APPLIED_FIELD));
    }
    cm_envelope_destroy (&reply);
    cm_envelope_destroy (&request);
    return rc;
}

static int
s_received (s_cluster_t *c, int node)
{
    return atomic_load (&c->received[node]);
}

//  ---------------------------------------------------------------------
//  Calls

static void
test_a_follower_hint_reaches_the_leader_and_is_remembered (void **state)
{
    (void) state;
    s_cluster_t *c = s_cluster_start (NODE_HINT, NODE_HINT, NODE_LEADER);
    c->points_to[0] = c->points_to[1] = 2;
    cm_leader_t *leader = s_leader (c, CM_READS_LEADER, 0, 1, 2);
    cm_leader_link_t *link = cm_leader_link_new (leader, NULL, NULL);
    assert_int_equal (s_call (link, CM_MSG_SESSION_RENAME, NULL, 2000, 0), 0);
    assert_int_equal (s_received (c, 0), 1);
    assert_int_equal (s_received (c, 1), 0);
    assert_int_equal (s_received (c, 2), 1);
    assert_int_equal (cm_leader_current (leader), 2);
    assert_int_equal (cm_leader_applied (leader), 7);
    //  The second call goes straight to the leader; so do reads.
    assert_int_equal (s_call (link, CM_MSG_SESSION_RENAME, NULL, 2000, 0), 0);
    assert_int_equal (s_call (link, CM_MSG_SESSION_GET, NULL, 2000, 0), 0);
    assert_int_equal (s_received (c, 0), 1);
    assert_int_equal (s_received (c, 2), 3);
    assert_int_equal (atomic_load (&c->min_index[2]), -1); //  reads=leader sends none
    cm_leader_link_destroy (&link);
    cm_leader_destroy (&leader);
    s_cluster_stop (&c);
}

static void
test_an_election_and_a_foreign_hint_move_on_to_the_next_node (void **state)
{
    (void) state;
    s_cluster_t *c = s_cluster_start (NODE_UNKNOWN, NODE_OUTSIDE, NODE_LEADER);
    cm_leader_t *leader = s_leader (c, CM_READS_LEADER, 0, 1, 2);
    cm_leader_link_t *link = cm_leader_link_new (leader, NULL, NULL);
    int64_t start = cm_mono_ms ();
    assert_int_equal (s_call (link, CM_MSG_SESSION_START, NULL, 2000, 0), 0);
    //  The election costs its pause, not the budget.
    assert_true (cm_mono_ms () - start >= CM_LEADER_ELECTION_WAIT_MS);
    assert_true (cm_mono_ms () - start < 1000);
    assert_int_equal (s_received (c, 0), 1);
    assert_int_equal (s_received (c, 1), 1);
    assert_int_equal (s_received (c, 2), 1);
    assert_int_equal (cm_leader_current (leader), 2);
    cm_leader_link_destroy (&link);
    cm_leader_destroy (&leader);
    s_cluster_stop (&c);
}

static void
test_no_leader_anywhere_is_a_bounded_backend_failure (void **state)
{
    (void) state;
    //  Two nodes naming each other (a stale view): the sends are bounded.
    s_cluster_t *c = s_cluster_start (NODE_HINT, NODE_HINT, NODE_UNKNOWN);
    c->points_to[0] = 1;
    c->points_to[1] = 0;
    cm_leader_t *leader = s_leader (c, CM_READS_LEADER, 0, 1, -2);
    cm_leader_link_t *link = cm_leader_link_new (leader, NULL, NULL);
    assert_int_equal (s_call (link, CM_MSG_SESSION_RENAME, NULL, 2000, 0), CM_EBACKEND);
    assert_int_equal (s_received (c, 0) + s_received (c, 1), CM_LEADER_ATTEMPTS (2));
    cm_leader_link_destroy (&link);
    cm_leader_destroy (&leader);
    //  Every node in an election: bounded too, and within the budget.
    leader = s_leader (c, CM_READS_LEADER, 2, -2, -2);
    link = cm_leader_link_new (leader, NULL, NULL);
    int64_t start = cm_mono_ms ();
    assert_int_equal (s_call (link, CM_MSG_SESSION_RENAME, NULL, 2000, 0), CM_EBACKEND);
    assert_int_equal (s_received (c, 2), CM_LEADER_ATTEMPTS (1));
    assert_true (cm_mono_ms () - start < 2000);
    cm_leader_link_destroy (&link);
    cm_leader_destroy (&leader);
    s_cluster_stop (&c);
}

static void
test_a_write_without_a_key_is_not_resent_after_a_timeout (void **state)
{
    (void) state;
    s_cluster_t *c = s_cluster_start (NODE_SILENT, NODE_LEADER, NODE_LEADER);
    cm_leader_t *leader = s_leader (c, CM_READS_LEADER, 0, 1, 2);
    cm_leader_link_t *link = cm_leader_link_new (leader, NULL, NULL);
    assert_int_equal (s_call (link, CM_MSG_SESSION_RENAME, NULL, 1000, 300), CM_ETIMEOUT);
    assert_int_equal (s_received (c, 0), 1);
    assert_int_equal (s_received (c, 1), 0);
    assert_int_equal (s_received (c, 2), 0);
    cm_leader_link_destroy (&link);
    cm_leader_destroy (&leader);
    //  rate_consume and task_event are never resent, keyed or not.
    cm_msg_t never[] = {CM_MSG_RATE_CONSUME, CM_MSG_TASK_EVENT};
    for (int i = 0; i < 2; i++) {
        leader = s_leader (c, CM_READS_LEADER, 0, 1, -2);
        link = cm_leader_link_new (leader, NULL, NULL);
        assert_int_equal (s_call (link, never[i], "key-2", 600, 200), CM_ETIMEOUT);
        assert_int_equal (s_received (c, 0), 2 + i);
        assert_int_equal (s_received (c, 1), 0);
        cm_leader_link_destroy (&link);
        cm_leader_destroy (&leader);
    }
    s_cluster_stop (&c);
}

static void
test_reads_and_keyed_writes_are_resent_after_a_timeout (void **state)
{
    (void) state;
    s_cluster_t *c = s_cluster_start (NODE_SILENT, NODE_LEADER, NODE_LEADER);
    cm_leader_t *leader = s_leader (c, CM_READS_LEADER, 0, 1, 2);
    cm_leader_link_t *link = cm_leader_link_new (leader, NULL, NULL);
    //  A read: the silent node costs the attempt cap, then node 1 answers.
    int64_t start = cm_mono_ms ();
    assert_int_equal (s_call (link, CM_MSG_SESSION_GET, NULL, 2000, 300), 0);
    assert_true (cm_mono_ms () - start < 1000);
    assert_int_equal (s_received (c, 0), 1);
    assert_int_equal (s_received (c, 1), 1);
    assert_int_equal (cm_leader_current (leader), 1);
    cm_leader_link_destroy (&link);
    cm_leader_destroy (&leader);
    //  A write with an idempotency key, starting at the silent node.
    leader = s_leader (c, CM_READS_LEADER, 0, 2, -2);
    link = cm_leader_link_new (leader, NULL, NULL);
    assert_int_equal (s_call (link, CM_MSG_SESSION_RENAME, "key-1", 2000, 300), 0);
    assert_int_equal (s_received (c, 0), 2);
    assert_int_equal (s_received (c, 2), 1);
    cm_leader_link_destroy (&link);
    cm_leader_destroy (&leader);
    s_cluster_stop (&c);
}

static void
test_a_dead_node_is_passed_for_any_request (void **state)
{
    (void) state;
    s_cluster_t *c = s_cluster_start (NODE_LEADER, NODE_LEADER, NODE_LEADER);
    cm_leader_t *leader = s_leader (c, CM_READS_LEADER, -1, 0, -2);
    cm_leader_link_t *link = cm_leader_link_new (leader, NULL, NULL);
    //  Nothing could be sent to the dead one, so even a keyless write moves on.
    assert_int_equal (s_call (link, CM_MSG_SESSION_RENAME, NULL, 2000, 0), 0);
    assert_int_equal (s_received (c, 0), 1);
    assert_int_equal (cm_leader_current (leader), 1);
    cm_leader_link_destroy (&link);
    cm_leader_destroy (&leader);
    //  One dead endpoint alone: one try, CM_EBACKEND, as before.
    leader = s_leader (c, CM_READS_LEADER, -1, -2, -2);
    link = cm_leader_link_new (leader, NULL, NULL);
    assert_int_equal (s_call (link, CM_MSG_SESSION_GET, NULL, 2000, 0), CM_EBACKEND);
    cm_leader_link_destroy (&link);
    cm_leader_destroy (&leader);
    s_cluster_stop (&c);
}

static void
test_a_single_silent_endpoint_is_one_send (void **state)
{
    (void) state;
    s_cluster_t *c = s_cluster_start (NODE_SILENT, NODE_LEADER, NODE_LEADER);
    cm_leader_t *leader = s_leader (c, CM_READS_LEADER, 0, -2, -2);
    cm_leader_link_t *link = cm_leader_link_new (leader, NULL, NULL);
    assert_int_equal (s_call (link, CM_MSG_SESSION_GET, NULL, 300, 100), CM_ETIMEOUT);
    assert_int_equal (s_received (c, 0), 1);
    cm_leader_link_destroy (&link);
    cm_leader_destroy (&leader);
    s_cluster_stop (&c);
}

static void
test_reads_any_carry_the_last_applied_index (void **state)
{
    (void) state;
    s_cluster_t *c = s_cluster_start (NODE_LEADER, NODE_LEADER, NODE_LEADER);
    cm_leader_t *leader = s_leader (c, CM_READS_ANY, 0, 1, 2);
    cm_leader_link_t *link = cm_leader_link_new (leader, NULL, NULL);
    //  Before any write: reads spread over the nodes with min_index 0 (a
    //  follower refuses a read without one: the leader's only).
    for (int i = 0; i < NODES; i++)
        assert_int_equal (s_call (link, CM_MSG_SESSION_GET, NULL, 2000, 0), 0);
    for (int i = 0; i < NODES; i++) {
        assert_int_equal (s_received (c, i), 1);
        assert_int_equal (atomic_load (&c->min_index[i]), 0);
    }
    assert_int_equal (s_call (link, CM_MSG_SESSION_RENAME, NULL, 2000, 0), 0);
    assert_int_equal (cm_leader_applied (leader), 7);
    for (int i = 0; i < NODES; i++)
        assert_int_equal (s_call (link, CM_MSG_SESSION_GET, NULL, 2000, 0), 0);
    for (int i = 0; i < NODES; i++)
        assert_int_equal (atomic_load (&c->min_index[i]), 7);
    //  A node behind the index refuses, naming the leader: the read goes there.
    c->modes[1] = NODE_HINT;
    c->points_to[1] = 0;
    int before = s_received (c, 0);
    for (int i = 0; i < NODES; i++)
        assert_int_equal (s_call (link, CM_MSG_SESSION_GET, NULL, 2000, 0), 0);
    assert_int_equal (s_received (c, 0), before + 2);
    cm_leader_link_destroy (&link);
    cm_leader_destroy (&leader);
    s_cluster_stop (&c);
}

//  A sender that fails on its own (no socket free): the call ends with
//  its code after one send, and the remembered leader stays.
static int
s_busy_send (void *arg, int index, const cm_envelope_t *request, int timeout_ms,
             cm_envelope_t **reply)
{
    (void) index, (void) request, (void) timeout_ms, (void) reply;
    (*(int *) arg)++;
    return CM_EFULL;
}

static void
test_the_senders_own_failure_ends_the_call (void **state)
{
    (void) state;
    cm_leader_t *leader = cm_leader_new ("tcp://a:1,tcp://b:1,tcp://c:1", CM_READS_LEADER);
    cm_envelope_t *request = cm_envelope_new (CM_MSG_SESSION_GET, "1.1");
    cm_envelope_t *reply = NULL;
    int sends = 0, counted = 0;
    assert_int_equal (cm_leader_call (leader, s_busy_send, &counted, request, 1000, 0, &reply,
                                      &sends),
                      CM_EFULL);
    assert_null (reply);
    assert_int_equal (sends, 1);
    assert_int_equal (counted, 1);
    assert_int_equal (cm_leader_current (leader), 0);
    cm_envelope_destroy (&request);
    cm_leader_destroy (&leader);
}

//  CM_READS_ANY leaves a node that could not be reached out of the round
//  robin for a while: later reads do not each pay its connect wait.
static void
test_reads_any_pass_a_dead_node_by (void **state)
{
    (void) state;
    s_cluster_t *c = s_cluster_start (NODE_LEADER, NODE_LEADER, NODE_LEADER);
    cm_leader_t *leader = s_leader (c, CM_READS_ANY, -1, 0, 1);
    cm_leader_link_t *link = cm_leader_link_new (leader, NULL, NULL);
    //  The first read finds it dead (the connect wait), then goes on.
    assert_int_equal (s_call (link, CM_MSG_SESSION_GET, NULL, 2000, 0), 0);
    //  Six reads, none of them waiting on the dead node (which takes the
    //  connect wait).
    for (int i = 0; i < 6; i++) {
        int64_t start = cm_mono_ms ();
        assert_int_equal (s_call (link, CM_MSG_SESSION_GET, NULL, 2000, 0), 0);
        assert_true (cm_mono_ms () - start < CM_LEADER_CONNECT_WAIT_MS);
    }
    assert_int_equal (s_received (c, 0) + s_received (c, 1), 7);
    cm_leader_link_destroy (&link);
    cm_leader_destroy (&leader);
    s_cluster_stop (&c);
}

//  The leader dies between two calls (its ROUTER closed, as by kill -9):
//  a read moves on to the next node; the next write goes straight there.
static void
test_a_leader_that_dies_is_passed_by (void **state)
{
    (void) state;
    s_cluster_t *c = s_cluster_start (NODE_LEADER, NODE_LEADER, NODE_HINT);
    c->points_to[2] = 1;
    cm_leader_t *leader = s_leader (c, CM_READS_LEADER, 0, 1, 2);
    cm_leader_link_t *link = cm_leader_link_new (leader, NULL, NULL);
    assert_int_equal (s_call (link, CM_MSG_SESSION_RENAME, NULL, 2000, 0), 0);
    assert_int_equal (s_received (c, 0), 1);
    atomic_store (&c->die[0], true);
    for (int i = 0; i < 500 && !atomic_load (&c->dead[0]); i++)
        zclock_sleep (2);
    assert_true (atomic_load (&c->dead[0]));
    assert_int_equal (s_call (link, CM_MSG_SESSION_GET, NULL, 2000, 500), 0);
    assert_int_equal (s_received (c, 1), 1);
    assert_int_equal (cm_leader_current (leader), 1);
    assert_int_equal (s_call (link, CM_MSG_SESSION_RENAME, NULL, 2000, 0), 0);
    assert_int_equal (s_received (c, 1), 2);
    assert_int_equal (s_received (c, 0), 1);
    cm_leader_link_destroy (&link);
    cm_leader_destroy (&leader);
    s_cluster_stop (&c);
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_hint_names_the_leader_or_an_election),
        cmocka_unit_test (test_hint_garbage_is_refused),
        cmocka_unit_test (test_hint_too_long_is_refused),
        cmocka_unit_test (test_list_and_reads_setting),
        cmocka_unit_test (test_which_requests_are_resent_after_a_timeout),
        cmocka_unit_test (test_a_follower_hint_reaches_the_leader_and_is_remembered),
        cmocka_unit_test (test_an_election_and_a_foreign_hint_move_on_to_the_next_node),
        cmocka_unit_test (test_no_leader_anywhere_is_a_bounded_backend_failure),
        cmocka_unit_test (test_a_write_without_a_key_is_not_resent_after_a_timeout),
        cmocka_unit_test (test_reads_and_keyed_writes_are_resent_after_a_timeout),
        cmocka_unit_test (test_a_dead_node_is_passed_for_any_request),
        cmocka_unit_test (test_a_single_silent_endpoint_is_one_send),
        cmocka_unit_test (test_reads_any_carry_the_last_applied_index),
        cmocka_unit_test (test_the_senders_own_failure_ends_the_call),
        cmocka_unit_test (test_reads_any_pass_a_dead_node_by),
        cmocka_unit_test (test_a_leader_that_dies_is_passed_by),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
