#include "svc_raw.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

int
svc_raw_connect (int port, const char *from, int timeout_ms)
{
    int fd = socket (AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return -1;
    struct timeval tv = {timeout_ms / 1000, (timeout_ms % 1000) * 1000};
    setsockopt (fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt (fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    struct sockaddr_in addr = {.sin_family = AF_INET};
    if (from) {
        inet_pton (AF_INET, from, &addr.sin_addr);
        if (bind (fd, (struct sockaddr *) &addr, sizeof addr)) {
            close (fd);
            return -1;
        }
    }
    addr.sin_port = htons ((uint16_t) port);
    addr.sin_addr.s_addr = htonl (INADDR_LOOPBACK);
    if (connect (fd, (struct sockaddr *) &addr, sizeof addr)) {
        close (fd);
        return -1;
    }
    return fd;
}

size_t
svc_raw_send (int fd, const char *data, size_t len)
{
    size_t sent = 0;
    while (sent < len) {
        ssize_t n = send (fd, data + sent, len - sent, MSG_NOSIGNAL);
        if (n <= 0)
            break;
        sent += (size_t) n;
    }
    return sent;
}

char *
svc_raw_read_all (int fd, bool *closed)
{
    size_t cap = 4096, got = 0;
    char *buffer = malloc (cap);
    bool eof = false;
    for (;;) {
        if (got + 1024 > cap)
            buffer = realloc (buffer, cap *= 2);
        ssize_t n = recv (fd, buffer + got, cap - got - 1, 0);
        if (n > 0) {
            got += (size_t) n;
            continue;
        }
        eof = n == 0 || errno == ECONNRESET;
        break;
    }
    buffer[got] = 0;
    if (closed)
        *closed = eof;
    return buffer;
}

long
svc_raw_status (const char *response)
{
    if (!response || strncmp (response, "HTTP/1.1 ", 9) != 0)
        return -1;
    return strtol (response + 9, NULL, 10);
}

long
svc_raw_exchange (int port, const char *request, size_t len, int timeout_ms, svc_raw_t *answer)
{
    svc_raw_t local;
    if (!answer)
        answer = &local;
    memset (answer, 0, sizeof *answer);
    answer->status = -1;
    int fd = svc_raw_connect (port, NULL, timeout_ms);
    if (fd >= 0) {
        answer->sent = svc_raw_send (fd, request, len);
        answer->text = svc_raw_read_all (fd, &answer->closed);
        close (fd);
        answer->status = svc_raw_status (answer->text);
        const char *body = strstr (answer->text, "\r\n\r\n");
        if (body)
            answer->json = json_loads (body + 4, 0, NULL);
    }
    long status = answer->status;
    if (answer == &local)
        svc_raw_free (&local);
    return status;
}

void
svc_raw_free (svc_raw_t *answer)
{
    free (answer->text);
    json_decref (answer->json);
    memset (answer, 0, sizeof *answer);
}

//  Calls visit for each header line of text's head (the status line and the
//  body excluded) until it returns true; returns that line or NULL.
static const char *
s_find_header (const char *text, bool (*visit) (const char *line, const char *arg),
               const char *arg)
{
    const char *end = text ? strstr (text, "\r\n\r\n") : NULL;
    for (const char *line = text ? strstr (text, "\r\n") : NULL; line && line < end;
         line = strstr (line + 2, "\r\n"))
        if (visit (line + 2, arg))
            return line + 2;
    return NULL;
}

static bool
s_is_named (const char *line, const char *name)
{
    size_t len = strlen (name);
    return strncasecmp (line, name, len) == 0 && line[len] == ':';
}

static bool
s_starts_with (const char *line, const char *prefix)
{
    return strncasecmp (line, prefix, strlen (prefix)) == 0;
}

const char *
svc_raw_header (const svc_raw_t *answer, const char *name)
{
    static _Thread_local char value[512];
    const char *line = s_find_header (answer->text, s_is_named, name);
    if (!line)
        return NULL;
    const char *v = line + strlen (name) + 1;
    while (*v == ' ')
        v++;
    snprintf (value, sizeof value, "%.*s", (int) strcspn (v, "\r"), v);
    return value;
}

bool
svc_raw_has_header_prefix (const svc_raw_t *answer, const char *prefix)
{
    return s_find_header (answer->text, s_starts_with, prefix) != NULL;
}
