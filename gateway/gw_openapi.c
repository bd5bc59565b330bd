#include "gw_openapi.h"

#include "gw_admin.h"

#include "cm_error.h"
#include "cm_event.h"
#include "gw_errors.h"
#include "gw_idem.h"
#include "gw_manage.h"
#include "gw_openapi_bodies.h"
#include "gw_route.h"
#include "gw_validate.h"

#include <stdio.h>
#include <string.h>

//  A title (gw_validate_rename): no control character, and something
//  besides spaces.
#define S_TITLE_PATTERN                                                                          \
    "^[^\\u0000-\\u001f\\u007f]*[^\\u0000-\\u001f\\u007f ][^\\u0000-\\u001f\\u007f]*$"

static const int s_store_codes[] = {
#define X(name, code, text) CM_##name,
    CM_ERRORS (X)
#undef X
};

//  The routes whose 200 may be an event stream.
static bool
s_streams (gw_route_id_t route)
{
    return route == GW_R_RUN_SSE_GET || route == GW_R_RUN_SSE_POST;
}

//  True when `error` can answer `route`: derived from the route's row
//  (path ids, auth, body, store request) and, for store failures, from
//  gw_error_map itself.
static bool
s_applies (gw_route_id_t route, gw_http_error_t error)
{
    const gw_route_info_t *info = gw_route_info (route);
    switch (error) {
        case GW_E_METHOD_NOT_ALLOWED:
        case GW_E_INTERNAL_ERROR:
            return true;
        case GW_E_BAD_REQUEST: //  a target that is no path has no route
            return false;
        case GW_E_INVALID_IDEMPOTENCY_KEY:
        case GW_E_IDEMPOTENCY_KEY_REUSED:
            return info->limited;
        case GW_E_INVALID_SESSION_ID:
            return strstr (info->pattern, "{session_id}") != NULL;
        case GW_E_INVALID_MESSAGE_ID:
            return strstr (info->pattern, "{message_id}") != NULL;
        case GW_E_INVALID_TASK_ID:
            return strstr (info->pattern, "{task_id}") != NULL;
        case GW_E_INVALID_VERSION:
            return strstr (info->pattern, "{version}") != NULL;
        case GW_E_UNAUTHORIZED:
            return info->auth;
        case GW_E_FORBIDDEN:
            return gw_route_admin (route);
        case GW_E_MISSING_BODY:
            return info->body == GW_BODY_REQUIRED;
        case GW_E_INVALID_JSON:
        case GW_E_UNSUPPORTED_MEDIA_TYPE:
        case GW_E_INVALID_BODY:
        case GW_E_INVALID_UTF8:
        case GW_E_MISSING_FIELD:
        case GW_E_EMPTY_FIELD:
        case GW_E_FIELD_TOO_LONG:
            return info->body != GW_BODY_NONE;
        case GW_E_INVALID_FIELD:
        case GW_E_FIELD_OUT_OF_RANGE:
            //  The admin routes' query parameters (gw_admin_query).
            return info->body != GW_BODY_NONE || gw_route_admin (route)
                   || gw_manage_params (route, &(size_t) {0});
        case GW_E_PAYLOAD_TOO_LARGE:
            if (info->body != GW_BODY_NONE)
                return true;
            break;
        case GW_E_NOT_FOUND:
            if (route == GW_R_STATIC)
                return true;
            break;
        case GW_E_NOT_READY:
            return route == GW_R_READYZ;
        case GW_E_TOO_MANY_STREAMS:
        case GW_E_SHUTTING_DOWN:
            return s_streams (route);
        default:
            break;
    }
    if (info->message == CM_MSG_NONE)
        return false;
    const gw_http_error_info_t *want = gw_http_error_info (error);
    for (size_t i = 0; i < sizeof s_store_codes / sizeof s_store_codes[0]; i++) {
        gw_error_t mapped;
        gw_error_map (route, s_store_codes[i], NULL, &mapped);
        if (mapped.code == want->code)
            return true;
    }
    return false;
}

static json_t *
s_ref (const char *name)
{
    char ref[128];
    snprintf (ref, sizeof ref, "#/components/schemas/%s", name);
    return json_pack ("{s:s}", "$ref", ref);
}

