/*  svc_regen: regeneration through the real four binaries, read off the
    SSE stream: per-task event order, thought events on and off, progress
    throttling, the stored result, edit-triggered regeneration, the first
    answer of run_sse, cancellation, the per-task time limit, and kill -9
    of a regenerator (with a second one running, and restarted alone).   */
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
#include <unistd.h>

//  Every mesh: no rate limits (the tests regenerate a lot), plus extras.
static svc_mesh_t *
s_mesh (const char *a, const char *b, const char *c, const char *d)
{
    const char *env[] = {"CHAT_ACTIONS_RATE_LIMIT=0", "CHAT_REGENERATION_RATE_LIMIT=0", a, b, c,
                         d, NULL};
    svc_mesh_t *mesh = svc_mesh_start (env);
    assert_non_null (mesh);
    return mesh;
}

static const char *
s_str (json_t *object, const char *key)
{
    return json_string_value (json_object_get (object, key));
}

//  One JSON request that must answer 200; returns the parsed body (caller
//  decrefs).
static json_t *
s_call (svc_mesh_t *mesh, const char *token, const char *method, const char *path,
        const char *body)
{
    svc_response_t response;
    assert_int_equal (svc_http (mesh, method, path, token, body, &response), 0);
    if (response.status != 200)
        fprintf (stderr, "%s %s: %ld %s\n", method, path, response.status, response.body);
    assert_int_equal (response.status, 200);
    json_t *json = json_incref (response.json);
    assert_non_null (json);
    svc_response_free (&response);
    return json;
}

typedef struct {
    char user_id[400];
    char assistant_id[400];
    char task_id[80];
} s_turn_t;

static s_turn_t
s_ask (svc_mesh_t *mesh, const char *token, const char *session, const char *query)
{
    char path[300], body[600];
    snprintf (path, sizeof path, "/api/run_sse/%s", session);
    snprintf (body, sizeof body, "{\"query\": \"%s\"}", query);
    json_t *json = s_call (mesh, token, "POST", path, body);
    json_t *data = json_object_get (json, "data");
    s_turn_t turn;
    snprintf (turn.user_id, sizeof turn.user_id, "%s", s_str (data, "user_message_id"));
    snprintf (turn.assistant_id, sizeof turn.assistant_id, "%s",
              s_str (data, "assistant_message_id"));
    snprintf (turn.task_id, sizeof turn.task_id, "%s", s_str (data, "task_id"));
    json_decref (json);
    return turn;
}

static char *
s_regenerate (svc_mesh_t *mesh, const char *token, const char *message_id)
{
    char path[600];
    snprintf (path, sizeof path, "/api/messages/%s/regenerate", message_id);
    json_t *json = s_call (mesh, token, "POST", path, "{}");
    char *task_id = strdup (s_str (json_object_get (json, "data"), "task_id"));
    json_decref (json);
    return task_id;
}

//  Edits a user message to content (a plain sentence: no JSON escaping)
//  with trigger_regeneration; returns the regeneration's task id, and the
//  new branch's answer (the message it writes) into answer_id (300 bytes).
static char *
s_edit (svc_mesh_t *mesh, const char *token, const char *message_id, const char *content,
        char *answer_id)
{
    char path[600], body[600];
    snprintf (path, sizeof path, "/api/messages/%s", message_id);
    snprintf (body, sizeof body, "{\"content\": \"%s\", \"trigger_regeneration\": true}",
              content);
    json_t *json = s_call (mesh, token, "PUT", path, body);
    json_t *data = json_object_get (json, "data");
    assert_true (json_is_true (json_object_get (data, "triggered_regeneration")));
    char *task_id = strdup (s_str (data, "regeneration_task_id"));
    snprintf (answer_id, 300, "%s", s_str (data, "assistant_message_id"));
    json_decref (json);
    return task_id;
}

