/*  gw_errors.h: store error codes -> HTTP status, code and sentence.

    One place decides what a client sees when something fails. Backend
    details (EDB, EPROTO, ...) never leak: they become a generic 503 the
    client can retry. Sentences from the store are passed on only for the
    codes whose messages are about the request (EINVAL, ECONFLICT,
    EBADSTATE), because those tell the person what to fix.                 */
#ifndef GW_ERRORS_H_INCLUDED
#define GW_ERRORS_H_INCLUDED

#include "cm_value.h"
#include "gw_route.h"

#include <jansson.h>

typedef struct {
    int status;
    const char *code;   //  snake_case, static
    char error[300];
    int retry_after;    //  seconds for Retry-After, 0 = no header
} gw_error_t;

//  Maps a CM_E* code from a store/broadcaster call made for `route`.
//  error_payload is the error reply's payload (may be NULL): its "message"
//  and "retry_after_ms" are used where they apply.
void gw_error_map (gw_route_id_t route, int code, const cm_value_t *error_payload,
                   gw_error_t *out);

//  {"success": false, "error": ..., "code": ...}; caller decrefs.
json_t *gw_error_body (const char *code, const char *error);

#endif
