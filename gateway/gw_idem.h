/*  gw_idem.h: the Idempotency-Key header of mutations.

    Every mutation (a route whose row says limited: POST, PUT, DELETE)
    accepts `Idempotency-Key: <1..CM_IDEM_KEY_MAX visible ASCII bytes>`;
    the gateway checks it and passes it to the store as idem_key, and the
    store (store/st_idem.h) makes a retry with the same key and request,
    from any gateway and across restarts, within 24 h, answer the first
    reply with no second effect; the same key with another request is 422
    idempotency_key_reused. A replayed answer carries Idempotent-Replayed:
    true; the streaming run_sse answers a replay with its JSON (the first
    answer), since the task it names may have ended already. Pure: the
    header value in, the payload out.                                    */
#ifndef GW_IDEM_H_INCLUDED
#define GW_IDEM_H_INCLUDED

#include "cm_value.h"
#include "gw_validate.h"

#define GW_IDEM_HEADER "Idempotency-Key"

//  header: the header's value, NULL when the request had none (then
//  nothing is added). 0 with idem_key set in payload, or CM_EINVAL with
//  verdict 400 invalid_idempotency_key (empty, over CM_IDEM_KEY_MAX bytes,
//  or a byte outside 0x21..0x7E), or CM_ENOMEM.
int gw_idem_take (const char *header, cm_value_t *payload, gw_verdict_t *verdict);

//  The header a replayed answer carries (a response header line).
#define GW_IDEM_REPLAYED_HEADER "Idempotent-Replayed: true\r\n"

//  Takes the store's replay mark out of its ok payload (ok may be NULL):
//  true when the store answered from a kept reply. The client gets the
//  first answer's body unchanged, plus GW_IDEM_REPLAYED_HEADER.
bool gw_idem_replayed (cm_value_t *ok);

#endif
