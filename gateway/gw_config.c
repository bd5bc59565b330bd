#include "gw_config.h"

#include "cm_config.h"
#include "cm_error.h"
#include "cm_log.h"
#include "cm_service.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

//  Fewest API worker threads: SSE streams never take these, so /healthz,
//  votes and edits still answer while the stream cap is reached.
#define GW_API_RESERVE_THREADS 8
#define GW_SECRET_MIN 16

static const cm_cfg_spec_t s_specs[] = {
    CM_CFG_COMMON,
    {"CHATMESH_HTTP_LISTEN", "--http-listen", CM_CFG_STR, "127.0.0.1:8080", 1, 255,
     "civetweb listening_ports (e.g. 127.0.0.1:8080)"},
    {"CHATMESH_HTTP_THREADS", "--http-threads", CM_CFG_INT, "64", GW_API_RESERVE_THREADS, 4096,
     "civetweb worker threads for API requests (each connection closes after its answer); as many more "
     "(at least 64) set up SSE streams, which then need no thread"},
    {"CHATMESH_HTTP_REQUEST_TIMEOUT_MS", "--http-request-timeout-ms", CM_CFG_INT, "30000", 1000,
     600000,
     "longest a client may take over a request's head and body or over taking a response "
     "(civetweb request_timeout_ms): cuts off slow clients (slowloris)"},
    {"CHATMESH_HEADER_TIMEOUT_MS", "--header-timeout-ms", CM_CFG_INT, "10000", 100, 600000,
     "a new connection must have sent its whole request head within this, else it gets a 408 "
     "and is closed (it waits in the vestibule meanwhile, holding no thread)"},
    {"CHATMESH_MAX_CONNS_PER_ADDR", "--max-conns-per-addr", CM_CFG_INT, "256", 0, 1000000,
     "connections from one client address that may wait for their request head at once; "
     "more get a 429 and are closed, with a warning (0 = no cap)"},
    {"CHATMESH_JWT_SECRET", "--jwt-secret", CM_CFG_STR, "", 0, GW_SECRET_MAX,
     "HS256 secret for bearer tokens (or use CHATMESH_JWT_SECRET_FILE)"},
    {"CHATMESH_JWT_SECRET_FILE", "--jwt-secret-file", CM_CFG_STR, "", 0, 1023,
     "file holding the HS256 secret"},
    {"CHATMESH_BACKEND_TIMEOUT_MS", "--backend-timeout-ms", CM_CFG_INT, "2000", 50, 60000,
     "how long a call to the store / broadcaster may take in all, waiting for a free "
     "connection included, before 504"},
    {"CHATMESH_BACKEND_SOCKETS", "--backend-sockets", CM_CFG_INT, "192", 1, 400,
     "connections to each of the store and the broadcaster's history: the most calls in "
     "flight at once (more wait for a free one)"},
    {"CHATMESH_MAX_BODY_BYTES", "--max-body-bytes", CM_CFG_INT, "65536", 1024, 8388608,
     "largest request body accepted (413 beyond)"},
    {"CHAT_ACTIONS_MAX_CONTENT_LENGTH", "--max-content-length", CM_CFG_INT, "10000", 1, 1000000,
     "longest message content or query, in characters"},
    {"CHAT_ACTIONS_RATE_LIMIT", "--rate-limit", CM_CFG_INT, "60", 0, 1000000,
     "message actions per minute per user (0 = unlimited)"},
    {"CHAT_REGENERATION_RATE_LIMIT", "--regen-rate-limit", CM_CFG_INT, "10", 0, 1000000,
     "regenerations per minute per user (0 = unlimited)"},
    {"CHATMESH_CORS_ORIGINS", "--cors-origins", CM_CFG_STR, "", 0, 1023,
     "comma-separated origins allowed by CORS (empty = none)"},
    {"CHATMESH_ADMIN_USERS", "--admin-users", CM_CFG_STR, "", 0, 1023,
     "comma-separated users (token sub) who are operators, as if their token said role "
     "\"admin\" (empty = only such tokens)"},
    {"CHATMESH_TRUSTED_PROXIES", "--trusted-proxies", CM_CFG_STR, "", 0, 1023,
     "comma-separated addresses or CIDRs of reverse proxies whose X-Forwarded-For names the "
     "client (empty = none; the peer is the client)"},
    {"CHATMESH_TRUSTED_PROXY_HOPS", "--trusted-proxy-hops", CM_CFG_INT, "1", 1,
     GW_PROXY_HOPS_MAX,
     "proxy layers in front of the gateway (e.g. 2 for a CDN before nginx): X-Forwarded-For "
     "entries taken from the right while each hop is a trusted proxy"},
    {"CHATMESH_WEB_DIR", "--web-dir", CM_CFG_STR, "./web", 1, 1023,
     "directory of the static frontend"},
    {"CHATMESH_WEB_LIBS", "--web-libs", CM_CFG_STR, GW_WEB_LIBS_DEFAULT, 0, 1023,
     "JavaScript libraries of the frontend, NAME=/absolute/file,... each served at /lib/NAME "
     "(the defaults are the files of Debian's libjs-marked, node-dompurify, libjs-highlight.js)"},
    {"CHATMESH_SSE_KEEPALIVE_MS", "--sse-keepalive-ms", CM_CFG_INT, "15000", 100, 600000,
     "comment line after this much silence on a stream"},
    {"CHATMESH_SSE_QUEUE_BYTES", "--sse-queue-bytes", CM_CFG_INT, "1048576", 4096, 1073741824,
     "per-stream queue; a stream that falls this far behind is closed"},
    {"CHATMESH_SSE_MAX_STREAMS", "--sse-max-streams", CM_CFG_INT, "1000", 1, 100000,
     "SSE streams per gateway (503 beyond); a live stream holds its socket, no thread"},
    {"CHATMESH_SSE_WRITERS", "--sse-writers", CM_CFG_INT, "2", 1, 64,
     "threads that write live events to the parked SSE streams"},
    {"CHATMESH_SSE_TEST_DROP_EVERY", "--sse-test-drop-every", CM_CFG_INT, "0", 0, 1000000,
     "TEST ONLY: drop every Nth live event (streams must fill it from history); 0 = off"},
    CM_CFG_STORE_ENDPOINT,
    CM_CFG_STORE_SHARDS,
    CM_CFG_STORE_READS,
    CM_CFG_EVENTS_OUT_ENDPOINT,
    CM_CFG_HISTORY_ENDPOINT,
};

