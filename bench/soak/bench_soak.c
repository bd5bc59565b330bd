/*  bench_soak: long mixed load on one mesh, looking for errors and leaks.

    Two workers run session starts, votes, edits, deletes and regenerations
    on a fixed set of sessions while SSE readers (raw sockets, one poll
    thread) follow them. Reports every error (transport failure, timeout,
    5xx, a 4xx other than a 409 "already regenerating", a stream the server
    closed) and the memory of every service after a warm-up and at the end.

    Usage: bench_soak [--seconds N] [--readers N] [--sessions N]
                      [--pause-ms N]   (between a worker's actions)
    Exit 0 only when there was no error and no service's anonymous memory
    (RssAnon: heap and stacks, not LMDB's file-backed map) grew by more than
    10% between the middle of the run and its end. It starts its own mesh
    (tests/service harness) in a temp dir; it is not part of ctest.      */
#include "svc_harness.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define S_MAX_READERS 1000
#define S_MAX_SESSIONS 200
#define S_USERS 4
#define S_WORKERS 2
#define S_CLIENT_TIMEOUT_MS 5000 //  a request without an answer by then is an error

static svc_mesh_t *s_mesh;
static char *s_tokens[S_USERS];
static int s_sessions = 20, s_readers_count = 50, s_pause_ms = 20;
static atomic_bool s_stop, s_stop_readers;
static atomic_long s_requests, s_errors, s_conflicts, s_events, s_stream_drops;
static atomic_long s_actions[5];

static const char *s_services[4] = {"store", "broadcaster", "regenerator", "gateway"};

typedef struct {
    long rss_kb, anon_kb;
} s_mem_t;

static s_mem_t
s_mem (const char *service)
{
    s_mem_t mem = {-1, -1};
    char path[64], line[256];
    snprintf (path, sizeof path, "/proc/%d/status", svc_mesh_pid (s_mesh, service));
    FILE *file = fopen (path, "r");
    while (file && fgets (line, sizeof line, file)) {
        sscanf (line, "VmRSS: %ld kB", &mem.rss_kb);
        sscanf (line, "RssAnon: %ld kB", &mem.anon_kb);
    }
    if (file)
        fclose (file);
    return mem;
}

//  ---------------------------------------------------------------------------
//  Requests

//  Status (0: no answer) and the parsed body (caller decrefs).
static long
s_request (const char *method, const char *path, int user, const char *body, json_t **json)
{
    svc_response_t response;
    int rc = svc_http_timed (s_mesh, method, path, s_tokens[user], body, S_CLIENT_TIMEOUT_MS,
                             &response);
    long status = rc == CURLE_OK ? response.status : 0;
    atomic_fetch_add (&s_requests, 1);
    if (status == 409)
        atomic_fetch_add (&s_conflicts, 1);
    else if (status != 200) {
        atomic_fetch_add (&s_errors, 1);
        fprintf (stderr, "soak: %s %s -> %ld %s\n", method, path, status,
                 rc == CURLE_OK ? (response.body ? response.body : "")
                                : curl_easy_strerror ((CURLcode) rc));
    }
    *json = status ? json_incref (response.json) : NULL;
    svc_response_free (&response);
    return status;
}

static const char *
s_jstr (json_t *json, const char *a, const char *b)
{
    json_t *value = json_object_get (json, a);
    if (b)
        value = json_object_get (value, b);
    return json_string_value (value);
}

//  Per session: the live messages, newest last (only the owning worker
//  touches a session).
typedef struct {
    char id[64];
    int user;
    char msgs[64][256];
    bool is_user[64];
    int count;
} s_session_t;

static s_session_t s_session_table[S_MAX_SESSIONS];

static void
s_run_sse (s_session_t *s, int round)
{
    char path[128], body[128];
    snprintf (path, sizeof path, "/api/run_sse/%s", s->id);
    snprintf (body, sizeof body, "{\"query\": \"soak question %d about caching\"}", round);
    json_t *json;
    atomic_fetch_add (&s_actions[0], 1);
    if (s_request ("POST", path, s->user, body, &json) == 200 && s->count + 2 <= 64) {
        const char *u = s_jstr (json, "data", "user_message_id");
        const char *a = s_jstr (json, "data", "assistant_message_id");
        if (u && a) {
            snprintf (s->msgs[s->count], sizeof s->msgs[0], "%s", u);
            s->is_user[s->count++] = true;
            snprintf (s->msgs[s->count], sizeof s->msgs[0], "%s", a);
            s->is_user[s->count++] = false;
        }
    }
    json_decref (json);
}

