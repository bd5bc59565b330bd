/*  st_fsm.h: the replicated store's state machine: each committed Raft
    entry (st_entry.h) applied to this node's LMDB, snapshots as LMDB
    copies. It knows nothing of raft's API: st_raft.h calls it from raft's
    loop thread, which is then the only thread that writes LMDB.

    Apply (entry at raft index `index`):
      - an index at or below the applied index recorded in LMDB is skipped:
        LMDB already holds it (a restart replays the log from raft's last
        snapshot, and LMDB may be ahead of that);
      - otherwise the entry runs exactly as the unreplicated writer would
        run it (st_ops_write_batch_claims, or st_ops_cleanup for upkeep)
        with the entry's clock and ids from its seed (st_det.h), the audit
        sequence derived from the index, and the index written in the SAME
        txn ("#raft_applied", st_db_stage_applied): LMDB and the applied
        index never disagree, whatever kills the process;
      - a request a handler refuses is refused alike on every node (a
        reply, no change); an entry that does not decode changes nothing
        but still moves the applied index, logged;
      - the proposer gets the replies and events back (*result) when the
        entry is the one it awaits (st_fsm_await: origin is this node and
        the seed matches); every other node discards them.
    A commit that fails locally (disk full, LMDB error) returns its code
    with nothing changed: this replica cannot go on (st_raft.h stops it).

    Snapshot: mdb_env_sync, then a compacted copy (mdb_env_copyfd2,
    MDB_CP_COMPACT) into a memfd, read into one buffer with a header
    "CMRS" version(1) 0(3) applied(8). Restore: when LMDB already holds
    that index or later it is kept (a restart of this node); otherwise
    every named database is replaced by the snapshot's in one write txn
    (readers keep their view: MVCC), via a temp file in the store dir.

    Threads: apply/snapshot/restore on raft's loop thread only.
    st_fsm_lock/unlock let another thread (the writer) read the st_ops
    scheduling state apply changes (tasks_changed, lease expiry).       */
#ifndef ST_FSM_H_INCLUDED
#define ST_FSM_H_INCLUDED

#include "st_det.h"
#include "st_ops.h"

#include <stddef.h>
#include <stdint.h>

typedef struct st_fsm st_fsm_t;

//  What an applied entry gave its proposer (st_fsm_result_destroy).
typedef struct {
    int rc;                        //  st_ops_write_batch_claims' (or cleanup's)
    uint64_t index;                //  the entry's raft index (its applied index)
    size_t n, m;
    cm_envelope_t **replies;       //  n, one per request (never NULL each)
    cm_envelope_t **claim_replies; //  m, NULL for a claim that waits on
    cm_value_t *events;            //  array, to publish after the replies
} st_fsm_result_t;

//  ops and db are borrowed. NULL on out-of-memory.
st_fsm_t *st_fsm_new (st_ops_t *ops, st_db_t *db, uint64_t node_id);
void st_fsm_destroy (st_fsm_t **self_p);

//  The entry this node proposed and waits for (seed from st_entry_t);
//  st_fsm_await_none: none (its proposal failed).
void st_fsm_await (st_fsm_t *self, const unsigned char seed[ST_DET_SEED_BYTES]);
void st_fsm_await_none (st_fsm_t *self);

//  0 (*result set only for the awaited entry, else NULL) or the local
//  commit's error code (nothing changed).
int st_fsm_apply (st_fsm_t *self, uint64_t index, const void *data, size_t size,
                  st_fsm_result_t **result);
//  The applied index LMDB holds (0: none yet).
uint64_t st_fsm_applied (st_fsm_t *self);

//  A snapshot into a new malloc'd buffer. 0, CM_EIO or CM_ENOMEM.
int st_fsm_snapshot (st_fsm_t *self, void **data, size_t *size);
//  0, CM_EPROTO (not a snapshot), CM_EIO, CM_EDB, CM_ENOSPC.
int st_fsm_restore (st_fsm_t *self, const void *data, size_t size);

void st_fsm_lock (st_fsm_t *self);
void st_fsm_unlock (st_fsm_t *self);

void st_fsm_result_destroy (st_fsm_result_t **result_p);

//  SHA-256 (hex, 65 bytes) over every key and value of every named
//  database of db, in order: two replicas hold the same records exactly
//  when their digests match. 0 or CM_EDB.
int st_fsm_digest (st_db_t *db, char digest[65]);

#endif
