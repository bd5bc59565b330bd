/*  gw_errors.h: every error a client of the gateway can see, in one table,
    and the store error codes -> that table.

    GW_HTTP_ERRORS(X) is the only place an error code string appears in the
    gateway: X (NAME, "code", HTTP status, Retry-After seconds, "when"). A
    response body is {"success": false, "error": sentence, "code": code};
    the status and the Retry-After header (0 = none) come from the row, so
    one code always has one status. docs/api.md's table is the prose copy
    and the OpenAPI document (gw_openapi.h) lists these per route.

    Backend details (EDB, EPROTO, ...) never leak: they become a generic 503
    the client can retry. Two store conditions are named instead, because
    the client cannot fix them by retrying: a full disk (ENOSPC: 507
    insufficient_storage) and a damaged record (ECORRUPT: 500
    data_corrupted, never the bytes). Sentences from the store are passed on only for
    the codes whose messages are about the request (EINVAL, ECONFLICT,
    EBADSTATE), because those tell the person what to fix.                 */
#ifndef GW_ERRORS_H_INCLUDED
#define GW_ERRORS_H_INCLUDED

#include "cm_value.h"
#include "gw_route.h"

#include <jansson.h>
#include <stdbool.h>

#define GW_HTTP_ERRORS(X)                                                                   \
    X (BAD_REQUEST, "bad_request", 400, 0, "the request target is not a path")              \
    X (INVALID_IDEMPOTENCY_KEY, "invalid_idempotency_key", 400, 0,                          \
       "the Idempotency-Key header is empty, too long or not visible ASCII")                \
    X (INVALID_JSON, "invalid_json", 400, 0, "the body is not JSON, or nests too deep")     \
    X (INVALID_UTF8, "invalid_utf8", 400, 0, "a text field is not valid UTF-8")             \
    X (MISSING_BODY, "missing_body", 400, 0, "a JSON body is required and none came")       \
    X (INVALID_SESSION_ID, "invalid_session_id", 400, 0, "the session id in the path")      \
    X (INVALID_MESSAGE_ID, "invalid_message_id", 400, 0, "the message id in the path")      \
    X (INVALID_TASK_ID, "invalid_task_id", 400, 0, "the task id in the path")               \
    X (INVALID_VERSION, "invalid_version", 400, 0, "the version number in the path")        \
    X (NOT_ASSISTANT_MESSAGE, "not_assistant_message", 400, 0, "regenerate of a user turn") \
    X (UNAUTHORIZED, "unauthorized", 401, 0, "no, or a rejected, bearer token")             \
    X (FORBIDDEN, "forbidden", 403, 0, "an admin route, and the caller is no operator")   \
    X (NOT_FOUND, "not_found", 404, 0, "no such path or record, or not yours")              \
    X (VERSION_NOT_FOUND, "version_not_found", 404, 0, "the message has no such version")  \
    X (UNDO_EXPIRED, "undo_expired", 410, 0, "a restore after the undo window passed")      \
    X (METHOD_NOT_ALLOWED, "method_not_allowed", 405, 0, "known path, other method")        \
    X (CONFLICT, "conflict", 409, 0, "a regeneration of that message is running")           \
    X (INVALID_STATE, "invalid_state", 409, 0, "not allowed in the record's state")         \
    X (CANCELLED, "cancelled", 409, 0, "the task was cancelled")                            \
    X (PAYLOAD_TOO_LARGE, "payload_too_large", 413, 0, "the body is over the limit")        \
    X (UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type", 415, 0, "a body not JSON")         \
    X (INVALID_BODY, "invalid_body", 422, 0, "JSON that is not an object")                  \
    X (MISSING_FIELD, "missing_field", 422, 0, "a required field is absent or null")        \
    X (INVALID_FIELD, "invalid_field", 422, 0, "a field of the wrong type or value")        \
    X (EMPTY_FIELD, "empty_field", 422, 0, "a text field empty after trimming")             \
    X (FIELD_TOO_LONG, "field_too_long", 422, 0, "a text field over its limit")             \
    X (FIELD_OUT_OF_RANGE, "field_out_of_range", 422, 0, "a number outside its range")      \
    X (VALIDATION_ERROR, "validation_error", 422, 0, "the store found a field out of range") \
    X (IDEMPOTENCY_KEY_REUSED, "idempotency_key_reused", 422, 0,                            \
       "the Idempotency-Key was used for another request within 24 h")                      \
    X (RATE_LIMITED, "rate_limited", 429, 1, "too many actions; Retry-After says when")     \
    X (DATA_CORRUPTED, "data_corrupted", 500, 0, "a stored record failed its checksum")     \
    X (INTERNAL_ERROR, "internal_error", 503, 1, "the gateway is out of memory")            \
    X (BACKEND_UNAVAILABLE, "backend_unavailable", 503, 1, "a backend is not reachable")    \
    X (NOT_READY, "not_ready", 503, 1, "/readyz: a dependency is down")                     \
    X (TOO_MANY_STREAMS, "too_many_streams", 503, 5, "the SSE stream cap is reached")       \
    X (SHUTTING_DOWN, "shutting_down", 503, 1, "the gateway is stopping")                   \
    X (BACKEND_TIMEOUT, "backend_timeout", 504, 2, "a backend did not answer in time")     \
    X (INSUFFICIENT_STORAGE, "insufficient_storage", 507, 0, "the store's disk is full")

typedef enum {
    GW_E_NONE = 0,
#define X(name, code, status, retry, when) GW_E_##name,
    GW_HTTP_ERRORS (X)
#undef X
        GW_E_COUNT
} gw_http_error_t;

typedef struct {
    const char *code;   //  "invalid_json"; "" for GW_E_NONE
    int status;         //  400; 0 for GW_E_NONE
    int retry_after;    //  seconds, 0 = no Retry-After
    const char *when;   //  one line, for the OpenAPI document
} gw_http_error_info_t;

//  The row of one error (GW_E_NONE .. GW_E_COUNT-1); never NULL.
const gw_http_error_info_t *gw_http_error_info (gw_http_error_t error);

typedef struct {
    int status;
    const char *code;   //  snake_case, static (from GW_HTTP_ERRORS)
    char error[300];
    int retry_after;    //  seconds for Retry-After, 0 = no header
} gw_error_t;

//  Maps a CM_E* code from a store/broadcaster call made for `route`.
//  error_payload is the error reply's payload (may be NULL): its "message"
//  and "retry_after_ms" are used where they apply.
void gw_error_map (gw_route_id_t route, int code, const cm_value_t *error_payload,
                   gw_error_t *out);

//  True when a store/broadcaster failure `code` is the client's doing (it
//  maps to a 4xx): such failures are not counted as backend errors.
bool gw_error_is_client (int code);

//  {"success": false, "error": ..., "code": ...}; caller decrefs.
json_t *gw_error_body (const char *code, const char *error);

//  The reason phrase of an HTTP status the gateway or its vestibule
//  sends ("Status" for one it never sends).
const char *gw_http_reason (int status);

#endif
