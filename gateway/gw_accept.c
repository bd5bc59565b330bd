/*  gw_accept.c: accept() interposition and the peer table (gw_accept.h). */

#include "gw_accept.h"
#include "cm_log.h"
#include "gw_errors.h"
#include "gw_head.h"
#include "gw_recv.h"
#include <arpa/inet.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <stdio.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

//  Connection sockets: accept() interposition
//
//  civetweb 1.15's API gives a handler no socket descriptor, and the SSE
//  fast path (gw_stream.h) writes to sockets directly. So this executable
//  defines accept(): libcivetweb.so resolves accept through the global
//  symbol scope, where the executable comes first, so its calls land here;
//  the real accept is the next definition (dlsym RTLD_NEXT). Each accepted
//  socket is recorded under its peer address and port. An SSE handler finds
//  its socket by the peer address civetweb reports, and checks the find
//  with getpeername and getsockname: a recorded descriptor may since have
//  been closed and reused. When nothing is found the stream simply stays
//  on its own thread (slower, still correct). docs/architecture.md, SSE.

typedef struct {
    unsigned char addr[16];
    uint16_t port;
    sa_family_t family;
} s_peer_key_t;

typedef struct {
    s_peer_key_t key;
    int next; //  next fd + 1 in the bucket, 0 = end
    bool used;
} s_peer_t;

#define S_PEER_BUCKETS 8192
static pthread_mutex_t s_peers_lock = PTHREAD_MUTEX_INITIALIZER;
static s_peer_t *s_peers; //  indexed by fd; lives as long as the process
static int s_peers_cap;
static int s_peer_buckets[S_PEER_BUCKETS]; //  fd + 1, 0 = empty

static bool
s_peer_key (const struct sockaddr *sa, socklen_t len, s_peer_key_t *key)
{
    memset (key, 0, sizeof *key);
    key->family = sa->sa_family;
    if (sa->sa_family == AF_INET && len >= sizeof (struct sockaddr_in)) {
        const struct sockaddr_in *in = (const struct sockaddr_in *) sa;
        memcpy (key->addr, &in->sin_addr, 4);
        key->port = ntohs (in->sin_port);
        return true;
    }
    if (sa->sa_family == AF_INET6 && len >= sizeof (struct sockaddr_in6)) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *) sa;
        memcpy (key->addr, &in6->sin6_addr, 16);
        key->port = ntohs (in6->sin6_port);
        return true;
    }
    return false;
}

static size_t
s_peer_hash (const s_peer_key_t *key)
{
    uint32_t hash = 2166136261u;
    for (size_t i = 0; i < sizeof key->addr; i++)
        hash = (hash ^ key->addr[i]) * 16777619u;
    hash = (hash ^ (key->port & 0xff)) * 16777619u;
    hash = (hash ^ (key->port >> 8)) * 16777619u;
    return hash & (S_PEER_BUCKETS - 1);
}

static bool
s_peer_equal (const s_peer_key_t *a, const s_peer_key_t *b)
{
    return a->family == b->family && a->port == b->port && memcmp (a->addr, b->addr, 16) == 0;
}

//  Called with the lock held.
static void
s_peer_unlink (int fd)
{
    if (fd >= s_peers_cap || !s_peers[fd].used)
        return;
    int *link = &s_peer_buckets[s_peer_hash (&s_peers[fd].key)];
    while (*link) {
        if (*link - 1 == fd) {
            *link = s_peers[fd].next;
            break;
        }
        link = &s_peers[*link - 1].next;
    }
    s_peers[fd].used = false;
}

