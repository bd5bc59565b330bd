/*  st_peers.c: CHATMESH_STORE_PEERS (st_peers.h).  */
#include "st_peers.h"

#include "cm_error.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

//  An item is quoted in a refusal up to this many bytes, so the reason
//  after it always fits.
#define S_QUOTED_MAX 80
#define S_SHOWN(len) ((int) ((len) < S_QUOTED_MAX ? (len) : S_QUOTED_MAX))

//  Copies the len bytes at text into out (size bytes with the NUL); false
//  when they do not fit or are empty.
static bool
s_copy (char *out, size_t size, const char *text, size_t len)
{
    if (len == 0 || len >= size)
        return false;
    memcpy (out, text, len);
    out[len] = 0;
    return true;
}

//  "host:port" with a port of 1..65535 and a host without spaces or ':'.
static bool
s_valid_address (const char *address)
{
    const char *colon = strrchr (address, ':');
    if (!colon || colon == address || strchr (address, ':') != colon
        || strpbrk (address, " \t"))
        return false;
    char *end;
    long port = strtol (colon + 1, &end, 10);
    return colon[1] && *end == 0 && port >= 1 && port <= 65535;
}

static int
s_item (const char *item, size_t len, st_peer_t *peer, char *why, size_t why_size)
{
    const char *first = memchr (item, '=', len);
    const char *second = first ? memchr (first + 1, '=', len - (size_t) (first + 1 - item)) : NULL;
    if (!second) {
        snprintf (why, why_size, "\"%.*s\" is not id=raft_address=client_endpoint", S_SHOWN (len), item);
        return CM_EINVAL;
    }
    char id_text[24];
    char *end;
    if (!s_copy (id_text, sizeof id_text, item, (size_t) (first - item))
        || id_text[0] < '1' || id_text[0] > '9'
        || (peer->id = strtoull (id_text, &end, 10), *end != 0) || peer->id > INT64_MAX) {
        snprintf (why, why_size, "\"%.*s\": the id must be a number from 1 to 2^63-1",
                  S_SHOWN (len), item);
        return CM_EINVAL;
    }
    if (!s_copy (peer->raft_address, sizeof peer->raft_address, first + 1,
                 (size_t) (second - first - 1))
        || !s_valid_address (peer->raft_address)) {
        snprintf (why, why_size, "\"%.*s\": the raft address must be host:port (port 1-65535)",
                  S_SHOWN (len), item);
        return CM_EINVAL;
    }
    size_t endpoint_len = len - (size_t) (second + 1 - item);
    if (!s_copy (peer->endpoint, sizeof peer->endpoint, second + 1, endpoint_len)
        || !strstr (peer->endpoint, "://")) {
        snprintf (why, why_size,
                  "\"%.*s\": the client endpoint must be a ZeroMQ endpoint of at most %d bytes "
                  "(tcp://host:port)",
                  S_SHOWN (len), item, CM_ENDPOINT_MAX);
        return CM_EINVAL;
    }
    return 0;
}

int
st_peers_parse_join (const char *text, st_peers_t *out, char *why, size_t why_size)
{
    memset (out, 0, sizeof *out);
    const char *cursor = text ? text : "";
    while (true) {
        size_t len = strcspn (cursor, ",");
        if (len == 0) {
            snprintf (why, why_size, "an empty item (a stray comma, or no peers at all)");
            return CM_EINVAL;
        }
        if (out->count == ST_PEERS_MAX) {
            snprintf (why, why_size, "more than %d peers", ST_PEERS_MAX);
            return CM_EINVAL;
        }
        st_peer_t *peer = &out->peers[out->count];
        if (s_item (cursor, len, peer, why, why_size))
            return CM_EINVAL;
        for (size_t i = 0; i < out->count; i++) {
            const st_peer_t *other = &out->peers[i];
            const char *same = other->id == peer->id ? "id"
                               : strcmp (other->raft_address, peer->raft_address) == 0
                                   ? "raft address"
                               : strcmp (other->endpoint, peer->endpoint) == 0 ? "client endpoint"
                                                                               : NULL;
            if (same) {
                snprintf (why, why_size, "\"%.*s\": its %s is also peer %llu's", S_SHOWN (len), cursor, same, (unsigned long long) other->id);
                return CM_EINVAL;
            }
        }
        out->count++;
        if (cursor[len] == 0)
            break;
        cursor += len + 1;
    }
    return 0;
}

int
st_peers_parse (const char *text, st_peers_t *out, char *why, size_t why_size)
{
    if (st_peers_parse_join (text, out, why, why_size))
        return CM_EINVAL;
    if (out->count % 2 == 0) {
        snprintf (why, why_size,
                  "%zu peers: use 1, 3 or 5 (an even count survives no more failures than one "
                  "node fewer)",
                  out->count);
        return CM_EINVAL;
    }
    return 0;
}

const st_peer_t *
st_peers_find (const st_peers_t *peers, uint64_t id)
{
    for (size_t i = 0; i < peers->count; i++)
        if (peers->peers[i].id == id)
            return &peers->peers[i];
    return NULL;
}
