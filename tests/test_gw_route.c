/*  test_gw_route: routing, id validation, query strings, redaction.  */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "cm_error.h"
#include "gw_route.h"

#include <stdio.h>
#include <string.h>

static void
test_routes_and_params (void **state)
{
    (void) state;
    gw_match_t m;
    assert_true (gw_route_match ("POST", "/api/run_sse/test_session_123", &m));
    assert_int_equal (m.route, GW_R_RUN_SSE_POST);
    assert_string_equal (m.session_id, "test_session_123");
    assert_true (gw_route_match ("GET", "/api/run_sse/s1", &m));
    assert_int_equal (m.route, GW_R_RUN_SSE_GET);
    const char *id = "msg_0123456789abcdef0123456789abcdef_test_session_123_assistant";
    char path[300];
    snprintf (path, sizeof path, "/api/messages/%s/feedback", id);
    assert_true (gw_route_match ("POST", path, &m));
    assert_int_equal (m.route, GW_R_FEEDBACK_PUT);
    assert_string_equal (m.message_id, id);
    assert_string_equal (m.msgid.session_id, "test_session_123");
    assert_string_equal (m.msgid.role, "assistant");
    assert_true (gw_route_match ("GET", path, &m));
    assert_int_equal (m.route, GW_R_FEEDBACK_GET);
    assert_true (gw_route_match ("DELETE", path, &m));
    assert_int_equal (m.route, GW_R_FEEDBACK_DELETE);
    assert_string_equal (m.message_id, id);
    snprintf (path, sizeof path, "/api/messages/%s", id);
    assert_true (gw_route_match ("PUT", path, &m));
    assert_int_equal (m.route, GW_R_MESSAGE_EDIT);
    assert_true (gw_route_match ("DELETE", path, &m));
    assert_int_equal (m.route, GW_R_MESSAGE_DELETE);
    assert_true (gw_route_match ("GET", "/api/messages/tasks/regen_abc/status", &m));
    assert_int_equal (m.route, GW_R_TASK_STATUS);
    assert_string_equal (m.task_id, "regen_abc");
    assert_true (gw_route_match ("POST", "/api/messages/tasks/regen_abc/cancel", &m));
    assert_int_equal (m.route, GW_R_TASK_CANCEL);
    assert_true (gw_route_match ("GET", "/api/sessions", &m));
    assert_int_equal (m.route, GW_R_SESSION_LIST);
    assert_true (gw_route_match ("GET", "/api/sessions/a-b_c/analytics", &m));
    assert_int_equal (m.route, GW_R_ANALYTICS);
    assert_true (gw_route_match ("GET", "/healthz", &m));
    assert_int_equal (m.route, GW_R_HEALTHZ);
    assert_true (gw_route_match ("GET", "/", &m));
    assert_int_equal (m.route, GW_R_STATIC);
    assert_true (gw_route_match ("GET", "/app.js", &m));
    assert_int_equal (m.route, GW_R_STATIC);
    assert_true (gw_route_match ("OPTIONS", "/api/sessions", &m));
    assert_int_equal (m.route, GW_R_PREFLIGHT);
}

static void
test_bad_ids_are_400 (void **state)
{
    (void) state;
    gw_match_t m;
    assert_false (gw_route_match ("POST", "/api/messages/not-a-message-id/feedback", &m));
    assert_int_equal (m.status, 400);
    assert_string_equal (m.code, "invalid_message_id");
    assert_false (gw_route_match ("GET", "/api/messages/msg_abc_s1_robot", &m));
    assert_int_equal (m.status, 405); //  GET is not a method of /api/messages/{id}
    assert_false (gw_route_match ("PUT", "/api/messages/msg_abc_s1_robot", &m));
    assert_int_equal (m.status, 400);
    assert_false (gw_route_match ("GET", "/api/sessions/bad.id", &m));
    assert_int_equal (m.status, 400);
    assert_string_equal (m.code, "invalid_session_id");
    char long_id[300] = "/api/sessions/";
    memset (long_id + 14, 'a', 129);
    long_id[14 + 129] = 0;
    assert_false (gw_route_match ("GET", long_id, &m));
    assert_int_equal (m.status, 400);
    assert_false (gw_route_match ("GET", "/api/messages/tasks/bad!id/status", &m));
    assert_int_equal (m.status, 400);
    //  A version number is 1..CM_VERSIONS_MAX in plain decimal.
    const char *bad_versions[] = {"0", "101", "-1", "+1", "01", "1x", "1.0", "99999999999"};
    char path[300];
    for (size_t i = 0; i < sizeof bad_versions / sizeof bad_versions[0]; i++) {
        snprintf (path, sizeof path, "/api/messages/msg_abc_s1_assistant/versions/%s/activate",
                  bad_versions[i]);
        assert_false (gw_route_match ("POST", path, &m));
        assert_int_equal (m.status, 400);
        assert_string_equal (m.code, "invalid_version");
    }
    assert_true (gw_route_match ("POST", "/api/messages/msg_abc_s1_assistant/versions/100/activate",
                                 &m));
    assert_int_equal (m.route, GW_R_VERSION_ACTIVATE);
    assert_int_equal (m.version, 100);
    cm_value_t *payload = cm_map_new ();
    gw_match_payload (&m, payload);
    assert_int_equal (cm_map_int (payload, "version", 0), 100);
    assert_string_equal (cm_map_str_or (payload, "message_id", ""), "msg_abc_s1_assistant");
    assert_null (cm_map_get (payload, "task_id"));
    cm_value_destroy (&payload);
    assert_true (gw_route_match ("POST", "/api/messages/msg_abc_s1_assistant/versions/1/activate",
                                 &m));
    assert_int_equal (m.version, 1);
}

