/*  svc_continue: Stop keeps what was seen, and a stopped answer continues,
    through the real binaries (issue 16).
      - Cancel an answer mid-way: regeneration_error carries the kept text,
        which is exactly the last partialContent the reader got, a
        non-empty prefix of the uninterrupted builtin answer; the stored
        message has it, marked finish_reason "cancelled".
      - POST /api/messages/{id}/continue: the same message and version
        grow from that text (one regeneration_progress resumed: true at
        the seam, never a rewind) to the uninterrupted answer, byte for
        byte; the mark goes.
      - The same for a regenerate stopped mid-way: its text is a new
        version, and continuing it stays that version.
      - Refusals change nothing: a complete answer (409 invalid_state), a
        running one (409 conflict), a user message (400), an unknown id or
        another user's message (404). An Idempotency-Key retry of a
        continue answers the first task and starts no second one.      */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "rg_builtin.h"
#include "svc_harness.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *s_first_query = "What is a lease?";
static const char *s_long_query = "Explain in detail how write-ahead logging, checkpoints and "
                                  "replication together keep a database consistent after a crash";

static const char *
s_str (const json_t *object, const char *key)
{
    return json_string_value (json_object_get (object, key));
}

//  Index of the first event at or after from of type for task_id (NULL:
//  any), waiting up to timeout_ms; -1 when none came.
static long
s_find (svc_sse_t *sse, size_t from, const char *type, const char *task_id, int timeout_ms)
{
    double deadline = svc_now_ms () + timeout_ms;
    size_t i = from;
    while (true) {
        for (size_t count = svc_sse_count (sse); i < count; i++) {
            const svc_event_t *event = svc_sse_at (sse, i);
            const char *task = event->json ? s_str (event->json, "taskId") : NULL;
            if (strcmp (event->event, type) == 0
                && (!task_id || (task && strcmp (task, task_id) == 0)))
                return (long) i;
        }
        double left = deadline - svc_now_ms ();
        if (left <= 0)
            return -1;
        svc_sse_wait (sse, NULL, left < 100 ? (int) left + 1 : 100);
    }
}

static json_t *
s_session_get (svc_mesh_t *mesh, const char *token, const char *session)
{
    char path[300];
    snprintf (path, sizeof path, "/api/sessions/%s", session);
    svc_response_t response;
    assert_int_equal (svc_http (mesh, "GET", path, token, NULL, &response), 0);
    assert_int_equal (response.status, 200);
    json_t *messages
        = json_incref (json_object_get (json_object_get (response.json, "session"), "messages"));
    svc_response_free (&response);
    return messages;
}

//  The stored message at index of session (caller decrefs).
static json_t *
s_stored (svc_mesh_t *mesh, const char *token, const char *session, size_t index)
{
    json_t *messages = s_session_get (mesh, token, session);
    json_t *message = json_incref (json_array_get (messages, index));
    assert_non_null (message);
    json_decref (messages);
    return message;
}

static const char *
s_finish_reason (const json_t *message)
{
    return s_str (json_object_get (message, "metadata"), "finish_reason");
}

//  Waits until the message at index is no longer being written; returns
//  its content (caller frees).
static char *
s_wait_answer (svc_mesh_t *mesh, const char *token, const char *session, size_t index)
{
    for (double until = svc_now_ms () + 30000; svc_now_ms () < until;) {
        json_t *message = s_stored (mesh, token, session, index);
        bool busy = json_is_true (
            json_object_get (json_object_get (message, "metadata"), "regenerating"));
        char *content = busy ? NULL : strdup (s_str (message, "content"));
        json_decref (message);
        if (content)
            return content;
        usleep (50 * 1000);
    }
    fail_msg ("the answer of %s never ended", session);
    return NULL;
}

//  One request; its status, the body kept in *response when not NULL.
static long
s_post (svc_mesh_t *mesh, const char *token, const char *path, const char *header,
        svc_response_t *response)
{
    svc_response_t local;
    svc_response_t *r = response ? response : &local;
    assert_int_equal (svc_http_ex (mesh, "POST", path, token, NULL, NULL, header, r), 0);
    long status = r->status;
    if (!response)
        svc_response_free (&local);
    return status;
}