//  status of a task into buffer; the whole reply when wanted.
static void
s_status (svc_mesh_t *mesh, const char *token, const char *task_id, char *status, size_t size,
          char *error, size_t error_size)
{
    char path[200];
    snprintf (path, sizeof path, "/api/messages/tasks/%s/status", task_id);
    json_t *json = s_call (mesh, token, "GET", path, NULL);
    snprintf (status, size, "%s", s_str (json, "status") ? s_str (json, "status") : "?");
    if (error)
        snprintf (error, error_size, "%s",
                  s_str (json, "error_message") ? s_str (json, "error_message") : "");
    json_decref (json);
}

static bool
s_terminal (const char *status)
{
    return strcmp (status, "completed") == 0 || strcmp (status, "failed") == 0;
}

//  Polls the task's status until it ended. 0, or -1 after timeout_ms.
static int
s_wait_task (svc_mesh_t *mesh, const char *token, const char *task_id, int timeout_ms)
{
    double deadline = svc_now_ms () + timeout_ms;
    char status[32];
    do {
        s_status (mesh, token, task_id, status, sizeof status, NULL, 0);
        if (s_terminal (status))
            return 0;
        usleep (20 * 1000);
    } while (svc_now_ms () < deadline);
    return -1;
}

//  Index of the first event at or after `from` of `type` (NULL: any) for
//  task_id (NULL: any), waiting up to timeout_ms. -1 when none came.
static long
s_find (svc_sse_t *sse, size_t from, const char *type, const char *task_id, int timeout_ms)
{
    double deadline = svc_now_ms () + timeout_ms;
    size_t i = from;
    while (true) {
        for (size_t count = svc_sse_count (sse); i < count; i++) {
            const svc_event_t *event = svc_sse_at (sse, i);
            const char *task = event->json ? s_str (event->json, "taskId") : NULL;
            if ((!type || strcmp (event->event, type) == 0)
                && (!task_id || (task && strcmp (task, task_id) == 0)))
                return (long) i;
        }
        double left = deadline - svc_now_ms ();
        if (left <= 0)
            return -1;
        svc_sse_wait (sse, NULL, left < 100 ? (int) left + 1 : 100);
    }
}

//  "<epoch>-<seq>" strictly increasing over the whole stream.
static void
s_check_ids (svc_sse_t *sse)
{
    long long last_epoch = -1, last_seq = -1;
    for (size_t i = 0; i < svc_sse_count (sse); i++) {
        const svc_event_t *event = svc_sse_at (sse, i);
        if (!event->id[0])
            continue;
        long long epoch, seq;
        assert_int_equal (sscanf (event->id, "%lld-%lld", &epoch, &seq), 2);
        assert_true (epoch > last_epoch || (epoch == last_epoch && seq > last_seq));
        last_epoch = epoch;
        last_seq = seq;
    }
}

typedef struct {
    int progress;        //  regeneration_progress events (the 100% one included)
    int thoughts;        //  thought_process_* events
    double started_ms;   //  message_regenerating received
    double ended_ms;     //  the terminal event received
    char content[16384]; //  message_regenerated's content
    char message_id[400];
    char about[512];     //  thought_process_start's thinkingAbout
    char steps[8][512];  //  the first steps' reasoning
    int step_count;
    char conclusion[512];
} s_seen_t;

static bool
s_is_prefix (const char *prefix, const char *text)
{
    return strncmp (prefix, text, strlen (prefix)) == 0;
}

