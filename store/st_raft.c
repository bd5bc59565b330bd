/*  st_raft.c: the store's raft node on its own libuv loop (st_raft.h).  */
#include "st_raft.h"

#include "cm_error.h"
#include "cm_log.h"
#include "cm_time.h"
#include "st_entry.h"
#include "st_reads.h"

#include <errno.h>
#include <pthread.h>
#include <raft.h>
#include <raft/uv.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <uv.h>

#define S_TICK_MS 10
#define S_SNAPSHOT_ENTRIES 4096
#define S_HEARTBEAT_DIVISOR 10 //  heartbeat = election timeout / 10

//  The one proposal in flight between the writer and the loop.
typedef enum { S_IDLE, S_QUEUED, S_SUBMITTED, S_DONE } s_slot_state_t;

#define S_MEMBERS_MAX 16 //  configuration entries ping shows

typedef struct {
    unsigned long long id;
    int role;
} s_member_t;

struct st_raft {
    st_peers_t peers;
    uint64_t node_id;
    char dir[4096];
    st_fsm_t *st_fsm;
    uv_loop_t loop;
    uv_async_t wake;
    uv_timer_t tick;
    struct raft_uv_transport transport;
    struct raft_io io;
    struct raft_fsm fsm;
    struct raft raft;
    struct raft_apply apply_req;
    //  A new leader's barrier: reads wait until every entry committed
    //  before its term is applied (s_publish_state).
    struct raft_barrier barrier_req;
    bool barrier_in_flight;
    unsigned long long barrier_term; //  the term its barrier was sent in
    atomic_ullong reads_term;        //  the term whose barrier is applied
    bool loop_ready, io_ready, transport_ready, raft_ready, thread_started;
    atomic_bool loop_done; //  the loop thread returned
    pthread_t thread;
    atomic_bool stopping;
    //  What the loop publishes for every thread.
    atomic_int state;
    atomic_ullong leader;
    atomic_ullong term;
    atomic_ullong applied;
    //  The proposal slot (mutex + cond between the writer and the loop).
    pthread_mutex_t lock;
    pthread_cond_t done;
    s_slot_state_t slot;
    char *slot_data;
    size_t slot_size;
    unsigned char slot_seed[ST_DET_SEED_BYTES];
    int slot_rc;
    st_fsm_result_t *slot_result;
    //  The one membership change (st_raft_change), under lock: a caller
    //  queues it, the loop runs it and signals change_done.
    pthread_cond_t change_done;
    s_slot_state_t change_slot;
    bool change_abandoned; //  its caller timed out: the loop clears the slot
    bool change_waits_ended; //  the store is stopping: no caller waits
    st_raft_change_op_t change_op;
    uint64_t change_id;
    char change_address[ST_PEERS_ADDRESS_MAX + 1];
    int change_rc;
    char change_why[160];
    struct raft_change change_req;
    //  The configuration as the loop last saw it, under lock.
    s_member_t members[S_MEMBERS_MAX];
    unsigned member_count;
};

//  --------------------------------------------------------------------------
//  Loop thread

static void
s_barrier_done (struct raft_barrier *req, int status)
{
    st_raft_t *self = req->data;
    self->barrier_in_flight = false;
    if (status == 0)
        atomic_store (&self->reads_term, self->barrier_term);
    else
        self->barrier_term = 0; //  lost the lead meanwhile: again if it comes back
}

//  A node just elected may not have applied every entry its predecessor
//  committed (and acknowledged); a barrier entry of its own term, once
//  applied, says it has. Until then it serves no read as the leader.
static void
s_barrier_if_new_leader (st_raft_t *self)
{
    unsigned long long term = (unsigned long long) self->raft.current_term;
    if (raft_state (&self->raft) != RAFT_LEADER || self->barrier_in_flight
        || self->barrier_term == term || atomic_load (&self->stopping))
        return;
    self->barrier_req.data = self;
    if (raft_barrier (&self->raft, &self->barrier_req, s_barrier_done) == 0) {
        self->barrier_in_flight = true;
        self->barrier_term = term;
    }
}

