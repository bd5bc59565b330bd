/*  gw_chunked.c: the chunked body filter (gw_chunked.h).                */

#include "gw_chunked.h"

void
gw_chunked_init (gw_chunked_t *filter, size_t head_len)
{
    *filter = (gw_chunked_t) {.phase = head_len ? GW_CHUNKED_HEAD : GW_CHUNKED_SIZE,
                              .remaining = head_len};
}

static int
s_hex (unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

long
gw_chunked_filter (gw_chunked_t *filter, char *data, size_t len)
{
    size_t kept = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char) data[i];
        bool keep = true;
        switch (filter->phase) {
        case GW_CHUNKED_HEAD:
        case GW_CHUNKED_DATA:
            if (--filter->remaining == 0)
                filter->phase = filter->phase == GW_CHUNKED_HEAD ? GW_CHUNKED_SIZE : GW_CHUNKED_DATA_CR;
            break;
        case GW_CHUNKED_SIZE:
            if (s_hex (c) >= 0) {
                if (++filter->digits > GW_CHUNKED_DIGITS_MAX)
                    filter->phase = GW_CHUNKED_FAILED;
                filter->size = filter->size * 16 + (uint64_t) s_hex (c);
                break;
            }
            if (filter->digits == 0) {
                filter->phase = GW_CHUNKED_FAILED;
                break;
            }
            filter->phase = GW_CHUNKED_EXT;
            filter->extension = false;
            //  Fall through: this byte is the first after the digits.
            __attribute__ ((fallthrough));
        case GW_CHUNKED_EXT:
            if (c == '\r') {
                filter->phase = GW_CHUNKED_SIZE_LF;
                break;
            }
            keep = false;
            if (c == ';')
                filter->extension = true;
            else if ((c < 0x20 && c != '\t') || c == 0x7f || (!filter->extension && c != ' ' && c != '\t'))
                filter->phase = GW_CHUNKED_FAILED;
            break;
        case GW_CHUNKED_SIZE_LF:
            if (c != '\n')
                filter->phase = GW_CHUNKED_FAILED;
            else if (filter->size == 0)
                filter->phase = GW_CHUNKED_DONE;
            else {
                filter->phase = GW_CHUNKED_DATA;
                filter->remaining = filter->size;
            }
            filter->size = 0;
            filter->digits = 0;
            break;
        case GW_CHUNKED_DATA_CR:
            filter->phase = c == '\r' ? GW_CHUNKED_DATA_LF : GW_CHUNKED_FAILED;
            break;
        case GW_CHUNKED_DATA_LF:
            filter->phase = c == '\n' ? GW_CHUNKED_SIZE : GW_CHUNKED_FAILED;
            break;
        case GW_CHUNKED_DONE:
            break;
        case GW_CHUNKED_FAILED:
            return -1;
        }
        if (filter->phase == GW_CHUNKED_FAILED) {
            data[kept++] = GW_CHUNKED_REFUSED;
            return (long) kept;
        }
        if (keep)
            data[kept++] = (char) c;
    }
    return (long) kept;
}

bool
gw_chunked_done (const gw_chunked_t *filter)
{
    return filter->phase == GW_CHUNKED_DONE;
}

bool
gw_chunked_failed (const gw_chunked_t *filter)
{
    return filter->phase == GW_CHUNKED_FAILED;
}
