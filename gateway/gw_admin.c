/*  gw_admin.c: operators and the admin endpoints (gw_admin.h).  */
#include "gw_admin.h"

#include "cm_error.h"
#include "cm_msg.h"
#include "gw_errors.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define S_TIME "ms since the epoch, YYYY-MM-DD (UTC) or YYYY-MM-DDTHH:MM:SS[.mmm]Z"
#define S_TIME_PATTERN "^[0-9]{1,13}$"
//  Non-empty, no control character (s_text); maximum is its byte limit.
#define S_TEXT_PATTERN "^[^\\u0000-\\u001f\\u007f]+$"

static const gw_admin_param_t s_audit_params[] = {
    {"user", "string", 0, CM_USER_MAX, "only this user's entries (a token's sub)", S_TEXT_PATTERN},
    {"session", "string", 0, CM_SESSION_ID_MAX, "only this session's entries", S_TEXT_PATTERN},
    {"action", "string", 0, CM_EVENT_NAME_MAX,
     "only entries of this action_type (session_start, edit, ...)", S_TEXT_PATTERN},
    {"from", "string", 0, 0, "entries created at or after this time: " S_TIME, S_TIME_PATTERN},
    {"to", "string", 0, 0, "entries created at or before this time: " S_TIME, S_TIME_PATTERN},
    {"cursor", "string", 0, CM_AUDIT_CURSOR_MAX,
     "next_cursor of the page before: continues after its last entry", "^([0-9a-f]{2})+$"},
    {"limit", "integer", 1, CM_AUDIT_PAGE_MAX, "entries per page (default 100)", NULL},
};

static const gw_admin_param_t s_analytics_params[] = {
    {"from", "string", 0, 0,
     "the first day counted (its UTC day): " S_TIME "; default 29 days before to", S_TIME_PATTERN},
    {"to", "string", 0, 0,
     "the last day counted (its UTC day): " S_TIME "; default now, or the 366th day from "
     "from when that is earlier, or from itself when from is later than now; at most 366 "
     "days after from",
     S_TIME_PATTERN},
};

const gw_admin_param_t *
gw_admin_params (gw_route_id_t route, size_t *count)
{
    if (route == GW_R_ADMIN_AUDIT) {
        *count = sizeof s_audit_params / sizeof s_audit_params[0];
        return s_audit_params;
    }
    if (route == GW_R_ADMIN_ANALYTICS) {
        *count = sizeof s_analytics_params / sizeof s_analytics_params[0];
        return s_analytics_params;
    }
    *count = 0;
    return NULL;
}

bool
gw_admin_is (const char *admin_users, const char *user, bool token_admin)
{
    if (token_admin)
        return true;
    if (!admin_users || !user || !*user)
        return false;
    size_t user_len = strlen (user);
    const char *p = admin_users;
    while (*p) {
        size_t len = strcspn (p, ",");
        const char *start = p, *end = p + len;
        while (start < end && (*start == ' ' || *start == '\t'))
            start++;
        while (end > start && (end[-1] == ' ' || end[-1] == '\t'))
            end--;
        if ((size_t) (end - start) == user_len && memcmp (start, user, user_len) == 0)
            return true;
        p += len;
        if (*p == ',')
            p++;
    }
    return false;
}

