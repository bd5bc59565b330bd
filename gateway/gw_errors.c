#include "gw_errors.h"

#include "cm_error.h"

#include <stdio.h>
#include <string.h>

static void
s_set (gw_error_t *out, int status, const char *code, const char *error, int retry_after)
{
    out->status = status;
    out->code = code;
    snprintf (out->error, sizeof out->error, "%s", error);
    out->retry_after = retry_after;
}

//  The store's sentence when it gave one that reads like one, else dflt.
static const char *
s_message (const cm_value_t *payload, const char *dflt)
{
    const char *message = payload ? cm_map_str (payload, "message") : NULL;
    if (!message || !*message || strlen (message) > 280)
        return dflt;
    return message;
}

void
gw_error_map (gw_route_id_t route, int code, const cm_value_t *error_payload, gw_error_t *out)
{
    memset (out, 0, sizeof *out);
    switch (code) {
        case CM_ENOTFOUND:
            //  Same answer for "missing" and "someone else's" (API.md).
            s_set (out, 404, "not_found",
                   route == GW_R_TASK_STATUS || route == GW_R_TASK_CANCEL
                       ? "No such task, or it is not yours."
                   : route == GW_R_SESSION_GET || route == GW_R_ANALYTICS
                           || route == GW_R_RUN_SSE_GET || route == GW_R_RUN_SSE_POST
                       ? "No such session, or it is not yours."
                       : "No such message, or it is not yours.",
                   0);
            return;
        case CM_ECONFLICT:
            s_set (out, 409, "conflict",
                   s_message (error_payload,
                              "A regeneration is already running for this message; wait for "
                              "it to finish or cancel it."),
                   0);
            return;
        case CM_EBADSTATE:
            if (route == GW_R_REGENERATE)
                s_set (out, 400, "not_assistant_message",
                       s_message (error_payload, "Only assistant messages can be regenerated."),
                       0);
            else
                s_set (out, 409, "invalid_state",
                       s_message (error_payload,
                                  "The operation is not allowed in the record's current state."),
                       0);
            return;
        case CM_EINVAL:
            //  API.md: regenerating a non-assistant message is a 400.
            if (route == GW_R_REGENERATE)
                s_set (out, 400, "not_assistant_message",
                       s_message (error_payload, "Only assistant messages can be regenerated."),
                       0);
            else
                s_set (out, 422, "validation_error",
                       s_message (error_payload, "A field of the request is out of range."), 0);
            return;
        case CM_ERATELIMIT: {
            int64_t ms = error_payload ? cm_map_int (error_payload, "retry_after_ms", 1000) : 1000;
            int seconds = (int) ((ms + 999) / 1000);
            if (seconds < 1)
                seconds = 1;
            s_set (out, 429, "rate_limited",
                   "Too many actions in the last minute; retry after the time in Retry-After.",
                   seconds);
            return;
        }
        case CM_ETIMEOUT:
            s_set (out, 504, "backend_timeout",
                   "A backend service did not answer in time; please retry shortly.", 2);
            return;
        case CM_ETOOBIG:
            s_set (out, 413, "payload_too_large", "The request is too large.", 0);
            return;
        case CM_ECANCELLED:
            s_set (out, 409, "cancelled", "The task was cancelled.", 0);
            return;
        default:
            //  EBACKEND, EDB, EPROTO, ENOMEM, EIO...: the client can only retry.
            s_set (out, 503, "backend_unavailable",
                   "A backend service is unavailable; please retry shortly.", 1);
            return;
    }
}

json_t *
gw_error_body (const char *code, const char *error)
{
    return json_pack ("{s:b, s:s, s:s}", "success", 0, "error", error, "code", code);
}
