/*  test_st_server.c: the real store threads and sockets over ipc:// in a
    temp dir: group commit, reply after commit, events pushed in order,
    task_claim long-poll, malformed input answered with CM_EPROTO.        */
#include "test_st_util.h"

#include "cm_rpc.h"
#include "st_server.h"

#include <czmq.h>
#include <pthread.h>

typedef struct {
    char dir[128];
    st_server_t *server;
    pthread_t thread;
    zsock_t *client;
    zsock_t *events;
    char endpoint[256];
} s_env_t;

static void *
s_run (void *arg)
{
    st_server_run (arg);
    return NULL;
}

static int
s_setup (void **state)
{
    s_env_t *env = calloc (1, sizeof *env);
    snprintf (env->dir, sizeof env->dir, "/tmp/st_server_XXXXXX");
    assert_non_null (mkdtemp (env->dir));
    char events_endpoint[256];
    snprintf (env->endpoint, sizeof env->endpoint, "ipc://%s/store", env->dir);
    snprintf (events_endpoint, sizeof events_endpoint, "ipc://%s/events", env->dir);
    env->events = zsock_new_pull (events_endpoint); //  binds, like the broadcaster
    assert_non_null (env->events);
    st_server_config_t config = {.endpoint = env->endpoint,
                                 .events_endpoint = events_endpoint,
                                 .dir = env->dir,
                                 .map_bytes = 1 << 20,
                                 .sync = true,
                                 .readers = 2,
                                 .cleanup_interval_ms = 0,
                                 .ops = {.lease_ms = 10000, .max_attempts = 3,
                                         .retention_ms = 86400000, .worker_live_ms = 30000}};
    env->server = st_server_new (&config);
    assert_non_null (env->server);
    assert_int_equal (pthread_create (&env->thread, NULL, s_run, env->server), 0);
    env->client = cm_dealer_new (env->endpoint);
    assert_non_null (env->client);
    *state = env;
    return 0;
}

static int
s_teardown (void **state)
{
    s_env_t *env = *state;
    zsock_destroy (&env->client);
    if (env->server) {
        st_server_stop (env->server);
        pthread_join (env->thread, NULL);
        st_server_destroy (&env->server);
    }
    zsock_destroy (&env->events);
    st_rmtree (env->dir);
    free (env);
    return 0;
}

static int
s_call (zsock_t *client, cm_envelope_t *request, cm_envelope_t **reply)
{
    cm_request_id (request->request_id, sizeof request->request_id);
    //  The DEALER connects in the background (ZMQ_IMMEDIATE): retry until up.
    int rc = CM_EBACKEND;
    for (int i = 0; i < 200 && rc == CM_EBACKEND; i++) {
        rc = cm_call (client, request, 20000, reply);
        if (rc == CM_EBACKEND)
            zclock_sleep (10);
    }
    cm_envelope_destroy (&request);
    return rc;
}

//  Next event pushed by the store: its name into name, data returned.
static cm_envelope_t *
s_next_event (s_env_t *env, char *session_id)
{
    zpoller_t *poller = zpoller_new (env->events, NULL);
    void *which = zpoller_wait (poller, 20000);
    zpoller_destroy (&poller);
    if (!which)
        return NULL;
    zmsg_t *msg = zmsg_recv (env->events);
    assert_int_equal (zmsg_size (msg), 2);
    char *topic = zmsg_popstr (msg);
    strcpy (session_id, topic);
    zstr_free (&topic);
    zframe_t *body = zmsg_pop (msg);
    cm_envelope_t *event = NULL;
    assert_int_equal (cm_frame_decode (body, &event), 0);
    assert_int_equal (event->type, CM_MSG_EVENT);
    zframe_destroy (&body);
    zmsg_destroy (&msg);
    return event;
}

