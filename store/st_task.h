/*  st_task.h: regeneration task records, in the request's txn.

    A task record (tasks, st_db.h) is created pending with its task_queue
    and active entries and the message marked regenerating. From then on
    every change of its state is an event of the lifecycle table
    (st_task_fsm.h) that st_task_apply carries out: ending it removes both
    entries, clears the flag (when the message still exists) and counts it
    in the session's analytics. Every function returns 0 or a CM_E* code;
    maps it returns are new (caller owns).                              */
#ifndef ST_TASK_H_INCLUDED
#define ST_TASK_H_INCLUDED

#include "st_rows.h"
#include "st_task_fsm.h"

//  The task's state, from its stored status (st_task_fsm_parse).
st_task_state_t st_task_state (const cm_value_t *task);
//  True while the task may still run (pending or in progress).
bool st_task_active (const cm_value_t *task);
int st_task_load (st_ctx_t *c, const char *task_id, cm_value_t **task);
int st_task_put (st_ctx_t *c, const cm_value_t *task);
//  The id of the active task writing message_id (into task_id, CM_ID_MAX
//  + 1): 0, CM_ENOTFOUND when none.
int st_task_running_id (st_ctx_t *c, const char *message_id, char *task_id);

//  Creates a pending task of kind ("answer", "regenerate", "edit",
//  "continue": st_h_continue.h) for
//  the assistant message (stored at message_key) and marks the message
//  regenerating; task_id (CM_ID_MAX + 1) gets its id. CM_ECONFLICT (with
//  c->why) when the message already has an active task: checked first.
int st_task_create (st_ctx_t *c, const char *kind, cm_value_t *message,
                    const st_key_t *message_key, const char *original_message_id,
                    const char *user_query, char *task_id);
//  0 when event may happen to task now, else the table's refusal (with
//  c->why). Writes nothing: handlers check before their first write.
int st_task_check (st_ctx_t *c, const cm_value_t *task, st_task_event_t event);
//  Carries out event on task (st_task_check's refusal, or the step's
//  actions, in st_task_fsm.h's order) and stores it. A lease (CLAIM,
//  TAKE_OVER) also gets the next fencing token: "fence" grows by one on
//  every lease, so a worker whose lease was taken over holds an older one. detail is the
//  worker for a step that leases (CLAIM, TAKE_OVER), the error for one
//  that fails the task (GIVE_UP, FAIL, CANCEL, MESSAGE_GONE) or retries
//  it (RETRY, kept as last_error), else NULL. A failure is audited as
//  regenerate_failed for the requester on the user's own events (CANCEL,
//  MESSAGE_GONE), for the task's user otherwise.
int st_task_apply (st_ctx_t *c, cm_value_t *task, st_task_event_t event, const char *detail);
//  True from a lease that continues checkpointed text ("partial": every
//  lease sets resume_seam from it) until the new holder's first checkpoint
//  (task_progress clears it).
bool st_task_resuming (const cm_value_t *task);
//  The task of a worker request (task_id, worker, fence) that event
//  (PROGRESS, THOUGHT, COMPLETE, RETRY or FAIL) may happen to:
//  CM_ECANCELLED when someone ended the task under it (cancel, delete of
//  its message), CM_ESTALE (with c->why) when fence is not the task's
//  (the lease was taken over; checked before the state, so a presumed-dead
//  worker that wakes after its successor finished gets it too), CM_ELEASE
//  unless the worker holds its lease. Counts as a sign of life.
int st_task_held (st_ctx_t *c, st_task_event_t event, cm_value_t **task);

#endif
