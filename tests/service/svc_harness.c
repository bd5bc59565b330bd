#include "svc_harness.h"

#include "tok_util.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <errno.h>
#include <stdarg.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define SVC_COUNT 5
#define SVC_EXTRA_MAX 16
//  "broadcaster2" (the broadcaster binary) runs only in a mesh of two
//  broadcasters (svc_mesh_start_broadcasters).
static const char *s_services[SVC_COUNT] = {"store", "broadcaster", "broadcaster2", "regenerator",
                                            "gateway"};

struct svc_mesh {
    char dir[256];
    char url[64];
    char secret[65];
    char **env; //  "NAME=value", NULL-terminated, owned
    size_t env_count;
    pid_t pids[SVC_COUNT];
    int statuses[SVC_COUNT]; //  wait status of the last exit, -1 before one
    pid_t extra[SVC_EXTRA_MAX]; //  svc_mesh_spawn_extra's instances (0: none)
    int extra_count;
    //  Optional second gateway (svc_mesh_spawn_gateway2).
    pid_t gateway2_pid;
    char url2[64];
    int broadcasters; //  1 or 2
    bool external_store; //  no store process of its own
};

static int
s_index (const char *service)
{
    for (int i = 0; i < SVC_COUNT; i++)
        if (strcmp (s_services[i], service) == 0)
            return i;
    return -1;
}

static void
s_env_add (svc_mesh_t *mesh, const char *format, ...)
{
    char line[1024];
    va_list args;
    va_start (args, format);
    vsnprintf (line, sizeof line, format, args);
    va_end (args);
    mesh->env = realloc (mesh->env, (mesh->env_count + 2) * sizeof (char *));
    mesh->env[mesh->env_count++] = strdup (line);
    mesh->env[mesh->env_count] = NULL;
}

int
svc_free_port (void)
{
    int fd = socket (AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_addr.s_addr = htonl (INADDR_LOOPBACK)};
    socklen_t len = sizeof addr;
    if (fd < 0 || bind (fd, (struct sockaddr *) &addr, sizeof addr)
        || getsockname (fd, (struct sockaddr *) &addr, &len)) {
        if (fd >= 0)
            close (fd);
        return -1;
    }
    close (fd);
    return ntohs (addr.sin_port);
}

//  ---------------------------------------------------------------------------
//  Processes: every service, extra instance and second gateway is started
//  by s_fork_exec, stopped by s_stop_pid and awaited by s_wait_ready.

//  Forks and execs <CHATMESH_BIN_DIR>/<service>/chatmesh-<service> with the
//  mesh's settings, then those of env, then those of last (each
//  NULL-terminated, may be NULL; for a NAME set twice the later wins), its
//  stdout and stderr appended to <dir>/log/<log_name>. The pid, or -1.
static pid_t
s_fork_exec (svc_mesh_t *mesh, const char *service, const char *log_name,
             const char *const *env, const char *const *last)
{
    const char *bin_dir = getenv ("CHATMESH_BIN_DIR");
    if (!bin_dir)
        return -1;
    char binary[512], log[512];
    if (strcmp (service, "broadcaster2") == 0)
        service = "broadcaster";
    snprintf (binary, sizeof binary, "%s/%s/chatmesh-%s", bin_dir, service, service);
    snprintf (log, sizeof log, "%s/log/%s", mesh->dir, log_name);
    pid_t pid = fork ();
    if (pid != 0)
        return pid;
    for (size_t i = 0; i < mesh->env_count; i++)
        putenv (mesh->env[i]);
    for (size_t i = 0; env && env[i]; i++)
        putenv ((char *) env[i]);
    for (size_t i = 0; last && last[i]; i++)
        putenv ((char *) last[i]);
    FILE *out = freopen (log, "a", stderr);
    if (out)
        dup2 (fileno (stderr), STDOUT_FILENO);
    execl (binary, binary, (char *) NULL);
    fprintf (stderr, "harness: cannot exec %s: %s\n", binary, strerror (errno));
    _exit (127);
}

//  Sends signal to pid and reaps it. The wait is bounded: after 10 s the
//  process (named `what` in the message) gets SIGKILL, so a test never
//  hangs on a service that ignores the signal. *status (may be NULL): the
//  wait status. 0, or -1 when pid is not a child or had to be killed.
static int
s_stop_pid (pid_t pid, const char *what, int signal, int *status)
{
    int ignored;
    if (!status)
        status = &ignored;
    if (pid <= 0)
        return -1;
    kill (pid, signal);
    for (int tries = 0; tries < 1000; tries++) {
        pid_t got = waitpid (pid, status, WNOHANG);
        if (got == pid)
            return 0;
        if (got < 0)
            return -1;
        usleep (10000);
    }
    fprintf (stderr, "harness: %s ignored signal %d for 10 s; killing\n", what, signal);
    kill (pid, SIGKILL);
    waitpid (pid, status, 0);
    return -1;
}

