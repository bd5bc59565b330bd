/*  test_gw_sse: framing, cursor verdicts, queue overflow, the writer fast
    path over a socketpair (order, dedup, keepalive, gap hand-back, slow
    reader, gone client, shutdown), errors mapping, JSON conversion and
    OpenAPI coverage of the router.                                     */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "cm_error.h"
#include "cm_event.h"
#include "gw_errors.h"
#include "gw_hub.h"
#include "gw_json.h"
#include "gw_openapi.h"
#include "gw_route.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static void
test_framing (void **state)
{
    (void) state;
    json_t *data = json_pack ("{s:s}", "content", "a\r\n\nevent: x\n\ndata: y");
    size_t len;
    char *frame = gw_event_format ("5-2", "message_edited", data, &len);
    assert_non_null (frame);
    assert_int_equal (strlen (frame), len);
    assert_string_equal (frame, "id: 5-2\nevent: message_edited\ndata: {\"content\":\"a\\r\\n\\nevent: "
                                "x\\n\\ndata: y\"}\n\n");
    //  Exactly one blank line: the end of the frame.
    assert_true (strstr (frame, "\n\n") == frame + len - 2);
    free (frame);
    assert_null (gw_event_format ("5-2\n", "x", data, &len));
    assert_null (gw_event_format (NULL, "a\rb", data, &len));
    frame = gw_event_format (NULL, "connection_status", data, &len);
    assert_int_equal (strncmp (frame, "event: ", 7), 0);
    free (frame);
    json_decref (data);
}

static void
test_cursor (void **state)
{
    (void) state;
    gw_cursor_t c = {0};
    assert_int_equal (gw_cursor_check (&c, (cm_event_id_t) {7, 9}), GW_CURSOR_SEND);
    gw_cursor_advance (&c, (cm_event_id_t) {7, 9});
    assert_int_equal (gw_cursor_check (&c, (cm_event_id_t) {7, 10}), GW_CURSOR_SEND);
    assert_int_equal (gw_cursor_check (&c, (cm_event_id_t) {7, 9}), GW_CURSOR_DUPLICATE);
    assert_int_equal (gw_cursor_check (&c, (cm_event_id_t) {7, 3}), GW_CURSOR_DUPLICATE);
    assert_int_equal (gw_cursor_check (&c, (cm_event_id_t) {7, 12}), GW_CURSOR_GAP);
    assert_int_equal (gw_cursor_check (&c, (cm_event_id_t) {8, 1}), GW_CURSOR_EPOCH);
}

static gw_event_t *
s_event (const char *id, const char *type, size_t pad)
{
    char *text = calloc (1, pad + 1);
    memset (text, 'x', pad);
    json_t *data = json_pack ("{s:s, s:s}", "taskId", "regen_1", "pad", text);
    gw_event_t *event = gw_event_synthetic (id, type, data);
    json_decref (data);
    free (text);
    return event;
}

static void
test_stream_queue_and_overflow (void **state)
{
    (void) state;
    gw_stream_t *stream = gw_stream_new (4096);
    gw_event_t *small = s_event ("1-1", "a", 10);
    assert_string_equal (gw_event_task_id (small), "regen_1");
    assert_true (gw_event_has_id (small));
    assert_int_equal (gw_stream_push (stream, small), 0);
    gw_event_t *out = NULL;
    assert_int_equal (gw_stream_pop (stream, 10, &out), 0);
    assert_ptr_equal (out, small);
    gw_event_unref (&out);
    assert_int_equal (gw_stream_pop (stream, 10, &out), CM_ETIMEOUT);
    gw_event_t *big = s_event ("1-2", "a", 3000);
    assert_int_equal (gw_stream_push (stream, big), 0);
    assert_int_equal (gw_stream_push (stream, big), CM_EFULL);
    assert_int_equal (gw_stream_pop (stream, 10, &out), CM_EFULL);
    gw_event_unref (&big);
    gw_event_unref (&small);
    gw_stream_destroy (&stream);
    stream = gw_stream_new (4096);
    gw_stream_close (stream);
    assert_int_equal (gw_stream_pop (stream, 1000, &out), CM_ECANCELLED);
    gw_stream_destroy (&stream);
}

