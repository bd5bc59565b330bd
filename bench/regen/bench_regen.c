/*  bench_regen: time from POST regenerate to the first regeneration_progress
    and to message_regenerated, builtin backend at unlimited pace, for 1 and
    for C concurrent regenerations (default 50), read off one SSE stream.

    Also reports when message_regenerating arrived (claim latency).

    Then the cancel case (issue 16), on a second mesh whose builtin
    generator streams at 50 tokens/s (a model's pace, so there is a running
    answer to stop): N times (default 100) regenerate an answer, wait for
    its first text, cancel it, and time from the cancel's 200 to the
    terminal regeneration_error "cancelled" on the stream and to the
    worker stopping (its "task ID: cancelled, stopping" line appearing in
    the regenerator's log, polled every millisecond). Target: p99 <= 1 s.
    Needs CHATMESH_BIN_DIR=<build dir>.

    Usage: bench_regen [--concurrent C] [--rounds R] [--thoughts on|off]
                       [--cancels N] (0: no cancel case)                 */
#include "svc_harness.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int
s_cmp (const void *a, const void *b)
{
    double x = *(const double *) a, y = *(const double *) b;
    return x < y ? -1 : x > y;
}

static double
s_pct (double *v, size_t n, double p)
{
    qsort (v, n, sizeof (double), s_cmp);
    return n ? v[(size_t) (p * (double) (n - 1) + 0.5)] : 0;
}

typedef struct {
    char message_id[400];
    char task_id[80];
    double sent_ms, claimed_ms, first_ms, done_ms;
} s_run_t;

static int s_wait_done (svc_sse_t *sse, s_run_t *runs, int count);

//  Regenerates `count` assistant messages at once; fills first/done times.
static int
s_round (svc_mesh_t *mesh, const char *token, svc_sse_t *sse, s_run_t *runs, int count)
{
    for (int i = 0; i < count; i++) {
        char path[600];
        snprintf (path, sizeof path, "/api/messages/%s/regenerate", runs[i].message_id);
        runs[i].sent_ms = svc_now_ms ();
        runs[i].claimed_ms = runs[i].first_ms = runs[i].done_ms = 0;
        svc_response_t response;
        svc_http (mesh, "POST", path, token, "{}", &response);
        if (response.status != 200) {
            fprintf (stderr, "bench_regen: regenerate answered %ld: %s\n", response.status,
                     response.body);
            svc_response_free (&response);
            return -1;
        }
        snprintf (runs[i].task_id, sizeof runs[i].task_id, "%s",
                  json_string_value (
                      json_object_get (json_object_get (response.json, "data"), "task_id")));
        svc_response_free (&response);
    }
    return s_wait_done (sse, runs, count);
}

//  Reads the stream until every run's task ended; fills first/done times.
static int
s_wait_done (svc_sse_t *sse, s_run_t *runs, int count)
{
    int done = 0;
    while (done < count) {
        const svc_event_t *event = svc_sse_wait (sse, NULL, 30000);
        if (!event) {
            fprintf (stderr, "bench_regen: %d of %d regenerations did not finish in 30 s\n",
                     count - done, count);
            return -1;
        }
        const char *task = json_string_value (json_object_get (event->json, "taskId"));
        for (int i = 0; task && i < count; i++) {
            if (strcmp (task, runs[i].task_id))
                continue;
            if (!runs[i].claimed_ms && strcmp (event->event, "message_regenerating") == 0)
                runs[i].claimed_ms = event->received_ms;
            if (!runs[i].first_ms && strcmp (event->event, "regeneration_progress") == 0)
                runs[i].first_ms = event->received_ms;
            if (!runs[i].done_ms
                && (strcmp (event->event, "message_regenerated") == 0
                    || strcmp (event->event, "regeneration_error") == 0)) {
                if (strcmp (event->event, "regeneration_error") == 0)
                    fprintf (stderr, "bench_regen: task failed: %s\n", event->data);
                runs[i].done_ms = event->received_ms;
                done++;
            }
        }
    }
    return 0;
}

