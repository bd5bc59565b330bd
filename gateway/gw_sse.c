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
#include <poll.h>
#include <sys/mman.h>
#include <sys/socket.h>
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
//  Stream

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
    //  The fast path (gw_sse.h). While `fast` is set a writer thread owns
    //  the socket and the cursor; otherwise the connection thread does.
    //  Both change hands only under `lock`.
    int fd;
    bool fast;
    bool gone;             //  a writer saw the client go away
    gw_event_t *partial;   //  a frame a writer could send only in part
    size_t partial_off;
    gw_cursor_t cursor;
    int64_t last_write_ms; //  of the owner of the socket
    size_t shard;          //  writer thread, set on attach
    //  Detached streams (gw_sse.h): no connection thread. `running`: a
    //  slow-path thread owns it now; `queued`: it waits for one. A
    //  detached stream that leaves the fast path is queued unless one of
    //  the two is set already, so one thread at a time serves it.
    gw_hub_t *hub;         //  set on attach
    gw_sse_params_t params;
    bool detached, running, queued;
    gw_stream_t *slow_next;
};

static void s_slow_enqueue (gw_hub_t *hub, gw_stream_t *stream);

//  Wakes whoever serves the stream: its connection thread, or (detached)
//  a slow-path thread. Called with the lock held.
static void
s_notify (gw_stream_t *self)
{
    pthread_cond_signal (&self->ready);
    if (self->detached && !self->running && !self->queued) {
        self->queued = true;
        s_slow_enqueue (self->hub, self);
    }
}

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
    self->fd = -1;
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
    gw_event_unref (&self->partial);
    pthread_cond_destroy (&self->ready);
    pthread_mutex_destroy (&self->lock);
    free (self);
    *self_p = NULL;
}

void
gw_stream_set_fd (gw_stream_t *self, int fd)
{
    pthread_mutex_lock (&self->lock);
    self->fd = fd;
    pthread_mutex_unlock (&self->lock);
}

bool
gw_stream_is_fast (gw_stream_t *self)
{
    pthread_mutex_lock (&self->lock);
    bool fast = self->fast;
    pthread_mutex_unlock (&self->lock);
    return fast;
}

//  Marks the stream overflowed; called with the lock held. Shutting the
//  socket down also frees a connection thread blocked in a write to a
//  reader that stopped reading, so the slot is given back at once.
static void
s_overflow (gw_stream_t *self)
{
    self->overflowed = true;
    self->fast = false;
    s_stream_clear (self);
    if (self->fd >= 0)
        shutdown (self->fd, SHUT_RDWR);
    s_notify (self);
}

//  Queues for the connection thread; called with the lock held.
static int
s_push (gw_stream_t *self, gw_event_t *event)
{
    if (self->overflowed)
        return CM_EFULL;
    if (self->closed || self->gone)
        return 0;
    size_t pending = self->partial ? self->partial->len - self->partial_off : 0;
    if (self->bytes + pending + event->len > self->max_bytes) {
        s_overflow (self);
        return CM_EFULL;
    }
    s_node_t *node = malloc (sizeof *node);
    if (!node) {
        //  Losing an event silently would desync the client: treat it as
        //  an overflow, the client reconnects and replays.
        s_overflow (self);
        return CM_EFULL;
    }
    node->event = gw_event_ref (event);
    node->next = NULL;
    if (self->tail)
        self->tail->next = node;
    else
        self->head = node;
    self->tail = node;
    self->bytes += event->len;
    s_notify (self);
    return 0;
}

int
gw_stream_push (gw_stream_t *self, gw_event_t *event)
{
    pthread_mutex_lock (&self->lock);
    int rc = s_push (self, event);
    pthread_mutex_unlock (&self->lock);
    return rc;
}

static void
s_deadline (struct timespec *deadline, int timeout_ms)
{
    clock_gettime (CLOCK_MONOTONIC, deadline);
    deadline->tv_sec += timeout_ms / 1000;
    deadline->tv_nsec += (long) (timeout_ms % 1000) * 1000000L;
    if (deadline->tv_nsec >= 1000000000L) {
        deadline->tv_sec++;
        deadline->tv_nsec -= 1000000000L;
    }
}

//  Takes the queue's first event; called with the lock held.
static gw_event_t *
s_take (gw_stream_t *self)
{
    s_node_t *node = self->head;
    if (!node)
        return NULL;
    self->head = node->next;
    if (!self->head)
        self->tail = NULL;
    self->bytes -= node->event->len;
    gw_event_t *event = node->event;
    free (node);
    return event;
}

int
gw_stream_pop (gw_stream_t *self, int timeout_ms, gw_event_t **event)
{
    struct timespec deadline;
    s_deadline (&deadline, timeout_ms);
    pthread_mutex_lock (&self->lock);
    int rc = 0;
    while (!self->head && !self->overflowed && !self->closed)
        if (pthread_cond_timedwait (&self->ready, &self->lock, &deadline) == ETIMEDOUT)
            break;
    if (self->overflowed)
        rc = CM_EFULL;
    else if (self->closed)
        rc = CM_ECANCELLED;
    else if (!self->head)
        rc = CM_ETIMEOUT;
    else
        *event = s_take (self);
    pthread_mutex_unlock (&self->lock);
    return rc;
}