static void
s_publish_state (st_raft_t *self)
{
    raft_id leader = 0;
    const char *address = NULL;
    raft_leader (&self->raft, &leader, &address);
    atomic_store (&self->leader, (unsigned long long) leader);
    atomic_store (&self->state, raft_state (&self->raft));
    atomic_store (&self->term, (unsigned long long) self->raft.current_term);
    atomic_store (&self->applied, (unsigned long long) st_fsm_applied (self->st_fsm));
    pthread_mutex_lock (&self->lock);
    const struct raft_configuration *conf = &self->raft.configuration;
    self->member_count = conf->n < S_MEMBERS_MAX ? conf->n : S_MEMBERS_MAX;
    for (unsigned i = 0; i < self->member_count; i++)
        self->members[i] = (s_member_t) {conf->servers[i].id, conf->servers[i].role};
    pthread_mutex_unlock (&self->lock);
    s_barrier_if_new_leader (self);
}

static void
s_finish (st_raft_t *self, int rc, st_fsm_result_t *result)
{
    pthread_mutex_lock (&self->lock);
    self->slot = S_DONE;
    self->slot_rc = rc;
    self->slot_result = result;
    pthread_cond_signal (&self->done);
    pthread_mutex_unlock (&self->lock);
}

static void
s_apply_done (struct raft_apply *req, int status, void *result)
{
    st_raft_t *self = req->data;
    if (status != 0)
        st_fsm_await_none (self->st_fsm);
    s_publish_state (self);
    s_finish (self, status == 0             ? 0
                    : status == RAFT_NOTLEADER ? CM_ENOTLEADER
                                               : CM_ETIMEOUT,
              status == 0 ? result : NULL);
}

static void
s_submit (st_raft_t *self)
{
    pthread_mutex_lock (&self->lock);
    bool queued = self->slot == S_QUEUED;
    if (queued)
        self->slot = S_SUBMITTED;
    pthread_mutex_unlock (&self->lock);
    if (!queued)
        return;
    struct raft_buffer buffer = {raft_malloc (self->slot_size), self->slot_size};
    if (!buffer.base) {
        s_finish (self, CM_ENOMEM, NULL);
        return;
    }
    memcpy (buffer.base, self->slot_data, self->slot_size);
    st_fsm_await (self->st_fsm, self->slot_seed);
    self->apply_req.data = self;
    int rv = raft_apply (&self->raft, &self->apply_req, &buffer, 1, s_apply_done);
    if (rv != 0) {
        raft_free (buffer.base);
        st_fsm_await_none (self->st_fsm);
        //  Not appended: the request was not executed.
        s_finish (self, rv == RAFT_NOTLEADER ? CM_ENOTLEADER : CM_EDB, NULL);
    }
}

static void
s_change_finish (st_raft_t *self, int rc, const char *why)
{
    pthread_mutex_lock (&self->lock);
    if (self->change_abandoned) {
        cm_notice ("raft: the membership change of node %llu the caller gave up on ended: %s",
                   (unsigned long long) self->change_id, rc ? why : "done");
        self->change_slot = S_IDLE;
        self->change_abandoned = false;
    }
    else {
        self->change_slot = S_DONE;
        self->change_rc = rc;
        snprintf (self->change_why, sizeof self->change_why, "%s", why);
        pthread_cond_signal (&self->change_done);
    }
    pthread_mutex_unlock (&self->lock);
}

static void
s_change_failed (st_raft_t *self, const char *step, int status)
{
    char why[160];
    snprintf (why, sizeof why, "%s of node %llu failed: %s", step,
              (unsigned long long) self->change_id, raft_strerror (status));
    s_change_finish (self, status == RAFT_NOTLEADER ? CM_ENOTLEADER : CM_EBACKEND, why);
}

