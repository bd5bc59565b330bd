/*  test_gw_backend: the backend pool (gw_backend.h) against a fake ROUTER,
    a zactor thread bound on inproc:// that answers each request (after a
    stray reply to another request id), or holds the requests unanswered
    (frozen) until told to answer them late; and, for a store shard of
    several nodes, a follower that names it the leader.                  */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "cm_error.h"
#include "cm_rpc.h"
#include "cm_time.h"
#include "gw_backend.h"

#include <czmq.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

//  Slack for a loaded machine on every upper time bound.
#define S_SLACK_MS 750
#define S_HELD_MAX 8

//  Requests the fake ROUTER has received, awaited by the tests.
static pthread_mutex_t s_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t s_received_cond = PTHREAD_COND_INITIALIZER;
static int s_received;

static void
s_count_received (void)
{
    pthread_mutex_lock (&s_lock);
    s_received++;
    pthread_cond_broadcast (&s_received_cond);
    pthread_mutex_unlock (&s_lock);
}

//  Waits (10 s at most) until the ROUTER has received n requests in all.
static void
s_await_received (int n)
{
    struct timespec deadline;
    clock_gettime (CLOCK_REALTIME, &deadline);
    deadline.tv_sec += 10;
    pthread_mutex_lock (&s_lock);
    int rc = 0;
    while (s_received < n && rc == 0)
        rc = pthread_cond_timedwait (&s_received_cond, &s_lock, &deadline);
    int received = s_received;
    pthread_mutex_unlock (&s_lock);
    assert_true (received >= n);
}

//  The reply to request: OK echoing its "from", or an ERROR when "from" is
//  "fail". request_id NULL: the request's own id. (No cmocka assert on the
//  ROUTER's thread: a failure here shows as a failed call on the test's.)
static void
s_reply (zsock_t *router, zframe_t *identity, const cm_envelope_t *request,
         const char *request_id)
{
    const char *from = cm_map_str_or (request->payload, "from", "");
    cm_envelope_t *reply;
    if (strcmp (from, "fail") == 0)
        reply = cm_envelope_reply_error (request, CM_ENOTFOUND, "no such thing");
    else {
        cm_value_t *ok = cm_map_new ();
        cm_map_set_str (ok, "from", request_id ? "stray" : from);
        reply = cm_envelope_reply_ok (request, ok);
    }
    if (!reply)
        return;
    if (request_id)
        snprintf (reply->request_id, sizeof reply->request_id, "%s", request_id);
    cm_router_reply (router, identity, reply);
    cm_envelope_destroy (&reply);
}

//  The fake ROUTER. Commands on the pipe, each acknowledged with a signal:
//  ANSWER (answer what comes, the default), FREEZE (hold what comes),
//  RELEASE (answer what is held, late).
static void
s_router (zsock_t *pipe, void *args)
{
    zsock_t *router = zsock_new_router ((const char *) args);
    zsock_signal (pipe, router ? 0 : 1);
    if (!router)
        return;
    zpoller_t *poller = zpoller_new (pipe, router, NULL);
    zframe_t *held_ids[S_HELD_MAX];
    cm_envelope_t *held[S_HELD_MAX];
    int held_count = 0;
    bool answer = true;
    while (true) {
        void *which = zpoller_wait (poller, -1);
        if (which == pipe) {
            char *command = zstr_recv (pipe);
            if (!command || strcmp (command, "$TERM") == 0) {
                zstr_free (&command);
                break;
            }
            if (strcmp (command, "ANSWER") == 0)
                answer = true;
            else if (strcmp (command, "FREEZE") == 0)
                answer = false;
            else if (strcmp (command, "RELEASE") == 0) {
                for (int i = 0; i < held_count; i++) {
                    s_reply (router, held_ids[i], held[i], NULL);
                    zframe_destroy (&held_ids[i]);
                    cm_envelope_destroy (&held[i]);
                }
                held_count = 0;
            }
            zstr_free (&command);
            zsock_signal (pipe, 0);
        }
        else if (which == router) {
            zmsg_t *msg = zmsg_recv (router);
            if (!msg)
                break;
            zframe_t *identity = zmsg_pop (msg);
            zframe_t *body = zmsg_pop (msg);
            cm_envelope_t *request = NULL;
            int rc = cm_frame_decode (body, &request);
            zframe_destroy (&body);
            zmsg_destroy (&msg);
            if (rc || (!answer && held_count == S_HELD_MAX)) {
                zframe_destroy (&identity);
                cm_envelope_destroy (&request);
                continue; //  not counted: the test waiting for it fails
            }
            if (answer) {
                s_reply (router, identity, request, "0.0"); //  no call's id
                s_reply (router, identity, request, NULL);
                zframe_destroy (&identity);
                cm_envelope_destroy (&request);
            }
            else {
                held_ids[held_count] = identity;
                held[held_count++] = request;
            }
            s_count_received ();
        }
        else
            break;
    }
    for (int i = 0; i < held_count; i++) {
        zframe_destroy (&held_ids[i]);
        cm_envelope_destroy (&held[i]);
    }
    zpoller_destroy (&poller);
    zsock_destroy (&router);
}