static void
s_expect_event (s_env_t *env, const char *session, const char *name)
{
    char topic[256];
    cm_envelope_t *event = s_next_event (env, topic);
    assert_non_null (event);
    assert_string_equal (topic, session);
    assert_string_equal (cm_map_str_or (event->payload, "event", ""), name);
    const cm_value_t *data = cm_map_get (event->payload, "data");
    assert_string_equal (cm_map_str_or (data, "sessionId", ""), session);
    char why[128] = "";
    if (cm_event_validate (cm_event_from_name (name, strlen (name)), data, why, sizeof why))
        fail_msg ("event %s: %s", name, why);
    cm_envelope_destroy (&event);
}

//  A new connection that sends a task_claim long-poll as `worker` (not
//  cm_call: the answer is awaited by the test). Returns the connection.
static zsock_t *
s_long_poll (s_env_t *env, const char *worker_id, int64_t wait_ms, const char *request_id)
{
    zsock_t *worker = cm_dealer_new (env->endpoint);
    assert_non_null (worker);
    cm_envelope_t *claim = st_req (CM_MSG_TASK_CLAIM, NULL);
    cm_map_set_str (claim->payload, "worker", worker_id);
    cm_map_set_int (claim->payload, "wait_ms", wait_ms);
    snprintf (claim->request_id, sizeof claim->request_id, "%s", request_id);
    zframe_t *frame = NULL;
    assert_int_equal (cm_frame_encode (claim, &frame), 0);
    cm_envelope_destroy (&claim);
    //  Give the connection time to come up (ZMQ_IMMEDIATE drops otherwise).
    while (zframe_send (&frame, worker, ZFRAME_DONTWAIT | ZFRAME_REUSE))
        zclock_sleep (5);
    zframe_destroy (&frame);
    return worker;
}