static void
s_assign_done (struct raft_change *req, int status)
{
    st_raft_t *self = req->data;
    s_publish_state (self);
    if (status)
        s_change_failed (self, "promoting to voter", status);
    else
        s_change_finish (self, 0, "");
}

static void
s_add_done (struct raft_change *req, int status)
{
    st_raft_t *self = req->data;
    s_publish_state (self);
    if (status) {
        s_change_failed (self, "adding", status);
        return;
    }
    //  req is raft's no more once its callback runs: reused for the step.
    int rv = raft_assign (&self->raft, &self->change_req, self->change_id, RAFT_VOTER,
                          s_assign_done);
    if (rv)
        s_change_failed (self, "promoting to voter (the node stays a spare: remove it)", rv);
}

static void
s_remove_done (struct raft_change *req, int status)
{
    st_raft_t *self = req->data;
    s_publish_state (self);
    if (status)
        s_change_failed (self, "removing", status);
    else
        s_change_finish (self, 0, "");
}

//  Checks the queued change against the configuration and starts it.
static void
s_change_submit (st_raft_t *self)
{
    pthread_mutex_lock (&self->lock);
    bool queued = self->change_slot == S_QUEUED;
    if (queued)
        self->change_slot = S_SUBMITTED;
    pthread_mutex_unlock (&self->lock);
    if (!queued)
        return;
    const struct raft_configuration *conf = &self->raft.configuration;
    const struct raft_server *found = NULL;
    unsigned voters = 0;
    for (unsigned i = 0; i < conf->n; i++) {
        if (conf->servers[i].id == self->change_id)
            found = &conf->servers[i];
        voters += conf->servers[i].role == RAFT_VOTER;
    }
    char why[160];
    unsigned long long id = (unsigned long long) self->change_id;
    if (raft_state (&self->raft) != RAFT_LEADER) {
        st_raft_hint (self, why, sizeof why);
        s_change_finish (self, CM_ENOTLEADER, why);
        return;
    }
    if (self->change_op == ST_RAFT_ADD && found) {
        snprintf (why, sizeof why, "node %llu is already a member (%s)", id,
                  found->role == RAFT_VOTER ? "voter" : "not a voter: remove it first");
        s_change_finish (self, CM_ECONFLICT, why);
        return;
    }
    if (self->change_op == ST_RAFT_REMOVE && !found) {
        snprintf (why, sizeof why, "node %llu is not a member", id);
        s_change_finish (self, CM_ENOTFOUND, why);
        return;
    }
    if (self->change_op == ST_RAFT_REMOVE && found->role == RAFT_VOTER && voters == 1) {
        snprintf (why, sizeof why, "node %llu is the last voter", id);
        s_change_finish (self, CM_EBADSTATE, why);
        return;
    }
    self->change_req.data = self;
    int rv = self->change_op == ST_RAFT_ADD
                 ? raft_add (&self->raft, &self->change_req, self->change_id,
                             self->change_address, s_add_done)
                 : raft_remove (&self->raft, &self->change_req, self->change_id, s_remove_done);
    if (rv == 0)
        return;
    if (rv == RAFT_CANTCHANGE)
        snprintf (why, sizeof why, "a configuration change is already running in raft");
    else if (rv == RAFT_DUPLICATEID || rv == RAFT_DUPLICATEADDRESS)
        snprintf (why, sizeof why, "%s is already a member's",
                  rv == RAFT_DUPLICATEID ? "the id" : "the raft address");
    else
        snprintf (why, sizeof why, "raft refused it: %s", raft_strerror (rv));
    s_change_finish (self,
                     rv == RAFT_CANTCHANGE || rv == RAFT_DUPLICATEID || rv == RAFT_DUPLICATEADDRESS
                         ? CM_ECONFLICT
                     : rv == RAFT_NOTLEADER ? CM_ENOTLEADER
                                            : CM_EBACKEND,
                     why);
}

static void
s_after_close (uv_handle_t *handle)
{
    (void) handle;
}