void
gw_stream_close (gw_stream_t *self)
{
    pthread_mutex_lock (&self->lock);
    self->closed = true;
    self->fast = false;
    s_notify (self);
    pthread_mutex_unlock (&self->lock);
}

//  ---------------------------------------------------------------------
//  Writer-side delivery (the stream's lock held)

//  Sends what it can without blocking. 1 all sent, 0 some or none sent
//  (*sent says how much), -1 the client is gone.
static int
s_send_some (int fd, const char *data, size_t len, size_t *sent)
{
    *sent = 0;
    while (*sent < len) {
        ssize_t n = send (fd, data + *sent, len - *sent, MSG_DONTWAIT | MSG_NOSIGNAL);
        if (n > 0)
            *sent += (size_t) n;
        else if (n < 0 && errno == EINTR)
            continue;
        else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return 0;
        else
            return -1;
    }
    return 1;
}

//  Hands the socket back to the connection thread with what is left of
//  `event` after `sent` bytes.
static void
s_leave_fast (gw_stream_t *self, gw_event_t *event, size_t sent)
{
    self->fast = false;
    if (event) {
        self->partial = gw_event_ref (event);
        self->partial_off = sent;
    }
    s_notify (self);
}

//  One live event for one stream. Returns true when a writer wrote it.
static bool
s_offer (gw_stream_t *self, gw_event_t *event, int64_t now)
{
    if (self->closed || self->overflowed || self->gone)
        return false;
    if (!self->fast) {
        s_push (self, event);
        return false;
    }
    if (event->has_id) {
        gw_cursor_verdict_t verdict = gw_cursor_check (&self->cursor, event->eid);
        if (verdict == GW_CURSOR_DUPLICATE)
            return false;
        if (verdict != GW_CURSOR_SEND) {
            //  A gap (history fill) or another epoch (resync): the
            //  connection thread's work, it may call the broadcaster.
            self->fast = false;
            s_push (self, event);
            return false;
        }
    }
    size_t sent;
    int rc = s_send_some (self->fd, event->frame, event->len, &sent);
    if (rc < 0) {
        self->gone = true;
        s_leave_fast (self, NULL, 0);
        return false;
    }
    if (event->has_id)
        gw_cursor_advance (&self->cursor, event->eid);
    if (rc == 0)
        s_leave_fast (self, event, sent); //  the thread writes the rest
    else
        self->last_write_ms = now;
    return true;
}

