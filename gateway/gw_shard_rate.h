/*  gw_shard_rate.h: a user's rate-limit buckets on the shard of the user
    id, when the store is sharded (docs/architecture.md, "Sharding").

    With one shard the store counts a limited request (one whose payload
    carries rate_limit / regen_rate_limit, cm_msg.h) in the request's own
    transaction (st_rows_rate_user): a rejected request changes nothing.
    With K shards the session's shard is seldom the user's, and counting
    there gives a user with sessions on K shards K budgets. So a sharded
    gateway, for a limited request:
    - takes the tokens first on the user's shard (cm_shards_pick of the
      user id) with rate_consume on the store's own bucket keys:
      "a:<user>" for every action, then "r:<user>" for a regeneration
      (a turn, regenerate, continue, and an edit of a question that asks
      for one). A 429 there is the answer; the request is not sent.
    - sends the request without its limits (the session's shard counts
      nothing);
    - gives the tokens back (rate_refund, for the window they came from)
      when the request changed nothing: the store refused it, or it was an
      idempotent replay; and the "r:" token alone when an edit did not
      start a regeneration. A request that may have been done (CM_ETIMEOUT,
      CM_EPROTO: the store may have committed) keeps its tokens.
    When the user's shard does not answer (CM_EBACKEND, CM_ETIMEOUT), the
    request goes with its limits as before: the session's shard counts it,
    so while the user's shard is down the user's budget is per shard, and
    none of the user's sessions elsewhere fail with it.
    The tokens and the request are two transactions on two shards: between
    them, a gateway that dies keeps a token taken for nothing (never the
    other way: no request is done without its token).                    */
#ifndef GW_SHARD_RATE_H_INCLUDED
#define GW_SHARD_RATE_H_INCLUDED

#include "gw_shards.h"

#include <stdbool.h>
#include <stdint.h>

//  The tokens one request took (gw_shard_rate_take), to settle after it.
typedef struct {
    int shard;              //  the user's shard, or -1: nothing taken
    int64_t actions_window; //  the "a:" token's window start, 0: none taken
    int64_t regen_window;   //  the "r:" token's window start, 0: none taken
    char user[CM_USER_MAX + 1];
} gw_shard_rate_t;

//  True when a request of type with payload counts as a regeneration too.
bool gw_shard_rate_regeneration (cm_msg_t type, const cm_value_t *payload);

//  Takes payload's tokens on the user's shard, as above, and then removes
//  the limits from payload (it stays the caller's). 0 (*taken says what was
//  taken, maybe nothing), or the user shard's refusal (CM_ERATELIMIT with
//  *err its payload: retry_after_ms) or another failure of its own.
int gw_shard_rate_take (gw_shards_t *shards, cm_msg_t type, cm_value_t *payload,
                        gw_shard_rate_t *taken, cm_value_t **err);

//  After the request: gives back what it did not use, from rc and ok (the
//  request's result), as above.
void gw_shard_rate_settle (gw_shards_t *shards, gw_shard_rate_t *taken, int rc,
                           const cm_value_t *ok);

#endif
