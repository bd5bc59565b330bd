/*  bench_wire.h: the store benchmarks' common wire steps (bench_store,
    bench_shards, bench_raft): reading one acknowledgement, dropping the
    events a broadcaster stand-in collects, finding a free port.       */
#ifndef BENCH_WIRE_H_INCLUDED
#define BENCH_WIRE_H_INCLUDED

#include <stdbool.h>

//  Receives one message on socket (a DEALER, blocking) and says whether
//  it is an OK reply to request_id.
bool bench_acknowledged (void *socket, const char *request_id);
//  Drops every message waiting on sink (a PULL standing in for the
//  broadcaster), without blocking.
void bench_drain (void *sink);
//  A loopback TCP port free at the time of the call, or -1.
int bench_free_port (void);

#endif
