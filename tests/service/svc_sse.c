/*  svc_sse: the SSE contract through the real four binaries.

    - replay after a disconnect gives exactly the missed events (Last-Event-ID
      header and ?last_event_id=), ids strictly increase without gaps;
    - a live event the gateway lost (CHATMESH_SSE_TEST_DROP_EVERY, a
      test-only setting) is filled from the broadcaster's history;
    - a broadcaster kill -9 and restart costs nothing: the same stream goes
      on with the store's ids, no resync, no hole, and a Last-Event-ID the
      restarted broadcaster never held is replayed from the store's log;
    - a reader that stops reading is dropped while another keeps getting
      every event on time;
    - keepalive comments; POST run_sse with Accept: text/event-stream ends
      after the answer; an ?access_token= never reaches any log.       */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "svc_harness.h"
#include "svc_json_util.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

//  ---------------------------------------------------------------------
//  Helpers

typedef struct {
    long long epoch, seq;
} s_id_t;

static s_id_t
s_id (const char *text)
{
    s_id_t id = {-1, -1};
    assert_int_equal (sscanf (text, "%lld-%lld", &id.epoch, &id.seq), 2);
    return id;
}

//  Starts a session for user; returns its assistant and user message ids.
static void
s_session (svc_mesh_t *mesh, const char *token, const char *session, char *assistant,
           char *user)
{
    char path[300];
    snprintf (path, sizeof path, "/api/run_sse/%s", session);
    svc_response_t response;
    assert_int_equal (svc_http (mesh, "POST", path, token, "{\"query\": \"What is SSE?\"}",
                                &response),
                      0);
    assert_int_equal (response.status, 200);
    json_t *data = json_object_get (response.json, "data");
    snprintf (assistant, 400, "%s", json_string_value (json_object_get (data, "assistant_message_id")));
    if (user)
        snprintf (user, 400, "%s", json_string_value (json_object_get (data, "user_message_id")));
    svc_response_free (&response);
}

//  Every id of the stream: present on all but connection_status and a
//  resync, strictly increasing, and (within one epoch) without gaps.
//  *first / *last get the first and last id (epoch -1 when none).
static void
s_check_ids (svc_sse_t *sse, s_id_t *first, s_id_t *last)
{
    s_id_t previous = {-1, -1};
    *first = previous;
    size_t n = svc_sse_count (sse);
    for (size_t i = 0; i < n; i++) {
        const svc_event_t *event = svc_sse_at (sse, i);
        if (!event->id[0]) {
            assert_true (strcmp (event->event, "connection_status") == 0
                         || strcmp (event->event, "session_updated") == 0);
            continue;
        }
        s_id_t id = s_id (event->id);
        if (previous.epoch >= 0 && id.epoch == previous.epoch) {
            if (id.seq != previous.seq + 1)
                fail_msg ("ids not consecutive: %lld-%lld after %lld-%lld (event %s)", id.epoch,
                          id.seq, previous.epoch, previous.seq, event->event);
        }
        if (first->epoch < 0)
            *first = id;
        previous = id;
    }
    *last = previous;
}

//  session_updated events with resync: true (the store also sends
//  session_updated, without it).
static size_t
s_resyncs (svc_sse_t *sse)
{
    size_t have = 0, n = svc_sse_count (sse);
    for (size_t i = 0; i < n; i++) {
        const svc_event_t *event = svc_sse_at (sse, i);
        have += strcmp (event->event, "session_updated") == 0
                && json_is_true (json_object_get (event->json, "resync"));
    }
    return have;
}

//  What a stream got, for a failing test's output.
static void
s_dump (svc_sse_t *sse)
{
    size_t n = svc_sse_count (sse);
    for (size_t i = 0; i < n; i++) {
        const svc_event_t *event = svc_sse_at (sse, i);
        print_message ("  event %zu: id=%s %s %.1f ms\n", i, event->id, event->event,
                       event->received_ms);
    }
}

static size_t
s_count (svc_sse_t *sse, const char *type)
{
    size_t have = 0, n = svc_sse_count (sse);
    for (size_t i = 0; i < n; i++)
        have += strcmp (svc_sse_at (sse, i)->event, type) == 0;
    return have;
}

static int
s_port (svc_mesh_t *mesh)
{
    return atoi (strrchr (svc_mesh_url (mesh), ':') + 1);
}

