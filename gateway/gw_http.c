#include "gw_http.h"

#include "cm_codec.h"
#include "cm_error.h"
#include "cm_log.h"
#include "cm_time.h"
#include "gw_accept.h"
#include "gw_backend.h"
#include "gw_errors.h"
#include "gw_idem.h"
#include "gw_json.h"
#include "gw_admin.h"
#include "gw_manage.h"
#include "gw_jwt.h"
#include "gw_metrics.h"
#include "gw_openapi.h"
#include "gw_probes.h"
#include "gw_proxy.h"
#include "gw_replay.h"
#include "gw_route.h"
#include "gw_shards.h"
#include "gw_static.h"
#include "gw_hub.h"
#include "gw_validate.h"

#include <arpa/inet.h>
#include <civetweb.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

//  civetweb threads kept for event streams being set up (and those that
//  keep their thread), at least; else as many as the API's.
#define GW_SSE_THREADS_MIN 64

struct gw_http {
    gw_config_t config;
    struct mg_context *ctx;
    gw_hub_t *hub;
    cm_curve_t *curve;      //  NULL = CURVE off
    gw_metrics_t *metrics;
    atomic_int streams;     //  SSE streams open now
    //  The store's shards and the broadcasters' history:
    //  CHATMESH_BACKEND_SOCKETS each (<= 400: libzmq allows 1023 sockets
    //  per process by default, and every socket also holds descriptors)
    gw_shards_t *shards;
    gw_backend_t *history;
    bool vestibule;         //  gw_accept_start succeeded: stop it in destroy
};

typedef struct {
    gw_http_t *self;
    struct mg_connection *conn;
    const struct mg_request_info *ri;
    gw_match_t match;
    const char *origin;     //  CORS origin to echo, or NULL
    char user[CM_USER_MAX + 1];
    bool admin;             //  an operator (gw_admin.h), set by s_auth
    char client[GW_PROXY_ADDR_MAX]; //  the caller's address (gw_proxy.h)
    bool head;              //  HEAD: headers only
    int status;             //  what was sent
} s_req_t;

//  ---------------------------------------------------------------------
//  Responses

//  Origin header when it is in CHATMESH_CORS_ORIGINS (exact match), else NULL.
static const char *
s_cors_origin (gw_http_t *self, struct mg_connection *conn)
{
    const char *origin = mg_get_header (conn, "Origin");
    if (!origin || !*origin || !self->config.cors_origins[0] || strpbrk (origin, "\r\n"))
        return NULL;
    size_t len = strlen (origin);
    const char *p = self->config.cors_origins;
    while (*p) {
        while (*p == ' ' || *p == ',')
            p++;
        size_t n = strcspn (p, ",");
        size_t trimmed = n;
        while (trimmed > 0 && p[trimmed - 1] == ' ')
            trimmed--;
        if (trimmed == len && strncmp (p, origin, len) == 0)
            return origin;
        p += n;
    }
    return NULL;
}

//  Status line and the headers every response carries. `extra` is zero or
//  more complete "Name: value\r\n" lines.
typedef enum { S_KIND_API, S_KIND_STATIC, S_KIND_SSE } s_kind_t;

//  Status line, the headers every response carries and then body (may be
//  NULL), written with one send: two sends would cost two syscalls and,
//  with TCP_NODELAY, two segments per response. `extra` is zero or more
//  complete "Name: value\r\n" lines. length < 0: no Content-Length.
static int
s_respond (s_req_t *req, int status, const char *content_type, long long length, s_kind_t kind,
           const char *extra, const char *body, size_t body_len)
{
    req->status = status;
    char cors[600] = "";
    if (req->origin)
        snprintf (cors, sizeof cors,
                  "Access-Control-Allow-Origin: %s\r\nVary: Origin\r\n"
                  "Access-Control-Expose-Headers: Retry-After, X-Next-Cursor, "
                  "Idempotent-Replayed\r\n",
                  req->origin);
    else if (req->self->config.cors_origins[0])
        //  The answer depends on Origin: caches must not hand one
        //  origin's answer to another.
        snprintf (cors, sizeof cors, "Vary: Origin\r\n");
    char length_line[64] = "";
    if (length >= 0)
        snprintf (length_line, sizeof length_line, "Content-Length: %lld\r\n", length);
    char head[2048];
    int n = snprintf (head, sizeof head,
                      "HTTP/1.1 %d %s\r\n"
                      "Content-Type: %s\r\n"
                      "%s"
                      "X-Content-Type-Options: nosniff\r\n"
                      "Referrer-Policy: no-referrer\r\n"
                      "%s"
                      "%s%s"
                      "Connection: close\r\n\r\n",
                      status, gw_http_reason (status), content_type, length_line,
                      kind == S_KIND_API   ? "Cache-Control: no-store\r\n"
                      : kind == S_KIND_SSE ? "Cache-Control: no-cache\r\n"
                                           : "Cache-Control: no-cache\r\n"
                                             "Content-Security-Policy: default-src 'self'; "
                                             "frame-ancestors 'none'; base-uri 'self'\r\n"
                                             "X-Frame-Options: DENY\r\n",
                      cors, extra ? extra : "");
    if (n < 0 || (size_t) n >= sizeof head)
        return -1; //  cannot happen with the bounded parts above
    if (!body || !body_len)
        return mg_write (req->conn, head, (size_t) n) == n ? 0 : -1;
    char small[8192];
    char *buffer = (size_t) n + body_len <= sizeof small ? small : malloc ((size_t) n + body_len);
    if (!buffer) {
        //  Out of memory for the copy: two writes still answer.
        return mg_write (req->conn, head, (size_t) n) == n
                       && mg_write (req->conn, body, body_len) == (int) body_len
                   ? 0
                   : -1;
    }
    memcpy (buffer, head, (size_t) n);
    memcpy (buffer + n, body, body_len);
    int rc = mg_write (req->conn, buffer, (size_t) n + body_len) == (int) ((size_t) n + body_len)
                 ? 0
                 : -1;
    if (buffer != small)
        free (buffer);
    return rc;
}

static int
s_head (s_req_t *req, int status, const char *content_type, long long length, s_kind_t kind,
        const char *extra)
{
    return s_respond (req, status, content_type, length, kind, extra, NULL, 0);
}

