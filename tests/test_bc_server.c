/*  test_bc_server: the broadcaster's logic (ingest, history, ping), and its
    sockets end to end over ipc:// in a temp dir.                           */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "bc_server.h"
#include "bc_service.h"
#include "cm_error.h"
#include "cm_rpc.h"

#include <stdlib.h>
#include <string.h>

#define EPOCH 1700000000123ULL        //  the broadcaster's start (ping)
#define STORE_EPOCH 1764000000999ULL  //  the store's, in every event id

//  An event as the store pushes it, with its id STORE_EPOCH-seq (seq 0: none).
static void
s_event_body (const char *session, const char *event, uint64_t seq, char **body, size_t *size)
{
    cm_envelope_t *envelope = cm_envelope_new (CM_MSG_EVENT, "");
    assert_non_null (envelope);
    cm_map_set_str (envelope->payload, "event", event);
    if (seq) {
        char id[BC_EVENT_ID_SIZE];
        cm_event_id_format (id, sizeof id, (cm_event_id_t) {STORE_EPOCH, seq});
        cm_map_set_str (envelope->payload, "id", id);
    }
    cm_value_t *data = cm_map_new ();
    cm_map_set_str (data, "sessionId", session);
    cm_map_set_str (data, "timestamp", "2026-11-25T10:00:00.123Z");
    cm_map_set (envelope->payload, "data", data);
    assert_int_equal (cm_envelope_encode (envelope, body, size), 0);
    cm_envelope_destroy (&envelope);
}

static void
s_request (cm_msg_t type, const char *session, const char *after, char **body, size_t *size)
{
    cm_envelope_t *envelope = cm_envelope_new (type, "req-1");
    if (session)
        cm_map_set_str (envelope->payload, "session_id", session);
    if (after)
        cm_map_set_str (envelope->payload, "after", after);
    assert_int_equal (cm_envelope_encode (envelope, body, size), 0);
    cm_envelope_destroy (&envelope);
}

//  The store's last seq (one count for all sessions: a session's ids rise).
static uint64_t s_seq;

static int
s_ingest (bc_server_t *server, const char *session, const char *event, char *id)
{
    char *body;
    size_t size;
    s_event_body (session, event, ++s_seq, &body, &size);
    int rc = bc_server_ingest (server, session, strlen (session), body, size, 0, id,
                               BC_EVENT_ID_SIZE);
    free (body);
    return rc;
}

static bc_server_t *
s_server (void)
{
    s_seq = 0;
    bc_history_limits_t limits = {3, 300000, 100};
    bc_server_t *server = bc_server_new (EPOCH, &limits);
    assert_non_null (server);
    return server;
}

static void
test_ingest_then_history (void **state)
{
    (void) state;
    bc_server_t *server = s_server ();
    char id[BC_EVENT_ID_SIZE];
    assert_int_equal (s_ingest (server, "my_session", "message_edited", id), 0);
    assert_string_equal (id, "1764000000999-1");
    assert_int_equal (s_ingest (server, "my_session", "message_deleted", id), 0);
    assert_string_equal (id, "1764000000999-2");

    char *body;
    size_t size;
    s_request (CM_MSG_HISTORY, "my_session", "1764000000999-1", &body, &size);
    cm_envelope_t *reply = NULL;
    assert_int_equal (bc_server_handle (server, body, size, 0, &reply), 0);
    free (body);
    assert_int_equal (reply->type, CM_MSG_OK);
    assert_string_equal (reply->request_id, "req-1");
    assert_true (cm_map_bool (reply->payload, "complete", false));
    const cm_value_t *events = cm_map_get (reply->payload, "events");
    assert_non_null (events);
    assert_int_equal (cm_value_len (events), 1);
    const cm_value_t *event = cm_arr_at (events, 0);
    assert_string_equal (cm_map_str (event, "id"), "1764000000999-2");
    //  The body is the envelope exactly as it came in.
    const cm_value_t *stored = cm_map_get (event, "body");
    assert_int_equal (stored->type, CM_T_BIN);
    char *expect;
    size_t expect_size;
    s_event_body ("my_session", "message_deleted", 2, &expect, &expect_size);
    assert_int_equal (stored->u.s.len, expect_size);
    assert_memory_equal (stored->u.s.ptr, expect, expect_size);
    free (expect);
    cm_envelope_destroy (&reply);
    bc_server_destroy (&server);
    assert_null (server);
}