static void
s_report (const char *label, s_run_t *runs, int count)
{
    double *first = calloc ((size_t) count, sizeof (double));
    double *done = calloc ((size_t) count, sizeof (double));
    double *claimed = calloc ((size_t) count, sizeof (double));
    for (int i = 0; i < count; i++) {
        claimed[i] = runs[i].claimed_ms - runs[i].sent_ms;
        first[i] = runs[i].first_ms - runs[i].sent_ms;
        done[i] = runs[i].done_ms - runs[i].sent_ms;
    }
    printf ("%s n=%d regenerating_ms p50=%.2f p99=%.2f\n", label, count,
            s_pct (claimed, (size_t) count, 0.5), s_pct (claimed, (size_t) count, 0.99));
    printf ("%s n=%d first_progress_ms p50=%.2f p99=%.2f  regenerated_ms p50=%.2f p99=%.2f\n",
            label, count, s_pct (first, (size_t) count, 0.5), s_pct (first, (size_t) count, 0.99),
            s_pct (done, (size_t) count, 0.5), s_pct (done, (size_t) count, 0.99));
    free (claimed);
    free (first);
    free (done);
}

//  ---------------------------------------------------------------------------
//  Cancel latency

#define S_VERSIONS_PER_ANSWER 20 //  each stopped regeneration keeps a version (limit 100)

//  Index of the next event at or after *from of type for task_id, waiting
//  up to timeout_ms; -1 when none came. *from moves past it.
static long
s_find (svc_sse_t *sse, size_t *from, const char *type, const char *task_id, int timeout_ms)
{
    double deadline = svc_now_ms () + timeout_ms;
    while (true) {
        for (size_t count = svc_sse_count (sse); *from < count; (*from)++) {
            const svc_event_t *event = svc_sse_at (sse, *from);
            const char *task = json_string_value (json_object_get (event->json, "taskId"));
            if (strcmp (event->event, type) == 0 && task && strcmp (task, task_id) == 0)
                return (long) (*from)++;
        }
        double left = deadline - svc_now_ms ();
        if (left <= 0)
            return -1;
        svc_sse_wait (sse, NULL, left < 50 ? (int) left + 1 : 50);
    }
}

//  Polls the log at path, from byte *offset on, until a line holds needle.
//  Returns when it appeared (svc_now_ms clock), or -1 after timeout_ms.
static double
s_wait_log (const char *path, long *offset, const char *needle, int timeout_ms)
{
    char chunk[65536];
    for (double deadline = svc_now_ms () + timeout_ms; svc_now_ms () < deadline;) {
        FILE *file = fopen (path, "r");
        if (file && fseek (file, *offset, SEEK_SET) == 0) {
            //  Whole lines only: a line being written is read next time.
            while (fgets (chunk, sizeof chunk, file) && strchr (chunk, '\n')) {
                *offset += (long) strlen (chunk);
                if (strstr (chunk, needle)) {
                    fclose (file);
                    return svc_now_ms ();
                }
            }
        }
        if (file)
            fclose (file);
        usleep (1000);
    }
    return -1;
}