static int
s_send (s_req_t *req, int status, const char *content_type, const char *body, size_t len,
        bool api, const char *extra)
{
    s_respond (req, status, content_type, (long long) len, api ? S_KIND_API : S_KIND_STATIC,
               extra, req->head ? NULL : body, len);
    return status;
}

//  Sends body (takes the reference) as JSON.
static int
s_send_json (s_req_t *req, int status, json_t *body, const char *extra)
{
    char *text = body ? json_dumps (body, JSON_COMPACT) : NULL;
    json_decref (body);
    if (!text) {
        //  Formatted on the stack: no allocation left to fail.
        const gw_http_error_info_t *info = gw_http_error_info (GW_E_INTERNAL_ERROR);
        char oom[160], retry[40];
        int len = snprintf (oom, sizeof oom,
                            "{\"success\":false,\"error\":\"The gateway is out of memory; "
                            "please retry.\",\"code\":\"%s\"}",
                            info->code);
        snprintf (retry, sizeof retry, "Retry-After: %d\r\n", info->retry_after);
        return s_send (req, info->status, "application/json", oom, (size_t) len, true, retry);
    }
    int rc = s_send (req, status, "application/json", text, strlen (text), true, extra);
    free (text);
    return rc;
}

static int
s_send_error (s_req_t *req, int status, const char *code, const char *error, int retry_after,
              const char *extra)
{
    char headers[256] = "";
    int n = 0;
    if (retry_after > 0)
        n = snprintf (headers, sizeof headers, "Retry-After: %d\r\n", retry_after);
    if (extra && n >= 0 && (size_t) n < sizeof headers)
        snprintf (headers + n, sizeof headers - (size_t) n, "%s", extra);
    return s_send_json (req, status, gw_error_body (code, error), headers);
}

//  An error of the table (gw_errors.h): its status, code and Retry-After.
static int
s_error (s_req_t *req, gw_http_error_t code, const char *error, const char *extra)
{
    const gw_http_error_info_t *info = gw_http_error_info (code);
    return s_send_error (req, info->status, info->code, error, info->retry_after, extra);
}

static int
s_send_mapped (s_req_t *req, const gw_error_t *error)
{
    return s_send_error (req, error->status, error->code, error->error, error->retry_after, NULL);
}

//  ---------------------------------------------------------------------
//  Backend calls

//  A call on one shard's pool (gw_shards_call_fn), counted in metrics.
static int
s_shard_call (void *arg, gw_backend_t *pool, cm_msg_t type, cm_value_t *payload, cm_value_t **ok,
              cm_value_t **err)
{
    gw_http_t *self = arg;
    return gw_probes_call (self->metrics, pool, type, payload, ok, err);
}

//  A backend call: to the session's store shard (gw_shards.h), or to the
//  broadcasters' history.
static int
s_call (s_req_t *req, bool history, cm_msg_t type, cm_value_t *payload, cm_value_t **ok,
        cm_value_t **err)
{
    if (history)
        return gw_probes_call (req->self->metrics, req->self->history, type, payload, ok, err);
    return gw_shards_call (req->self->shards, type, payload, ok, err);
}

static cm_value_t *
s_caller (s_req_t *req, bool limited)
{
    cm_value_t *payload = cm_map_new ();
    if (!payload)
        return NULL;
    cm_map_set_str (payload, "user", req->user);
    cm_map_set_str (payload, "ip", req->client);
    const char *ua = mg_get_header (req->conn, "User-Agent");
    if (ua) {
        size_t len = strlen (ua);
        if (len > CM_UA_MAX) {
            len = CM_UA_MAX;
            //  Never cut a UTF-8 sequence in half.
            while (len > 0 && ((unsigned char) ua[len] & 0xc0) == 0x80)
                len--;
        }
        cm_map_set_strn (payload, "ua", ua, len);
    }
    if (limited) {
        cm_map_set_int (payload, "rate_limit", req->self->config.rate_limit);
        cm_map_set_int (payload, "regen_rate_limit", req->self->config.regen_rate_limit);
    }
    return payload;
}

//  {"success": true} followed by the fields of the store's ok payload.
static json_t *
s_success (const cm_value_t *ok)
{
    json_t *body = json_pack ("{s:b}", "success", 1);
    json_t *fields = ok ? gw_json_from_value (ok) : NULL;
    if (body && json_is_object (fields)) {
        json_object_del (fields, "success");
        json_object_update (body, fields);
    }
    json_decref (fields);
    return body;
}

//  The common case: one store request, its ok payload as the response.
static int
s_forward (s_req_t *req, cm_msg_t type, cm_value_t *payload)
{
    cm_value_t *ok = NULL, *err = NULL;
    int rc = s_call (req, false, type, payload, &ok, &err);
    if (rc) {
        gw_error_t error;
        gw_error_map (req->match.route, rc, err, &error);
        cm_value_destroy (&err);
        return s_send_mapped (req, &error);
    }
    bool replayed = gw_idem_replayed (ok);
    json_t *body = s_success (ok);
    cm_value_destroy (&ok);
    return s_send_json (req, 200, body, replayed ? GW_IDEM_REPLAYED_HEADER : NULL);
}

//  s_forward for an export: the reply's entries as JSONL (gw_admin.h), the
//  next page's cursor in X-Next-Cursor.
static int
s_forward_ndjson (s_req_t *req, cm_msg_t type, cm_value_t *payload)
{
    cm_value_t *ok = NULL, *err = NULL;
    int rc = s_call (req, false, type, payload, &ok, &err);
    if (rc) {
        gw_error_t error;
        gw_error_map (req->match.route, rc, err, &error);
        cm_value_destroy (&err);
        return s_send_mapped (req, &error);
    }
    json_t *body = s_success (ok);
    cm_value_destroy (&ok);
    size_t len = 0;
    char *text = body ? gw_admin_ndjson (body, &len) : NULL;
    const char *next = json_string_value (json_object_get (body, "next_cursor"));
    char extra[CM_AUDIT_CURSOR_MAX + 40] = "";
    if (next)
        snprintf (extra, sizeof extra, "X-Next-Cursor: %s\r\n", next);
    json_decref (body);
    if (!text)
        return s_error (req, GW_E_INTERNAL_ERROR, "Out of memory; retry.", NULL);
    int status = s_send (req, 200, "application/x-ndjson", text, len, true, extra);
    free (text);
    return status;
}