typedef struct {
    char endpoint[64];
    zactor_t *router;
} s_fixture_t;

static int
s_setup (void **state)
{
    static int count;
    static s_fixture_t fixture;
    s_fixture_t *f = &fixture;
    snprintf (f->endpoint, sizeof f->endpoint, "inproc://test-gw-backend-%d", ++count);
    pthread_mutex_lock (&s_lock);
    s_received = 0;
    pthread_mutex_unlock (&s_lock);
    f->router = zactor_new (s_router, f->endpoint);
    if (!f->router)
        return -1;
    *state = f;
    return 0;
}

static int
s_teardown (void **state)
{
    s_fixture_t *f = *state;
    zactor_destroy (&f->router);
    return 0;
}

static void
s_command (s_fixture_t *f, const char *command)
{
    assert_int_equal (zstr_send (f->router, command), 0);
    assert_int_equal (zsock_wait (f->router), 0);
}

static gw_backend_t *
s_pool (const char *endpoint, int sockets, int timeout_ms)
{
    //  A store pool, as the gateway makes it: one endpoint, one node.
    gw_backend_options_t options = {.endpoint = endpoint,
                                    .server = "store",
                                    .sockets = sockets,
                                    .timeout_ms = timeout_ms,
                                    .follow_leader = true};
    gw_backend_t *pool = gw_backend_new (&options);
    assert_non_null (pool);
    return pool;
}

static cm_value_t *
s_ping (const char *from)
{
    cm_value_t *payload = cm_map_new ();
    cm_map_set_str (payload, "from", from);
    return payload;
}

//  One ping from `from`; its code, *took_ms the time it took, *echo (when
//  not NULL) the "from" of its OK reply or "".
static int
s_call (gw_backend_t *pool, const char *from, int64_t *took_ms, char *echo, size_t echo_size)
{
    cm_value_t *ok = NULL, *err = NULL;
    int64_t start = cm_mono_ms ();
    int rc = gw_backend_call (pool, CM_MSG_PING, s_ping (from), &ok, &err);
    *took_ms = cm_mono_ms () - start;
    if (rc == 0) {
        assert_non_null (ok);
        assert_null (err);
    }
    else
        assert_null (ok);
    if (echo)
        snprintf (echo, echo_size, "%s", ok ? cm_map_str_or (ok, "from", "") : "");
    if (rc != CM_ENOTFOUND)
        assert_null (err);
    cm_value_destroy (&ok);
    cm_value_destroy (&err);
    return rc;
}

