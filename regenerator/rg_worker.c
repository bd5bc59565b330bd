#include "rg_worker.h"
#include "cm_error.h"
#include "cm_event.h"
#include "cm_log.h"
#include "cm_rpc.h"
#include "cm_time.h"
#include "rg_throttle.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

//  How long the end of a task (task_complete / task_fail) keeps retrying a
//  store that does not answer; on shutdown we cannot wait that long.
#define S_END_RETRY_MS_SHUTDOWN 2000

typedef struct {
    const rg_worker_options_t *options;
    const rg_task_t *task;
    rg_call_fn *call;
    void *ctx;
    const atomic_bool *shutdown;
    rg_throttle_t throttle;
    bool lost; //  the store said the task is not ours any more
    char *text;
    size_t len, cap;
    int progress;
    const char *message;
    cm_value_t *steps; //  [{step, reasoning}] so far, at most S_STEPS_MAX; NULL before any
} s_run_t;

#define S_STEPS_MAX 8 //  steps a thought_process_step event repeats

const char *
rg_outcome_name (rg_outcome_t outcome)
{
    static const char *names[] = {"completed", "failed", "lost", "shutdown", "unsent"};
    return outcome <= RG_OUTCOME_UNSENT ? names[outcome] : "?";
}

static void
s_sleep_ms (int64_t ms)
{
    struct timespec ts = {(time_t) (ms / 1000), (long) (ms % 1000) * 1000000};
    nanosleep (&ts, NULL);
}

static cm_envelope_t *
s_request (s_run_t *run, cm_msg_t type)
{
    char request_id[CM_REQUEST_ID_MAX + 1];
    cm_request_id (request_id, sizeof request_id);
    cm_envelope_t *request = cm_envelope_new (type, request_id);
    if (request
        && (cm_map_set_str (request->payload, "worker", run->options->worker_id)
            || cm_map_set_str (request->payload, "task_id", run->task->task_id)
            || cm_map_set_int (request->payload, "fence", run->task->fence)))
        cm_envelope_destroy (&request);
    return request;
}

//  Sends one request (destroying it). Returns the call's code. A store
//  that says the task is no longer ours sets run->lost.
static int
s_send (s_run_t *run, cm_envelope_t **request_p)
{
    cm_envelope_t *request = *request_p;
    if (!request)
        return CM_ENOMEM;
    cm_envelope_t *reply = NULL;
    int rc = run->call (run->ctx, request, &reply);
    cm_envelope_destroy (&reply);
    rg_throttle_sent (&run->throttle, cm_mono_ms ());
    if (rc == CM_ECANCELLED || rc == CM_ELEASE || rc == CM_ESTALE) {
        run->lost = true;
        cm_info ("task %s: %s, stopping", run->task->task_id,
                 rc == CM_ECANCELLED ? "cancelled"
                 : rc == CM_ESTALE   ? "taken over (stale fencing token)"
                                     : "lease lost");
    }
    else if (rc)
        cm_warning ("task %s: %s not accepted: %s", run->task->task_id,
                    cm_msg_name (request->type), cm_strerror (rc));
    cm_envelope_destroy (request_p);
    return rc;
}

//  The end of a task matters more than progress: retry a store that is
//  down or slow (with backoff) until `patience_ms` has passed.
static int
s_send_end (s_run_t *run, cm_envelope_t **request_p, int64_t patience_ms)
{
    int64_t deadline = cm_mono_ms () + patience_ms;
    int64_t backoff = 100;
    while (true) {
        cm_envelope_t *copy = *request_p ? cm_envelope_new ((*request_p)->type, NULL) : NULL;
        if (copy) {
            cm_value_destroy (&copy->payload);
            copy->payload = cm_value_dup ((*request_p)->payload);
            cm_request_id (copy->request_id, sizeof copy->request_id);
            if (!copy->payload)
                cm_envelope_destroy (&copy);
        }
        if (!copy) {
            cm_envelope_destroy (request_p);
            return CM_ENOMEM;
        }
        int rc = s_send (run, &copy);
        bool transient = rc == CM_EBACKEND || rc == CM_ETIMEOUT;
        if (!transient || cm_mono_ms () + backoff > deadline) {
            cm_envelope_destroy (request_p);
            return rc;
        }
        s_sleep_ms (backoff);
        backoff = backoff * 2 > 2000 ? 2000 : backoff * 2;
    }
}

static rg_outcome_t
s_fail (s_run_t *run, const char *error, bool retryable, rg_outcome_t outcome)
{
    cm_envelope_t *request = s_request (run, CM_MSG_TASK_FAIL);
    if (request
        && (cm_map_set_str (request->payload, "error", error)
            || cm_map_set_bool (request->payload, "retryable", retryable)))
        cm_envelope_destroy (&request);
    bool stopping = atomic_load (run->shutdown);
    int rc = s_send_end (run, &request,
                         stopping ? S_END_RETRY_MS_SHUTDOWN : run->task->lease_ms);
    if (run->lost)
        return RG_OUTCOME_LOST;
    return rc ? RG_OUTCOME_UNSENT : outcome;
}

