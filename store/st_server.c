#include "st_server.h"

#include "cm_error.h"
#include "cm_log.h"
#include "cm_rpc.h"
#include "cm_time.h"

#include <czmq.h>
#include <stdatomic.h>

#define S_MAX_READERS 16
#define S_BATCH_MAX 256          //  requests per write txn (bounds dirty pages)
#define S_MAX_WAIT_MS 120000     //  longest task_claim long-poll honoured
#define S_EVENTS_HWM 100000      //  events queued while the broadcaster is away

struct st_server {
    st_server_config_t config;
    st_db_t *db;
    st_ops_t *ops;
    zsock_t *router;
    zactor_t *writer;
    zactor_t *readers[S_MAX_READERS];
    int reader_count;
    int next_reader;
    atomic_bool stop;
};

//  --------------------------------------------------------------------------
//  Shared helpers

//  A worker's reusable encoding buffer (cm_envelope_encode_into).
typedef struct {
    char *data;
    size_t capacity;
} s_buffer_t;

//  Sends [identity, reply] to the main thread and frees reply. Encodes into
//  the worker's buffer and hands the bytes straight to zmq (which copies
//  them): no zmsg/zframe allocations per reply.
static void
s_send_reply (zsock_t *sock, s_buffer_t *buffer, zframe_t *identity, cm_envelope_t **reply)
{
    size_t size;
    if (*reply && cm_envelope_encode_into (*reply, &buffer->data, &buffer->capacity, &size) == 0) {
        void *handle = zsock_resolve (sock);
        if (zmq_send (handle, zframe_data (identity), zframe_size (identity), ZMQ_SNDMORE) >= 0)
            zmq_send (handle, buffer->data, size, 0);
    }
    cm_envelope_destroy (reply);
}

//  Main hands a worker the request it already decoded (so the worker does
//  not decode it again) as [identity, pointer]. The worker owns the
//  envelope once the message is sent; it reads every message before $TERM
//  (main sends nothing after it), so none is left behind in the pipe.
//  Returns 1 with the request's identity frame and envelope; 0 for a
//  command ($TERM or anything else), whose text goes into command; -1 when
//  nothing could be read (interrupted or the pipe is gone).
static int
s_receive_request (zsock_t *pipe, zframe_t **identity, cm_envelope_t **request, char *command,
                   size_t command_size)
{
    command[0] = 0;
    zframe_t *first = zframe_recv (pipe);
    if (!first)
        return -1;
    if (!zframe_more (first)) {
        size_t n = zframe_size (first) < command_size ? zframe_size (first) : command_size - 1;
        memcpy (command, zframe_data (first), n);
        command[n] = 0;
        zframe_destroy (&first);
        return 0;
    }
    zframe_t *body = zframe_recv (pipe);
    bool ok = body && zframe_size (body) == sizeof (cm_envelope_t *);
    if (ok) {
        memcpy (request, zframe_data (body), sizeof (cm_envelope_t *));
        *identity = first;
    }
    else
        zframe_destroy (&first);
    zframe_destroy (&body);
    return ok ? 1 : 0;
}

//  The request_id of a message that failed to decode or its schema check,
//  so the error reply reaches the caller's cm_call (which matches on
//  request_id) instead of leaving it to time out.
static void
s_salvage_request_id (zframe_t *body, char *request_id, size_t size)
{
    if (cm_envelope_peek_request_id (zframe_data (body), zframe_size (body), request_id, size))
        request_id[0] = 0;
}

static cm_envelope_t *
s_proto_error (zframe_t *body, const char *why)
{
    cm_envelope_t shell = {.type = CM_MSG_NONE};
    s_salvage_request_id (body, shell.request_id, sizeof shell.request_id);
    return cm_envelope_reply_error (&shell, CM_EPROTO, why);
}

//  --------------------------------------------------------------------------
//  Reader threads

