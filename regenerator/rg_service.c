#include "rg_service.h"
#include "cm_error.h"
#include "cm_ids.h"
#include "cm_leader.h"
#include "cm_log.h"
#include "cm_rpc.h"
#include "cm_time.h"

#include <czmq.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define S_BACKOFF_MIN_MS 50
#define S_BACKOFF_MAX_MS 5000
//  How long past its long-poll a claim may take before we give up on it.
#define S_CLAIM_GRACE_MS 2000

struct rg_service {
    rg_service_options_t options;
    char *endpoint;
    char worker_id[CM_ID_MAX * 2];
    rg_backend_t *backend;
    cm_leader_t *leader;    //  the shard's nodes and which one leads (all threads)
    cm_leader_link_t *link; //  the claim loop's, owned by the thread in rg_service_run

    pthread_t *threads;
    int thread_count;
    pthread_mutex_t lock;
    //  Two conditions, so that a queued task wakes one idle worker, not all
    //  CHATMESH_REGEN_CONCURRENCY of them racing for the lock on the way to
    //  the model (and the claim loop is woken only for what it waits on).
    pthread_cond_t queued;  //  workers: a task was queued, or exit asked
    pthread_cond_t freed;   //  claim loop: a slot freed, or stop asked
    rg_task_t **queue;      //  FIFO of claimed tasks no worker took yet
    size_t queue_len, queue_cap;
    int running;            //  tasks being run by workers
    bool workers_exit;

    atomic_bool stop;     //  the claim loop ends
    atomic_bool shutdown; //  running workers fail their tasks retryable
    atomic_uint_fast64_t claimed;
    atomic_uint_fast64_t completed;
    atomic_uint_fast64_t claim_failures;
};

typedef struct {
    cm_leader_link_t *link;
    int timeout_ms;
} s_link_t;

//  A fresh DEALER has no connection for a moment and, being ZMQ_IMMEDIATE,
//  refuses to queue: give the connection a short chance before calling the
//  store down. Each call follows the shard's leader (cm_leader.h).
static int
s_call (void *arg, cm_envelope_t *request, cm_envelope_t **reply)
{
    s_link_t *link = arg;
    int rc = CM_EBACKEND;
    for (int attempt = 0; attempt < 4; attempt++) {
        rc = cm_leader_link_call (link->link, request, link->timeout_ms, link->timeout_ms / 2,
                                  reply);
        if (rc != CM_EBACKEND)
            break;
        zclock_sleep (25 * (attempt + 1));
    }
    return rc;
}

static bool
s_stopping (rg_service_t *self)
{
    return atomic_load (&self->stop) || zsys_interrupted;
}

static void *
s_worker_thread (void *arg)
{
    rg_service_t *self = arg;
    s_link_t link = {cm_leader_link_new (self->leader, self->options.curve, "store"),
                     self->options.call_timeout_ms};
    if (!link.link)
        cm_error ("worker cannot create its store link for %s", self->endpoint);
    while (true) {
        pthread_mutex_lock (&self->lock);
        while (self->queue_len == 0 && !self->workers_exit)
            pthread_cond_wait (&self->queued, &self->lock);
        if (self->queue_len == 0) {
            pthread_mutex_unlock (&self->lock);
            break;
        }
        rg_task_t *task = self->queue[0];
        memmove (self->queue, self->queue + 1, --self->queue_len * sizeof *self->queue);
        self->running++;
        pthread_mutex_unlock (&self->lock);

        rg_outcome_t outcome = RG_OUTCOME_UNSENT;
        if (link.link)
            outcome = rg_worker_run (&self->options.worker, self->backend, task, s_call,
                                     &link, &self->shutdown);
        cm_info ("task %s (attempt %lld): %s", task->task_id, (long long) task->attempt,
                 rg_outcome_name (outcome));
        if (outcome == RG_OUTCOME_COMPLETED)
            atomic_fetch_add (&self->completed, 1);
        rg_task_destroy (&task);

        pthread_mutex_lock (&self->lock);
        self->running--;
        pthread_cond_signal (&self->freed);
        pthread_mutex_unlock (&self->lock);
    }
    cm_leader_link_destroy (&link.link);
    return NULL;
}

