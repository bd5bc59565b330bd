/*  svc_takeover: a regenerator that stops mid-answer and the one that
    takes its lease over, through the real binaries.
      - SIGSTOP the first past its lease, let a second take over and
        finish, SIGCONT the first: its writes are refused by their stale
        fencing token (store and regenerator logs say so) and the stored
        answer is the successor's.
      - kill -9 the only one at 30% of a long answer and start another.
    Either way the successor continues the checkpointed text: the stored
    answer is byte for byte the builtin answer of an uninterrupted run
    (rg_builtin_compose of the same task), and the reader's text only
    grows (every partialContent extends the one before, so the deltas
    concatenated are the answer with no repeated segment), with exactly
    one regeneration_progress resumed: true at the seam.                 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "rg_builtin.h"
#include "svc_harness.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

#define LEASE_MS 1500

static const char *
s_str (const json_t *object, const char *key)
{
    return json_string_value (json_object_get (object, key));
}

//  Index of the first event at or after from of type for task_id, waiting
//  up to timeout_ms; -1 when none came.
static long
s_find (svc_sse_t *sse, size_t from, const char *type, const char *task_id, int timeout_ms)
{
    double deadline = svc_now_ms () + timeout_ms;
    size_t i = from;
    while (true) {
        for (size_t count = svc_sse_count (sse); i < count; i++) {
            const svc_event_t *event = svc_sse_at (sse, i);
            const char *task = event->json ? s_str (event->json, "taskId") : NULL;
            if (strcmp (event->event, type) == 0 && task && strcmp (task, task_id) == 0)
                return (long) i;
        }
        double left = deadline - svc_now_ms ();
        if (left <= 0)
            return -1;
        svc_sse_wait (sse, NULL, left < 100 ? (int) left + 1 : 100);
    }
}

//  Waits until the log <dir>/log/name contains needle. 0 or -1.
static int
s_wait_log (svc_mesh_t *mesh, const char *name, const char *needle, int timeout_ms)
{
    char path[600];
    snprintf (path, sizeof path, "%s/log/%s", svc_mesh_dir (mesh), name);
    for (double until = svc_now_ms () + timeout_ms; svc_now_ms () < until;) {
        char *log = svc_read_file (path);
        bool found = log && strstr (log, needle);
        free (log);
        if (found)
            return 0;
        usleep (20 * 1000);
    }
    fprintf (stderr, "%s never said '%s'\n", name, needle);
    return -1;
}

//  The stored assistant message at index of session (caller decrefs).
static json_t *
s_stored (svc_mesh_t *mesh, const char *token, const char *session, size_t index)
{
    char path[300];
    snprintf (path, sizeof path, "/api/sessions/%s", session);
    svc_response_t response;
    assert_int_equal (svc_http (mesh, "GET", path, token, NULL, &response), 0);
    assert_int_equal (response.status, 200);
    json_t *messages = json_object_get (json_object_get (response.json, "session"), "messages");
    json_t *message = json_incref (json_array_get (messages, index));
    assert_non_null (message);
    svc_response_free (&response);
    return message;
}

//  One turn of session; returns its task id (caller frees).
static char *
s_turn (svc_mesh_t *mesh, const char *token, const char *session, const char *query)
{
    svc_response_t response;
    assert_int_equal (svc_turn (mesh, token, session, query, &response), 200);
    char *task_id = strdup (svc_json_str (response.json, "data", "task_id"));
    svc_response_free (&response);
    return task_id;
}

//  Waits until the answer at index is no longer being written; returns
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

//  A session with one answered turn, its event stream opened after that.
static svc_sse_t *
s_session (svc_mesh_t *mesh, const char *token, const char *session)
{
    free (s_turn (mesh, token, session, "What is a lease?"));
    free (s_wait_answer (mesh, token, session, 1));
    char path[300];
    snprintf (path, sizeof path, "/api/run_sse/%s", session);
    svc_sse_t *sse = svc_sse_open (mesh, path, token, NULL);
    assert_non_null (sse);
    return sse;
}

//  What the builtin generator writes, uninterrupted, for the second turn
//  (query) of a session whose first turn was first_query -> first_answer.
static char *
s_uninterrupted (const char *task_id, const char *first_query, const char *first_answer,
                 const char *query)
{
    cm_value_t *map = cm_map_new ();
    cm_map_set_str (map, "task_id", task_id);
    cm_map_set_str (map, "kind", "answer");
    cm_map_set_str (map, "user_query", query);
    cm_value_t *conversation = cm_arr_new ();
    const char *turns[][2] = {{"user", first_query}, {"assistant", first_answer}, {"user", query}};
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
    rg_builtin_text_t text;
    assert_int_equal (rg_builtin_compose (task, rg_builtin_seed (task), task->temperature, &text),
                      0);
    char *answer = strdup (text.answer);
    rg_builtin_text_free (&text);
    rg_task_destroy (&task);
    return answer;
}

//  The reader's view of the task up to its message_regenerated: every
//  partialContent extends the one before (no rewind, no repeat), the
//  final content extends the last, exactly one progress is resumed: true,
//  and it comes after text was already shown. Returns the content; *seam
//  gets the resumed event's arrival (svc_now_ms clock).
static const char *
s_check_seam (svc_sse_t *sse, const char *task_id, long done, double *seam)
{
    const char *last = "";
    int resumed = 0;
    for (long i = 0; i <= done; i++) {
        const svc_event_t *event = svc_sse_at (sse, (size_t) i);
        const char *task = event->json ? s_str (event->json, "taskId") : NULL;
        if (!task || strcmp (task, task_id) != 0)
            continue;
        const char *text = i == done ? s_str (event->json, "content")
                                     : s_str (event->json, "partialContent");
        if (strcmp (event->event, "regeneration_progress") != 0 && i != done)
            continue;
        assert_non_null (text);
        if (strncmp (text, last, strlen (last)) != 0)
            fail_msg ("event %ld rewinds: '%.40s...' does not extend '%.40s...'", i, text, last);
        if (json_is_true (json_object_get (event->json, "resumed"))) {
            resumed++;
            assert_true (strlen (last) > 0);
            *seam = event->received_ms;
        }
        last = text;
    }
    assert_int_equal (resumed, 1);
    return last;
}

static void
test_sigstop_past_lease (void **state)
{
    (void) state;
    char lease[64];
    snprintf (lease, sizeof lease, "CHATMESH_TASK_LEASE_MS=%d", LEASE_MS);
    const char *env[] = {"CHAT_ACTIONS_RATE_LIMIT=0", "CHAT_REGENERATION_RATE_LIMIT=0", lease,
                         "CHATMESH_BUILTIN_TOKENS_PER_SEC=40",
                         "CHAT_ACTIONS_ENABLE_THOUGHT_PROCESS=false", NULL};
    svc_mesh_t *mesh = svc_mesh_start (env);
    assert_non_null (mesh);
    char *token = svc_token (mesh, "fenced", 600);
    svc_sse_t *sse = s_session (mesh, token, "fence_s");
    char *first_answer = s_wait_answer (mesh, token, "fence_s", 1);
    const char *query = "How do fencing tokens protect leases?";
    char *task_id = s_turn (mesh, token, "fence_s", query);

    //  The first regenerator is writing: pause it there.
    long first = s_find (sse, 0, "regeneration_progress", task_id, 20000);
    assert_true (first >= 0);
    pid_t paused = (pid_t) svc_mesh_pid (mesh, "regenerator");
    assert_true (paused > 0);
    assert_int_equal (kill (paused, SIGSTOP), 0);
    double stopped = svc_now_ms ();

    //  A second one takes the lease over once it expired and finishes.
    assert_true (svc_mesh_spawn_extra (mesh, "regenerator", NULL) >= 0);
    long done = s_find (sse, (size_t) first, "message_regenerated", task_id, 30000);
    assert_true (done >= 0);
    assert_true (svc_sse_at (sse, (size_t) done)->received_ms - stopped >= LEASE_MS);
    double seam = 0;
    char *final = strdup (s_check_seam (sse, task_id, done, &seam));
    fprintf (stderr, "SIGSTOP -> resumed seam %.0f ms (lease %d ms)\n", seam - stopped, LEASE_MS);
    char *expect = s_uninterrupted (task_id, "What is a lease?", first_answer, query);
    assert_string_equal (final, expect);
    assert_int_equal (s_wait_log (mesh, "regenerator-2.log", "(attempt 2): completed", 5000), 0);

    //  Woken, the first one's next write carries fencing token 1: refused.
    assert_int_equal (kill (paused, SIGCONT), 0);
    assert_int_equal (s_wait_log (mesh, "store.log", "with fencing token 1 (now 2)", 10000), 0);
    assert_int_equal (
        s_wait_log (mesh, "regenerator.log", "taken over (stale fencing token), stopping", 10000),
        0);
    char *stored = s_wait_answer (mesh, token, "fence_s", 3);
    assert_string_equal (stored, final);
    //  ...and counted in /metrics.
    svc_response_t metrics;
    assert_int_equal (svc_http (mesh, "GET", "/metrics", NULL, NULL, &metrics), 0);
    const char *line = strstr (metrics.body, "\nchatmesh_store_stale_writes_refused_total ");
    assert_non_null (line);
    assert_true (atoll (line + strlen ("\nchatmesh_store_stale_writes_refused_total ")) >= 1);
    svc_response_free (&metrics);
    //  No event of the task after its end: the stale writes published nothing.
    svc_sse_wait (sse, NULL, 300);
    for (size_t i = (size_t) done + 1; i < svc_sse_count (sse); i++) {
        const svc_event_t *event = svc_sse_at (sse, i);
        const char *task = event->json ? s_str (event->json, "taskId") : NULL;
        assert_false (task && strcmp (task, task_id) == 0);
    }
    free (stored);
    free (final);
    free (expect);
    free (first_answer);
    free (task_id);
    svc_sse_close (&sse);
    free (token);
    svc_mesh_stop (&mesh);
}

//  kill -9 of the only regenerator at 30% of a long answer; another one
//  started after it continues where the checkpoints stopped.
static void
test_kill9_at_30_percent (void **state)
{
    (void) state;
    char lease[64];
    snprintf (lease, sizeof lease, "CHATMESH_TASK_LEASE_MS=%d", LEASE_MS);
    const char *env[] = {"CHAT_ACTIONS_RATE_LIMIT=0", "CHAT_REGENERATION_RATE_LIMIT=0", lease,
                         "CHATMESH_BUILTIN_TOKENS_PER_SEC=60",
                         "CHAT_ACTIONS_ENABLE_THOUGHT_PROCESS=true", NULL};
    svc_mesh_t *mesh = svc_mesh_start (env);
    assert_non_null (mesh);
    char *token = svc_token (mesh, "killed", 600);
    svc_sse_t *sse = s_session (mesh, token, "kill_s");
    char *first_answer = s_wait_answer (mesh, token, "kill_s", 1);
    const char *query = "Explain in detail how write-ahead logging, checkpoints and "
                        "replication together keep a database consistent after a crash";
    char *task_id = s_turn (mesh, token, "kill_s", query);
    long at = -1;
    for (size_t from = 0; at < 0;) {
        long i = s_find (sse, from, "regeneration_progress", task_id, 30000);
        assert_true (i >= 0);
        if (json_integer_value (json_object_get (svc_sse_at (sse, (size_t) i)->json, "progress"))
            >= 30)
            at = i;
        from = (size_t) i + 1;
    }
    assert_int_equal (svc_mesh_kill (mesh, "regenerator", SIGKILL), 0);
    double killed = svc_now_ms ();
    assert_int_equal (svc_mesh_spawn (mesh, "regenerator"), 0);
    long done = s_find (sse, (size_t) at, "message_regenerated", task_id, 30000);
    assert_true (done >= 0);
    double seam = 0;
    const char *final = s_check_seam (sse, task_id, done, &seam);
    fprintf (stderr, "kill -9 at %lld%% -> resumed seam %.0f ms (lease %d ms)\n",
             json_integer_value (json_object_get (svc_sse_at (sse, (size_t) at)->json, "progress")),
             seam - killed, LEASE_MS);
    char *expect = s_uninterrupted (task_id, "What is a lease?", first_answer, query);
    assert_string_equal (final, expect);
    char *stored = s_wait_answer (mesh, token, "kill_s", 3);
    assert_string_equal (stored, expect);
    //  The first lease's thought process is the answer's (the second had none).
    json_t *message = s_stored (mesh, token, "kill_s", 3);
    json_t *thoughts = json_object_get (json_object_get (message, "metadata"), "thought_process");
    assert_true (json_array_size (json_object_get (thoughts, "steps")) >= 1);
    json_decref (message);
    assert_int_equal (s_wait_log (mesh, "regenerator.log", "(attempt 2): completed", 5000), 0);
    free (stored);
    free (expect);
    free (first_answer);
    free (task_id);
    svc_sse_close (&sse);
    free (token);
    svc_mesh_stop (&mesh);
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_sigstop_past_lease),
        cmocka_unit_test (test_kill9_at_30_percent),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