static void
test_history_incomplete_after_drop_or_other_epoch (void **state)
{
    (void) state;
    bc_server_t *server = s_server (); //  3 events per session
    char id[BC_EVENT_ID_SIZE];
    for (int i = 0; i < 5; i++)
        assert_int_equal (s_ingest (server, "s", "session_updated", id), 0);
    const char *cases[][2] = {{"1764000000999-1", "false"},
                              {"1764000000999-2", "true"},
                              {"42-4", "false"},
                              {NULL, "true"}};
    size_t counts[] = {3, 3, 3, 3};
    for (size_t i = 0; i < 4; i++) {
        char *body;
        size_t size;
        s_request (CM_MSG_HISTORY, "s", cases[i][0], &body, &size);
        cm_envelope_t *reply = NULL;
        assert_int_equal (bc_server_handle (server, body, size, 0, &reply), 0);
        free (body);
        assert_int_equal (cm_map_bool (reply->payload, "complete", false),
                          strcmp (cases[i][1], "true") == 0);
        assert_int_equal (cm_value_len (cm_map_get (reply->payload, "events")), counts[i]);
        cm_envelope_destroy (&reply);
    }
    bc_server_destroy (&server);
}

static void
test_bad_store_messages_are_dropped_and_counted (void **state)
{
    (void) state;
    bc_server_t *server = s_server ();
    char id[BC_EVENT_ID_SIZE];
    char *body;
    size_t size;
    s_event_body ("s", "x", 1, &body, &size);
    //  Bad session ids.
    assert_int_equal (bc_server_ingest (server, "bad id", 6, body, size, 0, id, sizeof id),
                      CM_EPROTO);
    assert_int_equal (bc_server_ingest (server, "s\0x", 3, body, size, 0, id, sizeof id),
                      CM_EPROTO);
    assert_int_equal (bc_server_ingest (server, "", 0, body, size, 0, id, sizeof id),
                      CM_EPROTO);
    //  Garbage body, and a valid envelope of another type.
    assert_int_equal (bc_server_ingest (server, "s", 1, "\x93\x01", 2, 0, id, sizeof id),
                      CM_EPROTO);
    free (body);
    s_request (CM_MSG_PING, NULL, NULL, &body, &size);
    assert_int_equal (bc_server_ingest (server, "s", 1, body, size, 0, id, sizeof id),
                      CM_EPROTO);
    free (body);
    //  An event without the store's id.
    s_event_body ("s", "x", 0, &body, &size);
    assert_int_equal (bc_server_ingest (server, "s", 1, body, size, 0, id, sizeof id),
                      CM_EPROTO);
    free (body);
    bc_server_reject (server);
    assert_int_equal (bc_server_events_rejected (server), 7);
    assert_int_equal (bc_server_events_in (server), 0);
    assert_int_equal (bc_server_sessions (server), 0);
    bc_server_destroy (&server);
}

static void
test_ping_reports_metrics (void **state)
{
    (void) state;
    bc_server_t *server = s_server ();
    char id[BC_EVENT_ID_SIZE];
    assert_int_equal (s_ingest (server, "a", "x", id), 0);
    assert_int_equal (s_ingest (server, "b", "x", id), 0);
    bc_server_count_out (server);
    char *body;
    size_t size;
    s_request (CM_MSG_PING, NULL, NULL, &body, &size);
    cm_envelope_t *reply = NULL;
    assert_int_equal (bc_server_handle (server, body, size, 0, &reply), 0);
    free (body);
    assert_string_equal (cm_map_str (reply->payload, "service"), "broadcaster");
    assert_int_equal (cm_map_int (reply->payload, "epoch", 0), (int64_t) EPOCH);
    assert_int_equal (cm_map_int (reply->payload, "sessions", -1), 2);
    assert_int_equal (cm_map_int (reply->payload, "events_in", -1), 2);
    assert_int_equal (cm_map_int (reply->payload, "events_out", -1), 1);
    assert_int_equal (cm_map_int (reply->payload, "events_duplicate", -1), 0);
    cm_envelope_destroy (&reply);
    bc_server_destroy (&server);
}

