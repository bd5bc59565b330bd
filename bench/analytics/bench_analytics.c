/*  bench_analytics: how long admin_analytics takes once the store holds
    1,000,000 actions (issue 17's target: under 50 ms, because it reads
    the counters and never the actions).

    In one process, on a store in a temp dir (no fsync): 100 users own 10
    sessions each, one per model m0..m9, each answered by its model; then
    N votes (default 1,000,000) go round those answers in write batches of
    1000, spread over 30 days, each a real feedback_put with its audit
    entry and counters. Then the query over those days (31 UTC days: the
    first starts at 16:00) runs 20 times through
    st_ops_read (the reader's path, no sockets) and the median and worst
    are printed with the target.
    Usage: bench_analytics [dir (an empty one; default: a temp dir under
    ./, removed after)] [votes]                                           */
#include "cm_codec.h"
#include "cm_error.h"
#include "cm_log.h"
#include "cm_time.h"
#include "st_db.h"
#include "st_ops.h"

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define S_USERS 100
#define S_MODELS 10
#define S_DAYS 30
#define S_BATCH 1000
#define S_QUERIES 20
#define S_DAY_MS 86400000LL

static int
s_rm (const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void) sb, (void) flag, (void) ftw;
    return remove (path);
}

static cm_envelope_t *
s_req (cm_msg_t type, const char *user)
{
    cm_envelope_t *request = cm_envelope_new (type, "bench");
    if (user)
        cm_map_set_str (request->payload, "user", user);
    return request;
}

//  Runs requests as one write batch; every reply must be ok.
static int
s_write (st_ops_t *ops, cm_envelope_t **requests, size_t n, int64_t now, cm_envelope_t **replies)
{
    cm_value_t *events = NULL;
    int rc = st_ops_write_batch (ops, requests, n, now, replies, &events);
    cm_value_destroy (&events);
    for (size_t i = 0; rc == 0 && i < n; i++)
        if (replies[i]->type != CM_MSG_OK) {
            fprintf (stderr, "bench_analytics: a write failed: %s\n",
                     cm_map_str_or (replies[i]->payload, "message", "?"));
            rc = CM_EINVAL;
        }
    for (size_t i = 0; i < n; i++)
        cm_envelope_destroy (&requests[i]);
    return rc;
}

static int
s_cmp (const void *a, const void *b)
{
    double x = *(const double *) a, y = *(const double *) b;
    return x < y ? -1 : x > y;
}

