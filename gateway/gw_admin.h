/*  gw_admin.h: operators and the admin endpoints' requests and replies.

    An operator is a caller whose token says role "admin" (gw_jwt.h) or
    whose user (the token's sub) is one of CHATMESH_ADMIN_USERS. Every
    route under /api/admin/ answers 403 forbidden to anyone else
    (gw_route_admin); nothing else about a user's rights changes.

    Pure functions over strings and values (no civetweb): gw_http.c calls
    them around its one store request per admin route.                   */
#ifndef GW_ADMIN_H_INCLUDED
#define GW_ADMIN_H_INCLUDED

#include "cm_value.h"
#include "gw_route.h"
#include "gw_validate.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

//  True when user is an operator: token_admin (the token's role claim),
//  or user is an exact entry of the comma list admin_users (blanks around
//  an entry ignored; "" lists nobody).
bool gw_admin_is (const char *admin_users, const char *user, bool token_admin);

//  The query parameters of an admin route, for the OpenAPI document:
//  name, JSON Schema type ("string" / "integer"), bounds of an integer
//  (0, 0 for none) and a sentence. *count gets how many (0 for routes
//  that take none).
typedef struct {
    const char *name;
    const char *type;
    int minimum, maximum; //  a string's maximum: its limit in bytes (maxLength)
    const char *description;
    const char *pattern; //  NULL: none. A time's pattern is its ms form only:
                         //  the date forms are in the description, as a
                         //  pattern for them would admit days that do not exist
} gw_admin_param_t;
const gw_admin_param_t *gw_admin_params (gw_route_id_t route, size_t *count);

//  A time of the query string: integer milliseconds since the epoch,
//  "YYYY-MM-DD" (that day's start, UTC) or "YYYY-MM-DDTHH:MM:SS[.mmm]Z".
//  0 with *ms, or CM_EINVAL.
int gw_admin_time (const char *text, int64_t *ms);

//  The store request's fields of an admin route from its query string
//  (NULL: none), added to payload:
//    admin_audit      user, session, action, from, to, cursor, limit
//    admin_analytics  from, to
//  (from/to as gw_admin_time; an unknown parameter, and any parameter of
//  another route, is ignored). 0, or
//  CM_EINVAL with a 400/422 verdict naming the parameter.
int gw_admin_query (gw_route_id_t route, const char *query, cm_value_t *payload,
                    gw_verdict_t *verdict);

//  The JSONL export of an audit reply body ({entries: [...]}): one compact
//  JSON object per line, newest first, each line ending in "\n" ("" for no
//  entries). Caller frees; NULL when out of memory.
char *gw_admin_ndjson (const json_t *body, size_t *len);

//  The store's analytics_totals reply as Prometheus text: one counter
//  family, chatmesh_actions_total{model, action} (the plain counters of
//  st_analytics.h: turns, answers, regenerations, ...), label values
//  escaped. Caller frees; NULL when out of memory. A reply without totals
//  gives the HELP and TYPE lines only.
char *gw_admin_metrics (const cm_value_t *totals_reply);

//  True when an Accept header (may be NULL) asks for JSONL
//  (application/x-ndjson).
bool gw_admin_wants_ndjson (const char *accept);

#endif
