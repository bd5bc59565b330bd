/*  st_h_trash.c: undoable deletes of messages and sessions (st_h_trash.h). */
#include "st_h_trash.h"

#include "cm_error.h"
#include "st_branch.h"
#include "st_key.h"
#include "st_rows.h"
#include "st_task.h"
#include "st_versions.h"
#include "st_view.h"

#include <stdlib.h>
#include <string.h>

//  The tombstone key of a message ('m') or session ('s') id.
static int
s_key (st_key_t *key, char kind, const char *id)
{
    char head[2] = {kind, 0};
    ST_TRY (st_key_set (key, head, 2));
    size_t len = strlen (id);
    if (key->len + len > ST_KEY_MAX)
        return CM_EINVAL;
    memcpy (key->bytes + key->len, id, len);
    key->len += len;
    return 0;
}

//  Moves one record (when there is one) into rows.
static int
s_take (st_ctx_t *c, cm_value_t *rows, st_dbi_t which, const void *key, size_t len)
{
    const void *data;
    size_t size;
    int rc = st_db_get_raw (c->db, c->txn, which, key, len, &data, &size);
    if (rc == CM_ENOTFOUND)
        return 0;
    ST_TRY (rc);
    cm_value_t *row = cm_arr_new ();
    cm_arr_push (row, cm_str_new (st_db_name (which)));
    cm_arr_push (row, cm_bin_new (key, len));
    cm_arr_push (row, cm_bin_new (data, size));
    cm_arr_push (rows, row);
    return st_db_del (c->db, c->txn, which, key, len);
}

//  Moves every record of db which under prefix into rows.
static int
s_take_prefix (st_ctx_t *c, cm_value_t *rows, st_dbi_t which, const st_key_t *prefix)
{
    cm_value_t *list = NULL;
    ST_TRY (st_rows_collect (c, which, prefix, &list));
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < cm_value_len (list); i++) {
        const cm_value_t *k = st_rows_key (list, i), *v = st_rows_value (list, i);
        cm_value_t *row = cm_arr_new ();
        cm_arr_push (row, cm_str_new (st_db_name (which)));
        cm_arr_push (row, cm_value_dup (k));
        cm_arr_push (row, cm_value_dup (v));
        cm_arr_push (rows, row);
        rc = st_db_del (c->db, c->txn, which, k->u.s.ptr, k->u.s.len);
    }
    cm_value_destroy (&list);
    return rc;
}

//  Ends a generation running for the message: its worker gets
//  CM_ECANCELLED on its next call. Before the message is taken, so the
//  record kept (and restored) no longer says regenerating.
static int
s_stop_generation (st_ctx_t *c, const char *id)
{
    char task_id[CM_ID_MAX + 1];
    int rc = st_task_running_id (c, id, task_id);
    if (rc == CM_ENOTFOUND)
        return 0;
    ST_TRY (rc);
    cm_value_t *task = NULL;
    ST_TRY (st_task_load (c, task_id, &task));
    rc = st_task_apply (c, task, ST_TASK_MESSAGE_GONE, "message deleted");
    cm_value_destroy (&task);
    return rc;
}

//  Moves one message with everything of it into rows: the record, its
//  index entry, votes, versions, feedback and edit history.
static int
s_take_message (st_ctx_t *c, cm_value_t *rows, const cm_value_t *k, const cm_value_t *msg)
{
    const char *id = cm_map_str_or (msg, "id", "");
    st_key_t mkey, prefix;
    ST_TRY (s_stop_generation (c, id));
    ST_TRY (st_key_set (&mkey, k->u.s.ptr, k->u.s.len));
    ST_TRY (s_take (c, rows, ST_DBI_MESSAGES, mkey.bytes, mkey.len));
    ST_TRY (s_take (c, rows, ST_DBI_MSG_INDEX, id, strlen (id)));
    ST_TRY (s_take_prefix (c, rows, ST_DBI_VOTES, &mkey));
    ST_TRY (s_take_prefix (c, rows, ST_DBI_VERSIONS, &mkey));
    ST_TRY (st_key_prefix (&prefix, id));
    ST_TRY (s_take_prefix (c, rows, ST_DBI_FEEDBACK, &prefix));
    return s_take_prefix (c, rows, ST_DBI_HISTORY, &prefix);
}

