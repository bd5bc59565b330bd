/*  st_ops.c: dispatch, upkeep, ping, and the regenerators seen (st_ops.h;
    the write batch is st_ops_batch.c). The handlers live by family in
    st_h_*.c under the contract of st_ctx.h.                             */
#include "st_ops.h"

#include "cm_error.h"
#include "cm_log.h"
#include "st_batch.h"
#include "st_ctx.h"
#include "st_h_admin.h"
#include "st_h_audit.h"
#include "st_h_continue.h"
#include "st_h_export.h"
#include "st_h_feedback.h"
#include "st_h_manage.h"
#include "st_h_sessions.h"
#include "st_h_tasks.h"
#include "st_h_events.h"
#include "st_h_trash.h"
#include "st_h_versions.h"
#include "st_idem.h"
#include "st_view.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

//  The handler of each request type the store serves; whether it runs in a
//  write transaction or on a reader is the type's access (cm_msg.h).
static const st_handler_fn s_handlers[CM_MSG_COUNT] = {
    [CM_MSG_SESSION_START] = st_h_session_start,
    [CM_MSG_MESSAGE_EDIT] = st_h_message_edit,
    [CM_MSG_MESSAGE_DELETE] = st_h_message_delete,
    [CM_MSG_MESSAGE_RESTORE] = st_h_message_restore,
    [CM_MSG_SESSION_DELETE] = st_h_session_delete,
    [CM_MSG_SESSION_RESTORE] = st_h_session_restore,
    [CM_MSG_FEEDBACK_PUT] = st_h_feedback_put,
    [CM_MSG_FEEDBACK_DELETE] = st_h_feedback_delete,
    [CM_MSG_REGEN_CREATE] = st_h_regen_create,
    [CM_MSG_MESSAGE_CONTINUE] = st_h_message_continue,
    [CM_MSG_VERSION_ACTIVATE] = st_h_version_activate,
    [CM_MSG_TASK_CANCEL] = st_h_task_cancel,
    [CM_MSG_RATE_CONSUME] = st_h_rate_consume,
    [CM_MSG_RATE_REFUND] = st_h_rate_refund,
    [CM_MSG_TASK_CLAIM] = st_h_task_claim,
    [CM_MSG_TASK_PROGRESS] = st_h_task_progress,
    [CM_MSG_TASK_EVENT] = st_h_task_event,
    [CM_MSG_TASK_COMPLETE] = st_h_task_complete,
    [CM_MSG_TASK_FAIL] = st_h_task_fail,
    [CM_MSG_SESSION_GET] = st_h_session_get,
    [CM_MSG_SESSION_LIST] = st_h_session_list,
    [CM_MSG_SESSION_RENAME] = st_h_session_rename,
    [CM_MSG_SESSION_EXPORT] = st_h_session_export,
    [CM_MSG_FEEDBACK_GET] = st_h_feedback_get,
    [CM_MSG_HISTORY_GET] = st_h_history_get,
    [CM_MSG_TASK_STATUS] = st_h_task_status,
    [CM_MSG_ANALYTICS_GET] = st_h_analytics_get,
    [CM_MSG_AUDIT_QUERY] = st_h_audit_query,
    [CM_MSG_ADMIN_AUDIT] = st_h_admin_audit,
    [CM_MSG_ADMIN_AUDIT_VERIFY] = st_h_admin_audit_verify,
    [CM_MSG_ADMIN_ANALYTICS] = st_h_admin_analytics,
    [CM_MSG_ANALYTICS_TOTALS] = st_h_analytics_totals,
    [CM_MSG_EVENTS_AFTER] = st_h_events_after,
};

static st_handler_fn
s_handler (cm_msg_t type)
{
    return type > CM_MSG_NONE && type < CM_MSG_COUNT ? s_handlers[type] : NULL;
}

bool
st_ops_is_write (cm_msg_t type)
{
    return s_handler (type) && cm_msg_access (type) == CM_ACCESS_WRITE;
}

bool
st_ops_is_read (cm_msg_t type)
{
    return type == CM_MSG_PING || (s_handler (type) && cm_msg_access (type) == CM_ACCESS_READ);
}

