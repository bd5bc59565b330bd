/*  svc_slice: the foundation's vertical slice through the real four
    binaries: run_sse -> feedback -> LMDB commit -> event -> broadcaster ->
    gateway -> SSE, and the data survives a kill -9 of the store.        */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "svc_harness.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void
test_slice_end_to_end (void **state)
{
    svc_mesh_t *mesh = *state;
    char *token = svc_token (mesh, "alice", 600);
    assert_non_null (token);

    //  1. Start a session whose id contains underscores.
    svc_response_t response;
    assert_int_equal (svc_http (mesh, "POST", "/api/run_sse/test_session_123", token,
                                "{\"query\": \"How do SSE reconnects work?\"}", &response),
                      0);
    assert_int_equal (response.status, 200);
    assert_non_null (response.json);
    assert_true (json_is_true (json_object_get (response.json, "success")));
    assert_string_equal (svc_json_str (response.json, "data", "session_id"),
                         "test_session_123");
    char assistant_id[400], user_id[400];
    snprintf (assistant_id, sizeof assistant_id, "%s",
              svc_json_str (response.json, "data", "assistant_message_id"));
    snprintf (user_id, sizeof user_id, "%s",
              svc_json_str (response.json, "data", "user_message_id"));
    assert_non_null (strstr (assistant_id, "_test_session_123_assistant"));
    assert_non_null (strstr (user_id, "_test_session_123_user"));
    assert_non_null (svc_json_str (response.json, "data", "task_id"));
    svc_response_free (&response);

    //  2. Open the SSE stream; connection_status comes first.
    svc_sse_t *sse = svc_sse_open (mesh, "/api/run_sse/test_session_123", token, NULL);
    assert_non_null (sse);
    assert_int_equal (svc_sse_status (sse), 200);
    const svc_event_t *event = svc_sse_wait (sse, NULL, 5000);
    assert_non_null (event);
    assert_string_equal (event->event, "connection_status");
    assert_string_equal (svc_json_str (event->json, "status", NULL), "connected");

    //  3. Vote; the event arrives with an id and the fields of API.md.
    char path[600];
    snprintf (path, sizeof path, "/api/messages/%s/feedback", assistant_id);
    assert_int_equal (svc_http (mesh, "POST", path, token,
                                "{\"feedback_type\": \"upvote\", \"reason\": \"clear\"}",
                                &response),
                      0);
    assert_int_equal (response.status, 200);
    assert_true (json_is_true (json_object_get (response.json, "success")));
    assert_string_equal (svc_json_str (response.json, "message_id", NULL), assistant_id);
    assert_string_equal (svc_json_str (response.json, "session_id", NULL), "test_session_123");
    assert_non_null (svc_json_str (response.json, "feedback_id", NULL));
    char feedback_id[128];
    snprintf (feedback_id, sizeof feedback_id, "%s",
              svc_json_str (response.json, "feedback_id", NULL));
    svc_response_free (&response);

    event = svc_sse_wait (sse, "feedback_submitted", 5000);
    assert_non_null (event);
    assert_true (strlen (event->id) > 0);
    assert_non_null (strchr (event->id, '-')); //  "<epoch>-<seq>"
    assert_non_null (event->json);
    assert_string_equal (svc_json_str (event->json, "messageId", NULL), assistant_id);
    assert_string_equal (svc_json_str (event->json, "sessionId", NULL), "test_session_123");
    assert_string_equal (svc_json_str (event->json, "feedbackId", NULL), feedback_id);
    assert_string_equal (svc_json_str (event->json, "feedbackType", NULL), "upvote");
    assert_int_equal (json_integer_value (json_object_get (event->json, "upvotes")), 1);
    assert_int_equal (json_integer_value (json_object_get (event->json, "downvotes")), 0);
    svc_sse_close (&sse);

    //  4. The stored session shows both messages in order.
    assert_int_equal (svc_http (mesh, "GET", "/api/sessions/test_session_123", token, NULL,
                                &response),
                      0);
    assert_int_equal (response.status, 200);
    json_t *messages = json_object_get (json_object_get (response.json, "session"), "messages");
    assert_true (json_array_size (messages) >= 2);
    assert_string_equal (svc_json_str (json_array_get (messages, 0), "id", NULL), user_id);
    assert_string_equal (svc_json_str (json_array_get (messages, 0), "content", NULL),
                         "How do SSE reconnects work?");
    assert_string_equal (svc_json_str (json_array_get (messages, 1), "id", NULL), assistant_id);
    svc_response_free (&response);

    //  5. kill -9 the store, start it again: the vote is still there.
    assert_int_equal (svc_mesh_kill (mesh, "store", SIGKILL), 0);
    assert_int_equal (svc_mesh_spawn (mesh, "store"), 0);
    assert_int_equal (svc_mesh_wait_status (mesh, "/readyz", 200, 20000), 0);
    assert_int_equal (svc_http (mesh, "GET", path, token, NULL, &response), 0);
    assert_int_equal (response.status, 200);
    json_t *summary = json_object_get (response.json, "feedback_summary");
    assert_int_equal (json_integer_value (json_object_get (summary, "upvotes")), 1);
    assert_int_equal (json_integer_value (json_object_get (summary, "total")), 1);
    svc_response_free (&response);
    free (token);
}

