/*  bench_pages: how many pages one group commit of votes writes, the
    durable write path's cost that the machine's load does not change.
    It runs the store's logic in-process (st_ops, no sockets, no fsync):
    S_SESSIONS sessions started, then BATCHES write batches of BATCH
    feedback_put each on random sessions' answers (fixed seed), as one
    commit each, the way the writer groups 64 clients' votes. LMDB writes
    every page a commit dirtied (and its meta page) with pwrite/writev, so
    the bytes this process passed to write calls (/proc/self/io wchar)
    over the vote batches, in 4096-byte pages per commit, is the count of
    dirty pages, the same on every run of a build. A commit's fsync time
    grows with it: compare builds by it when the machine is too loaded
    for bench_store's rates (docs/performance.md).
    Usage: bench_pages [batch (default 32, 1..256)] [batches (default 300)]
    The store goes in a temporary directory under ./, removed after. */
#include "cm_codec.h"
#include "cm_error.h"
#include "cm_log.h"
#include "st_db.h"
#include "st_ops.h"

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_SESSIONS 1024
#define S_BATCH_MAX 256
#define S_PAGE 4096

//  Bytes this process passed to write calls so far; -1 when unreadable.
static long long
s_written (void)
{
    FILE *io = fopen ("/proc/self/io", "r");
    if (!io)
        return -1;
    long long wchar = -1;
    char line[128];
    while (fgets (line, sizeof line, io))
        if (sscanf (line, "wchar: %lld", &wchar) == 1)
            break;
    fclose (io);
    return wchar;
}

static cm_envelope_t *
s_request (cm_msg_t type)
{
    cm_envelope_t *request = cm_envelope_new (type, "bench");
    cm_map_set_str (request->payload, "user", "bench");
    cm_map_set_str (request->payload, "ip", "127.0.0.1");
    cm_map_set_str (request->payload, "ua", "bench_pages");
    return request;
}

static int
s_rm (const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void) sb, (void) flag, (void) ftw;
    return remove (path);
}

//  Runs n requests as one commit and frees them; 0 or the batch's error.
static int
s_commit (st_ops_t *ops, cm_envelope_t **requests, size_t n, int64_t now,
          char (*answer_id)[CM_MESSAGE_ID_MAX + 1])
{
    cm_envelope_t *replies[S_BATCH_MAX] = {NULL};
    cm_value_t *events = NULL;
    int rc = st_ops_write_batch (ops, requests, n, now, replies, &events);
    for (size_t i = 0; i < n; i++) {
        if (rc == 0 && replies[i]->type != CM_MSG_OK)
            rc = (int) cm_map_int (replies[i]->payload, "code", CM_EINVAL);
        if (rc == 0 && answer_id)
            snprintf (answer_id[i], sizeof answer_id[i], "%s",
                      cm_map_str_or (cm_map_get (replies[i]->payload, "data"),
                                     "assistant_message_id", ""));
        cm_envelope_destroy (&replies[i]);
        cm_envelope_destroy (&requests[i]);
    }
    cm_value_destroy (&events);
    return rc;
}

int
main (int argc, char **argv)
{
    int batch = argc > 1 ? atoi (argv[1]) : 32;
    int batches = argc > 2 ? atoi (argv[2]) : 300;
    if (batch < 1 || batch > S_BATCH_MAX || batches < 1) {
        fprintf (stderr, "usage: bench_pages [batch 1..%d] [batches >= 1]\n", S_BATCH_MAX);
        return 2;
    }
    cm_log_init ("bench_pages", CM_LOG_ERROR);
    char dir[] = "./bench_pages_XXXXXX";
    if (!mkdtemp (dir)) {
        perror ("mkdtemp");
        return 1;
    }
    st_db_t *db = NULL;
    st_ops_config_t config = {.lease_ms = 10000, .max_attempts = 3,
                              .retention_ms = 7LL * 86400 * 1000, .worker_live_ms = 30000};
    int rc = st_db_open (dir, 256u << 20, false, &db);
    st_ops_t *ops = rc == 0 ? st_ops_new (db, &config) : NULL;
    static char answers[S_SESSIONS][CM_MESSAGE_ID_MAX + 1];
    int64_t now = 1764000000000LL;
    for (int i = 0; rc == 0 && i < S_SESSIONS; i++) {
        cm_envelope_t *start = s_request (CM_MSG_SESSION_START);
        char session[40];
        snprintf (session, sizeof session, "bench-%08x-%04d", (unsigned) i * 2654435761u, i);
        cm_map_set_str (start->payload, "session_id", session);
        cm_map_set_str (start->payload, "query", "q");
        rc = s_commit (ops, &start, 1, now, &answers[i]);
    }
    srand (7);
    long long before = s_written ();
    for (int k = 0; rc == 0 && k < batches; k++) {
        cm_envelope_t *votes[S_BATCH_MAX];
        for (int j = 0; j < batch; j++) {
            votes[j] = s_request (CM_MSG_FEEDBACK_PUT);
            cm_map_set_str (votes[j]->payload, "message_id", answers[rand () % S_SESSIONS]);
            cm_map_set_str (votes[j]->payload, "feedback_type",
                            rand () & 1 ? "upvote" : "downvote");
        }
        rc = s_commit (ops, votes, (size_t) batch, now + k, NULL);
    }
    long long after = s_written ();
    if (rc)
        fprintf (stderr, "bench_pages: a write failed: %s\n", cm_error_name (rc));
    else if (before < 0 || after < 0)
        fprintf (stderr, "bench_pages: /proc/self/io is not readable\n");
    else
        printf ("%d commits of %d votes: %.1f pages written per commit, %.0f bytes per vote\n",
                batches, batch, (double) (after - before) / batches / S_PAGE,
                (double) (after - before) / ((double) batches * batch));
    st_ops_destroy (&ops);
    st_db_destroy (&db);
    nftw (dir, s_rm, 16, FTW_DEPTH | FTW_PHYS);
    return rc || before < 0 ? 1 : 0;
}
