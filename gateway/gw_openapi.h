/*  gw_openapi.h: GET /api/openapi.json, made from the tables.

    gw_openapi_build assembles the OpenAPI 3 document from the route table
    (gw_route.h: paths, methods, summaries, bodies, auth), the error table
    (gw_errors.h: every error response, typed by its codes, 405 with Allow
    on every path), the id limits (cm_ids.h: each id parameter's pattern is
    what gw_route_match accepts) and the event table (cm_event.h: one
    schema per event a stream carries). At build time chatmesh-openapi-gen
    (openapi_main.c) runs it once and writes the compact text into a C file
    of the gateway: nothing in the document is written by hand twice.     */
#ifndef GW_OPENAPI_H_INCLUDED
#define GW_OPENAPI_H_INCLUDED

#include "cm_ids.h"

#include <jansson.h>

//  The id parameters' patterns (ECMA and POSIX ERE alike), from the limits.
#define GW_OPENAPI_STR_(x) #x
#define GW_OPENAPI_STR(x) GW_OPENAPI_STR_ (x)
#define GW_SESSION_ID_PATTERN "^[A-Za-z0-9_-]{1," GW_OPENAPI_STR (CM_SESSION_ID_MAX) "}$"
#define GW_TASK_ID_PATTERN "^[A-Za-z0-9_-]{1," GW_OPENAPI_STR (CM_TASK_ID_MAX) "}$"
#define GW_MESSAGE_ID_PATTERN_(roles)                                                 \
    "^msg_[A-Za-z0-9-]{1," GW_OPENAPI_STR (CM_MSGID_UUID_MAX) "}_[A-Za-z0-9_-]{1," \
        GW_OPENAPI_STR (CM_SESSION_ID_MAX) "}_" roles "$"
#define GW_MESSAGE_ID_PATTERN GW_MESSAGE_ID_PATTERN_ ("(user|assistant|system)")
//  Regenerate and continue take an answer: another role is 400
//  not_assistant_message, so the document's id for them is an answer's.
#define GW_ANSWER_ID_PATTERN GW_MESSAGE_ID_PATTERN_ ("assistant")

//  A new document (caller decrefs), or NULL on out-of-memory.
json_t *gw_openapi_build (void);

//  The document the gateway serves, as compact JSON; static storage. It is
//  defined in the generated gw_openapi_doc.c.
const char *gw_openapi_json (void);

#endif