static void
test_slice (void **state)
{
    s_env_t *env = *state;
    cm_envelope_t *reply = NULL;
    assert_int_equal (s_call (env->client, st_req (CM_MSG_PING, NULL), &reply), 0);
    assert_string_equal (cm_map_str_or (reply->payload, "service", ""), "store");
    cm_envelope_destroy (&reply);

    //  A regenerator long-polls before any task exists...
    zsock_t *worker = s_long_poll (env, "w1", 10000, "claim-1");

    //  ...and is answered right after the commit that creates one.
    cm_envelope_t *start = st_req (CM_MSG_SESSION_START, "alice");
    cm_map_set_str (start->payload, "session_id", "s_1");
    cm_map_set_str (start->payload, "query", "why is the sky blue?");
    assert_int_equal (s_call (env->client, start, &reply), 0);
    const cm_value_t *data = cm_map_get (reply->payload, "data");
    char task_id[128], assistant[400];
    strcpy (task_id, cm_map_str_or (data, "task_id", ""));
    strcpy (assistant, cm_map_str_or (data, "assistant_message_id", ""));
    assert_string_equal (cm_map_str_or (data, "session_id", ""), "s_1");
    cm_envelope_destroy (&reply);
    s_expect_event (env, "s_1", "session_updated");

    zpoller_t *poller = zpoller_new (worker, NULL);
    assert_non_null (zpoller_wait (poller, 20000));
    zpoller_destroy (&poller);
    zframe_t *answer = zframe_recv (worker);
    cm_envelope_t *claimed = NULL;
    assert_int_equal (cm_frame_decode (answer, &claimed), 0);
    zframe_destroy (&answer);
    assert_string_equal (claimed->request_id, "claim-1");
    const cm_value_t *tasks = cm_map_get (claimed->payload, "tasks");
    assert_int_equal (cm_value_len (tasks), 1);
    const cm_value_t *task = cm_arr_at (tasks, 0);
    assert_string_equal (cm_map_str_or (task, "task_id", ""), task_id);
    assert_string_equal (cm_map_str_or (task, "kind", ""), "answer");
    assert_int_equal (cm_value_len (cm_map_get (task, "conversation")), 1);
    cm_envelope_destroy (&claimed);
    s_expect_event (env, "s_1", "message_regenerating");

    assert_int_equal (s_call (env->client, st_req (CM_MSG_PING, NULL), &reply), 0);
    assert_int_equal (cm_map_int (reply->payload, "regenerators", 0), 1);
    assert_null (cm_map_get (reply->payload, "regenerators_matching"));
    cm_envelope_destroy (&reply);
    //  A health check asks about one regenerator by its id's prefix.
    const char *prefixes[] = {"w", "w1", "w2", "x"};
    int matching[] = {1, 1, 0, 0};
    for (int i = 0; i < 4; i++) {
        cm_envelope_t *ping = st_req (CM_MSG_PING, NULL);
        cm_map_set_str (ping->payload, "worker_prefix", prefixes[i]);
        assert_int_equal (s_call (env->client, ping, &reply), 0);
        assert_int_equal (cm_map_int (reply->payload, "regenerators", 0), 1);
        assert_int_equal (cm_map_int (reply->payload, "regenerators_matching", -1), matching[i]);
        cm_envelope_destroy (&reply);
    }

    cm_envelope_t *progress = st_req (CM_MSG_TASK_PROGRESS, NULL);
    cm_map_set_str (progress->payload, "worker", "w1");
    cm_map_set_int (progress->payload, "fence", 1); //  its first lease
    cm_map_set_str (progress->payload, "task_id", task_id);
    cm_map_set_int (progress->payload, "progress", 50);
    cm_map_set_str (progress->payload, "partial", "Rayleigh");
    assert_int_equal (s_call (worker, progress, &reply), 0);
    assert_non_null (cm_map_str (reply->payload, "lease_expires_at"));
    cm_envelope_destroy (&reply);
    s_expect_event (env, "s_1", "regeneration_progress");

    cm_envelope_t *step = st_req (CM_MSG_TASK_EVENT, NULL);
    cm_map_set_str (step->payload, "worker", "w1");
    cm_map_set_int (step->payload, "fence", 1); //  its first lease
    cm_map_set_str (step->payload, "task_id", task_id);
    cm_map_set_str (step->payload, "event", "thought_process_step");
    cm_value_t *step_data = cm_map_new ();
    cm_map_set_int (step_data, "step", 1);
    cm_map_set_str (step_data, "reasoning", "think");
    cm_map_set (step->payload, "data", step_data);
    assert_int_equal (s_call (worker, step, &reply), 0);
    cm_envelope_destroy (&reply);
    s_expect_event (env, "s_1", "thought_process_step");

    cm_envelope_t *complete = st_req (CM_MSG_TASK_COMPLETE, NULL);
    cm_map_set_str (complete->payload, "worker", "w1");
    cm_map_set_int (complete->payload, "fence", 1); //  its first lease
    cm_map_set_str (complete->payload, "task_id", task_id);
    cm_map_set_str (complete->payload, "content", "Rayleigh scattering.");
    assert_int_equal (s_call (worker, complete, &reply), 0);
    cm_envelope_destroy (&reply);
    s_expect_event (env, "s_1", "message_regenerated");

    //  The reply came after the commit: a read sees it.
    cm_envelope_t *get = st_req (CM_MSG_SESSION_GET, "alice");
    cm_map_set_str (get->payload, "session_id", "s_1");
    assert_int_equal (s_call (env->client, get, &reply), 0);
    const cm_value_t *messages = cm_map_get (cm_map_get (reply->payload, "session"), "messages");
    assert_int_equal (cm_value_len (messages), 2);
    assert_string_equal (cm_map_str_or (cm_arr_at (messages, 1), "content", ""),
                         "Rayleigh scattering.");
    cm_envelope_destroy (&reply);

    cm_envelope_t *vote = st_req (CM_MSG_FEEDBACK_PUT, "alice");
    cm_map_set_str (vote->payload, "message_id", assistant);
    cm_map_set_str (vote->payload, "feedback_type", "upvote");
    assert_int_equal (s_call (env->client, vote, &reply), 0);
    cm_envelope_destroy (&reply);
    s_expect_event (env, "s_1", "feedback_submitted");

    cm_envelope_t *list = st_req (CM_MSG_SESSION_LIST, "alice");
    assert_int_equal (s_call (env->client, list, &reply), 0);
    assert_int_equal (cm_value_len (cm_map_get (reply->payload, "sessions")), 1);
    cm_envelope_destroy (&reply);
    zsock_destroy (&worker);
}

