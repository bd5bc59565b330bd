#include "st_server.h"

#include "cm_error.h"
#include "cm_log.h"
#include "cm_rpc.h"
#include "cm_time.h"
#include "st_membership.h"
#include "st_raft.h"
#include "st_reads.h"

#include <czmq.h>
#include <pthread.h>
#include <stdatomic.h>

#define S_MAX_READERS 16
#define S_BATCH_MAX 256          //  requests per write txn (bounds dirty pages)
#define S_MAX_WAIT_MS 120000     //  longest task_claim long-poll honoured
#define S_EVENTS_HWM 100000      //  events queued while the broadcaster is away
#define S_BROADCASTERS_MAX 8     //  endpoints in CHATMESH_EVENTS_IN_ENDPOINT
#define S_DRAIN_MAX 512          //  messages main takes from one socket per wake-up

//  A reusable encoding buffer (cm_envelope_encode_into), one per thread.
typedef struct {
    char *data;
    size_t capacity;
} s_buffer_t;

//  A caller's ROUTER routing id, held inline: zmq caps them at 255 bytes,
//  and a frame allocation per request was measurable.
typedef struct {
    unsigned char data[255];
    unsigned char size;
} s_identity_t;

struct st_server {
    st_server_config_t config;
    s_buffer_t buffer; //  main thread's replies and events are encoded here
    st_db_t *db;
    st_ops_t *ops;
    st_fsm_t *fsm;   //  replicated only (config.peers), with raft
    st_raft_t *raft;
    zsock_t *router;
    //  One PUSH per broadcaster (main sends on them): every broadcaster
    //  gets every event.
    zsock_t *events[S_BROADCASTERS_MAX];
    int event_sockets;
    zactor_t *writer;
    zactor_t *readers[S_MAX_READERS];
    int reader_count;
    //  Replicated only: runs cluster_change requests one after another
    //  (each waits on raft, up to ST_MEMBERSHIP_WAIT_MS), so no reader or
    //  the writer is held up by one.
    zactor_t *membership;
    int next_reader;
    atomic_bool stop;
};

//  --------------------------------------------------------------------------
//  Shared helpers

//  Sends [identity, reply] (a worker to the main thread, or main on the
//  ROUTER) and frees reply. Encodes into the thread's buffer and hands the
//  bytes straight to zmq (which copies them): no allocations per reply.
static void
s_send_reply (zsock_t *sock, s_buffer_t *buffer, const s_identity_t *identity,
              cm_envelope_t **reply)
{
    size_t size;
    if (*reply && cm_envelope_encode_into (*reply, &buffer->data, &buffer->capacity, &size) == 0) {
        void *handle = zsock_resolve (sock);
        if (zmq_send (handle, identity->data, identity->size, ZMQ_SNDMORE) >= 0)
            zmq_send (handle, buffer->data, size, 0);
    }
    cm_envelope_destroy (reply);
}

//  Main hands a worker the request it already decoded (so the worker does
//  not decode it again) as [identity, pointer]. The worker owns the
//  envelope once the message is sent; it reads every message before $TERM
//  (main sends nothing after it), so none is left behind in the pipe.
//  Returns 1 with the request's identity and envelope; 0 for a command
//  ($TERM or anything else), whose text goes into command; -1 when nothing
//  could be read (interrupted or the pipe is gone).
static int
s_receive_request (zsock_t *pipe, s_identity_t *identity, cm_envelope_t **request,
                   char *command, size_t command_size)
{
    void *handle = zsock_resolve (pipe);
    command[0] = 0;
    zmq_msg_t first, body;
    zmq_msg_init (&first);
    if (zmq_msg_recv (&first, handle, 0) < 0) {
        zmq_msg_close (&first);
        return -1;
    }
    size_t size = zmq_msg_size (&first);
    if (!zmq_msg_more (&first)) {
        size_t n = size < command_size ? size : command_size - 1;
        memcpy (command, zmq_msg_data (&first), n);
        command[n] = 0;
        zmq_msg_close (&first);
        return 0;
    }
    zmq_msg_init (&body);
    //  Main sends both parts at once and only identities zmq gave it.
    bool ok = zmq_msg_recv (&body, handle, 0) >= 0
              && zmq_msg_size (&body) == sizeof (cm_envelope_t *)
              && size <= sizeof identity->data;
    if (ok) {
        memcpy (request, zmq_msg_data (&body), sizeof (cm_envelope_t *));
        memcpy (identity->data, zmq_msg_data (&first), size);
        identity->size = (unsigned char) size;
    }
    zmq_msg_close (&body);
    zmq_msg_close (&first);
    return ok ? 1 : 0;
}

