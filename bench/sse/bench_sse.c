/*  bench_sse: N concurrent SSE readers on one session of one gateway, K
    events triggered through the API, one at a time. For each event: the
    time from the trigger (just before the POST) until the last reader has
    it, every reader's latency, missed and extra (doubled) events; and the
    gateway's RSS.

    Usage: bench_sse [--readers N] [--events K] [--timeout-ms T]
                     [--broadcasters 1|2] [--gateways 1|2] [--kill-at E]
    --broadcasters 2: the mesh runs two (svc_mesh_start_broadcasters);
    --gateways 2: a second gateway, the readers spread over both (the RSS
    printed is the first's). --kill-at E (with 2 broadcasters): kill -9 of
    "broadcaster" just before event E's trigger and its restart 10 events
    later; then the last-reader time of events E..E+9 is printed apart.
    It starts its own mesh (tests/service harness) in a temp dir.        */
#include "svc_harness.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

typedef struct {
    int fd;
    char buffer[8192];
    size_t len;
    int events_seen; //  feedback_submitted events read so far
    bool pending_type;
} reader_t;

static double
s_now_ms (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static int
s_cmp (const void *a, const void *b)
{
    double x = *(const double *) a, y = *(const double *) b;
    return x < y ? -1 : x > y;
}

static double
s_pct (double *sorted, size_t n, double p)
{
    if (n == 0)
        return 0;
    size_t i = (size_t) (p * (double) (n - 1) + 0.5);
    return sorted[i];
}

static long
s_rss_kb (int pid)
{
    char path[64], line[256];
    snprintf (path, sizeof path, "/proc/%d/status", pid);
    FILE *f = fopen (path, "r");
    long kb = -1;
    while (f && fgets (line, sizeof line, f))
        if (sscanf (line, "VmRSS: %ld kB", &kb) == 1)
            break;
    if (f)
        fclose (f);
    return kb;
}

//  Consumes whole lines; counts "event: feedback_submitted" lines.
static int
s_consume (reader_t *r)
{
    int found = 0;
    char *start = r->buffer, *nl;
    while ((nl = memchr (start, '\n', r->len - (size_t) (start - r->buffer)))) {
        *nl = 0;
        if (strncmp (start, "event: feedback_submitted", 25) == 0)
            found++;
        start = nl + 1;
    }
    size_t left = r->len - (size_t) (start - r->buffer);
    memmove (r->buffer, start, left);
    r->len = left;
    return found;
}

int
main (int argc, char **argv)
{
    int readers_n = 1000, events_k = 50, timeout_ms = 10000;
    int broadcasters = 1, gateways = 1, kill_at = -1;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp (argv[i], "--readers") == 0)
            readers_n = atoi (argv[i + 1]);
        else if (strcmp (argv[i], "--events") == 0)
            events_k = atoi (argv[i + 1]);
        else if (strcmp (argv[i], "--timeout-ms") == 0)
            timeout_ms = atoi (argv[i + 1]);
        else if (strcmp (argv[i], "--broadcasters") == 0)
            broadcasters = atoi (argv[i + 1]);
        else if (strcmp (argv[i], "--gateways") == 0)
            gateways = atoi (argv[i + 1]);
        else if (strcmp (argv[i], "--kill-at") == 0)
            kill_at = atoi (argv[i + 1]);
    }
    if (readers_n < 1 || events_k < 1 || (broadcasters != 1 && broadcasters != 2)
        || (gateways != 1 && gateways != 2)
        || (kill_at >= 0 && (broadcasters != 2 || kill_at >= events_k))) {
        fprintf (stderr, "bench_sse: --readers and --events >= 1, --broadcasters and --gateways"
                         " 1 or 2, --kill-at below --events and only with 2 broadcasters\n");
        return 2;
    }
    struct rlimit limit;
    getrlimit (RLIMIT_NOFILE, &limit);
    limit.rlim_cur = limit.rlim_max; //  the gateway inherits it too
    setrlimit (RLIMIT_NOFILE, &limit);
    if ((rlim_t) readers_n + 200 > limit.rlim_max) {
        fprintf (stderr, "bench_sse: %d readers need more than the open-file hard limit %lu\n",
                 readers_n, (unsigned long) limit.rlim_max);
        return 2;
    }
    char streams[64];
    snprintf (streams, sizeof streams, "CHATMESH_SSE_MAX_STREAMS=%d", readers_n + 100);
    const char *env[] = {streams, "CHAT_ACTIONS_RATE_LIMIT=0", "CHATMESH_LOG_LEVEL=warning",
                         NULL};
    svc_mesh_t *mesh = svc_mesh_start_broadcasters (broadcasters, env);
    if (!mesh)
        return 1;
    if (gateways == 2 && svc_mesh_spawn_gateway2 (mesh, NULL)) {
        svc_mesh_stop (&mesh);
        return 1;
    }
    char *token = svc_token (mesh, "bench", 3600);
    svc_response_t response;
    svc_http (mesh, "POST", "/api/run_sse/bench_session", token, "{\"query\": \"benchmark\"}",
              &response);
    if (response.status != 200) {
        fprintf (stderr, "bench_sse: run_sse answered %ld\n", response.status);
        svc_mesh_stop (&mesh);
        return 1;
    }
    char message_id[400];
    snprintf (message_id, sizeof message_id, "%s",
              json_string_value (json_object_get (json_object_get (response.json, "data"),
                                                  "assistant_message_id")));
    svc_response_free (&response);
    long rss_before = s_rss_kb (svc_mesh_pid (mesh, "gateway"));

    int ports[2] = {svc_mesh_port (mesh),
                    gateways == 2 ? atoi (strrchr (svc_mesh_url2 (mesh), ':') + 1) : 0};
    char request[4096];
    int request_len = snprintf (request, sizeof request,
                                "GET /api/run_sse/bench_session?access_token=%s HTTP/1.1\r\n"
                                "Host: 127.0.0.1\r\nAccept: text/event-stream\r\n\r\n",
                                token);
    reader_t *readers = calloc ((size_t) readers_n, sizeof *readers);
    int epoll = epoll_create1 (0);
    double open_start = s_now_ms ();
    for (int i = 0; i < readers_n; i++) {
        struct sockaddr_in addr = {.sin_family = AF_INET,
                                   .sin_port = htons ((uint16_t) ports[i % gateways]),
                                   .sin_addr.s_addr = htonl (INADDR_LOOPBACK)};
        readers[i].fd = socket (AF_INET, SOCK_STREAM, 0);
        if (readers[i].fd < 0 || connect (readers[i].fd, (struct sockaddr *) &addr, sizeof addr)
            || write (readers[i].fd, request, (size_t) request_len) != request_len) {
            fprintf (stderr, "bench_sse: reader %d cannot connect: %s\n", i, strerror (errno));
            svc_mesh_stop (&mesh);
            return 1;
        }
        fcntl (readers[i].fd, F_SETFL, O_NONBLOCK);
        struct epoll_event ev = {.events = EPOLLIN, .data.u32 = (uint32_t) i};
        epoll_ctl (epoll, EPOLL_CTL_ADD, readers[i].fd, &ev);
    }
    //  Every stream is live once its connection_status arrived.
    int connected = 0;
    struct epoll_event events[512];
    while (connected < readers_n && s_now_ms () - open_start < 60000) {
        int n = epoll_wait (epoll, events, 512, 1000);
        for (int e = 0; e < n; e++) {
            reader_t *r = &readers[events[e].data.u32];
            ssize_t got = read (r->fd, r->buffer + r->len, sizeof r->buffer - r->len - 1);
            if (got <= 0)
                continue;
            r->len += (size_t) got;
            r->buffer[r->len] = 0;
            if (!r->pending_type && strstr (r->buffer, "connection_status")) {
                r->pending_type = true;
                connected++;
            }
            char *last_nl = strrchr (r->buffer, '\n');
            if (last_nl) { //  drop what is consumed; keep a partial line
                size_t keep = r->len - (size_t) (last_nl + 1 - r->buffer);
                memmove (r->buffer, last_nl + 1, keep);
                r->len = keep;
            }
        }
    }
    double open_ms = s_now_ms () - open_start;
    if (connected < readers_n) {
        fprintf (stderr, "bench_sse: only %d of %d streams connected\n", connected, readers_n);
        svc_mesh_stop (&mesh);
        return 1;
    }
    long rss_streams = s_rss_kb (svc_mesh_pid (mesh, "gateway"));

    double *last = calloc ((size_t) events_k, sizeof (double));
    double *each = calloc ((size_t) events_k * (size_t) readers_n, sizeof (double));
    size_t each_n = 0;
    long missed = 0;
    char path[600];
    snprintf (path, sizeof path, "/api/messages/%s/feedback", message_id);
    for (int k = 0; k < events_k; k++) {
        if (k == kill_at && svc_mesh_kill (mesh, "broadcaster", SIGKILL)) {
            fprintf (stderr, "bench_sse: cannot kill the broadcaster\n");
            svc_mesh_stop (&mesh);
            return 1;
        }
        if (kill_at >= 0 && k == kill_at + 10 && svc_mesh_spawn (mesh, "broadcaster")) {
            fprintf (stderr, "bench_sse: cannot restart the broadcaster\n");
            svc_mesh_stop (&mesh);
            return 1;
        }
        double t0 = s_now_ms ();
        svc_http (mesh, "POST", path, token,
                  k % 2 ? "{\"feedback_type\": \"downvote\"}" : "{\"feedback_type\": \"upvote\"}",
                  &response);
        if (response.status != 200) {
            fprintf (stderr, "bench_sse: feedback answered %ld\n", response.status);
            svc_mesh_stop (&mesh);
            return 1;
        }
        svc_response_free (&response);
        int have = 0;
        for (int i = 0; i < readers_n; i++)
            have += readers[i].events_seen > k;
        while (have < readers_n && s_now_ms () - t0 < timeout_ms) {
            int n = epoll_wait (epoll, events, 512, 100);
            double now = s_now_ms ();
            for (int e = 0; e < n; e++) {
                reader_t *r = &readers[events[e].data.u32];
                ssize_t got = read (r->fd, r->buffer + r->len, sizeof r->buffer - r->len - 1);
                if (got <= 0)
                    continue;
                r->len += (size_t) got;
                r->buffer[r->len] = 0;
                int found = s_consume (r);
                for (int f = 0; f < found; f++) {
                    if (r->events_seen == k) {
                        each[each_n++] = now - t0;
                        have++;
                        if (now - t0 > last[k])
                            last[k] = now - t0;
                    }
                    r->events_seen++;
                }
            }
        }
        missed += readers_n - have;
    }
    //  What came after the last wait (late doubles included).
    for (int n = 1; n > 0;) {
        n = epoll_wait (epoll, events, 512, 200);
        for (int e = 0; e < n; e++) {
            reader_t *r = &readers[events[e].data.u32];
            ssize_t got = read (r->fd, r->buffer + r->len, sizeof r->buffer - r->len - 1);
            if (got <= 0)
                continue;
            r->len += (size_t) got;
            r->buffer[r->len] = 0;
            r->events_seen += s_consume (r);
        }
    }
    long extra = 0;
    for (int i = 0; i < readers_n; i++)
        extra += readers[i].events_seen > events_k ? readers[i].events_seen - events_k : 0;
    double kill_max = 0;
    for (int k = kill_at; kill_at >= 0 && k < kill_at + 10 && k < events_k; k++)
        kill_max = last[k] > kill_max ? last[k] : kill_max;
    long rss_after = s_rss_kb (svc_mesh_pid (mesh, "gateway"));
    qsort (last, (size_t) events_k, sizeof (double), s_cmp);
    qsort (each, each_n, sizeof (double), s_cmp);
    printf ("readers=%d events=%d broadcasters=%d gateways=%d connect_all_ms=%.0f\n", readers_n,
            events_k, broadcasters, gateways, open_ms);
    if (kill_at >= 0)
        printf ("kill_at=%d last_reader_ms_max_of_10_after_kill=%.2f\n", kill_at, kill_max);
    printf ("last_reader_ms p50=%.2f p99=%.2f max=%.2f\n", s_pct (last, (size_t) events_k, 0.5),
            s_pct (last, (size_t) events_k, 0.99), last[events_k - 1]);
    printf ("per_reader_ms p50=%.2f p99=%.2f max=%.2f\n", s_pct (each, each_n, 0.5),
            s_pct (each, each_n, 0.99), each_n ? each[each_n - 1] : 0.0);
    printf ("missed_events=%ld extra_events=%ld\n", missed, extra);
    printf ("gateway_rss_mb idle=%.1f with_streams=%.1f end=%.1f\n", rss_before / 1024.0,
            rss_streams / 1024.0, rss_after / 1024.0);
    for (int i = 0; i < readers_n; i++)
        close (readers[i].fd);
    free (token);
    svc_mesh_stop (&mesh);
    return missed || extra ? 3 : 0;
}
