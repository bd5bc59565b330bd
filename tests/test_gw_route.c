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
        cmocka_unit_test (test_unknown_and_wrong_method), cmocka_unit_test (test_query),
        cmocka_unit_test (test_redact),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
