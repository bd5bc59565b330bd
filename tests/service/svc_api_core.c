/*  svc_api_core: every endpoint of the HTTP API (docs/api.md) against the
    real four binaries: success shapes (field types, ISO-8601 times with
    milliseconds), the checks of the original integration guide, delete
    with followers, vote replacement, edit history, the task lifecycle,
    analytics from stored data, the audit log (read straight from the
    store; its client address behind a trusted proxy) and the edges (edits
    of either role, history order, emptied sessions, odd bodies). The
    refusals, probes, metrics, headers and CORS are svc_api_http's.

    One mesh for the whole group; each test uses its own users and
    sessions so the per-user rate limit (60/min) never interferes.        */
#include "svc_api_util.h"

#include <time.h>

#define ORIGIN_OK "https://app.example"
#define MAX_CHARS 40
#define MAX_BODY 4096

static int
s_setup (void **state)
{
    static const char *const env[] = {
        "CHATMESH_MAX_BODY_BYTES=4096",
        "CHAT_ACTIONS_MAX_CONTENT_LENGTH=40",
        "CHATMESH_CORS_ORIGINS=" ORIGIN_OK ", https://other.example",
        "CHATMESH_BUILTIN_TOKENS_PER_SEC=2000",
        "CHATMESH_PROGRESS_INTERVAL_MS=10",
        NULL,
    };
    return svc_fixture_start (state, env);
}

static void
s_path (char *path, size_t size, const char *format, const char *id)
{
    snprintf (path, size, format, id);
}

//  The assistant's answer task must end before that message can be
//  regenerated again (409 otherwise).
static void
s_answered (svc_mesh_t *mesh, const char *token, const sa_turn_t *turn)
{
    json_t *status = sa_wait_task (mesh, token, turn->task_id, "completed", 20000);
    json_decref (status);
}

//  ---------------------------------------------------------------------------
//  The three checks of the original guide, then every read endpoint's shape.

