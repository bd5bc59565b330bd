/*  st_task_fsm.c: the task lifecycle table (st_task_fsm.h).  */
#include "st_task_fsm.h"

#include "cm_error.h"

#include <stddef.h>
#include <string.h>

//  Refusals: the code a caller gets and the text that says why.
#define S_ENDED CM_EBADSTATE, "the task has already ended"
#define S_NOT_PENDING CM_EBADSTATE, "only a pending task can be claimed"
#define S_NO_LEASE CM_EBADSTATE, "the task holds no lease"
#define S_ACTIVE CM_EBADSTATE, "the task is still active"
#define S_STRANGE CM_EBADSTATE, "the task's status is not one this store knows"
#define S_NOT_RUNNING CM_ELEASE, "the task is not running"
#define S_OVER CM_ELEASE, "the task has already ended"
#define S_CANCELLED CM_ECANCELLED, "the task was cancelled"

//  A transition (next state, actions) or a refusal (code, why).
#define GO(next, actions) {0, NULL, ST_TASK_##next, (actions)}
#define NO(refusal) {refusal, ST_TASK_STATES, 0}

#define LEASE ST_TASK_DO_LEASE
#define RELEASE ST_TASK_DO_RELEASE
#define RENEW ST_TASK_DO_RENEW
#define END ST_TASK_DO_END
#define ANNOUNCE ST_TASK_DO_ANNOUNCE
#define DELETE ST_TASK_DO_DELETE

//  One row per state, one column per event, in the enums' order.
static const st_task_step_t s_table[ST_TASK_STATES][ST_TASK_EVENTS] = {
    //  claim, take over, lease expired, give up,
    //  progress, thought, complete, retry, fail,
    //  cancel, message gone, purge
    [ST_TASK_PENDING] = {GO (RUNNING, LEASE), NO (S_NO_LEASE), NO (S_NO_LEASE),
                         GO (FAILED, END | ANNOUNCE),
                         NO (S_NOT_RUNNING), NO (S_NOT_RUNNING), NO (S_NOT_RUNNING),
                         NO (S_NOT_RUNNING), NO (S_NOT_RUNNING),
                         GO (CANCELLED, END | ANNOUNCE), GO (CANCELLED, END | ANNOUNCE),
                         NO (S_ACTIVE)},
    [ST_TASK_RUNNING] = {NO (S_NOT_PENDING), GO (RUNNING, LEASE), GO (PENDING, RELEASE),
                         GO (FAILED, END | ANNOUNCE),
                         GO (RUNNING, RENEW), GO (RUNNING, RENEW), GO (COMPLETED, END),
                         GO (PENDING, RELEASE), GO (FAILED, END | ANNOUNCE),
                         GO (CANCELLED, END | ANNOUNCE), GO (CANCELLED, END | ANNOUNCE),
                         NO (S_ACTIVE)},
    [ST_TASK_COMPLETED] = {NO (S_ENDED), NO (S_ENDED), NO (S_ENDED), NO (S_ENDED),
                           NO (S_OVER), NO (S_OVER), NO (S_OVER), NO (S_OVER), NO (S_OVER),
                           NO (S_ENDED), NO (S_ENDED), GO (COMPLETED, DELETE)},
    [ST_TASK_FAILED] = {NO (S_ENDED), NO (S_ENDED), NO (S_ENDED), NO (S_ENDED),
                        NO (S_OVER), NO (S_OVER), NO (S_OVER), NO (S_OVER), NO (S_OVER),
                        NO (S_ENDED), NO (S_ENDED), GO (FAILED, DELETE)},
    [ST_TASK_CANCELLED] = {NO (S_ENDED), NO (S_ENDED), NO (S_ENDED), NO (S_ENDED),
                           NO (S_CANCELLED), NO (S_CANCELLED), NO (S_CANCELLED),
                           NO (S_CANCELLED), NO (S_CANCELLED),
                           NO (S_ENDED), NO (S_ENDED), GO (CANCELLED, DELETE)},
    [ST_TASK_UNKNOWN] = {NO (S_STRANGE), NO (S_STRANGE), NO (S_STRANGE), NO (S_STRANGE),
                         NO (S_NOT_RUNNING), NO (S_NOT_RUNNING), NO (S_NOT_RUNNING),
                         NO (S_NOT_RUNNING), NO (S_NOT_RUNNING),
                         NO (S_STRANGE), NO (S_STRANGE), GO (UNKNOWN, DELETE)},
};

st_task_step_t
st_task_fsm_step (st_task_state_t state, st_task_event_t event)
{
    if ((unsigned) state >= ST_TASK_STATES || (unsigned) event >= ST_TASK_EVENTS)
        return (st_task_step_t) {CM_EINVAL, "no such task state or event", state, 0};
    st_task_step_t step = s_table[state][event];
    if (step.rc)
        step.next = state;
    return step;
}

//  Stored status strings, by state (UNKNOWN has none).
static const char *s_status[ST_TASK_STATES] = {
    [ST_TASK_PENDING] = "pending",    [ST_TASK_RUNNING] = "in_progress",
    [ST_TASK_COMPLETED] = "completed", [ST_TASK_FAILED] = "failed",
    [ST_TASK_CANCELLED] = "failed",   [ST_TASK_UNKNOWN] = NULL};

st_task_state_t
st_task_fsm_parse (const char *status, bool cancelled)
{
    if (!status)
        return ST_TASK_UNKNOWN;
    if (strcmp (status, "failed") == 0)
        return cancelled ? ST_TASK_CANCELLED : ST_TASK_FAILED;
    for (int state = 0; state < ST_TASK_STATES; state++)
        if (s_status[state] && strcmp (status, s_status[state]) == 0)
            return (st_task_state_t) state;
    return ST_TASK_UNKNOWN;
}

const char *
st_task_fsm_status (st_task_state_t state)
{
    return (unsigned) state < ST_TASK_STATES ? s_status[state] : NULL;
}

bool
st_task_fsm_cancelled (st_task_state_t state)
{
    return state == ST_TASK_CANCELLED;
}

bool
st_task_fsm_ended (st_task_state_t state)
{
    return state != ST_TASK_PENDING && state != ST_TASK_RUNNING;
}

const char *
st_task_fsm_state_name (st_task_state_t state)
{
    static const char *names[ST_TASK_STATES] = {"pending",   "running",   "completed",
                                                "failed",    "cancelled", "unknown"};
    return (unsigned) state < ST_TASK_STATES ? names[state] : "?";
}

const char *
st_task_fsm_event_name (st_task_event_t event)
{
    static const char *names[ST_TASK_EVENTS] = {
        "claim",    "take_over", "lease_expired", "give_up", "progress",     "thought",
        "complete", "retry",     "fail",          "cancel",  "message_gone", "purge"};
    return (unsigned) event < ST_TASK_EVENTS ? names[event] : "?";
}