static void
s_raft_closed (struct raft *raft)
{
    st_raft_t *self = raft->data;
    raft_uv_close (&self->io);
    raft_uv_tcp_close (&self->transport);
    uv_close ((uv_handle_t *) &self->wake, s_after_close);
    uv_close ((uv_handle_t *) &self->tick, s_after_close);
}

static void
s_wake (uv_async_t *handle)
{
    st_raft_t *self = handle->data;
    if (atomic_load (&self->stopping)) {
        if (self->raft_ready) {
            self->raft_ready = false;
            raft_close (&self->raft, s_raft_closed);
        }
        return;
    }
    s_submit (self);
    s_change_submit (self);
}

static void
s_tick (uv_timer_t *handle)
{
    s_publish_state (handle->data);
}

static void *
s_loop_thread (void *arg)
{
    st_raft_t *self = arg;
    pthread_setname_np (pthread_self (), "store-raft");
    uv_run (&self->loop, UV_RUN_DEFAULT);
    atomic_store (&self->loop_done, true);
    return NULL;
}

//  --------------------------------------------------------------------------
//  The FSM callbacks (loop thread)

static int
s_fsm_apply (struct raft_fsm *fsm, const struct raft_buffer *buf, void **result)
{
    st_raft_t *self = fsm->data;
    //  raft 0.15 applies entries in index order and sets last_applied
    //  right after each (replicationApply): this entry is the next index.
    uint64_t index = (uint64_t) raft_last_applied (&self->raft) + 1;
    st_fsm_result_t *out = NULL;
    int rc = st_fsm_apply (self->st_fsm, index, buf->base, buf->len, &out);
    *result = out;
    if (rc) {
        cm_error ("stopping: this node cannot apply committed raft entry %llu (%s); restart it "
                  "once the cause is fixed and it replays from its applied index",
                  (unsigned long long) index, cm_strerror (rc));
        raise (SIGTERM);
        return RAFT_IOERR;
    }
    atomic_store (&self->applied, (unsigned long long) index);
    return 0;
}

static int
s_fsm_snapshot (struct raft_fsm *fsm, struct raft_buffer *bufs[], unsigned *n_bufs)
{
    st_raft_t *self = fsm->data;
    void *data;
    size_t size;
    if (st_fsm_snapshot (self->st_fsm, &data, &size))
        return RAFT_IOERR;
    //  raft frees what it is given with raft_free.
    *bufs = raft_malloc (sizeof **bufs);
    void *copy = raft_malloc (size);
    if (!*bufs || !copy) {
        raft_free (*bufs);
        raft_free (copy);
        free (data);
        return RAFT_NOMEM;
    }
    memcpy (copy, data, size);
    free (data);
    (*bufs)[0] = (struct raft_buffer) {copy, size};
    *n_bufs = 1;
    return 0;
}

static int
s_fsm_restore (struct raft_fsm *fsm, struct raft_buffer *buf)
{
    st_raft_t *self = fsm->data;
    if (st_fsm_restore (self->st_fsm, buf->base, buf->len))
        return RAFT_IOERR;
    raft_free (buf->base); //  ours once restored (raft's contract)
    atomic_store (&self->applied, (unsigned long long) st_fsm_applied (self->st_fsm));
    return 0;
}

//  --------------------------------------------------------------------------
//  Lifecycle

