#include "bc_service.h"
#include "bc_server.h"
#include "cm_error.h"
#include "cm_event.h"
#include "cm_ids.h"
#include "cm_log.h"
#include "cm_rpc.h"
#include "cm_time.h"

//  Bursts (a whole answer streamed token by token to many sessions) must
//  not be dropped at the default high-water mark of 1000.
#define S_XPUB_SNDHWM 100000

struct bc_service {
    bc_server_t *server;
    zsock_t *pull;
    zsock_t *xpub;
    zsock_t *router;
    int64_t prune_interval_ms;
};

static zsock_t *
s_bind (int type, const char *endpoint, const char *what, cm_curve_t *curve)
{
    zsock_t *sock = zsock_new (type);
    if (!sock)
        return NULL;
    zsock_set_linger (sock, 0);
    cm_curve_server (curve, sock);
    if (type == ZMQ_XPUB) {
        zsock_set_sndhwm (sock, S_XPUB_SNDHWM);
        //  Every gateway's subscription, not only a topic's first, so each
        //  one gets its "subscribed" notice.
        zsock_set_xpub_verbose (sock, 1);
    }
    if (type == ZMQ_PULL)
        zsock_set_rcvhwm (sock, S_XPUB_SNDHWM);
    if (zsock_bind (sock, "%s", endpoint) < 0) {
        cm_error ("cannot bind %s at %s: %s", what, endpoint, zmq_strerror (zmq_errno ()));
        zsock_destroy (&sock);
    }
    return sock;
}

bc_service_t *
bc_service_new (const bc_service_options_t *options)
{
    bc_service_t *self = calloc (1, sizeof *self);
    if (!self)
        return NULL;
    uint64_t epoch = options->epoch ? options->epoch : (uint64_t) cm_now_ms ();
    self->server = bc_server_new (epoch, &options->limits);
    self->pull = s_bind (ZMQ_PULL, options->events_in_endpoint, "events-in PULL", options->curve);
    self->xpub = s_bind (ZMQ_XPUB, options->events_out_endpoint, "events-out XPUB",
                        options->curve);
    self->router = s_bind (ZMQ_ROUTER, options->history_endpoint, "history ROUTER", options->curve);
    if (!self->server || !self->pull || !self->xpub || !self->router) {
        bc_service_destroy (&self);
        return NULL;
    }
    //  Prune often enough that an idle session lives at most ~25% past its
    //  age limit, but not more than once a second.
    self->prune_interval_ms = options->limits.max_age_ms / 4;
    if (self->prune_interval_ms > 1000)
        self->prune_interval_ms = 1000;
    if (self->prune_interval_ms < 10)
        self->prune_interval_ms = 10;
    return self;
}

void
bc_service_destroy (bc_service_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    bc_service_t *self = *self_p;
    zsock_destroy (&self->pull);
    zsock_destroy (&self->xpub);
    zsock_destroy (&self->router);
    bc_server_destroy (&self->server);
    free (self);
    *self_p = NULL;
}

uint64_t
bc_service_epoch (const bc_service_t *self)
{
    return bc_server_epoch (self->server);
}

static int
s_on_event (zloop_t *loop, zsock_t *reader, void *arg)
{
    (void) loop;
    bc_service_t *self = arg;
    zmsg_t *msg = zmsg_recv (reader);
    if (!msg)
        return 0;
    if (zmsg_size (msg) != 2) {
        cm_warning ("event dropped: %zu frames instead of 2", zmsg_size (msg));
        bc_server_reject (self->server);
        zmsg_destroy (&msg);
        return 0;
    }
    zframe_t *session = zmsg_first (msg);
    zframe_t *body = zmsg_next (msg);
    char event_id[BC_EVENT_ID_SIZE];
    int rc = bc_server_ingest (self->server, zframe_data (session), zframe_size (session),
                               zframe_data (body), zframe_size (body), cm_mono_ms (),
                               event_id, sizeof event_id);
    if (rc) {
        if (rc != CM_EPROTO && rc != BC_HISTORY_DUPLICATE) //  logged / counted by ingest
            cm_error ("event dropped: %s", cm_strerror (rc));
        zmsg_destroy (&msg);
        return 0;
    }
    //  Reuse the frames: [session, body] becomes [session, id, body] with
    //  the envelope bytes forwarded unchanged.
    zframe_t *id = zframe_new (event_id, strlen (event_id));
    zmsg_remove (msg, body);
    zmsg_append (msg, &id);
    zmsg_append (msg, &body);
    if (zmsg_send (&msg, self->xpub) == 0)
        bc_server_count_out (self->server);
    else {
        cm_warning ("event not published: %s", zmq_strerror (zmq_errno ()));
        zmsg_destroy (&msg);
    }
    return 0;
}

