/*  test_gw_head: the strict request-head check, one table row per case
    of RFC 9112 framing the vestibule must accept or refuse.             */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "gw_head.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define H "Host: g\r\n"

typedef struct {
    const char *name;
    const char *head;
    gw_head_state_t state;
    int status; //  REJECT only
    const char *error_part; //  REJECT only: a part of the sentence
} s_case_t;

static const s_case_t s_cases[] = {
    {"plain GET", "GET /healthz HTTP/1.1\r\n" H "\r\n", GW_HEAD_COMPLETE, 0, NULL},
    {"HTTP/1.0 without Host", "GET / HTTP/1.0\r\n\r\n", GW_HEAD_COMPLETE, 0, NULL},
    {"query and OWS", "GET /a?b=c HTTP/1.1\r\nHost:  g \t\r\nX-A:\r\n\r\n", GW_HEAD_COMPLETE, 0, NULL},
    {"Content-Length", "POST /a HTTP/1.1\r\n" H "Content-Length: 12\r\n\r\n", GW_HEAD_COMPLETE, 0, NULL},
    {"same Content-Length twice", "POST /a HTTP/1.1\r\n" H "Content-Length: 5\r\ncontent-length: 5\r\n\r\n",
     GW_HEAD_COMPLETE, 0, NULL},
    {"chunked", "POST /a HTTP/1.1\r\n" H "Transfer-Encoding: Chunked\r\n\r\n", GW_HEAD_COMPLETE, 0, NULL},
    {"OPTIONS *", "OPTIONS * HTTP/1.1\r\n" H "\r\n", GW_HEAD_COMPLETE, 0, NULL},
    {"obs-text value", "GET / HTTP/1.1\r\n" H "X-A: caf\xc3\xa9\r\n\r\n", GW_HEAD_COMPLETE, 0, NULL},
    {"request line only", "GET / HTTP/1.1\r\n", GW_HEAD_INCOMPLETE, 0, NULL},
    {"half a line", "GET / HT", GW_HEAD_INCOMPLETE, 0, NULL},
    {"ends in CR", "GET / HTTP/1.1\r\n" H "\r", GW_HEAD_INCOMPLETE, 0, NULL},
    {"nothing yet", "", GW_HEAD_INCOMPLETE, 0, NULL},
    {"CL and TE", "POST /a HTTP/1.1\r\n" H "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
     GW_HEAD_REJECT, 400, "both Content-Length and Transfer-Encoding"},
    {"TE and CL", "POST /a HTTP/1.1\r\n" H "Transfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n",
     GW_HEAD_REJECT, 400, "both Content-Length and Transfer-Encoding"},
    {"two Content-Lengths", "POST /a HTTP/1.1\r\n" H "Content-Length: 5\r\nContent-Length: 50\r\n\r\n",
     GW_HEAD_REJECT, 400, "two different Content-Length"},
    {"Content-Length list", "POST /a HTTP/1.1\r\n" H "Content-Length: 5, 5\r\n\r\n", GW_HEAD_REJECT, 400,
     "decimal digits"},
    {"obs-fold", "POST /a HTTP/1.1\r\n" H "X-A: a\r\n Content-Length: 5\r\n\r\n", GW_HEAD_REJECT, 400,
     "obs-fold"},
    {"obs-fold with tab", "GET / HTTP/1.1\r\n" H "X-A: a\r\n\tb\r\n\r\n", GW_HEAD_REJECT, 400, "obs-fold"},
    {"space before colon (TE)", "POST /a HTTP/1.1\r\n" H "Transfer-Encoding : chunked\r\n\r\n",
     GW_HEAD_REJECT, 400, "before its colon"},
    {"space before colon (CL)", "POST /a HTTP/1.1\r\n" H "Content-Length : 5\r\n\r\n", GW_HEAD_REJECT, 400,
     "before its colon"},
    {"hex Content-Length", "POST /a HTTP/1.1\r\n" H "Content-Length: 0x21\r\n\r\n", GW_HEAD_REJECT, 400,
     "decimal digits"},
    {"signed Content-Length", "POST /a HTTP/1.1\r\n" H "Content-Length: +5\r\n\r\n", GW_HEAD_REJECT, 400,
     "decimal digits"},
    {"Content-Length with junk", "POST /a HTTP/1.1\r\n" H "Content-Length: 5abc\r\n\r\n", GW_HEAD_REJECT, 400,
     "decimal digits"},
    {"empty Content-Length", "POST /a HTTP/1.1\r\n" H "Content-Length:\r\n\r\n", GW_HEAD_REJECT, 400,
     "decimal digits"},
    {"19-digit Content-Length", "POST /a HTTP/1.1\r\n" H "Content-Length: 1234567890123456789\r\n\r\n",
     GW_HEAD_REJECT, 400, "decimal digits"},
    {"bare LF", "GET / HTTP/1.1\n" H "\n", GW_HEAD_REJECT, 400, "bare LF"},
    {"bare LF in a header", "GET / HTTP/1.1\r\nHost: g\n\r\n", GW_HEAD_REJECT, 400, "bare LF"},
    {"bare CR", "GET / HTTP/1.1\r\nHost: g\rX\r\n\r\n", GW_HEAD_REJECT, 400, "bare CR"},
    {"no Host", "GET / HTTP/1.1\r\n\r\n", GW_HEAD_REJECT, 400, "exactly one Host"},
    {"two Hosts", "GET / HTTP/1.1\r\n" H "host: h\r\n\r\n", GW_HEAD_REJECT, 400, "more than one Host"},
    {"two Hosts in HTTP/1.0", "GET / HTTP/1.0\r\n" H H "\r\n", GW_HEAD_REJECT, 400, "more than one Host"},
    {"gzip coding", "POST /a HTTP/1.1\r\n" H "Transfer-Encoding: gzip, chunked\r\n\r\n", GW_HEAD_REJECT, 501,
     "'chunked', alone"},
    {"identity coding", "POST /a HTTP/1.1\r\n" H "Transfer-Encoding: identity\r\n\r\n", GW_HEAD_REJECT, 501,
     "'chunked', alone"},
    {"two TE headers", "POST /a HTTP/1.1\r\n" H "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n",
     GW_HEAD_REJECT, 400, "more than one Transfer-Encoding"},
    {"TE in HTTP/1.0", "POST /a HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", GW_HEAD_REJECT, 400,
     "HTTP/1.0"},
    {"absolute-form", "GET http://g/healthz HTTP/1.1\r\n" H "\r\n", GW_HEAD_REJECT, 400, "Absolute-form"},
    {"authority-form", "CONNECT g:443 HTTP/1.1\r\n" H "\r\n", GW_HEAD_REJECT, 400, "not a path"},
    {"* not OPTIONS", "GET * HTTP/1.1\r\n" H "\r\n", GW_HEAD_REJECT, 400, "OPTIONS only"},
    {"HTTP/2.0", "GET / HTTP/2.0\r\n" H "\r\n", GW_HEAD_REJECT, 505, "HTTP/1.1"},
    {"HTTP/1.2", "GET / HTTP/1.2\r\n" H "\r\n", GW_HEAD_REJECT, 505, "HTTP/1.1"},
    {"HTTP/0.9 line", "GET /\r\n\r\n", GW_HEAD_REJECT, 400, "request line"},
    {"lower-case version", "GET / http/1.1\r\n" H "\r\n", GW_HEAD_REJECT, 400, "HTTP version"},
    {"two spaces", "GET  / HTTP/1.1\r\n" H "\r\n", GW_HEAD_REJECT, 400, "two spaces"},
    {"trailing space", "GET / HTTP/1.1 \r\n" H "\r\n", GW_HEAD_REJECT, 400, "HTTP version"},
    {"tab in target", "GET /a\tb HTTP/1.1\r\n" H "\r\n", GW_HEAD_REJECT, 400, "control character"},
    {"bad method", "G(T / HTTP/1.1\r\n" H "\r\n", GW_HEAD_REJECT, 400, "method"},
    {"empty first line", "\r\nGET / HTTP/1.1\r\n" H "\r\n", GW_HEAD_REJECT, 400, "empty line"},
    {"no colon", "GET / HTTP/1.1\r\n" H "Nonsense\r\n\r\n", GW_HEAD_REJECT, 400, "no colon"},
    {"empty name", "GET / HTTP/1.1\r\n" H ": v\r\n\r\n", GW_HEAD_REJECT, 400, "not a token"},
    {"name with slash", "GET / HTTP/1.1\r\n" H "X/A: v\r\n\r\n", GW_HEAD_REJECT, 400, "not a token"},
    {"NUL in value", "GET / HTTP/1.1\r\n" H "X-A: a\001b\r\n\r\n", GW_HEAD_REJECT, 400, "control character"},
    {"refused before complete", "POST /a HTTP/1.1\r\n" H "Content-Length: x", GW_HEAD_INCOMPLETE, 0, NULL},
    {"refused early", "POST /a HTTP/1.1\r\n" H "Content-Length: x\r\n", GW_HEAD_REJECT, 400, "decimal digits"},
};