static int
s_start (st_raft_t *self, const st_raft_config_t *config)
{
    const st_peer_t *me = st_peers_find (&self->peers, self->node_id);
    if (!me) {
        cm_error ("node id %llu is not one of CHATMESH_STORE_PEERS",
                  (unsigned long long) self->node_id);
        return -1;
    }
    //  raft's transport writes to peers that may have died: that must be
    //  an EPIPE for it to handle, not a signal that ends the store.
    signal (SIGPIPE, SIG_IGN);
    if (mkdir (self->dir, 0700) && errno != EEXIST) {
        cm_error ("cannot create %s: %s", self->dir, strerror (errno));
        return -1;
    }
    if (uv_loop_init (&self->loop))
        return -1;
    self->loop_ready = true;
    uv_async_init (&self->loop, &self->wake, s_wake);
    self->wake.data = self;
    uv_timer_init (&self->loop, &self->tick);
    self->tick.data = self;
    int rv = raft_uv_tcp_init (&self->transport, &self->loop);
    if (rv) {
        cm_error ("raft transport: %s", raft_strerror (rv));
        return -1;
    }
    self->transport_ready = true;
    rv = raft_uv_init (&self->io, &self->loop, self->dir, &self->transport);
    if (rv) {
        cm_error ("raft storage in %s: %s", self->dir, raft_strerror (rv));
        return -1;
    }
    self->io_ready = true;
    self->fsm = (struct raft_fsm) {.version = 1, .data = self, .apply = s_fsm_apply,
                                   .snapshot = s_fsm_snapshot, .restore = s_fsm_restore};
    rv = raft_init (&self->raft, &self->io, &self->fsm, self->node_id, me->raft_address);
    if (rv) {
        cm_error ("raft init: %s", raft_strerror (rv));
        return -1;
    }
    self->raft.data = self;
    self->raft_ready = true;
    unsigned election = config->election_ms ? config->election_ms : 1000;
    raft_set_election_timeout (&self->raft, election);
    raft_set_heartbeat_timeout (&self->raft, election / S_HEARTBEAT_DIVISOR);
    unsigned entries = config->snapshot_entries ? config->snapshot_entries : S_SNAPSHOT_ENTRIES;
    raft_set_snapshot_threshold (&self->raft, entries);
    raft_set_snapshot_trailing (&self->raft, entries);
    raft_set_pre_vote (&self->raft, true);

    struct raft_configuration conf;
    raft_configuration_init (&conf);
    for (size_t i = 0; i < self->peers.count; i++)
        rv = rv ? rv
                : raft_configuration_add (&conf, self->peers.peers[i].id,
                                          self->peers.peers[i].raft_address, RAFT_VOTER);
    if (rv == 0) {
        rv = config->join ? RAFT_CANTBOOTSTRAP : raft_bootstrap (&self->raft, &conf);
        if (rv == 0)
            cm_notice ("raft: bootstrapped a new cluster of %zu voters in %s", self->peers.count,
                       self->dir);
        else if (rv == RAFT_CANTBOOTSTRAP)
            rv = 0; //  not pristine: its log already holds the configuration
    }
    raft_configuration_close (&conf);
    if (rv) {
        cm_error ("raft bootstrap in %s: %s", self->dir, raft_strerror (rv));
        return -1;
    }
    rv = raft_start (&self->raft);
    if (rv) {
        cm_error ("cannot start raft on %s: %s%s%s (the raft address must be this host's and "
                  "free; the raft dir %s readable)",
                  me->raft_address, raft_strerror (rv), *raft_errmsg (&self->raft) ? ": " : "",
                  raft_errmsg (&self->raft), self->dir);
        return -1;
    }
    uv_timer_start (&self->tick, s_tick, S_TICK_MS, S_TICK_MS);
    s_publish_state (self);
    cm_notice ("raft node %llu on %s, LMDB at applied index %llu", (unsigned long long) self->node_id,
               me->raft_address, (unsigned long long) st_fsm_applied (self->st_fsm));
    return 0;
}

st_raft_t *
st_raft_new (const st_raft_config_t *config, st_fsm_t *fsm)
{
    st_raft_t *self = calloc (1, sizeof *self);
    if (!self)
        return NULL;
    self->peers = *config->peers;
    self->node_id = config->node_id;
    self->st_fsm = fsm;
    snprintf (self->dir, sizeof self->dir, "%s", config->dir);
    pthread_mutex_init (&self->lock, NULL);
    pthread_cond_init (&self->done, NULL);
    pthread_cond_init (&self->change_done, NULL);
    if (s_start (self, config) || pthread_create (&self->thread, NULL, s_loop_thread, self)) {
        st_raft_destroy (&self);
        return NULL;
    }
    self->thread_started = true;
    return self;
}

