/*  st_h_sessions.c: session and message handlers (st_h_sessions.h).  */
#include "st_h_sessions.h"

#include "cm_error.h"
#include "cm_shard.h"
#include "st_branch.h"
#include "st_h_branch.h"
#include "st_h_trash.h"
#include "st_h_versions.h"
#include "st_task.h"
#include "st_versions.h"
#include "st_view.h"

#include <stdlib.h>
#include <string.h>

#define S_TITLE_CHARS 60

static void
s_title (const char *query, char *title, size_t size)
{
    //  First S_TITLE_CHARS code points, never cutting a UTF-8 sequence.
    size_t bytes = 0, chars = 0;
    while (query[bytes] && chars < S_TITLE_CHARS) {
        size_t step = 1;
        unsigned char lead = (unsigned char) query[bytes];
        if (lead >= 0xf0)
            step = 4;
        else if (lead >= 0xe0)
            step = 3;
        else if (lead >= 0xc0)
            step = 2;
        size_t j;
        for (j = 1; j < step && query[bytes + j]; j++)
            ;
        if (j < step || bytes + step >= size)
            break;
        bytes += step;
        chars++;
    }
    memcpy (title, query, bytes);
    title[bytes] = 0;
}

int
st_h_session_start (st_ctx_t *c)
{
    const char *session_id = cm_map_str_or (c->p, "session_id", "");
    const char *query = cm_map_str_or (c->p, "query", "");
    if (!cm_session_id_valid (session_id)) {
        c->why = "invalid session id";
        return CM_EINVAL;
    }
    if (!*query) {
        c->why = "query must not be empty";
        return CM_EINVAL;
    }
    cm_value_t *session = NULL;
    int rc = st_db_get (c->db, c->txn, ST_DBI_SESSIONS, session_id, strlen (session_id), &session);
    if (rc == 0 && strcmp (cm_map_str_or (session, "user", ""), st_ctx_user (c)) != 0) {
        cm_value_destroy (&session);
        return CM_ENOTFOUND;
    }
    if (rc && rc != CM_ENOTFOUND)
        return rc;
    //  A deleted session keeps its id while it can be restored.
    rc = session ? 0 : st_h_trash_session_held (c, session_id);
    if (rc == 0 && !session && cm_map_bool (c->p, "existing", false)) {
        //  A sharded gateway looking for the shard that holds the session.
        c->why = CM_SHARD_ABSENT;
        return CM_ENOTFOUND;
    }
    if (rc == 0)
        rc = st_rows_rate_user (c, true);
    if (rc) {
        cm_value_destroy (&session);
        return rc;
    }
    if (!session) {
        char title[S_TITLE_CHARS * 4 + 1];
        s_title (query, title, sizeof title);
        session = cm_map_new ();
        cm_map_set_str (session, "session_id", session_id);
        cm_map_set_str (session, "user", st_ctx_user (c));
        cm_map_set_str (session, "title", title);
        cm_map_set_int (session, "created_at", c->now);
        cm_map_set_int (session, "message_count", 0);
        cm_map_set_int (session, "next_seq", 1);
        st_key_t owner;
        rc = st_key_pair (&owner, st_ctx_user (c), session_id);
        if (rc == 0)
            rc = st_db_put_raw (c->db, c->txn, ST_DBI_USER_SESSIONS, owner.bytes, owner.len, "",
                                0);
    }
    //  The new turn continues the end of the active path.
    uint64_t branch_seq = 0;
    uint32_t branch_version = 0;
    if (rc == 0)
        rc = st_branch_session_tail (c, session, &branch_seq, &branch_version);
    uint64_t seq = (uint64_t) cm_map_int (session, "next_seq", 1);
    char user_id[CM_MESSAGE_ID_MAX + 1], assistant_id[CM_MESSAGE_ID_MAX + 1];
    cm_value_t *user_msg = st_rows_message_new (session_id, seq, "user", query, c->now, user_id);
    cm_value_t *asst_msg = st_rows_message_new (session_id, seq + 1, "assistant", "", c->now,
                                          assistant_id);
    st_branch_tag (user_msg, branch_seq, branch_version);
    st_branch_tag (asst_msg, branch_seq, branch_version);
    cm_map_set_int (session, "next_seq", (int64_t) seq + 2);
    cm_map_set_int (session, "message_count", cm_map_int (session, "message_count", 0) + 2);
    cm_map_set_int (session, "updated_at", c->now);
    st_key_t ukey, akey;
    char task_id[CM_ID_MAX + 1];
    if (rc == 0)
        rc = st_rows_session_put (c, session);
    if (rc == 0)
        rc = st_rows_message_insert (c, user_msg, &ukey);
    if (rc == 0)
        rc = st_rows_message_insert (c, asst_msg, &akey);
    if (rc == 0)
        rc = st_task_create (c, "answer", asst_msg, &akey, user_id, query, task_id);
    cm_value_destroy (&session);
    cm_value_destroy (&user_msg);
    cm_value_destroy (&asst_msg);
    ST_TRY (rc);
    cm_value_t *details = cm_map_new ();
    cm_map_set_str (details, "task_id", task_id);
    cm_map_set_str (details, "assistant_message_id", assistant_id);
    ST_TRY (st_rows_audit (c, session_id, user_id, "session_start", st_ctx_user (c), details));
    cm_value_t *data = cm_map_new ();
    cm_map_set_str (data, "session_id", session_id);
    cm_map_set_str (data, "user_message_id", user_id);
    cm_map_set_str (data, "assistant_message_id", assistant_id);
    cm_map_set_str (data, "task_id", task_id);
    c->ok = cm_map_new ();
    cm_map_set (c->ok, "data", data);
    st_view_session_updated (c, session_id);
    return 0;
}

