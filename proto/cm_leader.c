/*  cm_leader.c: following a store shard's Raft leader (cm_leader.h).  */
#include "cm_leader.h"

#include "cm_config.h"
#include "cm_error.h"
#include "cm_msg.h"
#include "cm_time.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct cm_leader {
    int count;
    cm_reads_t reads;
    char *endpoints[CM_LEADER_ENDPOINTS_MAX];
    atomic_int current;
    atomic_uint next_read; //  round robin of CM_READS_ANY
    atomic_uint_fast64_t applied;
    //  Until when (cm_mono_ms) a node that failed is left out of the
    //  round robin of CM_READS_ANY.
    atomic_llong down_until[CM_LEADER_ENDPOINTS_MAX];
    atomic_uint_fast64_t not_leader, node_failures; //  answers seen, for metrics
};

struct cm_leader_link {
    cm_leader_t *leader;
    cm_curve_t *curve;
    const char *server;
    zsock_t *dealers[CM_LEADER_ENDPOINTS_MAX];
};

int
cm_reads_parse (const char *text, cm_reads_t *out)
{
    if (text && strcmp (text, "leader") == 0)
        *out = CM_READS_LEADER;
    else if (text && strcmp (text, "any") == 0)
        *out = CM_READS_ANY;
    else
        return CM_EINVAL;
    return 0;
}

int
cm_leader_hint_parse (const char *message, char *endpoint, size_t size)
{
    if (!message)
        return CM_EINVAL;
    if (strcmp (message, CM_LEADER_UNKNOWN) == 0)
        return 0;
    size_t prefix = strlen (CM_LEADER_IS);
    if (strncmp (message, CM_LEADER_IS, prefix) != 0)
        return CM_EINVAL;
    const char *named = message + prefix;
    size_t len = strlen (named);
    if (len == 0 || len > CM_ENDPOINT_MAX || len + 1 > size || strpbrk (named, ", \t\r\n"))
        return CM_EINVAL;
    memcpy (endpoint, named, len + 1);
    return 1;
}

bool
cm_leader_resendable (cm_msg_t type, const cm_value_t *payload)
{
    switch (type) {
    case CM_MSG_TASK_CLAIM:
    case CM_MSG_TASK_PROGRESS:
    case CM_MSG_TASK_COMPLETE:
    case CM_MSG_TASK_FAIL:
        return true;
    case CM_MSG_TASK_EVENT:
    case CM_MSG_RATE_CONSUME:
        return false;
    default:
        break;
    }
    if (cm_msg_access (type) == CM_ACCESS_READ)
        return true;
    const char *key = cm_map_str (payload, "idem_key");
    return cm_msg_access (type) == CM_ACCESS_WRITE && key && *key;
}

//  The list's endpoints into self->endpoints; 0, or CM_EINVAL saying why.
static int
s_parse (cm_leader_t *self, const char *list, char *why, size_t why_size)
{
    char ignored[1];
    if (!why || !why_size) {
        why = ignored;
        why_size = sizeof ignored;
    }
    while (list && *list) {
        size_t len = strcspn (list, ",");
        if (len > CM_ENDPOINT_MAX) {
            snprintf (why, why_size, "an endpoint is longer than %d bytes", CM_ENDPOINT_MAX);
            return CM_EINVAL;
        }
        if (len > 0 && self->count == CM_LEADER_ENDPOINTS_MAX) {
            snprintf (why, why_size, "more than %d store nodes in one shard",
                      CM_LEADER_ENDPOINTS_MAX);
            return CM_EINVAL;
        }
        if (len > 0) {
            char *endpoint = strndup (list, len);
            if (!endpoint) {
                snprintf (why, why_size, "out of memory");
                return CM_ENOMEM;
            }
            if (cm_leader_find (self, endpoint) >= 0) {
                snprintf (why, why_size, "node %s is listed twice", endpoint);
                free (endpoint);
                return CM_EINVAL;
            }
            self->endpoints[self->count++] = endpoint;
        }
        list += len + (list[len] == ',');
    }
    if (self->count == 0) {
        snprintf (why, why_size, "no store endpoint");
        return CM_EINVAL;
    }
    return 0;
}

cm_leader_t *
cm_leader_new (const char *list, cm_reads_t reads)
{
    cm_leader_t *self = calloc (1, sizeof *self);
    if (!self)
        return NULL;
    self->reads = reads;
    if (s_parse (self, list, NULL, 0))
        cm_leader_destroy (&self);
    return self;
}

int
cm_leader_check (const char *list, char *why, size_t why_size)
{
    cm_leader_t probe = {0};
    int rc = s_parse (&probe, list, why, why_size);
    for (int i = 0; i < probe.count; i++)
        free (probe.endpoints[i]);
    return rc;
}

void
cm_leader_destroy (cm_leader_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    cm_leader_t *self = *self_p;
    for (int i = 0; i < self->count; i++)
        free (self->endpoints[i]);
    free (self);
    *self_p = NULL;
}

