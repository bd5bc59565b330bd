/*  st_server.h: the store process's threads and sockets.

    The main thread owns the ROUTER and the events PUSH (only it sends on
    them). Write requests go to ONE writer thread: it takes every write
    waiting, applies them in one LMDB transaction (st_ops_write_batch),
    commits (replicated: proposes it as one Raft entry and waits until a
    majority has it and it is applied here, st_raft.h), THEN hands main the batch's replies and events in one message;
    main sends the replies, THEN pushes the events to every broadcaster as
    [session_id, event envelope] (each event numbered in its commit,
    st_events.h), while the writer goes on to the next
    batch. Nothing is replied or published before its commit. Reads run on
    CHATMESH_STORE_READERS reader threads in read-only txns, which send
    their encoded replies to main over their actor pipes.

    task_claim long-polls: a claim that finds nothing is parked in the
    writer and answered as soon as a task becomes claimable (after the
    commit that made it so) or when its wait_ms runs out.                   */
#ifndef ST_SERVER_H_INCLUDED
#define ST_SERVER_H_INCLUDED

#include "cm_curve.h"
#include "st_ops.h"
#include "st_peers.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct {
    const char *endpoint;        //  ROUTER bind (CHATMESH_STORE_ENDPOINT)
    const char *events_endpoint; //  PUSH connect, comma list: one PUSH per
                                 //  broadcaster (CHATMESH_EVENTS_IN_ENDPOINT)
    const char *dir;             //  LMDB directory (must exist)
    size_t map_bytes;
    bool sync;
    int readers;
    cm_curve_t *curve;           //  CURVE keys or NULL (borrowed)
    int64_t cleanup_interval_ms; //  0 disables periodic cleanup
    st_ops_config_t ops;
    //  Replication (st_raft.h): NULL peers = one node, no raft. With peers,
    //  LMDB commits without fsync (the Raft log in dir/raft is durable),
    //  writes are served by the leader only (followers answer
    //  CM_ENOTLEADER with the leader's endpoint), reads by the leader and
    //  by a follower that has applied the read's min_index (st_reads.h),
    //  and ping tells the node's raft role.
    const st_peers_t *peers;
    uint64_t node_id;
    bool join;                      //  wait to be added, never bootstrap
    unsigned raft_snapshot_entries; //  0: st_raft's default
    unsigned raft_election_ms;      //  0: st_raft's default
} st_server_config_t;

typedef struct st_server st_server_t;

//  Opens the database, binds, starts the threads. NULL on failure (logged).
st_server_t *st_server_new (const st_server_config_t *config);
//  Serves until SIGINT/SIGTERM (zsys_interrupted) or st_server_stop.
//  Returns 0.
int st_server_run (st_server_t *self);
//  Asks run to return (any thread).
void st_server_stop (st_server_t *self);
//  Stops the threads and closes LMDB. Writes already handed to the writer
//  are committed and answered, parked claims get their empty answer (the
//  ROUTER lingers 1 s to send them), queued events are flushed for up to
//  2 s.
void st_server_destroy (st_server_t **self_p);

#endif