//  ---------------------------------------------------------------------
//  Request pieces

//  401 unless a valid token came in Authorization (or, where allowed, in
//  ?access_token=). Fills req->user.
static int
s_auth (s_req_t *req, bool query_allowed)
{
    //  Not zero-filled: that would touch 8 KB of every worker's stack, which
    //  stays resident under each parked SSE stream.
    char token[GW_TOKEN_MAX + 1];
    token[0] = 0;
    const char *header = mg_get_header (req->conn, "Authorization");
    if (header && strncasecmp (header, "Bearer ", 7) == 0) {
        const char *value = header + 7;
        while (*value == ' ')
            value++;
        snprintf (token, sizeof token, "%s", value);
    }
    else if (query_allowed && req->ri->query_string
             && gw_query_get (req->ri->query_string, "access_token", token, sizeof token)
                    == CM_EINVAL) {
        s_send_error (req, 401, "unauthorized",
                      "The bearer token was rejected (access_token is given more than once); "
                      "send it once.",
                      0, "WWW-Authenticate: Bearer error=\"invalid_request\"\r\n");
        return -1;
    }
    if (!token[0]) {
        s_error (req, GW_E_UNAUTHORIZED, "Sign in: send 'Authorization: Bearer <token>'.",
                 "WWW-Authenticate: Bearer\r\n");
        return -1;
    }
    const char *why = NULL;
    bool token_admin = false;
    if (gw_jwt_verify_role (req->self->config.secret, req->self->config.secret_len, token,
                            (int64_t) time (NULL), req->user, &token_admin, &why)) {
        char error[128];
        snprintf (error, sizeof error, "The bearer token was rejected (%s); sign in again.",
                  why ? why : "invalid token");
        s_error (req, GW_E_UNAUTHORIZED, error,
                 "WWW-Authenticate: Bearer error=\"invalid_token\"\r\n");
        return -1;
    }
    req->admin = gw_admin_is (req->self->config.admin_users, req->user, token_admin);
    return 0;
}

//  Reads and parses the JSON body. 0 with *json (NULL when the body is
//  optional and absent), or -1 after sending 400/413/415.
static int
s_body (s_req_t *req, bool required, json_t **json)
{
    *json = NULL;
    long long max = req->self->config.max_body_bytes;
    long long declared = req->ri->content_length;
    if (declared > max) {
        //  Refused on the header alone: nothing of the body is read.
        char error[128];
        snprintf (error, sizeof error, "The request body is larger than %lld bytes.", max);
        s_error (req, GW_E_PAYLOAD_TOO_LARGE, error, NULL);
        return -1;
    }
    const char *type = mg_get_header (req->conn, "Content-Type");
    bool maybe_body = declared != 0;
    if (!required && !maybe_body)
        return 0;
    if (maybe_body && !gw_content_type_is_json (type)) {
        if (!required && declared < 0 && !type)
            return 0; //  no length, no type: a bare POST without a body
        s_error (req, GW_E_UNSUPPORTED_MEDIA_TYPE, "Send the request body as application/json.",
                 NULL);
        return -1;
    }
    char *buffer = malloc ((size_t) max + 1);
    if (!buffer) {
        s_error (req, GW_E_INTERNAL_ERROR, "The gateway is out of memory; please retry.", NULL);
        return -1;
    }
    size_t len = 0;
    while (maybe_body) {
        int n = mg_read (req->conn, buffer + len, (size_t) max + 1 - len);
        if (n < 0) {
            //  civetweb's read error: a malformed chunk (gw_recv.h) or a
            //  client gone before its body was complete.
            free (buffer);
            s_error (req, GW_E_BAD_REQUEST, "The request body is malformed: a chunk line is not valid, "
                     "or the body ended early.", NULL);
            return -1;
        }
        if (n == 0)
            break;
        len += (size_t) n;
        if ((long long) len > max) {
            free (buffer);
            char error[128];
            snprintf (error, sizeof error, "The request body is larger than %lld bytes.", max);
            s_error (req, GW_E_PAYLOAD_TOO_LARGE, error, NULL);
            return -1;
        }
    }
    if (len == 0) {
        free (buffer);
        if (!required)
            return 0;
        s_error (req, GW_E_MISSING_BODY, "This request needs a JSON body.", NULL);
        return -1;
    }
    gw_verdict_t verdict;
    int rc = gw_body_parse (buffer, len, json, &verdict);
    free (buffer);
    if (rc) {
        s_send_error (req, verdict.status, verdict.code, verdict.error, 0, NULL);
        return -1;
    }
    return 0;
}

//  ---------------------------------------------------------------------
//  SSE

//  One stream's context: the arg of its gw_stream callbacks. Heap-allocated,
//  as a detached stream outlives its request (it is freed in s_sse_ended
//  then, else by the handler).
typedef struct {
    gw_http_t *self;
    struct mg_connection *conn; //  valid until the handler returns
    char session_id[CM_SESSION_ID_MAX + 1];
    int fd;                     //  our dup() of the connection's socket, or -1
    int origin_fd;              //  civetweb's descriptor for it
} s_sse_ctx_t;

static int
s_sse_write (void *arg, const char *data, size_t len)
{
    s_sse_ctx_t *ctx = arg;
    int n = mg_write (ctx->conn, data, len);
    if (n != (int) len)
        cm_debug ("stream write failed (%d of %zu bytes): %s", n, len, strerror (errno));
    return n == (int) len ? 0 : -1;
}

static int
s_sse_ask (void *arg, bool from_store, const char *after, cm_value_t **payload)
{
    s_sse_ctx_t *ctx = arg;
    bool broadcaster = !from_store;
    //  s_call needs only req.self: this also runs on the hub's slow-path
    //  threads, after the request is gone.
    s_req_t req = {.self = ctx->self};
    cm_value_t *request = cm_map_new ();
    if (!request)
        return CM_ENOMEM;
    cm_map_set_str (request, "session_id", ctx->session_id);
    if (after && *after)
        cm_map_set_str (request, "after", after);
    cm_value_t *err = NULL;
    int rc = s_call (&req, broadcaster, broadcaster ? CM_MSG_HISTORY : CM_MSG_EVENTS_AFTER,
                     request, payload, &err);
    cm_value_destroy (&err);
    if (rc)
        cm_warning ("%s replay failed: %s (session=%s)", broadcaster ? "history" : "event log",
                    cm_strerror (rc), ctx->session_id);
    return rc;
}

