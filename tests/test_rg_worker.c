/*  test_rg_worker: a task's whole lifecycle against a fake store (no
    sockets): events, throttled progress, completion, cancellation by the
    store, backend errors, time limit, shutdown, lease renewal.            */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "cm_error.h"
#include "cm_event.h"
#include "cm_time.h"
#include "rg_builtin.h"
#include "rg_worker.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_CALLS 4096

typedef struct {
    cm_envelope_t *calls[MAX_CALLS];
    int64_t at_ms[MAX_CALLS];
    size_t count;
    cm_msg_t fail_type;  //  answer this type with fail_code...
    int fail_code;
    size_t fail_after;   //  ...from its fail_after-th call on (1-based)
    size_t seen_of_type;
} s_store_t;

static int
s_fake_call (void *ctx, cm_envelope_t *request, cm_envelope_t **reply)
{
    s_store_t *store = ctx;
    assert_true (store->count < MAX_CALLS);
    //  Every request must pass its own schema, as the real store checks.
    assert_int_equal (cm_msg_validate (request->type, request->payload, NULL, 0), 0);
    cm_envelope_t *copy = cm_envelope_new (request->type, request->request_id);
    cm_value_destroy (&copy->payload);
    copy->payload = cm_value_dup (request->payload);
    store->at_ms[store->count] = cm_mono_ms ();
    store->calls[store->count++] = copy;
    if (request->type == store->fail_type && ++store->seen_of_type >= store->fail_after) {
        *reply = cm_envelope_reply_error (request, store->fail_code, "fake");
        return store->fail_code;
    }
    *reply = cm_envelope_reply_ok (request, NULL);
    return 0;
}

static void
s_store_free (s_store_t *store)
{
    for (size_t i = 0; i < store->count; i++)
        cm_envelope_destroy (&store->calls[i]);
}

static rg_task_t *
s_task (int64_t lease_ms)
{
    cm_value_t *map = cm_map_new ();
    cm_map_set_str (map, "task_id", "regen_0123");
    cm_map_set_str (map, "kind", "answer");
    cm_map_set_str (map, "message_id", "msg_1_s_assistant");
    cm_map_set_str (map, "session_id", "s");
    cm_map_set_str (map, "user_query", "Which metrics show replication lag early?");
    cm_map_set_int (map, "lease_ms", lease_ms);
    cm_map_set_int (map, "fence", 7);
    rg_task_t *task = NULL;
    assert_int_equal (rg_task_parse (map, &task), 0);
    cm_value_destroy (&map);
    return task;
}

static rg_worker_options_t
s_options (bool thoughts)
{
    rg_worker_options_t options = {"rg-test-1", thoughts, 100, 10000, 20};
    return options;
}

static size_t
s_count (const s_store_t *store, cm_msg_t type)
{
    size_t n = 0;
    for (size_t i = 0; i < store->count; i++)
        n += store->calls[i]->type == type;
    return n;
}

//  The thought_process_* event a task_event call asks the store to publish:
//  its name is `expect`, and its data, once the store adds the task's ids,
//  the session and the time, is what cm_event.h lists. Returns the data.
static const cm_value_t *
s_thought_event (const cm_envelope_t *call, cm_event_t expect)
{
    assert_int_equal (call->type, CM_MSG_TASK_EVENT);
    const char *name = cm_map_str_or (call->payload, "event", "");
    assert_int_equal (cm_event_from_name (name, strlen (name)), expect);
    const cm_value_t *data = cm_map_get (call->payload, "data");
    cm_value_t *published = cm_value_dup (data);
    assert_non_null (published);
    cm_map_set_str (published, "taskId", "regen_1");
    cm_map_set_str (published, "messageId", "msg_1_s_assistant");
    cm_map_set_str (published, "sessionId", "s");
    cm_map_set_str (published, "timestamp", "2026-12-02T10:00:00.000Z");
    char why[128] = "";
    int rc = cm_event_validate (expect, published, why, sizeof why);
    cm_value_destroy (&published);
    if (rc)
        fail_msg ("%s: %s", name, why);
    return data;
}

