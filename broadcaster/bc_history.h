/*  bc_history.h: bounded replay history of the events the store numbered.

    No sockets and no clock of its own: every call that depends on time takes
    `now_ms` (a monotonic clock in the service, any clock in tests).

    Ids are cm_event_id_t {epoch, seq}, minted by the store in the commit
    that made the event (store/st_events.h): the history only keeps them, so
    a broadcaster that restarts, or a second one fed the same events, holds
    the same ids. A session's held events are one contiguous range of one
    epoch: an event that does not continue it (a gap, left by an event the
    store could not queue to us, or another epoch: a new store) first drops
    what the session held; one at or below the held range's end is a
    duplicate and is refused.

    Each session holds at most `max_events` events, none older than
    `max_age_ms`; at most `max_sessions` sessions are held, the one with the
    oldest last event is dropped first.                                     */
#ifndef BC_HISTORY_H_INCLUDED
#define BC_HISTORY_H_INCLUDED

#include "cm_ids.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct {
    size_t max_events;   //  per session, >= 1
    int64_t max_age_ms;  //  >= 1
    size_t max_sessions; //  >= 1
} bc_history_limits_t;

typedef struct bc_history bc_history_t;

//  bc_history_append's answer to an event it holds already (not an error).
#define BC_HISTORY_DUPLICATE 1

//  One held event, as handed to a replay visitor. Pointers are borrowed and
//  valid only during the visitor call.
typedef struct {
    cm_event_id_t id;
    const void *body;
    size_t size;
} bc_event_t;

//  Visitor of bc_history_replay; return 0 to go on, non-zero to stop (that
//  value is then returned by bc_history_replay).
typedef int (bc_history_visit_fn) (const bc_event_t *event, void *arg);

//  NULL on out-of-memory or limits out of range.
bc_history_t *bc_history_new (const bc_history_limits_t *limits);
void bc_history_destroy (bc_history_t **self_p);

//  Sessions currently held.
size_t bc_history_sessions (const bc_history_t *self);
//  Events currently held by one session (0 when not held).
size_t bc_history_session_events (const bc_history_t *self, const char *session_id);

//  Keeps a copy of body as the session's event id (seq >= 1). Drops what
//  the bounds say must go (old events of this session, the oldest session
//  past max_sessions) and, for an id that does not continue the session's
//  range, what the session held. 0, CM_EINVAL (bad session id, seq 0),
//  BC_HISTORY_DUPLICATE (id at or below the held range's end: nothing
//  kept), CM_ENOMEM.
int bc_history_append (bc_history_t *self, const char *session_id, cm_event_id_t id,
                       const void *body, size_t size, int64_t now_ms);

//  Visits, oldest first, the held events of a session after `after` (NULL:
//  every held event). *complete tells whether the visit covers every event
//  after `after`: false when the session is not held, when `after` has
//  another epoch than the held events, when events after it were dropped
//  (or never reached us), or when it is past the held range (the store may
//  have more). With after NULL, *complete is true. Events older than max_age_ms
//  are dropped first. A session not held visits nothing. Returns 0 or the
//  visitor's non-zero stop value.
int bc_history_replay (bc_history_t *self, const char *session_id,
                       const cm_event_id_t *after, int64_t now_ms, bool *complete,
                       bc_history_visit_fn *visit, void *arg);

//  Drops sessions whose last event is older than max_age_ms. Returns how
//  many were dropped. Call it periodically.
size_t bc_history_prune (bc_history_t *self, int64_t now_ms);

#endif
