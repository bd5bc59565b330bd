/*  chatmesh-regenerator: claims generation tasks from the store and writes
    the answers, streaming progress back through the store.                */
#include "cm_service.h"
#include "cm_error.h"
#include "cm_log.h"
#include "rg_builtin.h"
#include "rg_openai.h"
#include "rg_service.h"

#include <stdio.h>
#include <string.h>

static const cm_cfg_spec_t s_settings[] = {
    {"CHATMESH_STORE_ENDPOINT", "--store-endpoint", CM_CFG_STR, "tcp://127.0.0.1:7101", 1,
     1024, "the store's ROUTER (DEALER connects)"},
    {"CHATMESH_REGEN_CONCURRENCY", "--regen-concurrency", CM_CFG_INT, "32", 1, 1024,
     "generations run at once (one worker thread each)"},
    {"CHATMESH_GENERATOR", "--generator", CM_CFG_STR, "builtin", 1, 16,
     "generator backend: builtin or openai"},
    {"CHATMESH_BUILTIN_TOKENS_PER_SEC", "--builtin-tokens-per-sec", CM_CFG_INT, "200", 0,
     100000, "builtin generator streaming rate (0 = unlimited)"},
    {"CHATMESH_PROGRESS_INTERVAL_MS", "--progress-interval-ms", CM_CFG_INT, "100", 0, 60000,
     "least time between two progress updates of a task"},
    {"CHATMESH_TASK_TIMEOUT_MS", "--task-timeout-ms", CM_CFG_INT, "120000", 100, 86400000,
     "a generation running longer fails with 'timed out'"},
    {"CHAT_ACTIONS_ENABLE_THOUGHT_PROCESS", "--enable-thought-process", CM_CFG_BOOL, "true",
     0, 0, "send thought_process_* events before the answer"},
    {"CHATMESH_OPENAI_BASE_URL", "--openai-base-url", CM_CFG_STR, "http://127.0.0.1:8000",
     1, 512, "openai backend: server base URL (POST <url>/v1/chat/completions)"},
    {"CHATMESH_OPENAI_MODEL", "--openai-model", CM_CFG_STR, "", 0, 128,
     "openai backend: model name (empty: the task's model)"},
    {"CHATMESH_OPENAI_API_KEY", "--openai-api-key", CM_CFG_STR, "", 0, 1024,
     "openai backend: bearer token (empty: none)"},
    {"CHATMESH_OPENAI_CONNECT_TIMEOUT_MS", "--openai-connect-timeout-ms", CM_CFG_INT, "10000",
     100, 600000, "openai backend: connect timeout"},
    {"CHATMESH_OPENAI_IDLE_TIMEOUT_MS", "--openai-idle-timeout-ms", CM_CFG_INT, "60000", 1000,
     3600000, "openai backend: an answer silent this long fails the attempt"},
    {"CHATMESH_OPENAI_MAX_RETRIES", "--openai-max-retries", CM_CFG_INT, "3", 0, 20,
     "openai backend: retries of 429/5xx/connect failures before the first token"},
    CM_CFG_COMMON,
};

int
main (int argc, char **argv)
{
    cm_config_t *config = NULL;
    cm_curve_t *curve = NULL;
    int rc = cm_service_start (s_settings, sizeof s_settings / sizeof s_settings[0], argc, argv,
                               "regenerator",
                               "Claims generation tasks from the store and writes answers.",
                               &config, &curve);
    if (rc >= 0)
        return rc;
    const char *generator = cm_config_str (config, "CHATMESH_GENERATOR");
    bool openai = strcmp (generator, "openai") == 0;
    const char *base_url = cm_config_str (config, "CHATMESH_OPENAI_BASE_URL");
    const char *bad = NULL;
    if (!openai && strcmp (generator, "builtin") != 0)
        bad = "CHATMESH_GENERATOR: not one of builtin, openai";
    else if (openai && strncmp (base_url, "http://", 7) != 0
             && strncmp (base_url, "https://", 8) != 0)
        bad = "CHATMESH_OPENAI_BASE_URL: not an http:// or https:// URL";
    if (bad) {
        fprintf (stderr, "chatmesh-regenerator: %s\n", bad);
        cm_curve_destroy (&curve);
        cm_config_destroy (&config);
        return 2;
    }

    rg_backend_t *backend = NULL;
    if (openai) {
        rg_openai_options_t openai_options = {
            .base_url = base_url,
            .api_key = cm_config_str (config, "CHATMESH_OPENAI_API_KEY"),
            .model = cm_config_str (config, "CHATMESH_OPENAI_MODEL"),
            .connect_timeout_ms = (int) cm_config_int (config, "CHATMESH_OPENAI_CONNECT_TIMEOUT_MS"),
            .idle_timeout_ms = (int) cm_config_int (config, "CHATMESH_OPENAI_IDLE_TIMEOUT_MS"),
            .max_retries = (int) cm_config_int (config, "CHATMESH_OPENAI_MAX_RETRIES"),
        };
        backend = rg_openai_new (&openai_options);
    }
    else
        backend = rg_builtin_new ((int) cm_config_int (config, "CHATMESH_BUILTIN_TOKENS_PER_SEC"));
    rg_service_options_t options = {
        .store_endpoint = cm_config_str (config, "CHATMESH_STORE_ENDPOINT"),
        .curve = curve,
        .concurrency = (int) cm_config_int (config, "CHATMESH_REGEN_CONCURRENCY"),
        .worker = {
            .thoughts = cm_config_bool (config, "CHAT_ACTIONS_ENABLE_THOUGHT_PROCESS"),
            .progress_interval_ms = cm_config_int (config, "CHATMESH_PROGRESS_INTERVAL_MS"),
            .task_timeout_ms = cm_config_int (config, "CHATMESH_TASK_TIMEOUT_MS"),
        },
    };
    rg_service_t *service = backend ? rg_service_new (&options, &backend) : NULL;
    if (!service) {
        rg_backend_destroy (&backend);
        cm_curve_destroy (&curve);
        cm_config_destroy (&config);
        return 1;
    }
    cm_notice ("started: generator %s, concurrency %d, worker %s", generator,
               options.concurrency, rg_service_worker_id (service));
    rg_service_run (service);
    rg_service_destroy (&service);
    cm_curve_destroy (&curve);
    cm_config_destroy (&config);
    return 0;
}
