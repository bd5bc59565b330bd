/*  test_st_ops.c: the store's request logic over a temp LMDB, no sockets.  */
#include "test_st_util.h"

#include "st_key.h"

#include <math.h>

#define ID 400

static int
s_setup (void **state)
{
    *state = st_fixture_new (1 << 20, 2);
    return 0;
}

static cm_envelope_t *
s_session_get (st_fixture_t *f, const char *user, const char *session, int *rc)
{
    cm_envelope_t *request = st_req (CM_MSG_SESSION_GET, user);
    cm_map_set_str (request->payload, "session_id", session);
    cm_envelope_t *reply = NULL;
    *rc = st_read (f, request, &reply);
    return reply;
}

//  Worker "w" completes task with content.
static int
s_complete (st_fixture_t *f, const char *task, const char *content)
{
    cm_envelope_t *done = st_req (CM_MSG_TASK_COMPLETE, NULL);
    cm_map_set_str (done->payload, "worker", "w");
    cm_map_set_int (done->payload, "fence", f->fence);
    cm_map_set_str (done->payload, "task_id", task);
    cm_map_set_str (done->payload, "content", content);
    return st_write (f, done, NULL);
}

//  Claims and completes the pending task of a fresh session turn.
static void
s_finish_answer (st_fixture_t *f, const char *task)
{
    char claimed[ID];
    assert_int_equal (st_claim (f, "w", claimed), 1);
    assert_string_equal (claimed, task);
    assert_int_equal (s_complete (f, task, "an answer"), 0);
}

static int
s_vote (st_fixture_t *f, const char *user, const char *message, const char *type,
        int64_t rate_limit)
{
    cm_envelope_t *vote = st_req (CM_MSG_FEEDBACK_PUT, user);
    cm_map_set_str (vote->payload, "message_id", message);
    cm_map_set_str (vote->payload, "feedback_type", type);
    cm_map_set_int (vote->payload, "rate_limit", rate_limit);
    return st_write (f, vote, NULL);
}

static int
s_count_audit (st_fixture_t *f, const char *user, const char *session)
{
    cm_envelope_t *query = st_req (CM_MSG_AUDIT_QUERY, user);
    if (session)
        cm_map_set_str (query->payload, "session_id", session);
    cm_map_set_int (query->payload, "limit", 1000);
    cm_envelope_t *reply = NULL;
    assert_int_equal (st_read (f, query, &reply), 0);
    int n = (int) cm_value_len (cm_map_get (reply->payload, "entries"));
    cm_envelope_destroy (&reply);
    return n;
}

static void
test_session_start_get_list (void **state)
{
    st_fixture_t *f = *state;
    char user_msg[ID], asst[ID], task[ID], user_msg2[ID], asst2[ID], task2[ID];
    assert_int_equal (st_start (f, "alice", "my_session_1", "Hello there", user_msg, asst, task),
                      0);
    assert_int_equal (st_event_index (f, "session_updated"), 0);
    assert_string_equal (cm_map_str_or (st_event_data (f, "session_updated"), "status", ""),
                         "message_added");
    f->now += 10;
    assert_int_equal (st_start (f, "alice", "my_session_1", "More", user_msg2, asst2, task2), 0);
    assert_string_not_equal (user_msg, user_msg2);
    assert_string_not_equal (task, task2);
    assert_non_null (strstr (asst, "_my_session_1_assistant"));

    int rc;
    cm_envelope_t *reply = s_session_get (f, "alice", "my_session_1", &rc);
    assert_int_equal (rc, 0);
    const cm_value_t *session = cm_map_get (reply->payload, "session");
    assert_string_equal (cm_map_str_or (session, "title", ""), "Hello there");
    assert_int_equal (cm_map_int (session, "message_count", 0), 4);
    const cm_value_t *messages = cm_map_get (session, "messages");
    assert_string_equal (cm_map_str_or (cm_arr_at (messages, 0), "id", ""), user_msg);
    assert_string_equal (cm_map_str_or (cm_arr_at (messages, 1), "id", ""), asst);
    assert_string_equal (cm_map_str_or (cm_arr_at (messages, 3), "id", ""), asst2);
    const cm_value_t *meta = cm_map_get (cm_arr_at (messages, 1), "metadata");
    assert_true (cm_map_bool (meta, "regenerating", false));
    assert_false (cm_map_bool (meta, "edited", true));
    cm_envelope_destroy (&reply);

    //  Another user can neither read nor continue it, nor see it listed.
    reply = s_session_get (f, "bob", "my_session_1", &rc);
    assert_int_equal (rc, CM_ENOTFOUND);
    cm_envelope_destroy (&reply);
    assert_int_equal (st_start (f, "bob", "my_session_1", "hijack", NULL, NULL, NULL),
                      CM_ENOTFOUND);
    cm_envelope_t *list = st_req (CM_MSG_SESSION_LIST, "bob");
    assert_int_equal (st_read (f, list, &reply), 0);
    assert_int_equal (cm_value_len (cm_map_get (reply->payload, "sessions")), 0);
    cm_envelope_destroy (&reply);
    list = st_req (CM_MSG_SESSION_LIST, "alice");
    assert_int_equal (st_read (f, list, &reply), 0);
    assert_int_equal (cm_value_len (cm_map_get (reply->payload, "sessions")), 1);
    cm_envelope_destroy (&reply);
    assert_int_equal (st_start (f, "alice", "bad id!", "x", NULL, NULL, NULL), CM_EINVAL);
}

static void
test_feedback_one_vote_per_user (void **state)
{
    st_fixture_t *f = *state;
    char asst[ID];
    assert_int_equal (st_start (f, "alice", "s1", "q", NULL, asst, NULL), 0);
    assert_int_equal (s_vote (f, "alice", asst, "upvote", 0), 0);
    assert_int_equal (cm_map_int (st_event_data (f, "feedback_submitted"), "upvotes", -1), 1);
    f->now += 5;
    assert_int_equal (s_vote (f, "alice", asst, "downvote", 0), 0);
    const cm_value_t *data = st_event_data (f, "feedback_submitted");
    assert_int_equal (cm_map_int (data, "upvotes", -1), 0);
    assert_int_equal (cm_map_int (data, "downvotes", -1), 1);
    assert_int_equal (s_vote (f, "alice", asst, "sideways", 0), CM_EINVAL);
    assert_int_equal (s_vote (f, "bob", asst, "upvote", 0), CM_ENOTFOUND);
    assert_int_equal (s_vote (f, "alice", "msg_nope_s1_assistant", "upvote", 0), CM_ENOTFOUND);

    cm_envelope_t *get = st_req (CM_MSG_FEEDBACK_GET, "alice");
    cm_map_set_str (get->payload, "message_id", asst);
    cm_envelope_t *reply = NULL;
    assert_int_equal (st_read (f, get, &reply), 0);
    const cm_value_t *summary = cm_map_get (reply->payload, "feedback_summary");
    assert_int_equal (cm_map_int (summary, "upvotes", -1), 0);
    assert_int_equal (cm_map_int (summary, "downvotes", -1), 1);
    assert_int_equal (cm_map_int (summary, "total", -1), 1);
    const cm_value_t *recent = cm_map_get (reply->payload, "recent_feedback");
    assert_int_equal (cm_value_len (recent), 1);
    assert_string_equal (cm_map_str_or (cm_arr_at (recent, 0), "feedback_type", ""), "downvote");
    cm_envelope_destroy (&reply);
}

