/*  test_gw_http: the gateway's HTTP side end to end against a fake store and
    a fake broadcaster (one zactor owning a ROUTER for the store, an XPUB and
    a ROUTER for history, all on ipc:// in a temp dir). HTTP goes over plain
    loopback sockets.                                                      */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "cm_codec.h"
#include "cm_error.h"
#include "cm_ids.h"
#include "cm_msg.h"
#include "cm_rpc.h"
#include "gw_config.h"
#include "gw_http.h"
#include "gw_jwt.h"

#include <arpa/inet.h>
#include <czmq.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define SECRET "test-gw-http-secret-0123456789"
#define EPOCH 1700000000000ULL

typedef struct {
    char dir[64];
    gw_config_t config;
    zactor_t *fake;
    gw_http_t *http;
    int port;
    char *alice, *bob;
} s_fixture_t;

//  ---------------------------------------------------------------------
//  Fake store + broadcaster

typedef struct {
    char session[64];
    char id[48];
    zchunk_t *body;
} s_held_t;

static void
s_reply (zsock_t *router, zframe_t *identity, cm_envelope_t *request, cm_value_t *ok, int code,
         const char *message, int64_t retry_after_ms)
{
    cm_envelope_t *reply;
    if (ok)
        reply = cm_envelope_reply_ok (request, ok);
    else {
        reply = cm_envelope_reply_error (request, code, message);
        if (retry_after_ms)
            cm_map_set_int (reply->payload, "retry_after_ms", retry_after_ms);
    }
    cm_router_reply (router, identity, reply);
    cm_envelope_destroy (&reply);
}

//  Requests the fake store refused because they broke the message table
//  (a type the store does not serve, or a payload off its schema): the
//  gateway must send only what the real store would take.
static atomic_int s_off_table;

static void
s_store_request (zsock_t *router, zframe_t *identity, cm_envelope_t *req)
{
    const cm_value_t *p = req->payload;
    cm_msg_access_t access = cm_msg_access (req->type);
    char why[128] = "";
    if ((access != CM_ACCESS_READ && access != CM_ACCESS_WRITE)
        || cm_msg_validate (req->type, p, why, sizeof why)) {
        fprintf (stderr, "fake store: %s off the table: %s\n", cm_msg_name (req->type), why);
        atomic_fetch_add (&s_off_table, 1);
        s_reply (router, identity, req, NULL, CM_EPROTO, "off the table", 0);
        return;
    }
    const char *user = cm_map_str_or (p, "user", "");
    cm_value_t *ok = cm_map_new ();
    switch (req->type) {
        case CM_MSG_PING:
            cm_map_set_str (ok, "service", "store");
            cm_map_set_int (ok, "regenerators", 1);
            break;
        case CM_MSG_SESSION_START: {
            cm_value_t *data = cm_map_new ();
            cm_map_set_str (data, "session_id", cm_map_str_or (p, "session_id", ""));
            cm_map_set_str (data, "user_message_id", "msg_1_s_user");
            cm_map_set_str (data, "assistant_message_id", "msg_2_s_assistant");
            cm_map_set_str (data, "task_id", "regen_task1");
            cm_map_set (ok, "data", data);
            cm_map_set_str (ok, "echo_user", user);
            cm_map_set_str (ok, "echo_query", cm_map_str_or (p, "query", ""));
            cm_map_set_int (ok, "echo_rate_limit", cm_map_int (p, "rate_limit", -1));
            cm_map_set_str (ok, "echo_ua", cm_map_str_or (p, "ua", ""));
            break;
        }
        case CM_MSG_SESSION_GET:
            if (strcmp (user, "alice") != 0) {
                cm_value_destroy (&ok);
                s_reply (router, identity, req, NULL, CM_ENOTFOUND, "no such session", 0);
                return;
            }
            cm_map_set (ok, "session", cm_map_new ());
            break;
        case CM_MSG_FEEDBACK_PUT:
            cm_map_set_str (ok, "feedback_id", "fb_1");
            cm_map_set_str (ok, "message_id", cm_map_str_or (p, "message_id", ""));
            cm_map_set_str (ok, "session_id", "s");
            cm_map_set_str (ok, "echo_type", cm_map_str_or (p, "feedback_type", ""));
            cm_map_set_bool (ok, "echo_has_metadata", cm_map_get (p, "metadata") != NULL);
            break;
        case CM_MSG_MESSAGE_EDIT:
            cm_value_destroy (&ok);
            s_reply (router, identity, req, NULL, CM_ERATELIMIT, "slow down", 1500);
            return;
        case CM_MSG_REGEN_CREATE:
            cm_value_destroy (&ok);
            s_reply (router, identity, req, NULL, CM_EINVAL,
                     "Only assistant messages can be regenerated.", 0);
            return;
        case CM_MSG_TASK_STATUS:
            cm_value_destroy (&ok);
            return; //  never answers: the gateway must time out
        default:
            cm_map_set_str (ok, "type", cm_msg_name (req->type));
            break;
    }
    s_reply (router, identity, req, ok, 0, NULL, 0);
}