//  Waits for the task's message_regenerated, then checks the order of all
//  its events: message_regenerating < (progress | thought)* < exactly one
//  message_regenerated, progress non-decreasing, partialContent a growing
//  prefix of the final text, thought events start < step* < complete.
static void
s_check_task (svc_sse_t *sse, const char *task_id, int timeout_ms, s_seen_t *seen)
{
    memset (seen, 0, sizeof *seen);
    long end = s_find (sse, 0, "message_regenerated", task_id, timeout_ms);
    if (end < 0)
        fprintf (stderr, "no message_regenerated for %s\n", task_id);
    assert_true (end >= 0);
    const svc_event_t *final = svc_sse_at (sse, (size_t) end);
    snprintf (seen->content, sizeof seen->content, "%s", s_str (final->json, "content"));
    snprintf (seen->message_id, sizeof seen->message_id, "%s", s_str (final->json, "messageId"));
    seen->ended_ms = final->received_ms;
    bool started = false, regenerated = false, thinking = false, thought_done = false;
    long long last_progress = -1;
    size_t last_len = 0;
    //  Read a moment past the end too: nothing for this task may follow.
    s_find (sse, (size_t) end + 1, "never", NULL, 200);
    for (size_t i = 0; i < svc_sse_count (sse); i++) {
        const svc_event_t *event = svc_sse_at (sse, i);
        const char *task = event->json ? s_str (event->json, "taskId") : NULL;
        if (!task || strcmp (task, task_id) != 0)
            continue;
        const char *type = event->event;
        assert_false (regenerated); //  nothing after message_regenerated
        assert_string_not_equal (type, "regeneration_error");
        assert_string_equal (s_str (event->json, "messageId"), seen->message_id);
        if (strcmp (type, "message_regenerating") == 0) {
            assert_false (started);
            started = true;
            seen->started_ms = event->received_ms;
            continue;
        }
        assert_true (started);
        if (strcmp (type, "regeneration_progress") == 0) {
            long long progress = json_integer_value (json_object_get (event->json, "progress"));
            const char *partial = s_str (event->json, "partialContent");
            assert_non_null (partial);
            assert_true (progress >= last_progress && progress <= 100);
            assert_true (strlen (partial) >= last_len);
            assert_true (s_is_prefix (partial, seen->content));
            last_progress = progress;
            last_len = strlen (partial);
            seen->progress++;
        }
        else if (strcmp (type, "thought_process_start") == 0) {
            assert_false (thinking || thought_done);
            assert_non_null (s_str (event->json, "thinkingAbout"));
            snprintf (seen->about, sizeof seen->about, "%s", s_str (event->json, "thinkingAbout"));
            thinking = true;
            seen->thoughts++;
        }
        else if (strcmp (type, "thought_process_step") == 0) {
            assert_true (thinking);
            assert_non_null (s_str (event->json, "reasoning"));
            //  Every step so far, in the shape task_status and the session
            //  show (checked below): [{step, reasoning}], the first 8.
            json_t *so_far = json_object_get (event->json, "steps");
            size_t held = seen->step_count < 8 ? (size_t) seen->step_count + 1 : 8;
            assert_int_equal (json_array_size (so_far), held);
            json_t *last = json_array_get (so_far, held - 1);
            if (seen->step_count < 8) {
                assert_string_equal (s_str (last, "reasoning"), s_str (event->json, "reasoning"));
                assert_int_equal (json_integer_value (json_object_get (last, "step")),
                                  json_integer_value (json_object_get (event->json, "step")));
            }
            if (seen->step_count < 8)
                snprintf (seen->steps[seen->step_count], sizeof seen->steps[0], "%s",
                          s_str (event->json, "reasoning"));
            seen->step_count++;
            seen->thoughts++;
        }
        else if (strcmp (type, "thought_process_complete") == 0) {
            assert_true (thinking);
            assert_non_null (s_str (event->json, "conclusion"));
            snprintf (seen->conclusion, sizeof seen->conclusion, "%s",
                      s_str (event->json, "conclusion"));
            thinking = false;
            thought_done = true;
            seen->thoughts++;
        }
        else if (strcmp (type, "message_regenerated") == 0)
            regenerated = true;
        else
            fail_msg ("unexpected event %s for task %s", type, task_id);
    }
    assert_true (started && regenerated);
    assert_false (thinking);
    assert_int_equal (last_progress, 100);
}

//  The stored message (GET /api/sessions/{id}); caller decrefs.
static json_t *
s_stored (svc_mesh_t *mesh, const char *token, const char *session, const char *message_id)
{
    char path[300];
    snprintf (path, sizeof path, "/api/sessions/%s", session);
    json_t *json = s_call (mesh, token, "GET", path, NULL);
    json_t *messages = json_object_get (json_object_get (json, "session"), "messages");
    json_t *found = NULL;
    for (size_t i = 0; i < json_array_size (messages); i++)
        if (strcmp (s_str (json_array_get (messages, i), "id"), message_id) == 0)
            found = json_incref (json_array_get (messages, i));
    json_decref (json);
    assert_non_null (found);
    return found;
}

