/*  gw_manage.h: the query parameters and bodies of the routes a chat
    sidebar uses to manage sessions and undo deletes (issue 15):

      message_delete  ?scope=following (default: it and every later turn)
                      or message (only it)
      session_list    ?limit=1..GW_SESSION_PAGE_MAX (default 100) and
                      ?cursor= (next_cursor of the page before)
      session_export  ?format=json (default: the whole tree, every version)
                      or markdown (the active path)
    (session_rename's body: gw_validate_rename, gw_validate.h.)

    Pure functions over strings and values (no civetweb), like gw_admin.h.
    Each returns 0 or CM_EINVAL with a 400/422 verdict naming the field. */
#ifndef GW_MANAGE_H_INCLUDED
#define GW_MANAGE_H_INCLUDED

#include "cm_value.h"
#include "gw_admin.h"
#include "gw_route.h"
#include "gw_validate.h"

#include <jansson.h>

#define GW_SESSION_PAGE_MAX 1000

//  The route's query parameters for the OpenAPI document (gw_admin_param_t
//  rows; *count 0 and NULL for a route without any).
const gw_admin_param_t *gw_manage_params (gw_route_id_t route, size_t *count);

//  The route's query parameters (query NULL: none) into payload: scope,
//  limit and cursor, format. An unknown parameter is ignored.
int gw_manage_query (gw_route_id_t route, const char *query, cm_value_t *payload,
                     gw_verdict_t *verdict);

#endif