//  Polls GET path at base_url until it answers `status` or timeout_ms
//  passes. 0 or -1.
static int
s_wait_ready (const char *base_url, const char *path, long status, int timeout_ms)
{
    for (int waited = 0; waited < timeout_ms; waited += 20) {
        svc_response_t response;
        int rc = svc_http_at (base_url, "GET", path, NULL, NULL, NULL, NULL, &response);
        long got = response.status;
        svc_response_free (&response);
        if (rc == 0 && got == status)
            return 0;
        usleep (20000);
    }
    return -1;
}

int
svc_mesh_spawn (svc_mesh_t *mesh, const char *service)
{
    int index = s_index (service);
    if (index < 0 || (mesh->external_store && strcmp (service, "store") == 0))
        return -1;
    char log_name[64];
    snprintf (log_name, sizeof log_name, "%s.log", service);
    //  With two broadcasters the mesh's endpoints are lists (the store
    //  pushes to both, gateways subscribe to both): each broadcaster binds
    //  its own.
    char in[400], out[400], history[400];
    const char *own[] = {in, out, history, NULL};
    bool two = mesh->broadcasters == 2 && strncmp (service, "broadcaster", 11) == 0;
    if (two) {
        const char *suffix = strcmp (service, "broadcaster2") == 0 ? "-2" : "";
        snprintf (in, sizeof in, "CHATMESH_EVENTS_IN_ENDPOINT=ipc://%s/sock/events-in%s",
                  mesh->dir, suffix);
        snprintf (out, sizeof out, "CHATMESH_EVENTS_OUT_ENDPOINT=ipc://%s/sock/events-out%s",
                  mesh->dir, suffix);
        snprintf (history, sizeof history, "CHATMESH_HISTORY_ENDPOINT=ipc://%s/sock/history%s",
                  mesh->dir, suffix);
    }
    pid_t pid = s_fork_exec (mesh, service, log_name, NULL, two ? own : NULL);
    if (pid < 0)
        return -1;
    mesh->pids[index] = pid;
    return 0;
}

int
svc_mesh_kill (svc_mesh_t *mesh, const char *service, int signal)
{
    int index = s_index (service);
    if (index < 0 || mesh->pids[index] <= 0)
        return -1;
    int rc = s_stop_pid (mesh->pids[index], service, signal, &mesh->statuses[index]);
    mesh->pids[index] = 0;
    return rc;
}

int
svc_mesh_exit_status (svc_mesh_t *mesh, const char *service)
{
    int index = s_index (service);
    return index < 0 ? -1 : mesh->statuses[index];
}

int
svc_mesh_pid (svc_mesh_t *mesh, const char *service)
{
    int index = s_index (service);
    return index < 0 || mesh->pids[index] <= 0 ? -1 : mesh->pids[index];
}

const char *svc_mesh_url (svc_mesh_t *mesh) { return mesh->url; }
const char *svc_mesh_dir (svc_mesh_t *mesh) { return mesh->dir; }
const char *svc_mesh_secret (svc_mesh_t *mesh) { return mesh->secret; }

int
svc_mesh_port (svc_mesh_t *mesh)
{
    const char *colon = strrchr (mesh->url, ':');
    return colon ? atoi (colon + 1) : -1;
}

int
svc_mesh_wait_status (svc_mesh_t *mesh, const char *path, long status, int timeout_ms)
{
    return s_wait_ready (mesh->url, path, status, timeout_ms);
}

double
svc_now_ms (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_MONOTONIC, &ts);
    return (double) ts.tv_sec * 1e3 + (double) ts.tv_nsec / 1e6;
}

//  Meshes started and not yet stopped. A failing assertion leaves its
//  test (cmocka jumps out) without svc_mesh_stop: at exit their services
//  are killed, so a failed run leaves no processes behind.
#define S_LIVE_MAX 16
static svc_mesh_t *s_live[S_LIVE_MAX];

