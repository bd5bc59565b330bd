/*  svc_api_util.h: helpers shared by the svc_api_*.c service tests of the
    HTTP API (docs/api.md): requests with status checks that say what came
    back, JSON field type checks, session/task helpers and a direct audit
    query to the store.

    Everything is static inline so each test binary takes what it uses
    (an unused static inline function draws no warning).                 */
#ifndef SVC_API_UTIL_H_INCLUDED
#define SVC_API_UTIL_H_INCLUDED

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "cm_codec.h"
#include "cm_error.h"
#include "cm_rpc.h"
#include "svc_harness.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

//  ---------------------------------------------------------------------------
//  Requests

//  Fails unless the answer *r to `method path` has status `want`.
static inline void
sa_want (const char *method, const char *path, long want, const svc_response_t *r)
{
    if (r->status == 0)
        fail_msg ("%s %s: no HTTP answer", method, path);
    if (r->status != want)
        fail_msg ("%s %s: status %ld, wanted %ld; body: %.400s", method, path, r->status, want,
                  r->body ? r->body : "");
}

//  One request that must answer `want`; the response is left in *r.
static inline void
sa_req_at (const char *base, const char *method, const char *path, const char *token,
           const char *body, const char *content_type, const char *extra, long want,
           svc_response_t *r)
{
    svc_http_at (base, method, path, token, body, content_type, extra, r);
    sa_want (method, path, want, r);
}

static inline void
sa_req (svc_mesh_t *mesh, const char *method, const char *path, const char *token,
        const char *body, long want, svc_response_t *r)
{
    sa_req_at (svc_mesh_url (mesh), method, path, token, body, NULL, NULL, want, r);
}

//  ---------------------------------------------------------------------------
//  JSON field checks: each fails the test, naming the field, when the field
//  is missing or of the wrong JSON type.

static inline json_t *
sa_get (const json_t *object, const char *key)
{
    if (!json_is_object (object))
        fail_msg ("looking for '%s' in something that is not a JSON object", key);
    json_t *value = json_object_get (object, key);
    if (!value)
        fail_msg ("field '%s' is missing", key);
    return value;
}

static inline const char *
sa_str (const json_t *object, const char *key)
{
    json_t *value = sa_get (object, key);
    if (!json_is_string (value))
        fail_msg ("field '%s' is not a string", key);
    return json_string_value (value);
}

static inline json_int_t
sa_int (const json_t *object, const char *key)
{
    json_t *value = sa_get (object, key);
    if (!json_is_integer (value))
        fail_msg ("field '%s' is not an integer", key);
    return json_integer_value (value);
}

static inline double
sa_num (const json_t *object, const char *key)
{
    json_t *value = sa_get (object, key);
    if (!json_is_number (value))
        fail_msg ("field '%s' is not a number", key);
    return json_number_value (value);
}

static inline bool
sa_bool (const json_t *object, const char *key)
{
    json_t *value = sa_get (object, key);
    if (!json_is_boolean (value))
        fail_msg ("field '%s' is not a boolean", key);
    return json_is_true (value);
}

static inline json_t *
sa_obj (const json_t *object, const char *key)
{
    json_t *value = sa_get (object, key);
    if (!json_is_object (value))
        fail_msg ("field '%s' is not an object", key);
    return value;
}

static inline json_t *
sa_arr (const json_t *object, const char *key)
{
    json_t *value = sa_get (object, key);
    if (!json_is_array (value))
        fail_msg ("field '%s' is not an array", key);
    return value;
}

static inline void
sa_null (const json_t *object, const char *key)
{
    if (!json_is_null (sa_get (object, key)))
        fail_msg ("field '%s' should be null", key);
}

//  "2026-11-25T10:00:00.123Z": ISO-8601 UTC with milliseconds.
static inline bool
sa_is_iso_ms (const char *text)
{
    static const char shape[] = "dddd-dd-ddTdd:dd:dd.dddZ";
    if (!text || strlen (text) != sizeof shape - 1)
        return false;
    for (size_t i = 0; shape[i]; i++)
        if (shape[i] == 'd' ? !isdigit ((unsigned char) text[i]) : text[i] != shape[i])
            return false;
    return true;
}

static inline const char *
sa_iso (const json_t *object, const char *key)
{
    const char *text = sa_str (object, key);
    if (!sa_is_iso_ms (text))
        fail_msg ("field '%s' = '%s' is not ISO-8601 UTC with milliseconds", key, text ? text : "(absent)");
    return text;
}

