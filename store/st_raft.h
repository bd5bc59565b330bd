/*  st_raft.h: the store replicated by canonical raft (libraft 0.15).

    Raft runs on its own libuv loop in a thread of the store ("store-raft"),
    with raft's durable log and snapshots in dir (the store dir's raft/)
    and its TCP transport on this node's raft address (st_peers.h). On
    start a node whose raft dir is empty bootstraps the configuration of
    every peer as voters (each node does it alike), so a new cluster needs
    no extra step; a node started with join does not: it waits, with an
    empty log, for the leader to add it (st_raft_change). The FSM is st_fsm.h; that loop thread is the only one
    that writes LMDB.

    The writer thread hands a batch over with st_raft_write_batch: it
    encodes the batch as one entry (st_entry.h: the leader's clock, a fresh
    seed, origin = this node), wakes the loop (uv_async), which calls
    raft_apply, and blocks until the entry is committed by a majority and
    applied here, or has failed; the next batch groups in the writer's
    pipe meanwhile. Outcomes, each filling replies[] like
    st_ops_write_batch_claims:
      - committed: the replies and events the FSM made while applying it,
        each OK reply with "applied_index" = the entry's index (st_reads.h);
      - this node is not the leader (raft_apply refused, nothing appended):
        every reply is CM_ENOTLEADER "leader is <endpoint>" / "leader
        unknown", the claims get none (NULL);
      - appended but leadership lost before the commit was known: the
        entry may still commit under the next leader, so the reply is
        CM_ETIMEOUT "outcome unknown" (callers retry idempotent calls).
    st_raft_upkeep does the same for an upkeep entry.

    State queries (any thread) read a copy the loop refreshes every
    S_TICK_MS and after each apply: a reader may see a just-deposed
    leader as leader for that long, and a deposed leader itself believes
    it leads until raft's election timeout passes without a majority.

    A committed entry this node cannot apply (disk full, LMDB error) stops
    the store (SIGTERM to itself): it must not serve from an LMDB that
    missed an entry; after a restart it replays from its applied index.  */
#ifndef ST_RAFT_H_INCLUDED
#define ST_RAFT_H_INCLUDED

#include "st_fsm.h"
#include "st_peers.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct {
    const st_peers_t *peers;    //  copied
    uint64_t node_id;           //  one of peers
    const char *dir;            //  raft's directory (created if missing)
    unsigned snapshot_entries;  //  entries between snapshots (0: 4096)
    unsigned election_ms;       //  0: 1000
    bool join;                  //  never bootstrap: wait to be added
} st_raft_config_t;

typedef enum { ST_RAFT_ADD, ST_RAFT_REMOVE } st_raft_change_op_t;

typedef struct st_raft st_raft_t;

//  Starts raft (fsm borrowed). NULL on failure (logged).
st_raft_t *st_raft_new (const st_raft_config_t *config, st_fsm_t *fsm);
//  Closes raft (a write waiting in st_raft_write_batch gets "outcome
//  unknown") and joins its thread.
void st_raft_destroy (st_raft_t **self_p);

//  See above. Writer thread only; one call at a time.
void st_raft_write_batch (st_raft_t *self, cm_envelope_t *const *requests, size_t n,
                          cm_envelope_t *const *claims, size_t m, cm_envelope_t **replies,
                          cm_envelope_t **claim_replies, cm_value_t **events);
//  0 (events set) or CM_ENOTLEADER / CM_ETIMEOUT / CM_ENOMEM.
int st_raft_upkeep (st_raft_t *self, cm_value_t **events);

bool st_raft_is_leader (st_raft_t *self);
//  The leader has applied its own term's barrier entry, so every entry
//  committed before its election is in its LMDB: only then does it serve
//  reads as the leader (a node just elected could otherwise miss a write
//  its predecessor acknowledged).
bool st_raft_reads_ready (st_raft_t *self);
//  The index of the last entry applied to LMDB (its txn committed).
uint64_t st_raft_applied (st_raft_t *self);
//  "leader is <endpoint>" or "leader unknown" into buffer.
void st_raft_hint (st_raft_t *self, char *buffer, size_t size);
//  An error reply CM_ENOTLEADER with the hint to request.
cm_envelope_t *st_raft_refusal (st_raft_t *self, const cm_envelope_t *request);
//  Adds "raft": {id, role, leader, term, applied, reads_ready, voter,
//  members: [{id, role: voter|standby|spare}]} to a ping's ok payload
//  (members: this node's latest configuration, committed or not).
void st_raft_describe (st_raft_t *self, cm_value_t *ok);

/*  A membership change, run by the leader's loop; blocks the calling
    thread (not the writer: a reader) until it is done or timeout_ms.
      add     raft_add (id, raft_address) as a spare, then once that entry
              commits raft_assign (RAFT_VOTER): raft first sends the node
              the log (or a snapshot) until it has caught up, then commits
              the configuration with it as a voter;
      remove  raft_remove (id).
    Errors (why says which, nothing changed unless said):
      CM_ENOTLEADER  not the leader (the hint);
      CM_ECONFLICT   id or raft_address already a member, or a change is
                     already running here (one that timed out) or in raft
                     (RAFT_CANTCHANGE);
      CM_ENOTFOUND   remove of an id that is not a member;
      CM_EBADSTATE   remove of the last voter;
      CM_EINVAL      id 0 or an empty raft_address;
      CM_ETIMEOUT    not done within timeout_ms: it goes on, and a ping
                     of the leader (members) tells when it is;
      CM_EBACKEND    raft failed it (e.g. the new node did not catch up),
                     raft's error in why; an add whose spare entry
                     committed leaves the node a spare: remove it, or
                     add again after removing.                          */
int st_raft_change (st_raft_t *self, st_raft_change_op_t op, uint64_t id,
                    const char *raft_address, int timeout_ms, char *why, size_t why_size);
//  The store is stopping: a caller waiting in st_raft_change returns now
//  (CM_ETIMEOUT) and later ones do not wait, so its thread can be joined
//  before raft closes.
void st_raft_end_change_waits (st_raft_t *self);

#endif
