/*  svc_openai: the openai backend through the real binaries, against the
    mock OpenAI-compatible server (tests/fixtures/mock_openai.py through
    svc_mock.h), checking what the regenerator asks it (issue 16).
      - Regenerate with an instruction: the request's system message is
        exactly CHATMESH_SYSTEM_PROMPT, a blank line, the instruction's
        lead-in and the instruction; max_tokens is the setting's.
      - An answer the server cuts with finish_reason "length" is stored
        with its text and finish_reason "length" (the session view says
        so); POST /continue sends that text as a trailing assistant turn
        after the question, and the same message and version become the
        text plus the continuation, the mark gone.
      - A server that dies mid-answer: each retry of the task continues
        the checkpointed text; after the last attempt the text is kept,
        marked "failed", and a continue finishes it.
      - kill -9 of the only regenerator at 30% of a long answer: the
        successor's request ends with the checkpointed text as an
        assistant turn; the stored answer is that text plus what the
        server streamed to the successor, and both readers' texts only
        grow to it (no rewind, no repeated segment) with one resumed: true. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "rg_prompt.h"
#include "svc_harness.h"
#include "svc_mock.h"
#include "svc_task_util.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define LEASE_MS 1500
#define SYSTEM_PROMPT "You are a careful assistant."

typedef struct {
    svc_mock_t *mock;
    svc_mesh_t *mesh;
} s_world_t;

static int
s_setup (void **state)
{
    s_world_t *world = calloc (1, sizeof *world);
    world->mock = svc_mock_start ();
    if (!world->mock) {
        free (world);
        return -1;
    }
    char base_url[128], lease[64];
    snprintf (base_url, sizeof base_url, "CHATMESH_OPENAI_BASE_URL=%s",
              svc_mock_url (world->mock));
    snprintf (lease, sizeof lease, "CHATMESH_TASK_LEASE_MS=%d", LEASE_MS);
    const char *env[] = {"CHAT_ACTIONS_RATE_LIMIT=0",
                         "CHAT_REGENERATION_RATE_LIMIT=0",
                         "CHAT_ACTIONS_ENABLE_THOUGHT_PROCESS=false",
                         "CHATMESH_GENERATOR=openai",
                         "CHATMESH_OPENAI_MODEL=mock-model",
                         "CHATMESH_OPENAI_MAX_TOKENS=64",
                         //  A stream that ends early fails the attempt at
                         //  once: the task's retries are what is tested.
                         "CHATMESH_OPENAI_MAX_RETRIES=0",
                         "CHATMESH_SYSTEM_PROMPT=" SYSTEM_PROMPT,
                         base_url,
                         lease,
                         NULL};
    world->mesh = svc_mesh_start (env);
    if (!world->mesh) {
        svc_mock_stop (&world->mock);
        free (world);
        return -1;
    }
    *state = world;
    return 0;
}

static int
s_teardown (void **state)
{
    s_world_t *world = *state;
    svc_mesh_stop (&world->mesh);
    svc_mock_stop (&world->mock);
    free (world);
    return 0;
}

//  How many requests the mock has received.
static size_t
s_request_count (svc_mock_t *mock)
{
    json_t *requests = svc_mock_requests (mock);
    assert_non_null (requests);
    size_t count = json_array_size (requests);
    json_decref (requests);
    return count;
}

//  Request index once it arrived (caller decrefs).
static json_t *
s_request (svc_mock_t *mock, size_t index)
{
    assert_int_equal (svc_mock_wait_requests (mock, index + 1, 20000), 0);
    json_t *requests = svc_mock_requests (mock);
    json_t *request = json_incref (json_array_get (requests, index));
    json_decref (requests);
    assert_non_null (request);
    return request;
}

//  Fails unless message is {"role": role, "content": content}.
static void
s_want_turn (const json_t *message, const char *role, const char *content)
{
    assert_non_null (message);
    assert_string_equal (st_str (message, "role"), role);
    assert_string_equal (st_str (message, "content"), content);
}

static json_t *
s_last_message (const json_t *request)
{
    json_t *messages = json_object_get (request, "messages");
    return json_array_get (messages, json_array_size (messages) - 1);
}

//  A reader of session's events. The session must exist (s_open_session).
static svc_sse_t *
s_reader (svc_mesh_t *mesh, const char *token, const char *session)
{
    char path[300];
    snprintf (path, sizeof path, "/api/run_sse/%s", session);
    svc_sse_t *sse = svc_sse_open (mesh, path, token, NULL);
    assert_non_null (sse);
    return sse;
}

//  Creates session with one quick answered turn ("Hi" -> "Hello."), as a
//  stream can only be opened on a session that exists.
static void
s_open_session (s_world_t *world, const char *token, const char *session)
{
    assert_int_equal (svc_mock_plan (world->mock, "[{\"chunks\": [\"Hello.\"]}]"), 0);
    free (st_turn (world->mesh, token, session, "Hi"));
    char *text = st_wait_answer (world->mesh, token, session, 1);
    assert_string_equal (text, "Hello.");
    free (text);
}

static void
test_regenerate_instruction_reaches_system_message (void **state)
{
    s_world_t *world = *state;
    svc_mesh_t *mesh = world->mesh;
    char *token = svc_token (mesh, "instructed", 600);
    size_t base = s_request_count (world->mock);
    assert_int_equal (svc_mock_plan (world->mock, "[{\"chunks\": [\"A long\", \" first answer.\"]},"
                                                  " {\"chunks\": [\"Short.\"]}]"),
                      0);
    free (st_turn (mesh, token, "instr_s", "Tell me about leases"));
    char *text = st_wait_answer (mesh, token, "instr_s", 1);
    assert_string_equal (text, "A long first answer.");
    free (text);
    json_t *first = s_request (world->mock, base);
    s_want_turn (json_array_get (json_object_get (first, "messages"), 0), "system", SYSTEM_PROMPT);
    json_decref (first);

    json_t *answer = st_stored (mesh, token, "instr_s", 1);
    char path[300];
    snprintf (path, sizeof path, "/api/messages/%s/regenerate", st_str (answer, "id"));
    json_decref (answer);
    assert_int_equal (st_post (mesh, token, path, "{\"instruction\": \"shorter, please\"}", NULL,
                               NULL),
                      200);
    text = st_wait_answer (mesh, token, "instr_s", 1);
    assert_string_equal (text, "Short.");
    free (text);
    json_t *request = s_request (world->mock, base + 1);
    json_t *messages = json_object_get (request, "messages");
    assert_int_equal (json_array_size (messages), 2);
    s_want_turn (json_array_get (messages, 0), "system",
                 SYSTEM_PROMPT "\n\n" RG_PROMPT_INSTRUCTION "shorter, please");
    s_want_turn (json_array_get (messages, 1), "user", "Tell me about leases");
    assert_string_equal (st_str (request, "model"), "mock-model");
    assert_int_equal (json_integer_value (json_object_get (request, "max_tokens")), 64);
    assert_true (json_is_true (json_object_get (request, "stream")));
    json_decref (request);
    free (token);
}

static void
test_cut_by_length_then_continue (void **state)
{
    s_world_t *world = *state;
    svc_mesh_t *mesh = world->mesh;
    char *token = svc_token (mesh, "cut_off", 600);
    s_open_session (world, token, "cut_s");
    svc_sse_t *sse = s_reader (mesh, token, "cut_s");
    size_t base = s_request_count (world->mock);
    assert_int_equal (
        svc_mock_plan (world->mock,
                       "[{\"chunks\": [\"The first\", \" half\"], \"finish\": \"length\"},"
                       " {\"chunks\": [\" and the second\", \" half.\"], \"delay_ms\": 50}]"),
        0);
    svc_response_t response;
    assert_int_equal (svc_turn (mesh, token, "cut_s", "Write two halves", &response), 200);
    char *task_id = strdup (svc_json_str (response.json, "data", "task_id"));
    char *message_id = strdup (svc_json_str (response.json, "data", "assistant_message_id"));
    svc_response_free (&response);
    long done = st_find (sse, 0, "message_regenerated", task_id, 20000);
    assert_true (done >= 0);
    assert_string_equal (st_str (svc_sse_at (sse, (size_t) done)->json, "finishReason"), "length");

    //  Stored as cut, and the session view says so.
    char *stored = st_wait_answer (mesh, token, "cut_s", 3);
    assert_string_equal (stored, "The first half");
    free (stored);
    json_t *message = st_stored (mesh, token, "cut_s", 3);
    assert_string_equal (st_finish_reason (message), "length");
    json_decref (message);

    char path[300];
    snprintf (path, sizeof path, "/api/messages/%s/continue", message_id);
    assert_int_equal (st_post (mesh, token, path, NULL, NULL, &response), 200);
    char *continue_id = strdup (svc_json_str (response.json, "data", "task_id"));
    svc_response_free (&response);
    long end = st_find (sse, (size_t) done + 1, "message_regenerated", continue_id, 20000);
    assert_true (end >= 0);
    assert_string_equal (st_check_growth (sse, continue_id, "The first half", end),
                         "The first half and the second half.");

    //  The continuation request: the question, then the cut text to continue.
    json_t *request = s_request (world->mock, base + 1);
    json_t *messages = json_object_get (request, "messages");
    size_t count = json_array_size (messages);
    assert_int_equal (count, 5);
    s_want_turn (json_array_get (messages, 0), "system", SYSTEM_PROMPT);
    s_want_turn (json_array_get (messages, 1), "user", "Hi");
    s_want_turn (json_array_get (messages, 2), "assistant", "Hello.");
    s_want_turn (json_array_get (messages, 3), "user", "Write two halves");
    s_want_turn (json_array_get (messages, 4), "assistant", "The first half");
    json_decref (request);

    //  The same message and version, whole now.
    stored = st_wait_answer (mesh, token, "cut_s", 3);
    assert_string_equal (stored, "The first half and the second half.");
    message = st_stored (mesh, token, "cut_s", 3);
    assert_string_equal (st_str (message, "id"), message_id);
    assert_int_equal (json_integer_value (json_object_get (message, "version_index")), 1);
    assert_int_equal (json_integer_value (json_object_get (message, "version_count")), 1);
    assert_null (st_finish_reason (message));
    json_decref (message);
    free (stored);
    free (continue_id);
    free (message_id);
    free (task_id);
    svc_sse_close (&sse);
    free (token);
}

//  A server that dies mid-answer, three times: each retry of the task sends
//  the text checkpointed so far as the trailing assistant turn and appends
//  to it; the last attempt fails the task for good, the text kept marked
//  "failed"; a continue then finishes it.
static void
test_server_dies_midway_then_continue (void **state)
{
    s_world_t *world = *state;
    svc_mesh_t *mesh = world->mesh;
    char *token = svc_token (mesh, "dropped", 600);
    s_open_session (world, token, "drop_s");
    svc_sse_t *sse = s_reader (mesh, token, "drop_s");
    size_t base = s_request_count (world->mock);
    assert_int_equal (
        svc_mock_plan (world->mock,
                       "[{\"chunks\": [\"Kept \", \"never sent\"], \"delay_ms\": 300,"
                       " \"fail_after\": 1},"
                       " {\"chunks\": [\"more \"], \"delay_ms\": 300, \"fail_after\": 1},"
                       " {\"chunks\": [], \"fail_after\": 0},"
                       " {\"chunks\": [\"done.\"]}]"),
        0);
    svc_response_t response;
    assert_int_equal (svc_turn (mesh, token, "drop_s", "Keep going", &response), 200);
    char *task_id = strdup (svc_json_str (response.json, "data", "task_id"));
    char *message_id = strdup (svc_json_str (response.json, "data", "assistant_message_id"));
    svc_response_free (&response);
    long error = st_find (sse, 0, "regeneration_error", task_id, 30000);
    assert_true (error >= 0);
    const json_t *data = svc_sse_at (sse, (size_t) error)->json;
    assert_string_equal (st_str (data, "finishReason"), "failed");
    assert_string_equal (st_str (data, "content"), "Kept more ");
    //  Attempts 2 and 3 each continued the text of the one before.
    const char *partials[] = {NULL, "Kept ", "Kept more "};
    for (size_t i = 1; i < 3; i++) {
        json_t *request = s_request (world->mock, base + i);
        s_want_turn (s_last_message (request), "assistant", partials[i]);
        json_decref (request);
    }
    char *stored = st_wait_answer (mesh, token, "drop_s", 3);
    assert_string_equal (stored, "Kept more ");
    free (stored);
    json_t *message = st_stored (mesh, token, "drop_s", 3);
    assert_string_equal (st_finish_reason (message), "failed");
    json_decref (message);

    char path[300];
    snprintf (path, sizeof path, "/api/messages/%s/continue", message_id);
    assert_int_equal (st_post (mesh, token, path, NULL, NULL, &response), 200);
    char *continue_id = strdup (svc_json_str (response.json, "data", "task_id"));
    svc_response_free (&response);
    long done = st_find (sse, (size_t) error, "message_regenerated", continue_id, 20000);
    assert_true (done >= 0);
    assert_string_equal (st_check_growth (sse, continue_id, "Kept more ", done),
                         "Kept more done.");
    json_t *request = s_request (world->mock, base + 3);
    s_want_turn (s_last_message (request), "assistant", "Kept more ");
    json_decref (request);
    stored = st_wait_answer (mesh, token, "drop_s", 3);
    assert_string_equal (stored, "Kept more done.");
    free (stored);
    free (continue_id);
    free (message_id);
    free (task_id);
    svc_sse_close (&sse);
    free (token);
}

#define LONG_CHUNKS 100

static void
test_kill9_at_30_percent (void **state)
{
    s_world_t *world = *state;
    svc_mesh_t *mesh = world->mesh;
    char *token = svc_token (mesh, "killed", 600);
    s_open_session (world, token, "kill_s");
    svc_sse_t *readers[2] = {s_reader (mesh, token, "kill_s"), s_reader (mesh, token, "kill_s")};
    //  A long answer of distinct words, then the successor's continuation.
    char whole[LONG_CHUNKS * 8 + 1] = "";
    json_t *chunks = json_array ();
    for (int i = 0; i < LONG_CHUNKS; i++) {
        char word[16];
        snprintf (word, sizeof word, "w%03d ", i);
        strcat (whole, word);
        json_array_append_new (chunks, json_string (word));
    }
    const char *continuation = "and the rest.";
    json_t *plans = json_pack ("[{s:o, s:i}, {s:[s,s], s:i}]", "chunks", chunks, "delay_ms", 30,
                               "chunks", "and the ", "rest.", "delay_ms", 20);
    char *plans_text = json_dumps (plans, JSON_COMPACT);
    json_decref (plans);
    size_t base = s_request_count (world->mock);
    assert_int_equal (svc_mock_plan (world->mock, plans_text), 0);
    free (plans_text);
    char *task_id = st_turn (mesh, token, "kill_s", "Count to a hundred");

    //  Killed once a reader saw 30% of the answer.
    size_t seen = 0;
    for (size_t from = 0; seen * 10 < strlen (whole) * 3;) {
        long i = st_find (readers[0], from, "regeneration_progress", task_id, 20000);
        assert_true (i >= 0);
        seen = strlen (st_str (svc_sse_at (readers[0], (size_t) i)->json, "partialContent"));
        from = (size_t) i + 1;
    }
    assert_int_equal (svc_mesh_kill (mesh, "regenerator", SIGKILL), 0);
    double killed = svc_now_ms ();
    assert_int_equal (svc_mesh_spawn (mesh, "regenerator"), 0);

    //  The successor asks to continue the checkpointed text.
    json_t *request = s_request (world->mock, base + 1);
    json_t *messages = json_object_get (request, "messages");
    s_want_turn (json_array_get (messages, json_array_size (messages) - 2), "user",
                 "Count to a hundred");
    json_t *last = s_last_message (request);
    assert_string_equal (st_str (last, "role"), "assistant");
    char *partial = strdup (st_str (last, "content"));
    json_decref (request);
    assert_true (strlen (partial) >= seen);
    assert_true (strlen (partial) < strlen (whole));
    assert_memory_equal (partial, whole, strlen (partial));
    char expect[sizeof whole + 32];
    snprintf (expect, sizeof expect, "%s%s", partial, continuation);

    for (size_t r = 0; r < 2; r++) {
        long done = st_find (readers[r], 0, "message_regenerated", task_id, 30000);
        assert_true (done >= 0);
        double seam = 0;
        assert_string_equal (st_check_seam (readers[r], task_id, done, &seam), expect);
        if (r == 0)
            fprintf (stderr, "kill -9 at %zu of %zu bytes -> checkpoint %zu, seam %.0f ms\n",
                     seen, strlen (whole), strlen (partial), seam - killed);
    }
    char *stored = st_wait_answer (mesh, token, "kill_s", 3);
    assert_string_equal (stored, expect);
    json_t *message = st_stored (mesh, token, "kill_s", 3);
    assert_null (st_finish_reason (message));
    json_decref (message);
    assert_int_equal (st_wait_log (mesh, "regenerator.log", "(attempt 2): completed", 5000), 0);
    free (stored);
    free (partial);
    free (task_id);
    svc_sse_close (&readers[0]);
    svc_sse_close (&readers[1]);
    free (token);
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_regenerate_instruction_reaches_system_message),
        cmocka_unit_test (test_cut_by_length_then_continue),
        cmocka_unit_test (test_server_dies_midway_then_continue),
        cmocka_unit_test (test_kill9_at_30_percent),
    };
    return cmocka_run_group_tests (tests, s_setup, s_teardown);
}