void
st_raft_destroy (st_raft_t **self_p)
{
    st_raft_t *self = *self_p;
    if (!self)
        return;
    atomic_store (&self->stopping, true);
    if (self->thread_started) {
        uv_async_send (&self->wake);
        pthread_join (self->thread, NULL);
    }
    else if (self->loop_ready) {
        //  Failed before the thread ran: close what was opened.
        if (self->raft_ready) {
            self->raft_ready = false;
            raft_close (&self->raft, s_raft_closed);
        }
        else {
            if (self->io_ready)
                raft_uv_close (&self->io);
            if (self->transport_ready)
                raft_uv_tcp_close (&self->transport);
            uv_close ((uv_handle_t *) &self->wake, s_after_close);
            uv_close ((uv_handle_t *) &self->tick, s_after_close);
        }
        uv_run (&self->loop, UV_RUN_DEFAULT);
    }
    if (self->loop_ready)
        uv_loop_close (&self->loop);
    st_fsm_result_destroy (&self->slot_result);
    pthread_cond_destroy (&self->done);
    pthread_cond_destroy (&self->change_done);
    pthread_mutex_destroy (&self->lock);
    free (self);
    *self_p = NULL;
}

//  --------------------------------------------------------------------------
//  Writer thread

//  Proposes one encoded entry and waits for its outcome. 0 with *result
//  (may be NULL only on a bug), or CM_ENOTLEADER / CM_ETIMEOUT / CM_EDB /
//  CM_ENOMEM.
static int
s_propose (st_raft_t *self, char *data, size_t size, const unsigned char *seed,
           st_fsm_result_t **result)
{
    *result = NULL;
    pthread_mutex_lock (&self->lock);
    self->slot = S_QUEUED;
    self->slot_data = data;
    self->slot_size = size;
    memcpy (self->slot_seed, seed, ST_DET_SEED_BYTES);
    pthread_mutex_unlock (&self->lock);
    if (atomic_load (&self->stopping) || uv_async_send (&self->wake)) {
        pthread_mutex_lock (&self->lock);
        self->slot = S_IDLE;
        pthread_mutex_unlock (&self->lock);
        return CM_ENOTLEADER;
    }
    pthread_mutex_lock (&self->lock);
    while (self->slot != S_DONE) {
        //  The loop answers every submitted proposal (commit, failure or
        //  raft_close cancelling it); should the loop have ended first,
        //  the proposal is given up here.
        struct timespec until;
        clock_gettime (CLOCK_REALTIME, &until);
        until.tv_sec += 1;
        pthread_cond_timedwait (&self->done, &self->lock, &until);
        if (self->slot != S_DONE && atomic_load (&self->loop_done)) {
            self->slot_rc = self->slot == S_QUEUED ? CM_ENOTLEADER : CM_ETIMEOUT;
            self->slot = S_DONE;
        }
    }
    int rc = self->slot_rc;
    *result = self->slot_result;
    self->slot_result = NULL;
    self->slot = S_IDLE;
    pthread_mutex_unlock (&self->lock);
    if (rc == 0 && !*result)
        rc = CM_EDB; //  committed but the FSM gave nothing back: never expected
    return rc;
}

static const char *
s_unknown_text (void)
{
    return "leadership changed before the write was known committed: it may or may not have "
           "been applied; retry an idempotent call";
}

