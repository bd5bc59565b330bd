/*  rg_service.h: the regenerator's claim loop and worker pool.

    The calling thread long-polls the store with `task_claim` for as many
    tasks as it has free slots, and hands each task to one of `concurrency`
    worker threads. Each worker thread owns its own link to the store (a
    DEALER per node of the shard, cm_leader.h; ZeroMQ sockets never cross
    threads) and runs rg_worker_run. Claims and task calls go to the node
    last seen leading the shard and follow "not leader" answers.

    A store that is down: the claim loop retries with backoff (100 ms up to
    5 s), logging once when the store goes away and once when it is back.
    Shutdown (SIGTERM/SIGINT, or rg_service_stop): stop claiming, have every
    running worker fail its task as retryable (so another regenerator picks
    it up), join the workers.                                              */
#ifndef RG_SERVICE_H_INCLUDED
#define RG_SERVICE_H_INCLUDED

#include "cm_curve.h"
#include "rg_backend.h"
#include "rg_worker.h"

#include <stdint.h>

typedef struct {
    const char *store_endpoint; //  the shard's nodes, a comma list (cm_leader.h)
    cm_curve_t *curve; //  CURVE keys or NULL (borrowed)
    int concurrency;
    int claim_wait_ms;    //  long-poll of task_claim (default 1000)
    int call_timeout_ms;  //  other store calls (default 5000)
    rg_worker_options_t worker; //  worker_id is filled in by the service
} rg_service_options_t;

typedef struct rg_service rg_service_t;

//  Takes ownership of *backend_p. Starts the worker threads. NULL on
//  failure (the reason logged).
rg_service_t *rg_service_new (const rg_service_options_t *options, rg_backend_t **backend_p);
void rg_service_destroy (rg_service_t **self_p);

//  "rg-<host>-<pid>-<random>"; borrowed for the service's lifetime.
const char *rg_service_worker_id (const rg_service_t *self);

//  Runs the claim loop until a signal or rg_service_stop, then shuts the
//  workers down. 0.
int rg_service_run (rg_service_t *self);

//  Asks rg_service_run to return (any thread).
void rg_service_stop (rg_service_t *self);

//  Counters (any thread).
uint64_t rg_service_tasks_claimed (const rg_service_t *self);
uint64_t rg_service_tasks_completed (const rg_service_t *self);
//  Failed task_claim calls so far (store down or unreachable).
uint64_t rg_service_claim_failures (const rg_service_t *self);

#endif
