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

struct gw_backend {
    pthread_mutex_t lock;
    pthread_cond_t freed;
    zsock_t *idle[GW_BACKEND_IDLE];
    int idle_count;
    int live; //  idle + borrowed
    int sockets, timeout_ms;
    char *endpoint;
    cm_curve_t *curve;
    const char *server;
};

gw_backend_t *
gw_backend_new (const gw_backend_options_t *options)
{
    if (!options->endpoint || options->sockets < 1 || options->timeout_ms < 1)
        return NULL;
    gw_backend_t *self = calloc (1, sizeof *self);
    if (!self)
        return NULL;
    self->endpoint = strdup (options->endpoint);
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
    for (int i = 0; i < self->idle_count; i++)
        zsock_destroy (&self->idle[i]);
    pthread_cond_destroy (&self->freed);
    pthread_mutex_destroy (&self->lock);
    free (self->endpoint);
    free (self);
    *self_p = NULL;
}

//  A connected-or-connecting DEALER, or NULL when none could be had within
//  wait_ms (all in use, or the endpoint is bad).
static zsock_t *
s_get (gw_backend_t *self, int wait_ms)
{
    struct timespec deadline;
    cm_mono_deadline (&deadline, wait_ms);
    pthread_mutex_lock (&self->lock);
    while (self->idle_count == 0 && self->live >= self->sockets)
        if (pthread_cond_timedwait (&self->freed, &self->lock, &deadline) == ETIMEDOUT)
            break;
    zsock_t *sock = NULL;
    bool create = false;
    if (self->idle_count > 0)
        sock = self->idle[--self->idle_count];
    else if (self->live < self->sockets) {
        self->live++;
        create = true;
    }
    pthread_mutex_unlock (&self->lock);
    if (create) {
        sock = cm_dealer_new_curve (self->endpoint, self->curve, self->server);
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
s_put (gw_backend_t *self, zsock_t *sock)
{
    pthread_mutex_lock (&self->lock);
    if (self->idle_count < GW_BACKEND_IDLE)
        self->idle[self->idle_count++] = sock;
    else {
        self->live--;
        zsock_destroy (&sock);
    }
    pthread_cond_signal (&self->freed);
    pthread_mutex_unlock (&self->lock);
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
    int64_t deadline = cm_mono_ms () + self->timeout_ms;
    zsock_t *sock = s_get (self, self->timeout_ms);
    int rc = CM_EBACKEND;
    int left = (int) (deadline - cm_mono_ms ());
    if (sock && left <= 0)
        rc = CM_ETIMEOUT;
    else if (sock) {
        int wait = left < GW_BACKEND_CONNECT_WAIT_MS ? left : GW_BACKEND_CONNECT_WAIT_MS;
        //  A pooled socket is usually connected: ask its state first (no
        //  syscall) and poll only while it is still connecting.
        zmq_pollitem_t item = {zsock_resolve (sock), 0, ZMQ_POLLOUT, 0};
        if ((zsock_events (sock) & ZMQ_POLLOUT)
            || (zmq_poll (&item, 1, wait) > 0 && (item.revents & ZMQ_POLLOUT))) {
            cm_envelope_t *reply = NULL;
            left = (int) (deadline - cm_mono_ms ());
            rc = left > 0 ? cm_call (sock, request, left, &reply) : CM_ETIMEOUT;
            if (rc == 0) {
                *ok = reply->payload;
                reply->payload = NULL;
            }
            else if (reply && err) {
                *err = reply->payload;
                reply->payload = NULL;
            }
            cm_envelope_destroy (&reply);
        }
    }
    if (sock)
        s_put (self, sock);
    cm_envelope_destroy (&request);
    return rc;
}
