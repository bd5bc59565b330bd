/*  gw_json.h: cm_value trees <-> jansson values.

    Store replies are cm_value maps whose shape is already the API's JSON, so
    one generic conversion serves every endpoint. bin values have no JSON
    form and become null; strings that are not valid UTF-8 become null too
    (jansson would refuse them), so a reply never fails half-built.       */
#ifndef GW_JSON_H_INCLUDED
#define GW_JSON_H_INCLUDED

#include "cm_value.h"

#include <jansson.h>

//  New json_t (caller owns, json_decref) or NULL on out-of-memory.
json_t *gw_json_from_value (const cm_value_t *value);

//  New cm_value (caller owns) or NULL on out-of-memory or when nesting is
//  deeper than max_depth (containers count one level each).
cm_value_t *gw_json_to_value (const json_t *json, int max_depth);

//  Depth of containers in json (a scalar is 0, {} is 1).
int gw_json_depth (const json_t *json);

//  Depth of containers in JSON text (strings skipped; the text need not be
//  valid), counting stops once it passes limit. Checked before jansson
//  parses untrusted text: jansson recurses per level and 10,000 '[' overflow
//  a civetweb worker's small stack long before its own depth limit.
int gw_json_text_depth (const char *text, size_t len, int limit);

#endif