int
gw_config_secret (const char *secret, const char *secret_file, char *out, size_t out_size,
                  size_t *out_len, char *why, size_t why_size)
{
    size_t len = 0;
    if (secret && *secret) {
        len = strlen (secret);
        if (len + 1 > out_size) {
            snprintf (why, why_size, "CHATMESH_JWT_SECRET: too long");
            return CM_EINVAL;
        }
        memcpy (out, secret, len + 1);
    }
    else if (secret_file && *secret_file) {
        FILE *file = fopen (secret_file, "rb");
        if (!file) {
            snprintf (why, why_size, "CHATMESH_JWT_SECRET_FILE: cannot open '%s'", secret_file);
            return CM_EINVAL;
        }
        len = fread (out, 1, out_size - 1, file);
        bool more = fgetc (file) != EOF;
        fclose (file);
        if (more) {
            snprintf (why, why_size, "CHATMESH_JWT_SECRET_FILE: '%s' is too long", secret_file);
            return CM_EINVAL;
        }
        while (len > 0 && (out[len - 1] == '\n' || out[len - 1] == '\r'))
            len--;
        out[len] = 0;
        if (memchr (out, 0, len)) {
            snprintf (why, why_size, "CHATMESH_JWT_SECRET_FILE: '%s' contains a NUL byte",
                      secret_file);
            return CM_EINVAL;
        }
    }
    else {
        snprintf (why, why_size,
                  "CHATMESH_JWT_SECRET or CHATMESH_JWT_SECRET_FILE must be set (the HS256 "
                  "secret tokens are signed with)");
        return CM_EINVAL;
    }
    //  A short HMAC secret can be brute-forced offline from one token.
    if (len < GW_SECRET_MIN) {
        snprintf (why, why_size, "CHATMESH_JWT_SECRET: must be at least %d bytes",
                  GW_SECRET_MIN);
        return CM_EINVAL;
    }
    *out_len = len;
    return 0;
}