//  What the real broadcaster answers every subscription with: a notice on
//  the topic with an empty event id (the gateway waits for it).
static void
s_welcome (zsock_t *xpub, const char *topic)
{
    cm_envelope_t *notice = cm_envelope_new (CM_MSG_EVENT, "");
    cm_map_set_str (notice->payload, "event", "subscribed");
    cm_map_set (notice->payload, "data", cm_map_new ());
    char *bytes;
    size_t size;
    if (cm_envelope_encode (notice, &bytes, &size) == 0) {
        zmsg_t *out = zmsg_new ();
        zmsg_addstr (out, topic);
        zmsg_addmem (out, "", 0);
        zmsg_addmem (out, bytes, size);
        zmsg_send (&out, xpub);
        free (bytes);
    }
    cm_envelope_destroy (&notice);
}

static void
s_fake (zsock_t *pipe, void *args)
{
    const char *dir = args;
    zsock_t *store = zsock_new_router (NULL);
    zsock_t *history = zsock_new_router (NULL);
    zsock_t *xpub = zsock_new (ZMQ_XPUB);
    assert_int_equal (zsock_bind (store, "ipc://%s/store", dir), 0);
    assert_int_equal (zsock_bind (history, "ipc://%s/history", dir), 0);
    assert_int_equal (zsock_bind (xpub, "ipc://%s/events", dir), 0);
    zlistx_t *held = zlistx_new ();
    zhashx_t *subscribed = zhashx_new ();
    bool drop_history = false;
    zsock_signal (pipe, 0);
    zpoller_t *poller = zpoller_new (pipe, store, history, xpub, NULL);
    while (true) {
        zsock_t *which = zpoller_wait (poller, 100);
        if (zpoller_terminated (poller))
            break;
        if (which == pipe) {
            zmsg_t *msg = zmsg_recv (pipe);
            char *command = zmsg_popstr (msg);
            if (streq (command, "$TERM")) {
                free (command);
                zmsg_destroy (&msg);
                break;
            }
            if (streq (command, "DROP"))
                drop_history = true;
            else if (streq (command, "PUB") || streq (command, "HOLD")) {
                //  PUB session id type: publish (and hold for history);
                //  HOLD: only hold (a lost live event).
                char *session = zmsg_popstr (msg), *id = zmsg_popstr (msg), *type = zmsg_popstr (msg);
                //  Wait (bounded) for the gateway's subscription.
                int64_t deadline = zclock_mono () + 3000;
                while (streq (command, "PUB") && !zhashx_lookup (subscribed, session)
                       && zclock_mono () < deadline) {
                    zframe_t *sub = zframe_recv (xpub);
                    if (sub && zframe_size (sub) > 1 && zframe_data (sub)[0] == 1) {
                        char *topic = strndup ((char *) zframe_data (sub) + 1, zframe_size (sub) - 1);
                        zhashx_insert (subscribed, topic, (void *) 1);
                        s_welcome (xpub, topic);
                        free (topic);
                    }
                    zframe_destroy (&sub);
                }
                cm_envelope_t *event = cm_envelope_new (CM_MSG_EVENT, "");
                cm_map_set_str (event->payload, "event", type);
                cm_value_t *data = cm_map_new ();
                cm_map_set_str (data, "sessionId", session);
                cm_map_set_str (data, "taskId", "regen_task1");
                cm_map_set_str (data, "content", "line1\r\n\nevent: fake\n\n");
                cm_map_set (event->payload, "data", data);
                char *bytes;
                size_t size;
                cm_envelope_encode (event, &bytes, &size);
                cm_envelope_destroy (&event);
                s_held_t *h = calloc (1, sizeof *h);
                snprintf (h->session, sizeof h->session, "%s", session);
                snprintf (h->id, sizeof h->id, "%s", id);
                h->body = zchunk_new (bytes, size);
                zlistx_add_end (held, h);
                if (streq (command, "PUB")) {
                    zmsg_t *out = zmsg_new ();
                    zmsg_addstr (out, session);
                    zmsg_addstr (out, id);
                    zmsg_addmem (out, bytes, size);
                    zmsg_send (&out, xpub);
                }
                free (bytes);
                free (session);
                free (id);
                free (type);
                zsock_signal (pipe, 0);
            }
            free (command);
            zmsg_destroy (&msg);
        }
        else if (which == xpub) {
            zframe_t *sub = zframe_recv (xpub);
            if (sub && zframe_size (sub) > 1) {
                char *topic = strndup ((char *) zframe_data (sub) + 1, zframe_size (sub) - 1);
                if (zframe_data (sub)[0] == 1) {
                    zhashx_insert (subscribed, topic, (void *) 1);
                    s_welcome (xpub, topic);
                }
                else
                    zhashx_delete (subscribed, topic);
                free (topic);
            }
            zframe_destroy (&sub);
        }
        else if (which == store || which == history) {
            zmsg_t *msg = zmsg_recv (which);
            zframe_t *identity = zmsg_pop (msg);
            zframe_t *body = zmsg_pop (msg);
            cm_envelope_t *req = NULL;
            if (cm_frame_decode (body, &req) == 0) {
                if (which == store)
                    s_store_request (store, identity, req);
                else if (req->type == CM_MSG_PING) {
                    cm_value_t *ok = cm_map_new ();
                    cm_map_set_str (ok, "service", "broadcaster");
                    s_reply (history, identity, req, ok, 0, NULL, 0);
                }
                else {
                    const char *session = cm_map_str_or (req->payload, "session_id", "");
                    const char *after = cm_map_str_or (req->payload, "after", "");
                    cm_event_id_t after_id = {0, 0};
                    cm_event_id_parse (after, &after_id);
                    cm_value_t *ok = cm_map_new ();
                    cm_map_set_int (ok, "epoch", (int64_t) EPOCH);
                    cm_map_set_bool (ok, "complete", !drop_history && after_id.epoch == EPOCH);
                    cm_value_t *events = cm_arr_new ();
                    for (s_held_t *h = zlistx_first (held); h && !drop_history; h = zlistx_next (held)) {
                        cm_event_id_t id;
                        cm_event_id_parse (h->id, &id);
                        if (strcmp (h->session, session) || id.seq <= after_id.seq)
                            continue;
                        cm_value_t *entry = cm_map_new ();
                        cm_map_set_str (entry, "id", h->id);
                        cm_map_set (entry, "body", cm_bin_new (zchunk_data (h->body), zchunk_size (h->body)));
                        cm_arr_push (events, entry);
                    }
                    cm_map_set (ok, "events", events);
                    s_reply (history, identity, req, ok, 0, NULL, 0);
                }
            }
            cm_envelope_destroy (&req);
            zframe_destroy (&identity);
            zframe_destroy (&body);
            zmsg_destroy (&msg);
        }
    }
    for (s_held_t *h = zlistx_first (held); h; h = zlistx_next (held)) {
        zchunk_destroy (&h->body);
        free (h);
    }
    zlistx_destroy (&held);
    zhashx_destroy (&subscribed);
    zpoller_destroy (&poller);
    zsock_destroy (&store);
    zsock_destroy (&history);
    zsock_destroy (&xpub);
}