static void
test_guide_checks_and_shapes (void **state)
{
    svc_mesh_t *mesh = *state;
    char *token = svc_token (mesh, "alice", 600);
    svc_response_t r;
    char path[600];

    //  1. Start the session of the guide (its body also names the session).
    sa_req (mesh, "POST", "/api/run_sse/test_session_123", token,
            "{\"query\": \"Test question\", \"session_id\": \"test_session_123\"}", 200, &r);
    sa_success (&r);
    json_t *data = sa_obj (r.json, "data");
    assert_string_equal (sa_str (data, "session_id"), "test_session_123");
    sa_turn_t turn;
    snprintf (turn.user_id, sizeof turn.user_id, "%s", sa_str (data, "user_message_id"));
    snprintf (turn.assistant_id, sizeof turn.assistant_id, "%s",
              sa_str (data, "assistant_message_id"));
    snprintf (turn.task_id, sizeof turn.task_id, "%s", sa_str (data, "task_id"));
    assert_non_null (strstr (turn.assistant_id, "_test_session_123_assistant"));
    svc_response_free (&r);

    //  The guide's literal id parses (session id with underscores): it is
    //  simply not a stored message, so 404, not 400.
    sa_req (mesh, "POST", "/api/messages/msg_123_test_session_123_assistant/regenerate", token,
            "{\"temperature\": 0.8}", 404, &r);
    sa_error (&r, 404, "not_found");
    svc_response_free (&r);

    //  2. Regenerate with temperature 0.8 -> data.task_id.
    s_answered (mesh, token, &turn);
    s_path (path, sizeof path, "/api/messages/%s/regenerate", turn.assistant_id);
    sa_req (mesh, "POST", path, token, "{\"temperature\": 0.8}", 200, &r);
    sa_success (&r);
    assert_string_equal (sa_str (r.json, "message_id"), turn.assistant_id);
    assert_string_equal (sa_str (r.json, "session_id"), "test_session_123");
    assert_string_equal (sa_str (r.json, "operation"), "regenerate");
    sa_iso (r.json, "timestamp");
    data = sa_obj (r.json, "data");
    char regen_task[80];
    snprintf (regen_task, sizeof regen_task, "%s", sa_str (data, "task_id"));
    assert_true (sa_prefix (regen_task, "regen_"));
    assert_string_not_equal (regen_task, turn.task_id);
    assert_string_equal (sa_str (data, "original_message_id"), turn.user_id);
    svc_response_free (&r);
    json_decref (sa_wait_task (mesh, token, regen_task, "completed", 20000));

    //  3. Edit the user message with trigger_regeneration.
    s_path (path, sizeof path, "/api/messages/%s", turn.user_id);
    sa_req (mesh, "PUT", path, token,
            "{\"content\": \"Updated message content\", \"trigger_regeneration\": true}", 200,
            &r);
    sa_success (&r);
    assert_string_equal (sa_str (r.json, "operation"), "edit");
    assert_string_equal (sa_str (r.json, "message_id"), turn.user_id);
    assert_string_equal (sa_str (r.json, "session_id"), "test_session_123");
    sa_iso (r.json, "timestamp");
    data = sa_obj (r.json, "data");
    assert_string_equal (sa_str (data, "original_content"), "Test question");
    assert_string_equal (sa_str (data, "new_content"), "Updated message content");
    assert_true (sa_bool (data, "triggered_regeneration"));
    char edit_task[80], edit_answer[300];
    snprintf (edit_task, sizeof edit_task, "%s", sa_str (data, "regeneration_task_id"));
    assert_true (sa_prefix (edit_task, "regen_"));
    //  The question's version 2, with a new branch: a new answer below it.
    assert_int_equal (sa_int (data, "version_index"), 2);
    assert_int_equal (sa_int (data, "version_count"), 2);
    snprintf (edit_answer, sizeof edit_answer, "%s", sa_str (data, "assistant_message_id"));
    assert_string_not_equal (edit_answer, turn.assistant_id);
    svc_response_free (&r);

    //  4. Upvote with a reason.
    s_path (path, sizeof path, "/api/messages/%s/feedback", turn.assistant_id);
    sa_req (mesh, "POST", path, token,
            "{\"feedback_type\": \"upvote\", \"reason\": \"Very helpful response\"}", 200, &r);
    sa_success (&r);
    char feedback_id[80];
    snprintf (feedback_id, sizeof feedback_id, "%s", sa_str (r.json, "feedback_id"));
    assert_true (sa_prefix (feedback_id, "fb_"));
    assert_string_equal (sa_str (r.json, "message_id"), turn.assistant_id);
    assert_string_equal (sa_str (r.json, "session_id"), "test_session_123");
    //  The old answer is in the branch of the question's version 1, and
    //  its id still answers: the vote is on the version it shows.
    long long voted = sa_int (r.json, "version_index");
    assert_int_equal (voted, 2);
    sa_iso (r.json, "timestamp");
    svc_response_free (&r);

    //  GET feedback
    sa_req (mesh, "GET", path, token, NULL, 200, &r);
    sa_success (&r);
    assert_string_equal (sa_str (r.json, "message_id"), turn.assistant_id);
    json_t *summary = sa_obj (r.json, "feedback_summary");
    assert_int_equal (sa_int (summary, "upvotes"), 1);
    assert_int_equal (sa_int (summary, "downvotes"), 0);
    assert_int_equal (sa_int (summary, "total"), 1);
    json_t *recent = sa_arr (r.json, "recent_feedback");
    assert_int_equal (json_array_size (recent), 1);
    json_t *item = json_array_get (recent, 0);
    assert_string_equal (sa_str (item, "id"), feedback_id);
    assert_string_equal (sa_str (item, "user_id"), "alice");
    assert_string_equal (sa_str (item, "feedback_type"), "upvote");
    assert_string_equal (sa_str (item, "reason"), "Very helpful response");
    sa_iso (item, "created_at");
    sa_iso (r.json, "timestamp");
    svc_response_free (&r);

    //  GET history of the edited message.
    s_path (path, sizeof path, "/api/messages/%s/history", turn.user_id);
    sa_req (mesh, "GET", path, token, NULL, 200, &r);
    sa_success (&r);
    assert_string_equal (sa_str (r.json, "message_id"), turn.user_id);
    assert_int_equal (sa_int (r.json, "edit_count"), 1);
    json_t *history = sa_arr (r.json, "history");
    assert_int_equal (json_array_size (history), 1);
    item = json_array_get (history, 0);
    assert_true (sa_prefix (sa_str (item, "id"), "hist_"));
    assert_string_equal (sa_str (item, "original_content"), "Test question");
    assert_string_equal (sa_str (item, "edited_content"), "Updated message content");
    sa_iso (item, "edit_timestamp");
    assert_string_equal (sa_str (item, "user_id"), "alice");
    sa_iso (r.json, "timestamp");
    svc_response_free (&r);

    //  The edit's regeneration runs to completion.
    json_t *done = sa_wait_task (mesh, token, edit_task, "completed", 20000);
    assert_string_equal (sa_str (done, "message_id"), edit_answer);
    json_decref (done);

    //  GET the session: messages in order with their metadata.
    sa_req (mesh, "GET", "/api/sessions/test_session_123", token, NULL, 200, &r);
    sa_success (&r);
    json_t *session = sa_obj (r.json, "session");
    assert_string_equal (sa_str (session, "session_id"), "test_session_123");
    sa_str (session, "title");
    const char *created = sa_iso (session, "created_at");
    const char *updated = sa_iso (session, "updated_at");
    assert_true (strcmp (created, updated) <= 0);
    assert_int_equal (sa_int (session, "message_count"), 2);
    json_t *messages = sa_arr (session, "messages");
    assert_int_equal (json_array_size (messages), 2);
    const char *roles[] = {"user", "assistant"};
    const char *ids[] = {turn.user_id, edit_answer};
    for (size_t i = 0; i < 2; i++) {
        json_t *message = json_array_get (messages, i);
        assert_string_equal (sa_str (message, "id"), ids[i]);
        assert_string_equal (sa_str (message, "role"), roles[i]);
        sa_str (message, "content");
        sa_iso (message, "timestamp");
        json_t *metadata = sa_obj (message, "metadata");
        sa_bool (metadata, "edited");
        assert_false (sa_bool (metadata, "regenerating"));
        sa_bool (metadata, "regenerated");
        sa_int (metadata, "upvotes");
        sa_int (metadata, "downvotes");
    }
    json_t *user_msg = json_array_get (messages, 0), *bot = json_array_get (messages, 1);
    assert_string_equal (sa_str (user_msg, "content"), "Updated message content");
    assert_true (sa_bool (sa_obj (user_msg, "metadata"), "edited"));
    assert_true (sa_bool (sa_obj (bot, "metadata"), "regenerated"));
    //  The edit's answer is the new branch's, without the vote given on
    //  the old answer; that one keeps it.
    assert_int_equal (sa_int (user_msg, "version_index"), 2);
    assert_int_equal (sa_int (bot, "version_index"), 1);
    assert_int_equal (sa_int (bot, "version_count"), 1);
    assert_int_equal (sa_int (sa_obj (bot, "metadata"), "upvotes"), 0);
    assert_true (strlen (sa_str (bot, "content")) > 0);
    svc_response_free (&r);
    s_path (path, sizeof path, "/api/messages/%s/feedback", turn.assistant_id);
    sa_req (mesh, "GET", path, token, NULL, 200, &r);
    json_t *counts = json_array_get (sa_arr (r.json, "versions"), (size_t) voted - 1);
    assert_int_equal (sa_int (counts, "version_index"), voted);
    assert_int_equal (sa_int (counts, "upvotes"), 1);
    svc_response_free (&r);

    //  GET sessions: the caller's list.
    sa_req (mesh, "GET", "/api/sessions", token, NULL, 200, &r);
    sa_success (&r);
    json_t *sessions = sa_arr (r.json, "sessions");
    bool found = false;
    for (size_t i = 0; i < json_array_size (sessions); i++) {
        json_t *s = json_array_get (sessions, i);
        sa_str (s, "title");
        sa_iso (s, "created_at");
        sa_iso (s, "updated_at");
        if (strcmp (sa_str (s, "session_id"), "test_session_123") == 0) {
            found = true;
            //  Every stored message, of every branch: the old answer too.
            assert_int_equal (sa_int (s, "message_count"), 3);
        }
    }
    assert_true (found);
    svc_response_free (&r);
    free (token);
}

