/*  gw_manage.c: session management and undo parameters (gw_manage.h). */
#include "gw_manage.h"

#include "cm_error.h"
#include "gw_errors.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const gw_admin_param_t s_delete_params[] = {
    {"scope", "string", 0, 0,
     "following (default): the message and every later turn; message: only this message",
     "^(following|message)$"},
};

static const gw_admin_param_t s_list_params[] = {
    {"limit", "integer", 1, GW_SESSION_PAGE_MAX, "sessions per page (default 100)", NULL},
    {"cursor", "string", 0, 0, "next_cursor of the page before: continues after its last session",
     "^[0-9]{1,18}[.][A-Za-z0-9_-]{1,128}$"},
};

static const gw_admin_param_t s_export_params[] = {
    {"format", "string", 0, 0,
     "json (default): the whole tree, every version of every turn; markdown: the active path",
     "^(json|markdown)$"},
};

const gw_admin_param_t *
gw_manage_params (gw_route_id_t route, size_t *count)
{
#define S_ROWS(rows) (*count = sizeof rows / sizeof rows[0], rows)
    switch (route) {
        case GW_R_MESSAGE_DELETE:
            return S_ROWS (s_delete_params);
        case GW_R_SESSION_LIST:
            return S_ROWS (s_list_params);
        case GW_R_SESSION_EXPORT:
            return S_ROWS (s_export_params);
        default:
            break;
    }
#undef S_ROWS
    *count = 0;
    return NULL;
}

static int
s_refuse (gw_verdict_t *verdict, gw_http_error_t code, const char *error)
{
    verdict->status = gw_http_error_info (code)->status;
    verdict->code = gw_http_error_info (code)->code;
    snprintf (verdict->error, sizeof verdict->error, "%s", error);
    return CM_EINVAL;
}

//  A parameter that must be one of two words (the first is the default).
static int
s_choice (const char *query, const char *name, const char *first, const char *second,
          cm_value_t *payload, gw_verdict_t *verdict)
{
    char value[16];
    int rc = gw_query_get (query, name, value, sizeof value);
    if (rc == CM_ENOTFOUND)
        return 0;
    if (rc == 0 && (strcmp (value, first) == 0 || strcmp (value, second) == 0)) {
        cm_map_set_str (payload, name, value);
        return 0;
    }
    char error[128];
    snprintf (error, sizeof error, "The query parameter '%s' must be %s or %s, once.", name,
              first, second);
    return s_refuse (verdict, GW_E_INVALID_FIELD, error);
}

static int
s_page (const char *query, cm_value_t *payload, gw_verdict_t *verdict)
{
    char value[CM_SESSION_CURSOR_MAX + 1];
    int rc = gw_query_get (query, "cursor", value, sizeof value);
    if (rc == 0 && value[0])
        cm_map_set_str (payload, "cursor", value);
    else if (rc != CM_ENOTFOUND)
        return s_refuse (verdict, GW_E_INVALID_FIELD,
                         "The query parameter 'cursor' must be a next_cursor value, once.");
    rc = gw_query_get (query, "limit", value, sizeof value);
    if (rc == CM_ENOTFOUND)
        return 0;
    char *end = NULL;
    long long limit = rc ? 0 : strtoll (value, &end, 10);
    if (rc || !value[0] || *end || limit < 1 || limit > GW_SESSION_PAGE_MAX)
        return s_refuse (verdict, GW_E_FIELD_OUT_OF_RANGE,
                         "The query parameter 'limit' must be an integer 1..1000, once.");
    cm_map_set_int (payload, "limit", limit);
    return 0;
}

int
gw_manage_query (gw_route_id_t route, const char *query, cm_value_t *payload,
                 gw_verdict_t *verdict)
{
    if (!query)
        query = "";
    switch (route) {
        case GW_R_MESSAGE_DELETE:
            return s_choice (query, "scope", "following", "message", payload, verdict);
        case GW_R_SESSION_LIST:
            return s_page (query, payload, verdict);
        case GW_R_SESSION_EXPORT:
            return s_choice (query, "format", "json", "markdown", payload, verdict);
        default:
            return 0;
    }
}