static void
s_reader_actor (zsock_t *pipe, void *args)
{
    st_server_t *self = args;
    s_buffer_t buffer = {NULL, 0};
    zsock_set_sndtimeo (pipe, 5000);
    zsock_signal (pipe, 0);
    while (true) {
        zframe_t *identity = NULL;
        cm_envelope_t *request = NULL, *reply = NULL;
        char command[16];
        int got = s_receive_request (pipe, &identity, &request, command, sizeof command);
        if (got < 0 && zsys_interrupted)
            continue; //  main thread will send $TERM
        if (got < 0 || streq (command, "$TERM"))
            break;
        if (got == 0)
            continue;
        st_ops_read (self->ops, request, cm_now_ms (), &reply);
        s_send_reply (pipe, &buffer, identity, &reply);
        cm_envelope_destroy (&request);
        zframe_destroy (&identity);
    }
    free (buffer.data);
}

//  --------------------------------------------------------------------------
//  The writer thread

typedef struct s_pending {
    zframe_t *identity;
    cm_envelope_t *request;
    int64_t deadline; //  monotonic ms; task_claim long-polls only
    struct s_pending *next;
} s_pending_t;

typedef struct {
    st_server_t *server;
    zsock_t *pipe;
    zsock_t *events;
    s_pending_t *parked; //  FIFO of long-polling claims
    s_pending_t **parked_tail;
    int64_t next_cleanup;
    bool terminated;
    s_buffer_t buffer;         //  replies and events are encoded here
    char event_id_prefix[32];  //  "<pid>.e": events' request ids, minted
    uint64_t event_count;      //  without a syscall per event
} s_writer_t;

static void
s_pending_destroy (s_pending_t **item_p)
{
    s_pending_t *item = *item_p;
    if (!item)
        return;
    zframe_destroy (&item->identity);
    cm_envelope_destroy (&item->request);
    free (item);
    *item_p = NULL;
}

static void
s_park (s_writer_t *w, s_pending_t *item)
{
    item->next = NULL;
    *w->parked_tail = item;
    w->parked_tail = &item->next;
}

static s_pending_t *
s_take_parked (s_writer_t *w)
{
    s_pending_t *list = w->parked;
    w->parked = NULL;
    w->parked_tail = &w->parked;
    return list;
}

static void
s_answer_empty_claim (s_writer_t *w, s_pending_t *item)
{
    cm_value_t *ok = cm_map_new ();
    cm_map_set (ok, "tasks", cm_arr_new ());
    cm_envelope_t *reply = cm_envelope_reply_ok (item->request, ok);
    s_send_reply (w->pipe, &w->buffer, item->identity, &reply);
}

//  Pushes each event {session_id, event, data} as [session_id, envelope
//  {event, data}]. The event map itself becomes the envelope's payload once
//  session_id is taken out (no copy of data), and is encoded into the
//  writer's buffer and sent from there.
static void
s_publish (s_writer_t *w, cm_value_t **events_p)
{
    cm_value_t *events = *events_p;
    void *handle = zsock_resolve (w->events);
    for (size_t i = 0; events && i < cm_value_len (events); i++) {
        cm_value_t *event = (cm_value_t *) cm_arr_at (events, i);
        cm_value_t *session = cm_map_take (event, "session_id");
        const char *session_id = session && session->type == CM_T_STR ? session->u.s.ptr : "";
        cm_envelope_t envelope = {.type = CM_MSG_EVENT, .payload = event};
        snprintf (envelope.request_id, sizeof envelope.request_id, "%s%llu", w->event_id_prefix,
                  (unsigned long long) ++w->event_count);
        size_t size;
        if (cm_envelope_encode_into (&envelope, &w->buffer.data, &w->buffer.capacity, &size)
            == 0) {
            //  Never block the writer on a slow or absent broadcaster; its
            //  PUSH queue (S_EVENTS_HWM) covers restarts. Past that, gateways
            //  resync from the store, which is the truth. Both parts go or
            //  neither: the HWM is checked on the first part only.
            bool sent = zmq_send (handle, session_id, strlen (session_id),
                                  ZMQ_DONTWAIT | ZMQ_SNDMORE)
                            >= 0
                        && zmq_send (handle, w->buffer.data, size, ZMQ_DONTWAIT) >= 0;
            if (!sent)
                cm_warning ("event dropped: broadcaster queue full (session=%s)", session_id);
        }
        cm_value_destroy (&session);
    }
    cm_value_destroy (events_p);
}

