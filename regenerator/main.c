/*  chatmesh-regenerator: claims generation tasks from the store and writes
    the answers, streaming progress back through the store.                */
#include "cm_service.h"
#include "cm_error.h"
#include "cm_leader.h"
#include "cm_log.h"
#include "cm_shard.h"
#include "rg_builtin.h"
#include "rg_openai.h"
#include "rg_service.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_PROMPT_FILE_MAX (1024 * 1024)

//  The system prompt: the setting, or the whole file the other setting
//  names (trailing newlines cut, as an editor leaves one). NULL with why
//  filled when both are set or the file cannot be read. Caller frees.
static char *
s_system_prompt (const cm_config_t *config, char *why, size_t why_size)
{
    const char *text = cm_config_str (config, "CHATMESH_SYSTEM_PROMPT");
    const char *path = cm_config_str (config, "CHATMESH_SYSTEM_PROMPT_FILE");
    if (!path[0])
        return strdup (text);
    if (text[0]) {
        snprintf (why, why_size, "CHATMESH_SYSTEM_PROMPT and CHATMESH_SYSTEM_PROMPT_FILE are "
                                 "both set; set one");
        return NULL;
    }
    FILE *file = fopen (path, "rb");
    char *prompt = file ? malloc (S_PROMPT_FILE_MAX + 1) : NULL;
    size_t len = prompt ? fread (prompt, 1, S_PROMPT_FILE_MAX + 1, file) : 0;
    bool failed = !file || !prompt || ferror (file);
    if (file)
        fclose (file);
    if (failed || len > S_PROMPT_FILE_MAX) {
        snprintf (why, why_size, "CHATMESH_SYSTEM_PROMPT_FILE: %s: %s", path,
                  failed ? "cannot be read" : "longer than 1 MiB");
        free (prompt);
        return NULL;
    }
    while (len && (prompt[len - 1] == '\n' || prompt[len - 1] == '\r'))
        len--;
    prompt[len] = '\0';
    return prompt;
}

//  The generator backend the settings name (NULL when it cannot start).
static rg_backend_t *
s_backend_new (const cm_config_t *config, bool openai, const char *base_url,
               const rg_prompt_options_t *prompt)
{
    if (!openai)
        return rg_builtin_new ((int) cm_config_int (config, "CHATMESH_BUILTIN_TOKENS_PER_SEC"));
    rg_openai_options_t openai_options = {
        .base_url = base_url,
        .api_key = cm_config_str (config, "CHATMESH_OPENAI_API_KEY"),
        .prompt = *prompt,
        .connect_timeout_ms = (int) cm_config_int (config, "CHATMESH_OPENAI_CONNECT_TIMEOUT_MS"),
        .idle_timeout_ms = (int) cm_config_int (config, "CHATMESH_OPENAI_IDLE_TIMEOUT_MS"),
        .max_retries = (int) cm_config_int (config, "CHATMESH_OPENAI_MAX_RETRIES"),
    };
    return rg_openai_new (&openai_options);
}

static void *
s_run_thread (void *arg)
{
    rg_service_run (arg);
    return NULL;
}

//  Runs every shard's claim loop (the first on this thread) until a
//  signal: each loop sees it; the others are stopped too when the first
//  returns for any other reason.
static void
s_run_all (rg_service_t **services, int count)
{
    pthread_t threads[CM_SHARDS_MAX];
    bool started[CM_SHARDS_MAX] = {false};
    for (int i = 1; i < count; i++)
        started[i] = pthread_create (&threads[i], NULL, s_run_thread, services[i]) == 0;
    rg_service_run (services[0]);
    for (int i = 1; i < count; i++) {
        if (!started[i]) {
            cm_error ("no thread for shard %d's claim loop", i);
            continue;
        }
        rg_service_stop (services[i]);
        pthread_join (threads[i], NULL);
    }
}

