/*  test_rg_prompt: the openai request as data. The model chosen with and
    without an allow-list (and the reason a refused one gives), the settings
    checked together, the token estimate, the system prompt joined with the
    request's context, the context budget dropping the oldest turns first
    (keeping the system message and the question, never opening with an
    assistant turn), max_tokens and stream_options in the body.           */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "cm_error.h"
#include "rg_prompt.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

//  A task over turns (role, content) pairs; the last one is the question.
static rg_task_t *
s_task (const char *context, const char *(*turns)[2], size_t count)
{
    cm_value_t *map = cm_map_new ();
    cm_map_set_str (map, "task_id", "regen_p");
    cm_map_set_str (map, "message_id", "msg_1_s_assistant");
    cm_map_set_str (map, "session_id", "s");
    cm_map_set_str (map, "context", context);
    cm_map_set_str (map, "user_query", count ? turns[count - 1][1] : "Hi");
    cm_map_set_dbl (map, "temperature", 0.5);
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
    return task;
}

static json_t *
s_body (const rg_prompt_options_t *options, const rg_task_t *task, size_t *dropped)
{
    char *text = rg_prompt_body (options, task, "m", dropped);
    assert_non_null (text);
    json_t *body = json_loads (text, 0, NULL);
    free (text);
    assert_non_null (body);
    return body;
}

static const char *
s_role (json_t *body, size_t i)
{
    return json_string_value (
        json_object_get (json_array_get (json_object_get (body, "messages"), i), "role"));
}

static const char *
s_content (json_t *body, size_t i)
{
    return json_string_value (
        json_object_get (json_array_get (json_object_get (body, "messages"), i), "content"));
}

//  The usage example: pick the model, build the body.
static void
test_body_with_every_setting (void **state)
{
    (void) state;
    const char *turns[][2] = {{"user", "Say hello"}, {"assistant", "Hello!"}, {"user", "Why?"}};
    rg_task_t *task = s_task ("Be brief.", turns, 3);
    rg_prompt_options_t options = {"", "", "You are chatmesh.", 0, 64};
    char model[64], why[256];
    assert_int_equal (rg_prompt_model (&options, "gemma", model, sizeof model, why, sizeof why), 0);
    assert_string_equal (model, "gemma");
    size_t dropped = 99;
    json_t *body = s_body (&options, task, &dropped);
    assert_int_equal (dropped, 0);
    assert_string_equal (json_string_value (json_object_get (body, "model")), "m");
    assert_true (json_is_true (json_object_get (body, "stream")));
    assert_true (json_is_true (
        json_object_get (json_object_get (body, "stream_options"), "include_usage")));
    assert_int_equal (json_integer_value (json_object_get (body, "max_tokens")), 64);
    assert_int_equal (json_array_size (json_object_get (body, "messages")), 4);
    assert_string_equal (s_role (body, 0), "system");
    assert_string_equal (s_content (body, 0), "You are chatmesh.\n\nBe brief.");
    assert_string_equal (s_content (body, 3), "Why?");
    json_decref (body);
    rg_task_destroy (&task);
}

//  A regenerate's instruction ends the system message (there is one even
//  without a system prompt or context); the question stays the last turn
//  and the budget counts it as part of the system message.
static void
test_instruction_in_system_message (void **state)
{
    (void) state;
    const char *turns[][2] = {{"user", "Say hello"}, {"assistant", "Hello!"}, {"user", "Why?"}};
    rg_task_t *task = s_task ("Be kind.", turns, 3);
    free (task->instruction);
    task->instruction = strdup ("shorter");
    rg_prompt_options_t options = {"", "", "You are chatmesh.", 0, 0};
    json_t *body = s_body (&options, task, NULL);
    assert_int_equal (json_array_size (json_object_get (body, "messages")), 4);
    assert_string_equal (s_role (body, 0), "system");
    assert_string_equal (s_content (body, 0),
                         "You are chatmesh.\n\nBe kind.\n\n" RG_PROMPT_INSTRUCTION "shorter");
    assert_string_equal (s_role (body, 3), "user");
    assert_string_equal (s_content (body, 3), "Why?");
    json_decref (body);
    rg_task_destroy (&task);

    task = s_task ("", turns, 3);
    free (task->instruction);
    task->instruction = strdup ("more detail, with examples");
    rg_prompt_options_t bare = {"", "", "", 0, 0};
    body = s_body (&bare, task, NULL);
    assert_int_equal (json_array_size (json_object_get (body, "messages")), 4);
    assert_string_equal (s_content (body, 0), RG_PROMPT_INSTRUCTION "more detail, with examples");
    json_decref (body);
    //  A budget that holds the system message and the question only.
    int64_t tight = rg_prompt_tokens (RG_PROMPT_INSTRUCTION "more detail, with examples")
                    + rg_prompt_tokens ("Why?");
    rg_prompt_options_t budget = {"", "", "", tight, 0};
    size_t dropped = 0;
    body = s_body (&budget, task, &dropped);
    assert_int_equal (dropped, 2);
    assert_int_equal (json_array_size (json_object_get (body, "messages")), 2);
    json_decref (body);
    rg_task_destroy (&task);
}