static int
s_append (s_run_t *run, const char *text, size_t len)
{
    if (run->len + len + 1 > run->cap) {
        size_t cap = run->cap ? run->cap * 2 : 1024;
        while (cap < run->len + len + 1)
            cap *= 2;
        char *grown = realloc (run->text, cap);
        if (!grown)
            return CM_ENOMEM;
        run->text = grown;
        run->cap = cap;
    }
    memcpy (run->text + run->len, text, len);
    run->len += len;
    run->text[run->len] = '\0';
    return 0;
}

static int
s_progress (s_run_t *run, int progress, const char *message)
{
    cm_envelope_t *request = s_request (run, CM_MSG_TASK_PROGRESS);
    if (request
        && (cm_map_set_int (request->payload, "progress", progress)
            || cm_map_set_str (request->payload, "message", message)
            || cm_map_set_strn (request->payload, "partial", run->text ? run->text : "",
                                run->len)))
        cm_envelope_destroy (&request);
    int rc = s_send (run, &request);
    rg_throttle_progress_sent (&run->throttle, cm_mono_ms ());
    return rc;
}

//  thought_process_* events, with the camelCase data of docs/api.md; a
//  step's `steps` has the shape the store keeps and the API shows.
static int
s_thought (s_run_t *run, const rg_chunk_t *chunk)
{
    cm_value_t *data = cm_map_new ();
    cm_event_t event;
    int rc = data ? 0 : CM_ENOMEM;
    if (chunk->kind == RG_CHUNK_THINK_START) {
        event = CM_EVENT_THOUGHT_PROCESS_START;
        rc = rc ? rc : cm_map_set_str (data, "thinkingAbout", chunk->text);
    }
    else if (chunk->kind == RG_CHUNK_THINK_STEP) {
        event = CM_EVENT_THOUGHT_PROCESS_STEP;
        if (!run->steps)
            run->steps = cm_arr_new ();
        if (run->steps && cm_value_len (run->steps) < S_STEPS_MAX) {
            cm_value_t *step = cm_map_new ();
            if (step
                && (cm_map_set_int (step, "step", chunk->step)
                    || cm_map_set_str (step, "reasoning", chunk->text)))
                cm_value_destroy (&step);
            if (step)
                cm_arr_push (run->steps, step);
        }
        cm_value_t *steps = run->steps ? cm_value_dup (run->steps) : NULL;
        rc = rc ? rc : cm_map_set_int (data, "step", chunk->step);
        rc = rc ? rc : cm_map_set_str (data, "reasoning", chunk->text);
        rc = rc ? rc : cm_map_set (data, "steps", steps ? steps : cm_nil_new ());
    }
    else {
        event = CM_EVENT_THOUGHT_PROCESS_COMPLETE;
        rc = rc ? rc : cm_map_set_str (data, "conclusion", chunk->text);
    }
    if (chunk->total_steps > 0)
        rc = rc ? rc : cm_map_set_int (data, "totalSteps", chunk->total_steps);
    cm_envelope_t *request = rc ? NULL : s_request (run, CM_MSG_TASK_EVENT);
    if (request && cm_map_set_str (request->payload, "event", cm_event_name (event)))
        cm_envelope_destroy (&request);
    if (!request) {
        cm_value_destroy (&data);
        return CM_ENOMEM;
    }
    if (cm_map_set (request->payload, "data", data)) //  takes data either way
        cm_envelope_destroy (&request);
    return s_send (run, &request);
}

//  Progress for backends that cannot estimate it: climbs quickly at first,
//  then slowly, and never reaches 100 before the end.
static int
s_guess_progress (size_t tokens)
{
    int progress = (int) (tokens / 4);
    return progress > 95 ? 95 : progress;
}