//  The same event twice (it cannot be, from one store; a test of the
//  guard): the second is refused and counted, the history unchanged.
static void
test_duplicate_is_refused (void **state)
{
    (void) state;
    bc_server_t *server = s_server ();
    char id[BC_EVENT_ID_SIZE];
    char *body;
    size_t size;
    s_event_body ("s", "x", 4, &body, &size);
    assert_int_equal (bc_server_ingest (server, "s", 1, body, size, 0, id, sizeof id), 0);
    assert_string_equal (id, "1764000000999-4");
    assert_int_equal (bc_server_ingest (server, "s", 1, body, size, 0, id, sizeof id),
                      BC_HISTORY_DUPLICATE);
    free (body);
    assert_int_equal (bc_server_events_in (server), 1);
    assert_int_equal (bc_server_events_duplicate (server), 1);
    assert_int_equal (bc_server_events_rejected (server), 0);
    bc_server_destroy (&server);
}

static void
test_malformed_requests_get_eproto (void **state)
{
    (void) state;
    bc_server_t *server = s_server ();
    cm_envelope_t *reply = NULL;
    //  Garbage bytes: an error reply, no request id to echo.
    assert_int_equal (bc_server_handle (server, "\xc1\xff", 2, 0, &reply), CM_EPROTO);
    assert_int_equal (reply->type, CM_MSG_ERROR);
    assert_int_equal (cm_map_int (reply->payload, "code", 0), CM_EPROTO);
    cm_envelope_destroy (&reply);

    //  Missing session_id fails the schema; the request id still comes back.
    char *body;
    size_t size;
    s_request (CM_MSG_HISTORY, NULL, NULL, &body, &size);
    assert_int_equal (bc_server_handle (server, body, size, 0, &reply), CM_EPROTO);
    free (body);
    assert_string_equal (reply->request_id, "req-1");
    assert_int_equal (cm_map_int (reply->payload, "code", 0), CM_EPROTO);
    cm_envelope_destroy (&reply);

    const char *bad[][2] = {{"bad session", NULL}, {"s", "12"}, {"s", "-1-2"}, {"s", "a-b"}};
    for (size_t i = 0; i < 4; i++) {
        s_request (CM_MSG_HISTORY, bad[i][0], bad[i][1], &body, &size);
        assert_int_equal (bc_server_handle (server, body, size, 0, &reply), CM_EPROTO);
        free (body);
        assert_int_equal (reply->type, CM_MSG_ERROR);
        cm_envelope_destroy (&reply);
    }
    //  A request type the broadcaster does not serve.
    s_request (CM_MSG_SESSION_LIST, NULL, NULL, &body, &size);
    assert_int_equal (bc_server_handle (server, body, size, 0, &reply), CM_EPROTO);
    free (body);
    cm_envelope_destroy (&reply);
    bc_server_destroy (&server);
}

//  The real sockets: PUSH an event like the store does, receive it on a
//  SUB with its id, then ask the history ROUTER for it.
//  [session, "", envelope]: the broadcaster's "subscribed" notice.
static bool
s_is_notice (zmsg_t *msg)
{
    if (zmsg_size (msg) != 3)
        return false;
    zmsg_first (msg);
    zframe_t *id = zmsg_next (msg);
    return zframe_size (id) == 0;
}