st_ops_t *
st_ops_new (st_db_t *db, const st_ops_config_t *config)
{
    st_ops_t *self = calloc (1, sizeof *self);
    if (!self)
        return NULL;
    self->db = db;
    self->config = *config;
    if (self->config.max_attempts < 1)
        self->config.max_attempts = 1;
    if (self->config.worker_live_ms <= 0)
        self->config.worker_live_ms = 30000;
    if (self->config.undo_ms <= 0)
        self->config.undo_ms = 30000;
    self->packer = cm_packer_new ();
    if (!self->packer) {
        free (self);
        return NULL;
    }
    pthread_mutex_init (&self->workers_lock, NULL);
    return self;
}

void
st_ops_destroy (st_ops_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    pthread_mutex_destroy (&(*self_p)->workers_lock);
    cm_packer_destroy (&(*self_p)->packer);
    free (*self_p);
    *self_p = NULL;
}

//  Turns a handler's result into the reply envelope.
static cm_envelope_t *
s_reply (st_ctx_t *c, int rc)
{
    if (rc == 0) {
        cm_value_t *ok = c->ok ? c->ok : cm_map_new ();
        c->ok = NULL;
        return cm_envelope_reply_ok (c->req, ok);
    }
    cm_value_destroy (&c->ok);
    cm_envelope_t *reply = cm_envelope_reply_error (c->req, rc, c->why ? c->why : cm_strerror (rc));
    if (reply && rc == CM_ERATELIMIT)
        cm_map_set_int (reply->payload, "retry_after_ms", c->retry_after);
    return reply;
}

static int
s_run (st_ops_t *self, MDB_txn *txn, const cm_envelope_t *request, int64_t now,
       cm_envelope_t **reply, cm_value_t *events, bool write)
{
    st_ctx_t c = {.ops = self, .db = self->db, .txn = txn, .now = now, .req = request,
                 .p = request->payload, .events = cm_arr_new ()};
    st_handler_fn handler = s_handler (request->type);
    int rc;
    if (!handler || st_ops_is_write (request->type) != write) {
        c.why = "not a store request of this kind";
        rc = CM_EPROTO;
    }
    else {
        char why[128];
        rc = cm_msg_validate (request->type, request->payload, why, sizeof why);
        rc = rc ? CM_EPROTO : write ? st_idem_run (&c, handler) : handler (&c);
        if (rc == CM_EPROTO && !c.why)
            c.why = "malformed request";
    }
    if (rc == 0 && events) {
        //  Move, in order, without copying big contents.
        for (size_t i = 0; i < c.events->u.c.len; i++)
            cm_arr_push (events, c.events->u.c.items[i]);
        c.events->u.c.len = 0;
    }
    cm_value_destroy (&c.events);
    *reply = s_reply (&c, rc);
    if (rc && rc != CM_EFULL && rc != CM_EDB)
        cm_debug ("%s refused: %s", cm_msg_name (request->type), cm_error_name (rc));
    return rc;
}

int
st_ops_handle (st_ops_t *self, MDB_txn *txn, const cm_envelope_t *request, int64_t now,
               cm_envelope_t **reply, cm_value_t *events)
{
    return s_run (self, txn, request, now, reply, events, true);
}

//  Ping's view of disk-full refusals. The state ends as soon as the disk
//  has room again (seen here or after a commit), so readiness comes back
//  even when nobody writes meanwhile.
static void
s_ping_space (st_ops_t *self, cm_value_t *ok)
{
    cm_map_set_int (ok, "writes_refused_no_space", (int64_t) atomic_load (&self->refused));
    long long since = atomic_load (&self->refused_since);
    if (!since)
        return;
    uint64_t free_bytes = 0;
    if (!st_db_space_low (st_db_dir (self->db), &free_bytes)) {
        atomic_compare_exchange_strong (&self->refused_since, &since, 0);
        return;
    }
    st_view_time (ok, "writes_refused_since", since);
    cm_map_set_int (ok, "disk_free_bytes", (int64_t) free_bytes);
}