static void
s_publish (s_fixture_t *f, const char *command, const char *session, const char *id,
           const char *type)
{
    zstr_sendx (f->fake, command, session, id, type, NULL);
    zsock_wait (f->fake);
}

//  ---------------------------------------------------------------------
//  HTTP over a socket

static int
s_connect (int port)
{
    int fd = socket (AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons ((uint16_t) port),
                               .sin_addr.s_addr = htonl (INADDR_LOOPBACK)};
    assert_int_equal (connect (fd, (struct sockaddr *) &addr, sizeof addr), 0);
    return fd;
}

//  Sends raw request text, reads the whole response (server closes).
static char *
s_http (s_fixture_t *f, const char *request)
{
    int fd = s_connect (f->port);
    assert_int_equal (send (fd, request, strlen (request), 0), (ssize_t) strlen (request));
    size_t cap = 65536, len = 0;
    char *buf = malloc (cap);
    while (true) {
        struct pollfd p = {fd, POLLIN, 0};
        assert_true (poll (&p, 1, 10000) > 0);
        ssize_t n = recv (fd, buf + len, cap - len - 1, 0);
        if (n <= 0)
            break;
        len += (size_t) n;
        buf[len] = 0;
        //  Complete once Content-Length bytes followed the headers (civetweb
        //  may keep the socket open while it drains an unread body).
        char *end = strstr (buf, "\r\n\r\n");
        char *length = strstr (buf, "Content-Length: ");
        if (end && length && length < end
            && len >= (size_t) (end + 4 - buf) + strtoul (length + 16, NULL, 10))
            break;
    }
    buf[len] = 0;
    close (fd);
    return buf;
}