static void
s_peer_record (int fd, const struct sockaddr *sa, socklen_t len)
{
    s_peer_key_t key;
    if (!s_peer_key (sa, len, &key))
        return;
    pthread_mutex_lock (&s_peers_lock);
    if (fd >= s_peers_cap) {
        int cap = s_peers_cap ? s_peers_cap : 1024;
        while (cap <= fd)
            cap *= 2;
        s_peer_t *peers = realloc (s_peers, (size_t) cap * sizeof *peers);
        if (!peers) {
            pthread_mutex_unlock (&s_peers_lock);
            return;
        }
        memset (peers + s_peers_cap, 0, (size_t) (cap - s_peers_cap) * sizeof *peers);
        s_peers = peers;
        s_peers_cap = cap;
    }
    //  The fd was free again, so whatever it was recorded as is closed.
    s_peer_unlink (fd);
    size_t bucket = s_peer_hash (&key);
    s_peers[fd].key = key;
    s_peers[fd].used = true;
    s_peers[fd].next = s_peer_buckets[bucket];
    s_peer_buckets[bucket] = fd + 1;
    pthread_mutex_unlock (&s_peers_lock);
}

static bool
s_peer_verify (int fd, const s_peer_key_t *key, int local_port)
{
    struct sockaddr_storage addr;
    socklen_t len = sizeof addr;
    s_peer_key_t found;
    if (getpeername (fd, (struct sockaddr *) &addr, &len) || !s_peer_key ((struct sockaddr *) &addr, len, &found)
        || !s_peer_equal (&found, key))
        return false;
    len = sizeof addr;
    return getsockname (fd, (struct sockaddr *) &addr, &len) == 0
           && s_peer_key ((struct sockaddr *) &addr, len, &found) && found.port == local_port;
}

int
gw_accept_peer_fd (const char *remote_addr, int remote_port, int local_port)
{
    s_peer_key_t key;
    memset (&key, 0, sizeof key);
    key.port = (uint16_t) remote_port;
    if (inet_pton (AF_INET, remote_addr, key.addr) == 1)
        key.family = AF_INET;
    else if (inet_pton (AF_INET6, remote_addr, key.addr) == 1)
        key.family = AF_INET6;
    else
        return -1;
    int fd = -1;
    pthread_mutex_lock (&s_peers_lock);
    for (int link = s_peer_buckets[s_peer_hash (&key)]; link && fd < 0; link = s_peers[link - 1].next)
        if (s_peer_equal (&s_peers[link - 1].key, &key) && s_peer_verify (link - 1, &key, local_port))
            fd = link - 1;
    pthread_mutex_unlock (&s_peers_lock);
    return fd;
}

//  ---------------------------------------------------------------------
//  The vestibule
//
//  civetweb's master thread polls its listening socket and calls accept()
//  when it is readable. At that first call the listening socket is taken
//  over: the vestibule keeps a dup() of it, and an eventfd is dup2()'d
//  onto civetweb's descriptor. From then on civetweb polls the eventfd,
//  which counts the connections ready for it, and its accept() pops them
//  from the listener's queue. The vestibule thread accepts every new
//  connection itself and holds it in its epoll set (edge-triggered, as
//  the bytes are only peeked at) until gw_head_check says the head is
//  complete; a refused head gets its JSON answer here, a connection past
//  its header deadline a 408. A held connection costs a descriptor and a
//  small record, never a civetweb thread.

typedef enum { S_HELD, S_DRAIN, S_LISTENER, S_WAKE } s_kind_t;

typedef struct s_conn s_conn_t;
struct s_conn {
    s_kind_t kind;
    int fd;
    int listener;                 //  index in s_vest.listeners
    struct sockaddr_storage addr; //  the peer
    socklen_t addr_len;
    int64_t deadline;             //  monotonic ms
    s_conn_t *prev, *next;        //  in s_vest.held or s_vest.draining
};

typedef struct {
    s_conn_t *head, *tail;
} s_list_t;

typedef struct {
    int fd;
    struct sockaddr_storage addr;
    socklen_t addr_len;
} s_ready_t;

#define S_LISTENERS_MAX 8
#define S_READY_MAX 1024 //  complete heads civetweb has not taken yet
#define S_DRAIN_MS 1000  //  how long a refused connection is read (and discarded)

typedef struct {
    s_conn_t self;  //  kind S_LISTENER, fd = our dup of the listening socket
    int civet_fd;   //  civetweb's descriptor, now the eventfd
    s_ready_t ready[S_READY_MAX];
    size_t ready_head, ready_count;
} s_listener_t;

