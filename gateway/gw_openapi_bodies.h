/*  gw_openapi_bodies.h: the OpenAPI schemas of what the gateway answers.

    One named schema per response body (Session, Message, TaskStatus,
    FeedbackSummary, AuditPage, ...) and one per stream event's data
    (Event_<name>, from the event table cm_event.h, refined with the item
    types and the values of its fields). Every field a body carries is
    listed with its type, whether it may be null and whether it is always
    there; an object that is ours and fixed says additionalProperties:
    false, so a stray or a missing field fails validation
    (tests/schema/bodies.py holds real responses and events to them; the
    schemathesis stage's response checks too). Free-form on purpose: a
    vote's metadata (the client's), an audit entry's details (per action)
    and the document itself.

    The fields are written here from the store's replies (store/st_view.c
    and the st_h_*.c handlers) and the gateway's own answers; the tests
    above are what keeps the two in step.                                */
#ifndef GW_OPENAPI_BODIES_H_INCLUDED
#define GW_OPENAPI_BODIES_H_INCLUDED

#include "gw_route.h"

#include <jansson.h>

//  Adds every body and event schema to schemas (components/schemas).
//  0, or -1 on out-of-memory or a table that names an unknown schema.
int gw_openapi_bodies_add (json_t *schemas);

//  The components/schemas name of the 200 application/json body of route,
//  or NULL when its 200 has none (the metrics text, static files, the
//  GET event stream).
const char *gw_openapi_body_200 (gw_route_id_t route);

//  The name of the schema of one NDJSON line of route's 200 (the audit
//  export), or NULL.
const char *gw_openapi_body_ndjson_line (gw_route_id_t route);

//  /readyz's 503 carries the probe's fields besides the error's: they are
//  added to the properties (optional) of that response's schema.
int gw_openapi_bodies_ready_error (json_t *schema);

#endif