static void
test_edit_records_history_and_regenerates (void **state)
{
    st_fixture_t *f = *state;
    char user_msg[ID], asst[ID], task[ID];
    assert_int_equal (st_start (f, "alice", "s1", "first", user_msg, asst, task), 0);

    cm_envelope_t *edit = st_req (CM_MSG_MESSAGE_EDIT, "alice");
    cm_map_set_str (edit->payload, "message_id", user_msg);
    cm_map_set_str (edit->payload, "content", "second");
    //  The answer is still being generated: a regenerating edit conflicts
    //  and changes nothing.
    assert_int_equal (st_write (f, edit, NULL), CM_ECONFLICT);
    s_finish_answer (f, task);

    edit = st_req (CM_MSG_MESSAGE_EDIT, "alice");
    cm_map_set_str (edit->payload, "message_id", user_msg);
    cm_map_set_str (edit->payload, "content", "second");
    cm_envelope_t *reply = NULL;
    assert_int_equal (st_write (f, edit, &reply), 0);
    const cm_value_t *data = cm_map_get (reply->payload, "data");
    assert_string_equal (cm_map_str_or (data, "original_content", ""), "first");
    assert_string_equal (cm_map_str_or (data, "new_content", ""), "second");
    assert_true (cm_map_bool (data, "triggered_regeneration", false));
    char edit_task[ID], answer[ID];
    strcpy (edit_task, cm_map_str_or (data, "regeneration_task_id", ""));
    assert_true (strncmp (edit_task, "regen_", 6) == 0);
    //  The edited question is version 2, and its new branch a new answer.
    assert_int_equal (cm_map_int (data, "version_index", 0), 2);
    assert_int_equal (cm_map_int (data, "version_count", 0), 2);
    strcpy (answer, cm_map_str_or (data, "assistant_message_id", ""));
    assert_string_not_equal (answer, asst);
    assert_string_equal (cm_map_str_or (reply->payload, "operation", ""), "edit");
    cm_envelope_destroy (&reply);
    assert_string_equal (cm_map_str_or (st_event_data (f, "message_edited"), "previousContent",
                                        ""),
                         "first");

    //  The claimed edit task answers the edited question, in the new answer.
    cm_envelope_t *claim = st_req (CM_MSG_TASK_CLAIM, NULL);
    cm_map_set_str (claim->payload, "worker", "w");
    assert_int_equal (st_write (f, claim, &reply), 0);
    const cm_value_t *claimed = cm_arr_at (cm_map_get (reply->payload, "tasks"), 0);
    f->fence = cm_map_int (claimed, "fence", 0);
    assert_int_equal (f->fence, 1);
    assert_string_equal (cm_map_str_or (claimed, "kind", ""), "edit");
    assert_string_equal (cm_map_str_or (claimed, "message_id", ""), answer);
    const cm_value_t *conversation = cm_map_get (claimed, "conversation");
    assert_int_equal (cm_value_len (conversation), 1);
    assert_string_equal (cm_map_str_or (cm_arr_at (conversation, 0), "content", ""), "second");
    cm_envelope_destroy (&reply);

    //  Without regeneration an edit is allowed while a task runs.
    edit = st_req (CM_MSG_MESSAGE_EDIT, "alice");
    cm_map_set_str (edit->payload, "message_id", user_msg);
    cm_map_set_str (edit->payload, "content", "third");
    cm_map_set_bool (edit->payload, "trigger_regeneration", false);
    assert_int_equal (st_write (f, edit, &reply), 0);
    assert_false (cm_map_bool (cm_map_get (reply->payload, "data"), "triggered_regeneration",
                               true));
    cm_envelope_destroy (&reply);

    cm_envelope_t *history = st_req (CM_MSG_HISTORY_GET, "alice");
    cm_map_set_str (history->payload, "message_id", user_msg);
    assert_int_equal (st_read (f, history, &reply), 0);
    assert_int_equal (cm_map_int (reply->payload, "edit_count", 0), 2);
    const cm_value_t *entries = cm_map_get (reply->payload, "history");
    assert_string_equal (cm_map_str_or (cm_arr_at (entries, 0), "edited_content", ""), "second");
    assert_true (strncmp (cm_map_str_or (cm_arr_at (entries, 0), "id", ""), "hist_", 5) == 0);
    cm_envelope_destroy (&reply);
    history = st_req (CM_MSG_HISTORY_GET, "bob");
    cm_map_set_str (history->payload, "message_id", user_msg);
    assert_int_equal (st_read (f, history, NULL), CM_ENOTFOUND);
}

static int
s_regen (st_fixture_t *f, const char *user, const char *message, char *task)
{
    cm_envelope_t *request = st_req (CM_MSG_REGEN_CREATE, user);
    cm_map_set_str (request->payload, "message_id", message);
    cm_map_set_str (request->payload, "context", "shorter");
    cm_envelope_t *reply = NULL;
    int rc = st_write (f, request, &reply);
    if (rc == 0 && task)
        strcpy (task, cm_map_str_or (cm_map_get (reply->payload, "data"), "task_id", ""));
    cm_envelope_destroy (&reply);
    return rc;
}

static void
test_regenerate_rules (void **state)
{
    st_fixture_t *f = *state;
    char user_msg[ID], asst[ID], task[ID], regen[ID];
    assert_int_equal (st_start (f, "alice", "s1", "q", user_msg, asst, task), 0);
    assert_int_equal (s_regen (f, "alice", user_msg, NULL), CM_EINVAL);
    assert_int_equal (s_regen (f, "alice", asst, NULL), CM_ECONFLICT);
    s_finish_answer (f, task);
    assert_int_equal (s_regen (f, "bob", asst, NULL), CM_ENOTFOUND);
    assert_int_equal (s_regen (f, "alice", asst, regen), 0);
    assert_int_equal (s_regen (f, "alice", asst, NULL), CM_ECONFLICT);

    cm_envelope_t *status = st_req (CM_MSG_TASK_STATUS, "alice");
    cm_map_set_str (status->payload, "task_id", regen);
    cm_envelope_t *reply = NULL;
    assert_int_equal (st_read (f, status, &reply), 0);
    assert_string_equal (cm_map_str_or (reply->payload, "status", ""), "pending");
    assert_string_equal (cm_map_str_or (reply->payload, "message_id", ""), asst);
    cm_envelope_destroy (&reply);
    status = st_req (CM_MSG_TASK_STATUS, "bob");
    cm_map_set_str (status->payload, "task_id", regen);
    assert_int_equal (st_read (f, status, NULL), CM_ENOTFOUND);

    char claimed[ID];
    assert_int_equal (st_claim (f, "w", claimed), 1);
    assert_string_equal (claimed, regen);
    const cm_value_t *data = st_event_data (f, "message_regenerating");
    assert_string_equal (cm_map_str_or (data, "originalMessageId", ""), user_msg);
    assert_string_equal (cm_map_str_or (data, "userQuery", ""), "q");
    cm_envelope_t *done = st_req (CM_MSG_TASK_COMPLETE, NULL);
    cm_map_set_str (done->payload, "worker", "w");
    cm_map_set_int (done->payload, "fence", f->fence);
    cm_map_set_str (done->payload, "task_id", regen);
    cm_map_set_str (done->payload, "content", "better");
    cm_map_set_str (done->payload, "model", "builtin");
    assert_int_equal (st_write (f, done, NULL), 0);
    assert_string_equal (cm_map_str_or (st_event_data (f, "message_regenerated"), "content", ""),
                         "better");
    int rc;
    reply = s_session_get (f, "alice", "s1", &rc);
    const cm_value_t *msg = cm_arr_at (cm_map_get (cm_map_get (reply->payload, "session"),
                                                   "messages"),
                                       1);
    assert_string_equal (cm_map_str_or (msg, "content", ""), "better");
    const cm_value_t *meta = cm_map_get (msg, "metadata");
    assert_true (cm_map_bool (meta, "regenerated", false));
    assert_false (cm_map_bool (meta, "regenerating", true));
    assert_string_equal (cm_map_str_or (meta, "model", ""), "builtin");
    cm_envelope_destroy (&reply);
}

//  One thought_process_* task_event from worker "w"; step > 0 numbers a step.
static int
s_thought (st_fixture_t *f, const char *task, const char *event, const char *key,
           const char *text, int step)
{
    cm_envelope_t *request = st_req (CM_MSG_TASK_EVENT, NULL);
    cm_map_set_str (request->payload, "worker", "w");
    cm_map_set_int (request->payload, "fence", f->fence);
    cm_map_set_str (request->payload, "task_id", task);
    cm_map_set_str (request->payload, "event", event);
    cm_value_t *data = cm_map_new ();
    cm_map_set_str (data, key, text);
    if (step > 0)
        cm_map_set_int (data, "step", step);
    cm_map_set_int (data, "totalSteps", 40);
    cm_map_set (request->payload, "data", data);
    return st_write (f, request, NULL);
}

static const cm_value_t *
s_thoughts_of_message (const cm_envelope_t *session_reply, size_t index)
{
    const cm_value_t *msg = cm_arr_at (
        cm_map_get (cm_map_get (session_reply->payload, "session"), "messages"), index);
    return cm_map_get (cm_map_get (msg, "metadata"), "thought_process");
}

