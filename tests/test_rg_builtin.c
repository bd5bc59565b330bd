/*  test_rg_builtin: the builtin generator and the backend interface.  */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "cm_error.h"
#include "cm_time.h"
#include "rg_builtin.h"

#include <stdlib.h>
#include <string.h>

static rg_task_t *
s_task (const char *task_id, const char *query, double temperature)
{
    cm_value_t *map = cm_map_new ();
    cm_map_set_str (map, "task_id", task_id);
    cm_map_set_str (map, "kind", "regenerate");
    cm_map_set_str (map, "message_id", "msg_1_s_assistant");
    cm_map_set_str (map, "session_id", "s");
    cm_map_set_str (map, "user_query", query);
    cm_map_set_dbl (map, "temperature", temperature);
    cm_map_set_int (map, "lease_ms", 3000);
    cm_value_t *conversation = cm_arr_new ();
    const char *turns[][2] = {
        {"user", "We run PostgreSQL replication between two datacenters."},
        {"assistant", "Replication lag depends on bandwidth and on the write volume."},
        {"user", query}};
    for (size_t i = 0; i < 3; i++) {
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

//  Usage example: open a stream, pull chunks to the end.
static void
test_stream_thoughts_then_tokens_in_order (void **state)
{
    (void) state;
    rg_task_t *task = s_task ("regen_1", "How should we monitor replication lag?", 0.7);
    rg_backend_t *backend = rg_builtin_new (0);
    assert_string_equal (rg_backend_name (backend), "builtin");
    rg_open_options_t options = {.thoughts = true};
    rg_stream_t *stream = NULL;
    char why[128];
    bool retryable;
    assert_int_equal (
        rg_backend_open (backend, task, &options, &stream, why, sizeof why, &retryable), 0);
    rg_builtin_text_t expect;
    assert_int_equal (rg_builtin_compose (task, rg_builtin_seed (task), task->temperature,
                                          &expect), 0);
    char *joined = calloc (1, strlen (expect.answer) + 1);
    int expect_kind = RG_CHUNK_THINK_START;
    int steps = 0, tokens = 0, last_progress = -1, rc;
    rg_chunk_t chunk;
    while ((rc = rg_stream_next (stream, 100, &chunk)) == 0) {
        if (chunk.kind == RG_CHUNK_THINK_START) {
            assert_int_equal (expect_kind, RG_CHUNK_THINK_START);
            assert_string_equal (chunk.text, expect.thinking_about);
            assert_int_equal (chunk.total_steps, expect.step_count);
            expect_kind = RG_CHUNK_THINK_STEP;
        }
        else if (chunk.kind == RG_CHUNK_THINK_STEP) {
            assert_int_equal (expect_kind, RG_CHUNK_THINK_STEP);
            assert_int_equal (chunk.step, ++steps);
            assert_string_equal (chunk.text, expect.steps[steps - 1]);
        }
        else if (chunk.kind == RG_CHUNK_THINK_DONE) {
            assert_int_equal (steps, expect.step_count);
            assert_string_equal (chunk.text, expect.conclusion);
            expect_kind = RG_CHUNK_TOKEN;
        }
        else {
            assert_int_equal (expect_kind, RG_CHUNK_TOKEN);
            assert_int_equal (strlen (chunk.text), chunk.len);
            strcat (joined, chunk.text);
            assert_true (chunk.progress >= last_progress);
            assert_true (chunk.progress < 100);
            last_progress = chunk.progress;
            tokens++;
        }
    }
    assert_int_equal (rc, RG_STREAM_END);
    assert_true (steps >= 3);
    assert_true (tokens > 20); //  streamed word by word, not in one piece
    assert_string_equal (joined, expect.answer);
    assert_string_equal (rg_stream_model (stream), "builtin");
    free (joined);
    rg_builtin_text_free (&expect);
    rg_stream_destroy (&stream);
    assert_null (stream);
    rg_backend_destroy (&backend);
    rg_task_destroy (&task);
}

static void
test_no_thoughts_when_disabled (void **state)
{
    (void) state;
    rg_task_t *task = s_task ("regen_2", "What is a good backup strategy?", 0.2);
    rg_backend_t *backend = rg_builtin_new (0);
    rg_open_options_t options = {.thoughts = false};
    rg_stream_t *stream = NULL;
    char why[128];
    bool retryable;
    assert_int_equal (
        rg_backend_open (backend, task, &options, &stream, why, sizeof why, &retryable), 0);
    rg_chunk_t chunk;
    int rc, count = 0;
    while ((rc = rg_stream_next (stream, 100, &chunk)) == 0) {
        assert_int_equal (chunk.kind, RG_CHUNK_TOKEN);
        count++;
    }
    assert_int_equal (rc, RG_STREAM_END);
    assert_true (count > 0);
    rg_stream_destroy (&stream);
    rg_backend_destroy (&backend);
    rg_task_destroy (&task);
}

//  The whole answer of a stream, tokens only, concatenated (caller frees).
static char *
s_stream_text (rg_backend_t *backend, const rg_task_t *task, bool thoughts)
{
    rg_open_options_t options = {.thoughts = thoughts};
    rg_stream_t *stream = NULL;
    char why[128];
    bool retryable;
    assert_int_equal (
        rg_backend_open (backend, task, &options, &stream, why, sizeof why, &retryable), 0);
    char *text = calloc (1, 1);
    size_t len = 0;
    rg_chunk_t chunk;
    int rc;
    while ((rc = rg_stream_next (stream, 100, &chunk)) == 0) {
        if (chunk.kind != RG_CHUNK_TOKEN)
            continue;
        text = realloc (text, len + chunk.len + 1);
        memcpy (text + len, chunk.text, chunk.len + 1);
        len += chunk.len;
    }
    assert_int_equal (rc, RG_STREAM_END);
    rg_stream_destroy (&stream);
    return text;
}

//  A takeover: with the first 12 tokens checkpointed, the stream writes
//  exactly the rest (no thoughts, progress from where it was), so the two
//  make the uninterrupted answer byte for byte. A partial that is not the
//  answer's prefix gets the whole answer after it.
static void
test_resume_from_partial (void **state)
{
    (void) state;
    rg_task_t *task = s_task ("regen_r", "How do we resume a cut-off answer?", 0.7);
    rg_backend_t *backend = rg_builtin_new (0);
    char *whole = s_stream_text (backend, task, false);
    size_t cut = 0;
    for (int i = 0; i < 12; i++)
        cut += rg_builtin_token_len (whole, cut);
    assert_true (cut > 0 && cut < strlen (whole));
    free (task->partial);
    task->partial = strndup (whole, cut);

    rg_open_options_t options = {.thoughts = false};
    rg_stream_t *stream = NULL;
    char why[128];
    bool retryable;
    assert_int_equal (
        rg_backend_open (backend, task, &options, &stream, why, sizeof why, &retryable), 0);
    rg_chunk_t chunk;
    assert_int_equal (rg_stream_next (stream, 100, &chunk), 0);
    assert_int_equal (chunk.kind, RG_CHUNK_TOKEN);
    assert_true (chunk.progress > 0); //  counted from the resumed position
    assert_memory_equal (chunk.text, whole + cut, chunk.len);
    rg_stream_destroy (&stream);

    char *rest = s_stream_text (backend, task, true);
    assert_int_equal (strlen (task->partial) + strlen (rest), strlen (whole));
    assert_string_equal (rest, whole + cut);

    free (task->partial);
    task->partial = strdup ("Some other generator's start. ");
    char *after = s_stream_text (backend, task, false);
    assert_string_equal (after, whole);
    free (after);
    free (rest);
    free (whole);
    rg_backend_destroy (&backend);
    rg_task_destroy (&task);
}

static void
test_deterministic_for_seed_and_temperature (void **state)
{
    (void) state;
    rg_task_t *task = s_task ("regen_3", "How should we monitor replication lag?", 0.7);
    rg_builtin_text_t a, b, c;
    assert_int_equal (rg_builtin_compose (task, 42, 0.7, &a), 0);
    assert_int_equal (rg_builtin_compose (task, 42, 0.7, &b), 0);
    assert_string_equal (a.answer, b.answer);
    assert_string_equal (a.thinking_about, b.thinking_about);
    rg_builtin_text_free (&b);
    //  Across seeds and temperatures the text may change; over several it must.
    bool differs = false;
    for (uint64_t seed = 1; seed < 10 && !differs; seed++) {
        assert_int_equal (rg_builtin_compose (task, seed, 1.5, &c), 0);
        differs = strcmp (a.answer, c.answer) != 0;
        rg_builtin_text_free (&c);
    }
    assert_true (differs);
    //  The task's own seed: same task id and temperature, same seed.
    rg_task_t *again = s_task ("regen_3", "How should we monitor replication lag?", 0.7);
    assert_int_equal (rg_builtin_seed (task), rg_builtin_seed (again));
    rg_task_t *hotter = s_task ("regen_3", "How should we monitor replication lag?", 1.2);
    assert_true (rg_builtin_seed (task) != rg_builtin_seed (hotter));
    rg_task_destroy (&again);
    rg_task_destroy (&hotter);
    rg_builtin_text_free (&a);
    rg_task_destroy (&task);
}

static void
test_answer_restates_question_and_uses_conversation (void **state)
{
    (void) state;
    rg_task_t *task = s_task ("regen_4", "How should we monitor replication lag?", 0.0);
    rg_builtin_text_t text;
    assert_int_equal (rg_builtin_compose (task, rg_builtin_seed (task), 0.0, &text), 0);
    assert_non_null (strstr (text.answer, "How should we monitor replication lag?"));
    assert_non_null (strstr (text.answer, "### Key points"));
    assert_non_null (strstr (text.answer, "### Conclusion"));
    //  Key terms of the question and of earlier messages appear.
    assert_non_null (strstr (text.answer, "**replication**"));
    assert_non_null (strstr (text.answer, "lag"));
    assert_non_null (strstr (text.thinking_about, "replication"));
    assert_true (strlen (text.answer) > 200);
    rg_builtin_text_free (&text);
    rg_task_destroy (&task);

    //  A question with no usable terms still gets a useful, non-empty answer.
    task = s_task ("regen_5", "?", 0.5);
    free (task->turns[0].content);
    task->turns[0].content = strdup ("ok");
    free (task->turns[1].content);
    task->turns[1].content = strdup ("yes");
    assert_int_equal (rg_builtin_compose (task, 7, 0.5, &text), 0);
    assert_non_null (strstr (text.answer, "**Your question:** ?"));
    assert_non_null (strstr (text.answer, "### Conclusion"));
    rg_builtin_text_free (&text);
    rg_task_destroy (&task);
}

static void
test_long_question_cut_on_character_boundary (void **state)
{
    (void) state;
    char query[1200] = "";
    for (int i = 0; i < 150; i++) //  900 bytes
        strcat (query, "é ü "); //  multibyte characters around the cut
    rg_task_t *task = s_task ("regen_6", query, 0.3);
    rg_builtin_text_t text;
    assert_int_equal (rg_builtin_compose (task, 1, 0.3, &text), 0);
    const char *line = strstr (text.answer, "**Your question:** ");
    const char *end = strstr (line, "…");
    assert_non_null (end);
    //  The byte before the ellipsis is not the lead byte of a cut character.
    assert_true ((unsigned char) end[-1] < 0xC0);
    rg_builtin_text_free (&text);
    rg_task_destroy (&task);
}

static void
test_token_len (void **state)
{
    (void) state;
    const char *text = "Hello  world\n\nNext line";
    size_t pos = 0, len;
    const char *expect[] = {"Hello  ", "world", "\n\n", "Next ", "line"};
    for (int i = 0; i < 5; i++) {
        len = rg_builtin_token_len (text, pos);
        assert_int_equal (len, strlen (expect[i]));
        assert_memory_equal (text + pos, expect[i], len);
        pos += len;
    }
    assert_int_equal (rg_builtin_token_len (text, pos), 0);
}

static void
test_pacing_and_cancellation (void **state)
{
    (void) state;
    rg_task_t *task = s_task ("regen_7", "How should we monitor replication lag?", 0.7);
    rg_backend_t *backend = rg_builtin_new (50); //  one unit per 20 ms
    rg_open_options_t options = {.thoughts = false};
    rg_stream_t *stream = NULL;
    char why[128];
    bool retryable;
    assert_int_equal (
        rg_backend_open (backend, task, &options, &stream, why, sizeof why, &retryable), 0);
    rg_chunk_t chunk;
    int64_t start = cm_mono_ms ();
    int got = 0;
    while (got < 6) {
        int rc = rg_stream_next (stream, 5, &chunk);
        assert_true (rc == 0 || rc == RG_STREAM_AGAIN);
        got += rc == 0;
    }
    //  Six units at 50/s: the sixth was due at 100 ms.
    assert_true (cm_mono_ms () - start >= 95);
    assert_false (rg_stream_cancelled (stream));
    rg_stream_cancel (stream);
    assert_true (rg_stream_cancelled (stream));
    assert_int_equal (rg_stream_next (stream, 100, &chunk), CM_ECANCELLED);
    const char *error = rg_stream_error (stream, &retryable);
    assert_string_equal (error, "cancelled");
    assert_false (retryable);
    rg_stream_destroy (&stream);
    rg_backend_destroy (&backend);
    rg_task_destroy (&task);
}

static void
test_task_parse (void **state)
{
    (void) state;
    cm_value_t *map = cm_map_new ();
    rg_task_t *task = NULL;
    assert_int_equal (rg_task_parse (map, &task), CM_EPROTO); //  no task_id
    assert_null (task);
    cm_map_set_str (map, "task_id", "regen_x");
    cm_map_set_nil (map, "temperature");
    cm_value_t *conversation = cm_arr_new ();
    cm_value_t *turn = cm_map_new ();
    cm_map_set_str (turn, "role", "user");
    cm_map_set_str (turn, "content", "the question");
    cm_arr_push (conversation, turn);
    cm_arr_push (conversation, cm_int_new (3)); //  junk is skipped
    cm_map_set (map, "conversation", conversation);
    assert_int_equal (rg_task_parse (map, &task), 0);
    assert_string_equal (task->task_id, "regen_x");
    assert_string_equal (task->model, "");
    assert_true (task->temperature == RG_TASK_DEFAULT_TEMPERATURE);
    assert_int_equal (task->lease_ms, RG_TASK_DEFAULT_LEASE_MS);
    assert_int_equal (task->turn_count, 1);
    assert_string_equal (task->user_query, "the question"); //  from the last user turn
    rg_task_destroy (&task);
    assert_null (task);
    cm_value_destroy (&map);
}

//  An instruction shows in the answer, deterministically: restated, with
//  2 points for "shorter" and more for "more detail" than without.
static size_t
s_points (const char *answer)
{
    size_t points = 0;
    for (const char *p = strstr (answer, "### Key points"); p && *p; p++)
        if (p[0] == '\n' && p[1] >= '1' && p[1] <= '9' && p[2] == '.')
            points++;
    return points;
}

static void
test_instruction_shapes_answer (void **state)
{
    (void) state;
    const char *query = "How should we tune checkpoint intervals, replication lag alerts, "
                        "vacuum schedules and connection pooling together?";
    rg_builtin_text_t plain, shorter, detailed, again;
    rg_task_t *task = s_task ("regen_i", query, 0.0);
    assert_int_equal (rg_builtin_compose (task, rg_builtin_seed (task), 0.0, &plain), 0);
    free (task->instruction);
    task->instruction = strdup ("Shorter, please");
    assert_int_equal (rg_builtin_compose (task, rg_builtin_seed (task), 0.0, &shorter), 0);
    assert_int_equal (rg_builtin_compose (task, rg_builtin_seed (task), 0.0, &again), 0);
    free (task->instruction);
    task->instruction = strdup ("more detail");
    assert_int_equal (rg_builtin_compose (task, rg_builtin_seed (task), 0.0, &detailed), 0);
    assert_string_equal (shorter.answer, again.answer);
    assert_non_null (strstr (shorter.answer, "As you asked — _Shorter, please_"));
    assert_null (strstr (plain.answer, "As you asked"));
    assert_int_equal (s_points (shorter.answer), 2);
    assert_true (s_points (plain.answer) > 2);
    assert_true (s_points (detailed.answer) > s_points (plain.answer));
    assert_true (strlen (shorter.answer) < strlen (plain.answer));
    rg_builtin_text_free (&plain);
    rg_builtin_text_free (&shorter);
    rg_builtin_text_free (&again);
    rg_builtin_text_free (&detailed);
    rg_task_destroy (&task);
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_stream_thoughts_then_tokens_in_order),
        cmocka_unit_test (test_no_thoughts_when_disabled),
        cmocka_unit_test (test_resume_from_partial),
        cmocka_unit_test (test_deterministic_for_seed_and_temperature),
        cmocka_unit_test (test_answer_restates_question_and_uses_conversation),
        cmocka_unit_test (test_long_question_cut_on_character_boundary),
        cmocka_unit_test (test_token_len),
        cmocka_unit_test (test_pacing_and_cancellation),
        cmocka_unit_test (test_task_parse),
        cmocka_unit_test (test_instruction_shapes_answer),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