//  The stored message's thought process is the one streamed (the builtin
//  generator's texts are short: nothing is cut), or absent without one.
static void
s_check_stored_thoughts (const json_t *message, const s_seen_t *seen)
{
    json_t *thoughts = json_object_get (json_object_get (message, "metadata"), "thought_process");
    if (seen->thoughts == 0) {
        assert_null (thoughts);
        return;
    }
    assert_non_null (thoughts);
    assert_string_equal (s_str (thoughts, "thinkingAbout"), seen->about);
    assert_string_equal (s_str (thoughts, "conclusion"), seen->conclusion);
    json_t *steps = json_object_get (thoughts, "steps");
    assert_int_equal (json_array_size (steps), seen->step_count);
    for (int i = 0; i < seen->step_count && i < 8; i++) {
        json_t *step = json_array_get (steps, (size_t) i);
        assert_int_equal (json_integer_value (json_object_get (step, "step")), i + 1);
        assert_string_equal (s_str (step, "reasoning"), seen->steps[i]);
    }
}

//  A session whose first question was asked and answered, and its event
//  stream opened after that (the answer's events are not in it).
static svc_sse_t *
s_answered (svc_mesh_t *mesh, const char *token, const char *session, const char *query,
            s_turn_t *turn)
{
    *turn = s_ask (mesh, token, session, query);
    assert_int_equal (s_wait_task (mesh, token, turn->task_id, 20000), 0);
    char path[300];
    snprintf (path, sizeof path, "/api/run_sse/%s", session);
    svc_sse_t *sse = svc_sse_open (mesh, path, token, NULL);
    assert_non_null (sse);
    return sse;
}

//  --------------------------------------------------------------------------

//  Thoughts on: run_sse's answer and a regeneration, each in order, stored
//  as streamed; then an edit regenerates the next answer from the new text.
static void
test_order_thoughts_store_and_edit (void **state)
{
    (void) state;
    svc_mesh_t *mesh = s_mesh ("CHATMESH_BUILTIN_TOKENS_PER_SEC=400",
                               "CHAT_ACTIONS_ENABLE_THOUGHT_PROCESS=true", NULL, NULL);
    char *token = svc_token (mesh, "alice", 600);
    s_turn_t first;
    svc_sse_t *sse = s_answered (mesh, token, "regen_order", "How do I size a connection pool?",
                                 &first);

    //  The first answer of a run_sse question goes through the same stages.
    s_turn_t second = s_ask (mesh, token, "regen_order", "Which metrics show replication lag?");
    s_seen_t seen;
    s_check_task (sse, second.task_id, 20000, &seen);
    assert_string_equal (seen.message_id, second.assistant_id);
    assert_true (seen.thoughts >= 3);
    assert_true (seen.progress >= 2);
    assert_non_null (strstr (seen.content, "Which metrics show replication lag?"));
    json_t *message = s_stored (mesh, token, "regen_order", second.assistant_id);
    assert_string_equal (s_str (message, "content"), seen.content);
    s_check_stored_thoughts (message, &seen); //  a reload shows the thought process
    json_decref (message);

    //  A regeneration of that answer.
    char *task_id = s_regenerate (mesh, token, second.assistant_id);
    s_check_task (sse, task_id, 20000, &seen);
    assert_string_equal (seen.message_id, second.assistant_id);
    assert_true (seen.thoughts >= 3);
    message = s_stored (mesh, token, "regen_order", second.assistant_id);
    assert_string_equal (s_str (message, "content"), seen.content);
    json_t *meta = json_object_get (message, "metadata");
    assert_true (json_is_true (json_object_get (meta, "regenerated")));
    assert_false (json_is_true (json_object_get (meta, "regenerating")));
    assert_string_equal (s_str (meta, "model"), "builtin");
    s_check_stored_thoughts (message, &seen); //  the regeneration's replaced the answer's
    json_decref (message);
    free (task_id);

    //  Edit the first question: a new branch starts below it, with a new
    //  answer that restates the edited text.
    char edited_answer[300];
    char *edit_task = s_edit (mesh, token, first.user_id, "How does Raft elect a leader?",
                              edited_answer);
    s_check_task (sse, edit_task, 20000, &seen);
    assert_string_equal (seen.message_id, edited_answer);
    assert_string_not_equal (seen.message_id, first.assistant_id);
    assert_non_null (strstr (seen.content, "How does Raft elect a leader?"));
    assert_null (strstr (seen.content, "connection pool"));
    message = s_stored (mesh, token, "regen_order", edited_answer);
    assert_string_equal (s_str (message, "content"), seen.content);
    assert_true (json_is_true (json_object_get (json_object_get (message, "metadata"),
                                                "regenerated")));
    json_decref (message);
    free (edit_task);

    s_check_ids (sse);
    svc_sse_close (&sse);
    free (token);
    svc_mesh_stop (&mesh);
}