//  Usage example: the builtin backend, unlimited speed, thoughts on.
static void
test_lifecycle_events_progress_complete (void **state)
{
    (void) state;
    s_store_t store = {0};
    rg_task_t *task = s_task (30000);
    rg_backend_t *backend = rg_builtin_new (0);
    atomic_bool shutdown = false;
    rg_worker_options_t options = s_options (true);
    rg_outcome_t outcome = rg_worker_run (&options, backend, task, s_fake_call, &store,
                                          &shutdown);
    assert_int_equal (outcome, RG_OUTCOME_COMPLETED);

    //  The first progress checkpoint goes out at once, before the reasoning.
    assert_int_equal (store.calls[0]->type, CM_MSG_TASK_PROGRESS);
    assert_int_equal (cm_map_int (store.calls[0]->payload, "progress", -1), 0);
    assert_string_equal (cm_map_str (store.calls[0]->payload, "message"), "Thinking");
    //  thought_process_start, steps, complete come next, in order.
    const cm_value_t *data = s_thought_event (store.calls[1], CM_EVENT_THOUGHT_PROCESS_START);
    assert_non_null (cm_map_str (data, "thinkingAbout"));
    int64_t total = cm_map_int (data, "totalSteps", 0);
    assert_true (total >= 3);
    for (int64_t step = 1; step <= total; step++) {
        data = s_thought_event (store.calls[step + 1], CM_EVENT_THOUGHT_PROCESS_STEP);
        assert_int_equal (cm_map_int (data, "step", 0), step);
        const char *reasoning = cm_map_str (data, "reasoning");
        assert_non_null (reasoning);
        //  Every step so far, in the shape the store keeps and the API shows.
        const cm_value_t *steps = cm_map_get (data, "steps");
        assert_int_equal (cm_value_len (steps), (size_t) step);
        for (int64_t i = 0; i < step; i++)
            assert_int_equal (cm_map_int (cm_arr_at (steps, (size_t) i), "step", 0), i + 1);
        assert_string_equal (cm_map_str_or (cm_arr_at (steps, (size_t) step - 1), "reasoning", ""),
                             reasoning);
    }
    data = s_thought_event (store.calls[total + 2], CM_EVENT_THOUGHT_PROCESS_COMPLETE);
    assert_non_null (cm_map_str (data, "conclusion"));

    //  Then progress, the final one at 100 with the whole text, then complete.
    const cm_envelope_t *last = store.calls[store.count - 1];
    const cm_envelope_t *final = store.calls[store.count - 2];
    assert_int_equal (last->type, CM_MSG_TASK_COMPLETE);
    assert_int_equal (final->type, CM_MSG_TASK_PROGRESS);
    assert_int_equal (cm_map_int (final->payload, "progress", 0), 100);
    rg_builtin_text_t expect;
    assert_int_equal (rg_builtin_compose (task, rg_builtin_seed (task), task->temperature,
                                          &expect), 0);
    assert_string_equal (cm_map_str (last->payload, "content"), expect.answer);
    assert_string_equal (cm_map_str (final->payload, "partial"), expect.answer);
    assert_string_equal (cm_map_str (last->payload, "model"), "builtin");
    assert_string_equal (cm_map_str (last->payload, "worker"), "rg-test-1");
    assert_string_equal (cm_map_str (last->payload, "task_id"), "regen_0123");
    //  Every request carries the claim's fencing token.
    for (size_t i = 0; i < store.count; i++)
        assert_int_equal (cm_map_int (store.calls[i]->payload, "fence", 0), 7);
    rg_builtin_text_free (&expect);
    //  At unlimited speed the whole answer takes far less than the 100 ms
    //  interval: apart from the first and the final 100%, at most one
    //  progress went out.
    assert_true (s_count (&store, CM_MSG_TASK_PROGRESS) <= 3);
    assert_int_equal (s_count (&store, CM_MSG_TASK_FAIL), 0);
    s_store_free (&store);
    rg_backend_destroy (&backend);
    rg_task_destroy (&task);
}

//  A takeover: the task comes with the text an earlier lease checkpointed.
//  Every partial sent extends it (no rewind), no thought events go out
//  even with thoughts on, and the content is the uninterrupted answer.
static void
test_takeover_continues_partial (void **state)
{
    (void) state;
    s_store_t store = {0};
    rg_task_t *task = s_task (30000);
    rg_builtin_text_t expect;
    assert_int_equal (rg_builtin_compose (task, rg_builtin_seed (task), task->temperature,
                                          &expect), 0);
    size_t cut = 0;
    for (int i = 0; i < 20; i++)
        cut += rg_builtin_token_len (expect.answer, cut);
    free (task->partial);
    task->partial = strndup (expect.answer, cut);
    rg_backend_t *backend = rg_builtin_new (0);
    atomic_bool shutdown = false;
    rg_worker_options_t options = s_options (true);
    assert_int_equal (rg_worker_run (&options, backend, task, s_fake_call, &store, &shutdown),
                      RG_OUTCOME_COMPLETED);
    assert_int_equal (s_count (&store, CM_MSG_TASK_EVENT), 0);
    size_t last_len = cut;
    for (size_t i = 0; i < store.count; i++) {
        if (store.calls[i]->type != CM_MSG_TASK_PROGRESS)
            continue;
        const char *partial = cm_map_str (store.calls[i]->payload, "partial");
        assert_memory_equal (partial, task->partial, cut);
        assert_true (strlen (partial) > last_len || strlen (partial) == strlen (expect.answer));
        last_len = strlen (partial);
    }
    assert_string_equal (cm_map_str (store.calls[store.count - 1]->payload, "content"),
                         expect.answer);
    rg_builtin_text_free (&expect);
    s_store_free (&store);
    rg_backend_destroy (&backend);
    rg_task_destroy (&task);
}

