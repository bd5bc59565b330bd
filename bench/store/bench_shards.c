/*  bench_shards: acknowledged, fsync'd feedback writes per second with the
    store sharded over 1, 2 and 3 shards on this machine, as ratios to one
    shard measured in the same run (docs/performance.md).

    Each shard is its own chatmesh-store process (the built binary, sync
    on) with its own data directory under one temp dir; all push their
    events to one PULL socket here that drains them, as a broadcaster
    would. Sessions are placed as a sharded gateway places them
    (cm_shards_pick of the session id over the shard names), S_SESSIONS of
    them, seeded before the clock starts; the load is S_CLIENTS DEALER
    connections in all, each with one feedback_put in flight, connection i
    on shard i % K voting round that shard's answers: the same offered
    concurrency whatever K. So the figure is what splitting one store's
    writes over K writers (K LMDB environments, K group-commit fsyncs)
    buys on one disk and these cores, not the gateway's routing.
    Each round measures K = 1, 2, 3 (the order reversed every other round,
    so a drift of the machine does not favour one K), and prints the
    round's ratios; the last line gives each ratio's median over rounds.
    The machine's load average is printed at the start and the end: other
    work on the cores moves single cases a lot (this is why the ratios are
    per round, and medians).
    Usage: bench_shards [dir (default: a temp dir under ./)] [seconds per
                        case (default 10)] [rounds (default 3, 1..15)]      */
#include "bench_wire.h"
#include "cm_error.h"
#include "cm_log.h"
#include "cm_rpc.h"
#include "cm_shard.h"
#include "cm_time.h"

#include <czmq.h>
#include <ftw.h>
#include <signal.h>
#include <spawn.h>
#include <sys/resource.h>
#include <sys/wait.h>

#define S_SESSIONS 600
#define S_CLIENTS 64
#define S_SHARDS_MAX 3
#define S_ROUNDS_MAX 15

typedef struct {
    void *socket;
    cm_envelope_t *request;
    int shard;
    long sent;
} s_conn_t;

typedef struct {
    cm_shards_t map;
    char endpoint[S_SHARDS_MAX][600];
    pid_t pids[S_SHARDS_MAX];
    //  The answers of each shard's sessions.
    char *messages[S_SHARDS_MAX][S_SESSIONS];
    int count[S_SHARDS_MAX];
} s_case_t;

//  One chatmesh-store, shard index, on its own data directory under dir;
//  its pid, or -1.
static pid_t
s_spawn_store (const char *dir, const char *events, const char *endpoint, int index)
{
    char data[700], data_env[800], endpoint_env[700], events_env[700];
    snprintf (data, sizeof data, "%s/shard-%d", dir, index);
    mkdir (data, 0700);
    snprintf (data_env, sizeof data_env, "CHATMESH_DATA_DIR=%s", data);
    snprintf (endpoint_env, sizeof endpoint_env, "CHATMESH_STORE_ENDPOINT=%s", endpoint);
    snprintf (events_env, sizeof events_env, "CHATMESH_EVENTS_IN_ENDPOINT=%s", events);
    char *env[] = {data_env, endpoint_env, events_env, "CHATMESH_STORE_SYNC=true",
                   "CHATMESH_LOG_LEVEL=error", NULL};
    char *argv[] = {CHATMESH_STORE_BINARY, NULL};
    pid_t pid;
    if (posix_spawn (&pid, CHATMESH_STORE_BINARY, NULL, NULL, argv, env)) {
        perror ("posix_spawn " CHATMESH_STORE_BINARY);
        return -1;
    }
    return pid;
}

//  One request and its reply on dealer, retried while the store is not up.
static int
s_call (zsock_t *dealer, cm_envelope_t *request, cm_envelope_t **reply)
{
    int rc;
    for (int i = 0; i < 1000; i++) {
        cm_request_id (request->request_id, sizeof request->request_id);
        rc = cm_call (dealer, request, 10000, reply);
        if (rc != CM_EBACKEND && rc != CM_ETIMEOUT)
            return rc;
        zclock_sleep (10);
    }
    return rc;
}

//  Starts S_SESSIONS sessions, each on the shard the gateway would pick.
static int
s_seed (s_case_t *c)
{
    zsock_t *dealers[S_SHARDS_MAX];
    for (int i = 0; i < c->map.count; i++)
        dealers[i] = cm_dealer_new (c->endpoint[i]);
    int rc = 0;
    for (int i = 0; rc == 0 && i < S_SESSIONS; i++) {
        char session_id[32];
        snprintf (session_id, sizeof session_id, "bench-%d", i);
        int shard = cm_shards_pick (&c->map, session_id);
        cm_envelope_t *start = cm_envelope_new (CM_MSG_SESSION_START, NULL), *reply = NULL;
        cm_map_set_str (start->payload, "user", "bench");
        cm_map_set_str (start->payload, "session_id", session_id);
        cm_map_set_str (start->payload, "query", "benchmark");
        rc = s_call (dealers[shard], start, &reply);
        if (rc)
            fprintf (stderr, "session_start on shard %d: %s\n", shard, cm_strerror (rc));
        else
            c->messages[shard][c->count[shard]++] = strdup (cm_map_str_or (
                cm_map_get (reply->payload, "data"), "assistant_message_id", ""));
        cm_envelope_destroy (&reply);
        cm_envelope_destroy (&start);
    }
    for (int i = 0; i < c->map.count; i++)
        zsock_destroy (&dealers[i]);
    return rc;
}

