/*  gw_backend.c: the DEALER pool and its calls (gw_backend.h).          */

#include "gw_backend.h"

#include "cm_error.h"
#include "cm_rpc.h"
#include "cm_time.h"

#include <czmq.h>
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

//  A pool without follow_leader has one node: the whole comma list.
struct gw_backend {
    pthread_mutex_t lock;
    pthread_cond_t freed;
    zsock_t *idle[CM_LEADER_ENDPOINTS_MAX][GW_BACKEND_IDLE];
    int idle_count[CM_LEADER_ENDPOINTS_MAX];
    int live; //  idle + borrowed, of every node
    int nodes;
    int sockets, timeout_ms;
    char *endpoint;
    cm_leader_t *leader; //  with follow_leader
    cm_curve_t *curve;
    const char *server;
};

//  One call's sends (s_send's arg).
typedef struct {
    gw_backend_t *self;
    int own_rc; //  the pool's own failure (no socket), not a node's
} s_call_t;

//  cm_leader_send_fn's code for the pool's own failure: it ends the call.
#define S_OWN_FAILURE CM_EFULL

gw_backend_t *
gw_backend_new (const gw_backend_options_t *options)
{
    if (!options->endpoint || options->sockets < 1 || options->timeout_ms < 1)
        return NULL;
    gw_backend_t *self = calloc (1, sizeof *self);
    if (!self)
        return NULL;
    self->endpoint = strdup (options->endpoint);
    self->nodes = 1;
    if (options->follow_leader) {
        self->leader = cm_leader_new (options->endpoint, options->reads);
        if (!self->leader) {
            free (self->endpoint);
            free (self);
            return NULL;
        }
        self->nodes = cm_leader_count (self->leader);
    }
    pthread_condattr_t attr;
    bool cond_ok = false;
    if (pthread_condattr_init (&attr) == 0) {
        cond_ok = pthread_condattr_setclock (&attr, CLOCK_MONOTONIC) == 0
                  && pthread_cond_init (&self->freed, &attr) == 0;
        pthread_condattr_destroy (&attr);
    }
    if (!self->endpoint || !cond_ok || pthread_mutex_init (&self->lock, NULL)) {
        if (cond_ok)
            pthread_cond_destroy (&self->freed);
        cm_leader_destroy (&self->leader);
        free (self->endpoint);
        free (self);
        return NULL;
    }
    self->sockets = options->sockets;
    self->timeout_ms = options->timeout_ms;
    self->curve = options->curve;
    self->server = options->server;
    return self;
}

void
gw_backend_destroy (gw_backend_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    gw_backend_t *self = *self_p;
    for (int node = 0; node < self->nodes; node++)
        for (int i = 0; i < self->idle_count[node]; i++)
            zsock_destroy (&self->idle[node][i]);
    pthread_cond_destroy (&self->freed);
    pthread_mutex_destroy (&self->lock);
    cm_leader_destroy (&self->leader);
    free (self->endpoint);
    free (self);
    *self_p = NULL;
}

cm_leader_t *
gw_backend_leader (gw_backend_t *self)
{
    return self->leader;
}

//  An idle socket of another node than node, taken out (the caller
//  closes it to make room), or NULL. Under the lock.
static zsock_t *
s_evictable (gw_backend_t *self, int node)
{
    for (int other = 0; other < self->nodes; other++)
        if (other != node && self->idle_count[other] > 0)
            return self->idle[other][--self->idle_count[other]];
    return NULL;
}

//  A connected-or-connecting DEALER to node, or NULL when none could be
//  had within wait_ms: *busy when all were in use, else the endpoint is
//  bad.
static zsock_t *
s_get (gw_backend_t *self, int node, int wait_ms, bool *busy)
{
    *busy = false;
    struct timespec deadline;
    cm_mono_deadline (&deadline, wait_ms);
    pthread_mutex_lock (&self->lock);
    zsock_t *evicted = NULL;
    while (self->idle_count[node] == 0 && self->live >= self->sockets
           && !(evicted = s_evictable (self, node)))
        if (pthread_cond_timedwait (&self->freed, &self->lock, &deadline) == ETIMEDOUT)
            break;
    zsock_t *sock = NULL;
    bool create = false;
    if (self->idle_count[node] > 0)
        sock = self->idle[node][--self->idle_count[node]];
    else if (evicted)
        create = true; //  the evicted socket's place
    else if (self->live < self->sockets) {
        self->live++;
        create = true;
    }
    else
        *busy = true;
    pthread_mutex_unlock (&self->lock);
    zsock_destroy (&evicted);
    if (create) {
        const char *endpoint = self->leader ? cm_leader_endpoint (self->leader, node)
                                            : self->endpoint;
        sock = cm_dealer_new_curve (endpoint, self->curve, self->server);
        if (!sock) {
            pthread_mutex_lock (&self->lock);
            self->live--;
            pthread_cond_signal (&self->freed);
            pthread_mutex_unlock (&self->lock);
        }
    }
    return sock;
}