static void
test_table (void **state)
{
    (void) state;
    for (size_t i = 0; i < sizeof s_cases / sizeof s_cases[0]; i++) {
        const s_case_t *c = &s_cases[i];
        gw_head_t head;
        gw_head_state_t got = gw_head_check (c->head, strlen (c->head), &head);
        if (got != c->state)
            fail_msg ("%s: state %d, expected %d (%s)", c->name, got, c->state,
                      got == GW_HEAD_REJECT ? head.error : "");
        if (got == GW_HEAD_COMPLETE) {
            assert_int_equal (head.head_len, strlen (c->head));
            //  Chunked exactly when the head says so (the body's filter, gw_recv.h).
            assert_int_equal (head.chunked, strcasestr (c->head, "Transfer-Encoding:") != NULL);
        }
        if (got == GW_HEAD_REJECT) {
            if (head.status != c->status || !strstr (head.error, c->error_part))
                fail_msg ("%s: %d '%s', expected %d '...%s...'", c->name, head.status, head.error,
                          c->status, c->error_part);
            assert_non_null (head.code);
        }
    }
}

//  A complete head followed by a body: head_len stops at the empty line.
static void
test_body_follows (void **state)
{
    (void) state;
    const char *req = "POST /a HTTP/1.1\r\nHost: g\r\nContent-Length: 2\r\n\r\n{}GET / HTTP/1.1\n";
    gw_head_t head;
    assert_int_equal (gw_head_check (req, strlen (req), &head), GW_HEAD_COMPLETE);
    assert_int_equal (head.head_len, strlen (req) - strlen ("{}GET / HTTP/1.1\n"));
}

