/*  gw_dedup.c: per-session duplicate filter (gw_dedup.h).  */
#include "gw_dedup.h"

#include <czmq.h>
#include <stdlib.h>

struct gw_dedup {
    zhashx_t *sessions; //  session id -> cm_event_id_t (owned)
};

static void
s_free (void **item)
{
    free (*item);
    *item = NULL;
}

gw_dedup_t *
gw_dedup_new (void)
{
    gw_dedup_t *self = calloc (1, sizeof *self);
    if (!self)
        return NULL;
    self->sessions = zhashx_new ();
    if (!self->sessions) {
        free (self);
        return NULL;
    }
    zhashx_set_destructor (self->sessions, s_free);
    return self;
}

void
gw_dedup_destroy (gw_dedup_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    zhashx_destroy (&(*self_p)->sessions);
    free (*self_p);
    *self_p = NULL;
}

bool
gw_dedup_admit (gw_dedup_t *self, const char *session_id, cm_event_id_t id)
{
    cm_event_id_t *last = zhashx_lookup (self->sessions, session_id);
    if (last) {
        if (last->epoch == id.epoch && id.seq <= last->seq)
            return false;
        *last = id;
        return true;
    }
    last = malloc (sizeof *last);
    if (!last)
        return true;
    *last = id;
    if (zhashx_insert (self->sessions, session_id, last))
        free (last);
    return true;
}

void
gw_dedup_forget (gw_dedup_t *self, const char *session_id)
{
    zhashx_delete (self->sessions, session_id);
}

size_t
gw_dedup_sessions (const gw_dedup_t *self)
{
    return zhashx_size (self->sessions);
}