//  The error responses of one route: one per status, its schema naming
//  exactly the codes that status can carry here.
static int
s_error_responses (gw_route_id_t route, json_t *responses)
{
    for (int status = 400; status < 600; status++) {
        json_t *codes = json_array ();
        char description[1024] = "";
        bool retry = false;
        for (int e = GW_E_NONE + 1; e < GW_E_COUNT; e++) {
            const gw_http_error_info_t *info = gw_http_error_info ((gw_http_error_t) e);
            if (info->status != status || !s_applies (route, (gw_http_error_t) e))
                continue;
            json_array_append_new (codes, json_string (info->code));
            size_t used = strlen (description);
            snprintf (description + used, sizeof description - used, "%s%s: %s",
                      used ? "; " : "", info->code, info->when);
            retry |= info->retry_after > 0;
        }
        if (json_array_size (codes) == 0) {
            json_decref (codes);
            continue;
        }
        json_t *schema = json_pack (
            "{s:s, s:[s,s,s], s:{s:{s:s, s:[b]}, s:{s:s}, s:{s:s, s:o}}, s:b}", "type", "object",
            "required", "success", "error", "code", "properties", "success", "type", "boolean",
            "enum", 0, "error", "type", "string", "code", "type", "string", "enum", codes,
            "additionalProperties", 0);
        if (schema && route == GW_R_READYZ && status == 503
            && gw_openapi_bodies_ready_error (schema)) {
            json_decref (schema);
            return -1;
        }
        json_t *response = json_pack ("{s:s, s:{s:{s:o}}}", "description", description,
                                      "content", "application/json", "schema", schema);
        json_t *headers = json_object ();
        if (status == 405)
            json_object_set_new (headers, "Allow",
                                 json_pack ("{s:s, s:{s:s}}", "description",
                                            "the methods of this path", "schema", "type",
                                            "string"));
        if (retry)
            json_object_set_new (headers, "Retry-After",
                                 json_pack ("{s:s, s:{s:s}}", "description",
                                            "seconds to wait before retrying", "schema", "type",
                                            "integer"));
        if (json_object_size (headers))
            json_object_set_new (response, "headers", headers);
        else
            json_decref (headers);
        char key[8];
        snprintf (key, sizeof key, "%d", status);
        if (!response || json_object_set_new (responses, key, response))
            return -1;
    }
    return 0;
}

static json_t *
s_id_parameter (const char *name, const char *pattern, int max, const char *description)
{
    return json_pack ("{s:s, s:s, s:b, s:{s:s, s:i, s:i, s:s}, s:s}", "name", name, "in", "path",
                      "required", 1, "schema", "type", "string", "minLength", 1, "maxLength", max,
                      "pattern", pattern, "description", description);
}

