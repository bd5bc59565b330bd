/*  bc_history.h: per-session event ids and bounded replay history.

    No sockets and no clock of its own: every call that depends on time takes
    `now_ms` (a monotonic clock in the service, any clock in tests).

    Ids are cm_event_id_t {epoch, seq}. The epoch is fixed at bc_history_new
    (the broadcaster's start time). seq counts a session's events from 1. A
    session whose history was dropped (idle prune or session cap) and that gets
    events again continues above every seq ever issued to a dropped session,
    so a session's ids strictly increase for the whole epoch even though we
    keep nothing about sessions we dropped beyond one number.

    Each session holds at most `max_events` events, none older than
    `max_age_ms`; at most `max_sessions` sessions are held, the one with the
    oldest last event is dropped first. Events are dropped only from the
    front, so a session's held seqs are always one contiguous range.        */
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
bc_history_t *bc_history_new (uint64_t epoch, const bc_history_limits_t *limits);
void bc_history_destroy (bc_history_t **self_p);

uint64_t bc_history_epoch (const bc_history_t *self);
//  Sessions currently held.
size_t bc_history_sessions (const bc_history_t *self);
//  Events currently held by one session (0 when not held).
size_t bc_history_session_events (const bc_history_t *self, const char *session_id);

//  Gives the session's next event its id and keeps a copy of body. Drops
//  what the bounds say must go (old events of this session, the oldest
//  session past max_sessions). 0, CM_EINVAL (bad session id), CM_ENOMEM.
int bc_history_append (bc_history_t *self, const char *session_id, const void *body,
                       size_t size, int64_t now_ms, cm_event_id_t *id);

//  Visits, oldest first, the held events of a session after `after` (NULL:
//  every held event). *complete tells whether the visit covers every event
//  issued after `after`: false when `after` has another epoch, when events
//  after it were already dropped, or when it names a seq this session never
//  reached. With after NULL, *complete is true. Events older than max_age_ms
//  are dropped first. A session not held visits nothing. Returns 0 or the
//  visitor's non-zero stop value.
int bc_history_replay (bc_history_t *self, const char *session_id,
                       const cm_event_id_t *after, int64_t now_ms, bool *complete,
                       bc_history_visit_fn *visit, void *arg);

//  Drops sessions whose last event is older than max_age_ms. Returns how
//  many were dropped. Call it periodically.
size_t bc_history_prune (bc_history_t *self, int64_t now_ms);

#endif
