#include "st_record.h"

#include "st_crc.h"

#include <stdio.h>
#include <string.h>

static uint32_t
s_crc (const void *key, size_t key_len, const void *payload, size_t payload_len)
{
    return st_crc32c (st_crc32c (0, key, key_len), payload, payload_len);
}

void
st_record_seal (unsigned char *header, const void *key, size_t key_len, const void *payload,
                size_t payload_len)
{
    uint32_t crc = s_crc (key, key_len, payload, payload_len);
    header[0] = ST_RECORD_MAGIC;
    header[1] = (unsigned char) (crc >> 24);
    header[2] = (unsigned char) (crc >> 16);
    header[3] = (unsigned char) (crc >> 8);
    header[4] = (unsigned char) crc;
}

st_record_state_t
st_record_open (const void *key, size_t key_len, const void *value, size_t value_len,
                const void **payload, size_t *payload_len)
{
    const unsigned char *v = value;
    if (value_len == 0 || v[0] != ST_RECORD_MAGIC) {
        *payload = value;
        *payload_len = value_len;
        return ST_RECORD_LEGACY;
    }
    if (value_len < ST_RECORD_HEADER)
        return ST_RECORD_SHORT;
    uint32_t stored = (uint32_t) v[1] << 24 | (uint32_t) v[2] << 16 | (uint32_t) v[3] << 8 | v[4];
    if (stored != s_crc (key, key_len, v + ST_RECORD_HEADER, value_len - ST_RECORD_HEADER))
        return ST_RECORD_BAD_CRC;
    *payload = v + ST_RECORD_HEADER;
    *payload_len = value_len - ST_RECORD_HEADER;
    return ST_RECORD_OK;
}

const char *
st_record_state_text (st_record_state_t state)
{
    switch (state) {
        case ST_RECORD_OK:
            return "ok";
        case ST_RECORD_LEGACY:
            return "legacy, unchecksummed";
        case ST_RECORD_SHORT:
            return "checksum envelope cut short";
        case ST_RECORD_BAD_CRC:
            return "checksum mismatch";
    }
    return "unknown";
}

static size_t
s_escape (unsigned char byte, char *piece)
{
    if (byte == '\\')
        return (size_t) snprintf (piece, 5, "\\\\");
    if (byte >= 0x20 && byte < 0x7f)
        return (size_t) snprintf (piece, 5, "%c", byte);
    return (size_t) snprintf (piece, 5, "\\x%02x", byte);
}

char *
st_record_key_text (const void *key, size_t key_len, char *out, size_t cap)
{
    const unsigned char *k = key;
    char piece[5];
    size_t whole = 0;
    for (size_t i = 0; i < key_len; i++)
        whole += s_escape (k[i], piece);
    //  When it does not all fit, keep room for "...".
    size_t room = whole + 1 <= cap ? cap - 1 : cap - 4;
    size_t used = 0;
    for (size_t i = 0; i < key_len; i++) {
        size_t n = s_escape (k[i], piece);
        if (used + n > room)
            break;
        memcpy (out + used, piece, n);
        used += n;
    }
    if (whole + 1 > cap) {
        memcpy (out + used, "...", 3);
        used += 3;
    }
    out[used] = 0;
    return out;
}
