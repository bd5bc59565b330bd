/*  st_h_admin.h: the operators' handlers (st_handler_fn, st_ctx.h). The
    gateway lets only operators reach them (gateway/gw_admin.h); they see
    every user's records.

    admin_audit  audit entries of every user, newest first, filtered by
                 user_id, session_id, action_type and created_at in
                 [from, to] (ms), limit (1..CM_AUDIT_PAGE_MAX, default 100)
                 per page. The reply is {entries, next_cursor}: next_cursor
                 (nil on the last page) is the hex of the last entry's key,
                 and passing it back as cursor continues strictly before
                 that entry, so paging yields every entry once even while
                 new ones are written. A cursor that is not such hex is
                 CM_EINVAL. With shard_cursors (a sharded gateway's
                 merge, gateway/gw_shards_admin.h) every entry also
                 carries its own key's hex as "cursor": cursors of all
                 shards are in one order (the key's bytes: time first).
                 A page that happens to end the log may still
                 have a cursor; the page after it is empty. A page looks
                 at no more than 100,000 entries (a filter that matches
                 little must not hold a reader for the whole log): it
                 then ends early, possibly short or empty, with a cursor
                 that goes on from there.
    admin_audit_verify  walks the audit chain (st_chain.h): {sound,
                 entries, unchained, broken} where broken is nil or
                 {index, id, previous_id, reason} of the first broken link.
    admin_analytics  the action counters of the UTC days from..to (ms;
                 default: the 30 days up to now), as st_analytics_query.
    analytics_totals  {totals: [{model, counter, count}]}, all time
                 (st_analytics_totals), for the gateway's /metrics.       */
#ifndef ST_H_ADMIN_H_INCLUDED
#define ST_H_ADMIN_H_INCLUDED

#include "st_ctx.h"

//  Entries one admin_audit page looks at, at most.
#define ST_ADMIN_SCAN_MAX 100000

int st_h_admin_audit (st_ctx_t *c);
int st_h_admin_audit_verify (st_ctx_t *c);
int st_h_admin_analytics (st_ctx_t *c);
int st_h_analytics_totals (st_ctx_t *c);

#endif