static int
s_raw_connect (svc_mesh_t *mesh, int rcvbuf)
{
    int fd = socket (AF_INET, SOCK_STREAM, 0);
    assert_true (fd >= 0);
    if (rcvbuf > 0)
        setsockopt (fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
    struct sockaddr_in addr = {.sin_family = AF_INET,
                               .sin_port = htons ((uint16_t) s_port (mesh)),
                               .sin_addr.s_addr = htonl (INADDR_LOOPBACK)};
    assert_int_equal (connect (fd, (struct sockaddr *) &addr, sizeof addr), 0);
    return fd;
}

//  Reads fd until EOF (or reset) within timeout_ms; returns what came (caller
//  frees) and *eof whether the peer closed.
static char *
s_read_to_eof (int fd, int timeout_ms, bool *eof)
{
    size_t cap = 1 << 20, len = 0;
    char *buffer = malloc (cap + 1);
    *eof = false;
    double deadline = svc_now_ms () + timeout_ms;
    while (svc_now_ms () < deadline) {
        struct pollfd p = {fd, POLLIN, 0};
        if (poll (&p, 1, 200) <= 0)
            continue;
        char chunk[65536];
        ssize_t n = recv (fd, chunk, sizeof chunk, 0);
        if (n <= 0) {
            *eof = true;
            break;
        }
        if (len + (size_t) n <= cap) {
            memcpy (buffer + len, chunk, (size_t) n);
            len += (size_t) n;
        }
    }
    buffer[len] = 0;
    return buffer;
}

//  ---------------------------------------------------------------------
//  Tests

static void
test_replay_is_exact (void **state)
{
    svc_mesh_t *mesh = *state;
    char *token = svc_token (mesh, "alice", 600);
    char assistant[400];
    s_session (mesh, token, "replay_s1", assistant, NULL);

    //  1. A stream gets three votes; note the last id it saw.
    svc_sse_t *sse = svc_sse_open (mesh, "/api/run_sse/replay_s1", token, NULL);
    assert_non_null (sse);
    assert_non_null (svc_sse_wait (sse, "connection_status", 5000));
    for (int i = 0; i < 3; i++)
        svc_want_vote (mesh, token, assistant, i);
    if (!svc_sse_wait_count (sse, "feedback_submitted", 3, 5000))
        s_dump (sse);
    assert_true (s_count (sse, "feedback_submitted") >= 3);
    //  Keepalive comments come during silence (CHATMESH_SSE_KEEPALIVE_MS=300).
    double deadline = svc_now_ms () + 3000;
    while (svc_sse_comments (sse) < 2 && svc_now_ms () < deadline)
        svc_sse_wait (sse, NULL, 100);
    assert_true (svc_sse_comments (sse) >= 2);
    s_id_t first, last;
    s_check_ids (sse, &first, &last);
    assert_true (last.epoch >= 0);
    char last_id[64];
    snprintf (last_id, sizeof last_id, "%lld-%lld", last.epoch, last.seq);
    svc_sse_close (&sse);

    //  2. Four votes while disconnected; the reconnect (Last-Event-ID
    //  header) gets exactly what came after last_id, then live ones.
    for (int i = 0; i < 4; i++)
        svc_want_vote (mesh, token, assistant, i);
    sse = svc_sse_open (mesh, "/api/run_sse/replay_s1", token, last_id);
    assert_non_null (sse);
    assert_true (svc_sse_wait_count (sse, "feedback_submitted", 4, 5000));
    svc_want_vote (mesh, token, assistant, 0);
    assert_true (svc_sse_wait_count (sse, "feedback_submitted", 5, 5000));
    s_id_t first2, last2;
    s_check_ids (sse, &first2, &last2);
    assert_int_equal (first2.epoch, last.epoch);
    assert_int_equal (first2.seq, last.seq + 1); //  no duplicate, no gap
    assert_int_equal (s_resyncs (sse), 0);
    assert_int_equal (s_count (sse, "feedback_submitted"), 5);
    snprintf (last_id, sizeof last_id, "%lld-%lld", last2.epoch, last2.seq);
    svc_sse_close (&sse);

    //  3. The same with ?last_event_id= and the token in ?access_token=
    //  (what a browser's EventSource can do).
    for (int i = 0; i < 2; i++)
        svc_want_vote (mesh, token, assistant, i);
    char path[2048];
    snprintf (path, sizeof path, "/api/run_sse/replay_s1?last_event_id=%s&access_token=%s",
              last_id, token);
    sse = svc_sse_open (mesh, path, NULL, NULL);
    assert_non_null (sse);
    assert_int_equal (svc_sse_status (sse), 200);
    assert_true (svc_sse_wait_count (sse, "feedback_submitted", 2, 5000));
    s_check_ids (sse, &first, &last);
    assert_int_equal (first.epoch, last2.epoch);
    assert_int_equal (first.seq, last2.seq + 1);
    assert_int_equal (s_count (sse, "feedback_submitted"), 2);
    svc_sse_close (&sse);

    //  4. POST run_sse with Accept: text/event-stream streams that
    //  session's events until the answer is complete, then ends.
    int fd = s_raw_connect (mesh, 0);
    const char *body = "{\"query\": \"Stream me the answer\"}";
    char request[4096];
    int n = snprintf (request, sizeof request,
                      "POST /api/run_sse/replay_post HTTP/1.1\r\nHost: x\r\n"
                      "Authorization: Bearer %s\r\nAccept: text/event-stream\r\n"
                      "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n%s",
                      token, strlen (body), body);
    assert_int_equal (send (fd, request, (size_t) n, 0), n);
    bool eof;
    char *stream = s_read_to_eof (fd, 60000, &eof);
    close (fd);
    assert_true (eof);
    assert_non_null (strstr (stream, "HTTP/1.1 200"));
    assert_non_null (strstr (stream, "Content-Type: text/event-stream"));
    assert_non_null (strstr (stream, "Connection: close"));
    assert_non_null (strstr (stream, "event: connection_status"));
    char *done = strstr (stream, "event: message_regenerated");
    assert_non_null (done);
    //  ... and it is the last event of the stream.
    assert_null (strstr (done + 1, "\nevent: "));
    free (stream);

    //  5. No token reaches any log (the signature is the secret part).
    char logs[1024];
    const char *services[] = {"gateway", "store", "broadcaster", "regenerator"};
    const char *signature = strrchr (token, '.') + 1;
    for (size_t i = 0; i < 4; i++) {
        snprintf (logs, sizeof logs, "%s/log/%s.log", svc_mesh_dir (mesh), services[i]);
        char *text = svc_read_file (logs);
        assert_non_null (text);
        if (strstr (text, signature))
            fail_msg ("the token appears in %s", logs);
        free (text);
    }
    free (token);
}

static void
test_gap_is_filled (void **state)
{
    svc_mesh_t *mesh = *state;
    char *token = svc_token (mesh, "bob", 600);
    char assistant[400];
    s_session (mesh, token, "gap_s1", assistant, NULL);
    svc_sse_t *sse = svc_sse_open (mesh, "/api/run_sse/gap_s1", token, NULL);
    assert_non_null (sse);
    assert_non_null (svc_sse_wait (sse, "connection_status", 5000));
    for (int i = 0; i < 9; i++)
        svc_want_vote (mesh, token, assistant, i);
    //  A dropped last event shows only when the next one comes (and under
    //  load an event may reach the gateway late): vote on, bounded, until
    //  nine are there.
    for (int extra = 9; extra < 30 && !svc_sse_wait_count (sse, "feedback_submitted", 9, 1000); extra++)
        svc_want_vote (mesh, token, assistant, extra);
    if (s_count (sse, "feedback_submitted") < 9)
        s_dump (sse);
    assert_true (s_count (sse, "feedback_submitted") >= 9);
    s_id_t first, last;
    s_check_ids (sse, &first, &last); //  fails on any hole
    assert_true (last.seq - first.seq + 1 >= 9);
    if (s_resyncs (sse))
        s_dump (sse);
    assert_int_equal (s_resyncs (sse), 0); //  filled, not resynced
    svc_sse_close (&sse);
    free (token);
}

//  A broadcaster kill -9 and restart: the open stream goes on with the
//  same ids (the store's), no resync and no hole; then a reader that
//  reconnects with a Last-Event-ID the restarted broadcaster never held is
//  replayed exactly from the store's event log.
static void
test_broadcaster_restart_costs_nothing (void **state)
{
    svc_mesh_t *mesh = *state;
    char *token = svc_token (mesh, "carol", 600);
    char assistant[400];
    s_session (mesh, token, "restart_s1", assistant, NULL);
    svc_sse_t *sse = svc_sse_open (mesh, "/api/run_sse/restart_s1", token, NULL);
    assert_non_null (sse);
    assert_non_null (svc_sse_wait (sse, "connection_status", 5000));
    svc_want_vote (mesh, token, assistant, 0);
    const svc_event_t *event = svc_sse_wait (sse, "feedback_submitted", 5000);
    assert_non_null (event);
    s_id_t before = s_id (event->id);

    assert_int_equal (svc_mesh_kill (mesh, "broadcaster", SIGKILL), 0);
    assert_int_equal (svc_mesh_spawn (mesh, "broadcaster"), 0);
    assert_int_equal (svc_mesh_wait_status (mesh, "/readyz", 200, 20000), 0);
    //  Vote until an event after the restart arrives (the SUB socket may
    //  take a moment to resubscribe; what it missed is filled).
    int votes = 1;
    const svc_event_t *fresh = NULL;
    for (; votes < 20 && !fresh; votes++) {
        svc_want_vote (mesh, token, assistant, votes);
        fresh = svc_sse_wait (sse, "feedback_submitted", 1000);
    }
    assert_non_null (fresh);
    assert_false (svc_sse_closed (sse)); //  the same stream goes on
    assert_true (svc_sse_wait_count (sse, "feedback_submitted", (size_t) votes, 5000));
    s_id_t first, last;
    s_check_ids (sse, &first, &last); //  one epoch, no hole
    assert_int_equal (first.epoch, before.epoch);
    assert_int_equal (last.epoch, before.epoch);
    if (s_resyncs (sse))
        s_dump (sse);
    assert_int_equal (s_resyncs (sse), 0);
    svc_sse_close (&sse);

    //  Restart again: its history is empty. Votes while nobody reads,
    //  then a reconnect after `last`: the store's log has them.
    assert_int_equal (svc_mesh_kill (mesh, "broadcaster", SIGKILL), 0);
    assert_int_equal (svc_mesh_spawn (mesh, "broadcaster"), 0);
    assert_int_equal (svc_mesh_wait_status (mesh, "/readyz", 200, 20000), 0);
    for (int i = 0; i < 3; i++)
        svc_want_vote (mesh, token, assistant, 100 + i);
    char last_id[64];
    snprintf (last_id, sizeof last_id, "%lld-%lld", last.epoch, last.seq);
    sse = svc_sse_open (mesh, "/api/run_sse/restart_s1", token, last_id);
    assert_non_null (sse);
    assert_true (svc_sse_wait_count (sse, "feedback_submitted", 3, 5000));
    s_id_t replay_first, replay_last;
    s_check_ids (sse, &replay_first, &replay_last);
    assert_int_equal (replay_first.epoch, last.epoch);
    assert_int_equal (replay_first.seq, last.seq + 1);
    if (s_resyncs (sse))
        s_dump (sse);
    assert_int_equal (s_resyncs (sse), 0);
    svc_sse_close (&sse);
    free (token);
}

static void
test_slow_reader_is_dropped (void **state)
{
    svc_mesh_t *mesh = *state;
    char *token = svc_token (mesh, "dave", 600);
    char assistant[400], user[400];
    s_session (mesh, token, "slow_s1", assistant, user);

    //  A reader that never reads (small receive buffer), and a good one.
    int slow = s_raw_connect (mesh, 4096);
    char request[2048];
    int n = snprintf (request, sizeof request,
                      "GET /api/run_sse/slow_s1 HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "
                      "%s\r\nAccept: text/event-stream\r\n\r\n",
                      token);
    assert_int_equal (send (slow, request, (size_t) n, 0), n);
    svc_sse_t *good = svc_sse_open (mesh, "/api/run_sse/slow_s1", token, NULL);
    assert_non_null (good);
    assert_non_null (svc_sse_wait (good, "connection_status", 5000));
    //  The slow stream is open once the gateway counts two streams.
    double deadline = svc_now_ms () + 5000;
    bool both = false;
    while (!both && svc_now_ms () < deadline) {
        svc_response_t response;
        assert_int_equal (svc_http (mesh, "GET", "/metrics", NULL, NULL, &response), 0);
        both = strstr (response.body, "chatmesh_gateway_sse_connections 2\n") != NULL;
        svc_response_free (&response);
        if (!both)
            svc_sse_wait (good, NULL, 50);
    }
    assert_true (both);

    //  Edits of ~9,000 characters: each message_edited event carries the
    //  content twice, ~18 KB. The kernel buffers of the slow socket grow
    //  (loopback autotuning) before a send would block, so edit until the
    //  gateway drops the slow stream (bounded). The answer is edited, in
    //  place: a question would gain a version per edit, and it holds 100.
    char *content = malloc (9100);
    char path[600];
    snprintf (path, sizeof path, "/api/messages/%s", assistant);
    double worst = 0;
    bool dropped = false;
    int edits = 0;
    for (int i = 0; i < 600 && !dropped; i++) {
        int len = snprintf (content, 9100, "{\"content\": \"edit %d ", i);
        memset (content + len, 'a' + (i % 26), 9000);
        snprintf (content + len + 9000, 100, "\", \"trigger_regeneration\": false}");
        double t0 = svc_now_ms ();
        svc_response_t response;
        assert_int_equal (svc_http (mesh, "PUT", path, token, content, &response), 0);
        assert_int_equal (response.status, 200);
        svc_response_free (&response);
        const svc_event_t *event = svc_sse_wait (good, "message_edited", 5000);
        assert_non_null (event);
        if (event->received_ms - t0 > worst)
            worst = event->received_ms - t0;
        edits++;
        if (i % 10 == 9) {
            assert_int_equal (svc_http (mesh, "GET", "/metrics", NULL, NULL, &response), 0);
            dropped = strstr (response.body, "chatmesh_gateway_sse_dropped_total 1\n") != NULL;
            svc_response_free (&response);
        }
    }
    free (content);
    assert_true (dropped);
    //  The good reader got every edit, promptly, in order.
    assert_int_equal (s_count (good, "message_edited"), edits);
    assert_true (worst < 1000.0);
    s_id_t first, last;
    s_check_ids (good, &first, &last);

    //  The slow one was closed by the gateway: reading now ends in EOF.
    bool eof;
    char *rest = s_read_to_eof (slow, 10000, &eof);
    close (slow);
    assert_true (eof);
    assert_non_null (strstr (rest, "HTTP/1.1 200"));
    free (rest);
    svc_response_t response;
    assert_int_equal (svc_http (mesh, "GET", "/metrics", NULL, NULL, &response), 0);
    assert_non_null (strstr (response.body, "chatmesh_gateway_sse_dropped_total 1\n"));
    svc_response_free (&response);
    assert_false (svc_sse_closed (good));
    svc_sse_close (&good);
    free (token);
}

//  ---------------------------------------------------------------------
//  Each test runs its own mesh with its own settings; the teardown stops it
//  even when the test fails.

static int
s_setup_replay (void **state)
{
    //  Short keepalives so the test sees comments within a second.
    const char *env[] = {"CHAT_ACTIONS_RATE_LIMIT=0", "CHATMESH_SSE_KEEPALIVE_MS=300", NULL};
    return svc_fixture_start (state, env);
}

static int
s_setup_gap (void **state)
{
    //  Test-only: the gateway drops every 3rd live event before any stream
    //  sees it (debug logs name each drop).
    const char *env[] = {"CHAT_ACTIONS_RATE_LIMIT=0", "CHATMESH_SSE_TEST_DROP_EVERY=3",
                         "CHATMESH_LOG_LEVEL=debug", NULL};
    return svc_fixture_start (state, env);
}

static int
s_setup_plain (void **state)
{
    const char *env[] = {"CHAT_ACTIONS_RATE_LIMIT=0", NULL};
    return svc_fixture_start (state, env);
}

static int
s_setup_slow (void **state)
{
    //  The smallest per-stream queue (4 KB).
    const char *env[] = {"CHAT_ACTIONS_RATE_LIMIT=0", "CHATMESH_SSE_QUEUE_BYTES=4096",
                         "CHATMESH_LOG_LEVEL=debug", NULL};
    return svc_fixture_start (state, env);
}

int
main (void)
{
    signal (SIGPIPE, SIG_IGN);
    if (getenv ("SVC_SSE_FILTER"))
        cmocka_set_test_filter (getenv ("SVC_SSE_FILTER"));
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown (test_replay_is_exact, s_setup_replay,
                                         svc_fixture_teardown),
        cmocka_unit_test_setup_teardown (test_gap_is_filled, s_setup_gap, svc_fixture_teardown),
        cmocka_unit_test_setup_teardown (test_broadcaster_restart_costs_nothing, s_setup_plain,
                                         svc_fixture_teardown),
        cmocka_unit_test_setup_teardown (test_slow_reader_is_dropped, s_setup_slow,
                                         svc_fixture_teardown),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
