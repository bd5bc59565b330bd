/*  gw_recv.c: recv() interposition for chunked bodies (gw_recv.h).     */

#include "gw_recv.h"
#include "gw_chunked.h"
#include <dlfcn.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <string.h>

typedef struct {
    int fd; //  -1: a free slot
    struct sockaddr_storage peer;
    socklen_t peer_len;
    gw_chunked_t filter;
} s_watch_t;

static pthread_mutex_t s_lock = PTHREAD_MUTEX_INITIALIZER;
static s_watch_t s_watches[GW_RECV_WATCHED_MAX];
static atomic_int s_watched;

typedef ssize_t (*s_recv_fn_t) (int, void *, size_t, int);
static s_recv_fn_t s_real_recv;
static pthread_once_t s_once = PTHREAD_ONCE_INIT;

static void
s_resolve (void)
{
    s_real_recv = (s_recv_fn_t) dlsym (RTLD_NEXT, "recv");
}

//  The slot of fd, or NULL. Called with the lock held.
static s_watch_t *
s_find (int fd)
{
    for (int i = 0; i < GW_RECV_WATCHED_MAX; i++)
        if (s_watches[i].peer_len && s_watches[i].fd == fd)
            return &s_watches[i];
    return NULL;
}

//  Called with the lock held.
static void
s_release (s_watch_t *watch)
{
    watch->peer_len = 0;
    watch->fd = -1;
    atomic_fetch_sub (&s_watched, 1);
}

int
gw_recv_watch (int fd, size_t head_len, const struct sockaddr *peer, socklen_t peer_len)
{
    if (peer_len == 0 || peer_len > sizeof (struct sockaddr_storage))
        return -1;
    pthread_mutex_lock (&s_lock);
    s_watch_t *watch = s_find (fd);
    for (int i = 0; !watch && i < GW_RECV_WATCHED_MAX; i++)
        if (!s_watches[i].peer_len) {
            watch = &s_watches[i];
            atomic_fetch_add (&s_watched, 1);
        }
    if (watch) {
        watch->fd = fd;
        memcpy (&watch->peer, peer, peer_len);
        watch->peer_len = peer_len;
        gw_chunked_init (&watch->filter, head_len);
    }
    pthread_mutex_unlock (&s_lock);
    return watch ? 0 : -1;
}

void
gw_recv_forget (int fd)
{
    if (atomic_load (&s_watched) == 0)
        return;
    pthread_mutex_lock (&s_lock);
    s_watch_t *watch = s_find (fd);
    if (watch)
        s_release (watch);
    pthread_mutex_unlock (&s_lock);
}

int
gw_recv_watched (void)
{
    return atomic_load (&s_watched);
}

//  Whether fd is still connected to the peer it was watched for (IPv4 or
//  IPv6 address and port; a descriptor reused by any other socket fails).
static bool
s_same_peer (int fd, const struct sockaddr_storage *peer)
{
    struct sockaddr_storage now;
    socklen_t len = sizeof now;
    if (getpeername (fd, (struct sockaddr *) &now, &len) || now.ss_family != peer->ss_family)
        return false;
    if (now.ss_family == AF_INET) {
        const struct sockaddr_in *a = (const struct sockaddr_in *) &now, *b = (const struct sockaddr_in *) peer;
        return a->sin_port == b->sin_port && a->sin_addr.s_addr == b->sin_addr.s_addr;
    }
    if (now.ss_family == AF_INET6) {
        const struct sockaddr_in6 *a = (const struct sockaddr_in6 *) &now,
                                  *b = (const struct sockaddr_in6 *) peer;
        return a->sin6_port == b->sin6_port && memcmp (&a->sin6_addr, &b->sin6_addr, sizeof a->sin6_addr) == 0;
    }
    return false;
}

ssize_t
recv (int fd, void *buf, size_t len, int flags)
{
    pthread_once (&s_once, s_resolve);
    if (!s_real_recv) {
        errno = ENOSYS;
        return -1;
    }
    if (flags || len == 0 || atomic_load (&s_watched) == 0)
        return s_real_recv (fd, buf, len, flags);
    //  Only the thread that reads fd changes its slot, and a slot is
    //  reused only after it is released: a copy of the filter is safe.
    pthread_mutex_lock (&s_lock);
    s_watch_t *watch = s_find (fd);
    gw_chunked_t filter;
    struct sockaddr_storage peer;
    if (watch) {
        filter = watch->filter;
        peer = watch->peer;
    }
    pthread_mutex_unlock (&s_lock);
    if (!watch)
        return s_real_recv (fd, buf, len, flags);
    if (!s_same_peer (fd, &peer)) {
        gw_recv_forget (fd);
        return s_real_recv (fd, buf, len, flags);
    }
    //  A malformed byte came with the last bytes kept: fail now, without
    //  waiting for bytes the client may never send.
    long kept = gw_chunked_failed (&filter) ? -1 : 0;
    ssize_t n = 1;
    while (kept == 0) {
        n = s_real_recv (fd, buf, len, 0);
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            //  Every byte so far was an extension's: wait for one to keep.
            struct pollfd pfd = {.fd = fd, .events = POLLIN};
            if (poll (&pfd, 1, GW_RECV_WAIT_MS) == 1)
                continue;
            errno = EAGAIN;
        }
        if (n <= 0)
            break;
        kept = gw_chunked_filter (&filter, buf, (size_t) n);
        if (kept < 0)
            break;
    }
    pthread_mutex_lock (&s_lock);
    if (s_find (fd) == watch) {
        if (n <= 0 || kept < 0 || gw_chunked_done (&filter))
            s_release (watch);
        else
            watch->filter = filter;
    }
    pthread_mutex_unlock (&s_lock);
    if (n <= 0)
        return n;
    if (kept < 0) {
        errno = EPROTO;
        return -1;
    }
    return kept;
}
