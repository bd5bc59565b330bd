#include "gw_metrics.h"

#include "cm_error.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const int s_statuses[] = {200, 204, 304, 400, 401, 403, 404, 405, 409, 413,
                                 415, 422, 429, 500, 503, 504, 507};
#define STATUS_COUNT (sizeof s_statuses / sizeof s_statuses[0])
#define STATUS_OTHER STATUS_COUNT

//  Latency buckets in seconds (upper bounds).
static const double s_buckets[] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                   0.1,   0.25,   0.5,   1,    2.5,   5,   10};
#define BUCKET_COUNT (sizeof s_buckets / sizeof s_buckets[0])

//  CM_E* codes are -1..-17; index by -code (room for more).
#define CODE_SLOTS 32

struct gw_metrics {
    atomic_ullong requests[GW_R_COUNT][STATUS_COUNT + 1];
    atomic_ullong latency_buckets[BUCKET_COUNT + 1]; //  last = +Inf
    atomic_ullong latency_sum_us;
    atomic_ullong latency_count;
    atomic_llong inflight;
    atomic_llong sse_streams;
    atomic_llong vestibule;
    atomic_llong store_stale; //  -1: unknown
    atomic_ullong sse_events;
    atomic_ullong sse_dropped;
    atomic_ullong backend_errors[CODE_SLOTS];
};

gw_metrics_t *
gw_metrics_new (void)
{
    gw_metrics_t *self = calloc (1, sizeof (gw_metrics_t));
    if (self)
        atomic_init (&self->store_stale, -1);
    return self;
}

void
gw_metrics_destroy (gw_metrics_t **self_p)
{
    if (self_p && *self_p) {
        free (*self_p);
        *self_p = NULL;
    }
}

void
gw_metrics_request (gw_metrics_t *self, gw_route_id_t route, int status, int64_t micros)
{
    if ((int) route < 0 || route >= GW_R_COUNT)
        route = GW_R_NONE;
    size_t slot = STATUS_OTHER;
    for (size_t i = 0; i < STATUS_COUNT; i++)
        if (s_statuses[i] == status)
            slot = i;
    atomic_fetch_add (&self->requests[route][slot], 1);
    double seconds = (double) micros / 1e6;
    size_t bucket = BUCKET_COUNT;
    for (size_t i = 0; i < BUCKET_COUNT; i++)
        if (seconds <= s_buckets[i]) {
            bucket = i;
            break;
        }
    atomic_fetch_add (&self->latency_buckets[bucket], 1);
    atomic_fetch_add (&self->latency_sum_us, (unsigned long long) (micros > 0 ? micros : 0));
    atomic_fetch_add (&self->latency_count, 1);
}

void gw_metrics_inflight (gw_metrics_t *self, int delta) { atomic_fetch_add (&self->inflight, delta); }
void gw_metrics_sse_streams (gw_metrics_t *self, int delta) { atomic_fetch_add (&self->sse_streams, delta); }
void gw_metrics_vestibule (gw_metrics_t *self, long held) { atomic_store (&self->vestibule, held); }

void
gw_metrics_store_stale (gw_metrics_t *self, long long refused)
{
    atomic_store (&self->store_stale, refused);
}
void gw_metrics_sse_event (gw_metrics_t *self) { atomic_fetch_add (&self->sse_events, 1); }
void gw_metrics_sse_dropped (gw_metrics_t *self) { atomic_fetch_add (&self->sse_dropped, 1); }

void
gw_metrics_backend_error (gw_metrics_t *self, int code)
{
    int slot = -code;
    if (slot <= 0 || slot >= CODE_SLOTS)
        slot = 0;
    atomic_fetch_add (&self->backend_errors[slot], 1);
}

typedef struct {
    char *text;
    size_t len, cap;
    bool failed;
} s_buf_t;

static void __attribute__ ((format (printf, 2, 3)))
s_add (s_buf_t *buf, const char *format, ...)
{
    if (buf->failed)
        return;
    char line[512];
    va_list args;
    va_start (args, format);
    int n = vsnprintf (line, sizeof line, format, args);
    va_end (args);
    if (n < 0)
        return;
    if (buf->len + (size_t) n + 1 > buf->cap) {
        size_t cap = (buf->cap + (size_t) n + 1) * 2;
        char *text = realloc (buf->text, cap);
        if (!text) {
            buf->failed = true;
            return;
        }
        buf->text = text;
        buf->cap = cap;
    }
    memcpy (buf->text + buf->len, line, (size_t) n + 1);
    buf->len += (size_t) n;
}