//  A broadcaster's history, else the store's event log (gw_replay.h).
static int
s_sse_history (void *arg, const char *after, const char *until, cm_value_t **payload)
{
    return gw_replay_fill (s_sse_ask, arg, after, until, payload, NULL);
}

static void
s_sse_delivered (void *arg)
{
    s_sse_ctx_t *ctx = arg;
    gw_metrics_sse_event (ctx->self->metrics);
}

//  Takes a stream slot; false (and 503 sent) when the cap is reached.
static bool
s_stream_slot (s_req_t *req)
{
    gw_http_t *self = req->self;
    if (atomic_fetch_add (&self->streams, 1) >= self->config.sse_max_streams) {
        atomic_fetch_sub (&self->streams, 1);
        s_error (req, GW_E_TOO_MANY_STREAMS,
                 "This gateway has no room for another event stream; retry shortly.", NULL);
        return false;
    }
    gw_metrics_sse_streams (self->metrics, 1);
    return true;
}

static void
s_stream_slot_release (gw_http_t *self)
{
    atomic_fetch_sub (&self->streams, 1);
    gw_metrics_sse_streams (self->metrics, -1);
}

static void
s_sse_log_end (s_sse_ctx_t *ctx, int end)
{
    cm_debug ("stream ended: %s (session=%s)",
              end == GW_STREAM_END_CLIENT_GONE ? "client gone"
              : end == GW_STREAM_END_OVERFLOW  ? "overflow"
              : end == GW_STREAM_END_CLOSED    ? "shutdown"
                                        : "task done",
              ctx->session_id);
    if (end == GW_STREAM_END_OVERFLOW) {
        gw_metrics_sse_dropped (ctx->self->metrics);
        cm_notice ("closing a stream that fell behind by more than %lld bytes (session=%s)",
                   (long long) ctx->self->config.sse_queue_bytes, ctx->session_id);
    }
}

static void
s_sse_ctx_free (s_sse_ctx_t **ctx_p)
{
    s_sse_ctx_t *ctx = *ctx_p;
    if (!ctx)
        return;
    if (ctx->fd >= 0)
        close (ctx->fd);
    free (ctx);
    *ctx_p = NULL;
}

//  A detached stream ended (a hub slow-path thread; the stream is already
//  detached and destroyed): its slot is given back only now.
static void
s_sse_ended (void *arg, int end)
{
    s_sse_ctx_t *ctx = arg;
    gw_http_t *self = ctx->self;
    s_sse_log_end (ctx, end);
    s_sse_ctx_free (&ctx);
    s_stream_slot_release (self);
}

//  A stream and its context for this connection. When the connection's
//  socket is found (plain HTTP only: the writers send raw bytes) the
//  stream gets a dup() of it, and a stand-in descriptor is made ready for
//  the detach (s_stream_run) in *dummy (else -1), which the handler owns
//  and closes: a detached stream's ctx may be freed at any time. NULL on
//  out-of-memory.
static gw_stream_t *
s_stream_new (s_req_t *req, s_sse_ctx_t **ctx_p, int *dummy)
{
    *dummy = -1;
    s_sse_ctx_t *ctx = calloc (1, sizeof *ctx);
    gw_stream_t *stream = ctx ? gw_stream_new ((size_t) req->self->config.sse_queue_bytes) : NULL;
    if (!stream) {
        free (ctx);
        return NULL;
    }
    ctx->self = req->self;
    ctx->conn = req->conn;
    snprintf (ctx->session_id, sizeof ctx->session_id, "%s", req->match.session_id);
    ctx->fd = -1;
    ctx->origin_fd = req->ri->is_ssl ? -1
                                     : gw_accept_peer_fd (req->ri->remote_addr, req->ri->remote_port,
                                                  req->ri->server_port);
    if (ctx->origin_fd >= 0) {
        //  The stand-in: one end of a socket pair whose other end is
        //  closed, so whatever civetweb does with it after the handler
        //  returns (shutdown, drain reads, SO_LINGER, close) ends at once
        //  and never touches the client's connection.
        int pair[2];
        if (socketpair (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) == 0) {
            close (pair[1]);
            *dummy = pair[0];
            ctx->fd = fcntl (ctx->origin_fd, F_DUPFD_CLOEXEC, 0);
        }
        if (ctx->fd < 0 && *dummy >= 0) {
            close (*dummy);
            *dummy = -1;
        }
    }
    gw_stream_set_fd (stream, ctx->fd);
    if (ctx->fd < 0)
        cm_debug ("no socket found for a stream from %s:%d: its thread writes every event",
                  req->ri->remote_addr, req->ri->remote_port);
    *ctx_p = ctx;
    return stream;
}

//  Runs an attached stream; headers not yet sent. Returns true when the
//  stream was detached: the hub owns stream and ctx from then on, and the
//  handler returns at once (civetweb's thread serves other connections).
//  Else the stream has ended and the caller cleans up.
static bool
s_stream_run (s_req_t *req, gw_stream_t *stream, s_sse_ctx_t *ctx, int dummy,
              const char *last_event_id, const char *until_task_id)
{
    s_head (req, 200, "text/event-stream", -1, S_KIND_SSE, "X-Accel-Buffering: no\r\n");
    int origin_fd = ctx->origin_fd;
    gw_stream_params_t params = {
        .session_id = ctx->session_id,
        .last_event_id = last_event_id,
        .until_task_id = until_task_id,
        .keepalive_ms = req->self->config.sse_keepalive_ms,
        .write = s_sse_write,
        .history = s_sse_history,
        .delivered = s_sse_delivered,
        .ended = ctx->fd >= 0 && dummy >= 0 ? s_sse_ended : NULL,
        .arg = ctx,
    };
    gw_stream_end_t end = gw_stream_run (stream, &params);
    if (end == GW_STREAM_END_DETACHED) {
        //  ctx may be gone already (the stream may have ended on a
        //  slow-path thread): only the locals are used. civetweb's
        //  descriptor now names the stand-in; "Connection: close" went out
        //  with the head, so civetweb closes it without writing more.
        //  dup2 is atomic: the number is never free for another open.
        while (dup2 (dummy, origin_fd) < 0 && errno == EINTR)
            ;
        return true;
    }
    s_sse_log_end (ctx, (int) end);
    return false;
}

