/*  gw_recv.h: recv() for the whole executable, so that civetweb reads a
    chunked request body through gw_chunked.h.

    civetweb 1.15 refuses chunk extensions, which RFC 9112 allows, and its
    API offers no hook into its chunk reader. So, like accept()
    (gw_accept.h), recv is defined here: libcivetweb.so resolves it through
    the global symbol scope, where the executable comes first; the real
    recv is the next definition (dlsym RTLD_NEXT). A connection the
    vestibule hands over with a chunked head is watched: civetweb's reads
    of it (flags 0) are filtered by gw_chunked_filter, until the last chunk
    is through. The read after a malformed byte fails (EPROTO), so civetweb
    reports a read error and the gateway answers 400. Every other call
    (other descriptors, MSG_PEEK, nothing watched) is the real recv, at
    the cost of one atomic load when nothing is watched.

    A watched descriptor may be closed before its body is read (a request
    answered without reading its body); each filtered read therefore
    checks the peer address first, and a descriptor the vestibule accepts
    again is forgotten.                                                  */
#ifndef GW_RECV_H
#define GW_RECV_H

#include <stddef.h>
#include <sys/socket.h>

//  Chunked requests read at the same time, at most.
#define GW_RECV_WATCHED_MAX 256
//  A filtered read waits this long for a byte it may keep (every byte it
//  received was an extension's) before it fails.
#define GW_RECV_WAIT_MS 30000

//  Watches fd, connected to peer, whose request head is head_len bytes
//  long. -1 when GW_RECV_WATCHED_MAX connections are watched already.
int gw_recv_watch (int fd, size_t head_len, const struct sockaddr *peer, socklen_t peer_len);

//  Stops watching fd (it was accepted anew). Does nothing if not watched.
void gw_recv_forget (int fd);

//  Connections watched now.
int gw_recv_watched (void);

#endif