//  Connections waiting for their head, per peer address (port left out).
typedef struct s_addr_count s_addr_count_t;
struct s_addr_count {
    s_peer_key_t key;
    int count;
    s_addr_count_t *next;
};
#define S_ADDR_BUCKETS 4096

static struct {
    pthread_mutex_t lock; //  the listener table and the ready queues
    bool running;
    gw_accept_options_t options;
    pthread_t thread;
    int epoll_fd;
    s_conn_t wake;        //  eventfd: stop
    int spare_fd;         //  given up to accept-and-close when out of descriptors
    s_listener_t listeners[S_LISTENERS_MAX];
    int listener_count;
    s_list_t held, draining;
    s_addr_count_t *addr_counts[S_ADDR_BUCKETS];
    int64_t refused_logged_ms;
    long refused_since_log;
    char peek[GW_HEAD_MAX];
} s_vest = {.lock = PTHREAD_MUTEX_INITIALIZER, .epoll_fd = -1, .spare_fd = -1};

//  Held plus draining connections: written by the vestibule thread, read
//  by /metrics.
static atomic_long s_vest_count;

long
gw_accept_held (void)
{
    return atomic_load (&s_vest_count);
}

static int64_t
s_now_ms (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_MONOTONIC, &ts);
    return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void
s_list_push (s_list_t *list, s_conn_t *conn)
{
    conn->next = NULL;
    conn->prev = list->tail;
    if (list->tail)
        list->tail->next = conn;
    else
        list->head = conn;
    list->tail = conn;
}

static void
s_list_remove (s_list_t *list, s_conn_t *conn)
{
    if (conn->prev)
        conn->prev->next = conn->next;
    else
        list->head = conn->next;
    if (conn->next)
        conn->next->prev = conn->prev;
    else
        list->tail = conn->prev;
    conn->prev = conn->next = NULL;
}

//  Adds delta to the count of held connections from conn's address; the
//  new count (0 when the address has no key, e.g. a Unix socket).
static int
s_addr_add (const s_conn_t *conn, int delta)
{
    s_peer_key_t key;
    if (!s_peer_key ((const struct sockaddr *) &conn->addr, conn->addr_len, &key))
        return 0;
    key.port = 0;
    s_addr_count_t **link = &s_vest.addr_counts[s_peer_hash (&key) & (S_ADDR_BUCKETS - 1)];
    while (*link && !s_peer_equal (&(*link)->key, &key))
        link = &(*link)->next;
    if (!*link) {
        if (delta <= 0)
            return 0;
        *link = calloc (1, sizeof **link);
        if (!*link)
            return 0;
        (*link)->key = key;
    }
    s_addr_count_t *entry = *link;
    entry->count += delta;
    int count = entry->count;
    if (count <= 0) {
        *link = entry->next;
        free (entry);
    }
    return count;
}

static void
s_addr_text (const s_conn_t *conn, char *text, size_t size)
{
    const struct sockaddr *sa = (const struct sockaddr *) &conn->addr;
    const void *raw = sa->sa_family == AF_INET6 ? (const void *) &((const struct sockaddr_in6 *) sa)->sin6_addr
                                                : (const void *) &((const struct sockaddr_in *) sa)->sin_addr;
    if (!inet_ntop (sa->sa_family, raw, text, (socklen_t) size))
        snprintf (text, size, "?");
}

static void
s_conn_close (s_conn_t *conn)
{
    s_list_remove (conn->kind == S_HELD ? &s_vest.held : &s_vest.draining, conn);
    if (conn->kind == S_HELD)
        s_addr_add (conn, -1);
    close (conn->fd); //  also leaves the epoll set
    free (conn);
    atomic_fetch_sub (&s_vest_count, 1);
}

