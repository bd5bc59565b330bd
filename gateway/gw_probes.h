/*  gw_probes.h: the answers of /readyz and /metrics, with the backend
    calls behind them (no civetweb: gw_http.c sends what these return).

    - /readyz pings every store shard and the broadcaster's history.
      Ready (200) when all answer, every shard's disk takes writes and
      every shard has at least one regenerator connected (a store that
      reports no count is not held against readiness); else 503
      `not_ready` with a sentence naming every problem (and, with
      several shards, the shard) and Retry-After. The body always carries
      each backend's "ok"/"down" (the store "down" when any shard is;
      regenerator also "unknown"), and "regenerators" (the fewest any
      shard has) and "store_writes" when known.
    - /metrics is the gateway's own counters (gw_metrics.h), with the
      vestibule's held connections and the stale-write count (summed
      over the shards that answer) refreshed first, then each store
      shard's leader lines (gw_leader_metrics.h), followed by the store's
      action counters (gw_admin_metrics, summed over shards by
      gw_shards_call) when every shard answers: the gateway's metrics go
      out either way.
    Every backend call goes through gw_probes_call, as gw_http.c's do.    */
#ifndef GW_PROBES_H
#define GW_PROBES_H

#include "cm_codec.h"
#include "gw_backend.h"
#include "gw_metrics.h"
#include "gw_shards.h"

#include <jansson.h>

//  What the probes use, borrowed.
typedef struct {
    gw_shards_t *shards;   //  every shard (summed figures, their leaders)
    gw_backend_t *history;
    gw_metrics_t *metrics;
} gw_probes_t;

//  A backend call (gw_backend_call); failures that are not the client's
//  (gw_error_is_client) are counted in metrics.
int gw_probes_call (gw_metrics_t *metrics, gw_backend_t *backend, cm_msg_t type, cm_value_t *payload,
                    cm_value_t **ok, cm_value_t **err);

//  /readyz: returns the HTTP status (200 or 503), the JSON body in *body
//  (the caller owns it; NULL when out of memory) and in *retry_after the
//  seconds to send as Retry-After (0: none).
int gw_probes_ready (const gw_probes_t *probes, json_t **body, int *retry_after);

//  /metrics: the Prometheus text (caller frees), or NULL when out of
//  memory. held: the vestibule's connections now (gw_accept_held).
char *gw_probes_metrics (const gw_probes_t *probes, long held);

#endif