//  gw_stream_run against a fake connection and a fake history.
typedef struct {
    char out[8192];
    size_t len;
    int history_calls;
    bool history_complete; //  the fake history's answer: complete, but no events
} s_conn_t;

static int
s_write (void *arg, const char *data, size_t len)
{
    s_conn_t *conn = arg;
    if (conn->len + len >= sizeof conn->out)
        return -1;
    memcpy (conn->out + conn->len, data, len);
    conn->len += len;
    conn->out[conn->len] = 0;
    return 0;
}

static int
s_history (void *arg, const char *after, const char *until, cm_value_t **payload)
{
    s_conn_t *conn = arg;
    conn->history_calls++;
    (void) after;
    (void) until;
    *payload = cm_map_new ();
    cm_map_set_bool (*payload, "complete", conn->history_complete);
    cm_map_set (*payload, "events", cm_arr_new ());
    return 0;
}

//  Checks the data of every connection_status and session_updated frame in
//  out (the two the gateway writes itself) against cm_event.h; returns how
//  many there were.
static int
s_check_own_frames (const char *out)
{
    int checked = 0;
    for (const char *at = strstr (out, "event: "); at; at = strstr (at + 1, "event: ")) {
        const char *name = at + 7;
        size_t len = strcspn (name, "\n");
        cm_event_t event = cm_event_from_name (name, len);
        if (event != CM_EVENT_CONNECTION_STATUS && event != CM_EVENT_SESSION_UPDATED)
            continue;
        const char *data = strstr (name, "\ndata: ");
        assert_non_null (data);
        data += 7;
        json_error_t error;
        json_t *json = json_loadb (data, strcspn (data, "\n"), 0, &error);
        assert_non_null (json);
        cm_value_t *value = gw_json_to_value (json, 4);
        json_decref (json);
        char why[128] = "";
        if (cm_event_validate (event, value, why, sizeof why))
            fail_msg ("%.*s: %s", (int) len, name, why);
        cm_value_destroy (&value);
        checked++;
    }
    return checked;
}

static void
test_run_until_task_and_resync (void **state)
{
    (void) state;
    gw_stream_t *stream = gw_stream_new (1 << 20);
    gw_event_t *a = s_event ("3-1", "regeneration_progress", 1);
    gw_event_t *b = s_event ("4-1", "message_regenerated", 1); //  epoch change
    gw_stream_push (stream, a);
    gw_stream_push (stream, a); //  duplicate: written once
    gw_stream_push (stream, b);
    s_conn_t conn = {0};
    gw_stream_params_t params = {.session_id = "s1", .last_event_id = "3-0", .until_task_id = "regen_1",
                              .keepalive_ms = 1000, .write = s_write, .history = s_history, .arg = &conn};
    assert_int_equal (gw_stream_run (stream, &params), GW_STREAM_END_DONE);
    assert_int_equal (conn.history_calls, 1);
    assert_int_equal (strncmp (conn.out, "event: connection_status\n", 25), 0);
    char *resync = strstr (conn.out, "\"resync\":true");
    assert_non_null (resync);
    //  connection_status, the resync after 3-0 (history incomplete) and the
    //  one for the new epoch: each with the data cm_event.h lists.
    assert_int_equal (s_check_own_frames (conn.out), 3);
    char *first = strstr (conn.out, "id: 3-1\n");
    assert_non_null (first);
    assert_null (strstr (first + 1, "id: 3-1\n"));
    assert_non_null (strstr (conn.out, "id: 4-1\nevent: message_regenerated"));
    gw_event_unref (&a);
    gw_event_unref (&b);
    gw_stream_destroy (&stream);
}