static void
test_no_max_tokens_no_system (void **state)
{
    (void) state;
    const char *turns[][2] = {{"user", "Hi"}};
    rg_task_t *task = s_task ("", turns, 1);
    rg_prompt_options_t options = {"", "", "", 0, 0};
    json_t *body = s_body (&options, task, NULL);
    assert_null (json_object_get (body, "max_tokens"));
    assert_int_equal (json_array_size (json_object_get (body, "messages")), 1);
    assert_string_equal (s_role (body, 0), "user");
    json_decref (body);
    rg_task_destroy (&task);

    //  Only the request's context, or only the system prompt.
    task = s_task ("ctx", turns, 1);
    body = s_body (&options, task, NULL);
    assert_string_equal (s_content (body, 0), "ctx");
    json_decref (body);
    rg_task_destroy (&task);
    task = s_task ("", turns, 1);
    options.system_prompt = "sys";
    body = s_body (&options, task, NULL);
    assert_string_equal (s_content (body, 0), "sys");
    json_decref (body);
    rg_task_destroy (&task);
}

static void
test_model_choice (void **state)
{
    (void) state;
    char model[16], why[256];
    //  No allow-list: the configured model overrides; else the task's.
    rg_prompt_options_t options = {"fixed", "", "", 0, 0};
    assert_int_equal (rg_prompt_model (&options, "asked", model, sizeof model, why, sizeof why), 0);
    assert_string_equal (model, "fixed");
    options.model = "";
    assert_int_equal (rg_prompt_model (&options, "asked", model, sizeof model, why, sizeof why), 0);
    assert_string_equal (model, "asked");
    assert_int_equal (rg_prompt_model (&options, "", model, sizeof model, why, sizeof why),
                      CM_EINVAL);
    assert_non_null (strstr (why, "no model"));

    //  Allow-list: names trimmed; a task's model must be on it; none asked
    //  gives the default, else the first.
    options.models = " a , gemma-3 ,b";
    assert_int_equal (rg_prompt_model (&options, "gemma-3", model, sizeof model, why, sizeof why),
                      0);
    assert_string_equal (model, "gemma-3");
    assert_int_equal (rg_prompt_model (&options, "", model, sizeof model, why, sizeof why), 0);
    assert_string_equal (model, "a");
    options.model = "b";
    assert_int_equal (rg_prompt_model (&options, "", model, sizeof model, why, sizeof why), 0);
    assert_string_equal (model, "b");
    assert_int_equal (rg_prompt_model (&options, "gemma", model, sizeof model, why, sizeof why),
                      CM_EINVAL);
    assert_string_equal (why, "openai: model 'gemma' is not allowed (CHATMESH_OPENAI_MODELS:  a , "
                              "gemma-3 ,b)");
    //  The configured model overrides nothing when a list is set: the
    //  task's allowed choice wins.
    assert_int_equal (rg_prompt_model (&options, "a", model, sizeof model, why, sizeof why), 0);
    assert_string_equal (model, "a");
    //  Too long for the caller's buffer: refused, not cut.
    options.models = "";
    options.model = "";
    assert_int_equal (rg_prompt_model (&options, "a-very-long-model-name", model, sizeof model, why,
                                       sizeof why),
                      CM_EINVAL);
}

static void
test_check_settings (void **state)
{
    (void) state;
    char why[256];
    rg_prompt_options_t options = {"", "", "", 0, 0};
    assert_int_equal (rg_prompt_check (&options, why, sizeof why), 0);
    options.models = "a,b";
    options.model = "b";
    assert_int_equal (rg_prompt_check (&options, why, sizeof why), 0);
    options.model = "c";
    assert_int_equal (rg_prompt_check (&options, why, sizeof why), CM_EINVAL);
    assert_non_null (strstr (why, "CHATMESH_OPENAI_MODEL: 'c'"));
    options.model = "";
    options.models = "a,,b";
    assert_int_equal (rg_prompt_check (&options, why, sizeof why), CM_EINVAL);
    assert_non_null (strstr (why, "CHATMESH_OPENAI_MODELS: an empty name"));
    options.models = "a, ";
    assert_int_equal (rg_prompt_check (&options, why, sizeof why), CM_EINVAL);
}