int
main (int argc, char **argv)
{
    cm_log_init ("bench_analytics", CM_LOG_ERROR);
    char dir[512];
    if (argc > 1)
        snprintf (dir, sizeof dir, "%s", argv[1]);
    else {
        snprintf (dir, sizeof dir, "./bench_analytics_XXXXXX");
        if (!mkdtemp (dir))
            return 1;
    }
    long votes = argc > 2 ? atol (argv[2]) : 1000000;
    st_db_t *db = NULL;
    if (st_db_open (dir, 256u << 20, false, &db))
        return 1;
    st_ops_config_t config = {.lease_ms = 10000, .max_attempts = 3,
                              .retention_ms = 365LL * S_DAY_MS, .worker_live_ms = 30000};
    st_ops_t *ops = st_ops_new (db, &config);
    int64_t start = 1764000000000LL, now = start;
    static char answers[S_USERS * S_MODELS][400];
    cm_envelope_t *requests[S_BATCH], *replies[S_BATCH];
    int rc = 0;
    //  The sessions, then their answers (claim all, complete each).
    for (int u = 0; rc == 0 && u < S_USERS; u++) {
        for (int m = 0; m < S_MODELS; m++) {
            char user[32], session[32], model[8];
            snprintf (user, sizeof user, "user%d", u);
            snprintf (session, sizeof session, "s%d_%d", u, m);
            snprintf (model, sizeof model, "m%d", m);
            requests[m] = s_req (CM_MSG_SESSION_START, user);
            cm_map_set_str (requests[m]->payload, "session_id", session);
            cm_map_set_str (requests[m]->payload, "query", "a question");
            cm_map_set_str (requests[m]->payload, "model", model);
        }
        rc = s_write (ops, requests, S_MODELS, now, replies);
        for (int m = 0; m < S_MODELS; m++) {
            if (rc == 0)
                snprintf (answers[u * S_MODELS + m], sizeof answers[0], "%s",
                          cm_map_str_or (cm_map_get (replies[m]->payload, "data"),
                                         "assistant_message_id", ""));
            cm_envelope_destroy (&replies[m]);
        }
    }
    for (int t = 0; rc == 0 && t < S_USERS * S_MODELS / 100; t++) {
        requests[0] = s_req (CM_MSG_TASK_CLAIM, NULL);
        cm_map_set_str (requests[0]->payload, "worker", "w");
        cm_map_set_int (requests[0]->payload, "max", 100);
        rc = s_write (ops, requests, 1, now, replies);
        const cm_value_t *tasks = rc ? NULL : cm_map_get (replies[0]->payload, "tasks");
        size_t n = cm_value_len (tasks);
        for (size_t i = 0; i < n; i++) {
            const cm_value_t *task = cm_arr_at (tasks, i);
            requests[i] = s_req (CM_MSG_TASK_COMPLETE, NULL);
            cm_map_set_str (requests[i]->payload, "worker", "w");
            cm_map_set_str (requests[i]->payload, "task_id", cm_map_str_or (task, "task_id", ""));
            cm_map_set_str (requests[i]->payload, "content", "an answer");
            cm_map_set_str (requests[i]->payload, "model", cm_map_str_or (task, "model", ""));
        }
        cm_envelope_destroy (&replies[0]);
        if (rc == 0 && n)
            rc = s_write (ops, requests, n, now, replies);
        for (size_t i = 0; i < n; i++)
            cm_envelope_destroy (&replies[i]);
    }
    //  The votes, S_BATCH per write batch, the days passing.
    int64_t began = cm_mono_ms ();
    for (long done = 0; rc == 0 && done < votes; done += S_BATCH) {
        size_t n = votes - done < S_BATCH ? (size_t) (votes - done) : S_BATCH;
        now = start + (int64_t) ((double) done / (double) votes * S_DAYS * S_DAY_MS);
        for (size_t i = 0; i < n; i++) {
            long k = done + (long) i;
            int u = (int) (k % S_USERS), m = (int) ((k / S_USERS) % S_MODELS);
            char user[32];
            snprintf (user, sizeof user, "user%d", u);
            requests[i] = s_req (CM_MSG_FEEDBACK_PUT, user);
            cm_map_set_str (requests[i]->payload, "message_id", answers[u * S_MODELS + m]);
            cm_map_set_str (requests[i]->payload, "feedback_type", k % 3 ? "upvote" : "downvote");
            if (k % 3 == 0)
                cm_map_set_str (requests[i]->payload, "reason", k % 2 ? "too long" : "wrong");
        }
        rc = s_write (ops, requests, n, now, replies);
        for (size_t i = 0; i < n; i++)
            cm_envelope_destroy (&replies[i]);
    }
    int64_t wrote = cm_mono_ms () - began;
    double ms[S_QUERIES];
    int64_t total = -1;
    for (int q = 0; rc == 0 && q < S_QUERIES; q++) {
        cm_envelope_t *query = s_req (CM_MSG_ADMIN_ANALYTICS, "root");
        cm_map_set_int (query->payload, "from", start);
        cm_map_set_int (query->payload, "to", now);
        cm_envelope_t *reply = NULL;
        int64_t t0 = cm_mono_us ();
        rc = st_ops_read (ops, query, now, &reply);
        ms[q] = (double) (cm_mono_us () - t0) / 1000.0;
        if (rc == 0 && reply && reply->type == CM_MSG_OK) {
            total = 0;
            const cm_value_t *models = cm_map_get (reply->payload, "models");
            for (size_t i = 0; i < cm_value_len (models); i++)
                total += cm_map_int (cm_arr_at (models, i), "upvotes", 0)
                         + cm_map_int (cm_arr_at (models, i), "downvotes", 0);
        }
        else
            rc = rc ? rc : CM_EINVAL;
        cm_envelope_destroy (&reply);
        cm_envelope_destroy (&query);
    }
    if (rc == 0) {
        qsort (ms, S_QUERIES, sizeof ms[0], s_cmp);
        printf ("bench_analytics: %ld votes written in %.1f s (%.0f/s); the query over those days counts "
                "%lld of them\n",
                votes, (double) wrote / 1000.0, (double) votes * 1000.0 / (double) (wrote ? wrote : 1),
                (long long) total);
        printf ("bench_analytics: query median %.2f ms, worst %.2f ms over %d runs (target < 50 "
                "ms): %s\n",
                ms[S_QUERIES / 2], ms[S_QUERIES - 1], S_QUERIES,
                ms[S_QUERIES / 2] < 50.0 && total == votes ? "ok" : "MISSED");
    }
    st_ops_destroy (&ops);
    st_db_destroy (&db);
    if (argc <= 1)
        nftw (dir, s_rm, 16, FTW_DEPTH | FTW_PHYS);
    return rc ? 1 : 0;
}
