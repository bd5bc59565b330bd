/*  rg_worker.h: runs one claimed task from open to task_complete.

    Talks to the store only through `call` (a DEALER in the service, a fake
    in tests), so the whole lifecycle is testable without sockets:
      task_progress 0 "Thinking" before the reasoning (the first checkpoint
                      goes out at once; with thoughts off, with the first token)
      task_event thought_process_start / _step* / _complete   (if enabled)
      task_progress*  (throttled; renews the lease)
      task_progress 100, then task_complete {content, model, prompt_tokens?,
                      completion_tokens?, finish_reason?} (the counts when the
                      backend has them; finish_reason "length" when the
                      server's token limit cut the answer)
    or task_fail {error, retryable}. A task with checkpointed text
    (task->partial: an earlier lease was lost) continues it: the text
    starts as the partial, the backend writes what follows (no thoughts:
    the first lease had them), and every partial and the content sent
    extend it, so readers never see the text rewind. Every request carries the claim's
    fencing token (fence). When the store answers CM_ECANCELLED, CM_ELEASE
    or CM_ESTALE the task is no longer ours: the worker stops at once and
    sends nothing more for it.                                                  */
#ifndef RG_WORKER_H_INCLUDED
#define RG_WORKER_H_INCLUDED

#include "cm_codec.h"
#include "rg_backend.h"
#include "rg_task.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

//  Sends request and waits for the reply: 0 with *reply an ok envelope,
//  or a negative code (the store's error code, CM_EBACKEND, CM_ETIMEOUT).
//  The call may add routing fields to the request (cm_leader_call).
typedef int (rg_call_fn) (void *ctx, cm_envelope_t *request, cm_envelope_t **reply);

typedef struct {
    const char *worker_id;
    bool thoughts;              //  CHAT_ACTIONS_ENABLE_THOUGHT_PROCESS
    int64_t progress_interval_ms;
    int64_t task_timeout_ms;
    int poll_ms;                //  longest wait for a chunk (default 100)
} rg_worker_options_t;

typedef enum {
    RG_OUTCOME_COMPLETED, //  task_complete accepted
    RG_OUTCOME_FAILED,    //  task_fail sent (backend error or time limit)
    RG_OUTCOME_LOST,      //  the store cancelled it or the lease is gone
    RG_OUTCOME_SHUTDOWN,  //  stopped by *shutdown: task_fail retryable sent
    RG_OUTCOME_UNSENT     //  the store could not be reached for the end
} rg_outcome_t;

//  Runs the task to its end. *shutdown may be set by another thread.
rg_outcome_t rg_worker_run (const rg_worker_options_t *options, rg_backend_t *backend,
                            const rg_task_t *task, rg_call_fn *call, void *ctx,
                            const atomic_bool *shutdown);

const char *rg_outcome_name (rg_outcome_t outcome);

#endif
