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

#include "svc_harness.h"
#include "svc_task_util.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

#define LEASE_MS 1500

//  A session with one answered turn, its event stream opened after that.
static svc_sse_t *
s_session (svc_mesh_t *mesh, const char *token, const char *session)
{
    free (st_turn (mesh, token, session, "What is a lease?"));
    free (st_wait_answer (mesh, token, session, 1));
    char path[300];
    snprintf (path, sizeof path, "/api/run_sse/%s", session);
    svc_sse_t *sse = svc_sse_open (mesh, path, token, NULL);
    assert_non_null (sse);
    return sse;
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
    char *first_answer = st_wait_answer (mesh, token, "fence_s", 1);
    const char *query = "How do fencing tokens protect leases?";
    char *task_id = st_turn (mesh, token, "fence_s", query);

    //  The first regenerator is writing: pause it there.
    long first = st_find (sse, 0, "regeneration_progress", task_id, 20000);
    assert_true (first >= 0);
    pid_t paused = (pid_t) svc_mesh_pid (mesh, "regenerator");
    assert_true (paused > 0);
    assert_int_equal (kill (paused, SIGSTOP), 0);
    double stopped = svc_now_ms ();

    //  A second one takes the lease over once it expired and finishes.
    assert_true (svc_mesh_spawn_extra (mesh, "regenerator", NULL) >= 0);
    long done = st_find (sse, (size_t) first, "message_regenerated", task_id, 30000);
    assert_true (done >= 0);
    assert_true (svc_sse_at (sse, (size_t) done)->received_ms - stopped >= LEASE_MS);
    double seam = 0;
    char *final = strdup (st_check_seam (sse, task_id, done, &seam));
    fprintf (stderr, "SIGSTOP -> resumed seam %.0f ms (lease %d ms)\n", seam - stopped, LEASE_MS);
    const char *turns[][2] = {{"user", "What is a lease?"}, {"assistant", first_answer},
                              {"user", query}};
    char *expect = st_uninterrupted (task_id, "answer", turns, 3);
    assert_string_equal (final, expect);
    assert_int_equal (st_wait_log (mesh, "regenerator-2.log", "(attempt 2): completed", 5000), 0);

    //  Woken, the first one's next write carries fencing token 1: refused.
    assert_int_equal (kill (paused, SIGCONT), 0);
    assert_int_equal (st_wait_log (mesh, "store.log", "with fencing token 1 (now 2)", 10000), 0);
    assert_int_equal (
        st_wait_log (mesh, "regenerator.log", "taken over (stale fencing token), stopping", 10000),
        0);
    char *stored = st_wait_answer (mesh, token, "fence_s", 3);
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
        const char *task = event->json ? st_str (event->json, "taskId") : NULL;
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
    char *first_answer = st_wait_answer (mesh, token, "kill_s", 1);
    const char *query = "Explain in detail how write-ahead logging, checkpoints and "
                        "replication together keep a database consistent after a crash";
    char *task_id = st_turn (mesh, token, "kill_s", query);
    long at = -1;
    for (size_t from = 0; at < 0;) {
        long i = st_find (sse, from, "regeneration_progress", task_id, 30000);
        assert_true (i >= 0);
        if (json_integer_value (json_object_get (svc_sse_at (sse, (size_t) i)->json, "progress"))
            >= 30)
            at = i;
        from = (size_t) i + 1;
    }
    assert_int_equal (svc_mesh_kill (mesh, "regenerator", SIGKILL), 0);
    double killed = svc_now_ms ();
    assert_int_equal (svc_mesh_spawn (mesh, "regenerator"), 0);
    long done = st_find (sse, (size_t) at, "message_regenerated", task_id, 30000);
    assert_true (done >= 0);
    double seam = 0;
    const char *final = st_check_seam (sse, task_id, done, &seam);
    fprintf (stderr, "kill -9 at %lld%% -> resumed seam %.0f ms (lease %d ms)\n",
             json_integer_value (json_object_get (svc_sse_at (sse, (size_t) at)->json, "progress")),
             seam - killed, LEASE_MS);
    const char *turns[][2] = {{"user", "What is a lease?"}, {"assistant", first_answer},
                              {"user", query}};
    char *expect = st_uninterrupted (task_id, "answer", turns, 3);
    assert_string_equal (final, expect);
    char *stored = st_wait_answer (mesh, token, "kill_s", 3);
    assert_string_equal (stored, expect);
    //  The first lease's thought process is the answer's (the second had none).
    json_t *message = st_stored (mesh, token, "kill_s", 3);
    json_t *thoughts = json_object_get (json_object_get (message, "metadata"), "thought_process");
    assert_true (json_array_size (json_object_get (thoughts, "steps")) >= 1);
    json_decref (message);
    assert_int_equal (st_wait_log (mesh, "regenerator.log", "(attempt 2): completed", 5000), 0);
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
