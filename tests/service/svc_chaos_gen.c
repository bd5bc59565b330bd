/*  svc_chaos_gen: stop and continue under kill -9 (issue 16), the
    generation part of the chaos test (svc_chaos has the mixed load).

    For CHATMESH_CHAOS_SECONDS (default 30) one client cancels, continues
    and regenerates the answers of 6 sessions (one question each, long
    builtin answers at 60 tokens/s) while the store and the regenerator are
    killed with SIGKILL in turn and restarted. Every action carries its own
    Idempotency-Key and is retried with it until it gets an answer that is
    not 503/504 or a transport failure, so the client knows what was
    acknowledged (a retry whose first attempt did happen is replayed).
    A reader per session follows its events. Then:
    - no task stuck: every acknowledged task ends completed or failed;
    - no acknowledged answer lost: for each completed task of a version
      (its regenerate or first answer, or a continue of it), the version
      holds exactly the builtin answer an uninterrupted run of its creating
      task writes (the builtin generator is deterministic per task);
    - every version's text is a prefix of the uninterrupted answer of one
      of the answer's creating tasks: nothing foreign, no repeated
      segment, no rewind (their answers share only an opening of about
      140 bytes, the same question's);
    - a cancelled answer keeps what was streamed: the text a reader had
      before the cancel was sent is a prefix of what the cancel kept (its
      regeneration_error's content, when the reader got it) and of the
      version's final text.                                              */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "svc_harness.h"
#include "svc_task_util.h"

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define S_SESSIONS 6
#define S_CREATORS 64   //  tasks that make a version, per session
#define S_TASKS 256     //  every acknowledged task, per session
#define S_CANCELS 128   //  acknowledged cancels, per session
#define S_RETRY_MS 30000

static const char *s_question = "Explain in detail how write-ahead logging, checkpoints and "
                                "replication together keep a database consistent after a crash";

typedef struct {
    char id[64];
    char *expect;       //  the uninterrupted builtin answer of this task
} s_creator_t;

typedef struct {
    char id[64];
    long version_index; //  a continue's version (its reply); 0 for a creator
    bool completed;
} s_task_t;

typedef struct {
    char task_id[64];
    char *seen;         //  the last partialContent a reader had before the cancel
} s_cancel_t;

typedef struct {
    char id[64];
    char answer_id[256];
    char last_task[64]; //  the newest task on the answer
    svc_sse_t *reader;
    s_creator_t creators[S_CREATORS];
    int creator_count;
    s_task_t tasks[S_TASKS];
    int task_count;
    s_cancel_t cancels[S_CANCELS];
    int cancel_count;
} s_session_t;

static svc_mesh_t *s_mesh;
static char *s_token;
static s_session_t s_sessions[S_SESSIONS];
static atomic_bool s_stop_chaos;
static atomic_int s_kills[2];
static int s_retried, s_actions[3], s_acked[3];

//  One mutation with its Idempotency-Key, retried with the same key until
//  an answer that is not 503/504 nor a transport failure (the store or the
//  regenerator was down). The final status, *response kept.
static long
s_mutate (const char *path, const char *body, int action, svc_response_t *response)
{
    char header[96];
    snprintf (header, sizeof header, "Idempotency-Key: chaos-gen-%d", action);
    for (double until = svc_now_ms () + S_RETRY_MS;;) {
        int rc = svc_http_ex (s_mesh, "POST", path, s_token, body, NULL, header, response);
        long status = rc == 0 ? response->status : 0;
        if (status && status != 503 && status != 504)
            return status;
        svc_response_free (response);
        if (svc_now_ms () > until)
            fail_msg ("POST %s: no answer for %d ms", path, S_RETRY_MS);
        s_retried++;
        usleep (200 * 1000);
    }
}

static void
s_add_task (s_session_t *session, const char *task_id, long version_index)
{
    assert_non_null (task_id);
    assert_true (session->task_count < S_TASKS);
    s_task_t *task = &session->tasks[session->task_count++];
    snprintf (task->id, sizeof task->id, "%s", task_id);
    task->version_index = version_index;
    snprintf (session->last_task, sizeof session->last_task, "%s", task_id);
}

static void
s_add_creator (s_session_t *session, const char *task_id, const char *kind)
{
    assert_true (session->creator_count < S_CREATORS);
    s_creator_t *creator = &session->creators[session->creator_count++];
    snprintf (creator->id, sizeof creator->id, "%s", task_id);
    const char *turns[][2] = {{"user", s_question}};
    creator->expect = st_uninterrupted (task_id, kind, turns, 1);
    s_add_task (session, task_id, 0);
}

