#include "gw_hub.h"
#include "gw_dedup.h"

#include "cm_error.h"
#include "cm_log.h"
#include "cm_rpc.h"
#include "cm_time.h"

#include <czmq.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

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
    gw_dedup_t *dedup;         //  dispatcher only: one copy of each event id
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

void
gw_hub_slow_enqueue (gw_hub_t *self, gw_stream_t *stream)
{
    pthread_mutex_lock (&self->slow_lock);
    *gw_stream_link (stream) = NULL;
    if (self->slow_tail)
        *gw_stream_link (self->slow_tail) = stream;
    else
        self->slow_head = stream;
    self->slow_tail = stream;
    pthread_cond_signal (&self->slow_cond);
    pthread_mutex_unlock (&self->slow_lock);
}

void
gw_hub_adopt (gw_hub_t *self)
{
    pthread_mutex_lock (&self->slow_lock);
    self->detached++;
    pthread_mutex_unlock (&self->slow_lock);
}

bool
gw_hub_closing (gw_hub_t *self)
{
    return atomic_load (&self->closing_now);
}

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
        self->slow_head = *gw_stream_link (stream);
        if (!self->slow_head)
            self->slow_tail = NULL;
        pthread_mutex_unlock (&self->slow_lock);
        bool ended = gw_stream_resume (stream);
        pthread_mutex_lock (&self->slow_lock);
        if (ended) {
            self->detached--;
            pthread_cond_broadcast (&self->slow_cond);
        }
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
        bool took;
        if (gw_stream_offer (session->streams[i], event, now, &took))
            written++;
        reached += took;
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
        for (size_t i = 0; i < session->count; i++)
            gw_stream_tend (session->streams[i], self->keepalive, self->options.keepalive_ms, now);
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
                cm_mono_deadline (&deadline, (int) wait);
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
    //  Every broadcaster relays every event: the first copy goes on.
    cm_event_id_t eid;
    if (cm_event_id_parse (id, &eid) == 0 && !gw_dedup_admit (self->dedup, session_id, eid))
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
    int rc = sub && cm_connect_list (sub, self->endpoint) == 0 ? 0 : CM_EINVAL;
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
            else {
                zsock_set_unsubscribe (sub, self->commands[i].session_id);
                gw_dedup_forget (self->dedup, self->commands[i].session_id);
            }
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
    self->dedup = gw_dedup_new ();
    self->wakeup = eventfd (0, EFD_NONBLOCK | EFD_CLOEXEC);
    self->keepalive = gw_event_keepalive ();
    self->writers = calloc ((size_t) self->options.writers, sizeof *self->writers);
    pthread_mutex_init (&self->slow_lock, NULL);
    pthread_cond_init (&self->slow_cond, NULL);
    self->slow_ready = true;
    if (!self->subscribed || !self->confirmed || !self->dedup || self->wakeup < 0 || !self->keepalive || !self->writers) {
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
    gw_dedup_destroy (&self->dedup);
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
    size_t shard = self->next_shard++ % self->writer_count;
    gw_stream_bind (stream, self, shard);
    uintptr_t count = (uintptr_t) zhashx_lookup (self->subscribed, session_id);
    int rc = s_shard_add (&self->writers[shard], session_id, stream);
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
        s_shard_remove (&self->writers[shard], session_id, stream);
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
    cm_mono_deadline (&deadline, 2000);
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
    s_shard_remove (&self->writers[gw_stream_shard (stream)], session_id, stream);
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

