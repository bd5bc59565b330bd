/*  test_gw_validate: bodies, UTF-8 character counting, field rules.  */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "cm_error.h"
#include "gw_validate.h"

#include <string.h>

static void
test_utf8_chars (void **state)
{
    (void) state;
    assert_int_equal (gw_utf8_chars ("abc", 3), 3);
    assert_int_equal (gw_utf8_chars ("\xc3\xa9t\xc3\xa9", 5), 3);
    assert_int_equal (gw_utf8_chars ("\xe2\x82\xac", 3), 1);
    assert_int_equal (gw_utf8_chars ("\xf0\x9f\x98\x80", 4), 1);
    assert_int_equal (gw_utf8_chars ("\xc3", 1), -1);              //  truncated
    assert_int_equal (gw_utf8_chars ("\xc0\xaf", 2), -1);          //  overlong
    assert_int_equal (gw_utf8_chars ("\xed\xa0\x80", 3), -1);      //  surrogate
    assert_int_equal (gw_utf8_chars ("\xf4\x90\x80\x80", 4), -1);  //  > U+10FFFF
    assert_int_equal (gw_utf8_chars ("\xe0\x80\xaf", 3), -1);      //  overlong 3-byte
}

static void
test_content_type (void **state)
{
    (void) state;
    assert_true (gw_content_type_is_json ("application/json"));
    assert_true (gw_content_type_is_json ("Application/JSON; charset=utf-8"));
    assert_false (gw_content_type_is_json ("text/plain"));
    assert_false (gw_content_type_is_json ("application/jsonx"));
    assert_false (gw_content_type_is_json (NULL));
}

static json_t *
s_parse (const char *text, gw_verdict_t *verdict, int *rc)
{
    json_t *json = NULL;
    *rc = gw_body_parse (text, strlen (text), &json, verdict);
    return json;
}

static void
test_body_parse (void **state)
{
    (void) state;
    gw_verdict_t v;
    int rc;
    json_t *j = s_parse ("{\"a\": 1}", &v, &rc);
    assert_int_equal (rc, 0);
    json_decref (j);
    s_parse ("{\"a\": ", &v, &rc);
    assert_int_equal (v.status, 400);
    s_parse ("[1, 2]", &v, &rc);
    assert_int_equal (v.status, 422);
    s_parse ("{\"a\": 1, \"a\": 2}", &v, &rc);
    assert_int_equal (v.status, 400);
    assert_non_null (strstr (v.error, "repeats a name"));
    s_parse ("{\"a\": \"\xff\"}", &v, &rc);
    assert_int_equal (v.status, 400);
    //  Integers past 64 bits are valid JSON: read as a double.
    j = s_parse ("{\"a\": 3647449772437539913728}", &v, &rc);
    assert_int_equal (rc, 0);
    assert_true (json_is_real (json_object_get (j, "a")));
    json_decref (j);
    s_parse ("{\"a\": 1e999}", &v, &rc);
    assert_int_equal (v.status, 400);
    assert_non_null (strstr (v.error, "number out of range"));
    s_parse ("{\"a\": \"x\\u0000\"}", &v, &rc);
    assert_int_equal (v.status, 400);
    assert_non_null (strstr (v.error, "U+0000"));
}

static void
test_edit_content (void **state)
{
    (void) state;
    gw_verdict_t v;
    int rc;
    json_t *body = s_parse ("{\"content\": \"  \\u00e9\\u00e9\\u00e9  \"}", &v, &rc);
    cm_value_t *payload = cm_map_new ();
    assert_int_equal (gw_validate_edit (body, 3, payload, &v), 0);
    assert_string_equal (cm_map_str (payload, "content"), "\xc3\xa9\xc3\xa9\xc3\xa9");
    assert_true (cm_map_bool (payload, "trigger_regeneration", false));
    assert_int_equal (gw_validate_edit (body, 2, payload, &v), CM_EINVAL);
    assert_int_equal (v.status, 422);
    assert_non_null (strstr (v.error, "content"));
    json_decref (body);
    body = s_parse ("{\"content\": \"   \"}", &v, &rc);
    assert_int_equal (gw_validate_edit (body, 10, payload, &v), CM_EINVAL);
    json_decref (body);
    body = s_parse ("{\"content\": 5}", &v, &rc);
    assert_int_equal (gw_validate_edit (body, 10, payload, &v), CM_EINVAL);
    assert_int_equal (v.status, 422);
    json_decref (body);
    body = s_parse ("{\"content\": \"x\", \"trigger_regeneration\": \"yes\"}", &v, &rc);
    assert_int_equal (gw_validate_edit (body, 10, payload, &v), CM_EINVAL);
    json_decref (body);
    body = s_parse ("{\"content\": \"x\", \"trigger_regeneration\": false, \"zzz\": 1}", &v, &rc);
    assert_int_equal (gw_validate_edit (body, 10, payload, &v), 0);
    assert_false (cm_map_bool (payload, "trigger_regeneration", true));
    json_decref (body);
    cm_value_destroy (&payload);
}