void
st_raft_write_batch (st_raft_t *self, cm_envelope_t *const *requests, size_t n,
                     cm_envelope_t *const *claims, size_t m, cm_envelope_t **replies,
                     cm_envelope_t **claim_replies, cm_value_t **events)
{
    *events = NULL;
    for (size_t i = 0; i < m; i++)
        claim_replies[i] = NULL;
    st_entry_t entry = {.kind = ST_ENTRY_BATCH, .now_ms = cm_now_ms (), .origin = self->node_id,
                        .requests = (cm_envelope_t **) requests, .n = n,
                        .claims = (cm_envelope_t **) claims, .m = m};
    char *data = NULL;
    size_t size = 0;
    int rc = st_det_seed_new (entry.seed);
    if (rc == 0)
        rc = st_entry_encode (&entry, &data, &size);
    st_fsm_result_t *result = NULL;
    if (rc == 0)
        rc = s_propose (self, data, size, entry.seed, &result);
    free (data);
    if (rc == 0) {
        for (size_t i = 0; i < n; i++) {
            replies[i] = result->replies[i];
            result->replies[i] = NULL;
            st_reads_stamp (replies[i], result->index);
        }
        for (size_t i = 0; i < m; i++) {
            claim_replies[i] = result->claim_replies[i];
            result->claim_replies[i] = NULL;
            st_reads_stamp (claim_replies[i], result->index);
        }
        *events = result->events;
        result->events = NULL;
        st_fsm_result_destroy (&result);
        return;
    }
    *events = cm_arr_new ();
    for (size_t i = 0; i < n; i++)
        replies[i] = rc == CM_ENOTLEADER ? st_raft_refusal (self, requests[i])
                     : rc == CM_ETIMEOUT ? cm_envelope_reply_error (requests[i], rc, s_unknown_text ())
                                         : cm_envelope_reply_error (requests[i], rc, NULL);
}

int
st_raft_upkeep (st_raft_t *self, cm_value_t **events)
{
    *events = NULL;
    st_entry_t entry = {.kind = ST_ENTRY_UPKEEP, .now_ms = cm_now_ms (), .origin = self->node_id};
    char *data = NULL;
    size_t size = 0;
    int rc = st_det_seed_new (entry.seed);
    if (rc == 0)
        rc = st_entry_encode (&entry, &data, &size);
    st_fsm_result_t *result = NULL;
    if (rc == 0)
        rc = s_propose (self, data, size, entry.seed, &result);
    free (data);
    if (rc == 0) {
        *events = result->events;
        result->events = NULL;
        rc = result->rc;
        st_fsm_result_destroy (&result);
    }
    return rc;
}

//  --------------------------------------------------------------------------
//  Any thread

bool
st_raft_is_leader (st_raft_t *self)
{
    return atomic_load (&self->state) == RAFT_LEADER;
}

bool
st_raft_reads_ready (st_raft_t *self)
{
    return atomic_load (&self->state) == RAFT_LEADER
           && atomic_load (&self->reads_term) == atomic_load (&self->term);
}

uint64_t
st_raft_applied (st_raft_t *self)
{
    return (uint64_t) atomic_load (&self->applied);
}

void
st_raft_hint (st_raft_t *self, char *buffer, size_t size)
{
    const st_peer_t *leader = st_peers_find (&self->peers, atomic_load (&self->leader));
    if (leader && leader->id != self->node_id)
        snprintf (buffer, size, "leader is %s", leader->endpoint);
    else
        snprintf (buffer, size, "leader unknown");
}

cm_envelope_t *
st_raft_refusal (st_raft_t *self, const cm_envelope_t *request)
{
    char hint[CM_ENDPOINT_MAX + 16];
    st_raft_hint (self, hint, sizeof hint);
    return cm_envelope_reply_error (request, CM_ENOTLEADER, hint);
}