//  Thoughts off, a paced generation lasting about 2 s: no thought events,
//  progress about 10/s; then cancel a running one.
static void
test_throttle_no_thoughts_and_cancel (void **state)
{
    (void) state;
    svc_mesh_t *mesh = s_mesh ("CHATMESH_BUILTIN_TOKENS_PER_SEC=60",
                               "CHAT_ACTIONS_ENABLE_THOUGHT_PROCESS=false", NULL, NULL);
    char *token = svc_token (mesh, "bob", 600);
    s_turn_t turn = s_ask (mesh, token, "regen_pace", "What limits the throughput of a queue?");
    svc_sse_t *sse = svc_sse_open (mesh, "/api/run_sse/regen_pace", token, NULL);
    assert_non_null (sse);
    assert_int_equal (s_wait_task (mesh, token, turn.task_id, 20000), 0);

    char *task_id = s_regenerate (mesh, token, turn.assistant_id);
    s_seen_t seen;
    s_check_task (sse, task_id, 20000, &seen);
    assert_int_equal (seen.thoughts, 0);
    double took = seen.ended_ms - seen.started_ms;
    fprintf (stderr, "paced regeneration: %.0f ms, %d progress events\n", took, seen.progress);
    assert_true (took > 1000 && took < 6000);
    //  At most one per 100 ms, the first at once, plus the final 100%.
    assert_true (seen.progress <= (int) (took / 100) + 2);
    assert_true (seen.progress >= (int) (took / 200));
    json_t *message = s_stored (mesh, token, "regen_pace", turn.assistant_id);
    assert_string_equal (s_str (message, "content"), seen.content);
    s_check_stored_thoughts (message, &seen); //  none
    json_decref (message);
    free (task_id);

    //  Cancel a running regeneration: regeneration_error "cancelled"
    //  promptly, no progress for it afterwards, the task failed.
    task_id = s_regenerate (mesh, token, turn.assistant_id);
    long first = s_find (sse, 0, "regeneration_progress", task_id, 10000);
    assert_true (first >= 0);
    char path[200];
    snprintf (path, sizeof path, "/api/messages/tasks/%s/cancel", task_id);
    double asked = svc_now_ms ();
    json_decref (s_call (mesh, token, "POST", path, NULL));
    long error = s_find (sse, (size_t) first, "regeneration_error", task_id, 5000);
    assert_true (error >= 0);
    const svc_event_t *event = svc_sse_at (sse, (size_t) error);
    assert_string_equal (s_str (event->json, "error"), "cancelled");
    //  The 1 s target is bench/'s (p99 over 100 cancels); here only that
    //  it is prompt on a loaded machine, far from the answer's length.
    assert_true (event->received_ms - asked < 3000);
    //  The regenerator stops when the store refuses its next call; wait
    //  for it to say so, then for a later event of the same session: any
    //  stray progress would have been committed (and sent) before it.
    char log_path[400];
    snprintf (log_path, sizeof log_path, "%s/log/regenerator.log", svc_mesh_dir (mesh));
    bool stopped = false;
    for (double until = svc_now_ms () + 5000; !stopped && svc_now_ms () < until;) {
        char *log = svc_read_file (log_path);
        char needle[200];
        snprintf (needle, sizeof needle, "task %s: cancelled, stopping", task_id);
        stopped = log && strstr (log, needle);
        free (log);
        if (!stopped)
            usleep (20 * 1000);
    }
    assert_true (stopped);
    char vote[600];
    snprintf (vote, sizeof vote, "/api/messages/%s/feedback", turn.assistant_id);
    json_decref (s_call (mesh, token, "POST", vote, "{\"feedback_type\": \"upvote\"}"));
    long sentinel = s_find (sse, (size_t) error, "feedback_submitted", NULL, 5000);
    assert_true (sentinel > error);
    assert_int_equal (s_find (sse, (size_t) error + 1, "regeneration_progress", task_id, 0), -1);
    assert_int_equal (s_find (sse, (size_t) error + 1, "message_regenerated", task_id, 0), -1);
    char status[32], why[128];
    s_status (mesh, token, task_id, status, sizeof status, why, sizeof why);
    assert_string_equal (status, "failed");
    assert_string_equal (why, "cancelled");
    free (task_id);

    s_check_ids (sse);
    svc_sse_close (&sse);
    free (token);
    svc_mesh_stop (&mesh);
}

