/*  st_peers.h: the replicated store's membership as CHATMESH_STORE_PEERS
    gives it, parsed and checked before anything starts.

    The text is a comma list of items "id=raft_address=client_endpoint":
      id               1 .. 2^63, each once;
      raft_address     host:port of raft's TCP transport (IPv4 or a name,
                       port 1..65535), each once;
      client_endpoint  the ZeroMQ endpoint clients reach this node at, as
                       followers advertise it ("leader is <endpoint>"),
                       each once.
    1, 3 or 5 items: an even count tolerates no more failures than the odd
    count below it while needing a larger majority, so it is refused; one
    voter is allowed for tests and for measuring raft's cost.

    Errors: 0, or CM_EINVAL with why naming the item and what is wrong.   */
#ifndef ST_PEERS_H_INCLUDED
#define ST_PEERS_H_INCLUDED

#include "cm_config.h"

#include <stddef.h>
#include <stdint.h>

#define ST_PEERS_MAX 5
#define ST_PEERS_ADDRESS_MAX 255

typedef struct {
    uint64_t id;
    char raft_address[ST_PEERS_ADDRESS_MAX + 1];
    char endpoint[CM_ENDPOINT_MAX + 1];
} st_peer_t;

typedef struct {
    size_t count;
    st_peer_t peers[ST_PEERS_MAX];
} st_peers_t;

int st_peers_parse (const char *text, st_peers_t *out, char *why, size_t why_size);
//  The same without the count rule, for a node that joins a running
//  cluster (CHATMESH_STORE_JOIN): its list names the members it knows and
//  itself, whatever their number (it bootstraps nothing).
int st_peers_parse_join (const char *text, st_peers_t *out, char *why, size_t why_size);
//  The item with this id, or NULL (borrowed from peers).
const st_peer_t *st_peers_find (const st_peers_t *peers, uint64_t id);

#endif