static json_t *
s_parameters (gw_route_id_t route)
{
    const gw_route_info_t *info = gw_route_info (route);
    json_t *parameters = json_array ();
    if (strstr (info->pattern, "{session_id}"))
        json_array_append_new (parameters,
                               s_id_parameter ("session_id", GW_SESSION_ID_PATTERN,
                                               CM_SESSION_ID_MAX, "A-Z, a-z, 0-9, '_', '-'"));
    bool answers = route == GW_R_REGENERATE || route == GW_R_MESSAGE_CONTINUE;
    if (strstr (info->pattern, "{message_id}"))
        json_array_append_new (
            parameters,
            s_id_parameter ("message_id", answers ? GW_ANSWER_ID_PATTERN : GW_MESSAGE_ID_PATTERN,
                            CM_MESSAGE_ID_MAX,
                            answers ? "msg_{uuid}_{session_id}_assistant (an answer's; another "
                                      "role: 400 not_assistant_message)"
                                    : "msg_{uuid}_{session_id}_{role}"));
    if (strstr (info->pattern, "{task_id}"))
        json_array_append_new (parameters,
                               s_id_parameter ("task_id", GW_TASK_ID_PATTERN, CM_TASK_ID_MAX,
                                               "regen_{uuid}"));
    if (info->limited)
        json_array_append_new (
            parameters,
            json_pack ("{s:s, s:s, s:b, s:{s:s, s:i, s:i, s:s}, s:s}", "name", GW_IDEM_HEADER,
                       "in", "header", "required", 0, "schema", "type", "string", "minLength", 1,
                       "maxLength", CM_IDEM_KEY_MAX, "pattern", "^[!-~]+$", "description",
                       "One per user action (e.g. a UUID): a retry with the same key and "
                       "request within 24 h answers the first response and has no second "
                       "effect; the same key with another request is 422 "
                       "idempotency_key_reused."));
    if (strstr (info->pattern, "{version}"))
        json_array_append_new (parameters,
                               json_pack ("{s:s, s:s, s:b, s:{s:s, s:i, s:i}, s:s}", "name",
                                          "version", "in", "path", "required", 1, "schema", "type",
                                          "integer", "minimum", 1, "maximum", CM_VERSIONS_MAX,
                                          "description", "1-based: version_ids[version - 1]"));
    size_t count;
    const gw_admin_param_t *params = gw_admin_params (route, &count);
    if (!params)
        params = gw_manage_params (route, &count);
    for (size_t i = 0; i < count; i++) {
        json_t *schema = json_pack ("{s:s}", "type", params[i].type);
        bool text = strcmp (params[i].type, "string") == 0;
        if (params[i].maximum && text) {
            json_object_set_new (schema, "minLength", json_integer (1));
            json_object_set_new (schema, "maxLength", json_integer (params[i].maximum));
        } else if (params[i].maximum) {
            json_object_set_new (schema, "minimum", json_integer (params[i].minimum));
            json_object_set_new (schema, "maximum", json_integer (params[i].maximum));
        }
        if (params[i].pattern)
            json_object_set_new (schema, "pattern", json_string (params[i].pattern));
        json_array_append_new (parameters,
                               json_pack ("{s:s, s:s, s:b, s:o, s:s}", "name", params[i].name,
                                          "in", "query", "required", 0, "schema", schema,
                                          "description", params[i].description));
    }
    if (route == GW_R_RUN_SSE_GET) {
        json_array_append_new (parameters,
                               json_pack ("{s:s, s:s, s:b, s:{s:s}}", "name", "access_token", "in",
                                          "query", "required", 0, "schema", "type", "string"));
        json_array_append_new (parameters,
                               json_pack ("{s:s, s:s, s:b, s:{s:s}}", "name", "last_event_id",
                                          "in", "query", "required", 0, "schema", "type",
                                          "string"));
        json_array_append_new (parameters,
                               json_pack ("{s:s, s:s, s:b, s:{s:s}}", "name", "Last-Event-ID",
                                          "in", "header", "required", 0, "schema", "type",
                                          "string"));
    }
    return parameters;
}

//  The body schema of a validator (components/schemas), or NULL.
static const char *
s_body_schema (const gw_route_info_t *info)
{
    if (info->validate == gw_validate_run_sse)
        return "Query";
    if (info->validate == gw_validate_regenerate)
        return "Regenerate";
    if (info->validate == gw_validate_edit)
        return "Edit";
    if (info->validate == gw_validate_feedback)
        return "Feedback";
    if (info->validate == gw_validate_rename)
        return "Rename";
    return NULL;
}

static json_t *
s_events_ref (void)
{
    json_t *events = json_object ();
    for (int e = CM_EVENT_NONE + 1; e < CM_EVENT_COUNT; e++) {
        if (!cm_event_for_clients ((cm_event_t) e))
            continue;
        char name[96];
        snprintf (name, sizeof name, "Event_%s", cm_event_name ((cm_event_t) e));
        json_object_set_new (events, cm_event_name ((cm_event_t) e), s_ref (name));
    }
    return events;
}

static json_t *
s_success_response (gw_route_id_t route)
{
    const gw_route_info_t *info = gw_route_info (route);
    json_t *content = json_object ();
    const char *body = gw_openapi_body_200 (route);
    const char *text = route == GW_R_METRICS ? "text/plain"
                       : route == GW_R_STATIC  ? "text/html"
                                               : NULL;
    if (text)
        json_object_set_new (content, text, json_pack ("{s:{s:s}}", "schema", "type", "string"));
    else if (body)
        json_object_set_new (content, "application/json",
                             json_pack ("{s:o}", "schema", s_ref (body)));
    const char *line = gw_openapi_body_ndjson_line (route);
    if (line)
        json_object_set_new (content, "application/x-ndjson",
                             json_pack ("{s:{s:s, s:s}, s:o}", "schema", "type", "string",
                                        "description",
                                        "one audit entry (JSON object) per line, newest first",
                                        "x-chatmesh-line", s_ref (line)));
    if (s_streams (route))
        json_object_set_new (content, "text/event-stream",
                             json_pack ("{s:{s:s, s:s, s:{s:{s:s}, s:{s:s}, s:{s:s}, s:{s:s}}},"
                                        " s:o}",
                                        "schema", "type", "object", "description",
                                        "one event of the stream (event, data, id, retry); "
                                        "x-chatmesh-events: the schema of each event's data",
                                        "properties", "event", "type", "string", "data", "type",
                                        "string", "id", "type", "string", "retry", "type",
                                        "string", "x-chatmesh-events", s_events_ref ()));
    return json_pack ("{s:s, s:o}", "description", info->reply, "content", content);
}

