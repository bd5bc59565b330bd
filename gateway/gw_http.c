#include "gw_http.h"

#include "cm_codec.h"
#include "cm_error.h"
#include "cm_log.h"
#include "cm_rpc.h"
#include "cm_time.h"
#include "gw_errors.h"
#include "gw_json.h"
#include "gw_jwt.h"
#include "gw_metrics.h"
#include "gw_openapi.h"
#include "gw_proxy.h"
#include "gw_route.h"
#include "gw_sse.h"
#include "gw_validate.h"

#include <arpa/inet.h>
#include <civetweb.h>
#include <czmq.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

//  Longest static file served (the frontend is a handful of small files).
#define GW_STATIC_MAX (16 * 1024 * 1024)
//  How long a fresh or reconnecting DEALER may take to attach to its peer
//  before a call fails as "backend unavailable" (ZMQ_IMMEDIATE queues
//  nothing for an unconnected peer).
#define GW_CONNECT_WAIT_MS 250
#define GW_UA_MAX 500
//  Backend DEALER sockets per kind (store, history): at most
//  CHATMESH_BACKEND_SOCKETS (<= 400: libzmq allows 1023 sockets per
//  process by default, and every socket also holds descriptors) in flight,
//  at most GW_POOL_IDLE kept idle.
#define GW_POOL_IDLE 96
//  civetweb threads kept for event streams being set up (and those that
//  keep their thread), at least; else as many as the API's.
#define GW_SSE_THREADS_MIN 64

//  A pool of DEALERs for one backend. Requests borrow one for the length of
//  a call. (Each worker thread used to own its sockets; with one parked
//  worker thread per SSE stream that meant thousands of sockets.) A socket
//  moves between threads only through the pool's mutex, the full memory
//  barrier ZeroMQ asks for when a socket changes threads.
typedef struct {
    pthread_mutex_t lock;
    pthread_cond_t freed;
    zsock_t *idle[GW_POOL_IDLE];
    int idle_count;
    int live;               //  idle + borrowed
} s_pool_t;

struct gw_http {
    gw_config_t config;
    struct mg_context *ctx;
    gw_hub_t *hub;
    cm_curve_t *curve;      //  NULL = CURVE off
    gw_metrics_t *metrics;
    atomic_int streams;     //  SSE streams open now
    s_pool_t pools[2];      //  [0] store, [1] history
    bool pools_ready;
};

typedef struct {
    gw_http_t *self;
    struct mg_connection *conn;
    const struct mg_request_info *ri;
    gw_match_t match;
    const char *origin;     //  CORS origin to echo, or NULL
    char user[GW_USER_MAX + 1];
    char client[GW_PROXY_ADDR_MAX]; //  the caller's address (gw_proxy.h)
    bool head;              //  HEAD: headers only
    bool body_pending;      //  a request body not (wholly) read
    int status;             //  what was sent
} s_req_t;

//  ---------------------------------------------------------------------
//  Responses

static const char *
s_reason (int status)
{
    switch (status) {
        case 200: return "OK";
        case 204: return "No Content";
        case 400: return "Bad Request";
        case 401: return "Unauthorized";
        case 404: return "Not Found";
        case 405: return "Method Not Allowed";
        case 409: return "Conflict";
        case 413: return "Payload Too Large";
        case 415: return "Unsupported Media Type";
        case 422: return "Unprocessable Entity";
        case 429: return "Too Many Requests";
        case 500: return "Internal Server Error";
        case 503: return "Service Unavailable";
        case 504: return "Gateway Timeout";
        default: return "Status";
    }
}

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

//  Whether the connection may carry another request after this response.
//  Mirrors civetweb's own rule (it closes after a 401, when the client asked
//  for close, or for HTTP/1.0 without keep-alive), and closes on its own
//  account after event streams and when a request body was not read: civetweb
//  would otherwise read (and discard) the rest of it, and a 413 must read
//  nothing past the limit.
static bool
s_keep_alive (s_req_t *req, int status, s_kind_t kind)
{
    if (kind == S_KIND_SSE || status == 401 || status == 413 || req->body_pending)
        return false;
    const char *connection = mg_get_header (req->conn, "Connection");
    if (connection)
        return strcasestr (connection, "keep-alive") != NULL;
    return req->ri->http_version && strcmp (req->ri->http_version, "1.1") == 0;
}