//  A concrete path for a pattern: each {param} becomes a valid id.
static void
s_concrete (const char *pattern, char *path, size_t size)
{
    size_t out = 0;
    for (const char *p = pattern; *p && out + 1 < size;) {
        if (*p == '{') {
            const char *id = strncmp (p, "{message_id}", 12) == 0 ? "msg_abc_s1_assistant"
                           : strncmp (p, "{task_id}", 9) == 0     ? "regen_abc"
                           : strncmp (p, "{version}", 9) == 0     ? "2"
                                                                   : "s1";
            out += (size_t) snprintf (path + out, size - out, "%s", id);
            p = strchr (p, '}') + 1;
        }
        else
            path[out++] = *p++;
    }
    path[out] = 0;
}

//  Every row is reached by its method and path, and a 405 on its path
//  lists exactly the methods of the rows with that pattern.
static void
test_allow_comes_from_the_table (void **state)
{
    (void) state;
    for (int r = GW_R_NONE + 1; r < GW_R_STATIC; r++) {
        const gw_route_info_t *info = gw_route_info ((gw_route_id_t) r);
        char path[256], expected[GW_ALLOW_MAX] = "";
        s_concrete (info->pattern, path, sizeof path);
        gw_match_t m;
        assert_true (gw_route_match (info->method, path, &m));
        assert_int_equal (m.route, r);
        const char *methods[] = {"GET", "POST", "PUT", "PATCH", "DELETE"};
        for (size_t i = 0; i < 5; i++)
            for (int other = GW_R_NONE + 1; other < GW_R_STATIC; other++) {
                const gw_route_info_t *o = gw_route_info ((gw_route_id_t) other);
                if (strcmp (o->pattern, info->pattern) == 0 && strcmp (o->method, methods[i]) == 0) {
                    if (expected[0])
                        strcat (expected, ", ");
                    strcat (expected, methods[i]);
                }
            }
        assert_false (gw_route_match ("TRACE", path, &m));
        assert_int_equal (m.status, 405);
        assert_string_equal (m.code, "method_not_allowed");
        assert_string_equal (m.allow, expected);
    }
    gw_match_t m;
    assert_false (gw_route_match ("PUT", "/api/messages/msg_abc_s1_assistant/feedback", &m));
    assert_string_equal (m.allow, "GET, POST, DELETE");
    assert_false (gw_route_match ("GET", "/api/messages/msg_abc_s1_assistant", &m));
    assert_string_equal (m.allow, "PUT, DELETE");
    assert_false (gw_route_match ("GET", "/api/messages/tasks/regen_abc/cancel", &m));
    assert_string_equal (m.allow, "POST");
    assert_false (gw_route_match ("PUT", "/", &m));
    assert_string_equal (m.allow, "GET, HEAD");
}

