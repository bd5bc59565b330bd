/*  gw_dedup.h: drops the second copy of an event, per session, by id.

    The gateway subscribes to every broadcaster and each one relays every
    event the store published, with the id the store gave it in the commit
    (store/st_events.h): the first copy of an id to arrive is kept, later
    copies (the other broadcasters') are dropped before any stream sees
    them. Per session it keeps the newest id let through; an id of another
    epoch (a new store) is let through and starts the session again.
    Dispatcher thread only (no lock). A session is forgotten when the
    gateway unsubscribes from it, so the table holds the subscribed
    sessions only.                                                       */
#ifndef GW_DEDUP_H_INCLUDED
#define GW_DEDUP_H_INCLUDED

#include "cm_ids.h"

#include <stdbool.h>
#include <stddef.h>

typedef struct gw_dedup gw_dedup_t;

//  NULL on out-of-memory.
gw_dedup_t *gw_dedup_new (void);
void gw_dedup_destroy (gw_dedup_t **self_p);

//  True when id is new for session_id (above the newest let through, or
//  of another epoch), and then remembers it; false for a copy or an older
//  id. Out of memory: true (a duplicate reaches the streams, whose cursor
//  drops it; an event is never lost here).
bool gw_dedup_admit (gw_dedup_t *self, const char *session_id, cm_event_id_t id);

//  Forgets session_id (after the unsubscribe).
void gw_dedup_forget (gw_dedup_t *self, const char *session_id);

//  Sessions held.
size_t gw_dedup_sessions (const gw_dedup_t *self);

#endif