static void
s_kill_live_meshes (void)
{
    for (int m = 0; m < S_LIVE_MAX; m++) {
        svc_mesh_t *mesh = s_live[m];
        if (!mesh)
            continue;
        for (int i = 0; i < SVC_COUNT; i++)
            s_stop_pid (mesh->pids[i], s_services[i], SIGKILL, NULL);
        for (int i = 0; i < mesh->extra_count; i++)
            s_stop_pid (mesh->extra[i], "extra instance", SIGKILL, NULL);
        s_stop_pid (mesh->gateway2_pid, "second gateway", SIGKILL, NULL);
        fprintf (stderr, "harness: a test ended without stopping its mesh; killed its services,"
                         " logs kept in %s/log\n", mesh->dir);
        s_live[m] = NULL;
    }
}

static void
s_curl_init (void)
{
    curl_global_init (CURL_GLOBAL_ALL);
    signal (SIGPIPE, SIG_IGN);
    atexit (s_kill_live_meshes);
}

svc_mesh_t *
svc_mesh_start (const char *const *env)
{
    return svc_mesh_start_broadcasters (1, env);
}

static svc_mesh_t *s_mesh_start (int broadcasters, bool external_store,
                                  const char *const *env);

svc_mesh_t *
svc_mesh_start_broadcasters (int broadcasters, const char *const *env)
{
    return s_mesh_start (broadcasters, false, env);
}

svc_mesh_t *
svc_mesh_start_external_store (const char *const *env)
{
    return s_mesh_start (1, true, env);
}

static svc_mesh_t *
s_mesh_start (int broadcasters, bool external_store, const char *const *env)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once (&once, s_curl_init);
    if (broadcasters != 1 && broadcasters != 2)
        return NULL;
    svc_mesh_t *mesh = calloc (1, sizeof *mesh);
    mesh->broadcasters = broadcasters;
    mesh->external_store = external_store;
    for (int i = 0; i < SVC_COUNT; i++)
        mesh->statuses[i] = -1;
    snprintf (mesh->dir, sizeof mesh->dir, "/tmp/cmsvc-XXXXXX");
    if (!mkdtemp (mesh->dir)) {
        free (mesh);
        return NULL;
    }
    for (int m = 0; m < S_LIVE_MAX; m++)
        if (!s_live[m]) {
            s_live[m] = mesh;
            break;
        }
    char path[300];
    snprintf (path, sizeof path, "%s/log", mesh->dir);
    mkdir (path, 0700);
    snprintf (path, sizeof path, "%s/sock", mesh->dir); //  not "store": that is LMDB's
    mkdir (path, 0700);
    int port = svc_free_port ();
    snprintf (mesh->url, sizeof mesh->url, "http://127.0.0.1:%d", port);
    snprintf (mesh->secret, sizeof mesh->secret, "svc-test-secret-%ld-%d", (long) time (NULL),
              (int) getpid ());
    s_env_add (mesh, "CHATMESH_DATA_DIR=%s", mesh->dir);
    s_env_add (mesh, "CHATMESH_STORE_ENDPOINT=ipc://%s/sock/store", mesh->dir);
    const char *d = mesh->dir;
    if (broadcasters == 2) {
        s_env_add (mesh, "CHATMESH_EVENTS_IN_ENDPOINT=ipc://%s/sock/events-in,ipc://%s/sock/events-in-2", d, d);
        s_env_add (mesh, "CHATMESH_EVENTS_OUT_ENDPOINT=ipc://%s/sock/events-out,ipc://%s/sock/events-out-2", d, d);
        s_env_add (mesh, "CHATMESH_HISTORY_ENDPOINT=ipc://%s/sock/history,ipc://%s/sock/history-2", d, d);
    }
    else {
        s_env_add (mesh, "CHATMESH_EVENTS_IN_ENDPOINT=ipc://%s/sock/events-in", d);
        s_env_add (mesh, "CHATMESH_EVENTS_OUT_ENDPOINT=ipc://%s/sock/events-out", d);
        s_env_add (mesh, "CHATMESH_HISTORY_ENDPOINT=ipc://%s/sock/history", d);
    }
    s_env_add (mesh, "CHATMESH_HTTP_LISTEN=127.0.0.1:%d", port);
    s_env_add (mesh, "CHATMESH_JWT_SECRET=%s", mesh->secret);
    s_env_add (mesh, "CHATMESH_LOG_LEVEL=info");
    const char *source_dir = getenv ("CHATMESH_SOURCE_DIR");
    if (source_dir)
        s_env_add (mesh, "CHATMESH_WEB_DIR=%s/web", source_dir);
    for (size_t i = 0; env && env[i]; i++)
        s_env_add (mesh, "%s", env[i]);
    for (int i = 0; i < SVC_COUNT; i++)
        if ((broadcasters == 2 || strcmp (s_services[i], "broadcaster2"))
            && (!external_store || strcmp (s_services[i], "store"))
            && svc_mesh_spawn (mesh, s_services[i])) {
            fprintf (stderr, "harness: cannot start %s\n", s_services[i]);
            svc_mesh_stop (&mesh);
            return NULL;
        }
    if (svc_mesh_wait_status (mesh, "/readyz", 200, 20000)) {
        fprintf (stderr, "harness: mesh not ready within 20 s; logs in %s/log\n", mesh->dir);
        setenv ("CHATMESH_KEEP_TEST_DIR", "1", 1);
        svc_mesh_stop (&mesh);
        return NULL;
    }
    return mesh;
}

