/*  gw_stream_fsm.h: who serves an event stream, and how it ends, as one table.

    Pure: no stream, no lock, no socket. gw_stream.c keeps one state per
    stream, changes it only under the stream's lock and only through
    gw_stream_fsm_step, and carries out the step's actions there. The
    table is in docs/architecture.md ("SSE stream lifecycle");
    test_gw_stream_fsm checks every (state, event) pair.

    Who owns the socket and the cursor (gw_stream.h): the connection thread
    in OWNED, the hub's writer threads in PARKED (the connection thread
    waits) and FAST (no thread: the hub owns the stream, "detached"),
    nobody while QUEUED for a slow-path thread, that thread in RUNNING. The
    four ends are kept until whoever serves the stream sees them.       */
#ifndef GW_STREAM_FSM_H_INCLUDED
#define GW_STREAM_FSM_H_INCLUDED

#include <stdbool.h>

typedef enum {
    GW_SS_OWNED,      //  a connection thread writes (the start)
    GW_SS_PARKED,     //  writers write; the connection thread waits
    GW_SS_FAST,       //  writers write; detached, no thread
    GW_SS_QUEUED,     //  detached, off the fast path: waits for a slow-path thread
    GW_SS_RUNNING,    //  detached: a slow-path thread writes
    GW_SS_GONE,       //  end: the client went away
    GW_SS_OVERFLOWED, //  end: a slow reader's queue passed its limit
    GW_SS_CLOSED,     //  end: shutdown
    GW_SS_DONE,       //  end: the task the stream waited for ended
    GW_SS_STATES
} gw_stream_state_t;

typedef enum {
    GW_SE_PUSH,      //  an event for the queue (any thread; within the limit)
    GW_SE_PARK,      //  the connection thread, nothing left, hands the socket
                     //  to the writers and waits
    GW_SE_RELEASE,   //  the owner, nothing left, hands the stream to the hub
    GW_SE_HAND_BACK, //  a writer's send would block: the rest goes to the owner
    GW_SE_PICK,      //  a slow-path thread takes the stream off its queue
    GW_SE_GONE,      //  a writer saw the client go away
    GW_SE_OVERFLOW,  //  an event would pass the queue's limit (or no memory)
    GW_SE_CLOSE,     //  shutdown
    GW_SE_FAIL,      //  the owner's write failed
    GW_SE_DONE,      //  the owner wrote the terminal event of until_task_id
    GW_SE_EVENTS
} gw_stream_event_t;

//  What a step does, in this order (gw_stream.c).
enum {
    GW_SA_APPEND = 1 << 0,   //  the event joins the queue
    GW_SA_SHUTDOWN = 1 << 1, //  the queue is dropped, the socket shut down
    GW_SA_SIGNAL = 1 << 2,   //  the connection thread is woken
    GW_SA_ENQUEUE = 1 << 3,  //  the stream joins the slow-path queue
    GW_SA_ADOPT = 1 << 4     //  the hub counts a stream it now owns
};

//  One step: ok with the next state and the actions, or refused (the
//  event cannot happen in that state: a bug in the caller) with next
//  equal to the state given and no actions.
typedef struct {
    bool ok;
    gw_stream_state_t next;
    unsigned actions;
} gw_stream_step_t;

//  What event does in state; out of range: refused.
gw_stream_step_t gw_stream_fsm_step (gw_stream_state_t state, gw_stream_event_t event);
//  True for the four ends (an end only leaves for another end).
bool gw_stream_fsm_ended (gw_stream_state_t state);
//  True while the writers own the socket (PARKED, FAST).
bool gw_stream_fsm_fast (gw_stream_state_t state);
//  Names for logs and tests ("owned", "push", ...; "?" out of range).
const char *gw_stream_fsm_state_name (gw_stream_state_t state);
const char *gw_stream_fsm_event_name (gw_stream_event_t event);

#endif