//  Subscriptions arrive on the XPUB; read them so they do not pile up.
//  [session_id, "", event "subscribed" {sessionId}]: see s_on_subscription.
static void
s_send_welcome (zsock_t *xpub, const char *session_id)
{
    cm_envelope_t *notice = cm_envelope_new (CM_MSG_EVENT, "");
    cm_value_t *data = cm_map_new ();
    cm_map_set_str (data, "sessionId", session_id);
    cm_map_set_str (notice->payload, "event", cm_event_name (CM_EVENT_SUBSCRIBED));
    cm_map_set (notice->payload, "data", data);
    zframe_t *body = NULL;
    if (cm_frame_encode (notice, &body) == 0) {
        zmsg_t *msg = zmsg_new ();
        zmsg_addstr (msg, session_id);
        zmsg_addmem (msg, "", 0);
        zmsg_append (msg, &body);
        if (zmsg_send (&msg, xpub))
            zmsg_destroy (&msg);
    }
    cm_envelope_destroy (&notice);
}

static int
s_on_subscription (zloop_t *loop, zsock_t *reader, void *arg)
{
    (void) loop;
    (void) arg;
    zframe_t *frame = zframe_recv (reader);
    size_t size = frame ? zframe_size (frame) : 0;
    const char *data = frame ? (const char *) zframe_data (frame) : NULL;
    if (size > 0 && cm_log_level () >= CM_LOG_DEBUG)
        cm_debug ("%s %.*s", data[0] ? "subscribe" : "unsubscribe", (int) (size - 1), data + 1);
    //  Answer every subscription with a notice on its topic (no event id),
    //  so a gateway knows when its subscription is live here: events
    //  published before that moment would never have reached it.
    char session_id[CM_SESSION_ID_MAX + 1];
    if (size > 1 && size - 1 <= CM_SESSION_ID_MAX && data[0] == 1) {
        memcpy (session_id, data + 1, size - 1);
        session_id[size - 1] = 0;
        if (cm_session_id_valid (session_id))
            s_send_welcome (reader, session_id);
    }
    zframe_destroy (&frame);
    return 0;
}

static int
s_on_request (zloop_t *loop, zsock_t *reader, void *arg)
{
    (void) loop;
    bc_service_t *self = arg;
    zmsg_t *msg = zmsg_recv (reader);
    if (!msg)
        return 0;
    if (zmsg_size (msg) < 2) {
        zmsg_destroy (&msg);
        return 0;
    }
    zframe_t *identity = zmsg_first (msg);
    zframe_t *body = zmsg_last (msg);
    cm_envelope_t *reply = NULL;
    bc_server_handle (self->server, zframe_data (body), zframe_size (body), cm_mono_ms (),
                      &reply);
    if (reply) {
        int rc = cm_router_reply (self->router, identity, reply);
        if (rc)
            cm_warning ("history reply not sent: %s", cm_strerror (rc));
    }
    else
        cm_error ("history request not answered: out of memory");
    cm_envelope_destroy (&reply);
    zmsg_destroy (&msg);
    return 0;
}

static int
s_on_prune (zloop_t *loop, int timer_id, void *arg)
{
    (void) loop;
    (void) timer_id;
    bc_service_t *self = arg;
    size_t dropped = bc_server_tick (self->server, cm_mono_ms ());
    if (dropped)
        cm_info ("pruned %zu idle sessions, %zu held", dropped,
                 bc_server_sessions (self->server));
    return 0;
}

static int
s_on_pipe (zloop_t *loop, zsock_t *reader, void *arg)
{
    (void) loop;
    (void) arg;
    zmsg_t *msg = zmsg_recv (reader);
    zmsg_destroy (&msg);
    return -1; //  any command, $TERM included, ends the loop
}

int
bc_service_run (bc_service_t *self, zsock_t *pipe)
{
    zloop_t *loop = zloop_new ();
    if (!loop)
        return CM_ENOMEM;
    zloop_reader (loop, self->pull, s_on_event, self);
    zloop_reader (loop, self->xpub, s_on_subscription, self);
    zloop_reader (loop, self->router, s_on_request, self);
    if (pipe)
        zloop_reader (loop, pipe, s_on_pipe, self);
    zloop_timer (loop, (size_t) self->prune_interval_ms, 0, s_on_prune, self);
    zloop_start (loop);
    zloop_destroy (&loop);
    cm_notice ("stopping: %llu events in, %llu out, %llu rejected",
               (unsigned long long) bc_server_events_in (self->server),
               (unsigned long long) bc_server_events_out (self->server),
               (unsigned long long) bc_server_events_rejected (self->server));
    return 0;
}

void
bc_service_actor (zsock_t *pipe, void *args)
{
    bc_service_t *self = bc_service_new (args);
    zsock_signal (pipe, 0);
    zstr_send (pipe, self ? "ready" : "failed");
    if (!self)
        return;
    bc_service_run (self, pipe);
    bc_service_destroy (&self);
}
