/*  bench_store: how many acknowledged, fsync'd writes per second the store
    sustains with 1, 16 and 64 concurrent DEALER clients (each write is a
    feedback_put: vote + counts + audit in one group-committed txn). The
    votes go round the assistant messages of S_SESSIONS sessions, so their
    records sit under uuid keys all over the tree, as real traffic's do.
    The events they publish are drained as a broadcaster would. And
    raw LMDB on the same disk with 1 put per txn and 100 puts per txn:
    200-byte values under random 16-byte keys, like the store's uuid-keyed
    records (a put dirties a page of its own). Those are the figures the
    issue quotes for this machine (about 4,000 and 55,000 puts/s). For
    context a third raw case puts 100 per txn under ascending 8-byte keys,
    where every put lands on the tree's last page: LMDB's cheapest case,
    4-5x the random-key rate. Prints store(64 clients) / raw(100 puts per
    txn), target >= 0.5, and the same ratio against the ascending case.
    Usage: bench_store [dir (default: a temp dir under ./)] [seconds per case]
                       [all | store | raw | crc | a client count] [runs (1..50)]
    The third argument runs only some cases (profiling). `crc` measures
    the checksum's cost on this durable feedback path (issue 26): each run
    is a pair of 64-client cases, each in a fresh store, one with every
    record's CRC32C computed and checked as in production and one with it
    replaced by a constant (this binary alone links with
    -Wl,--wrap=st_crc32c; the 5-byte record header is still written, so
    the pair differs by the computation only); the order alternates, and
    each pair prints with / without, target >= 0.95. With runs > 1 the
    whole set runs that many times, each in a fresh dir, and the last line
    lists every run's ratio with their median. CHATMESH_LOG_LEVEL
    applies (default error; debug shows every write batch's size and time).
    Profiling knobs (environment):
      BENCH_STORE_REQUESTS=N  each store case sends exactly N writes in all
                              (split over its clients) instead of running for
                              [seconds]: a fixed workload for callgrind.
      BENCH_STORE_CONTENT=B   the voted messages carry B bytes of content
                              (the user messages of sessions started with a
                              B-byte query); default 0 votes on the empty
                              assistant messages.                           */
#include "bench_wire.h"
#include "cm_error.h"
#include "cm_log.h"
#include "st_crc.h"
#include "cm_rpc.h"
#include "cm_time.h"
#include "st_server.h"

#include <czmq.h>
#include <ftw.h>
#include <pthread.h>

#define S_SESSIONS 1024
#define S_MAX_RUNS 50

//  One load thread drives every client connection: `clients` DEALER
//  sockets, each with exactly one write in flight (the next goes when its
//  acknowledgement arrives), in a ZeroMQ context of their own. A thread per
//  client on this 2-core machine measured the load generator's context
//  switches as much as the store; one thread keeps the load cheap and the
//  concurrency exactly `clients`.
//  The checksum the store's records call, routed here by --wrap: the real
//  one unless a `crc` run switches it off (the bench binary only).
static bool s_crc_off;
static double s_last_store64; //  the last run's 64-client rate
uint32_t __real_st_crc32c (uint32_t crc, const void *data, size_t len);
uint32_t __wrap_st_crc32c (uint32_t crc, const void *data, size_t len);
uint32_t
__wrap_st_crc32c (uint32_t crc, const void *data, size_t len)
{
    return s_crc_off ? 0 : __real_st_crc32c (crc, data, len);
}

typedef struct {
    void *socket;
    cm_envelope_t *request; //  reused: request_id, message_id, feedback_type change
    int index;              //  of this connection among `clients`
    int clients;
    long sent;              //  writes sent on this connection
    long quota;             //  >= 0: send exactly this many; < 0: until the clock
} s_conn_t;

static char *s_message_ids[S_SESSIONS]; //  the messages voted on

static bool
s_conn_send (s_conn_t *conn, char **buffer, size_t *capacity)
{
    cm_request_id (conn->request->request_id, sizeof conn->request->request_id);
    //  Connections take the messages in turn, so two in-flight votes never
    //  race on one message and every message gets votes.
    long turn = conn->index + conn->sent * conn->clients;
    cm_map_set_str (conn->request->payload, "message_id", s_message_ids[turn % S_SESSIONS]);
    cm_map_set_str (conn->request->payload, "feedback_type",
                    (turn / S_SESSIONS) % 2 ? "upvote" : "downvote"); //  flips each round
    size_t size;
    if (cm_envelope_encode_into (conn->request, buffer, capacity, &size))
        return false;
    conn->sent++;
    return zmq_send (conn->socket, *buffer, size, 0) == (int) size;
}