//  The JSON error answer, then the connection is read and discarded for
//  S_DRAIN_MS (so that closing it with unread bytes does not reset it
//  before the client has the answer) and closed.
static void
s_conn_refuse (s_conn_t *conn, int status, const char *code, const char *error)
{
    json_t *body = gw_error_body (code, error);
    char *text = body ? json_dumps (body, JSON_COMPACT) : NULL;
    json_decref (body);
    char answer[1024];
    int n = snprintf (answer, sizeof answer,
                      "HTTP/1.1 %d %s\r\n"
                      "Content-Type: application/json\r\n"
                      "Content-Length: %zu\r\n"
                      "X-Content-Type-Options: nosniff\r\n"
                      "Referrer-Policy: no-referrer\r\n"
                      "Cache-Control: no-store\r\n"
                      "Connection: close\r\n\r\n%s",
                      status, gw_http_reason (status), text ? strlen (text) : 0, text ? text : "");
    free (text);
    if (n > 0 && (size_t) n < sizeof answer)
        (void) !send (conn->fd, answer, (size_t) n, MSG_NOSIGNAL | MSG_DONTWAIT);
    shutdown (conn->fd, SHUT_WR);
    if (conn->kind == S_HELD) {
        s_list_remove (&s_vest.held, conn);
        s_addr_add (conn, -1);
    }
    else
        s_list_remove (&s_vest.draining, conn);
    conn->kind = S_DRAIN;
    conn->deadline = s_now_ms () + S_DRAIN_MS;
    s_list_push (&s_vest.draining, conn);
}

//  A complete head: the connection goes to civetweb, its chunked body
//  read through gw_recv.h.
static void
s_conn_hand_over (s_conn_t *conn, const gw_head_t *head)
{
    s_listener_t *listener = &s_vest.listeners[conn->listener];
    if (head->chunked
        && gw_recv_watch (conn->fd, head->head_len, (const struct sockaddr *) &conn->addr, conn->addr_len)) {
        s_conn_refuse (conn, 503, "busy", "The gateway is reading too many chunked bodies; retry later.");
        return;
    }
    pthread_mutex_lock (&s_vest.lock);
    bool full = listener->ready_count == S_READY_MAX;
    if (!full) {
        s_ready_t *ready = &listener->ready[(listener->ready_head + listener->ready_count) % S_READY_MAX];
        ready->fd = conn->fd;
        ready->addr = conn->addr;
        ready->addr_len = conn->addr_len;
        listener->ready_count++;
    }
    pthread_mutex_unlock (&s_vest.lock);
    if (full) {
        gw_recv_forget (conn->fd);
        s_conn_refuse (conn, 503, "busy", "The gateway has too many requests waiting; retry later.");
        return;
    }
    epoll_ctl (s_vest.epoll_fd, EPOLL_CTL_DEL, conn->fd, NULL);
    uint64_t one = 1;
    (void) !write (listener->civet_fd, &one, sizeof one);
    s_list_remove (&s_vest.held, conn);
    s_addr_add (conn, -1);
    free (conn);
    atomic_fetch_sub (&s_vest_count, 1);
}

//  events: epoll's bits for conn.
static void
s_conn_readable (s_conn_t *conn, uint32_t events)
{
    if (conn->kind == S_DRAIN) {
        char sink[4096];
        ssize_t n;
        while ((n = recv (conn->fd, sink, sizeof sink, MSG_DONTWAIT)) > 0)
            ;
        if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR))
            s_conn_close (conn);
        return;
    }
    ssize_t n = recv (conn->fd, s_vest.peek, sizeof s_vest.peek, MSG_PEEK | MSG_DONTWAIT);
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) {
        s_conn_close (conn); //  gone before its head was complete
        return;
    }
    if (n < 0)
        return;
    gw_head_t head;
    switch (gw_head_check (s_vest.peek, (size_t) n, &head)) {
    case GW_HEAD_INCOMPLETE:
        //  The peek sees the bytes, not the FIN behind them: a client that
        //  sent part of a head and then shut down can never complete it.
        if (events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR))
            s_conn_close (conn);
        break;
    case GW_HEAD_COMPLETE:
        s_conn_hand_over (conn, &head);
        break;
    case GW_HEAD_REJECT:
        cm_info ("refused a request head: %d %s", head.status, head.error);
        s_conn_refuse (conn, head.status, head.code, head.error);
        break;
    }
}

