/*  st_idem.h: idempotency keys of mutations (the Idempotency-Key header).

    A write whose payload carries idem_key (1..CM_IDEM_KEY_MAX bytes, as
    the gateway checked it) has its effect once per (user, key) within
    ST_IDEM_TTL_MS. The first run's ok reply is kept in the same
    transaction as its effects, in the idem database:
      idem   user \0 key   ->  {type, fp, reply, created_at}
    A retry of the same request (same message type and fingerprint) gets
    that reply again, marked replayed: true, and runs nothing: no second
    task, vote or edit, no event, no rate-limit token. The same key with another request is
    CM_EIDEMPOTENCY (422 at the gateway) and changes nothing. A refused
    request keeps no record, so its retry may succeed. Since the store has
    one writer, two gateways racing with one key still make one effect.
    The fingerprint is FNV-1a 64 over the msgpack encoding of the payload
    without what differs between retries of one action (ip, ua, the rate
    limits): the user, the ids from the path and the checked body fields. */
#ifndef ST_IDEM_H_INCLUDED
#define ST_IDEM_H_INCLUDED

#include "st_ctx.h"

#define ST_IDEM_TTL_MS (24LL * 3600 * 1000)

//  Runs handler for c under c->p's idem_key (just the handler when the
//  request has none): 0 with c->ok the first run's reply plus
//  replayed: true on a replay,
//  CM_EIDEMPOTENCY (with c->why) for the key of another request, or the
//  handler's code.
int st_idem_run (st_ctx_t *c, st_handler_fn handler);
//  Upkeep: deletes the records created before cutoff (ms).
int st_idem_expire (st_ctx_t *c, int64_t cutoff);

#endif
