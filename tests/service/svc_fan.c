/*  svc_fan.c: see svc_fan.h. One epoll thread reads every reader; one
    mutex guards the readers' state (the thread takes it per batch of
    ready sockets, svc_fan_wait per round of checks), another the type
    names (svc_fan_type is called from both sides).                      */
#include "svc_fan.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define S_TYPES_MAX 32
#define S_LINE_MAX (1024 * 1024)

typedef struct {
    svc_fan_reader_t public;
    int fd;
    size_t capacity; //  of public.events
    char *buffer;    //  bytes read and not yet parsed (a partial line)
    size_t len, size;
    bool head_done;
    //  The block being read: its id, type and whether it is a resync.
    long long epoch, seq;
    int type;
    bool resync;
} s_reader_t;

struct svc_fan {
    pthread_mutex_t lock;
    pthread_mutex_t types_lock;
    pthread_t thread;
    bool running;
    volatile bool stop;
    int epoll;
    s_reader_t *readers;
    int capacity, count;
    char *types[S_TYPES_MAX];
    int types_count;
    int session_updated; //  the type number of session_updated
};

static double
s_now_ms (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_MONOTONIC, &ts);
    return (double) ts.tv_sec * 1e3 + (double) ts.tv_nsec / 1e6;
}

int
svc_fan_type (svc_fan_t *fan, const char *name)
{
    pthread_mutex_lock (&fan->types_lock);
    int found = -1;
    for (int i = 0; i < fan->types_count && found < 0; i++)
        if (strcmp (fan->types[i], name) == 0)
            found = i;
    if (found < 0 && fan->types_count < S_TYPES_MAX) {
        fan->types[fan->types_count] = strdup (name);
        if (fan->types[fan->types_count])
            found = fan->types_count++;
    }
    pthread_mutex_unlock (&fan->types_lock);
    return found;
}

static void
s_block_reset (s_reader_t *r)
{
    r->epoch = r->seq = -1;
    r->type = -1;
    r->resync = false;
}

//  A blank line ends a block: an event when it had an "event:" line.
static void
s_block_end (svc_fan_t *fan, s_reader_t *r)
{
    if (r->type < 0) { //  comments only (keepalives)
        s_block_reset (r);
        return;
    }
    if (r->public.count == r->capacity) {
        size_t capacity = r->capacity ? r->capacity * 2 : 64;
        svc_fan_event_t *events = realloc (r->public.events, capacity * sizeof *events);
        if (!events) {
            r->public.overflow = true;
            return;
        }
        r->public.events = events;
        r->capacity = capacity;
    }
    r->public.events[r->public.count++] =
        (svc_fan_event_t) {.epoch = r->epoch, .seq = r->seq, .type = r->type};
    if (r->type == fan->session_updated && r->resync)
        r->public.resyncs++;
    s_block_reset (r);
}

static void
s_line (svc_fan_t *fan, s_reader_t *r, char *line)
{
    size_t len = strlen (line);
    if (len && line[len - 1] == '\r')
        line[--len] = 0;
    if (!r->head_done) {
        if (r->public.status == 0 && strncmp (line, "HTTP/1.", 7) == 0 && len > 12)
            r->public.status = strtol (line + 9, NULL, 10);
        r->head_done = len == 0;
        return;
    }
    if (len == 0)
        s_block_end (fan, r);
    else if (strncmp (line, "id: ", 4) == 0) {
        if (sscanf (line + 4, "%lld-%lld", &r->epoch, &r->seq) != 2)
            r->epoch = r->seq = -1;
    }
    else if (strncmp (line, "event: ", 7) == 0)
        r->type = svc_fan_type (fan, line + 7);
    else if (strncmp (line, "data: ", 6) == 0 && r->type == fan->session_updated) {
        json_t *data = json_loads (line + 6, 0, NULL);
        r->resync = r->resync || json_is_true (json_object_get (data, "resync"));
        json_decref (data);
    }
}

//  Reads what the socket has and parses every whole line.
static void
s_read (svc_fan_t *fan, s_reader_t *r)
{
    while (!r->public.closed && !r->public.overflow) {
        if (r->size - r->len < 4096) {
            if (r->size >= S_LINE_MAX) {
                r->public.overflow = true;
                break;
            }
            size_t size = r->size ? r->size * 2 : 16384;
            char *buffer = realloc (r->buffer, size + 1);
            if (!buffer) {
                r->public.overflow = true;
                break;
            }
            r->buffer = buffer;
            r->size = size;
        }
        ssize_t got = read (r->fd, r->buffer + r->len, r->size - r->len);
        if (got < 0 && (errno == EAGAIN || errno == EINTR))
            break;
        if (got <= 0) {
            r->public.closed = true;
            break;
        }
        r->len += (size_t) got;
        r->buffer[r->len] = 0;
        char *start = r->buffer, *nl;
        while ((nl = memchr (start, '\n', r->len - (size_t) (start - r->buffer)))) {
            *nl = 0;
            s_line (fan, r, start);
            start = nl + 1;
        }
        r->len -= (size_t) (start - r->buffer);
        memmove (r->buffer, start, r->len);
    }
    if (r->public.closed || r->public.overflow)
        epoll_ctl (fan->epoll, EPOLL_CTL_DEL, r->fd, NULL);
}