//  An error reply to a message that failed to decode or its schema check.
//  It carries the message's request_id when that can be read, so it
//  reaches the caller's cm_call (which matches on request_id) instead of
//  leaving it to time out.
static cm_envelope_t *
s_proto_error (const void *body, size_t size, const char *why)
{
    cm_envelope_t shell = {.type = CM_MSG_NONE};
    if (cm_envelope_peek_request_id (body, size, shell.request_id, sizeof shell.request_id))
        shell.request_id[0] = 0;
    return cm_envelope_reply_error (&shell, CM_EPROTO, why);
}

//  --------------------------------------------------------------------------
//  Reader threads

//  What a reader-like thread does with one request: its reply (may be
//  NULL: nothing is sent).
typedef cm_envelope_t *(*s_serve_fn) (st_server_t *self, const cm_envelope_t *request);

//  The loop of a thread fed [identity, request] by main until $TERM.
//  Named for top -H, perf and renice (docs/performance.md, Round 6).
static void
s_serve_loop (zsock_t *pipe, st_server_t *self, const char *thread_name, s_serve_fn serve)
{
    s_buffer_t buffer = {NULL, 0};
    pthread_setname_np (pthread_self (), thread_name);
    zsock_set_sndtimeo (pipe, 5000);
    zsock_signal (pipe, 0);
    while (true) {
        s_identity_t identity;
        cm_envelope_t *request = NULL;
        char command[16];
        int got = s_receive_request (pipe, &identity, &request, command, sizeof command);
        if (got < 0 && zsys_interrupted)
            continue; //  main thread will send $TERM
        if (got < 0 || streq (command, "$TERM"))
            break;
        if (got == 0)
            continue;
        cm_envelope_t *reply = serve (self, request);
        s_send_reply (pipe, &buffer, &identity, &reply);
        cm_envelope_destroy (&request);
    }
    free (buffer.data);
}

static cm_envelope_t *
s_serve_read (st_server_t *self, const cm_envelope_t *request)
{
    cm_envelope_t *reply = NULL;
    st_ops_read (self->ops, request, cm_now_ms (), &reply);
    if (self->raft && request->type == CM_MSG_PING && reply && reply->type == CM_MSG_OK)
        st_raft_describe (self->raft, reply->payload);
    return reply;
}

static void
s_reader_actor (zsock_t *pipe, void *args)
{
    s_serve_loop (pipe, args, "store-reader", s_serve_read);
}

static cm_envelope_t *
s_serve_membership (st_server_t *self, const cm_envelope_t *request)
{
    return st_membership_serve (self->raft, request);
}

//  The membership thread: like a reader, for cluster_change only (a
//  change waits for commits, and reads must not wait behind it).
static void
s_membership_actor (zsock_t *pipe, void *args)
{
    s_serve_loop (pipe, args, "store-members", s_serve_membership);
}

//  --------------------------------------------------------------------------
//  The writer thread

typedef struct s_pending {
    s_identity_t identity;
    cm_envelope_t *request;
    cm_envelope_t *reply; //  set once committed (or refused), then sent by main
    int64_t deadline;     //  monotonic ms; task_claim long-polls only
    struct s_pending *next;
} s_pending_t;

//  What the writer hands main after a commit: the answered requests (each
//  with its reply) and the events to publish, in order. Main encodes and
//  sends them while the writer starts on the next batch, so the writer's
//  serial cycle is apply + commit and little else. Sent over the pipe as
//  [empty frame, pointer] (zmq never gives a ROUTER caller an empty id).
typedef struct {
    s_pending_t *answered;
    s_pending_t **answered_tail;
    cm_value_t *events; //  array of {session_id, event, data}, or NULL
} s_outbox_t;

