/*  chatmesh-ping: asks a chatmesh ROUTER (store, broadcaster history) for a
    ping reply. Exit 0 and the reply as one line when it answers in time,
    1 otherwise. For health checks and scripts.
    Usage: chatmesh-ping [--server store|broadcaster] [--worker-prefix P]
                         ENDPOINT [TIMEOUT_MS]
    --worker-prefix: the store also reports regenerators_matching, the live
    regenerators whose worker id starts with P (a regenerator's health
    check: "rg-<hostname>-").
    With CHATMESH_CURVE_DIR set it connects as a CURVE client using the key
    pair of CHATMESH_CURVE_IDENTITY (default: gateway).                   */
#include "cm_error.h"
#include "cm_rpc.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

//  key=value for the strings, ints and bools of map; a nested map (a
//  replicated store's "raft") as prefix.key=value; a list of {id, role}
//  (raft.members) as key=id:role,id:role.
static void
s_print_map (const cm_value_t *map, const char *prefix)
{
    for (size_t i = 0; i < cm_value_len (map); i++) {
        const cm_value_t *v = cm_map_value_at (map, i);
        const char *key = cm_map_key_at (map, i);
        if (v->type == CM_T_STR)
            printf (" %s%s=%s", prefix, key, v->u.s.ptr);
        else if (v->type == CM_T_INT)
            printf (" %s%s=%lld", prefix, key, (long long) v->u.i);
        else if (v->type == CM_T_BOOL)
            printf (" %s%s=%s", prefix, key, v->u.b ? "true" : "false");
        else if (v->type == CM_T_ARR) {
            printf (" %s%s=", prefix, key);
            for (size_t m = 0; m < cm_value_len (v); m++) {
                const cm_value_t *item = cm_arr_at (v, m);
                printf ("%s%lld:%s", m ? "," : "", (long long) cm_map_int (item, "id", 0),
                        cm_map_str_or (item, "role", "?"));
            }
        }
        else if (v->type == CM_T_MAP && !*prefix) {
            char nested[64];
            snprintf (nested, sizeof nested, "%s.", key);
            s_print_map (v, nested);
        }
    }
}

static void
s_print_reply (const cm_envelope_t *reply)
{
    printf ("ok:");
    s_print_map (reply->payload, "");
    printf ("\n");
}

int
main (int argc, char **argv)
{
    const char *server = "store", *worker_prefix = NULL;
    int arg = 1;
    while (arg + 1 < argc) {
        if (strcmp (argv[arg], "--server") == 0)
            server = argv[arg + 1];
        else if (strcmp (argv[arg], "--worker-prefix") == 0)
            worker_prefix = argv[arg + 1];
        else
            break;
        arg += 2;
    }
    bool help = arg < argc
                && (strcmp (argv[arg], "--help") == 0 || strcmp (argv[arg], "-h") == 0);
    if (arg >= argc || argv[arg][0] == '-') {
        if (!help && arg < argc)
            fprintf (stderr, "chatmesh-ping: unknown option '%s'\n", argv[arg]);
        fprintf (help ? stdout : stderr,
                 "Usage: chatmesh-ping [--server store|broadcaster] [--worker-prefix P] "
                 "ENDPOINT [TIMEOUT_MS]\n"
                 "Sends a ping to a chatmesh store or broadcaster history socket.\n"
                 "--worker-prefix P: the store also counts its live regenerators whose\n"
                 "  worker id starts with P (regenerators_matching=N).\n"
                 "CHATMESH_CURVE_DIR / CHATMESH_CURVE_IDENTITY: connect with CURVE.\n");
        return help ? 0 : 2;
    }
    const char *endpoint = argv[arg];
    int timeout_ms = arg + 1 < argc ? atoi (argv[arg + 1]) : 2000;
    zsys_handler_set (NULL);
    const char *identity = getenv ("CHATMESH_CURVE_IDENTITY");
    cm_curve_t *curve = NULL;
    char why[256];
    if (cm_curve_new (getenv ("CHATMESH_CURVE_DIR"), identity ? identity : "gateway", &curve,
                      why, sizeof why)) {
        fprintf (stderr, "chatmesh-ping: %s\n", why);
        return 2;
    }
    zsock_t *dealer = cm_dealer_new_curve (endpoint, curve, server);
    if (!dealer) {
        fprintf (stderr, "chatmesh-ping: bad endpoint '%s' or no public key for %s\n", endpoint,
                 server);
        cm_curve_destroy (&curve);
        return 2;
    }
    char id[72];
    cm_request_id (id, sizeof id);
    cm_envelope_t *request = cm_envelope_new (CM_MSG_PING, id), *reply = NULL;
    cm_map_set_str (request->payload, "from", "chatmesh-ping");
    if (worker_prefix)
        cm_map_set_str (request->payload, "worker_prefix", worker_prefix);
    //  ZMQ_IMMEDIATE makes a send fail until the connection (and its CURVE
    //  handshake) is up: retry that for the whole timeout.
    int rc = CM_EBACKEND;
    for (int waited = 0; rc == CM_EBACKEND && waited < timeout_ms; waited += 20) {
        rc = cm_call (dealer, request, timeout_ms - waited, &reply);
        if (rc == CM_EBACKEND)
            zclock_sleep (20);
    }
    if (rc == 0)
        s_print_reply (reply);
    else
        fprintf (stderr, "chatmesh-ping: %s: %s\n", endpoint, cm_strerror (rc));
    cm_envelope_destroy (&reply);
    cm_envelope_destroy (&request);
    zsock_destroy (&dealer);
    cm_curve_destroy (&curve);
    return rc == 0 ? 0 : 1;
}
