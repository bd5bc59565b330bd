/*  gw_shards_admin.h: the operators' views over every store shard
    (docs/architecture.md, "Sharding"): a sharded gateway asks each shard
    and merges the replies into the one the store would give if it held
    everything.

    - admin_audit: every shard's page at the same cursor, asked with
      shard_cursors so each entry carries its key's hex (st_h_admin.h).
      Keys of all shards are in one order (the entry's time first), so a
      cursor is one place for every shard: each shard continues strictly
      before it. A shard that has more has seen all of its entries at or
      after its own next_cursor; the merged page is the newest `limit`
      entries at or after the greatest such cursor, and its next_cursor is
      its last entry's (when the limit cut the page) or that greatest
      cursor. Every entry comes once, in order, over the pages.
    - admin_analytics: asked with shard_counts (every reason, and the
      time buckets: st_analytics.h); rows of the same model, user or day
      are added up, and the per-answer rates, the top 5 reasons and the
      p50/p95 (the bucket bound holding the quantile) are computed again
      from the sums: the same figures as one store with all the records.
    - analytics_totals (/metrics): counts of the same model and counter
      added up.
    - admin_audit_verify: sound when every shard's chain is; entries and
      unchained added up; broken is the first shard's (in list order)
      that has one. Each shard keeps its own chain.
    Any shard that fails fails the request (its code and error): a view
    without a shard would be a wrong total.                              */
#ifndef GW_SHARDS_ADMIN_H_INCLUDED
#define GW_SHARDS_ADMIN_H_INCLUDED

#include "gw_shards.h"

#include <stdbool.h>

//  Reasons a top_*_reasons list keeps (the store's ST_ANALYTICS_TOP).
#define GW_SHARDS_TOP_REASONS 5

//  True for the types merged here.
bool gw_shards_admin_merges (cm_msg_t type);

//  One such request to every shard, merged as above; the contract of
//  gw_backend_call (payload taken, *ok / *err).
int gw_shards_admin_call (gw_shards_t *shards, cm_msg_t type, cm_value_t *payload,
                          cm_value_t **ok, cm_value_t **err);

//  The merges themselves, over count replies (borrowed): a new reply, or
//  NULL when out of memory. limit: the audit page's size.
cm_value_t *gw_shards_admin_audit (cm_value_t *const *replies, int count, int64_t limit);
cm_value_t *gw_shards_admin_analytics (cm_value_t *const *replies, int count);
cm_value_t *gw_shards_admin_totals (cm_value_t *const *replies, int count);
cm_value_t *gw_shards_admin_verify (cm_value_t *const *replies, int count);

#endif
