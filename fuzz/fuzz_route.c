/*  fuzz_route: method + path routing, query-string lookup and URI
    redaction take any text. Input: method, NUL, path, NUL, query.
    A matched route's ids must be valid ids; an unmatched one must carry
    a 4xx status with a code; a redacted URI must never still contain the
    value of an access_token parameter.                                   */
#include "cm_ids.h"
#include "gw_route.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static size_t
s_count (const char *text, const char *needle)
{
    size_t count = 0;
    for (const char *p = strstr (text, needle); p; p = strstr (p + 1, needle))
        count++;
    return count;
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    char *text = malloc (size + 3);
    memcpy (text, data, size);
    text[size] = text[size + 1] = text[size + 2] = 0;
    const char *method = text;
    const char *path = method + strlen (method) + 1;
    if (path > text + size)
        path = text + size + 1;
    const char *query = path + strlen (path) + 1;
    if (query > text + size + 1)
        query = text + size + 2;

    gw_match_t match;
    if (gw_route_match (method, path, &match)) {
        if (match.route <= GW_R_NONE || match.route >= GW_R_COUNT)
            abort ();
        if (match.session_id[0] && !cm_session_id_valid (match.session_id))
            abort ();
        if (match.message_id[0]) {
            cm_msgid_t id;
            if (cm_msgid_parse (match.message_id, &id) != 0)
                abort ();
        }
        const gw_route_info_t *info = gw_route_info (match.route);
        if (!info || !info->name)
            abort ();
    } else if (match.status < 400 || match.status > 499 || !match.code || !match.error)
        abort ();

    char value[256];
    int rc = gw_query_get (query, "access_token", value, sizeof value);
    (void) gw_query_get (query, "last_event_id", value, sizeof value);
    (void) gw_query_get (query, method, value, sizeof value);
    (void) rc;

    //  Redaction: the value of a plain (not percent-encoded) access_token
    //  must not survive. Append one with a marker value: the redacted URI
    //  holds fewer markers than the original (the input may hold some).
    char uri[1024], redacted[1200];
    snprintf (uri, sizeof uri, "%.400s?%.400s&access_token=SeCrEtT0k3n", path, query);
    gw_redact_uri (uri, redacted, sizeof redacted);
    if (s_count (redacted, "SeCrEtT0k3n") >= s_count (uri, "SeCrEtT0k3n"))
        abort ();
    gw_redact_uri (text, redacted, 8); //  tiny buffer
    if (strnlen (redacted, 8) == 8)
        abort ();
    free (text);
    return 0;
}