//  ---------------------------------------------------------------------------

static void
test_task_lifecycle_and_events (void **state)
{
    svc_mesh_t *mesh = *state;
    char *token = svc_token (mesh, "bob", 600);
    sa_turn_t turn;
    sa_turn (mesh, token, "bob_tasks", "Explain leases in a task queue", &turn);

    //  The answer task: every poll is pending/in_progress until completed.
    char path[600];
    snprintf (path, sizeof path, "/api/messages/tasks/%s/status", turn.task_id);
    svc_response_t r;
    sa_req (mesh, "GET", path, token, NULL, 200, &r);
    sa_success (&r);
    assert_string_equal (sa_str (r.json, "task_id"), turn.task_id);
    const char *status = sa_str (r.json, "status");
    assert_true (strcmp (status, "pending") == 0 || strcmp (status, "in_progress") == 0
                 || strcmp (status, "completed") == 0);
    assert_string_equal (sa_str (r.json, "message_id"), turn.assistant_id);
    assert_string_equal (sa_str (r.json, "session_id"), "bob_tasks");
    sa_iso (r.json, "created_at");
    sa_iso_or_null (r.json, "started_at");
    sa_iso_or_null (r.json, "completed_at");
    sa_get (r.json, "error_message");
    sa_iso (r.json, "timestamp");
    svc_response_free (&r);
    json_t *done = sa_wait_task (mesh, token, turn.task_id, "completed", 20000);
    assert_int_equal (sa_int (done, "progress"), 100);
    const char *created = sa_iso (done, "created_at");
    const char *started = sa_iso (done, "started_at");
    const char *completed = sa_iso (done, "completed_at");
    assert_true (strcmp (created, started) <= 0);
    assert_true (strcmp (started, completed) <= 0);
    sa_null (done, "error_message");
    json_decref (done);

    //  A regeneration seen on the stream: regenerating < progress* < done.
    svc_sse_t *sse = svc_sse_open (mesh, "/api/run_sse/bob_tasks", token, NULL);
    assert_non_null (sse);
    assert_int_equal (svc_sse_status (sse), 200);
    assert_non_null (svc_sse_wait (sse, "connection_status", 5000));
    snprintf (path, sizeof path, "/api/messages/%s/regenerate", turn.assistant_id);
    sa_req (mesh, "POST", path, token, NULL, 200, &r); //  no body at all: allowed
    char task[80];
    snprintf (task, sizeof task, "%s", sa_str (sa_obj (r.json, "data"), "task_id"));
    svc_response_free (&r);
    const svc_event_t *end = svc_sse_wait (sse, "message_regenerated", 20000);
    assert_non_null (end);
    assert_string_equal (sa_str (end->json, "taskId"), task);
    assert_string_equal (sa_str (end->json, "messageId"), turn.assistant_id);
    int begin_at = -1, end_at = -1, progress_count = 0;
    for (size_t i = 0; i < svc_sse_count (sse); i++) {
        const svc_event_t *event = svc_sse_at (sse, i);
        json_t *task_id = event->json ? json_object_get (event->json, "taskId") : NULL;
        if (!task_id || strcmp (json_string_value (task_id), task) != 0)
            continue;
        if (strcmp (event->event, "message_regenerating") == 0)
            begin_at = (int) i;
        else if (strcmp (event->event, "regeneration_progress") == 0) {
            assert_true (begin_at >= 0);
            assert_true (end_at < 0);
            json_int_t p = sa_int (event->json, "progress");
            assert_true (p >= 0 && p <= 100);
            progress_count++;
        }
        else if (strcmp (event->event, "message_regenerated") == 0)
            end_at = (int) i;
    }
    assert_true (begin_at >= 0 && end_at > begin_at);
    assert_true (progress_count >= 1);
    svc_sse_close (&sse);
    done = sa_wait_task (mesh, token, task, "completed", 5000);
    assert_int_equal (sa_int (done, "progress"), 100);
    json_decref (done);

    //  Unknown and invalid task ids.
    sa_req (mesh, "GET", "/api/messages/tasks/regen_0000/status", token, NULL, 404, &r);
    sa_error (&r, 404, "not_found");
    svc_response_free (&r);
    sa_req (mesh, "GET", "/api/messages/tasks/bad!id/status", token, NULL, 400, &r);
    sa_error (&r, 400, "invalid_task_id");
    svc_response_free (&r);
    //  Cancelling a task that already ended: 409, documented code.
    snprintf (path, sizeof path, "/api/messages/tasks/%s/cancel", task);
    sa_req (mesh, "POST", path, token, NULL, 409, &r);
    sa_error (&r, 409, "invalid_state");
    svc_response_free (&r);
    free (token);
}