//  The last partialContent of task_id the session's reader got (borrowed, "" none).
static const char *
s_seen (s_session_t *session, const char *task_id)
{
    const char *seen = "";
    for (size_t i = 0, count = svc_sse_count (session->reader); i < count; i++) {
        const svc_event_t *event = svc_sse_at (session->reader, i);
        const char *task = st_task_of (event);
        if (task && strcmp (task, task_id) == 0
            && strcmp (event->event, "regeneration_progress") == 0)
            seen = st_str (event->json, "partialContent");
    }
    return seen ? seen : "";
}

static void
s_cancel (s_session_t *session, int action)
{
    if (!session->last_task[0] || session->cancel_count == S_CANCELS)
        return;
    char *seen = strdup (s_seen (session, session->last_task));
    char path[200];
    snprintf (path, sizeof path, "/api/messages/tasks/%s/cancel", session->last_task);
    svc_response_t response;
    long status = s_mutate (path, NULL, action, &response);
    svc_response_free (&response);
    //  409: it had ended already.
    if (status != 200 && status != 409)
        fail_msg ("cancel answered %ld", status);
    if (status == 200) {
        s_acked[0]++;
        s_cancel_t *cancel = &session->cancels[session->cancel_count++];
        memcpy (cancel->task_id, session->last_task, sizeof cancel->task_id);
        cancel->seen = seen;
    }
    else
        free (seen);
}

static void
s_continue (s_session_t *session, int action)
{
    char path[400];
    snprintf (path, sizeof path, "/api/messages/%s/continue", session->answer_id);
    svc_response_t response;
    long status = s_mutate (path, NULL, action, &response);
    //  409: complete (invalid_state) or running (conflict).
    if (status != 200 && status != 409)
        fail_msg ("continue answered %ld: %s", status, response.body);
    if (status == 200) {
        s_acked[1]++;
        json_t *data = json_object_get (response.json, "data");
        s_add_task (session, st_str (data, "task_id"),
                    (long) json_integer_value (json_object_get (data, "version_index")));
    }
    svc_response_free (&response);
}

static void
s_regenerate (s_session_t *session, int action)
{
    char path[400];
    snprintf (path, sizeof path, "/api/messages/%s/regenerate", session->answer_id);
    svc_response_t response;
    long status = s_mutate (path, "{}", action, &response);
    //  409: one is running; 400: the answer has 100 versions.
    if (status != 200 && status != 409)
        fail_msg ("regenerate answered %ld: %s", status, response.body);
    if (status == 200) {
        s_acked[2]++;
        s_add_creator (session, svc_json_str (response.json, "data", "task_id"), "regenerate");
    }
    svc_response_free (&response);
}

//  Kills the store and the regenerator in turn, each down 300-800 ms,
//  one kill about every 2.5 s.
static void *
s_chaos (void *arg)
{
    (void) arg;
    unsigned seed = 77;
    const char *victims[2] = {"store", "regenerator"};
    for (int round = 0; !atomic_load (&s_stop_chaos); round++) {
        for (int waited = 0; waited < 2500 && !atomic_load (&s_stop_chaos); waited += 50)
            usleep (50 * 1000);
        if (atomic_load (&s_stop_chaos))
            break;
        const char *victim = victims[round % 2];
        if (svc_mesh_kill (s_mesh, victim, SIGKILL) == 0)
            atomic_fetch_add (&s_kills[round % 2], 1);
        usleep ((300 + rand_r (&seed) % 500) * 1000);
        if (svc_mesh_spawn (s_mesh, victim))
            fprintf (stderr, "chaos_gen: %s did not restart\n", victim);
    }
    return NULL;
}

//  Waits until task_id is completed or failed; true when completed. A
//  task still running after the bound is counted in *stuck.
static bool
s_wait_terminal (const char *task_id, double deadline, int *stuck)
{
    char path[200];
    snprintf (path, sizeof path, "/api/messages/tasks/%s/status", task_id);
    while (true) {
        svc_response_t response;
        int rc = svc_http (s_mesh, "GET", path, s_token, NULL, &response);
        const char *status = rc == 0 && response.status == 200
                                 ? svc_json_str (response.json, "status", NULL)
                                 : NULL;
        bool completed = status && strcmp (status, "completed") == 0;
        bool failed = status && strcmp (status, "failed") == 0;
        if (!completed && !failed && svc_now_ms () > deadline) {
            fprintf (stderr, "chaos_gen: task %s not terminal (%s)\n", task_id,
                     status ? status : "no answer");
            (*stuck)++;
        }
        svc_response_free (&response);
        if (completed || failed || svc_now_ms () > deadline)
            return completed;
        usleep (200 * 1000);
    }
}

