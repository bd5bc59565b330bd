/*  st_task.c: task records (st_task.h).  */
#include "st_task.h"

#include "cm_error.h"
#include "cm_log.h"
#include "st_view.h"

#include <stdio.h>
#include <string.h>

st_task_state_t
st_task_state (const cm_value_t *task)
{
    return st_task_fsm_parse (cm_map_str (task, "status"), cm_map_bool (task, "cancelled", false));
}

bool
st_task_active (const cm_value_t *task)
{
    return !st_task_fsm_ended (st_task_state (task));
}

int
st_task_put (st_ctx_t *c, const cm_value_t *task)
{
    const char *id = cm_map_str_or (task, "task_id", "");
    return st_db_put (c->db, c->txn, ST_DBI_TASKS, id, strlen (id), task);
}

//  A regenerate or an edit's answer: what the session's regeneration
//  analytics count (a first answer and a continue are not).
static bool
s_regeneration (const char *kind)
{
    return strcmp (kind, "regenerate") == 0 || strcmp (kind, "edit") == 0;
}

//  The task's task_queue key.
static int
s_queue_key (st_key_t *key, const cm_value_t *task)
{
    return st_key_queue (key, cm_map_int (task, "created_at", 0),
                         cm_map_str_or (task, "task_id", ""));
}

int
st_task_running_id (st_ctx_t *c, const char *message_id, char *task_id)
{
    const void *data;
    size_t size;
    ST_TRY (st_db_get_raw (c->db, c->txn, ST_DBI_ACTIVE, message_id, strlen (message_id), &data,
                           &size));
    return st_key_id_set (task_id, data, size);
}

int
st_task_create (st_ctx_t *c, const char *kind, cm_value_t *message, const st_key_t *message_key,
                const char *original_message_id, const char *user_query, char *task_id)
{
    const char *message_id = cm_map_str_or (message, "id", "");
    char running[CM_ID_MAX + 1];
    int rc = st_task_running_id (c, message_id, running);
    if (rc == 0) {
        c->why = "a regeneration is already running for this message";
        return CM_ECONFLICT;
    }
    if (rc != CM_ENOTFOUND)
        return rc;
    st_key_id_new (task_id, "regen");
    const char *session_id = cm_map_str_or (message, "session_id", "");
    cm_value_t *task = cm_map_new ();
    cm_map_set_str (task, "task_id", task_id);
    cm_map_set_str (task, "kind", kind);
    cm_map_set_str (task, "message_id", message_id);
    cm_map_set_str (task, "session_id", session_id);
    cm_map_set_str (task, "original_message_id", original_message_id);
    cm_map_set_str (task, "user", st_ctx_user (c));
    cm_map_set_str (task, "user_query", user_query);
    st_rows_copy_str (task, "context", c->p, "context");
    st_rows_copy_str (task, "instruction", c->p, "instruction");
    st_rows_copy_str (task, "model", c->p, "model");
    const cm_value_t *temperature = cm_map_get (c->p, "temperature");
    if (temperature && (temperature->type == CM_T_DBL || temperature->type == CM_T_INT))
        cm_map_set_dbl (task, "temperature", cm_map_dbl (c->p, "temperature", 0));
    else
        cm_map_set_nil (task, "temperature");
    cm_map_set_str (task, "status", st_task_fsm_status (ST_TASK_PENDING));
    cm_map_set_int (task, "progress", 0);
    cm_map_set_int (task, "attempts", 0);
    cm_map_set_int (task, "created_at", c->now);
    cm_map_set_int (task, "started_at", 0);
    cm_map_set_int (task, "completed_at", 0);
    cm_map_set_nil (task, "error_message");
    st_key_t qkey;
    rc = s_queue_key (&qkey, task);
    if (rc == 0)
        rc = st_task_put (c, task);
    if (rc == 0)
        rc = st_db_put_raw (c->db, c->txn, ST_DBI_TASK_QUEUE, qkey.bytes, qkey.len, "", 0);
    if (rc == 0)
        rc = st_db_put_raw (c->db, c->txn, ST_DBI_ACTIVE, message_id, strlen (message_id),
                            task_id, strlen (task_id));
    cm_value_destroy (&task);
    if (rc)
        return rc;
    cm_map_set_bool (message, "regenerating", true);
    ST_TRY (st_db_put (c->db, c->txn, ST_DBI_MESSAGES, message_key->bytes, message_key->len,
                       message));
    if (s_regeneration (kind))
        ST_TRY (st_rows_analytics_update (c, session_id, "regeneration_count", 1, -1));
    c->ops->tasks_changed = true;
    return 0;
}