//  ---------------------------------------------------------------------------

static void
test_delete_with_followers (void **state)
{
    svc_mesh_t *mesh = *state;
    char *token = svc_token (mesh, "carol", 600);
    sa_turn_t one, two;
    sa_turn (mesh, token, "carol_del", "first question", &one);
    s_answered (mesh, token, &one);
    sa_turn (mesh, token, "carol_del", "second question", &two);
    s_answered (mesh, token, &two);
    svc_response_t r;
    sa_req (mesh, "GET", "/api/sessions/carol_del", token, NULL, 200, &r);
    assert_int_equal (sa_int (sa_obj (r.json, "session"), "message_count"), 4);
    svc_response_free (&r);

    char path[600];
    snprintf (path, sizeof path, "/api/messages/%s", one.assistant_id);
    sa_req (mesh, "DELETE", path, token, NULL, 200, &r);
    sa_success (&r);
    assert_string_equal (sa_str (r.json, "operation"), "delete");
    assert_string_equal (sa_str (r.json, "message_id"), one.assistant_id);
    assert_string_equal (sa_str (r.json, "session_id"), "carol_del");
    sa_iso (r.json, "timestamp");
    json_t *data = sa_obj (r.json, "data");
    assert_int_equal (sa_int (data, "deleted_count"), 3);
    json_t *ids = sa_arr (data, "deleted_message_ids");
    assert_int_equal (json_array_size (ids), 3);
    assert_string_equal (json_string_value (json_array_get (ids, 0)), one.assistant_id);
    assert_string_equal (json_string_value (json_array_get (ids, 1)), two.user_id);
    assert_string_equal (json_string_value (json_array_get (ids, 2)), two.assistant_id);
    svc_response_free (&r);

    sa_req (mesh, "GET", "/api/sessions/carol_del", token, NULL, 200, &r);
    json_t *session = sa_obj (r.json, "session");
    assert_int_equal (sa_int (session, "message_count"), 1);
    json_t *messages = sa_arr (session, "messages");
    assert_int_equal (json_array_size (messages), 1);
    assert_string_equal (sa_str (json_array_get (messages, 0), "id"), one.user_id);
    svc_response_free (&r);

    //  Gone: a second delete and a vote on a deleted message are 404.
    sa_req (mesh, "DELETE", path, token, NULL, 404, &r);
    sa_error (&r, 404, "not_found");
    svc_response_free (&r);
    snprintf (path, sizeof path, "/api/messages/%s/feedback", two.assistant_id);
    sa_req (mesh, "POST", path, token, "{\"feedback_type\": \"upvote\"}", 404, &r);
    svc_response_free (&r);
    free (token);
}

//  ---------------------------------------------------------------------------