static void
test_service_end_to_end (void **state)
{
    (void) state;
    char dir[] = "/tmp/test_bc_XXXXXX";
    assert_non_null (mkdtemp (dir));
    char in[128], out[128], hist[128];
    snprintf (in, sizeof in, "ipc://%s/in", dir);
    snprintf (out, sizeof out, "ipc://%s/out", dir);
    snprintf (hist, sizeof hist, "ipc://%s/hist", dir);
    bc_service_options_t options = {in, out, hist, {500, 300000, 100}, EPOCH, NULL};
    zactor_t *actor = zactor_new (bc_service_actor, &options);
    assert_non_null (actor);
    //  zactor_new returned after the actor's signal: the sockets are bound.
    char *status = zstr_recv (actor);
    assert_string_equal (status, "ready");
    free (status);

    zsock_t *sub = zsock_new_sub (out, "sess_1");
    zsock_t *push = zsock_new_push (in);
    zsock_t *dealer = cm_dealer_new (hist);
    assert_non_null (sub);
    assert_non_null (push);
    assert_non_null (dealer);
    zsock_set_rcvtimeo (sub, 200);

    //  Subscriptions propagate asynchronously: publish until one arrives
    //  (the bounded loop is the condition being awaited, not a sleep).
    char *body = NULL;
    size_t size;
    //  The broadcaster also answers the subscription with a notice (an
    //  empty event id) that may come before or after the first event.
    zmsg_t *got = NULL;
    int sent = 0;
    bool noticed = false;
    for (int attempt = 0; attempt < 50 && !got; attempt++) {
        free (body);
        s_event_body ("sess_1", "session_updated", (uint64_t) sent + 1, &body, &size);
        zmsg_t *msg = zmsg_new ();
        zmsg_addstr (msg, "sess_1");
        zmsg_addmem (msg, body, size);
        assert_int_equal (zmsg_send (&msg, push), 0);
        sent++;
        while ((got = zmsg_recv (sub)) && s_is_notice (got)) {
            noticed = true;
            zmsg_destroy (&got);
        }
    }
    assert_non_null (got);
    for (int attempt = 0; attempt < 25 && !noticed; attempt++) {
        zmsg_t *more = zmsg_recv (sub);
        noticed = more && s_is_notice (more);
        zmsg_destroy (&more);
    }
    assert_true (noticed);
    assert_int_equal (zmsg_size (got), 3);
    char *topic = zmsg_popstr (got);
    char *id = zmsg_popstr (got);
    zframe_t *envelope = zmsg_pop (got);
    assert_string_equal (topic, "sess_1");
    //  The store's id, and the envelope unchanged (the one sent with it).
    assert_int_equal (strncmp (id, "1764000000999-", 14), 0);
    cm_envelope_t *decoded = NULL;
    assert_int_equal (cm_envelope_decode (zframe_data (envelope), zframe_size (envelope), &decoded),
                      0);
    assert_string_equal (cm_map_str (decoded->payload, "id"), id);
    cm_envelope_destroy (&decoded);
    free (topic);
    zframe_destroy (&envelope);
    zmsg_destroy (&got);

    //  A bad message (one frame) is dropped, the service keeps serving.
    zstr_send (push, "lonely");

    cm_envelope_t *request = cm_envelope_new (CM_MSG_HISTORY, "h1");
    cm_map_set_str (request->payload, "session_id", "sess_1");
    cm_envelope_t *reply = NULL;
    assert_int_equal (cm_call (dealer, request, 5000, &reply), 0);
    assert_true (cm_map_bool (reply->payload, "complete", false));
    //  Every event pushed before the history request is held, in order.
    const cm_value_t *events = cm_map_get (reply->payload, "events");
    assert_int_equal (cm_value_len (events), (size_t) sent);
    const char *last = cm_map_str (cm_arr_at (events, cm_value_len (events) - 1), "id");
    assert_string_equal (last, id);
    free (id);
    cm_envelope_destroy (&reply);
    cm_envelope_destroy (&request);

    request = cm_envelope_new (CM_MSG_PING, "p1");
    assert_int_equal (cm_call (dealer, request, 5000, &reply), 0);
    assert_int_equal (cm_map_int (reply->payload, "events_in", -1), sent);
    assert_int_equal (cm_map_int (reply->payload, "sessions", -1), 1);
    cm_envelope_destroy (&reply);
    cm_envelope_destroy (&request);

    free (body);
    zsock_destroy (&sub);
    zsock_destroy (&push);
    zsock_destroy (&dealer);
    zactor_destroy (&actor);
    char path[160];
    const char *names[] = {"in", "out", "hist"};
    for (int i = 0; i < 3; i++) {
        snprintf (path, sizeof path, "%s/%s", dir, names[i]);
        unlink (path);
    }
    rmdir (dir);
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_ingest_then_history),
        cmocka_unit_test (test_history_incomplete_after_drop_or_other_epoch),
        cmocka_unit_test (test_bad_store_messages_are_dropped_and_counted),
        cmocka_unit_test (test_ping_reports_metrics),
        cmocka_unit_test (test_duplicate_is_refused),
        cmocka_unit_test (test_malformed_requests_get_eproto),
        cmocka_unit_test (test_service_end_to_end),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