//  The thought process is kept (task_status while the task runs, then the
//  message), capped, replaced by the next answer's, and gone with an
//  answer that had none.
static void
test_thought_process_is_kept (void **state)
{
    st_fixture_t *f = *state;
    char user_msg[ID], asst[ID], task[ID], claimed[ID];
    assert_int_equal (st_start (f, "tia", "s-th", "why?", user_msg, asst, task), 0);
    assert_int_equal (st_claim (f, "w", claimed), 1);
    assert_int_equal (s_thought (f, task, "thought_process_start", "thinkingAbout", "why?", 0), 0);
    //  A long step: kept cut at a code point boundary (2-byte "é"s).
    char *long_text = malloc (5001);
    for (int i = 0; i < 2500; i++)
        memcpy (long_text + 2 * i, "\xc3\xa9", 2);
    long_text[5000] = 0;
    assert_int_equal (s_thought (f, task, "thought_process_step", "reasoning", long_text, 1), 0);
    for (int i = 1; i < 40; i++)
        assert_int_equal (s_thought (f, task, "thought_process_step", "reasoning", "more", i + 1),
                          0);
    free (long_text);
    //  The event still carries what the worker sent.
    assert_string_equal (cm_map_str_or (st_event_data (f, "thought_process_step"), "reasoning", ""),
                         "more");
    assert_int_equal (s_thought (f, task, "thought_process_bogus", "reasoning", "x", 1), CM_EINVAL);

    cm_envelope_t *status = st_req (CM_MSG_TASK_STATUS, "tia");
    cm_map_set_str (status->payload, "task_id", task);
    cm_envelope_t *reply = NULL;
    assert_int_equal (st_read (f, status, &reply), 0);
    const cm_value_t *view = cm_map_get (reply->payload, "thought_process");
    assert_non_null (view);
    assert_string_equal (cm_map_str_or (view, "thinkingAbout", ""), "why?");
    assert_int_equal (cm_map_int (view, "totalSteps", 0), 40);
    const cm_value_t *steps = cm_map_get (view, "steps");
    assert_int_equal (cm_value_len (steps), 32);
    const char *first = cm_map_str_or (cm_arr_at (steps, 0), "reasoning", "");
    assert_int_equal (strlen (first), 2000);
    assert_int_equal ((unsigned char) first[1998], 0xc3);
    assert_int_equal (cm_map_int (cm_arr_at (steps, 31), "step", 0), 32);
    assert_null (cm_map_str (view, "conclusion"));
    cm_envelope_destroy (&reply);
    //  Mid-generation, the session shows the running steps so far.
    int rc;
    reply = s_session_get (f, "tia", "s-th", &rc);
    assert_int_equal (rc, 0);
    view = s_thoughts_of_message (reply, 1);
    assert_non_null (view);
    assert_int_equal (cm_value_len (cm_map_get (view, "steps")), 32);
    assert_null (cm_map_str (view, "conclusion"));
    cm_envelope_destroy (&reply);

    assert_int_equal (s_thought (f, task, "thought_process_complete", "conclusion", "because", 0), 0);
    assert_int_equal (s_complete (f, task, "an answer"), 0);
    reply = s_session_get (f, "tia", "s-th", &rc);
    assert_int_equal (rc, 0);
    assert_null (s_thoughts_of_message (reply, 0)); //  the user's message has none
    view = s_thoughts_of_message (reply, 1);
    assert_non_null (view);
    assert_string_equal (cm_map_str_or (view, "conclusion", ""), "because");
    assert_int_equal (cm_value_len (cm_map_get (view, "steps")), 32);
    cm_envelope_destroy (&reply);

    //  A regeneration that thinks again replaces it; a retried attempt's
    //  _start begins afresh.
    char regen[ID];
    assert_int_equal (s_regen (f, "tia", asst, regen), 0);
    assert_int_equal (st_claim (f, "w", claimed), 1);
    //  Until the new generation thinks, it has no thought process: the last
    //  one's is not shown as if it were the running one's.
    reply = s_session_get (f, "tia", "s-th", &rc);
    assert_null (s_thoughts_of_message (reply, 1));
    cm_envelope_destroy (&reply);
    assert_int_equal (s_thought (f, regen, "thought_process_start", "thinkingAbout", "first try", 0), 0);
    assert_int_equal (s_thought (f, regen, "thought_process_step", "reasoning", "a", 1), 0);
    assert_int_equal (s_thought (f, regen, "thought_process_start", "thinkingAbout", "again", 0), 0);
    assert_int_equal (s_thought (f, regen, "thought_process_step", "reasoning", "b", 1), 0);
    assert_int_equal (s_complete (f, regen, "a better answer"), 0);
    reply = s_session_get (f, "tia", "s-th", &rc);
    view = s_thoughts_of_message (reply, 1);
    assert_string_equal (cm_map_str_or (view, "thinkingAbout", ""), "again");
    steps = cm_map_get (view, "steps");
    assert_int_equal (cm_value_len (steps), 1);
    assert_string_equal (cm_map_str_or (cm_arr_at (steps, 0), "reasoning", ""), "b");
    cm_envelope_destroy (&reply);

    //  The token counts a server reported are kept with the answer and
    //  shown in its metadata; the next answer without them drops them.
    assert_int_equal (s_regen (f, "tia", asst, regen), 0);
    assert_int_equal (st_claim (f, "w", claimed), 1);
    cm_envelope_t *done = st_req (CM_MSG_TASK_COMPLETE, NULL);
    cm_map_set_str (done->payload, "worker", "w");
    cm_map_set_int (done->payload, "fence", f->fence);
    cm_map_set_str (done->payload, "task_id", regen);
    cm_map_set_str (done->payload, "content", "counted");
    cm_map_set_int (done->payload, "prompt_tokens", 12);
    cm_map_set_int (done->payload, "completion_tokens", 34);
    assert_int_equal (st_write (f, done, NULL), 0);
    reply = s_session_get (f, "tia", "s-th", &rc);
    const cm_value_t *usage = cm_map_get (
        cm_map_get (cm_arr_at (cm_map_get (cm_map_get (reply->payload, "session"), "messages"), 1),
                    "metadata"),
        "usage");
    assert_non_null (usage);
    assert_int_equal (cm_map_int (usage, "prompt_tokens", 0), 12);
    assert_int_equal (cm_map_int (usage, "completion_tokens", 0), 34);
    cm_envelope_destroy (&reply);

    //  An answer without thoughts (CHAT_ACTIONS_ENABLE_THOUGHT_PROCESS off)
    //  leaves none behind, nor the last answer's usage.
    assert_int_equal (s_regen (f, "tia", asst, regen), 0);
    assert_int_equal (st_claim (f, "w", claimed), 1);
    assert_int_equal (s_complete (f, regen, "plain"), 0);
    reply = s_session_get (f, "tia", "s-th", &rc);
    assert_null (s_thoughts_of_message (reply, 1));
    assert_null (cm_map_get (
        cm_map_get (cm_arr_at (cm_map_get (cm_map_get (reply->payload, "session"), "messages"), 1),
                    "metadata"),
        "usage"));
    cm_envelope_destroy (&reply);
}

static void
test_delete_removes_tail_in_order (void **state)
{
    st_fixture_t *f = *state;
    char u1[ID], a1[ID], t1[ID], u2[ID], a2[ID], t2[ID], u3[ID], a3[ID];
    assert_int_equal (st_start (f, "alice", "s1", "one", u1, a1, t1), 0);
    assert_int_equal (st_start (f, "alice", "s1", "two", u2, a2, t2), 0);
    assert_int_equal (st_start (f, "alice", "s1", "three", u3, a3, NULL), 0);
    assert_int_equal (s_vote (f, "alice", a2, "upvote", 0), 0);

    cm_envelope_t *del = st_req (CM_MSG_MESSAGE_DELETE, "bob");
    cm_map_set_str (del->payload, "message_id", u2);
    assert_int_equal (st_write (f, del, NULL), CM_ENOTFOUND);
    del = st_req (CM_MSG_MESSAGE_DELETE, "alice");
    cm_map_set_str (del->payload, "message_id", u2);
    cm_envelope_t *reply = NULL;
    assert_int_equal (st_write (f, del, &reply), 0);
    const cm_value_t *data = cm_map_get (reply->payload, "data");
    assert_int_equal (cm_map_int (data, "deleted_count", 0), 4);
    const cm_value_t *ids = cm_map_get (data, "deleted_message_ids");
    assert_string_equal (cm_arr_at (ids, 0)->u.s.ptr, u2);
    assert_string_equal (cm_arr_at (ids, 3)->u.s.ptr, a3);
    cm_envelope_destroy (&reply);
    assert_int_equal (cm_map_int (st_event_data (f, "message_deleted"), "deletedCount", 0), 4);
    //  The running answers of deleted messages ended with them.
    assert_true (st_event_index (f, "regeneration_error") >= 0);

    int rc;
    reply = s_session_get (f, "alice", "s1", &rc);
    const cm_value_t *session = cm_map_get (reply->payload, "session");
    const cm_value_t *messages = cm_map_get (session, "messages");
    assert_int_equal (cm_value_len (messages), 2);
    assert_string_equal (cm_map_str_or (cm_arr_at (messages, 0), "id", ""), u1);
    assert_string_equal (cm_map_str_or (cm_arr_at (messages, 1), "id", ""), a1);
    cm_envelope_destroy (&reply);
    assert_int_equal (s_vote (f, "alice", a2, "upvote", 0), CM_ENOTFOUND);

    //  New turns still sort after the survivors.
    char u4[ID];
    assert_int_equal (st_start (f, "alice", "s1", "four", u4, NULL, NULL), 0);
    reply = s_session_get (f, "alice", "s1", &rc);
    messages = cm_map_get (cm_map_get (reply->payload, "session"), "messages");
    assert_int_equal (cm_value_len (messages), 4);
    assert_string_equal (cm_map_str_or (cm_arr_at (messages, 2), "id", ""), u4);
    cm_envelope_destroy (&reply);
}

