/*  fuzz_openai: one `data:` payload of an OpenAI-compatible event stream
    (what a remote, untrusted server sends) takes any bytes. The parser
    either returns the deltas, the end marker, or CM_EPROTO; deltas are
    NUL-terminated copies no longer than the input. The same bytes, as
    content, go through the <think> splitter whole and cut in three at
    places the input's first bytes choose: both give the same reasoning
    and answer, never longer together than the input.                    */
#include "cm_error.h"
#include "rg_backend.h"
#include "rg_openai.h"
#include "rg_think.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    char *text[2]; //  answer, reasoning
    size_t len[2];
} s_split_t;

static void
s_collect (void *arg, bool reasoning, const char *text, size_t len)
{
    s_split_t *out = arg;
    if (len == 0)
        abort (); //  no empty pieces
    memcpy (out->text[reasoning] + out->len[reasoning], text, len);
    out->len[reasoning] += len;
}

static void
s_split (const char *data, size_t size, size_t a, size_t b, s_split_t *out)
{
    for (int i = 0; i < 2; i++) {
        out->text[i] = malloc (size + 1);
        out->len[i] = 0;
    }
    rg_think_t think;
    rg_think_init (&think);
    rg_think_feed (&think, data, a, s_collect, out);
    rg_think_feed (&think, data + a, b - a, s_collect, out);
    rg_think_feed (&think, data + b, size - b, s_collect, out);
    rg_think_flush (&think, s_collect, out);
    if (out->len[0] + out->len[1] > size)
        abort ();
}

static void
s_think (const char *data, size_t size)
{
    size_t a = size ? (unsigned char) data[0] % (size + 1) : 0;
    size_t b = size > 1 ? a + (unsigned char) data[1] % (size - a + 1) : a;
    s_split_t whole, cut;
    s_split (data, size, 0, 0, &whole);
    s_split (data, size, a, b, &cut);
    for (int i = 0; i < 2; i++) {
        if (whole.len[i] != cut.len[i] || memcmp (whole.text[i], cut.text[i], whole.len[i]))
            abort ();
        free (whole.text[i]);
        free (cut.text[i]);
    }
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    //  Exact-size heap copy without a terminator: ASan catches a read
    //  past len.
    char *copy = malloc (size ? size : 1);
    memcpy (copy, data, size);
    char *content = NULL, *reasoning = NULL, *model = NULL;
    bool finished = false;
    int rc = rg_openai_parse_data (copy, size, &content, &reasoning, &model, &finished, NULL, NULL);
    if (rc == RG_STREAM_END || rc == CM_EPROTO) {
        if (content || reasoning || model)
            abort ();
    } else if (rc != 0)
        abort ();
    //  Unescaping never lengthens a string, so no delta outgrows the input.
    if ((content && strlen (content) > size) || (reasoning && strlen (reasoning) > size)
        || (model && strlen (model) > size))
        abort ();
    free (content);
    free (reasoning);
    free (model);
    s_think (copy, size);
    free (copy);
    return 0;
}