//  Status line, the headers every response carries and then body (may be
//  NULL), written with one send: two sends would cost two syscalls and,
//  with TCP_NODELAY, two segments per response. `extra` is zero or more
//  complete "Name: value\r\n" lines. length < 0: no Content-Length.
static int
s_respond (s_req_t *req, int status, const char *content_type, long long length, s_kind_t kind,
           const char *extra, const char *body, size_t body_len)
{
    req->status = status;
    bool keep = s_keep_alive (req, status, kind);
    if (!keep)
        mg_disable_connection_keep_alive (req->conn);
    char cors[600] = "";
    if (req->origin)
        snprintf (cors, sizeof cors,
                  "Access-Control-Allow-Origin: %s\r\nVary: Origin\r\n"
                  "Access-Control-Expose-Headers: Retry-After\r\n",
                  req->origin);
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
                      "Connection: %s\r\n\r\n",
                      status, s_reason (status), content_type, length_line,
                      kind == S_KIND_API   ? "Cache-Control: no-store\r\n"
                      : kind == S_KIND_SSE ? "Cache-Control: no-cache\r\n"
                                           : "Cache-Control: no-cache\r\n"
                                             "Content-Security-Policy: default-src 'self'; "
                                             "frame-ancestors 'none'; base-uri 'self'\r\n"
                                             "X-Frame-Options: DENY\r\n",
                      cors, extra ? extra : "", keep ? "keep-alive" : "close");
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
        static const char oom[]
            = "{\"success\":false,\"error\":\"The gateway is out of memory; please retry.\","
              "\"code\":\"internal_error\"}";
        return s_send (req, 503, "application/json", oom, sizeof oom - 1, true,
                       "Retry-After: 1\r\n");
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

static int
s_send_mapped (s_req_t *req, const gw_error_t *error)
{
    return s_send_error (req, error->status, error->code, error->error, error->retry_after, NULL);
}

//  ---------------------------------------------------------------------
//  Backend calls

static void
s_pool_init (s_pool_t *pool)
{
    pthread_mutex_init (&pool->lock, NULL);
    pthread_condattr_t attr;
    pthread_condattr_init (&attr);
    pthread_condattr_setclock (&attr, CLOCK_MONOTONIC);
    pthread_cond_init (&pool->freed, &attr);
    pthread_condattr_destroy (&attr);
}

static void
s_pool_fini (s_pool_t *pool)
{
    for (int i = 0; i < pool->idle_count; i++)
        zsock_destroy (&pool->idle[i]);
    pthread_cond_destroy (&pool->freed);
    pthread_mutex_destroy (&pool->lock);
}