static void
test_progress_throttled_and_partial_grows (void **state)
{
    (void) state;
    s_store_t store = {0};
    rg_task_t *task = s_task (30000);
    rg_backend_t *backend = rg_builtin_new (400); //  ~0.3 s for the answer
    atomic_bool shutdown = false;
    rg_worker_options_t options = s_options (false);
    options.progress_interval_ms = 50;
    int64_t start = cm_mono_ms ();
    assert_int_equal (rg_worker_run (&options, backend, task, s_fake_call, &store, &shutdown),
                      RG_OUTCOME_COMPLETED);
    int64_t elapsed = cm_mono_ms () - start;
    size_t progress = s_count (&store, CM_MSG_TASK_PROGRESS);
    assert_int_equal (s_count (&store, CM_MSG_TASK_EVENT), 0); //  thoughts off
    assert_true (progress >= 3);
    //  At most one per 50 ms interval, plus the final 100%.
    assert_true ((int64_t) progress <= elapsed / 50 + 2);
    size_t last_len = 0;
    int64_t last_progress = -1, last_at = 0;
    for (size_t i = 0; i < store.count; i++) {
        if (store.calls[i]->type != CM_MSG_TASK_PROGRESS)
            continue;
        const char *partial = cm_map_str (store.calls[i]->payload, "partial");
        int64_t value = cm_map_int (store.calls[i]->payload, "progress", -1);
        assert_true (strlen (partial) >= last_len);
        assert_true (value >= last_progress && value <= 100);
        if (last_at && value < 100)
            assert_true (store.at_ms[i] - last_at >= 45);
        last_len = strlen (partial);
        last_progress = value;
        last_at = store.at_ms[i];
    }
    assert_int_equal (last_progress, 100);
    s_store_free (&store);
    rg_backend_destroy (&backend);
    rg_task_destroy (&task);
}

static void
test_store_cancel_stops_at_once (void **state)
{
    (void) state;
    int codes[] = {CM_ECANCELLED, CM_ELEASE, CM_ESTALE};
    for (int i = 0; i < 3; i++) {
        s_store_t store = {.fail_type = CM_MSG_TASK_PROGRESS, .fail_code = codes[i],
                           .fail_after = 2};
        rg_task_t *task = s_task (30000);
        rg_backend_t *backend = rg_builtin_new (400);
        atomic_bool shutdown = false;
        rg_worker_options_t options = s_options (true);
        options.progress_interval_ms = 20;
        assert_int_equal (rg_worker_run (&options, backend, task, s_fake_call, &store,
                                         &shutdown),
                          RG_OUTCOME_LOST);
        //  The refused progress was the last thing sent.
        assert_int_equal (store.calls[store.count - 1]->type, CM_MSG_TASK_PROGRESS);
        assert_int_equal (s_count (&store, CM_MSG_TASK_PROGRESS), 2);
        assert_int_equal (s_count (&store, CM_MSG_TASK_COMPLETE), 0);
        assert_int_equal (s_count (&store, CM_MSG_TASK_FAIL), 0);
        s_store_free (&store);
        rg_backend_destroy (&backend);
        rg_task_destroy (&task);
    }
}

//  A scripted backend: waits forever, or fails after a token.
typedef struct {
    int mode; //  0 silent, 1 token then error
    int calls;
} s_fake_stream_t;

static int
s_fake_open (void *state, const rg_task_t *task, const rg_open_options_t *options,
             void **stream, char *why, size_t why_size)
{
    (void) task;
    (void) options;
    int *mode = state;
    if (*mode == 2) {
        snprintf (why, why_size, "upstream unreachable");
        return CM_EBACKEND;
    }
    s_fake_stream_t *fake = calloc (1, sizeof *fake);
    fake->mode = *mode;
    *stream = fake;
    return 0;
}

static int
s_fake_next (void *stream, int wait_ms, const atomic_bool *cancelled, rg_chunk_t *chunk,
             char *why, size_t why_size, bool *retryable)
{
    s_fake_stream_t *fake = stream;
    if (fake->mode == 1 && fake->calls++ == 0) {
        *chunk = (rg_chunk_t) {RG_CHUNK_TOKEN, "Hello ", 6, 0, 0, -1};
        return 0;
    }
    if (fake->mode == 1) {
        snprintf (why, why_size, "upstream said 500");
        *retryable = true;
        return CM_EBACKEND;
    }
    int64_t until = cm_mono_ms () + wait_ms;
    while (cm_mono_ms () < until && !atomic_load (cancelled))
        nanosleep (&(struct timespec) {0, 1000000}, NULL);
    return RG_STREAM_AGAIN;
}

