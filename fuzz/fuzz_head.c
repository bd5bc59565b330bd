/*  fuzz_head: the vestibule's request-head check takes any bytes.
    A COMPLETE head ends in CRLF CRLF within the limit, has no bare LF and
    is COMPLETE again (same length) when cut right after it; a refusal
    carries one of the four statuses, a code and a sentence; an
    INCOMPLETE head is below the limit.                                   */
#include "gw_head.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    const char *text = (const char *) data;
    gw_head_t head;
    gw_head_state_t state = gw_head_check (text, size, &head);
    if (state == GW_HEAD_COMPLETE) {
        if (head.head_len < 4 || head.head_len > size || head.head_len > GW_HEAD_MAX
            || memcmp (text + head.head_len - 4, "\r\n\r\n", 4) != 0)
            abort ();
        for (size_t i = 0; i < head.head_len; i++)
            if (text[i] == '\n' && (i == 0 || text[i - 1] != '\r'))
                abort ();
        gw_head_t again;
        if (gw_head_check (text, head.head_len, &again) != GW_HEAD_COMPLETE
            || again.head_len != head.head_len)
            abort ();
    }
    else if (state == GW_HEAD_REJECT) {
        if ((head.status != 400 && head.status != 431 && head.status != 501 && head.status != 505)
            || !head.code || !head.error)
            abort ();
    }
    else if (state != GW_HEAD_INCOMPLETE || size >= GW_HEAD_MAX)
        abort ();
    return 0;
}