static void
test_feedback_replacement (void **state)
{
    svc_mesh_t *mesh = *state;
    char *token = svc_token (mesh, "dave", 600);
    sa_turn_t turn;
    sa_turn (mesh, token, "dave_votes", "vote on me", &turn);
    char path[600];
    snprintf (path, sizeof path, "/api/messages/%s/feedback", turn.assistant_id);
    svc_response_t r;
    sa_req (mesh, "POST", path, token, "{\"feedback_type\": \"upvote\"}", 200, &r);
    char first[80];
    snprintf (first, sizeof first, "%s", sa_str (r.json, "feedback_id"));
    svc_response_free (&r);
    //  No reason, no metadata: both present as null.
    sa_req (mesh, "GET", path, token, NULL, 200, &r);
    json_t *only = json_array_get (sa_arr (r.json, "recent_feedback"), 0);
    assert_string_equal (sa_str (only, "id"), first);
    sa_null (only, "reason");
    sa_null (only, "metadata");
    svc_response_free (&r);
    sa_req (mesh, "POST", path, token,
            "{\"feedback_type\": \"downvote\", \"reason\": \"changed my mind\", "
            "\"metadata\": {\"source\": \"svc\", \"n\": 2}}",
            200, &r);
    char second[80];
    snprintf (second, sizeof second, "%s", sa_str (r.json, "feedback_id"));
    assert_string_not_equal (first, second);
    svc_response_free (&r);

    sa_req (mesh, "GET", path, token, NULL, 200, &r);
    json_t *summary = sa_obj (r.json, "feedback_summary");
    assert_int_equal (sa_int (summary, "upvotes"), 0);
    assert_int_equal (sa_int (summary, "downvotes"), 1);
    assert_int_equal (sa_int (summary, "total"), 1);
    json_t *recent = sa_arr (r.json, "recent_feedback");
    assert_int_equal (json_array_size (recent), 1);
    json_t *item = json_array_get (recent, 0);
    assert_string_equal (sa_str (item, "id"), second);
    assert_string_equal (sa_str (item, "feedback_type"), "downvote");
    json_t *metadata = sa_obj (item, "metadata");
    assert_string_equal (sa_str (metadata, "source"), "svc");
    assert_int_equal (sa_int (metadata, "n"), 2);
    svc_response_free (&r);

    //  The deepest metadata accepted (8 levels) can be read back; one level
    //  more is refused up front.
    sa_req (mesh, "POST", path, token,
            "{\"feedback_type\": \"downvote\", \"metadata\": {\"a\": {\"b\": {\"c\": {\"d\": "
            "{\"e\": {\"f\": {\"g\": {\"h\": [1]}}}}}}}}}",
            422, &r);
    sa_error_field (&r, 422, "invalid_field", "metadata");
    svc_response_free (&r);
    sa_req (mesh, "POST", path, token,
            "{\"feedback_type\": \"downvote\", \"metadata\": {\"a\": {\"b\": {\"c\": {\"d\": "
            "{\"e\": {\"f\": {\"g\": {\"h\": 1}}}}}}}}}",
            200, &r);
    svc_response_free (&r);
    sa_req (mesh, "GET", path, token, NULL, 200, &r);
    json_t *deep = sa_obj (json_array_get (sa_arr (r.json, "recent_feedback"), 0), "metadata");
    for (const char *key = "abcdefg"; *key; key++) {
        char name[2] = {*key, 0};
        deep = sa_obj (deep, name);
    }
    assert_int_equal (sa_int (deep, "h"), 1);
    svc_response_free (&r);

    //  The message's metadata follows.
    sa_req (mesh, "GET", "/api/sessions/dave_votes", token, NULL, 200, &r);
    json_t *bot = json_array_get (sa_arr (sa_obj (r.json, "session"), "messages"), 1);
    assert_int_equal (sa_int (sa_obj (bot, "metadata"), "upvotes"), 0);
    assert_int_equal (sa_int (sa_obj (bot, "metadata"), "downvotes"), 1);
    svc_response_free (&r);
    free (token);
}

//  ---------------------------------------------------------------------------

static void
test_analytics_from_stored_data (void **state)
{
    svc_mesh_t *mesh = *state;
    char *token = svc_token (mesh, "erin", 600);
    sa_turn_t turn;
    sa_turn (mesh, token, "erin_stats", "measure this", &turn);
    svc_response_t r;

    //  Before any regeneration or vote: the ratios are null.
    sa_req (mesh, "GET", "/api/sessions/erin_stats/analytics", token, NULL, 200, &r);
    sa_success (&r);
    assert_string_equal (sa_str (r.json, "session_id"), "erin_stats");
    sa_iso (r.json, "timestamp");
    json_t *a = sa_obj (r.json, "analytics");
    assert_int_equal (sa_int (a, "total_messages"), 2);
    assert_int_equal (sa_int (a, "regeneration_count"), 0);
    sa_null (a, "regeneration_success_rate");
    sa_null (a, "user_satisfaction");
    sa_null (a, "average_regeneration_seconds");
    sa_null (a, "p95_regeneration_seconds");
    svc_response_free (&r);

    s_answered (mesh, token, &turn);
    char path[600];
    snprintf (path, sizeof path, "/api/messages/%s/regenerate", turn.assistant_id);
    sa_req (mesh, "POST", path, token, "{\"model\": \"builtin\", \"context\": \"short\"}", 200,
            &r);
    char task[80];
    snprintf (task, sizeof task, "%s", sa_str (sa_obj (r.json, "data"), "task_id"));
    svc_response_free (&r);
    json_decref (sa_wait_task (mesh, token, task, "completed", 20000));
    snprintf (path, sizeof path, "/api/messages/%s", turn.user_id);
    sa_req (mesh, "PUT", path, token,
            "{\"content\": \"measure that\", \"trigger_regeneration\": false}", 200, &r);
    assert_false (sa_bool (sa_obj (r.json, "data"), "triggered_regeneration"));
    sa_null (sa_obj (r.json, "data"), "regeneration_task_id");
    svc_response_free (&r);
    snprintf (path, sizeof path, "/api/messages/%s/feedback", turn.assistant_id);
    sa_req (mesh, "POST", path, token, "{\"feedback_type\": \"upvote\"}", 200, &r);
    svc_response_free (&r);
    snprintf (path, sizeof path, "/api/messages/%s/feedback", turn.user_id);
    sa_req (mesh, "POST", path, token, "{\"feedback_type\": \"downvote\"}", 200, &r);
    svc_response_free (&r);

    sa_req (mesh, "GET", "/api/sessions/erin_stats/analytics", token, NULL, 200, &r);
    a = sa_obj (r.json, "analytics");
    assert_int_equal (sa_int (a, "total_messages"), 2);
    assert_int_equal (sa_int (a, "regeneration_count"), 1);
    assert_int_equal (sa_int (a, "regeneration_completed"), 1);
    assert_int_equal (sa_int (a, "regeneration_failed"), 0);
    assert_true (sa_num (a, "regeneration_success_rate") == 1.0);
    assert_int_equal (sa_int (a, "edit_count"), 1);
    assert_int_equal (sa_int (a, "feedback_count"), 2);
    assert_int_equal (sa_int (a, "upvotes"), 1);
    assert_int_equal (sa_int (a, "downvotes"), 1);
    assert_true (sa_num (a, "user_satisfaction") == 0.5);
    double average = sa_num (a, "average_regeneration_seconds");
    double p95 = sa_num (a, "p95_regeneration_seconds");
    assert_true (average > 0.0 && average < 20.0);
    assert_true (p95 >= average);
    svc_response_free (&r);
    free (token);
}