static int
s_progress (st_fixture_t *f, const char *worker, const char *task)
{
    cm_envelope_t *request = st_req (CM_MSG_TASK_PROGRESS, NULL);
    cm_map_set_str (request->payload, "worker", worker);
    cm_map_set_int (request->payload, "fence", f->fence);
    cm_map_set_str (request->payload, "task_id", task);
    cm_map_set_int (request->payload, "progress", 40);
    cm_map_set_str (request->payload, "partial", "part");
    return st_write (f, request, NULL);
}

static void
test_lease_expiry_and_attempts (void **state)
{
    st_fixture_t *f = *state; //  max_attempts = 2
    char task[ID], claimed[ID];
    assert_int_equal (st_start (f, "alice", "s1", "q", NULL, NULL, task), 0);
    assert_int_equal (st_claim (f, "w1", claimed), 1);
    assert_int_equal (st_claim (f, "w2", NULL), 0); //  leased
    assert_int_equal (s_progress (f, "w2", task), CM_ELEASE);
    assert_int_equal (s_progress (f, "w1", task), 0);
    const cm_value_t *data = st_event_data (f, "regeneration_progress");
    assert_string_equal (cm_map_str_or (data, "partialContent", ""), "part");
    assert_int_equal (cm_map_int (data, "progress", 0), 40);

    f->now += 10001; //  lease expired: another worker takes over
    assert_int_equal (st_claim (f, "w2", claimed), 1);
    assert_string_equal (claimed, task);
    assert_int_equal (s_progress (f, "w1", task), CM_ELEASE);
    assert_int_equal (s_progress (f, "w2", task), 0);

    f->now += 10001; //  out of attempts: fails instead of a third claim
    assert_int_equal (st_claim (f, "w3", NULL), 0);
    assert_string_equal (cm_map_str_or (st_event_data (f, "regeneration_error"), "taskId", ""),
                         task);
    cm_envelope_t *status = st_req (CM_MSG_TASK_STATUS, "alice");
    cm_map_set_str (status->payload, "task_id", task);
    cm_envelope_t *reply = NULL;
    assert_int_equal (st_read (f, status, &reply), 0);
    assert_string_equal (cm_map_str_or (reply->payload, "status", ""), "failed");
    cm_envelope_destroy (&reply);
}

static void
test_fail_retry_then_terminal (void **state)
{
    st_fixture_t *f = *state;
    char task[ID];
    assert_int_equal (st_start (f, "alice", "s1", "q", NULL, NULL, task), 0);
    assert_int_equal (st_claim (f, "w1", NULL), 1);
    cm_envelope_t *fail = st_req (CM_MSG_TASK_FAIL, NULL);
    cm_map_set_str (fail->payload, "worker", "w1");
    cm_map_set_int (fail->payload, "fence", f->fence);
    cm_map_set_str (fail->payload, "task_id", task);
    cm_map_set_str (fail->payload, "error", "backend down");
    cm_map_set_bool (fail->payload, "retryable", true);
    cm_envelope_t *reply = NULL;
    assert_int_equal (st_write (f, fail, &reply), 0);
    assert_string_equal (cm_map_str_or (reply->payload, "status", ""), "pending");
    cm_envelope_destroy (&reply);
    assert_int_equal (st_event_index (f, "regeneration_error"), -1);
    assert_true (st_ops_take_tasks_changed (f->ops));
    assert_int_equal (st_claim (f, "w2", NULL), 1);
    fail = st_req (CM_MSG_TASK_FAIL, NULL);
    cm_map_set_str (fail->payload, "worker", "w2");
    cm_map_set_int (fail->payload, "fence", f->fence);
    cm_map_set_str (fail->payload, "task_id", task);
    cm_map_set_str (fail->payload, "error", "bad");
    assert_int_equal (st_write (f, fail, &reply), 0);
    assert_string_equal (cm_map_str_or (reply->payload, "status", ""), "failed");
    cm_envelope_destroy (&reply);
    assert_string_equal (cm_map_str_or (st_event_data (f, "regeneration_error"), "error", ""),
                         "bad");
    assert_int_equal (s_progress (f, "w2", task), CM_ELEASE);
}

static void
test_cancel (void **state)
{
    st_fixture_t *f = *state;
    char task[ID];
    assert_int_equal (st_start (f, "alice", "s1", "q", NULL, NULL, task), 0);
    assert_int_equal (st_claim (f, "w1", NULL), 1);
    cm_envelope_t *cancel = st_req (CM_MSG_TASK_CANCEL, "bob");
    cm_map_set_str (cancel->payload, "task_id", task);
    assert_int_equal (st_write (f, cancel, NULL), CM_ENOTFOUND);
    cancel = st_req (CM_MSG_TASK_CANCEL, "alice");
    cm_map_set_str (cancel->payload, "task_id", task);
    cm_envelope_t *reply = NULL;
    assert_int_equal (st_write (f, cancel, &reply), 0);
    assert_string_equal (cm_map_str_or (reply->payload, "status", ""), "failed");
    assert_string_equal (cm_map_str_or (reply->payload, "error_message", ""), "cancelled");
    cm_envelope_destroy (&reply);
    assert_string_equal (cm_map_str_or (st_event_data (f, "regeneration_error"), "error", ""),
                         "cancelled");
    assert_int_equal (s_progress (f, "w1", task), CM_ECANCELLED);
    cancel = st_req (CM_MSG_TASK_CANCEL, "alice");
    cm_map_set_str (cancel->payload, "task_id", task);
    assert_int_equal (st_write (f, cancel, NULL), CM_EBADSTATE);
}