//  The builtin answer an uninterrupted run of kind writes for task_id,
//  answering the last of turns (role, content pairs).
static char *
s_uninterrupted (const char *task_id, const char *kind, const char *const turns[][2],
                 size_t count)
{
    cm_value_t *map = cm_map_new ();
    cm_map_set_str (map, "task_id", task_id);
    cm_map_set_str (map, "kind", kind);
    cm_map_set_str (map, "user_query", turns[count - 1][1]);
    cm_value_t *conversation = cm_arr_new ();
    for (size_t i = 0; i < count; i++) {
        cm_value_t *turn = cm_map_new ();
        cm_map_set_str (turn, "role", turns[i][0]);
        cm_map_set_str (turn, "content", turns[i][1]);
        cm_arr_push (conversation, turn);
    }
    cm_map_set (map, "conversation", conversation);
    rg_task_t *task = NULL;
    assert_int_equal (rg_task_parse (map, &task), 0);
    cm_value_destroy (&map);
    rg_builtin_text_t text;
    assert_int_equal (rg_builtin_compose (task, rg_builtin_seed (task), task->temperature, &text),
                      0);
    char *answer = strdup (text.answer);
    rg_builtin_text_free (&text);
    rg_task_destroy (&task);
    return answer;
}

//  Waits for a checkpoint of task_id with text and at least min_progress,
//  cancels the task and waits for its regeneration_error. Checks that the
//  event's kept content is the last partialContent seen before it, not
//  empty, and returns it (caller frees); *error gets the event's index.
static char *
s_stop_midway (svc_mesh_t *mesh, const char *token, svc_sse_t *sse, const char *task_id,
               int min_progress, long *error)
{
    for (size_t from = 0;;) {
        long i = s_find (sse, from, "regeneration_progress", task_id, 30000);
        assert_true (i >= 0);
        const json_t *data = svc_sse_at (sse, (size_t) i)->json;
        if (json_integer_value (json_object_get (data, "progress")) >= min_progress
            && *s_str (data, "partialContent"))
            break;
        from = (size_t) i + 1;
    }
    char path[200];
    snprintf (path, sizeof path, "/api/messages/tasks/%s/cancel", task_id);
    assert_int_equal (s_post (mesh, token, path, NULL, NULL), 200);
    *error = s_find (sse, 0, "regeneration_error", task_id, 10000);
    assert_true (*error >= 0);
    const json_t *data = svc_sse_at (sse, (size_t) *error)->json;
    assert_string_equal (s_str (data, "error"), "cancelled");
    assert_string_equal (s_str (data, "finishReason"), "cancelled");
    const char *last = NULL;
    for (long i = 0; i < *error; i++) {
        const svc_event_t *event = svc_sse_at (sse, (size_t) i);
        const char *task = event->json ? s_str (event->json, "taskId") : NULL;
        if (task && strcmp (task, task_id) == 0
            && strcmp (event->event, "regeneration_progress") == 0)
            last = s_str (event->json, "partialContent");
    }
    assert_non_null (last);
    assert_true (*last);
    assert_string_equal (s_str (data, "content"), last);
    return strdup (last);
}

//  The reader's view of a continue task: message_regenerating first, every
//  partialContent extends the one before starting from `from_text`, the
//  first is resumed: true (the seam) and no other, and the final content
//  extends the last. Returns the final content (borrowed).
static const char *
s_check_growth (svc_sse_t *sse, const char *task_id, const char *from_text, long done)
{
    const char *last = from_text;
    int resumed = 0, progress = 0;
    bool started = false;
    for (long i = 0; i <= done; i++) {
        const svc_event_t *event = svc_sse_at (sse, (size_t) i);
        const char *task = event->json ? s_str (event->json, "taskId") : NULL;
        if (!task || strcmp (task, task_id) != 0)
            continue;
        if (strcmp (event->event, "message_regenerating") == 0) {
            started = true;
            continue;
        }
        const char *text = i == done ? s_str (event->json, "content")
                                     : s_str (event->json, "partialContent");
        if (strcmp (event->event, "regeneration_progress") != 0 && i != done)
            continue;
        assert_true (started);
        assert_non_null (text);
        if (strncmp (text, last, strlen (last)) != 0)
            fail_msg ("event %ld rewinds: '%.40s...' does not extend '%.40s...'", i, text, last);
        if (i != done && json_is_true (json_object_get (event->json, "resumed"))) {
            assert_int_equal (progress, 0);
            resumed++;
        }
        progress += i != done;
        last = text;
    }
    assert_int_equal (resumed, 1);
    return last;
}

