#include "bc_server.h"
#include "cm_error.h"
#include "cm_log.h"

#include <stdlib.h>
#include <string.h>

//  A history reply must stay under the codec's message limit: keep room for
//  the envelope and count a generous per-event overhead (id, keys, headers).
#define S_REPLY_BUDGET (CM_MAX_MESSAGE_BYTES - 64 * 1024)
#define S_EVENT_OVERHEAD 96

struct bc_server {
    uint64_t epoch; //  this broadcaster's start (ping only)
    bc_history_t *history;
    uint64_t events_in;
    uint64_t events_out;
    uint64_t events_rejected;
    uint64_t events_duplicate;
};

bc_server_t *
bc_server_new (uint64_t epoch, const bc_history_limits_t *limits)
{
    bc_server_t *self = calloc (1, sizeof *self);
    if (!self)
        return NULL;
    self->epoch = epoch;
    self->history = bc_history_new (limits);
    if (!self->history) {
        free (self);
        return NULL;
    }
    return self;
}

void
bc_server_destroy (bc_server_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    bc_history_destroy (&(*self_p)->history);
    free (*self_p);
    *self_p = NULL;
}

int
bc_server_ingest (bc_server_t *self, const void *session, size_t session_size,
                  const void *body, size_t body_size, int64_t now_ms, char *event_id,
                  size_t event_id_size)
{
    char session_id[CM_SESSION_ID_MAX + 1];
    //  strlen catches an embedded NUL, which would otherwise pass as a
    //  shorter valid id. The bad frame itself is not logged: it is garbage.
    bool valid = session && session_size > 0 && session_size <= CM_SESSION_ID_MAX;
    if (valid) {
        memcpy (session_id, session, session_size);
        session_id[session_size] = '\0';
        valid = strlen (session_id) == session_size && cm_session_id_valid (session_id);
    }
    if (!valid) {
        self->events_rejected++;
        cm_warning ("event dropped: the first frame (%zu bytes) is not a session id",
                    session ? session_size : 0);
        return CM_EPROTO;
    }
    cm_envelope_t *envelope = NULL;
    char why[128] = "";
    int rc = cm_envelope_decode_why (body, body_size, &envelope, why, sizeof why);
    bool is_event = rc == 0 && envelope->type == CM_MSG_EVENT;
    cm_event_id_t id = {0, 0};
    bool has_id = is_event && cm_event_id_parse (cm_map_str (envelope->payload, "id"), &id) == 0
                  && id.seq > 0;
    cm_envelope_destroy (&envelope);
    if (!has_id) {
        self->events_rejected++;
        cm_warning ("event dropped: %s (session=%s)",
                    rc          ? (why[0] ? why : cm_strerror (rc))
                    : is_event ? "no store event id <epoch>-<seq> in it"
                               : "not an event envelope",
                    session_id);
        return CM_EPROTO;
    }
    rc = bc_history_append (self->history, session_id, id, body, body_size, now_ms);
    if (rc == BC_HISTORY_DUPLICATE)
        self->events_duplicate++;
    if (rc)
        return rc;
    self->events_in++;
    cm_event_id_format (event_id, event_id_size, id);
    return 0;
}

void
bc_server_reject (bc_server_t *self)
{
    self->events_rejected++;
}

void
bc_server_count_out (bc_server_t *self)
{
    self->events_out++;
}

//  First replay pass: how many events would go out and how large they are.
typedef struct {
    size_t count;
    size_t bytes;
    size_t *sizes;
    size_t sizes_cap;
    bool failed;
} s_measure_t;

static int
s_measure (const bc_event_t *event, void *arg)
{
    s_measure_t *measure = arg;
    if (measure->count == measure->sizes_cap) {
        size_t cap = measure->sizes_cap ? measure->sizes_cap * 2 : 64;
        size_t *sizes = realloc (measure->sizes, cap * sizeof *sizes);
        if (!sizes) {
            measure->failed = true;
            return CM_ENOMEM;
        }
        measure->sizes = sizes;
        measure->sizes_cap = cap;
    }
    measure->sizes[measure->count++] = event->size + S_EVENT_OVERHEAD;
    measure->bytes += event->size + S_EVENT_OVERHEAD;
    return 0;
}

//  Second pass: build the events array, skipping the first `skip`.
typedef struct {
    cm_value_t *events;
    size_t skip;
    size_t seen;
} s_collect_t;

static int
s_collect (const bc_event_t *event, void *arg)
{
    s_collect_t *collect = arg;
    if (collect->seen++ < collect->skip)
        return 0;
    char id[BC_EVENT_ID_SIZE];
    cm_event_id_format (id, sizeof id, event->id);
    cm_value_t *item = cm_map_new ();
    if (!item || cm_map_set_str (item, "id", id)
        || cm_map_set (item, "body", cm_bin_new (event->body, event->size))) {
        cm_value_destroy (&item);
        return CM_ENOMEM;
    }
    return cm_arr_push (collect->events, item) ? CM_ENOMEM : 0;
}

