/*  cm_rpc.h: envelopes over ZeroMQ sockets.

    Request/reply runs DEALER -> ROUTER: the DEALER sends one frame (the
    encoded envelope); the ROUTER sees [identity, body] and answers with
    [identity, reply]. cm_call waits for the reply whose request_id matches,
    dropping late replies to earlier requests that timed out.             */
#ifndef CM_RPC_H_INCLUDED
#define CM_RPC_H_INCLUDED

#include "cm_codec.h"
#include "cm_curve.h"

#include <czmq.h>

//  Connects sock to every endpoint of a comma list ("tcp://a:1,tcp://b:2";
//  empty items skipped). 0, or -1 when the list names none or one does not
//  connect (the endpoints before it stay connected).
int cm_connect_list (zsock_t *sock, const char *list);

//  A DEALER connected to endpoint (a comma list: requests go round robin
//  to the peers connected), tuned for request/reply with timeouts:
//  ZMQ_IMMEDIATE (queue nothing for a peer that is not connected, so a dead
//  backend is an immediate CM_EBACKEND, not a request that runs minutes
//  later), linger 0. NULL when the endpoint is invalid.
zsock_t *cm_dealer_new (const char *endpoint);
//  The same, as a CURVE client of `server` when curve is not NULL.
zsock_t *cm_dealer_new_curve (const char *endpoint, cm_curve_t *curve, const char *server);

//  A unique request id ("<pid>.<thread>.<counter>") into buffer (>= 65).
void cm_request_id (char *buffer, size_t size);

//  Encodes into one frame / decodes one frame. Codes as cm_codec.h.
int cm_frame_encode (const cm_envelope_t *envelope, zframe_t **frame);
int cm_frame_decode (zframe_t *frame, cm_envelope_t **envelope);

//  Sends request (its request_id must be set) and waits up to timeout_ms
//  for the matching reply. Returns 0 with *reply an OK envelope; the
//  reply's negative code with *reply the ERROR envelope (its "message" says
//  why); CM_EBACKEND when nothing could be sent; CM_ETIMEOUT when no reply
//  came in time; CM_EPROTO when the reply was garbage.
int cm_call (zsock_t *dealer, const cm_envelope_t *request, int timeout_ms,
             cm_envelope_t **reply);

//  Sends [identity, encoded reply] on a ROUTER. Takes nothing. 0 or code.
int cm_router_reply (zsock_t *router, zframe_t *identity, const cm_envelope_t *reply);

#endif