static void
test_claim_times_out_empty (void **state)
{
    s_env_t *env = *state;
    cm_envelope_t *claim = st_req (CM_MSG_TASK_CLAIM, NULL);
    cm_map_set_str (claim->payload, "worker", "w2");
    cm_map_set_int (claim->payload, "wait_ms", 300);
    int64_t started = cm_mono_ms ();
    cm_envelope_t *reply = NULL;
    assert_int_equal (s_call (env->client, claim, &reply), 0);
    assert_true (cm_mono_ms () - started >= 290);
    assert_int_equal (cm_value_len (cm_map_get (reply->payload, "tasks")), 0);
    cm_envelope_destroy (&reply);
}

//  A store shutting down answers a parked long-poll (empty) before its
//  ROUTER closes: the regenerator hears at once instead of waiting out
//  wait_ms on a dead connection.
static void
test_shutdown_answers_parked_claim (void **state)
{
    s_env_t *env = *state;
    zsock_t *worker = s_long_poll (env, "w3", 60000, "claim-3");
    //  A parked claim counts its worker as live: ask until it does.
    cm_envelope_t *reply = NULL;
    int64_t live = 0;
    for (int tries = 0; tries < 500 && live != 1; tries++) {
        if (tries)
            zclock_sleep (10);
        cm_envelope_t *ping = st_req (CM_MSG_PING, NULL);
        cm_map_set_str (ping->payload, "worker_prefix", "w3");
        assert_int_equal (s_call (env->client, ping, &reply), 0);
        live = cm_map_int (reply->payload, "regenerators_matching", 0);
        cm_envelope_destroy (&reply);
    }
    assert_int_equal (live, 1);

    st_server_stop (env->server);
    pthread_join (env->thread, NULL);
    st_server_destroy (&env->server);
    zsock_set_rcvtimeo (worker, 3000);
    zframe_t *answer = zframe_recv (worker);
    assert_non_null (answer);
    cm_envelope_t *empty = NULL;
    assert_int_equal (cm_frame_decode (answer, &empty), 0);
    zframe_destroy (&answer);
    assert_string_equal (empty->request_id, "claim-3");
    assert_int_equal (empty->type, CM_MSG_OK);
    assert_int_equal (cm_value_len (cm_map_get (empty->payload, "tasks")), 0);
    cm_envelope_destroy (&empty);
    zsock_destroy (&worker);
}

static void
test_malformed_gets_eproto (void **state)
{
    s_env_t *env = *state;
    //  Wait for the connection with a valid ping first.
    cm_envelope_t *reply = NULL;
    assert_int_equal (s_call (env->client, st_req (CM_MSG_PING, NULL), &reply), 0);
    cm_envelope_destroy (&reply);
    zframe_t *garbage = zframe_new ("\x94\x01\xa4ping", 7);
    assert_int_equal (zframe_send (&garbage, env->client, 0), 0);
    zframe_t *answer = zframe_recv (env->client);
    cm_envelope_t *error = NULL;
    assert_int_equal (cm_frame_decode (answer, &error), 0);
    zframe_destroy (&answer);
    assert_int_equal (error->type, CM_MSG_ERROR);
    assert_int_equal (cm_map_int (error->payload, "code", 0), CM_EPROTO);
    cm_envelope_destroy (&error);

    //  A well-formed envelope missing a required field: EPROTO, and the
    //  reply still carries the request id so cm_call matches it.
    cm_envelope_t *bad = st_req (CM_MSG_FEEDBACK_PUT, "alice");
    assert_int_equal (s_call (env->client, bad, &reply), CM_EPROTO);
    cm_envelope_destroy (&reply);

    //  A payload that does not even decode (a map key over 256 bytes): the
    //  reply still finds its caller instead of leaving it to time out.
    cm_envelope_t *undecodable = st_req (CM_MSG_FEEDBACK_PUT, "alice");
    char long_key[300];
    memset (long_key, 'k', sizeof long_key - 1);
    long_key[sizeof long_key - 1] = 0;
    cm_map_set_str (undecodable->payload, long_key, "v");
    assert_int_equal (s_call (env->client, undecodable, &reply), CM_EPROTO);
    cm_envelope_destroy (&reply);
}