//  One log line per second at most for the per-address cap.
static void
s_refused_log (const s_conn_t *conn)
{
    s_vest.refused_since_log++;
    int64_t now = s_now_ms ();
    if (now - s_vest.refused_logged_ms < 1000)
        return;
    char text[INET6_ADDRSTRLEN];
    s_addr_text (conn, text, sizeof text);
    cm_warning ("connection cap: refused %ld connection(s) in the last second, the latest from %s "
                "(CHATMESH_MAX_CONNS_PER_ADDR=%d connections waiting for their request head per address)",
                s_vest.refused_since_log, text, s_vest.options.max_conns_per_addr);
    s_vest.refused_since_log = 0;
    s_vest.refused_logged_ms = now;
}

static void
s_listener_readable (s_listener_t *listener)
{
    for (;;) {
        s_conn_t *conn = calloc (1, sizeof *conn);
        if (!conn)
            return;
        conn->addr_len = sizeof conn->addr;
        conn->fd = accept4 (listener->self.fd, (struct sockaddr *) &conn->addr, &conn->addr_len,
                            SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (conn->fd < 0) {
            int err = errno;
            free (conn);
            if ((err == EMFILE || err == ENFILE) && s_vest.spare_fd >= 0) {
                //  Out of descriptors: accept with the spare and close at
                //  once, else the listening socket stays readable forever.
                close (s_vest.spare_fd);
                int fd = accept4 (listener->self.fd, NULL, NULL, SOCK_CLOEXEC);
                if (fd >= 0)
                    close (fd);
                s_vest.spare_fd = open ("/dev/null", O_RDONLY | O_CLOEXEC);
                cm_warning ("out of file descriptors: a new connection was closed at once");
                continue;
            }
            return; //  EAGAIN: none left; anything else: try again at the next wakeup
        }
        //  Whatever the descriptor was watched as is closed.
        gw_recv_forget (conn->fd);
        conn->kind = S_HELD;
        conn->listener = (int) (listener - s_vest.listeners);
        conn->deadline = s_now_ms () + s_vest.options.header_timeout_ms;
        s_list_push (&s_vest.held, conn);
        atomic_fetch_add (&s_vest_count, 1);
        int count = s_addr_add (conn, 1);
        if (s_vest.options.max_conns_per_addr && count > s_vest.options.max_conns_per_addr) {
            s_refused_log (conn);
            s_conn_refuse (conn, 429, "too_many_connections",
                           "Too many connections from this address are waiting to send their request.");
        }
        struct epoll_event event = {.events = EPOLLIN | EPOLLRDHUP | EPOLLET, .data.ptr = conn};
        if (epoll_ctl (s_vest.epoll_fd, EPOLL_CTL_ADD, conn->fd, &event))
            s_conn_close (conn);
    }
}

//  Deadlines: held connections get a 408, draining ones are closed.
//  Returns the epoll timeout until the next deadline (-1: none).
static int
s_expire (void)
{
    int64_t now = s_now_ms ();
    while (s_vest.held.head && s_vest.held.head->deadline <= now)
        s_conn_refuse (s_vest.held.head, 408, "request_timeout",
                       "The request head did not arrive within CHATMESH_HEADER_TIMEOUT_MS.");
    while (s_vest.draining.head && s_vest.draining.head->deadline <= now)
        s_conn_close (s_vest.draining.head);
    int64_t next = -1;
    if (s_vest.held.head)
        next = s_vest.held.head->deadline;
    if (s_vest.draining.head && (next < 0 || s_vest.draining.head->deadline < next))
        next = s_vest.draining.head->deadline;
    return next < 0 ? -1 : (int) (next - now + 1);
}

static void *
s_vest_run (void *arg)
{
    (void) arg;
    struct epoll_event events[256];
    for (;;) {
        int timeout = s_expire ();
        int n = epoll_wait (s_vest.epoll_fd, events, 256, timeout);
        for (int i = 0; i < n; i++) {
            s_conn_t *conn = events[i].data.ptr;
            if (conn->kind == S_WAKE)
                return NULL;
            if (conn->kind == S_LISTENER)
                s_listener_readable ((s_listener_t *) conn);
            else
                s_conn_readable (conn, events[i].events);
        }
    }
}

int
gw_accept_start (const gw_accept_options_t *options, char *why, size_t why_size)
{
    if (s_vest.running) {
        snprintf (why, why_size, "the connection vestibule runs already (one gateway per process)");
        return -1;
    }
    struct rlimit limit;
    if (getrlimit (RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur < limit.rlim_max) {
        rlim_t was = limit.rlim_cur;
        limit.rlim_cur = limit.rlim_max;
        if (setrlimit (RLIMIT_NOFILE, &limit) == 0)
            cm_info ("file descriptor limit raised from %llu to %llu", (unsigned long long) was,
                     (unsigned long long) limit.rlim_max);
    }
    s_vest.options = *options;
    s_vest.epoll_fd = epoll_create1 (EPOLL_CLOEXEC);
    s_vest.wake.kind = S_WAKE;
    s_vest.wake.fd = eventfd (0, EFD_CLOEXEC | EFD_NONBLOCK);
    s_vest.spare_fd = open ("/dev/null", O_RDONLY | O_CLOEXEC);
    struct epoll_event event = {.events = EPOLLIN, .data.ptr = &s_vest.wake};
    if (s_vest.epoll_fd < 0 || s_vest.wake.fd < 0
        || epoll_ctl (s_vest.epoll_fd, EPOLL_CTL_ADD, s_vest.wake.fd, &event)
        || pthread_create (&s_vest.thread, NULL, s_vest_run, NULL)) {
        snprintf (why, why_size, "cannot start the connection vestibule: %s", strerror (errno));
        s_vest.running = true;
        gw_accept_stop ();
        return -1;
    }
    pthread_mutex_lock (&s_vest.lock);
    s_vest.running = true;
    pthread_mutex_unlock (&s_vest.lock);
    return 0;
}

void
gw_accept_stop (void)
{
    if (!s_vest.running)
        return;
    if (s_vest.wake.fd >= 0 && s_vest.epoll_fd >= 0) {
        uint64_t one = 1;
        (void) !write (s_vest.wake.fd, &one, sizeof one);
        pthread_join (s_vest.thread, NULL);
    }
    pthread_mutex_lock (&s_vest.lock);
    s_vest.running = false;
    for (int i = 0; i < s_vest.listener_count; i++) {
        s_listener_t *listener = &s_vest.listeners[i];
        close (listener->self.fd);
        for (size_t k = 0; k < listener->ready_count; k++)
            close (listener->ready[(listener->ready_head + k) % S_READY_MAX].fd);
        listener->ready_count = 0;
    }
    s_vest.listener_count = 0;
    pthread_mutex_unlock (&s_vest.lock);
    while (s_vest.held.head)
        s_conn_close (s_vest.held.head);
    while (s_vest.draining.head)
        s_conn_close (s_vest.draining.head);
    for (int fd_i = 0; fd_i < 3; fd_i++) {
        int *fd = fd_i == 0 ? &s_vest.epoll_fd : fd_i == 1 ? &s_vest.wake.fd : &s_vest.spare_fd;
        if (*fd >= 0)
            close (*fd);
        *fd = -1;
    }
}

//  civetweb's descriptor fd: its listener, taken over now when it is a
//  listening socket seen for the first time. NULL when the vestibule is
//  off or fd is no listening socket. Called with the lock held.
static s_listener_t *
s_listener_for (int fd, bool *taken_over)
{
    *taken_over = false;
    if (!s_vest.running)
        return NULL;
    for (int i = 0; i < s_vest.listener_count; i++)
        if (s_vest.listeners[i].civet_fd == fd)
            return &s_vest.listeners[i];
    int listening = 0;
    socklen_t len = sizeof listening;
    if (getsockopt (fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &len) || !listening
        || s_vest.listener_count == S_LISTENERS_MAX)
        return NULL;
    s_listener_t *listener = &s_vest.listeners[s_vest.listener_count];
    memset (listener, 0, sizeof *listener);
    listener->self.kind = S_LISTENER;
    listener->self.fd = fcntl (fd, F_DUPFD_CLOEXEC, 0);
    int bell = eventfd (0, EFD_CLOEXEC | EFD_NONBLOCK | EFD_SEMAPHORE);
    struct epoll_event event = {.events = EPOLLIN, .data.ptr = &listener->self};
    if (listener->self.fd < 0 || bell < 0 || dup3 (bell, fd, O_CLOEXEC) < 0) {
        cm_warning ("cannot take over the listening socket (%s): connections go to civetweb "
                    "unchecked", strerror (errno));
        if (listener->self.fd >= 0)
            close (listener->self.fd);
        if (bell >= 0)
            close (bell);
        return NULL;
    }
    close (bell);
    //  civetweb's listening socket may be blocking; the vestibule's
    //  accept loop needs it not to be.
    fcntl (listener->self.fd, F_SETFL, fcntl (listener->self.fd, F_GETFL) | O_NONBLOCK);
    listener->civet_fd = fd;
    s_vest.listener_count++;
    if (epoll_ctl (s_vest.epoll_fd, EPOLL_CTL_ADD, listener->self.fd, &event))
        cm_warning ("cannot watch the listening socket: %s", strerror (errno));
    *taken_over = true;
    return listener;
}

typedef int (*s_accept_fn_t) (int, __SOCKADDR_ARG, socklen_t *__restrict);
static s_accept_fn_t s_real_accept;
static pthread_once_t s_accept_once = PTHREAD_ONCE_INIT;

static void
s_accept_resolve (void)
{
    s_real_accept = (s_accept_fn_t) dlsym (RTLD_NEXT, "accept");
}

//  A connection the vestibule has passed, or -1 with EAGAIN.
static int
s_accept_ready (s_listener_t *listener, struct sockaddr *sa, socklen_t *len)
{
    uint64_t count;
    if (read (listener->civet_fd, &count, sizeof count) != sizeof count) {
        errno = EAGAIN;
        return -1;
    }
    pthread_mutex_lock (&s_vest.lock);
    int fd = -1;
    if (listener->ready_count) {
        s_ready_t *ready = &listener->ready[listener->ready_head];
        listener->ready_head = (listener->ready_head + 1) % S_READY_MAX;
        listener->ready_count--;
        fd = ready->fd;
        socklen_t n = ready->addr_len < *len ? ready->addr_len : *len;
        memcpy (sa, &ready->addr, n);
        *len = ready->addr_len;
    }
    pthread_mutex_unlock (&s_vest.lock);
    if (fd < 0)
        errno = EAGAIN;
    return fd;
}

int
accept (int fd, __SOCKADDR_ARG addr, socklen_t *__restrict addr_len)
{
    pthread_once (&s_accept_once, s_accept_resolve);
    if (!s_real_accept) {
        errno = ENOSYS;
        return -1;
    }
    struct sockaddr_storage own;
    socklen_t own_len = sizeof own;
    struct sockaddr *sa = addr.__sockaddr__ && addr_len ? addr.__sockaddr__ : (struct sockaddr *) &own;
    socklen_t *len = addr.__sockaddr__ && addr_len ? addr_len : &own_len;
    pthread_mutex_lock (&s_vest.lock);
    bool taken_over;
    s_listener_t *listener = s_listener_for (fd, &taken_over);
    pthread_mutex_unlock (&s_vest.lock);
    int client;
    if (taken_over) {
        //  The pending connection is the vestibule's now, like all after it.
        errno = EAGAIN;
        return -1;
    }
    client = listener ? s_accept_ready (listener, sa, len) : s_real_accept (fd, sa, len);
    if (client >= 0)
        s_peer_record (client, sa, *len);
    return client;
}
