/*  fuzz_chunked: the chunked body filter takes any bytes, in any pieces.
    The first byte picks a piece size (1-16); the rest is the body. Fed
    whole or in pieces, the filter keeps the same bytes and comes to the
    same end (failed, done or neither); it never keeps more than it got;
    what it keeps of a chunk line is hex digits and CRLF alone; once
    failed, every call fails.                                            */
#include "gw_chunked.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

//  Filters body in pieces of step bytes into out. The kept length.
static size_t
s_run (const uint8_t *body, size_t size, size_t step, char *out, gw_chunked_t *filter)
{
    gw_chunked_init (filter, 0);
    size_t kept = 0;
    for (size_t at = 0; at < size; at += step) {
        size_t n = size - at < step ? size - at : step;
        bool was_failed = gw_chunked_failed (filter);
        memcpy (out + kept, body + at, n);
        long got = gw_chunked_filter (filter, out + kept, n);
        if (was_failed != (got < 0) || got > (long) n)
            abort ();
        if (got < 0)
            break;
        kept += (size_t) got;
    }
    return kept;
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    size_t step = (size_t) (data[0] % 16) + 1;
    data++, size--;
    char *whole = malloc (size + 1), *pieces = malloc (size + 1);
    gw_chunked_t a, b;
    size_t whole_len = s_run (data, size, size ? size : 1, whole, &a);
    size_t pieces_len = s_run (data, size, step, pieces, &b);
    if (whole_len != pieces_len || memcmp (whole, pieces, whole_len) != 0
        || gw_chunked_failed (&a) != gw_chunked_failed (&b) || gw_chunked_done (&a) != gw_chunked_done (&b))
        abort ();
    //  A body that ends after its last chunk line kept only digits and
    //  CRLF in its chunk lines: no ';' before the first CRLF.
    if (gw_chunked_done (&a) || (!gw_chunked_failed (&a) && whole_len)) {
        const char *crlf = memchr (whole, '\r', whole_len);
        for (const char *p = whole; crlf && p < crlf; p++)
            if (!strchr ("0123456789abcdefABCDEF", *p) || !*p)
                abort ();
    }
    free (whole);
    free (pieces);
    return 0;
}