//  An ISO timestamp or null (e.g. started_at of a pending task).
static inline const char *
sa_iso_or_null (const json_t *object, const char *key)
{
    json_t *value = sa_get (object, key);
    if (json_is_null (value))
        return NULL;
    return sa_iso (object, key);
}

static inline bool
sa_prefix (const char *text, const char *prefix)
{
    return text && strncmp (text, prefix, strlen (prefix)) == 0;
}

//  {"success": true, ...}
static inline void
sa_success (const svc_response_t *r)
{
    if (!json_is_object (r->json))
        fail_msg ("body is not a JSON object: %.300s", r->body ? r->body : "");
    if (!sa_bool (r->json, "success"))
        fail_msg ("success is not true: %.300s", r->body);
}

//  {"success": false, "error": "<sentence>", "code": code} with `status`;
//  code NULL: any snake_case code.
static inline void
sa_error (const svc_response_t *r, long status, const char *code)
{
    if (r->status != status)
        fail_msg ("status %ld, wanted %ld; body: %.300s", r->status, status,
                  r->body ? r->body : "");
    if (!json_is_object (r->json))
        fail_msg ("error body is not JSON: %.300s", r->body ? r->body : "");
    if (sa_bool (r->json, "success"))
        fail_msg ("an error says success: true");
    const char *error = sa_str (r->json, "error");
    if (strlen (error) < 10)
        fail_msg ("error sentence too short: '%s'", error);
    const char *got = sa_str (r->json, "code");
    for (const char *p = got; *p; p++)
        if (!(islower ((unsigned char) *p) || *p == '_' || isdigit ((unsigned char) *p)))
            fail_msg ("code '%s' is not snake_case", got);
    if (code && strcmp (got, code) != 0)
        fail_msg ("code '%s', wanted '%s' (error: %s)", got, code, error);
    char type[128];
    if (svc_response_header (r, "Content-Type", type, sizeof type) || !strstr (type, "json"))
        fail_msg ("an error is not sent as JSON");
}

//  Error whose sentence names `field`.
static inline void
sa_error_field (const svc_response_t *r, long status, const char *code, const char *field)
{
    sa_error (r, status, code);
    char quoted[80];
    snprintf (quoted, sizeof quoted, "'%s'", field);
    if (!strstr (sa_str (r->json, "error"), quoted))
        fail_msg ("error '%s' does not name the field %s", sa_str (r->json, "error"), quoted);
}

//  Retry-After as seconds (> 0), or fails.
static inline int
sa_retry_after (const svc_response_t *r)
{
    char value[32];
    if (svc_response_header (r, "Retry-After", value, sizeof value))
        fail_msg ("no Retry-After header (status %ld)", r->status);
    char *end = NULL;
    long seconds = strtol (value, &end, 10);
    if (end == value || *end || seconds <= 0)
        fail_msg ("Retry-After '%s' is not a positive number of seconds", value);
    return (int) seconds;
}

//  ---------------------------------------------------------------------------
//  Sessions and tasks

typedef struct {
    char user_id[400];
    char assistant_id[400];
    char task_id[80];
} sa_turn_t;

//  POST /api/run_sse/{session}: one user turn. Checks the documented shape.
static inline void
sa_turn_at (const char *base, const char *token, const char *session, const char *query,
            sa_turn_t *turn)
{
    char path[300];
    snprintf (path, sizeof path, "/api/run_sse/%s", session);
    svc_response_t r;
    svc_turn_at (base, token, session, query, &r);
    sa_want ("POST", path, 200, &r);
    sa_success (&r);
    json_t *data = sa_obj (r.json, "data");
    assert_string_equal (sa_str (data, "session_id"), session);
    snprintf (turn->user_id, sizeof turn->user_id, "%s", sa_str (data, "user_message_id"));
    snprintf (turn->assistant_id, sizeof turn->assistant_id, "%s",
              sa_str (data, "assistant_message_id"));
    snprintf (turn->task_id, sizeof turn->task_id, "%s", sa_str (data, "task_id"));
    char tail[300];
    snprintf (tail, sizeof tail, "_%s_user", session);
    assert_true (sa_prefix (turn->user_id, "msg_"));
    assert_non_null (strstr (turn->user_id, tail));
    snprintf (tail, sizeof tail, "_%s_assistant", session);
    assert_true (sa_prefix (turn->assistant_id, "msg_"));
    assert_non_null (strstr (turn->assistant_id, tail));
    assert_true (sa_prefix (turn->task_id, "regen_"));
    svc_response_free (&r);
}

