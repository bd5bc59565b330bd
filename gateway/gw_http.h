/*  gw_http.h: the gateway's HTTP server (civetweb) and its request handling.

    Requests borrow DEALER sockets to the store and to the broadcaster's
    history from a pool per backend (created on demand, at most a few
    hundred): a socket is used by one thread at a time and changes threads
    only through the pool's mutex. Live events reach SSE streams through
    one gw_hub (one SUB socket, one dispatcher thread, a few writer
    threads; gw_sse.h). civetweb keeps connections alive between requests;
    event streams, 401/413 answers and requests whose body was not read
    close the connection.                                                  */
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
