/*  gw_replay.h: where a stream's missed events come from.

    A stream that reconnects with a Last-Event-ID, or sees a gap in its
    live events, asks first a broadcaster's history (fast, in memory,
    lost on a restart) and, when that cannot cover everything after the
    id, the store's event log (events_after, store/st_events.h), which
    keeps every session's recent events across broadcaster restarts. Both
    answer {complete, events: [{id, body}]}. Only when the store's log
    cannot cover it either (retention trimmed the events) is the answer
    incomplete, and the stream resyncs.                                 */
#ifndef GW_REPLAY_H_INCLUDED
#define GW_REPLAY_H_INCLUDED

#include "cm_value.h"

//  Asks a source (a broadcaster's history, or the store's log when
//  from_store): after (NULL or "": everything held) -> *payload (owned), 0
//  or a CM_E* code.
typedef int (*gw_replay_source_fn) (void *arg, bool from_store, const char *after,
                                    cm_value_t **payload);

//  Asks a broadcaster; when its answer fails or is incomplete and after
//  names an id, asks the store, whose answer (complete or not) then wins
//  when it came. until (NULL or "": none) is the id of a live event that
//  showed the gap: a broadcaster's "complete" answer whose events do not
//  reach the event before it counts as incomplete. That broadcaster may
//  simply not have received them yet (the other one's copy came first),
//  while the store logged them before it published them. *payload gets
//  the answer kept (NULL with an error code when neither answered);
//  *from_store tells which (may be NULL).
int gw_replay_fill (gw_replay_source_fn ask, void *arg, const char *after, const char *until,
                    cm_value_t **payload, bool *from_store);

#endif