static const cm_cfg_spec_t s_settings[] = {
    CM_CFG_STORE_ENDPOINT,
    CM_CFG_STORE_SHARDS,
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
    {"CHATMESH_OPENAI_MODELS", "--openai-models", CM_CFG_STR, "", 0, 4096,
     "openai backend: comma-separated models a request may ask for (others fail the task, "
     "not retried); empty: any"},
    {"CHATMESH_OPENAI_MAX_TOKENS", "--openai-max-tokens", CM_CFG_INT, "1024", 0, 1048576,
     "openai backend: sent as max_tokens, the longest answer in tokens (0: not sent)"},
    {"CHATMESH_OPENAI_CONTEXT_TOKENS", "--openai-context-tokens", CM_CFG_INT, "0", 0,
     16777216,
     "openai backend: budget of the messages sent, estimated as bytes/4 + 4 per message; "
     "oldest turns dropped first, the system prompt and the question always sent (0: no "
     "budget)"},
    {"CHATMESH_SYSTEM_PROMPT", "--system-prompt", CM_CFG_STR, "", 0, 16384,
     "openai backend: system message sent first (a request's context follows it)"},
    {"CHATMESH_SYSTEM_PROMPT_FILE", "--system-prompt-file", CM_CFG_STR, "", 0, 4096,
     "file holding the system prompt (instead of CHATMESH_SYSTEM_PROMPT; at most 1 MiB)"},
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
    char why[512] = "";
    char *system_prompt = s_system_prompt (config, why, sizeof why);
    rg_prompt_options_t prompt = {
        .model = cm_config_str (config, "CHATMESH_OPENAI_MODEL"),
        .models = cm_config_str (config, "CHATMESH_OPENAI_MODELS"),
        .system_prompt = system_prompt ? system_prompt : "",
        .context_tokens = cm_config_int (config, "CHATMESH_OPENAI_CONTEXT_TOKENS"),
        .max_tokens = cm_config_int (config, "CHATMESH_OPENAI_MAX_TOKENS"),
    };
    const char *bad = NULL;
    if (!system_prompt || rg_prompt_check (&prompt, why, sizeof why))
        bad = why;
    else if (!openai && strcmp (generator, "builtin") != 0)
        bad = "CHATMESH_GENERATOR: not one of builtin, openai";
    else if (openai && strncmp (base_url, "http://", 7) != 0
             && strncmp (base_url, "https://", 8) != 0)
        bad = "CHATMESH_OPENAI_BASE_URL: not an http:// or https:// URL";
    if (bad) {
        fprintf (stderr, "chatmesh-regenerator: %s\n", bad);
        free (system_prompt);
        cm_curve_destroy (&curve);
        cm_config_destroy (&config);
        return 2;
    }

    cm_shards_t shards;
    if (cm_shards_parse (cm_config_str (config, "CHATMESH_STORE_SHARDS"),
                         cm_config_str (config, "CHATMESH_STORE_ENDPOINT"), &shards, why,
                         sizeof why)) {
        fprintf (stderr, "chatmesh-regenerator: CHATMESH_STORE_SHARDS: %s\n", why);
        free (system_prompt);
        cm_curve_destroy (&curve);
        cm_config_destroy (&config);
        return 2;
    }
    //  Each shard's list names its nodes (cm_leader.h).
    for (int i = 0; i < shards.count; i++)
        if (cm_leader_check (shards.shards[i].endpoint, why, sizeof why)) {
            fprintf (stderr, "chatmesh-regenerator: store shard %s: %s\n",
                     shards.shards[i].name, why);
            free (system_prompt);
            cm_curve_destroy (&curve);
            cm_config_destroy (&config);
            return 2;
        }
    //  One service per shard: its own claim loop and worker slots, so a
    //  busy shard never takes the slots another shard's tasks wait for.
    rg_service_t *services[CM_SHARDS_MAX] = {0};
    bool failed = false;
    for (int i = 0; i < shards.count && !failed; i++) {
        rg_backend_t *backend = s_backend_new (config, openai, base_url, &prompt);
        rg_service_options_t options = {
            .store_endpoint = shards.shards[i].endpoint,
            .curve = curve,
            .concurrency = (int) cm_config_int (config, "CHATMESH_REGEN_CONCURRENCY"),
            .worker = {
                .thoughts = cm_config_bool (config, "CHAT_ACTIONS_ENABLE_THOUGHT_PROCESS"),
                .progress_interval_ms = cm_config_int (config, "CHATMESH_PROGRESS_INTERVAL_MS"),
                .task_timeout_ms = cm_config_int (config, "CHATMESH_TASK_TIMEOUT_MS"),
            },
        };
        services[i] = backend ? rg_service_new (&options, &backend) : NULL;
        rg_backend_destroy (&backend);
        failed = !services[i];
        if (services[i])
            cm_notice ("started: generator %s, concurrency %d, shard %s, worker %s", generator,
                       options.concurrency, shards.shards[i].name,
                       rg_service_worker_id (services[i]));
    }
    free (system_prompt); //  every backend keeps its own copy
    if (!failed)
        s_run_all (services, shards.count);
    for (int i = 0; i < shards.count; i++)
        rg_service_destroy (&services[i]);
    cm_curve_destroy (&curve);
    cm_config_destroy (&config);
    return failed ? 1 : 0;
}
