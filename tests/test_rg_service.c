/*  test_rg_service: the claim loop and worker pool against a fake store
    ROUTER over ipc:// in a temp dir (and, for a replicated shard, a fake
    follower beside it that names it the leader).                          */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "cm_error.h"
#include "cm_rpc.h"
#include "cm_time.h"
#include "rg_builtin.h"
#include "rg_service.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct {
    char dir[64];
    char endpoint[128];
    zsock_t *router;
    zsock_t *follower; //  NULL, or answers everything "leader is <endpoint>"
    char follower_endpoint[128];
    size_t refused;
    bool task_given;
    size_t claims, progress, events, completes, fails;
    bool last_fail_retryable;
    char worker[129];
} s_fake_t;

static void
s_fake_start (s_fake_t *fake)
{
    memset (fake, 0, sizeof *fake);
    strcpy (fake->dir, "/tmp/test_rg_XXXXXX");
    assert_non_null (mkdtemp (fake->dir));
    snprintf (fake->endpoint, sizeof fake->endpoint, "ipc://%s/store", fake->dir);
    fake->router = zsock_new (ZMQ_ROUTER);
    assert_int_equal (zsock_bind (fake->router, "%s", fake->endpoint), 0);
}

static void
s_fake_stop (s_fake_t *fake)
{
    if (fake->follower) {
        zsock_destroy (&fake->follower);
        char follower[160];
        snprintf (follower, sizeof follower, "%s/follower", fake->dir);
        unlink (follower);
    }
    zsock_destroy (&fake->router);
    char path[160];
    snprintf (path, sizeof path, "%s/store", fake->dir);
    unlink (path);
    rmdir (fake->dir);
}

static cm_value_t *
s_task_map (const char *task_id)
{
    cm_value_t *task = cm_map_new ();
    cm_map_set_str (task, "task_id", task_id);
    cm_map_set_str (task, "kind", "answer");
    cm_map_set_str (task, "message_id", "msg_1_s_assistant");
    cm_map_set_str (task, "session_id", "s");
    cm_map_set_str (task, "user_query", "How do leases keep tasks from getting lost?");
    cm_map_set_int (task, "lease_ms", 3000);
    cm_map_set_int (task, "attempt", 1);
    return task;
}

//  Answers one request if one comes within wait_ms. Claims get the single
//  task once, then nothing (after a short long-poll, as the store would).
static void
s_follower_refuse (s_fake_t *fake)
{
    zmsg_t *msg = zmsg_recv (fake->follower);
    zframe_t *identity = zmsg_pop (msg);
    cm_envelope_t *request = NULL;
    assert_int_equal (cm_frame_decode (zmsg_last (msg), &request), 0);
    char hint[160];
    snprintf (hint, sizeof hint, "leader is %s", fake->endpoint);
    cm_envelope_t *reply = cm_envelope_reply_error (request, CM_ENOTLEADER, hint);
    assert_int_equal (cm_router_reply (fake->follower, identity, reply), 0);
    fake->refused++;
    cm_envelope_destroy (&reply);
    cm_envelope_destroy (&request);
    zframe_destroy (&identity);
    zmsg_destroy (&msg);
}