//  Moves the messages of the session into rows, their ids to ids: every
//  one, or (message_id not NULL) that message alone (only) or with every
//  later turn of its branch and the branches below those (st_branch_below).
static int
s_take_messages (st_ctx_t *c, const char *session_id, const char *message_id, bool only,
                 cm_value_t *rows, cm_value_t *ids)
{
    st_branch_session_t s;
    ST_TRY (st_branch_load (c, session_id, &s));
    bool *take = calloc (s.n ? s.n : 1, sizeof *take);
    size_t at = message_id ? st_branch_find (&s, message_id) : s.n;
    int rc = !take ? CM_ENOMEM : message_id && at == s.n ? CM_ENOTFOUND : 0;
    if (rc == 0 && !message_id)
        for (size_t i = 0; i < s.n; i++)
            take[i] = true;
    else if (rc == 0 && only)
        take[at] = true;
    else if (rc == 0)
        st_branch_below (s.items, s.n, at, take);
    for (size_t i = 0; rc == 0 && i < s.n; i++) {
        if (!take[i] || !s.msgs[i])
            continue;
        cm_arr_push (ids, cm_str_new (cm_map_str_or (s.msgs[i], "id", "")));
        rc = s_take_message (c, rows, st_rows_key (s.list, i), s.msgs[i]);
    }
    free (take);
    st_branch_free (&s);
    return rc;
}

//  Writes the tombstone under key. Takes rows and ids.
static int
s_bury (st_ctx_t *c, const st_key_t *key, const char *kind, const char *id,
        const char *session_id, const char *scope, cm_value_t *rows, cm_value_t *ids)
{
    cm_value_t *stone = cm_map_new ();
    cm_map_set_str (stone, "kind", kind);
    cm_map_set_str (stone, "id", id);
    cm_map_set_str (stone, "session_id", session_id);
    cm_map_set_str (stone, "user", st_ctx_user (c));
    cm_map_set_int (stone, "deleted_at", c->now);
    cm_map_set_str (stone, "scope", scope);
    cm_map_set (stone, "ids", ids);
    cm_map_set (stone, "rows", rows);
    int rc = st_db_put (c->db, c->txn, ST_DBI_TRASH, key->bytes, key->len, stone);
    cm_value_destroy (&stone);
    return rc;
}

//  The reply data and audit details of a delete (a new map).
static cm_value_t *
s_deleted (st_ctx_t *c, const cm_value_t *ids, const char *scope)
{
    cm_value_t *data = cm_map_new ();
    cm_map_set_int (data, "deleted_count", (int64_t) cm_value_len (ids));
    cm_map_set (data, "deleted_message_ids", cm_value_dup (ids));
    cm_map_set_str (data, "scope", scope);
    st_view_time (data, "undo_until", c->now + c->ops->config.undo_ms);
    return data;
}

int
st_h_message_delete (st_ctx_t *c)
{
    const char *message_id = cm_map_str (c->p, "message_id");
    const char *scope = cm_map_str_or (c->p, "scope", "following");
    bool only = strcmp (scope, "message") == 0;
    if (!only && strcmp (scope, "following") != 0) {
        c->why = "scope must be \"message\" or \"following\"";
        return CM_EINVAL;
    }
    st_key_t mkey, tkey;
    cm_value_t *msg = NULL, *session = NULL;
    ST_TRY (st_rows_message_load (c, message_id, &msg, &mkey, &session));
    //  A question with versions alone: its branches would lose the turn
    //  they hang under.
    bool point = strcmp (cm_map_str_or (msg, "role", ""), "user") == 0
                 && st_versions_count (msg) > 1;
    cm_value_destroy (&msg);
    char session_id[CM_SESSION_ID_MAX + 1];
    snprintf (session_id, sizeof session_id, "%s", cm_map_str_or (session, "session_id", ""));
    int rc = 0;
    if (only && point) {
        c->why = "the question has versions, each with the turns below it: delete it with "
                 "scope \"following\"";
        rc = CM_EBADSTATE;
    }
    if (rc == 0)
        rc = st_rows_rate_user (c, false);
    if (rc == 0)
        rc = s_key (&tkey, 'm', message_id);
    cm_value_t *rows = cm_arr_new (), *ids = cm_arr_new ();
    if (rc == 0)
        rc = s_take_messages (c, session_id, message_id, only, rows, ids);
    int64_t deleted = (int64_t) cm_value_len (ids);
    if (rc == 0) {
        int64_t count = cm_map_int (session, "message_count", 0) - deleted;
        cm_map_set_int (session, "message_count", count < 0 ? 0 : count);
        cm_map_set_int (session, "updated_at", c->now);
        rc = st_rows_session_put (c, session);
    }
    cm_value_destroy (&session);
    cm_value_t *data = s_deleted (c, ids, scope);
    if (rc == 0) {
        rc = s_bury (c, &tkey, "message", message_id, session_id, scope, rows, cm_value_dup (ids));
        rows = NULL;
    }
    if (rc == 0)
        rc = st_rows_audit (c, session_id, message_id, "delete", st_ctx_user (c),
                            cm_value_dup (data));
    cm_value_destroy (&rows);
    if (rc) {
        cm_value_destroy (&ids);
        cm_value_destroy (&data);
        return rc;
    }
    st_view_reply_head (c, message_id, session_id, "delete");
    cm_map_set (c->ok, "data", data);
    st_view_message_deleted (c, session_id, message_id, ids);
    return 0;
}

