/*  chatmesh-ping: asks a chatmesh ROUTER (store, broadcaster history) for a
    ping reply. Exit 0 and the reply as one line when it answers in time,
    1 otherwise. For health checks and scripts.
    Usage: chatmesh-ping ENDPOINT [TIMEOUT_MS]                           */
#include "cm_error.h"
#include "cm_rpc.h"

#include <stdio.h>
#include <stdlib.h>

int
main (int argc, char **argv)
{
    if (argc < 2 || argv[1][0] == '-') {
        fprintf (argc < 2 ? stderr : stdout,
                 "Usage: chatmesh-ping ENDPOINT [TIMEOUT_MS]\n"
                 "Sends a ping to a chatmesh store or broadcaster history socket.\n");
        return argc < 2 ? 2 : 0;
    }
    int timeout_ms = argc > 2 ? atoi (argv[2]) : 2000;
    zsys_handler_set (NULL);
    zsock_t *dealer = cm_dealer_new (argv[1]);
    if (!dealer) {
        fprintf (stderr, "chatmesh-ping: bad endpoint '%s'\n", argv[1]);
        return 2;
    }
    char id[72];
    cm_request_id (id, sizeof id);
    cm_envelope_t *request = cm_envelope_new (CM_MSG_PING, id), *reply = NULL;
    cm_map_set_str (request->payload, "from", "chatmesh-ping");
    //  ZMQ_IMMEDIATE makes the first send fail until the connection is up:
    //  retry that for the whole timeout rather than failing at once.
    int rc = CM_EBACKEND;
    for (int waited = 0; rc == CM_EBACKEND && waited < timeout_ms; waited += 20) {
        rc = cm_call (dealer, request, timeout_ms - waited, &reply);
        if (rc == CM_EBACKEND)
            zclock_sleep (20);
    }
    if (rc == 0) {
        printf ("ok:");
        for (size_t i = 0; i < cm_value_len (reply->payload); i++) {
            const cm_value_t *v = cm_map_value_at (reply->payload, i);
            if (v->type == CM_T_STR)
                printf (" %s=%s", cm_map_key_at (reply->payload, i), v->u.s.ptr);
            else if (v->type == CM_T_INT)
                printf (" %s=%lld", cm_map_key_at (reply->payload, i), (long long) v->u.i);
        }
        printf ("\n");
    } else
        fprintf (stderr, "chatmesh-ping: %s: %s\n", argv[1], cm_strerror (rc));
    cm_envelope_destroy (&reply);
    cm_envelope_destroy (&request);
    zsock_destroy (&dealer);
    return rc == 0 ? 0 : 1;
}
