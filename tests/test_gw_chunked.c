/*  test_gw_chunked: the chunked body filter. Each row is a body, what
    civetweb must receive of it, or that it is refused; every row is also
    fed in every split of two pieces, and byte by byte.                  */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "gw_chunked.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    const char *name;
    const char *body;
    const char *out; //  NULL: refused; then what is passed on before it ends in GW_CHUNKED_REFUSED
    const char *refused_after;
} s_case_t;

static const s_case_t s_cases[] = {
    {"plain", "5\r\nhello\r\n0\r\n\r\n", "5\r\nhello\r\n0\r\n\r\n", NULL},
    {"upper and lower hex", "A\r\n0123456789\r\nb\r\n0123456789a\r\n0\r\n\r\n",
     "A\r\n0123456789\r\nb\r\n0123456789a\r\n0\r\n\r\n", NULL},
    {"extension", "5;a=b\r\nhello\r\n0\r\n\r\n", "5\r\nhello\r\n0\r\n\r\n", NULL},
    {"extensions with BWS and quotes", "5 \t; a = \"x;y\" ;b\r\nhello\r\n0;last\r\n\r\n",
     "5\r\nhello\r\n0\r\n\r\n", NULL},
    {"trailer passes", "1\r\nx\r\n0\r\nX-T: 1;2\r\n\r\n", "1\r\nx\r\n0\r\nX-T: 1;2\r\n\r\n", NULL},
    {"data with CRLF and ';' inside", "4\r\n;\r\n;\r\n0\r\n\r\n", "4\r\n;\r\n;\r\n0\r\n\r\n", NULL},
    {"15 digits", "000000000000001\r\nx\r\n0\r\n\r\n", "000000000000001\r\nx\r\n0\r\n\r\n", NULL},
    {"16 digits", "0000000000000001\r\nx\r\n", NULL, "000000000000000"},
    {"no digits", ";a\r\nx\r\n", NULL, ""},
    {"not hex", "zz\r\n", NULL, ""},
    {"0x prefix", "0x5\r\nhello\r\n", NULL, "0"},
    {"sign", "+5\r\nhello\r\n", NULL, ""},
    {"text after the size", "5 a=b\r\nhello\r\n", NULL, "5"},
    {"bare LF after the size", "5\nhello\r\n", NULL, "5"},
    {"CR without LF", "5\rhello\r\n", NULL, "5\r"},
    {"LF in an extension", "5;a\nb\r\nhello\r\n", NULL, "5"},
    {"NUL in an extension", "5;a\001\r\nhello\r\n", NULL, "5"},
    {"data longer than its size", "2\r\nabc\r\n", NULL, "2\r\nab"},
    {"LF alone after data", "2\r\nab\nx", NULL, "2\r\nab"},
    {"CR alone after data", "2\r\nab\rx", NULL, "2\r\nab\r"},
};

//  Feeds body to a fresh filter in pieces of at most step bytes (0: split
//  once at split). Returns what was kept; *refused when it failed.
static char *
s_feed (const char *body, size_t step, size_t split, bool *refused)
{
    gw_chunked_t filter;
    gw_chunked_init (&filter, 0);
    size_t len = strlen (body);
    char *out = calloc (1, len + 1);
    size_t out_len = 0;
    *refused = false;
    for (size_t at = 0; at < len && !*refused;) {
        size_t n = step ? (len - at < step ? len - at : step) : (at < split ? split - at : len - at);
        char piece[256];
        memcpy (piece, body + at, n);
        long kept = gw_chunked_filter (&filter, piece, n);
        assert_true (kept >= 0);
        memcpy (out + out_len, piece, (size_t) kept);
        out_len += (size_t) kept;
        at += n;
        *refused = gw_chunked_failed (&filter);
    }
    if (*refused) {
        //  The refusal is the last byte passed on; the next call fails.
        char more[1] = {'0'};
        assert_int_equal (gw_chunked_filter (&filter, more, 1), -1);
    }
    return out;
}

static void
s_check (const s_case_t *c, const char *out, bool refused, const char *how)
{
    if (c->out) {
        if (refused || strcmp (out, c->out) != 0)
            fail_msg ("%s (%s): passed on '%s'%s, expected '%s'", c->name, how, out, refused ? ", refused" : "",
                      c->out);
        return;
    }
    size_t n = strlen (c->refused_after);
    if (!refused || strncmp (out, c->refused_after, n) != 0 || out[n] != GW_CHUNKED_REFUSED || out[n + 1])
        fail_msg ("%s (%s): passed on '%s'%s, expected '%s' then the refusal", c->name, how, out,
                  refused ? "" : " and not refused", c->refused_after);
}

static void
test_table (void **state)
{
    (void) state;
    for (size_t i = 0; i < sizeof s_cases / sizeof s_cases[0]; i++) {
        const s_case_t *c = &s_cases[i];
        bool refused;
        char *out = s_feed (c->body, 0, 0, &refused);
        s_check (c, out, refused, "whole");
        free (out);
        out = s_feed (c->body, 1, 0, &refused);
        s_check (c, out, refused, "byte by byte");
        free (out);
        for (size_t split = 1; split < strlen (c->body); split++) {
            out = s_feed (c->body, 0, split, &refused);
            char how[32];
            snprintf (how, sizeof how, "split at %zu", split);
            s_check (c, out, refused, how);
            free (out);
        }
    }
}

//  The head passes as it is, even where it looks like a malformed chunk;
//  the filter starts at the byte after it, and is done after the last chunk.
static void
test_head_then_body (void **state)
{
    (void) state;
    const char *head = "PUT /a HTTP/1.1\r\nHost: g\r\nTransfer-Encoding: chunked\r\n\r\n";
    char data[256];
    snprintf (data, sizeof data, "%s3;e\r\nabc\r\n0\r\n\r\n", head);
    gw_chunked_t filter;
    gw_chunked_init (&filter, strlen (head));
    long kept = gw_chunked_filter (&filter, data, strlen (data));
    assert_true (gw_chunked_done (&filter));
    data[kept] = 0;
    char want[256];
    snprintf (want, sizeof want, "%s3\r\nabc\r\n0\r\n\r\n", head);
    assert_string_equal (data, want);
}

//  Extension bytes alone: nothing to pass on yet, and no failure.
static void
test_extension_only (void **state)
{
    (void) state;
    gw_chunked_t filter;
    gw_chunked_init (&filter, 0);
    char first[] = "5";
    assert_int_equal (gw_chunked_filter (&filter, first, 1), 1);
    char ext[] = ";name=value";
    assert_int_equal (gw_chunked_filter (&filter, ext, strlen (ext)), 0);
    assert_false (gw_chunked_failed (&filter));
    assert_false (gw_chunked_done (&filter));
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_table),
        cmocka_unit_test (test_head_then_body),
        cmocka_unit_test (test_extension_only),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