static int
s_pick (s_session_t *s, bool user, unsigned *seed)
{
    int candidates[64], n = 0;
    for (int i = 0; i < s->count; i++)
        if (s->is_user[i] == user)
            candidates[n++] = i;
    return n ? candidates[rand_r (seed) % n] : -1;
}

static void *
s_worker (void *arg)
{
    int index = (int) (intptr_t) arg;
    unsigned seed = 99u + (unsigned) index;
    for (int round = 1; !atomic_load (&s_stop); round++) {
        int pick = index + S_WORKERS * (int) (rand_r (&seed) % (unsigned) (s_sessions / S_WORKERS));
        s_session_t *s = &s_session_table[pick];
        int roll = rand_r (&seed) % 100;
        char path[400], body[200];
        json_t *json = NULL;
        if ((roll < 10 && s->count + 2 <= 64) || s->count < 4)
            s_run_sse (s, round);
        else if (roll < 50) {
            int m = s_pick (s, false, &seed);
            snprintf (path, sizeof path, "/api/messages/%s/feedback", s->msgs[m]);
            snprintf (body, sizeof body, "{\"feedback_type\": \"%s\", \"reason\": \"soak\"}",
                      rand_r (&seed) % 2 ? "upvote" : "downvote");
            atomic_fetch_add (&s_actions[1], 1);
            s_request ("POST", path, s->user, body, &json);
        } else if (roll < 78) {
            int m = s_pick (s, true, &seed);
            snprintf (path, sizeof path, "/api/messages/%s", s->msgs[m]);
            snprintf (body, sizeof body,
                      "{\"content\": \"soak edit %d\", \"trigger_regeneration\": %s}", round,
                      rand_r (&seed) % 4 ? "false" : "true");
            atomic_fetch_add (&s_actions[2], 1);
            s_request ("PUT", path, s->user, body, &json);
        } else if (roll < 86) {
            //  Delete the newest exchange (user + assistant), keep the first.
            int last = s->count - 2;
            snprintf (path, sizeof path, "/api/messages/%s", s->msgs[last]);
            atomic_fetch_add (&s_actions[3], 1);
            s_request ("DELETE", path, s->user, NULL, &json);
            //  Forget the exchange whatever the answer: after a timeout the
            //  delete may have happened, and a stale id would then 404.
            s->count = last;
        } else {
            int m = s_pick (s, false, &seed);
            snprintf (path, sizeof path, "/api/messages/%s/regenerate", s->msgs[m]);
            atomic_fetch_add (&s_actions[4], 1);
            s_request ("POST", path, s->user, "{}", &json);
        }
        json_decref (json);
        if (s_pause_ms)
            usleep ((useconds_t) s_pause_ms * 1000);
    }
    return NULL;
}

//  ---------------------------------------------------------------------------
//  SSE readers

typedef struct {
    int fd;
    int session;
    char buf[16384];
    size_t len;
    bool headers_done;
    char last_id[64];
} s_reader_t;

static s_reader_t s_readers[S_MAX_READERS];