//  Acknowledged writes per second with `clients` connections; *failed
//  counts replies that were not an ok for their request (and stops). The
//  store's events are drained from sink meanwhile.
static double
s_store_case (const char *endpoint, void *sink, int clients, int seconds, long requests,
              long *failed)
{
    void *context = zmq_ctx_new ();
    s_conn_t conns[64];
    zmq_pollitem_t items[64 + 1];
    char *buffer = NULL;
    size_t capacity = 0;
    long done = 0, in_flight = 0;
    *failed = 0;
    for (int i = 0; i < clients; i++) {
        conns[i] = (s_conn_t) {zmq_socket (context, ZMQ_DEALER),
                               cm_envelope_new (CM_MSG_FEEDBACK_PUT, NULL), i, clients, 0,
                               requests > 0 ? requests / clients + (i < requests % clients) : -1};
        zmq_setsockopt (conns[i].socket, ZMQ_LINGER, &(int) {0}, sizeof (int));
        zmq_connect (conns[i].socket, endpoint);
        cm_map_set_str (conns[i].request->payload, "user", "bench");
        items[i] = (zmq_pollitem_t) {conns[i].socket, 0, ZMQ_POLLIN, 0};
    }
    items[clients] = (zmq_pollitem_t) {sink, 0, ZMQ_POLLIN, 0};
    int64_t started = cm_mono_ms (), until = started + seconds * 1000;
    for (int i = 0; i < clients; i++)
        if (conns[i].quota != 0 && s_conn_send (&conns[i], &buffer, &capacity))
            in_flight++;
    while (in_flight > 0 && *failed == 0) {
        int ready = zmq_poll (items, clients + 1, 10000);
        if (items[clients].revents & ZMQ_POLLIN)
            bench_drain (sink);
        if (ready == 0) {
            fprintf (stderr, "no acknowledgement for 10 s\n");
            (*failed)++;
        }
        for (int i = 0; ready > 0 && i < clients; i++) {
            if (!(items[i].revents & ZMQ_POLLIN))
                continue;
            s_conn_t *conn = &conns[i];
            in_flight--;
            if (!bench_acknowledged (conn->socket, conn->request->request_id)) {
                (*failed)++;
                continue;
            }
            done++;
            bool more = conn->quota >= 0 ? conn->sent < conn->quota : cm_mono_ms () < until;
            if (more && s_conn_send (conn, &buffer, &capacity))
                in_flight++;
        }
    }
    double elapsed = (double) (cm_mono_ms () - started) / 1000.0;
    for (int i = 0; i < clients; i++) {
        zmq_close (conns[i].socket);
        cm_envelope_destroy (&conns[i].request);
    }
    free (buffer);
    zmq_ctx_term (context);
    return (double) done / elapsed;
}

