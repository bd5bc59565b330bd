/*  st_h_events.h: the events_after read (st_handler_fn, st_ctx.h).

    events_after {session_id, after?}: the session's logged events after
    `after` (an event id "<epoch>-<seq>"), in the reply shape of a
    broadcaster's history, {epoch, complete, events: [{id, body}]}
    (st_events_after), the newest that fit in one reply. CM_EPROTO (why)
    for a session_id or an after that does not parse. No ownership check:
    like the broadcasters' history it is asked by a gateway for a stream
    it already authorised.                                              */
#ifndef ST_H_EVENTS_H_INCLUDED
#define ST_H_EVENTS_H_INCLUDED

#include "st_ctx.h"

int st_h_events_after (st_ctx_t *c);

#endif
