/*  gw_metrics.h: counters behind /metrics (Prometheus text format 0.0.4).

    Lock-free: every counter is an atomic, so worker threads record without
    contention and a scrape reads a consistent-enough snapshot.           */
#ifndef GW_METRICS_H_INCLUDED
#define GW_METRICS_H_INCLUDED

#include "gw_route.h"

#include <stdint.h>

typedef struct gw_metrics gw_metrics_t;

gw_metrics_t *gw_metrics_new (void);
void gw_metrics_destroy (gw_metrics_t **self_p);

//  One finished request: its route, HTTP status and duration.
void gw_metrics_request (gw_metrics_t *self, gw_route_id_t route, int status, int64_t micros);
void gw_metrics_inflight (gw_metrics_t *self, int delta);
void gw_metrics_sse_streams (gw_metrics_t *self, int delta);
void gw_metrics_sse_event (gw_metrics_t *self);
void gw_metrics_sse_dropped (gw_metrics_t *self);
void gw_metrics_backend_error (gw_metrics_t *self, int code);
//  Connections the vestibule holds now (gw_accept_held), set at each scrape.
void gw_metrics_vestibule (gw_metrics_t *self, long held);
//  The store's count of regenerator writes it refused for a stale fencing
//  token (its ping's stale_writes_refused), set at each scrape; -1 when the
//  store did not answer (the line is then left out).
void gw_metrics_store_stale (gw_metrics_t *self, long long refused);

//  The exposition text; caller frees. NULL on out-of-memory.
char *gw_metrics_render (gw_metrics_t *self);

#endif
