/*  fuzz_openai: one `data:` payload of an OpenAI-compatible event stream
    (what a remote, untrusted server sends) takes any bytes. The parser
    either returns the deltas, the end marker, or CM_EPROTO; deltas are
    NUL-terminated copies no longer than the input.                      */
#include "cm_error.h"
#include "rg_backend.h"
#include "rg_openai.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    //  Exact-size heap copy without a terminator: ASan catches a read
    //  past len.
    char *copy = malloc (size ? size : 1);
    memcpy (copy, data, size);
    char *content = NULL, *reasoning = NULL, *model = NULL;
    bool finished = false;
    int rc = rg_openai_parse_data (copy, size, &content, &reasoning, &model, &finished);
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
    free (copy);
    return 0;
}