static void
s_make_worker_id (char *buffer, size_t size)
{
    char host[64] = "host";
    gethostname (host, sizeof host - 1);
    host[sizeof host - 1] = '\0';
    //  Worker ids travel in a 128-byte field; keep the host part readable.
    for (char *p = host; *p; p++)
        if (*p == '.' || *p == ' ')
            *p = '\0';
    char uuid[CM_UUID_LEN + 1];
    cm_uuid (uuid);
    snprintf (buffer, size, "rg-%.48s-%d-%.8s", host, (int) getpid (), uuid);
}

rg_service_t *
rg_service_new (const rg_service_options_t *options, rg_backend_t **backend_p)
{
    rg_service_t *self = calloc (1, sizeof *self);
    if (!self) {
        rg_backend_destroy (backend_p);
        return NULL;
    }
    self->options = *options;
    if (self->options.concurrency < 1)
        self->options.concurrency = 1;
    if (self->options.claim_wait_ms <= 0)
        self->options.claim_wait_ms = 1000;
    if (self->options.call_timeout_ms <= 0)
        self->options.call_timeout_ms = 5000;
    self->backend = *backend_p;
    *backend_p = NULL;
    s_make_worker_id (self->worker_id, sizeof self->worker_id);
    self->options.worker.worker_id = self->worker_id;
    atomic_init (&self->stop, false);
    atomic_init (&self->shutdown, false);
    atomic_init (&self->claimed, 0);
    atomic_init (&self->completed, 0);
    atomic_init (&self->claim_failures, 0);
    pthread_mutex_init (&self->lock, NULL);
    pthread_cond_init (&self->queued, NULL);
    pthread_cond_init (&self->freed, NULL);
    self->endpoint = strdup (options->store_endpoint);
    //  The regenerator only writes (claims and task calls): every call
    //  goes to the leader.
    self->leader = cm_leader_new (options->store_endpoint, CM_READS_LEADER);
    self->link = cm_leader_link_new (self->leader, options->curve, "store");
    self->threads = calloc ((size_t) self->options.concurrency, sizeof *self->threads);
    if (!self->endpoint || !self->link || !self->threads) {
        cm_error ("cannot connect to the store at %s", options->store_endpoint);
        rg_service_destroy (&self);
        return NULL;
    }
    for (int i = 0; i < self->options.concurrency; i++) {
        if (pthread_create (&self->threads[i], NULL, s_worker_thread, self)) {
            cm_error ("cannot start worker thread %d", i);
            rg_service_destroy (&self);
            return NULL;
        }
        self->thread_count++;
    }
    return self;
}

//  Ends the workers: running tasks fail retryable, queued ones too.
static void
s_stop_workers (rg_service_t *self)
{
    atomic_store (&self->shutdown, true);
    pthread_mutex_lock (&self->lock);
    self->workers_exit = true;
    pthread_cond_broadcast (&self->queued);
    pthread_mutex_unlock (&self->lock);
    for (int i = 0; i < self->thread_count; i++)
        pthread_join (self->threads[i], NULL);
    self->thread_count = 0;
}

void
rg_service_destroy (rg_service_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    rg_service_t *self = *self_p;
    s_stop_workers (self);
    for (size_t i = 0; i < self->queue_len; i++)
        rg_task_destroy (&self->queue[i]);
    free (self->queue);
    free (self->threads);
    cm_leader_link_destroy (&self->link);
    cm_leader_destroy (&self->leader);
    rg_backend_destroy (&self->backend);
    pthread_cond_destroy (&self->queued);
    pthread_cond_destroy (&self->freed);
    pthread_mutex_destroy (&self->lock);
    free (self->endpoint);
    free (self);
    *self_p = NULL;
}

const char *
rg_service_worker_id (const rg_service_t *self)
{
    return self->worker_id;
}

void
rg_service_stop (rg_service_t *self)
{
    atomic_store (&self->stop, true);
    pthread_mutex_lock (&self->lock);
    pthread_cond_broadcast (&self->freed);
    pthread_mutex_unlock (&self->lock);
}

uint64_t
rg_service_tasks_claimed (const rg_service_t *self)
{
    return atomic_load (&((rg_service_t *) self)->claimed);
}