static void
test_feedback_and_regenerate (void **state)
{
    (void) state;
    gw_verdict_t v;
    int rc;
    cm_value_t *payload = cm_map_new ();
    json_t *body = s_parse ("{\"feedback_type\": \"downvote\", \"reason\": \"meh\", \"metadata\": {\"k\": [1, 2.5, null]}}", &v, &rc);
    assert_int_equal (gw_validate_feedback (body, 0, payload, &v), 0);
    assert_string_equal (cm_map_str (payload, "feedback_type"), "downvote");
    assert_non_null (cm_map_get (payload, "metadata"));
    json_decref (body);
    const char *bad[] = {"{}", "{\"feedback_type\": \"up\"}", "{\"feedback_type\": \"upvote\", \"metadata\": [1]}",
                         "{\"feedback_type\": \"upvote\", \"reason\": 3}"};
    for (size_t i = 0; i < 4; i++) {
        body = s_parse (bad[i], &v, &rc);
        assert_int_equal (gw_validate_feedback (body, 0, payload, &v), CM_EINVAL);
        assert_int_equal (v.status, 422);
        json_decref (body);
    }
    //  version: an integer 1..CM_VERSIONS_MAX, null as not sent.
    body = s_parse ("{\"feedback_type\": \"upvote\", \"version\": 100}", &v, &rc);
    assert_int_equal (gw_validate_feedback (body, 0, payload, &v), 0);
    assert_int_equal (cm_map_int (payload, "version", 0), 100);
    json_decref (body);
    //  A whole number as a real is that integer: written 2.0, or read as a
    //  real because a number beyond 64 bits elsewhere made the parse take
    //  every number as one (schemathesis's stateful phase sent such votes).
    const char *whole[] = {"{\"feedback_type\": \"upvote\", \"version\": 2.0}",
                           "{\"feedback_type\": \"upvote\", \"version\": 80, \"x\": "
                           "-2211512784030920704300396052480}"};
    const int64_t wanted[] = {2, 80};
    for (size_t i = 0; i < sizeof whole / sizeof whole[0]; i++) {
        cm_value_t *fresh = cm_map_new ();
        body = s_parse (whole[i], &v, &rc);
        assert_int_equal (rc, 0);
        assert_int_equal (gw_validate_feedback (body, 0, fresh, &v), 0);
        assert_int_equal (cm_map_int (fresh, "version", 0), wanted[i]);
        cm_value_destroy (&fresh);
        json_decref (body);
    }
    const char *versions[] = {"0",     "101", "-1",    "1.5",    "\"2\"",
                              "true",  "101.0", "0.0", "1e300", "-1e300"};
    const int statuses[] = {422, 422, 422, 422, 422, 422, 422, 422, 422, 422};
    const char *codes[] = {"field_out_of_range", "field_out_of_range", "field_out_of_range",
                           "invalid_field",      "invalid_field",      "invalid_field",
                           "field_out_of_range", "field_out_of_range", "field_out_of_range",
                           "field_out_of_range"};
    for (size_t i = 0; i < sizeof versions / sizeof versions[0]; i++) {
        char text[96];
        snprintf (text, sizeof text, "{\"feedback_type\": \"upvote\", \"version\": %s}",
                  versions[i]);
        cm_value_t *fresh = cm_map_new ();
        body = s_parse (text, &v, &rc);
        assert_int_equal (gw_validate_feedback (body, 0, fresh, &v), CM_EINVAL);
        assert_int_equal (v.status, statuses[i]);
        assert_string_equal (v.code, codes[i]);
        assert_null (cm_map_get (fresh, "version"));
        cm_value_destroy (&fresh);
        json_decref (body);
    }
    cm_value_t *fresh = cm_map_new ();
    body = s_parse ("{\"feedback_type\": \"upvote\", \"version\": null}", &v, &rc);
    assert_int_equal (gw_validate_feedback (body, 0, fresh, &v), 0);
    assert_null (cm_map_get (fresh, "version"));
    cm_value_destroy (&fresh);
    json_decref (body);
    char reason[700] = "{\"feedback_type\": \"upvote\", \"reason\": \"";
    size_t at = strlen (reason);
    memset (reason + at, 'r', 501);
    strcpy (reason + at + 501, "\"}");
    body = s_parse (reason, &v, &rc);
    assert_int_equal (gw_validate_feedback (body, 0, payload, &v), CM_EINVAL);
    json_decref (body);
    assert_int_equal (gw_validate_regenerate (NULL, 10, payload, &v), 0);
    body = s_parse ("{\"temperature\": 2.5}", &v, &rc);
    assert_int_equal (gw_validate_regenerate (body, 10, payload, &v), CM_EINVAL);
    json_decref (body);
    body = s_parse ("{\"temperature\": 2, \"model\": \"m\"}", &v, &rc);
    assert_int_equal (gw_validate_regenerate (body, 10, payload, &v), 0);
    assert_true (cm_map_dbl (payload, "temperature", 0) == 2.0);
    json_decref (body);
    body = s_parse ("{}", &v, &rc);
    assert_int_equal (gw_validate_run_sse (body, 10, payload, &v), CM_EINVAL);
    json_decref (body);
    //  model: 1..128 characters (the OpenAPI maxLength), not bytes: 128
    //  two-byte characters pass, 129 one-byte ones do not, nor "".
    char model[600] = "{\"model\": \"";
    at = strlen (model);
    for (int i = 0; i < 128; i++, at += 2)
        memcpy (model + at, "\xc3\xa9", 2);
    strcpy (model + at, "\"}");
    body = s_parse (model, &v, &rc);
    assert_int_equal (gw_validate_regenerate (body, 10, payload, &v), 0);
    json_decref (body);
    at = strlen ("{\"model\": \"");
    memset (model + at, 'm', 129);
    strcpy (model + at + 129, "\"}");
    body = s_parse (model, &v, &rc);
    assert_int_equal (gw_validate_regenerate (body, 10, payload, &v), CM_EINVAL);
    assert_string_equal (v.code, "invalid_field");
    json_decref (body);
    body = s_parse ("{\"model\": \"\"}", &v, &rc);
    assert_int_equal (gw_validate_regenerate (body, 10, payload, &v), CM_EINVAL);
    json_decref (body);
    cm_value_destroy (&payload);
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_utf8_chars), cmocka_unit_test (test_content_type),
        cmocka_unit_test (test_body_parse), cmocka_unit_test (test_edit_content),
        cmocka_unit_test (test_feedback_and_regenerate),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
