/*  st_h_tasks.c: regeneration task handlers (st_h_tasks.h).  */
#include "st_h_tasks.h"

#include "cm_error.h"
#include "st_h_continue.h"
#include "st_h_versions.h"
#include "st_task.h"
#include "st_view.h"

#include <stdio.h>
#include <string.h>
int
st_h_task_cancel (st_ctx_t *c)
{
    cm_value_t *task = NULL;
    ST_TRY (st_task_load (c, cm_map_str (c->p, "task_id"), &task));
    int rc = 0;
    if (strcmp (cm_map_str_or (task, "user", ""), st_ctx_user (c)) != 0)
        rc = CM_ENOTFOUND;
    else
        rc = st_task_check (c, task, ST_TASK_CANCEL);
    if (rc == 0)
        rc = st_rows_rate_user (c, false);
    //  Stop keeps what was seen: the last checkpoint is the answer's text.
    if (rc == 0)
        rc = st_h_continue_keep (c, task, "cancelled");
    if (rc == 0)
        rc = st_task_apply (c, task, ST_TASK_CANCEL, "cancelled");
    if (rc == 0)
        c->ok = st_view_task_status (c, task);
    cm_value_destroy (&task);
    return rc;
}

//  Walks the active queue oldest first. Claims up to max claimable tasks
//  for worker (when worker is set), fails those out of attempts, and, with
//  requeue, turns expired leases back into pending ones (cleanup).
int
st_h_task_sweep (st_ctx_t *c, const char *worker, int64_t max, bool requeue, cm_value_t *claimed)
{
    cm_value_t *list = NULL;
    ST_TRY (st_rows_collect (c, ST_DBI_TASK_QUEUE, NULL, &list));
    int64_t next_expiry = 0;
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < cm_value_len (list); i++) {
        const cm_value_t *k = st_rows_key (list, i);
        char task_id[CM_ID_MAX + 1];
        if (st_key_queue_task (k->u.s.ptr, k->u.s.len, task_id))
            continue;
        cm_value_t *task = NULL;
        rc = st_task_load (c, task_id, &task);
        if (rc == CM_ENOTFOUND) {
            rc = st_db_del (c->db, c->txn, ST_DBI_TASK_QUEUE, k->u.s.ptr, k->u.s.len);
            continue;
        }
        if (rc)
            break;
        st_task_state_t state = st_task_state (task);
        bool pending = state == ST_TASK_PENDING;
        int64_t expires = cm_map_int (task, "lease_expires", 0);
        bool expired = state == ST_TASK_RUNNING && expires <= c->now;
        if (!pending && !expired) {
            if (state == ST_TASK_RUNNING && (!next_expiry || expires < next_expiry))
                next_expiry = expires;
            cm_value_destroy (&task);
            continue;
        }
        bool want = worker && (int64_t) cm_value_len (claimed) < max;
        int64_t attempts = cm_map_int (task, "attempts", 0);
        if ((want || requeue) && attempts >= c->ops->config.max_attempts) {
            char error[96];
            snprintf (error, sizeof error, "gave up after %lld attempts", (long long) attempts);
            rc = st_h_continue_keep (c, task, "failed");
            if (rc == 0)
                rc = st_task_apply (c, task, ST_TASK_GIVE_UP, error);
        }
        else if (want) {
            rc = st_task_apply (c, task, pending ? ST_TASK_CLAIM : ST_TASK_TAKE_OVER, worker);
            if (rc == 0) {
                cm_arr_push (claimed, st_view_claim (c, task));
                //  A resumed lease starts nothing new for the readers: the
                //  seam is its first checkpoint's resumed: true. A continue
                //  starts from text too, but its first lease is news.
                if (!st_task_resuming (task) || cm_map_int (task, "attempts", 0) == 1)
                    st_view_regenerating (c, task);
                int64_t lease_end = c->now + c->ops->config.lease_ms;
                if (!next_expiry || lease_end < next_expiry)
                    next_expiry = lease_end;
            }
        }
        else if (requeue && expired)
            rc = st_task_apply (c, task, ST_TASK_LEASE_EXPIRED, NULL);
        else if (worker)
            //  Claimable now but beyond this call's max: wake other polls.
            c->ops->tasks_changed = true;
        cm_value_destroy (&task);
    }
    cm_value_destroy (&list);
    c->ops->next_lease_expiry = next_expiry;
    return rc;
}

