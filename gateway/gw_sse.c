#include "gw_sse.h"

#include "cm_error.h"
#include "cm_log.h"
#include "cm_rpc.h"
#include "cm_time.h"
#include "gw_json.h"

#include <czmq.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

//  ---------------------------------------------------------------------
//  Framing

char *
gw_sse_format (const char *id, const char *type, const json_t *data, size_t *len)
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

//  ---------------------------------------------------------------------
//  Events

#define GW_EVENT_TASK_MAX 64

struct gw_event {
    atomic_int refs;
    char id[48];
    bool has_id;
    cm_event_id_t eid;
    char type[64];
    char task_id[GW_EVENT_TASK_MAX + 1];
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
    if (task && strlen (task) <= GW_EVENT_TASK_MAX)
        snprintf (self->task_id, sizeof self->task_id, "%s", task);
    self->frame = gw_sse_format (self->id, type, data, &self->len);
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

//  ---------------------------------------------------------------------
//  Cursor

gw_cursor_verdict_t
gw_cursor_check (const gw_cursor_t *self, cm_event_id_t id)
{
    if (!self->known)
        return GW_CURSOR_SEND;
    if (id.epoch != self->last.epoch)
        return GW_CURSOR_EPOCH;
    if (id.seq <= self->last.seq)
        return GW_CURSOR_DUPLICATE;
    return id.seq == self->last.seq + 1 ? GW_CURSOR_SEND : GW_CURSOR_GAP;
}

void
gw_cursor_advance (gw_cursor_t *self, cm_event_id_t id)
{
    self->known = true;
    self->last = id;
}

//  ---------------------------------------------------------------------
//  Stream queue

typedef struct s_node {
    gw_event_t *event;
    struct s_node *next;
} s_node_t;

struct gw_stream {
    pthread_mutex_t lock;
    pthread_cond_t ready;
    s_node_t *head, *tail;
    size_t bytes, max_bytes;
    bool overflowed, closed;
};

gw_stream_t *
gw_stream_new (size_t max_bytes)
{
    gw_stream_t *self = calloc (1, sizeof *self);
    if (!self)
        return NULL;
    pthread_mutex_init (&self->lock, NULL);
    //  Waits are relative to CLOCK_MONOTONIC so a clock jump cannot stall
    //  keepalives.
    pthread_condattr_t attr;
    pthread_condattr_init (&attr);
    pthread_condattr_setclock (&attr, CLOCK_MONOTONIC);
    pthread_cond_init (&self->ready, &attr);
    pthread_condattr_destroy (&attr);
    self->max_bytes = max_bytes;
    return self;
}

static void
s_stream_clear (gw_stream_t *self)
{
    while (self->head) {
        s_node_t *node = self->head;
        self->head = node->next;
        gw_event_unref (&node->event);
        free (node);
    }
    self->tail = NULL;
    self->bytes = 0;
}

void
gw_stream_destroy (gw_stream_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    gw_stream_t *self = *self_p;
    s_stream_clear (self);
    pthread_cond_destroy (&self->ready);
    pthread_mutex_destroy (&self->lock);
    free (self);
    *self_p = NULL;
}

int
gw_stream_push (gw_stream_t *self, gw_event_t *event)
{
    pthread_mutex_lock (&self->lock);
    int rc = 0;
    if (self->overflowed || self->closed)
        rc = self->overflowed ? CM_EFULL : 0;
    else if (self->bytes + event->len > self->max_bytes) {
        self->overflowed = true;
        s_stream_clear (self);
        pthread_cond_signal (&self->ready);
        rc = CM_EFULL;
    }
    else {
        s_node_t *node = malloc (sizeof *node);
        if (!node) {
            //  Losing an event silently would desync the client: treat it
            //  as an overflow, the client reconnects and replays.
            self->overflowed = true;
            s_stream_clear (self);
            rc = CM_EFULL;
        }
        else {
            node->event = gw_event_ref (event);
            node->next = NULL;
            if (self->tail)
                self->tail->next = node;
            else
                self->head = node;
            self->tail = node;
            self->bytes += event->len;
        }
        pthread_cond_signal (&self->ready);
    }
    pthread_mutex_unlock (&self->lock);
    return rc;
}

int
gw_stream_pop (gw_stream_t *self, int timeout_ms, gw_event_t **event)
{
    struct timespec deadline;
    clock_gettime (CLOCK_MONOTONIC, &deadline);
    deadline.tv_sec += timeout_ms / 1000;
    deadline.tv_nsec += (long) (timeout_ms % 1000) * 1000000L;
    if (deadline.tv_nsec >= 1000000000L) {
        deadline.tv_sec++;
        deadline.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock (&self->lock);
    int rc = 0;
    while (!self->head && !self->overflowed && !self->closed) {
        if (pthread_cond_timedwait (&self->ready, &self->lock, &deadline) == ETIMEDOUT)
            break;
    }
    if (self->overflowed)
        rc = CM_EFULL;
    else if (self->closed)
        rc = CM_ECANCELLED;
    else if (!self->head)
        rc = CM_ETIMEOUT;
    else {
        s_node_t *node = self->head;
        self->head = node->next;
        if (!self->head)
            self->tail = NULL;
        self->bytes -= node->event->len;
        *event = node->event;
        free (node);
    }
    pthread_mutex_unlock (&self->lock);
    return rc;
}

void
gw_stream_close (gw_stream_t *self)
{
    pthread_mutex_lock (&self->lock);
    self->closed = true;
    pthread_cond_signal (&self->ready);
    pthread_mutex_unlock (&self->lock);
}

//  ---------------------------------------------------------------------
//  Hub

typedef struct {
    gw_stream_t **streams;
    size_t count, cap;
} s_session_t;

typedef struct {
    bool subscribe;
    char session_id[CM_SESSION_ID_MAX + 1];
} s_command_t;

struct gw_hub {
    cm_curve_t *curve; //  borrowed; NULL = CURVE off
    pthread_mutex_t lock;
    pthread_cond_t applied_cond;
    zhashx_t *sessions;        //  session id -> s_session_t
    s_command_t *commands;     //  subscription changes for the dispatcher
    size_t command_count, command_cap;
    uint64_t posted, applied;  //  command sequence numbers
    size_t stream_count;
    bool closing;
    int wakeup;                //  eventfd: commands or stop
    atomic_bool stop;
    pthread_t thread;
    char endpoint[256];
    bool started;              //  dispatcher connected its socket
    int start_rc;
};

static void
s_session_free (void **item)
{
    s_session_t *session = *item;
    if (session) {
        free (session->streams);
        free (session);
        *item = NULL;
    }
}

static void
s_wake (gw_hub_t *self)
{
    uint64_t one = 1;
    ssize_t n = write (self->wakeup, &one, sizeof one);
    (void) n; //  a full counter still wakes the dispatcher
}

size_t
gw_hub_deliver (gw_hub_t *self, const char *session_id, gw_event_t *event)
{
    size_t delivered = 0;
    pthread_mutex_lock (&self->lock);
    s_session_t *session = zhashx_lookup (self->sessions, session_id);
    for (size_t i = 0; session && i < session->count; i++)
        if (gw_stream_push (session->streams[i], event) == 0)
            delivered++;
    pthread_mutex_unlock (&self->lock);
    return delivered;
}

//  One message off the SUB socket: [session_id, event_id, envelope].
static void
s_dispatch (gw_hub_t *self, zmsg_t *msg)
{
    if (zmsg_size (msg) != 3)
        return;
    zframe_t *topic = zmsg_first (msg);
    zframe_t *id_frame = zmsg_next (msg);
    zframe_t *body = zmsg_next (msg);
    size_t topic_len = zframe_size (topic), id_len = zframe_size (id_frame);
    if (topic_len == 0 || topic_len > CM_SESSION_ID_MAX || id_len == 0 || id_len > 47)
        return;
    char session_id[CM_SESSION_ID_MAX + 1], id[48];
    memcpy (session_id, zframe_data (topic), topic_len);
    session_id[topic_len] = 0;
    memcpy (id, zframe_data (id_frame), id_len);
    id[id_len] = 0;
    //  Subscriptions are prefix matches: "s1" also receives "s12". The exact
    //  lookup below drops what no local stream asked for.
    pthread_mutex_lock (&self->lock);
    bool wanted = zhashx_lookup (self->sessions, session_id) != NULL;
    pthread_mutex_unlock (&self->lock);
    if (!wanted)
        return;
    cm_envelope_t *envelope = NULL;
    gw_event_t *event = NULL;
    if (cm_frame_decode (body, &envelope) == 0 && gw_event_new (id, envelope, &event) == 0) {
        gw_hub_deliver (self, session_id, event);
        gw_event_unref (&event);
    }
    else
        cm_warning ("dropping a malformed event from the broadcaster (session=%s)", session_id);
    cm_envelope_destroy (&envelope);
}

static void *
s_dispatcher (void *arg)
{
    gw_hub_t *self = arg;
    zsock_t *sub = zsock_new (ZMQ_SUB);
    if (sub) {
        //  Deep receive queue: events are small, and a drop costs a history
        //  round trip for every stream of the session.
        zsock_set_rcvhwm (sub, 100000);
        zsock_set_linger (sub, 0);
        cm_curve_client (self->curve, sub, "broadcaster");
    }
    int rc = sub && zsock_connect (sub, "%s", self->endpoint) == 0 ? 0 : CM_EINVAL;
    pthread_mutex_lock (&self->lock);
    self->started = true;
    self->start_rc = rc;
    pthread_cond_broadcast (&self->applied_cond);
    pthread_mutex_unlock (&self->lock);
    if (rc) {
        zsock_destroy (&sub);
        return NULL;
    }
    while (!atomic_load (&self->stop)) {
        zmq_pollitem_t items[2] = {{zsock_resolve (sub), 0, ZMQ_POLLIN, 0},
                                   {NULL, self->wakeup, ZMQ_POLLIN, 0}};
        int n = zmq_poll (items, 2, 1000);
        if (n < 0 && errno != EINTR)
            break;
        if (items[1].revents & ZMQ_POLLIN) {
            uint64_t count;
            ssize_t got = read (self->wakeup, &count, sizeof count);
            (void) got;
        }
        //  Apply subscription changes in order, then tell waiting attaches.
        pthread_mutex_lock (&self->lock);
        for (size_t i = 0; i < self->command_count; i++) {
            if (self->commands[i].subscribe)
                zsock_set_subscribe (sub, self->commands[i].session_id);
            else
                zsock_set_unsubscribe (sub, self->commands[i].session_id);
        }
        self->command_count = 0;
        self->applied = self->posted;
        pthread_cond_broadcast (&self->applied_cond);
        pthread_mutex_unlock (&self->lock);
        //  Drain what is there without blocking; bounded so commands keep
        //  flowing under a flood.
        for (int i = 0; i < 1000; i++) {
            zmq_pollitem_t item = {zsock_resolve (sub), 0, ZMQ_POLLIN, 0};
            if (zmq_poll (&item, 1, 0) <= 0)
                break;
            zmsg_t *msg = zmsg_recv (sub);
            if (!msg)
                break;
            s_dispatch (self, msg);
            zmsg_destroy (&msg);
        }
    }
    zsock_destroy (&sub);
    return NULL;
}

gw_hub_t *
gw_hub_new (const char *events_endpoint, cm_curve_t *curve)
{
    gw_hub_t *self = calloc (1, sizeof *self);
    if (!self)
        return NULL;
    self->curve = curve;
    pthread_mutex_init (&self->lock, NULL);
    pthread_condattr_t attr;
    pthread_condattr_init (&attr);
    pthread_condattr_setclock (&attr, CLOCK_MONOTONIC);
    pthread_cond_init (&self->applied_cond, &attr);
    pthread_condattr_destroy (&attr);
    snprintf (self->endpoint, sizeof self->endpoint, "%s", events_endpoint);
    self->sessions = zhashx_new ();
    self->wakeup = eventfd (0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (!self->sessions || self->wakeup < 0) {
        gw_hub_destroy (&self);
        return NULL;
    }
    zhashx_set_destructor (self->sessions, s_session_free);
    if (pthread_create (&self->thread, NULL, s_dispatcher, self)) {
        gw_hub_destroy (&self);
        return NULL;
    }
    pthread_mutex_lock (&self->lock);
    while (!self->started)
        pthread_cond_wait (&self->applied_cond, &self->lock);
    int rc = self->start_rc;
    pthread_mutex_unlock (&self->lock);
    self->started = rc == 0;
    if (rc) {
        pthread_join (self->thread, NULL);
        self->started = false;
        self->thread = 0;
        gw_hub_destroy (&self);
        return NULL;
    }
    self->started = true;
    return self;
}

void
gw_hub_destroy (gw_hub_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    gw_hub_t *self = *self_p;
    if (self->started) {
        atomic_store (&self->stop, true);
        s_wake (self);
        pthread_join (self->thread, NULL);
    }
    zhashx_destroy (&self->sessions);
    free (self->commands);
    if (self->wakeup >= 0)
        close (self->wakeup);
    pthread_cond_destroy (&self->applied_cond);
    pthread_mutex_destroy (&self->lock);
    free (self);
    *self_p = NULL;
}

//  Queues a subscription change; called with the lock held.
static int
s_post (gw_hub_t *self, bool subscribe, const char *session_id, uint64_t *seq)
{
    if (self->command_count == self->command_cap) {
        size_t cap = self->command_cap ? self->command_cap * 2 : 16;
        s_command_t *commands = realloc (self->commands, cap * sizeof *commands);
        if (!commands)
            return CM_ENOMEM;
        self->commands = commands;
        self->command_cap = cap;
    }
    s_command_t *command = &self->commands[self->command_count++];
    command->subscribe = subscribe;
    snprintf (command->session_id, sizeof command->session_id, "%s", session_id);
    *seq = ++self->posted;
    s_wake (self);
    return 0;
}

int
gw_hub_attach (gw_hub_t *self, const char *session_id, gw_stream_t *stream)
{
    pthread_mutex_lock (&self->lock);
    if (self->closing) {
        pthread_mutex_unlock (&self->lock);
        return CM_ECANCELLED;
    }
    s_session_t *session = zhashx_lookup (self->sessions, session_id);
    if (!session) {
        session = calloc (1, sizeof *session);
        if (!session) {
            pthread_mutex_unlock (&self->lock);
            return CM_ENOMEM;
        }
        zhashx_insert (self->sessions, session_id, session);
    }
    if (session->count == session->cap) {
        size_t cap = session->cap ? session->cap * 2 : 4;
        gw_stream_t **streams = realloc (session->streams, cap * sizeof *streams);
        if (!streams) {
            if (session->count == 0)
                zhashx_delete (self->sessions, session_id);
            pthread_mutex_unlock (&self->lock);
            return CM_ENOMEM;
        }
        session->streams = streams;
        session->cap = cap;
    }
    session->streams[session->count++] = stream;
    self->stream_count++;
    int rc = 0;
    uint64_t seq = 0;
    if (session->count == 1)
        rc = s_post (self, true, session_id, &seq);
    //  Wait (bounded) until the dispatcher applied the subscription, so a
    //  replay asked for after this returns overlaps the live feed.
    struct timespec deadline;
    clock_gettime (CLOCK_MONOTONIC, &deadline);
    deadline.tv_sec += 2;
    while (rc == 0 && seq && self->applied < seq && !self->closing)
        if (pthread_cond_timedwait (&self->applied_cond, &self->lock, &deadline) == ETIMEDOUT)
            break;
    pthread_mutex_unlock (&self->lock);
    if (rc)
        gw_hub_detach (self, session_id, stream);
    return rc;
}

void
gw_hub_detach (gw_hub_t *self, const char *session_id, gw_stream_t *stream)
{
    pthread_mutex_lock (&self->lock);
    s_session_t *session = zhashx_lookup (self->sessions, session_id);
    for (size_t i = 0; session && i < session->count; i++)
        if (session->streams[i] == stream) {
            session->streams[i] = session->streams[--session->count];
            self->stream_count--;
            break;
        }
    if (session && session->count == 0) {
        zhashx_delete (self->sessions, session_id);
        uint64_t seq;
        if (s_post (self, false, session_id, &seq))
            cm_warning ("cannot queue an unsubscribe (session=%s): out of memory", session_id);
    }
    pthread_mutex_unlock (&self->lock);
}

void
gw_hub_close_all (gw_hub_t *self)
{
    pthread_mutex_lock (&self->lock);
    self->closing = true;
    for (s_session_t *session = zhashx_first (self->sessions); session;
         session = zhashx_next (self->sessions))
        for (size_t i = 0; i < session->count; i++)
            gw_stream_close (session->streams[i]);
    pthread_cond_broadcast (&self->applied_cond);
    pthread_mutex_unlock (&self->lock);
}

size_t
gw_hub_stream_count (gw_hub_t *self)
{
    pthread_mutex_lock (&self->lock);
    size_t count = self->stream_count;
    pthread_mutex_unlock (&self->lock);
    return count;
}

//  ---------------------------------------------------------------------
//  One stream's life

typedef struct {
    const gw_sse_params_t *params;
    gw_cursor_t cursor;
    int64_t last_write_ms;
    bool failed;
} s_run_t;

static int
s_write (s_run_t *run, const char *data, size_t len)
{
    if (run->failed)
        return -1;
    if (run->params->write (run->params->arg, data, len) < 0) {
        run->failed = true;
        return -1;
    }
    run->last_write_ms = cm_mono_ms ();
    return 0;
}

static int
s_write_event (s_run_t *run, const gw_event_t *event)
{
    size_t len;
    const char *frame = gw_event_frame (event, &len);
    int rc = s_write (run, frame, len);
    if (rc == 0 && run->params->delivered)
        run->params->delivered (run->params->arg);
    return rc;
}

static int
s_write_status (s_run_t *run, const char *id, const char *type, const char *status, bool resync)
{
    char now[CM_ISO_TIME_LEN + 1];
    cm_iso_time (cm_now_ms (), now, sizeof now);
    json_t *data = resync ? json_pack ("{s:s, s:s, s:b, s:s}", "sessionId",
                                       run->params->session_id, "status", status, "resync", 1,
                                       "timestamp", now)
                          : json_pack ("{s:s, s:s, s:s}", "status", status, "sessionId",
                                       run->params->session_id, "timestamp", now);
    gw_event_t *event = data ? gw_event_synthetic (id, type, data) : NULL;
    json_decref (data);
    if (!event)
        return s_write (run, ": status event lost\n\n", 21); //  keep the stream alive
    int rc = s_write_event (run, event);
    gw_event_unref (&event);
    return rc;
}

static int
s_resync (s_run_t *run, const char *id)
{
    return s_write_status (run, id, "session_updated", "resync", true);
}

//  Asks history for events after the cursor and writes the ones that
//  continue it. Returns true when history filled everything (complete, same
//  epoch), false when the client must resync.
static bool
s_fill (s_run_t *run, const char *after, const char **newest_id, char *newest, size_t size)
{
    cm_value_t *payload = NULL;
    int rc = run->params->history (run->params->arg, after, &payload);
    if (rc || !payload) {
        cm_value_destroy (&payload);
        return false;
    }
    bool complete = cm_map_bool (payload, "complete", false);
    const cm_value_t *events = cm_map_get (payload, "events");
    size_t count = events && events->type == CM_T_ARR ? cm_value_len (events) : 0;
    if (newest_id && count) {
        snprintf (newest, size, "%s", cm_map_str_or (cm_arr_at (events, count - 1), "id", ""));
        *newest_id = newest;
    }
    if (!complete) {
        cm_value_destroy (&payload);
        return false;
    }
    for (size_t i = 0; i < count && !run->failed; i++) {
        gw_event_t *event = NULL;
        if (gw_event_from_history (cm_arr_at (events, i), &event)) {
            complete = false; //  a hole we cannot show: resync
            continue;
        }
        if (gw_event_has_id (event)) {
            gw_cursor_verdict_t verdict = gw_cursor_check (&run->cursor, gw_event_eid (event));
            if (verdict == GW_CURSOR_SEND) {
                s_write_event (run, event);
                gw_cursor_advance (&run->cursor, gw_event_eid (event));
            }
            else if (verdict != GW_CURSOR_DUPLICATE)
                complete = false;
        }
        gw_event_unref (&event);
    }
    cm_value_destroy (&payload);
    return complete;
}

static void
s_replay (s_run_t *run, const char *last_event_id)
{
    cm_event_id_t after;
    if (cm_event_id_parse (last_event_id, &after)) {
        s_resync (run, NULL);
        return;
    }
    gw_cursor_advance (&run->cursor, after);
    char newest[64] = "";
    const char *newest_id = NULL;
    if (!s_fill (run, last_event_id, &newest_id, newest, sizeof newest)) {
        //  The client refetches state; resume live from the newest event
        //  the broadcaster holds (or from whatever comes next).
        cm_event_id_t id;
        if (newest_id && cm_event_id_parse (newest_id, &id) == 0) {
            s_resync (run, newest_id);
            gw_cursor_advance (&run->cursor, id);
        }
        else {
            s_resync (run, NULL);
            run->cursor.known = false;
        }
    }
}

//  A live event: dedup, fill gaps from history, resync on epoch changes.
static void
s_live (s_run_t *run, gw_event_t *event)
{
    if (!gw_event_has_id (event)) {
        s_write_event (run, event);
        return;
    }
    cm_event_id_t id = gw_event_eid (event);
    gw_cursor_verdict_t verdict = gw_cursor_check (&run->cursor, id);
    if (verdict == GW_CURSOR_DUPLICATE)
        return;
    if (verdict == GW_CURSOR_EPOCH)
        s_resync (run, NULL);
    else if (verdict == GW_CURSOR_GAP) {
        char after[48];
        cm_event_id_format (after, sizeof after, run->cursor.last);
        if (!s_fill (run, after, NULL, NULL, 0))
            s_resync (run, NULL);
        //  History may have covered this event already.
        verdict = gw_cursor_check (&run->cursor, id);
        if (verdict == GW_CURSOR_DUPLICATE)
            return;
    }
    if (s_write_event (run, event) == 0)
        gw_cursor_advance (&run->cursor, id);
}

gw_sse_end_t
gw_sse_run (gw_stream_t *stream, const gw_sse_params_t *params)
{
    s_run_t run = {.params = params, .last_write_ms = cm_mono_ms ()};
    s_write_status (&run, NULL, "connection_status", "connected", false);
    if (params->last_event_id && *params->last_event_id)
        s_replay (&run, params->last_event_id);
    while (!run.failed) {
        int64_t idle = cm_mono_ms () - run.last_write_ms;
        int wait = params->keepalive_ms - (int) idle;
        if (wait <= 0) {
            s_write (&run, ": keepalive\n\n", 13);
            continue;
        }
        gw_event_t *event = NULL;
        int rc = gw_stream_pop (stream, wait, &event);
        if (rc == CM_EFULL)
            return GW_SSE_OVERFLOW;
        if (rc == CM_ECANCELLED)
            return GW_SSE_CLOSED;
        if (rc)
            continue; //  timeout: the loop writes the keepalive
        s_live (&run, event);
        bool done = params->until_task_id && *params->until_task_id
                    && strcmp (gw_event_task_id (event), params->until_task_id) == 0
                    && (strcmp (gw_event_type (event), "message_regenerated") == 0
                        || strcmp (gw_event_type (event), "regeneration_error") == 0);
        gw_event_unref (&event);
        if (done && !run.failed)
            return GW_SSE_DONE;
    }
    return GW_SSE_CLIENT_GONE;
}
