/*  gw_backend.h: a pool of DEALER sockets to one backend (the store, or
    the broadcasters' history) and one request/reply call over it.

    A call borrows a socket for its length. (Each worker thread used to own
    its sockets; with one parked worker thread per SSE stream that meant
    thousands of sockets.) At most `sockets` DEALERs live at once, made on
    demand (cm_dealer_new_curve: ZMQ_IMMEDIATE, linger 0), and at most
    GW_BACKEND_IDLE of them are kept idle between calls; a socket moves
    between threads only through the pool's mutex, the full memory barrier
    ZeroMQ asks for when a socket changes threads.

    One budget per call, timeout_ms (CHATMESH_BACKEND_TIMEOUT_MS): the wait
    for a free socket, the wait for it to attach to its peer and the wait
    for the reply all come off it, so a frozen backend costs a call at most
    timeout_ms, even with every socket busy. The reply taken is the one
    with the call's request id: a late reply to an earlier call that timed
    out on the same socket is dropped (cm_call).

    A pool with follow_leader calls one store shard whose endpoint list
    names every node of a Raft cluster (cm_leader.h): it keeps DEALERs per
    node (the `sockets` bound is for all of them; an idle socket of another
    node is closed to make room), and a call goes to the node last seen
    leading and follows "not leader" answers and failures within the same
    budget, sending again only what is safe to resend. A resendable call
    gives one node at most half the budget while other nodes are left. With
    one endpoint that is one DEALER and one send per call, as before. A pool
    without it (the broadcasters' history) has one DEALER over the whole
    comma list, requests round robin to the peers connected.               */
#ifndef GW_BACKEND_H
#define GW_BACKEND_H

#include "cm_codec.h"
#include "cm_curve.h"
#include "cm_leader.h"

//  Idle sockets kept per pool; more are closed when they come back.
#define GW_BACKEND_IDLE 96
//  How long a fresh or reconnecting DEALER may take to attach to its peer
//  (within the call's budget) before the call fails as CM_EBACKEND:
//  ZMQ_IMMEDIATE queues nothing for an unconnected peer.
#define GW_BACKEND_CONNECT_WAIT_MS 250

typedef struct gw_backend gw_backend_t;

typedef struct {
    const char *endpoint; //  a comma list (cm_connect_list); copied
    cm_curve_t *curve;    //  NULL = CURVE off; must outlive the pool
    const char *server;   //  the CURVE server's name ("store"); must outlive the pool
    int sockets;          //  DEALERs live at most (calls in flight), >= 1
    int timeout_ms;       //  one call's whole budget, > 0
    bool follow_leader;   //  endpoint lists a store shard's nodes (above)
    cm_reads_t reads;     //  where reads go, with follow_leader
} gw_backend_options_t;

//  An empty pool (no socket is made before the first call), or NULL when
//  out of memory or an option is out of range (sockets < 1, timeout_ms < 1,
//  no endpoint; with follow_leader, a list cm_leader_new refuses). A bad
//  endpoint shows at the calls: CM_EBACKEND.
gw_backend_t *gw_backend_new (const gw_backend_options_t *options);
//  Closes the idle sockets and frees the pool; no call may be running.
//  Does nothing when *self_p is NULL.
void gw_backend_destroy (gw_backend_t **self_p);

//  Sends a `type` request with payload (taken, even on failure; NULL is
//  CM_ENOMEM) and waits for its reply, from any thread. 0 with *ok the OK
//  payload (the caller owns it). Otherwise *ok is NULL and the code is the
//  backend's own (a negative code of its ERROR reply, with *err its
//  payload when err is not NULL: the caller owns it, "message" says why),
//  or CM_ETIMEOUT (no reply within the budget, or the budget went on the
//  wait for a socket), CM_EBACKEND (no socket free within the budget, or
//  none could attach to the endpoint), CM_EPROTO (a garbage reply),
//  CM_ENOMEM or CM_ETOOBIG (the request could not be encoded). *err is
//  NULL but for a backend's ERROR reply.
//  With follow_leader, CM_EBACKEND also when no node would take the call
//  ("not leader" everywhere: an election), and a failure is the last
//  node's.
int gw_backend_call (gw_backend_t *self, cm_msg_t type, cm_value_t *payload, cm_value_t **ok,
                     cm_value_t **err);

//  The shard's nodes and remembered leader (follow_leader), else NULL;
//  borrowed.
cm_leader_t *gw_backend_leader (gw_backend_t *self);

#endif
