#include "gw_route.h"

#include "cm_error.h"
#include "gw_errors.h"

#include <stdio.h>
#include <string.h>

#define S_STR_(x) #x
#define S_STR(x) S_STR_ (x)

static const gw_route_info_t s_routes[GW_R_COUNT] = {
    [GW_R_NONE] = {"", "", "unmatched", false, CM_MSG_NONE, false, GW_BODY_NONE, NULL, "", "", ""},
#define X(id, method, pattern, name, auth, message, limited, body, validate, noun, summary, reply) \
    [GW_R_##id] = {method, pattern, name, auth, message, limited, body, validate, noun, summary, reply},
    GW_ROUTES (X)
#undef X
};

const gw_route_info_t *
gw_route_info (gw_route_id_t route)
{
    if ((int) route < 0 || route >= GW_R_COUNT)
        route = GW_R_NONE;
    return &s_routes[route];
}

bool
gw_route_admin (gw_route_id_t route)
{
    return strncmp (gw_route_info (route)->pattern, "/api/admin/", 11) == 0;
}

//  Compares one pattern with path segment by segment; a "{name}" segment
//  takes any non-empty segment (checked later). Returns true on a match.
static bool
s_pattern_match (const char *pattern, const char *path)
{
    while (*pattern && *path) {
        if (*pattern != '/' || *path != '/')
            return false;
        pattern++;
        path++;
        const char *pend = strchr (pattern, '/');
        const char *send = strchr (path, '/');
        size_t plen = pend ? (size_t) (pend - pattern) : strlen (pattern);
        size_t slen = send ? (size_t) (send - path) : strlen (path);
        if (slen == 0)
            return false;
        if (plen > 0 && pattern[0] == '{') {
            //  parameter: any non-empty segment
        }
        else if (plen != slen || memcmp (pattern, path, slen) != 0)
            return false;
        pattern += plen;
        path += slen;
    }
    return *pattern == 0 && *path == 0;
}

//  The pattern of one row matches path. A path under /api/messages/tasks/
//  with more segments is a task's, never a message id's.
static bool
s_route_path_match (const gw_route_info_t *info, const char *path)
{
    if (!s_pattern_match (info->pattern, path))
        return false;
    return !(strstr (info->pattern, "{message_id}")
             && strncmp (path, "/api/messages/tasks/", 20) == 0 && strchr (path + 20, '/'));
}

//  Copies the segment of path that sits where `{name}` is in pattern.
static bool
s_param (const char *pattern, const char *path, const char *name, char *out, size_t size)
{
    char key[32];
    snprintf (key, sizeof key, "{%s}", name);
    const char *at = strstr (pattern, key);
    if (!at)
        return false;
    //  Count the slashes before the parameter to find the segment index.
    size_t index = 0;
    for (const char *p = pattern; p < at; p++)
        index += *p == '/';
    const char *seg = path;
    for (size_t i = 0; i < index; i++) {
        seg = strchr (seg, '/');
        if (!seg)
            return false;
        seg++;
    }
    size_t len = strcspn (seg, "/");
    if (len + 1 > size) {
        out[0] = 0;
        return true; //  too long: left empty, rejected by the caller
    }
    memcpy (out, seg, len);
    out[len] = 0;
    return true;
}

static bool
s_task_id_ok (const char *text)
{
    size_t len = strlen (text);
    if (len == 0 || len > CM_TASK_ID_MAX)
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = text[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')
              || c == '_' || c == '-'))
            return false;
    }
    return true;
}

//  A version number: 1..CM_VERSIONS_MAX in decimal, no sign, no leading zero.
static uint32_t
s_version (const char *text)
{
    uint32_t value = 0;
    size_t len = strlen (text);
    if (len == 0 || len > 3 || text[0] == '0')
        return 0;
    for (size_t i = 0; i < len; i++) {
        if (text[i] < '0' || text[i] > '9')
            return 0;
        value = value * 10 + (uint32_t) (text[i] - '0');
    }
    return value <= CM_VERSIONS_MAX ? value : 0;
}

static bool
s_fail (gw_match_t *match, gw_http_error_t code, const char *error)
{
    match->route = GW_R_NONE;
    match->status = gw_http_error_info (code)->status;
    match->code = gw_http_error_info (code)->code;
    match->error = error;
    return false;
}

//  Allow lists methods in this order, whatever the order of the table.
static const char *const s_methods[] = {"GET", "POST", "PUT", "PATCH", "DELETE"};

//  "GET, POST": the methods of the table's rows whose pattern matches path.
static void
s_allow (const char *path, char *allow, size_t size)
{
    allow[0] = 0;
    for (size_t m = 0; m < sizeof s_methods / sizeof s_methods[0]; m++) {
        bool listed = false;
        for (int route = GW_R_NONE + 1; route < GW_R_STATIC && !listed; route++)
            listed = strcmp (s_routes[route].method, s_methods[m]) == 0
                     && s_route_path_match (&s_routes[route], path);
        if (listed)
            snprintf (allow + strlen (allow), size - strlen (allow), "%s%s", allow[0] ? ", " : "",
                      s_methods[m]);
    }
}

