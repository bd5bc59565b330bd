/*  st_membership.h: the store's cluster_change request (an operator's,
    through chatmesh-cluster add / remove), served by the leader on its
    own thread, one after another (st_server routes it there once it
    leads; a follower answers CM_ENOTLEADER with the hint).

    Payload {op: "add" | "remove", id, raft_address (add only)}. The
    change is st_raft_change's (its errors, word for word); the ok reply
    is {op, id}. A bad payload (unknown op, add without raft_address,
    schema) is CM_EINVAL / CM_EPROTO and changes nothing.

    Why no client endpoint in it: hints ("leader is X") come from each
    node's own CHATMESH_STORE_PEERS, which only bootstraps a node whose
    raft dir is empty, so an operator lists the new node there on every
    node at their next restart (docs/deployment.md); until then a node
    that does not know the new leader's endpoint says "leader unknown",
    and callers try the next endpoint they were given.                   */
#ifndef ST_MEMBERSHIP_H_INCLUDED
#define ST_MEMBERSHIP_H_INCLUDED

#include "cm_codec.h"
#include "st_raft.h"

//  How long the caller's reply waits for the change (then CM_ETIMEOUT,
//  the change goes on): an add waits for the new node to catch up.
#define ST_MEMBERSHIP_WAIT_MS 30000

//  The reply to request (a CM_MSG_CLUSTER_CHANGE); raft not NULL.
cm_envelope_t *st_membership_serve (st_raft_t *raft, const cm_envelope_t *request);

#endif