static rg_outcome_t
s_run (s_run_t *run, rg_backend_t *backend)
{
    const rg_task_t *task = run->task;
    const rg_worker_options_t *options = run->options;
    if (atomic_load (run->shutdown))
        return s_fail (run, "regenerator shutting down", true, RG_OUTCOME_SHUTDOWN);

    int64_t started = cm_mono_ms ();
    //  A takeover continues the checkpointed text: the backend writes what
    //  follows it, and the reasoning was done (and kept) by the first lease.
    size_t resumed = strlen (task->partial);
    if (resumed && s_append (run, task->partial, resumed))
        return s_fail (run, "out of memory", true, RG_OUTCOME_FAILED);
    rg_open_options_t open_options = {.thoughts = options->thoughts && !resumed};
    rg_stream_t *stream = NULL;
    char why[256] = "";
    bool retryable = false;
    int rc = rg_backend_open (backend, task, &open_options, &stream, why, sizeof why,
                              &retryable);
    if (rc)
        return s_fail (run, why[0] ? why : cm_strerror (rc), retryable, RG_OUTCOME_FAILED);

    rg_throttle_init (&run->throttle, options->progress_interval_ms, task->lease_ms, started);
    run->message = "Waiting for the model";
    bool changed = false;
    size_t tokens = 0;
    rg_outcome_t outcome = RG_OUTCOME_COMPLETED;
    int poll_ms = options->poll_ms > 0 ? options->poll_ms : 100;
    while (true) {
        if (atomic_load (run->shutdown)) {
            rg_stream_cancel (stream);
            outcome = s_fail (run, "regenerator shutting down", true, RG_OUTCOME_SHUTDOWN);
            break;
        }
        int64_t now = cm_mono_ms ();
        if (now - started > options->task_timeout_ms) {
            rg_stream_cancel (stream);
            outcome = s_fail (run, "timed out", false, RG_OUTCOME_FAILED);
            break;
        }
        rg_chunk_t chunk;
        rc = rg_stream_next (stream, poll_ms, &chunk);
        if (rc < 0) {
            const char *error = rg_stream_error (stream, &retryable);
            outcome = s_fail (run, error, retryable, RG_OUTCOME_FAILED);
            break;
        }
        if (rc == RG_STREAM_END)
            break;
        if (rc == 0 && chunk.kind == RG_CHUNK_TOKEN) {
            if (s_append (run, chunk.text, chunk.len)) {
                outcome = s_fail (run, "out of memory", true, RG_OUTCOME_FAILED);
                break;
            }
            tokens++;
            run->progress = chunk.progress >= 0 ? chunk.progress : s_guess_progress (tokens);
            if (run->progress > 99)
                run->progress = 99;
            run->message = "Generating response";
            changed = true;
        }
        else if (rc == 0 && open_options.thoughts) {
            run->message = "Thinking";
            //  The first checkpoint goes out before the reasoning, so the
            //  reader sees at once that the generation started.
            if (!run->throttle.progressed)
                s_progress (run, run->progress, run->message);
            if (!run->lost)
                s_thought (run, &chunk);
        }
        if (!run->lost && rg_throttle_due (&run->throttle, cm_mono_ms (), changed)) {
            s_progress (run, run->progress, run->message);
            changed = false;
        }
        if (run->lost) {
            rg_stream_cancel (stream);
            outcome = RG_OUTCOME_LOST;
            break;
        }
    }
    if (outcome == RG_OUTCOME_COMPLETED && run->len == 0)
        outcome = s_fail (run, "the model returned an empty answer", true, RG_OUTCOME_FAILED);
    else if (outcome == RG_OUTCOME_COMPLETED) {
        s_progress (run, 100, "Completed");
        cm_envelope_t *request = run->lost ? NULL : s_request (run, CM_MSG_TASK_COMPLETE);
        if (request
            && (cm_map_set_strn (request->payload, "content", run->text, run->len)
                || cm_map_set_str (request->payload, "model", rg_stream_model (stream))))
            cm_envelope_destroy (&request);
        //  Cut by the server's token limit: the answer can be continued.
        const char *finish_reason = rg_stream_finish_reason (stream);
        if (request && finish_reason
            && cm_map_set_str (request->payload, "finish_reason", finish_reason))
            cm_envelope_destroy (&request);
        int64_t prompt_tokens, completion_tokens;
        if (request && rg_stream_usage (stream, &prompt_tokens, &completion_tokens)
            && (cm_map_set_int (request->payload, "prompt_tokens", prompt_tokens)
                || cm_map_set_int (request->payload, "completion_tokens", completion_tokens)))
            cm_envelope_destroy (&request);
        if (run->lost)
            outcome = RG_OUTCOME_LOST;
        else if (s_send_end (run, &request, task->lease_ms))
            outcome = run->lost ? RG_OUTCOME_LOST : RG_OUTCOME_UNSENT;
    }
    rg_stream_destroy (&stream);
    return outcome;
}

rg_outcome_t
rg_worker_run (const rg_worker_options_t *options, rg_backend_t *backend,
               const rg_task_t *task, rg_call_fn *call, void *ctx,
               const atomic_bool *shutdown)
{
    s_run_t run = {.options = options, .task = task, .call = call, .ctx = ctx,
                   .shutdown = shutdown};
    rg_throttle_init (&run.throttle, options->progress_interval_ms, task->lease_ms,
                      cm_mono_ms ());
    rg_outcome_t outcome = s_run (&run, backend);
    free (run.text);
    cm_value_destroy (&run.steps);
    return outcome;
}
