/*  rg_backend.h: the generator backend interface.

    A backend (builtin, openai, ...) is created once at startup and shared,
    read-only, by every worker thread. Each generation opens a stream on it;
    the worker pulls chunks until the end:

        rg_stream_t *stream;
        rg_backend_open (backend, task, &options, &stream);
        while ((rc = rg_stream_next (stream, 100, &chunk)) >= 0 && rc != RG_STREAM_END)
            if (rc == 0) ... use chunk ...
        rg_stream_destroy (&stream);

    Pulling (rather than callbacks) keeps the worker in charge of time: it
    waits at most wait_ms per call, so it can renew its lease, enforce its
    time limit and see a cancellation between any two calls, whatever the
    backend is doing. Reasoning comes first (THINK_START, THINK_STEP*,
    THINK_DONE, all optional), then the answer as TOKEN chunks.            */
#ifndef RG_BACKEND_H_INCLUDED
#define RG_BACKEND_H_INCLUDED

#include "rg_task.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum {
    RG_CHUNK_THINK_START, //  text = what the model thinks about; total_steps
    RG_CHUNK_THINK_STEP,  //  text = one reasoning step; step (1-based), total_steps
    RG_CHUNK_THINK_DONE,  //  text = the conclusion; total_steps
    RG_CHUNK_TOKEN        //  text = the next piece of the answer
} rg_chunk_kind_t;

typedef struct {
    rg_chunk_kind_t kind;
    const char *text; //  borrowed until the next rg_stream_* call; NUL-terminated
    size_t len;
    int step;
    int total_steps;  //  0 when the backend cannot know
    int progress;     //  the backend's estimate 0..99, or -1 when it has none
} rg_chunk_t;

//  rg_stream_next results besides 0 (a chunk) and negative CM_E* errors.
#define RG_STREAM_END 1   //  the answer is complete
#define RG_STREAM_AGAIN 2 //  nothing within wait_ms; call again

typedef struct {
    bool thoughts;        //  produce THINK_* chunks if the backend can
} rg_open_options_t;

//  What a backend implements. `state` is the backend's, `stream` a
//  generation's. next() returns as rg_stream_next; on a negative result it
//  fills why (a short sentence for task_fail, never the prompt) and says
//  whether another attempt may succeed. It must return within about wait_ms
//  and should return CM_ECANCELLED soon after *cancelled becomes true.
typedef struct {
    const char *name;
    int (*open) (void *state, const rg_task_t *task, const rg_open_options_t *options,
                 void **stream, char *why, size_t why_size);
    int (*next) (void *stream, int wait_ms, const atomic_bool *cancelled,
                 rg_chunk_t *chunk, char *why, size_t why_size, bool *retryable);
    //  The model that answered ("builtin", the upstream's model name).
    const char *(*model) (void *stream);
    void (*close) (void **stream);
    void (*destroy) (void **state);
    //  Tokens the server counted for this answer, when it said (NULL: never).
    bool (*usage) (void *stream, int64_t *prompt_tokens, int64_t *completion_tokens);
    //  Why a stream that ended did not end a whole answer: "length" (the
    //  server's token limit cut it), else NULL (also: never).
    const char *(*finish_reason) (void *stream);
} rg_backend_ops_t;

typedef struct rg_backend rg_backend_t;
typedef struct rg_stream rg_stream_t;

//  Takes ownership of state (ops->destroy frees it). NULL on out-of-memory
//  (state is then destroyed).
rg_backend_t *rg_backend_new (const rg_backend_ops_t *ops, void **state_p);
void rg_backend_destroy (rg_backend_t **self_p);
const char *rg_backend_name (const rg_backend_t *self);

//  Opens a generation. 0, or a negative code with why filled and
//  *retryable set (e.g. upstream unreachable: true).
int rg_backend_open (rg_backend_t *self, const rg_task_t *task,
                     const rg_open_options_t *options, rg_stream_t **stream, char *why,
                     size_t why_size, bool *retryable);

//  0 with *chunk set, RG_STREAM_END, RG_STREAM_AGAIN, CM_ECANCELLED after
//  rg_stream_cancel, or another negative code (see rg_stream_error).
int rg_stream_next (rg_stream_t *self, int wait_ms, rg_chunk_t *chunk);
//  After a negative rg_stream_next: why, and whether retrying may help.
const char *rg_stream_error (const rg_stream_t *self, bool *retryable);
const char *rg_stream_model (rg_stream_t *self);
//  True with the server's token counts of the answer, false when it gave none.
bool rg_stream_usage (rg_stream_t *self, int64_t *prompt_tokens, int64_t *completion_tokens);
//  After RG_STREAM_END: "length" when the server's token limit cut the
//  answer, else NULL.
const char *rg_stream_finish_reason (rg_stream_t *self);
//  May be called from any thread; the stream ends with CM_ECANCELLED.
void rg_stream_cancel (rg_stream_t *self);
bool rg_stream_cancelled (const rg_stream_t *self);
void rg_stream_destroy (rg_stream_t **self_p);

#endif