bool
gw_route_match (const char *method, const char *path, gw_match_t *match)
{
    memset (match, 0, sizeof *match);
    if (!method || !path || path[0] != '/')
        return s_fail (match, GW_E_BAD_REQUEST, "The request path must start with '/'.");
    if (strcmp (method, "OPTIONS") == 0) {
        match->route = GW_R_PREFLIGHT;
        return true;
    }
    //  Literal segments win over parameters: the table lists
    //  /api/messages/tasks/... before /api/messages/{message_id}/..., and a
    //  first pass looks for method + path, a second only for the path (405).
    gw_route_id_t found = GW_R_NONE;
    bool path_known = false;
    for (int route = GW_R_NONE + 1; route < GW_R_STATIC; route++) {
        const gw_route_info_t *info = &s_routes[route];
        if (!s_route_path_match (info, path))
            continue;
        path_known = true;
        if (strcmp (info->method, method) == 0 && found == GW_R_NONE)
            found = (gw_route_id_t) route;
    }
    if (found == GW_R_NONE) {
        if (path_known) {
            s_fail (match, GW_E_METHOD_NOT_ALLOWED, "This method is not allowed on this path.");
            s_allow (path, match->allow, sizeof match->allow);
            return false;
        }
        if (strncmp (path, "/api/", 5) == 0 || strcmp (path, "/api") == 0)
            return s_fail (match, GW_E_NOT_FOUND, "There is no API endpoint at this path.");
        if (strcmp (method, "GET") == 0 || strcmp (method, "HEAD") == 0) {
            match->route = GW_R_STATIC;
            return true;
        }
        s_fail (match, GW_E_METHOD_NOT_ALLOWED, "Static files only answer GET and HEAD.");
        snprintf (match->allow, sizeof match->allow, "GET, HEAD");
        return false;
    }
    const char *pattern = s_routes[found].pattern;
    if (s_param (pattern, path, "session_id", match->session_id, sizeof match->session_id)
        && !cm_session_id_valid (match->session_id))
        return s_fail (match, GW_E_INVALID_SESSION_ID,
                       "The session id must be 1-" S_STR (CM_SESSION_ID_MAX)
                       " characters of A-Z, a-z, 0-9, '_' or '-'.");
    if (s_param (pattern, path, "message_id", match->message_id, sizeof match->message_id)
        && cm_msgid_parse (match->message_id, &match->msgid))
        return s_fail (match, GW_E_INVALID_MESSAGE_ID,
                       "The message id must look like msg_{uuid}_{session_id}_{role}.");
    if (s_param (pattern, path, "task_id", match->task_id, sizeof match->task_id)
        && !s_task_id_ok (match->task_id))
        return s_fail (match, GW_E_INVALID_TASK_ID,
                       "The task id must be 1-" S_STR (CM_TASK_ID_MAX)
                       " characters of A-Z, a-z, 0-9, '_' or '-'.");
    char version[8];
    if (s_param (pattern, path, "version", version, sizeof version)
        && !(match->version = s_version (version)))
        return s_fail (match, GW_E_INVALID_VERSION,
                       "The version must be a number from 1 to " S_STR (CM_VERSIONS_MAX) ".");
    match->route = found;
    return true;
}

void
gw_match_payload (const gw_match_t *match, cm_value_t *payload)
{
    if (match->session_id[0])
        cm_map_set_str (payload, "session_id", match->session_id);
    if (match->message_id[0])
        cm_map_set_str (payload, "message_id", match->message_id);
    if (match->task_id[0])
        cm_map_set_str (payload, "task_id", match->task_id);
    if (match->version)
        cm_map_set_int (payload, "version", match->version);
}

static int
s_hex (char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

int
gw_query_get (const char *query, const char *name, char *buffer, size_t size)
{
    if (size)
        buffer[0] = 0;
    if (!query || !name)
        return CM_ENOTFOUND;
    size_t name_len = strlen (name);
    int rc = CM_ENOTFOUND;
    const char *p = query;
    while (*p) {
        const char *end = strchr (p, '&');
        size_t len = end ? (size_t) (end - p) : strlen (p);
        bool named = len >= name_len && memcmp (p, name, name_len) == 0
                     && (len == name_len || p[name_len] == '=');
        if (named && rc != CM_ENOTFOUND) {
            //  Twice: which one counts would be a guess.
            if (size)
                buffer[0] = 0;
            return CM_EINVAL;
        }
        if (named) {
            //  "name" with no '=': present, empty.
            const char *value = p + name_len + (len > name_len);
            size_t vlen = len > name_len ? len - name_len - 1 : 0, out = 0;
            rc = 0;
            for (size_t i = 0; i < vlen && rc == 0; i++) {
                char c = value[i];
                if (c == '+')
                    c = ' ';
                else if (c == '%' && i + 2 < vlen && s_hex (value[i + 1]) >= 0
                         && s_hex (value[i + 2]) >= 0) {
                    c = (char) (s_hex (value[i + 1]) * 16 + s_hex (value[i + 2]));
                    i += 2;
                }
                if (out + 1 >= size)
                    rc = CM_ETOOBIG;
                else
                    buffer[out++] = c;
            }
            if (size)
                buffer[rc ? 0 : out] = 0;
        }
        p += len;
        if (*p == '&')
            p++;
    }
    return rc;
}

void
gw_redact_uri (const char *uri, char *buffer, size_t size)
{
    if (!size)
        return;
    size_t out = 0;
    const char *p = uri ? uri : "";
    const char *query = strchr (p, '?');
    while (*p && out + 1 < size) {
        //  At the start of a parameter named access_token, copy the name and
        //  replace the value.
        bool param_start = query && p > query && (p[-1] == '?' || p[-1] == '&');
        if (param_start && strncmp (p, "access_token=", 13) == 0) {
            const char *repl = "access_token=REDACTED";
            for (const char *r = repl; *r && out + 1 < size; r++)
                buffer[out++] = *r;
            p += strcspn (p, "&");
            continue;
        }
        buffer[out++] = *p++;
    }
    buffer[out] = 0;
}
