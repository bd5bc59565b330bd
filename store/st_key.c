/*  st_key.c: key layouts and ids (st_key.h).  */
#include "st_key.h"

#include "cm_error.h"
#include "cm_ids.h"
#include "st_db.h"
#include "st_det.h"

#include <string.h>
#include <sys/random.h>

#define S_RANDOM_POOL 512

int
st_key_set (st_key_t *key, const void *data, size_t len)
{
    if (len > ST_KEY_MAX)
        return CM_EDB;
    memcpy (key->bytes, data, len);
    key->len = len;
    return 0;
}

//  Appends len bytes; false when they do not fit.
static bool
s_add (st_key_t *key, const void *data, size_t len)
{
    if (len > ST_KEY_MAX - key->len)
        return false;
    memcpy (key->bytes + key->len, data, len);
    key->len += len;
    return true;
}

static bool
s_add_str (st_key_t *key, const char *text)
{
    return s_add (key, text, strlen (text));
}

static bool
s_add_nul (st_key_t *key)
{
    return s_add (key, "", 1);
}

static bool
s_add_be64 (st_key_t *key, uint64_t value)
{
    unsigned char bytes[8];
    st_db_be64_put (bytes, value);
    return s_add (key, bytes, 8);
}

int
st_key_pair (st_key_t *key, const char *a, const char *b)
{
    key->len = 0;
    return s_add_str (key, a) && s_add_nul (key) && s_add_str (key, b) ? 0 : CM_EINVAL;
}

int
st_key_prefix (st_key_t *key, const char *id)
{
    key->len = 0;
    return s_add_str (key, id) && s_add_nul (key) ? 0 : CM_EINVAL;
}

int
st_key_message (st_key_t *key, const char *session_id, uint64_t seq)
{
    key->len = 0;
    return s_add_str (key, session_id) && s_add_nul (key) && s_add_be64 (key, seq) ? 0
                                                                                   : CM_EINVAL;
}

uint64_t
st_key_message_seq (const void *key, size_t prefix_len)
{
    return st_db_be64_get ((const unsigned char *) key + prefix_len);
}

int
st_key_message_session (const st_key_t *key, char *session_id)
{
    if (key->len < 10)
        return CM_EDB;
    size_t session_len = key->len - 9;
    if (key->bytes[session_len] != 0 || session_len > CM_SESSION_ID_MAX)
        return CM_EDB;
    memcpy (session_id, key->bytes, session_len);
    session_id[session_len] = 0;
    return 0;
}

int
st_key_history (st_key_t *key, const char *message_id, int64_t ms, uint64_t seq,
                const char *hist_id)
{
    key->len = 0;
    return s_add_str (key, message_id) && s_add_nul (key) && s_add_be64 (key, (uint64_t) ms)
                   && s_add_be64 (key, seq) && s_add_str (key, hist_id)
               ? 0
               : CM_EINVAL;
}

int
st_key_audit (st_key_t *key, int64_t ms, uint64_t seq, const char *log_id)
{
    key->len = 0;
    return s_add_be64 (key, (uint64_t) ms) && s_add_be64 (key, seq) && s_add_str (key, log_id)
               ? 0
               : CM_EINVAL;
}

int64_t
st_key_audit_ms (const void *key, size_t len)
{
    return len < 8 ? -1 : (int64_t) st_db_be64_get (key);
}

int
st_key_queue (st_key_t *key, int64_t created_ms, const char *task_id)
{
    key->len = 0;
    return s_add_be64 (key, (uint64_t) created_ms) && s_add_str (key, task_id) ? 0 : CM_EINVAL;
}

int
st_key_queue_task (const void *key, size_t len, char *task_id)
{
    if (len <= 8)
        return CM_EDB;
    return st_key_id_set (task_id, (const char *) key + 8, len - 8);
}

int
st_key_rate_user (st_key_t *key, bool regeneration, const char *user)
{
    key->len = 0;
    return s_add_str (key, regeneration ? "r:" : "a:") && s_add_str (key, user) ? 0 : CM_EINVAL;
}

int
st_key_id_set (char *id, const void *data, size_t len)
{
    if (len > CM_ID_MAX)
        return CM_EDB;
    memcpy (id, data, len);
    id[len] = 0;
    return 0;
}

//  A v4 uuid as cm_uuid makes it, but from a per-thread pool of random
//  bytes refilled S_RANDOM_POOL at a time: one getrandom(2) per 32 ids
//  instead of one per id (the writer mints two or three per request).
void
st_key_uuid (char *buffer)
{
    static _Thread_local unsigned char pool[S_RANDOM_POOL];
    static _Thread_local size_t used = S_RANDOM_POOL;
    unsigned char entry_bytes[16];
    //  A replicated entry being applied mints its ids from its seed.
    bool replicated = st_det_bytes (entry_bytes, sizeof entry_bytes);
    if (!replicated && used + 16 > S_RANDOM_POOL) {
        size_t got = 0;
        while (got < S_RANDOM_POOL) {
            ssize_t n = getrandom (pool + got, S_RANDOM_POOL - got, 0);
            if (n > 0)
                got += (size_t) n;
        }
        used = 0;
    }
    unsigned char *bytes = replicated ? entry_bytes : pool + used;
    if (!replicated)
        used += 16;
    bytes[6] = (unsigned char) ((bytes[6] & 0x0f) | 0x40); //  version 4
    bytes[8] = (unsigned char) ((bytes[8] & 0x3f) | 0x80); //  variant 1
    static const char hex[] = "0123456789abcdef";
    for (size_t i = 0; i < 16; i++) {
        buffer[2 * i] = hex[bytes[i] >> 4];
        buffer[2 * i + 1] = hex[bytes[i] & 0x0f];
    }
    buffer[CM_UUID_LEN] = 0;
    memset (bytes, 0, 16); //  an id's randomness is used once
}

//  Pasted, not snprintf'd: ~800 instructions each, two ids per vote.
void
st_key_id_new (char *buffer, const char *prefix)
{
    size_t len = strlen (prefix); //  our prefixes are short literals
    memcpy (buffer, prefix, len);
    buffer[len] = '_';
    st_key_uuid (buffer + len + 1);
}