static void
test_options_out_of_range (void **state)
{
    (void) state;
    gw_backend_options_t options = {.endpoint = "inproc://x", .sockets = 1, .timeout_ms = 1};
    gw_backend_t *pool = gw_backend_new (&options);
    assert_non_null (pool);
    gw_backend_destroy (&pool);
    assert_null (pool);
    gw_backend_destroy (&pool); //  NULL: nothing
    options.sockets = 0;
    assert_null (gw_backend_new (&options));
    options.sockets = 1;
    options.timeout_ms = 0;
    assert_null (gw_backend_new (&options));
    options.timeout_ms = 1;
    options.endpoint = NULL;
    assert_null (gw_backend_new (&options));
}

//  The reply taken is the one with the call's id (the stray one before it
//  is dropped); a backend's ERROR reply is its code, with its payload.
static void
test_reply_matched_to_request_id (void **state)
{
    s_fixture_t *f = *state;
    gw_backend_t *pool = s_pool (f->endpoint, 2, 2000);
    int64_t took;
    char echo[32];
    assert_int_equal (s_call (pool, "a", &took, echo, sizeof echo), 0);
    assert_string_equal (echo, "a");
    assert_int_equal (s_call (pool, "b", &took, echo, sizeof echo), 0);
    assert_string_equal (echo, "b");
    cm_value_t *ok = NULL, *err = NULL;
    assert_int_equal (gw_backend_call (pool, CM_MSG_PING, s_ping ("fail"), &ok, &err),
                      CM_ENOTFOUND);
    assert_null (ok);
    assert_non_null (err);
    assert_string_equal (cm_map_str_or (err, "message", ""), "no such thing");
    cm_value_destroy (&err);
    //  err may be NULL: the code alone.
    assert_int_equal (gw_backend_call (pool, CM_MSG_PING, s_ping ("fail"), &ok, NULL),
                      CM_ENOTFOUND);
    assert_null (ok);
    s_await_received (4);
    gw_backend_destroy (&pool);
}

//  A call that timed out leaves its late reply on the socket; the next call
//  on that socket (the only one) takes its own reply, not that one.
static void
test_late_reply_not_taken_by_next_call (void **state)
{
    s_fixture_t *f = *state;
    gw_backend_t *pool = s_pool (f->endpoint, 1, 300);
    int64_t took;
    char echo[32];
    assert_int_equal (s_call (pool, "1", &took, echo, sizeof echo), 0); //  attached
    s_command (f, "FREEZE");
    assert_int_equal (s_call (pool, "2", &took, echo, sizeof echo), CM_ETIMEOUT);
    s_await_received (2);
    s_command (f, "ANSWER");
    s_command (f, "RELEASE"); //  "2"'s reply, late
    assert_int_equal (s_call (pool, "3", &took, echo, sizeof echo), 0);
    assert_string_equal (echo, "3");
    gw_backend_destroy (&pool);
}

//  A frozen ROUTER: CM_ETIMEOUT after the budget, not before, not much later.
static void
test_frozen_router_times_out_within_budget (void **state)
{
    s_fixture_t *f = *state;
    gw_backend_t *pool = s_pool (f->endpoint, 2, 300);
    int64_t took;
    assert_int_equal (s_call (pool, "warm", &took, NULL, 0), 0);
    s_command (f, "FREEZE");
    assert_int_equal (s_call (pool, "frozen", &took, NULL, 0), CM_ETIMEOUT);
    assert_true (took >= 299);
    assert_true (took <= 300 + S_SLACK_MS);
    s_await_received (2);
    gw_backend_destroy (&pool);
}

typedef struct {
    gw_backend_t *pool;
    int rc;
    int64_t took_ms;
} s_caller_t;

static void *
s_caller (void *arg)
{
    s_caller_t *caller = arg;
    caller->rc = s_call (caller->pool, "first", &caller->took_ms, NULL, 0);
    return NULL;
}