//  Each store-backed route agrees with its message's schema: it sends the
//  caller, its path ids, and the rate limits exactly when it is limited.
static void
test_routes_agree_with_messages (void **state)
{
    (void) state;
    int store_routes = 0;
    for (int r = GW_R_NONE + 1; r < GW_R_COUNT; r++) {
        const gw_route_info_t *info = gw_route_info ((gw_route_id_t) r);
        assert_true (info->name[0] && info->summary[0] && info->noun);
        if (info->body != GW_BODY_NONE)
            assert_non_null (info->validate);
        if (info->message == CM_MSG_NONE) {
            assert_false (info->limited);
            continue;
        }
        store_routes++;
        assert_true (info->auth);
        assert_true (info->noun[0]);
        size_t count;
        const cm_field_t *fields = cm_msg_schema (info->message, &count);
        bool user = false, limits = false;
        int params = 0, matched = 0;
        for (const char *p = strchr (info->pattern, '{'); p; p = strchr (p + 1, '{'))
            params++;
        for (size_t i = 0; i < count; i++) {
            user |= strcmp (fields[i].name, "user") == 0;
            limits |= strcmp (fields[i].name, "rate_limit") == 0;
            char param[64];
            snprintf (param, sizeof param, "{%s}", fields[i].name);
            if (strstr (info->pattern, param)) {
                matched++;
                assert_true (fields[i].required);
                if (strcmp (fields[i].name, "version") == 0) {
                    assert_int_equal (fields[i].type, CM_T_INT);
                    continue;
                }
                size_t max = strcmp (fields[i].name, "session_id") == 0   ? CM_SESSION_ID_MAX
                           : strcmp (fields[i].name, "message_id") == 0 ? CM_MESSAGE_ID_MAX
                                                                          : CM_TASK_ID_MAX;
                assert_int_equal (fields[i].max_bytes, max);
            }
        }
        assert_true (user);
        assert_int_equal (limits, info->limited);
        //  Mutations are exactly the limited routes.
        assert_int_equal (cm_msg_access (info->message),
                          info->limited ? CM_ACCESS_WRITE : CM_ACCESS_READ);
        assert_int_equal (matched, params);
    }
    assert_true (store_routes >= 12);
}

static void
test_unknown_and_wrong_method (void **state)
{
    (void) state;
    gw_match_t m;
    assert_false (gw_route_match ("GET", "/api/nothing", &m));
    assert_int_equal (m.status, 404);
    assert_false (gw_route_match ("DELETE", "/api/run_sse/s1", &m));
    assert_int_equal (m.status, 405);
    assert_string_equal (m.allow, "GET, POST");
    assert_false (gw_route_match ("POST", "/healthz", &m));
    assert_int_equal (m.status, 405);
    assert_false (gw_route_match ("POST", "/index.html", &m));
    assert_int_equal (m.status, 405);
    assert_false (gw_route_match ("GET", "/api/sessions/", &m));
    assert_int_equal (m.status, 404);
}

static void
test_query (void **state)
{
    (void) state;
    char value[64];
    assert_int_equal (gw_query_get ("a=1&access_token=abc.def-_g&b=2", "access_token", value,
                                    sizeof value),
                      0);
    assert_string_equal (value, "abc.def-_g");
    assert_int_equal (gw_query_get ("last_event_id=17%2D3+x", "last_event_id", value, sizeof value),
                      0);
    assert_string_equal (value, "17-3 x");
    assert_int_equal (gw_query_get ("xaccess_token=1", "access_token", value, sizeof value),
                      CM_ENOTFOUND);
    assert_int_equal (gw_query_get (NULL, "a", value, sizeof value), CM_ENOTFOUND);
    assert_int_equal (gw_query_get ("a=12345", "a", value, 4), CM_ETOOBIG);
    assert_int_equal (gw_query_get ("a=%zz", "a", value, sizeof value), 0);
    assert_string_equal (value, "%zz");
    //  A name given twice is refused, whatever the values.
    assert_int_equal (gw_query_get ("access_token=x&b=1&access_token=y", "access_token", value,
                                    sizeof value),
                      CM_EINVAL);
    assert_string_equal (value, "");
    assert_int_equal (gw_query_get ("a=1&a", "a", value, sizeof value), CM_EINVAL);
    assert_int_equal (gw_query_get ("a=1&ab=2&a=1", "a", value, sizeof value), CM_EINVAL);
    assert_int_equal (gw_query_get ("a=1&ab=2", "a", value, sizeof value), 0);
    assert_string_equal (value, "1");
    assert_int_equal (gw_query_get ("a", "a", value, sizeof value), 0);
    assert_string_equal (value, "");
}

static void
test_redact (void **state)
{
    (void) state;
    char out[256];
    gw_redact_uri ("/api/run_sse/s1?access_token=SECRET.TOKEN.X&last_event_id=1-2", out, sizeof out);
    assert_string_equal (out, "/api/run_sse/s1?access_token=REDACTED&last_event_id=1-2");
    gw_redact_uri ("/x?a=1&access_token=SECRET", out, sizeof out);
    assert_null (strstr (out, "SECRET"));
    gw_redact_uri ("/access_token=keep", out, sizeof out);
    assert_string_equal (out, "/access_token=keep");
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_routes_and_params), cmocka_unit_test (test_bad_ids_are_400),
        cmocka_unit_test (test_unknown_and_wrong_method),
        cmocka_unit_test (test_allow_comes_from_the_table),
        cmocka_unit_test (test_routes_agree_with_messages), cmocka_unit_test (test_query),
        cmocka_unit_test (test_redact),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