static double
s_raw_case (const char *dir, int per_txn, bool random_keys, int seconds)
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
    uint64_t state = 0x9E3779B97F4A7C15u; //  xorshift64: cheap, repeatable keys
    int64_t started = cm_mono_ms (), until = started + seconds * 1000;
    while (cm_mono_ms () < until) {
        mdb_txn_begin (env, NULL, 0, &txn);
        for (int i = 0; i < per_txn; i++, puts++) {
            unsigned char key[16];
            size_t key_size = random_keys ? 16 : 8;
            for (size_t half = 0; half < key_size / 8; half++) {
                uint64_t bits = (uint64_t) puts;
                if (random_keys) {
                    state ^= state << 13;
                    state ^= state >> 7;
                    state ^= state << 17;
                    bits = state;
                }
                for (int b = 0; b < 8; b++)
                    key[8 * half + b] = (unsigned char) (bits >> (56 - 8 * b));
            }
            MDB_val k = {key_size, key}, v = {sizeof value, value};
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

typedef struct {
    const char *parent; //  where each run's temp dir goes
    int seconds;
    bool run_store, run_raw, run_crc;
    int only_clients; //  0 = every client count
    long requests;    //  BENCH_STORE_REQUESTS
    long content;     //  BENCH_STORE_CONTENT
} s_options_t;

//  Starts sessions to vote on; their message ids go into s_message_ids.
static int
s_seed_sessions (const char *endpoint, long content)
{
    zsock_t *dealer = cm_dealer_new (endpoint);
    char *query = malloc ((size_t) content + 16);
    if (content > 0) {
        for (long i = 0; i < content; i++)
            query[i] = (char) ('a' + i % 26);
        query[content] = 0;
    }
    else
        strcpy (query, "benchmark");
    int rc = 0;
    for (int i = 0; rc == 0 && i < S_SESSIONS; i++) {
        cm_envelope_t *start = cm_envelope_new (CM_MSG_SESSION_START, NULL);
        cm_request_id (start->request_id, sizeof start->request_id);
        char session_id[32];
        snprintf (session_id, sizeof session_id, "bench-%d", i);
        cm_map_set_str (start->payload, "user", "bench");
        cm_map_set_str (start->payload, "session_id", session_id);
        cm_map_set_str (start->payload, "query", query);
        cm_envelope_t *reply = NULL;
        while ((rc = cm_call (dealer, start, 10000, &reply)) == CM_EBACKEND)
            zclock_sleep (10);
        if (rc)
            fprintf (stderr, "session_start failed: %d\n", rc);
        else
            s_message_ids[i] = strdup (
                cm_map_str_or (cm_map_get (reply->payload, "data"),
                               content > 0 ? "user_message_id" : "assistant_message_id", ""));
        cm_envelope_destroy (&reply);
        cm_envelope_destroy (&start);
    }
    free (query);
    zsock_destroy (&dealer);
    return rc;
}

//  One run of the selected cases in a fresh temp dir. Returns 0 and, when
//  both were measured, store64 / raw batched in *ratio (else 0).
static int
s_run_once (const s_options_t *o, double *ratio)
{
    *ratio = 0;
    char dir[512];
    snprintf (dir, sizeof dir, "%s/bench_store_XXXXXX", o->parent);
    if (!mkdtemp (dir)) {
        perror ("mkdtemp");
        return 1;
    }
    char store_dir[600], raw1[600], raw100[600], raw_ascending[600], endpoint[600], events[600];
    snprintf (store_dir, sizeof store_dir, "%s/store", dir);
    snprintf (raw1, sizeof raw1, "%s/raw1", dir);
    snprintf (raw100, sizeof raw100, "%s/raw100", dir);
    snprintf (raw_ascending, sizeof raw_ascending, "%s/raw_ascending", dir);
    snprintf (endpoint, sizeof endpoint, "ipc://%s/store.ipc", dir);
    snprintf (events, sizeof events, "ipc://%s/events.ipc", dir);
    mkdir (store_dir, 0700);
    mkdir (raw1, 0700);
    mkdir (raw100, 0700);
    mkdir (raw_ascending, 0700);
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
    int rc = s_seed_sessions (endpoint, o->content);
    bench_drain (zsock_resolve (sink));

    if (o->requests > 0)
        printf ("dir: %s, %ld writes per case, voted message %ld content bytes, fsync on\n",
                dir, o->requests, o->content);
    else
        printf ("dir: %s, %d s per case, voted message %ld content bytes, fsync on\n", dir,
                o->seconds, o->content);
    int counts[] = {1, 16, 64};
    double store64 = 0;
    for (int i = 0; rc == 0 && o->run_store && i < 3; i++) {
        if (o->only_clients && o->only_clients != counts[i])
            continue;
        long failed = 0;
        double rate = s_store_case (endpoint, zsock_resolve (sink), counts[i], o->seconds,
                                    o->requests, &failed);
        printf ("store  %2d clients: %10.0f acknowledged writes/s\n", counts[i], rate);
        if (failed) {
            fprintf (stderr, "%ld writes were not acknowledged\n", failed);
            rc = 1;
        }
        if (counts[i] == 64)
            store64 = rate;
        s_last_store64 = store64;
    }
    st_server_stop (server);
    pthread_join (thread, NULL);
    st_server_destroy (&server);
    zsock_destroy (&sink);
    if (rc == 0 && o->run_raw) {
        printf ("raw LMDB   1 put/txn:            %10.0f puts/s\n",
                s_raw_case (raw1, 1, true, o->seconds));
        double batched = s_raw_case (raw100, 100, true, o->seconds);
        printf ("raw LMDB 100 put/txn:            %10.0f puts/s\n", batched);
        double ascending = s_raw_case (raw_ascending, 100, false, o->seconds);
        printf ("raw LMDB 100 put/txn, ascending: %10.0f puts/s (context)\n", ascending);
        if (store64 > 0 && batched > 0 && ascending > 0) {
            *ratio = store64 / batched;
            printf ("store64 / raw batched: %.3f (target >= 0.5: %s)\n", *ratio,
                    *ratio >= 0.5 ? "met" : "not met");
            printf ("store64 / raw batched ascending: %.3f (context)\n", store64 / ascending);
        }
    }
    fflush (stdout);
    nftw (dir, s_rm, 16, FTW_DEPTH | FTW_PHYS);
    for (int i = 0; i < S_SESSIONS; i++) {
        free (s_message_ids[i]);
        s_message_ids[i] = NULL;
    }
    return rc;
}

static int
s_compare_doubles (const void *a, const void *b)
{
    double x = *(const double *) a, y = *(const double *) b;
    return (x > y) - (x < y);
}

//  runs pairs of 64-client cases, CRC on and off in alternating order,
//  each printing its ratio; then the median.
static int
s_crc_pairs (const s_options_t *o, int runs)
{
    double ratios[S_MAX_RUNS];
    for (int run = 0; run < runs; run++) {
        double rate[2] = {0, 0}; //  [0] with the checksum, [1] without
        for (int half = 0; half < 2; half++) {
            int off = (run + half) % 2;
            s_crc_off = off;
            printf ("-- pair %d, checksum %s\n", run + 1, off ? "off" : "on");
            double unused;
            if (s_run_once (o, &unused))
                return 1;
            rate[off] = s_last_store64;
        }
        s_crc_off = false;
        ratios[run] = rate[1] > 0 ? rate[0] / rate[1] : 0;
        printf ("pair %d: with checksum %.0f, without %.0f acknowledged writes/s: ratio %.3f\n",
                run + 1, rate[0], rate[1], ratios[run]);
    }
    qsort (ratios, (size_t) runs, sizeof ratios[0], s_compare_doubles);
    double median = runs % 2 ? ratios[runs / 2] : (ratios[runs / 2 - 1] + ratios[runs / 2]) / 2;
    printf ("with / without checksum, %d pairs: median %.3f (target >= 0.95: %s)\n", runs, median,
            median >= 0.95 ? "met" : "not met");
    return 0;
}

int
main (int argc, char **argv)
{
    const char *only = argc > 3 ? argv[3] : "all";
    const char *knob_requests = getenv ("BENCH_STORE_REQUESTS");
    const char *knob_content = getenv ("BENCH_STORE_CONTENT");
    s_options_t o = {.parent = argc > 1 ? argv[1] : ".",
                     .seconds = argc > 2 ? atoi (argv[2]) : 3,
                     .run_store = strcmp (only, "raw") != 0,
                     .run_raw = strcmp (only, "all") == 0 || strcmp (only, "raw") == 0,
                     .run_crc = strcmp (only, "crc") == 0,
                     .only_clients = strcmp (only, "crc") == 0 ? 64 : atoi (only),
                     .requests = knob_requests ? atol (knob_requests) : 0,
                     .content = knob_content ? atol (knob_content) : 0};
    if (o.content < 0 || o.content > 512 * 1024)
        o.content = 0;
    int runs = argc > 4 ? atoi (argv[4]) : 1;
    if (runs < 1 || runs > S_MAX_RUNS) {
        fprintf (stderr, "runs must be 1..%d\n", S_MAX_RUNS);
        return 2;
    }
    const char *level = getenv ("CHATMESH_LOG_LEVEL");
    int log_level = cm_log_level_parse (level ? level : "error");
    cm_log_init ("bench_store", log_level < 0 ? CM_LOG_ERROR : (cm_log_level_t) log_level);

    if (o.run_crc)
        return s_crc_pairs (&o, runs);
    double ratios[S_MAX_RUNS];
    int measured = 0;
    for (int run = 0; run < runs; run++) {
        if (runs > 1)
            printf ("-- run %d of %d\n", run + 1, runs);
        double ratio;
        if (s_run_once (&o, &ratio))
            return 1;
        if (ratio > 0)
            ratios[measured++] = ratio;
    }
    if (runs > 1 && measured > 0) {
        //  Each ratio is from one run (store and raw in the same minutes);
        //  the median of several says more than any one on a noisy VM.
        printf ("store64 / raw batched, %d runs:", measured);
        for (int i = 0; i < measured; i++)
            printf (" %.3f", ratios[i]);
        qsort (ratios, (size_t) measured, sizeof ratios[0], s_compare_doubles);
        double median = measured % 2 ? ratios[measured / 2]
                                     : (ratios[measured / 2 - 1] + ratios[measured / 2]) / 2;
        int at_target = 0;
        for (int i = 0; i < measured; i++)
            at_target += ratios[i] >= 0.5;
        printf ("; median %.3f, %d of %d at or above 0.5 (target >= 0.5: %s)\n", median,
                at_target, measured, median >= 0.5 ? "met" : "not met");
    }
    return 0;
}
