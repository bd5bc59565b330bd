#include "gw_errors.h"

#include "cm_error.h"

#include <stdio.h>
#include <string.h>

static const gw_http_error_info_t s_errors[GW_E_COUNT] = {
    [GW_E_NONE] = {"", 0, 0, ""},
#define X(name, code, status, retry, when) [GW_E_##name] = {code, status, retry, when},
    GW_HTTP_ERRORS (X)
#undef X
};

const gw_http_error_info_t *
gw_http_error_info (gw_http_error_t error)
{
    if ((int) error < 0 || error >= GW_E_COUNT)
        error = GW_E_NONE;
    return &s_errors[error];
}

//  Store error -> client error. The first row whose code matches and whose
//  route is the call's (GW_R_NONE: any route) applies; a code in no row is
//  the backend's trouble: 503 backend_unavailable, retry.
typedef struct {
    int code;                //  CM_E*
    gw_route_id_t route;     //  GW_R_NONE: any
    gw_http_error_t error;
    bool store_sentence;     //  the store's "message" is about the request
    const char *sentence;    //  default; "%s" is the route's noun
} s_store_error_t;

static const s_store_error_t s_store_errors[] = {
    //  A restore says why nothing is there to restore (st_h_trash.h).
    {CM_ENOTFOUND, GW_R_MESSAGE_RESTORE, GW_E_NOT_FOUND, true,
     "No deleted message of yours has this id."},
    {CM_ENOTFOUND, GW_R_SESSION_RESTORE, GW_E_NOT_FOUND, true,
     "No deleted session of yours has this id."},
    {CM_EBADSTATE, GW_R_MESSAGE_RESTORE, GW_E_UNDO_EXPIRED, true,
     "The undo window has passed; the message is gone for good."},
    {CM_EBADSTATE, GW_R_SESSION_RESTORE, GW_E_UNDO_EXPIRED, true,
     "The undo window has passed; the session is gone for good."},
    //  Same answer for "missing" and "someone else's" (API.md).
    {CM_ENOTFOUND, GW_R_NONE, GW_E_NOT_FOUND, false, "No such %s, or it is not yours."},
    {CM_ENOVERSION, GW_R_VERSION_ACTIVATE, GW_E_VERSION_NOT_FOUND, false,
     "The message has no version of that number; version_count in GET /api/sessions/{id} "
     "says how many it has."},
    {CM_ENOVERSION, GW_R_FEEDBACK_PUT, GW_E_VERSION_NOT_FOUND, false,
     "The message has no version of that number; version_count in GET /api/sessions/{id} "
     "says how many it has."},
    {CM_ECONFLICT, GW_R_NONE, GW_E_CONFLICT, true,
     "A regeneration is already running for this message; wait for it to finish or cancel it."},
    //  API.md: regenerating a non-assistant message is a 400.
    {CM_EBADSTATE, GW_R_REGENERATE, GW_E_NOT_ASSISTANT_MESSAGE, true,
     "Only assistant messages can be regenerated."},
    {CM_EINVAL, GW_R_MESSAGE_CONTINUE, GW_E_NOT_ASSISTANT_MESSAGE, true,
     "Only assistant messages can be continued."},
    {CM_EBADSTATE, GW_R_NONE, GW_E_INVALID_STATE, true,
     "The operation is not allowed in the record's current state."},
    {CM_EINVAL, GW_R_REGENERATE, GW_E_NOT_ASSISTANT_MESSAGE, true,
     "Only assistant messages can be regenerated."},
    {CM_EINVAL, GW_R_NONE, GW_E_VALIDATION_ERROR, true, "A field of the request is out of range."},
    {CM_ERATELIMIT, GW_R_NONE, GW_E_RATE_LIMITED, false,
     "Too many actions in the last minute; retry after the time in Retry-After."},
    {CM_ETIMEOUT, GW_R_NONE, GW_E_BACKEND_TIMEOUT, false,
     "A backend service did not answer in time; please retry shortly."},
    {CM_ETOOBIG, GW_R_NONE, GW_E_PAYLOAD_TOO_LARGE, false, "The request is too large."},
    {CM_ECANCELLED, GW_R_NONE, GW_E_CANCELLED, false, "The task was cancelled."},
    {CM_EIDEMPOTENCY, GW_R_NONE, GW_E_IDEMPOTENCY_KEY_REUSED, true,
     "This Idempotency-Key was already used for another request; send a new key for a new "
     "action."},
    //  The store says which is full: its disk or its LMDB map.
    {CM_ENOSPC, GW_R_NONE, GW_E_INSUFFICIENT_STORAGE, true,
     "The store's disk is full, so this change was not saved; reads still work, and writes "
     "resume once the operator frees space."},
    //  Never the damaged bytes: only that they are damaged.
    {CM_ECORRUPT, GW_R_NONE, GW_E_DATA_CORRUPTED, false,
     "A stored record needed for this request is damaged (checksum mismatch) and was not "
     "served; the operator must restore it from a backup."},
};