static bool
s_send (s_case_t *c, s_conn_t *conn, int index, char **buffer, size_t *capacity)
{
    //  The connections of a shard take its answers in turn, so two votes
    //  in flight never race on one message.
    int peers = S_CLIENTS / c->map.count + (index % c->map.count < S_CLIENTS % c->map.count);
    long turn = index / c->map.count + conn->sent * peers;
    int n = c->count[conn->shard];
    cm_request_id (conn->request->request_id, sizeof conn->request->request_id);
    cm_map_set_str (conn->request->payload, "message_id", c->messages[conn->shard][turn % n]);
    cm_map_set_str (conn->request->payload, "feedback_type",
                    (turn / n) % 2 ? "upvote" : "downvote");
    size_t size;
    if (cm_envelope_encode_into (conn->request, buffer, capacity, &size))
        return false;
    conn->sent++;
    return zmq_send (conn->socket, *buffer, size, 0) == (int) size;
}

//  Acknowledged writes per second over all shards for seconds; -1 when a
//  write was not acknowledged.
static double
s_load (s_case_t *c, void *sink, int seconds)
{
    void *context = zmq_ctx_new ();
    s_conn_t conns[S_CLIENTS];
    zmq_pollitem_t items[S_CLIENTS + 1];
    char *buffer = NULL;
    size_t capacity = 0;
    long done = 0, in_flight = 0, failed = 0;
    for (int i = 0; i < S_CLIENTS; i++) {
        conns[i] = (s_conn_t) {zmq_socket (context, ZMQ_DEALER),
                               cm_envelope_new (CM_MSG_FEEDBACK_PUT, NULL), i % c->map.count, 0};
        zmq_setsockopt (conns[i].socket, ZMQ_LINGER, &(int) {0}, sizeof (int));
        zmq_connect (conns[i].socket, c->endpoint[conns[i].shard]);
        cm_map_set_str (conns[i].request->payload, "user", "bench");
        items[i] = (zmq_pollitem_t) {conns[i].socket, 0, ZMQ_POLLIN, 0};
    }
    items[S_CLIENTS] = (zmq_pollitem_t) {sink, 0, ZMQ_POLLIN, 0};
    int64_t started = cm_mono_ms (), until = started + seconds * 1000;
    for (int i = 0; i < S_CLIENTS; i++)
        in_flight += s_send (c, &conns[i], i, &buffer, &capacity);
    while (in_flight > 0 && failed == 0) {
        int ready = zmq_poll (items, S_CLIENTS + 1, 10000);
        if (items[S_CLIENTS].revents & ZMQ_POLLIN)
            bench_drain (sink);
        if (ready == 0) {
            fprintf (stderr, "no acknowledgement for 10 s\n");
            failed++;
        }
        for (int i = 0; ready > 0 && i < S_CLIENTS; i++) {
            if (!(items[i].revents & ZMQ_POLLIN))
                continue;
            in_flight--;
            if (!bench_acknowledged (conns[i].socket, conns[i].request->request_id)) {
                failed++;
                continue;
            }
            done++;
            if (cm_mono_ms () < until && s_send (c, &conns[i], i, &buffer, &capacity))
                in_flight++;
        }
    }
    double elapsed = (double) (cm_mono_ms () - started) / 1000.0;
    for (int i = 0; i < S_CLIENTS; i++) {
        zmq_close (conns[i].socket);
        cm_envelope_destroy (&conns[i].request);
    }
    free (buffer);
    zmq_ctx_term (context);
    return failed ? -1 : (double) done / elapsed;
}

static int
s_rm (const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void) sb, (void) flag, (void) ftw;
    return remove (path);
}