//  A generation slower than CHATMESH_TASK_TIMEOUT_MS fails with
//  regeneration_error "timed out".
static void
test_task_time_limit (void **state)
{
    (void) state;
    svc_mesh_t *mesh = s_mesh ("CHATMESH_BUILTIN_TOKENS_PER_SEC=20", "CHATMESH_TASK_TIMEOUT_MS=400",
                               "CHAT_ACTIONS_ENABLE_THOUGHT_PROCESS=false", NULL);
    char *token = svc_token (mesh, "carol", 600);
    s_turn_t turn = s_ask (mesh, token, "regen_slow", "Why is the build slow?");
    svc_sse_t *sse = svc_sse_open (mesh, "/api/run_sse/regen_slow", token, NULL);
    assert_non_null (sse);
    assert_int_equal (s_wait_task (mesh, token, turn.task_id, 10000), 0);
    char *task_id = s_regenerate (mesh, token, turn.assistant_id);
    long start = s_find (sse, 0, "message_regenerating", task_id, 5000);
    long error = s_find (sse, 0, "regeneration_error", task_id, 5000);
    assert_true (start >= 0 && error > start);
    assert_string_equal (s_str (svc_sse_at (sse, (size_t) error)->json, "error"), "timed out");
    double took = svc_sse_at (sse, (size_t) error)->received_ms
                  - svc_sse_at (sse, (size_t) start)->received_ms;
    assert_true (took >= 250 && took < 3000);
    assert_int_equal (s_find (sse, 0, "message_regenerated", task_id, 0), -1);
    char status[32], why[128];
    s_status (mesh, token, task_id, status, sizeof status, why, sizeof why);
    assert_string_equal (status, "failed");
    assert_string_equal (why, "timed out");
    free (task_id);
    svc_sse_close (&sse);
    free (token);
    svc_mesh_stop (&mesh);
}

#define CRASH_TASKS 20
#define LEASE_MS 2000

//  Waits until every task ended; counts those completed. -1 on timeout.
static int
s_wait_all (svc_mesh_t *mesh, const char *token, s_turn_t *turns, int count, int timeout_ms)
{
    double deadline = svc_now_ms () + timeout_ms;
    while (true) {
        int ended = 0, completed = 0;
        for (int i = 0; i < count; i++) {
            char status[32];
            s_status (mesh, token, turns[i].task_id, status, sizeof status, NULL, 0);
            ended += s_terminal (status);
            completed += strcmp (status, "completed") == 0;
        }
        if (ended == count)
            return completed;
        if (svc_now_ms () > deadline)
            return -1;
        usleep (50 * 1000);
    }
}

