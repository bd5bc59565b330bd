/*  bench_wire.c: bench_wire.h.                                          */
#include "bench_wire.h"

#include "cm_codec.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <zmq.h>

bool
bench_acknowledged (void *socket, const char *request_id)
{
    zmq_msg_t msg;
    zmq_msg_init (&msg);
    bool ok = false;
    if (zmq_msg_recv (&msg, socket, 0) >= 0) {
        cm_envelope_t *reply = NULL;
        ok = cm_envelope_decode (zmq_msg_data (&msg), zmq_msg_size (&msg), &reply) == 0
             && reply->type == CM_MSG_OK && strcmp (reply->request_id, request_id) == 0;
        cm_envelope_destroy (&reply);
    }
    zmq_msg_close (&msg);
    return ok;
}

void
bench_drain (void *sink)
{
    zmq_msg_t part;
    zmq_msg_init (&part);
    while (zmq_msg_recv (&part, sink, ZMQ_DONTWAIT) >= 0)
        ;
    zmq_msg_close (&part);
}

int
bench_free_port (void)
{
    int fd = socket (AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_addr.s_addr = htonl (INADDR_LOOPBACK)};
    socklen_t len = sizeof addr;
    int port = -1;
    if (fd >= 0 && bind (fd, (struct sockaddr *) &addr, sizeof addr) == 0
        && getsockname (fd, (struct sockaddr *) &addr, &len) == 0)
        port = ntohs (addr.sin_port);
    if (fd >= 0)
        close (fd);
    return port;
}