static void
s_put (gw_backend_t *self, int node, zsock_t *sock)
{
    pthread_mutex_lock (&self->lock);
    if (self->idle_count[node] < GW_BACKEND_IDLE)
        self->idle[node][self->idle_count[node]++] = sock;
    else {
        self->live--;
        zsock_destroy (&sock);
    }
    pthread_cond_signal (&self->freed);
    pthread_mutex_unlock (&self->lock);
}

//  One send to node on a borrowed socket, within timeout_ms: the wait for
//  a socket, for it to attach and for the reply (cm_leader_send_fn).
static int
s_send (void *arg, int node, const cm_envelope_t *request, int timeout_ms, cm_envelope_t **reply)
{
    s_call_t *call = arg;
    gw_backend_t *self = call->self;
    int64_t deadline = cm_mono_ms () + timeout_ms;
    bool busy;
    zsock_t *sock = s_get (self, node, timeout_ms, &busy);
    if (!sock && !busy)
        return CM_EBACKEND; //  the node's endpoint is bad: the next node
    int left = (int) (deadline - cm_mono_ms ());
    if (!sock || left <= 0) {
        if (sock)
            s_put (self, node, sock);
        //  No socket free in time is the pool's trouble, not the node's.
        call->own_rc = sock ? CM_ETIMEOUT : CM_EBACKEND;
        return S_OWN_FAILURE;
    }
    int rc = CM_EBACKEND;
    int wait = left < GW_BACKEND_CONNECT_WAIT_MS ? left : GW_BACKEND_CONNECT_WAIT_MS;
    //  A pooled socket is usually connected: ask its state first (no
    //  syscall) and poll only while it is still connecting.
    zmq_pollitem_t item = {zsock_resolve (sock), 0, ZMQ_POLLOUT, 0};
    if ((zsock_events (sock) & ZMQ_POLLOUT)
        || (zmq_poll (&item, 1, wait) > 0 && (item.revents & ZMQ_POLLOUT))) {
        left = (int) (deadline - cm_mono_ms ());
        rc = left > 0 ? cm_call (sock, request, left, reply) : CM_ETIMEOUT;
    }
    s_put (self, node, sock);
    return rc;
}

int
gw_backend_call (gw_backend_t *self, cm_msg_t type, cm_value_t *payload, cm_value_t **ok,
                 cm_value_t **err)
{
    *ok = NULL;
    if (err)
        *err = NULL;
    cm_envelope_t *request = cm_envelope_new (type, NULL);
    if (!request || !payload) {
        cm_envelope_destroy (&request);
        cm_value_destroy (&payload);
        return CM_ENOMEM;
    }
    cm_value_destroy (&request->payload);
    request->payload = payload;
    cm_request_id (request->request_id, sizeof request->request_id);
    //  One budget for the whole call: the wait for a free socket comes off
    //  the wait for the reply (twice the budget when each wait had its own).
    s_call_t call = {self, 0};
    cm_envelope_t *reply = NULL;
    int rc = self->leader ? cm_leader_call (self->leader, s_send, &call, request,
                                            self->timeout_ms, self->timeout_ms / 2, &reply, NULL)
                          : s_send (&call, 0, request, self->timeout_ms, &reply);
    if (rc == S_OWN_FAILURE && !reply)
        rc = call.own_rc;
    if (rc == 0) {
        *ok = reply->payload;
        reply->payload = NULL;
    }
    else if (reply && err) {
        *err = reply->payload;
        reply->payload = NULL;
    }
    cm_envelope_destroy (&reply);
    cm_envelope_destroy (&request);
    return rc;
}