uint64_t
rg_service_tasks_completed (const rg_service_t *self)
{
    return atomic_load (&((rg_service_t *) self)->completed);
}

uint64_t
rg_service_claim_failures (const rg_service_t *self)
{
    return atomic_load (&((rg_service_t *) self)->claim_failures);
}

static void
s_enqueue (rg_service_t *self, const cm_value_t *tasks)
{
    size_t count = tasks && tasks->type == CM_T_ARR ? cm_value_len (tasks) : 0;
    for (size_t i = 0; i < count; i++) {
        rg_task_t *task = NULL;
        int rc = rg_task_parse (cm_arr_at (tasks, i), &task);
        if (rc) {
            cm_warning ("claimed task ignored: %s", cm_strerror (rc));
            continue;
        }
        atomic_fetch_add (&self->claimed, 1);
        cm_debug ("claimed task %s (session=%s)", task->task_id, task->session_id);
        pthread_mutex_lock (&self->lock);
        if (self->queue_len == self->queue_cap) {
            size_t cap = self->queue_cap ? self->queue_cap * 2 : 16;
            rg_task_t **queue = realloc (self->queue, cap * sizeof *queue);
            if (!queue) {
                pthread_mutex_unlock (&self->lock);
                cm_error ("task %s dropped: out of memory", task->task_id);
                rg_task_destroy (&task);
                continue;
            }
            self->queue = queue;
            self->queue_cap = cap;
        }
        self->queue[self->queue_len++] = task;
        pthread_cond_signal (&self->queued);
        pthread_mutex_unlock (&self->lock);
    }
}

//  One task_claim long-poll, to the node last seen leading. Unlike
//  cm_call, a late reply to an earlier claim that timed out is not thrown
//  away: the store leased those tasks to us, so we run them rather than
//  leave them to wait out their lease. The answer (a "not leader" naming
//  another node, silence, no connection) moves the remembered leader
//  (cm_leader_observe): the claim loop's next claim goes there.
static int
s_claim (rg_service_t *self, int max, char *why, size_t why_size)
{
    cm_envelope_t *request = cm_envelope_new (CM_MSG_TASK_CLAIM, NULL);
    if (!request)
        return CM_ENOMEM;
    cm_request_id (request->request_id, sizeof request->request_id);
    cm_map_set_str (request->payload, "worker", self->worker_id);
    cm_map_set_int (request->payload, "max", max);
    cm_map_set_int (request->payload, "wait_ms", self->options.claim_wait_ms);
    int node = cm_leader_current (self->leader);
    zsock_t *dealer = cm_leader_link_attached (self->link, node, CM_LEADER_CONNECT_WAIT_MS);
    zframe_t *frame = NULL;
    int rc = cm_frame_encode (request, &frame);
    if (rc == 0 && (!dealer || zframe_send (&frame, dealer, ZFRAME_DONTWAIT))) {
        zframe_destroy (&frame);
        rc = CM_EBACKEND;
        snprintf (why, why_size, "not connected to %s", cm_leader_endpoint (self->leader, node));
        cm_leader_observe (self->leader, node, rc, NULL);
    }
    int64_t deadline = cm_mono_ms () + self->options.claim_wait_ms + S_CLAIM_GRACE_MS;
    bool stop_seen = false;
    void *handle = rc == 0 ? zsock_resolve (dealer) : NULL;
    while (rc == 0) {
        //  Stopping: the answer (tasks to hand back) is worth a short wait,
        //  not the whole grace of a store that may be going down too.
        if (!stop_seen && s_stopping (self)) {
            stop_seen = true;
            int64_t soon = cm_mono_ms () + 500;
            deadline = soon < deadline ? soon : deadline;
        }
        int64_t left = deadline - cm_mono_ms ();
        if (left <= 0) {
            rc = CM_ETIMEOUT;
            snprintf (why, why_size, "no answer from %s within %d ms",
                      cm_leader_endpoint (self->leader, node),
                      self->options.claim_wait_ms + S_CLAIM_GRACE_MS);
            cm_leader_observe (self->leader, node, rc, NULL);
            break;
        }
        zmq_pollitem_t item = {handle, 0, ZMQ_POLLIN, 0};
        //  Wake up now and then to look at the stop flag.
        if (zmq_poll (&item, 1, (long) (left < 100 ? left : 100)) <= 0)
            continue; //  EINTR or nothing yet: the deadline decides
        zmsg_t *msg = zmsg_recv (dealer);
        cm_envelope_t *reply = NULL;
        int decoded = msg ? cm_frame_decode (zmsg_last (msg), &reply) : CM_EPROTO;
        zmsg_destroy (&msg);
        if (decoded)
            continue; //  garbage is no answer; wait for the real one
        bool ours = strcmp (reply->request_id, request->request_id) == 0;
        if (reply->type == CM_MSG_OK)
            s_enqueue (self, cm_map_get (reply->payload, "tasks"));
        else if (ours) {
            rc = (int) cm_map_int (reply->payload, "code", CM_EPROTO);
            if (rc >= 0)
                rc = CM_EPROTO;
            snprintf (why, why_size, "%s", cm_map_str_or (reply->payload, "message", "?"));
        }
        if (ours)
            cm_leader_observe (self->leader, node, rc, reply);
        cm_envelope_destroy (&reply);
        if (ours)
            break;
    }
    cm_envelope_destroy (&request);
    return rc;
}