//  ---------------------------------------------------------------------------
//  Second gateway: same settings, its own port, so tests can prove that
//  state (rate limits) is shared through the store, not per replica.

int
svc_mesh_spawn_gateway2 (svc_mesh_t *mesh, const char *const *env)
{
    if (mesh->gateway2_pid > 0)
        return -1;
    int port = svc_free_port ();
    if (port < 0)
        return -1;
    char listen[64];
    snprintf (listen, sizeof listen, "CHATMESH_HTTP_LISTEN=127.0.0.1:%d", port);
    snprintf (mesh->url2, sizeof mesh->url2, "http://127.0.0.1:%d", port);
    const char *last[] = {listen, NULL}; //  after the mesh's: this one wins
    pid_t pid = s_fork_exec (mesh, "gateway", "gateway2.log", env, last);
    if (pid < 0)
        return -1;
    mesh->gateway2_pid = pid;
    if (s_wait_ready (mesh->url2, "/readyz", 200, 20000) == 0)
        return 0;
    fprintf (stderr, "harness: second gateway not ready within 20 s\n");
    return -1;
}

const char *svc_mesh_url2 (svc_mesh_t *mesh) { return mesh->url2; }

int
svc_mesh_spawn_extra (svc_mesh_t *mesh, const char *service, const char *const *env)
{
    if (s_index (service) < 0 || mesh->extra_count >= SVC_EXTRA_MAX)
        return -1;
    int handle = mesh->extra_count;
    char log_name[64];
    snprintf (log_name, sizeof log_name, "%s-%d.log", service, handle + 2);
    pid_t pid = s_fork_exec (mesh, service, log_name, env, NULL);
    if (pid < 0)
        return -1;
    mesh->extra[handle] = pid;
    mesh->extra_count++;
    return handle;
}

int
svc_mesh_kill_extra (svc_mesh_t *mesh, int handle, int signal)
{
    if (handle < 0 || handle >= mesh->extra_count || mesh->extra[handle] <= 0)
        return -1;
    int rc = s_stop_pid (mesh->extra[handle], "extra instance", signal, NULL);
    mesh->extra[handle] = 0;
    return rc;
}

int
svc_mesh_extra_pid (svc_mesh_t *mesh, int handle)
{
    if (handle < 0 || handle >= mesh->extra_count || mesh->extra[handle] <= 0)
        return -1;
    return mesh->extra[handle];
}

void
svc_mesh_stop (svc_mesh_t **mesh_p)
{
    if (!mesh_p || !*mesh_p)
        return;
    svc_mesh_t *mesh = *mesh_p;
    for (int m = 0; m < S_LIVE_MAX; m++)
        if (s_live[m] == mesh)
            s_live[m] = NULL;
    for (int i = 0; i < mesh->extra_count; i++)
        svc_mesh_kill_extra (mesh, i, SIGTERM);
    s_stop_pid (mesh->gateway2_pid, "second gateway", SIGTERM, NULL);
    mesh->gateway2_pid = 0;
    for (int i = SVC_COUNT - 1; i >= 0; i--)
        if (mesh->pids[i] > 0)
            svc_mesh_kill (mesh, s_services[i], SIGTERM);
    if (getenv ("CHATMESH_KEEP_TEST_DIR"))
        fprintf (stderr, "harness: kept %s\n", mesh->dir);
    else {
        char command[300];
        snprintf (command, sizeof command, "rm -rf '%s'", mesh->dir);
        if (system (command) != 0)
            fprintf (stderr, "harness: could not remove %s\n", mesh->dir);
    }
    for (size_t i = 0; i < mesh->env_count; i++)
        free (mesh->env[i]);
    free (mesh->env);
    free (mesh);
    *mesh_p = NULL;
}

int
svc_fixture_start (void **state, const char *const *env)
{
    svc_mesh_t *mesh = svc_mesh_start (env);
    *state = mesh;
    return mesh ? 0 : -1;
}

int
svc_fixture_setup (void **state)
{
    return svc_fixture_start (state, NULL);
}

