/*  svc_flood.h: connection exhaustion against one gateway, and the latency
    another client sees meanwhile (issue 25). Two users: the test
    svc_exhaust (bounds the p99 ratio) and bench/exhaust (prints the
    figures for other flood sizes).

    A flood is `idle` connections that send nothing and `slow` slowloris
    connections that sent a partial request head and then trickle one more
    header byte each second (a background thread), from the loopback
    addresses 127.0.0.2 .. 127.0.0.(addresses + 1) in turn, so that the
    gateway's per-address cap (CHATMESH_MAX_CONNS_PER_ADDR) does not refuse
    them when idle + slow <= addresses * cap. The probing client connects
    from 127.0.0.1, one fresh connection per request, and times each
    request from connect() to the server's close.                        */
#ifndef SVC_FLOOD_H_INCLUDED
#define SVC_FLOOD_H_INCLUDED

#include "svc_harness.h"

#include <stddef.h>

//  Raises RLIMIT_NOFILE's soft limit to min(want, hard). The new soft
//  limit (the old one when it cannot be raised).
long svc_flood_raise_nofile (long want);

typedef struct svc_flood svc_flood_t;

//  Opens the flood against 127.0.0.1:port. NULL on failure, with the
//  reason in why.
svc_flood_t *svc_flood_open (int port, int idle, int slow, int addresses, char *why,
                             size_t why_size);
//  How many of the flood's connections the server has neither answered
//  nor closed (a held connection sends nothing until its deadline).
int svc_flood_open_count (svc_flood_t *flood);
//  Stops the trickle thread and closes every connection.
void svc_flood_close (svc_flood_t **flood_p);

//  Request latencies in milliseconds, gathered over several probes.
typedef struct {
    double *times;
    int count, cap;
    int failed; //  requests with no "HTTP/1.1 200" status line
} svc_samples_t;

//  Sends `request` (a whole raw request head) `count` times, each on a new
//  connection from 127.0.0.1, reads each response until the server closes,
//  and appends the times to *samples (zeroed before the first probe). -1
//  when a connection cannot be made at all.
int svc_probe (int port, const char *request, int count, svc_samples_t *samples);

typedef struct {
    double p50, p99, max;
} svc_figures_t;

//  Percentiles of the samples so far (count > 0).
void svc_samples_figures (const svc_samples_t *samples, svc_figures_t *figures);
void svc_samples_free (svc_samples_t *samples);

//  The exhaustion run: `rounds` times a quiet phase then a flooded phase,
//  each timing `samples` requests of every probe. Samples are pooled per
//  probe and phase, so a burst of noise on a shared machine lands in
//  either phase alike. Before a flooded phase the gateway's
//  chatmesh_gateway_vestibule_connections must show the whole flood held,
//  after it every flood connection must still be open (none cut or
//  refused), and before the next quiet phase the gauge must be back to 0.
typedef struct {
    int idle, slow, addresses, rounds, samples;
} svc_exhaust_params_t;

#define SVC_EXHAUST_PROBES 2 //  GET /healthz, authenticated GET /api/sessions/{id}

typedef struct {
    const char *name[SVC_EXHAUST_PROBES];
    svc_figures_t quiet[SVC_EXHAUST_PROBES], flooded[SVC_EXHAUST_PROBES];
    double ratio[SVC_EXHAUST_PROBES]; //  flooded p99 / quiet p99
    int failed;                       //  probe requests not answered 200
    long held;                        //  the gauge at the last flooded phase
} svc_exhaust_result_t;

//  Runs it against the mesh's gateway; token may read session_id. 0, or
//  -1 with the reason in why.
int svc_exhaust_run (svc_mesh_t *mesh, const char *token, const char *session_id,
                     const svc_exhaust_params_t *params, svc_exhaust_result_t *result, char *why,
                     size_t why_size);
//  The figures and ratios as "exhaust: " lines on stdout.
void svc_exhaust_print (const svc_exhaust_params_t *params, const svc_exhaust_result_t *result);

#endif
