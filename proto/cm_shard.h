/*  cm_shard.h: the store shards (CHATMESH_STORE_SHARDS) and which of them
    a session lives on.

    The list is "name=endpoint,name=endpoint,...": each shard has a stable
    name (1..CM_SHARD_NAME_MAX of [a-z0-9_-]) and an endpoint. An item
    without "name=" adds an endpoint to the shard before it (every node
    of a Raft-replicated shard, or a standby; callers find the leader,
    cm_leader.h), so "a=tcp://p:1,tcp://s:1" is one shard of two nodes. An empty list is one shard named
    "main" on the fallback endpoint (CHATMESH_STORE_ENDPOINT): everything
    as before sharding.

    Placement is rendezvous hashing over the names: every shard scores
    the key (a session id), the highest score wins, and rank orders all
    shards by score. Adding a shard changes a key's winner only when the
    new shard outscores the old winner (1/K of the keys), and the old
    winner then ranks second: that is what lets a gateway find sessions
    made before the shard was added (docs/architecture.md, "Sharding").
    Endpoints are not hashed: a shard may move to another address.      */
#ifndef CM_SHARD_H_INCLUDED
#define CM_SHARD_H_INCLUDED

#include "cm_config.h"

#include <stddef.h>
#include <stdint.h>

//  Most shards in one list.
#define CM_SHARDS_MAX 16
#define CM_SHARD_NAME_MAX 32
//  The shard's name when CHATMESH_STORE_SHARDS is empty.
#define CM_SHARD_DEFAULT_NAME "main"
//  The store's answer (an ERROR's "message", with CM_ENOTFOUND) to a
//  session_start marked "existing" for a session it does not hold.
#define CM_SHARD_ABSENT "session is not on this shard"

//  The environment setting, one row for every service that connects the
//  store (gateways, regenerators).
#define CM_SHARDS_TEXT_MAX (CM_SHARDS_MAX * (CM_SHARD_NAME_MAX + 2 + CM_ENDPOINT_MAX))
#define CM_CFG_STORE_SHARDS                                                            \
    {"CHATMESH_STORE_SHARDS", "--store-shards", CM_CFG_STR, "", 0, CM_SHARDS_TEXT_MAX,   \
     "store shards as name=endpoint,... (a bare endpoint after one adds a node to that "  \
     "shard: every Raft node, or a standby); "                                         \
     "empty: one shard, CHATMESH_STORE_ENDPOINT"}

typedef struct {
    char name[CM_SHARD_NAME_MAX + 1];
    char endpoint[CM_ENDPOINT_MAX + 1]; //  a comma list when it has standbys
} cm_shard_t;

typedef struct {
    int count; //  1..CM_SHARDS_MAX
    cm_shard_t shards[CM_SHARDS_MAX];
} cm_shards_t;

//  Parses list (NULL or "" = one shard on fallback). 0, or CM_EINVAL with
//  the offending item and what is wrong in `why`: an empty item, a bad or
//  repeated name, an empty or repeated endpoint, a standby before any
//  shard, too many shards, an endpoint too long. *out is then unusable.
int cm_shards_parse (const char *list, const char *fallback, cm_shards_t *out, char *why,
                     size_t why_size);

//  The shard's score for key (64-bit hash of both).
uint64_t cm_shard_score (const char *name, const char *key);

//  The shards' indexes into order (count of them), highest score for key
//  first; ties (never seen with 64-bit scores) by name.
void cm_shards_rank (const cm_shards_t *shards, const char *key, int order[CM_SHARDS_MAX]);

//  order[0] of cm_shards_rank: the shard a new session with this id goes to.
int cm_shards_pick (const cm_shards_t *shards, const char *key);

//  The index of the shard named name, or -1.
int cm_shards_find (const cm_shards_t *shards, const char *name);

#endif
