/*  gw_accept.h: the gateway's connection intake.

    civetweb 1.15's API gives a handler no socket descriptor, and the SSE
    fast path (gw_stream.h) writes to sockets directly. So this module defines
    accept() for the whole executable: libcivetweb.so resolves accept
    through the global symbol scope, where the executable comes first, so
    its calls land here; the real accept is the next definition (dlsym
    RTLD_NEXT). Each accepted socket is recorded under its peer address and
    port, and gw_accept_peer_fd finds it again. docs/architecture.md, SSE.

    While gw_accept_start has run, accept() is also the gateway's
    vestibule (docs/api.md, Security): one thread holds every new
    connection in an epoll set until its request head is complete and
    passes gw_head_check, and only then gives it to civetweb. Connections
    that send a refused head get the JSON error (400, 431, 501, 505) and
    are closed; those that do not finish their head within the header
    deadline get a 408 and are closed; an address with more than
    max_conns_per_addr connections waiting gets a 429 for each new one
    (one warning a second at most). So idle and slow connections cost a
    descriptor, never one of civetweb's threads. civetweb reads further
    requests of a connection itself, unchecked: the gateway therefore runs
    civetweb without keep-alive (one request per connection).          */
#ifndef GW_ACCEPT_H
#define GW_ACCEPT_H

#include <stddef.h>

typedef struct {
    int header_timeout_ms;  //  a request head must be complete this soon
    int max_conns_per_addr; //  connections waiting for their head, 0 = no cap
} gw_accept_options_t;

//  Raises RLIMIT_NOFILE's soft limit to the hard one and starts the
//  vestibule thread; call before mg_start. The listening socket is taken
//  over at civetweb's first accept(). -1 with a reason in why (it is
//  running already: one gateway per process).
int gw_accept_start (const gw_accept_options_t *options, char *why, size_t why_size);
//  Stops the thread and closes every connection it holds; call after
//  mg_stop. Does nothing when not started.
void gw_accept_stop (void);

//  Connections the vestibule holds now: waiting for their request head,
//  or draining after a refusal (/metrics).
long gw_accept_held (void);

//  The socket of the connection from remote_addr:remote_port (numeric
//  IPv4 or IPv6 text) to our local_port, or -1. The find is checked with
//  getpeername and getsockname: a recorded descriptor may since have been
//  closed and reused. When nothing is found, a stream simply stays on its
//  own thread (slower, still correct).
int gw_accept_peer_fd (const char *remote_addr, int remote_port, int local_port);

#endif