//  A connected-or-connecting DEALER for this backend, or NULL when none
//  could be had within wait_ms (all in use, or the endpoint is bad).
static zsock_t *
s_pool_get (gw_http_t *self, bool history, int wait_ms)
{
    s_pool_t *pool = &self->pools[history];
    struct timespec deadline;
    clock_gettime (CLOCK_MONOTONIC, &deadline);
    deadline.tv_sec += wait_ms / 1000;
    deadline.tv_nsec += (long) (wait_ms % 1000) * 1000000L;
    if (deadline.tv_nsec >= 1000000000L) {
        deadline.tv_sec++;
        deadline.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock (&pool->lock);
    while (pool->idle_count == 0 && pool->live >= self->config.backend_sockets)
        if (pthread_cond_timedwait (&pool->freed, &pool->lock, &deadline) == ETIMEDOUT)
            break;
    zsock_t *sock = NULL;
    bool create = false;
    if (pool->idle_count > 0)
        sock = pool->idle[--pool->idle_count];
    else if (pool->live < self->config.backend_sockets) {
        pool->live++;
        create = true;
    }
    pthread_mutex_unlock (&pool->lock);
    if (create) {
        sock = history ? cm_dealer_new_curve (self->config.history_endpoint, self->curve,
                                              "broadcaster")
                       : cm_dealer_new_curve (self->config.store_endpoint, self->curve, "store");
        if (!sock) {
            pthread_mutex_lock (&pool->lock);
            pool->live--;
            pthread_cond_signal (&pool->freed);
            pthread_mutex_unlock (&pool->lock);
        }
    }
    return sock;
}

static void
s_pool_put (gw_http_t *self, bool history, zsock_t *sock)
{
    s_pool_t *pool = &self->pools[history];
    pthread_mutex_lock (&pool->lock);
    if (pool->idle_count < GW_POOL_IDLE)
        pool->idle[pool->idle_count++] = sock;
    else {
        pool->live--;
        zsock_destroy (&sock);
    }
    pthread_cond_signal (&pool->freed);
    pthread_mutex_unlock (&pool->lock);
}

//  Calls a backend on this thread's DEALER (created on first use). On 0
//  *ok is the ok payload; on error *err (may be NULL) the error payload.
//  Takes ownership of payload.
static int
s_call (s_req_t *req, bool history, cm_msg_t type, cm_value_t *payload, cm_value_t **ok,
        cm_value_t **err)
{
    gw_http_t *self = req->self;
    *ok = NULL;
    if (err)
        *err = NULL;
    cm_envelope_t *request = cm_envelope_new (type, NULL);
    if (!request || !payload) {
        cm_envelope_destroy (&request);
        cm_value_destroy (&payload);
        return CM_ENOMEM;
    }
    cm_value_destroy (&request->payload);
    request->payload = payload;
    cm_request_id (request->request_id, sizeof request->request_id);
    //  One budget for the whole call: the wait for a free socket comes off
    //  the wait for the reply, so a frozen backend costs a request at most
    //  CHATMESH_BACKEND_TIMEOUT_MS, even with every socket busy (twice that
    //  when each wait had its own).
    int64_t deadline = cm_mono_ms () + self->config.backend_timeout_ms;
    zsock_t *sock = s_pool_get (self, history, self->config.backend_timeout_ms);
    int rc = CM_EBACKEND;
    int left = (int) (deadline - cm_mono_ms ());
    if (sock && left <= 0)
        rc = CM_ETIMEOUT;
    else if (sock) {
        int wait = left < GW_CONNECT_WAIT_MS ? left : GW_CONNECT_WAIT_MS;
        //  A pooled socket is usually connected: ask its state first (no
        //  syscall) and poll only while it is still connecting.
        zmq_pollitem_t item = {zsock_resolve (sock), 0, ZMQ_POLLOUT, 0};
        if ((zsock_events (sock) & ZMQ_POLLOUT)
            || (zmq_poll (&item, 1, wait) > 0 && (item.revents & ZMQ_POLLOUT))) {
            cm_envelope_t *reply = NULL;
            left = (int) (deadline - cm_mono_ms ());
            rc = left > 0 ? cm_call (sock, request, left, &reply) : CM_ETIMEOUT;
            if (rc == 0) {
                *ok = reply->payload;
                reply->payload = NULL;
            }
            else if (reply && err) {
                *err = reply->payload;
                reply->payload = NULL;
            }
            cm_envelope_destroy (&reply);
        }
    }
    if (sock)
        s_pool_put (self, history, sock);
    cm_envelope_destroy (&request);
    if (rc && rc != CM_ENOTFOUND && rc != CM_EINVAL && rc != CM_ECONFLICT
        && rc != CM_ERATELIMIT && rc != CM_EBADSTATE)
        gw_metrics_backend_error (self->metrics, rc);
    return rc;
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
        if (len > GW_UA_MAX) {
            len = GW_UA_MAX;
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
    json_t *body = s_success (ok);
    cm_value_destroy (&ok);
    return s_send_json (req, 200, body, NULL);
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
    else if (query_allowed && req->ri->query_string)
        gw_query_get (req->ri->query_string, "access_token", token, sizeof token);
    if (!token[0]) {
        s_send_error (req, 401, "unauthorized",
                      "Sign in: send 'Authorization: Bearer <token>'.", 0,
                      "WWW-Authenticate: Bearer\r\n");
        return -1;
    }
    const char *why = NULL;
    if (gw_jwt_verify (req->self->config.secret, req->self->config.secret_len, token,
                       (int64_t) time (NULL), req->user, &why)) {
        char error[128];
        snprintf (error, sizeof error, "The bearer token was rejected (%s); sign in again.",
                  why ? why : "invalid token");
        s_send_error (req, 401, "unauthorized", error, 0,
                      "WWW-Authenticate: Bearer error=\"invalid_token\"\r\n");
        return -1;
    }
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
        s_send_error (req, 413, "payload_too_large", error, 0, NULL);
        return -1;
    }
    const char *type = mg_get_header (req->conn, "Content-Type");
    bool maybe_body = declared != 0;
    if (!required && !maybe_body)
        return 0;
    if (maybe_body && !gw_content_type_is_json (type)) {
        if (!required && declared < 0 && !type)
            return 0; //  no length, no type: a bare POST without a body
        s_send_error (req, 415, "unsupported_media_type",
                      "Send the request body as application/json.", 0, NULL);
        return -1;
    }
    char *buffer = malloc ((size_t) max + 1);
    if (!buffer) {
        s_send_error (req, 503, "internal_error", "The gateway is out of memory; please retry.",
                      1, NULL);
        return -1;
    }
    size_t len = 0;
    while (maybe_body) {
        int n = mg_read (req->conn, buffer + len, (size_t) max + 1 - len);
        if (n <= 0) {
            req->body_pending = n < 0;
            break;
        }
        len += (size_t) n;
        if ((long long) len > max) {
            free (buffer);
            char error[128];
            snprintf (error, sizeof error, "The request body is larger than %lld bytes.", max);
            s_send_error (req, 413, "payload_too_large", error, 0, NULL);
            return -1;
        }
    }
    if (len == 0) {
        free (buffer);
        if (!required)
            return 0;
        s_send_error (req, 400, "missing_body", "This request needs a JSON body.", 0, NULL);
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
//  Connection sockets: accept() interposition
//
//  civetweb 1.15's API gives a handler no socket descriptor, and the SSE
//  fast path (gw_sse.h) writes to sockets directly. So this executable
//  defines accept(): libcivetweb.so resolves accept through the global
//  symbol scope, where the executable comes first, so its calls land here;
//  the real accept is the next definition (dlsym RTLD_NEXT). Each accepted
//  socket is recorded under its peer address and port. An SSE handler finds
//  its socket by the peer address civetweb reports, and checks the find
//  with getpeername and getsockname: a recorded descriptor may since have
//  been closed and reused. When nothing is found the stream simply stays
//  on its own thread (slower, still correct). docs/architecture.md, SSE.

typedef struct {
    unsigned char addr[16];
    uint16_t port;
    sa_family_t family;
} s_peer_key_t;

typedef struct {
    s_peer_key_t key;
    int next; //  next fd + 1 in the bucket, 0 = end
    bool used;
} s_peer_t;

#define S_PEER_BUCKETS 8192
static pthread_mutex_t s_peers_lock = PTHREAD_MUTEX_INITIALIZER;
static s_peer_t *s_peers; //  indexed by fd; lives as long as the process
static int s_peers_cap;
static int s_peer_buckets[S_PEER_BUCKETS]; //  fd + 1, 0 = empty

static bool
s_peer_key (const struct sockaddr *sa, socklen_t len, s_peer_key_t *key)
{
    memset (key, 0, sizeof *key);
    key->family = sa->sa_family;
    if (sa->sa_family == AF_INET && len >= sizeof (struct sockaddr_in)) {
        const struct sockaddr_in *in = (const struct sockaddr_in *) sa;
        memcpy (key->addr, &in->sin_addr, 4);
        key->port = ntohs (in->sin_port);
        return true;
    }
    if (sa->sa_family == AF_INET6 && len >= sizeof (struct sockaddr_in6)) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *) sa;
        memcpy (key->addr, &in6->sin6_addr, 16);
        key->port = ntohs (in6->sin6_port);
        return true;
    }
    return false;
}

static size_t
s_peer_hash (const s_peer_key_t *key)
{
    uint32_t hash = 2166136261u;
    for (size_t i = 0; i < sizeof key->addr; i++)
        hash = (hash ^ key->addr[i]) * 16777619u;
    hash = (hash ^ (key->port & 0xff)) * 16777619u;
    hash = (hash ^ (key->port >> 8)) * 16777619u;
    return hash & (S_PEER_BUCKETS - 1);
}

static bool
s_peer_equal (const s_peer_key_t *a, const s_peer_key_t *b)
{
    return a->family == b->family && a->port == b->port && memcmp (a->addr, b->addr, 16) == 0;
}

//  Called with the lock held.
static void
s_peer_unlink (int fd)
{
    if (fd >= s_peers_cap || !s_peers[fd].used)
        return;
    int *link = &s_peer_buckets[s_peer_hash (&s_peers[fd].key)];
    while (*link) {
        if (*link - 1 == fd) {
            *link = s_peers[fd].next;
            break;
        }
        link = &s_peers[*link - 1].next;
    }
    s_peers[fd].used = false;
}

static void
s_peer_record (int fd, const struct sockaddr *sa, socklen_t len)
{
    s_peer_key_t key;
    if (!s_peer_key (sa, len, &key))
        return;
    pthread_mutex_lock (&s_peers_lock);
    if (fd >= s_peers_cap) {
        int cap = s_peers_cap ? s_peers_cap : 1024;
        while (cap <= fd)
            cap *= 2;
        s_peer_t *peers = realloc (s_peers, (size_t) cap * sizeof *peers);
        if (!peers) {
            pthread_mutex_unlock (&s_peers_lock);
            return;
        }
        memset (peers + s_peers_cap, 0, (size_t) (cap - s_peers_cap) * sizeof *peers);
        s_peers = peers;
        s_peers_cap = cap;
    }
    //  The fd was free again, so whatever it was recorded as is closed.
    s_peer_unlink (fd);
    size_t bucket = s_peer_hash (&key);
    s_peers[fd].key = key;
    s_peers[fd].used = true;
    s_peers[fd].next = s_peer_buckets[bucket];
    s_peer_buckets[bucket] = fd + 1;
    pthread_mutex_unlock (&s_peers_lock);
}

static bool
s_peer_verify (int fd, const s_peer_key_t *key, int local_port)
{
    struct sockaddr_storage addr;
    socklen_t len = sizeof addr;
    s_peer_key_t found;
    if (getpeername (fd, (struct sockaddr *) &addr, &len) || !s_peer_key ((struct sockaddr *) &addr, len, &found)
        || !s_peer_equal (&found, key))
        return false;
    len = sizeof addr;
    return getsockname (fd, (struct sockaddr *) &addr, &len) == 0
           && s_peer_key ((struct sockaddr *) &addr, len, &found) && found.port == local_port;
}

//  The socket of the connection from remote_addr:remote_port to our
//  local_port, or -1.
static int
s_peer_fd (const char *remote_addr, int remote_port, int local_port)
{
    s_peer_key_t key;
    memset (&key, 0, sizeof key);
    key.port = (uint16_t) remote_port;
    if (inet_pton (AF_INET, remote_addr, key.addr) == 1)
        key.family = AF_INET;
    else if (inet_pton (AF_INET6, remote_addr, key.addr) == 1)
        key.family = AF_INET6;
    else
        return -1;
    int fd = -1;
    pthread_mutex_lock (&s_peers_lock);
    for (int link = s_peer_buckets[s_peer_hash (&key)]; link && fd < 0; link = s_peers[link - 1].next)
        if (s_peer_equal (&s_peers[link - 1].key, &key) && s_peer_verify (link - 1, &key, local_port))
            fd = link - 1;
    pthread_mutex_unlock (&s_peers_lock);
    return fd;
}

typedef int (*s_accept_fn_t) (int, __SOCKADDR_ARG, socklen_t *__restrict);
static s_accept_fn_t s_real_accept;
static pthread_once_t s_accept_once = PTHREAD_ONCE_INIT;

static void
s_accept_resolve (void)
{
    s_real_accept = (s_accept_fn_t) dlsym (RTLD_NEXT, "accept");
}

int
accept (int fd, __SOCKADDR_ARG addr, socklen_t *__restrict addr_len)
{
    pthread_once (&s_accept_once, s_accept_resolve);
    if (!s_real_accept) {
        errno = ENOSYS;
        return -1;
    }
    struct sockaddr_storage own;
    socklen_t own_len = sizeof own;
    struct sockaddr *sa = addr.__sockaddr__ && addr_len ? addr.__sockaddr__ : (struct sockaddr *) &own;
    socklen_t *len = addr.__sockaddr__ && addr_len ? addr_len : &own_len;
    int client = s_real_accept (fd, sa, len);
    if (client >= 0)
        s_peer_record (client, sa, *len);
    return client;
}

//  ---------------------------------------------------------------------
//  SSE

//  One stream's context: the arg of its gw_sse callbacks. Heap-allocated,
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
s_sse_history (void *arg, const char *after, cm_value_t **payload)
{
    s_sse_ctx_t *ctx = arg;
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
    int rc = s_call (&req, true, CM_MSG_HISTORY, request, payload, &err);
    cm_value_destroy (&err);
    if (rc)
        cm_warning ("history replay failed: %s (session=%s)", cm_strerror (rc), ctx->session_id);
    return rc;
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
        s_send_error (req, 503, "too_many_streams",
                      "This gateway has no room for another event stream; retry shortly.", 5,
                      NULL);
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
              end == GW_SSE_CLIENT_GONE ? "client gone"
              : end == GW_SSE_OVERFLOW  ? "overflow"
              : end == GW_SSE_CLOSED    ? "shutdown"
                                        : "task done",
              ctx->session_id);
    if (end == GW_SSE_OVERFLOW) {
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
                                     : s_peer_fd (req->ri->remote_addr, req->ri->remote_port,
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
    gw_sse_params_t params = {
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
    gw_sse_end_t end = gw_sse_run (stream, &params);
    if (end == GW_SSE_DETACHED) {
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
        return s_send_error (req, 503, "shutting_down", "The gateway is shutting down; retry.",
                             1, NULL);
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
        return s_send_error (req, 503, "internal_error", "Out of memory; retry.", 1, NULL);
    }
    cm_map_set_str (payload, "session_id", req->match.session_id);
    if (gw_validate_run_sse (body, req->self->config.max_content_chars, payload, &verdict)) {
        json_decref (body);
        cm_value_destroy (&payload);
        return s_send_error (req, verdict.status, verdict.code, verdict.error, 0, NULL);
    }
    json_decref (body);
    if (!s_accepts_sse (req))
        return s_forward (req, CM_MSG_SESSION_START, payload);

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
        return s_send_error (req, 503, "shutting_down", "The gateway is shutting down; retry.",
                             1, NULL);
    }
    cm_value_t *ok = NULL, *err = NULL;
    int rc = s_call (req, false, CM_MSG_SESSION_START, payload, &ok, &err);
    int status = 200;
    if (rc) {
        gw_error_t error;
        gw_error_map (req->match.route, rc, err, &error);
        status = s_send_mapped (req, &error);
    }
    else {
        char task_id[GW_TASK_ID_MAX + 1];
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

typedef enum { S_NO_BODY, S_BODY_OPTIONAL, S_BODY_REQUIRED } s_body_need_t;

static int
s_api (s_req_t *req, cm_msg_t type, bool limited, s_body_need_t need)
{
    if (s_auth (req, false))
        return req->status;
    json_t *body = NULL;
    if (need != S_NO_BODY && s_body (req, need == S_BODY_REQUIRED, &body))
        return req->status;
    cm_value_t *payload = s_caller (req, limited);
    if (!payload) {
        json_decref (body);
        return s_send_error (req, 503, "internal_error", "Out of memory; retry.", 1, NULL);
    }
    const gw_match_t *match = &req->match;
    if (match->session_id[0])
        cm_map_set_str (payload, "session_id", match->session_id);
    if (match->message_id[0])
        cm_map_set_str (payload, "message_id", match->message_id);
    if (match->task_id[0])
        cm_map_set_str (payload, "task_id", match->task_id);
    gw_verdict_t verdict = {0};
    int max = req->self->config.max_content_chars;
    int rc = 0;
    switch (match->route) {
        case GW_R_MESSAGE_EDIT:
            rc = gw_validate_edit (body, max, payload, &verdict);
            break;
        case GW_R_FEEDBACK_PUT:
            rc = gw_validate_feedback (body, payload, &verdict);
            break;
        case GW_R_REGENERATE:
            rc = gw_validate_regenerate (body, max, payload, &verdict);
            break;
        default:
            break;
    }
    json_decref (body);
    if (rc) {
        cm_value_destroy (&payload);
        return s_send_error (req, verdict.status, verdict.code, verdict.error, 0, NULL);
    }
    return s_forward (req, type, payload);
}

//  ---------------------------------------------------------------------
//  Probes, metrics, documents

static int
s_readyz (s_req_t *req)
{
    //  Probes carry no caller: ping payloads are {from}.
    cm_value_t *ok = NULL, *err = NULL;
    cm_value_t *ping = cm_map_new ();
    if (ping)
        cm_map_set_str (ping, "from", "gateway");
    int store_rc = s_call (req, false, CM_MSG_PING, ping, &ok, &err);
    cm_value_destroy (&err);
    const cm_value_t *regen = ok ? cm_map_get (ok, "regenerators") : NULL;
    //  A store that does not report regenerators is not held against
    //  readiness; one that reports zero is.
    long long regenerators = regen && regen->type == CM_T_INT ? (long long) regen->u.i : -1;
    cm_value_destroy (&ok);
    ping = cm_map_new ();
    if (ping)
        cm_map_set_str (ping, "from", "gateway");
    int history_rc = s_call (req, true, CM_MSG_PING, ping, &ok, &err);
    cm_value_destroy (&ok);
    cm_value_destroy (&err);
    char problems[300] = "";
    if (store_rc)
        snprintf (problems + strlen (problems), sizeof problems - strlen (problems),
                  "store: %s; ", cm_strerror (store_rc));
    else if (regenerators == 0)
        snprintf (problems + strlen (problems), sizeof problems - strlen (problems),
                  "regenerator: none connected to the store; ");
    if (history_rc)
        snprintf (problems + strlen (problems), sizeof problems - strlen (problems),
                  "broadcaster: %s; ", cm_strerror (history_rc));
    json_t *body = json_pack ("{s:s, s:s, s:s}", "store", store_rc ? "down" : "ok",
                              "broadcaster", history_rc ? "down" : "ok", "regenerator",
                              regenerators == 0 ? "down" : regenerators > 0 ? "ok" : "unknown");
    if (body && regenerators >= 0)
        json_object_set_new (body, "regenerators", json_integer (regenerators));
    if (!problems[0]) {
        json_object_set_new (body, "status", json_string ("ready"));
        return s_send_json (req, 200, body, NULL);
    }
    problems[strlen (problems) - 2] = 0;
    char error[400];
    snprintf (error, sizeof error, "Not ready: %s.", problems);
    json_object_set_new (body, "success", json_false ());
    json_object_set_new (body, "status", json_string ("not_ready"));
    json_object_set_new (body, "error", json_string (error));
    json_object_set_new (body, "code", json_string ("not_ready"));
    return s_send_json (req, 503, body, "Retry-After: 1\r\n");
}

static int
s_metrics (s_req_t *req)
{
    char *text = gw_metrics_render (req->self->metrics);
    if (!text)
        return s_send_error (req, 503, "internal_error", "Out of memory; retry.", 1, NULL);
    int status = s_send (req, 200, "text/plain; version=0.0.4; charset=utf-8", text, strlen (text),
                         true, NULL);
    free (text);
    return status;
}

static int
s_preflight (s_req_t *req)
{
    //  Without an allowed Origin the answer carries no CORS headers and the
    //  browser refuses the cross-origin request.
    return s_send (req, 204, "text/plain", "", 0, true,
                   req->origin ? "Access-Control-Allow-Methods: GET, POST, PUT, DELETE, OPTIONS\r\n"
                                 "Access-Control-Allow-Headers: Authorization, Content-Type, "
                                 "Last-Event-ID\r\n"
                                 "Access-Control-Max-Age: 600\r\n"
                               : NULL);
}

//  ---------------------------------------------------------------------
//  Static files

static const char *
s_mime (const char *path)
{
    static const struct {
        const char *ext, *type;
    } types[] = {
        {".html", "text/html; charset=utf-8"},
        {".js", "text/javascript; charset=utf-8"},
        {".mjs", "text/javascript; charset=utf-8"},
        {".css", "text/css; charset=utf-8"},
        {".json", "application/json"},
        {".svg", "image/svg+xml"},
        {".png", "image/png"},
        {".ico", "image/x-icon"},
        {".txt", "text/plain; charset=utf-8"},
        {".map", "application/json"},
        {".woff2", "font/woff2"},
    };
    const char *dot = strrchr (path, '.');
    for (size_t i = 0; dot && i < sizeof types / sizeof types[0]; i++)
        if (strcasecmp (dot, types[i].ext) == 0)
            return types[i].type;
    return "application/octet-stream";
}

//  True when path is a plain relative file path: no "..", no hidden
//  segments, no backslashes or control characters.
static bool
s_static_path_ok (const char *path)
{
    if (path[0] != '/')
        return false;
    for (const char *p = path; *p; p++)
        if ((unsigned char) *p < 0x20 || *p == '\\' || *p == 0x7f)
            return false;
    for (const char *seg = path; seg; seg = strchr (seg + 1, '/'))
        if (seg[1] == '.' || (seg[1] == '/' && seg != path))
            return false;
    return true;
}

//  Out of line: its 12 KB of path buffers would otherwise sit in
//  s_handler's frame, above every parked SSE stream (gw_sse.c, stack trim).
static __attribute__ ((noinline)) int
s_static (s_req_t *req)
{
    const char *uri = req->ri->local_uri;
    char path[PATH_MAX], root[PATH_MAX], real[PATH_MAX];
    if (!s_static_path_ok (uri) || strlen (uri) > 512)
        return s_send_error (req, 404, "not_found", "No such file.", 0, NULL);
    const char *file = strcmp (uri, "/") == 0 ? "/index.html" : uri;
    if (!realpath (req->self->config.web_dir, root))
        return s_send_error (req, 404, "not_found", "No such file.", 0, NULL);
    if (strlen (root) + strlen (file) + 1 > sizeof path)
        return s_send_error (req, 404, "not_found", "No such file.", 0, NULL);
    memcpy (path, root, strlen (root));
    memcpy (path + strlen (root), file, strlen (file) + 1);
    //  realpath resolves symlinks too: the file must stay under the root.
    size_t root_len = strlen (root);
    struct stat st;
    if (!realpath (path, real) || strncmp (real, root, root_len) != 0 || real[root_len] != '/'
        || stat (real, &st) || !S_ISREG (st.st_mode) || st.st_size > GW_STATIC_MAX)
        return s_send_error (req, 404, "not_found", "No such file.", 0, NULL);
    int fd = open (real, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return s_send_error (req, 404, "not_found", "No such file.", 0, NULL);
    size_t size = (size_t) st.st_size;
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
        status = s_send_error (req, 503, "internal_error", "The file could not be read; retry.",
                               1, NULL);
    else
        status = s_send (req, 200, s_mime (real), content, size, false, NULL);
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
            char allow[64] = "";
            if (match->allow)
                snprintf (allow, sizeof allow, "Allow: %s\r\n", match->allow);
            return s_send_error (req, match->status, match->code, match->error, 0,
                                 allow[0] ? allow : NULL);
        }
        case GW_R_HEALTHZ:
            return s_send_json (req, 200, json_pack ("{s:s}", "status", "ok"), NULL);
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
        case GW_R_SESSION_LIST:
            return s_api (req, CM_MSG_SESSION_LIST, false, S_NO_BODY);
        case GW_R_SESSION_GET:
            return s_api (req, CM_MSG_SESSION_GET, false, S_NO_BODY);
        case GW_R_ANALYTICS:
            return s_api (req, CM_MSG_ANALYTICS_GET, false, S_NO_BODY);
        case GW_R_MESSAGE_EDIT:
            return s_api (req, CM_MSG_MESSAGE_EDIT, true, S_BODY_REQUIRED);
        case GW_R_MESSAGE_DELETE:
            return s_api (req, CM_MSG_MESSAGE_DELETE, true, S_NO_BODY);
        case GW_R_REGENERATE:
            return s_api (req, CM_MSG_REGEN_CREATE, true, S_BODY_OPTIONAL);
        case GW_R_FEEDBACK_PUT:
            return s_api (req, CM_MSG_FEEDBACK_PUT, true, S_BODY_REQUIRED);
        case GW_R_FEEDBACK_GET:
            return s_api (req, CM_MSG_FEEDBACK_GET, false, S_NO_BODY);
        case GW_R_HISTORY_GET:
            return s_api (req, CM_MSG_HISTORY_GET, false, S_NO_BODY);
        case GW_R_TASK_STATUS:
            return s_api (req, CM_MSG_TASK_STATUS, false, S_NO_BODY);
        case GW_R_TASK_CANCEL:
            return s_api (req, CM_MSG_TASK_CANCEL, true, S_NO_BODY);
        case GW_R_COUNT:
            break;
    }
    return s_send_error (req, 404, "not_found", "There is nothing at this path.", 0, NULL);
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
    req.body_pending = req.ri->content_length > 0
                       || (req.ri->content_length < 0 && mg_get_header (conn, "Transfer-Encoding"));
    const char *method = req.ri->request_method ? req.ri->request_method : "";
    req.head = strcmp (method, "HEAD") == 0;
    req.origin = s_cors_origin (self, conn);
    gw_proxy_client (&self->config.trusted_proxies, req.ri->remote_addr,
                     s_forwarded_for (req.ri), req.client);
    const char *path = req.ri->local_uri;
    int status;
    if (!path) {
        gw_route_match (method, "", &req.match);
        status = s_send_error (&req, 400, "bad_request", "The request target is not a path.", 0,
                               NULL);
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
    s_pool_init (&self->pools[0]);
    s_pool_init (&self->pools[1]);
    self->pools_ready = true;
    if (cm_curve_new (config->curve_dir, "gateway", &self->curve, why, why_size)) {
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
    //  gw_sse.h), so: the API's threads plus a reserve for streams being
    //  set up and for those that keep their thread (POST run_sse, no
    //  socket found). Keep-alive: a thread waits up to 1 s for the next
    //  request of its connection, then serves another connection.
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
                             "enable_keep_alive", "yes",
                             "keep_alive_timeout_ms", "1000",
                             "tcp_nodelay", "1",
                             "linger_timeout_ms", "1000",
                             "decode_url", "yes",
                             NULL};
    struct mg_callbacks callbacks;
    memset (&callbacks, 0, sizeof callbacks);
    callbacks.log_message = s_log_message;
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
    gw_hub_destroy (&self->hub);
    if (self->pools_ready) {
        s_pool_fini (&self->pools[0]);
        s_pool_fini (&self->pools[1]);
    }
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