static const s_store_error_t s_backend_down = {
    0, GW_R_NONE, GW_E_BACKEND_UNAVAILABLE, false,
    "A backend service is unavailable; please retry shortly."};

static const s_store_error_t *
s_store_error (gw_route_id_t route, int code)
{
    for (size_t i = 0; i < sizeof s_store_errors / sizeof s_store_errors[0]; i++) {
        const s_store_error_t *row = &s_store_errors[i];
        if (row->code == code && (row->route == GW_R_NONE || row->route == route))
            return row;
    }
    return &s_backend_down;
}

void
gw_error_map (gw_route_id_t route, int code, const cm_value_t *error_payload, gw_error_t *out)
{
    memset (out, 0, sizeof *out);
    const s_store_error_t *row = s_store_error (route, code);
    const gw_http_error_info_t *info = gw_http_error_info (row->error);
    out->status = info->status;
    out->code = info->code;
    out->retry_after = info->retry_after;
    //  The store's sentence when it gave one that reads like one.
    const char *message
        = row->store_sentence && error_payload ? cm_map_str (error_payload, "message") : NULL;
    if (message && *message && strlen (message) <= 280)
        snprintf (out->error, sizeof out->error, "%s", message);
    else if (strstr (row->sentence, "%s"))
        snprintf (out->error, sizeof out->error, row->sentence, gw_route_info (route)->noun);
    else
        snprintf (out->error, sizeof out->error, "%s", row->sentence);
    if (row->error == GW_E_RATE_LIMITED && error_payload) {
        int64_t ms = cm_map_int (error_payload, "retry_after_ms", 1000);
        int seconds = (int) ((ms + 999) / 1000);
        out->retry_after = seconds < 1 ? 1 : seconds;
    }
}

//  The first row of the code decides, whatever its route: a code only some
//  routes name (ENOVERSION) is still the client's on those.
bool
gw_error_is_client (int code)
{
    for (size_t i = 0; i < sizeof s_store_errors / sizeof s_store_errors[0]; i++)
        if (s_store_errors[i].code == code)
            return gw_http_error_info (s_store_errors[i].error)->status < 500;
    return false;
}

json_t *
gw_error_body (const char *code, const char *error)
{
    return json_pack ("{s:b, s:s, s:s}", "success", 0, "error", error, "code", code);
}

const char *
gw_http_reason (int status)
{
    switch (status) {
        case 200: return "OK";
        case 204: return "No Content";
        case 400: return "Bad Request";
        case 401: return "Unauthorized";
        case 403: return "Forbidden";
        case 404: return "Not Found";
        case 405: return "Method Not Allowed";
        case 408: return "Request Timeout";
        case 409: return "Conflict";
        case 410: return "Gone";
        case 413: return "Payload Too Large";
        case 415: return "Unsupported Media Type";
        case 422: return "Unprocessable Entity";
        case 429: return "Too Many Requests";
        case 431: return "Request Header Fields Too Large";
        case 500: return "Internal Server Error";
        case 501: return "Not Implemented";
        case 503: return "Service Unavailable";
        case 504: return "Gateway Timeout";
        case 505: return "HTTP Version Not Supported";
        case 507: return "Insufficient Storage";
        default: return "Status";
    }
}
