#include "gw_route.h"

#include "cm_error.h"

#include <stdio.h>
#include <string.h>

static const gw_route_info_t s_routes[GW_R_COUNT] = {
    [GW_R_NONE] = {"", "", "unmatched", false},
    [GW_R_HEALTHZ] = {"GET", "/healthz", "healthz", false},
    [GW_R_READYZ] = {"GET", "/readyz", "readyz", false},
    [GW_R_METRICS] = {"GET", "/metrics", "metrics", false},
    [GW_R_OPENAPI] = {"GET", "/api/openapi.json", "openapi", false},
    [GW_R_RUN_SSE_POST] = {"POST", "/api/run_sse/{session_id}", "run_sse_post", true},
    [GW_R_RUN_SSE_GET] = {"GET", "/api/run_sse/{session_id}", "run_sse_get", true},
    [GW_R_SESSION_LIST] = {"GET", "/api/sessions", "session_list", true},
    [GW_R_SESSION_GET] = {"GET", "/api/sessions/{session_id}", "session_get", true},
    [GW_R_ANALYTICS] = {"GET", "/api/sessions/{session_id}/analytics", "analytics", true},
    [GW_R_MESSAGE_EDIT] = {"PUT", "/api/messages/{message_id}", "message_edit", true},
    [GW_R_MESSAGE_DELETE] = {"DELETE", "/api/messages/{message_id}", "message_delete", true},
    [GW_R_REGENERATE] = {"POST", "/api/messages/{message_id}/regenerate", "regenerate", true},
    [GW_R_FEEDBACK_PUT] = {"POST", "/api/messages/{message_id}/feedback", "feedback_put", true},
    [GW_R_FEEDBACK_GET] = {"GET", "/api/messages/{message_id}/feedback", "feedback_get", true},
    [GW_R_HISTORY_GET] = {"GET", "/api/messages/{message_id}/history", "history_get", true},
    [GW_R_TASK_STATUS] = {"GET", "/api/messages/tasks/{task_id}/status", "task_status", true},
    [GW_R_TASK_CANCEL] = {"POST", "/api/messages/tasks/{task_id}/cancel", "task_cancel", true},
    [GW_R_STATIC] = {"GET", "/", "static", false},
    [GW_R_PREFLIGHT] = {"OPTIONS", "", "preflight", false},
};

const gw_route_info_t *
gw_route_info (gw_route_id_t route)
{
    if ((int) route < 0 || route >= GW_R_COUNT)
        route = GW_R_NONE;
    return &s_routes[route];
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
    if (len == 0 || len > GW_TASK_ID_MAX)
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = text[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')
              || c == '_' || c == '-'))
            return false;
    }
    return true;
}

static bool
s_fail (gw_match_t *match, int status, const char *code, const char *error)
{
    match->route = GW_R_NONE;
    match->status = status;
    match->code = code;
    match->error = error;
    return false;
}

bool
gw_route_match (const char *method, const char *path, gw_match_t *match)
{
    memset (match, 0, sizeof *match);
    if (!method || !path || path[0] != '/')
        return s_fail (match, 400, "bad_request", "The request path must start with '/'.");
    if (strcmp (method, "OPTIONS") == 0) {
        match->route = GW_R_PREFLIGHT;
        return true;
    }
    //  Literal segments win over parameters: the table lists
    //  /api/messages/tasks/... before /api/messages/{message_id}/..., and a
    //  first pass looks for method + path, a second only for the path (405).
    gw_route_id_t found = GW_R_NONE;
    bool path_known = false;
    char methods[64] = "";
    for (int route = GW_R_HEALTHZ; route < GW_R_STATIC; route++) {
        const gw_route_info_t *info = &s_routes[route];
        if (!s_pattern_match (info->pattern, path))
            continue;
        //  The task routes shadow message-id routes of the same shape.
        if (strstr (info->pattern, "{message_id}") && strncmp (path, "/api/messages/tasks/", 20) == 0
            && strchr (path + 20, '/'))
            continue;
        path_known = true;
        if (strlen (methods) + strlen (info->method) + 3 < sizeof methods) {
            if (!strstr (methods, info->method)) {
                if (methods[0])
                    strcat (methods, ", ");
                strcat (methods, info->method);
            }
        }
        if (strcmp (info->method, method) == 0 && found == GW_R_NONE)
            found = (gw_route_id_t) route;
    }
    if (found == GW_R_NONE) {
        if (path_known) {
            s_fail (match, 405, "method_not_allowed", "This method is not allowed on this path.");
            //  Methods are literals of the table, so a static combination is
            //  safe to hand out; pick it from the known pairs.
            if (strcmp (methods, "GET, POST") == 0 || strcmp (methods, "POST, GET") == 0)
                match->allow = "GET, POST";
            else if (strcmp (methods, "PUT, DELETE") == 0)
                match->allow = "PUT, DELETE";
            else if (strcmp (methods, "POST") == 0)
                match->allow = "POST";
            else
                match->allow = "GET";
            return false;
        }
        if (strncmp (path, "/api/", 5) == 0 || strcmp (path, "/api") == 0)
            return s_fail (match, 404, "not_found", "There is no API endpoint at this path.");
        if (strcmp (method, "GET") == 0 || strcmp (method, "HEAD") == 0) {
            match->route = GW_R_STATIC;
            return true;
        }
        s_fail (match, 405, "method_not_allowed", "Static files only answer GET and HEAD.");
        match->allow = "GET, HEAD";
        return false;
    }
    const char *pattern = s_routes[found].pattern;
    if (s_param (pattern, path, "session_id", match->session_id, sizeof match->session_id)
        && !cm_session_id_valid (match->session_id))
        return s_fail (match, 400, "invalid_session_id",
                       "The session id must be 1-128 characters of A-Z, a-z, 0-9, '_' or '-'.");
    if (s_param (pattern, path, "message_id", match->message_id, sizeof match->message_id)
        && cm_msgid_parse (match->message_id, &match->msgid))
        return s_fail (match, 400, "invalid_message_id",
                       "The message id must look like msg_{uuid}_{session_id}_{role}.");
    if (s_param (pattern, path, "task_id", match->task_id, sizeof match->task_id)
        && !s_task_id_ok (match->task_id))
        return s_fail (match, 400, "invalid_task_id",
                       "The task id must be 1-64 characters of A-Z, a-z, 0-9, '_' or '-'.");
    match->route = found;
    return true;
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
    const char *p = query;
    while (*p) {
        const char *end = strchr (p, '&');
        size_t len = end ? (size_t) (end - p) : strlen (p);
        if (len > name_len && memcmp (p, name, name_len) == 0 && p[name_len] == '=') {
            const char *value = p + name_len + 1;
            size_t vlen = len - name_len - 1, out = 0;
            for (size_t i = 0; i < vlen; i++) {
                char c = value[i];
                if (c == '+')
                    c = ' ';
                else if (c == '%' && i + 2 < vlen && s_hex (value[i + 1]) >= 0
                         && s_hex (value[i + 2]) >= 0) {
                    c = (char) (s_hex (value[i + 1]) * 16 + s_hex (value[i + 2]));
                    i += 2;
                }
                if (out + 1 >= size) {
                    if (size)
                        buffer[0] = 0;
                    return CM_ETOOBIG;
                }
                buffer[out++] = c;
            }
            buffer[out] = 0;
            return 0;
        }
        if (len == name_len && memcmp (p, name, name_len) == 0) {
            return 0; //  "name" with no '=': present, empty
        }
        p += len;
        if (*p == '&')
            p++;
    }
    return CM_ENOTFOUND;
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
