/*  test_gw_openapi: the served OpenAPI document is complete and agrees with
    the tables: every route has an operation, every id parameter a pattern
    that accepts exactly what the router accepts, every error response
    names codes of the error table with their status, every stream event a
    schema, and the served text is what the builder makes from the tables. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "cm_event.h"
#include "gw_errors.h"
#include "gw_openapi.h"
#include "gw_route.h"

#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static json_t *s_doc;

static int
s_setup (void **state)
{
    (void) state;
    s_doc = json_loads (gw_openapi_json (), JSON_REJECT_DUPLICATES, NULL);
    return s_doc ? 0 : -1;
}

static int
s_teardown (void **state)
{
    (void) state;
    json_decref (s_doc);
    return 0;
}

static json_t *
s_op (const gw_route_info_t *info)
{
    char method[16];
    size_t i = 0;
    for (; info->method[i] && i + 1 < sizeof method; i++)
        method[i] = (char) (info->method[i] | 0x20);
    method[i] = 0;
    return json_object_get (json_object_get (json_object_get (s_doc, "paths"), info->pattern),
                            method);
}

static void
test_served_document_is_the_tables (void **state)
{
    (void) state;
    json_t *built = gw_openapi_build ();
    assert_non_null (built);
    assert_true (json_equal (built, s_doc));
    json_decref (built);
    assert_string_equal (json_string_value (json_object_get (s_doc, "openapi")), "3.0.3");
}

//  Every route (OPTIONS aside) is one operation named after it, with a 200,
//  a 405 carrying Allow, a 401 exactly when it needs a token, and a
//  request body exactly when it reads one.
static void
test_every_route_has_an_operation (void **state)
{
    (void) state;
    for (int r = GW_R_NONE + 1; r < GW_R_COUNT; r++) {
        if (r == GW_R_PREFLIGHT)
            continue;
        const gw_route_info_t *info = gw_route_info ((gw_route_id_t) r);
        json_t *op = s_op (info);
        if (!op)
            fail_msg ("%s %s has no operation", info->method, info->pattern);
        assert_string_equal (json_string_value (json_object_get (op, "operationId")), info->name);
        json_t *responses = json_object_get (op, "responses");
        assert_non_null (json_object_get (responses, "200"));
        json_t *allow = json_object_get (json_object_get (json_object_get (responses, "405"),
                                                          "headers"),
                                         "Allow");
        if (!allow)
            fail_msg ("%s %s: no 405 with Allow", info->method, info->pattern);
        assert_int_equal (json_object_get (responses, "401") != NULL, info->auth);
        json_t *body = json_object_get (op, "requestBody");
        assert_int_equal (body != NULL, info->body != GW_BODY_NONE);
        if (body)
            assert_int_equal (json_is_true (json_object_get (body, "required")),
                              info->body == GW_BODY_REQUIRED);
    }
}

//  Each error response lists codes of the table, all with that status;
//  every code but bad_request (no route) answers some operation.
static void
test_error_responses_come_from_the_table (void **state)
{
    (void) state;
    bool used[GW_E_COUNT] = {false};
    const char *path, *method, *status;
    json_t *item, *op, *response;
    json_object_foreach (json_object_get (s_doc, "paths"), path, item)
        json_object_foreach (item, method, op)
            json_object_foreach (json_object_get (op, "responses"), status, response) {
                if (atoi (status) < 400)
                    continue;
                json_t *schema = json_object_get (
                    json_object_get (json_object_get (response, "content"), "application/json"),
                    "schema");
                json_t *list = json_object_get (
                    json_object_get (json_object_get (schema, "properties"), "code"), "enum");
                if (json_array_size (list) == 0)
                    fail_msg ("%s %s %s: no codes", method, path, status);
                size_t index;
                json_t *code;
                json_array_foreach (list, index, code) {
                    bool found = false;
                    for (int e = GW_E_NONE + 1; e < GW_E_COUNT; e++) {
                        const gw_http_error_info_t *info = gw_http_error_info ((gw_http_error_t) e);
                        if (strcmp (info->code, json_string_value (code)) == 0) {
                            assert_int_equal (info->status, atoi (status));
                            used[e] = found = true;
                        }
                    }
                    if (!found)
                        fail_msg ("%s %s %s: code %s is not in GW_HTTP_ERRORS", method, path,
                                  status, json_string_value (code));
                }
            }
    for (int e = GW_E_NONE + 1; e < GW_E_COUNT; e++)
        if (!used[e] && e != GW_E_BAD_REQUEST)
            fail_msg ("error %s answers no operation", gw_http_error_info ((gw_http_error_t) e)->code);
    //  The shared Error schema lists every code.
    json_t *all = json_object_get (
        json_object_get (
            json_object_get (
                json_object_get (json_object_get (json_object_get (s_doc, "components"),
                                                  "schemas"),
                                 "Error"),
                "properties"),
            "code"),
        "enum");
    assert_int_equal (json_array_size (all), GW_E_COUNT - 1);
}

//  The operations whose message id is an answer's (regenerate, continue).
static bool
s_takes_answers (json_t *op)
{
    const char *id = json_string_value (json_object_get (op, "operationId"));
    return strcmp (id, "regenerate") == 0 || strcmp (id, "message_continue") == 0;
}

//  Ids the router must take and refuse; the parameter's pattern and length
//  limit must say the same for each. answers: the parameter of the
//  operations that take an answer, which also refuse another role (the
//  store's 400 not_assistant_message after the router took the id).
static void
s_check_ids_of (const char *name, const char *prefix, const char *suffix, const char *const *ids,
                size_t count, bool answers)
{
    json_t *schema = NULL;
    const char *path, *method;
    json_t *item, *op;
    size_t seen = 0;
    json_object_foreach (json_object_get (s_doc, "paths"), path, item)
        json_object_foreach (item, method, op) {
            if (s_takes_answers (op) != answers)
                continue;
            size_t index;
            json_t *param;
            json_array_foreach (json_object_get (op, "parameters"), index, param)
                if (strcmp (json_string_value (json_object_get (param, "name")), name) == 0) {
                    json_t *this_schema = json_object_get (param, "schema");
                    if (!json_object_get (this_schema, "pattern"))
                        fail_msg ("%s %s: %s has no pattern", method, path, name);
                    if (schema)
                        assert_true (json_equal (schema, this_schema));
                    schema = this_schema;
                    seen++;
                }
        }
    assert_true (seen > 0);
    regex_t regex;
    assert_int_equal (regcomp (&regex, json_string_value (json_object_get (schema, "pattern")),
                               REG_EXTENDED | REG_NOSUB),
                      0);
    size_t max = (size_t) json_integer_value (json_object_get (schema, "maxLength"));
    for (size_t i = 0; i < count; i++) {
        char target[1024];
        snprintf (target, sizeof target, "%s%s%s", prefix, ids[i], suffix);
        gw_match_t match;
        bool routed = gw_route_match ("GET", target, &match);
        size_t len = strlen (ids[i]);
        if (answers)
            routed &= len > 10 && strcmp (ids[i] + len - 10, "_assistant") == 0;
        bool spec = regexec (&regex, ids[i], 0, NULL, 0) == 0 && strlen (ids[i]) <= max
                    && strlen (ids[i]) >= 1;
        if (routed != spec)
            fail_msg ("%s '%s': router %s, spec %s", name, ids[i], routed ? "takes" : "refuses",
                      spec ? "takes" : "refuses");
    }
    regfree (&regex);
}

static void
s_check_ids (const char *name, const char *prefix, const char *suffix, const char *const *ids,
             size_t count)
{
    s_check_ids_of (name, prefix, suffix, ids, count, false);
    if (strcmp (name, "message_id") == 0)
        s_check_ids_of (name, prefix, suffix, ids, count, true);
}

static char *
s_repeat (char c, size_t n)
{
    static char buffers[8][400];
    static int next;
    char *b = buffers[next++ % 8];
    memset (b, c, n);
    b[n] = 0;
    return b;
}

static void
test_id_patterns_match_the_router (void **state)
{
    (void) state;
    char long_session[300], longest_session[300], long_uuid[300], longest_uuid[300];
    snprintf (long_session, sizeof long_session, "msg_u_%s_user", s_repeat ('s', CM_SESSION_ID_MAX));
    snprintf (longest_session, sizeof longest_session, "msg_u_%s_user",
              s_repeat ('s', CM_SESSION_ID_MAX + 1));
    snprintf (long_uuid, sizeof long_uuid, "msg_%s_s_system", s_repeat ('u', CM_MSGID_UUID_MAX));
    snprintf (longest_uuid, sizeof longest_uuid, "msg_%s_s_system",
              s_repeat ('u', CM_MSGID_UUID_MAX + 1));
    const char *sessions[] = {"s1", "a-b_c", "A", s_repeat ('x', CM_SESSION_ID_MAX),
                              s_repeat ('x', CM_SESSION_ID_MAX + 1), "bad.id", "a b", "%5C",
                              "\xc3\xa9", "a+b"};
    s_check_ids ("session_id", "/api/sessions/", "", sessions, sizeof sessions / sizeof *sessions);
    const char *tasks[] = {"regen_abc", "t", s_repeat ('t', CM_TASK_ID_MAX),
                           s_repeat ('t', CM_TASK_ID_MAX + 1), "bad!id", "a.b", "-_-"};
    s_check_ids ("task_id", "/api/messages/tasks/", "/status", tasks, sizeof tasks / sizeof *tasks);
    const char *messages[] = {"msg_0123456789abcdef0123456789abcdef_test_session_123_assistant",
                              "msg_123_s_1_user", "msg_a-b_s_system", long_session,
                              longest_session, long_uuid, longest_uuid, "msg_abc_s1_robot",
                              "msg__s1_user", "msg_a__user", "msg_a_s1_", "not-a-message-id",
                              "msg_a.b_s1_user", "msg_a_s.1_user", "MSG_a_s1_user",
                              "msg_a_s_assistant_user", "msg_a_s_user_assistant",
                              "msg_a_s1_Assistant", "msg_a_s1_assistant_"};
    s_check_ids ("message_id", "/api/messages/", "/history", messages,
                 sizeof messages / sizeof *messages);
}

//  Every event a browser's stream may carry has a schema with its fields.
static void
test_every_event_has_a_schema (void **state)
{
    (void) state;
    json_t *schemas = json_object_get (json_object_get (s_doc, "components"), "schemas");
    for (int e = CM_EVENT_NONE + 1; e < CM_EVENT_COUNT; e++) {
        char name[96];
        snprintf (name, sizeof name, "Event_%s", cm_event_name ((cm_event_t) e));
        json_t *schema = json_object_get (schemas, name);
        assert_int_equal (schema != NULL, cm_event_for_clients ((cm_event_t) e));
        if (!schema)
            continue;
        size_t count;
        const cm_field_t *fields = cm_event_fields ((cm_event_t) e, &count);
        json_t *properties = json_object_get (schema, "properties");
        assert_int_equal (json_object_size (properties), count + 2); //  + sessionId, timestamp
        for (size_t i = 0; i < count; i++)
            assert_non_null (json_object_get (properties, fields[i].name));
    }
    json_t *events = json_object_get (
        json_object_get (
            json_object_get (json_object_get (json_object_get (s_op (gw_route_info (GW_R_RUN_SSE_GET)),
                                                               "responses"),
                                              "200"),
                             "content"),
            "text/event-stream"),
        "x-chatmesh-events");
    assert_non_null (json_object_get (events, "message_regenerated"));
    assert_null (json_object_get (events, "subscribed"));
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_served_document_is_the_tables),
        cmocka_unit_test (test_every_route_has_an_operation),
        cmocka_unit_test (test_error_responses_come_from_the_table),
        cmocka_unit_test (test_id_patterns_match_the_router),
        cmocka_unit_test (test_every_event_has_a_schema),
    };
    return cmocka_run_group_tests (tests, s_setup, s_teardown);
}