int
st_h_task_claim (st_ctx_t *c)
{
    const char *worker = cm_map_str_or (c->p, "worker", "");
    if (!*worker) {
        c->why = "worker must not be empty";
        return CM_EINVAL;
    }
    int64_t max = cm_map_int (c->p, "max", 1);
    if (max < 1)
        max = 1;
    if (max > 64)
        max = 64;
    st_ops_worker_seen (c->ops, worker, c->now);
    cm_value_t *claimed = cm_arr_new ();
    int rc = st_h_task_sweep (c, worker, max, false, claimed);
    if (rc) {
        cm_value_destroy (&claimed);
        return rc;
    }
    c->ok = cm_map_new ();
    cm_map_set (c->ok, "tasks", claimed);
    return 0;
}

int
st_h_task_progress (st_ctx_t *c)
{
    cm_value_t *task = NULL;
    ST_TRY (st_task_held (c, ST_TASK_PROGRESS, &task));
    int64_t progress = cm_map_int (c->p, "progress", 0);
    progress = progress < 0 ? 0 : progress > 100 ? 100 : progress;
    int64_t lease_end = c->now + c->ops->config.lease_ms;
    cm_map_set_int (task, "progress", progress);
    st_rows_copy_str (task, "progress_message", c->p, "message");
    st_rows_copy_str (task, "partial", c->p, "partial");
    //  The first checkpoint with text: the answer's time to first token
    //  as the store sees it (st_analytics.h).
    if (cm_map_int (task, "first_text_at", 0) <= 0 && *cm_map_str_or (c->p, "partial", ""))
        cm_map_set_int (task, "first_text_at", c->now);
    bool seam = st_task_resuming (task);
    cm_map_set_bool (task, "resume_seam", false);
    int rc = st_task_apply (c, task, ST_TASK_PROGRESS, NULL);
    if (rc == 0) {
        c->ok = cm_map_new ();
        st_view_time (c->ok, "lease_expires_at", lease_end);
        st_view_progress (c, task, progress, cm_map_str_or (c->p, "message", ""),
                          cm_map_str_or (c->p, "partial", ""), seam);
    }
    cm_value_destroy (&task);
    return rc;
}

int
st_h_task_event (st_ctx_t *c)
{
    const char *name = cm_map_str_or (c->p, "event", "");
    cm_event_t event = cm_event_from_name (name, strlen (name));
    if (event == CM_EVENT_NONE || cm_event_origin (event) != CM_EVENT_FROM_REGENERATOR) {
        c->why = "event must be thought_process_start, _step or _complete";
        return CM_EINVAL;
    }
    cm_value_t *task = NULL;
    ST_TRY (st_task_held (c, ST_TASK_THOUGHT, &task));
    st_view_thoughts_add (task, event, cm_map_get (c->p, "data"));
    int rc = st_task_apply (c, task, ST_TASK_THOUGHT, NULL);
    if (rc == 0) {
        c->ok = cm_map_new ();
        const cm_value_t *given = cm_map_get (c->p, "data");
        cm_value_t *data = given && given->type == CM_T_MAP ? cm_value_dup (given) : cm_map_new ();
        st_view_task_event (c, task, event, data);
    }
    cm_value_destroy (&task);
    return rc;
}