static void *
s_thread (void *arg)
{
    svc_fan_t *fan = arg;
    struct epoll_event ready[256];
    while (!fan->stop) {
        int n = epoll_wait (fan->epoll, ready, 256, 100);
        pthread_mutex_lock (&fan->lock);
        for (int i = 0; i < n; i++)
            s_read (fan, &fan->readers[ready[i].data.u32]);
        pthread_mutex_unlock (&fan->lock);
    }
    return NULL;
}

svc_fan_t *
svc_fan_new (int capacity)
{
    svc_fan_t *fan = capacity > 0 ? calloc (1, sizeof *fan) : NULL;
    if (!fan)
        return NULL;
    fan->epoll = -1;
    pthread_mutex_init (&fan->lock, NULL);
    pthread_mutex_init (&fan->types_lock, NULL);
    fan->readers = calloc ((size_t) capacity, sizeof *fan->readers);
    fan->capacity = capacity;
    fan->epoll = epoll_create1 (EPOLL_CLOEXEC);
    fan->session_updated = svc_fan_type (fan, "session_updated");
    if (!fan->readers || fan->epoll < 0 || fan->session_updated < 0)
        goto fail;
    if (pthread_create (&fan->thread, NULL, s_thread, fan))
        goto fail;
    fan->running = true;
    return fan;
fail:
    svc_fan_destroy (&fan);
    return NULL;
}

void
svc_fan_stop (svc_fan_t *fan)
{
    if (!fan->running)
        return;
    fan->stop = true;
    pthread_join (fan->thread, NULL);
    fan->running = false;
}

void
svc_fan_destroy (svc_fan_t **fan_p)
{
    svc_fan_t *fan = *fan_p;
    if (!fan)
        return;
    svc_fan_stop (fan);
    for (int i = 0; fan->readers && i < fan->count; i++) {
        close (fan->readers[i].fd);
        free (fan->readers[i].buffer);
        free (fan->readers[i].public.events);
    }
    free (fan->readers);
    for (int i = 0; i < fan->types_count; i++)
        free (fan->types[i]);
    if (fan->epoll >= 0)
        close (fan->epoll);
    pthread_mutex_destroy (&fan->lock);
    pthread_mutex_destroy (&fan->types_lock);
    free (fan);
    *fan_p = NULL;
}

int
svc_fan_open (svc_fan_t *fan, int port, const char *path, const char *token,
              const char *last_event_id)
{
    if (fan->count >= fan->capacity)
        return -1;
    char request[4096], auth[2048] = "", last[128] = "";
    if (token)
        snprintf (auth, sizeof auth, "Authorization: Bearer %s\r\n", token);
    if (last_event_id)
        snprintf (last, sizeof last, "Last-Event-ID: %s\r\n", last_event_id);
    int len = snprintf (request, sizeof request,
                        "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n"
                        "%s%s\r\n",
                        path, auth, last);
    if (len < 0 || (size_t) len >= sizeof request)
        return -1;
    int fd = socket (AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons ((uint16_t) port),
                               .sin_addr.s_addr = htonl (INADDR_LOOPBACK)};
    if (fd < 0 || connect (fd, (struct sockaddr *) &addr, sizeof addr)
        || send (fd, request, (size_t) len, MSG_NOSIGNAL) != len
        || fcntl (fd, F_SETFL, O_NONBLOCK)) {
        if (fd >= 0)
            close (fd);
        return -1;
    }
    pthread_mutex_lock (&fan->lock);
    int index = fan->count;
    s_reader_t *r = &fan->readers[index];
    r->fd = fd;
    s_block_reset (r);
    struct epoll_event event = {.events = EPOLLIN, .data.u32 = (uint32_t) index};
    int rc = epoll_ctl (fan->epoll, EPOLL_CTL_ADD, fd, &event);
    if (rc == 0)
        fan->count++;
    pthread_mutex_unlock (&fan->lock);
    if (rc) {
        close (fd);
        return -1;
    }
    return index;
}

int
svc_fan_wait (svc_fan_t *fan, svc_fan_check_fn check, void *arg, int timeout_ms)
{
    double deadline = s_now_ms () + timeout_ms;
    while (true) {
        pthread_mutex_lock (&fan->lock);
        bool all = true;
        for (int i = 0; i < fan->count && all; i++)
            all = check (&fan->readers[i].public, i, arg);
        pthread_mutex_unlock (&fan->lock);
        if (all)
            return 0;
        if (s_now_ms () > deadline)
            return -1;
        //  The thread parses in batches: a few ms between rounds lets it.
        struct timespec pause = {0, 5 * 1000 * 1000};
        nanosleep (&pause, NULL);
    }
}

const svc_fan_reader_t *
svc_fan_reader (svc_fan_t *fan, int index)
{
    return index >= 0 && index < fan->count ? &fan->readers[index].public : NULL;
}

int
svc_fan_count (svc_fan_t *fan) { return fan->count; }
