/*  bench_pool: what one store call costs the gateway's pool itself
    (gw_backend_call: borrow a DEALER, send, match the reply, and with
    follow_leader the leader wrapper, cm_leader.h), against an in-process
    ROUTER that answers every request at once on inproc:// (no store, no
    disk, no network), so the machine's load moves it little.

    Usage: bench_pool [CALLS] [THREADS] [plain]
      CALLS per thread (default 200000), THREADS calling at once (default
      1); "plain": a pool without follow_leader (one DEALER over the list,
      the path the broadcasters' history takes), to compare.
    Prints: RESULT mode=leader|plain threads=T calls=N seconds=S
            calls_per_s=R ns_per_call=X cpu_ns_per_call=C failed=F
    cpu_ns_per_call is the process's CPU time (user + system, both sides
    of the socket) per call: on a shared machine it moves far less with
    the load than the wall-clock figures.                                 */
#include "cm_error.h"
#include "cm_rpc.h"
#include "cm_time.h"
#include "gw_backend.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#define S_ENDPOINT "inproc://bench-pool"

static atomic_bool s_stop;
static long s_calls = 200000;
static gw_backend_t *s_pool;

static double
s_cpu_seconds (void)
{
    struct rusage usage;
    getrusage (RUSAGE_SELF, &usage);
    return (double) (usage.ru_utime.tv_sec + usage.ru_stime.tv_sec)
           + (double) (usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6;
}

static void *
s_router_run (void *arg)
{
    zsock_t *router = arg;
    while (!atomic_load (&s_stop)) {
        zmq_pollitem_t item = {zsock_resolve (router), 0, ZMQ_POLLIN, 0};
        if (zmq_poll (&item, 1, 20) <= 0)
            continue;
        zmsg_t *msg = zmsg_recv (router);
        zframe_t *identity = zmsg_pop (msg);
        cm_envelope_t *request = NULL;
        if (cm_frame_decode (zmsg_last (msg), &request) == 0) {
            cm_envelope_t *reply = cm_envelope_reply_ok (request, cm_map_new ());
            cm_router_reply (router, identity, reply);
            cm_envelope_destroy (&reply);
        }
        cm_envelope_destroy (&request);
        zframe_destroy (&identity);
        zmsg_destroy (&msg);
    }
    return NULL;
}

static void *
s_caller_run (void *arg)
{
    long *failed = arg;
    for (long i = 0; i < s_calls; i++) {
        cm_value_t *payload = cm_map_new ();
        cm_map_set_str (payload, "from", "bench");
        cm_value_t *ok = NULL, *err = NULL;
        if (gw_backend_call (s_pool, CM_MSG_PING, payload, &ok, &err))
            (*failed)++;
        cm_value_destroy (&ok);
        cm_value_destroy (&err);
    }
    return NULL;
}

int
main (int argc, char **argv)
{
    if (argc > 1)
        s_calls = atol (argv[1]);
    int threads = argc > 2 ? atoi (argv[2]) : 1;
    bool plain = argc > 3 && strcmp (argv[3], "plain") == 0;
    if (s_calls < 1 || threads < 1 || threads > 64) {
        fprintf (stderr, "usage: bench_pool [CALLS] [THREADS 1..64] [plain]\n");
        return 2;
    }
    zsock_t *router = zsock_new_router (S_ENDPOINT);
    gw_backend_options_t options = {.endpoint = S_ENDPOINT,
                                    .server = "store",
                                    .sockets = threads,
                                    .timeout_ms = 5000,
                                    .follow_leader = !plain};
    s_pool = gw_backend_new (&options);
    pthread_t router_thread;
    if (!router || !s_pool || pthread_create (&router_thread, NULL, s_router_run, router)) {
        fprintf (stderr, "bench_pool: cannot start\n");
        return 1;
    }
    pthread_t callers[64];
    long failed[64] = {0};
    int64_t start = cm_mono_us ();
    double cpu_start = s_cpu_seconds ();
    for (int t = 0; t < threads; t++)
        pthread_create (&callers[t], NULL, s_caller_run, &failed[t]);
    long failures = 0;
    for (int t = 0; t < threads; t++) {
        pthread_join (callers[t], NULL);
        failures += failed[t];
    }
    double seconds = (double) (cm_mono_us () - start) / 1e6;
    double cpu = s_cpu_seconds () - cpu_start;
    double total = (double) s_calls * threads;
    printf ("RESULT mode=%s threads=%d calls=%.0f seconds=%.2f calls_per_s=%.0f "
            "ns_per_call=%.0f cpu_ns_per_call=%.0f failed=%ld\n",
            plain ? "plain" : "leader", threads, total, seconds, total / seconds,
            seconds * 1e9 / total * threads, cpu * 1e9 / total, failures);
    atomic_store (&s_stop, true);
    pthread_join (router_thread, NULL);
    gw_backend_destroy (&s_pool);
    zsock_destroy (&router);
    return failures ? 1 : 0;
}
