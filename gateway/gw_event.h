/*  gw_event.h: one SSE event, formatted once.

    An event is built from a broadcaster event envelope (or a history entry
    holding one, or by the gateway itself for connection_status and
    session_updated) and carries its frame "id: ..\nevent: ..\ndata: ..\n\n"
    ready to write. The data is compact JSON (jansson escapes every control
    character), so content holding "\r\n" or "\n\nevent: x" cannot break
    the framing. The event name is checked against nothing here: the
    broadcaster relays what the store published (proto/cm_event.h).

    Threads and ownership: an event is immutable once built and refcounted
    (atomically), so the dispatcher, every writer thread and every stream
    of its session share one copy; each holder takes a reference with
    gw_event_ref and gives it back with gw_event_unref.                    */
#ifndef GW_EVENT_H_INCLUDED
#define GW_EVENT_H_INCLUDED

#include "cm_codec.h"
#include "cm_ids.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

//  A malloc'd SSE frame (caller frees); id NULL or "" omits the id line.
//  NULL when id or type hold CR/LF (they would break the framing), type is
//  empty, or on out-of-memory.
char *gw_event_format (const char *id, const char *type, const json_t *data, size_t *len);

typedef struct gw_event gw_event_t;

//  From a broadcaster event envelope (type "event", payload {event, data})
//  and its id ("<epoch>-<seq>", or NULL/"" for none). 0 with *out (one
//  reference, the caller's), CM_EPROTO (not an event, bad id) or CM_ENOMEM.
int gw_event_new (const char *id, const cm_envelope_t *envelope, gw_event_t **out);
//  From a history entry {id, body: bin (encoded event envelope)}. Codes as
//  gw_event_new, or cm_envelope_decode's.
int gw_event_from_history (const cm_value_t *entry, gw_event_t **out);
//  A gateway-made event (connection_status, session_updated). data is
//  borrowed. NULL on out-of-memory or a type gw_event_format refuses.
gw_event_t *gw_event_synthetic (const char *id, const char *type, const json_t *data);
//  The keepalive comment ": keepalive\n\n" as an event (type "keepalive",
//  no id), so writers send it like any other frame. NULL on out-of-memory.
gw_event_t *gw_event_keepalive (void);

//  Another reference to self (returned for convenience).
gw_event_t *gw_event_ref (gw_event_t *self);
//  Gives one reference back, frees on the last; sets *self_p to NULL.
void gw_event_unref (gw_event_t **self_p);

//  Accessors; borrowed, valid while a reference is held.
const char *gw_event_id (const gw_event_t *self);      //  "" when none
bool gw_event_has_id (const gw_event_t *self);         //  a valid "<epoch>-<seq>"
cm_event_id_t gw_event_eid (const gw_event_t *self);   //  when gw_event_has_id
const char *gw_event_type (const gw_event_t *self);
const char *gw_event_task_id (const gw_event_t *self); //  data.taskId or ""
const char *gw_event_frame (const gw_event_t *self, size_t *len);
size_t gw_event_len (const gw_event_t *self);          //  of the frame

#endif
