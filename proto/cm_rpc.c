#include "cm_rpc.h"
#include "cm_error.h"
#include "cm_time.h"

#include <stdatomic.h>
#include <string.h>
#include <unistd.h>

zsock_t *
cm_dealer_new (const char *endpoint)
{
    return cm_dealer_new_curve (endpoint, NULL, NULL);
}

zsock_t *
cm_dealer_new_curve (const char *endpoint, cm_curve_t *curve, const char *server)
{
    zsock_t *dealer = zsock_new (ZMQ_DEALER);
    if (!dealer)
        return NULL;
    if (cm_curve_client (curve, dealer, server)) {
        zsock_destroy (&dealer);
        return NULL;
    }
    zsock_set_immediate (dealer, 1);
    zsock_set_linger (dealer, 0);
    zsock_set_sndtimeo (dealer, 0);
    if (cm_connect_list (dealer, endpoint)) {
        zsock_destroy (&dealer);
        return NULL;
    }
    return dealer;
}

int
cm_connect_list (zsock_t *sock, const char *list)
{
    int connected = 0;
    while (list && *list) {
        size_t len = strcspn (list, ",");
        if (len > 0) {
            if (zsock_connect (sock, "%.*s", (int) len, list))
                return -1;
            connected++;
        }
        list += len + (list[len] == ',');
    }
    return connected ? 0 : -1;
}

void
cm_request_id (char *buffer, size_t size)
{
    static atomic_uint_fast64_t counter;
    //  The pid only tells processes apart; read it once, not per request
    //  (it was a syscall on every HTTP request's hot path).
    static atomic_int pid;
    int self = atomic_load_explicit (&pid, memory_order_relaxed);
    if (self == 0) {
        self = (int) getpid ();
        atomic_store_explicit (&pid, self, memory_order_relaxed);
    }
    snprintf (buffer, size, "%d.%llu", self,
              (unsigned long long) atomic_fetch_add (&counter, 1) + 1);
}

int
cm_frame_encode (const cm_envelope_t *envelope, zframe_t **frame)
{
    char *buffer;
    size_t size;
    int rc = cm_envelope_encode (envelope, &buffer, &size);
    if (rc)
        return rc;
    *frame = zframe_new (buffer, size);
    free (buffer);
    return *frame ? 0 : CM_ENOMEM;
}

int
cm_frame_decode (zframe_t *frame, cm_envelope_t **envelope)
{
    if (!frame)
        return CM_EPROTO;
    return cm_envelope_decode (zframe_data (frame), zframe_size (frame), envelope);
}

int
cm_call (zsock_t *dealer, const cm_envelope_t *request, int timeout_ms, cm_envelope_t **reply)
{
    zframe_t *frame;
    int rc = cm_frame_encode (request, &frame);
    if (rc)
        return rc;
    if (zframe_send (&frame, dealer, ZFRAME_DONTWAIT)) {
        zframe_destroy (&frame);
        return CM_EBACKEND;
    }
    int64_t deadline = cm_mono_ms () + timeout_ms;
    void *handle = zsock_resolve (dealer);
    while (true) {
        int64_t left = deadline - cm_mono_ms ();
        if (left <= 0)
            return CM_ETIMEOUT;
        zmq_pollitem_t item = {handle, 0, ZMQ_POLLIN, 0};
        int n = zmq_poll (&item, 1, (long) left);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            continue; //  loop re-checks the deadline
        zmsg_t *msg = zmsg_recv (dealer);
        if (!msg)
            continue;
        zframe_t *body = zmsg_last (msg);
        cm_envelope_t *answer = NULL;
        rc = cm_frame_decode (body, &answer);
        zmsg_destroy (&msg);
        if (rc)
            return CM_EPROTO;
        if (strcmp (answer->request_id, request->request_id) != 0) {
            cm_envelope_destroy (&answer); //  a late reply to a timed-out call
            continue;
        }
        if (answer->type == CM_MSG_ERROR) {
            int code = (int) cm_map_int (answer->payload, "code", CM_EPROTO);
            *reply = answer;
            return code < 0 ? code : CM_EPROTO;
        }
        if (answer->type != CM_MSG_OK) {
            cm_envelope_destroy (&answer);
            return CM_EPROTO;
        }
        *reply = answer;
        return 0;
    }
}

int
cm_router_reply (zsock_t *router, zframe_t *identity, const cm_envelope_t *reply)
{
    zframe_t *body;
    int rc = cm_frame_encode (reply, &body);
    if (rc)
        return rc;
    zmsg_t *msg = zmsg_new ();
    zmsg_append (msg, &(zframe_t *) {zframe_dup (identity)});
    zmsg_append (msg, &body);
    return zmsg_send (&msg, router) == 0 ? 0 : CM_EBACKEND;
}
