/*  test_gw_recv: recv() as civetweb sees it on a watched connection (a
    loopback TCP pair), the peer check, and the limit of watched ones.   */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "gw_chunked.h"
#include "gw_recv.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

typedef struct {
    int client, server;
    struct sockaddr_in peer; //  the client's address, as accept saw it
} s_pair_t;

static void
s_pair (s_pair_t *pair)
{
    int listener = socket (AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_addr.s_addr = htonl (INADDR_LOOPBACK)};
    socklen_t len = sizeof addr;
    assert_int_equal (bind (listener, (struct sockaddr *) &addr, sizeof addr), 0);
    assert_int_equal (listen (listener, 1), 0);
    assert_int_equal (getsockname (listener, (struct sockaddr *) &addr, &len), 0);
    pair->client = socket (AF_INET, SOCK_STREAM, 0);
    assert_int_equal (connect (pair->client, (struct sockaddr *) &addr, sizeof addr), 0);
    len = sizeof pair->peer;
    pair->server = accept (listener, (struct sockaddr *) &pair->peer, &len);
    assert_true (pair->server >= 0);
    close (listener);
}

static void
s_pair_close (s_pair_t *pair)
{
    gw_recv_forget (pair->server);
    close (pair->client);
    close (pair->server);
}

//  Reads exactly want bytes (civetweb reads until it has what it needs).
static void
s_read_all (int fd, char *buf, size_t want)
{
    for (size_t got = 0; got < want;) {
        ssize_t n = recv (fd, buf + got, want - got, 0);
        assert_true (n > 0);
        got += (size_t) n;
    }
    buf[want] = 0;
}

static void
test_extensions_removed (void **state)
{
    (void) state;
    s_pair_t pair;
    s_pair (&pair);
    const char *head = "PUT /a HTTP/1.1\r\nHost: g\r\nTransfer-Encoding: chunked\r\n\r\n";
    assert_int_equal (gw_recv_watch (pair.server, strlen (head), (struct sockaddr *) &pair.peer, sizeof pair.peer),
                      0);
    assert_int_equal (gw_recv_watched (), 1);
    char sent[256];
    snprintf (sent, sizeof sent, "%s3;a=b\r\nabc\r\n0\r\n\r\n", head);
    assert_int_equal (send (pair.client, sent, strlen (sent), 0), (ssize_t) strlen (sent));
    char want[256], got[256];
    snprintf (want, sizeof want, "%s3\r\nabc\r\n0\r\n\r\n", head);
    s_read_all (pair.server, got, strlen (want));
    assert_string_equal (got, want);
    //  Done after the last chunk: no longer watched.
    assert_int_equal (gw_recv_watched (), 0);
    s_pair_close (&pair);
}

//  An extension that arrives alone: recv waits for a byte to keep rather
//  than return 0, which civetweb would take for the end of the connection.
static void *
s_send_rest (void *arg)
{
    const s_pair_t *pair = arg;
    (void) !send (pair->client, "\r\nx\r\n0\r\n\r\n", 10, 0);
    return NULL;
}

static void
test_extension_alone (void **state)
{
    (void) state;
    s_pair_t pair;
    s_pair (&pair);
    assert_int_equal (gw_recv_watch (pair.server, 0, (struct sockaddr *) &pair.peer, sizeof pair.peer), 0);
    char got[64];
    assert_int_equal (send (pair.client, "1;ext", 5, 0), 5);
    s_read_all (pair.server, got, 1);
    assert_string_equal (got, "1");
    //  The rest is sent while (most likely) the next recv has only the
    //  extension to filter; in either order the same bytes must come.
    pthread_t sender;
    assert_int_equal (pthread_create (&sender, NULL, s_send_rest, &pair), 0);
    s_read_all (pair.server, got, 10);
    pthread_join (sender, NULL);
    assert_string_equal (got, "\r\nx\r\n0\r\n\r\n");
    s_pair_close (&pair);
}

//  A malformed size: the good bytes and the refusal byte, then EPROTO at
//  once (without waiting for bytes the client will never send).
static void
test_malformed (void **state)
{
    (void) state;
    s_pair_t pair;
    s_pair (&pair);
    assert_int_equal (gw_recv_watch (pair.server, 0, (struct sockaddr *) &pair.peer, sizeof pair.peer), 0);
    assert_int_equal (send (pair.client, "5 z\r\n", 5, 0), 5);
    char got[64];
    s_read_all (pair.server, got, 2);
    assert_int_equal (got[0], '5');
    assert_int_equal (got[1], GW_CHUNKED_REFUSED);
    errno = 0;
    assert_int_equal (recv (pair.server, got, sizeof got, 0), -1);
    assert_int_equal (errno, EPROTO);
    assert_int_equal (gw_recv_watched (), 0);
    s_pair_close (&pair);
}

//  A descriptor reused by another connection is read as it is.
static void
test_other_peer (void **state)
{
    (void) state;
    s_pair_t pair;
    s_pair (&pair);
    struct sockaddr_in other = pair.peer;
    other.sin_port = htons ((uint16_t) (ntohs (other.sin_port) ^ 1));
    assert_int_equal (gw_recv_watch (pair.server, 0, (struct sockaddr *) &other, sizeof other), 0);
    assert_int_equal (send (pair.client, "5;a\r\n", 5, 0), 5);
    char got[64];
    s_read_all (pair.server, got, 5);
    assert_string_equal (got, "5;a\r\n");
    assert_int_equal (gw_recv_watched (), 0);
    s_pair_close (&pair);
}

static void
test_limit (void **state)
{
    (void) state;
    struct sockaddr_in peer = {.sin_family = AF_INET, .sin_port = htons (1)};
    for (int fd = 0; fd < GW_RECV_WATCHED_MAX; fd++)
        assert_int_equal (gw_recv_watch (1000 + fd, 0, (struct sockaddr *) &peer, sizeof peer), 0);
    assert_int_equal (gw_recv_watch (5000, 0, (struct sockaddr *) &peer, sizeof peer), -1);
    //  Watching a watched descriptor again reuses its slot.
    assert_int_equal (gw_recv_watch (1000, 0, (struct sockaddr *) &peer, sizeof peer), 0);
    gw_recv_forget (1000);
    assert_int_equal (gw_recv_watch (5000, 0, (struct sockaddr *) &peer, sizeof peer), 0);
    for (int fd = 1; fd < GW_RECV_WATCHED_MAX; fd++)
        gw_recv_forget (1000 + fd);
    gw_recv_forget (5000);
    assert_int_equal (gw_recv_watched (), 0);
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_extensions_removed), cmocka_unit_test (test_extension_alone),
        cmocka_unit_test (test_malformed),          cmocka_unit_test (test_other_peer),
        cmocka_unit_test (test_limit),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