//  The edit's history record (st_key_history), its id into hist_id.
static int
s_history (st_ctx_t *c, const char *message_id, const char *session_id, const char *original,
           const char *content, char *hist_id)
{
    st_key_id_new (hist_id, "hist");
    cm_value_t *history = cm_map_new ();
    cm_map_set_str (history, "id", hist_id);
    cm_map_set_str (history, "message_id", message_id);
    cm_map_set_str (history, "session_id", session_id);
    cm_map_set_str (history, "original_content", original);
    cm_map_set_str (history, "edited_content", content);
    cm_map_set_int (history, "edit_timestamp", c->now);
    cm_map_set_str (history, "user_id", st_ctx_user (c));
    st_key_t hkey;
    int rc = st_key_history (&hkey, message_id, c->now, ++c->ops->seq, hist_id);
    if (rc == 0)
        rc = st_db_put (c->db, c->txn, ST_DBI_HISTORY, hkey.bytes, hkey.len, history);
    cm_value_destroy (&history);
    return rc;
}

//  An answer's edit replaces the text of the version shown, in place.
static int
s_edit_answer (st_ctx_t *c, cm_value_t *msg, const st_key_t *mkey, const char *content)
{
    ST_TRY (st_rows_rate_user (c, false));
    cm_map_set_str (msg, "content", content);
    cm_map_set_bool (msg, "edited", true);
    //  The edit is of the version shown: its record follows.
    ST_TRY (st_versions_sync (c->db, c->txn, mkey->bytes, mkey->len, msg, c->now));
    return st_db_put (c->db, c->txn, ST_DBI_MESSAGES, mkey->bytes, mkey->len, msg);
}

int
st_h_message_edit (st_ctx_t *c)
{
    const char *message_id = cm_map_str (c->p, "message_id");
    const char *content = cm_map_str_or (c->p, "content", "");
    if (!*content) {
        c->why = "content must not be empty";
        return CM_EINVAL;
    }
    bool trigger = cm_map_bool (c->p, "trigger_regeneration", true);
    st_key_t mkey;
    cm_value_t *msg = NULL, *session = NULL;
    ST_TRY (st_rows_message_load (c, message_id, &msg, &mkey, &session));
    const char *session_id = cm_map_str_or (msg, "session_id", "");
    bool question = strcmp (cm_map_str_or (msg, "role", ""), "user") == 0;
    char *original = strdup (cm_map_str_or (msg, "content", ""));
    //  A question gets a new version and a new branch below it; an
    //  answer is edited in place.
    st_h_branch_edit_t edit = {0};
    int rc = !original ? CM_ENOMEM
             : question ? st_h_branch_edit (c, msg, &mkey, session, content, trigger, &edit)
                        : s_edit_answer (c, msg, &mkey, content);
    char hist_id[CM_ID_MAX + 1];
    if (rc == 0)
        rc = s_history (c, message_id, session_id, original, content, hist_id);
    if (rc == 0)
        rc = st_rows_analytics_update (c, session_id, "edit_count", 1, -1);
    if (rc == 0) {
        cm_value_t *details = cm_map_new ();
        cm_map_set_str (details, "history_id", hist_id);
        if (*edit.task_id)
            cm_map_set_str (details, "task_id", edit.task_id);
        if (question)
            cm_map_set_int (details, "version", edit.version);
        rc = st_rows_audit (c, session_id, message_id, "edit", st_ctx_user (c), details);
    }
    cm_value_destroy (&session);
    if (rc) {
        free (original);
        cm_value_destroy (&msg);
        return rc;
    }
    st_view_reply_head (c, message_id, session_id, "edit");
    cm_value_t *data = cm_map_new ();
    cm_map_set_str (data, "original_content", original);
    cm_map_set_str (data, "new_content", content);
    cm_map_set_bool (data, "triggered_regeneration", *edit.task_id != 0);
    if (*edit.task_id)
        cm_map_set_str (data, "regeneration_task_id", edit.task_id);
    else
        cm_map_set_nil (data, "regeneration_task_id");
    if (*edit.answer_id)
        cm_map_set_str (data, "assistant_message_id", edit.answer_id);
    else
        cm_map_set_nil (data, "assistant_message_id");
    st_view_versions (data, msg);
    cm_map_set (c->ok, "data", data);
    st_view_message_edited (c, session_id, message_id, content, original);
    if (*edit.answer_id)
        st_view_session_updated (c, session_id);
    free (original);
    cm_value_destroy (&msg);
    return 0;
}