static int
s_count_status (svc_mesh_t *mesh, const char *token, s_turn_t *turns, int count,
                const char *wanted)
{
    int n = 0;
    for (int i = 0; i < count; i++) {
        char status[32];
        s_status (mesh, token, turns[i].task_id, status, sizeof status, NULL, 0);
        n += strcmp (status, wanted) == 0;
    }
    return n;
}

//  Every completed task's answer is stored whole (the builtin's answers
//  end with a conclusion, so a partial one would not).
static void
s_check_stored (svc_mesh_t *mesh, const char *token, s_turn_t *turns, const char **sessions,
                int count)
{
    for (int i = 0; i < count; i++) {
        char status[32];
        s_status (mesh, token, turns[i].task_id, status, sizeof status, NULL, 0);
        if (strcmp (status, "completed") != 0)
            continue;
        json_t *message = s_stored (mesh, token, sessions[i], turns[i].assistant_id);
        const char *content = s_str (message, "content");
        assert_non_null (strstr (content, "**Your question:**"));
        assert_non_null (strstr (content, "### Conclusion"));
        assert_false (json_is_true (
            json_object_get (json_object_get (message, "metadata"), "regenerating")));
        json_decref (message);
    }
}

static void
s_assert_log (svc_mesh_t *mesh, const char *name, const char *needle)
{
    char path[400];
    snprintf (path, sizeof path, "%s/log/%s", svc_mesh_dir (mesh), name);
    char *log = svc_read_file (path);
    assert_non_null (log);
    if (!strstr (log, needle))
        fprintf (stderr, "%s lacks \"%s\"\n", path, needle);
    assert_non_null (strstr (log, needle));
    free (log);
}

//  A page loaded in the middle of a generation: the session already shows
//  that generation's thought steps so far, so the frontend need not wait
//  for the next event (which the builtin generator may never send: its
//  thoughts come first, then the answer's tokens).
static void
test_running_thoughts_in_session (void **state)
{
    (void) state;
    svc_mesh_t *mesh = s_mesh ("CHATMESH_BUILTIN_TOKENS_PER_SEC=40",
                               "CHAT_ACTIONS_ENABLE_THOUGHT_PROCESS=true", NULL, NULL);
    char *token = svc_token (mesh, "erin", 600);
    s_turn_t turn;
    svc_sse_t *sse = s_answered (mesh, token, "regen_running", "Why do caches need eviction?",
                                 &turn);
    //  A new question, so the running thought process differs from the
    //  stored one of the first answer.
    char answer_id[300];
    char *task_id = s_edit (mesh, token, turn.user_id, "What makes a good shard key?", answer_id);
    long start = s_find (sse, 0, "thought_process_start", task_id, 20000);
    long step = s_find (sse, 0, "thought_process_step", task_id, 20000);
    assert_true (start >= 0 && step > start);
    const char *about = s_str (svc_sse_at (sse, (size_t) start)->json, "thinkingAbout");
    const char *reasoning = s_str (svc_sse_at (sse, (size_t) step)->json, "reasoning");
    //  The step was committed before its event went out.
    json_t *message = s_stored (mesh, token, "regen_running", answer_id);
    json_t *meta = json_object_get (message, "metadata");
    assert_true (json_is_true (json_object_get (meta, "regenerating")));
    json_t *thoughts = json_object_get (meta, "thought_process");
    assert_non_null (thoughts);
    assert_string_equal (s_str (thoughts, "thinkingAbout"), about);
    json_t *steps = json_object_get (thoughts, "steps");
    assert_true (json_array_size (steps) >= 1);
    assert_string_equal (s_str (json_array_get (steps, 0), "reasoning"), reasoning);
    json_decref (message);
    free (task_id);
    svc_sse_close (&sse);
    free (token);
    svc_mesh_stop (&mesh);
}

