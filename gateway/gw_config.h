/*  gw_config.h: the gateway's settings, one table (see cm_config.h).

    gw_config_load reads the table from environment and flags, checks the
    cross-setting rules (a JWT secret must be given) and fills a plain struct that the
    rest of the gateway reads as const.                                     */
#ifndef GW_CONFIG_H_INCLUDED
#define GW_CONFIG_H_INCLUDED

#include "cm_config.h"
#include "cm_leader.h"
#include "cm_shard.h"
#include "gw_proxy.h"
#include "gw_static.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define GW_SECRET_MAX 4096

typedef struct {
    char listen[256];        //  civetweb listening_ports syntax
    int http_threads;        //  API threads; civetweb runs this + sse_max_streams
    int request_timeout_ms;  //  civetweb request_timeout_ms (slow clients)
    int header_timeout_ms;   //  the vestibule's request-head deadline (gw_accept.h)
    int max_conns_per_addr;  //  connections waiting for their head per address, 0 = no cap
    char secret[GW_SECRET_MAX + 1];
    size_t secret_len;
    int backend_timeout_ms;  //  one call's whole budget, pool wait included
    int backend_sockets;     //  DEALERs per backend pool (calls in flight)
    int64_t max_body_bytes;
    int max_content_chars;   //  CHAT_ACTIONS_MAX_CONTENT_LENGTH, in code points
    int rate_limit;          //  actions per minute per user, 0 = unlimited
    int regen_rate_limit;    //  regenerations per minute per user
    char cors_origins[1024]; //  comma list, "" = no CORS
    char admin_users[1024];  //  comma list of operators (gw_admin.h), "" = none
    gw_proxies_t trusted_proxies; //  may name the client in X-Forwarded-For
    char web_dir[1024];
    gw_web_libs_t web_libs;  //  CHATMESH_WEB_LIBS, served at /lib/NAME (gw_static.h)
    int sse_keepalive_ms;
    int64_t sse_queue_bytes;
    int sse_max_streams;     //  stream cap (each stream holds a parked thread)
    int sse_writers;         //  writer threads of the fast path (gw_stream.h)
    int sse_test_drop_every; //  TEST ONLY: drop every Nth live event
    char store_endpoint[CM_ENDPOINT_MAX + 1];
    cm_shards_t store_shards; //  CHATMESH_STORE_SHARDS; count 0: one shard, store_endpoint
    cm_reads_t store_reads;   //  CHATMESH_STORE_READS (cm_leader.h)
    char events_endpoint[CM_ENDPOINT_MAX + 1];
    char history_endpoint[CM_ENDPOINT_MAX + 1];
    char curve_dir[4097];    //  CHATMESH_CURVE_DIR (CM_CFG_COMMON: up to 4096), "" = CURVE off
    int log_level;           //  cm_log_level_t
} gw_config_t;

#define GW_CONFIG_HELP 1

//  0 with *config filled, GW_CONFIG_HELP when --help was printed, or
//  CM_EINVAL with a one-line reason naming the setting in `why`.
int gw_config_load (int argc, char **argv, gw_config_t *config, char *why, size_t why_size);

//  Defaults only (no environment, no flags) with the given secret: tests.
void gw_config_defaults (gw_config_t *config, const char *secret);

//  Reads a JWT secret from CHATMESH_JWT_SECRET or CHATMESH_JWT_SECRET_FILE
//  (the file's content without trailing newlines). 0 or CM_EINVAL (why).
//  Shared with chatmesh-token.
int gw_config_secret (const char *secret, const char *secret_file, char *out, size_t out_size,
                      size_t *out_len, char *why, size_t why_size);

#endif