static inline void
sa_turn (svc_mesh_t *mesh, const char *token, const char *session, const char *query,
         sa_turn_t *turn)
{
    sa_turn_at (svc_mesh_url (mesh), token, session, query, turn);
}

//  The documented shape of a task status body (status and cancel).
static inline void
sa_task_shape (const json_t *task)
{
    sa_str (task, "task_id");
    const char *status = sa_str (task, "status");
    if (strcmp (status, "pending") && strcmp (status, "in_progress")
        && strcmp (status, "completed") && strcmp (status, "failed"))
        fail_msg ("task status '%s' is not one of the documented four", status);
    json_int_t progress = sa_int (task, "progress");
    if (progress < 0 || progress > 100)
        fail_msg ("task progress %lld", (long long) progress);
    assert_true (sa_prefix (sa_str (task, "message_id"), "msg_"));
    sa_str (task, "session_id");
    sa_iso (task, "created_at");
    sa_iso_or_null (task, "started_at");
    sa_iso_or_null (task, "completed_at");
    json_t *error = sa_get (task, "error_message");
    if (!json_is_null (error) && !json_is_string (error))
        fail_msg ("error_message is neither null nor a string");
    sa_iso (task, "timestamp");
}

//  Polls GET /api/messages/tasks/{id}/status until status is `want` (or the
//  task ended otherwise, or timeout_ms passed). Returns the last status
//  body (caller decrefs); fails when `want` was not reached. Each poll
//  checks the documented shape.
static inline json_t *
sa_wait_task (svc_mesh_t *mesh, const char *token, const char *task_id, const char *want,
              int timeout_ms)
{
    char path[200];
    snprintf (path, sizeof path, "/api/messages/tasks/%s/status", task_id);
    for (int waited = 0;; waited += 20) {
        svc_response_t r;
        sa_req (mesh, "GET", path, token, NULL, 200, &r);
        sa_success (&r);
        sa_task_shape (r.json);
        const char *status = sa_str (r.json, "status");
        if (strcmp (status, want) == 0) {
            json_t *json = json_incref (r.json);
            svc_response_free (&r);
            return json;
        }
        bool ended = strcmp (status, "completed") == 0 || strcmp (status, "failed") == 0;
        if (ended || waited >= timeout_ms)
            fail_msg ("task %s is '%s' (wanted '%s'): %.300s", task_id, status, want, r.body);
        svc_response_free (&r);
        usleep (20000);
    }
}

//  ---------------------------------------------------------------------------
//  Direct store access (link proto): audit_query as `user`.

//  The ok payload of the store's answer (caller destroys), or NULL with the
//  CM_E* code in *code.
static inline cm_value_t *
sa_audit_query (svc_mesh_t *mesh, const char *user, const char *session_id, int *code)
{
    char endpoint[400];
    snprintf (endpoint, sizeof endpoint, "ipc://%s/sock/store", svc_mesh_dir (mesh));
    zsock_t *dealer = cm_dealer_new (endpoint);
    assert_non_null (dealer);
    //  ZMQ_IMMEDIATE: wait until the pipe to the store exists.
    zmq_pollitem_t item = {zsock_resolve (dealer), 0, ZMQ_POLLOUT, 0};
    assert_true (zmq_poll (&item, 1, 5000) > 0);
    cm_envelope_t *request = cm_envelope_new (CM_MSG_AUDIT_QUERY, NULL);
    assert_non_null (request);
    cm_request_id (request->request_id, sizeof request->request_id);
    cm_map_set_str (request->payload, "user", user);
    if (session_id)
        cm_map_set_str (request->payload, "session_id", session_id);
    cm_map_set_int (request->payload, "limit", 1000);
    cm_envelope_t *reply = NULL;
    *code = cm_call (dealer, request, 5000, &reply);
    cm_value_t *ok = NULL;
    if (*code == 0) {
        ok = reply->payload;
        reply->payload = NULL;
    }
    cm_envelope_destroy (&reply);
    cm_envelope_destroy (&request);
    zsock_destroy (&dealer);
    return ok;
}

#endif
