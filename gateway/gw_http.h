/*  gw_http.h: the gateway's HTTP server (civetweb) and its request handling.

    Requests borrow DEALER sockets to the store and to the broadcaster's
    history from a pool per backend (gw_backend.h). Live events reach SSE streams through
    one gw_hub (one SUB socket, one dispatcher thread, a few writer
    threads; gw_hub.h). Every answer closes its connection (no
    keep-alive: a kept-alive connection's next head would reach civetweb
    without the vestibule's check, docs/api.md "Security").                                                  */
#ifndef GW_HTTP_H_INCLUDED
#define GW_HTTP_H_INCLUDED

#include "gw_config.h"

#include <stddef.h>

typedef struct gw_http gw_http_t;

//  Starts listening with a copy of config. NULL with a reason in `why`
//  (e.g. the port is taken).
gw_http_t *gw_http_new (const gw_config_t *config, char *why, size_t why_size);
//  Closes every SSE stream, stops civetweb (waits for its threads) and
//  the hub. Sets *self_p to NULL.
void gw_http_destroy (gw_http_t **self_p);
//  First listening port (useful with port 0 in tests), or -1.
int gw_http_port (gw_http_t *self);

#endif