typedef struct {
    st_server_t *server;
    zsock_t *pipe;
    s_pending_t *parked; //  FIFO of long-polling claims
    s_pending_t **parked_tail;
    s_outbox_t *outbox;  //  what this loop turn answered, for main
    int64_t next_cleanup;
    bool terminated;     //  "DRAIN" or $TERM came
    bool term_received;  //  $TERM came: main waits for nothing more
    s_buffer_t buffer;   //  replies sent from here (out of memory only)
} s_writer_t;

static void
s_pending_destroy (s_pending_t **item_p)
{
    s_pending_t *item = *item_p;
    if (!item)
        return;
    cm_envelope_destroy (&item->request);
    cm_envelope_destroy (&item->reply);
    free (item);
    *item_p = NULL;
}

static void
s_outbox_destroy (s_outbox_t **outbox_p)
{
    s_outbox_t *outbox = *outbox_p;
    if (!outbox)
        return;
    while (outbox->answered) {
        s_pending_t *next = outbox->answered->next;
        s_pending_destroy (&outbox->answered);
        outbox->answered = next;
    }
    cm_value_destroy (&outbox->events);
    free (outbox);
    *outbox_p = NULL;
}

//  The outbox this loop turn fills; NULL when out of memory.
static s_outbox_t *
s_outbox (s_writer_t *w)
{
    if (!w->outbox) {
        w->outbox = calloc (1, sizeof *w->outbox);
        if (w->outbox)
            w->outbox->answered_tail = &w->outbox->answered;
    }
    return w->outbox;
}

//  Queues item's answer for main, which sends it and frees item. Without
//  an outbox (out of memory) the writer sends the reply itself.
static void
s_answer (s_writer_t *w, s_pending_t *item, cm_envelope_t **reply)
{
    s_outbox_t *outbox = s_outbox (w);
    if (!outbox) {
        s_send_reply (w->pipe, &w->buffer, &item->identity, reply);
        s_pending_destroy (&item);
        return;
    }
    item->reply = *reply;
    *reply = NULL;
    item->next = NULL;
    *outbox->answered_tail = item;
    outbox->answered_tail = &item->next;
}

//  Hands the outbox to main: one message per commit however many answers.
static void
s_flush_outbox (s_writer_t *w)
{
    if (!w->outbox)
        return;
    void *handle = zsock_resolve (w->pipe);
    if (zmq_send (handle, "", 0, ZMQ_SNDMORE) < 0
        || zmq_send (handle, &w->outbox, sizeof w->outbox, 0) < 0) {
        cm_error ("cannot hand replies to the main thread: %s", zmq_strerror (zmq_errno ()));
        s_outbox_destroy (&w->outbox);
    }
    w->outbox = NULL;
}

