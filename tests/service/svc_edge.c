/*  svc_edge: what the gateway answers before any handler logic, against
    the real four binaries: CORS preflights (civetweb's own preflight
    answer must never be heard), token claims libjwt does not check
    (NumericDate forms, crit, repeated claims, access_token twice), methods
    civetweb does not know (TRACE), an encoded backslash in the path, and
    the requests civetweb itself refuses (answered in JSON too).
    Raw sockets throughout: exactly the bytes given, nothing normalised,
    and tokens signed here with HMAC-SHA256 over the exact JSON texts.    */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "svc_harness.h"
#include "svc_raw.h"
#include "tok_util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define S_ORIGIN "https://app.example"

//  A message id of the right shape (it need not exist).
#define S_MSG_ID "msg_123e4567-e89b-42d3-a456-426614174000_s1_user"

static int
s_setup_cors (void **state)
{
    const char *env[] = {"CHATMESH_CORS_ORIGINS=" S_ORIGIN, NULL};
    return svc_fixture_start (state, env);
}

//  ---------------------------------------------------------------------------
//  Raw HTTP

//  Sends request as is on a new connection and reads until the server
//  closes it (every request here says Connection: close, or is one the
//  server must close after). The connection and the whole request must
//  go through.
static void
s_raw (svc_mesh_t *mesh, const char *request, svc_raw_t *answer)
{
    size_t len = strlen (request);
    svc_raw_exchange (svc_mesh_port (mesh), request, len, 10000, answer);
    assert_non_null (answer->text);
    assert_int_equal (answer->sent, len);
}

static const char *
s_error_text (const svc_raw_t *answer)
{
    return json_string_value (json_object_get (answer->json, "error"));
}

static const char *
s_error_code (const svc_raw_t *answer)
{
    return json_string_value (json_object_get (answer->json, "code"));
}

//  ---------------------------------------------------------------------------
//  CORS

static void
test_preflight_without_origins (void **state)
{
    svc_mesh_t *mesh = *state;
    //  The request: no origin is configured, so nothing is allowed.
    svc_raw_t a;
    s_raw (mesh,
           "OPTIONS /api/sessions HTTP/1.1\r\nHost: 127.0.0.1\r\n"
           "Origin: https://evil.example\r\nAccess-Control-Request-Method: DELETE\r\n"
           "Access-Control-Request-Headers: authorization\r\nConnection: close\r\n\r\n",
           &a);
    assert_int_equal (a.status, 204);
    if (svc_raw_has_header_prefix (&a, "Access-Control-"))
        fail_msg ("CORS headers without a configured origin:\n%s", a.text);
    svc_raw_free (&a);
}

static void
test_preflight_listed_origin (void **state)
{
    svc_mesh_t *mesh = *state;
    svc_raw_t a;
    //  The configured origin gets exactly itself, the path's methods and
    //  fixed headers: nothing the request asked for is echoed.
    s_raw (mesh,
           "OPTIONS /api/messages/" S_MSG_ID " HTTP/1.1\r\nHost: 127.0.0.1\r\n"
           "Origin: " S_ORIGIN "\r\nAccess-Control-Request-Method: PATCH\r\n"
           "Access-Control-Request-Headers: authorization, x-evil\r\nConnection: close\r\n\r\n",
           &a);
    assert_int_equal (a.status, 204);
    assert_non_null (svc_raw_header (&a, "Access-Control-Allow-Origin"));
    assert_string_equal (svc_raw_header (&a, "Access-Control-Allow-Origin"), S_ORIGIN);
    assert_string_equal (svc_raw_header (&a, "Vary"), "Origin");
    assert_string_equal (svc_raw_header (&a, "Access-Control-Allow-Methods"), "PUT, DELETE");
    assert_string_equal (svc_raw_header (&a, "Access-Control-Allow-Headers"),
                         "Authorization, Content-Type, Last-Event-ID, Idempotency-Key");
    svc_raw_free (&a);
    s_raw (mesh,
           "OPTIONS /api/sessions HTTP/1.1\r\nHost: 127.0.0.1\r\n"
           "Origin: " S_ORIGIN "\r\nAccess-Control-Request-Method: DELETE\r\n"
           "Connection: close\r\n\r\n",
           &a);
    assert_int_equal (a.status, 204);
    assert_string_equal (svc_raw_header (&a, "Access-Control-Allow-Methods"), "GET");
    svc_raw_free (&a);
    //  Another origin: no CORS headers at all, but the answer still says it
    //  depends on Origin (a cache must not reuse it for the listed one).
    s_raw (mesh,
           "OPTIONS /api/sessions HTTP/1.1\r\nHost: 127.0.0.1\r\n"
           "Origin: https://evil.example\r\nAccess-Control-Request-Method: DELETE\r\n"
           "Access-Control-Request-Headers: authorization\r\nConnection: close\r\n\r\n",
           &a);
    assert_int_equal (a.status, 204);
    if (svc_raw_has_header_prefix (&a, "Access-Control-"))
        fail_msg ("CORS headers for an unlisted origin:\n%s", a.text);
    assert_string_equal (svc_raw_header (&a, "Vary"), "Origin");
    svc_raw_free (&a);
}

