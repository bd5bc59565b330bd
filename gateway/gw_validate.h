/*  gw_validate.h: request bodies of the API, checked before the store sees
    them.

    Each gw_validate_* has the one signature of gw_validator_fn (gw_route.h,
    whose table names each route's validator), takes the parsed JSON body and adds the validated
    fields to the store request's payload map. On a bad body it fills a
    verdict (HTTP status, snake_case code, a sentence naming the field) and
    returns CM_EINVAL; the payload may then hold some fields and is simply
    discarded. Unknown fields are ignored. Lengths of content are counted
    in characters (UTF-8 code points), after trimming white space.         */
#ifndef GW_VALIDATE_H_INCLUDED
#define GW_VALIDATE_H_INCLUDED

#include "cm_msg.h"
#include "cm_value.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

typedef struct {
    int status;        //  400, 413, 415, 422
    const char *code;  //  static
    char error[256];   //  for the client
} gw_verdict_t;

#define GW_REASON_MAX_CHARS 500
#define GW_MODEL_MAX_CHARS CM_MODEL_MAX_CHARS //  code points, as JSON Schema maxLength counts
#define GW_METADATA_MAX_DEPTH 8
#define GW_BODY_MAX_DEPTH 32   //  checked on the text, before parsing
#define GW_METADATA_KEY_MAX CM_MAP_KEY_MAX //  bytes, the wire protocol's key limit

//  True when a Content-Type header names application/json (any case,
//  parameters such as charset allowed).
bool gw_content_type_is_json (const char *content_type);

//  Code points in s[0..len), or -1 when s is not valid UTF-8 (overlongs,
//  surrogates and values past U+10FFFF are invalid).
long gw_utf8_chars (const char *s, size_t len);

//  Parses a body into a JSON object. 0 with *out (caller decrefs), or
//  CM_EINVAL: 400 invalid_json (malformed, invalid UTF-8, duplicate keys),
//  422 invalid_body (valid JSON that is not an object).
int gw_body_parse (const char *body, size_t len, json_t **out, gw_verdict_t *verdict);

//  POST /api/run_sse: query (1..max_chars after trimming), model?,
//  temperature?. Adds query, model, temperature.
int gw_validate_run_sse (const json_t *body, int max_chars, cm_value_t *payload,
                         gw_verdict_t *verdict);
//  POST regenerate: body may be NULL (no body). context?, instruction?
//  (each up to max_chars after trimming; blank: absent), model?,
//  temperature 0.0-2.0?.
int gw_validate_regenerate (const json_t *body, int max_chars, cm_value_t *payload,
                            gw_verdict_t *verdict);
//  PUT message: content (1..max_chars after trimming), trigger_regeneration?
//  PATCH session: title (1..GW_TITLE_MAX_CHARS code points after trimming
//  blanks, no control characters), trimmed.
#define GW_TITLE_MAX_CHARS 200
int gw_validate_rename (const json_t *body, int max_chars, cm_value_t *payload,
                        gw_verdict_t *verdict);
int gw_validate_edit (const json_t *body, int max_chars, cm_value_t *payload,
                      gw_verdict_t *verdict);
//  POST feedback: feedback_type upvote|downvote, reason? (<=
//  GW_REASON_MAX_CHARS, whatever max_chars says), metadata? (object),
//  version? (an integer 1..CM_VERSIONS_MAX: the version voted on).
int gw_validate_feedback (const json_t *body, int max_chars, cm_value_t *payload,
                          gw_verdict_t *verdict);

#endif