static void
test_rate_limit_exhaustion_changes_nothing (void **state)
{
    st_fixture_t *f = *state;
    char asst[ID];
    assert_int_equal (st_start (f, "alice", "s1", "q", NULL, asst, NULL), 0);
    int audits = s_count_audit (f, "alice", "s1");
    assert_int_equal (s_vote (f, "alice", asst, "upvote", 2), 0);
    assert_int_equal (s_vote (f, "alice", asst, "downvote", 2), 0);
    assert_int_equal (s_count_audit (f, "alice", "s1"), audits + 2);

    cm_envelope_t *vote = st_req (CM_MSG_FEEDBACK_PUT, "alice");
    cm_map_set_str (vote->payload, "message_id", asst);
    cm_map_set_str (vote->payload, "feedback_type", "upvote");
    cm_map_set_int (vote->payload, "rate_limit", 2);
    cm_envelope_t *reply = NULL;
    assert_int_equal (st_write (f, vote, &reply), CM_ERATELIMIT);
    int64_t retry = cm_map_int (reply->payload, "retry_after_ms", 0);
    assert_true (retry > 0 && retry <= 60000);
    cm_envelope_destroy (&reply);
    assert_int_equal (cm_value_len (f->events), 0);
    assert_int_equal (s_count_audit (f, "alice", "s1"), audits + 2);
    cm_envelope_t *get = st_req (CM_MSG_FEEDBACK_GET, "alice");
    cm_map_set_str (get->payload, "message_id", asst);
    assert_int_equal (st_read (f, get, &reply), 0);
    const cm_value_t *summary = cm_map_get (reply->payload, "feedback_summary");
    assert_int_equal (cm_map_int (summary, "downvotes", -1), 1); //  still the 2nd vote
    cm_envelope_destroy (&reply);
    //  Another user's bucket is separate; the window reopens after 60 s.
    f->now += 60000;
    assert_int_equal (s_vote (f, "alice", asst, "upvote", 2), 0);

    //  The regeneration bucket applies to session_start.
    cm_envelope_t *start = st_req (CM_MSG_SESSION_START, "carol");
    cm_map_set_str (start->payload, "session_id", "c1");
    cm_map_set_str (start->payload, "query", "q");
    cm_map_set_int (start->payload, "regen_rate_limit", 1);
    assert_int_equal (st_write (f, start, NULL), 0);
    start = st_req (CM_MSG_SESSION_START, "carol");
    cm_map_set_str (start->payload, "session_id", "c2");
    cm_map_set_str (start->payload, "query", "q");
    cm_map_set_int (start->payload, "regen_rate_limit", 1);
    assert_int_equal (st_write (f, start, NULL), CM_ERATELIMIT);
    cm_envelope_t *list = st_req (CM_MSG_SESSION_LIST, "carol");
    assert_int_equal (st_read (f, list, &reply), 0);
    assert_int_equal (cm_value_len (cm_map_get (reply->payload, "sessions")), 1);
    cm_envelope_destroy (&reply);

    cm_envelope_t *consume = st_req (CM_MSG_RATE_CONSUME, NULL);
    cm_map_set_str (consume->payload, "key", "x");
    cm_map_set_int (consume->payload, "limit", 1);
    assert_int_equal (st_write (f, consume, &reply), 0);
    assert_int_equal (cm_map_int (reply->payload, "remaining", -1), 0);
    cm_envelope_destroy (&reply);
    consume = st_req (CM_MSG_RATE_CONSUME, NULL);
    cm_map_set_str (consume->payload, "key", "x");
    cm_map_set_int (consume->payload, "limit", 1);
    assert_int_equal (st_write (f, consume, NULL), CM_ERATELIMIT);
}

//  rate_refund gives back one token of the window rate_consume named, and
//  only of that window: a token of an older window, or one never taken,
//  is not given. The store's own bucket of a user ("a:<user>") is the one
//  a sharded gateway takes from (gateway/gw_shard_rate.h).
static void
test_rate_refund (void **state)
{
    st_fixture_t *f = *state;
    cm_envelope_t *reply = NULL;
    cm_envelope_t *consume = st_req (CM_MSG_RATE_CONSUME, NULL);
    cm_map_set_str (consume->payload, "key", "a:dora");
    cm_map_set_int (consume->payload, "limit", 1);
    assert_int_equal (st_write (f, consume, &reply), 0);
    int64_t window = cm_map_int (reply->payload, "window_start", -1);
    assert_true (window > 0);
    cm_envelope_destroy (&reply);
    //  The user's bucket is spent for the store's own actions too.
    cm_envelope_t *start = st_req (CM_MSG_SESSION_START, "dora");
    cm_map_set_str (start->payload, "session_id", "d1");
    cm_map_set_str (start->payload, "query", "q");
    cm_map_set_int (start->payload, "rate_limit", 1);
    assert_int_equal (st_write (f, start, NULL), CM_ERATELIMIT);
    const struct {
        int64_t window_start;
        bool refunded;
    } rows[] = {{window - 1, false}, {window, true}, {window, false}};
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        cm_envelope_t *refund = st_req (CM_MSG_RATE_REFUND, NULL);
        cm_map_set_str (refund->payload, "key", "a:dora");
        cm_map_set_int (refund->payload, "window_start", rows[i].window_start);
        assert_int_equal (st_write (f, refund, &reply), 0);
        assert_int_equal (cm_map_bool (reply->payload, "refunded", !rows[i].refunded),
                          rows[i].refunded);
        cm_envelope_destroy (&reply);
    }
    start = st_req (CM_MSG_SESSION_START, "dora");
    cm_map_set_str (start->payload, "session_id", "d1");
    cm_map_set_str (start->payload, "query", "q");
    cm_map_set_int (start->payload, "rate_limit", 1);
    assert_int_equal (st_write (f, start, NULL), 0);
    cm_envelope_t *refund = st_req (CM_MSG_RATE_REFUND, NULL);
    cm_map_set_str (refund->payload, "key", "a:nobody");
    cm_map_set_int (refund->payload, "window_start", window);
    assert_int_equal (st_write (f, refund, &reply), 0);
    assert_false (cm_map_bool (reply->payload, "refunded", true));
    cm_envelope_destroy (&reply);
}

//  A rate key over its limit (CM_MAP_KEY_MAX), even one longer than a
//  store key (ST_KEY_MAX, once answered CM_EDB as if the database were
//  damaged), is a malformed request: CM_EPROTO from the schema, before the
//  handler. One at the limit is served.
static void
test_rate_key_limit (void **state)
{
    st_fixture_t *f = *state;
    const struct {
        size_t len;
        int rc;
    } rows[] = {{CM_MAP_KEY_MAX, 0}, {CM_MAP_KEY_MAX + 1, CM_EPROTO}, {ST_KEY_MAX + 1, CM_EPROTO}};
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        char *key = malloc (rows[i].len + 1);
        memset (key, 'k', rows[i].len);
        key[rows[i].len] = 0;
        cm_envelope_t *consume = st_req (CM_MSG_RATE_CONSUME, NULL);
        cm_map_set_str (consume->payload, "key", key);
        cm_map_set_int (consume->payload, "limit", 5);
        cm_envelope_t *reply = NULL;
        int rc = st_write (f, consume, &reply);
        if (rc != rows[i].rc)
            fail_msg ("a %zu-byte rate key: %s, expected %s", rows[i].len, cm_error_name (rc),
                      cm_error_name (rows[i].rc));
        if (rc == 0)
            assert_int_equal (cm_map_int (reply->payload, "remaining", -1), 4);
        cm_envelope_destroy (&reply);
        free (key);
    }
}

static void
test_malformed_is_eproto_and_batch_isolated (void **state)
{
    st_fixture_t *f = *state;
    char asst[ID];
    assert_int_equal (st_start (f, "alice", "s1", "q", NULL, asst, NULL), 0);
    //  One batch: a good vote, a request missing its fields, a read type,
    //  another good vote. The bad ones fail alone.
    cm_envelope_t *requests[4];
    requests[0] = st_req (CM_MSG_FEEDBACK_PUT, "alice");
    cm_map_set_str (requests[0]->payload, "message_id", asst);
    cm_map_set_str (requests[0]->payload, "feedback_type", "upvote");
    requests[1] = st_req (CM_MSG_FEEDBACK_PUT, "alice");
    requests[2] = st_req (CM_MSG_SESSION_GET, "alice");
    cm_map_set_str (requests[2]->payload, "session_id", "s1");
    requests[3] = st_req (CM_MSG_FEEDBACK_PUT, "bob");
    cm_map_set_str (requests[3]->payload, "message_id", asst);
    cm_map_set_str (requests[3]->payload, "feedback_type", "upvote");
    cm_envelope_t *replies[4];
    cm_value_t *events = NULL;
    assert_int_equal (st_ops_write_batch (f->ops, requests, 4, f->now, replies, &events), 0);
    st_events_check (events);
    assert_int_equal (replies[0]->type, CM_MSG_OK);
    assert_int_equal (cm_map_int (replies[1]->payload, "code", 0), CM_EPROTO);
    assert_int_equal (cm_map_int (replies[2]->payload, "code", 0), CM_EPROTO);
    assert_int_equal (cm_map_int (replies[3]->payload, "code", 0), CM_ENOTFOUND);
    assert_int_equal (cm_value_len (events), 1);
    for (int i = 0; i < 4; i++) {
        cm_envelope_destroy (&replies[i]);
        cm_envelope_destroy (&requests[i]);
    }
    cm_value_destroy (&events);
    //  A write type on the read path is refused too.
    cm_envelope_t *vote = st_req (CM_MSG_FEEDBACK_PUT, "alice");
    cm_map_set_str (vote->payload, "message_id", asst);
    cm_map_set_str (vote->payload, "feedback_type", "upvote");
    assert_int_equal (st_read (f, vote, NULL), CM_EPROTO);
}