static char *
s_req (s_fixture_t *f, const char *method, const char *path, const char *token, const char *body)
{
    char request[8192];
    char auth[2048] = "";
    if (token)
        snprintf (auth, sizeof auth, "Authorization: Bearer %s\r\n", token);
    snprintf (request, sizeof request,
              "%s %s HTTP/1.1\r\nHost: x\r\nUser-Agent: unit-test\r\n%s%s%zu\r\n\r\n%s", method,
              path, auth, body ? "Content-Type: application/json\r\nContent-Length: " : "Content-Length: ",
              body ? strlen (body) : 0, body ? body : "");
    return s_http (f, request);
}

static int
s_status (const char *response)
{
    int status = 0;
    sscanf (response, "HTTP/1.1 %d", &status);
    return status;
}

//  SSE: an open connection and what came so far.
typedef struct {
    int fd;
    char buf[65536];
    size_t len;
} s_sse_t;

static void
s_sse_open (s_fixture_t *f, s_sse_t *sse, const char *path, const char *token, const char *last)
{
    char request[4096], extra[256] = "";
    if (last)
        snprintf (extra, sizeof extra, "Last-Event-ID: %s\r\n", last);
    snprintf (request, sizeof request,
              "GET %s HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\nAuthorization: Bearer "
              "%s\r\n%s\r\n",
              path, token, extra);
    sse->fd = s_connect (f->port);
    sse->len = 0;
    sse->buf[0] = 0;
    assert_int_equal (send (sse->fd, request, strlen (request), 0), (ssize_t) strlen (request));
}

//  Reads until `needle` is in the stream (true) or 5 s pass / close (false).
static bool
s_sse_wait (s_sse_t *sse, const char *needle)
{
    int64_t deadline = zclock_mono () + 5000;
    while (!strstr (sse->buf, needle)) {
        int left = (int) (deadline - zclock_mono ());
        struct pollfd p = {sse->fd, POLLIN, 0};
        if (left <= 0 || poll (&p, 1, left) <= 0)
            return false;
        ssize_t n = recv (sse->fd, sse->buf + sse->len, sizeof sse->buf - sse->len - 1, 0);
        if (n <= 0)
            return false;
        sse->len += (size_t) n;
        sse->buf[sse->len] = 0;
    }
    return true;
}