static void
s_fake_serve (s_fake_t *fake, int wait_ms)
{
    zmq_pollitem_t items[] = {{zsock_resolve (fake->router), 0, ZMQ_POLLIN, 0},
                              {fake->follower ? zsock_resolve (fake->follower) : NULL, 0,
                               ZMQ_POLLIN, 0}};
    if (zmq_poll (items, fake->follower ? 2 : 1, wait_ms) <= 0)
        return;
    if (fake->follower && (items[1].revents & ZMQ_POLLIN))
        s_follower_refuse (fake);
    if (!(items[0].revents & ZMQ_POLLIN))
        return;
    zmsg_t *msg = zmsg_recv (fake->router);
    zframe_t *identity = zmsg_pop (msg);
    cm_envelope_t *request = NULL;
    zframe_t *body = zmsg_pop (msg);
    assert_int_equal (cm_frame_decode (body, &request), 0);
    zframe_destroy (&body);
    zmsg_destroy (&msg);
    cm_value_t *payload = cm_map_new ();
    snprintf (fake->worker, sizeof fake->worker, "%s",
              cm_map_str_or (request->payload, "worker", ""));
    switch (request->type) {
        case CM_MSG_TASK_CLAIM: {
            fake->claims++;
            assert_true (cm_map_int (request->payload, "max", 0) >= 1);
            cm_value_t *tasks = cm_arr_new ();
            if (!fake->task_given) {
                cm_arr_push (tasks, s_task_map ("regen_svc_1"));
                fake->task_given = true;
            }
            else
                zclock_sleep (50);
            cm_map_set (payload, "tasks", tasks);
            break;
        }
        case CM_MSG_TASK_PROGRESS:
            fake->progress++;
            cm_map_set_int (payload, "lease_expires_at", cm_now_ms () + 3000);
            break;
        case CM_MSG_TASK_EVENT:
            fake->events++;
            break;
        case CM_MSG_TASK_COMPLETE:
            fake->completes++;
            break;
        case CM_MSG_TASK_FAIL:
            fake->fails++;
            fake->last_fail_retryable = cm_map_bool (request->payload, "retryable", false);
            cm_map_set_str (payload, "status", "pending");
            break;
        default:
            fail_msg ("unexpected request %s", cm_msg_name (request->type));
    }
    cm_envelope_t *reply = cm_envelope_reply_ok (request, payload);
    assert_int_equal (cm_router_reply (fake->router, identity, reply), 0);
    cm_envelope_destroy (&reply);
    cm_envelope_destroy (&request);
    zframe_destroy (&identity);
}

static void *
s_run (void *arg)
{
    rg_service_run (arg);
    return NULL;
}

static rg_service_t *
s_service (const char *endpoint, int tokens_per_sec)
{
    rg_service_options_t options = {
        .store_endpoint = endpoint,
        .concurrency = 2,
        .claim_wait_ms = 200,
        .call_timeout_ms = 2000,
        .worker = {.thoughts = true, .progress_interval_ms = 50, .task_timeout_ms = 10000},
    };
    rg_backend_t *backend = rg_builtin_new (tokens_per_sec);
    rg_service_t *service = rg_service_new (&options, &backend);
    assert_non_null (service);
    assert_null (backend);
    return service;
}

//  Usage example: claim one task, run it to task_complete, stop.
static void
test_claims_and_completes (void **state)
{
    (void) state;
    s_fake_t fake;
    s_fake_start (&fake);
    rg_service_t *service = s_service (fake.endpoint, 0);
    assert_int_equal (strncmp (rg_service_worker_id (service), "rg-", 3), 0);
    pthread_t thread;
    pthread_create (&thread, NULL, s_run, service);
    int64_t deadline = cm_mono_ms () + 10000;
    while (fake.completes == 0 && cm_mono_ms () < deadline)
        s_fake_serve (&fake, 100);
    assert_int_equal (fake.completes, 1);
    assert_true (fake.events >= 3);   //  thought process
    assert_true (fake.progress >= 1); //  at least the final 100%
    assert_string_equal (fake.worker, rg_service_worker_id (service));
    //  The loop keeps claiming (long-polls), without spinning.
    size_t claims = fake.claims;
    int64_t until = cm_mono_ms () + 300;
    while (cm_mono_ms () < until)
        s_fake_serve (&fake, 50);
    assert_true (fake.claims > claims);
    assert_true (fake.claims - claims < 20);
    rg_service_stop (service);
    pthread_join (thread, NULL);
    assert_int_equal (rg_service_tasks_claimed (service), 1);
    assert_int_equal (rg_service_tasks_completed (service), 1);
    assert_int_equal (fake.fails, 0);
    rg_service_destroy (&service);
    assert_null (service);
    s_fake_stop (&fake);
}