//  A request that fails after it already wrote (here: its general rate
//  bucket is consumed, then its regeneration bucket refuses) must leave
//  nothing behind, while the rest of its batch commits.
static void
test_failure_after_write_rolls_back_alone (void **state)
{
    st_fixture_t *f = *state;
    char asst[ID];
    assert_int_equal (st_start (f, "alice", "s1", "q", NULL, asst, NULL), 0);
    cm_envelope_t *start = st_req (CM_MSG_SESSION_START, "carol");
    cm_map_set_str (start->payload, "session_id", "c1");
    cm_map_set_str (start->payload, "query", "q");
    cm_map_set_int (start->payload, "rate_limit", 10);
    cm_map_set_int (start->payload, "regen_rate_limit", 1);
    assert_int_equal (st_write (f, start, NULL), 0);

    cm_envelope_t *requests[3];
    for (int i = 0; i < 3; i += 2) {
        requests[i] = st_req (CM_MSG_FEEDBACK_PUT, "alice");
        cm_map_set_str (requests[i]->payload, "message_id", asst);
        cm_map_set_str (requests[i]->payload, "feedback_type", i ? "downvote" : "upvote");
    }
    requests[1] = st_req (CM_MSG_SESSION_START, "carol");
    cm_map_set_str (requests[1]->payload, "session_id", "c2");
    cm_map_set_str (requests[1]->payload, "query", "q");
    cm_map_set_int (requests[1]->payload, "rate_limit", 10);
    cm_map_set_int (requests[1]->payload, "regen_rate_limit", 1);
    cm_envelope_t *replies[3];
    cm_value_t *events = NULL;
    assert_int_equal (st_ops_write_batch (f->ops, requests, 3, f->now, replies, &events), 0);
    st_events_check (events);
    assert_int_equal (replies[0]->type, CM_MSG_OK);
    assert_int_equal (cm_map_int (replies[1]->payload, "code", 0), CM_ERATELIMIT);
    assert_int_equal (replies[2]->type, CM_MSG_OK);
    assert_int_equal (cm_value_len (events), 2);
    const cm_value_t *last = cm_map_get (cm_arr_at (events, 1), "data");
    assert_int_equal (cm_map_int (last, "upvotes", -1), 0);
    assert_int_equal (cm_map_int (last, "downvotes", -1), 1);
    for (int i = 0; i < 3; i++) {
        cm_envelope_destroy (&replies[i]);
        cm_envelope_destroy (&requests[i]);
    }
    cm_value_destroy (&events);
    //  carol's general bucket counts only c1's start: 10 - 1 - this one.
    cm_envelope_t *consume = st_req (CM_MSG_RATE_CONSUME, NULL);
    cm_map_set_str (consume->payload, "key", "a:carol");
    cm_map_set_int (consume->payload, "limit", 10);
    cm_envelope_t *reply = NULL;
    assert_int_equal (st_write (f, consume, &reply), 0);
    assert_int_equal (cm_map_int (reply->payload, "remaining", -1), 8);
    cm_envelope_destroy (&reply);
    cm_envelope_t *list = st_req (CM_MSG_SESSION_LIST, "carol");
    assert_int_equal (st_read (f, list, &reply), 0);
    assert_int_equal (cm_value_len (cm_map_get (reply->payload, "sessions")), 1);
    cm_envelope_destroy (&reply);
}

//  Records written before votes and rate buckets got their own binary
//  records: a message map carrying upvotes/downvotes, a msgpack bucket, a
//  feedback map whose first key is not feedback_type.
static void
test_old_records_still_count (void **state)
{
    st_fixture_t *f = *state;
    char asst[ID];
    assert_int_equal (st_start (f, "alice", "s1", "q", NULL, asst, NULL), 0);
    MDB_txn *txn = NULL;
    assert_int_equal (st_db_write_begin (f->db, NULL, &txn), 0);
    const void *data;
    size_t size;
    assert_int_equal (st_db_get_raw (f->db, txn, ST_DBI_MSG_INDEX, asst, strlen (asst), &data,
                                     &size), 0);
    char key[512];
    memcpy (key, data, size);
    cm_value_t *msg = NULL;
    assert_int_equal (st_db_get (f->db, txn, ST_DBI_MESSAGES, key, size, &msg), 0);
    cm_map_set_int (msg, "upvotes", 3);
    cm_map_set_int (msg, "downvotes", 2);
    assert_int_equal (st_db_put (f->db, txn, ST_DBI_MESSAGES, key, size, msg), 0);
    cm_value_destroy (&msg);
    cm_value_t *bucket = cm_map_new ();
    cm_map_set_int (bucket, "window_start", f->now);
    cm_map_set_int (bucket, "count", 2);
    cm_map_set_int (bucket, "window_ms", 60000);
    assert_int_equal (st_db_put (f->db, txn, ST_DBI_RATE, "a:alice", 7, bucket), 0);
    cm_value_destroy (&bucket);
    cm_value_t *old_vote = cm_map_new (); //  alice's vote is one of the 2 downvotes
    cm_map_set_str (old_vote, "id", "fb_old");
    cm_map_set_str (old_vote, "user_id", "alice");
    cm_map_set_str (old_vote, "feedback_type", "downvote");
    cm_map_set_int (old_vote, "created_at", f->now - 1000);
    char fkey[512];
    size_t flen = strlen (asst) + 1 + strlen ("alice");
    memcpy (fkey, asst, strlen (asst) + 1);
    memcpy (fkey + strlen (asst) + 1, "alice", 5);
    assert_int_equal (st_db_put (f->db, txn, ST_DBI_FEEDBACK, fkey, flen, old_vote), 0);
    cm_value_destroy (&old_vote);
    assert_int_equal (st_db_commit (txn), 0);

    cm_envelope_t *get = st_req (CM_MSG_FEEDBACK_GET, "alice");
    cm_map_set_str (get->payload, "message_id", asst);
    cm_envelope_t *reply = NULL;
    assert_int_equal (st_read (f, get, &reply), 0);
    const cm_value_t *summary = cm_map_get (reply->payload, "feedback_summary");
    assert_int_equal (cm_map_int (summary, "upvotes", -1), 3);
    assert_int_equal (cm_map_int (summary, "downvotes", -1), 2);
    cm_envelope_destroy (&reply);

    //  The old bucket holds 2 of 3: one more vote passes, the next is refused.
    assert_int_equal (s_vote (f, "alice", asst, "upvote", 3), 0);
    const cm_value_t *data_ev = st_event_data (f, "feedback_submitted");
    assert_int_equal (cm_map_int (data_ev, "upvotes", -1), 4);
    assert_int_equal (cm_map_int (data_ev, "downvotes", -1), 1);
    assert_int_equal (s_vote (f, "alice", asst, "upvote", 3), CM_ERATELIMIT);
    assert_int_equal (s_vote (f, "alice", asst, "downvote", 0), 0);
    data_ev = st_event_data (f, "feedback_submitted");
    assert_int_equal (cm_map_int (data_ev, "upvotes", -1), 3);
    assert_int_equal (cm_map_int (data_ev, "downvotes", -1), 2);

    int rc;
    reply = s_session_get (f, "alice", "s1", &rc);
    assert_int_equal (rc, 0);
    const cm_value_t *messages = cm_map_get (cm_map_get (reply->payload, "session"), "messages");
    const cm_value_t *meta = cm_map_get (cm_arr_at (messages, 1), "metadata");
    assert_int_equal (cm_map_int (meta, "upvotes", -1), 3);
    assert_int_equal (cm_map_int (meta, "downvotes", -1), 2);
    cm_envelope_destroy (&reply);
    cm_envelope_t *analytics = st_req (CM_MSG_ANALYTICS_GET, "alice");
    cm_map_set_str (analytics->payload, "session_id", "s1");
    assert_int_equal (st_read (f, analytics, &reply), 0);
    const cm_value_t *a = cm_map_get (reply->payload, "analytics");
    assert_int_equal (cm_map_int (a, "upvotes", -1), 3);
    assert_int_equal (cm_map_int (a, "feedback_count", -1), 5);
    cm_envelope_destroy (&reply);
}