//  The END action: the task (its state already set) leaves the queue and
//  the active index; error NULL: completed.
static int
s_finish (st_ctx_t *c, cm_value_t *task, const char *error)
{
    st_key_t qkey;
    ST_TRY (s_queue_key (&qkey, task));
    int rc = st_db_del (c->db, c->txn, ST_DBI_TASK_QUEUE, qkey.bytes, qkey.len);
    if (rc && rc != CM_ENOTFOUND)
        return rc;
    const char *message_id = cm_map_str_or (task, "message_id", "");
    rc = st_db_del (c->db, c->txn, ST_DBI_ACTIVE, message_id, strlen (message_id));
    if (rc && rc != CM_ENOTFOUND)
        return rc;
    cm_map_set_int (task, "completed_at", c->now);
    cm_map_set_str (task, "lease_worker", "");
    if (error)
        cm_map_set_str (task, "error_message", error);
    else
        cm_map_set_int (task, "progress", 100);
    ST_TRY (st_task_put (c, task));
    const char *session_id = cm_map_str_or (task, "session_id", "");
    bool is_regen = s_regeneration (cm_map_str_or (task, "kind", ""));
    if (is_regen) {
        int64_t took = c->now - cm_map_int (task, "created_at", c->now);
        ST_TRY (st_rows_analytics_update (c, session_id,
                                 error ? "regeneration_failed" : "regeneration_completed", 1,
                                 error ? -1 : took));
    }
    //  The message may be gone (deleted while generating).
    st_key_t mkey;
    rc = st_rows_message_key (c, message_id, &mkey);
    if (rc == CM_ENOTFOUND)
        return 0;
    ST_TRY (rc);
    cm_value_t *message = NULL;
    ST_TRY (st_db_get (c->db, c->txn, ST_DBI_MESSAGES, mkey.bytes, mkey.len, &message));
    cm_map_set_bool (message, "regenerating", false);
    rc = st_db_put (c->db, c->txn, ST_DBI_MESSAGES, mkey.bytes, mkey.len, message);
    cm_value_destroy (&message);
    return rc;
}

//  The ANNOUNCE action: the failure is audited and announced.
static int
s_announce (st_ctx_t *c, const cm_value_t *task, const char *error, const char *user)
{
    cm_value_t *details = cm_map_new ();
    st_rows_copy_str (details, "task_id", task, "task_id");
    cm_map_set_str (details, "error", error);
    ST_TRY (st_rows_audit (c, cm_map_str_or (task, "session_id", ""), cm_map_str (task, "message_id"),
                  "regenerate_failed", user, details));
    st_view_error_event (c, task, error);
    return 0;
}

bool
st_task_resuming (const cm_value_t *task)
{
    return cm_map_bool (task, "resume_seam", false);
}

int
st_task_load (st_ctx_t *c, const char *task_id, cm_value_t **task)
{
    if (!task_id)
        return CM_ENOTFOUND;
    return st_db_get (c->db, c->txn, ST_DBI_TASKS, task_id, strlen (task_id), task);
}

int
st_task_check (st_ctx_t *c, const cm_value_t *task, st_task_event_t event)
{
    st_task_step_t step = st_task_fsm_step (st_task_state (task), event);
    if (step.rc)
        c->why = step.why;
    return step.rc;
}