//  The caller's tombstone under key, still restorable: CM_ENOTFOUND (with
//  missing as the why), CM_EBADSTATE after the window.
static int
s_dig (st_ctx_t *c, const st_key_t *key, const char *missing, cm_value_t **stone)
{
    int rc = st_db_get (c->db, c->txn, ST_DBI_TRASH, key->bytes, key->len, stone);
    if (rc == 0 && strcmp (cm_map_str_or (*stone, "user", ""), st_ctx_user (c)) != 0) {
        cm_value_destroy (stone);
        rc = CM_ENOTFOUND;
    }
    if (rc == CM_ENOTFOUND)
        c->why = missing;
    ST_TRY (rc);
    int64_t until = cm_map_int (*stone, "deleted_at", 0) + c->ops->config.undo_ms;
    if (c->now >= until) {
        cm_value_destroy (stone);
        snprintf (c->why_buf, sizeof c->why_buf,
                  "the undo window (%lld s after the delete) has passed; it is gone for good",
                  (long long) (c->ops->config.undo_ms / 1000));
        c->why = c->why_buf;
        return CM_EBADSTATE;
    }
    return 0;
}

//  The db of a tombstone row's name; ST_DBI_COUNT when none is called so.
static st_dbi_t
s_dbi (const char *name)
{
    int which = 0;
    while (which < ST_DBI_COUNT && strcmp (st_db_name ((st_dbi_t) which), name) != 0)
        which++;
    return (st_dbi_t) which;
}

//  Checks that every row of the tombstone can go back (a damaged one is
//  CM_ECORRUPT, a key that exists again CM_ECONFLICT), then puts them all
//  and drops the tombstone.
static int
s_raise (st_ctx_t *c, const st_key_t *key, const cm_value_t *stone)
{
    const cm_value_t *rows = cm_map_get (stone, "rows");
    size_t n = cm_value_len (rows);
    for (size_t i = 0; i < n; i++) {
        const cm_value_t *row = cm_arr_at (rows, i);
        const cm_value_t *name = cm_arr_at (row, 0), *k = cm_arr_at (row, 1),
                         *v = cm_arr_at (row, 2);
        if (!name || name->type != CM_T_STR || !k || k->type != CM_T_BIN || !v
            || v->type != CM_T_BIN || s_dbi (name->u.s.ptr) == ST_DBI_COUNT)
            return CM_ECORRUPT;
        const void *data;
        size_t size;
        int rc = st_db_get_raw (c->db, c->txn, s_dbi (name->u.s.ptr), k->u.s.ptr, k->u.s.len,
                                &data, &size);
        if (rc == 0) {
            c->why = "a record the delete removed exists again (its id was reused)";
            return CM_ECONFLICT;
        }
        if (rc != CM_ENOTFOUND)
            return rc;
    }
    for (size_t i = 0; i < n; i++) {
        const cm_value_t *row = cm_arr_at (rows, i);
        const cm_value_t *k = cm_arr_at (row, 1), *v = cm_arr_at (row, 2);
        ST_TRY (st_db_put_raw (c->db, c->txn, s_dbi (cm_arr_at (row, 0)->u.s.ptr), k->u.s.ptr,
                               k->u.s.len, v->u.s.ptr, v->u.s.len));
    }
    return st_db_del (c->db, c->txn, ST_DBI_TRASH, key->bytes, key->len);
}

//  The reply data and audit details of a restore (a new map).
static cm_value_t *
s_restored (const cm_value_t *stone)
{
    const cm_value_t *ids = cm_map_get (stone, "ids");
    cm_value_t *data = cm_map_new ();
    cm_map_set_int (data, "restored_count", (int64_t) cm_value_len (ids));
    cm_map_set (data, "restored_message_ids", ids ? cm_value_dup (ids) : cm_arr_new ());
    return data;
}

