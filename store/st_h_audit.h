/*  st_h_audit.h: the handlers of the audit log, analytics and the shared
    rate limits (st_handler_fn, st_ctx.h), and their upkeep.

    rate_consume   one token of a gateway's bucket (key, limit, window_ms);
                   the reply names the window it came from (window_start).
    rate_refund    gives that token back (key, window_start) when the
                   window is still the same: a sharded gateway's request
                   that changed nothing (gateway/gw_shard_rate.h).
    analytics_get  a session's counters, votes and regeneration times.
    audit_query    the newest audit entries of a session or of the user. */
#ifndef ST_H_AUDIT_H_INCLUDED
#define ST_H_AUDIT_H_INCLUDED

#include "st_ctx.h"

int st_h_rate_consume (st_ctx_t *c);
int st_h_rate_refund (st_ctx_t *c);
int st_h_analytics_get (st_ctx_t *c);
int st_h_audit_query (st_ctx_t *c);

//  Upkeep: deletes audit entries older than cutoff (ms) and rate buckets
//  whose window ended before c->now.
int st_h_audit_expire (st_ctx_t *c, int64_t cutoff);

#endif