//  ---------------------------------------------------------------------

static int
s_setup (void **state)
{
    s_fixture_t *f = calloc (1, sizeof *f);
    snprintf (f->dir, sizeof f->dir, "/tmp/gwtest-XXXXXX");
    assert_non_null (mkdtemp (f->dir));
    gw_config_defaults (&f->config, SECRET);
    snprintf (f->config.listen, sizeof f->config.listen, "127.0.0.1:0");
    snprintf (f->config.store_endpoint, sizeof f->config.store_endpoint, "ipc://%s/store", f->dir);
    snprintf (f->config.history_endpoint, sizeof f->config.history_endpoint, "ipc://%s/history",
              f->dir);
    snprintf (f->config.events_endpoint, sizeof f->config.events_endpoint, "ipc://%s/events",
              f->dir);
    snprintf (f->config.web_dir, sizeof f->config.web_dir, "%s", f->dir);
    f->config.http_threads = 16;
    f->config.sse_max_streams = 3;
    f->config.backend_timeout_ms = 300;
    //  Short keepalives: a closed test client is noticed (and its stream
    //  slot freed) on the next write.
    f->config.sse_keepalive_ms = 200;
    f->config.max_body_bytes = 1024;
    f->config.max_content_chars = 20;
    f->fake = zactor_new (s_fake, f->dir);
    char why[256];
    f->http = gw_http_new (&f->config, why, sizeof why);
    assert_non_null (f->http);
    f->port = gw_http_port (f->http);
    assert_true (f->port > 0);
    f->alice = gw_jwt_mint (SECRET, strlen (SECRET), "alice", time (NULL), 600);
    f->bob = gw_jwt_mint (SECRET, strlen (SECRET), "bob", time (NULL), 600);
    *state = f;
    return 0;
}

static int
s_teardown (void **state)
{
    s_fixture_t *f = *state;
    gw_http_destroy (&f->http);
    zactor_destroy (&f->fake);
    assert_int_equal (atomic_load (&s_off_table), 0);
    char command[128];
    snprintf (command, sizeof command, "rm -rf '%s'", f->dir);
    assert_int_equal (system (command), 0);
    free (f->alice);
    free (f->bob);
    free (f);
    return 0;
}

static void
test_healthz_and_headers (void **state)
{
    s_fixture_t *f = *state;
    char *r = s_req (f, "GET", "/healthz", NULL, NULL);
    assert_int_equal (s_status (r), 200);
    assert_non_null (strstr (r, "X-Content-Type-Options: nosniff"));
    assert_non_null (strstr (r, "{\"status\":\"ok\",\"pid\":"));
    free (r);
    r = s_req (f, "GET", "/readyz", NULL, NULL);
    assert_int_equal (s_status (r), 200);
    free (r);
}

static void
test_run_sse_post_json (void **state)
{
    s_fixture_t *f = *state;
    char *r = s_req (f, "POST", "/api/run_sse/test_session_123", f->alice,
                     "{\"query\": \"  h\\u00e9llo  \", \"extra\": 1}");
    assert_int_equal (s_status (r), 200);
    assert_non_null (strstr (r, "Cache-Control: no-store"));
    assert_non_null (strstr (r, "\"success\":true"));
    assert_non_null (strstr (r, "\"session_id\":\"test_session_123\""));
    assert_non_null (strstr (r, "\"task_id\":\"regen_task1\""));
    assert_non_null (strstr (r, "\"echo_user\":\"alice\""));
    assert_non_null (strstr (r, "\"echo_query\":\"h\\u00e9llo\"") ? "" : strstr (r, "\"echo_query\":\"h\xc3\xa9llo\""));
    assert_non_null (strstr (r, "\"echo_rate_limit\":60"));
    assert_non_null (strstr (r, "\"echo_ua\":\"unit-test\""));
    free (r);
}