int
svc_fixture_teardown (void **state)
{
    svc_mesh_t *mesh = *state;
    svc_mesh_stop (&mesh);
    *state = NULL;
    return 0;
}

char *
svc_token (svc_mesh_t *mesh, const char *user, long ttl)
{
    long now = (long) time (NULL);
    return tok_libjwt_claims (JWT_ALG_HS256, mesh->secret, user, now, now + ttl);
}

char *
svc_token_claims (svc_mesh_t *mesh, const char *claims_json, const char *alg)
{
    jwt_alg_t which = jwt_str_alg (alg);
    return tok_libjwt (which, which == JWT_ALG_NONE ? NULL : mesh->secret, NULL, claims_json);
}

//  ---------------------------------------------------------------------------
//  HTTP

typedef struct {
    char *data;
    size_t len;
} s_buffer_t;

static size_t
s_append (char *ptr, size_t size, size_t nmemb, void *userdata)
{
    s_buffer_t *buffer = userdata;
    size_t n = size * nmemb;
    buffer->data = realloc (buffer->data, buffer->len + n + 1);
    memcpy (buffer->data + buffer->len, ptr, n);
    buffer->len += n;
    buffer->data[buffer->len] = 0;
    return n;
}

int
svc_http_ex (svc_mesh_t *mesh, const char *method, const char *path, const char *token,
             const char *body, const char *content_type, const char *extra_header,
             svc_response_t *response)
{
    return svc_http_at (mesh->url, method, path, token, body, content_type, extra_header,
                        response);
}

