#include "rg_backend.h"
#include "cm_error.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>

struct rg_backend {
    const rg_backend_ops_t *ops;
    void *state;
};

struct rg_stream {
    const rg_backend_ops_t *ops;
    void *impl;
    atomic_bool cancel; //  set by any thread, seen by the backend mid-call
    char why[256];
    bool retryable;
};

rg_backend_t *
rg_backend_new (const rg_backend_ops_t *ops, void **state_p)
{
    rg_backend_t *self = calloc (1, sizeof *self);
    if (!self) {
        if (ops->destroy)
            ops->destroy (state_p);
        return NULL;
    }
    self->ops = ops;
    self->state = *state_p;
    *state_p = NULL;
    return self;
}

void
rg_backend_destroy (rg_backend_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    rg_backend_t *self = *self_p;
    if (self->ops->destroy)
        self->ops->destroy (&self->state);
    free (self);
    *self_p = NULL;
}

const char *
rg_backend_name (const rg_backend_t *self)
{
    return self->ops->name;
}

int
rg_backend_open (rg_backend_t *self, const rg_task_t *task, const rg_open_options_t *options,
                 rg_stream_t **stream, char *why, size_t why_size, bool *retryable)
{
    *retryable = false;
    rg_stream_t *wrapper = calloc (1, sizeof *wrapper);
    if (!wrapper) {
        snprintf (why, why_size, "out of memory");
        return CM_ENOMEM;
    }
    atomic_init (&wrapper->cancel, false);
    wrapper->ops = self->ops;
    int rc = self->ops->open (self->state, task, options, &wrapper->impl, why, why_size);
    if (rc) {
        *retryable = rc == CM_EBACKEND || rc == CM_ETIMEOUT;
        free (wrapper);
        return rc;
    }
    *stream = wrapper;
    return 0;
}

int
rg_stream_next (rg_stream_t *self, int wait_ms, rg_chunk_t *chunk)
{
    if (atomic_load (&self->cancel)) {
        snprintf (self->why, sizeof self->why, "cancelled");
        self->retryable = false;
        return CM_ECANCELLED;
    }
    self->retryable = false;
    self->why[0] = '\0';
    int rc = self->ops->next (self->impl, wait_ms, &self->cancel, chunk, self->why,
                              sizeof self->why, &self->retryable);
    if (rc < 0 && atomic_load (&self->cancel))
        rc = CM_ECANCELLED;
    if (rc < 0 && !self->why[0])
        snprintf (self->why, sizeof self->why, "%s", cm_strerror (rc));
    return rc;
}

const char *
rg_stream_error (const rg_stream_t *self, bool *retryable)
{
    if (retryable)
        *retryable = self->retryable;
    return self->why[0] ? self->why : "generation failed";
}

const char *
rg_stream_model (rg_stream_t *self)
{
    return self->ops->model (self->impl);
}

bool
rg_stream_usage (rg_stream_t *self, int64_t *prompt_tokens, int64_t *completion_tokens)
{
    return self->ops->usage && self->ops->usage (self->impl, prompt_tokens, completion_tokens);
}

const char *
rg_stream_finish_reason (rg_stream_t *self)
{
    return self->ops->finish_reason ? self->ops->finish_reason (self->impl) : NULL;
}

void
rg_stream_cancel (rg_stream_t *self)
{
    atomic_store (&self->cancel, true);
}

bool
rg_stream_cancelled (const rg_stream_t *self)
{
    return atomic_load (&((rg_stream_t *) self)->cancel);
}

void
rg_stream_destroy (rg_stream_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    rg_stream_t *self = *self_p;
    self->ops->close (&self->impl);
    free (self);
    *self_p = NULL;
}