static int
s_run_sse_get (s_req_t *req)
{
    if (s_auth (req, true))
        return req->status;
    //  Ownership: the session must exist and be the caller's (404 else).
    cm_value_t *payload = s_caller (req, false), *ok = NULL, *err = NULL;
    if (payload)
        cm_map_set_str (payload, "session_id", req->match.session_id);
    int rc = s_call (req, false, CM_MSG_SESSION_GET, payload, &ok, &err);
    cm_value_destroy (&ok);
    if (rc) {
        gw_error_t error;
        gw_error_map (req->match.route, rc, err, &error);
        cm_value_destroy (&err);
        return s_send_mapped (req, &error);
    }
    if (!s_stream_slot (req))
        return req->status;
    char last_event_id[64] = "";
    const char *header = mg_get_header (req->conn, "Last-Event-ID");
    if (header && *header)
        snprintf (last_event_id, sizeof last_event_id, "%s", header);
    else if (req->ri->query_string)
        gw_query_get (req->ri->query_string, "last_event_id", last_event_id,
                      sizeof last_event_id);
    s_sse_ctx_t *ctx = NULL;
    int dummy;
    gw_stream_t *stream = s_stream_new (req, &ctx, &dummy);
    if (!stream || gw_hub_attach (req->self->hub, req->match.session_id, stream)) {
        if (dummy >= 0)
            close (dummy);
        gw_stream_destroy (&stream);
        s_sse_ctx_free (&ctx);
        s_stream_slot_release (req->self);
        return s_error (req, GW_E_SHUTTING_DOWN, "The gateway is shutting down; retry.", NULL);
    }
    bool detached = s_stream_run (req, stream, ctx, dummy, last_event_id, NULL);
    if (dummy >= 0)
        close (dummy);
    if (detached)
        return 200;
    gw_hub_detach (req->self->hub, req->match.session_id, stream);
    gw_stream_destroy (&stream);
    s_sse_ctx_free (&ctx);
    s_stream_slot_release (req->self);
    return 200;
}

static bool
s_accepts_sse (s_req_t *req)
{
    const char *accept = mg_get_header (req->conn, "Accept");
    return accept && strstr (accept, "text/event-stream");
}

static int
s_run_sse_post (s_req_t *req)
{
    if (s_auth (req, false))
        return req->status;
    json_t *body = NULL;
    if (s_body (req, true, &body))
        return req->status;
    cm_value_t *payload = s_caller (req, true);
    gw_verdict_t verdict;
    if (!payload) {
        json_decref (body);
        return s_error (req, GW_E_INTERNAL_ERROR, "Out of memory; retry.", NULL);
    }
    cm_map_set_str (payload, "session_id", req->match.session_id);
    const gw_route_info_t *route = gw_route_info (req->match.route);
    if (gw_idem_take (mg_get_header (req->conn, GW_IDEM_HEADER), payload, &verdict)
        || route->validate (body, req->self->config.max_content_chars, payload, &verdict)) {
        json_decref (body);
        cm_value_destroy (&payload);
        return s_send_error (req, verdict.status, verdict.code, verdict.error, 0, NULL);
    }
    json_decref (body);
    if (!s_accepts_sse (req))
        return s_forward (req, route->message, payload);

    //  Streaming variant: subscribe before starting so no event of the new
    //  task can be missed, then stream until that task's terminal event.
    //  It ends after one answer, so it keeps its thread (never detached).
    if (!s_stream_slot (req)) {
        cm_value_destroy (&payload);
        return req->status;
    }
    s_sse_ctx_t *ctx = NULL;
    int dummy;
    gw_stream_t *stream = s_stream_new (req, &ctx, &dummy);
    if (dummy >= 0)
        close (dummy); //  never detached: no stand-in needed
    if (!stream || gw_hub_attach (req->self->hub, req->match.session_id, stream)) {
        gw_stream_destroy (&stream);
        s_sse_ctx_free (&ctx);
        cm_value_destroy (&payload);
        s_stream_slot_release (req->self);
        return s_error (req, GW_E_SHUTTING_DOWN, "The gateway is shutting down; retry.", NULL);
    }
    cm_value_t *ok = NULL, *err = NULL;
    int rc = s_call (req, false, route->message, payload, &ok, &err);
    int status = 200;
    if (rc) {
        gw_error_t error;
        gw_error_map (req->match.route, rc, err, &error);
        status = s_send_mapped (req, &error);
    }
    else if (gw_idem_replayed (ok))
        //  A retry: the first answer, as JSON (its task may be over).
        status = s_send_json (req, 200, s_success (ok), GW_IDEM_REPLAYED_HEADER);
    else {
        char task_id[CM_TASK_ID_MAX + 1];
        snprintf (task_id, sizeof task_id, "%s",
                  cm_map_str_or (cm_map_get (ok, "data"), "task_id", ""));
        s_stream_run (req, stream, ctx, -1, NULL, task_id[0] ? task_id : NULL);
    }
    cm_value_destroy (&ok);
    cm_value_destroy (&err);
    gw_hub_detach (req->self->hub, req->match.session_id, stream);
    gw_stream_destroy (&stream);
    s_sse_ctx_free (&ctx);
    s_stream_slot_release (req->self);
    return status;
}

//  ---------------------------------------------------------------------
//  JSON endpoints