//  One socket, a frozen ROUTER: a second call, begun 1,000 ms after the
//  first took the socket, gets it when the first times out, with 1,000 ms
//  of its budget left: it ends at its own budget, 2,000 ms (3,000 with a
//  fresh one: the gap is wider than the slack).
static void
test_busy_socket_wait_uses_the_same_budget (void **state)
{
    s_fixture_t *f = *state;
    gw_backend_t *pool = s_pool (f->endpoint, 1, 2000);
    int64_t took;
    assert_int_equal (s_call (pool, "warm", &took, NULL, 0), 0);
    s_command (f, "FREEZE");
    s_caller_t first = {.pool = pool};
    pthread_t thread;
    assert_int_equal (pthread_create (&thread, NULL, s_caller, &first), 0);
    s_await_received (2); //  the first call holds the only socket
    usleep (1000 * 1000); //  the load's shape, not a wait for anything
    int rc = s_call (pool, "second", &took, NULL, 0);
    pthread_join (thread, NULL);
    assert_int_equal (first.rc, CM_ETIMEOUT);
    assert_int_equal (rc, CM_ETIMEOUT);
    s_await_received (3); //  the second call did get the socket
    assert_true (took >= 1999);
    assert_true (took <= 2000 + S_SLACK_MS);
    gw_backend_destroy (&pool);
}

//  No ROUTER bound: the socket never attaches, CM_EBACKEND after the
//  connect wait, long before the budget.
static void
test_no_peer_is_backend_unavailable (void **state)
{
    (void) state;
    //  ipc, not inproc: an inproc connect to an unbound name is a pipe at
    //  once, which takes the request and queues it.
    char endpoint[64];
    snprintf (endpoint, sizeof endpoint, "ipc:///tmp/test-gw-backend-nobody-%d", (int) getpid ());
    gw_backend_t *pool = s_pool (endpoint, 1, 5000);
    int64_t took;
    assert_int_equal (s_call (pool, "x", &took, NULL, 0), CM_EBACKEND);
    assert_true (took >= GW_BACKEND_CONNECT_WAIT_MS - 1);
    assert_true (took <= GW_BACKEND_CONNECT_WAIT_MS + S_SLACK_MS);
    gw_backend_destroy (&pool);
}

//  An endpoint no socket can connect to: CM_EBACKEND at once, and the
//  failed socket gives its slot back (the second call does not wait the
//  budget for it). No payload: CM_ENOMEM.
static void
test_bad_endpoint_gives_its_slot_back (void **state)
{
    (void) state;
    gw_backend_t *pool = s_pool ("not-an-endpoint", 1, 5000);
    int64_t took;
    for (int i = 0; i < 2; i++) {
        assert_int_equal (s_call (pool, "x", &took, NULL, 0), CM_EBACKEND);
        assert_true (took <= S_SLACK_MS);
    }
    cm_value_t *ok = NULL, *err = NULL;
    assert_int_equal (gw_backend_call (pool, CM_MSG_PING, NULL, &ok, &err), CM_ENOMEM);
    assert_null (ok);
    assert_null (err);
    gw_backend_destroy (&pool);
}

//  A store follower: answers every request CM_ENOTLEADER, naming the
//  leader given as "bind endpoint|leader endpoint".
static atomic_int s_follower_received;

static void
s_follower (zsock_t *pipe, void *args)
{
    char bind[64], hint[96];
    const char *bar = strchr (args, '|');
    snprintf (bind, sizeof bind, "%.*s", (int) (bar - (const char *) args), (const char *) args);
    snprintf (hint, sizeof hint, "leader is %s", bar + 1);
    zsock_t *router = zsock_new_router (bind);
    zsock_signal (pipe, router ? 0 : 1);
    if (!router)
        return;
    zpoller_t *poller = zpoller_new (pipe, router, NULL);
    while (zpoller_wait (poller, -1) == router) {
        zmsg_t *msg = zmsg_recv (router);
        zframe_t *identity = zmsg_pop (msg);
        cm_envelope_t *request = NULL;
        if (cm_frame_decode (zmsg_last (msg), &request) == 0) {
            cm_envelope_t *reply = cm_envelope_reply_error (request, CM_ENOTLEADER, hint);
            atomic_fetch_add (&s_follower_received, 1);
            cm_router_reply (router, identity, reply);
            cm_envelope_destroy (&reply);
        }
        cm_envelope_destroy (&request);
        zframe_destroy (&identity);
        zmsg_destroy (&msg);
    }
    zpoller_destroy (&poller);
    zsock_destroy (&router);
}

