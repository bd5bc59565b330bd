/*  st_h_continue.c: stopped and cut-off answers (st_h_continue.h).  */
#include "st_h_continue.h"

#include "cm_error.h"
#include "st_h_versions.h"
#include "st_task.h"
#include "st_versions.h"
#include "st_view.h"

#include <string.h>

static bool
s_continues (const cm_value_t *task)
{
    return strcmp (cm_map_str_or (task, "kind", ""), "continue") == 0;
}

//  The generation field of an answer of task: its origin's when it
//  continues one (seed_task_id, seed_kind), else its own.
static cm_value_t *
s_generation (const cm_value_t *task)
{
    cm_value_t *generation = cm_map_new ();
    cm_map_set_str (generation, "task_id",
                    cm_map_str_or (task, "seed_task_id", cm_map_str_or (task, "task_id", "")));
    cm_map_set_str (generation, "kind",
                    cm_map_str_or (task, "seed_kind", cm_map_str_or (task, "kind", "")));
    st_rows_copy_str (generation, "original_message_id", task, "original_message_id");
    st_rows_copy_str (generation, "context", task, "context");
    st_rows_copy_str (generation, "instruction", task, "instruction");
    st_rows_copy_str (generation, "model", task, "model");
    const cm_value_t *temperature = cm_map_get (task, "temperature");
    if (temperature && (temperature->type == CM_T_DBL || temperature->type == CM_T_INT))
        cm_map_set (generation, "temperature", cm_value_dup (temperature));
    return generation;
}

cm_value_t *
st_h_continue_fields (st_ctx_t *c, const cm_value_t *task, const cm_value_t *msg,
                      const char *content)
{
    cm_value_t *fields = cm_map_new ();
    cm_map_set_str (fields, "content", content);
    if (!s_continues (task))
        cm_map_set_bool (fields, "regenerated",
                         strcmp (cm_map_str_or (task, "kind", ""), "answer") != 0);
    const char *model = cm_map_str (c->p, "model");
    if (!model)
        model = cm_map_str (task, "model");
    if (!model)
        model = cm_map_str (msg, "model");
    if (model)
        cm_map_set_str (fields, "model", model);
    const cm_value_t *thoughts = cm_map_get (task, "thought_process");
    if (thoughts)
        cm_map_set (fields, "thought_process", cm_value_dup (thoughts));
    cm_map_set (fields, "generation", s_generation (task));
    return fields;
}

int
st_h_continue_keep (st_ctx_t *c, cm_value_t *task, const char *finish_reason)
{
    const char *partial = cm_map_str_or (task, "partial", "");
    st_key_t mkey;
    int rc = st_rows_message_key (c, cm_map_str_or (task, "message_id", ""), &mkey);
    if (rc == CM_ENOTFOUND)
        return 0;
    ST_TRY (rc);
    cm_value_t *msg = NULL;
    ST_TRY (st_db_get (c->db, c->txn, ST_DBI_MESSAGES, mkey.bytes, mkey.len, &msg));
    bool in_place = st_h_versions_in_place (task, msg);
    //  Nothing was seen, or a new version could not be kept: the answer
    //  stays as it was.
    if ((!*partial && !in_place)
        || (!in_place && st_versions_count (msg) >= CM_VERSIONS_MAX)) {
        cm_value_destroy (&msg);
        return 0;
    }
    //  The worker's "model" is not in a cancel's payload: the task's or
    //  the message's is the one that wrote the text.
    cm_value_t *fields = st_h_continue_fields (c, task, msg, partial);
    cm_map_set_str (fields, "finish_reason", finish_reason);
    rc = st_h_versions_answer (c, task, &mkey, msg, fields);
    cm_value_destroy (&fields);
    if (rc == 0)
        rc = st_db_put (c->db, c->txn, ST_DBI_MESSAGES, mkey.bytes, mkey.len, msg);
    if (rc == 0) {
        cm_value_t *kept = cm_map_new ();
        cm_map_set_str (kept, "content", cm_map_str_or (msg, "content", ""));
        cm_map_set_int (kept, "versionIndex", st_versions_active (msg));
        cm_map_set_int (kept, "versionCount", st_versions_count (msg));
        cm_map_set_str (kept, "versionId", st_versions_active_id (msg));
        cm_map_set_str (kept, "finishReason", finish_reason);
        cm_map_set (task, "kept", kept);
    }
    cm_value_destroy (&msg);
    return rc;
}

