/*  st_h_events.c: events_after (st_h_events.h).  */
#include "st_h_events.h"

#include "cm_error.h"
#include "st_events.h"

//  Room left in one reply for the envelope around the events.
#define S_REPLY_BUDGET (CM_MAX_MESSAGE_BYTES - 64 * 1024)

int
st_h_events_after (st_ctx_t *c)
{
    const char *session_id = cm_map_str (c->p, "session_id");
    if (!cm_session_id_valid (session_id)) {
        c->why = "invalid session_id";
        return CM_EPROTO;
    }
    const char *after_text = cm_map_str (c->p, "after");
    cm_event_id_t after;
    if (after_text && cm_event_id_parse (after_text, &after)) {
        c->why = "after is not an event id <epoch>-<seq>";
        return CM_EPROTO;
    }
    return st_events_after (c->db, c->txn, session_id, after_text ? &after : NULL,
                            S_REPLY_BUDGET, &c->ok);
}