//  ---------------------------------------------------------------------------
//  Audit: every action's record, read straight from the store.

static void
test_audit_records_ip_and_agent (void **state)
{
    svc_mesh_t *mesh = *state;
    char *token = svc_token (mesh, "grace", 600);
    const char *ua = "User-Agent: svc-api-test/1.0 (audit; \xc3\xa9)";
    const char *base = svc_mesh_url (mesh);
    svc_response_t r;
    sa_req_at (base, "POST", "/api/run_sse/grace_audit", token, "{\"query\": \"audit me\"}",
               NULL, ua, 200, &r);
    sa_turn_t turn;
    json_t *data = sa_obj (r.json, "data");
    snprintf (turn.user_id, sizeof turn.user_id, "%s", sa_str (data, "user_message_id"));
    snprintf (turn.assistant_id, sizeof turn.assistant_id, "%s",
              sa_str (data, "assistant_message_id"));
    snprintf (turn.task_id, sizeof turn.task_id, "%s", sa_str (data, "task_id"));
    svc_response_free (&r);
    s_answered (mesh, token, &turn);
    char path[600];
    snprintf (path, sizeof path, "/api/messages/%s/feedback", turn.assistant_id);
    sa_req_at (base, "POST", path, token, "{\"feedback_type\": \"upvote\"}", NULL, ua, 200, &r);
    svc_response_free (&r);
    snprintf (path, sizeof path, "/api/messages/%s/regenerate", turn.assistant_id);
    sa_req_at (base, "POST", path, token, "{}", NULL, ua, 200, &r);
    char task[80];
    snprintf (task, sizeof task, "%s", sa_str (sa_obj (r.json, "data"), "task_id"));
    svc_response_free (&r);
    json_decref (sa_wait_task (mesh, token, task, "completed", 20000));
    snprintf (path, sizeof path, "/api/messages/%s", turn.user_id);
    sa_req_at (base, "PUT", path, token, "{\"content\": \"audit you\", \"trigger_regeneration\": false}",
               NULL, ua, 200, &r);
    svc_response_free (&r);
    snprintf (path, sizeof path, "/api/messages/%s", turn.assistant_id);
    sa_req_at (base, "DELETE", path, token, NULL, NULL, ua, 200, &r);
    svc_response_free (&r);

    int code = 0;
    cm_value_t *ok = sa_audit_query (mesh, "grace", "grace_audit", &code);
    assert_int_equal (code, 0);
    const cm_value_t *entries = cm_map_get (ok, "entries");
    assert_non_null (entries);
    assert_int_equal (entries->type, CM_T_ARR);
    const char *wanted[] = {"session_start", "feedback", "regenerate", "edit", "delete"};
    bool seen[5] = {false};
    bool completed = false;
    for (size_t i = 0; i < cm_value_len (entries); i++) {
        const cm_value_t *entry = cm_arr_at (entries, i);
        const char *action = cm_map_str_or (entry, "action_type", "");
        assert_string_equal (cm_map_str_or (entry, "session_id", ""), "grace_audit");
        assert_true (sa_prefix (cm_map_str_or (entry, "id", ""), ""));
        if (strcmp (action, "regenerate_complete") == 0)
            completed = true;
        for (size_t k = 0; k < 5; k++)
            if (strcmp (action, wanted[k]) == 0) {
                seen[k] = true;
                //  Actions a person took carry who, from where, with what.
                assert_string_equal (cm_map_str_or (entry, "user_id", ""), "grace");
                assert_string_equal (cm_map_str_or (entry, "client_ip", ""), "127.0.0.1");
                assert_string_equal (cm_map_str_or (entry, "user_agent", ""), ua + 12);
                const cm_value_t *at = cm_map_get (entry, "created_at");
                assert_non_null (at);
                if (k != 0)
                    assert_string_equal (cm_map_str_or (entry, "message_id", ""),
                                         k == 3 ? turn.user_id : turn.assistant_id);
            }
    }
    for (size_t k = 0; k < 5; k++)
        if (!seen[k])
            fail_msg ("no audit entry of action '%s'", wanted[k]);
    assert_true (completed);
    cm_value_destroy (&ok);

    //  A long User-Agent is kept up to 500 bytes, never cut inside a UTF-8
    //  sequence ("é" straddles byte 500 here).
    char long_ua[700];
    int n = snprintf (long_ua, sizeof long_ua, "User-Agent: ");
    memset (long_ua + n, 'u', 499);
    snprintf (long_ua + n + 499, sizeof long_ua - (size_t) n - 499, "\xc3\xa9 and more");
    snprintf (path, sizeof path, "/api/messages/%s/feedback", turn.user_id);
    sa_req_at (base, "POST", path, token, "{\"feedback_type\": \"downvote\"}", NULL, long_ua,
               200, &r);
    svc_response_free (&r);
    ok = sa_audit_query (mesh, "grace", "grace_audit", &code);
    assert_int_equal (code, 0);
    const cm_value_t *newest = cm_arr_at (cm_map_get (ok, "entries"), 0);
    assert_string_equal (cm_map_str_or (newest, "action_type", ""), "feedback");
    const char *kept = cm_map_str_or (newest, "user_agent", "");
    assert_int_equal (strlen (kept), 499);
    assert_int_equal (strspn (kept, "u"), 499);
    cm_value_destroy (&ok);

    //  Another user cannot read grace's audit trail.
    ok = sa_audit_query (mesh, "mallory", "grace_audit", &code);
    assert_null (ok);
    assert_int_equal (code, CM_ENOTFOUND);
    free (token);
}

