/*  chatmesh-gateway: config -> HTTP server -> wait for SIGTERM/SIGINT ->
    destroy. Everything else lives in gateway_core.                     */
#include "cm_log.h"
#include "gw_config.h"
#include "gw_http.h"

#include <czmq.h>
#include <signal.h>
#include <stdio.h>

int
main (int argc, char **argv)
{
    //  Signals are taken by sigwait below, so czmq must not install its own
    //  handler, and every thread (civetweb, ZeroMQ) inherits them blocked.
    zsys_handler_set (NULL);
    sigset_t set;
    sigemptyset (&set);
    sigaddset (&set, SIGINT);
    sigaddset (&set, SIGTERM);
    pthread_sigmask (SIG_BLOCK, &set, NULL);

    static gw_config_t config;
    char why[512];
    int rc = gw_config_load (argc, argv, &config, why, sizeof why);
    if (rc == GW_CONFIG_HELP)
        return 0;
    if (rc) {
        fprintf (stderr, "chatmesh-gateway: %s\n", why);
        return 2;
    }
    cm_log_init ("chatmesh-gateway", (cm_log_level_t) config.log_level);
    gw_http_t *http = gw_http_new (&config, why, sizeof why);
    if (!http) {
        cm_error ("cannot start: %s", why);
        return 2;
    }
    int signal_number = 0;
    sigwait (&set, &signal_number);
    cm_notice ("signal %d: shutting down", signal_number);
    gw_http_destroy (&http);
    zsys_shutdown ();
    return 0;
}
