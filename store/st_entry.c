/*  st_entry.c: the replicated store's Raft entries (st_entry.h).  */
#include "st_entry.h"

#include "cm_error.h"
#include "st_db.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_VERSION 1

static void
s_put32 (unsigned char *out, uint32_t value)
{
    out[0] = (unsigned char) (value >> 24);
    out[1] = (unsigned char) (value >> 16);
    out[2] = (unsigned char) (value >> 8);
    out[3] = (unsigned char) value;
}

static uint32_t
s_get32 (const unsigned char *in)
{
    return (uint32_t) in[0] << 24 | (uint32_t) in[1] << 16 | (uint32_t) in[2] << 8 | in[3];
}

int
st_entry_encode (const st_entry_t *entry, char **data, size_t *size)
{
    *data = NULL;
    *size = 0;
    if ((entry->kind != ST_ENTRY_BATCH && entry->kind != ST_ENTRY_UPKEEP)
        || entry->n > ST_ENTRY_ITEMS_MAX || entry->m > ST_ENTRY_ITEMS_MAX
        || (entry->kind == ST_ENTRY_UPKEEP && (entry->n || entry->m)))
        return CM_EINVAL;
    size_t count = entry->n + entry->m;
    char *parts[2 * ST_ENTRY_ITEMS_MAX];
    size_t sizes[2 * ST_ENTRY_ITEMS_MAX];
    size_t total = ST_ENTRY_HEADER;
    int rc = 0;
    size_t done = 0; //  parts[0..done) are ours to free
    while (done < count && rc == 0) {
        const cm_envelope_t *envelope
            = done < entry->n ? entry->requests[done] : entry->claims[done - entry->n];
        char *part = NULL;
        rc = cm_envelope_encode (envelope, &part, &sizes[done]);
        if (rc) {
            free (part);
            break;
        }
        parts[done++] = part;
        if (sizes[done - 1] > CM_MAX_MESSAGE_BYTES)
            rc = CM_ETOOBIG;
        total += 4 + sizes[done - 1];
    }
    size_t padded = (total + ST_ENTRY_ALIGN - 1) / ST_ENTRY_ALIGN * ST_ENTRY_ALIGN;
    unsigned char *out = rc ? NULL : calloc (1, padded);
    if (!rc && !out)
        rc = CM_ENOMEM;
    if (rc == 0) {
        memcpy (out, "CMRE", 4);
        out[4] = S_VERSION;
        out[5] = (unsigned char) entry->kind;
        out[6] = out[7] = 0;
        st_db_be64_put (out + 8, (uint64_t) entry->now_ms);
        st_db_be64_put (out + 16, entry->origin);
        memcpy (out + 24, entry->seed, ST_DET_SEED_BYTES);
        s_put32 (out + 40, (uint32_t) entry->n);
        s_put32 (out + 44, (uint32_t) entry->m);
        size_t at = ST_ENTRY_HEADER;
        for (size_t i = 0; i < count; i++) {
            s_put32 (out + at, (uint32_t) sizes[i]);
            memcpy (out + at + 4, parts[i], sizes[i]);
            at += 4 + sizes[i];
        }
        *data = (char *) out;
        *size = padded;
    }
    for (size_t i = 0; i < done; i++)
        free (parts[i]);
    return rc;
}

static int
s_refuse (char *why, size_t why_size, const char *text)
{
    snprintf (why, why_size, "%s", text);
    return CM_EPROTO;
}

int
st_entry_decode (const void *data, size_t size, st_entry_t *entry, char *why, size_t why_size)
{
    memset (entry, 0, sizeof *entry);
    const unsigned char *in = data;
    if (size < ST_ENTRY_HEADER || memcmp (in, "CMRE", 4) != 0)
        return s_refuse (why, why_size, "not a store entry (no CMRE header)");
    if (in[4] != S_VERSION)
        return s_refuse (why, why_size, "store entry of an unknown version");
    if (in[5] != ST_ENTRY_BATCH && in[5] != ST_ENTRY_UPKEEP)
        return s_refuse (why, why_size, "store entry of an unknown kind");
    uint32_t n = s_get32 (in + 40), m = s_get32 (in + 44);
    if (n > ST_ENTRY_ITEMS_MAX || m > ST_ENTRY_ITEMS_MAX)
        return s_refuse (why, why_size, "store entry with too many requests");
    if (in[5] == ST_ENTRY_UPKEEP && (n || m))
        return s_refuse (why, why_size, "upkeep entry with requests");
    entry->kind = (st_entry_kind_t) in[5];
    entry->now_ms = (int64_t) st_db_be64_get (in + 8);
    entry->origin = st_db_be64_get (in + 16);
    memcpy (entry->seed, in + 24, ST_DET_SEED_BYTES);
    entry->requests = n ? calloc (n, sizeof *entry->requests) : NULL;
    entry->claims = m ? calloc (m, sizeof *entry->claims) : NULL;
    if ((n && !entry->requests) || (m && !entry->claims)) {
        st_entry_clear (entry);
        return CM_ENOMEM;
    }
    size_t at = ST_ENTRY_HEADER;
    for (size_t i = 0; i < (size_t) n + m; i++) {
        uint32_t len = size - at >= 4 ? s_get32 (in + at) : 0;
        if (size - at < 4 || len > CM_MAX_MESSAGE_BYTES || len > size - at - 4) {
            st_entry_clear (entry);
            return s_refuse (why, why_size, "store entry cut short (a length past its end)");
        }
        cm_envelope_t **slot = i < n ? &entry->requests[i] : &entry->claims[i - n];
        int rc = cm_envelope_decode (in + at + 4, len, slot);
        if (rc) {
            st_entry_clear (entry);
            return rc == CM_ENOMEM ? rc
                                   : s_refuse (why, why_size,
                                               "store entry holds an envelope that does not decode");
        }
        if (i < n)
            entry->n++;
        else
            entry->m++;
        at += 4 + len;
    }
    //  Up to ST_ENTRY_ALIGN - 1 zero bytes of padding may follow.
    bool padding = size - at < ST_ENTRY_ALIGN;
    for (size_t i = at; padding && i < size; i++)
        padding = in[i] == 0;
    if (!padding) {
        st_entry_clear (entry);
        return s_refuse (why, why_size, "store entry with trailing bytes");
    }
    return 0;
}

void
st_entry_clear (st_entry_t *entry)
{
    for (size_t i = 0; entry->requests && i < entry->n; i++)
        cm_envelope_destroy (&entry->requests[i]);
    for (size_t i = 0; entry->claims && i < entry->m; i++)
        cm_envelope_destroy (&entry->claims[i]);
    free (entry->requests);
    free (entry->claims);
    entry->requests = entry->claims = NULL;
    entry->n = entry->m = 0;
}