static void
test_token_estimate (void **state)
{
    (void) state;
    assert_int_equal (rg_prompt_tokens (""), RG_PROMPT_MESSAGE_TOKENS);
    assert_int_equal (rg_prompt_tokens ("a"), 1 + RG_PROMPT_MESSAGE_TOKENS);
    assert_int_equal (rg_prompt_tokens ("abcd"), 1 + RG_PROMPT_MESSAGE_TOKENS);
    assert_int_equal (rg_prompt_tokens ("abcde"), 2 + RG_PROMPT_MESSAGE_TOKENS);
    assert_int_equal (rg_prompt_tokens ("é"), 1 + RG_PROMPT_MESSAGE_TOKENS); //  bytes
}

//  Each turn below costs 4 + 4 = 8 estimated tokens (16 bytes); the
//  system message "sys" 1 + 4 = 5.
static void
test_budget_drops_oldest_first (void **state)
{
    (void) state;
    const char *turns[][2] = {{"user", "0123456789abcde1"},      {"assistant", "0123456789abcde2"},
                              {"user", "0123456789abcde3"},      {"assistant", "0123456789abcde4"},
                              {"user", "the question, 16b"}};
    rg_task_t *task = s_task ("", turns, 5);
    //  Everything: 5 + 4 * 8 + 9 = 46 (the question is 17 bytes: 5 + 4).
    rg_prompt_options_t options = {"", "", "sys", 46, 0};
    size_t dropped = 99;
    json_t *body = s_body (&options, task, &dropped);
    assert_int_equal (dropped, 0);
    assert_int_equal (json_array_size (json_object_get (body, "messages")), 6);
    json_decref (body);

    //  One token short: the oldest user turn goes, and the assistant turn
    //  then first goes with it, so the history opens with a user turn.
    options.context_tokens = 45;
    body = s_body (&options, task, &dropped);
    assert_int_equal (dropped, 2);
    assert_int_equal (json_array_size (json_object_get (body, "messages")), 4);
    assert_string_equal (s_content (body, 0), "sys");
    assert_string_equal (s_role (body, 1), "user");
    assert_string_equal (s_content (body, 1), "0123456789abcde3");
    json_decref (body);

    //  A budget smaller than the system message and the question: both
    //  still go, alone.
    options.context_tokens = 1;
    body = s_body (&options, task, &dropped);
    assert_int_equal (dropped, 4);
    assert_int_equal (json_array_size (json_object_get (body, "messages")), 2);
    assert_string_equal (s_role (body, 0), "system");
    assert_string_equal (s_content (body, 1), "the question, 16b");
    json_decref (body);

    //  No budget: nothing dropped however long.
    options.context_tokens = 0;
    body = s_body (&options, task, &dropped);
    assert_int_equal (dropped, 0);
    json_decref (body);
    rg_task_destroy (&task);
}

//  A task with no conversation sends its query as the one user turn.
//  A takeover sends the answer so far as a trailing assistant turn, kept
//  (and counted) under a budget like the question.
static void
test_partial_answer_trails (void **state)
{
    (void) state;
    const char *turns[][2] = {{"user", "An old question with many words in it"},
                              {"assistant", "An old answer with many words in it too"},
                              {"user", "The question"}};
    rg_task_t *task = s_task ("", turns, 3);
    free (task->partial);
    task->partial = strdup ("The answer so far");
    rg_prompt_options_t options = {"", "", "", 0, 0};
    json_t *body = s_body (&options, task, NULL);
    assert_int_equal (json_array_size (json_object_get (body, "messages")), 4);
    assert_string_equal (s_role (body, 3), "assistant");
    assert_string_equal (s_content (body, 3), "The answer so far");
    assert_string_equal (s_content (body, 2), "The question");
    json_decref (body);
    //  Budget for the question and the partial only: both stay, all else goes.
    options.context_tokens = rg_prompt_tokens ("The question") + rg_prompt_tokens ("The answer so far");
    size_t dropped = 0;
    body = s_body (&options, task, &dropped);
    assert_int_equal (dropped, 2);
    assert_int_equal (json_array_size (json_object_get (body, "messages")), 2);
    assert_string_equal (s_role (body, 1), "assistant");
    json_decref (body);
    rg_task_destroy (&task);
}

static void
test_query_alone (void **state)
{
    (void) state;
    rg_task_t *task = s_task ("", NULL, 0);
    rg_prompt_options_t options = {"", "", "", 10, 0};
    json_t *body = s_body (&options, task, NULL);
    assert_int_equal (json_array_size (json_object_get (body, "messages")), 1);
    assert_string_equal (s_content (body, 0), "Hi");
    json_decref (body);
    rg_task_destroy (&task);
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_body_with_every_setting),
        cmocka_unit_test (test_instruction_in_system_message),
        cmocka_unit_test (test_no_max_tokens_no_system),
        cmocka_unit_test (test_model_choice),
        cmocka_unit_test (test_check_settings),
        cmocka_unit_test (test_token_estimate),
        cmocka_unit_test (test_budget_drops_oldest_first),
        cmocka_unit_test (test_query_alone),
        cmocka_unit_test (test_partial_answer_trails),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
