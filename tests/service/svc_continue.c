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

#include "svc_harness.h"
#include "svc_task_util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *s_first_query = "What is a lease?";
static const char *s_long_query = "Explain in detail how write-ahead logging, checkpoints and "
                                  "replication together keep a database consistent after a crash";

//  Waits for a checkpoint of task_id with text and at least min_progress,
//  cancels the task and waits for its regeneration_error. Checks that the
//  event's kept content is the last partialContent seen before it, not
//  empty, and returns it (caller frees); *error gets the event's index.
static char *
s_stop_midway (svc_mesh_t *mesh, const char *token, svc_sse_t *sse, const char *task_id,
               int min_progress, long *error)
{
    for (size_t from = 0;;) {
        long i = st_find (sse, from, "regeneration_progress", task_id, 30000);
        assert_true (i >= 0);
        const json_t *data = svc_sse_at (sse, (size_t) i)->json;
        if (json_integer_value (json_object_get (data, "progress")) >= min_progress
            && *st_str (data, "partialContent"))
            break;
        from = (size_t) i + 1;
    }
    char path[200];
    snprintf (path, sizeof path, "/api/messages/tasks/%s/cancel", task_id);
    assert_int_equal (st_post (mesh, token, path, NULL, NULL, NULL), 200);
    *error = st_find (sse, 0, "regeneration_error", task_id, 10000);
    assert_true (*error >= 0);
    const json_t *data = svc_sse_at (sse, (size_t) *error)->json;
    assert_string_equal (st_str (data, "error"), "cancelled");
    assert_string_equal (st_str (data, "finishReason"), "cancelled");
    const char *last = NULL;
    for (long i = 0; i < *error; i++) {
        const svc_event_t *event = svc_sse_at (sse, (size_t) i);
        const char *task = event->json ? st_str (event->json, "taskId") : NULL;
        if (task && strcmp (task, task_id) == 0
            && strcmp (event->event, "regeneration_progress") == 0)
            last = st_str (event->json, "partialContent");
    }
    assert_non_null (last);
    assert_true (*last);
    assert_string_equal (st_str (data, "content"), last);
    return strdup (last);
}

