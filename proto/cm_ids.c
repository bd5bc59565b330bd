#include "cm_ids.h"
#include "cm_error.h"

#include <stdio.h>
#include <string.h>
#include <sys/random.h>

static bool
s_id_char (char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')
           || c == '_' || c == '-';
}

bool
cm_session_id_valid (const char *text)
{
    if (!text)
        return false;
    size_t len = strlen (text);
    if (len == 0 || len > CM_SESSION_ID_MAX)
        return false;
    for (size_t i = 0; i < len; i++)
        if (!s_id_char (text[i]))
            return false;
    return true;
}

static bool
s_role_valid (const char *role, size_t len)
{
    return (len == 4 && memcmp (role, "user", 4) == 0)
           || (len == 9 && memcmp (role, "assistant", 9) == 0)
           || (len == 6 && memcmp (role, "system", 6) == 0);
}

int
cm_msgid_parse (const char *text, cm_msgid_t *id)
{
    if (!text || strncmp (text, "msg_", 4) != 0)
        return CM_EPROTO;
    const char *uuid = text + 4;
    const char *uuid_end = strchr (uuid, '_');
    const char *role = strrchr (text, '_');
    if (!uuid_end || role <= uuid_end)
        return CM_EPROTO; //  need two more '_' after "msg_"
    size_t uuid_len = (size_t) (uuid_end - uuid);
    if (uuid_len == 0 || uuid_len > CM_MSGID_UUID_MAX)
        return CM_EPROTO;
    for (size_t i = 0; i < uuid_len; i++)
        if (!s_id_char (uuid[i]) || uuid[i] == '_')
            return CM_EPROTO;
    const char *session = uuid_end + 1;
    size_t session_len = (size_t) (role - session);
    role++;
    size_t role_len = strlen (role);
    if (session_len == 0 || session_len > CM_SESSION_ID_MAX || !s_role_valid (role, role_len))
        return CM_EPROTO;
    for (size_t i = 0; i < session_len; i++)
        if (!s_id_char (session[i]))
            return CM_EPROTO;
    memcpy (id->uuid, uuid, uuid_len);
    id->uuid[uuid_len] = 0;
    memcpy (id->session_id, session, session_len);
    id->session_id[session_len] = 0;
    memcpy (id->role, role, role_len + 1);
    return 0;
}

int
cm_msgid_format (char *buffer, size_t size, const char *uuid, const char *session_id,
                 const char *role)
{
    int n = snprintf (buffer, size, "msg_%s_%s_%s", uuid, session_id, role);
    return n < 0 || (size_t) n >= size ? CM_ETOOBIG : 0;
}

void
cm_uuid (char *buffer)
{
    uint8_t bytes[16];
    size_t got = 0;
    while (got < sizeof bytes) {
        ssize_t n = getrandom (bytes + got, sizeof bytes - got, 0);
        if (n > 0)
            got += (size_t) n;
    }
    bytes[6] = (uint8_t) ((bytes[6] & 0x0f) | 0x40); //  version 4
    bytes[8] = (uint8_t) ((bytes[8] & 0x3f) | 0x80); //  variant 1
    static const char hex[] = "0123456789abcdef";
    for (size_t i = 0; i < sizeof bytes; i++) {
        buffer[2 * i] = hex[bytes[i] >> 4];
        buffer[2 * i + 1] = hex[bytes[i] & 0x0f];
    }
    buffer[CM_UUID_LEN] = 0;
}

void
cm_id_new (char *buffer, size_t size, const char *prefix)
{
    char uuid[CM_UUID_LEN + 1];
    cm_uuid (uuid);
    snprintf (buffer, size, "%s_%s", prefix, uuid);
}

static int
s_parse_u64 (const char *start, const char *end, uint64_t *out)
{
    if (start == end || end - start > 20)
        return CM_EPROTO;
    uint64_t value = 0;
    for (const char *p = start; p < end; p++) {
        if (*p < '0' || *p > '9')
            return CM_EPROTO;
        uint64_t digit = (uint64_t) (*p - '0');
        if (value > (UINT64_MAX - digit) / 10)
            return CM_EPROTO;
        value = value * 10 + digit;
    }
    *out = value;
    return 0;
}

int
cm_event_id_parse (const char *text, cm_event_id_t *id)
{
    if (!text)
        return CM_EPROTO;
    const char *dash = strchr (text, '-');
    if (!dash)
        return CM_EPROTO;
    cm_event_id_t parsed;
    if (s_parse_u64 (text, dash, &parsed.epoch)
        || s_parse_u64 (dash + 1, dash + 1 + strlen (dash + 1), &parsed.seq))
        return CM_EPROTO;
    *id = parsed;
    return 0;
}

void
cm_event_id_format (char *buffer, size_t size, cm_event_id_t id)
{
    snprintf (buffer, size, "%llu-%llu", (unsigned long long) id.epoch,
              (unsigned long long) id.seq);
}
