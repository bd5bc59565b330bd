/*  gw_shards.h: the gateway's store shards (CHATMESH_STORE_SHARDS,
    cm_shard.h): one backend pool per shard, and which shard a store
    request goes to (docs/architecture.md, "Sharding").

    A request names its session by session_id, or by message_id (whose
    session it carries), or a task by task_id: that key ranks the shards
    (cm_shards_rank). The session lives on the first shard of its rank
    that holds it, which is its first shard unless shards were added
    after it was made. So:
    - session_start (a turn, maybe a session's first) asks the shards in
      rank order with "existing" set; the first that holds the session
      (or keeps it for undo) answers, whatever the answer. When none holds
      it, the session is new: the same request, without "existing", goes
      to the first shard of its rank.
    - events_after (a stream's replay from the store's log) walks the
      rank to the first answer with events or complete: the shard that
      holds the session; the others have no events of it.
    - any other keyed request walks the rank while the answer is
      CM_ENOTFOUND (a failed request changes nothing, st_ctx.h); the first
      shard's not-found is the answer when every shard says so.
    - session_list asks every shard for a page at the same cursor (a
      cursor is a place in one global order, not a shard's) and merges
      them: the first `limit` sessions of the union, next_cursor at the
      last one shown. A shard that does not answer is left out and named
      in "unavailable_shards" (absent when every shard answered); only
      when none answers is the list that failure.
    - a limited request (rate_limit, regen_rate_limit) takes its tokens
      on the user's shard first (gw_shard_rate.h).
    - the operators' audit, analytics and the totals of /metrics ask
      every shard and merge (gw_shards_admin.h).
    - any other request without a key (ping) goes to the first shard
      listed.
    A shard that does not answer (CM_EBACKEND, CM_ETIMEOUT) may hold the
    key: the walk goes on past it, and when no other shard has the key the
    answer is that failure (a 503), never a not-found, and session_start
    creates nothing. So only the sessions (and tasks) of a down shard
    fail; session_list leaves them out and says so.
    With one shard every request is one call, as before sharding.      */
#ifndef GW_SHARDS_H_INCLUDED
#define GW_SHARDS_H_INCLUDED

#include "cm_shard.h"
#include "gw_backend.h"

typedef struct gw_shards gw_shards_t;

//  How a call reaches a pool: gw_backend_call's contract (the payload is
//  taken). gw_http passes gw_probes_call's wrapper (metrics); tests a fake.
typedef int (gw_shards_call_fn) (void *arg, gw_backend_t *pool, cm_msg_t type,
                                 cm_value_t *payload, cm_value_t **ok, cm_value_t **err);

//  A pool per shard of map, each with options' settings (its endpoint the
//  shard's). NULL when out of memory or an option is out of range.
gw_shards_t *gw_shards_new (const cm_shards_t *map, const gw_backend_options_t *options,
                            gw_shards_call_fn *call, void *arg);
void gw_shards_destroy (gw_shards_t **self_p);

int gw_shards_count (const gw_shards_t *self);
//  The pool of shard index (0 .. count-1), borrowed.
gw_backend_t *gw_shards_pool (gw_shards_t *self, int index);
//  The name of shard index ("main" for the one of CHATMESH_STORE_ENDPOINT).
const char *gw_shards_name (const gw_shards_t *self, int index);

//  The shard list, borrowed.
const cm_shards_t *gw_shards_map (const gw_shards_t *self);

//  One call to shard index alone (the contract of gw_backend_call).
int gw_shards_call_on (gw_shards_t *self, int index, cm_msg_t type, cm_value_t *payload,
                       cm_value_t **ok, cm_value_t **err);

//  The request's key into buffer (CM_MESSAGE_ID_MAX + 1): its session_id,
//  the session of its message_id, or its task_id; NULL when it has none.
const char *gw_shards_key (const cm_value_t *payload, char *buffer, size_t size);

//  One store request to the shard(s) it belongs to, as above; the
//  contract of gw_backend_call (payload taken, *ok / *err).
int gw_shards_call (gw_shards_t *self, cm_msg_t type, cm_value_t *payload, cm_value_t **ok,
                    cm_value_t **err);

#endif
