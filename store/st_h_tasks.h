/*  st_h_tasks.h: the handlers of regeneration tasks (st_handler_fn,
    st_ctx.h), the user's (task_cancel, task_status) and the regenerator's
    (claim, progress, event, complete, fail: every one after the claim
    needs the lease, CM_ELEASE otherwise, and answers CM_ECANCELLED once
    the task was ended under the worker), and the queue sweep.           */
#ifndef ST_H_TASKS_H_INCLUDED
#define ST_H_TASKS_H_INCLUDED

#include "st_ctx.h"

int st_h_task_cancel (st_ctx_t *c);
int st_h_task_claim (st_ctx_t *c);
int st_h_task_progress (st_ctx_t *c);
int st_h_task_event (st_ctx_t *c);
int st_h_task_complete (st_ctx_t *c);
int st_h_task_fail (st_ctx_t *c);
int st_h_task_status (st_ctx_t *c);

//  Walks the task queue oldest first: claims up to max claimable tasks
//  for worker (when not NULL) into claimed, fails those out of attempts
//  and, with requeue (upkeep), turns expired leases back into pending
//  tasks. Sets c->ops->next_lease_expiry.
int st_h_task_sweep (st_ctx_t *c, const char *worker, int64_t max, bool requeue,
                     cm_value_t *claimed);
//  Upkeep: deletes ended tasks completed before cutoff (ms).
int st_h_task_expire (st_ctx_t *c, int64_t cutoff);

#endif