int
cm_leader_count (const cm_leader_t *self)
{
    return self->count;
}

const char *
cm_leader_endpoint (const cm_leader_t *self, int index)
{
    return index >= 0 && index < self->count ? self->endpoints[index] : NULL;
}

int
cm_leader_find (const cm_leader_t *self, const char *endpoint)
{
    for (int i = 0; i < self->count; i++)
        if (strcmp (self->endpoints[i], endpoint) == 0)
            return i;
    return -1;
}

int
cm_leader_current (const cm_leader_t *self)
{
    return atomic_load_explicit (&self->current, memory_order_relaxed);
}

uint64_t
cm_leader_applied (const cm_leader_t *self)
{
    return atomic_load_explicit (&self->applied, memory_order_relaxed);
}

uint64_t
cm_leader_not_leader_total (const cm_leader_t *self)
{
    return atomic_load_explicit (&self->not_leader, memory_order_relaxed);
}

uint64_t
cm_leader_node_failures_total (const cm_leader_t *self)
{
    return atomic_load_explicit (&self->node_failures, memory_order_relaxed);
}

//  Node index let us down: the next one is the leader to try, unless
//  another call already moved the remembered leader elsewhere.
static int
s_move_past (cm_leader_t *self, int index)
{
    int next = (index + 1) % self->count;
    int expected = index;
    atomic_compare_exchange_strong (&self->current, &expected, next);
    return next;
}

static void
s_note_applied (cm_leader_t *self, const cm_envelope_t *reply)
{
    int64_t applied = cm_map_int (reply->payload, CM_LEADER_APPLIED_FIELD, 0);
    if (applied <= 0)
        return;
    uint_fast64_t seen = atomic_load (&self->applied);
    while (seen < (uint64_t) applied
           && !atomic_compare_exchange_weak (&self->applied, &seen, (uint64_t) applied))
        ;
}

int
cm_leader_observe (cm_leader_t *self, int index, int rc, const cm_envelope_t *reply)
{
    if (rc == 0) {
        if (reply)
            s_note_applied (self, reply);
        return -1;
    }
    if (rc == CM_ENOTLEADER && reply) {
        atomic_fetch_add_explicit (&self->not_leader, 1, memory_order_relaxed);
        char named[CM_ENDPOINT_MAX + 1];
        const char *message = cm_map_str (reply->payload, "message");
        if (cm_leader_hint_parse (message, named, sizeof named) == 1) {
            int leader = cm_leader_find (self, named);
            if (leader >= 0 && leader != index) {
                atomic_store (&self->current, leader);
                return leader;
            }
        }
        return s_move_past (self, index);
    }
    if (!reply && (rc == CM_EBACKEND || rc == CM_ETIMEOUT)) {
        atomic_fetch_add_explicit (&self->node_failures, 1, memory_order_relaxed);
        atomic_store (&self->down_until[index], (long long) (cm_mono_ms () + CM_LEADER_DOWN_MS));
        return s_move_past (self, index);
    }
    return -1;
}

static bool
s_election (const cm_envelope_t *reply)
{
    char named[CM_ENDPOINT_MAX + 1];
    return cm_leader_hint_parse (cm_map_str (reply->payload, "message"), named, sizeof named)
           == 0;
}

//  CM_READS_ANY: the next node of the round robin that has not failed
//  lately (the round robin's own when all have).
static int
s_read_node (cm_leader_t *self)
{
    int first = (int) (atomic_fetch_add (&self->next_read, 1) % (unsigned) self->count);
    int64_t now = cm_mono_ms ();
    for (int k = 0, index = first; k < self->count; k++, index = (index + 1) % self->count)
        if (atomic_load (&self->down_until[index]) <= now)
            return index;
    return first;
}

//  The first node from index on that has not failed in this call, or -1.
static int
s_unfailed (const cm_leader_t *self, int index, unsigned failed)
{
    for (int k = 0; k < self->count; k++, index = (index + 1) % self->count)
        if (!(failed & (1u << index)))
            return index;
    return -1;
}

