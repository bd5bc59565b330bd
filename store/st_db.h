/*  st_db.h: the store's LMDB environment, its named databases, and records.

    The store is the only process that opens the environment. One writer
    thread owns write transactions; reader threads run read-only ones. A
    record is a cm_value_t map encoded with cm_value_encode (msgpack), so a
    field can be added without a migration.

    Key layouts (all chosen so one cursor range scan answers a query):
      sessions       session_id                          -> session map
      user_sessions  user \0 session_id                  -> ""
      messages       session_id \0 seq(8, big-endian)    -> message map
                     (branch_seq, branch_version: its branch, st_branch.h)
      msg_index      message_id                          -> messages key
      feedback       message_id \0 user                  -> feedback map
      history        message_id \0 ms(8 BE) seq(8) hist_id -> history map
      tasks          task_id                             -> task map
      task_queue     created_ms(8 BE) task_id            -> "" (active tasks only)
      active         message_id                          -> task_id (active task)
      audit          ms(8 BE) seq(8 BE) log_id           -> audit map
      analytics      session_id                          -> counters map
      rate           bucket key ("a:<user>")             -> rate record (below)
      votes          messages key [+ be32 version >= 2]  -> vote counts (below)
      versions       messages key                        -> version head (st_versions.h)
                     messages key + be32(n)              -> version n's map
      idem           user \0 idempotency key             -> first reply (st_idem.h)
      audit_chain    "head"                              -> chain head (st_chain.h)
      counters       kind day(4 BE) name \0 counter      -> count (u64 BE, st_analytics.h)
      events         session_id \0 seq(8 BE)             -> event envelope (st_events.h)
      event_heads    "#epoch"                            -> epoch (u64 BE; format 6)
                     "#raft_applied"                     -> raft index of the last
                                                            entry applied (u64 BE;
                                                            replicated stores, st_fsm.h)

    Hot counters are fixed-size binary records, not msgpack, so a vote or a
    rate-limited request never decodes or re-encodes a map (and a vote
    never rewrites its message, whose content may be many KB):
      votes  16 bytes: upvotes, downvotes (u64 BE each). A message without
             one (written before this record existed) takes its counts from
             the message map's upvotes/downvotes; the first vote copies them.
      rate   25 bytes: 0xC1 (a byte msgpack never uses, so it cannot be
             mistaken for an older msgpack bucket, which is still read),
             window_start, count, window_ms (i64 BE each).

    Every value sits in a checksum envelope (st_record.h): the functions
    below add it on write and check and strip it on read, so callers see
    the layouts above and never a damaged value.

    Errors: 0, CM_ENOTFOUND (no such key), CM_EFULL (MDB_MAP_FULL: the map
    must grow, see st_db_grow), CM_ECORRUPT (a stored value whose checksum
    does not match, or a map record that does not decode; logged with the
    db and the key), CM_ENOSPC (a commit refused because the disk is full,
    see st_db_commit), CM_EDB (any other LMDB failure, logged).            */
#ifndef ST_DB_H_INCLUDED
#define ST_DB_H_INCLUDED

#include <lmdb.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cm_value.h"

typedef enum {
    ST_DBI_SESSIONS,
    ST_DBI_USER_SESSIONS,
    ST_DBI_MESSAGES,
    ST_DBI_MSG_INDEX,
    ST_DBI_FEEDBACK,
    ST_DBI_HISTORY,
    ST_DBI_TASKS,
    ST_DBI_TASK_QUEUE,
    ST_DBI_ACTIVE,
    ST_DBI_AUDIT,
    ST_DBI_ANALYTICS,
    ST_DBI_RATE,
    ST_DBI_VOTES,
    ST_DBI_VERSIONS,
    ST_DBI_IDEM,
    ST_DBI_AUDIT_CHAIN,
    ST_DBI_COUNTERS,
    ST_DBI_EVENTS,
    ST_DBI_EVENT_HEADS,
    ST_DBI_TRASH,
    ST_DBI_COUNT
} st_dbi_t;

typedef struct st_db st_db_t;

//  Opens (creating) the environment in dir (the directory must exist) with
//  an initial map of map_bytes. sync=false skips the fsync at commit
//  (MDB_NOSYNC): faster, but a machine crash may lose acknowledged commits
//  or, unless the filesystem keeps write order, corrupt the database.
//  0, or CM_EDB with the reason logged.
int st_db_open (const char *dir, size_t map_bytes, bool sync, st_db_t **out);
void st_db_destroy (st_db_t **self_p);

//  Write transaction, optionally nested in parent (one per request inside
//  the batch). Only the writer thread calls these.
int st_db_write_begin (st_db_t *self, MDB_txn *parent, MDB_txn **txn);
//  Commit; 0, CM_EFULL, CM_ENOSPC or CM_EDB. The txn is gone in every
//  case. CM_ENOSPC: the pages could not be written (ENOSPC, EDQUOT, or
//  LMDB's EIO for a short write while st_db_space_low holds) and nothing
//  changed; a smaller commit may still fit, and commits work again once
//  space is freed.
int st_db_commit (MDB_txn *txn);