int
st_h_message_restore (st_ctx_t *c)
{
    const char *message_id = cm_map_str (c->p, "message_id");
    st_key_t mkey, tkey;
    char session_id[CM_SESSION_ID_MAX + 1];
    int rc = st_rows_message_locate (c, message_id, &mkey, session_id);
    if (rc == 0) {
        c->why = "the message is not deleted";
        return CM_ECONFLICT;
    }
    if (rc != CM_ENOTFOUND)
        return rc;
    cm_value_t *stone = NULL, *session = NULL;
    ST_TRY (s_key (&tkey, 'm', message_id));
    ST_TRY (s_dig (c, &tkey,
                   "no deleted message of yours has this id (never deleted, already purged, "
                   "or restored)",
                   &stone));
    rc = st_rows_rate_user (c, false);
    if (rc == 0) {
        rc = st_rows_session_load (c, cm_map_str_or (stone, "session_id", ""), &session);
        if (rc == CM_ENOTFOUND)
            c->why = "the message's session was deleted since: restore the session first";
    }
    if (rc == 0)
        rc = s_raise (c, &tkey, stone);
    cm_value_t *data = s_restored (stone);
    if (rc == 0) {
        int64_t count = cm_map_int (session, "message_count", 0)
                        + cm_map_int (data, "restored_count", 0);
        cm_map_set_int (session, "message_count", count);
        cm_map_set_int (session, "updated_at", c->now);
        rc = st_rows_session_put (c, session);
    }
    const char *sid = cm_map_str_or (stone, "session_id", "");
    if (rc == 0)
        rc = st_rows_audit (c, sid, message_id, "restore", st_ctx_user (c), cm_value_dup (data));
    if (rc == 0) {
        st_view_reply_head (c, message_id, sid, "restore");
        cm_value_t *event = cm_map_new ();
        cm_map_set_str (event, "messageId", message_id);
        cm_map_set_int (event, "restoredCount", cm_map_int (data, "restored_count", 0));
        cm_map_set (event, "restoredMessageIds",
                    cm_value_dup (cm_map_get (data, "restored_message_ids")));
        st_view_event (c, sid, CM_EVENT_MESSAGE_RESTORED, event);
        cm_map_set (c->ok, "data", data);
        data = NULL;
    }
    cm_value_destroy (&data);
    cm_value_destroy (&session);
    cm_value_destroy (&stone);
    return rc;
}

//  A session's event of status (session_updated).
static void
s_session_event (st_ctx_t *c, const char *session_id, const char *status)
{
    cm_value_t *data = cm_map_new ();
    cm_map_set_str (data, "status", status);
    st_view_event (c, session_id, CM_EVENT_SESSION_UPDATED, data);
}

//  The reply of a session delete or restore.
static void
s_session_reply (st_ctx_t *c, const char *session_id, const char *operation, cm_value_t *data)
{
    c->ok = cm_map_new ();
    cm_map_set_str (c->ok, "session_id", session_id);
    cm_map_set_str (c->ok, "operation", operation);
    st_view_now (c, c->ok, "timestamp");
    cm_map_set (c->ok, "data", data);
}

//  Drops an existing tombstone under key (a second delete of the same
//  session id), audited as a purge.
static int s_purge_one (st_ctx_t *c, const cm_value_t *k, const cm_value_t *stone);

int
st_h_session_delete (st_ctx_t *c)
{
    const char *session_id = cm_map_str (c->p, "session_id");
    cm_value_t *session = NULL, *old = NULL;
    ST_TRY (st_rows_session_load (c, session_id, &session));
    cm_value_destroy (&session);
    st_key_t tkey, owner;
    int rc = st_rows_rate_user (c, false);
    if (rc == 0)
        rc = s_key (&tkey, 's', session_id);
    if (rc == 0)
        rc = st_key_pair (&owner, st_ctx_user (c), session_id);
    if (rc == 0) {
        rc = st_db_get (c->db, c->txn, ST_DBI_TRASH, tkey.bytes, tkey.len, &old);
        if (rc == CM_ENOTFOUND)
            rc = 0;
        else if (rc == 0) {
            cm_value_t *k = cm_bin_new (tkey.bytes, tkey.len);
            rc = s_purge_one (c, k, old);
            cm_value_destroy (&k);
        }
    }
    cm_value_destroy (&old);
    cm_value_t *rows = cm_arr_new (), *ids = cm_arr_new ();
    if (rc == 0)
        rc = s_take_messages (c, session_id, NULL, false, rows, ids);
    if (rc == 0)
        rc = s_take (c, rows, ST_DBI_SESSIONS, session_id, strlen (session_id));
    if (rc == 0)
        rc = s_take (c, rows, ST_DBI_USER_SESSIONS, owner.bytes, owner.len);
    if (rc == 0)
        rc = s_take (c, rows, ST_DBI_ANALYTICS, session_id, strlen (session_id));
    cm_value_t *data = s_deleted (c, ids, "session");
    if (rc == 0) {
        rc = s_bury (c, &tkey, "session", session_id, session_id, "session", rows,
                     cm_value_dup (ids));
        rows = NULL;
    }
    if (rc == 0)
        rc = st_rows_audit (c, session_id, NULL, "session_delete", st_ctx_user (c),
                            cm_value_dup (data));
    cm_value_destroy (&rows);
    cm_value_destroy (&ids);
    if (rc) {
        cm_value_destroy (&data);
        return rc;
    }
    s_session_reply (c, session_id, "session_delete", data);
    s_session_event (c, session_id, "session_deleted");
    return 0;
}