//  A route of one store request: what it sends, and how its body is
//  checked, is its row of the route table (gw_route.h).
static int
s_api (s_req_t *req)
{
    const gw_route_info_t *route = gw_route_info (req->match.route);
    if (s_auth (req, false))
        return req->status;
    if (gw_route_admin (req->match.route) && !req->admin)
        return s_error (req, GW_E_FORBIDDEN,
                        "Only operators may use this endpoint (a token with role \"admin\", or "
                        "a user named in CHATMESH_ADMIN_USERS).",
                        NULL);
    json_t *body = NULL;
    if (route->body != GW_BODY_NONE && s_body (req, route->body == GW_BODY_REQUIRED, &body))
        return req->status;
    cm_value_t *payload = s_caller (req, route->limited);
    if (!payload) {
        json_decref (body);
        return s_error (req, GW_E_INTERNAL_ERROR, "Out of memory; retry.", NULL);
    }
    gw_match_payload (&req->match, payload);
    gw_verdict_t verdict = {0};
    int rc = route->limited
                 ? gw_idem_take (mg_get_header (req->conn, GW_IDEM_HEADER), payload, &verdict)
                 : 0;
    if (rc == 0 && route->validate)
        rc = route->validate (body, req->self->config.max_content_chars, payload, &verdict);
    json_decref (body);
    bool admin = gw_route_admin (req->match.route);
    if (rc == 0 && admin)
        rc = gw_admin_query (req->match.route, req->ri->query_string, payload, &verdict);
    else if (rc == 0)
        rc = gw_manage_query (req->match.route, req->ri->query_string, payload, &verdict);
    if (rc) {
        cm_value_destroy (&payload);
        return s_send_error (req, verdict.status, verdict.code, verdict.error, 0, NULL);
    }
    if (admin && gw_admin_wants_ndjson (mg_get_header (req->conn, "Accept")))
        return s_forward_ndjson (req, route->message, payload);
    return s_forward (req, route->message, payload);
}

//  ---------------------------------------------------------------------
//  Probes, metrics, documents

//  What gw_probes.h needs of this server.
static gw_probes_t
s_probes (s_req_t *req)
{
    return (gw_probes_t) {.shards = req->self->shards,
                          .history = req->self->history,
                          .metrics = req->self->metrics};
}

static int
s_readyz (s_req_t *req)
{
    gw_probes_t probes = s_probes (req);
    json_t *body;
    int retry_after;
    int status = gw_probes_ready (&probes, &body, &retry_after);
    char retry[40] = "";
    if (retry_after)
        snprintf (retry, sizeof retry, "Retry-After: %d\r\n", retry_after);
    return s_send_json (req, status, body, retry[0] ? retry : NULL);
}

static int
s_metrics (s_req_t *req)
{
    gw_probes_t probes = s_probes (req);
    char *text = gw_probes_metrics (&probes, gw_accept_held ());
    if (!text)
        return s_error (req, GW_E_INTERNAL_ERROR, "Out of memory; retry.", NULL);
    int status = s_send (req, 200, "text/plain; version=0.0.4; charset=utf-8", text, strlen (text), true, NULL);
    free (text);
    return status;
}

//  A preflight names the methods of the path it asks about (those a
//  method no route has is told are allowed: match.allow) and fixed request
//  headers, never what the request asked for. Without an allowed Origin
//  the answer carries no CORS headers and the browser refuses the
//  cross-origin request.
static int
s_preflight (s_req_t *req)
{
    gw_match_t probe;
    gw_route_match ("", req->ri->local_uri, &probe);
    char headers[256] = "";
    if (req->origin && probe.allow[0])
        snprintf (headers, sizeof headers,
                  "Access-Control-Allow-Methods: %s\r\n"
                  "Access-Control-Allow-Headers: Authorization, Content-Type, Last-Event-ID, "
                  "Idempotency-Key\r\n"
                  "Access-Control-Max-Age: 600\r\n",
                  probe.allow);
    return s_send (req, 204, "text/plain", "", 0, true, headers[0] ? headers : NULL);
}

//  ---------------------------------------------------------------------
//  Static files