//  A live gap that history says it covered but did not fill (a source that
//  has not received the events yet): the stream resyncs before the next
//  event instead of skipping past the missing ones unannounced.
static void
test_unfilled_gap_resyncs (void **state)
{
    (void) state;
    gw_stream_t *stream = gw_stream_new (1 << 20);
    gw_event_t *a = s_event ("3-2", "regeneration_progress", 1);
    gw_event_t *b = s_event ("3-5", "message_regenerated", 1); //  3-3, 3-4 missing
    gw_stream_push (stream, a);
    gw_stream_push (stream, b);
    s_conn_t conn = {.history_complete = true};
    gw_stream_params_t params = {.session_id = "s1", .last_event_id = "3-1", .until_task_id = "regen_1",
                              .keepalive_ms = 1000, .write = s_write, .history = s_history, .arg = &conn};
    assert_int_equal (gw_stream_run (stream, &params), GW_STREAM_END_DONE);
    assert_int_equal (conn.history_calls, 2); //  the replay after 3-1, the gap after 3-2
    char *second = strstr (conn.out, "id: 3-2\n");
    assert_non_null (second);
    char *resync = strstr (second, "\"resync\":true");
    assert_non_null (resync);
    char *last = strstr (conn.out, "id: 3-5\n");
    assert_non_null (last);
    assert_true (resync < last);
    assert_true (strstr (conn.out, "\"resync\":true") == resync); //  the replay itself was whole
    gw_event_unref (&a);
    gw_event_unref (&b);
    gw_stream_destroy (&stream);
}

//  ---------------------------------------------------------------------
//  The writer fast path, over a socketpair

typedef struct {
    gw_stream_t *stream;
    gw_stream_params_t params;
    int fd;
    int history_calls;
    gw_stream_end_t end;
} s_live_t;

static int
s_sock_write (void *arg, const char *data, size_t len)
{
    s_live_t *live = arg;
    size_t done = 0;
    while (done < len) {
        struct pollfd p = {live->fd, POLLOUT, 0};
        if (poll (&p, 1, 2000) <= 0)
            return -1;
        ssize_t n = send (live->fd, data + done, len - done, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n < 0 && errno != EAGAIN)
            return -1;
        done += n > 0 ? (size_t) n : 0;
    }
    return 0;
}

static int
s_sock_history (void *arg, const char *after, const char *until, cm_value_t **payload)
{
    s_live_t *live = arg;
    (void) after;
    (void) until;
    live->history_calls++;
    *payload = cm_map_new ();
    cm_map_set_bool (*payload, "complete", false);
    cm_map_set (*payload, "events", cm_arr_new ());
    return 0;
}

static void *
s_live_main (void *arg)
{
    s_live_t *live = arg;
    live->end = gw_stream_run (live->stream, &live->params);
    return NULL;
}

static atomic_int s_written;

static void
s_count_written (void *arg)
{
    (void) arg;
    atomic_fetch_add (&s_written, 1);
}

//  Reads from fd until `needle` was seen (true) or 3 s passed.
static bool
s_read_until (int fd, char *buf, size_t size, size_t *len, const char *needle)
{
    for (int i = 0; i < 300 && !strstr (buf, needle); i++) {
        struct pollfd p = {fd, POLLIN, 0};
        if (poll (&p, 1, 10) <= 0)
            continue;
        ssize_t n = recv (fd, buf + *len, size - *len - 1, 0);
        if (n <= 0)
            break;
        *len += (size_t) n;
        buf[*len] = 0;
    }
    return strstr (buf, needle) != NULL;
}

static void
s_wait_fast (gw_stream_t *stream)
{
    for (int i = 0; i < 300 && !gw_stream_is_fast (stream); i++)
        usleep (10000);
    assert_true (gw_stream_is_fast (stream));
}

static gw_hub_t *
s_hub (char *endpoint, size_t size)
{
    snprintf (endpoint, size, "ipc:///tmp/test_gw_sse_%d.ipc", (int) getpid ());
    gw_hub_options_t options = {.writers = 2, .keepalive_ms = 100, .delivered = s_count_written};
    gw_hub_t *hub = gw_hub_new (endpoint, NULL, &options);
    assert_non_null (hub);
    return hub;
}