int
st_h_trash_session_held (st_ctx_t *c, const char *session_id)
{
    st_key_t tkey;
    ST_TRY (s_key (&tkey, 's', session_id));
    cm_value_t *stone = NULL;
    int rc = st_db_get (c->db, c->txn, ST_DBI_TRASH, tkey.bytes, tkey.len, &stone);
    if (rc == CM_ENOTFOUND)
        return 0;
    ST_TRY (rc);
    bool held = c->now < cm_map_int (stone, "deleted_at", 0) + c->ops->config.undo_ms;
    cm_value_destroy (&stone);
    if (!held)
        return 0;
    c->why = "a session of this id was deleted and can still be restored (POST "
             "/api/sessions/{id}/restore); use another id, or this one after the undo window";
    return CM_ECONFLICT;
}

int
st_h_session_restore (st_ctx_t *c)
{
    const char *session_id = cm_map_str (c->p, "session_id");
    cm_value_t *session = NULL, *stone = NULL;
    int rc = st_rows_session_load (c, session_id, &session);
    cm_value_destroy (&session);
    if (rc == 0) {
        c->why = "the session is not deleted";
        return CM_ECONFLICT;
    }
    if (rc != CM_ENOTFOUND)
        return rc;
    st_key_t tkey;
    ST_TRY (s_key (&tkey, 's', session_id));
    ST_TRY (s_dig (c, &tkey,
                   "no deleted session of yours has this id (never deleted, already purged, or "
                   "restored)",
                   &stone));
    rc = st_rows_rate_user (c, false);
    if (rc == 0)
        rc = s_raise (c, &tkey, stone);
    cm_value_t *data = s_restored (stone);
    if (rc == 0)
        rc = st_rows_audit (c, session_id, NULL, "session_restore", st_ctx_user (c),
                            cm_value_dup (data));
    cm_value_destroy (&stone);
    if (rc) {
        cm_value_destroy (&data);
        return rc;
    }
    s_session_reply (c, session_id, "session_restore", data);
    s_session_event (c, session_id, "session_restored");
    return 0;
}

static int
s_purge_one (st_ctx_t *c, const cm_value_t *k, const cm_value_t *stone)
{
    ST_TRY (st_db_del (c->db, c->txn, ST_DBI_TRASH, k->u.s.ptr, k->u.s.len));
    const char *kind = cm_map_str_or (stone, "kind", "");
    cm_value_t *details = cm_map_new ();
    cm_map_set_str (details, "kind", kind);
    const cm_value_t *ids = cm_map_get (stone, "ids");
    cm_map_set_int (details, "purged_count", (int64_t) cm_value_len (ids));
    cm_map_set (details, "purged_message_ids", ids ? cm_value_dup (ids) : cm_arr_new ());
    st_view_time (details, "deleted_at", cm_map_int (stone, "deleted_at", 0));
    bool message = strcmp (kind, "message") == 0;
    return st_rows_audit (c, cm_map_str_or (stone, "session_id", ""),
                          message ? cm_map_str_or (stone, "id", "") : NULL, "purge",
                          cm_map_str_or (stone, "user", ""), details);
}

int
st_h_trash_purge (st_ctx_t *c, int64_t cutoff)
{
    cm_value_t *list = NULL;
    ST_TRY (st_rows_collect (c, ST_DBI_TRASH, NULL, &list));
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < cm_value_len (list); i++) {
        cm_value_t *stone = st_rows_decode (st_rows_value (list, i));
        if (stone && cm_map_int (stone, "deleted_at", 0) <= cutoff)
            rc = s_purge_one (c, st_rows_key (list, i), stone);
        cm_value_destroy (&stone);
    }
    cm_value_destroy (&list);
    return rc;
}
