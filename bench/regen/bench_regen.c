/*  bench_regen: time from POST regenerate to the first regeneration_progress
    and to message_regenerated, builtin backend at unlimited pace, for 1 and
    for C concurrent regenerations (default 50), read off one SSE stream.

    Also reports when message_regenerating arrived (claim latency).
    Needs CHATMESH_BIN_DIR=<build dir>.

    Usage: bench_regen [--concurrent C] [--rounds R] [--thoughts on|off]  */
#include "svc_harness.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

int
main (int argc, char **argv)
{
    int concurrent = 50, rounds = 20;
    const char *thoughts = "CHAT_ACTIONS_ENABLE_THOUGHT_PROCESS=true";
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp (argv[i], "--concurrent") == 0)
            concurrent = atoi (argv[i + 1]);
        else if (strcmp (argv[i], "--rounds") == 0)
            rounds = atoi (argv[i + 1]);
        else if (strcmp (argv[i], "--thoughts") == 0 && strcmp (argv[i + 1], "off") == 0)
            thoughts = "CHAT_ACTIONS_ENABLE_THOUGHT_PROCESS=false";
    }
    if (concurrent < 1 || rounds < 1) {
        fprintf (stderr, "usage: bench_regen [--concurrent C] [--rounds R] [--thoughts on|off]\n");
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
    return 0;
}