//  The client_ip of the one audit entry of session `session` (session_start).
static void
s_audit_ip (svc_mesh_t *mesh, const char *user, const char *session, const char *want)
{
    int code = 0;
    cm_value_t *ok = sa_audit_query (mesh, user, session, &code);
    assert_int_equal (code, 0);
    const cm_value_t *entries = cm_map_get (ok, "entries");
    assert_non_null (entries);
    assert_int_equal (cm_value_len (entries), 1);
    const cm_value_t *entry = cm_arr_at (entries, 0);
    assert_string_equal (cm_map_str_or (entry, "action_type", ""), "session_start");
    const char *ip = cm_map_str_or (entry, "client_ip", "");
    if (strcmp (ip, want) != 0)
        fail_msg ("session %s: client_ip '%s', wanted '%s'", session, ip, want);
    cm_value_destroy (&ok);
}

//  X-Forwarded-For names the client only when the peer is a trusted proxy:
//  this mesh's gateway trusts nobody (the default), a second one trusts
//  127.0.0.1 (where the test's requests come from, as if from nginx) and a
//  CDN's 192.0.2.0/24 in front of it, two hops.
static void
test_audit_ip_behind_trusted_proxy (void **state)
{
    svc_mesh_t *mesh = *state;
    static const char *const trusting[] = {"CHATMESH_TRUSTED_PROXIES=127.0.0.1,192.0.2.0/24",
                                           "CHATMESH_TRUSTED_PROXY_HOPS=2", NULL};
    assert_int_equal (svc_mesh_spawn_gateway2 (mesh, trusting), 0);
    char *token = svc_token (mesh, "heidi", 600);
    struct {
        const char *base, *session, *forwarded_for, *client;
    } cases[] = {
        //  The first gateway trusts nobody: the peer.
        {svc_mesh_url (mesh), "heidi_direct", "198.51.100.23", "127.0.0.1"},
        //  The client's own "1.2.3.4" is left of what the proxy appended.
        {svc_mesh_url2 (mesh), "heidi_proxied", "1.2.3.4, 198.51.100.23", "198.51.100.23"},
        {svc_mesh_url2 (mesh), "heidi_garbled", "198.51.100.23, unknown", "127.0.0.1"},
        //  Through the CDN: its entry is trusted, the one left of it is the
        //  client; the client's own "1.2.3.4" is beyond the two hops.
        {svc_mesh_url2 (mesh), "heidi_cdn", "1.2.3.4, 203.0.113.7, 192.0.2.9", "203.0.113.7"},
    };
    size_t count = sizeof cases / sizeof cases[0];
    for (size_t i = 0; i < count; i++) {
        char path[100], header[200];
        snprintf (path, sizeof path, "/api/run_sse/%s", cases[i].session);
        snprintf (header, sizeof header, "X-Forwarded-For: %s", cases[i].forwarded_for);
        svc_response_t r;
        sa_req_at (cases[i].base, "POST", path, token, "{\"query\": \"where am I\"}", NULL,
                   header, 200, &r);
        svc_response_free (&r);
    }
    for (size_t i = 0; i < count; i++)
        s_audit_ip (mesh, "heidi", cases[i].session, cases[i].client);
    free (token);
}

//  ---------------------------------------------------------------------------
//  Edges: edits of either role, history order, emptied sessions, odd bodies.

static time_t
s_iso_seconds (const char *iso)
{
    struct tm tm = {0};
    if (!strptime (iso, "%Y-%m-%dT%H:%M:%S", &tm))
        return 0;
    return timegm (&tm);
}