//  The session's messages as JSON text, for "nothing changed" (caller frees).
static char *
s_snapshot (svc_mesh_t *mesh, const char *token, const char *session)
{
    json_t *messages = s_session_get (mesh, token, session);
    char *text = json_dumps (messages, JSON_SORT_KEYS | JSON_COMPACT);
    json_decref (messages);
    return text;
}

static int
s_setup (void **state)
{
    const char *env[] = {"CHAT_ACTIONS_RATE_LIMIT=0", "CHAT_REGENERATION_RATE_LIMIT=0",
                         "CHATMESH_BUILTIN_TOKENS_PER_SEC=40",
                         "CHAT_ACTIONS_ENABLE_THOUGHT_PROCESS=false", NULL};
    return svc_fixture_start (state, env);
}

//  A session with one answered turn and a stream opened after it; the
//  first answer's text into *first_answer (caller frees).
static svc_sse_t *
s_session (svc_mesh_t *mesh, const char *token, const char *session, char **first_answer)
{
    svc_response_t response;
    assert_int_equal (svc_turn (mesh, token, session, s_first_query, &response), 200);
    svc_response_free (&response);
    *first_answer = s_wait_answer (mesh, token, session, 1);
    char path[300];
    snprintf (path, sizeof path, "/api/run_sse/%s", session);
    svc_sse_t *sse = svc_sse_open (mesh, path, token, NULL);
    assert_non_null (sse);
    return sse;
}

//  Stop an answer mid-way, reload, continue it to its end.
static void
test_stop_then_continue_answer (void **state)
{
    svc_mesh_t *mesh = *state;
    char *token = svc_token (mesh, "stopper", 600);
    char *first_answer;
    svc_sse_t *sse = s_session (mesh, token, "stop_s", &first_answer);
    svc_response_t response;
    assert_int_equal (svc_turn (mesh, token, "stop_s", s_long_query, &response), 200);
    char *task_id = strdup (svc_json_str (response.json, "data", "task_id"));
    char *message_id = strdup (svc_json_str (response.json, "data", "assistant_message_id"));
    svc_response_free (&response);
    const char *turns[][2]
        = {{"user", s_first_query}, {"assistant", first_answer}, {"user", s_long_query}};
    char *expect = s_uninterrupted (task_id, "answer", turns, 3);

    long error;
    char *seen = s_stop_midway (mesh, token, sse, task_id, 20, &error);
    assert_true (strlen (seen) < strlen (expect));
    assert_memory_equal (seen, expect, strlen (seen));
    //  After a reload: the text the reader saw, marked stopped.
    char *stored = s_wait_answer (mesh, token, "stop_s", 3);
    assert_string_equal (stored, seen);
    json_t *message = s_stored (mesh, token, "stop_s", 3);
    assert_string_equal (s_finish_reason (message), "cancelled");
    assert_int_equal (json_integer_value (json_object_get (message, "version_count")), 1);
    json_decref (message);

    //  Continue: the same message and version grow to the whole answer.
    char path[400];
    snprintf (path, sizeof path, "/api/messages/%s/continue", message_id);
    assert_int_equal (s_post (mesh, token, path, NULL, &response), 200);
    assert_string_equal (svc_json_str (response.json, "operation", NULL), "continue");
    char *continue_id = strdup (svc_json_str (response.json, "data", "task_id"));
    assert_int_equal (json_integer_value (json_object_get (json_object_get (response.json, "data"),
                                                           "version_index")),
                      1);
    svc_response_free (&response);
    long done = s_find (sse, (size_t) error, "message_regenerated", continue_id, 30000);
    assert_true (done >= 0);
    assert_string_equal (s_check_growth (sse, continue_id, seen, done), expect);
    free (stored);
    stored = s_wait_answer (mesh, token, "stop_s", 3);
    assert_string_equal (stored, expect);
    message = s_stored (mesh, token, "stop_s", 3);
    assert_null (s_finish_reason (message));
    assert_int_equal (json_integer_value (json_object_get (message, "version_count")), 1);
    assert_string_equal (s_str (message, "id"), message_id);
    json_decref (message);

    //  Now complete: a second continue is refused and changes nothing.
    char *before = s_snapshot (mesh, token, "stop_s");
    assert_int_equal (s_post (mesh, token, path, NULL, &response), 409);
    assert_string_equal (svc_json_str (response.json, "code", NULL), "invalid_state");
    svc_response_free (&response);
    char *after = s_snapshot (mesh, token, "stop_s");
    assert_string_equal (after, before);
    free (before);
    free (after);
    free (stored);
    free (continue_id);
    free (seen);
    free (expect);
    free (message_id);
    free (task_id);
    free (first_answer);
    svc_sse_close (&sse);
    free (token);
}