//  Queues one commit's events (an array, taken) for main to publish after
//  that commit's replies; the caller flushes the outbox next (an outbox
//  holding another commit's events is flushed first).
static void
s_queue_events (s_writer_t *w, cm_value_t **events_p)
{
    cm_value_t *events = *events_p;
    if (!events || cm_value_len (events) == 0) {
        cm_value_destroy (events_p);
        return;
    }
    if (w->outbox && w->outbox->events)
        s_flush_outbox (w);
    s_outbox_t *outbox = s_outbox (w);
    if (!outbox) {
        cm_warning ("%zu events dropped: out of memory", cm_value_len (events));
        cm_value_destroy (events_p);
        return;
    }
    outbox->events = events;
    *events_p = NULL;
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
    s_answer (w, item, &reply);
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
//  long-polls that still have time. The long-polls parked meanwhile go
//  along with each chunk: a task it makes claimable is leased to them in
//  the same commit (st_ops_write_batch_claims); those left empty wait on,
//  still first in line.
static void
s_run_batch (s_writer_t *w, s_pending_t *items)
{
    while (items) {
        s_pending_t *chunk[S_BATCH_MAX], *waiting[S_BATCH_MAX];
        cm_envelope_t *requests[S_BATCH_MAX], *replies[S_BATCH_MAX];
        cm_envelope_t *claims[S_BATCH_MAX], *claim_replies[S_BATCH_MAX];
        size_t n = 0, m = 0;
        while (items && n < S_BATCH_MAX) {
            chunk[n] = items;
            requests[n] = items->request;
            items = items->next;
            chunk[n]->next = NULL;
            n++;
        }
        while (w->parked && m < S_BATCH_MAX) {
            waiting[m] = w->parked;
            claims[m] = w->parked->request;
            w->parked = w->parked->next;
            waiting[m]->next = NULL;
            m++;
        }
        if (!w->parked)
            w->parked_tail = &w->parked;
        cm_value_t *events = NULL;
        int64_t started = cm_mono_us ();
        if (w->server->raft)
            st_raft_write_batch (w->server->raft, requests, n, claims, m, replies, claim_replies,
                                 &events);
        else
            st_ops_write_batch_claims (w->server->ops, requests, n, claims, m, cm_now_ms (),
                                       replies, claim_replies, &events);
        cm_debug ("write batch of %zu in %lld us", n, (long long) (cm_mono_us () - started));
        //  Committed: now (and only now) answer, then publish.
        int64_t now = cm_mono_ms ();
        s_pending_t *again = NULL, **again_tail = &again;
        for (size_t i = 0; i < m; i++) {
            s_pending_t *item = waiting[i];
            if (!claim_replies[i]
                || (s_is_empty_claim (claim_replies[i]) && item->deadline > now)) {
                cm_envelope_destroy (&claim_replies[i]);
                *again_tail = item;
                again_tail = &item->next;
                continue;
            }
            s_answer (w, item, &claim_replies[i]);
        }
        if (again) {
            *again_tail = w->parked;
            if (!w->parked)
                w->parked_tail = again_tail;
            w->parked = again;
        }
        for (size_t i = 0; i < n; i++) {
            s_pending_t *item = chunk[i];
            if (item->request->type == CM_MSG_TASK_CLAIM && s_is_empty_claim (replies[i])
                && item->deadline > now) {
                cm_envelope_destroy (&replies[i]);
                s_park (w, item);
                continue;
            }
            s_answer (w, item, &replies[i]);
        }
        s_queue_events (w, &events);
        s_flush_outbox (w);
    }
}

//  Reads one [identity, request] from the pipe into a pending item. Sets
//  terminated on $TERM.
static s_pending_t *
s_receive (s_writer_t *w)
{
    s_identity_t identity;
    cm_envelope_t *request = NULL;
    char command[16];
    int got = s_receive_request (w->pipe, &identity, &request, command, sizeof command);
    if (got <= 0) {
        w->term_received = streq (command, "$TERM");
        if (w->term_received || streq (command, "DRAIN"))
            w->terminated = true;
        return NULL;
    }
    s_pending_t *item = calloc (1, sizeof *item);
    if (!item) {
        cm_envelope_t *reply = cm_envelope_reply_error (request, CM_ENOMEM, NULL);
        s_send_reply (w->pipe, &w->buffer, &identity, &reply);
        cm_envelope_destroy (&request);
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
    st_raft_t *raft = w->server->raft;
    if (raft && !st_raft_is_leader (raft))
        return; //  the leader's upkeep entry reaches every replica
    if ((raft ? st_raft_upkeep (raft, &events)
              : st_ops_cleanup (w->server->ops, cm_now_ms (), &events))
        == 0)
        cm_info ("cleanup done in %lld ms", (long long) (cm_mono_ms () - started));
    s_queue_events (w, &events);
    s_flush_outbox (w);
}

//  The st_ops scheduling state the commits change (replicated: raft's
//  loop thread applies them, so read under the FSM's lock).
static int64_t
s_next_lease_expiry (s_writer_t *w)
{
    if (w->server->fsm)
        st_fsm_lock (w->server->fsm);
    int64_t lease = st_ops_next_lease_expiry (w->server->ops);
    if (w->server->fsm)
        st_fsm_unlock (w->server->fsm);
    return lease;
}

static bool
s_take_tasks_changed (s_writer_t *w)
{
    if (w->server->fsm)
        st_fsm_lock (w->server->fsm);
    bool changed = st_ops_take_tasks_changed (w->server->ops);
    if (w->server->fsm)
        st_fsm_unlock (w->server->fsm);
    return changed;
}

static void
s_writer_actor (zsock_t *pipe, void *args)
{
    s_writer_t w = {.server = args, .pipe = pipe};
    w.parked_tail = &w.parked;
    pthread_setname_np (pthread_self (), "store-writer");
    const st_server_config_t *config = &w.server->config;
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
        int64_t lease = s_next_lease_expiry (&w);
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
            if (w.server->raft && !st_raft_is_leader (w.server->raft)) {
                //  Deposed: the regenerator asks the new leader.
                cm_envelope_t *reply = st_raft_refusal (w.server->raft, parked->request);
                s_answer (&w, parked, &reply);
            }
            else if (parked->deadline <= now)
                s_answer_empty_claim (&w, parked);
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
        s_flush_outbox (&w);
        retry_parked = s_take_tasks_changed (&w) && w.parked;
    }
    //  Shutting down: nobody waits forever on a claim.
    s_pending_t *parked = s_take_parked (&w);
    while (parked) {
        s_pending_t *next = parked->next;
        s_answer_empty_claim (&w, parked);
        parked = next;
    }
    s_flush_outbox (&w);
    //  Main, draining (st_server_destroy), reads every outbox up to
    //  "DRAINED", so none is left in the pipe to leak; then it sends $TERM.
    if (!w.term_received) {
        zstr_send (pipe, "DRAINED");
        char *command;
        while ((command = zstr_recv (pipe))) {
            bool term = streq (command, "$TERM");
            zstr_free (&command);
            if (term)
                break;
        }
    }
    free (w.buffer.data);
}

//  --------------------------------------------------------------------------
//  Main thread

//  One PUSH per endpoint of the comma list config->events_endpoint. -1
//  (logged) for an empty list, too many endpoints or out of memory; an
//  endpoint that does not connect is logged and kept (zmq retries).
static int
s_connect_broadcasters (st_server_t *self, const st_server_config_t *config)
{
    const char *list = config->events_endpoint ? config->events_endpoint : "";
    while (*list) {
        size_t len = strcspn (list, ",");
        if (len > 0) {
            if (self->event_sockets == S_BROADCASTERS_MAX) {
                cm_error ("more than %d broadcaster endpoints", S_BROADCASTERS_MAX);
                return -1;
            }
            zsock_t *push = zsock_new (ZMQ_PUSH);
            if (!push)
                return -1;
            self->events[self->event_sockets++] = push;
            zsock_set_sndhwm (push, S_EVENTS_HWM);
            zsock_set_linger (push, 2000);
            cm_curve_client (config->curve, push, "broadcaster");
            if (zsock_connect (push, "%.*s", (int) len, list))
                cm_error ("cannot connect events to %.*s", (int) len, list);
        }
        list += len + (list[len] == ',');
    }
    if (self->event_sockets == 0) {
        cm_error ("no broadcaster endpoint in \"%s\"", config->events_endpoint);
        return -1;
    }
    return 0;
}

static int
s_start_raft (st_server_t *self, const st_server_config_t *config)
{
    self->fsm = st_fsm_new (self->ops, self->db, config->node_id);
    if (!self->fsm)
        return -1;
    char dir[4200];
    snprintf (dir, sizeof dir, "%s/raft", config->dir);
    st_raft_config_t raft = {.peers = config->peers,
                             .node_id = config->node_id,
                             .dir = dir,
                             .snapshot_entries = config->raft_snapshot_entries,
                             .election_ms = config->raft_election_ms,
                             .join = config->join};
    self->raft = st_raft_new (&raft, self->fsm);
    return self->raft ? 0 : -1;
}

st_server_t *
st_server_new (const st_server_config_t *config)
{
    st_server_t *self = calloc (1, sizeof *self);
    if (!self)
        return NULL;
    self->config = *config;
    //  Replicated, the Raft log is the durable record: LMDB commits
    //  without fsync and replays from its applied index after a crash.
    bool sync = config->sync && !config->peers;
    if (st_db_open (config->dir, config->map_bytes, sync, &self->db)) {
        free (self);
        return NULL;
    }
    self->ops = st_ops_new (self->db, &config->ops);
    if (self->ops && config->peers && s_start_raft (self, config)) {
        st_server_destroy (&self);
        return NULL;
    }
    self->router = zsock_new (ZMQ_ROUTER);
    if (!self->ops || !self->router || s_connect_broadcasters (self, config)) {
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
    if (self->raft)
        self->membership = zactor_new (s_membership_actor, self);
    cm_notice ("store serving on %s, LMDB in %s (%s), %d readers%s", config->endpoint,
               config->dir, sync ? "fsync" : "no fsync", self->reader_count,
               self->raft ? ", replicated by raft" : "");
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
s_forward (zactor_t *actor, const s_identity_t *identity, cm_envelope_t **request)
{
    void *handle = zsock_resolve (zactor_sock (actor));
    if (zmq_send (handle, identity->data, identity->size, ZMQ_DONTWAIT | ZMQ_SNDMORE) < 0)
        return false;
    //  Once the first part is queued the rest of the message always is.
    if (zmq_send (handle, request, sizeof *request, ZMQ_DONTWAIT) < 0)
        return false;
    *request = NULL;
    return true;
}

//  Replicated: the answer of a node that may not run request, or NULL. A
//  follower refuses writes and serves only the reads that say how far it
//  must have applied (st_reads.h); the leader serves everything once its
//  election barrier is applied (st_raft_reads_ready; before, it serves
//  reads as a follower would), and any node answers ping.
static cm_envelope_t *
s_replica_refusal (st_server_t *self, const cm_envelope_t *request)
{
    if (request->type == CM_MSG_CLUSTER_CHANGE)
        return !self->raft ? cm_envelope_reply_error (request, CM_EBADSTATE,
                                                      "this store is not replicated (no "
                                                      "CHATMESH_STORE_PEERS)")
               : st_raft_is_leader (self->raft) ? NULL
                                                : st_raft_refusal (self->raft, request);
    if (!self->raft || request->type == CM_MSG_PING)
        return NULL;
    bool leader = st_raft_is_leader (self->raft);
    if (st_ops_is_write (request->type))
        return leader ? NULL : st_raft_refusal (self->raft, request);
    if (!st_ops_is_read (request->type))
        return NULL;
    char why[160];
    int rc = st_reads_check (st_raft_reads_ready (self->raft), st_raft_applied (self->raft),
                             request, why, sizeof why);
    return rc == CM_ENOTLEADER ? st_raft_refusal (self->raft, request)
           : rc                ? cm_envelope_reply_error (request, rc, why)
                               : NULL;
}

static void
s_handle_request (st_server_t *self, const s_identity_t *identity, const void *body,
                  size_t size)
{
    cm_envelope_t *request = NULL, *reply = NULL;
    char why[160];
    if (cm_envelope_decode_why (body, size, &request, why, sizeof why)) {
        cm_debug ("malformed request: %s", why);
        reply = s_proto_error (body, size, why);
        s_send_reply (self->router, &self->buffer, identity, &reply);
        return;
    }
    zactor_t *target = NULL;
    reply = s_replica_refusal (self, request);
    if (reply)
        ;
    else if (st_ops_is_write (request->type))
        target = self->writer;
    else if (request->type == CM_MSG_CLUSTER_CHANGE)
        target = self->membership; //  s_replica_refusal let it through: raft runs
    else if (st_ops_is_read (request->type)) {
        target = self->readers[self->next_reader];
        self->next_reader = (self->next_reader + 1) % self->reader_count;
    }
    if (reply)
        ;
    else if (!target)
        reply = cm_envelope_reply_error (request, CM_EPROTO, "not a store request");
    else if (!s_forward (target, identity, &request))
        reply = cm_envelope_reply_error (request, CM_EFULL, "store busy, retry");
    s_send_reply (self->router, &self->buffer, identity, &reply);
    cm_envelope_destroy (&request);
}

//  Takes one [identity, ..., body] off the ROUTER and dispatches it. false
//  when nothing is waiting.
static bool
s_take_request (st_server_t *self, void *router)
{
    zmq_msg_t first, body;
    zmq_msg_init (&first);
    if (zmq_msg_recv (&first, router, ZMQ_DONTWAIT) < 0) {
        zmq_msg_close (&first);
        return false;
    }
    //  The body is the last part (a REQ caller puts an empty one between).
    zmq_msg_init (&body);
    bool complete = false;
    for (bool more = zmq_msg_more (&first); more; more = zmq_msg_more (&body)) {
        zmq_msg_close (&body);
        zmq_msg_init (&body);
        complete = zmq_msg_recv (&body, router, 0) >= 0;
        if (!complete)
            break;
    }
    s_identity_t identity = {.size = (unsigned char) zmq_msg_size (&first)};
    if (complete && zmq_msg_size (&first) <= sizeof identity.data) {
        memcpy (identity.data, zmq_msg_data (&first), identity.size);
        s_handle_request (self, &identity, zmq_msg_data (&body), zmq_msg_size (&body));
    }
    zmq_msg_close (&body);
    zmq_msg_close (&first);
    return true;
}

//  Pushes each event {session_id, event, data} as [session_id, envelope
//  {event, data}]. The event map itself becomes the envelope's payload once
//  session_id is taken out (no copy of data), and is encoded into main's
//  buffer and sent from there.
static void
s_publish (st_server_t *self, cm_value_t **events_p)
{
    cm_value_t *events = *events_p;
    for (size_t i = 0; events && i < cm_value_len (events); i++) {
        cm_value_t *event = (cm_value_t *) cm_arr_at (events, i);
        cm_value_t *session = cm_map_take (event, "session_id");
        const char *session_id = session && session->type == CM_T_STR ? session->u.s.ptr : "";
        cm_envelope_t envelope = {.type = CM_MSG_EVENT, .payload = event};
        //  The request id is the event's id (st_events.h), as logged.
        snprintf (envelope.request_id, sizeof envelope.request_id, "%s",
                  cm_map_str_or (event, "id", ""));
        size_t size;
        if (cm_envelope_encode_into (&envelope, &self->buffer.data, &self->buffer.capacity, &size)
            == 0) {
            //  Never block main on a slow or absent broadcaster; its PUSH
            //  queue (S_EVENTS_HWM) covers restarts. Past that, gateways
            //  fill the gap from the other broadcaster or the store's event
            //  log. Both parts go or neither: the HWM is checked on the
            //  first part only.
            for (int b = 0; b < self->event_sockets; b++) {
                void *handle = zsock_resolve (self->events[b]);
                bool sent = zmq_send (handle, session_id, strlen (session_id),
                                      ZMQ_DONTWAIT | ZMQ_SNDMORE)
                                >= 0
                            && zmq_send (handle, self->buffer.data, size, ZMQ_DONTWAIT) >= 0;
                if (!sent)
                    cm_warning ("event dropped: broadcaster %d queue full (session=%s)", b + 1,
                                session_id);
            }
        }
        cm_value_destroy (&session);
    }
    cm_value_destroy (events_p);
}

//  Sends an outbox's replies on the ROUTER, then publishes its events, and
//  frees it.
static void
s_deliver (st_server_t *self, s_outbox_t **outbox_p)
{
    s_outbox_t *outbox = *outbox_p;
    for (s_pending_t *item = outbox->answered; item; item = item->next)
        s_send_reply (self->router, &self->buffer, &item->identity, &item->reply);
    s_publish (self, &outbox->events);
    s_outbox_destroy (outbox_p);
}

//  Takes one message off a worker's pipe: a reader's (or an out-of-memory
//  writer's) [identity, reply], moved onto the ROUTER without copying, or
//  the writer's [empty, outbox], delivered. *command gets a single-part
//  message's text (the writer's "DRAINED") when command is not NULL.
//  false when nothing is waiting.
static bool
s_take_worker_message (st_server_t *self, void *worker, int flags, char *command,
                       size_t command_size)
{
    zmq_msg_t identity, reply;
    zmq_msg_init (&identity);
    if (zmq_msg_recv (&identity, worker, flags) < 0) {
        zmq_msg_close (&identity);
        return false;
    }
    zmq_msg_init (&reply);
    //  A worker sends both parts at once: the second is already there.
    if (!zmq_msg_more (&identity)) {
        size_t size = zmq_msg_size (&identity);
        if (command && command_size > 0) {
            size = size < command_size ? size : command_size - 1;
            memcpy (command, zmq_msg_data (&identity), size);
            command[size] = 0;
        }
    }
    else if (zmq_msg_recv (&reply, worker, 0) < 0)
        ;
    else if (zmq_msg_size (&identity) == 0) {
        s_outbox_t *outbox;
        if (zmq_msg_size (&reply) == sizeof outbox) {
            memcpy (&outbox, zmq_msg_data (&reply), sizeof outbox);
            s_deliver (self, &outbox);
        }
    }
    else if (zmq_msg_send (&identity, zsock_resolve (self->router), ZMQ_SNDMORE) < 0
             || zmq_msg_send (&reply, zsock_resolve (self->router), 0) < 0)
        cm_debug ("reply dropped: caller gone");
    zmq_msg_close (&reply);
    zmq_msg_close (&identity);
    return true;
}

int
st_server_run (st_server_t *self)
{
    //  Workers' pipes first, the ROUTER last: acknowledgements go out
    //  before more work comes in.
    zmq_pollitem_t items[1 + 1 + 1 + S_MAX_READERS];
    int count = 0;
    items[count++] = (zmq_pollitem_t) {zsock_resolve (self->writer), 0, ZMQ_POLLIN, 0};
    if (self->membership)
        items[count++] = (zmq_pollitem_t) {zsock_resolve (self->membership), 0, ZMQ_POLLIN, 0};
    for (int i = 0; i < self->reader_count; i++)
        items[count++] = (zmq_pollitem_t) {zsock_resolve (self->readers[i]), 0, ZMQ_POLLIN, 0};
    void *router = zsock_resolve (self->router);
    items[count++] = (zmq_pollitem_t) {router, 0, ZMQ_POLLIN, 0};
    while (!atomic_load (&self->stop) && !zsys_interrupted) {
        if (zmq_poll (items, count, 250) <= 0)
            continue; //  timeout or signal: check for stop
        //  Everything waiting, not one message per poll (a syscall each),
        //  up to S_DRAIN_MAX per socket so no socket starves the others.
        for (int i = 0; i < count; i++) {
            if (!(items[i].revents & ZMQ_POLLIN))
                continue;
            for (int n = 0; n < S_DRAIN_MAX; n++) {
                bool took = items[i].socket == router
                                ? s_take_request (self, router)
                                : s_take_worker_message (self, items[i].socket, ZMQ_DONTWAIT,
                                                         NULL, 0);
                if (!took)
                    break;
            }
        }
    }
    cm_notice ("store shutting down");
    return 0;
}

void
st_server_destroy (st_server_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    st_server_t *self = *self_p;
    //  The membership thread waiting on a change returns, so it can be joined.
    if (self->raft)
        st_raft_end_change_waits (self->raft);
    //  The writer answers its parked claims and hands main every outbox it
    //  holds, up to "DRAINED"; they go out before the ROUTER closes.
    if (self->writer && zstr_send (self->writer, "DRAIN") == 0) {
        void *pipe = zsock_resolve (zactor_sock (self->writer));
        zsock_set_rcvtimeo (zactor_sock (self->writer), 5000);
        char command[16] = "";
        while (!streq (command, "DRAINED")
               && s_take_worker_message (self, pipe, 0, command, sizeof command))
            ;
    }
    //  Those answers (and nothing new: run has returned) may still sit in
    //  the ROUTER's queues; give them a moment to leave.
    if (self->router)
        zsock_set_linger (self->router, 1000);
    zsock_destroy (&self->router);
    zactor_destroy (&self->writer);
    zactor_destroy (&self->membership);
    for (int i = 0; i < self->reader_count; i++)
        zactor_destroy (&self->readers[i]);
    for (int i = 0; i < self->event_sockets; i++)
        zsock_destroy (&self->events[i]);
    st_raft_destroy (&self->raft);
    st_fsm_destroy (&self->fsm);
    st_ops_destroy (&self->ops);
    st_db_destroy (&self->db);
    free (self->buffer.data);
    free (self);
    *self_p = NULL;
}