int
gw_admin_time (const char *text, int64_t *ms)
{
    if (!text || !*text)
        return CM_EINVAL;
    size_t len = strlen (text);
    if (strspn (text, "0123456789") == len) {
        if (len > 15) //  beyond year 33000
            return CM_EINVAL;
        *ms = strtoll (text, NULL, 10);
        return 0;
    }
    struct tm tm = {0};
    int millis = 0, used = 0;
    bool parsed
        = (len == 10
           && sscanf (text, "%4d-%2d-%2d%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &used) == 3
           && used == 10)
          || (len == 20
              && sscanf (text, "%4d-%2d-%2dT%2d:%2d:%2dZ%n", &tm.tm_year, &tm.tm_mon,
                         &tm.tm_mday, &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &used) == 6
              && used == 20)
          || (len == 24
              && sscanf (text, "%4d-%2d-%2dT%2d:%2d:%2d.%3dZ%n", &tm.tm_year, &tm.tm_mon,
                         &tm.tm_mday, &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &millis, &used) == 7
              && used == 24);
    //  Digits only where the layout has them (sscanf would take "+1" or " 1").
    for (size_t i = 0; parsed && i < len; i++)
        parsed = (text[i] >= '0' && text[i] <= '9') || i == 4 || i == 7 || i == 10 || i == 13
                 || i == 16 || i == 19 || i == len - 1;
    if (!parsed)
        return CM_EINVAL;
    if (tm.tm_year < 1970 || tm.tm_mon < 1 || tm.tm_mon > 12 || tm.tm_mday < 1
        || tm.tm_mday > 31 || tm.tm_hour > 23 || tm.tm_min > 59 || tm.tm_sec > 59)
        return CM_EINVAL;
    int day = tm.tm_mday, month = tm.tm_mon;
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    time_t seconds = timegm (&tm);
    //  timegm normalises 2026-02-31 to March: refuse what it moved.
    if (seconds < 0 || tm.tm_mday != day || tm.tm_mon != month - 1)
        return CM_EINVAL;
    *ms = (int64_t) seconds * 1000 + millis;
    return 0;
}

static int
s_refuse (gw_verdict_t *verdict, gw_http_error_t code, const char *error)
{
    verdict->status = gw_http_error_info (code)->status;
    verdict->code = gw_http_error_info (code)->code;
    snprintf (verdict->error, sizeof verdict->error, "%s", error);
    return CM_EINVAL;
}

//  One text parameter into payload[field]: absent is fine; repeated, too
//  long, empty or with control characters is not.
static int
s_text (const char *query, const char *name, const char *field, size_t max, cm_value_t *payload,
        gw_verdict_t *verdict)
{
    char value[CM_AUDIT_CURSOR_MAX + 1];
    char error[200];
    int rc = gw_query_get (query, name, value, sizeof value);
    if (rc == CM_ENOTFOUND)
        return 0;
    bool control = false;
    for (const char *p = value; *p; p++)
        control |= (unsigned char) *p < 0x20 || *p == 0x7f;
    if (rc == CM_EINVAL)
        snprintf (error, sizeof error, "The query parameter '%s' is given more than once.", name);
    else if (rc || strlen (value) > max)
        snprintf (error, sizeof error, "The query parameter '%s' is longer than %zu bytes.", name,
                  max);
    else if (!value[0] || control)
        snprintf (error, sizeof error,
                  "The query parameter '%s' must be non-empty text without control characters.",
                  name);
    else {
        cm_map_set_str (payload, field, value);
        return 0;
    }
    return s_refuse (verdict, GW_E_INVALID_FIELD, error);
}

static int
s_when (const char *query, const char *name, cm_value_t *payload, int64_t *out,
        gw_verdict_t *verdict)
{
    char value[40];
    int rc = gw_query_get (query, name, value, sizeof value);
    if (rc == CM_ENOTFOUND)
        return 0;
    int64_t ms;
    if (rc || gw_admin_time (value, &ms)) {
        char error[200];
        snprintf (error, sizeof error,
                  "The query parameter '%s' must be milliseconds since the epoch, YYYY-MM-DD "
                  "or YYYY-MM-DDTHH:MM:SSZ, once.",
                  name);
        return s_refuse (verdict, GW_E_INVALID_FIELD, error);
    }
    cm_map_set_int (payload, name, ms);
    *out = ms;
    return 0;
}

int
gw_admin_query (gw_route_id_t route, const char *query, cm_value_t *payload,
                gw_verdict_t *verdict)
{
    if (route != GW_R_ADMIN_AUDIT && route != GW_R_ADMIN_ANALYTICS)
        return 0; //  the others take no parameters
    int64_t from = 0, to = INT64_MAX;
    if (s_when (query, "from", payload, &from, verdict) || s_when (query, "to", payload, &to, verdict))
        return CM_EINVAL;
    if (from > to)
        return s_refuse (verdict, GW_E_FIELD_OUT_OF_RANGE,
                         "The time range is empty: 'from' is after 'to'.");
    if (route != GW_R_ADMIN_AUDIT)
        return 0;
    if (s_text (query, "user", "user_id", CM_USER_MAX, payload, verdict)
        || s_text (query, "session", "session_id", CM_SESSION_ID_MAX, payload, verdict)
        || s_text (query, "action", "action_type", CM_EVENT_NAME_MAX, payload, verdict)
        || s_text (query, "cursor", "cursor", CM_AUDIT_CURSOR_MAX, payload, verdict))
        return CM_EINVAL;
    char value[16];
    int rc = gw_query_get (query, "limit", value, sizeof value);
    if (rc == CM_ENOTFOUND)
        return 0;
    char *end = NULL;
    long long limit = rc ? 0 : strtoll (value, &end, 10);
    if (rc || !value[0] || *end || limit < 1 || limit > CM_AUDIT_PAGE_MAX)
        return s_refuse (verdict, GW_E_FIELD_OUT_OF_RANGE,
                         "The query parameter 'limit' must be an integer 1..1000, once.");
    cm_map_set_int (payload, "limit", limit);
    return 0;
}

char *
gw_admin_ndjson (const json_t *body, size_t *len)
{
    const json_t *entries = json_object_get (body, "entries");
    size_t size = 0, cap = 4096;
    char *out = malloc (cap);
    if (!out)
        return NULL;
    out[0] = 0;
    for (size_t i = 0; i < json_array_size (entries); i++) {
        char *line = json_dumps (json_array_get (entries, i), JSON_COMPACT);
        size_t n = line ? strlen (line) : 0;
        if (line && size + n + 2 > cap) {
            while (size + n + 2 > cap)
                cap *= 2;
            char *bigger = realloc (out, cap);
            if (!bigger) {
                free (line);
                line = NULL;
            }
            else
                out = bigger;
        }
        if (!line) {
            free (out);
            return NULL;
        }
        memcpy (out + size, line, n);
        out[size + n] = '\n';
        size += n + 1;
        out[size] = 0;
        free (line);
    }
    *len = size;
    return out;
}

bool
gw_admin_wants_ndjson (const char *accept)
{
    return accept && strstr (accept, "application/x-ndjson") != NULL;
}

//  Appends text to a growing buffer; false when out of memory.
static bool
s_append (char **buf, size_t *len, size_t *cap, const char *text)
{
    size_t n = strlen (text);
    if (*len + n + 1 > *cap) {
        size_t bigger = *cap ? *cap : 1024;
        while (*len + n + 1 > bigger)
            bigger *= 2;
        char *grown = realloc (*buf, bigger);
        if (!grown)
            return false;
        *buf = grown;
        *cap = bigger;
    }
    memcpy (*buf + *len, text, n + 1);
    *len += n;
    return true;
}

//  A label value with \, " and newline escaped (text format 0.0.4).
static void
s_label (const char *value, char *out, size_t size)
{
    size_t used = 0;
    for (const char *p = value; *p && used + 3 < size; p++) {
        if (*p == '\\' || *p == '"' || *p == '\n') {
            out[used++] = '\\';
            out[used++] = *p == '\n' ? 'n' : *p;
        }
        else
            out[used++] = *p;
    }
    out[used] = 0;
}

char *
gw_admin_metrics (const cm_value_t *totals_reply)
{
    char *buf = NULL;
    size_t len = 0, cap = 0;
    bool ok = s_append (&buf, &len, &cap,
                        "# HELP chatmesh_actions_total Message actions by model, as the store "
                        "counts them (docs/api.md, \"Operators\").\n"
                        "# TYPE chatmesh_actions_total counter\n");
    const cm_value_t *totals = cm_map_get (totals_reply, "totals");
    for (size_t i = 0; ok && totals && i < cm_value_len (totals); i++) {
        const cm_value_t *item = cm_arr_at (totals, i);
        char model[2 * CM_MODEL_MAX + 1], action[128], line[2 * CM_MODEL_MAX + 256];
        s_label (cm_map_str_or (item, "model", ""), model, sizeof model);
        s_label (cm_map_str_or (item, "counter", ""), action, sizeof action);
        snprintf (line, sizeof line, "chatmesh_actions_total{model=\"%s\",action=\"%s\"} %lld\n",
                  model, action, (long long) cm_map_int (item, "count", 0));
        ok = s_append (&buf, &len, &cap, line);
    }
    if (!ok) {
        free (buf);
        return NULL;
    }
    return buf;
}
