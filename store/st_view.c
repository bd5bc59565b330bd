/*  st_view.c: replies and event data from records (st_view.h).  */
#include "st_view.h"

#include "st_task.h"
#include "st_versions.h"

#include <string.h>

#define S_THOUGHT_STEPS 32  //  steps of one thought process kept in the store
#define S_THOUGHT_TEXT 2000 //  bytes kept of each of its texts

void
st_view_time (cm_value_t *map, const char *key, int64_t ms)
{
    if (ms <= 0) {
        cm_map_set_nil (map, key);
        return;
    }
    char iso[CM_ISO_TIME_LEN + 1];
    cm_iso_time (ms, iso, sizeof iso);
    cm_map_set_str (map, key, iso);
}

//  The request's own time, formatted once however many maps carry it.
void
st_view_now (st_ctx_t *c, cm_value_t *map, const char *key)
{
    if (!c->now_iso[0]) {
        if (c->now <= 0) {
            cm_map_set_nil (map, key);
            return;
        }
        cm_iso_time (c->now, c->now_iso, sizeof c->now_iso);
    }
    cm_map_set_str (map, key, c->now_iso);
}

//  Queues one event (cm_event.h) for after the commit; data gains sessionId
//  and timestamp.
void
st_view_event (st_ctx_t *c, const char *session_id, cm_event_t name, cm_value_t *data)
{
    cm_map_set_str (data, "sessionId", session_id);
    st_view_now (c, data, "timestamp");
    cm_value_t *event = cm_map_new ();
    cm_map_set_str (event, "session_id", session_id);
    cm_map_set_str (event, "event", cm_event_name (name));
    cm_map_set (event, "data", data);
    cm_arr_push (c->events, event);
}

//  A copy of at most S_THOUGHT_TEXT bytes of the string at key, never
//  cutting a UTF-8 sequence; NULL when absent.
static cm_value_t *
s_thought_text (const cm_value_t *data, const char *key)
{
    const char *text = cm_map_str (data, key);
    if (!text)
        return NULL;
    size_t len = strlen (text);
    if (len > S_THOUGHT_TEXT) {
        len = S_THOUGHT_TEXT;
        while (len > 0 && ((unsigned char) text[len] & 0xc0) == 0x80)
            len--;
    }
    return cm_strn_new (text, len);
}

//  Adds one thought_process_* event (event, data) to the task's thought
//  process (other events: nothing). _start begins it afresh: a retried task
//  thinks again.
void
st_view_thoughts_add (cm_value_t *task, cm_event_t event, const cm_value_t *data)
{
    if (event != CM_EVENT_THOUGHT_PROCESS_START && event != CM_EVENT_THOUGHT_PROCESS_STEP
        && event != CM_EVENT_THOUGHT_PROCESS_COMPLETE)
        return; //  another of the regenerator's events: not part of the thoughts
    cm_value_t *thoughts = cm_map_take (task, "thought_process");
    if (!thoughts || thoughts->type != CM_T_MAP || event == CM_EVENT_THOUGHT_PROCESS_START) {
        cm_value_destroy (&thoughts);
        thoughts = cm_map_new ();
        cm_map_set_nil (thoughts, "totalSteps");
        cm_map_set (thoughts, "steps", cm_arr_new ());
    }
    cm_value_t *text = NULL;
    if (event == CM_EVENT_THOUGHT_PROCESS_START && (text = s_thought_text (data, "thinkingAbout")))
        cm_map_set (thoughts, "thinkingAbout", text);
    else if (event == CM_EVENT_THOUGHT_PROCESS_COMPLETE
             && (text = s_thought_text (data, "conclusion")))
        cm_map_set (thoughts, "conclusion", text);
    else if (event == CM_EVENT_THOUGHT_PROCESS_STEP) {
        cm_value_t *steps = cm_map_take (thoughts, "steps");
        if (!steps || steps->type != CM_T_ARR) {
            cm_value_destroy (&steps);
            steps = cm_arr_new ();
        }
        size_t count = cm_value_len (steps);
        if (count < S_THOUGHT_STEPS && (text = s_thought_text (data, "reasoning"))) {
            int64_t number = cm_map_int (data, "step", 0);
            cm_value_t *step = cm_map_new ();
            cm_map_set_int (step, "step", number > 0 ? number : (int64_t) count + 1);
            cm_map_set (step, "reasoning", text);
            cm_arr_push (steps, step);
        }
        cm_map_set (thoughts, "steps", steps);
    }
    int64_t total = cm_map_int (data, "totalSteps", 0);
    if (total > 0)
        cm_map_set_int (thoughts, "totalSteps", total);
    cm_map_set (task, "thought_process", thoughts);
}

