/*  bench_exhaust: the connection exhaustion figures of issue 25, without
    the test's bound. `idle` connections that send nothing and `slow`
    slowloris ones are held on one gateway while another client times
    GET /healthz and an authenticated GET /api/sessions/{id}; quiet and
    flooded phases alternate `rounds` times, `samples` requests of each
    probe per phase (tests/service/svc_flood.h). It prints the p50/p99/max
    of each probe and phase and the flooded/quiet p99 ratio, and exits 0
    whatever they are: a bench asserts nothing about speed.

    Usage: bench_exhaust [--idle N] [--slow N] [--rounds N] [--samples N]
    (defaults 10000, 1000, 3, 400, as svc_exhaust). It starts its own mesh
    (tests/service harness: CHATMESH_BIN_DIR, CHATMESH_SOURCE_DIR) in a
    temp dir, with the header deadline raised to 120 s so that no flood
    connection is cut while it measures.                                 */
#include "svc_flood.h"
#include "svc_harness.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

//  Connections per source address stay under the gateway's default
//  per-address cap (256), as in svc_exhaust.
#define S_PER_ADDRESS 200

int
main (int argc, char **argv)
{
    svc_exhaust_params_t params = {.idle = 10000, .slow = 1000, .rounds = 3, .samples = 400};
    for (int i = 1; i < argc; i++) {
        int *field = strcmp (argv[i], "--idle") == 0      ? &params.idle
                     : strcmp (argv[i], "--slow") == 0    ? &params.slow
                     : strcmp (argv[i], "--rounds") == 0  ? &params.rounds
                     : strcmp (argv[i], "--samples") == 0 ? &params.samples
                                                          : NULL;
        if (!field || i + 1 == argc || atoi (argv[i + 1]) < 0) {
            fprintf (stderr,
                     "usage: bench_exhaust [--idle N] [--slow N] [--rounds N] [--samples N]\n");
            return 2;
        }
        *field = atoi (argv[++i]);
    }
    if (params.rounds < 1 || params.samples < 1) {
        fprintf (stderr, "bench_exhaust: --rounds and --samples must be at least 1\n");
        return 2;
    }
    params.addresses = (params.idle + params.slow) / S_PER_ADDRESS + 1;
    if (params.addresses > 250) {
        fprintf (stderr, "bench_exhaust: at most %d flood connections (127.0.0.2 .. .251)\n",
                 250 * S_PER_ADDRESS - 1);
        return 2;
    }
    //  The gateway inherits the limit; the flood's descriptors and the
    //  mesh's own need room.
    long needed = (long) params.idle + params.slow + 256;
    long limit = svc_flood_raise_nofile (needed + 1024);
    if (limit < needed) {
        fprintf (stderr, "bench_exhaust: needs %ld file descriptors, RLIMIT_NOFILE allows %ld\n",
                 needed, limit);
        return 2;
    }
    const char *env[] = {"CHATMESH_HEADER_TIMEOUT_MS=120000", "CHATMESH_LOG_LEVEL=warning",
                         NULL};
    svc_mesh_t *mesh = svc_mesh_start (env);
    if (!mesh)
        return 1;
    int rc = 1;
    char *token = svc_token (mesh, "bench", 3600);
    svc_response_t response;
    if (svc_http (mesh, "POST", "/api/run_sse/bench_exhaust", token, "{\"query\":\"hello\"}",
                  &response)
        || response.status != 200)
        fprintf (stderr, "bench_exhaust: run_sse answered %ld\n", response.status);
    else {
        svc_exhaust_result_t result;
        char why[256];
        if (svc_exhaust_run (mesh, token, "bench_exhaust", &params, &result, why, sizeof why))
            fprintf (stderr, "bench_exhaust: %s\n", why);
        else {
            svc_exhaust_print (&params, &result);
            rc = 0;
        }
    }
    svc_response_free (&response);
    free (token);
    svc_mesh_stop (&mesh);
    return rc;
}