static int
s_cancel_case (int cancels)
{
    const char *env[] = {"CHATMESH_BUILTIN_TOKENS_PER_SEC=50", "CHAT_ACTIONS_RATE_LIMIT=0",
                         "CHAT_REGENERATION_RATE_LIMIT=0", "CHATMESH_LOG_LEVEL=info",
                         "CHAT_ACTIONS_ENABLE_THOUGHT_PROCESS=false", NULL};
    svc_mesh_t *mesh = svc_mesh_start (env);
    if (!mesh)
        return 1;
    char *token = svc_token (mesh, "bench_cancel", 3600);
    int answers = (cancels + S_VERSIONS_PER_ANSWER - 1) / S_VERSIONS_PER_ANSWER;
    char (*message_ids)[400] = calloc ((size_t) answers, sizeof *message_ids);
    char answer_task[80] = "";
    svc_sse_t *sse = NULL;
    size_t from = 0;
    int rc = 1;
    for (int i = 0; i < answers; i++) {
        svc_response_t response;
        char body[128];
        snprintf (body, sizeof body, "{\"query\": \"question %d about caching\"}", i);
        svc_http (mesh, "POST", "/api/run_sse/bench_cancel", token, body, &response);
        json_t *data = json_object_get (response.json, "data");
        if (response.status != 200) {
            fprintf (stderr, "bench_regen: run_sse answered %ld\n", response.status);
            svc_response_free (&response);
            goto done;
        }
        snprintf (message_ids[i], sizeof message_ids[i], "%s",
                  json_string_value (json_object_get (data, "assistant_message_id")));
        snprintf (answer_task, sizeof answer_task, "%s",
                  json_string_value (json_object_get (data, "task_id")));
        svc_response_free (&response);
        if (!sse)
            sse = svc_sse_open (mesh, "/api/run_sse/bench_cancel", token, NULL);
        //  The stream opened after the first answer may have missed its end.
        char status_path[200];
        snprintf (status_path, sizeof status_path, "/api/messages/tasks/%s/status", answer_task);
        for (double until = svc_now_ms () + 60000;;) {
            svc_http (mesh, "GET", status_path, token, NULL, &response);
            const char *status = json_string_value (json_object_get (response.json, "status"));
            bool ended = status && (strcmp (status, "completed") == 0
                                    || strcmp (status, "failed") == 0);
            svc_response_free (&response);
            if (ended)
                break;
            if (svc_now_ms () > until) {
                fprintf (stderr, "bench_regen: answer %d did not end\n", i);
                goto done;
            }
            usleep (20 * 1000);
        }
    }
    if (!sse)
        goto done;
    char log_path[600];
    snprintf (log_path, sizeof log_path, "%s/log/regenerator.log", svc_mesh_dir (mesh));
    long log_offset = 0;
    double *to_event = calloc ((size_t) cancels, sizeof (double));
    double *to_stop = calloc ((size_t) cancels, sizeof (double));
    int measured = 0;
    for (; measured < cancels; measured++) {
        char path[600];
        snprintf (path, sizeof path, "/api/messages/%s/regenerate",
                  message_ids[measured / S_VERSIONS_PER_ANSWER]);
        svc_response_t response;
        svc_http (mesh, "POST", path, token, "{}", &response);
        const char *task = json_string_value (
            json_object_get (json_object_get (response.json, "data"), "task_id"));
        char task_id[80];
        snprintf (task_id, sizeof task_id, "%s", task ? task : "");
        long status = response.status;
        svc_response_free (&response);
        if (status != 200) {
            fprintf (stderr, "bench_regen: regenerate answered %ld\n", status);
            break;
        }
        //  Running, with text streamed: what a user stops.
        bool text = false;
        while (!text) {
            long i = s_find (sse, &from, "regeneration_progress", task_id, 10000);
            if (i < 0)
                break;
            const char *partial = json_string_value (
                json_object_get (svc_sse_at (sse, (size_t) i)->json, "partialContent"));
            text = partial && *partial;
        }
        if (!text) {
            fprintf (stderr, "bench_regen: %s streamed no text\n", task_id);
            break;
        }
        snprintf (path, sizeof path, "/api/messages/tasks/%s/cancel", task_id);
        svc_http (mesh, "POST", path, token, NULL, &response);
        double acknowledged = svc_now_ms ();
        status = response.status;
        svc_response_free (&response);
        if (status != 200) {
            fprintf (stderr, "bench_regen: cancel answered %ld (the answer ended first?)\n",
                     status);
            break;
        }
        long error = s_find (sse, &from, "regeneration_error", task_id, 10000);
        char needle[120];
        snprintf (needle, sizeof needle, "task %s: cancelled, stopping", task_id);
        double stopped = s_wait_log (log_path, &log_offset, needle, 10000);
        if (error < 0 || stopped < 0) {
            fprintf (stderr, "bench_regen: %s: no %s within 10 s\n", task_id,
                     error < 0 ? "regeneration_error" : "worker stop");
            break;
        }
        to_event[measured] = svc_sse_at (sse, (size_t) error)->received_ms - acknowledged;
        to_stop[measured] = stopped - acknowledged;
    }
    if (measured == cancels) {
        double event_p99 = s_pct (to_event, (size_t) cancels, 0.99);
        double stop_p99 = s_pct (to_stop, (size_t) cancels, 0.99);
        printf ("cancel n=%d (builtin 50 tokens/s) 200->cancelled_event_ms p50=%.2f p99=%.2f "
                "max=%.2f\n",
                cancels, s_pct (to_event, (size_t) cancels, 0.5), event_p99,
                to_event[cancels - 1]);
        printf ("cancel n=%d (builtin 50 tokens/s) 200->worker_stopped_ms p50=%.2f p99=%.2f "
                "max=%.2f\n",
                cancels, s_pct (to_stop, (size_t) cancels, 0.5), stop_p99, to_stop[cancels - 1]);
        printf ("cancel target p99 <= 1000 ms: %s\n",
                event_p99 <= 1000 && stop_p99 <= 1000 ? "met" : "NOT met");
        rc = 0;
    }
    free (to_event);
    free (to_stop);
done:
    svc_sse_close (&sse);
    free (message_ids);
    free (token);
    svc_mesh_stop (&mesh);
    return rc;
}

