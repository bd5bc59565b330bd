/*  bench_raft: the durable feedback rate of the store replicated by raft,
    as a ratio to a single store, measured in one run on one machine.

    Three cases, each a fresh dir and the same load: `clients` DEALER
    connections (default 64), each with one feedback_put in flight (vote +
    counts + audit), round the assistant messages of S_SESSIONS sessions;
    the events are drained as a broadcaster would.
      single  one store, no raft, LMDB fsync at every commit (today's);
      raft1   a one-voter raft cluster: raft's log is fsync'd, LMDB not;
      raft3   three raft nodes (three stores in this process, raft over
              loopback TCP): a write is acknowledged once two nodes have
              it on disk and the leader applied it.
    Prints each rate and raft1/single, raft3/single (target >= 0.7).
    Usage: bench_raft [dir (default: a temp dir under ./)] [seconds per case (5)]
                      [clients (64)]                                     */
#include "bench_wire.h"
#include "cm_error.h"
#include "cm_log.h"
#include "cm_rpc.h"
#include "cm_time.h"
#include "st_server.h"

#include <arpa/inet.h>
#include <czmq.h>
#include <ftw.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sys/socket.h>

#define S_SESSIONS 256
#define S_MAX_CLIENTS 256
#define S_NODES 3

static char *s_message_ids[S_SESSIONS];

static int
s_rm (const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void) sb, (void) flag, (void) ftw;
    return remove (path);
}

static void *
s_serve (void *server)
{
    st_server_run (server);
    return NULL;
}

typedef struct {
    int count;
    st_server_t *servers[S_NODES];
    pthread_t threads[S_NODES];
    char endpoints[S_NODES][64];
    st_peers_t peers;
} s_cluster_t;

//  count stores in dir: 0 = one without raft, else a raft cluster of count.
static int
s_cluster_start (s_cluster_t *cluster, const char *dir, int count, const char *events)
{
    memset (cluster, 0, sizeof *cluster);
    cluster->count = count ? count : 1;
    char text[1024] = "";
    size_t used = 0;
    for (int i = 0; i < cluster->count; i++) {
        snprintf (cluster->endpoints[i], sizeof cluster->endpoints[i], "tcp://127.0.0.1:%d",
                  bench_free_port ());
        used += (size_t) snprintf (text + used, sizeof text - used, "%s%d=127.0.0.1:%d=%s",
                                   i ? "," : "", i + 1, bench_free_port (), cluster->endpoints[i]);
    }
    char why[256];
    if (count && st_peers_parse (text, &cluster->peers, why, sizeof why)) {
        fprintf (stderr, "peers: %s\n", why);
        return -1;
    }
    for (int i = 0; i < cluster->count; i++) {
        char store_dir[600];
        snprintf (store_dir, sizeof store_dir, "%s/node%d", dir, i + 1);
        mkdir (store_dir, 0700);
        st_server_config_t config = {.endpoint = cluster->endpoints[i], .events_endpoint = events,
                                     .dir = store_dir, .map_bytes = 64u << 20, .sync = true,
                                     .readers = 2, .cleanup_interval_ms = 0,
                                     .ops = {.lease_ms = 10000, .max_attempts = 3,
                                             .retention_ms = 86400000, .worker_live_ms = 30000},
                                     .peers = count ? &cluster->peers : NULL,
                                     .node_id = (uint64_t) i + 1};
        cluster->servers[i] = st_server_new (&config);
        if (!cluster->servers[i])
            return -1;
        pthread_create (&cluster->threads[i], NULL, s_serve, cluster->servers[i]);
    }
    return 0;
}

static void
s_cluster_stop (s_cluster_t *cluster)
{
    for (int i = 0; i < cluster->count; i++)
        if (cluster->servers[i]) {
            st_server_stop (cluster->servers[i]);
            pthread_join (cluster->threads[i], NULL);
        }
    for (int i = 0; i < cluster->count; i++)
        st_server_destroy (&cluster->servers[i]);
}