//  ---------------------------------------------------------------------------
//  Tokens signed over exact JSON texts

//  tok_hs256 with the mesh's secret (static buffer: one at a time).
static const char *
s_sign (svc_mesh_t *mesh, const char *header, const char *claims)
{
    static char token[2048];
    char *signed_token = tok_hs256 (svc_mesh_secret (mesh), header, claims);
    assert_non_null (signed_token);
    snprintf (token, sizeof token, "%s", signed_token);
    free (signed_token);
    return token;
}

//  GET /api/sessions with the token; returns the answer.
static void
s_sessions (svc_mesh_t *mesh, const char *token, svc_raw_t *a)
{
    char request[4096];
    snprintf (request, sizeof request,
              "GET /api/sessions HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer %s\r\n"
              "Connection: close\r\n\r\n",
              token);
    s_raw (mesh, request, a);
}

#define S_HS256 "{\"alg\":\"HS256\",\"typ\":\"JWT\"}"

static void
s_expect_refused (svc_mesh_t *mesh, const char *header, const char *claims, const char *reason)
{
    svc_raw_t a;
    s_sessions (mesh, s_sign (mesh, header, claims), &a);
    assert_int_equal (a.status, 401);
    assert_non_null (s_error_text (&a));
    if (!strstr (s_error_text (&a), reason))
        fail_msg ("%s: '%s' does not say '%s'", claims, s_error_text (&a), reason);
    svc_raw_free (&a);
}

static void
test_token_claims (void **state)
{
    svc_mesh_t *mesh = *state;
    long exp = (long) time (NULL) + 600;
    char claims[256];
    //  The signing here is right: a plain token is accepted.
    snprintf (claims, sizeof claims, "{\"sub\":\"edge\",\"exp\":%ld}", exp);
    svc_raw_t a;
    s_sessions (mesh, s_sign (mesh, S_HS256, claims), &a);
    assert_int_equal (a.status, 200);
    svc_raw_free (&a);
    //  RFC 7519 NumericDate: a fraction is a valid expiry.
    snprintf (claims, sizeof claims, "{\"sub\":\"edge\",\"exp\":%ld.5}", exp);
    s_sessions (mesh, s_sign (mesh, S_HS256, claims), &a);
    assert_int_equal (a.status, 200);
    svc_raw_free (&a);
    //  Not a number, not a date: a precise reason.
    snprintf (claims, sizeof claims, "{\"sub\":\"edge\",\"exp\":\"%ld\"}", exp);
    s_expect_refused (mesh, S_HS256, claims, "exp claim is not a number");
    s_expect_refused (mesh, S_HS256, "{\"sub\":\"edge\",\"exp\":1e300}",
                      "exp claim is out of range");
    //  A crit header names extensions the gateway would have to understand.
    snprintf (claims, sizeof claims, "{\"sub\":\"edge\",\"exp\":%ld}", exp);
    s_expect_refused (mesh, "{\"alg\":\"HS256\",\"crit\":[\"exp\"]}", claims, "crit");
    //  Two sub claims: libjwt would take one of them.
    snprintf (claims, sizeof claims, "{\"sub\":\"edge\",\"sub\":\"admin\",\"exp\":%ld}", exp);
    s_expect_refused (mesh, S_HS256, claims, "repeats");
}

static void
test_access_token_twice (void **state)
{
    svc_mesh_t *mesh = *state;
    char *one = svc_token (mesh, "edge", 600), *two = svc_token (mesh, "other", 600);
    char request[4096];
    snprintf (request, sizeof request,
              "GET /api/run_sse/s_edge_twice?access_token=%s&access_token=%s HTTP/1.1\r\n"
              "Host: 127.0.0.1\r\nConnection: close\r\n\r\n",
              one, two);
    svc_raw_t a;
    s_raw (mesh, request, &a);
    assert_int_equal (a.status, 401);
    assert_non_null (strstr (s_error_text (&a), "more than once"));
    svc_raw_free (&a);
    free (one);
    free (two);
}

//  ---------------------------------------------------------------------------
//  Methods civetweb does not know, and backslashes