int
st_ops_read (st_ops_t *self, const cm_envelope_t *request, int64_t now, cm_envelope_t **reply)
{
    MDB_txn *txn;
    int rc = st_db_read_begin (self->db, &txn);
    if (rc) {
        *reply = cm_envelope_reply_error (request, rc, NULL);
        return rc;
    }
    if (request->type == CM_MSG_PING) {
        cm_value_t *ok = cm_map_new ();
        cm_map_set_str (ok, "service", "store");
        cm_map_set_int (ok, "regenerators", st_ops_live_workers (self, now, NULL));
        //  A regenerator's health check asks about itself: worker ids
        //  start "rg-<host>-<pid>-" (rg_service.c).
        const char *prefix = cm_map_str (request->payload, "worker_prefix");
        if (prefix)
            cm_map_set_int (ok, "regenerators_matching", st_ops_live_workers (self, now, prefix));
        s_ping_space (self, ok);
        cm_map_set_int (ok, "stale_writes_refused", (int64_t) atomic_load (&self->stale_refused));
        *reply = cm_envelope_reply_ok (request, ok);
    }
    else
        rc = s_run (self, txn, request, now, reply, NULL, false);
    st_db_read_end (self->db, txn);
    return rc;
}

//  The upkeep, as st_batch_run's body: a context without a request.
typedef struct {
    st_ops_t *self;
    int64_t now;
} s_upkeep_t;

static int
s_upkeep_body (void *arg, MDB_txn *txn, bool nested, cm_value_t *events)
{
    (void) nested; //  upkeep fails only on the db: the whole txn goes
    s_upkeep_t *u = arg;
    cm_envelope_t *request = cm_envelope_new (CM_MSG_NONE, "cleanup");
    if (!request)
        return CM_ENOMEM;
    st_ctx_t c = {.ops = u->self, .db = u->self->db, .txn = txn, .now = u->now,
                  .req = request, .p = request->payload, .events = events};
    int64_t cutoff = u->now - u->self->config.retention_ms;
    int rc = st_h_task_sweep (&c, NULL, 0, true, NULL);
    if (rc == 0)
        rc = st_h_task_expire (&c, cutoff);
    if (rc == 0)
        rc = st_h_audit_expire (&c, cutoff);
    if (rc == 0)
        rc = st_idem_expire (&c, u->now - ST_IDEM_TTL_MS);
    if (rc == 0)
        rc = st_h_trash_purge (&c, u->now - u->self->config.undo_ms);
    cm_envelope_destroy (&request);
    return rc;
}

int
st_ops_cleanup (st_ops_t *self, int64_t now, cm_value_t **events_out)
{
    s_upkeep_t upkeep = {self, now};
    return st_batch_run (self->db, self->config.events_keep, s_upkeep_body, &upkeep, events_out);
}

bool
st_ops_take_tasks_changed (st_ops_t *self)
{
    bool changed = self->tasks_changed;
    self->tasks_changed = false;
    return changed;
}

int64_t
st_ops_next_lease_expiry (st_ops_t *self)
{
    return self->next_lease_expiry;
}

void
st_ops_worker_seen (st_ops_t *self, const char *worker, int64_t now)
{
    pthread_mutex_lock (&self->workers_lock);
    int slot = -1, oldest = 0;
    for (int i = 0; i < ST_MAX_WORKERS; i++) {
        if (strcmp (self->workers[i].name, worker) == 0) {
            slot = i;
            break;
        }
        if (self->workers[i].seen < self->workers[oldest].seen)
            oldest = i;
    }
    if (slot < 0) {
        slot = oldest;
        snprintf (self->workers[slot].name, sizeof self->workers[slot].name, "%s", worker);
    }
    self->workers[slot].seen = now;
    pthread_mutex_unlock (&self->workers_lock);
}

int
st_ops_live_workers (st_ops_t *self, int64_t now, const char *prefix)
{
    int live = 0;
    size_t prefix_len = prefix ? strlen (prefix) : 0;
    pthread_mutex_lock (&self->workers_lock);
    for (int i = 0; i < ST_MAX_WORKERS; i++)
        if (self->workers[i].name[0] && now - self->workers[i].seen <= self->config.worker_live_ms
            && strncmp (self->workers[i].name, prefix ? prefix : "", prefix_len) == 0)
            live++;
    pthread_mutex_unlock (&self->workers_lock);
    return live;
}
