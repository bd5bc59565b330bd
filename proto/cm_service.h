/*  cm_service.h: the start every service binary shares.

    Loads the settings table (CM_CFG_COMMON included), answers --help,
    checks CHATMESH_LOG_LEVEL, starts logging as "chatmesh-<service>", and
    loads the service's CURVE keys when CHATMESH_CURVE_DIR is set. A bad
    setting is printed to stderr naming the setting.                     */
#ifndef CM_SERVICE_H_INCLUDED
#define CM_SERVICE_H_INCLUDED

#include "cm_config.h"
#include "cm_curve.h"

//  Returns -1 when the service should run: *config and *curve (NULL when
//  CURVE is off) are then the caller's to destroy. Otherwise returns the
//  exit code: 0 after --help, 2 for a bad setting.
int cm_service_start (const cm_cfg_spec_t *specs, size_t count, int argc, char **argv,
                      const char *service, const char *summary, cm_config_t **config,
                      cm_curve_t **curve);

//  The CHATMESH_LOG_LEVEL of a loaded table (CM_CFG_COMMON), or -1 with a
//  one-line reason naming the setting.
int cm_service_log_level (const cm_config_t *config, char *why, size_t why_size);

#endif