//  Every listed broadcaster gets every event, with the id of its commit;
//  a list naming none or too many is refused at start.
static void
test_every_broadcaster_gets_every_event (void **state)
{
    (void) state;
    char dir[] = "/tmp/st_server_bc_XXXXXX";
    assert_non_null (mkdtemp (dir));
    char endpoint[300], in1[300], in2[300], list[700];
    snprintf (endpoint, sizeof endpoint, "ipc://%s/store", dir);
    snprintf (in1, sizeof in1, "ipc://%s/in1", dir);
    snprintf (in2, sizeof in2, "ipc://%s/in2", dir);
    snprintf (list, sizeof list, "%s,%s", in1, in2);
    zsock_t *pull[2] = {zsock_new_pull (in1), zsock_new_pull (in2)};
    assert_non_null (pull[0]);
    assert_non_null (pull[1]);
    st_server_config_t config = {.endpoint = endpoint, .events_endpoint = "", .dir = dir,
                                 .map_bytes = 1 << 20, .sync = false, .readers = 1,
                                 .ops = {.lease_ms = 10000, .max_attempts = 3,
                                         .retention_ms = 86400000, .worker_live_ms = 30000}};
    const char *bad[] = {"", ",,",
                         ("ipc://a,ipc://b,ipc://c,ipc://d,ipc://e,ipc://f,ipc://g,"
                          "ipc://h,ipc://i")}; //  nine: one more than the store takes
    for (size_t i = 0; i < 3; i++) {
        config.events_endpoint = bad[i];
        assert_null (st_server_new (&config));
    }
    config.events_endpoint = list;
    st_server_t *server = st_server_new (&config);
    assert_non_null (server);
    pthread_t thread;
    assert_int_equal (pthread_create (&thread, NULL, s_run, server), 0);
    zsock_t *client = cm_dealer_new (endpoint);
    cm_envelope_t *start = st_req (CM_MSG_SESSION_START, "alice");
    cm_map_set_str (start->payload, "session_id", "s_two");
    cm_map_set_str (start->payload, "query", "twice?");
    cm_envelope_t *reply = NULL;
    assert_int_equal (s_call (client, start, &reply), 0);
    cm_envelope_destroy (&reply);
    char *first[2] = {NULL, NULL};
    for (int b = 0; b < 2; b++) {
        zpoller_t *poller = zpoller_new (pull[b], NULL);
        assert_non_null (zpoller_wait (poller, 20000));
        zpoller_destroy (&poller);
        zmsg_t *msg = zmsg_recv (pull[b]);
        assert_int_equal (zmsg_size (msg), 2);
        char *topic = zmsg_popstr (msg);
        assert_string_equal (topic, "s_two");
        zstr_free (&topic);
        zframe_t *body = zmsg_pop (msg);
        cm_envelope_t *event = NULL;
        assert_int_equal (cm_frame_decode (body, &event), 0);
        const char *id = cm_map_str (event->payload, "id");
        assert_non_null (id);
        assert_string_equal (event->request_id, id);
        first[b] = strdup (id);
        cm_envelope_destroy (&event);
        zframe_destroy (&body);
        zmsg_destroy (&msg);
    }
    assert_string_equal (first[0], first[1]);
    cm_event_id_t id;
    assert_int_equal (cm_event_id_parse (first[0], &id), 0);
    assert_int_equal (id.seq, 1);
    free (first[0]);
    free (first[1]);
    zsock_destroy (&client);
    st_server_stop (server);
    pthread_join (thread, NULL);
    st_server_destroy (&server);
    zsock_destroy (&pull[0]);
    zsock_destroy (&pull[1]);
    st_rmtree (dir);
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown (test_slice, s_setup, s_teardown),
        cmocka_unit_test (test_every_broadcaster_gets_every_event),
        cmocka_unit_test_setup_teardown (test_claim_times_out_empty, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_malformed_gets_eproto, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_shutdown_answers_parked_claim, s_setup,
                                         s_teardown),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