static json_t *
s_operation (gw_route_id_t route)
{
    const gw_route_info_t *info = gw_route_info (route);
    json_t *responses = json_object ();
    json_object_set_new (responses, "200", s_success_response (route));
    if (s_error_responses (route, responses)) {
        json_decref (responses);
        return NULL;
    }
    json_t *op = json_pack ("{s:s, s:s, s:o, s:o}", "summary", info->summary, "operationId",
                            info->name, "parameters", s_parameters (route), "responses",
                            responses);
    const char *body = s_body_schema (info);
    if (op && body)
        json_object_set_new (op, "requestBody",
                             json_pack ("{s:b, s:{s:{s:o}}}", "required",
                                        info->body == GW_BODY_REQUIRED, "content",
                                        "application/json", "schema", s_ref (body)));
    if (op && !info->auth)
        json_object_set_new (op, "security", json_array ());
    else if (op && route == GW_R_RUN_SSE_GET)
        json_object_set_new (op, "security",
                             json_pack ("[{s:[]}, {s:[]}]", "bearer", "query"));
    return op;
}

static json_t *
s_components (void)
{
    json_t *codes = json_array ();
    for (int e = GW_E_NONE + 1; e < GW_E_COUNT; e++)
        json_array_append_new (codes, json_string (gw_http_error_info ((gw_http_error_t) e)->code));
    json_t *temperature = json_pack ("{s:s, s:i, s:i}", "type", "number", "minimum", 0,
                                     "maximum", 2);
    json_t *schemas = json_pack (
        "{s:{s:s, s:[s,s,s], s:{s:{s:s, s:[b]}, s:{s:s}, s:{s:s, s:o}}, s:b},"
        " s:{s:s, s:[s], s:{s:{s:s, s:i, s:s}, s:{s:s}, s:O}},"
        " s:{s:s, s:{s:{s:s}, s:{s:s}, s:O}},"
        " s:{s:s, s:[s], s:{s:{s:s, s:i}, s:{s:s, s:b}}},"
        " s:{s:s, s:[s], s:{s:{s:s, s:[s,s]}, s:{s:s, s:i}, s:{s:s}}}}",
        "Error", "type", "object", "required", "success", "error", "code", "properties",
        "success", "type", "boolean", "enum", 0, "error", "type", "string", "code", "type",
        "string", "enum", codes, "additionalProperties", 0,
        "Query", "type", "object", "required", "query", "properties", "query", "type", "string",
        "minLength", 1, "description",
        "1..CHAT_ACTIONS_MAX_CONTENT_LENGTH characters after trimming", "model", "type",
        "string", "temperature", temperature,
        "Regenerate", "type", "object", "properties", "context", "type", "string", "model",
        "type", "string", "temperature", temperature,
        "Edit", "type", "object", "required", "content", "properties", "content", "type",
        "string", "minLength", 1, "trigger_regeneration", "type", "boolean", "default", 1,
        "Feedback", "type", "object", "required", "feedback_type", "properties",
        "feedback_type", "type", "string", "enum", "upvote", "downvote", "reason", "type",
        "string", "maxLength", GW_REASON_MAX_CHARS, "metadata", "type", "object");
    //  How a regenerated answer should differ from the one it replaces.
    json_object_set_new (
        json_object_get (json_object_get (schemas, "Regenerate"), "properties"), "instruction",
        json_pack ("{s:s, s:s}", "type", "string", "description",
                   "how the new answer should differ (\"shorter\", \"more detail\", free "
                   "text): passed to the model; up to CHAT_ACTIONS_MAX_CONTENT_LENGTH "
                   "characters after trimming"));
    //  The version a vote is on (default: the one the message shows).
    json_object_set_new (
        json_object_get (json_object_get (schemas, "Feedback"), "properties"), "version",
        json_pack ("{s:s, s:i, s:i}", "type", "integer", "minimum", 1, "maximum",
                   CM_VERSIONS_MAX));
    json_decref (temperature);
    if (schemas)
        json_object_set_new (schemas, "Rename",
                             json_pack ("{s:s, s:[s], s:{s:{s:s, s:i, s:i, s:s}}}", "type",
                                        "object", "required", "title", "properties", "title",
                                        "type", "string", "minLength", 1, "maxLength",
                                        GW_TITLE_MAX_CHARS, "pattern", S_TITLE_PATTERN));
    if (!schemas)
        return NULL;
    //  A question or an edit is text with something besides the spaces
    //  gw_validate trims (an unanchored pattern: a character not one of them).
    const struct {
        const char *schema, *field;
    } texts[] = {{"Query", "query"}, {"Edit", "content"}};
    for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++) {
        json_t *field = json_object_get (
            json_object_get (json_object_get (schemas, texts[i].schema), "properties"),
            texts[i].field);
        if (field)
            json_object_set_new (field, "pattern", json_string ("[^ \\t\\n\\r\\v\\f]"));
    }
    //  A model name is 1..GW_MODEL_MAX_CHARS code points wherever it is taken.
    const char *with_model[] = {"Query", "Regenerate"};
    for (size_t i = 0; i < sizeof with_model / sizeof with_model[0]; i++)
        json_object_set_new (
            json_object_get (json_object_get (schemas, with_model[i]), "properties"), "model",
            json_pack ("{s:s, s:i, s:i}", "type", "string", "minLength", 1, "maxLength",
                       GW_MODEL_MAX_CHARS));
    //  The gateway reads an optional field sent as null as one not sent
    //  (gw_validate.c), so the document says so: otherwise such a request
    //  is one the schema refuses and the gateway accepts.
    const char *bodies[] = {"Query", "Regenerate", "Edit", "Feedback"};
    for (size_t i = 0; i < sizeof bodies / sizeof bodies[0]; i++) {
        json_t *body = json_object_get (schemas, bodies[i]);
        json_t *required = json_object_get (body, "required");
        const char *name;
        json_t *property;
        json_object_foreach (json_object_get (body, "properties"), name, property) {
            bool is_required = false;
            size_t at;
            json_t *item;
            json_array_foreach (required, at, item)
                is_required |= strcmp (json_string_value (item), name) == 0;
            if (!is_required)
                json_object_set_new (property, "nullable", json_true ());
        }
    }
    if (gw_openapi_bodies_add (schemas)) {
        json_decref (schemas);
        return NULL;
    }
    return json_pack ("{s:{s:{s:s, s:s, s:s}, s:{s:s, s:s, s:s}}, s:o}", "securitySchemes",
                      "bearer", "type", "http", "scheme", "bearer", "bearerFormat", "JWT", "query",
                      "type", "apiKey", "in", "query", "name", "access_token", "schemas", schemas);
}