static void
s_reader_open (s_reader_t *r)
{
    r->fd = socket (AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in addr = {.sin_family = AF_INET,
                               .sin_port = htons ((uint16_t) svc_mesh_port (s_mesh)),
                               .sin_addr.s_addr = htonl (INADDR_LOOPBACK)};
    s_session_t *s = &s_session_table[r->session];
    char request[4096], last[128] = "";
    if (r->last_id[0])
        snprintf (last, sizeof last, "Last-Event-ID: %s\r\n", r->last_id);
    int len = snprintf (request, sizeof request,
                        "GET /api/run_sse/%s?access_token=%s HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                        "Accept: text/event-stream\r\n%sConnection: close\r\n\r\n",
                        s->id, s_tokens[s->user], last);
    if (r->fd < 0 || connect (r->fd, (struct sockaddr *) &addr, sizeof addr)
        || send (r->fd, request, (size_t) len, MSG_NOSIGNAL) != len) {
        fprintf (stderr, "soak: reader cannot open its stream\n");
        atomic_fetch_add (&s_errors, 1);
        if (r->fd >= 0)
            close (r->fd);
        r->fd = -1;
    }
    r->len = 0;
    r->headers_done = false;
}

static void *
s_reader_loop (void *arg)
{
    (void) arg;
    static struct pollfd fds[S_MAX_READERS];
    static int map[S_MAX_READERS];
    while (!atomic_load (&s_stop_readers)) {
        int n = 0;
        for (int i = 0; i < s_readers_count; i++)
            if (s_readers[i].fd >= 0) {
                fds[n] = (struct pollfd){s_readers[i].fd, POLLIN, 0};
                map[n++] = i;
            }
        if (poll (fds, (nfds_t) n, 200) <= 0)
            continue;
        for (int k = 0; k < n; k++) {
            if (!fds[k].revents)
                continue;
            s_reader_t *r = &s_readers[map[k]];
            ssize_t got = recv (r->fd, r->buf + r->len, sizeof r->buf - r->len - 1, 0);
            if (got <= 0) {
                //  The server dropped a healthy reader: an error in a soak.
                fprintf (stderr, "soak: stream of %s closed by the server\n",
                         s_session_table[r->session].id);
                atomic_fetch_add (&s_stream_drops, 1);
                atomic_fetch_add (&s_errors, 1);
                close (r->fd);
                s_reader_open (r);
                continue;
            }
            r->len += (size_t) got;
            r->buf[r->len] = 0;
            if (!r->headers_done) {
                char *end = strstr (r->buf, "\r\n\r\n");
                if (!end)
                    continue;
                if (strtol (r->buf + 9, NULL, 10) != 200) {
                    fprintf (stderr, "soak: stream answered %.12s\n", r->buf);
                    atomic_fetch_add (&s_errors, 1);
                }
                r->headers_done = true;
                size_t used = (size_t) (end - r->buf) + 4;
                memmove (r->buf, r->buf + used, r->len - used + 1);
                r->len -= used;
            }
            char *end;
            while ((end = strstr (r->buf, "\n\n"))) {
                *end = 0;
                char *id = strstr (r->buf, "id: ");
                if (id && (id == r->buf || id[-1] == '\n'))
                    sscanf (id + 4, "%63s", r->last_id);
                if (strstr (r->buf, "event: "))
                    atomic_fetch_add (&s_events, 1);
                size_t used = (size_t) (end - r->buf) + 2;
                memmove (r->buf, r->buf + used, r->len - used + 1);
                r->len -= used;
            }
            if (r->len >= sizeof r->buf - 1)
                r->len = 0;
        }
    }
    for (int i = 0; i < s_readers_count; i++)
        if (s_readers[i].fd >= 0)
            close (s_readers[i].fd);
    return NULL;
}

int
main (int argc, char **argv)
{
    int seconds = 600;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp (argv[i], "--seconds") == 0)
            seconds = atoi (argv[i + 1]);
        else if (strcmp (argv[i], "--readers") == 0)
            s_readers_count = atoi (argv[i + 1]);
        else if (strcmp (argv[i], "--sessions") == 0)
            s_sessions = atoi (argv[i + 1]);
        else if (strcmp (argv[i], "--pause-ms") == 0)
            s_pause_ms = atoi (argv[i + 1]);
        else {
            fprintf (stderr, "usage: bench_soak [--seconds N] [--readers N] [--sessions N] "
                             "[--pause-ms N]\n");
            return 2;
        }
    }
    if (seconds < 10 || s_readers_count < 0 || s_readers_count > S_MAX_READERS
        || s_sessions < S_WORKERS || s_sessions > S_MAX_SESSIONS || s_pause_ms < 0) {
        fprintf (stderr, "bench_soak: --seconds >= 10, --readers 0..%d, --sessions %d..%d\n",
                 S_MAX_READERS, S_WORKERS, S_MAX_SESSIONS);
        return 2;
    }
    signal (SIGPIPE, SIG_IGN);
    curl_global_init (CURL_GLOBAL_ALL);
    //  Limits off: a soak measures the mesh, not the rate limiter.
    const char *env[] = {"CHAT_ACTIONS_RATE_LIMIT=0", "CHAT_REGENERATION_RATE_LIMIT=0",
                         "CHATMESH_LOG_LEVEL=warning", NULL};
    s_mesh = svc_mesh_start (env);
    if (!s_mesh)
        return 1;
    const char *users[S_USERS] = {"soak_a", "soak_b", "soak_c", "soak_d"};
    for (int u = 0; u < S_USERS; u++)
        s_tokens[u] = svc_token (s_mesh, users[u], seconds + 3600);
    for (int i = 0; i < s_sessions; i++) {
        snprintf (s_session_table[i].id, sizeof s_session_table[i].id, "soak_%03d", i);
        s_session_table[i].user = i % S_USERS;
        s_run_sse (&s_session_table[i], 0);
    }
    for (int i = 0; i < s_readers_count; i++) {
        s_readers[i].session = i % s_sessions;
        s_reader_open (&s_readers[i]);
    }
    s_mem_t boot[4], warm[4], end[4];
    for (int i = 0; i < 4; i++)
        boot[i] = s_mem (s_services[i]);
    pthread_t reader_thread, workers[S_WORKERS];
    pthread_create (&reader_thread, NULL, s_reader_loop, NULL);
    for (int w = 0; w < S_WORKERS; w++)
        pthread_create (&workers[w], NULL, s_worker, (void *) (intptr_t) w);
    //  Memory is compared between the middle and the end of the run: the
    //  broadcaster's history fills for its age limit (5 min) and pools and
    //  allocator arenas grow first, so a 600 s run compares two samples of
    //  the steady state; shorter runs only indicate.
    int warmup = seconds / 2;
    double start = svc_now_ms ();
    while (svc_now_ms () - start < warmup * 1000.0)
        usleep (100000);
    for (int i = 0; i < 4; i++)
        warm[i] = s_mem (s_services[i]);
    long warm_requests = atomic_load (&s_requests);
    while (svc_now_ms () - start < seconds * 1000.0) {
        usleep (1000000);
        long elapsed = (long) ((svc_now_ms () - start) / 1000);
        if (elapsed % 60 == 0)
            fprintf (stderr, "soak: %ld s, %ld requests, %ld errors\n", elapsed,
                     atomic_load (&s_requests), atomic_load (&s_errors));
    }
    for (int i = 0; i < 4; i++)
        end[i] = s_mem (s_services[i]);
    atomic_store (&s_stop, true);
    for (int w = 0; w < S_WORKERS; w++)
        pthread_join (workers[w], NULL);
    usleep (500000);
    atomic_store (&s_stop_readers, true);
    pthread_join (reader_thread, NULL);

    double measured = seconds - warmup;
    long requests = atomic_load (&s_requests);
    printf ("soak: %d s (memory sampled at %d s and at the end), %d readers, %d sessions\n",
            seconds, warmup,
            s_readers_count, s_sessions);
    printf ("requests %ld (%.1f/s in the second half), errors %ld, 409 conflicts %ld, stream drops "
            "%ld, SSE events read %ld\n",
            requests, (double) (requests - warm_requests) / measured, atomic_load (&s_errors),
            atomic_load (&s_conflicts), atomic_load (&s_stream_drops), atomic_load (&s_events));
    printf ("actions run_sse=%ld feedback=%ld edit=%ld delete=%ld regenerate=%ld\n",
            atomic_load (&s_actions[0]), atomic_load (&s_actions[1]), atomic_load (&s_actions[2]),
            atomic_load (&s_actions[3]), atomic_load (&s_actions[4]));
    bool memory_ok = true;
    printf ("%-12s %10s %10s %10s %10s %10s %10s %8s\n", "service", "rss_boot", "rss_mid",
            "rss_end", "anon_boot", "anon_mid", "anon_end", "anon_%");
    for (int i = 0; i < 4; i++) {
        double growth = warm[i].anon_kb > 0
                            ? 100.0 * (double) (end[i].anon_kb - warm[i].anon_kb) / warm[i].anon_kb
                            : 0;
        if (growth > 10.0)
            memory_ok = false;
        printf ("%-12s %8.1fMB %8.1fMB %8.1fMB %8.1fMB %8.1fMB %8.1fMB %+7.1f%%\n", s_services[i],
                boot[i].rss_kb / 1024.0, warm[i].rss_kb / 1024.0, end[i].rss_kb / 1024.0,
                boot[i].anon_kb / 1024.0, warm[i].anon_kb / 1024.0, end[i].anon_kb / 1024.0,
                growth);
    }
    long errors = atomic_load (&s_errors);
    printf ("result: %s (errors %ld, anonymous memory %s)\n",
            errors == 0 && memory_ok ? "PASS" : "FAIL", errors,
            memory_ok ? "within 10%" : "grew more than 10%");
    for (int u = 0; u < S_USERS; u++)
        free (s_tokens[u]);
    svc_mesh_stop (&s_mesh);
    curl_global_cleanup ();
    return errors == 0 && memory_ok ? 0 : 1;
}