//  Out of line: its path buffers (and gw_static_resolve's) would otherwise sit in
//  s_handler's frame, above every parked SSE stream (gw_stream.c, stack trim).
static __attribute__ ((noinline)) int
s_static (s_req_t *req)
{
    char real[PATH_MAX];
    int64_t file_size;
    if (gw_static_resolve (req->self->config.web_dir, &req->self->config.web_libs,
                           req->ri->local_uri, real, &file_size))
        return s_error (req, GW_E_NOT_FOUND, "No such file.", NULL);
    int fd = open (real, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return s_error (req, GW_E_NOT_FOUND, "No such file.", NULL);
    size_t size = (size_t) file_size;
    char *content = malloc (size ? size : 1);
    size_t got = 0;
    while (content && got < size) {
        ssize_t n = read (fd, content + got, size - got);
        if (n <= 0)
            break;
        got += (size_t) n;
    }
    close (fd);
    int status;
    if (!content || got != size)
        status = s_error (req, GW_E_INTERNAL_ERROR, "The file could not be read; retry.", NULL);
    else
        status = s_send (req, 200, gw_static_mime (real), content, size, false, NULL);
    free (content);
    return status;
}

//  ---------------------------------------------------------------------
//  Dispatch

static int
s_serve (s_req_t *req)
{
    const gw_match_t *match = &req->match;
    switch (match->route) {
        case GW_R_NONE: {
            char allow[GW_ALLOW_MAX + 16] = "";
            if (match->allow[0])
                snprintf (allow, sizeof allow, "Allow: %s\r\n", match->allow);
            return s_send_error (req, match->status, match->code, match->error, 0,
                                 allow[0] ? allow : NULL);
        }
        case GW_R_HEALTHZ:
            return s_send_json (req, 200,
                                json_pack ("{s:s, s:I}", "status", "ok", "pid",
                                           (json_int_t) getpid ()),
                                NULL);
        case GW_R_READYZ:
            return s_readyz (req);
        case GW_R_METRICS:
            return s_metrics (req);
        case GW_R_OPENAPI: {
            const char *doc = gw_openapi_json ();
            return s_send (req, 200, "application/json", doc, strlen (doc), true, NULL);
        }
        case GW_R_PREFLIGHT:
            return s_preflight (req);
        case GW_R_STATIC:
            return s_static (req);
        case GW_R_RUN_SSE_GET:
            return s_run_sse_get (req);
        case GW_R_RUN_SSE_POST:
            return s_run_sse_post (req);
        default:
            //  Every other route is one store request (its table row).
            if (gw_route_info (match->route)->message != CM_MSG_NONE)
                return s_api (req);
            break;
    }
    return s_error (req, GW_E_NOT_FOUND, "There is nothing at this path.", NULL);
}

//  The last X-Forwarded-For line, or NULL. Several lines are one list in
//  order (RFC 9110 5.3), so the entry a proxy appended is at the end of the
//  last line; mg_get_header would give the first line, which a client may
//  have sent itself when its proxy adds a line instead of rewriting the
//  header. (nginx's proxy_set_header rewrites it: one line.)
static const char *
s_forwarded_for (const struct mg_request_info *ri)
{
    const char *value = NULL;
    for (int i = 0; i < ri->num_headers; i++)
        if (strcasecmp (ri->http_headers[i].name, "X-Forwarded-For") == 0)
            value = ri->http_headers[i].value;
    return value;
}

static int
s_handler (struct mg_connection *conn, void *cbdata)
{
    gw_http_t *self = cbdata;
    int64_t start = cm_mono_us ();
    gw_metrics_inflight (self->metrics, 1);
    s_req_t req = {.self = self, .conn = conn, .ri = mg_get_request_info (conn)};
    const char *method = req.ri->request_method ? req.ri->request_method : "";
    req.head = strcmp (method, "HEAD") == 0;
    req.origin = s_cors_origin (self, conn);
    gw_proxy_client (&self->config.trusted_proxies, req.ri->remote_addr,
                     s_forwarded_for (req.ri), req.client);
    //  civetweb turns a backslash into '/' when it cleans the path (a
    //  Windows guard), which moves segments: /api/messages/%5C/feedback
    //  would become /api/messages/feedback. The uncleaned path is routed
    //  then, so the backslash stays in its segment and is refused there.
    const char *path = req.ri->local_uri;
    if (req.ri->local_uri_raw && strchr (req.ri->local_uri_raw, '\\'))
        path = req.ri->local_uri_raw;
    int status;
    if (!path) {
        gw_route_match (method, "", &req.match);
        status = s_error (&req, GW_E_BAD_REQUEST, "The request target is not a path.", NULL);
    }
    else {
        gw_route_match (method, path, &req.match);
        status = s_serve (&req);
    }
    int64_t micros = cm_mono_us () - start;
    gw_metrics_request (self->metrics, req.match.route, status, micros);
    gw_metrics_inflight (self->metrics, -1);
    if (cm_log_level () >= CM_LOG_INFO) {
        char uri[700], redacted[700];
        snprintf (uri, sizeof uri, "%s%s%s", path ? path : "-", req.ri->query_string ? "?" : "",
                  req.ri->query_string ? req.ri->query_string : "");
        gw_redact_uri (uri, redacted, sizeof redacted);
        cm_info ("%s %s -> %d (%.1f ms, %s)", method, redacted, status, (double) micros / 1000.0,
                 req.client);
    }
    return status > 0 ? status : 500;
}

//  ---------------------------------------------------------------------
//  civetweb callbacks

//  The methods civetweb 1.15 parses (http_methods[] in civetweb.c); it
//  refuses any other with a plain-text 400 before a handler runs.
static bool
s_civetweb_method (const char *method)
{
    static const char *const known[]
        = {"GET",   "POST",     "PUT",   "DELETE", "HEAD",  "OPTIONS",   "CONNECT",
           "PATCH", "PROPFIND", "MKCOL", "LOCK",   "UNLOCK", "PROPPATCH", "REPORT"};
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++)
        if (strcmp (method, known[i]) == 0)
            return true;
    return false;
}

//  A method token (RFC 9110 5.6.2), at most 32 characters.
static bool
s_method_token (const char *method)
{
    size_t len = strlen (method);
    if (len == 0 || len > 32)
        return false;
    for (size_t i = 0; i < len; i++)
        if (!isalnum ((unsigned char) method[i]) && !strchr ("!#$%&'*+-.^_`|~", method[i]))
            return false;
    return true;
}

//  Longest target routed for an unknown method (longer: 400, no path).
#define S_ERROR_PATH_MAX 1024

//  civetweb's own error answers (a request it could not parse, a head too
//  large, an HTTP version it does not speak) are JSON like every other, and
//  close the connection: what follows a head civetweb refused has no
//  trusted framing. A request line with a well-formed method civetweb does
//  not know (TRACE, FOO) is routed like any unsupported method: the JSON
//  405 with Allow (or the 404/400 its path gets).
static int
s_http_error (struct mg_connection *conn, int status, const char *message)
{
    const struct mg_request_info *ri = mg_get_request_info (conn);
    gw_http_t *self = mg_get_user_data (mg_get_context (conn));
    int64_t start = cm_mono_us ();
    s_req_t req = {.self = self, .conn = conn, .ri = ri};
    //  No headers may have been parsed: the peer's address, never a
    //  forwarded one.
    gw_proxy_client (&self->config.trusted_proxies, ri->remote_addr, NULL, req.client);
    //  parse_http_request sets method, target and version before it checks
    //  the method, and resets them for every request.
    bool unknown_method = status == 400 && ri->request_method && ri->request_uri
                          && ri->http_version && !s_civetweb_method (ri->request_method)
                          && s_method_token (ri->request_method);
    if (unknown_method) {
        char path[S_ERROR_PATH_MAX + 1] = "";
        const char *target = ri->request_uri;
        size_t target_len = strcspn (target, "?");
        if (target[0] == '/' && target_len <= S_ERROR_PATH_MAX)
            mg_url_decode (target, (int) target_len, path, (int) sizeof path, 0);
        gw_route_match (ri->request_method, path, &req.match);
        status = s_serve (&req);
    }
    else {
        char error[256];
        snprintf (error, sizeof error, "The request was refused before routing (%s).",
                  message && *message ? message : gw_http_reason (status));
        const char *code = status == 413   ? "request_too_large"
                           : status == 505 ? "http_version_not_supported"
                           : status >= 500 ? "internal_error"
                                           : "bad_request";
        status = s_send_error (&req, status, code, error, 0, NULL);
    }
    gw_metrics_request (self->metrics, req.match.route, status, cm_mono_us () - start);
    cm_info ("%s %s -> %d (refused by civetweb: %s; %s)",
             ri->request_method ? ri->request_method : "-", unknown_method ? "request" : "head",
             status, message ? message : "", req.client);
    return 0;
}

