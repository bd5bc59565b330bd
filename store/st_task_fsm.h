/*  st_task_fsm.h: the lifecycle of a regeneration task, as one table.

    Pure: no store, no record. st_task.c reads a task's state from its
    record, asks st_task_fsm_step what an event does to it, and carries out
    the step's actions; the handlers only pick the event. The table, with
    the refusal of every pair that is not a transition, is in
    docs/architecture.md ("Task lifecycle"), and test_st_task_fsm checks each
    (state, event) pair.

    Stored form: the record's "status" string ("pending", "in_progress",
    "completed", "failed"), and "cancelled": true beside "failed" for a
    cancelled task (the form older records have).                        */
#ifndef ST_TASK_FSM_H_INCLUDED
#define ST_TASK_FSM_H_INCLUDED

#include <stdbool.h>

typedef enum {
    ST_TASK_PENDING,   //  queued, no worker holds it
    ST_TASK_RUNNING,   //  a worker holds its lease ("in_progress")
    ST_TASK_COMPLETED, //  the answer was written
    ST_TASK_FAILED,    //  given up, or failed for good
    ST_TASK_CANCELLED, //  cancelled by its user, or its message deleted
    ST_TASK_UNKNOWN,   //  a status this build does not know: kept, never run
    ST_TASK_STATES
} st_task_state_t;

typedef enum {
    ST_TASK_CLAIM,         //  a worker claims a pending task (sweep)
    ST_TASK_TAKE_OVER,     //  a worker claims a task whose lease expired
    ST_TASK_LEASE_EXPIRED, //  upkeep puts an expired lease back in the queue
    ST_TASK_GIVE_UP,       //  the sweep finds it out of attempts
    ST_TASK_PROGRESS,      //  the lease holder reports progress
    ST_TASK_THOUGHT,       //  the lease holder reports a thought event
    ST_TASK_COMPLETE,      //  the lease holder delivers the answer
    ST_TASK_RETRY,         //  the lease holder failed, attempts are left
    ST_TASK_FAIL,          //  the lease holder failed for good
    ST_TASK_CANCEL,        //  the task's user cancels it
    ST_TASK_MESSAGE_GONE,  //  its message was deleted
    ST_TASK_PURGE,         //  upkeep deletes an ended task
    ST_TASK_EVENTS
} st_task_event_t;

//  What a step does to the record, in this order (st_task.c).
enum {
    ST_TASK_DO_LEASE = 1 << 0,   //  the worker gets the lease: expiry, attempts + 1,
                                 //  started_at on the first claim
    ST_TASK_DO_RELEASE = 1 << 1, //  no lease holder; claimers are woken
    ST_TASK_DO_RENEW = 1 << 2,   //  the lease runs lease_ms from now again
    ST_TASK_DO_END = 1 << 3,     //  out of the queue and the active index, the
                                 //  message no longer regenerating, counted
    ST_TASK_DO_ANNOUNCE = 1 << 4, //  audit regenerate_failed, event regeneration_error
    ST_TASK_DO_DELETE = 1 << 5   //  the record goes
};

//  One step: rc 0 with the next state and the actions, or the refusal
//  (CM_EBADSTATE, CM_ELEASE, CM_ECANCELLED) with why (static text) and
//  next equal to the state given: a refused event changes nothing.
typedef struct {
    int rc;
    const char *why;
    st_task_state_t next;
    unsigned actions;
} st_task_step_t;

//  What event does in state. States and events out of range are refused
//  with CM_EINVAL.
st_task_step_t st_task_fsm_step (st_task_state_t state, st_task_event_t event);
//  The state a record's status and cancelled flag say (ST_TASK_UNKNOWN
//  for any other status, or none).
st_task_state_t st_task_fsm_parse (const char *status, bool cancelled);
//  The status string a state is stored as (NULL for ST_TASK_UNKNOWN),
//  and whether it is stored with cancelled: true.
const char *st_task_fsm_status (st_task_state_t state);
bool st_task_fsm_cancelled (st_task_state_t state);
//  True for the states no event but PURGE leaves.
bool st_task_fsm_ended (st_task_state_t state);
//  Names for logs and tests ("pending", "claim", ...; "?" out of range).
const char *st_task_fsm_state_name (st_task_state_t state);
const char *st_task_fsm_event_name (st_task_event_t event);

#endif