//  Stopping mid-generation hands the task back: task_fail retryable.
static void
test_stop_hands_running_task_back (void **state)
{
    (void) state;
    s_fake_t fake;
    s_fake_start (&fake);
    rg_service_t *service = s_service (fake.endpoint, 20); //  slow
    pthread_t thread;
    pthread_create (&thread, NULL, s_run, service);
    int64_t deadline = cm_mono_ms () + 10000;
    while (fake.events == 0 && cm_mono_ms () < deadline)
        s_fake_serve (&fake, 100);
    assert_true (fake.events >= 1);
    rg_service_stop (service);
    while (fake.fails == 0 && cm_mono_ms () < deadline)
        s_fake_serve (&fake, 100);
    pthread_join (thread, NULL);
    assert_int_equal (fake.fails, 1);
    assert_true (fake.last_fail_retryable);
    assert_int_equal (fake.completes, 0);
    rg_service_destroy (&service);
    s_fake_stop (&fake);
}

//  No store at all: the loop backs off (the naps double from 50 ms, so the
//  fifth failure comes at least 50+100+200+400 ms after the first call; a
//  loop without backoff would fail thousands of times by then) and still
//  stops promptly.
static void
test_store_down_backs_off (void **state)
{
    (void) state;
    char dir[] = "/tmp/test_rg_XXXXXX";
    assert_non_null (mkdtemp (dir));
    char endpoint[128];
    snprintf (endpoint, sizeof endpoint, "ipc://%s/nobody", dir);
    rg_service_t *service = s_service (endpoint, 0);
    pthread_t thread;
    int64_t started = cm_mono_ms ();
    pthread_create (&thread, NULL, s_run, service);
    int64_t deadline = started + 10000;
    while (rg_service_claim_failures (service) < 5 && cm_mono_ms () < deadline)
        zclock_sleep (5);
    assert_true (rg_service_claim_failures (service) >= 5);
    assert_true (cm_mono_ms () - started >= 750);
    assert_true (rg_service_claim_failures (service) < 20);
    int64_t start = cm_mono_ms ();
    rg_service_stop (service);
    pthread_join (thread, NULL);
    assert_true (cm_mono_ms () - start < 3000);
    assert_int_equal (rg_service_tasks_claimed (service), 0);
    rg_service_destroy (&service);
    rmdir (dir);
}

//  A shard of two nodes, the follower listed first: the first claim is
//  refused and names the leader; claims and the task's calls then go
//  there, and the follower is asked only until the leader is known.
static void
test_claims_follow_the_leader (void **state)
{
    (void) state;
    s_fake_t fake;
    s_fake_start (&fake);
    snprintf (fake.follower_endpoint, sizeof fake.follower_endpoint, "ipc://%s/follower",
              fake.dir);
    fake.follower = zsock_new (ZMQ_ROUTER);
    assert_int_equal (zsock_bind (fake.follower, "%s", fake.follower_endpoint), 0);
    char list[300];
    snprintf (list, sizeof list, "%s,%s", fake.follower_endpoint, fake.endpoint);
    rg_service_t *service = s_service (list, 0);
    pthread_t thread;
    pthread_create (&thread, NULL, s_run, service);
    int64_t deadline = cm_mono_ms () + 10000;
    while (fake.completes == 0 && cm_mono_ms () < deadline)
        s_fake_serve (&fake, 100);
    assert_int_equal (fake.completes, 1);
    assert_true (fake.progress >= 1);
    size_t refused = fake.refused;
    assert_true (refused >= 1);
    assert_true (refused <= 3); //  the claim loop's first claim, a worker's first call
    size_t claims = fake.claims;
    int64_t until = cm_mono_ms () + 300;
    while (cm_mono_ms () < until)
        s_fake_serve (&fake, 50);
    assert_true (fake.claims > claims);
    assert_int_equal (fake.refused, refused);
    assert_int_equal (rg_service_claim_failures (service), 0);
    rg_service_stop (service);
    pthread_join (thread, NULL);
    rg_service_destroy (&service);
    s_fake_stop (&fake);
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_claims_and_completes),
        cmocka_unit_test (test_stop_hands_running_task_back),
        cmocka_unit_test (test_store_down_backs_off),
        cmocka_unit_test (test_claims_follow_the_leader),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