static bool
s_is_empty_claim (const cm_envelope_t *reply)
{
    if (!reply || reply->type != CM_MSG_OK)
        return false;
    const cm_value_t *tasks = cm_map_get (reply->payload, "tasks");
    return tasks && tasks->type == CM_T_ARR && cm_value_len (tasks) == 0;
}

//  Runs items (a list) as one batch, replies, publishes, parks empty
//  long-polls that still have time.
static void
s_run_batch (s_writer_t *w, s_pending_t *items)
{
    while (items) {
        s_pending_t *chunk[S_BATCH_MAX];
        cm_envelope_t *requests[S_BATCH_MAX], *replies[S_BATCH_MAX];
        size_t n = 0;
        while (items && n < S_BATCH_MAX) {
            chunk[n] = items;
            requests[n] = items->request;
            items = items->next;
            chunk[n]->next = NULL;
            n++;
        }
        cm_value_t *events = NULL;
        int64_t started = cm_mono_us ();
        st_ops_write_batch (w->server->ops, requests, n, cm_now_ms (), replies, &events);
        cm_debug ("write batch of %zu in %lld us", n, (long long) (cm_mono_us () - started));
        //  Committed: now (and only now) answer, then publish.
        int64_t now = cm_mono_ms ();
        for (size_t i = 0; i < n; i++) {
            s_pending_t *item = chunk[i];
            if (item->request->type == CM_MSG_TASK_CLAIM && s_is_empty_claim (replies[i])
                && item->deadline > now) {
                cm_envelope_destroy (&replies[i]);
                s_park (w, item);
                continue;
            }
            s_send_reply (w->pipe, &w->buffer, item->identity, &replies[i]);
            s_pending_destroy (&item);
        }
        s_publish (w, &events);
    }
}

//  Reads one [identity, request] from the pipe into a pending item. Sets
//  terminated on $TERM.
static s_pending_t *
s_receive (s_writer_t *w)
{
    zframe_t *identity = NULL;
    cm_envelope_t *request = NULL;
    char command[16];
    int got = s_receive_request (w->pipe, &identity, &request, command, sizeof command);
    if (got <= 0) {
        if (streq (command, "$TERM"))
            w->terminated = true;
        return NULL;
    }
    s_pending_t *item = calloc (1, sizeof *item);
    if (!item) {
        cm_envelope_t *reply = cm_envelope_reply_error (request, CM_ENOMEM, NULL);
        s_send_reply (w->pipe, &w->buffer, identity, &reply);
        cm_envelope_destroy (&request);
        zframe_destroy (&identity);
        return NULL;
    }
    item->identity = identity;
    item->request = request;
    if (request->type == CM_MSG_TASK_CLAIM) {
        int64_t wait = cm_map_int (request->payload, "wait_ms", 0);
        wait = wait < 0 ? 0 : wait > S_MAX_WAIT_MS ? S_MAX_WAIT_MS : wait;
        item->deadline = cm_mono_ms () + wait;
    }
    return item;
}

static void
s_cleanup (s_writer_t *w)
{
    cm_value_t *events = NULL;
    int64_t started = cm_mono_ms ();
    if (st_ops_cleanup (w->server->ops, cm_now_ms (), &events) == 0)
        cm_info ("cleanup done in %lld ms", (long long) (cm_mono_ms () - started));
    s_publish (w, &events);
}