//  A regenerate stopped mid-way keeps its text as a new version; continuing
//  it grows that version to the uninterrupted regeneration.
static void
test_stop_then_continue_regeneration (void **state)
{
    svc_mesh_t *mesh = *state;
    char *token = svc_token (mesh, "regen_stopper", 600);
    char *first_answer;
    svc_sse_t *sse = s_session (mesh, token, "stop_r", &first_answer);
    json_t *answer = s_stored (mesh, token, "stop_r", 1);
    char *message_id = strdup (s_str (answer, "id"));
    json_decref (answer);
    char path[400];
    snprintf (path, sizeof path, "/api/messages/%s/regenerate", message_id);
    svc_response_t response;
    assert_int_equal (s_post (mesh, token, path, NULL, &response), 200);
    char *task_id = strdup (svc_json_str (response.json, "data", "task_id"));
    svc_response_free (&response);
    const char *turns[][2] = {{"user", s_first_query}};
    char *expect = s_uninterrupted (task_id, "regenerate", turns, 1);

    long error;
    char *seen = s_stop_midway (mesh, token, sse, task_id, 15, &error);
    assert_memory_equal (seen, expect, strlen (seen));
    const json_t *data = svc_sse_at (sse, (size_t) error)->json;
    assert_int_equal (json_integer_value (json_object_get (data, "versionIndex")), 2);
    assert_int_equal (json_integer_value (json_object_get (data, "versionCount")), 2);
    char *stored = s_wait_answer (mesh, token, "stop_r", 1);
    assert_string_equal (stored, seen);
    json_t *message = s_stored (mesh, token, "stop_r", 1);
    assert_string_equal (s_finish_reason (message), "cancelled");
    assert_int_equal (json_integer_value (json_object_get (message, "version_index")), 2);
    json_decref (message);

    snprintf (path, sizeof path, "/api/messages/%s/continue", message_id);
    assert_int_equal (s_post (mesh, token, path, NULL, &response), 200);
    char *continue_id = strdup (svc_json_str (response.json, "data", "task_id"));
    svc_response_free (&response);
    //  While it runs: a second continue is a conflict.
    assert_int_equal (s_post (mesh, token, path, NULL, &response), 409);
    assert_string_equal (svc_json_str (response.json, "code", NULL), "conflict");
    svc_response_free (&response);
    long done = s_find (sse, (size_t) error, "message_regenerated", continue_id, 30000);
    assert_true (done >= 0);
    assert_string_equal (s_check_growth (sse, continue_id, seen, done), expect);
    data = svc_sse_at (sse, (size_t) done)->json;
    assert_int_equal (json_integer_value (json_object_get (data, "versionIndex")), 2);
    assert_int_equal (json_integer_value (json_object_get (data, "versionCount")), 2);
    free (stored);
    stored = s_wait_answer (mesh, token, "stop_r", 1);
    assert_string_equal (stored, expect);
    //  Version 1 is the first answer still.
    snprintf (path, sizeof path, "/api/messages/%s/versions/1/activate", message_id);
    assert_int_equal (s_post (mesh, token, path, NULL, &response), 200);
    assert_string_equal (svc_json_str (response.json, "data", "content"), first_answer);
    svc_response_free (&response);
    free (stored);
    free (continue_id);
    free (seen);
    free (expect);
    free (task_id);
    free (message_id);
    free (first_answer);
    svc_sse_close (&sse);
    free (token);
}