static void
test_fast_path (void **state)
{
    (void) state;
    char endpoint[128];
    gw_hub_t *hub = s_hub (endpoint, sizeof endpoint);
    int pair[2];
    assert_int_equal (socketpair (AF_UNIX, SOCK_STREAM, 0, pair), 0);
    s_live_t live = {.stream = gw_stream_new (8192), .fd = pair[0]};
    live.params = (gw_stream_params_t){.session_id = "s1", .keepalive_ms = 100,
                                    .write = s_sock_write, .history = s_sock_history,
                                    .arg = &live};
    gw_stream_set_fd (live.stream, pair[0]);
    assert_int_equal (gw_hub_attach (hub, "s1", live.stream), 0);
    assert_int_equal (gw_hub_stream_count (hub), 1);
    pthread_t thread;
    assert_int_equal (pthread_create (&thread, NULL, s_live_main, &live), 0);
    static char buf[1 << 16];
    size_t len = 0;
    buf[0] = 0;
    assert_true (s_read_until (pair[1], buf, sizeof buf, &len, "event: connection_status"));
    s_wait_fast (live.stream);

    //  Writers write in order, once each; the thread stays parked.
    atomic_store (&s_written, 0);
    gw_event_t *e1 = s_event ("1-1", "a", 1), *e2 = s_event ("1-2", "b", 1);
    gw_event_t *e3 = s_event ("1-3", "c", 1), *e5 = s_event ("1-5", "d", 1);
    assert_int_equal (gw_hub_deliver (hub, "s1", e1), 1);
    assert_int_equal (gw_hub_deliver (hub, "s1", e2), 1);
    assert_int_equal (gw_hub_deliver (hub, "s1", e2), 1); //  duplicate: skipped
    assert_int_equal (gw_hub_deliver (hub, "s1", e3), 1);
    assert_int_equal (gw_hub_deliver (hub, "other", e3), 0);
    assert_int_equal (atomic_load (&s_written), 3);
    assert_true (gw_stream_is_fast (live.stream));
    assert_true (s_read_until (pair[1], buf, sizeof buf, &len, "id: 1-3\n"));
    char *one = strstr (buf, "id: 1-1\n"), *two = strstr (buf, "id: 1-2\n");
    assert_true (one && two && one < two && two < strstr (buf, "id: 1-3\n"));
    assert_null (strstr (two + 1, "id: 1-2\n"));
    //  Keepalive from the writers during silence.
    assert_true (s_read_until (pair[1], buf, sizeof buf, &len, ": keepalive\n\n"));

    //  A gap goes to the thread: history (incomplete here), resync, event,
    //  and then back to the fast path.
    assert_int_equal (gw_hub_deliver (hub, "s1", e5), 1);
    assert_true (s_read_until (pair[1], buf, sizeof buf, &len, "id: 1-5\n"));
    assert_int_equal (live.history_calls, 1);
    assert_non_null (strstr (buf, "\"resync\":true"));
    s_wait_fast (live.stream);

    //  An event pushed while the writers own the socket takes it back
    //  (push in PARKED, gw_stream_fsm.h): the thread writes it, in order,
    //  and parks again.
    gw_event_t *e6 = s_event ("1-6", "e", 1);
    assert_int_equal (gw_stream_push (live.stream, e6), 0);
    assert_true (s_read_until (pair[1], buf, sizeof buf, &len, "id: 1-6\n"));
    s_wait_fast (live.stream);
    gw_event_unref (&e6);

    //  A reader that stops reading: the socket fills, the queue (8 KB)
    //  overflows, the stream ends as OVERFLOW and others are not held up.
    gw_event_t *big = s_event ("1-6", "big", 3000);
    for (int i = 0; i < 2000 && !live.end; i++) {
        char id[32];
        snprintf (id, sizeof id, "1-%d", 6 + i);
        gw_event_t *event = s_event (id, "big", 3000);
        gw_hub_deliver (hub, "s1", event);
        gw_event_unref (&event);
        if (i % 50 == 49)
            usleep (1000);
    }
    pthread_join (thread, NULL);
    assert_int_equal (live.end, GW_STREAM_END_OVERFLOW);
    gw_hub_detach (hub, "s1", live.stream);
    assert_int_equal (gw_hub_stream_count (hub), 0);
    gw_stream_destroy (&live.stream);
    close (pair[0]);
    close (pair[1]);
    gw_event_unref (&big);
    gw_event_unref (&e1);
    gw_event_unref (&e2);
    gw_event_unref (&e3);
    gw_event_unref (&e5);
    gw_hub_destroy (&hub);
    unlink (endpoint + 6);
}