static void
s_writer_actor (zsock_t *pipe, void *args)
{
    s_writer_t w = {.server = args, .pipe = pipe};
    w.parked_tail = &w.parked;
    snprintf (w.event_id_prefix, sizeof w.event_id_prefix, "%d.e", (int) getpid ());
    const st_server_config_t *config = &w.server->config;
    w.events = zsock_new (ZMQ_PUSH);
    zsock_set_sndhwm (w.events, S_EVENTS_HWM);
    zsock_set_linger (w.events, 2000);
    cm_curve_client (config->curve, w.events, "broadcaster");
    if (zsock_connect (w.events, "%s", config->events_endpoint))
        cm_error ("cannot connect events to %s", config->events_endpoint);
    zsock_set_sndtimeo (pipe, 5000);
    int64_t interval = config->cleanup_interval_ms;
    w.next_cleanup = interval > 0 ? cm_mono_ms () + interval : 0;
    bool retry_parked = false;
    zsock_signal (pipe, 0);

    while (!w.terminated) {
        int64_t now = cm_mono_ms ();
        int64_t wake = now + 1000;
        if (w.next_cleanup && w.next_cleanup < wake)
            wake = w.next_cleanup;
        int64_t lease = st_ops_next_lease_expiry (w.server->ops);
        for (s_pending_t *p = w.parked; p; p = p->next)
            if (p->deadline < wake)
                wake = p->deadline;
        if (w.parked && lease) {
            int64_t lease_mono = now + (lease - cm_now_ms ());
            if (lease_mono < wake)
                wake = lease_mono;
        }
        long timeout = retry_parked ? 0 : (long) (wake > now ? wake - now : 0);
        zmq_pollitem_t item = {zsock_resolve (pipe), 0, ZMQ_POLLIN, 0};
        int rc = zmq_poll (&item, 1, timeout);
        if (rc < 0 && errno != EINTR)
            break;

        //  Group commit: every write request waiting goes into this batch,
        //  long-polls due for another try first (they waited longest).
        s_pending_t *batch = NULL, **tail = &batch;
        bool lease_due = lease && cm_now_ms () >= lease;
        if (w.parked && (retry_parked || lease_due)) {
            *tail = s_take_parked (&w);
            while (*tail)
                tail = &(*tail)->next;
        }
        retry_parked = false;
        size_t taken = 0;
        while (taken < 4 * S_BATCH_MAX && (zsock_events (pipe) & ZMQ_POLLIN)) {
            s_pending_t *next = s_receive (&w);
            if (next) {
                *tail = next;
                tail = &next->next;
                taken++;
            }
            if (w.terminated)
                break;
        }
        if (batch)
            s_run_batch (&w, batch);

        now = cm_mono_ms ();
        //  Long-polls whose time ran out get their empty answer; the rest
        //  count as live regenerators.
        s_pending_t *parked = s_take_parked (&w);
        while (parked) {
            s_pending_t *next = parked->next;
            if (parked->deadline <= now) {
                s_answer_empty_claim (&w, parked);
                s_pending_destroy (&parked);
            }
            else {
                st_ops_worker_seen (w.server->ops,
                                    cm_map_str_or (parked->request->payload, "worker", ""),
                                    cm_now_ms ());
                s_park (&w, parked);
            }
            parked = next;
        }
        if (w.next_cleanup && now >= w.next_cleanup) {
            s_cleanup (&w);
            w.next_cleanup = now + interval;
        }
        retry_parked = st_ops_take_tasks_changed (w.server->ops) && w.parked;
    }
    //  Shutting down: nobody waits forever on a claim.
    s_pending_t *parked = s_take_parked (&w);
    while (parked) {
        s_pending_t *next = parked->next;
        s_answer_empty_claim (&w, parked);
        s_pending_destroy (&parked);
        parked = next;
    }
    zsock_destroy (&w.events);
    free (w.buffer.data);
}

//  --------------------------------------------------------------------------
//  Main thread

st_server_t *
st_server_new (const st_server_config_t *config)
{
    st_server_t *self = calloc (1, sizeof *self);
    if (!self)
        return NULL;
    self->config = *config;
    if (st_db_open (config->dir, config->map_bytes, config->sync, &self->db)) {
        free (self);
        return NULL;
    }
    self->ops = st_ops_new (self->db, &config->ops);
    self->router = zsock_new (ZMQ_ROUTER);
    if (!self->ops || !self->router) {
        st_server_destroy (&self);
        return NULL;
    }
    zsock_set_sndhwm (self->router, 100000);
    zsock_set_rcvhwm (self->router, 100000);
    zsock_set_linger (self->router, 0);
    cm_curve_server (config->curve, self->router);
    if (zsock_bind (self->router, "%s", config->endpoint) < 0) {
        cm_error ("cannot bind %s: %s", config->endpoint, zmq_strerror (zmq_errno ()));
        st_server_destroy (&self);
        return NULL;
    }
    //  Main never blocks sending to a worker (it answers "busy" instead),
    //  so deep pipes only smooth bursts.
    zsys_set_pipehwm (10000);
    self->writer = zactor_new (s_writer_actor, self);
    self->reader_count = config->readers < 1            ? 1
                         : config->readers > S_MAX_READERS ? S_MAX_READERS
                                                           : config->readers;
    for (int i = 0; i < self->reader_count; i++)
        self->readers[i] = zactor_new (s_reader_actor, self);
    cm_notice ("store serving on %s, LMDB in %s (%s), %d readers", config->endpoint,
               config->dir, config->sync ? "fsync" : "no fsync", self->reader_count);
    return self;
}