//  The record's (a task's or a message's) thought process as
//  to["thought_process"]: the stored shape is the API's. Nothing when none.
void
st_view_thoughts (cm_value_t *to, const cm_value_t *record)
{
    const cm_value_t *thoughts = cm_map_get (record, "thought_process");
    if (thoughts && thoughts->type == CM_T_MAP)
        cm_map_set (to, "thought_process", cm_value_dup (thoughts));
}

//  While a message is being generated, its thought process is the running
//  generation's so far (kept in the task record; the conclusion once it is
//  reached): a page loaded mid-generation shows it, not the last
//  generation's.
static void
s_running_thoughts_view (st_ctx_t *c, cm_value_t *to, const cm_value_t *msg)
{
    char task_id[CM_ID_MAX + 1];
    if (st_task_running_id (c, cm_map_str_or (msg, "id", ""), task_id))
        return;
    cm_value_t *task = NULL;
    if (st_task_load (c, task_id, &task) == 0)
        st_view_thoughts (to, task);
    cm_value_destroy (&task);
}

//  The public shape of a message (docs/protocol.md); key is its messages key.
cm_value_t *
st_view_message (st_ctx_t *c, const cm_value_t *key, const cm_value_t *msg)
{
    //  The counts shown are the shown (active) version's.
    int64_t ups = 0, downs = 0;
    if (st_versions_votes_get (c->db, c->txn, key->u.s.ptr, key->u.s.len,
                               st_versions_active (msg), msg, &ups, &downs))
        ups = downs = 0;
    cm_value_t *view = cm_map_new ();
    st_rows_copy_str (view, "id", msg, "id");
    st_rows_copy_str (view, "role", msg, "role");
    cm_map_set_str (view, "content", cm_map_str_or (msg, "content", ""));
    st_view_time (view, "timestamp", cm_map_int (msg, "timestamp", 0));
    st_view_versions (view, msg);
    cm_value_t *meta = cm_map_new ();
    cm_map_set_bool (meta, "edited", cm_map_bool (msg, "edited", false));
    cm_map_set_bool (meta, "regenerating", cm_map_bool (msg, "regenerating", false));
    cm_map_set_bool (meta, "regenerated", cm_map_bool (msg, "regenerated", false));
    cm_map_set_int (meta, "upvotes", ups);
    cm_map_set_int (meta, "downvotes", downs);
    if (cm_map_str (msg, "model"))
        cm_map_set_str (meta, "model", cm_map_str (msg, "model"));
    const cm_value_t *usage = cm_map_get (msg, "usage");
    if (usage)
        cm_map_set (meta, "usage", cm_value_dup (usage));
    //  Why the text is not a whole answer (st_h_continue.h); absent when it is.
    if (cm_map_str (msg, "finish_reason"))
        cm_map_set_str (meta, "finish_reason", cm_map_str (msg, "finish_reason"));
    if (cm_map_bool (msg, "regenerating", false))
        s_running_thoughts_view (c, meta, msg);
    else
        st_view_thoughts (meta, msg);
    cm_map_set (view, "metadata", meta);
    return view;
}

void
st_view_versions (cm_value_t *to, const cm_value_t *msg)
{
    cm_map_set_int (to, "version_index", st_versions_active (msg));
    cm_map_set_int (to, "version_count", st_versions_count (msg));
    cm_map_set_str (to, "version_id", st_versions_active_id (msg));
    cm_map_set (to, "version_ids", st_versions_ids (msg));
}

//  The version fields of event data (camelCase).
static void
s_versions_event (cm_value_t *data, const cm_value_t *msg)
{
    cm_map_set_int (data, "versionIndex", st_versions_active (msg));
    cm_map_set_int (data, "versionCount", st_versions_count (msg));
    cm_map_set_str (data, "versionId", st_versions_active_id (msg));
}