static void
test_fast_path_client_gone_and_close (void **state)
{
    (void) state;
    char endpoint[128];
    gw_hub_t *hub = s_hub (endpoint, sizeof endpoint);
    //  A client that goes away is noticed by the writers' check.
    int pair[2];
    assert_int_equal (socketpair (AF_UNIX, SOCK_STREAM, 0, pair), 0);
    s_live_t live = {.stream = gw_stream_new (8192), .fd = pair[0]};
    live.params = (gw_stream_params_t){.session_id = "s2", .keepalive_ms = 100,
                                    .write = s_sock_write, .history = s_sock_history,
                                    .arg = &live};
    gw_stream_set_fd (live.stream, pair[0]);
    assert_int_equal (gw_hub_attach (hub, "s2", live.stream), 0);
    pthread_t thread;
    assert_int_equal (pthread_create (&thread, NULL, s_live_main, &live), 0);
    s_wait_fast (live.stream);
    close (pair[1]);
    pthread_join (thread, NULL);
    assert_int_equal (live.end, GW_STREAM_END_CLIENT_GONE);
    gw_hub_detach (hub, "s2", live.stream);
    gw_stream_destroy (&live.stream);
    close (pair[0]);

    //  Shutdown wakes a parked stream.
    assert_int_equal (socketpair (AF_UNIX, SOCK_STREAM, 0, pair), 0);
    live = (s_live_t){.stream = gw_stream_new (8192), .fd = pair[0]};
    live.params = (gw_stream_params_t){.session_id = "s2", .keepalive_ms = 100000,
                                    .write = s_sock_write, .history = s_sock_history,
                                    .arg = &live};
    gw_stream_set_fd (live.stream, pair[0]);
    assert_int_equal (gw_hub_attach (hub, "s2", live.stream), 0);
    assert_int_equal (pthread_create (&thread, NULL, s_live_main, &live), 0);
    s_wait_fast (live.stream);
    gw_hub_close_all (hub);
    pthread_join (thread, NULL);
    assert_int_equal (live.end, GW_STREAM_END_CLOSED);
    gw_hub_detach (hub, "s2", live.stream);
    assert_int_equal (gw_hub_attach (hub, "s2", live.stream), CM_ECANCELLED);
    gw_stream_destroy (&live.stream);
    close (pair[0]);
    close (pair[1]);
    gw_hub_destroy (&hub);
    unlink (endpoint + 6);
}

//  A detached stream: gw_stream_run returns once the stream is live, the
//  writers serve it, a slow-path thread fills a gap (history, resync) with
//  no connection thread, and the end (client gone) reaches `ended` once.
static atomic_int s_ended_calls;
static atomic_int s_ended_end;

static void
s_ended (void *arg, int end)
{
    (void) arg;
    atomic_store (&s_ended_end, end);
    atomic_fetch_add (&s_ended_calls, 1);
}