static void
test_auth (void **state)
{
    s_fixture_t *f = *state;
    char *r = s_req (f, "GET", "/api/sessions/s1", NULL, NULL);
    assert_int_equal (s_status (r), 401);
    assert_non_null (strstr (r, "\"success\":false"));
    assert_non_null (strstr (r, "\"code\":\"unauthorized\""));
    free (r);
    char *expired = gw_jwt_mint (SECRET, strlen (SECRET), "alice", time (NULL), -5);
    r = s_req (f, "GET", "/api/sessions/s1", expired, NULL);
    assert_int_equal (s_status (r), 401);
    free (r);
    free (expired);
    r = s_req (f, "GET", "/api/sessions/s1",
               "eyJhbGciOiJub25lIn0.eyJzdWIiOiJhbGljZSIsImV4cCI6OTk5OTk5OTk5OX0.", NULL);
    assert_int_equal (s_status (r), 401);
    free (r);
    r = s_req (f, "GET", "/api/sessions/s1", f->bob, NULL);
    assert_int_equal (s_status (r), 404);
    free (r);
}

static void
test_validation (void **state)
{
    s_fixture_t *f = *state;
    const char *mid = "/api/messages/msg_abc_s1_assistant/feedback";
    char *r = s_req (f, "POST", mid, f->alice, "{\"feedback_type\": \"upvote\", \"metadata\": {\"a\": [1]}}");
    assert_int_equal (s_status (r), 200);
    assert_non_null (strstr (r, "\"feedback_id\":\"fb_1\""));
    assert_non_null (strstr (r, "\"echo_has_metadata\":true"));
    free (r);
    r = s_req (f, "POST", mid, f->alice, "{\"feedback_type\": \"meh\"}");
    assert_int_equal (s_status (r), 422);
    assert_non_null (strstr (r, "feedback_type"));
    free (r);
    r = s_req (f, "POST", mid, f->alice, "{\"feedback_type\": ");
    assert_int_equal (s_status (r), 400);
    free (r);
    r = s_req (f, "POST", "/api/messages/nope/feedback", f->alice, "{}");
    assert_int_equal (s_status (r), 400);
    assert_non_null (strstr (r, "invalid_message_id"));
    free (r);
    //  21 characters (max 20), each 2 bytes: counted in characters.
    r = s_req (f, "POST", "/api/run_sse/s1", f->alice,
               "{\"query\": \"\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
               "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\"}");
    assert_int_equal (s_status (r), 422);
    free (r);
    //  Wrong content type.
    char request[1024];
    snprintf (request, sizeof request,
              "POST %s HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\nContent-Type: "
              "text/plain\r\nContent-Length: 2\r\n\r\nhi",
              mid, f->alice);
    r = s_http (f, request);
    assert_int_equal (s_status (r), 415);
    free (r);
    //  Declared too big: 413 at once, without the body being sent.
    snprintf (request, sizeof request,
              "POST %s HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\nContent-Type: "
              "application/json\r\nContent-Length: 100000\r\n\r\n",
              mid, f->alice);
    r = s_http (f, request);
    assert_int_equal (s_status (r), 413);
    assert_non_null (strstr (r, "Connection: close\r\n"));
    free (r);
}

//  Reads one response with a Content-Length body from fd into buf.
static void
s_read_response (int fd, char *buf, size_t size)
{
    size_t len = 0;
    buf[0] = 0;
    while (true) {
        char *end = strstr (buf, "\r\n\r\n");
        char *length = strstr (buf, "Content-Length: ");
        if (end && length && length < end
            && len >= (size_t) (end + 4 - buf) + strtoul (length + 16, NULL, 10))
            return;
        struct pollfd p = {fd, POLLIN, 0};
        assert_true (poll (&p, 1, 5000) > 0);
        assert_true (len + 1 < size);
        ssize_t n = recv (fd, buf + len, 1, 0); //  byte by byte: stop at this response
        assert_true (n > 0);
        len += (size_t) n;
        buf[len] = 0;
    }
}

