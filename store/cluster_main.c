/*  chatmesh-cluster: changes the raft membership of a replicated store
    (a cluster_change request, st_membership.h).
    Usage: chatmesh-cluster add ID RAFT_HOST:PORT ENDPOINT [TIMEOUT_MS]
           chatmesh-cluster remove ID ENDPOINT [TIMEOUT_MS]
    ENDPOINT is any member's client endpoint: a follower's "leader is X"
    is followed (up to 4 hops), and "leader unknown" (an election, or a
    node that has not heard from the leader yet) asked again for 5 s. Exit 0 and "ok: op=... id=..." once the
    change is committed (an add: once the node caught up and votes), 1 and
    the store's error otherwise, 2 on bad usage. TIMEOUT_MS (default
    35000) bounds each call; the leader itself gives up waiting after
    30 s (CM_ETIMEOUT, the change goes on: ping the leader's raft.members).
    With CHATMESH_CURVE_DIR set it connects as a CURVE client with the key
    pair of CHATMESH_CURVE_IDENTITY (default: gateway).                   */
#include "cm_config.h"
#include "cm_error.h"
#include "cm_rpc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_HOPS_MAX 4
#define S_UNKNOWN_WAIT_MS 5000 //  how long "leader unknown" is asked again
#define S_UNKNOWN_PAUSE_MS 200

static int
s_usage (FILE *out)
{
    fprintf (out, "Usage: chatmesh-cluster add ID RAFT_HOST:PORT ENDPOINT [TIMEOUT_MS]\n"
                  "       chatmesh-cluster remove ID ENDPOINT [TIMEOUT_MS]\n"
                  "Adds a node (started with CHATMESH_STORE_JOIN=1) to a replicated store as a\n"
                  "voter, or removes one. ENDPOINT: any member's client endpoint (a\n"
                  "follower's leader hint is followed).\n"
                  "CHATMESH_CURVE_DIR / CHATMESH_CURVE_IDENTITY: connect with CURVE.\n");
    return out == stdout ? 0 : 2;
}

//  One call to endpoint: 0 with *reply (OK or ERROR), or cm_call's
//  transport code.
static int
s_call (const char *endpoint, cm_curve_t *curve, const cm_envelope_t *request, int timeout_ms,
        cm_envelope_t **reply)
{
    *reply = NULL;
    zsock_t *dealer = cm_dealer_new_curve (endpoint, curve, "store");
    if (!dealer)
        return CM_EINVAL;
    //  ZMQ_IMMEDIATE fails a send until the connection is up: retry that
    //  (CM_EBACKEND and no reply; the store's own CM_EBACKEND comes with
    //  its reply, and a change is never sent twice).
    int rc = CM_EBACKEND;
    for (int waited = 0; rc == CM_EBACKEND && !*reply && waited < timeout_ms; waited += 20) {
        rc = cm_call (dealer, request, timeout_ms - waited, reply);
        if (rc == CM_EBACKEND && !*reply)
            zclock_sleep (20);
    }
    zsock_destroy (&dealer);
    return *reply ? 0 : rc;
}

int
main (int argc, char **argv)
{
    if (argc >= 2 && (strcmp (argv[1], "--help") == 0 || strcmp (argv[1], "-h") == 0))
        return s_usage (stdout);
    bool add = argc >= 2 && strcmp (argv[1], "add") == 0;
    bool remove = argc >= 2 && strcmp (argv[1], "remove") == 0;
    int fixed = add ? 5 : 4; //  argv items before TIMEOUT_MS
    if ((!add && !remove) || argc < fixed || argc > fixed + 1)
        return s_usage (stderr);
    char *end = NULL;
    long long id = strtoll (argv[2], &end, 10);
    if (*end || id <= 0) {
        fprintf (stderr, "chatmesh-cluster: ID must be a positive integer, not '%s'\n", argv[2]);
        return 2;
    }
    char endpoint[CM_ENDPOINT_MAX + 1];
    snprintf (endpoint, sizeof endpoint, "%s", argv[fixed - 1]);
    int timeout_ms = argc > fixed ? atoi (argv[fixed]) : 35000;
    zsys_handler_set (NULL);
    const char *identity = getenv ("CHATMESH_CURVE_IDENTITY");
    cm_curve_t *curve = NULL;
    char why[256];
    if (cm_curve_new (getenv ("CHATMESH_CURVE_DIR"), identity ? identity : "gateway", &curve,
                      why, sizeof why)) {
        fprintf (stderr, "chatmesh-cluster: %s\n", why);
        return 2;
    }
    char request_id[72];
    cm_request_id (request_id, sizeof request_id);
    cm_envelope_t *request = cm_envelope_new (CM_MSG_CLUSTER_CHANGE, request_id), *reply = NULL;
    cm_map_set_str (request->payload, "op", add ? "add" : "remove");
    cm_map_set_int (request->payload, "id", id);
    if (add)
        cm_map_set_str (request->payload, "raft_address", argv[3]);
    int rc = 0, status = 1, hop = 0;
    int64_t unknown_until = zclock_mono () + S_UNKNOWN_WAIT_MS;
    while (hop < S_HOPS_MAX) {
        cm_envelope_destroy (&reply);
        rc = s_call (endpoint, curve, request, timeout_ms, &reply);
        if (rc)
            break;
        int code = (int) cm_map_int (reply->payload, "code", 0);
        const cm_value_t *message = cm_map_get (reply->payload, "message");
        const char *text = message && message->type == CM_T_STR ? message->u.s.ptr : "";
        if (reply->type == CM_MSG_ERROR && code == CM_ENOTLEADER
            && strncmp (text, "leader is ", 10) == 0) {
            snprintf (endpoint, sizeof endpoint, "%s", text + 10);
            hop++;
            continue;
        }
        if (reply->type == CM_MSG_ERROR && code == CM_ENOTLEADER
            && zclock_mono () < unknown_until) {
            zclock_sleep (S_UNKNOWN_PAUSE_MS);
            continue;
        }
        if (reply->type == CM_MSG_OK) {
            printf ("ok: op=%s id=%lld leader=%s\n", add ? "add" : "remove", id, endpoint);
            status = 0;
        }
        else
            fprintf (stderr, "chatmesh-cluster: %s: %s (code %d)\n", endpoint, text, code);
        break;
    }
    if (rc)
        fprintf (stderr, "chatmesh-cluster: %s: %s\n", endpoint, cm_strerror (rc));
    else if (hop == S_HOPS_MAX)
        fprintf (stderr, "chatmesh-cluster: no leader after %d hints from %s\n", S_HOPS_MAX,
                 argv[fixed - 1]);
    cm_envelope_destroy (&reply);
    cm_envelope_destroy (&request);
    cm_curve_destroy (&curve);
    return status;
}