//  One case: K fresh stores, seeded, loaded; the rate or -1.
static double
s_case (const char *parent, int shards, int seconds)
{
    char dir[512], events[600], list[2000] = "";
    snprintf (dir, sizeof dir, "%s/bench_shards_XXXXXX", parent);
    if (!mkdtemp (dir)) {
        perror ("mkdtemp");
        return -1;
    }
    snprintf (events, sizeof events, "ipc://%s/events.ipc", dir);
    zsock_t *sink = zsock_new_pull (events);
    s_case_t c = {0};
    double rate = -1;
    bool up = sink != NULL;
    for (int i = 0; up && i < shards; i++) {
        snprintf (c.endpoint[i], sizeof c.endpoint[i], "ipc://%s/store-%d.ipc", dir, i);
        size_t used = strlen (list);
        snprintf (list + used, sizeof list - used, "%ss%d=%s", i ? "," : "", i + 1,
                  c.endpoint[i]);
        c.pids[i] = s_spawn_store (dir, events, c.endpoint[i], i);
        up = c.pids[i] > 0;
    }
    char why[200];
    if (up && cm_shards_parse (list, NULL, &c.map, why, sizeof why)) {
        fprintf (stderr, "shard list: %s\n", why);
        up = false;
    }
    struct rusage before, after;
    getrusage (RUSAGE_CHILDREN, &before);
    bool loaded = up && s_seed (&c) == 0;
    if (loaded) {
        bench_drain (zsock_resolve (sink));
        rate = s_load (&c, zsock_resolve (sink), seconds);
    }
    for (int i = 0; i < shards; i++) {
        if (c.pids[i] > 0) {
            kill (c.pids[i], SIGTERM);
            waitpid (c.pids[i], NULL, 0);
        }
        for (int j = 0; j < c.count[i]; j++)
            free (c.messages[i][j]);
    }
    //  The stores' CPU (seeding included) per acknowledged write: what
    //  bounds the rate when it is not the disk.
    getrusage (RUSAGE_CHILDREN, &after);
    double cpu = (double) (after.ru_utime.tv_sec + after.ru_stime.tv_sec
                           - before.ru_utime.tv_sec - before.ru_stime.tv_sec)
                 + (double) (after.ru_utime.tv_usec + after.ru_stime.tv_usec
                             - before.ru_utime.tv_usec - before.ru_stime.tv_usec)
                       / 1e6;
    if (loaded) {
        printf ("%d shard%s: %8.0f acknowledged writes/s, stores' CPU %.1f s (%.0f us a write; "
                "sessions per shard:",
                shards, shards > 1 ? "s" : " ", rate, cpu,
                rate > 0 ? cpu * 1e6 / (rate * seconds) : 0);
        for (int i = 0; i < shards; i++)
            printf (" %d", c.count[i]);
        printf (")\n");
        fflush (stdout);
    }
    zsock_destroy (&sink);
    nftw (dir, s_rm, 16, FTW_DEPTH | FTW_PHYS);
    return rate;
}

static int
s_compare_doubles (const void *a, const void *b)
{
    double x = *(const double *) a, y = *(const double *) b;
    return (x > y) - (x < y);
}

int
main (int argc, char **argv)
{
    const char *parent = argc > 1 ? argv[1] : ".";
    int seconds = argc > 2 ? atoi (argv[2]) : 10;
    int rounds = argc > 3 ? atoi (argv[3]) : 3;
    if (seconds < 1 || seconds > 600 || rounds < 1 || rounds > S_ROUNDS_MAX) {
        fprintf (stderr, "usage: bench_shards [dir] [seconds 1..600] [rounds 1..%d]\n",
                 S_ROUNDS_MAX);
        return 2;
    }
    cm_log_init ("bench_shards", CM_LOG_ERROR);
    printf ("%d clients in all, %d sessions, fsync on, %d s per case, store %s\n", S_CLIENTS,
            S_SESSIONS, seconds, CHATMESH_STORE_BINARY);
    double load[3];
    if (getloadavg (load, 3) == 3)
        printf ("load average at the start: %.2f %.2f %.2f\n", load[0], load[1], load[2]);
    double ratios[S_SHARDS_MAX][S_ROUNDS_MAX];
    for (int round = 0; round < rounds; round++) {
        printf ("-- round %d of %d\n", round + 1, rounds);
        double rate[S_SHARDS_MAX + 1] = {0};
        for (int k = 0; k < S_SHARDS_MAX; k++) {
            int shards = round % 2 ? S_SHARDS_MAX - k : k + 1;
            rate[shards] = s_case (parent, shards, seconds);
            if (rate[shards] <= 0)
                return 1;
        }
        printf ("round %d: 2/1 %.3f, 3/1 %.3f\n", round + 1, rate[2] / rate[1], rate[3] / rate[1]);
        for (int k = 2; k <= S_SHARDS_MAX; k++)
            ratios[k - 1][round] = rate[k] / rate[1];
    }
    if (getloadavg (load, 3) == 3)
        printf ("load average at the end: %.2f %.2f %.2f\n", load[0], load[1], load[2]);
    printf ("median over %d rounds:", rounds);
    for (int k = 2; k <= S_SHARDS_MAX; k++) {
        qsort (ratios[k - 1], (size_t) rounds, sizeof (double), s_compare_doubles);
        double *r = ratios[k - 1];
        double median = rounds % 2 ? r[rounds / 2] : (r[rounds / 2 - 1] + r[rounds / 2]) / 2;
        printf (" %d/1 %.3f", k, median);
    }
    printf ("\n");
    return 0;
}