//  The session's messages as JSON text, for "nothing changed" (caller frees).
static char *
s_snapshot (svc_mesh_t *mesh, const char *token, const char *session)
{
    json_t *messages = st_messages (mesh, token, session);
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
    *first_answer = st_wait_answer (mesh, token, session, 1);
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
    char *expect = st_uninterrupted (task_id, "answer", turns, 3);

    long error;
    char *seen = s_stop_midway (mesh, token, sse, task_id, 20, &error);
    assert_true (strlen (seen) < strlen (expect));
    assert_memory_equal (seen, expect, strlen (seen));
    //  After a reload: the text the reader saw, marked stopped.
    char *stored = st_wait_answer (mesh, token, "stop_s", 3);
    assert_string_equal (stored, seen);
    json_t *message = st_stored (mesh, token, "stop_s", 3);
    assert_string_equal (st_finish_reason (message), "cancelled");
    assert_int_equal (json_integer_value (json_object_get (message, "version_count")), 1);
    json_decref (message);

    //  Continue: the same message and version grow to the whole answer.
    char path[400];
    snprintf (path, sizeof path, "/api/messages/%s/continue", message_id);
    assert_int_equal (st_post (mesh, token, path, NULL, NULL, &response), 200);
    assert_string_equal (svc_json_str (response.json, "operation", NULL), "continue");
    char *continue_id = strdup (svc_json_str (response.json, "data", "task_id"));
    assert_int_equal (json_integer_value (json_object_get (json_object_get (response.json, "data"),
                                                           "version_index")),
                      1);
    svc_response_free (&response);
    long done = st_find (sse, (size_t) error, "message_regenerated", continue_id, 30000);
    assert_true (done >= 0);
    assert_string_equal (st_check_growth (sse, continue_id, seen, done), expect);
    free (stored);
    stored = st_wait_answer (mesh, token, "stop_s", 3);
    assert_string_equal (stored, expect);
    message = st_stored (mesh, token, "stop_s", 3);
    assert_null (st_finish_reason (message));
    assert_int_equal (json_integer_value (json_object_get (message, "version_count")), 1);
    assert_string_equal (st_str (message, "id"), message_id);
    json_decref (message);

    //  Now complete: a second continue is refused and changes nothing.
    char *before = s_snapshot (mesh, token, "stop_s");
    assert_int_equal (st_post (mesh, token, path, NULL, NULL, &response), 409);
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
    json_t *answer = st_stored (mesh, token, "stop_r", 1);
    char *message_id = strdup (st_str (answer, "id"));
    json_decref (answer);
    char path[400];
    snprintf (path, sizeof path, "/api/messages/%s/regenerate", message_id);
    svc_response_t response;
    assert_int_equal (st_post (mesh, token, path, NULL, NULL, &response), 200);
    char *task_id = strdup (svc_json_str (response.json, "data", "task_id"));
    svc_response_free (&response);
    const char *turns[][2] = {{"user", s_first_query}};
    char *expect = st_uninterrupted (task_id, "regenerate", turns, 1);

    long error;
    char *seen = s_stop_midway (mesh, token, sse, task_id, 15, &error);
    assert_memory_equal (seen, expect, strlen (seen));
    const json_t *data = svc_sse_at (sse, (size_t) error)->json;
    assert_int_equal (json_integer_value (json_object_get (data, "versionIndex")), 2);
    assert_int_equal (json_integer_value (json_object_get (data, "versionCount")), 2);
    char *stored = st_wait_answer (mesh, token, "stop_r", 1);
    assert_string_equal (stored, seen);
    json_t *message = st_stored (mesh, token, "stop_r", 1);
    assert_string_equal (st_finish_reason (message), "cancelled");
    assert_int_equal (json_integer_value (json_object_get (message, "version_index")), 2);
    json_decref (message);

    snprintf (path, sizeof path, "/api/messages/%s/continue", message_id);
    assert_int_equal (st_post (mesh, token, path, NULL, NULL, &response), 200);
    char *continue_id = strdup (svc_json_str (response.json, "data", "task_id"));
    svc_response_free (&response);
    //  While it runs: a second continue is a conflict.
    assert_int_equal (st_post (mesh, token, path, NULL, NULL, &response), 409);
    assert_string_equal (svc_json_str (response.json, "code", NULL), "conflict");
    svc_response_free (&response);
    long done = st_find (sse, (size_t) error, "message_regenerated", continue_id, 30000);
    assert_true (done >= 0);
    assert_string_equal (st_check_growth (sse, continue_id, seen, done), expect);
    data = svc_sse_at (sse, (size_t) done)->json;
    assert_int_equal (json_integer_value (json_object_get (data, "versionIndex")), 2);
    assert_int_equal (json_integer_value (json_object_get (data, "versionCount")), 2);
    free (stored);
    stored = st_wait_answer (mesh, token, "stop_r", 1);
    assert_string_equal (stored, expect);
    //  Version 1 is the first answer still.
    snprintf (path, sizeof path, "/api/messages/%s/versions/1/activate", message_id);
    assert_int_equal (st_post (mesh, token, path, NULL, NULL, &response), 200);
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
    json_t *messages = st_messages (mesh, token, "stop_x");
    char *question_id = strdup (st_str (json_array_get (messages, 0), "id"));
    char *answer_id = strdup (st_str (json_array_get (messages, 1), "id"));
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
        assert_int_equal (st_post (mesh, refusals[i].token, path, NULL, NULL, &response),
                          refusals[i].status);
        assert_string_equal (svc_json_str (response.json, "code", NULL), refusals[i].code);
        svc_response_free (&response);
    }
    char *after = s_snapshot (mesh, token, "stop_x");
    assert_string_equal (after, before);
    free (after);

    //  A stopped regeneration, continued twice with one key: one task.
    snprintf (path, sizeof path, "/api/messages/%s/regenerate", answer_id);
    assert_int_equal (st_post (mesh, token, path, NULL, NULL, &response), 200);
    char *task_id = strdup (svc_json_str (response.json, "data", "task_id"));
    svc_response_free (&response);
    long error;
    free (s_stop_midway (mesh, token, sse, task_id, 10, &error));
    snprintf (path, sizeof path, "/api/messages/%s/continue", answer_id);
    const char *key = "Idempotency-Key: continue-9c1e";
    assert_int_equal (st_post (mesh, token, path, NULL, key, &response), 200);
    char *first = strdup (svc_json_str (response.json, "data", "task_id"));
    svc_response_free (&response);
    assert_int_equal (st_post (mesh, token, path, NULL, key, &response), 200);
    assert_string_equal (svc_json_str (response.json, "data", "task_id"), first);
    char replayed[16];
    assert_int_equal (svc_response_header (&response, "Idempotent-Replayed", replayed,
                                           sizeof replayed),
                      0);
    assert_string_equal (replayed, "true");
    svc_response_free (&response);
    long done = st_find (sse, (size_t) error, "message_regenerated", first, 30000);
    assert_true (done >= 0);
    //  Only the one task ever started.
    for (size_t i = (size_t) error; i < svc_sse_count (sse); i++) {
        const svc_event_t *event = svc_sse_at (sse, i);
        if (strcmp (event->event, "message_regenerating") == 0)
            assert_string_equal (st_str (event->json, "taskId"), first);
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