//  kill -9 a regenerator in the middle of 20 generations while a second
//  one runs: every task ends (none stays in_progress) within the lease,
//  and completed answers are stored whole. Then the restart variant.
static void
test_regenerator_crash (void **state)
{
    (void) state;
    svc_mesh_t *mesh = s_mesh ("CHATMESH_TASK_LEASE_MS=2000", "CHATMESH_REGEN_CONCURRENCY=4",
                               "CHATMESH_BUILTIN_TOKENS_PER_SEC=150",
                               "CHAT_ACTIONS_ENABLE_THOUGHT_PROCESS=false");
    int second = svc_mesh_spawn_extra (mesh, "regenerator", NULL);
    assert_true (second >= 0);
    char *token = svc_token (mesh, "dave", 600);
    s_turn_t turns[CRASH_TASKS + 6];
    char names[CRASH_TASKS + 6][32];
    const char *sessions[CRASH_TASKS + 6];
    for (int i = 0; i < CRASH_TASKS + 6; i++) {
        snprintf (names[i], sizeof names[i], "crash_%d", i);
        sessions[i] = names[i];
    }
    for (int i = 0; i < CRASH_TASKS; i++) {
        char query[100];
        snprintf (query, sizeof query, "Question %d about cache invalidation strategies", i);
        turns[i] = s_ask (mesh, token, sessions[i], query);
    }
    //  In the middle: some done, several running.
    double deadline = svc_now_ms () + 20000;
    while (s_count_status (mesh, token, turns, CRASH_TASKS, "completed") < 2
           || s_count_status (mesh, token, turns, CRASH_TASKS, "in_progress") < 3) {
        assert_true (svc_now_ms () < deadline);
        usleep (20 * 1000);
    }
    assert_int_equal (svc_mesh_kill (mesh, "regenerator", SIGKILL), 0);
    double killed = svc_now_ms ();
    int completed = s_wait_all (mesh, token, turns, CRASH_TASKS, 30000);
    double took = svc_now_ms () - killed;
    fprintf (stderr, "after kill -9: %d of %d completed, all ended in %.0f ms\n", completed,
             CRASH_TASKS, took);
    assert_true (completed >= 0);
    //  The killed one's tasks were taken over once their lease expired,
    //  not given up: with max attempts 3 they all complete.
    assert_int_equal (completed, CRASH_TASKS);
    assert_int_equal (s_count_status (mesh, token, turns, CRASH_TASKS, "in_progress"), 0);
    assert_true (took < LEASE_MS + 10000);
    s_check_stored (mesh, token, turns, sessions, CRASH_TASKS);
    //  The survivor did take over at least one task of the killed one.
    s_assert_log (mesh, "regenerator-2.log", "(attempt 2): completed");

    //  Restart variant: only one regenerator, killed and started again.
    for (int i = CRASH_TASKS; i < CRASH_TASKS + 6; i++)
        turns[i] = s_ask (mesh, token, sessions[i], "How do leases survive a crash?");
    deadline = svc_now_ms () + 20000;
    while (s_count_status (mesh, token, turns + CRASH_TASKS, 6, "in_progress") < 2) {
        assert_true (svc_now_ms () < deadline);
        usleep (20 * 1000);
    }
    assert_int_equal (svc_mesh_kill_extra (mesh, second, SIGKILL), 0);
    assert_int_equal (svc_mesh_spawn (mesh, "regenerator"), 0);
    killed = svc_now_ms ();
    completed = s_wait_all (mesh, token, turns + CRASH_TASKS, 6, 30000);
    fprintf (stderr, "after restart: %d of 6 completed in %.0f ms\n", completed,
             svc_now_ms () - killed);
    assert_int_equal (completed, 6);
    s_assert_log (mesh, "regenerator.log", "(attempt 2): completed");
    s_check_stored (mesh, token, turns + CRASH_TASKS, sessions + CRASH_TASKS, 6);
    free (token);
    svc_mesh_stop (&mesh);
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_order_thoughts_store_and_edit),
        cmocka_unit_test (test_throttle_no_thoughts_and_cancel),
        cmocka_unit_test (test_running_thoughts_in_session),
        cmocka_unit_test (test_task_time_limit),
        cmocka_unit_test (test_regenerator_crash),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