json_t *
gw_openapi_build (void)
{
    json_t *paths = json_object ();
    for (int r = GW_R_NONE + 1; r < GW_R_COUNT && paths; r++) {
        const gw_route_info_t *info = gw_route_info ((gw_route_id_t) r);
        if (r == GW_R_PREFLIGHT)
            continue; //  OPTIONS is CORS, not an operation
        json_t *item = json_object_get (paths, info->pattern);
        if (!item) {
            item = json_object ();
            json_object_set_new (paths, info->pattern, item);
        }
        char method[16];
        size_t i = 0;
        for (; info->method[i] && i + 1 < sizeof method; i++)
            method[i] = (char) (info->method[i] | 0x20); //  "GET" -> "get"
        method[i] = 0;
        json_t *op = s_operation ((gw_route_id_t) r);
        if (!op || json_object_set_new (item, method, op)) {
            json_decref (paths);
            return NULL;
        }
    }
    json_t *components = s_components ();
    if (!paths || !components) {
        json_decref (paths);
        json_decref (components);
        return NULL;
    }
    return json_pack (
        "{s:s, s:{s:s, s:s, s:s}, s:o, s:[{s:[]}], s:o}", "openapi", "3.0.3", "info", "title",
        "chatmesh gateway", "version", "1.0.0", "description",
        "Message actions (regenerate, edit, delete, vote) over HTTP JSON and SSE. Errors are "
        "{success: false, error, code}. Auth: Authorization: Bearer <HS256 JWT, sub = user>; "
        "GET /api/run_sse also takes ?access_token=. Reconnect with Last-Event-ID (or "
        "?last_event_id=).",
        "components", components, "security", "bearer", "paths", paths);
}
