#include "gw_event.h"

#include "cm_error.h"
#include "gw_json.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

char *
gw_event_format (const char *id, const char *type, const json_t *data, size_t *len)
{
    if ((id && strpbrk (id, "\r\n")) || !type || !*type || strpbrk (type, "\r\n"))
        return NULL;
    char *json = json_dumps (data, JSON_COMPACT);
    if (!json)
        return NULL;
    size_t size = (id ? strlen (id) : 0) + strlen (type) + strlen (json) + 32;
    char *frame = malloc (size);
    if (frame) {
        int n = id && *id ? snprintf (frame, size, "id: %s\nevent: %s\ndata: %s\n\n", id, type, json)
                          : snprintf (frame, size, "event: %s\ndata: %s\n\n", type, json);
        *len = (size_t) n;
    }
    free (json);
    return frame;
}


struct gw_event {
    atomic_int refs;
    char id[48];
    bool has_id;
    cm_event_id_t eid;
    char type[64];
    char task_id[CM_TASK_ID_MAX + 1];
    char *frame;
    size_t len;
};

static gw_event_t *
s_event_build (const char *id, const char *type, const json_t *data)
{
    if (strlen (type) >= sizeof ((gw_event_t *) 0)->type
        || (id && strlen (id) >= sizeof ((gw_event_t *) 0)->id))
        return NULL;
    gw_event_t *self = calloc (1, sizeof *self);
    if (!self)
        return NULL;
    atomic_init (&self->refs, 1);
    if (id && *id) {
        snprintf (self->id, sizeof self->id, "%s", id);
        self->has_id = cm_event_id_parse (id, &self->eid) == 0;
    }
    snprintf (self->type, sizeof self->type, "%s", type);
    const char *task = json_string_value (json_object_get (data, "taskId"));
    if (task && strlen (task) <= CM_TASK_ID_MAX)
        snprintf (self->task_id, sizeof self->task_id, "%s", task);
    self->frame = gw_event_format (self->id, type, data, &self->len);
    if (!self->frame) {
        free (self);
        return NULL;
    }
    return self;
}

int
gw_event_new (const char *id, const cm_envelope_t *envelope, gw_event_t **out)
{
    if (!envelope || envelope->type != CM_MSG_EVENT)
        return CM_EPROTO;
    cm_event_id_t eid;
    if (id && *id && cm_event_id_parse (id, &eid))
        return CM_EPROTO;
    const char *type = cm_map_str (envelope->payload, "event");
    const cm_value_t *data = cm_map_get (envelope->payload, "data");
    if (!type || !*type || !data || data->type != CM_T_MAP)
        return CM_EPROTO;
    json_t *json = gw_json_from_value (data);
    if (!json)
        return CM_ENOMEM;
    gw_event_t *self = s_event_build (id, type, json);
    json_decref (json);
    if (!self)
        return CM_EPROTO;
    *out = self;
    return 0;
}

int
gw_event_from_history (const cm_value_t *entry, gw_event_t **out)
{
    const char *id = cm_map_str (entry, "id");
    const cm_value_t *body = cm_map_get (entry, "body");
    if (!id || !body || (body->type != CM_T_BIN && body->type != CM_T_STR))
        return CM_EPROTO;
    cm_envelope_t *envelope = NULL;
    int rc = cm_envelope_decode (body->u.s.ptr, body->u.s.len, &envelope);
    if (rc)
        return rc;
    rc = gw_event_new (id, envelope, out);
    cm_envelope_destroy (&envelope);
    return rc;
}

gw_event_t *
gw_event_synthetic (const char *id, const char *type, const json_t *data)
{
    return s_event_build (id, type, data);
}

gw_event_t *
gw_event_keepalive (void)
{
    gw_event_t *self = calloc (1, sizeof *self);
    if (self) {
        atomic_init (&self->refs, 1);
        snprintf (self->type, sizeof self->type, "keepalive");
        self->frame = strdup (": keepalive\n\n");
        self->len = self->frame ? strlen (self->frame) : 0;
    }
    if (self && !self->frame) {
        free (self);
        self = NULL;
    }
    return self;
}

gw_event_t *
gw_event_ref (gw_event_t *self)
{
    atomic_fetch_add (&self->refs, 1);
    return self;
}

void
gw_event_unref (gw_event_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    gw_event_t *self = *self_p;
    *self_p = NULL;
    if (atomic_fetch_sub (&self->refs, 1) == 1) {
        free (self->frame);
        free (self);
    }
}

const char *gw_event_id (const gw_event_t *self) { return self->id; }
bool gw_event_has_id (const gw_event_t *self) { return self->has_id; }
cm_event_id_t gw_event_eid (const gw_event_t *self) { return self->eid; }
const char *gw_event_type (const gw_event_t *self) { return self->type; }
const char *gw_event_task_id (const gw_event_t *self) { return self->task_id; }
const char *
gw_event_frame (const gw_event_t *self, size_t *len)
{
    *len = self->len;
    return self->frame;
}

size_t gw_event_len (const gw_event_t *self) { return self->len; }