static int
s_handle_history (bc_server_t *self, const cm_envelope_t *request, int64_t now_ms,
                  cm_envelope_t **reply)
{
    const char *session_id = cm_map_str (request->payload, "session_id");
    if (!cm_session_id_valid (session_id)) {
        *reply = cm_envelope_reply_error (request, CM_EPROTO, "invalid session_id");
        return CM_EPROTO;
    }
    const char *after_text = cm_map_str (request->payload, "after");
    cm_event_id_t after;
    if (after_text && cm_event_id_parse (after_text, &after)) {
        *reply = cm_envelope_reply_error (request, CM_EPROTO,
                                          "after is not an event id <epoch>-<seq>");
        return CM_EPROTO;
    }
    const cm_event_id_t *after_p = after_text ? &after : NULL;

    bool complete = true;
    s_measure_t measure = {0};
    bc_history_replay (self->history, session_id, after_p, now_ms, &complete, s_measure,
                       &measure);
    if (measure.failed) {
        free (measure.sizes);
        return CM_ENOMEM;
    }
    //  Too much for one message: send the newest events that fit and say
    //  the replay is incomplete, so the gateway resyncs instead of showing
    //  a silent gap.
    size_t skip = 0;
    while (measure.bytes > S_REPLY_BUDGET && skip < measure.count)
        measure.bytes -= measure.sizes[skip++];
    free (measure.sizes);
    if (skip)
        complete = false;

    cm_value_t *payload = cm_map_new ();
    s_collect_t collect = {cm_arr_new (), skip, 0};
    bool complete_ignored;
    int rc = payload && collect.events ? 0 : CM_ENOMEM;
    if (rc == 0)
        rc = bc_history_replay (self->history, session_id, after_p, now_ms,
                                &complete_ignored, s_collect, &collect);
    if (rc == 0)
        rc = cm_map_set_bool (payload, "complete", complete);
    if (rc == 0) {
        rc = cm_map_set (payload, "events", collect.events);
        collect.events = NULL;
    }
    cm_value_destroy (&collect.events);
    if (rc) {
        cm_value_destroy (&payload);
        return CM_ENOMEM;
    }
    *reply = cm_envelope_reply_ok (request, payload);
    return *reply ? 0 : CM_ENOMEM;
}

static int
s_handle_ping (bc_server_t *self, const cm_envelope_t *request, cm_envelope_t **reply)
{
    cm_value_t *payload = cm_map_new ();
    if (!payload || cm_map_set_str (payload, "service", "broadcaster")
        || cm_map_set_int (payload, "epoch", (int64_t) self->epoch)
        || cm_map_set_int (payload, "sessions", (int64_t) bc_history_sessions (self->history))
        || cm_map_set_int (payload, "events_in", (int64_t) self->events_in)
        || cm_map_set_int (payload, "events_out", (int64_t) self->events_out)
        || cm_map_set_int (payload, "events_rejected", (int64_t) self->events_rejected)
        || cm_map_set_int (payload, "events_duplicate", (int64_t) self->events_duplicate)) {
        cm_value_destroy (&payload);
        return CM_ENOMEM;
    }
    *reply = cm_envelope_reply_ok (request, payload);
    return *reply ? 0 : CM_ENOMEM;
}

int
bc_server_handle (bc_server_t *self, const void *body, size_t size, int64_t now_ms,
                  cm_envelope_t **reply)
{
    *reply = NULL;
    cm_envelope_t *request = NULL;
    char why[128] = "";
    int rc = cm_envelope_decode_why (body, size, &request, why, sizeof why);
    if (rc) {
        cm_debug ("bad history request: %s", why);
        cm_envelope_t shell = {.type = CM_MSG_NONE};
        //  The caller waits for its request id: answering with it turns a
        //  timeout into an immediate CM_EPROTO.
        if (cm_envelope_peek_request_id (body, size, shell.request_id, sizeof shell.request_id))
            shell.request_id[0] = '\0';
        *reply = cm_envelope_reply_error (&shell, CM_EPROTO, why[0] ? why : cm_strerror (rc));
        return *reply ? CM_EPROTO : CM_ENOMEM;
    }
    switch (request->type) {
        case CM_MSG_HISTORY:
            rc = s_handle_history (self, request, now_ms, reply);
            break;
        case CM_MSG_PING:
            rc = s_handle_ping (self, request, reply);
            break;
        default:
            *reply = cm_envelope_reply_error (request, CM_EPROTO,
                                              "the broadcaster answers history and ping");
            rc = CM_EPROTO;
            break;
    }
    cm_envelope_destroy (&request);
    if (!*reply)
        return CM_ENOMEM;
    return rc;
}

size_t
bc_server_tick (bc_server_t *self, int64_t now_ms)
{
    return bc_history_prune (self->history, now_ms);
}

uint64_t
bc_server_events_in (const bc_server_t *self)
{
    return self->events_in;
}

uint64_t
bc_server_events_out (const bc_server_t *self)
{
    return self->events_out;
}

uint64_t
bc_server_events_rejected (const bc_server_t *self)
{
    return self->events_rejected;
}

size_t
bc_server_sessions (const bc_server_t *self)
{
    return bc_history_sessions (self->history);
}

uint64_t
bc_server_epoch (const bc_server_t *self)
{
    return self->epoch;
}

uint64_t
bc_server_events_duplicate (const bc_server_t *self)
{
    return self->events_duplicate;
}