//  The raw bytes under key in which, decoded; they must be exactly the
//  encoding of what they decode to (one canonical layout).
static cm_value_t *
s_raw_record (st_fixture_t *f, st_dbi_t which, const void *key, size_t key_len, bool last)
{
    MDB_txn *txn = NULL;
    assert_int_equal (st_db_read_begin (f->db, &txn), 0);
    MDB_val k = {key_len, (void *) key}, v;
    if (last) { //  the newest entry (audit keys start with the time)
        MDB_cursor *cursor;
        assert_int_equal (mdb_cursor_open (txn, st_db_dbi (f->db, which), &cursor), 0);
        assert_int_equal (st_db_cursor_get (cursor, which, &k, &v, MDB_LAST), 0);
        mdb_cursor_close (cursor);
    }
    else {
        const void *data;
        assert_int_equal (st_db_get_raw (f->db, txn, which, key, key_len, &data, &v.mv_size),
                          0);
        v.mv_data = (void *) data;
    }
    cm_value_t *record = NULL;
    assert_int_equal (cm_value_decode (v.mv_data, v.mv_size, &record), 0);
    char *bytes;
    size_t size;
    assert_int_equal (cm_value_encode (record, &bytes, &size), 0);
    assert_int_equal (size, v.mv_size);
    assert_memory_equal (bytes, v.mv_data, size);
    free (bytes);
    st_db_read_end (f->db, txn);
    return record;
}

static void
s_assert_keys (const cm_value_t *map, const char *const *keys)
{
    size_t n = 0;
    for (; keys[n]; n++)
        assert_string_equal (cm_map_key_at (map, n), keys[n]);
    assert_int_equal (cm_value_len (map), n);
}

//  Feedback and audit records are streamed (cm_packer_t), not built as
//  maps: they must decode to the maps the store always wrote, key order
//  included (s_vote_peek reads feedback_type at a fixed offset).
static void
test_records_keep_their_layout (void **state)
{
    st_fixture_t *f = *state;
    char asst[ID];
    assert_int_equal (st_start (f, "alice", "s1", "q", NULL, asst, NULL), 0);
    static const char *const audit_keys[] = {"id",      "session_id", "message_id",
                                             "action_type", "user_id", "details",
                                             "client_ip", "user_agent", "created_at",
                                             "prev_hash", NULL};
    cm_value_t *audit = s_raw_record (f, ST_DBI_AUDIT, NULL, 0, true);
    s_assert_keys (audit, audit_keys);
    assert_string_equal (cm_map_str_or (audit, "action_type", ""), "session_start");
    assert_int_equal (cm_map_get (audit, "message_id")->type, CM_T_STR);
    assert_int_equal (cm_map_get (audit, "details")->type, CM_T_MAP);
    cm_value_destroy (&audit);

    cm_envelope_t *vote = st_req (CM_MSG_FEEDBACK_PUT, "alice");
    cm_map_set_str (vote->payload, "message_id", asst);
    cm_map_set_str (vote->payload, "feedback_type", "downvote");
    cm_map_set_str (vote->payload, "reason", "too long");
    cm_value_t *meta = cm_map_new ();
    cm_map_set_dbl (meta, "score", 0.25);
    cm_map_set_str (meta, "tag", "x");
    cm_map_set (vote->payload, "metadata", meta);
    cm_value_t *ua = cm_map_take (vote->payload, "ua"); //  absent: packed as nil
    cm_value_destroy (&ua);
    assert_int_equal (st_write (f, vote, NULL), 0);

    char fkey[ID + 8];
    size_t flen = strlen (asst) + 1 + 5;
    memcpy (fkey, asst, strlen (asst) + 1);
    memcpy (fkey + strlen (asst) + 1, "alice", 5);
    cm_value_t *record = s_raw_record (f, ST_DBI_FEEDBACK, fkey, flen, false);
    static const char *const feedback_keys[] = {
        "feedback_type", "id", "message_id", "session_id", "user_id", "reason",
        "metadata", "created_at", "client_ip", "user_agent", "version", NULL};
    s_assert_keys (record, feedback_keys);
    assert_string_equal (cm_map_str_or (record, "feedback_type", ""), "downvote");
    assert_string_equal (cm_map_str_or (record, "message_id", ""), asst);
    assert_string_equal (cm_map_str_or (record, "session_id", ""), "s1");
    assert_string_equal (cm_map_str_or (record, "user_id", ""), "alice");
    assert_string_equal (cm_map_str_or (record, "reason", ""), "too long");
    assert_int_equal (cm_map_int (record, "created_at", 0), f->now);
    assert_string_equal (cm_map_str_or (record, "client_ip", ""), "127.0.0.1");
    assert_int_equal (cm_map_get (record, "user_agent")->type, CM_T_NIL);
    assert_int_equal (cm_map_int (record, "version", 0), 1);
    const cm_value_t *stored_meta = cm_map_get (record, "metadata");
    assert_true (cm_map_dbl (stored_meta, "score", 0) == 0.25);
    assert_string_equal (cm_map_key_at (stored_meta, 1), "tag");
    cm_value_destroy (&record);

    audit = s_raw_record (f, ST_DBI_AUDIT, NULL, 0, true);
    s_assert_keys (audit, audit_keys);
    assert_string_equal (cm_map_str_or (audit, "action_type", ""), "feedback");
    assert_string_equal (cm_map_str_or (audit, "message_id", ""), asst);
    assert_string_equal (cm_map_str_or (audit, "user_id", ""), "alice");
    assert_int_equal (cm_map_get (audit, "user_agent")->type, CM_T_NIL);
    assert_int_equal (cm_map_int (audit, "created_at", 0), f->now);
    const cm_value_t *details = cm_map_get (audit, "details");
    static const char *const details_keys[] = {"feedback_type", "replaced", "version", "reason", NULL};
    s_assert_keys (details, details_keys);
    assert_false (cm_map_bool (details, "replaced", true));
    cm_value_destroy (&audit);

    //  A repeated vote without reason or metadata: both nil, replaced.
    assert_int_equal (s_vote (f, "alice", asst, "upvote", 0), 0);
    record = s_raw_record (f, ST_DBI_FEEDBACK, fkey, flen, false);
    s_assert_keys (record, feedback_keys);
    assert_int_equal (cm_map_get (record, "reason")->type, CM_T_NIL);
    assert_int_equal (cm_map_get (record, "metadata")->type, CM_T_NIL);
    cm_value_destroy (&record);
    audit = s_raw_record (f, ST_DBI_AUDIT, NULL, 0, true);
    assert_true (cm_map_bool (cm_map_get (audit, "details"), "replaced", false));
    cm_value_destroy (&audit);
}

static void
test_map_grows_from_64k (void **state)
{
    (void) state;
    st_fixture_t *f = st_fixture_new (64 * 1024, 3);
    size_t initial = st_db_map_size (f->db);
    char query[2048];
    memset (query, 'x', sizeof query - 1);
    query[sizeof query - 1] = 0;
    char session[32];
    for (int i = 0; i < 200; i++) {
        snprintf (session, sizeof session, "s%d", i);
        assert_int_equal (st_start (f, "alice", session, query, NULL, NULL, NULL), 0);
    }
    assert_true (st_db_map_size (f->db) > initial);
    int rc;
    cm_envelope_t *reply = s_session_get (f, "alice", "s199", &rc);
    assert_int_equal (rc, 0);
    cm_envelope_destroy (&reply);
    cm_envelope_t *list = st_req (CM_MSG_SESSION_LIST, "alice");
    cm_map_set_int (list->payload, "limit", 1000);
    assert_int_equal (st_read (f, list, &reply), 0);
    assert_int_equal (cm_value_len (cm_map_get (reply->payload, "sessions")), 200);
    cm_envelope_destroy (&reply);
    st_fixture_destroy (&f);
}

