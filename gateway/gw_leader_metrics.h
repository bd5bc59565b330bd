/*  gw_leader_metrics.h: /metrics lines of the store shards' leaders, as
    this gateway sees them (cm_leader.h), one series per shard:
      chatmesh_store_not_leader_total{shard}    "not leader" answers
      chatmesh_store_node_failures_total{shard} sends that failed for the
                                                node (no connection, no
                                                answer in time)
      chatmesh_store_leader{shard,node}         1 for the node calls go to
                                                now, 0 for the others
    Pure text from the counters: no call is made. Label values are
    escaped as the text format asks (\\, ", newline).                   */
#ifndef GW_LEADER_METRICS_H_INCLUDED
#define GW_LEADER_METRICS_H_INCLUDED

#include "cm_leader.h"

//  The lines for count shards (names[i] and leaders[i]; a NULL leader, a
//  pool that follows none, is left out). Caller frees; NULL when out of
//  memory. "" when no shard has a leader to show.
char *gw_leader_metrics (const char *const *names, cm_leader_t *const *leaders, int count);

#endif
