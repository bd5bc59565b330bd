/*  bc_service.h: the broadcaster's sockets around bc_server.

    PULL (events in from the store) -> bc_server_ingest -> XPUB (events out,
    [session_id, event_id, envelope]); ROUTER (history, ping) ->
    bc_server_handle; a timer prunes idle sessions. One thread, one zloop. */
#ifndef BC_SERVICE_H_INCLUDED
#define BC_SERVICE_H_INCLUDED

#include "bc_history.h"
#include "cm_curve.h"

#include <czmq.h>

typedef struct {
    const char *events_in_endpoint;  //  PULL binds
    const char *events_out_endpoint; //  XPUB binds
    const char *history_endpoint;    //  ROUTER binds
    bc_history_limits_t limits;
    uint64_t epoch;                  //  0: the current time in ms
    cm_curve_t *curve;               //  CURVE keys or NULL (borrowed)
} bc_service_options_t;

typedef struct bc_service bc_service_t;

//  Binds every socket. NULL (with the reason logged) when one cannot bind.
bc_service_t *bc_service_new (const bc_service_options_t *options);
void bc_service_destroy (bc_service_t **self_p);

uint64_t bc_service_epoch (const bc_service_t *self);

//  Runs until SIGINT/SIGTERM, or until a message arrives on `pipe` (may be
//  NULL; tests run the service in a zactor and stop it with $TERM). 0.
int bc_service_run (bc_service_t *self, zsock_t *pipe);

//  zactor body: args is a bc_service_options_t. Signals the pipe once the
//  sockets are bound (zactor_new waits for that), then sends one string,
//  "ready" or "failed", and runs until $TERM.
void bc_service_actor (zsock_t *pipe, void *args);

#endif
