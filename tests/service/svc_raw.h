/*  svc_raw.h: raw HTTP over TCP for the service tests that must send
    exactly the bytes they mean (dot segments, bad framing, partial or
    slow requests), which curl would normalise or refuse to send.

    Every function talks to 127.0.0.1:port; none asserts, so a test says
    itself what must hold (svc_attack, svc_edge, svc_framing).          */
#ifndef SVC_RAW_H_INCLUDED
#define SVC_RAW_H_INCLUDED

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

//  A TCP connection to 127.0.0.1:port, from source address `from` (NULL:
//  whatever the kernel picks), with receive and send timeouts of
//  timeout_ms. The fd (caller closes), or -1.
int svc_raw_connect (int port, const char *from, int timeout_ms);

//  Sends len bytes; a send error part-way stops it (the server may answer
//  and close before it read everything). The number of bytes sent.
size_t svc_raw_send (int fd, const char *data, size_t len);

//  Reads until the server closes, or until the receive timeout passes
//  without data. Everything read, NUL-terminated (caller frees).
//  *closed (may be NULL): true when EOF or a reset ended it, false when
//  the timeout did.
char *svc_raw_read_all (int fd, bool *closed);

//  The status of the "HTTP/1.1 NNN" line response starts with, or -1.
long svc_raw_status (const char *response);

typedef struct {
    long status;  //  svc_raw_status of text: -1 without a status line
    char *text;   //  the whole response; NULL when no connection was made
    json_t *json; //  the body after the head, parsed, or NULL
    size_t sent;  //  bytes of the request sent before the server stopped reading
    bool closed;  //  as svc_raw_read_all's *closed
} svc_raw_t;

//  One exchange on a new connection: svc_raw_connect (port, NULL,
//  timeout_ms), send len bytes of request, read until the server closes.
//  Returns the status (-1 as well when the connection failed). answer
//  (may be NULL: only the status is wanted) is filled; free it with
//  svc_raw_free.
long svc_raw_exchange (int port, const char *request, size_t len, int timeout_ms,
                       svc_raw_t *answer);
void svc_raw_free (svc_raw_t *answer);

//  The value of header `name` (case-insensitive) in the answer's head, or
//  NULL. Borrowed from a per-thread buffer, valid until the next call.
const char *svc_raw_header (const svc_raw_t *answer, const char *name);
//  True when a header line of the answer's head starts with prefix
//  (case-insensitive).
bool svc_raw_has_header_prefix (const svc_raw_t *answer, const char *prefix);

#endif