static void
test_analytics_and_audit (void **state)
{
    st_fixture_t *f = *state;
    char user_msg[ID], asst[ID], task[ID], regen[ID];
    assert_int_equal (st_start (f, "alice", "s1", "q", user_msg, asst, task), 0);
    s_finish_answer (f, task);
    assert_int_equal (s_regen (f, "alice", asst, regen), 0);
    f->now += 2000;
    s_finish_answer (f, regen);
    assert_int_equal (s_vote (f, "alice", asst, "upvote", 0), 0);
    cm_envelope_t *edit = st_req (CM_MSG_MESSAGE_EDIT, "alice");
    cm_map_set_str (edit->payload, "message_id", asst);
    cm_map_set_str (edit->payload, "content", "fixed");
    assert_int_equal (st_write (f, edit, NULL), 0);

    cm_envelope_t *get = st_req (CM_MSG_ANALYTICS_GET, "alice");
    cm_map_set_str (get->payload, "session_id", "s1");
    cm_envelope_t *reply = NULL;
    assert_int_equal (st_read (f, get, &reply), 0);
    const cm_value_t *a = cm_map_get (reply->payload, "analytics");
    assert_int_equal (cm_map_int (a, "total_messages", 0), 2);
    assert_int_equal (cm_map_int (a, "regeneration_count", 0), 1);
    assert_true (cm_map_dbl (a, "regeneration_success_rate", 0) == 1.0);
    assert_int_equal (cm_map_int (a, "edit_count", 0), 1);
    assert_int_equal (cm_map_int (a, "feedback_count", 0), 1);
    assert_true (cm_map_dbl (a, "user_satisfaction", 0) == 1.0);
    assert_true (fabs (cm_map_dbl (a, "average_regeneration_seconds", 0) - 2.0) < 1e-9);
    assert_true (fabs (cm_map_dbl (a, "p95_regeneration_seconds", 0) - 2.0) < 1e-9);
    cm_envelope_destroy (&reply);
    get = st_req (CM_MSG_ANALYTICS_GET, "bob");
    cm_map_set_str (get->payload, "session_id", "s1");
    assert_int_equal (st_read (f, get, NULL), CM_ENOTFOUND);

    cm_envelope_t *query = st_req (CM_MSG_AUDIT_QUERY, "alice");
    cm_map_set_str (query->payload, "session_id", "s1");
    assert_int_equal (st_read (f, query, &reply), 0);
    const cm_value_t *entries = cm_map_get (reply->payload, "entries");
    assert_true (cm_value_len (entries) >= 5);
    const cm_value_t *newest = cm_arr_at (entries, 0);
    assert_string_equal (cm_map_str_or (newest, "action_type", ""), "edit");
    assert_string_equal (cm_map_str_or (newest, "client_ip", ""), "127.0.0.1");
    assert_string_equal (cm_map_str_or (newest, "user_agent", ""), "cmocka");
    cm_envelope_destroy (&reply);
    query = st_req (CM_MSG_AUDIT_QUERY, "bob");
    cm_map_set_str (query->payload, "session_id", "s1");
    assert_int_equal (st_read (f, query, NULL), CM_ENOTFOUND);
    assert_int_equal (s_count_audit (f, "bob", NULL), 0);
}

static void
test_cleanup_requeues_and_expires (void **state)
{
    st_fixture_t *f = *state;
    char task[ID];
    assert_int_equal (st_start (f, "alice", "s1", "q", NULL, NULL, task), 0);
    assert_int_equal (st_claim (f, "w1", NULL), 1);
    f->now += 10001;
    cm_value_t *events = NULL;
    assert_int_equal (st_ops_cleanup (f->ops, f->now, &events), 0);
    cm_value_destroy (&events);
    assert_true (st_ops_take_tasks_changed (f->ops));
    cm_envelope_t *status = st_req (CM_MSG_TASK_STATUS, "alice");
    cm_map_set_str (status->payload, "task_id", task);
    cm_envelope_t *reply = NULL;
    assert_int_equal (st_read (f, status, &reply), 0);
    assert_string_equal (cm_map_str_or (reply->payload, "status", ""), "pending");
    cm_envelope_destroy (&reply);

    //  Fail it for good, then jump past the retention: task and audit go.
    assert_int_equal (st_claim (f, "w1", NULL), 1);
    cm_envelope_t *fail = st_req (CM_MSG_TASK_FAIL, NULL);
    cm_map_set_str (fail->payload, "worker", "w1");
    cm_map_set_int (fail->payload, "fence", f->fence);
    cm_map_set_str (fail->payload, "task_id", task);
    cm_map_set_str (fail->payload, "error", "bad");
    assert_int_equal (st_write (f, fail, NULL), 0);
    assert_true (s_count_audit (f, "alice", "s1") > 0);
    f->now += 8LL * 86400 * 1000;
    assert_int_equal (st_ops_cleanup (f->ops, f->now, &events), 0);
    cm_value_destroy (&events);
    status = st_req (CM_MSG_TASK_STATUS, "alice");
    cm_map_set_str (status->payload, "task_id", task);
    assert_int_equal (st_read (f, status, NULL), CM_ENOTFOUND);
    assert_int_equal (s_count_audit (f, "alice", "s1"), 0);
}

//  Rewrites a task's stored status, as another build (or damage) might.
static void
s_set_status (st_fixture_t *f, const char *task_id, const char *status)
{
    MDB_txn *txn = NULL;
    assert_int_equal (st_db_write_begin (f->db, NULL, &txn), 0);
    cm_value_t *task = NULL;
    assert_int_equal (st_db_get (f->db, txn, ST_DBI_TASKS, task_id, strlen (task_id), &task), 0);
    cm_map_set_str (task, "status", status);
    assert_int_equal (st_db_put (f->db, txn, ST_DBI_TASKS, task_id, strlen (task_id), task), 0);
    cm_value_destroy (&task);
    assert_int_equal (st_db_commit (txn), 0);
}

//  A status this store does not know (st_task_fsm.h, unknown): never
//  claimed, cancelled or worked on, and purged by upkeep like an ended one.
static void
test_unknown_task_status (void **state)
{
    st_fixture_t *f = *state;
    char task[ID];
    assert_int_equal (st_start (f, "alice", "s1", "q", NULL, NULL, task), 0);
    s_set_status (f, task, "paused");
    assert_int_equal (st_claim (f, "w1", NULL), 0);
    cm_envelope_t *cancel = st_req (CM_MSG_TASK_CANCEL, "alice");
    cm_map_set_str (cancel->payload, "task_id", task);
    cm_envelope_t *reply = NULL;
    assert_int_equal (st_write (f, cancel, &reply), CM_EBADSTATE);
    assert_non_null (strstr (cm_map_str_or (reply->payload, "message", ""), "not one this store"));
    cm_envelope_destroy (&reply);
    assert_int_equal (s_progress (f, "w1", task), CM_ELEASE);
    cm_value_t *events = NULL;
    assert_int_equal (st_ops_cleanup (f->ops, f->now, &events), 0);
    cm_value_destroy (&events);
    cm_envelope_t *status = st_req (CM_MSG_TASK_STATUS, "alice");
    cm_map_set_str (status->payload, "task_id", task);
    assert_int_equal (st_read (f, status, NULL), CM_ENOTFOUND);
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown (test_session_start_get_list, s_setup, st_fixture_teardown),
        cmocka_unit_test_setup_teardown (test_feedback_one_vote_per_user, s_setup, st_fixture_teardown),
        cmocka_unit_test_setup_teardown (test_edit_records_history_and_regenerates, s_setup,
                                         st_fixture_teardown),
        cmocka_unit_test_setup_teardown (test_regenerate_rules, s_setup, st_fixture_teardown),
        cmocka_unit_test_setup_teardown (test_thought_process_is_kept, s_setup, st_fixture_teardown),
        cmocka_unit_test_setup_teardown (test_delete_removes_tail_in_order, s_setup, st_fixture_teardown),
        cmocka_unit_test_setup_teardown (test_lease_expiry_and_attempts, s_setup, st_fixture_teardown),
        cmocka_unit_test_setup_teardown (test_fail_retry_then_terminal, s_setup, st_fixture_teardown),
        cmocka_unit_test_setup_teardown (test_cancel, s_setup, st_fixture_teardown),
        cmocka_unit_test_setup_teardown (test_unknown_task_status, s_setup, st_fixture_teardown),
        cmocka_unit_test_setup_teardown (test_rate_limit_exhaustion_changes_nothing, s_setup,
                                         st_fixture_teardown),
        cmocka_unit_test_setup_teardown (test_rate_key_limit, s_setup, st_fixture_teardown),
        cmocka_unit_test_setup_teardown (test_rate_refund, s_setup, st_fixture_teardown),
        cmocka_unit_test_setup_teardown (test_malformed_is_eproto_and_batch_isolated, s_setup,
                                         st_fixture_teardown),
        cmocka_unit_test_setup_teardown (test_failure_after_write_rolls_back_alone, s_setup,
                                         st_fixture_teardown),
        cmocka_unit_test_setup_teardown (test_old_records_still_count, s_setup, st_fixture_teardown),
        cmocka_unit_test_setup_teardown (test_records_keep_their_layout, s_setup, st_fixture_teardown),
        cmocka_unit_test (test_map_grows_from_64k),
        cmocka_unit_test_setup_teardown (test_analytics_and_audit, s_setup, st_fixture_teardown),
        cmocka_unit_test_setup_teardown (test_cleanup_requeues_and_expires, s_setup, st_fixture_teardown),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
