/*  svc_flood.c: connection flood and latency probe (svc_flood.h).      */
#include "svc_flood.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#define S_TRICKLE_TICK_MS 100 //  a tenth of the slow connections per tick

struct svc_flood {
    int *fds; //  idle ones first, then the slow ones
    int count, idle;
    int stop_fd; //  eventfd: the trickle thread ends
    pthread_t trickle;
    bool trickling;
};

static double
s_now_ms (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

long
svc_flood_raise_nofile (long want)
{
    struct rlimit limit;
    if (getrlimit (RLIMIT_NOFILE, &limit))
        return -1;
    rlim_t target = (rlim_t) want < limit.rlim_max ? (rlim_t) want : limit.rlim_max;
    if (target > limit.rlim_cur) {
        limit.rlim_cur = target;
        if (setrlimit (RLIMIT_NOFILE, &limit) == 0)
            return (long) target;
        getrlimit (RLIMIT_NOFILE, &limit);
    }
    return (long) limit.rlim_cur;
}

//  A blocking connection from `from` (network byte order) to the gateway.
static int
s_connect_from (int port, in_addr_t from, int timeout_ms)
{
    int fd = socket (AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    struct timeval tv = {timeout_ms / 1000, (timeout_ms % 1000) * 1000};
    setsockopt (fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt (fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    //  The port is chosen at connect(), per 4-tuple, so 11,000 connections
    //  do not need 11,000 distinct local ports per source address.
    int one = 1;
    setsockopt (fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_addr.s_addr = from};
    if (bind (fd, (struct sockaddr *) &addr, sizeof addr)) {
        close (fd);
        return -1;
    }
    addr.sin_port = htons ((uint16_t) port);
    addr.sin_addr.s_addr = htonl (INADDR_LOOPBACK);
    if (connect (fd, (struct sockaddr *) &addr, sizeof addr)) {
        close (fd);
        return -1;
    }
    return fd;
}

static void *
s_trickle_run (void *arg)
{
    svc_flood_t *flood = arg;
    int slow = flood->count - flood->idle;
    int next = 0;
    struct pollfd stop = {.fd = flood->stop_fd, .events = POLLIN};
    //  Every slow connection gets one byte a second: a per-read timeout
    //  would never fire, only a deadline on the whole head does.
    while (poll (&stop, 1, S_TRICKLE_TICK_MS) == 0) {
        int batch = (slow * S_TRICKLE_TICK_MS + 999) / 1000;
        for (int i = 0; i < batch && slow > 0; i++) {
            int fd = flood->fds[flood->idle + next];
            next = (next + 1) % slow;
            (void) !send (fd, "a", 1, MSG_NOSIGNAL | MSG_DONTWAIT);
        }
    }
    return NULL;
}

svc_flood_t *
svc_flood_open (int port, int idle, int slow, int addresses, char *why, size_t why_size)
{
    svc_flood_t *flood = calloc (1, sizeof *flood);
    if (!flood || addresses < 1 || addresses > 250) {
        snprintf (why, why_size, "bad flood parameters");
        free (flood);
        return NULL;
    }
    flood->fds = calloc ((size_t) (idle + slow), sizeof *flood->fds);
    flood->idle = idle;
    flood->stop_fd = eventfd (0, EFD_CLOEXEC);
    static const char head[] = "GET /healthz HTTP/1.1\r\nHost: flood\r\nX-Slow: ";
    for (int i = 0; flood->fds && i < idle + slow; i++) {
        in_addr_t from = htonl (INADDR_LOOPBACK + 1 + (in_addr_t) (i % addresses));
        int fd = s_connect_from (port, from, 5000);
        if (fd < 0 || (i >= idle && send (fd, head, sizeof head - 1, MSG_NOSIGNAL) < 0)) {
            snprintf (why, why_size, "connection %d of %d: %s", i + 1, idle + slow,
                      strerror (errno));
            if (fd >= 0)
                close (fd);
            svc_flood_close (&flood);
            return NULL;
        }
        flood->fds[flood->count++] = fd;
    }
    if (!flood->fds || flood->stop_fd < 0
        || pthread_create (&flood->trickle, NULL, s_trickle_run, flood)) {
        snprintf (why, why_size, "cannot start the trickle thread: %s", strerror (errno));
        svc_flood_close (&flood);
        return NULL;
    }
    flood->trickling = true;
    return flood;
}

int
svc_flood_open_count (svc_flood_t *flood)
{
    int open = 0;
    for (int i = 0; i < flood->count; i++) {
        char byte;
        ssize_t n = recv (flood->fds[i], &byte, 1, MSG_PEEK | MSG_DONTWAIT);
        open += n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
    }
    return open;
}

void
svc_flood_close (svc_flood_t **flood_p)
{
    svc_flood_t *flood = *flood_p;
    if (!flood)
        return;
    if (flood->trickling) {
        uint64_t one = 1;
        (void) !write (flood->stop_fd, &one, sizeof one);
        pthread_join (flood->trickle, NULL);
    }
    for (int i = 0; i < flood->count; i++)
        close (flood->fds[i]);
    if (flood->stop_fd >= 0)
        close (flood->stop_fd);
    free (flood->fds);
    free (flood);
    *flood_p = NULL;
}

static int
s_compare (const void *a, const void *b)
{
    double x = *(const double *) a, y = *(const double *) b;
    return (x > y) - (x < y);
}

int
svc_probe (int port, const char *request, int count, svc_samples_t *samples)
{
    if (samples->count + count > samples->cap) {
        int cap = samples->count + count;
        double *times = realloc (samples->times, (size_t) cap * sizeof *times);
        if (!times)
            return -1;
        samples->times = times;
        samples->cap = cap;
    }
    size_t len = strlen (request);
    for (int i = 0; i < count; i++) {
        double start = s_now_ms ();
        int fd = s_connect_from (port, htonl (INADDR_LOOPBACK), 10000);
        if (fd < 0)
            return -1;
        char response[16];
        size_t got = 0;
        bool sent = send (fd, request, len, MSG_NOSIGNAL) == (ssize_t) len;
        for (;;) {
            char buffer[4096];
            ssize_t n = recv (fd, buffer, sizeof buffer, 0);
            if (n <= 0)
                break;
            size_t take = got < sizeof response ? sizeof response - got : 0;
            if (take > (size_t) n)
                take = (size_t) n;
            memcpy (response + got, buffer, take);
            got += (size_t) n;
        }
        close (fd);
        samples->times[samples->count++] = s_now_ms () - start;
        samples->failed += !sent || got < 12 || memcmp (response, "HTTP/1.1 200", 12) != 0;
    }
    return 0;
}

void
svc_samples_figures (const svc_samples_t *samples, svc_figures_t *figures)
{
    int n = samples->count;
    double *sorted = malloc ((size_t) n * sizeof *sorted);
    memset (figures, 0, sizeof *figures);
    if (!sorted || n == 0) {
        free (sorted);
        return;
    }
    memcpy (sorted, samples->times, (size_t) n * sizeof *sorted);
    qsort (sorted, (size_t) n, sizeof *sorted, s_compare);
    figures->p50 = sorted[(n - 1) / 2];
    figures->p99 = sorted[(n * 99 + 99) / 100 - 1];
    figures->max = sorted[n - 1];
    free (sorted);
}

void
svc_samples_free (svc_samples_t *samples)
{
    free (samples->times);
    memset (samples, 0, sizeof *samples);
}

//  chatmesh_gateway_vestibule_connections, or -1.
static long
s_vestibule_gauge (svc_mesh_t *mesh)
{
    svc_response_t response;
    long held = -1;
    static const char name[] = "\nchatmesh_gateway_vestibule_connections ";
    if (svc_http (mesh, "GET", "/metrics", NULL, NULL, &response) == 0 && response.status == 200) {
        const char *line = strstr (response.body, name);
        if (line)
            held = strtol (line + sizeof name - 1, NULL, 10);
    }
    svc_response_free (&response);
    return held;
}

//  Waits until the gauge is `want` (up to 20 s). The last value seen.
static long
s_vestibule_await (svc_mesh_t *mesh, long want)
{
    long held = -1;
    for (double start = s_now_ms (); s_now_ms () - start < 20000;) {
        held = s_vestibule_gauge (mesh);
        if (held == want)
            break;
        //  The vestibule thread works through the flood's connects and
        //  closes meanwhile; asking again at once would only compete.
        poll (NULL, 0, 50);
    }
    return held;
}

int
svc_exhaust_run (svc_mesh_t *mesh, const char *token, const char *session_id,
                 const svc_exhaust_params_t *params, svc_exhaust_result_t *result, char *why,
                 size_t why_size)
{
    memset (result, 0, sizeof *result);
    int port = svc_mesh_port (mesh);
    char requests[SVC_EXHAUST_PROBES][2048];
    snprintf (requests[0], sizeof requests[0], "GET /healthz HTTP/1.1\r\nHost: probe\r\n\r\n");
    snprintf (requests[1], sizeof requests[1],
              "GET /api/sessions/%s HTTP/1.1\r\nHost: probe\r\nAuthorization: Bearer %s\r\n\r\n",
              session_id, token);
    result->name[0] = "GET /healthz";
    result->name[1] = "GET /api/sessions/{id}";
    svc_samples_t quiet[SVC_EXHAUST_PROBES] = {{0}}, flooded[SVC_EXHAUST_PROBES] = {{0}};
    svc_samples_t warmup = {0};
    int rc = 0;
    long total = params->idle + params->slow;
    for (int p = 0; p < SVC_EXHAUST_PROBES && rc == 0; p++)
        if (svc_probe (port, requests[p], params->samples / 2 + 1, &warmup)) {
            snprintf (why, why_size, "warm-up: cannot connect");
            rc = -1;
        }
    for (int round = 0; round < params->rounds && rc == 0; round++) {
        long held = s_vestibule_await (mesh, 0);
        if (held != 0) {
            snprintf (why, why_size, "round %d: the vestibule holds %ld connections before the quiet phase",
                      round + 1, held);
            rc = -1;
            break;
        }
        for (int p = 0; p < SVC_EXHAUST_PROBES && rc == 0; p++)
            if (svc_probe (port, requests[p], params->samples, &quiet[p])) {
                snprintf (why, why_size, "round %d: quiet probe cannot connect", round + 1);
                rc = -1;
            }
        if (rc)
            break;
        svc_flood_t *flood = svc_flood_open (port, params->idle, params->slow, params->addresses,
                                             why, why_size);
        if (!flood) {
            rc = -1;
            break;
        }
        result->held = s_vestibule_await (mesh, total);
        if (result->held != total) {
            snprintf (why, why_size, "round %d: the vestibule holds %ld of the %ld flood connections",
                      round + 1, result->held, total);
            rc = -1;
        }
        for (int p = 0; p < SVC_EXHAUST_PROBES && rc == 0; p++)
            if (svc_probe (port, requests[p], params->samples, &flooded[p])) {
                snprintf (why, why_size, "round %d: flooded probe cannot connect", round + 1);
                rc = -1;
            }
        int open = svc_flood_open_count (flood);
        if (rc == 0 && open != total) {
            snprintf (why, why_size, "round %d: %ld flood connections were answered or closed",
                      round + 1, total - open);
            rc = -1;
        }
        svc_flood_close (&flood);
    }
    for (int p = 0; p < SVC_EXHAUST_PROBES; p++) {
        if (rc == 0) {
            svc_samples_figures (&quiet[p], &result->quiet[p]);
            svc_samples_figures (&flooded[p], &result->flooded[p]);
            result->ratio[p] = result->flooded[p].p99 / result->quiet[p].p99;
        }
        result->failed += quiet[p].failed + flooded[p].failed;
        svc_samples_free (&quiet[p]);
        svc_samples_free (&flooded[p]);
    }
    result->failed += warmup.failed;
    svc_samples_free (&warmup);
    return rc;
}

void
svc_exhaust_print (const svc_exhaust_params_t *params, const svc_exhaust_result_t *result)
{
    printf ("exhaust: %d idle + %d slowloris connections from %d addresses, %ld held by the "
            "vestibule; %d rounds of %d requests per probe and phase\n",
            params->idle, params->slow, params->addresses, result->held, params->rounds,
            params->samples);
    for (int p = 0; p < SVC_EXHAUST_PROBES; p++)
        printf ("exhaust: %-24s p99 quiet %.3f ms, flooded %.3f ms: ratio %.2f "
                "(p50 %.3f -> %.3f ms, max %.1f -> %.1f ms)\n",
                result->name[p], result->quiet[p].p99, result->flooded[p].p99, result->ratio[p],
                result->quiet[p].p50, result->flooded[p].p50, result->quiet[p].max,
                result->flooded[p].max);
    fflush (stdout);
}