//  The question the message answers: its generation's, else the last user
//  message before it (*query borrowed from *user_msg; "" when none).
static int
s_question (st_ctx_t *c, const cm_value_t *msg, const cm_value_t *generation,
            cm_value_t **user_msg, const char **original_id, const char **query)
{
    *user_msg = NULL;
    *original_id = "";
    *query = "";
    const char *id = cm_map_str (generation, "original_message_id");
    if (!id || !*id)
        return 0;
    st_key_t key;
    int rc = st_rows_message_load (c, id, user_msg, &key, NULL);
    if (rc == CM_ENOTFOUND)
        return 0; //  the question was deleted: the conversation still holds the rest
    ST_TRY (rc);
    //  A question of another session is no question of this answer.
    if (strcmp (cm_map_str_or (*user_msg, "session_id", ""), cm_map_str_or (msg, "session_id", ""))
        != 0) {
        cm_value_destroy (user_msg);
        return 0;
    }
    *original_id = cm_map_str_or (*user_msg, "id", "");
    *query = cm_map_str_or (*user_msg, "content", "");
    return 0;
}

//  The continue task: the origin's request (seed, kind, context, model,
//  temperature), the text so far and the version it grows.
static int
s_continue_task (st_ctx_t *c, const char *task_id, const cm_value_t *msg,
                 const cm_value_t *generation)
{
    cm_value_t *task = NULL;
    ST_TRY (st_task_load (c, task_id, &task));
    if (generation) {
        st_rows_copy_str (task, "seed_task_id", generation, "task_id");
        st_rows_copy_str (task, "seed_kind", generation, "kind");
        st_rows_copy_str (task, "context", generation, "context");
        st_rows_copy_str (task, "instruction", generation, "instruction");
        st_rows_copy_str (task, "model", generation, "model");
        const cm_value_t *temperature = cm_map_get (generation, "temperature");
        if (temperature)
            cm_map_set (task, "temperature", cm_value_dup (temperature));
    }
    cm_map_set_str (task, "partial", cm_map_str_or (msg, "content", ""));
    cm_map_set_int (task, "continues_version", st_versions_active (msg));
    int rc = st_task_put (c, task);
    cm_value_destroy (&task);
    return rc;
}

int
st_h_message_continue (st_ctx_t *c)
{
    const char *message_id = cm_map_str (c->p, "message_id");
    st_key_t mkey;
    cm_value_t *msg = NULL;
    ST_TRY (st_rows_message_load (c, message_id, &msg, &mkey, NULL));
    int rc = 0;
    if (strcmp (cm_map_str_or (msg, "role", ""), "assistant") != 0) {
        c->why = "only assistant messages can be continued";
        rc = CM_EINVAL;
    }
    else if (cm_map_bool (msg, "regenerating", false)) {
        c->why = "a generation of this message is already running; wait for it or cancel it";
        rc = CM_ECONFLICT;
    }
    else if (!*cm_map_str_or (msg, "finish_reason", "")) {
        c->why = "the answer is complete; only one that was stopped, cut off by the length "
                 "limit or failed can be continued";
        rc = CM_EBADSTATE;
    }
    //  A copy: st_task_create changes msg.
    const cm_value_t *stored = cm_map_get (msg, "generation");
    cm_value_t *generation = stored && stored->type == CM_T_MAP ? cm_value_dup (stored) : NULL;
    cm_value_t *user_msg = NULL;
    const char *original_id = "", *query = "";
    if (rc == 0)
        rc = s_question (c, msg, generation, &user_msg, &original_id, &query);
    if (rc == 0)
        rc = st_rows_rate_user (c, true);
    char task_id[CM_ID_MAX + 1];
    const char *session_id = cm_map_str_or (msg, "session_id", "");
    if (rc == 0)
        rc = st_task_create (c, "continue", msg, &mkey, original_id, query, task_id);
    if (rc == 0)
        rc = s_continue_task (c, task_id, msg, generation);
    if (rc == 0) {
        cm_value_t *details = cm_map_new ();
        cm_map_set_str (details, "task_id", task_id);
        cm_map_set_str (details, "finish_reason", cm_map_str_or (msg, "finish_reason", ""));
        rc = st_rows_audit (c, session_id, message_id, "continue", st_ctx_user (c), details);
    }
    if (rc == 0) {
        st_view_reply_head (c, message_id, session_id, "continue");
        cm_value_t *data = cm_map_new ();
        cm_map_set_str (data, "task_id", task_id);
        cm_map_set_str (data, "original_message_id", original_id);
        cm_map_set_int (data, "version_index", st_versions_active (msg));
        cm_map_set (c->ok, "data", data);
    }
    cm_value_destroy (&generation);
    cm_value_destroy (&user_msg);
    cm_value_destroy (&msg);
    return rc;
}