//  The endpoint that takes writes: the one store, or the raft leader
//  (asked by ping until one says it leads, 10 s). NULL when none.
static const char *
s_leader (s_cluster_t *cluster)
{
    //  One dealer per node for the whole wait: a fresh one has no
    //  connection yet, and cm_call then fails at once (CM_EBACKEND).
    zsock_t *dealers[S_NODES];
    for (int i = 0; i < cluster->count; i++)
        dealers[i] = cm_dealer_new (cluster->endpoints[i]);
    const char *leader = NULL;
    int64_t until = cm_mono_ms () + 10000;
    while (!leader && cm_mono_ms () < until) {
        for (int i = 0; !leader && i < cluster->count; i++) {
            cm_envelope_t *ping = cm_envelope_new (CM_MSG_PING, NULL), *reply = NULL;
            cm_request_id (ping->request_id, sizeof ping->request_id);
            if (cm_call (dealers[i], ping, 1000, &reply) == 0) {
                const cm_value_t *raft = cm_map_get (reply->payload, "raft");
                if (!raft || strcmp (cm_map_str_or (raft, "role", ""), "leader") == 0)
                    leader = cluster->endpoints[i];
            }
            cm_envelope_destroy (&reply);
            cm_envelope_destroy (&ping);
        }
        if (!leader)
            zclock_sleep (50);
    }
    for (int i = 0; i < cluster->count; i++)
        zsock_destroy (&dealers[i]);
    return leader;
}

static int
s_seed_sessions (const char *endpoint)
{
    zsock_t *dealer = cm_dealer_new (endpoint);
    int rc = 0;
    for (int i = 0; rc == 0 && i < S_SESSIONS; i++) {
        cm_envelope_t *start = cm_envelope_new (CM_MSG_SESSION_START, NULL), *reply = NULL;
        cm_request_id (start->request_id, sizeof start->request_id);
        char session_id[32];
        snprintf (session_id, sizeof session_id, "bench-%d", i);
        cm_map_set_str (start->payload, "user", "bench");
        cm_map_set_str (start->payload, "session_id", session_id);
        cm_map_set_str (start->payload, "query", "benchmark");
        while ((rc = cm_call (dealer, start, 10000, &reply)) == CM_EBACKEND)
            zclock_sleep (10); //  not connected yet
        if (rc == 0) {
            free (s_message_ids[i]);
            s_message_ids[i] = strdup (cm_map_str_or (cm_map_get (reply->payload, "data"),
                                                      "assistant_message_id", ""));
        }
        else
            fprintf (stderr, "session_start failed: %s\n", cm_strerror (rc));
        cm_envelope_destroy (&reply);
        cm_envelope_destroy (&start);
    }
    zsock_destroy (&dealer);
    return rc;
}

//  The connections of one load and their encoding buffer.
typedef struct {
    int clients;
    void *sockets[S_MAX_CLIENTS];
    cm_envelope_t *requests[S_MAX_CLIENTS];
    long sent[S_MAX_CLIENTS];
    char *buffer;
    size_t capacity;
} s_load_t;

//  Connection c's next vote: connections take the messages in turn, so
//  two votes in flight never race on one message; the type flips per round.
static void
s_send (s_load_t *load, int c)
{
    long turn = c + load->sent[c] * load->clients;
    cm_envelope_t *request = load->requests[c];
    cm_request_id (request->request_id, sizeof request->request_id);
    cm_map_set_str (request->payload, "message_id", s_message_ids[turn % S_SESSIONS]);
    cm_map_set_str (request->payload, "feedback_type",
                    (turn / S_SESSIONS) % 2 ? "upvote" : "downvote");
    size_t size;
    if (cm_envelope_encode_into (request, &load->buffer, &load->capacity, &size) == 0)
        zmq_send (load->sockets[c], load->buffer, size, 0);
    load->sent[c]++;
}