static void
s_copy (char *dest, size_t size, const char *src)
{
    snprintf (dest, size, "%s", src ? src : "");
}

//  Every setting but the secret, from a loaded table.
static int
s_fill_settings (const cm_config_t *cfg, gw_config_t *config, char *why, size_t why_size)
{
    memset (config, 0, sizeof *config);
    int level = cm_service_log_level (cfg, why, why_size);
    if (level < 0)
        return CM_EINVAL;
    config->log_level = level;
    s_copy (config->listen, sizeof config->listen, cm_config_str (cfg, "CHATMESH_HTTP_LISTEN"));
    config->http_threads = (int) cm_config_int (cfg, "CHATMESH_HTTP_THREADS");
    config->request_timeout_ms = (int) cm_config_int (cfg, "CHATMESH_HTTP_REQUEST_TIMEOUT_MS");
    config->header_timeout_ms = (int) cm_config_int (cfg, "CHATMESH_HEADER_TIMEOUT_MS");
    config->max_conns_per_addr = (int) cm_config_int (cfg, "CHATMESH_MAX_CONNS_PER_ADDR");
    config->backend_timeout_ms = (int) cm_config_int (cfg, "CHATMESH_BACKEND_TIMEOUT_MS");
    config->backend_sockets = (int) cm_config_int (cfg, "CHATMESH_BACKEND_SOCKETS");
    config->max_body_bytes = cm_config_int (cfg, "CHATMESH_MAX_BODY_BYTES");
    config->max_content_chars = (int) cm_config_int (cfg, "CHAT_ACTIONS_MAX_CONTENT_LENGTH");
    config->rate_limit = (int) cm_config_int (cfg, "CHAT_ACTIONS_RATE_LIMIT");
    config->regen_rate_limit = (int) cm_config_int (cfg, "CHAT_REGENERATION_RATE_LIMIT");
    s_copy (config->cors_origins, sizeof config->cors_origins,
            cm_config_str (cfg, "CHATMESH_CORS_ORIGINS"));
    s_copy (config->admin_users, sizeof config->admin_users,
            cm_config_str (cfg, "CHATMESH_ADMIN_USERS"));
    char proxy_why[256];
    if (gw_proxies_parse (cm_config_str (cfg, "CHATMESH_TRUSTED_PROXIES"),
                          &config->trusted_proxies, proxy_why, sizeof proxy_why)) {
        snprintf (why, why_size, "CHATMESH_TRUSTED_PROXIES: %s", proxy_why);
        return CM_EINVAL;
    }
    config->trusted_proxies.hops = (int) cm_config_int (cfg, "CHATMESH_TRUSTED_PROXY_HOPS");
    s_copy (config->web_dir, sizeof config->web_dir, cm_config_str (cfg, "CHATMESH_WEB_DIR"));
    char libs_why[256];
    if (gw_web_libs_parse (cm_config_str (cfg, "CHATMESH_WEB_LIBS"), &config->web_libs, libs_why,
                           sizeof libs_why)) {
        snprintf (why, why_size, "CHATMESH_WEB_LIBS: %s", libs_why);
        return CM_EINVAL;
    }
    config->sse_keepalive_ms = (int) cm_config_int (cfg, "CHATMESH_SSE_KEEPALIVE_MS");
    config->sse_queue_bytes = cm_config_int (cfg, "CHATMESH_SSE_QUEUE_BYTES");
    config->sse_max_streams = (int) cm_config_int (cfg, "CHATMESH_SSE_MAX_STREAMS");
    config->sse_writers = (int) cm_config_int (cfg, "CHATMESH_SSE_WRITERS");
    config->sse_test_drop_every = (int) cm_config_int (cfg, "CHATMESH_SSE_TEST_DROP_EVERY");
    s_copy (config->store_endpoint, sizeof config->store_endpoint,
            cm_config_str (cfg, "CHATMESH_STORE_ENDPOINT"));
    char shards_why[256];
    const char *shards = cm_config_str (cfg, "CHATMESH_STORE_SHARDS");
    if (shards && *shards
        && cm_shards_parse (shards, NULL, &config->store_shards, shards_why,
                            sizeof shards_why)) {
        snprintf (why, why_size, "CHATMESH_STORE_SHARDS: %s", shards_why);
        return CM_EINVAL;
    }
    //  Each shard's list names its nodes (cm_leader.h): say now what is
    //  wrong with one, not as a pool that cannot be made.
    for (int i = 0; i < config->store_shards.count; i++)
        if (cm_leader_check (config->store_shards.shards[i].endpoint, shards_why,
                             sizeof shards_why)) {
            snprintf (why, why_size, "CHATMESH_STORE_SHARDS: shard %s: %s",
                      config->store_shards.shards[i].name, shards_why);
            return CM_EINVAL;
        }
    if (config->store_shards.count == 0
        && cm_leader_check (config->store_endpoint, shards_why, sizeof shards_why)) {
        snprintf (why, why_size, "CHATMESH_STORE_ENDPOINT: %s", shards_why);
        return CM_EINVAL;
    }
    const char *reads = cm_config_str (cfg, "CHATMESH_STORE_READS");
    if (cm_reads_parse (reads, &config->store_reads)) {
        snprintf (why, why_size, "CHATMESH_STORE_READS: \"%s\" is neither leader nor any", reads);
        return CM_EINVAL;
    }
    s_copy (config->events_endpoint, sizeof config->events_endpoint,
            cm_config_str (cfg, "CHATMESH_EVENTS_OUT_ENDPOINT"));
    s_copy (config->history_endpoint, sizeof config->history_endpoint,
            cm_config_str (cfg, "CHATMESH_HISTORY_ENDPOINT"));
    s_copy (config->curve_dir, sizeof config->curve_dir, cm_config_str (cfg, "CHATMESH_CURVE_DIR"));
    return 0;
}