static const char *
s_fake_model (void *stream)
{
    (void) stream;
    return "fake";
}

static void
s_fake_close (void **stream)
{
    free (*stream);
    *stream = NULL;
}

static void
s_fake_destroy (void **state)
{
    free (*state);
    *state = NULL;
}

static const rg_backend_ops_t s_fake_ops = {"fake", s_fake_open, s_fake_next, s_fake_model,
                                            s_fake_close, s_fake_destroy, NULL, NULL};

static rg_backend_t *
s_fake_backend (int mode)
{
    int *state = malloc (sizeof *state);
    *state = mode;
    void *state_p = state;
    return rg_backend_new (&s_fake_ops, &state_p);
}

static void
test_backend_errors_fail_the_task (void **state)
{
    (void) state;
    for (int mode = 1; mode <= 2; mode++) {
        s_store_t store = {0};
        rg_task_t *task = s_task (30000);
        rg_backend_t *backend = s_fake_backend (mode);
        assert_string_equal (rg_backend_name (backend), "fake");
        atomic_bool shutdown = false;
        rg_worker_options_t options = s_options (true);
        assert_int_equal (rg_worker_run (&options, backend, task, s_fake_call, &store,
                                         &shutdown),
                          RG_OUTCOME_FAILED);
        const cm_envelope_t *last = store.calls[store.count - 1];
        assert_int_equal (last->type, CM_MSG_TASK_FAIL);
        assert_string_equal (cm_map_str (last->payload, "error"),
                             mode == 1 ? "upstream said 500" : "upstream unreachable");
        assert_true (cm_map_bool (last->payload, "retryable", false));
        assert_int_equal (s_count (&store, CM_MSG_TASK_COMPLETE), 0);
        s_store_free (&store);
        rg_backend_destroy (&backend);
        rg_task_destroy (&task);
    }
}

static void
test_time_limit_and_lease_renewal (void **state)
{
    (void) state;
    s_store_t store = {0};
    rg_task_t *task = s_task (150); //  renew every 50 ms
    rg_backend_t *backend = s_fake_backend (0);
    atomic_bool shutdown = false;
    rg_worker_options_t options = s_options (true);
    options.task_timeout_ms = 400;
    int64_t start = cm_mono_ms ();
    assert_int_equal (rg_worker_run (&options, backend, task, s_fake_call, &store, &shutdown),
                      RG_OUTCOME_FAILED);
    int64_t elapsed = cm_mono_ms () - start;
    assert_true (elapsed >= 400 && elapsed < 2000);
    const cm_envelope_t *last = store.calls[store.count - 1];
    assert_int_equal (last->type, CM_MSG_TASK_FAIL);
    assert_string_equal (cm_map_str (last->payload, "error"), "timed out");
    assert_false (cm_map_bool (last->payload, "retryable", true));
    //  No token ever came, yet the lease was renewed about every 50 ms.
    size_t renewals = s_count (&store, CM_MSG_TASK_PROGRESS);
    assert_true (renewals >= 5);
    //  The property is that no gap reaches the 150 ms lease; the 50 ms
    //  cadence itself jitters by tens of ms on a loaded machine.
    for (size_t i = 1; i + 1 < store.count; i++)
        assert_true (store.at_ms[i] - store.at_ms[i - 1] < 150);
    s_store_free (&store);
    rg_backend_destroy (&backend);
    rg_task_destroy (&task);
}

static void
test_shutdown_fails_retryable (void **state)
{
    (void) state;
    s_store_t store = {0};
    rg_task_t *task = s_task (30000);
    rg_backend_t *backend = s_fake_backend (0);
    atomic_bool shutdown = true;
    rg_worker_options_t options = s_options (true);
    assert_int_equal (rg_worker_run (&options, backend, task, s_fake_call, &store, &shutdown),
                      RG_OUTCOME_SHUTDOWN);
    assert_int_equal (store.count, 1);
    assert_int_equal (store.calls[0]->type, CM_MSG_TASK_FAIL);
    assert_true (cm_map_bool (store.calls[0]->payload, "retryable", false));
    s_store_free (&store);
    rg_backend_destroy (&backend);
    rg_task_destroy (&task);
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_lifecycle_events_progress_complete),
        cmocka_unit_test (test_progress_throttled_and_partial_grows),
        cmocka_unit_test (test_takeover_continues_partial),
        cmocka_unit_test (test_store_cancel_stops_at_once),
        cmocka_unit_test (test_backend_errors_fail_the_task),
        cmocka_unit_test (test_time_limit_and_lease_renewal),
        cmocka_unit_test (test_shutdown_fails_retryable),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
