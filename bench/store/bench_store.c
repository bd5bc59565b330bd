/*  bench_store: how many acknowledged, fsync'd writes per second the store
    sustains with 1, 16 and 64 concurrent DEALER clients (each write is a
    feedback_put: vote + counts + audit in one group-committed txn), and
    raw LMDB on the same disk with 1 put per txn and 100 puts per txn.
    Prints the ratio store(64 clients) / raw(100 puts per txn); the target
    is >= 0.5.
    Usage: bench_store [dir (default: a temp dir under ./)] [seconds per case]
                       [all | store | raw | a client count]
    The third argument runs only some cases (profiling). CHATMESH_LOG_LEVEL
    applies (default error; debug shows every write batch's size and time).
    Profiling knobs (environment):
      BENCH_STORE_REQUESTS=N  each store case sends exactly N writes in all
                              (split over its clients) instead of running for
                              [seconds]: a fixed workload for callgrind.
      BENCH_STORE_CONTENT=B   the voted message carries B bytes of content
                              (the user message of a session started with a
                              B-byte query); default 0 votes on the empty
                              assistant message.                            */
#include "cm_error.h"
#include "cm_log.h"
#include "cm_rpc.h"
#include "cm_time.h"
#include "st_server.h"

#include <czmq.h>
#include <ftw.h>
#include <pthread.h>
#include <stdatomic.h>

typedef struct {
    const char *endpoint;
    const char *message_id;
    int64_t until;
    long requests; //  >= 0: send exactly this many, ignore until
    atomic_long *done;
} s_client_t;

static void *
s_client (void *arg)
{
    s_client_t *c = arg;
    zsock_t *dealer = cm_dealer_new (c->endpoint);
    for (long n = 0; c->requests >= 0 ? n < c->requests : cm_mono_ms () < c->until; n++) {
        cm_envelope_t *request = cm_envelope_new (CM_MSG_FEEDBACK_PUT, NULL);
        cm_request_id (request->request_id, sizeof request->request_id);
        cm_map_set_str (request->payload, "user", "bench");
        cm_map_set_str (request->payload, "message_id", c->message_id);
        cm_map_set_str (request->payload, "feedback_type", n % 2 ? "upvote" : "downvote");
        cm_envelope_t *reply = NULL;
        int rc = cm_call (dealer, request, 10000, &reply);
        if (rc == 0)
            atomic_fetch_add (c->done, 1);
        else if (rc == CM_EBACKEND) {
            zclock_sleep (1); //  still connecting
            n--;              //  a fixed workload still sends all of its writes
        }
        cm_envelope_destroy (&reply);
        cm_envelope_destroy (&request);
    }
    zsock_destroy (&dealer);
    return NULL;
}

static double
s_store_case (const char *endpoint, const char *message_id, int clients, int seconds,
              long requests)
{
    atomic_long done = 0;
    pthread_t threads[64];
    s_client_t args[64];
    int64_t started = cm_mono_ms ();
    for (int i = 0; i < clients; i++) {
        long mine = requests / clients + (i < requests % clients ? 1 : 0);
        args[i] = (s_client_t) {endpoint, message_id, started + seconds * 1000,
                                requests > 0 ? mine : -1, &done};
        pthread_create (&threads[i], NULL, s_client, &args[i]);
    }
    for (int i = 0; i < clients; i++)
        pthread_join (threads[i], NULL);
    return (double) atomic_load (&done) / ((double) (cm_mono_ms () - started) / 1000.0);
}

static double
s_raw_case (const char *dir, int per_txn, int seconds)
{
    MDB_env *env;
    MDB_dbi dbi;
    MDB_txn *txn;
    mdb_env_create (&env);
    mdb_env_set_mapsize (env, 1u << 30);
    if (mdb_env_open (env, dir, 0, 0600)) {
        mdb_env_close (env);
        return 0;
    }
    mdb_txn_begin (env, NULL, 0, &txn);
    mdb_dbi_open (txn, NULL, 0, &dbi);
    mdb_txn_commit (txn);
    char value[200];
    memset (value, 'v', sizeof value);
    long puts = 0;
    int64_t started = cm_mono_ms (), until = started + seconds * 1000;
    while (cm_mono_ms () < until) {
        mdb_txn_begin (env, NULL, 0, &txn);
        for (int i = 0; i < per_txn; i++, puts++) {
            unsigned char key[8];
            for (int b = 0; b < 8; b++)
                key[b] = (unsigned char) (puts >> (56 - 8 * b));
            MDB_val k = {8, key}, v = {sizeof value, value};
            mdb_put (txn, dbi, &k, &v, 0);
        }
        mdb_txn_commit (txn); //  fsync: the env is opened without MDB_NOSYNC
    }
    double rate = (double) puts / ((double) (cm_mono_ms () - started) / 1000.0);
    mdb_env_close (env);
    return rate;
}

static void *
s_serve (void *server)
{
    st_server_run (server);
    return NULL;
}

static int
s_rm (const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void) sb, (void) flag, (void) ftw;
    return remove (path);
}