static void
test_one_request_per_connection (void **state)
{
    s_fixture_t *f = *state;
    //  Two pipelined requests: the first is answered with Connection:
    //  close, then the server closes; the second is never run (only the
    //  first request of a connection passed the vestibule's check).
    int fd = s_connect (f->port);
    const char *request = "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
                          "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n";
    char buf[4096];
    assert_int_equal (send (fd, request, strlen (request), 0), (ssize_t) strlen (request));
    s_read_response (fd, buf, sizeof buf);
    assert_int_equal (s_status (buf), 200);
    assert_non_null (strstr (buf, "Connection: close\r\n"));
    struct pollfd p = {fd, POLLIN, 0};
    assert_true (poll (&p, 1, 5000) > 0);
    assert_true (recv (fd, buf, sizeof buf, 0) <= 0);
    close (fd);
    //  A 401 closes too (civetweb does so after a 401 whatever we say).
    char *r = s_req (f, "GET", "/api/sessions", NULL, NULL);
    assert_int_equal (s_status (r), 401);
    assert_non_null (strstr (r, "Connection: close\r\n"));
    free (r);
}

static void
test_error_mapping (void **state)
{
    s_fixture_t *f = *state;
    char *r = s_req (f, "PUT", "/api/messages/msg_abc_s1_user", f->alice, "{\"content\": \"x\"}");
    assert_int_equal (s_status (r), 429);
    assert_non_null (strstr (r, "Retry-After: 2"));
    free (r);
    r = s_req (f, "POST", "/api/messages/msg_abc_s1_user/regenerate", f->alice, NULL);
    assert_int_equal (s_status (r), 400);
    free (r);
    r = s_req (f, "GET", "/api/messages/tasks/regen_x/status", f->alice, NULL);
    assert_int_equal (s_status (r), 504);
    assert_non_null (strstr (r, "Retry-After:"));
    free (r);
    r = s_req (f, "DELETE", "/api/run_sse/s1", f->alice, NULL);
    assert_int_equal (s_status (r), 405);
    free (r);
}

static void
test_sse_live_replay_gap (void **state)
{
    s_fixture_t *f = *state;
    s_sse_t sse;
    s_sse_open (f, &sse, "/api/run_sse/sess_a", f->alice, NULL);
    assert_true (s_sse_wait (&sse, "event: connection_status\ndata: {\"status\":\"connected\""));
    assert_non_null (strstr (sse.buf, "Content-Type: text/event-stream"));
    assert_non_null (strstr (sse.buf, "X-Accel-Buffering: no"));
    s_publish (f, "PUB", "sess_a", "1700000000000-1", "feedback_submitted");
    assert_true (s_sse_wait (&sse, "id: 1700000000000-1\nevent: feedback_submitted\ndata: {"));
    //  Content with CR/LF stays on one data line.
    assert_non_null (strstr (sse.buf, "line1\\r\\n\\nevent: fake\\n\\n"));
    //  A prefix-matching session must not leak in.
    s_publish (f, "HOLD", "sess_ab", "1700000000000-1", "message_edited");
    //  Gap: 2 is lost live, 3 arrives; 2 comes from history first.
    s_publish (f, "HOLD", "sess_a", "1700000000000-2", "message_edited");
    s_publish (f, "PUB", "sess_a", "1700000000000-3", "message_deleted");
    assert_true (s_sse_wait (&sse, "id: 1700000000000-3\n"));
    char *two = strstr (sse.buf, "id: 1700000000000-2\n");
    assert_non_null (two);
    assert_true (two < strstr (sse.buf, "id: 1700000000000-3\n"));
    close (sse.fd);

    //  Reconnect after 1: replay 2 and 3, then live 4, each once.
    s_sse_open (f, &sse, "/api/run_sse/sess_a", f->alice, "1700000000000-1");
    assert_true (s_sse_wait (&sse, "id: 1700000000000-3\n"));
    s_publish (f, "PUB", "sess_a", "1700000000000-4", "message_edited");
    assert_true (s_sse_wait (&sse, "id: 1700000000000-4\n"));
    assert_null (strstr (sse.buf, "id: 1700000000000-1\n"));
    char *first = strstr (sse.buf, "id: 1700000000000-3\n");
    assert_null (strstr (first + 1, "id: 1700000000000-3\n"));
    close (sse.fd);

    //  Another epoch: resync.
    s_sse_open (f, &sse, "/api/run_sse/sess_a", f->alice, "42-7");
    assert_true (s_sse_wait (&sse, "\"resync\":true"));
    assert_non_null (strstr (sse.buf, "event: session_updated"));
    close (sse.fd);
}