//  Keepalive and dead-client check of a fast stream.
static void
s_tend (gw_stream_t *self, gw_event_t *keepalive, int keepalive_ms, int64_t now)
{
    if (!self->fast || now - self->last_write_ms < keepalive_ms)
        return;
    //  A closed client makes the socket readable with EOF; clients send
    //  nothing else on an event stream.
    char byte;
    ssize_t n = recv (self->fd, &byte, 1, MSG_PEEK | MSG_DONTWAIT);
    size_t sent = 0;
    int rc = n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
                 ? -1
                 : s_send_some (self->fd, keepalive->frame, keepalive->len, &sent);
    if (rc < 0) {
        self->gone = true;
        s_leave_fast (self, NULL, 0);
    }
    else if (rc == 0)
        s_leave_fast (self, keepalive, sent);
    else
        self->last_write_ms = now;
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

typedef struct s_job {
    gw_event_t *event;
    struct s_job *next;
    char session_id[CM_SESSION_ID_MAX + 1];
} s_job_t;

//  Inbox entries beyond which the dispatcher drops events for a writer
//  that fell that far behind; its streams fill the gap from history.
#define S_INBOX_MAX 100000

typedef struct {
    gw_hub_t *hub;
    pthread_t thread;
    bool started;
    //  Inbox: events from the dispatcher.
    pthread_mutex_t inbox_lock;
    pthread_cond_t inbox_cond;
    s_job_t *head, *tail;
    size_t queued;
    bool stop;
    //  Shard: this writer's streams, by session.
    pthread_mutex_t shard_lock;
    zhashx_t *sessions;        //  session id -> s_session_t
    size_t stream_count;
} s_writer_t;

struct gw_hub {
    cm_curve_t *curve; //  borrowed; NULL = CURVE off
    gw_hub_options_t options;
    pthread_mutex_t lock;
    pthread_cond_t applied_cond;
    zhashx_t *subscribed;      //  session id -> local stream count (as pointer)
    zhashx_t *confirmed;       //  session ids whose subscription the broadcaster acknowledged
    s_command_t *commands;     //  subscription changes for the dispatcher
    size_t command_count, command_cap;
    uint64_t posted, applied;  //  command sequence numbers
    size_t stream_count;
    size_t next_shard;
    bool closing;
    int wakeup;                //  eventfd: commands or stop
    atomic_bool stop;
    pthread_t thread;
    char endpoint[256];
    bool started;              //  dispatcher connected its socket
    int start_rc;
    uint64_t live_seen;        //  dispatcher only: for options.test_drop_every
    gw_event_t *keepalive;
    s_writer_t *writers;
    size_t writer_count;
    //  Slow path of detached streams: a queue of streams that left the fast
    //  path, served by a few threads. `detached` counts detached streams
    //  not yet ended; the threads stop once it is 0 and `slow_stop` is set.
    pthread_mutex_t slow_lock;
    pthread_cond_t slow_cond;
    gw_stream_t *slow_head, *slow_tail;
    size_t detached;
    bool slow_stop;
    bool slow_ready;           //  slow_lock/slow_cond initialised
    pthread_t *slow_threads;
    size_t slow_count;
    atomic_bool closing_now;   //  closing, readable without the lock
};

static void
s_slow_enqueue (gw_hub_t *hub, gw_stream_t *stream)
{
    pthread_mutex_lock (&hub->slow_lock);
    stream->slow_next = NULL;
    if (hub->slow_tail)
        hub->slow_tail->slow_next = stream;
    else
        hub->slow_head = stream;
    hub->slow_tail = stream;
    pthread_cond_signal (&hub->slow_cond);
    pthread_mutex_unlock (&hub->slow_lock);
}

static void s_resume (gw_hub_t *self, gw_stream_t *stream);

static void *
s_slow_main (void *arg)
{
    gw_hub_t *self = arg;
    pthread_mutex_lock (&self->slow_lock);
    while (true) {
        while (!self->slow_head && !(self->slow_stop && self->detached == 0))
            pthread_cond_wait (&self->slow_cond, &self->slow_lock);
        gw_stream_t *stream = self->slow_head;
        if (!stream)
            break;
        self->slow_head = stream->slow_next;
        if (!self->slow_head)
            self->slow_tail = NULL;
        pthread_mutex_unlock (&self->slow_lock);
        s_resume (self, stream);
        pthread_mutex_lock (&self->slow_lock);
    }
    pthread_mutex_unlock (&self->slow_lock);
    return NULL;
}

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

static void
s_delivered (gw_hub_t *self, size_t count)
{
    if (self->options.delivered)
        for (size_t i = 0; i < count; i++)
            self->options.delivered (self->options.arg);
}

//  Fans event out to one writer's streams of session_id.
static size_t
s_fan_out (gw_hub_t *self, s_writer_t *writer, const char *session_id, gw_event_t *event)
{
    size_t written = 0, reached = 0;
    int64_t now = cm_mono_ms ();
    pthread_mutex_lock (&writer->shard_lock);
    s_session_t *session = zhashx_lookup (writer->sessions, session_id);
    for (size_t i = 0; session && i < session->count; i++) {
        gw_stream_t *stream = session->streams[i];
        pthread_mutex_lock (&stream->lock);
        bool open = !stream->closed && !stream->overflowed && !stream->gone;
        if (s_offer (stream, event, now))
            written++;
        reached += open && !stream->overflowed;
        pthread_mutex_unlock (&stream->lock);
    }
    pthread_mutex_unlock (&writer->shard_lock);
    s_delivered (self, written);
    return reached;
}

size_t
gw_hub_deliver (gw_hub_t *self, const char *session_id, gw_event_t *event)
{
    size_t reached = 0;
    for (size_t i = 0; i < self->writer_count; i++)
        reached += s_fan_out (self, &self->writers[i], session_id, event);
    return reached;
}

//  Keepalives and dead-client checks for one writer's fast streams.
static void
s_tend_shard (gw_hub_t *self, s_writer_t *writer)
{
    int64_t now = cm_mono_ms ();
    pthread_mutex_lock (&writer->shard_lock);
    for (s_session_t *session = zhashx_first (writer->sessions); session;
         session = zhashx_next (writer->sessions))
        for (size_t i = 0; i < session->count; i++) {
            gw_stream_t *stream = session->streams[i];
            pthread_mutex_lock (&stream->lock);
            s_tend (stream, self->keepalive, self->options.keepalive_ms, now);
            pthread_mutex_unlock (&stream->lock);
        }
    pthread_mutex_unlock (&writer->shard_lock);
}

static void *
s_writer_main (void *arg)
{
    s_writer_t *writer = arg;
    gw_hub_t *self = writer->hub;
    //  Check often enough that a keepalive is late by at most a quarter of
    //  its interval, and at least every second.
    int period = self->options.keepalive_ms / 4;
    period = period < 25 ? 25 : period > 1000 ? 1000 : period;
    int64_t next_tend = cm_mono_ms () + period;
    pthread_mutex_lock (&writer->inbox_lock);
    while (!writer->stop) {
        if (!writer->head) {
            int64_t wait = next_tend - cm_mono_ms ();
            if (wait > 0) {
                struct timespec deadline;
                s_deadline (&deadline, (int) wait);
                pthread_cond_timedwait (&writer->inbox_cond, &writer->inbox_lock, &deadline);
            }
        }
        s_job_t *jobs = writer->head;
        writer->head = writer->tail = NULL;
        writer->queued = 0;
        pthread_mutex_unlock (&writer->inbox_lock);
        while (jobs) {
            s_job_t *job = jobs;
            jobs = job->next;
            s_fan_out (self, writer, job->session_id, job->event);
            gw_event_unref (&job->event);
            free (job);
        }
        if (cm_mono_ms () >= next_tend) {
            s_tend_shard (self, writer);
            next_tend = cm_mono_ms () + period;
        }
        pthread_mutex_lock (&writer->inbox_lock);
    }
    pthread_mutex_unlock (&writer->inbox_lock);
    return NULL;
}

//  Hands event to every writer (dispatcher thread).
static void
s_post_event (gw_hub_t *self, const char *session_id, gw_event_t *event)
{
    for (size_t i = 0; i < self->writer_count; i++) {
        s_writer_t *writer = &self->writers[i];
        s_job_t *job = malloc (sizeof *job);
        if (!job) {
            cm_warning ("out of memory: an event is skipped (session=%s)", session_id);
            continue; //  the streams fill the gap from history
        }
        job->event = gw_event_ref (event);
        job->next = NULL;
        snprintf (job->session_id, sizeof job->session_id, "%s", session_id);
        pthread_mutex_lock (&writer->inbox_lock);
        if (writer->queued >= S_INBOX_MAX) {
            pthread_mutex_unlock (&writer->inbox_lock);
            cm_warning ("writer %zu is %d events behind: an event is skipped (session=%s)", i,
                        S_INBOX_MAX, session_id);
            gw_event_unref (&job->event);
            free (job);
            continue;
        }
        if (writer->tail)
            writer->tail->next = job;
        else
            writer->head = job;
        writer->tail = job;
        writer->queued++;
        pthread_cond_signal (&writer->inbox_cond);
        pthread_mutex_unlock (&writer->inbox_lock);
    }
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
    if (topic_len == 0 || topic_len > CM_SESSION_ID_MAX || id_len > 47)
        return;
    char session_id[CM_SESSION_ID_MAX + 1], id[48];
    memcpy (session_id, zframe_data (topic), topic_len);
    session_id[topic_len] = 0;
    if (id_len == 0) {
        //  The broadcaster's "subscribed" notice: from now on every event
        //  of the session reaches this socket (see gw_hub_attach).
        pthread_mutex_lock (&self->lock);
        if (zhashx_lookup (self->subscribed, session_id))
            zhashx_update (self->confirmed, session_id, (void *) 1);
        pthread_cond_broadcast (&self->applied_cond);
        pthread_mutex_unlock (&self->lock);
        return;
    }
    memcpy (id, zframe_data (id_frame), id_len);
    id[id_len] = 0;
    //  Subscriptions are prefix matches: "s1" also receives "s12". The exact
    //  lookup below drops what no local stream asked for.
    pthread_mutex_lock (&self->lock);
    bool wanted = zhashx_lookup (self->subscribed, session_id) != NULL;
    pthread_mutex_unlock (&self->lock);
    if (!wanted)
        return;
    if (self->options.test_drop_every > 0
        && ++self->live_seen % (uint64_t) self->options.test_drop_every == 0) {
        cm_debug ("test setting: dropping live event %s (session=%s)", id, session_id);
        return;
    }
    cm_envelope_t *envelope = NULL;
    gw_event_t *event = NULL;
    if (cm_frame_decode (body, &envelope) == 0 && gw_event_new (id, envelope, &event) == 0) {
        s_post_event (self, session_id, event);
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

static gw_event_t *
s_keepalive_event (void)
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

gw_hub_t *
gw_hub_new (const char *events_endpoint, cm_curve_t *curve, const gw_hub_options_t *options)
{
    gw_hub_t *self = calloc (1, sizeof *self);
    if (!self)
        return NULL;
    self->curve = curve;
    if (options)
        self->options = *options;
    if (self->options.writers < 1)
        self->options.writers = 1;
    if (self->options.keepalive_ms < 1)
        self->options.keepalive_ms = 15000;
    pthread_mutex_init (&self->lock, NULL);
    pthread_condattr_t attr;
    pthread_condattr_init (&attr);
    pthread_condattr_setclock (&attr, CLOCK_MONOTONIC);
    pthread_cond_init (&self->applied_cond, &attr);
    snprintf (self->endpoint, sizeof self->endpoint, "%s", events_endpoint);
    self->subscribed = zhashx_new ();
    self->confirmed = zhashx_new ();
    self->wakeup = eventfd (0, EFD_NONBLOCK | EFD_CLOEXEC);
    self->keepalive = s_keepalive_event ();
    self->writers = calloc ((size_t) self->options.writers, sizeof *self->writers);
    pthread_mutex_init (&self->slow_lock, NULL);
    pthread_cond_init (&self->slow_cond, NULL);
    self->slow_ready = true;
    if (!self->subscribed || !self->confirmed || self->wakeup < 0 || !self->keepalive || !self->writers) {
        pthread_condattr_destroy (&attr);
        gw_hub_destroy (&self);
        return NULL;
    }
    for (int i = 0; i < self->options.writers; i++) {
        s_writer_t *writer = &self->writers[i];
        writer->hub = self;
        pthread_mutex_init (&writer->inbox_lock, NULL);
        pthread_cond_init (&writer->inbox_cond, &attr);
        pthread_mutex_init (&writer->shard_lock, NULL);
        writer->sessions = zhashx_new ();
        self->writer_count++;
        if (!writer->sessions) {
            pthread_condattr_destroy (&attr);
            gw_hub_destroy (&self);
            return NULL;
        }
        zhashx_set_destructor (writer->sessions, s_session_free);
        if (pthread_create (&writer->thread, NULL, s_writer_main, writer)) {
            pthread_condattr_destroy (&attr);
            gw_hub_destroy (&self);
            return NULL;
        }
        writer->started = true;
    }
    //  Blocking writes to slow readers happen here, so a few threads: one
    //  stalled reader must not hold up every other stream's slow path.
    size_t slow = (size_t) self->options.writers * 2;
    self->slow_threads = calloc (slow, sizeof *self->slow_threads);
    for (size_t i = 0; self->slow_threads && i < slow; i++) {
        if (pthread_create (&self->slow_threads[i], NULL, s_slow_main, self))
            break;
        self->slow_count++;
    }
    pthread_condattr_destroy (&attr);
    if (self->slow_count == 0) {
        gw_hub_destroy (&self);
        return NULL;
    }
    if (pthread_create (&self->thread, NULL, s_dispatcher, self)) {
        gw_hub_destroy (&self);
        return NULL;
    }
    pthread_mutex_lock (&self->lock);
    while (!self->started)
        pthread_cond_wait (&self->applied_cond, &self->lock);
    int rc = self->start_rc;
    pthread_mutex_unlock (&self->lock);
    if (rc) {
        pthread_join (self->thread, NULL);
        self->started = false;
        gw_hub_destroy (&self);
        return NULL;
    }
    return self;
}

void
gw_hub_destroy (gw_hub_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    gw_hub_t *self = *self_p;
    //  Detached streams first: they end on the slow-path threads, which
    //  still need the shards and the dispatcher's command queue.
    if (self->slow_ready) {
        pthread_mutex_lock (&self->slow_lock);
        size_t detached = self->detached;
        pthread_mutex_unlock (&self->slow_lock);
        if (detached)
            gw_hub_close_all (self);
        pthread_mutex_lock (&self->slow_lock);
        self->slow_stop = true;
        pthread_cond_broadcast (&self->slow_cond);
        pthread_mutex_unlock (&self->slow_lock);
        for (size_t i = 0; i < self->slow_count; i++)
            pthread_join (self->slow_threads[i], NULL);
    }
    free (self->slow_threads);
    if (self->started) {
        atomic_store (&self->stop, true);
        s_wake (self);
        pthread_join (self->thread, NULL);
    }
    for (size_t i = 0; i < self->writer_count; i++) {
        s_writer_t *writer = &self->writers[i];
        if (writer->started) {
            pthread_mutex_lock (&writer->inbox_lock);
            writer->stop = true;
            pthread_cond_signal (&writer->inbox_cond);
            pthread_mutex_unlock (&writer->inbox_lock);
            pthread_join (writer->thread, NULL);
        }
        while (writer->head) {
            s_job_t *job = writer->head;
            writer->head = job->next;
            gw_event_unref (&job->event);
            free (job);
        }
        zhashx_destroy (&writer->sessions);
        pthread_cond_destroy (&writer->inbox_cond);
        pthread_mutex_destroy (&writer->inbox_lock);
        pthread_mutex_destroy (&writer->shard_lock);
    }
    free (self->writers);
    gw_event_unref (&self->keepalive);
    zhashx_destroy (&self->subscribed);
    zhashx_destroy (&self->confirmed);
    free (self->commands);
    if (self->wakeup >= 0)
        close (self->wakeup);
    if (self->slow_ready) {
        pthread_cond_destroy (&self->slow_cond);
        pthread_mutex_destroy (&self->slow_lock);
    }
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

static int
s_shard_add (s_writer_t *writer, const char *session_id, gw_stream_t *stream)
{
    pthread_mutex_lock (&writer->shard_lock);
    s_session_t *session = zhashx_lookup (writer->sessions, session_id);
    if (!session) {
        session = calloc (1, sizeof *session);
        if (!session || zhashx_insert (writer->sessions, session_id, session)) {
            free (session);
            pthread_mutex_unlock (&writer->shard_lock);
            return CM_ENOMEM;
        }
    }
    int rc = 0;
    if (session->count == session->cap) {
        size_t cap = session->cap ? session->cap * 2 : 4;
        gw_stream_t **streams = realloc (session->streams, cap * sizeof *streams);
        if (streams) {
            session->streams = streams;
            session->cap = cap;
        }
        else
            rc = CM_ENOMEM;
    }
    if (rc == 0) {
        session->streams[session->count++] = stream;
        writer->stream_count++;
    }
    else if (session->count == 0)
        zhashx_delete (writer->sessions, session_id);
    pthread_mutex_unlock (&writer->shard_lock);
    return rc;
}

static void
s_shard_remove (s_writer_t *writer, const char *session_id, gw_stream_t *stream)
{
    pthread_mutex_lock (&writer->shard_lock);
    s_session_t *session = zhashx_lookup (writer->sessions, session_id);
    for (size_t i = 0; session && i < session->count; i++)
        if (session->streams[i] == stream) {
            session->streams[i] = session->streams[--session->count];
            writer->stream_count--;
            break;
        }
    if (session && session->count == 0)
        zhashx_delete (writer->sessions, session_id);
    pthread_mutex_unlock (&writer->shard_lock);
}

int
gw_hub_attach (gw_hub_t *self, const char *session_id, gw_stream_t *stream)
{
    pthread_mutex_lock (&self->lock);
    if (self->closing) {
        pthread_mutex_unlock (&self->lock);
        return CM_ECANCELLED;
    }
    //  Round robin over the writers: each takes an equal share of every
    //  session's fan-out.
    stream->shard = self->next_shard++ % self->writer_count;
    stream->hub = self;
    uintptr_t count = (uintptr_t) zhashx_lookup (self->subscribed, session_id);
    int rc = s_shard_add (&self->writers[stream->shard], session_id, stream);
    uint64_t seq = 0;
    if (rc == 0 && count == 0) {
        rc = zhashx_insert (self->subscribed, session_id, (void *) (uintptr_t) 1) ? CM_ENOMEM : 0;
        if (rc == 0 && (rc = s_post (self, true, session_id, &seq)))
            zhashx_delete (self->subscribed, session_id);
    }
    else if (rc == 0)
        zhashx_update (self->subscribed, session_id, (void *) (count + 1));
    if (rc) {
        pthread_mutex_unlock (&self->lock);
        s_shard_remove (&self->writers[stream->shard], session_id, stream);
        return rc;
    }
    self->stream_count++;
    //  Wait (bounded) until the subscription is live at the broadcaster,
    //  not only set on our socket: the stream is announced connected only
    //  then, so an event published after connection_status cannot be lost
    //  to the subscription's trip, and a replay asked for after this
    //  returns overlaps the live feed. A broadcaster that is down costs
    //  this wait once; the stream then goes on and resyncs when it returns.
    struct timespec deadline;
    s_deadline (&deadline, 2000);
    while ((self->applied < seq || !zhashx_lookup (self->confirmed, session_id))
           && !self->closing)
        if (pthread_cond_timedwait (&self->applied_cond, &self->lock, &deadline) == ETIMEDOUT)
            break;
    //  Closed while attaching: the stream must not miss its close.
    if (self->closing)
        gw_stream_close (stream);
    pthread_mutex_unlock (&self->lock);
    return 0;
}

void
gw_hub_detach (gw_hub_t *self, const char *session_id, gw_stream_t *stream)
{
    //  After this no writer touches the stream (they hold the shard lock
    //  while they do), so its thread may give the socket back.
    s_shard_remove (&self->writers[stream->shard], session_id, stream);
    pthread_mutex_lock (&self->lock);
    uintptr_t count = (uintptr_t) zhashx_lookup (self->subscribed, session_id);
    if (count > 1)
        zhashx_update (self->subscribed, session_id, (void *) (count - 1));
    else if (count == 1) {
        zhashx_delete (self->subscribed, session_id);
        zhashx_delete (self->confirmed, session_id);
        uint64_t seq;
        if (s_post (self, false, session_id, &seq))
            cm_warning ("cannot queue an unsubscribe (session=%s): out of memory", session_id);
    }
    if (count)
        self->stream_count--;
    pthread_mutex_unlock (&self->lock);
}

void
gw_hub_close_all (gw_hub_t *self)
{
    pthread_mutex_lock (&self->lock);
    self->closing = true;
    atomic_store (&self->closing_now, true);
    for (size_t w = 0; w < self->writer_count; w++) {
        s_writer_t *writer = &self->writers[w];
        pthread_mutex_lock (&writer->shard_lock);
        for (s_session_t *session = zhashx_first (writer->sessions); session;
             session = zhashx_next (writer->sessions))
            for (size_t i = 0; i < session->count; i++)
                gw_stream_close (session->streams[i]);
        pthread_mutex_unlock (&writer->shard_lock);
    }
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
    gw_stream_t *stream;
    gw_cursor_t *cursor;   //  the stream's; ours while not fast
    int64_t last_write_ms;
    bool failed;
    bool detached;         //  a slow-path thread: write to the socket itself
} s_run_t;

//  Give up on a reader that took nothing for this long (detached streams;
//  civetweb's request_timeout_ms did this for connection threads).
#define S_STALL_MS 30000

//  A blocking write to a detached stream's socket, from a slow-path
//  thread. Waits in slices so shutdown is noticed; an overflow shuts the
//  socket down, which fails the send.
static int
s_fd_write (gw_stream_t *stream, const char *data, size_t len)
{
    size_t off = 0;
    int64_t since = cm_mono_ms ();
    while (off < len) {
        ssize_t n = send (stream->fd, data + off, len - off, MSG_DONTWAIT | MSG_NOSIGNAL);
        if (n > 0) {
            off += (size_t) n;
            since = cm_mono_ms ();
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            if (atomic_load (&stream->hub->closing_now) || cm_mono_ms () - since > S_STALL_MS)
                return -1;
            struct pollfd item = {.fd = stream->fd, .events = POLLOUT};
            poll (&item, 1, 250);
            continue;
        }
        return -1;
    }
    return 0;
}

static int
s_write (s_run_t *run, const char *data, size_t len)
{
    if (run->failed)
        return -1;
    int rc = run->detached ? s_fd_write (run->stream, data, len)
                           : run->params->write (run->params->arg, data, len);
    if (rc < 0) {
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
        cm_debug ("history after %s failed: %s (session=%s)", after ? after : "-",
                  cm_strerror (rc), run->params->session_id);
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
        cm_debug ("history after %s is incomplete (session=%s)", after ? after : "-",
                  run->params->session_id);
        cm_value_destroy (&payload);
        return false;
    }
    for (size_t i = 0; i < count && !run->failed; i++) {
        gw_event_t *event = NULL;
        if (gw_event_from_history (cm_arr_at (events, i), &event)) {
            cm_debug ("history event %zu unreadable (session=%s)", i, run->params->session_id);
            complete = false; //  a hole we cannot show: resync
            continue;
        }
        if (gw_event_has_id (event)) {
            gw_cursor_verdict_t verdict = gw_cursor_check (run->cursor, gw_event_eid (event));
            if (verdict == GW_CURSOR_SEND) {
                s_write_event (run, event);
                gw_cursor_advance (run->cursor, gw_event_eid (event));
            }
            else if (verdict != GW_CURSOR_DUPLICATE) {
                cm_debug ("history event %s does not continue %lld-%lld (session=%s)",
                          gw_event_id (event), (long long) run->cursor->last.epoch,
                          (long long) run->cursor->last.seq, run->params->session_id);
                complete = false;
            }
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
    gw_cursor_advance (run->cursor, after);
    char newest[64] = "";
    const char *newest_id = NULL;
    if (!s_fill (run, last_event_id, &newest_id, newest, sizeof newest)) {
        //  The client refetches state; resume live from the newest event
        //  the broadcaster holds (or from whatever comes next).
        cm_event_id_t id;
        if (newest_id && cm_event_id_parse (newest_id, &id) == 0) {
            s_resync (run, newest_id);
            gw_cursor_advance (run->cursor, id);
        }
        else {
            s_resync (run, NULL);
            run->cursor->known = false;
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
    gw_cursor_verdict_t verdict = gw_cursor_check (run->cursor, id);
    if (verdict == GW_CURSOR_DUPLICATE)
        return;
    if (verdict == GW_CURSOR_EPOCH)
        s_resync (run, NULL);
    else if (verdict == GW_CURSOR_GAP) {
        char after[48];
        cm_event_id_format (after, sizeof after, run->cursor->last);
        if (!s_fill (run, after, NULL, NULL, 0))
            s_resync (run, NULL);
        //  History may have covered this event already.
        verdict = gw_cursor_check (run->cursor, id);
        if (verdict == GW_CURSOR_DUPLICATE)
            return;
    }
    if (s_write_event (run, event) == 0)
        gw_cursor_advance (run->cursor, id);
}

//  Gives back the stack pages below the current frame before a long park.
//  A connection thread touches tens of KB of stack while it checks the
//  token, the session and replays history; parked, it needs a few hundred
//  bytes. With 10,000 parked threads the difference is hundreds of MB of
//  RSS. Memory below the stack pointer is dead (beyond a margin for the
//  wait itself and signal frames), so MADV_DONTNEED is safe; pages fault
//  back in, zeroed, if the thread goes deep again.
static void
s_trim_stack (void)
{
    pthread_attr_t attr;
    if (pthread_getattr_np (pthread_self (), &attr))
        return;
    void *base = NULL;
    size_t size = 0;
    int rc = pthread_attr_getstack (&attr, &base, &size);
    pthread_attr_destroy (&attr);
    long page = sysconf (_SC_PAGESIZE);
    if (rc || !base || page <= 0)
        return;
    char here;
    uintptr_t mask = ~((uintptr_t) page - 1);
    uintptr_t low = ((uintptr_t) base + (uintptr_t) page - 1) & mask;
    uintptr_t sp = (uintptr_t) &here;
    //  1 KB is plenty for pthread_cond_wait and a signal frame (a signal
    //  handler going deeper faults its pages back in).
    if (sp < low + 2 * (uintptr_t) page || sp > (uintptr_t) base + size)
        return;
    uintptr_t high = (sp - 1024) & mask;
    if (high > low)
        madvise ((void *) low, high - low, MADV_DONTNEED);
}

static bool
s_is_done (const gw_sse_params_t *params, const gw_event_t *event)
{
    return params->until_task_id && *params->until_task_id
           && strcmp (gw_event_task_id (event), params->until_task_id) == 0
           && (strcmp (gw_event_type (event), "message_regenerated") == 0
               || strcmp (gw_event_type (event), "regeneration_error") == 0);
}

//  The stream's main loop, entered with its lock held; returns with it
//  released. Writes the backlog, fills gaps, and hands the socket to the
//  writers when nothing is left (parking, or with params->ended returning
//  GW_SSE_DETACHED) until the stream ends.
static gw_sse_end_t
s_loop (s_run_t *run, bool may_go_fast)
{
    gw_stream_t *stream = run->stream;
    const gw_sse_params_t *params = run->params;
    gw_sse_end_t end = GW_SSE_CLIENT_GONE;
    bool trimmed = false;
    while (!run->failed) {
        if (stream->overflowed) {
            end = GW_SSE_OVERFLOW;
            break;
        }
        if (stream->closed) {
            end = GW_SSE_CLOSED;
            break;
        }
        if (stream->gone)
            break;
        if (stream->fast) {
            //  Parked: writers write to the socket; they wake us only to
            //  hand it back (a gap, a full socket) or to end the stream.
            pthread_cond_wait (&stream->ready, &stream->lock);
            if (!stream->fast)
                run->last_write_ms = stream->last_write_ms;
            continue;
        }
        gw_event_t *partial = stream->partial;
        size_t partial_off = stream->partial_off;
        stream->partial = NULL;
        gw_event_t *event = partial ? NULL : s_take (stream);
        if (!partial && !event) {
            if (may_go_fast && stream->fd >= 0) {
                stream->fast = true;
                stream->last_write_ms = run->last_write_ms;
                if (params->ended) {
                    //  No thread waits on a detached stream: the writers
                    //  queue it for a slow-path thread when needed.
                    if (!stream->detached) {
                        pthread_mutex_lock (&stream->hub->slow_lock);
                        stream->hub->detached++;
                        pthread_mutex_unlock (&stream->hub->slow_lock);
                    }
                    stream->detached = true;
                    stream->running = false;
                    pthread_mutex_unlock (&stream->lock);
                    return GW_SSE_DETACHED;
                }
                if (!trimmed) {
                    s_trim_stack ();
                    trimmed = true;
                }
                continue;
            }
            int64_t idle = cm_mono_ms () - run->last_write_ms;
            int wait = params->keepalive_ms - (int) idle;
            if (wait > 0) {
                struct timespec deadline;
                s_deadline (&deadline, wait);
                pthread_cond_timedwait (&stream->ready, &stream->lock, &deadline);
                continue;
            }
        }
        pthread_mutex_unlock (&stream->lock);
        if (partial) {
            //  The rest of a frame a writer began: before anything else.
            //  (The writer counted it as delivered.)
            s_write (run, partial->frame + partial_off, partial->len - partial_off);
            gw_event_unref (&partial);
        }
        else if (event) {
            s_live (run, event);
            bool done = s_is_done (params, event);
            gw_event_unref (&event);
            if (done && !run->failed) {
                pthread_mutex_lock (&stream->lock);
                end = GW_SSE_DONE;
                break;
            }
        }
        else
            s_write (run, ": keepalive\n\n", 13);
        pthread_mutex_lock (&stream->lock);
    }
    //  A write that failed because the stream overflowed (its socket was
    //  shut down) or closed is reported as that, not as a lost client.
    if (end != GW_SSE_DONE)
        end = stream->overflowed ? GW_SSE_OVERFLOW
              : stream->closed   ? GW_SSE_CLOSED
                                 : GW_SSE_CLIENT_GONE;
    //  The socket goes back to its thread for good.
    stream->fast = false;
    pthread_mutex_unlock (&stream->lock);
    return end;
}

gw_sse_end_t
gw_sse_run (gw_stream_t *stream, const gw_sse_params_t *params)
{
    s_run_t run = {.params = params, .stream = stream, .cursor = &stream->cursor,
                   .last_write_ms = cm_mono_ms ()};
    //  The writers may take over once the backlog is written, unless this
    //  stream must look at every event itself (until_task_id).
    bool may_go_fast = !(params->until_task_id && *params->until_task_id);
    s_write_status (&run, NULL, "connection_status", "connected", false);
    if (params->last_event_id && *params->last_event_id)
        s_replay (&run, params->last_event_id);
    pthread_mutex_lock (&stream->lock);
    if (params->ended && may_go_fast) {
        //  Kept for the slow-path threads once detached.
        stream->params = *params;
        stream->params.last_event_id = NULL;
        run.params = &stream->params;
    }
    return s_loop (&run, may_go_fast);
}

//  A detached stream a writer handed back (slow-path thread): serves it
//  until it goes fast again, or ends it.
static void
s_resume (gw_hub_t *self, gw_stream_t *stream)
{
    pthread_mutex_lock (&stream->lock);
    stream->queued = false;
    stream->running = true;
    s_run_t run = {.params = &stream->params, .stream = stream, .cursor = &stream->cursor,
                   .last_write_ms = stream->last_write_ms, .detached = true};
    gw_sse_end_t end = s_loop (&run, true);
    if (end == GW_SSE_DETACHED)
        return;
    //  Ended: no writer touches it after the detach, nobody queues it
    //  (running stays set).
    gw_sse_params_t params = stream->params;
    gw_hub_detach (self, params.session_id, stream);
    gw_stream_destroy (&stream);
    params.ended (params.arg, (int) end);
    pthread_mutex_lock (&self->slow_lock);
    self->detached--;
    pthread_cond_broadcast (&self->slow_cond);
    pthread_mutex_unlock (&self->slow_lock);
}