int
main (int argc, char **argv)
{
    char dir[512];
    snprintf (dir, sizeof dir, "%s/bench_store_XXXXXX", argc > 1 ? argv[1] : ".");
    int seconds = argc > 2 ? atoi (argv[2]) : 3;
    const char *only = argc > 3 ? argv[3] : "all";
    bool run_store = strcmp (only, "raw") != 0, run_raw = strcmp (only, "all") == 0
                                                         || strcmp (only, "raw") == 0;
    int only_clients = atoi (only); //  0 unless a client count
    const char *knob = getenv ("BENCH_STORE_REQUESTS");
    long requests = knob ? atol (knob) : 0;
    knob = getenv ("BENCH_STORE_CONTENT");
    long content = knob ? atol (knob) : 0;
    if (content < 0 || content > 512 * 1024)
        content = 0;
    if (!mkdtemp (dir)) {
        perror ("mkdtemp");
        return 1;
    }
    const char *level = getenv ("CHATMESH_LOG_LEVEL");
    int log_level = cm_log_level_parse (level ? level : "error");
    cm_log_init ("bench_store", log_level < 0 ? CM_LOG_ERROR : (cm_log_level_t) log_level);
    char store_dir[600], raw1[600], raw100[600], endpoint[600], events[600];
    snprintf (store_dir, sizeof store_dir, "%s/store", dir);
    snprintf (raw1, sizeof raw1, "%s/raw1", dir);
    snprintf (raw100, sizeof raw100, "%s/raw100", dir);
    snprintf (endpoint, sizeof endpoint, "ipc://%s/store.ipc", dir);
    snprintf (events, sizeof events, "ipc://%s/events.ipc", dir);
    mkdir (store_dir, 0700);
    mkdir (raw1, 0700);
    mkdir (raw100, 0700);
    zsock_t *sink = zsock_new_pull (events); //  a broadcaster stand-in that drains
    st_server_config_t config = {.endpoint = endpoint, .events_endpoint = events,
                                 .dir = store_dir, .map_bytes = 64u << 20, .sync = true,
                                 .readers = 2, .cleanup_interval_ms = 0,
                                 .ops = {.lease_ms = 10000, .max_attempts = 3,
                                         .retention_ms = 86400000, .worker_live_ms = 30000}};
    st_server_t *server = st_server_new (&config);
    if (!server)
        return 1;
    pthread_t thread;
    pthread_create (&thread, NULL, s_serve, server);

    //  One session whose assistant message everybody votes on.
    zsock_t *dealer = cm_dealer_new (endpoint);
    cm_envelope_t *start = cm_envelope_new (CM_MSG_SESSION_START, "start");
    cm_map_set_str (start->payload, "user", "bench");
    cm_map_set_str (start->payload, "session_id", "bench");
    char *query = malloc ((size_t) content + 16);
    if (content > 0) {
        for (long i = 0; i < content; i++)
            query[i] = (char) ('a' + i % 26);
        query[content] = 0;
    }
    else
        strcpy (query, "benchmark");
    cm_map_set_str (start->payload, "query", query);
    free (query);
    cm_envelope_t *reply = NULL;
    int rc;
    while ((rc = cm_call (dealer, start, 10000, &reply)) == CM_EBACKEND)
        zclock_sleep (10);
    if (rc) {
        fprintf (stderr, "session_start failed: %d\n", rc);
        return 1;
    }
    char message_id[400];
    snprintf (message_id, sizeof message_id, "%s",
              cm_map_str_or (cm_map_get (reply->payload, "data"),
                             content > 0 ? "user_message_id" : "assistant_message_id", ""));
    cm_envelope_destroy (&reply);
    cm_envelope_destroy (&start);
    zsock_destroy (&dealer);

    if (requests > 0)
        printf ("dir: %s, %ld writes per case, voted message %ld content bytes, fsync on\n",
                dir, requests, content);
    else
        printf ("dir: %s, %d s per case, voted message %ld content bytes, fsync on\n", dir,
                seconds, content);
    int counts[] = {1, 16, 64};
    double store64 = 0;
    for (int i = 0; run_store && i < 3; i++) {
        if (only_clients && only_clients != counts[i])
            continue;
        //  Drain events meanwhile so the PUSH queue never fills.
        double rate = s_store_case (endpoint, message_id, counts[i], seconds, requests);
        while (zsock_events (sink) & ZMQ_POLLIN) {
            zmsg_t *msg = zmsg_recv (sink);
            zmsg_destroy (&msg);
        }
        printf ("store  %2d clients: %10.0f acknowledged writes/s\n", counts[i], rate);
        if (counts[i] == 64)
            store64 = rate;
    }
    st_server_stop (server);
    pthread_join (thread, NULL);
    st_server_destroy (&server);
    zsock_destroy (&sink);
    if (run_raw) {
        printf ("raw LMDB   1 put/txn: %10.0f puts/s\n", s_raw_case (raw1, 1, seconds));
        double raw100_rate = s_raw_case (raw100, 100, seconds);
        printf ("raw LMDB 100 put/txn: %10.0f puts/s\n", raw100_rate);
        if (store64 > 0 && raw100_rate > 0)
            printf ("store64 / raw batched: %.3f (target >= 0.5: %s)\n", store64 / raw100_rate,
                    store64 / raw100_rate >= 0.5 ? "met" : "not met");
    }
    nftw (dir, s_rm, 16, FTW_DEPTH | FTW_PHYS);
    return 0;
}