static void
test_sse_ownership_and_cap (void **state)
{
    s_fixture_t *f = *state;
    char *r = s_req (f, "GET", "/api/run_sse/sess_b", f->bob, NULL);
    assert_int_equal (s_status (r), 404);
    free (r);
    //  Streams of earlier tests end at their next keepalive.
    int64_t deadline = zclock_mono () + 5000;
    while (zclock_mono () < deadline) {
        r = s_req (f, "GET", "/metrics", NULL, NULL);
        bool idle = strstr (r, "chatmesh_gateway_sse_connections 0\n") != NULL;
        free (r);
        if (idle)
            break;
        zclock_sleep (50);
    }
    s_sse_t streams[3];
    for (int i = 0; i < 3; i++) {
        s_sse_open (f, &streams[i], "/api/run_sse/sess_c", f->alice, NULL);
        assert_true (s_sse_wait (&streams[i], "connection_status"));
    }
    r = s_req (f, "GET", "/api/run_sse/sess_c", f->alice, NULL);
    assert_int_equal (s_status (r), 503);
    assert_non_null (strstr (r, "too_many_streams"));
    free (r);
    for (int i = 0; i < 3; i++)
        close (streams[i].fd);
}

static void
test_static_files (void **state)
{
    s_fixture_t *f = *state;
    char path[128];
    snprintf (path, sizeof path, "%s/index.html", f->dir);
    FILE *file = fopen (path, "w");
    fputs ("<p>chat</p>", file);
    fclose (file);
    char *r = s_req (f, "GET", "/", NULL, NULL);
    assert_int_equal (s_status (r), 200);
    assert_non_null (strstr (r, "Content-Security-Policy: default-src 'self'"));
    assert_non_null (strstr (r, "<p>chat</p>"));
    free (r);
    r = s_http (f, "GET /../../etc/passwd HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_null (strstr (r, "root:"));
    free (r);
    r = s_http (f, "GET /%2e%2e/%2e%2e/etc/passwd HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_null (strstr (r, "root:"));
    free (r);
    r = s_req (f, "GET", "/api/openapi.json", NULL, NULL);
    assert_int_equal (s_status (r), 200);
    assert_non_null (strstr (r, "\"openapi\":\"3.0.3\""));
    free (r);
    r = s_req (f, "GET", "/metrics", NULL, NULL);
    assert_non_null (strstr (r, "chatmesh_gateway_requests_total{route=\"static\",status=\"200\"}"));
    assert_non_null (strstr (r, "chatmesh_gateway_sse_connections"));
    free (r);
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_healthz_and_headers), cmocka_unit_test (test_run_sse_post_json),
        cmocka_unit_test (test_auth),                cmocka_unit_test (test_validation),
        cmocka_unit_test (test_error_mapping),       cmocka_unit_test (test_sse_live_replay_gap),
        cmocka_unit_test (test_sse_ownership_and_cap), cmocka_unit_test (test_static_files),
        cmocka_unit_test (test_one_request_per_connection),
    };
    return cmocka_run_group_tests (tests, s_setup, s_teardown);
}
