/*  chatmesh-broadcaster: gives each session's events strictly increasing
    ids, fans them out to gateways and replays recent ones on request.     */
#include "bc_service.h"
#include "cm_service.h"
#include "cm_error.h"
#include "cm_log.h"

#include <stdio.h>

static const cm_cfg_spec_t s_settings[] = {
    CM_CFG_EVENTS_IN_ENDPOINT,
    CM_CFG_EVENTS_OUT_ENDPOINT,
    CM_CFG_HISTORY_ENDPOINT,
    {"CHATMESH_HISTORY_MAX_EVENTS", "--history-max-events", CM_CFG_INT, "500", 1, 1000000,
     "events kept per session"},
    {"CHATMESH_HISTORY_MAX_AGE_MS", "--history-max-age-ms", CM_CFG_INT, "300000", 1,
     86400000, "events older than this are dropped; idle sessions too"},
    {"CHATMESH_HISTORY_MAX_SESSIONS", "--history-max-sessions", CM_CFG_INT, "100000", 1,
     10000000, "sessions held; the least recently active is dropped first"},
    CM_CFG_COMMON,
};

int
main (int argc, char **argv)
{
    cm_config_t *config = NULL;
    cm_curve_t *curve = NULL;
    int rc = cm_service_start (s_settings, sizeof s_settings / sizeof s_settings[0], argc, argv,
                               "broadcaster",
                               "Numbers session events, fans them out, replays history.",
                               &config, &curve);
    if (rc >= 0)
        return rc;

    bc_service_options_t options = {
        .events_in_endpoint = cm_config_str (config, "CHATMESH_EVENTS_IN_ENDPOINT"),
        .events_out_endpoint = cm_config_str (config, "CHATMESH_EVENTS_OUT_ENDPOINT"),
        .history_endpoint = cm_config_str (config, "CHATMESH_HISTORY_ENDPOINT"),
        .curve = curve,
        .limits = {
            .max_events = (size_t) cm_config_int (config, "CHATMESH_HISTORY_MAX_EVENTS"),
            .max_age_ms = cm_config_int (config, "CHATMESH_HISTORY_MAX_AGE_MS"),
            .max_sessions = (size_t) cm_config_int (config, "CHATMESH_HISTORY_MAX_SESSIONS"),
        },
    };
    bc_service_t *service = bc_service_new (&options);
    if (!service) {
        cm_curve_destroy (&curve);
        cm_config_destroy (&config);
        return 1;
    }
    cm_notice ("started, epoch %llu", (unsigned long long) bc_service_epoch (service));
    bc_service_run (service, NULL);
    bc_service_destroy (&service);
    cm_curve_destroy (&curve);
    cm_config_destroy (&config);
    return 0;
}