static bool
s_starts_with (const char *text, const char *prefix)
{
    return strncmp (text, prefix, strlen (prefix)) == 0;
}

//  The creator whose uninterrupted answer content is a prefix of (or
//  equal to, when whole), or NULL.
static const s_creator_t *
s_creator_of (const s_session_t *session, const char *content, bool whole)
{
    for (int c = 0; c < session->creator_count; c++) {
        const char *expect = session->creators[c].expect;
        if (whole ? strcmp (content, expect) == 0 : s_starts_with (expect, content))
            return &session->creators[c];
    }
    return NULL;
}

static void
test_stop_and_continue_under_kill9 (void **state)
{
    (void) state;
    const char *env[] = {"CHAT_ACTIONS_RATE_LIMIT=0", "CHAT_REGENERATION_RATE_LIMIT=0",
                         "CHATMESH_TASK_LEASE_MS=1500", "CHATMESH_BUILTIN_TOKENS_PER_SEC=60",
                         "CHAT_ACTIONS_ENABLE_THOUGHT_PROCESS=false", NULL};
    s_mesh = svc_mesh_start (env);
    assert_non_null (s_mesh);
    s_token = svc_token (s_mesh, "chaos_gen", 3600);
    const char *setting = getenv ("CHATMESH_CHAOS_SECONDS");
    int seconds = setting ? atoi (setting) : 30;
    int action = 0;
    for (int i = 0; i < S_SESSIONS; i++) {
        s_session_t *session = &s_sessions[i];
        snprintf (session->id, sizeof session->id, "chaos_gen_%d", i);
        char path[200], body[400];
        snprintf (path, sizeof path, "/api/run_sse/%.64s", session->id);
        snprintf (body, sizeof body, "{\"query\": \"%s\"}", s_question);
        svc_response_t response;
        assert_int_equal (s_mutate (path, body, action++, &response), 200);
        snprintf (session->answer_id, sizeof session->answer_id, "%s",
                  svc_json_str (response.json, "data", "assistant_message_id"));
        s_add_creator (session, svc_json_str (response.json, "data", "task_id"), "answer");
        svc_response_free (&response);
        session->reader = svc_sse_open (s_mesh, path, s_token, NULL);
        assert_non_null (session->reader);
    }

    pthread_t chaos;
    assert_int_equal (pthread_create (&chaos, NULL, s_chaos, NULL), 0);
    unsigned seed = 4242;
    for (double end = svc_now_ms () + seconds * 1000.0; svc_now_ms () < end;) {
        s_session_t *session = &s_sessions[rand_r (&seed) % S_SESSIONS];
        int roll = rand_r (&seed) % 100;
        int kind = roll < 40 ? 0 : roll < 75 ? 1 : 2;
        s_actions[kind]++;
        if (kind == 0)
            s_cancel (session, action++);
        else if (kind == 1)
            s_continue (session, action++);
        else
            s_regenerate (session, action++);
        usleep ((150 + rand_r (&seed) % 250) * 1000);
    }
    atomic_store (&s_stop_chaos, true);
    pthread_join (chaos, NULL);
    assert_int_equal (svc_mesh_wait_status (s_mesh, "/readyz", 200, 20000), 0);

    //  1. Every acknowledged task ends (leases of 1.5 s: an orphan is
    //  claimed again within seconds).
    int stuck = 0, completed = 0, tasks = 0;
    double deadline = svc_now_ms () + 90000;
    for (int i = 0; i < S_SESSIONS; i++)
        for (int t = 0; t < s_sessions[i].task_count; t++) {
            s_task_t *task = &s_sessions[i].tasks[t];
            task->completed = s_wait_terminal (task->id, deadline, &stuck);
            completed += task->completed;
            tasks++;
        }

    //  2. The versions, against the uninterrupted answers.
    int lost = 0, foreign = 0, cancels_checked = 0, cancel_events = 0, cut_cancels = 0;
    for (int i = 0; i < S_SESSIONS; i++) {
        s_session_t *session = &s_sessions[i];
        char path[200];
        snprintf (path, sizeof path, "/api/sessions/%.64s/export?format=json", session->id);
        svc_response_t response;
        assert_int_equal (svc_http (s_mesh, "GET", path, s_token, NULL, &response), 0);
        assert_int_equal (response.status, 200);
        json_t *messages = json_object_get (json_object_get (response.json, "session"), "messages");
        json_t *answer = NULL;
        for (size_t k = 0; k < json_array_size (messages) && !answer; k++)
            if (strcmp (st_str (json_array_get (messages, k), "message_id"), session->answer_id)
                == 0)
                answer = json_array_get (messages, k);
        assert_non_null (answer);
        json_t *versions = json_object_get (answer, "versions");
        //  Every version is a prefix of its creator's answer.
        for (size_t v = 0; v < json_array_size (versions); v++) {
            const char *content = st_str (json_array_get (versions, v), "content");
            if (!s_creator_of (session, content, false)) {
                foreign++;
                fprintf (stderr, "chaos_gen: %s version %zu is no task's answer: '%.60s...'\n",
                         session->answer_id, v + 1, content);
            }
        }
        //  A completed creator's answer is there, whole; a completed
        //  continue's version is a whole answer.
        for (int t = 0; t < session->task_count; t++) {
            s_task_t *task = &session->tasks[t];
            if (!task->completed)
                continue;
            bool kept = false;
            if (task->version_index) {
                const char *content = st_str (
                    json_array_get (versions, (size_t) task->version_index - 1), "content");
                kept = content && s_creator_of (session, content, true);
            }
            for (int c = 0; !task->version_index && c < session->creator_count; c++)
                if (strcmp (session->creators[c].id, task->id) == 0)
                    for (size_t v = 0; v < json_array_size (versions) && !kept; v++)
                        kept = strcmp (st_str (json_array_get (versions, v), "content"),
                                       session->creators[c].expect)
                               == 0;
            if (!kept) {
                lost++;
                fprintf (stderr, "chaos_gen: completed task %s (version %ld) is not in %s\n",
                         task->id, task->version_index, session->answer_id);
            }
        }
        //  A cancel kept what the reader had seen before it was sent.
        for (int c = 0; c < session->cancel_count; c++) {
            s_cancel_t *cancel = &session->cancels[c];
            if (!cancel->seen[0])
                continue;
            cancels_checked++;
            bool extended = false;
            for (size_t v = 0; v < json_array_size (versions) && !extended; v++)
                extended = s_starts_with (st_str (json_array_get (versions, v), "content"),
                                          cancel->seen);
            long error = st_find (session->reader, 0, "regeneration_error", cancel->task_id, 0);
            const char *kept = error >= 0
                                   ? st_str (svc_sse_at (session->reader, (size_t) error)->json,
                                             "content")
                                   : NULL;
            if (kept) {
                cancel_events++;
                extended = extended && s_starts_with (kept, cancel->seen)
                           && s_creator_of (session, kept, false);
            }
            if (!extended) {
                cut_cancels++;
                fprintf (stderr, "chaos_gen: cancel of %s lost seen text '%.60s...' (kept '%.60s')\n",
                         cancel->task_id, cancel->seen, kept ? kept : "?");
            }
        }
        svc_response_free (&response);
    }
    print_message ("chaos_gen: %d s, kills store=%d regenerator=%d, actions cancel=%d "
                   "continue=%d regenerate=%d (acknowledged %d/%d/%d), %d retried requests\n",
                   seconds, atomic_load (&s_kills[0]), atomic_load (&s_kills[1]), s_actions[0],
                   s_actions[1], s_actions[2], s_acked[0], s_acked[1], s_acked[2], s_retried);
    print_message ("chaos_gen: tasks %d (completed %d, stuck %d); cancels with seen text %d "
                   "(%d with their event)\n",
                   tasks, completed, stuck, cancels_checked, cancel_events);
    assert_int_equal (stuck, 0);
    assert_int_equal (lost, 0);
    assert_int_equal (foreign, 0);
    assert_int_equal (cut_cancels, 0);
    //  The run exercised what it claims to.
    assert_true (atomic_load (&s_kills[0]) >= 1 && atomic_load (&s_kills[1]) >= 1);
    assert_true (s_acked[0] > 0 && s_acked[1] > 0 && s_acked[2] > 0);
    assert_true (cancels_checked > 0);
    for (int i = 0; i < S_SESSIONS; i++) {
        svc_sse_close (&s_sessions[i].reader);
        for (int c = 0; c < s_sessions[i].creator_count; c++)
            free (s_sessions[i].creators[c].expect);
        for (int c = 0; c < s_sessions[i].cancel_count; c++)
            free (s_sessions[i].cancels[c].seen);
    }
    free (s_token);
    svc_mesh_stop (&s_mesh);
}

int
main (void)
{
    signal (SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_stop_and_continue_under_kill9),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