void
st_view_reply_head (st_ctx_t *c, const char *message_id, const char *session_id, const char *operation)
{
    c->ok = cm_map_new ();
    cm_map_set_str (c->ok, "message_id", message_id);
    cm_map_set_str (c->ok, "session_id", session_id);
    cm_map_set_str (c->ok, "operation", operation);
    st_view_now (c, c->ok, "timestamp");
}

void
st_view_error_event (st_ctx_t *c, const cm_value_t *task, const char *error)
{
    cm_value_t *data = cm_map_new ();
    st_rows_copy_str (data, "taskId", task, "task_id");
    st_rows_copy_str (data, "messageId", task, "message_id");
    cm_map_set_str (data, "error", error);
    //  The text so far, when it was kept as the answer (st_h_continue_keep).
    const cm_value_t *kept = cm_map_get (task, "kept");
    for (size_t i = 0; kept && kept->type == CM_T_MAP && i < cm_value_len (kept); i++)
        cm_map_set (data, cm_map_key_at (kept, i), cm_value_dup (cm_map_value_at (kept, i)));
    st_view_event (c, cm_map_str_or (task, "session_id", ""), CM_EVENT_REGENERATION_ERROR, data);
}

cm_value_t *
st_view_task_status (st_ctx_t *c, const cm_value_t *task)
{
    cm_value_t *view = cm_map_new ();
    st_rows_copy_str (view, "task_id", task, "task_id");
    st_rows_copy_str (view, "status", task, "status");
    cm_map_set_int (view, "progress", cm_map_int (task, "progress", 0));
    st_rows_copy_str (view, "message_id", task, "message_id");
    st_rows_copy_str (view, "session_id", task, "session_id");
    st_view_time (view, "created_at", cm_map_int (task, "created_at", 0));
    st_view_time (view, "started_at", cm_map_int (task, "started_at", 0));
    st_view_time (view, "completed_at", cm_map_int (task, "completed_at", 0));
    st_rows_copy_str (view, "error_message", task, "error_message");
    st_view_thoughts (view, task);
    st_view_now (c, view, "timestamp");
    return view;
}

//  The conversation a generation answers: the messages its message
//  follows in its branch, up to and including the user message that
//  prompts the answer (empty when they cannot be read: the worker answers
//  the question alone).
static cm_value_t *
s_conversation (st_ctx_t *c, const cm_value_t *task)
{
    cm_value_t *conversation = NULL;
    if (st_branch_conversation (c, cm_map_str_or (task, "session_id", ""),
                                cm_map_str_or (task, "message_id", ""),
                                cm_map_str_or (task, "original_message_id", ""), &conversation))
        return cm_arr_new ();
    return conversation;
}

cm_value_t *
st_view_claim (st_ctx_t *c, const cm_value_t *task)
{
    cm_value_t *view = cm_map_new ();
    st_rows_copy_str (view, "task_id", task, "task_id");
    st_rows_copy_str (view, "kind", task, "kind");
    st_rows_copy_str (view, "message_id", task, "message_id");
    st_rows_copy_str (view, "session_id", task, "session_id");
    st_rows_copy_str (view, "original_message_id", task, "original_message_id");
    st_rows_copy_str (view, "user_query", task, "user_query");
    st_rows_copy_str (view, "context", task, "context");
    st_rows_copy_str (view, "instruction", task, "instruction");
    st_rows_copy_str (view, "model", task, "model");
    const cm_value_t *temperature = cm_map_get (task, "temperature");
    cm_map_set (view, "temperature",
                temperature ? cm_value_dup (temperature) : cm_nil_new ());
    cm_map_set_int (view, "attempt", cm_map_int (task, "attempts", 0));
    cm_map_set_int (view, "lease_ms", c->ops->config.lease_ms);
    cm_map_set_int (view, "fence", cm_map_int (task, "fence", 0));
    //  The text checkpointed so far: the worker continues it.
    cm_map_set_str (view, "partial", cm_map_str_or (task, "partial", ""));
    //  A continue writes its origin's answer: the builtin seeds from these.
    st_rows_copy_str (view, "seed_task_id", task, "seed_task_id");
    st_rows_copy_str (view, "seed_kind", task, "seed_kind");
    cm_map_set (view, "conversation", s_conversation (c, task));
    return view;
}