static void
test_detached_stream (void **state)
{
    (void) state;
    char endpoint[128];
    gw_hub_t *hub = s_hub (endpoint, sizeof endpoint);
    int pair[2];
    assert_int_equal (socketpair (AF_UNIX, SOCK_STREAM, 0, pair), 0);
    s_live_t live = {.stream = gw_stream_new (8192), .fd = pair[0]};
    live.params = (gw_stream_params_t){.session_id = "s1", .keepalive_ms = 100,
                                    .write = s_sock_write, .history = s_sock_history,
                                    .ended = s_ended, .arg = &live};
    gw_stream_set_fd (live.stream, pair[0]);
    atomic_store (&s_ended_calls, 0);
    assert_int_equal (gw_hub_attach (hub, "s1", live.stream), 0);
    //  Returns at once: no thread stays with the stream.
    assert_int_equal (gw_stream_run (live.stream, &live.params), GW_STREAM_END_DETACHED);
    static char buf[1 << 16];
    size_t len = 0;
    buf[0] = 0;
    assert_true (s_read_until (pair[1], buf, sizeof buf, &len, "event: connection_status"));
    gw_event_t *e1 = s_event ("1-1", "a", 1), *e2 = s_event ("1-2", "b", 1);
    gw_event_t *e5 = s_event ("1-5", "d", 1);
    assert_int_equal (gw_hub_deliver (hub, "s1", e1), 1);
    assert_int_equal (gw_hub_deliver (hub, "s1", e2), 1);
    assert_true (s_read_until (pair[1], buf, sizeof buf, &len, "id: 1-2\n"));
    //  A gap: the slow path asks history (incomplete), resyncs, writes 1-5.
    assert_int_equal (gw_hub_deliver (hub, "s1", e5), 1);
    assert_true (s_read_until (pair[1], buf, sizeof buf, &len, "id: 1-5\n"));
    assert_int_equal (live.history_calls, 1);
    assert_non_null (strstr (buf, "\"resync\":true"));
    s_wait_fast (live.stream);
    assert_int_equal (atomic_load (&s_ended_calls), 0);
    assert_int_equal (gw_hub_stream_count (hub), 1);
    //  The client goes: the writers notice (keepalive check), the hub ends
    //  and frees the stream and tells `ended`.
    close (pair[1]);
    for (int i = 0; i < 300 && atomic_load (&s_ended_calls) == 0; i++)
        usleep (10000);
    assert_int_equal (atomic_load (&s_ended_calls), 1);
    assert_int_equal (atomic_load (&s_ended_end), GW_STREAM_END_CLIENT_GONE);
    assert_int_equal (gw_hub_stream_count (hub), 0);
    gw_event_unref (&e1);
    gw_event_unref (&e2);
    gw_event_unref (&e5);
    gw_hub_destroy (&hub);
    close (pair[0]);
}

//  Shutdown ends detached streams: the hub's destroy closes them first.
static void
test_detached_stream_shutdown (void **state)
{
    (void) state;
    char endpoint[128];
    gw_hub_t *hub = s_hub (endpoint, sizeof endpoint);
    int pair[2];
    assert_int_equal (socketpair (AF_UNIX, SOCK_STREAM, 0, pair), 0);
    s_live_t live = {.stream = gw_stream_new (8192), .fd = pair[0]};
    live.params = (gw_stream_params_t){.session_id = "s1", .keepalive_ms = 100000,
                                    .write = s_sock_write, .history = s_sock_history,
                                    .ended = s_ended, .arg = &live};
    gw_stream_set_fd (live.stream, pair[0]);
    atomic_store (&s_ended_calls, 0);
    assert_int_equal (gw_hub_attach (hub, "s1", live.stream), 0);
    assert_int_equal (gw_stream_run (live.stream, &live.params), GW_STREAM_END_DETACHED);
    gw_hub_close_all (hub);
    gw_hub_destroy (&hub);
    assert_int_equal (atomic_load (&s_ended_calls), 1);
    assert_int_equal (atomic_load (&s_ended_end), GW_STREAM_END_CLOSED);
    close (pair[0]);
    close (pair[1]);
}