int
st_h_regen_create (st_ctx_t *c)
{
    const char *message_id = cm_map_str (c->p, "message_id");
    st_key_t mkey;
    cm_value_t *msg = NULL;
    ST_TRY (st_rows_message_load (c, message_id, &msg, &mkey, NULL));
    int rc = 0;
    if (strcmp (cm_map_str_or (msg, "role", ""), "assistant") != 0) {
        c->why = "only assistant messages can be regenerated";
        rc = CM_EINVAL;
    }
    const char *session_id = cm_map_str_or (msg, "session_id", "");
    if (rc == 0)
        rc = st_h_versions_room (c, msg);
    //  The question of the answer's own branch, at the version it follows.
    char user_id[CM_MESSAGE_ID_MAX + 1] = "";
    char *query = NULL;
    if (rc == 0)
        rc = st_branch_question_of (c, session_id, message_id, user_id, &query);
    if (rc == 0)
        rc = st_rows_rate_user (c, true);
    char task_id[CM_ID_MAX + 1];
    if (rc == 0)
        rc = st_task_create (c, "regenerate", msg, &mkey, user_id, query, task_id);
    free (query);
    if (rc == 0) {
        cm_value_t *details = cm_map_new ();
        cm_map_set_str (details, "task_id", task_id);
        rc = st_rows_audit (c, session_id, message_id, "regenerate", st_ctx_user (c), details);
    }
    if (rc == 0) {
        st_view_reply_head (c, message_id, session_id, "regenerate");
        cm_value_t *data = cm_map_new ();
        cm_map_set_str (data, "task_id", task_id);
        cm_map_set_str (data, "original_message_id", user_id);
        cm_map_set (c->ok, "data", data);
    }
    cm_value_destroy (&msg);
    return rc;
}

int
st_h_session_get (st_ctx_t *c)
{
    cm_value_t *session = NULL;
    ST_TRY (st_rows_session_load (c, cm_map_str_or (c->p, "session_id", ""), &session));
    st_branch_session_t path;
    int rc = st_branch_load (c, cm_map_str_or (session, "session_id", ""), &path);
    if (rc) {
        cm_value_destroy (&session);
        return rc;
    }
    c->ok = cm_map_new ();
    cm_map_set (c->ok, "session", st_view_session (c, session, &path));
    st_branch_free (&path);
    cm_value_destroy (&session);
    return 0;
}

int
st_h_history_get (st_ctx_t *c)
{
    const char *message_id = cm_map_str (c->p, "message_id");
    st_key_t mkey, prefix;
    char session_id[CM_SESSION_ID_MAX + 1];
    ST_TRY (st_rows_message_locate (c, message_id, &mkey, session_id));
    ST_TRY (st_key_prefix (&prefix, message_id));
    cm_value_t *list = NULL;
    ST_TRY (st_rows_collect (c, ST_DBI_HISTORY, &prefix, &list));
    cm_value_t *history = cm_arr_new ();
    for (size_t i = 0; i < cm_value_len (list); i++) {
        cm_value_t *item = st_rows_decode (st_rows_value (list, i));
        if (!item)
            continue;
        cm_arr_push (history, st_view_history_entry (item));
        cm_value_destroy (&item);
    }
    cm_value_destroy (&list);
    c->ok = cm_map_new ();
    cm_map_set_str (c->ok, "message_id", message_id);
    cm_map_set_int (c->ok, "edit_count", (int64_t) cm_value_len (history));
    cm_map_set (c->ok, "history", history);
    st_view_now (c, c->ok, "timestamp");
    return 0;
}