static void
test_edges (void **state)
{
    svc_mesh_t *mesh = *state;
    char *token = svc_token (mesh, "uma", 600);
    sa_turn_t turn;
    sa_turn (mesh, token, "uma_edge", "original question", &turn);
    s_answered (mesh, token, &turn);
    svc_response_t r;
    char path[600];

    //  Editing an assistant message never triggers a regeneration.
    snprintf (path, sizeof path, "/api/messages/%s", turn.assistant_id);
    sa_req (mesh, "PUT", path, token, "{\"content\": \"hand-written answer\"}", 200, &r);
    json_t *data = sa_obj (r.json, "data");
    assert_false (sa_bool (data, "triggered_regeneration"));
    sa_null (data, "regeneration_task_id");
    //  Times are now-ish UTC (not local time, not seconds as ms).
    time_t at = s_iso_seconds (sa_iso (r.json, "timestamp"));
    assert_true (labs ((long) (at - time (NULL))) < 120);
    svc_response_free (&r);

    //  Two edits of the user message: history oldest first.
    snprintf (path, sizeof path, "/api/messages/%s", turn.user_id);
    sa_req (mesh, "PUT", path, token, "{\"content\": \"v1\", \"trigger_regeneration\": false}",
            200, &r);
    svc_response_free (&r);
    sa_req (mesh, "PUT", path, token, "{\"content\": \"v2\", \"trigger_regeneration\": false}",
            200, &r);
    assert_string_equal (sa_str (sa_obj (r.json, "data"), "original_content"), "v1");
    svc_response_free (&r);
    snprintf (path, sizeof path, "/api/messages/%s/history", turn.user_id);
    sa_req (mesh, "GET", path, token, NULL, 200, &r);
    assert_int_equal (sa_int (r.json, "edit_count"), 2);
    json_t *history = sa_arr (r.json, "history");
    assert_int_equal (json_array_size (history), 2);
    assert_string_equal (sa_str (json_array_get (history, 0), "original_content"),
                         "original question");
    assert_string_equal (sa_str (json_array_get (history, 0), "edited_content"), "v1");
    assert_string_equal (sa_str (json_array_get (history, 1), "original_content"), "v1");
    assert_string_equal (sa_str (json_array_get (history, 1), "edited_content"), "v2");
    assert_true (strcmp (sa_iso (json_array_get (history, 0), "edit_timestamp"),
                         sa_iso (json_array_get (history, 1), "edit_timestamp"))
                 <= 0);
    svc_response_free (&r);
    //  Histories are per message: the assistant has its own single edit.
    snprintf (path, sizeof path, "/api/messages/%s/history", turn.assistant_id);
    sa_req (mesh, "GET", path, token, NULL, 200, &r);
    assert_int_equal (sa_int (r.json, "edit_count"), 1);
    svc_response_free (&r);

    //  Odd bodies.
    snprintf (path, sizeof path, "/api/messages/%s/feedback", turn.assistant_id);
    const char *bad[] = {
        "{\"feedback_type\": \"upvote\"} trailing",
        "{\"feedback_type\": \"up\\u0000vote\"}",
        "{\"feedback_type\": \"upvote\", \"reason\": \"\\ud800\"}",
        "{\"feedback_type\": \"upvote\", \"metadata\": {\"x\": 1e999}}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        sa_req (mesh, "POST", path, token, bad[i], 400, &r);
        sa_error (&r, 400, "invalid_json");
        svc_response_free (&r);
    }
    //  A chunked body (no Content-Length) over the limit: 413 as well.
    size_t big = MAX_BODY * 2;
    char *body = malloc (big + 64);
    int n = snprintf (body, big + 64, "{\"feedback_type\": \"upvote\", \"reason\": \"");
    memset (body + n, 'y', big - (size_t) n);
    strcpy (body + big, "\"}");
    sa_req_at (svc_mesh_url (mesh), "POST", path, token, body, NULL,
               "Transfer-Encoding: chunked", 413, &r);
    sa_error (&r, 413, "payload_too_large");
    svc_response_free (&r);
    free (body);
    //  A percent-encoded session id is decoded before it is checked.
    sa_req (mesh, "GET", "/api/sessions/uma%5Fedge", token, NULL, 200, &r);
    assert_string_equal (sa_str (sa_obj (r.json, "session"), "session_id"), "uma_edge");
    svc_response_free (&r);
    //  An over-long session id: 400.
    char long_id[200];
    memset (long_id, 's', 129);
    long_id[129] = 0;
    snprintf (path, sizeof path, "/api/sessions/%s", long_id);
    sa_req (mesh, "GET", path, token, NULL, 400, &r);
    sa_error (&r, 400, "invalid_session_id");
    svc_response_free (&r);
    long_id[128] = 0; //  128 is fine (and unknown)
    snprintf (path, sizeof path, "/api/sessions/%s", long_id);
    sa_req (mesh, "GET", path, token, NULL, 404, &r);
    svc_response_free (&r);

    //  Deleting the first message empties the session; it can continue.
    snprintf (path, sizeof path, "/api/messages/%s", turn.user_id);
    sa_req (mesh, "DELETE", path, token, NULL, 200, &r);
    assert_int_equal (sa_int (sa_obj (r.json, "data"), "deleted_count"), 2);
    svc_response_free (&r);
    sa_req (mesh, "GET", "/api/sessions/uma_edge", token, NULL, 200, &r);
    assert_int_equal (sa_int (sa_obj (r.json, "session"), "message_count"), 0);
    assert_int_equal (json_array_size (sa_arr (sa_obj (r.json, "session"), "messages")), 0);
    svc_response_free (&r);
    sa_turn (mesh, token, "uma_edge", "again", &turn);
    sa_req (mesh, "GET", "/api/sessions/uma_edge", token, NULL, 200, &r);
    assert_int_equal (sa_int (sa_obj (r.json, "session"), "message_count"), 2);
    svc_response_free (&r);
    free (token);
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_guide_checks_and_shapes),
        cmocka_unit_test (test_task_lifecycle_and_events),
        cmocka_unit_test (test_delete_with_followers),
        cmocka_unit_test (test_feedback_replacement),
        cmocka_unit_test (test_analytics_from_stored_data),
        cmocka_unit_test (test_audit_records_ip_and_agent),
        cmocka_unit_test (test_audit_ip_behind_trusted_proxy),
        cmocka_unit_test (test_edges),
    };
    return cmocka_run_group_tests (tests, s_setup, svc_fixture_teardown);
}