//  Sleeps ms in slices, so a signal or rg_service_stop ends it early.
static void
s_nap (rg_service_t *self, int64_t ms)
{
    int64_t until = cm_mono_ms () + ms;
    while (!s_stopping (self) && cm_mono_ms () < until)
        zclock_sleep (50);
}

int
rg_service_run (rg_service_t *self)
{
    int64_t backoff = S_BACKOFF_MIN_MS;
    int store_state = -1; //  unknown, 0 down, 1 up: log only on changes
    int failures = 0;
    while (!s_stopping (self)) {
        pthread_mutex_lock (&self->lock);
        int free_slots = self->options.concurrency - self->running - (int) self->queue_len;
        if (free_slots <= 0) {
            //  Full: wait for a slot instead of polling the store.
            struct timespec until;
            clock_gettime (CLOCK_REALTIME, &until);
            until.tv_nsec += 200 * 1000000L;
            if (until.tv_nsec >= 1000000000L) {
                until.tv_sec++;
                until.tv_nsec -= 1000000000L;
            }
            pthread_cond_timedwait (&self->freed, &self->lock, &until);
            pthread_mutex_unlock (&self->lock);
            continue;
        }
        pthread_mutex_unlock (&self->lock);
        char why[256] = "";
        int rc = s_claim (self, free_slots, why, sizeof why);
        if (rc == 0) {
            if (store_state != 1)
                cm_notice ("store reachable at %s, claiming as %s", self->endpoint,
                           self->worker_id);
            store_state = 1;
            failures = 0;
            backoff = S_BACKOFF_MIN_MS;
            continue;
        }
        if (rc == CM_ENOTLEADER) {
            //  Not a store down: the next claim goes to the node named (or,
            //  in an election, the next one, after a pause).
            cm_info ("store: not the leader (%s); claiming at %s next", why,
                     cm_leader_endpoint (self->leader, cm_leader_current (self->leader)));
            s_nap (self, CM_LEADER_ELECTION_WAIT_MS);
            continue;
        }
        atomic_fetch_add (&self->claim_failures, 1);
        //  A fresh connection needs a moment (ZMQ_IMMEDIATE refuses to queue
        //  until then): call the store down after a few failures in a row.
        if (store_state != 0 && ++failures >= 3) {
            cm_warning ("store at %s unavailable (%s: %s); retrying with backoff",
                        self->endpoint, cm_strerror (rc), why);
            store_state = 0;
        }
        s_nap (self, backoff);
        backoff = backoff * 2 > S_BACKOFF_MAX_MS ? S_BACKOFF_MAX_MS : backoff * 2;
    }
    pthread_mutex_lock (&self->lock);
    int running = self->running + (int) self->queue_len;
    pthread_mutex_unlock (&self->lock);
    cm_notice ("stopping: %d task(s) to hand back", running);
    s_stop_workers (self);
    cm_notice ("stopped: %llu claimed, %llu completed",
               (unsigned long long) rg_service_tasks_claimed (self),
               (unsigned long long) rg_service_tasks_completed (self));
    return 0;
}
