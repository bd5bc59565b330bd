#include "cm_service.h"
#include "cm_log.h"

#include <stdio.h>

int
cm_service_log_level (const cm_config_t *config, char *why, size_t why_size)
{
    const char *text = cm_config_str (config, "CHATMESH_LOG_LEVEL");
    int level = cm_log_level_parse (text);
    if (level < 0)
        snprintf (why, why_size,
                  "CHATMESH_LOG_LEVEL: '%s' is not one of error, warning, notice, info, debug",
                  text);
    return level;
}

int
cm_service_start (const cm_cfg_spec_t *specs, size_t count, int argc, char **argv,
                  const char *service, const char *summary, cm_config_t **config,
                  cm_curve_t **curve)
{
    char program[64], why[512];
    snprintf (program, sizeof program, "chatmesh-%s", service);
    int rc = cm_config_load (specs, count, argc, argv, program, summary, config, why, sizeof why);
    if (rc == CM_CONFIG_HELP)
        return 0;
    if (rc) {
        fprintf (stderr, "%s: %s\n", program, why);
        return 2;
    }
    int level = cm_service_log_level (*config, why, sizeof why);
    if (level < 0) {
        fprintf (stderr, "%s: %s\n", program, why);
        cm_config_destroy (config);
        return 2;
    }
    if (cm_curve_new (cm_config_str (*config, "CHATMESH_CURVE_DIR"), service, curve, why,
                      sizeof why)) {
        fprintf (stderr, "%s: %s\n", program, why);
        cm_config_destroy (config);
        return 2;
    }
    cm_log_init (program, (cm_log_level_t) level);
    if (*curve)
        cm_notice ("CURVE on: keys from %s", cm_config_str (*config, "CHATMESH_CURVE_DIR"));
    return -1;
}