cm_value_t *
st_view_session (st_ctx_t *c, const cm_value_t *session, const st_branch_session_t *path)
{
    cm_value_t *messages = cm_arr_new ();
    for (size_t i = 0; i < path->n; i++)
        if (path->items[i].on_path)
            cm_arr_push (messages, st_view_message (c, st_rows_key (path->list, i), path->msgs[i]));
    cm_value_t *view = cm_map_new ();
    cm_map_set_str (view, "session_id", cm_map_str_or (session, "session_id", ""));
    cm_map_set_str (view, "title", cm_map_str_or (session, "title", ""));
    st_view_time (view, "created_at", cm_map_int (session, "created_at", 0));
    st_view_time (view, "updated_at", cm_map_int (session, "updated_at", 0));
    cm_map_set_int (view, "message_count", (int64_t) cm_value_len (messages));
    cm_map_set (view, "messages", messages);
    return view;
}

cm_value_t *
st_view_session_summary (const cm_value_t *session)
{
    cm_value_t *view = cm_map_new ();
    st_rows_copy_str (view, "session_id", session, "session_id");
    cm_map_set_str (view, "title", cm_map_str_or (session, "title", ""));
    st_view_time (view, "created_at", cm_map_int (session, "created_at", 0));
    st_view_time (view, "updated_at", cm_map_int (session, "updated_at", 0));
    cm_map_set_int (view, "message_count", cm_map_int (session, "message_count", 0));
    return view;
}

cm_value_t *
st_view_history_entry (const cm_value_t *item)
{
    cm_value_t *view = cm_map_new ();
    st_rows_copy_str (view, "id", item, "id");
    st_rows_copy_str (view, "original_content", item, "original_content");
    st_rows_copy_str (view, "edited_content", item, "edited_content");
    st_view_time (view, "edit_timestamp", cm_map_int (item, "edit_timestamp", 0));
    st_rows_copy_str (view, "user_id", item, "user_id");
    return view;
}

cm_value_t *
st_view_feedback_entry (const cm_value_t *item)
{
    cm_value_t *view = cm_map_new ();
    st_rows_copy_str (view, "id", item, "id");
    st_rows_copy_str (view, "user_id", item, "user_id");
    st_rows_copy_str (view, "feedback_type", item, "feedback_type");
    cm_map_set_int (view, "version_index", cm_map_int (item, "version", 1));
    st_rows_copy_str (view, "reason", item, "reason");
    const cm_value_t *meta = cm_map_get (item, "metadata");
    cm_map_set (view, "metadata", meta ? cm_value_dup (meta) : cm_nil_new ());
    st_view_time (view, "created_at", cm_map_int (item, "created_at", 0));
    return view;
}

void
st_view_audit_entry (cm_value_t *entry)
{
    int64_t at = cm_map_int (entry, "created_at", 0);
    cm_map_set_nil (entry, "created_at");
    st_view_time (entry, "created_at", at);
    //  The chain link as hex (nil for an entry from before the chain).
    const cm_value_t *prev = cm_map_get (entry, "prev_hash");
    if (prev && prev->type == CM_T_BIN) {
        static const char digits[] = "0123456789abcdef";
        char hex[2 * 64 + 1];
        size_t n = prev->u.s.len < 64 ? prev->u.s.len : 64;
        const unsigned char *p = (const unsigned char *) prev->u.s.ptr;
        for (size_t i = 0; i < n; i++) {
            hex[2 * i] = digits[p[i] >> 4];
            hex[2 * i + 1] = digits[p[i] & 15];
        }
        hex[2 * n] = 0;
        cm_map_set_str (entry, "prev_hash", hex);
    }
    else
        cm_map_set_nil (entry, "prev_hash");
}

void
st_view_session_updated (st_ctx_t *c, const char *session_id)
{
    cm_value_t *data = cm_map_new ();
    cm_map_set_str (data, "status", "message_added");
    st_view_event (c, session_id, CM_EVENT_SESSION_UPDATED, data);
}