static void
test_unknown_methods_get_json_405 (void **state)
{
    svc_mesh_t *mesh = *state;
    struct {
        const char *request;
        long status;
        const char *allow;
    } cases[] = {
        {"TRACE /api/sessions HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", 405, "GET"},
        {"TRACE /api/sessions?x=1 HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: keep-alive\r\n\r\n",
         405, "GET"},
        {"FOO /api/messages/" S_MSG_ID "/feedback HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", 405,
         "GET, POST, DELETE"},
        {"TRACE / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", 405, "GET, HEAD"},
        {"TRACE /api/nothing HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", 404, NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        svc_raw_t a;
        s_raw (mesh, cases[i].request, &a);
        if (a.status != cases[i].status || !a.json)
            fail_msg ("case %zu: wanted a JSON %ld, got:\n%s", i, cases[i].status, a.text);
        assert_false (json_is_true (json_object_get (a.json, "success")));
        assert_non_null (s_error_code (&a));
        if (cases[i].allow) {
            assert_string_equal (s_error_code (&a), "method_not_allowed");
            assert_non_null (svc_raw_header (&a, "Allow"));
            assert_string_equal (svc_raw_header (&a, "Allow"), cases[i].allow);
        }
        assert_string_equal (svc_raw_header (&a, "Content-Type"), "application/json");
        //  The headers were never parsed: the connection ends here (s_raw
        //  reads until the server closes, and would time out otherwise).
        assert_string_equal (svc_raw_header (&a, "Connection"), "close");
        svc_raw_free (&a);
    }
}

static void
test_backslash_stays_in_its_segment (void **state)
{
    svc_mesh_t *mesh = *state;
    char *token = svc_token (mesh, "edge", 600);
    struct {
        const char *target;
        long status;
        const char *code;
    } cases[] = {
        //  Cleaned, these would be /api/messages/feedback (PUT, DELETE: 405).
        {"/api/messages/%5C/feedback", 400, "invalid_message_id"},
        {"/api/messages/%5c/feedback", 400, "invalid_message_id"},
        {"/api/messages/\\/feedback", 400, "invalid_message_id"},
        {"/api/sessions/%5C", 400, "invalid_session_id"},
        {"/api/sessions/%5C/analytics", 400, "invalid_session_id"},
        {"/index.html%5C", 404, "not_found"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char request[2048];
        snprintf (request, sizeof request,
                  "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer %s\r\n"
                  "Connection: close\r\n\r\n",
                  cases[i].target, token);
        svc_raw_t a;
        s_raw (mesh, request, &a);
        if (a.status != cases[i].status || !s_error_code (&a)
            || strcmp (s_error_code (&a), cases[i].code) != 0)
            fail_msg ("%s: wanted %ld %s, got:\n%s", cases[i].target, cases[i].status,
                      cases[i].code, a.text);
        svc_raw_free (&a);
    }
    free (token);
}

static void
test_civetweb_refusals_are_json (void **state)
{
    svc_mesh_t *mesh = *state;
    //  A head larger than civetweb's buffer (16 KB), and a version it does
    //  not speak: civetweb refuses both before routing, in plain text today
    //  (and with an "HTTP/2.0" status line for the second).
    size_t big = 20000;
    char *request = malloc (big + 200);
    int n = snprintf (request, big + 200, "GET /api/sessions HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Pad: ");
    memset (request + n, 'p', big);
    strcpy (request + n + big, "\r\n\r\n");
    struct {
        const char *request;
        long status;
        const char *code;
    } cases[] = {
        //  civetweb calls it malformed (400) rather than too large: any 4xx.
        {request, 0, NULL},
        {"GET /api/sessions HTTP/2.0\r\nHost: 127.0.0.1\r\n\r\n", 505, "http_version_not_supported"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        svc_raw_t a;
        s_raw (mesh, cases[i].request, &a);
        bool status_ok = cases[i].status ? a.status == cases[i].status
                                         : a.status >= 400 && a.status < 500;
        if (!status_ok || !s_error_code (&a)
            || (cases[i].code && strcmp (s_error_code (&a), cases[i].code) != 0))
            fail_msg ("case %zu: wanted %ld %s, got:\n%.300s", i, cases[i].status,
                      cases[i].code ? cases[i].code : "(any)", a.text);
        assert_string_equal (svc_raw_header (&a, "Content-Type"), "application/json");
        assert_string_equal (svc_raw_header (&a, "Connection"), "close");
        assert_string_equal (svc_raw_header (&a, "Cache-Control"), "no-store");
        svc_raw_free (&a);
    }
    free (request);
}

int
main (void)
{
    const struct CMUnitTest plain[] = {
        cmocka_unit_test (test_preflight_without_origins),
        cmocka_unit_test (test_token_claims),
        cmocka_unit_test (test_access_token_twice),
        cmocka_unit_test (test_unknown_methods_get_json_405),
        cmocka_unit_test (test_backslash_stays_in_its_segment),
        cmocka_unit_test (test_civetweb_refusals_are_json),
    };
    const struct CMUnitTest cors[] = {
        cmocka_unit_test (test_preflight_listed_origin),
    };
    int failed
        = cmocka_run_group_tests_name ("edge", plain, svc_fixture_setup, svc_fixture_teardown);
    failed += cmocka_run_group_tests_name ("edge_cors", cors, s_setup_cors, svc_fixture_teardown);
    return failed;
}
