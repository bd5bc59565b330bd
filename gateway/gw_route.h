/*  gw_route.h: method + path -> route, with ids checked, and query strings.

    Pure functions over strings: no civetweb here, so every routing rule is
    unit-tested. The table of routes (gw_route_info) is also what /metrics
    labels and the OpenAPI coverage test iterate.                           */
#ifndef GW_ROUTE_H_INCLUDED
#define GW_ROUTE_H_INCLUDED

#include "cm_ids.h"

#include <stdbool.h>
#include <stddef.h>

typedef enum {
    GW_R_NONE = 0,     //  no route: see match.status
    GW_R_HEALTHZ,
    GW_R_READYZ,
    GW_R_METRICS,
    GW_R_OPENAPI,
    GW_R_RUN_SSE_POST,
    GW_R_RUN_SSE_GET,
    GW_R_SESSION_LIST,
    GW_R_SESSION_GET,
    GW_R_ANALYTICS,
    GW_R_MESSAGE_EDIT,
    GW_R_MESSAGE_DELETE,
    GW_R_REGENERATE,
    GW_R_FEEDBACK_PUT,
    GW_R_FEEDBACK_GET,
    GW_R_HISTORY_GET,
    GW_R_TASK_STATUS,
    GW_R_TASK_CANCEL,
    GW_R_STATIC,       //  GET/HEAD of anything outside /api and the probes
    GW_R_PREFLIGHT,    //  OPTIONS (CORS)
    GW_R_COUNT
} gw_route_id_t;

typedef struct {
    const char *method;   //  "GET"
    const char *pattern;  //  "/api/messages/{message_id}/feedback"
    const char *name;     //  metrics label ("feedback_get")
    bool auth;            //  needs a bearer token
} gw_route_info_t;

//  Info of one route (GW_R_NONE .. GW_R_COUNT-1); never NULL.
const gw_route_info_t *gw_route_info (gw_route_id_t route);

#define GW_TASK_ID_MAX 64

typedef struct {
    gw_route_id_t route;
    //  When route == GW_R_NONE: the HTTP status (400/404/405), the error
    //  code and a sentence for the client (static storage).
    int status;
    const char *code;
    const char *error;
    const char *allow;    //  405: the Allow header value
    //  Parameters of the path (empty when the route has none).
    char session_id[CM_SESSION_ID_MAX + 1];
    char message_id[CM_MESSAGE_ID_MAX + 1];
    cm_msgid_t msgid;     //  parsed message_id
    char task_id[GW_TASK_ID_MAX + 1];
} gw_match_t;

//  Routes `path` (without query string, already percent-decoded) for
//  `method`. Always fills *match; returns true when a route was found.
bool gw_route_match (const char *method, const char *path, gw_match_t *match);

//  Finds `name` in a query string ("a=1&b=2", no leading '?'), percent- and
//  '+'-decodes its value into buffer. 0, CM_ENOTFOUND, or CM_ETOOBIG when the
//  value does not fit (buffer then holds "").
int gw_query_get (const char *query, const char *name, char *buffer, size_t size);

//  Copies uri into buffer with the value of every access_token parameter
//  replaced by "REDACTED", so a token never reaches a log line.
void gw_redact_uri (const char *uri, char *buffer, size_t size);

#endif