void
st_view_message_edited (st_ctx_t *c, const char *session_id, const char *message_id,
                        const char *content, const char *previous)
{
    cm_value_t *data = cm_map_new ();
    cm_map_set_str (data, "messageId", message_id);
    cm_map_set_str (data, "content", content);
    cm_map_set_str (data, "previousContent", previous);
    cm_map_set_bool (data, "edited", true);
    st_view_event (c, session_id, CM_EVENT_MESSAGE_EDITED, data);
}

void
st_view_message_deleted (st_ctx_t *c, const char *session_id, const char *message_id,
                         cm_value_t *ids)
{
    cm_value_t *data = cm_map_new ();
    cm_map_set_str (data, "messageId", message_id);
    cm_map_set_int (data, "deletedCount", (int64_t) cm_value_len (ids));
    cm_map_set (data, "deletedMessageIds", ids);
    st_view_event (c, session_id, CM_EVENT_MESSAGE_DELETED, data);
}

void
st_view_feedback_submitted (st_ctx_t *c, const char *session_id, const char *message_id,
                            const char *feedback_id, const char *type, uint32_t version,
                            int64_t ups, int64_t downs)
{
    cm_value_t *data = cm_map_new ();
    cm_map_set_str (data, "messageId", message_id);
    cm_map_set_str (data, "feedbackId", feedback_id);
    cm_map_set_str (data, "feedbackType", type);
    cm_map_set_int (data, "versionIndex", version);
    cm_map_set_int (data, "upvotes", ups);
    cm_map_set_int (data, "downvotes", downs);
    st_view_event (c, session_id, CM_EVENT_FEEDBACK_SUBMITTED, data);
}

void
st_view_task_event (st_ctx_t *c, const cm_value_t *task, cm_event_t name, cm_value_t *data)
{
    st_rows_copy_str (data, "taskId", task, "task_id");
    st_rows_copy_str (data, "messageId", task, "message_id");
    st_view_event (c, cm_map_str_or (task, "session_id", ""), name, data);
}

void
st_view_regenerating (st_ctx_t *c, const cm_value_t *task)
{
    cm_value_t *data = cm_map_new ();
    st_rows_copy_str (data, "taskId", task, "task_id");
    st_rows_copy_str (data, "messageId", task, "message_id");
    st_rows_copy_str (data, "originalMessageId", task, "original_message_id");
    st_rows_copy_str (data, "userQuery", task, "user_query");
    st_view_event (c, cm_map_str_or (task, "session_id", ""), CM_EVENT_MESSAGE_REGENERATING,
                   data);
}

void
st_view_progress (st_ctx_t *c, const cm_value_t *task, int64_t progress, const char *message,
                  const char *partial, bool resumed)
{
    cm_value_t *data = cm_map_new ();
    st_rows_copy_str (data, "taskId", task, "task_id");
    st_rows_copy_str (data, "messageId", task, "message_id");
    cm_map_set_int (data, "progress", progress);
    cm_map_set_str (data, "message", message);
    cm_map_set_str (data, "partialContent", partial);
    if (resumed)
        cm_map_set_bool (data, "resumed", true);
    st_view_event (c, cm_map_str_or (task, "session_id", ""), CM_EVENT_REGENERATION_PROGRESS,
                   data);
}

void
st_view_regenerated (st_ctx_t *c, const cm_value_t *task, const cm_value_t *msg)
{
    cm_value_t *data = cm_map_new ();
    st_rows_copy_str (data, "taskId", task, "task_id");
    st_rows_copy_str (data, "messageId", task, "message_id");
    cm_map_set_str (data, "content", cm_map_str_or (msg, "content", ""));
    s_versions_event (data, msg);
    if (cm_map_str (msg, "finish_reason"))
        cm_map_set_str (data, "finishReason", cm_map_str (msg, "finish_reason"));
    st_view_event (c, cm_map_str_or (task, "session_id", ""), CM_EVENT_MESSAGE_REGENERATED,
                   data);
}

void
st_view_version_activated (st_ctx_t *c, const cm_value_t *msg)
{
    cm_value_t *data = cm_map_new ();
    st_rows_copy_str (data, "messageId", msg, "id");
    cm_map_set_str (data, "content", cm_map_str_or (msg, "content", ""));
    s_versions_event (data, msg);
    st_view_event (c, cm_map_str_or (msg, "session_id", ""), CM_EVENT_VERSION_ACTIVATED, data);
}