//  Refusals answer precisely and change nothing; a retried continue with
//  its Idempotency-Key answers the first task.
static void
test_refusals_and_idempotency (void **state)
{
    svc_mesh_t *mesh = *state;
    char *token = svc_token (mesh, "refused", 600);
    char *other = svc_token (mesh, "intruder", 600);
    char *first_answer;
    svc_sse_t *sse = s_session (mesh, token, "stop_x", &first_answer);
    json_t *messages = s_session_get (mesh, token, "stop_x");
    char *question_id = strdup (s_str (json_array_get (messages, 0), "id"));
    char *answer_id = strdup (s_str (json_array_get (messages, 1), "id"));
    json_decref (messages);
    char *before = s_snapshot (mesh, token, "stop_x");
    char path[400];
    svc_response_t response;
    struct {
        const char *token, *id;
        long status;
        const char *code;
    } refusals[] = {
        {token, answer_id, 409, "invalid_state"},        //  complete
        {token, question_id, 400, "not_assistant_message"},
        {other, answer_id, 404, "not_found"},            //  another user's
        {token, "msg_0000_stop_x_assistant", 404, "not_found"},
        {token, "not-a-message-id", 400, "invalid_message_id"},
    };
    for (size_t i = 0; i < sizeof refusals / sizeof refusals[0]; i++) {
        snprintf (path, sizeof path, "/api/messages/%s/continue", refusals[i].id);
        assert_int_equal (s_post (mesh, refusals[i].token, path, NULL, &response),
                          refusals[i].status);
        assert_string_equal (svc_json_str (response.json, "code", NULL), refusals[i].code);
        svc_response_free (&response);
    }
    char *after = s_snapshot (mesh, token, "stop_x");
    assert_string_equal (after, before);
    free (after);

    //  A stopped regeneration, continued twice with one key: one task.
    snprintf (path, sizeof path, "/api/messages/%s/regenerate", answer_id);
    assert_int_equal (s_post (mesh, token, path, NULL, &response), 200);
    char *task_id = strdup (svc_json_str (response.json, "data", "task_id"));
    svc_response_free (&response);
    long error;
    free (s_stop_midway (mesh, token, sse, task_id, 10, &error));
    snprintf (path, sizeof path, "/api/messages/%s/continue", answer_id);
    const char *key = "Idempotency-Key: continue-9c1e";
    assert_int_equal (s_post (mesh, token, path, key, &response), 200);
    char *first = strdup (svc_json_str (response.json, "data", "task_id"));
    svc_response_free (&response);
    assert_int_equal (s_post (mesh, token, path, key, &response), 200);
    assert_string_equal (svc_json_str (response.json, "data", "task_id"), first);
    char replayed[16];
    assert_int_equal (svc_response_header (&response, "Idempotent-Replayed", replayed,
                                           sizeof replayed),
                      0);
    assert_string_equal (replayed, "true");
    svc_response_free (&response);
    long done = s_find (sse, (size_t) error, "message_regenerated", first, 30000);
    assert_true (done >= 0);
    //  Only the one task ever started.
    for (size_t i = (size_t) error; i < svc_sse_count (sse); i++) {
        const svc_event_t *event = svc_sse_at (sse, i);
        if (strcmp (event->event, "message_regenerating") == 0)
            assert_string_equal (s_str (event->json, "taskId"), first);
    }
    free (first);
    free (task_id);
    free (before);
    free (question_id);
    free (answer_id);
    free (first_answer);
    svc_sse_close (&sse);
    free (other);
    free (token);
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_stop_then_continue_answer),
        cmocka_unit_test (test_stop_then_continue_regeneration),
        cmocka_unit_test (test_refusals_and_idempotency),
    };
    return cmocka_run_group_tests (tests, s_setup, svc_fixture_teardown);
}