//  A shard of a follower and the leader: the first call is sent twice
//  (the follower names the leader), later ones go straight to the leader.
//  One socket for both nodes: the follower's idle one makes room.
static void
test_store_pool_follows_the_leader_and_remembers_it (void **state)
{
    s_fixture_t *f = *state;
    char args[160], list[160];
    snprintf (args, sizeof args, "%s-follower|%s", f->endpoint, f->endpoint);
    snprintf (list, sizeof list, "%s-follower,%s", f->endpoint, f->endpoint);
    atomic_store (&s_follower_received, 0);
    zactor_t *follower = zactor_new (s_follower, args);
    assert_non_null (follower);
    gw_backend_t *pool = s_pool (list, 1, 2000);
    assert_int_equal (cm_leader_count (gw_backend_leader (pool)), 2);
    int64_t took;
    char echo[32];
    assert_int_equal (s_call (pool, "one", &took, echo, sizeof echo), 0);
    assert_string_equal (echo, "one");
    assert_int_equal (atomic_load (&s_follower_received), 1);
    s_await_received (1);
    assert_int_equal (cm_leader_current (gw_backend_leader (pool)), 1);
    for (int i = 0; i < 3; i++)
        assert_int_equal (s_call (pool, "again", &took, echo, sizeof echo), 0);
    assert_int_equal (atomic_load (&s_follower_received), 1);
    s_await_received (4);
    gw_backend_destroy (&pool);
    zactor_destroy (&follower);
}

//  Without follow_leader (the broadcasters' history) the list is one
//  DEALER, round robin, and a node's answer is the answer.
static void
test_history_pool_is_one_dealer_over_the_list (void **state)
{
    s_fixture_t *f = *state;
    char args[160], list[160];
    snprintf (args, sizeof args, "%s-other|%s", f->endpoint, f->endpoint);
    snprintf (list, sizeof list, "%s,%s-other", f->endpoint, f->endpoint);
    atomic_store (&s_follower_received, 0);
    zactor_t *other = zactor_new (s_follower, args);
    assert_non_null (other);
    gw_backend_options_t options
        = {.endpoint = list, .server = "broadcaster", .sockets = 1, .timeout_ms = 2000};
    gw_backend_t *pool = gw_backend_new (&options);
    assert_non_null (pool);
    assert_null (gw_backend_leader (pool));
    int ok = 0, refused = 0;
    for (int i = 0; i < 4; i++) {
        cm_value_t *reply = NULL, *err = NULL;
        int rc = gw_backend_call (pool, CM_MSG_PING, s_ping ("x"), &reply, &err);
        ok += rc == 0;
        refused += rc == CM_ENOTLEADER && err;
        cm_value_destroy (&reply);
        cm_value_destroy (&err);
    }
    assert_int_equal (ok, 2);
    assert_int_equal (refused, 2);
    gw_backend_destroy (&pool);
    zactor_destroy (&other);
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_options_out_of_range),
        cmocka_unit_test_setup_teardown (test_reply_matched_to_request_id, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_late_reply_not_taken_by_next_call, s_setup,
                                         s_teardown),
        cmocka_unit_test_setup_teardown (test_frozen_router_times_out_within_budget, s_setup,
                                         s_teardown),
        cmocka_unit_test_setup_teardown (test_busy_socket_wait_uses_the_same_budget, s_setup,
                                         s_teardown),
        cmocka_unit_test (test_no_peer_is_backend_unavailable),
        cmocka_unit_test (test_bad_endpoint_gives_its_slot_back),
        cmocka_unit_test_setup_teardown (test_store_pool_follows_the_leader_and_remembers_it,
                                         s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_history_pool_is_one_dealer_over_the_list, s_setup,
                                         s_teardown),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