int
st_task_apply (st_ctx_t *c, cm_value_t *task, st_task_event_t event, const char *detail)
{
    st_task_step_t step = st_task_fsm_step (st_task_state (task), event);
    if (step.rc) {
        c->why = step.why;
        return step.rc;
    }
    if (step.actions & ST_TASK_DO_DELETE) {
        const char *id = cm_map_str_or (task, "task_id", "");
        return st_db_del (c->db, c->txn, ST_DBI_TASKS, id, strlen (id));
    }
    cm_map_set_str (task, "status", st_task_fsm_status (step.next));
    if (st_task_fsm_cancelled (step.next))
        cm_map_set_bool (task, "cancelled", true);
    int64_t lease_end = c->now + c->ops->config.lease_ms;
    if (step.actions & ST_TASK_DO_LEASE) {
        cm_map_set_str (task, "lease_worker", detail ? detail : "");
        cm_map_set_int (task, "lease_expires", lease_end);
        cm_map_set_int (task, "attempts", cm_map_int (task, "attempts", 0) + 1);
        if (cm_map_int (task, "started_at", 0) <= 0)
            cm_map_set_int (task, "started_at", c->now);
        cm_map_set_int (task, "fence", cm_map_int (task, "fence", 0) + 1);
        //  A lease that continues checkpointed text: its first checkpoint
        //  is the seam readers see (regeneration_progress resumed: true).
        cm_map_set_bool (task, "resume_seam", *cm_map_str_or (task, "partial", "") != '\0');
    }
    if (step.actions & ST_TASK_DO_RELEASE) {
        cm_map_set_str (task, "lease_worker", "");
        if (detail)
            cm_map_set_str (task, "last_error", detail);
        c->ops->tasks_changed = true;
    }
    if (step.actions & ST_TASK_DO_RENEW)
        cm_map_set_int (task, "lease_expires", lease_end);
    if (!(step.actions & ST_TASK_DO_END))
        return st_task_put (c, task);
    const char *error = step.next == ST_TASK_COMPLETED ? NULL : detail ? detail : "failed";
    ST_TRY (s_finish (c, task, error));
    if (!(step.actions & ST_TASK_DO_ANNOUNCE))
        return 0;
    //  The user's own events name the requester; the others the task's user.
    bool by_user = event == ST_TASK_CANCEL || event == ST_TASK_MESSAGE_GONE;
    return s_announce (c, task, error, by_user ? st_ctx_user (c) : cm_map_str (task, "user"));
}

//  The worker's task: CM_ECANCELLED when someone ended the task under it
//  (cancel, delete of its message), CM_ESTALE when its fencing token is
//  not the task's, CM_ELEASE unless it holds the lease.
int
st_task_held (st_ctx_t *c, st_task_event_t event, cm_value_t **task_out)
{
    cm_value_t *task = NULL;
    int rc = st_task_load (c, cm_map_str (c->p, "task_id"), &task);
    if (rc == CM_ENOTFOUND) {
        c->why = "no such task";
        return CM_ELEASE;
    }
    ST_TRY (rc);
    rc = st_task_check (c, task, event);
    const char *worker = cm_map_str_or (c->p, "worker", "");
    int64_t fence = cm_map_int (c->p, "fence", 0);
    int64_t current = cm_map_int (task, "fence", 0);
    if (rc != CM_ECANCELLED && fence != current) {
        snprintf (c->why_buf, sizeof c->why_buf,
                  "fencing token %lld is stale: the task's lease is at %lld",
                  (long long) fence, (long long) current);
        c->why = c->why_buf;
        cm_warning ("task %s: refused a write of worker %s with fencing token %lld (now %lld)",
                    cm_map_str_or (task, "task_id", ""), worker, (long long) fence,
                    (long long) current);
        atomic_fetch_add (&c->ops->stale_refused, 1);
        rc = CM_ESTALE;
    }
    else if (rc == 0 && strcmp (cm_map_str_or (task, "lease_worker", ""), worker) != 0) {
        c->why = "another worker holds the lease";
        rc = CM_ELEASE;
    }
    if (rc) {
        cm_value_destroy (&task);
        return rc;
    }
    //  Working on a lease is a sign of life too: a regenerator whose every
    //  slot is busy claims nothing for a while (ping's regenerators).
    st_ops_worker_seen (c->ops, worker, c->now);
    *task_out = task;
    return 0;
}
