/*  st_events.h: event ids from the commit, and the store's event log
    (docs/store.md, "Event log").

    Every write txn numbers the events it commits (st_batch_run calls
    st_events_number just before the commit): a session's counter is the
    seq of its newest logged event (retention never deletes the newest),
    and its next event gets counter + 1, in the same txn. No head record
    is rewritten per event: the event's own page is the only one it
    dirties (store format 6; format 4-5 kept a head per session in
    event_heads, dropped when such a store opens).
    An id "<epoch>-<seq>" therefore means the same event forever: a
    restart, a broadcaster restart or a replay from here cannot reissue it.
    epoch is one number per store (event_heads "#epoch", the commit time
    of the store's first event): a new store's ids never pass for an old
    one's. The event is kept in `events` under session \0 seq(8 BE), as
    the encoded envelope the broadcasters get; a session keeps its newest
    `keep` events (appending seq s deletes s - keep), so the log is
    bounded by keep events per session.

      event_heads  "#epoch" -> epoch (u64 BE)
      events       session_id \0 seq(8 BE) -> encoded event envelope

    st_events_after answers the `events_after` read (a gateway's
    Last-Event-ID older than every broadcaster's history) in the reply
    shape of a broadcaster's `history`: {epoch, complete, events: [{id,
    body}]}.                                                           */
#ifndef ST_EVENTS_H_INCLUDED
#define ST_EVENTS_H_INCLUDED

#include "cm_ids.h"
#include "st_db.h"

//  Default and bounds of CHATMESH_STORE_EVENTS_KEEP (events kept per session).
#define ST_EVENTS_KEEP_DEFAULT 256
#define ST_EVENTS_KEEP_MAX 65536

//  Numbers events (array of {session_id, event, data}, as handlers append
//  them) in txn: sets each one's "id" (text) and stores it in the log,
//  trimming its session to keep events (0: ST_EVENTS_KEEP_DEFAULT). Events without a valid
//  session_id are left unnumbered (and unpublished ids are never minted).
//  0, CM_EFULL (the map must grow: st_batch_run retries), CM_ENOMEM,
//  CM_ECORRUPT or CM_EDB.
int st_events_number (st_db_t *db, MDB_txn *txn, cm_value_t *events, size_t keep);

//  The store's epoch: 0 before the first event (CM_ENOTFOUND is not an
//  error here). 0 or CM_ECORRUPT/CM_EDB.
int st_events_epoch (st_db_t *db, MDB_txn *txn, uint64_t *epoch);

//  The session's held events after `after` (NULL: all held), oldest first,
//  the newest that fit in budget bytes. *payload {epoch, complete, events}:
//  complete says the events cover every event after `after` (false: after
//  has another epoch, names a seq never reached, or events after it were
//  trimmed or did not fit). 0, CM_ENOMEM, CM_ECORRUPT, CM_EDB.
int st_events_after (st_db_t *db, MDB_txn *txn, const char *session_id,
                     const cm_event_id_t *after, size_t budget, cm_value_t **payload);

#endif