int
main (int argc, char **argv)
{
    int concurrent = 50, rounds = 20, cancels = 100;
    const char *thoughts = "CHAT_ACTIONS_ENABLE_THOUGHT_PROCESS=true";
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp (argv[i], "--concurrent") == 0)
            concurrent = atoi (argv[i + 1]);
        else if (strcmp (argv[i], "--rounds") == 0)
            rounds = atoi (argv[i + 1]);
        else if (strcmp (argv[i], "--cancels") == 0)
            cancels = atoi (argv[i + 1]);
        else if (strcmp (argv[i], "--thoughts") == 0 && strcmp (argv[i + 1], "off") == 0)
            thoughts = "CHAT_ACTIONS_ENABLE_THOUGHT_PROCESS=false";
    }
    if (concurrent < 1 || rounds < 1 || cancels < 0) {
        fprintf (stderr, "usage: bench_regen [--concurrent C] [--rounds R] [--thoughts on|off] "
                         "[--cancels N]\n");
        return 2;
    }
    printf ("builtin backend, unlimited pace, %s\n", thoughts);
    const char *env[] = {"CHATMESH_BUILTIN_TOKENS_PER_SEC=0", "CHAT_ACTIONS_RATE_LIMIT=0",
                         "CHAT_REGENERATION_RATE_LIMIT=0", "CHATMESH_LOG_LEVEL=warning",
                         thoughts, NULL};
    svc_mesh_t *mesh = svc_mesh_start (env);
    if (!mesh)
        return 1;
    char *token = svc_token (mesh, "bench", 3600);
    //  The stream needs the session to exist: the first question creates it.
    svc_response_t first;
    svc_http (mesh, "POST", "/api/run_sse/bench_regen", token, "{\"query\": \"warm up\"}",
              &first);
    svc_response_free (&first);
    svc_sse_t *sse = svc_sse_open (mesh, "/api/run_sse/bench_regen", token, NULL);
    if (!sse)
        return 1;
    s_run_t *runs = calloc ((size_t) concurrent, sizeof *runs);
    //  One session with `concurrent` question/answer pairs; wait for the
    //  first answers so regenerations do not conflict with them.
    for (int i = 0; i < concurrent; i++) {
        svc_response_t response;
        char body[128];
        snprintf (body, sizeof body, "{\"query\": \"question %d about caching\"}", i);
        svc_http (mesh, "POST", "/api/run_sse/bench_regen", token, body, &response);
        if (response.status != 200) {
            fprintf (stderr, "bench_regen: run_sse answered %ld\n", response.status);
            return 1;
        }
        json_t *data = json_object_get (response.json, "data");
        snprintf (runs[i].message_id, sizeof runs[i].message_id, "%s",
                  json_string_value (json_object_get (data, "assistant_message_id")));
        snprintf (runs[i].task_id, sizeof runs[i].task_id, "%s",
                  json_string_value (json_object_get (data, "task_id")));
        svc_response_free (&response);
    }
    //  Wait for exactly these answers (by task id, not by counting events).
    if (s_wait_done (sse, runs, concurrent)) {
        fprintf (stderr, "bench_regen: first answers did not complete\n");
        return 1;
    }
    s_run_t *single = calloc ((size_t) rounds, sizeof *single);
    for (int r = 0; r < rounds; r++) {
        single[r] = runs[0];
        if (s_round (mesh, token, sse, &single[r], 1))
            return 1;
    }
    s_report ("single", single, rounds);
    if (s_round (mesh, token, sse, runs, concurrent))
        return 1;
    s_report ("concurrent", runs, concurrent);
    svc_sse_close (&sse);
    free (token);
    svc_mesh_stop (&mesh);
    return cancels ? s_cancel_case (cancels) : 0;
}