void
st_raft_describe (st_raft_t *self, cm_value_t *ok)
{
    static const char *roles[] = {"unavailable", "follower", "candidate", "leader"};
    int state = atomic_load (&self->state);
    cm_value_t *raft = cm_map_new ();
    cm_map_set_int (raft, "id", (int64_t) self->node_id);
    cm_map_set_str (raft, "role", state >= 0 && state <= 3 ? roles[state] : "unknown");
    cm_map_set_int (raft, "leader", (int64_t) atomic_load (&self->leader));
    cm_map_set_int (raft, "term", (int64_t) atomic_load (&self->term));
    cm_map_set_int (raft, "applied", (int64_t) atomic_load (&self->applied));
    cm_map_set_bool (raft, "reads_ready", st_raft_reads_ready (self));
    static const char *member_roles[] = {"standby", "voter", "spare"}; //  RAFT_STANDBY..SPARE
    cm_value_t *members = cm_arr_new ();
    bool voter = false;
    pthread_mutex_lock (&self->lock);
    for (unsigned i = 0; i < self->member_count; i++) {
        cm_value_t *member = cm_map_new ();
        int role = self->members[i].role;
        cm_map_set_int (member, "id", (int64_t) self->members[i].id);
        cm_map_set_str (member, "role", role >= 0 && role <= 2 ? member_roles[role] : "unknown");
        cm_arr_push (members, member);
        voter = voter || (self->members[i].id == self->node_id && role == RAFT_VOTER);
    }
    pthread_mutex_unlock (&self->lock);
    cm_map_set_bool (raft, "voter", voter);
    cm_map_set (raft, "members", members);
    cm_map_set (ok, "raft", raft);
}

int
st_raft_change (st_raft_t *self, st_raft_change_op_t op, uint64_t id, const char *raft_address,
                int timeout_ms, char *why, size_t why_size)
{
    if (id == 0 || (op == ST_RAFT_ADD && (!raft_address || !*raft_address))) {
        snprintf (why, why_size, "%s", id == 0 ? "id must be 1 or more" : "raft_address is required to add");
        return CM_EINVAL;
    }
    pthread_mutex_lock (&self->lock);
    if (self->change_slot != S_IDLE) {
        pthread_mutex_unlock (&self->lock);
        snprintf (why, why_size, "a membership change is already running on this leader");
        return CM_ECONFLICT;
    }
    self->change_slot = S_QUEUED;
    self->change_op = op;
    self->change_id = id;
    snprintf (self->change_address, sizeof self->change_address, "%s",
              raft_address ? raft_address : "");
    pthread_mutex_unlock (&self->lock);
    uv_async_send (&self->wake);
    int64_t until = cm_mono_ms () + timeout_ms;
    pthread_mutex_lock (&self->lock);
    while (self->change_slot != S_DONE && cm_mono_ms () < until
           && !atomic_load (&self->loop_done) && !self->change_waits_ended) {
        struct timespec wake;
        clock_gettime (CLOCK_REALTIME, &wake);
        wake.tv_nsec += 100 * 1000000L;
        if (wake.tv_nsec >= 1000000000L)
            wake.tv_sec++, wake.tv_nsec -= 1000000000L;
        pthread_cond_timedwait (&self->change_done, &self->lock, &wake);
    }
    int rc;
    if (self->change_slot == S_DONE) {
        rc = self->change_rc;
        snprintf (why, why_size, "%s", self->change_why);
        self->change_slot = S_IDLE;
    }
    else if (self->change_slot == S_QUEUED || atomic_load (&self->loop_done)
             || self->change_waits_ended) {
        self->change_slot = S_IDLE; //  the loop never took it
        rc = CM_ETIMEOUT;
        snprintf (why, why_size, "%s",
                  self->change_slot == S_QUEUED
                      ? "the change was not started in time (the store is busy or stopping)"
                      : "the store is stopping: the change may or may not be committed (ping "
                        "a member for raft.members)");
    }
    else {
        self->change_abandoned = true;
        rc = CM_ETIMEOUT;
        snprintf (why, why_size,
                  "the change of node %llu is still running: ping the leader for its members",
                  (unsigned long long) id);
    }
    pthread_mutex_unlock (&self->lock);
    return rc;
}

void
st_raft_end_change_waits (st_raft_t *self)
{
    pthread_mutex_lock (&self->lock);
    self->change_waits_ended = true;
    pthread_cond_broadcast (&self->change_done);
    pthread_mutex_unlock (&self->lock);
}