static int
s_fill (const cm_config_t *cfg, gw_config_t *config, char *why, size_t why_size)
{
    int rc = s_fill_settings (cfg, config, why, why_size);
    if (rc)
        return rc;
    return gw_config_secret (cm_config_str (cfg, "CHATMESH_JWT_SECRET"),
                             cm_config_str (cfg, "CHATMESH_JWT_SECRET_FILE"), config->secret,
                             sizeof config->secret, &config->secret_len, why, why_size);
}

int
gw_config_load (int argc, char **argv, gw_config_t *config, char *why, size_t why_size)
{
    cm_config_t *cfg = NULL;
    int rc = cm_config_load (s_specs, sizeof s_specs / sizeof s_specs[0], argc, argv,
                             "chatmesh-gateway",
                             "HTTP JSON API, auth and SSE streams of chatmesh.", &cfg, why,
                             why_size);
    if (rc == CM_CONFIG_HELP)
        return GW_CONFIG_HELP;
    if (rc)
        return CM_EINVAL;
    rc = s_fill (cfg, config, why, why_size);
    cm_config_destroy (&cfg);
    return rc;
}

void
gw_config_defaults (gw_config_t *config, const char *secret)
{
    cm_config_t *cfg = NULL;
    char why[256];
    //  The table's defaults are in bounds (test_gw_config checks it), so
    //  neither call can fail but by a bug in the table.
    if (cm_config_defaults (s_specs, sizeof s_specs / sizeof s_specs[0], &cfg, why, sizeof why)
        || s_fill_settings (cfg, config, why, sizeof why)) {
        fprintf (stderr, "gw_config_defaults: %s\n", why);
        abort ();
    }
    cm_config_destroy (&cfg);
    s_copy (config->secret, sizeof config->secret, secret);
    config->secret_len = strlen (config->secret);
}