//  True when the filesystem holding dir has less than
//  ST_DB_SPACE_LOW_BYTES or 1 % of its size free for us; *free_bytes (when
//  not NULL) gets what is free. False when statvfs fails.
#define ST_DB_SPACE_LOW_BYTES (1u << 20)
bool st_db_space_low (const char *dir, uint64_t *free_bytes);
void st_db_abort (MDB_txn *txn);

//  Read-only transaction for reader threads; st_db_read_end releases it.
//  Holds a shared lock so st_db_grow never resizes under a reader.
int st_db_read_begin (st_db_t *self, MDB_txn **txn);
void st_db_read_end (st_db_t *self, MDB_txn *txn);

//  Doubles the map. Call only from the writer with no write txn open; it
//  waits for running readers to finish. 0 or CM_EDB (logged): the address
//  space has no room for the bigger map, and the environment keeps its
//  old one (writes that need more room fail, reads go on). Should LMDB
//  itself fail to map after the check, the environment is left alone for
//  good: every st_db_*_begin answers CM_EDB until the store restarts.
int st_db_grow (st_db_t *self);
//  What the caller of a write refused for want of room reads: for
//  CM_ENOSPC (the disk is full) and CM_EFULL (the map is full and
//  st_db_grow refused to grow it: no retry stores the change until the
//  operator acts, so it is answered as CM_ENOSPC too, 507 at the
//  gateway), a sentence saying which; NULL for any other code.
const char *st_db_no_room (int rc);
size_t st_db_map_size (st_db_t *self);
//  The environment's directory (valid while self lives).
const char *st_db_dir (st_db_t *self);

MDB_dbi st_db_dbi (st_db_t *self, st_dbi_t which);
//  "messages", ...: the db's LMDB name (static).
const char *st_db_name (st_dbi_t which);

//  Longest key text in a log line (st_record_key_text), with its NUL.
#define ST_DB_KEY_TEXT_MAX 200

//  How many puts and deletes were attempted so far through this st_db (in
//  any txn; only the writer thread writes). A request whose count did not
//  move changed nothing, even when it failed.
uint64_t st_db_writes (st_db_t *self);

//  Records. *out is a new map the caller owns. Puts and deletes (like
//  write txns) belong to one thread at a time: st_db_put reuses one
//  encoding buffer.
int st_db_get (st_db_t *self, MDB_txn *txn, st_dbi_t which, const void *key, size_t key_len,
               cm_value_t **out);
int st_db_put (st_db_t *self, MDB_txn *txn, st_dbi_t which, const void *key, size_t key_len,
               const cm_value_t *value);
//  Raw bytes (index values). st_db_get_raw's *data is valid until the txn ends.
int st_db_get_raw (st_db_t *self, MDB_txn *txn, st_dbi_t which, const void *key,
                   size_t key_len, const void **data, size_t *size);
int st_db_put_raw (st_db_t *self, MDB_txn *txn, st_dbi_t which, const void *key,
                   size_t key_len, const void *data, size_t size);
//  mdb_cursor_get on a cursor of db which, with the value checked and
//  stripped like st_db_get_raw's: 0, CM_ENOTFOUND at the end, CM_ECORRUPT
//  or CM_EDB. *data is valid until the txn ends or the cursor moves.
int st_db_cursor_get (MDB_cursor *cursor, st_dbi_t which, MDB_val *key,
                      MDB_val *data, MDB_cursor_op op);
//  0 or CM_ENOTFOUND.
int st_db_del (st_db_t *self, MDB_txn *txn, st_dbi_t which, const void *key, size_t key_len);

//  Translates an LMDB return code (logging unexpected ones with what).
int st_db_error (int mdb_rc, const char *what);

//  Writes a big-endian u64 into 8 bytes / reads one.
void st_db_be64_put (unsigned char *out, uint64_t value);
uint64_t st_db_be64_get (const unsigned char *in);

//  The replicated store's applied index (st_fsm.h). st_db_stage_applied
//  makes every later write txn that st_batch_run commits also write index
//  as "#raft_applied" (0 stops it), so the index moves in the same txn as
//  the entry's changes. st_db_applied reads it in txn (NULL: its own read
//  txn); 0 when none was ever written. 0 or CM_E* code.
void st_db_stage_applied (st_db_t *self, uint64_t index);
int st_db_seal (st_db_t *self, MDB_txn *txn);
int st_db_applied (st_db_t *self, MDB_txn *txn, uint64_t *index);
//  The LMDB environment (for snapshots: st_fsm.h). Borrowed.
MDB_env *st_db_env (st_db_t *self);

//  Consistent compacted copy of the live environment in src_dir into
//  dst_dir (created if missing, must hold no data.mdb). Safe while the
//  store runs: it opens the environment read-only and copies inside one
//  read transaction. The copy is written as data.mdb.partial, flushed,
//  verified record by record (st_verify_path, damage listed on stderr),
//  and only then renamed to data.mdb; on any failure the partial file is
//  removed. 0, CM_ECORRUPT (a damaged record), or CM_EDB/CM_EIO, with
//  the reason logged.
int st_db_backup (const char *src_dir, const char *dst_dir);

#endif