static void
test_error_mapping (void **state)
{
    (void) state;
    gw_error_t e;
    gw_error_map (GW_R_SESSION_GET, CM_ENOTFOUND, NULL, &e);
    assert_int_equal (e.status, 404);
    gw_error_map (GW_R_REGENERATE, CM_EINVAL, NULL, &e);
    assert_int_equal (e.status, 400);
    gw_error_map (GW_R_MESSAGE_EDIT, CM_EINVAL, NULL, &e);
    assert_int_equal (e.status, 422);
    cm_value_t *payload = cm_map_new ();
    cm_map_set_int (payload, "retry_after_ms", 2001);
    gw_error_map (GW_R_FEEDBACK_PUT, CM_ERATELIMIT, payload, &e);
    assert_int_equal (e.status, 429);
    assert_int_equal (e.retry_after, 3);
    cm_value_destroy (&payload);
    gw_error_map (GW_R_FEEDBACK_PUT, CM_ECONFLICT, NULL, &e);
    assert_int_equal (e.status, 409);
    gw_error_map (GW_R_FEEDBACK_PUT, CM_EBACKEND, NULL, &e);
    assert_int_equal (e.status, 503);
    assert_true (e.retry_after > 0);
    gw_error_map (GW_R_FEEDBACK_PUT, CM_ETIMEOUT, NULL, &e);
    assert_int_equal (e.status, 504);
    gw_error_map (GW_R_FEEDBACK_PUT, CM_EDB, NULL, &e);
    assert_int_equal (e.status, 503);
    assert_null (strstr (e.error, "database"));
}

static void
test_json_roundtrip (void **state)
{
    (void) state;
    json_t *in = json_loads ("{\"a\":[1,2.5,\"s\",null,true,{\"b\":false}]}", 0, NULL);
    cm_value_t *value = gw_json_to_value (in, 8);
    assert_non_null (value);
    json_t *out = gw_json_from_value (value);
    assert_true (json_equal (in, out));
    assert_null (gw_json_to_value (in, 2)); //  deeper than allowed
    json_decref (in);
    json_decref (out);
    cm_value_destroy (&value);
}

static void
test_openapi_covers_router (void **state)
{
    (void) state;
    json_t *doc = json_loads (gw_openapi_json (), 0, NULL);
    assert_non_null (doc);
    json_t *paths = json_object_get (doc, "paths");
    size_t documented = 0;
    const char *path;
    json_t *item;
    json_object_foreach (paths, path, item) {
        const char *method;
        json_t *op;
        json_object_foreach (item, method, op) {
            documented++;
            bool routed = false;
            for (int r = GW_R_HEALTHZ; r <= GW_R_STATIC; r++) {
                const gw_route_info_t *info = gw_route_info ((gw_route_id_t) r);
                if (strcmp (info->pattern, path) == 0 && strcasecmp (info->method, method) == 0)
                    routed = true;
            }
            if (!routed)
                fail_msg ("documented but not routed: %s %s", method, path);
        }
    }
    for (int r = GW_R_HEALTHZ; r <= GW_R_STATIC; r++) {
        const gw_route_info_t *info = gw_route_info ((gw_route_id_t) r);
        char method[16];
        size_t i;
        for (i = 0; info->method[i] && i < sizeof method - 1; i++)
            method[i] = (char) (info->method[i] | 0x20);
        method[i] = 0;
        if (!json_object_get (json_object_get (paths, info->pattern), method))
            fail_msg ("routed but not documented: %s %s", info->method, info->pattern);
    }
    assert_int_equal (documented, GW_R_STATIC - GW_R_HEALTHZ + 1);
    json_decref (doc);
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_framing),        cmocka_unit_test (test_cursor),
        cmocka_unit_test (test_stream_queue_and_overflow),
        cmocka_unit_test (test_run_until_task_and_resync),
        cmocka_unit_test (test_unfilled_gap_resyncs),
        cmocka_unit_test (test_fast_path),
        cmocka_unit_test (test_fast_path_client_gone_and_close),
        cmocka_unit_test (test_detached_stream),
        cmocka_unit_test (test_detached_stream_shutdown),
        cmocka_unit_test (test_error_mapping),  cmocka_unit_test (test_json_roundtrip),
        cmocka_unit_test (test_openapi_covers_router),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