int
cm_leader_call (cm_leader_t *self, cm_leader_send_fn *send, void *arg, cm_envelope_t *request,
                int timeout_ms, int attempt_ms, cm_envelope_t **reply, int *sends)
{
    *reply = NULL;
    int index = cm_leader_current (self);
    if (self->count > 1 && self->reads == CM_READS_ANY
        && cm_msg_access (request->type) == CM_ACCESS_READ) {
        index = s_read_node (self);
        //  Even 0: a read without min_index is the leader's only (the
        //  store's st_reads.h).
        cm_map_set_int (request->payload, CM_LEADER_MIN_FIELD,
                        (int64_t) cm_leader_applied (self));
    }
    int64_t deadline = cm_mono_ms () + timeout_ms;
    int resendable = -1; //  unknown until a send times out
    unsigned failed = 0;
    int sent = 0, rc = CM_ETIMEOUT;
    while (sent < CM_LEADER_ATTEMPTS (self->count)) {
        int64_t left = deadline - cm_mono_ms ();
        if (left <= 0) {
            rc = CM_ETIMEOUT;
            break;
        }
        int budget = (int) left;
        bool others = s_unfailed (self, index, failed | (1u << index)) >= 0;
        if (attempt_ms > 0 && attempt_ms < budget && others) {
            if (resendable < 0)
                resendable = cm_leader_resendable (request->type, request->payload);
            if (resendable)
                budget = attempt_ms;
        }
        cm_envelope_t *answer = NULL;
        rc = send (arg, index, request, budget, &answer);
        sent++;
        int next = cm_leader_observe (self, index, rc, answer);
        if (next < 0) {
            *reply = answer;
            break;
        }
        bool election = rc == CM_ENOTLEADER && s_election (answer);
        cm_envelope_destroy (&answer);
        if (rc != CM_ENOTLEADER) {
            failed |= 1u << index;
            if (rc == CM_ETIMEOUT && resendable < 0)
                resendable = cm_leader_resendable (request->type, request->payload);
            if (rc == CM_ETIMEOUT && !resendable)
                break; //  it may have run: never twice
        }
        next = s_unfailed (self, next, failed);
        if (next < 0)
            break;
        if (election) {
            int64_t pause = deadline - cm_mono_ms ();
            zclock_sleep ((int) (pause < CM_LEADER_ELECTION_WAIT_MS ? pause
                                                                     : CM_LEADER_ELECTION_WAIT_MS));
        }
        index = next;
    }
    if (rc == CM_ENOTLEADER && !*reply)
        rc = CM_EBACKEND; //  no node would take it: no leader
    //  The index is between the store and this caller: it never reaches a
    //  client (a gateway returns an ok payload's fields as its JSON body).
    if (*reply && (*reply)->payload) {
        cm_value_t *applied = cm_map_take ((*reply)->payload, CM_LEADER_APPLIED_FIELD);
        cm_value_destroy (&applied);
    }
    if (sends)
        *sends = sent;
    return rc;
}

cm_leader_link_t *
cm_leader_link_new (cm_leader_t *leader, cm_curve_t *curve, const char *server)
{
    cm_leader_link_t *self = leader ? calloc (1, sizeof *self) : NULL;
    if (!self)
        return NULL;
    self->leader = leader;
    self->curve = curve;
    self->server = server;
    return self;
}

void
cm_leader_link_destroy (cm_leader_link_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    cm_leader_link_t *self = *self_p;
    for (int i = 0; i < CM_LEADER_ENDPOINTS_MAX; i++)
        zsock_destroy (&self->dealers[i]);
    free (self);
    *self_p = NULL;
}

zsock_t *
cm_leader_link_socket (cm_leader_link_t *self, int index)
{
    const char *endpoint = cm_leader_endpoint (self->leader, index);
    if (!endpoint)
        return NULL;
    if (!self->dealers[index])
        self->dealers[index] = cm_dealer_new_curve (endpoint, self->curve, self->server);
    return self->dealers[index];
}

zsock_t *
cm_leader_link_attached (cm_leader_link_t *self, int index, int wait_ms)
{
    zsock_t *sock = cm_leader_link_socket (self, index);
    if (!sock || (zsock_events (sock) & ZMQ_POLLOUT))
        return sock;
    //  ZMQ_IMMEDIATE queues nothing before the connection is up.
    int wait = wait_ms < CM_LEADER_CONNECT_WAIT_MS ? wait_ms : CM_LEADER_CONNECT_WAIT_MS;
    zmq_pollitem_t item = {zsock_resolve (sock), 0, ZMQ_POLLOUT, 0};
    if (wait > 0 && zmq_poll (&item, 1, wait) > 0 && (item.revents & ZMQ_POLLOUT))
        return sock;
    return NULL;
}

//  One send on the link's socket to node index (cm_leader_send_fn).
static int
s_link_send (void *arg, int index, const cm_envelope_t *request, int timeout_ms,
             cm_envelope_t **reply)
{
    int64_t deadline = cm_mono_ms () + timeout_ms;
    zsock_t *sock = cm_leader_link_attached (arg, index, timeout_ms);
    if (!sock)
        return CM_EBACKEND;
    int left = (int) (deadline - cm_mono_ms ());
    return left > 0 ? cm_call (sock, request, left, reply) : CM_ETIMEOUT;
}

int
cm_leader_link_call (cm_leader_link_t *self, cm_envelope_t *request, int timeout_ms,
                     int attempt_ms, cm_envelope_t **reply)
{
    return cm_leader_call (self->leader, s_link_send, self, request, timeout_ms, attempt_ms,
                           reply, NULL);
}