int
st_h_task_complete (st_ctx_t *c)
{
    cm_value_t *task = NULL;
    ST_TRY (st_task_held (c, ST_TASK_COMPLETE, &task));
    const char *message_id = cm_map_str_or (task, "message_id", "");
    const char *content = cm_map_str_or (c->p, "content", "");
    st_key_t mkey;
    int rc = st_rows_message_key (c, message_id, &mkey);
    cm_value_t *msg = NULL;
    if (rc == 0)
        rc = st_db_get (c->db, c->txn, ST_DBI_MESSAGES, mkey.bytes, mkey.len, &msg);
    if (rc == CM_ENOTFOUND) {
        //  The message is gone (a delete ends its task, so this is a
        //  leftover): the worker stops; cleanup retires the task.
        cm_value_destroy (&task);
        return CM_ECANCELLED;
    }
    if (rc == 0) {
        //  The answer's fields; a regenerate keeps them as a new version
        //  (st_h_versions_answer), the last answer's stay in theirs. Its
        //  thought process is none when this answer had none.
        cm_value_t *fields = st_h_continue_fields (c, task, msg, content);
        //  Cut by the model's token limit: a whole text, but no whole answer.
        if (strcmp (cm_map_str_or (c->p, "finish_reason", ""), "length") == 0)
            cm_map_set_str (fields, "finish_reason", "length");
        st_rows_usage_set (fields, c->p);
        rc = st_h_versions_answer (c, task, &mkey, msg, fields);
        cm_value_destroy (&fields);
    }
    if (rc == 0)
        rc = st_db_put (c->db, c->txn, ST_DBI_MESSAGES, mkey.bytes, mkey.len, msg);
    if (rc == 0)
        rc = st_task_apply (c, task, ST_TASK_COMPLETE, NULL);
    if (rc == 0) {
        cm_value_t *details = cm_map_new ();
        st_rows_copy_str (details, "task_id", task, "task_id");
        st_rows_copy_str (details, "kind", task, "kind");
        rc = st_rows_audit (c, cm_map_str_or (task, "session_id", ""), message_id,
                      "regenerate_complete", cm_map_str (task, "user"), details);
    }
    if (rc == 0) {
        c->ok = cm_map_new ();
        st_view_regenerated (c, task, msg);
    }
    cm_value_destroy (&msg);
    cm_value_destroy (&task);
    return rc;
}

int
st_h_task_fail (st_ctx_t *c)
{
    cm_value_t *task = NULL;
    ST_TRY (st_task_held (c, ST_TASK_FAIL, &task));
    const char *error = cm_map_str_or (c->p, "error", "generation failed");
    bool retry = cm_map_bool (c->p, "retryable", false)
                 && cm_map_int (task, "attempts", 0) < c->ops->config.max_attempts;
    //  A failure for good keeps the text streamed so far, to continue.
    int rc = retry ? 0 : st_h_continue_keep (c, task, "failed");
    if (rc == 0)
        rc = st_task_apply (c, task, retry ? ST_TASK_RETRY : ST_TASK_FAIL, error);
    if (rc == 0) {
        c->ok = cm_map_new ();
        st_rows_copy_str (c->ok, "status", task, "status");
    }
    cm_value_destroy (&task);
    return rc;
}

int
st_h_task_status (st_ctx_t *c)
{
    cm_value_t *task = NULL;
    ST_TRY (st_task_load (c, cm_map_str (c->p, "task_id"), &task));
    int rc = 0;
    if (strcmp (cm_map_str_or (task, "user", ""), st_ctx_user (c)) != 0)
        rc = CM_ENOTFOUND;
    else
        c->ok = st_view_task_status (c, task);
    cm_value_destroy (&task);
    return rc;
}

int
st_h_task_expire (st_ctx_t *c, int64_t cutoff)
{
    cm_value_t *list = NULL;
    ST_TRY (st_rows_collect (c, ST_DBI_TASKS, NULL, &list));
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < cm_value_len (list); i++) {
        cm_value_t *task = st_rows_decode (st_rows_value (list, i));
        if (task && !st_task_active (task) && cm_map_int (task, "completed_at", 0) < cutoff)
            rc = st_task_apply (c, task, ST_TASK_PURGE, NULL);
        cm_value_destroy (&task);
    }
    cm_value_destroy (&list);
    return rc;
}