static int
s_log_message (const struct mg_connection *conn, const char *message)
{
    (void) conn;
    char redacted[1024];
    gw_redact_uri (message, redacted, sizeof redacted);
    //  civetweb may quote the request line; tokens never reach the log.
    char *token = strstr (redacted, "Bearer ");
    if (token)
        snprintf (token, sizeof redacted - (size_t) (token - redacted), "Bearer REDACTED");
    cm_warning ("http: %s", redacted);
    return 1;
}

static void
s_hub_delivered (void *arg)
{
    gw_http_t *self = arg;
    gw_metrics_sse_event (self->metrics);
}

gw_http_t *
gw_http_new (const gw_config_t *config, char *why, size_t why_size)
{
    gw_http_t *self = calloc (1, sizeof *self);
    if (!self) {
        snprintf (why, why_size, "out of memory");
        return NULL;
    }
    self->config = *config;
    gw_backend_options_t store = {.endpoint = config->store_endpoint,
                                  .server = "store",
                                  .sockets = config->backend_sockets,
                                  .timeout_ms = config->backend_timeout_ms,
                                  .follow_leader = true,
                                  .reads = config->store_reads};
    gw_backend_options_t history = store;
    history.follow_leader = false;
    history.endpoint = config->history_endpoint;
    history.server = "broadcaster";
    if (cm_curve_new (config->curve_dir, "gateway", &self->curve, why, why_size)) {
        gw_http_destroy (&self);
        return NULL;
    }
    store.curve = history.curve = self->curve;
    cm_shards_t shards = config->store_shards;
    if (shards.count == 0
        && cm_shards_parse (NULL, config->store_endpoint, &shards, why, why_size)) {
        gw_http_destroy (&self);
        return NULL;
    }
    self->shards = gw_shards_new (&shards, &store, s_shard_call, self);
    self->history = gw_backend_new (&history);
    if (!self->shards || !self->history) {
        snprintf (why, why_size, "out of memory (backend pools)");
        gw_http_destroy (&self);
        return NULL;
    }
    self->metrics = gw_metrics_new ();
    gw_hub_options_t hub_options = {
        .writers = config->sse_writers,
        .keepalive_ms = config->sse_keepalive_ms,
        .test_drop_every = config->sse_test_drop_every,
        .delivered = s_hub_delivered,
        .arg = self,
    };
    if (config->sse_test_drop_every)
        cm_warning ("CHATMESH_SSE_TEST_DROP_EVERY=%d: dropping live events on purpose (a test "
                    "setting; never use it in production)",
                    config->sse_test_drop_every);
    self->hub = gw_hub_new (config->events_endpoint, self->curve, &hub_options);
    if (!self->metrics || !self->hub) {
        snprintf (why, why_size,
                  "CHATMESH_EVENTS_OUT_ENDPOINT: cannot connect to '%s' (is it a valid endpoint?)",
                  config->events_endpoint);
        gw_http_destroy (&self);
        return NULL;
    }
    //  civetweb runs one thread per connection and starts them all now.
    //  A live event stream needs none (it is detached once set up, see
    //  gw_stream.h), so: the API's threads plus a reserve for streams being
    //  set up and for those that keep their thread (POST run_sse, no
    //  socket found). No keep-alive: civetweb would read a connection's
    //  next request itself, past the vestibule's check (gw_accept.h).
    int reserve = config->http_threads < GW_SSE_THREADS_MIN ? GW_SSE_THREADS_MIN
                                                            : config->http_threads;
    if (reserve > config->sse_max_streams)
        reserve = config->sse_max_streams;
    char threads[16], request_timeout[16];
    snprintf (threads, sizeof threads, "%d", config->http_threads + reserve);
    snprintf (request_timeout, sizeof request_timeout, "%d", config->request_timeout_ms);
    const char *options[] = {"listening_ports", config->listen,
                             "num_threads", threads,
                             "request_timeout_ms", request_timeout,
                             "enable_keep_alive", "no",
                             "max_request_size", "32768",
                             "tcp_nodelay", "1",
                             "linger_timeout_ms", "1000",
                             "decode_url", "yes",
                             //  civetweb answers a CORS preflight itself
                             //  (200, Allow-Origin "*", the requested
                             //  method and headers echoed) unless these
                             //  are empty; s_preflight answers instead.
                             "access_control_allow_origin", "",
                             "access_control_allow_methods", "",
                             "access_control_allow_headers", "",
                             NULL};
    struct mg_callbacks callbacks;
    memset (&callbacks, 0, sizeof callbacks);
    callbacks.log_message = s_log_message;
    callbacks.http_error = s_http_error;
    gw_accept_options_t intake = {.header_timeout_ms = config->header_timeout_ms,
                                  .max_conns_per_addr = config->max_conns_per_addr};
    if (gw_accept_start (&intake, why, why_size)) {
        gw_http_destroy (&self);
        return NULL;
    }
    self->vestibule = true;
    mg_init_library (0);
    self->ctx = mg_start (&callbacks, self, options);
    if (!self->ctx) {
        snprintf (why, why_size,
                  "CHATMESH_HTTP_LISTEN: cannot listen on '%s' (taken, or not host:port)",
                  config->listen);
        gw_http_destroy (&self);
        return NULL;
    }
    mg_set_request_handler (self->ctx, "/", s_handler, self);
    cm_notice ("listening on %s (%d API threads, up to %d SSE streams, %d SSE writers)",
               config->listen, config->http_threads, config->sse_max_streams,
               config->sse_writers);
    return self;
}

void
gw_http_destroy (gw_http_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    gw_http_t *self = *self_p;
    //  Streams first: their threads are civetweb workers that mg_stop
    //  waits for.
    if (self->hub)
        gw_hub_close_all (self->hub);
    if (self->ctx) {
        mg_stop (self->ctx);
        mg_exit_library ();
    }
    if (self->vestibule)
        gw_accept_stop ();
    gw_hub_destroy (&self->hub);
    gw_shards_destroy (&self->shards);
    gw_backend_destroy (&self->history);
    cm_curve_destroy (&self->curve);
    gw_metrics_destroy (&self->metrics);
    free (self);
    *self_p = NULL;
}

int
gw_http_port (gw_http_t *self)
{
    struct mg_server_port ports[4];
    memset (ports, 0, sizeof ports);
    int n = mg_get_server_ports (self->ctx, 4, ports);
    return n > 0 ? ports[0].port : -1;
}
