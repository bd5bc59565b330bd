/*  cm_config.h: one table of settings per service, as Redis' static_configs.

    Each setting has an environment variable, a mirroring flag, a type, a
    default, bounds and a line of help. cm_config_load reads defaults, then
    the environment, then flags (`--http-port 8080` or `--http-port=8080`),
    checks every value, and on the first bad one fails naming the setting
    and the value. `--help` prints the table.                               */
#ifndef CM_CONFIG_H_INCLUDED
#define CM_CONFIG_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum { CM_CFG_INT, CM_CFG_DBL, CM_CFG_BOOL, CM_CFG_STR } cm_cfg_type_t;

typedef struct {
    const char *env;     //  "CHATMESH_HTTP_PORT"
    const char *flag;    //  "--http-port"
    cm_cfg_type_t type;
    const char *dflt;    //  default as text ("" allowed for strings)
    double min, max;     //  numeric bounds; for strings, min/max length
    const char *help;
} cm_cfg_spec_t;

//  Settings every service shares.
#define CM_CFG_COMMON                                                                  \
    {"CHATMESH_LOG_LEVEL", "--log-level", CM_CFG_STR, "notice", 1, 16,                \
     "error, warning, notice, info or debug"},                                         \
    {"CHATMESH_CURVE_DIR", "--curve-dir", CM_CFG_STR, "", 0, 4096,                     \
     "CURVE keys (./chatmesh keys DIR); empty: links unencrypted"}

//  The mesh's endpoints, one row each, used by every service that binds or
//  connects them: one default, one length limit, one line of help.
#define CM_ENDPOINT_MAX 255
#define CM_CFG_STORE_ENDPOINT                                                          \
    {"CHATMESH_STORE_ENDPOINT", "--store-endpoint", CM_CFG_STR, "tcp://127.0.0.1:7101",  \
     1, CM_ENDPOINT_MAX, "store ROUTER: requests (the store binds; regenerators and gateways connect)"}
#define CM_CFG_EVENTS_IN_ENDPOINT                                                      \
    {"CHATMESH_EVENTS_IN_ENDPOINT", "--events-in-endpoint", CM_CFG_STR,                 \
     "tcp://127.0.0.1:7102", 1, CM_ENDPOINT_MAX,                                       \
     "broadcaster PULL: events from the store (each broadcaster binds its own; the store "   \
     "connects to every one of a comma list)"}
#define CM_CFG_EVENTS_OUT_ENDPOINT                                                     \
    {"CHATMESH_EVENTS_OUT_ENDPOINT", "--events-out-endpoint", CM_CFG_STR,               \
     "tcp://127.0.0.1:7103", 1, CM_ENDPOINT_MAX,                                       \
     "broadcaster XPUB: live events (each broadcaster binds its own; gateways subscribe "   \
     "to every one of a comma list)"}
#define CM_CFG_HISTORY_ENDPOINT                                                        \
    {"CHATMESH_HISTORY_ENDPOINT", "--history-endpoint", CM_CFG_STR,                     \
     "tcp://127.0.0.1:7104", 1, CM_ENDPOINT_MAX,                                       \
     "broadcaster ROUTER: history replay and ping (each broadcaster binds its own; "        \
     "gateways connect to every one of a comma list)"}

typedef struct cm_config cm_config_t;

#define CM_CONFIG_HELP 1

//  0 when loaded (*out set), CM_CONFIG_HELP when --help was printed to
//  stdout, or CM_EINVAL with a one-line reason in `why`.
int cm_config_load (const cm_cfg_spec_t *specs, size_t count, int argc, char **argv,
                    const char *program, const char *summary, cm_config_t **out,
                    char *why, size_t why_size);
//  The table's defaults only (no environment, no flags): what a test or an
//  embedding program starts from. 0, or CM_EINVAL when a default itself is
//  out of its bounds (a bug in the table).
int cm_config_defaults (const cm_cfg_spec_t *specs, size_t count, cm_config_t **out, char *why,
                        size_t why_size);
void cm_config_destroy (cm_config_t **self_p);

//  Typed getters by environment name. Asking for a name that is not in the
//  table, or with the wrong type, is a programming error: it aborts.
int64_t cm_config_int (const cm_config_t *self, const char *env);
double cm_config_dbl (const cm_config_t *self, const char *env);
bool cm_config_bool (const cm_config_t *self, const char *env);
//  Borrowed; valid until cm_config_destroy.
const char *cm_config_str (const cm_config_t *self, const char *env);

//  Parses true/false/1/0/yes/no/on/off; 0 or CM_EINVAL.
int cm_parse_bool (const char *text, bool *out);

#endif