//  Acknowledged votes per second with `clients` connections, one write
//  in flight each; -1 when a reply is not an ok or none comes for 10 s.
static double
s_load (const char *endpoint, void *sink, int clients, int seconds)
{
    void *context = zmq_ctx_new ();
    s_load_t load = {.clients = clients};
    zmq_pollitem_t items[S_MAX_CLIENTS + 1];
    for (int c = 0; c < clients; c++) {
        load.sockets[c] = zmq_socket (context, ZMQ_DEALER);
        zmq_setsockopt (load.sockets[c], ZMQ_LINGER, &(int) {0}, sizeof (int));
        zmq_connect (load.sockets[c], endpoint);
        load.requests[c] = cm_envelope_new (CM_MSG_FEEDBACK_PUT, NULL);
        cm_map_set_str (load.requests[c]->payload, "user", "bench");
        items[c] = (zmq_pollitem_t) {load.sockets[c], 0, ZMQ_POLLIN, 0};
    }
    items[clients] = (zmq_pollitem_t) {sink, 0, ZMQ_POLLIN, 0};
    long done = 0, in_flight = 0, failed = 0;
    int64_t started = cm_mono_ms (), until = started + seconds * 1000;
    for (int c = 0; c < clients; c++, in_flight++)
        s_send (&load, c);
    while (in_flight > 0 && failed == 0) {
        int ready = zmq_poll (items, clients + 1, 10000);
        if (items[clients].revents & ZMQ_POLLIN)
            bench_drain (sink);
        if (ready == 0) {
            fprintf (stderr, "no acknowledgement for 10 s\n");
            failed++;
        }
        for (int c = 0; ready > 0 && c < clients; c++) {
            if (!(items[c].revents & ZMQ_POLLIN))
                continue;
            zmq_msg_t msg;
            zmq_msg_init (&msg);
            cm_envelope_t *reply = NULL;
            bool ok = zmq_msg_recv (&msg, load.sockets[c], 0) >= 0
                      && cm_envelope_decode (zmq_msg_data (&msg), zmq_msg_size (&msg), &reply) == 0
                      && reply->type == CM_MSG_OK;
            if (!ok && reply)
                fprintf (stderr, "write refused: %s\n",
                         cm_map_str_or (reply->payload, "message", ""));
            cm_envelope_destroy (&reply);
            zmq_msg_close (&msg);
            in_flight--;
            if (!ok)
                failed++;
            else if (done++, cm_mono_ms () < until) {
                s_send (&load, c);
                in_flight++;
            }
        }
    }
    double elapsed = (double) (cm_mono_ms () - started) / 1000.0;
    for (int c = 0; c < clients; c++) {
        zmq_close (load.sockets[c]);
        cm_envelope_destroy (&load.requests[c]);
    }
    free (load.buffer);
    zmq_ctx_term (context);
    return failed ? -1 : (double) done / elapsed;
}

//  One case in a fresh dir under parent. The rate, or -1.
static double
s_case (const char *parent, const char *name, int nodes, int seconds, int clients)
{
    char dir[512], events[600];
    snprintf (dir, sizeof dir, "%s/bench_raft_XXXXXX", parent);
    if (!mkdtemp (dir))
        return -1;
    snprintf (events, sizeof events, "ipc://%s/events.ipc", dir);
    zsock_t *sink = zsock_new_pull (events);
    s_cluster_t cluster;
    double rate = -1;
    const char *leader = NULL;
    if (s_cluster_start (&cluster, dir, nodes, events))
        fprintf (stderr, "%s: the stores did not start\n", name);
    else if (!(leader = s_leader (&cluster)))
        fprintf (stderr, "%s: no store took writes within 10 s\n", name);
    else if (s_seed_sessions (leader) == 0) {
        bench_drain (zsock_resolve (sink));
        rate = s_load (leader, zsock_resolve (sink), clients, seconds);
    }
    printf ("%-7s %d clients: %10.0f acknowledged votes/s\n", name, clients, rate);
    fflush (stdout);
    s_cluster_stop (&cluster);
    zsock_destroy (&sink);
    nftw (dir, s_rm, 16, FTW_DEPTH | FTW_PHYS);
    return rate;
}

int
main (int argc, char **argv)
{
    const char *parent = argc > 1 ? argv[1] : ".";
    int seconds = argc > 2 ? atoi (argv[2]) : 5;
    int clients = argc > 3 ? atoi (argv[3]) : 64;
    if (seconds < 1 || clients < 1 || clients > S_MAX_CLIENTS) {
        fprintf (stderr, "usage: bench_raft [dir] [seconds >= 1] [clients 1..%d]\n",
                 S_MAX_CLIENTS);
        return 2;
    }
    const char *level = getenv ("CHATMESH_LOG_LEVEL");
    int log_level = cm_log_level_parse (level ? level : "error");
    cm_log_init ("bench_raft", log_level < 0 ? CM_LOG_ERROR : (cm_log_level_t) log_level);
    printf ("dir: %s, %d s per case, fsync on (LMDB for single, raft's log for raft)\n", parent,
            seconds);
    double single = s_case (parent, "single", 0, seconds, clients);
    double raft1 = s_case (parent, "raft1", 1, seconds, clients);
    double raft3 = s_case (parent, "raft3", 3, seconds, clients);
    for (int i = 0; i < S_SESSIONS; i++)
        free (s_message_ids[i]);
    if (single <= 0 || raft1 <= 0 || raft3 <= 0)
        return 1;
    printf ("raft1 / single: %.3f\n", raft1 / single);
    printf ("raft3 / single: %.3f (target >= 0.7: %s)\n", raft3 / single,
            raft3 / single >= 0.7 ? "met" : "not met");
    return 0;
}
