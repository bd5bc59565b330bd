/*  st_batch.h: the one retry-and-grow loop around every write txn the
    writer opens (a batch of requests, the periodic upkeep).

    st_batch_run opens a write txn, runs body in it, commits when body
    returns 0 and aborts otherwise, and retries:
      - ST_BATCH_REPLAY from body: once more with nested true (body then
        gives each request its own nested txn, see st_ops_write_batch);
      - CM_EFULL (from body or the commit): after st_db_grow doubled the
        map, the whole attempt again;
    at most ST_BATCH_ATTEMPTS attempts in all. Before the commit, the
    events body appended are numbered and logged in the same txn
    (st_events_number, keeping events_keep per session), so an event id
    is only ever the committed one; so is a replicated entry's raft index
    (st_db_seal, st_fsm.h). events is a fresh array per
    attempt; the committed attempt's goes to *events (caller owns), else
    *events is an empty array. body must undo on entry whatever a previous
    attempt left for its caller (replies). Returns 0, CM_EFULL (the map
    cannot grow), CM_EDB (attempts exhausted) or the error body or the
    commit gave (CM_ENOSPC: disk full).                                  */
#ifndef ST_BATCH_H_INCLUDED
#define ST_BATCH_H_INCLUDED

#include "st_db.h"

#define ST_BATCH_REPLAY 1
#define ST_BATCH_ATTEMPTS 32

typedef int (*st_batch_body_fn) (void *arg, MDB_txn *txn, bool nested, cm_value_t *events);

int st_batch_run (st_db_t *db, size_t events_keep, st_batch_body_fn body, void *arg,
                  cm_value_t **events);

#endif