static void
test_missing_token_is_401 (void **state)
{
    svc_mesh_t *mesh = *state;
    svc_response_t response;
    assert_int_equal (svc_http (mesh, "GET", "/api/sessions/test_session_123", NULL, NULL,
                                &response),
                      0);
    assert_int_equal (response.status, 401);
    assert_false (json_is_true (json_object_get (response.json, "success")));
    assert_non_null (svc_json_str (response.json, "error", NULL));
    assert_non_null (svc_json_str (response.json, "code", NULL));
    svc_response_free (&response);

    char *expired = svc_token (mesh, "alice", -60);
    assert_int_equal (svc_http (mesh, "POST", "/api/run_sse/s1", expired,
                                "{\"query\": \"hi\"}", &response),
                      0);
    assert_int_equal (response.status, 401);
    svc_response_free (&response);
    free (expired);
}

static void
test_malformed_message_id_is_400 (void **state)
{
    svc_mesh_t *mesh = *state;
    char *token = svc_token (mesh, "alice", 600);
    svc_response_t response;
    assert_int_equal (svc_http (mesh, "POST", "/api/messages/not-a-message-id/feedback", token,
                                "{\"feedback_type\": \"upvote\"}", &response),
                      0);
    assert_int_equal (response.status, 400);
    assert_false (json_is_true (json_object_get (response.json, "success")));
    svc_response_free (&response);
    free (token);
}

static void
test_other_users_session_is_404 (void **state)
{
    svc_mesh_t *mesh = *state;
    char *alice = svc_token (mesh, "alice", 600), *mallory = svc_token (mesh, "mallory", 600);
    svc_response_t response;
    assert_int_equal (svc_http (mesh, "POST", "/api/run_sse/alice_private", alice,
                                "{\"query\": \"secret plans\"}", &response),
                      0);
    assert_int_equal (response.status, 200);
    svc_response_free (&response);
    assert_int_equal (svc_http (mesh, "GET", "/api/sessions/alice_private", mallory, NULL,
                                &response),
                      0);
    assert_int_equal (response.status, 404);
    assert_null (strstr (response.body, "secret plans"));
    svc_response_free (&response);
    free (alice);
    free (mallory);
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_slice_end_to_end),
        cmocka_unit_test (test_missing_token_is_401),
        cmocka_unit_test (test_malformed_message_id_is_400),
        cmocka_unit_test (test_other_users_session_is_404),
    };
    return cmocka_run_group_tests (tests, svc_fixture_setup, svc_fixture_teardown);
}