//  Every prefix of a valid head is INCOMPLETE, never a REJECT.
static void
test_prefixes (void **state)
{
    (void) state;
    const char *req = "PUT /api/x?y=1 HTTP/1.1\r\nHost: g\r\nContent-Length: 10\r\nX-A: b\r\n\r\n";
    for (size_t n = 0; n < strlen (req); n++) {
        gw_head_t head;
        assert_int_equal (gw_head_check (req, n, &head), GW_HEAD_INCOMPLETE);
    }
}

//  The size limits: GW_HEAD_MAX bytes and GW_HEAD_FIELDS_MAX fields.
static void
test_limits (void **state)
{
    (void) state;
    char *buf = malloc (GW_HEAD_MAX + 64);
    assert_non_null (buf);
    //  Exactly GW_HEAD_MAX bytes: served; one more: 431.
    const char *start = "GET / HTTP/1.1\r\nHost: g\r\nX-Pad: ";
    for (size_t total = GW_HEAD_MAX; total <= GW_HEAD_MAX + 1; total++) {
        size_t pad = total - strlen (start) - 4;
        strcpy (buf, start);
        memset (buf + strlen (start), 'a', pad);
        memcpy (buf + strlen (start) + pad, "\r\n\r\n", 4);
        gw_head_t head;
        gw_head_state_t got = gw_head_check (buf, total, &head);
        if (total == GW_HEAD_MAX)
            assert_int_equal (got, GW_HEAD_COMPLETE);
        else {
            assert_int_equal (got, GW_HEAD_REJECT);
            assert_int_equal (head.status, 431);
        }
    }
    //  A head that never ends: 431 once GW_HEAD_MAX bytes are in.
    memset (buf, 'a', GW_HEAD_MAX);
    memcpy (buf, "GET / HTTP/1.1\r\nX: ", 19);
    gw_head_t head;
    assert_int_equal (gw_head_check (buf, GW_HEAD_MAX - 1, &head), GW_HEAD_INCOMPLETE);
    assert_int_equal (gw_head_check (buf, GW_HEAD_MAX, &head), GW_HEAD_REJECT);
    assert_int_equal (head.status, 431);
    //  64 fields (Host included) pass, 65 do not.
    for (int fields = GW_HEAD_FIELDS_MAX; fields <= GW_HEAD_FIELDS_MAX + 1; fields++) {
        size_t len = (size_t) sprintf (buf, "GET / HTTP/1.1\r\nHost: g\r\n");
        for (int i = 1; i < fields; i++)
            len += (size_t) sprintf (buf + len, "X-%d: v\r\n", i);
        len += (size_t) sprintf (buf + len, "\r\n");
        gw_head_state_t got = gw_head_check (buf, len, &head);
        assert_int_equal (got, fields == GW_HEAD_FIELDS_MAX ? GW_HEAD_COMPLETE : GW_HEAD_REJECT);
        if (got == GW_HEAD_REJECT)
            assert_int_equal (head.status, 431);
    }
    free (buf);
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_table),
        cmocka_unit_test (test_body_follows),
        cmocka_unit_test (test_prefixes),
        cmocka_unit_test (test_limits),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
