/*  st_ops.h: every store request as pure logic over LMDB, no sockets.

    Writes run inside a write transaction that the caller owns (the writer
    thread nests one child txn per request, see st_ops_write_batch); reads
    run in their own read-only txn. Each handler checks ownership (another
    user's session, message or task is CM_ENOTFOUND), consumes rate-limit
    tokens, writes its audit record and analytics counters in the same txn
    as the change, and lists the events to publish once the txn commits.

    An event is a map {session_id: str, event: str, data: map}; the server
    turns it into the frames [session_id, event envelope].                  */
#ifndef ST_OPS_H_INCLUDED
#define ST_OPS_H_INCLUDED

#include "cm_codec.h"
#include "st_db.h"

typedef struct {
    int64_t lease_ms;       //  CHATMESH_TASK_LEASE_MS
    int max_attempts;       //  CHATMESH_TASK_MAX_ATTEMPTS
    int64_t retention_ms;   //  CHATMESH_RETENTION_SECONDS * 1000
    int64_t undo_ms;        //  CHATMESH_UNDO_SECONDS * 1000: how long a delete can be undone
    int64_t worker_live_ms; //  a regenerator seen within this is "live"
    size_t events_keep;     //  CHATMESH_STORE_EVENTS_KEEP (0: default, st_events.h)
} st_ops_config_t;

typedef struct st_ops st_ops_t;

//  db is borrowed and must outlive the ops. NULL on out-of-memory.
st_ops_t *st_ops_new (st_db_t *db, const st_ops_config_t *config);
void st_ops_destroy (st_ops_t **self_p);

//  True for the request types that change data (they go to the writer).
bool st_ops_is_write (cm_msg_t type);
//  True for the request types st_ops_read answers.
bool st_ops_is_read (cm_msg_t type);

//  One write request inside txn. Always sets *reply (ok or error; NULL
//  only on out-of-memory). Returns 0 or the error code. On success the
//  request's events are appended to `events` (an array); on failure nothing
//  is appended and the caller must abort txn, so nothing changes.
//  CM_EFULL means the LMDB map is full: grow it and retry the whole batch.
int st_ops_handle (st_ops_t *self, MDB_txn *txn, const cm_envelope_t *request, int64_t now,
                   cm_envelope_t **reply, cm_value_t *events);

//  Applies n write requests in ONE transaction, each in a nested txn so a
//  failing request changes nothing and does not disturb the others;
//  commits; on MDB_MAP_FULL grows the map and retries the batch. Sets
//  replies[i] for every request and *events (array, caller owns) to the
//  events of the committed requests, in order. Returns 0, or CM_ENOSPC
//  when the commit found the disk full (counted, and reported by ping
//  until the disk has room again: writes_refused_since), or
//  CM_EDB when the commit failed otherwise (replies are then all that
//  error, events empty).
int st_ops_write_batch (st_ops_t *self, cm_envelope_t *const *requests, size_t n,
                        int64_t now, cm_envelope_t **replies, cm_value_t **events);

//  st_ops_write_batch, handing new tasks straight to waiting regenerators:
//  claims are m task_claim requests parked in their long-poll. When the n
//  requests make a task claimable (create or requeue one), the claims run
//  after them in the same transaction, so the task is created and leased
//  in one commit, and claim_replies[i] is each claim's reply (its events
//  after the requests' in *events). When they make nothing claimable, or
//  the commit fails, the claims do not run: every claim_replies[i] is NULL
//  (the claims wait on). st_ops_take_tasks_changed then says whether a
//  claimable task is left for the other long-polls.
int st_ops_write_batch_claims (st_ops_t *self, cm_envelope_t *const *requests, size_t n,
                               cm_envelope_t *const *claims, size_t m, int64_t now,
                               cm_envelope_t **replies, cm_envelope_t **claim_replies,
                               cm_value_t **events);

//  A read request in its own read-only txn. Sets *reply, returns 0 or code.
int st_ops_read (st_ops_t *self, const cm_envelope_t *request, int64_t now,
                 cm_envelope_t **reply);

//  Periodic upkeep in its own txn: requeue tasks whose lease expired (or
//  fail them when out of attempts), drop terminal tasks, audit entries and
//  rate buckets older than the retention. *events as in write_batch.
int st_ops_cleanup (st_ops_t *self, int64_t now, cm_value_t **events);

//  Claim scheduling for the writer's parked long-polls. Returns and clears
//  "a task became claimable since the last call" (created or requeued).
bool st_ops_take_tasks_changed (st_ops_t *self);
//  Earliest wall-clock ms at which a running task's lease expires, as seen
//  by the last claim scan; 0 when none.
int64_t st_ops_next_lease_expiry (st_ops_t *self);

//  Records that a regenerator asked for work (any thread).
void st_ops_worker_seen (st_ops_t *self, const char *worker, int64_t now);
//  Regenerators seen within worker_live_ms (any thread) whose worker id
//  starts with prefix ("" or NULL: all of them).
int st_ops_live_workers (st_ops_t *self, int64_t now, const char *prefix);

#endif