//  One request; libcurl's result code.
static CURLcode
s_http (const char *base_url, const char *method, const char *path, const char *token,
        const char *body, const char *content_type, const char *extra_header, long timeout_ms,
        svc_response_t *response)
{
    memset (response, 0, sizeof *response);
    CURL *curl = curl_easy_init ();
    char url[2048], auth[4096], type[256];
    snprintf (url, sizeof url, "%s%s", base_url, path);
    struct curl_slist *headers = NULL;
    if (token) {
        snprintf (auth, sizeof auth, "Authorization: Bearer %s", token);
        headers = curl_slist_append (headers, auth);
    }
    if (body) {
        snprintf (type, sizeof type, "Content-Type: %s",
                  content_type ? content_type : "application/json");
        headers = curl_slist_append (headers, type);
        curl_easy_setopt (curl, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt (curl, CURLOPT_POSTFIELDSIZE, (long) strlen (body));
    }
    if (extra_header)
        headers = curl_slist_append (headers, extra_header);
    headers = curl_slist_append (headers, "Expect:");
    s_buffer_t out = {calloc (1, 1), 0}, head = {calloc (1, 1), 0};
    curl_easy_setopt (curl, CURLOPT_URL, url);
    curl_easy_setopt (curl, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt (curl, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt (curl, CURLOPT_WRITEFUNCTION, s_append);
    curl_easy_setopt (curl, CURLOPT_WRITEDATA, &out);
    curl_easy_setopt (curl, CURLOPT_HEADERFUNCTION, s_append);
    curl_easy_setopt (curl, CURLOPT_HEADERDATA, &head);
    curl_easy_setopt (curl, CURLOPT_TIMEOUT_MS, timeout_ms);
    curl_easy_setopt (curl, CURLOPT_NOSIGNAL, 1L);
    CURLcode rc = curl_easy_perform (curl);
    curl_easy_getinfo (curl, CURLINFO_RESPONSE_CODE, &response->status);
    curl_slist_free_all (headers);
    curl_easy_cleanup (curl);
    response->body = out.data;
    response->headers = head.data;
    response->json = json_loads (out.data, 0, NULL);
    return rc;
}

int
svc_http_at (const char *base_url, const char *method, const char *path, const char *token,
             const char *body, const char *content_type, const char *extra_header,
             svc_response_t *response)
{
    return s_http (base_url, method, path, token, body, content_type, extra_header, 15000,
                   response) == CURLE_OK
               ? 0
               : -1;
}

int
svc_http_timed (svc_mesh_t *mesh, const char *method, const char *path, const char *token,
                const char *body, long timeout_ms, svc_response_t *response)
{
    return (int) s_http (mesh->url, method, path, token, body, NULL, NULL, timeout_ms, response);
}

int
svc_http (svc_mesh_t *mesh, const char *method, const char *path, const char *token,
          const char *body, svc_response_t *response)
{
    return svc_http_ex (mesh, method, path, token, body, NULL, NULL, response);
}

void
svc_response_free (svc_response_t *response)
{
    free (response->body);
    free (response->headers);
    json_decref (response->json);
    memset (response, 0, sizeof *response);
}

int
svc_response_header (const svc_response_t *response, const char *name, char *buffer,
                     size_t size)
{
    size_t name_len = strlen (name);
    for (const char *line = response->headers; line && *line;) {
        const char *end = strstr (line, "\r\n");
        size_t len = end ? (size_t) (end - line) : strlen (line);
        if (len > name_len && strncasecmp (line, name, name_len) == 0 && line[name_len] == ':') {
            const char *value = line + name_len + 1;
            while (*value == ' ')
                value++;
            snprintf (buffer, size, "%.*s", (int) (line + len - value), value);
            return 0;
        }
        line = end ? end + 2 : line + len;
    }
    return -1;
}

long
svc_turn_at (const char *base_url, const char *token, const char *session, const char *query,
             svc_response_t *response)
{
    char path[300];
    snprintf (path, sizeof path, "/api/run_sse/%s", session);
    json_t *json = json_pack ("{s:s}", "query", query);
    char *body = json_dumps (json, JSON_COMPACT);
    json_decref (json);
    svc_http_at (base_url, "POST", path, token, body, NULL, NULL, response);
    free (body);
    return response->status;
}

long
svc_turn (svc_mesh_t *mesh, const char *token, const char *session, const char *query,
          svc_response_t *response)
{
    return svc_turn_at (mesh->url, token, session, query, response);
}

const char *
svc_json_str (const json_t *object, const char *key, const char *key2)
{
    json_t *value = json_object_get (object, key);
    if (key2)
        value = json_object_get (value, key2);
    return json_string_value (value);
}

//  Reads stream to its end into a NUL-terminated buffer (caller frees).
static s_buffer_t
s_read_stream (FILE *stream)
{
    s_buffer_t buffer = {calloc (1, 1), 0};
    char chunk[4096];
    size_t n;
    while ((n = fread (chunk, 1, sizeof chunk, stream)) > 0)
        s_append (chunk, 1, n, &buffer);
    return buffer;
}

char *
svc_read_bytes (const char *path, size_t *size)
{
    FILE *file = fopen (path, "rb");
    if (!file)
        return NULL;
    s_buffer_t buffer = s_read_stream (file);
    fclose (file);
    if (size)
        *size = buffer.len;
    return buffer.data;
}

char *
svc_read_file (const char *path)
{
    return svc_read_bytes (path, NULL);
}

int
svc_run (const char *command, char *output, size_t size)
{
    FILE *pipe = popen (command, "r");
    if (!pipe)
        return -1;
    //  Read to the end, so the command never dies of SIGPIPE on a long output.
    s_buffer_t buffer = s_read_stream (pipe);
    if (output && size)
        snprintf (output, size, "%.*s", (int) (buffer.len < size ? buffer.len : size - 1),
                  buffer.data);
    free (buffer.data);
    int status = pclose (pipe);
    return status != -1 && WIFEXITED (status) ? WEXITSTATUS (status) : -1;
}

int
svc_store_verify (const char *dir, char *output, size_t size)
{
    char command[1024];
    snprintf (command, sizeof command, "%s/store/chatmesh-store --verify %s 2>&1",
              getenv ("CHATMESH_BIN_DIR"), dir);
    return svc_run (command, output, size);
}

//  ---------------------------------------------------------------------------
//  SSE

struct svc_sse {
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t changed;
    CURL *curl;
    struct curl_slist *headers;
    char url[2048];
    s_buffer_t pending; //  bytes not yet forming a whole event
    svc_event_t **events;
    size_t count, cap, cursor, comments;
    long status;
    bool opened, closed, stop;
};

static void
s_sse_parse_block (svc_sse_t *sse, char *block)
{
    svc_event_t event = {{0}, {0}, NULL, NULL, svc_now_ms ()};
    bool any = false;
    //  strtok_r: every reader parses on its own thread.
    char *save = NULL;
    for (char *line = strtok_r (block, "\n", &save); line; line = strtok_r (NULL, "\n", &save)) {
        size_t len = strlen (line);
        if (len && line[len - 1] == '\r')
            line[--len] = 0;
        if (line[0] == ':') {
            sse->comments++;
            continue;
        }
        any = true;
        if (strncmp (line, "id: ", 4) == 0)
            snprintf (event.id, sizeof event.id, "%s", line + 4);
        else if (strncmp (line, "event: ", 7) == 0)
            snprintf (event.event, sizeof event.event, "%s", line + 7);
        else if (strncmp (line, "data: ", 6) == 0) {
            if (event.data) { //  multi-line data joins with \n
                size_t old = strlen (event.data);
                event.data = realloc (event.data, old + len - 6 + 2);
                event.data[old] = '\n';
                strcpy (event.data + old + 1, line + 6);
            } else
                event.data = strdup (line + 6);
        }
    }
    if (!any)
        return;
    if (!event.data)
        event.data = strdup ("");
    event.json = json_loads (event.data, 0, NULL);
    if (sse->count == sse->cap) {
        sse->cap = sse->cap ? sse->cap * 2 : 64;
        sse->events = realloc (sse->events, sse->cap * sizeof (svc_event_t *));
    }
    sse->events[sse->count] = malloc (sizeof event);
    *sse->events[sse->count++] = event;
}

static size_t
s_sse_write (char *ptr, size_t size, size_t nmemb, void *userdata)
{
    svc_sse_t *sse = userdata;
    size_t n = size * nmemb;
    pthread_mutex_lock (&sse->lock);
    if (sse->stop) {
        pthread_mutex_unlock (&sse->lock);
        return 0;
    }
    s_append (ptr, 1, n, &sse->pending);
    char *end;
    while ((end = strstr (sse->pending.data, "\n\n"))) {
        *end = 0;
        s_sse_parse_block (sse, sse->pending.data);
        size_t used = (size_t) (end - sse->pending.data) + 2;
        memmove (sse->pending.data, sse->pending.data + used, sse->pending.len - used + 1);
        sse->pending.len -= used;
    }
    pthread_cond_broadcast (&sse->changed);
    pthread_mutex_unlock (&sse->lock);
    return n;
}

static size_t
s_sse_header (char *ptr, size_t size, size_t nmemb, void *userdata)
{
    svc_sse_t *sse = userdata;
    size_t n = size * nmemb;
    if (n == 2 && ptr[0] == '\r') { //  end of headers
        pthread_mutex_lock (&sse->lock);
        curl_easy_getinfo (sse->curl, CURLINFO_RESPONSE_CODE, &sse->status);
        sse->opened = true;
        pthread_cond_broadcast (&sse->changed);
        pthread_mutex_unlock (&sse->lock);
    }
    return n;
}

static int
s_sse_progress (void *userdata, curl_off_t a, curl_off_t b, curl_off_t c, curl_off_t d)
{
    (void) a, (void) b, (void) c, (void) d;
    svc_sse_t *sse = userdata;
    pthread_mutex_lock (&sse->lock);
    bool stop = sse->stop;
    pthread_mutex_unlock (&sse->lock);
    return stop ? 1 : 0;
}

static void *
s_sse_run (void *arg)
{
    svc_sse_t *sse = arg;
    curl_easy_perform (sse->curl);
    pthread_mutex_lock (&sse->lock);
    if (!sse->opened)
        curl_easy_getinfo (sse->curl, CURLINFO_RESPONSE_CODE, &sse->status);
    sse->opened = true;
    sse->closed = true;
    pthread_cond_broadcast (&sse->changed);
    pthread_mutex_unlock (&sse->lock);
    return NULL;
}

static void
s_deadline (struct timespec *ts, int timeout_ms)
{
    clock_gettime (CLOCK_REALTIME, ts);
    ts->tv_sec += timeout_ms / 1000;
    ts->tv_nsec += (long) (timeout_ms % 1000) * 1000000;
    if (ts->tv_nsec >= 1000000000) {
        ts->tv_sec++;
        ts->tv_nsec -= 1000000000;
    }
}

svc_sse_t *
svc_sse_open (svc_mesh_t *mesh, const char *path, const char *token, const char *last_event_id)
{
    return svc_sse_open_at (mesh->url, path, token, last_event_id);
}

svc_sse_t *
svc_sse_open_at (const char *base_url, const char *path, const char *token,
                 const char *last_event_id)
{
    svc_sse_t *sse = calloc (1, sizeof *sse);
    pthread_mutex_init (&sse->lock, NULL);
    pthread_cond_init (&sse->changed, NULL);
    sse->pending.data = calloc (1, 1);
    snprintf (sse->url, sizeof sse->url, "%s%s", base_url, path);
    char line[4096];
    sse->headers = curl_slist_append (NULL, "Accept: text/event-stream");
    if (token) {
        snprintf (line, sizeof line, "Authorization: Bearer %s", token);
        sse->headers = curl_slist_append (sse->headers, line);
    }
    if (last_event_id) {
        snprintf (line, sizeof line, "Last-Event-ID: %s", last_event_id);
        sse->headers = curl_slist_append (sse->headers, line);
    }
    sse->curl = curl_easy_init ();
    curl_easy_setopt (sse->curl, CURLOPT_URL, sse->url);
    curl_easy_setopt (sse->curl, CURLOPT_HTTPHEADER, sse->headers);
    curl_easy_setopt (sse->curl, CURLOPT_WRITEFUNCTION, s_sse_write);
    curl_easy_setopt (sse->curl, CURLOPT_WRITEDATA, sse);
    curl_easy_setopt (sse->curl, CURLOPT_HEADERFUNCTION, s_sse_header);
    curl_easy_setopt (sse->curl, CURLOPT_HEADERDATA, sse);
    curl_easy_setopt (sse->curl, CURLOPT_XFERINFOFUNCTION, s_sse_progress);
    curl_easy_setopt (sse->curl, CURLOPT_XFERINFODATA, sse);
    curl_easy_setopt (sse->curl, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt (sse->curl, CURLOPT_NOSIGNAL, 1L);
    pthread_create (&sse->thread, NULL, s_sse_run, sse);
    struct timespec deadline;
    s_deadline (&deadline, 10000);
    pthread_mutex_lock (&sse->lock);
    while (!sse->opened)
        if (pthread_cond_timedwait (&sse->changed, &sse->lock, &deadline) == ETIMEDOUT)
            break;
    bool opened = sse->opened;
    pthread_mutex_unlock (&sse->lock);
    if (!opened) {
        svc_sse_close (&sse);
        return NULL;
    }
    return sse;
}

const svc_event_t *
svc_sse_wait (svc_sse_t *sse, const char *type, int timeout_ms)
{
    struct timespec deadline;
    s_deadline (&deadline, timeout_ms);
    const svc_event_t *found = NULL;
    pthread_mutex_lock (&sse->lock);
    while (!found) {
        while (sse->cursor < sse->count && !found) {
            svc_event_t *event = sse->events[sse->cursor++];
            if (!type || strcmp (event->event, type) == 0)
                found = event;
        }
        if (found || sse->closed)
            break;
        if (pthread_cond_timedwait (&sse->changed, &sse->lock, &deadline) == ETIMEDOUT)
            break;
    }
    pthread_mutex_unlock (&sse->lock);
    return found;
}

size_t
svc_sse_count (svc_sse_t *sse)
{
    pthread_mutex_lock (&sse->lock);
    size_t count = sse->count;
    pthread_mutex_unlock (&sse->lock);
    return count;
}

const svc_event_t *
svc_sse_at (svc_sse_t *sse, size_t index)
{
    pthread_mutex_lock (&sse->lock);
    const svc_event_t *event = index < sse->count ? sse->events[index] : NULL;
    pthread_mutex_unlock (&sse->lock);
    return event;
}

size_t
svc_sse_comments (svc_sse_t *sse)
{
    pthread_mutex_lock (&sse->lock);
    size_t count = sse->comments;
    pthread_mutex_unlock (&sse->lock);
    return count;
}

bool
svc_sse_closed (svc_sse_t *sse)
{
    pthread_mutex_lock (&sse->lock);
    bool closed = sse->closed;
    pthread_mutex_unlock (&sse->lock);
    return closed;
}

long
svc_sse_status (svc_sse_t *sse)
{
    pthread_mutex_lock (&sse->lock);
    long status = sse->status;
    pthread_mutex_unlock (&sse->lock);
    return status;
}

void
svc_sse_close (svc_sse_t **sse_p)
{
    if (!sse_p || !*sse_p)
        return;
    svc_sse_t *sse = *sse_p;
    pthread_mutex_lock (&sse->lock);
    sse->stop = true;
    pthread_mutex_unlock (&sse->lock);
    pthread_join (sse->thread, NULL);
    curl_easy_cleanup (sse->curl);
    curl_slist_free_all (sse->headers);
    for (size_t i = 0; i < sse->count; i++) {
        free (sse->events[i]->data);
        json_decref (sse->events[i]->json);
        free (sse->events[i]);
    }
    free (sse->events);
    free (sse->pending.data);
    pthread_cond_destroy (&sse->changed);
    pthread_mutex_destroy (&sse->lock);
    free (sse);
    *sse_p = NULL;
}

long long
svc_broadcaster_events_in (svc_mesh_t *mesh, const char *suffix)
{
    char command[800], output[1024];
    snprintf (command, sizeof command,
              "%s/proto/chatmesh-ping --server broadcaster ipc://%s/sock/history%s 1000",
              getenv ("CHATMESH_BIN_DIR"), svc_mesh_dir (mesh), suffix);
    if (svc_run (command, output, sizeof output))
        return -1;
    const char *at = strstr (output, "events_in=");
    return at ? atoll (at + 10) : -1;
}
