/*  gw_stream_fsm.c: the stream lifecycle table (gw_stream_fsm.h).  */
#include "gw_stream_fsm.h"

#include <stddef.h>

//  A transition (next state, actions), a step that keeps an end as it is,
//  and a refusal.
#define GO(next, actions) {true, GW_SS_##next, (actions)}
#define SAME {true, GW_SS_STATES, 0}
#define NO {false, GW_SS_STATES, 0}

#define APPEND GW_SA_APPEND
#define SHUTDOWN GW_SA_SHUTDOWN
#define SIGNAL GW_SA_SIGNAL
#define ENQUEUE GW_SA_ENQUEUE
#define ADOPT GW_SA_ADOPT

//  One row per state, one column per event, in the enums' order. The
//  threads a stream can wait in: a connection thread on the condition
//  (OWNED, PARKED: SIGNAL), nobody while FAST (ENQUEUE: a slow-path
//  thread comes), nobody to wake while QUEUED or RUNNING.
static const gw_stream_step_t s_table[GW_SS_STATES][GW_SE_EVENTS] = {
    //  push, park, release, hand back, pick,
    //  gone, overflow, close, fail, done
    [GW_SS_OWNED] = {GO (OWNED, APPEND | SIGNAL), GO (PARKED, 0), GO (FAST, ADOPT), NO, NO,
                     NO, GO (OVERFLOWED, SHUTDOWN | SIGNAL), GO (CLOSED, SIGNAL), GO (GONE, 0),
                     GO (DONE, 0)},
    //  An event for the queue takes the socket back, so it is written in order.
    [GW_SS_PARKED] = {GO (OWNED, APPEND | SIGNAL), NO, NO, GO (OWNED, SIGNAL), NO,
                      GO (GONE, SIGNAL), GO (OVERFLOWED, SHUTDOWN | SIGNAL), GO (CLOSED, SIGNAL),
                      NO, NO},
    [GW_SS_FAST] = {GO (QUEUED, APPEND | ENQUEUE), NO, NO, GO (QUEUED, ENQUEUE), NO,
                    GO (GONE, ENQUEUE), GO (OVERFLOWED, SHUTDOWN | ENQUEUE), GO (CLOSED, ENQUEUE),
                    NO, NO},
    [GW_SS_QUEUED] = {GO (QUEUED, APPEND), NO, NO, NO, GO (RUNNING, 0),
                      NO, GO (OVERFLOWED, SHUTDOWN), GO (CLOSED, 0), NO, NO},
    [GW_SS_RUNNING] = {GO (RUNNING, APPEND), NO, GO (FAST, 0), NO, NO,
                       NO, GO (OVERFLOWED, SHUTDOWN), GO (CLOSED, 0), GO (GONE, 0), NO},
    //  Ends: events for the queue are dropped, a queued one is still picked
    //  up to be finished. A shutdown is reported as such, not as a client
    //  that left; the terminal event written before a shutdown or an
    //  overflow still ends the stream as done.
    [GW_SS_GONE] = {SAME, NO, NO, NO, SAME, NO, SAME, GO (CLOSED, 0), SAME, NO},
    [GW_SS_OVERFLOWED] = {SAME, NO, NO, NO, SAME, NO, SAME, SAME, SAME, GO (DONE, 0)},
    [GW_SS_CLOSED] = {SAME, NO, NO, NO, SAME, NO, SAME, SAME, SAME, GO (DONE, 0)},
    //  Only a connection thread's stream is done, never queued or failed after.
    [GW_SS_DONE] = {SAME, NO, NO, NO, NO, NO, SAME, SAME, NO, NO},
};

gw_stream_step_t
gw_stream_fsm_step (gw_stream_state_t state, gw_stream_event_t event)
{
    if ((unsigned) state >= GW_SS_STATES || (unsigned) event >= GW_SE_EVENTS)
        return (gw_stream_step_t) {false, state, 0};
    gw_stream_step_t step = s_table[state][event];
    if (!step.ok || step.next == GW_SS_STATES)
        step.next = state;
    return step;
}

bool
gw_stream_fsm_ended (gw_stream_state_t state)
{
    return state >= GW_SS_GONE && state < GW_SS_STATES;
}

bool
gw_stream_fsm_fast (gw_stream_state_t state)
{
    return state == GW_SS_PARKED || state == GW_SS_FAST;
}

const char *
gw_stream_fsm_state_name (gw_stream_state_t state)
{
    static const char *names[GW_SS_STATES] = {"owned", "parked",     "fast",   "queued", "running",
                                              "gone",  "overflowed", "closed", "done"};
    return (unsigned) state < GW_SS_STATES ? names[state] : "?";
}

const char *
gw_stream_fsm_event_name (gw_stream_event_t event)
{
    static const char *names[GW_SE_EVENTS] = {"push", "park",     "release", "hand_back", "pick",
                                              "gone", "overflow", "close",   "fail",      "done"};
    return (unsigned) event < GW_SE_EVENTS ? names[event] : "?";
}
