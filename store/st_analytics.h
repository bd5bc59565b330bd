/*  st_analytics.h: action analytics as counters, kept in the write
    transaction of the action itself (so they are exactly as durable as
    the action: a commit has both or neither), never computed by scanning.

    Every audit record the store writes (st_rows_audit_end) is counted
    here, per model and per user, per UTC day, in the counters db:

      key    kind ('m' model, 'u' user) day(be32, days since the epoch)
             name \0 counter          (name cut to ST_ANALYTICS_NAME_MAX
                                       bytes on a UTF-8 boundary)
      value  count, u64 BE (8 bytes)
    and, for the plain counters (not reasons or causes), every model's
    all-time total under kind 'T' with day 0 (never expired: monotonic,
    as Prometheus counters must be).

    The counter an action adds to:
      session_start        turns
      regenerate           regenerations
      edit                 edits
      delete               deletes
      feedback             upvotes / downvotes (votes cast: a vote that
                           replaces the caller's earlier one counts too),
                           and "up_reason:<reason>" / "down_reason:<reason>"
                           when it gave one
      feedback_withdrawn   withdrawals (a vote taken back; the votes cast
                           stay counted)
      regenerate_complete  answers (every finished generation)
      regenerate_failed    cancels for "cancelled", else failures and
                           "failure:<cause>" (the error, cut)
    (reasons and causes cut to ST_ANALYTICS_TEXT_MAX bytes); a finished
    generation also counts, for its model only, in the bucket
    "gen_ms:<bound>" of its time from request to answer (bounds 100 ms
    doubling up to 1,638,400 ms, the last taking anything longer), and,
    when a progress checkpoint of its task carried text, in
    "first_ms:<bound>" of the time from request to that first text (time
    to first token as the store sees it: at checkpoint granularity), which
    give the p50/p95 of the query. The model is
    the request's "model" when it names one (the one asked for, or the one
    a worker answered with), else the model of the message acted on, else
    "default".                                                           */
#ifndef ST_ANALYTICS_H_INCLUDED
#define ST_ANALYTICS_H_INCLUDED

#include "st_ctx.h"

#define ST_ANALYTICS_NAME_MAX 200
#define ST_ANALYTICS_TEXT_MAX 100
#define ST_ANALYTICS_DAY_MS 86400000LL
//  Longest range of one query, in days.
#define ST_ANALYTICS_DAYS_MAX 366
//  Reasons and causes listed per model.
#define ST_ANALYTICS_TOP 5

//  Counts the audit record record (size bytes, as stored) in c's txn.
int st_analytics_count (st_ctx_t *c, const void *record, size_t size);

//  The counters of the UTC days from..to (ms, inclusive) as the reply of
//  admin_analytics (new map, caller owns):
//    {from, to (ISO dates), models: [{model, <counters>, per-answer rates,
//     top_down_reasons, top_up_reasons: [{reason, count}], failures_by_cause:
//     [{cause, count}], p50_generation_ms, p95_generation_ms,
//     p50_first_text_ms, p95_first_text_ms (the bucket bound holding the
//     quantile, nil without generations)}],
//     users: [{user, <counters>}],
//     days: [{date, models: [{model, <counters>}]}]}
//  With "shard_counts" in the request (a sharded gateway adds up the
//  replies of every shard, gateway/gw_shards_admin.h), the top reasons
//  are every reason, and each model row also has gen_ms_buckets and
//  first_ms_buckets: {bound: count} of its nonzero buckets.
//  CM_EINVAL (with c->why) for from > to or more than
//  ST_ANALYTICS_DAYS_MAX days.
int st_analytics_query (st_ctx_t *c, int64_t from, int64_t to, cm_value_t **out);

//  The all-time totals: [{model, counter, count}] (new array, caller owns),
//  in key order.
int st_analytics_totals (st_ctx_t *c, cm_value_t **out);

#endif