char *
gw_metrics_render (gw_metrics_t *self)
{
    s_buf_t buf = {0};
    s_add (&buf, "# HELP chatmesh_gateway_requests_total HTTP requests by route and status.\n"
                 "# TYPE chatmesh_gateway_requests_total counter\n");
    for (int route = 0; route < GW_R_COUNT; route++)
        for (size_t slot = 0; slot <= STATUS_COUNT; slot++) {
            unsigned long long n = atomic_load (&self->requests[route][slot]);
            if (!n)
                continue;
            char status[8];
            if (slot == STATUS_OTHER)
                snprintf (status, sizeof status, "other");
            else
                snprintf (status, sizeof status, "%d", s_statuses[slot]);
            s_add (&buf, "chatmesh_gateway_requests_total{route=\"%s\",status=\"%s\"} %llu\n",
                   gw_route_info ((gw_route_id_t) route)->name, status, n);
        }
    s_add (&buf, "# HELP chatmesh_gateway_request_duration_seconds Time to answer a request "
                 "(for SSE: the whole stream).\n"
                 "# TYPE chatmesh_gateway_request_duration_seconds histogram\n");
    unsigned long long cumulative = 0;
    for (size_t i = 0; i < BUCKET_COUNT; i++) {
        cumulative += atomic_load (&self->latency_buckets[i]);
        s_add (&buf, "chatmesh_gateway_request_duration_seconds_bucket{le=\"%g\"} %llu\n",
               s_buckets[i], cumulative);
    }
    cumulative += atomic_load (&self->latency_buckets[BUCKET_COUNT]);
    s_add (&buf, "chatmesh_gateway_request_duration_seconds_bucket{le=\"+Inf\"} %llu\n",
           cumulative);
    s_add (&buf, "chatmesh_gateway_request_duration_seconds_sum %.6f\n",
           (double) atomic_load (&self->latency_sum_us) / 1e6);
    s_add (&buf, "chatmesh_gateway_request_duration_seconds_count %llu\n",
           atomic_load (&self->latency_count));
    s_add (&buf,
           "# HELP chatmesh_gateway_requests_in_flight Requests being answered now.\n"
           "# TYPE chatmesh_gateway_requests_in_flight gauge\n"
           "chatmesh_gateway_requests_in_flight %lld\n",
           atomic_load (&self->inflight));
    s_add (&buf,
           "# HELP chatmesh_gateway_sse_connections Open SSE streams.\n"
           "# TYPE chatmesh_gateway_sse_connections gauge\n"
           "chatmesh_gateway_sse_connections %lld\n",
           atomic_load (&self->sse_streams));
    s_add (&buf,
           "# HELP chatmesh_gateway_vestibule_connections Connections waiting for their request "
           "head (or draining after a refusal), holding no thread.\n"
           "# TYPE chatmesh_gateway_vestibule_connections gauge\n"
           "chatmesh_gateway_vestibule_connections %lld\n",
           atomic_load (&self->vestibule));
    s_add (&buf,
           "# HELP chatmesh_gateway_sse_events_total Events written to SSE streams.\n"
           "# TYPE chatmesh_gateway_sse_events_total counter\n"
           "chatmesh_gateway_sse_events_total %llu\n",
           atomic_load (&self->sse_events));
    s_add (&buf,
           "# HELP chatmesh_gateway_sse_dropped_total Streams closed because the reader fell "
           "behind.\n"
           "# TYPE chatmesh_gateway_sse_dropped_total counter\n"
           "chatmesh_gateway_sse_dropped_total %llu\n",
           atomic_load (&self->sse_dropped));
    s_add (&buf, "# HELP chatmesh_gateway_backend_errors_total Failed store/broadcaster calls "
                 "by error.\n"
                 "# TYPE chatmesh_gateway_backend_errors_total counter\n");
    for (int slot = 0; slot < CODE_SLOTS; slot++) {
        unsigned long long n = atomic_load (&self->backend_errors[slot]);
        if (n)
            s_add (&buf, "chatmesh_gateway_backend_errors_total{code=\"%s\"} %llu\n",
                   slot ? cm_error_name (-slot) : "other", n);
    }
    long long stale = atomic_load (&self->store_stale);
    if (stale >= 0)
        s_add (&buf,
               "# HELP chatmesh_store_stale_writes_refused_total Regenerator writes the store "
               "refused for a stale fencing token (a worker whose lease was taken over), since "
               "the store started.\n"
               "# TYPE chatmesh_store_stale_writes_refused_total counter\n"
               "chatmesh_store_stale_writes_refused_total %lld\n",
               stale);
    if (buf.failed) {
        free (buf.text);
        return NULL;
    }
    return buf.text;
}