void
st_server_stop (st_server_t *self)
{
    atomic_store (&self->stop, true);
}

//  Hands [identity, request pointer] to a worker without ever blocking
//  (s_receive_request); on success the worker owns *request and it is set
//  to NULL. false = busy: the caller still owns it.
static bool
s_forward (zactor_t *actor, zframe_t *identity, cm_envelope_t **request)
{
    void *handle = zsock_resolve (zactor_sock (actor));
    if (zmq_send (handle, zframe_data (identity), zframe_size (identity),
                  ZMQ_DONTWAIT | ZMQ_SNDMORE)
        < 0)
        return false;
    //  Once the first part is queued the rest of the message always is.
    if (zmq_send (handle, request, sizeof *request, ZMQ_DONTWAIT) < 0)
        return false;
    *request = NULL;
    return true;
}

static void
s_handle_request (st_server_t *self, zmsg_t *msg)
{
    if (zmsg_size (msg) < 2)
        return;
    zframe_t *identity = zmsg_first (msg);
    zframe_t *body = zmsg_last (msg);
    cm_envelope_t *request = NULL;
    char why[160];
    if (cm_envelope_decode_why (zframe_data (body), zframe_size (body), &request, why,
                                sizeof why)) {
        cm_debug ("malformed request: %s", why);
        cm_envelope_t *reply = s_proto_error (body, why);
        if (reply)
            cm_router_reply (self->router, identity, reply);
        cm_envelope_destroy (&reply);
        return;
    }
    zactor_t *target = NULL;
    if (st_ops_is_write (request->type))
        target = self->writer;
    else if (st_ops_is_read (request->type)) {
        target = self->readers[self->next_reader];
        self->next_reader = (self->next_reader + 1) % self->reader_count;
    }
    cm_envelope_t *reply = NULL;
    if (!target)
        reply = cm_envelope_reply_error (request, CM_EPROTO, "not a store request");
    else if (!s_forward (target, identity, &request))
        reply = cm_envelope_reply_error (request, CM_EFULL, "store busy, retry");
    if (reply)
        cm_router_reply (self->router, identity, reply);
    cm_envelope_destroy (&reply);
    cm_envelope_destroy (&request);
}

int
st_server_run (st_server_t *self)
{
    zpoller_t *poller = zpoller_new (self->router, self->writer, NULL);
    for (int i = 0; i < self->reader_count; i++)
        zpoller_add (poller, self->readers[i]);
    while (!atomic_load (&self->stop) && !zsys_interrupted) {
        void *which = zpoller_wait (poller, 250);
        if (!which)
            continue;
        zmsg_t *msg = zmsg_recv (which);
        if (!msg)
            continue;
        if (which == self->router)
            s_handle_request (self, msg);
        else if (zmsg_size (msg) == 2) {
            //  A worker's [identity, reply]: only this thread sends on the ROUTER.
            if (zmsg_send (&msg, self->router))
                cm_debug ("reply dropped: caller gone");
        }
        zmsg_destroy (&msg);
    }
    zpoller_destroy (&poller);
    cm_notice ("store shutting down");
    return 0;
}

void
st_server_destroy (st_server_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    st_server_t *self = *self_p;
    //  Stop accepting first, then let the workers finish what they hold.
    zsock_destroy (&self->router);
    zactor_destroy (&self->writer);
    for (int i = 0; i < self->reader_count; i++)
        zactor_destroy (&self->readers[i]);
    st_ops_destroy (&self->ops);
    st_db_destroy (&self->db);
    free (self);
    *self_p = NULL;
}
