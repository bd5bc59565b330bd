/*  test_gw_manage: the query parameters of the session management and undo
    routes (gw_manage.h), the rename body (gw_validate_rename) and the
    error rows of the restore routes (gw_errors.h).                       */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "cm_error.h"
#include "gw_errors.h"
#include "gw_manage.h"
#include "gw_route.h"

#include <stdlib.h>
#include <string.h>

static void
test_delete_scope (void **state)
{
    (void) state;
    gw_verdict_t verdict = {0};
    cm_value_t *p = cm_map_new ();
    assert_int_equal (gw_manage_query (GW_R_MESSAGE_DELETE, NULL, p, &verdict), 0);
    assert_null (cm_map_get (p, "scope")); //  the store's default: following
    assert_int_equal (gw_manage_query (GW_R_MESSAGE_DELETE, "scope=message", p, &verdict), 0);
    assert_string_equal (cm_map_str_or (p, "scope", ""), "message");
    const char *bad[] = {"scope=all", "scope=", "scope=message&scope=following",
                         "scope=messagemessagemessage"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        cm_value_t *q = cm_map_new ();
        assert_int_equal (gw_manage_query (GW_R_MESSAGE_DELETE, bad[i], q, &verdict), CM_EINVAL);
        assert_int_equal (verdict.status, 422);
        assert_string_equal (verdict.code, "invalid_field");
        assert_int_equal (cm_value_len (q), 0);
        cm_value_destroy (&q);
    }
    cm_value_destroy (&p);
}

static void
test_list_page_and_export_format (void **state)
{
    (void) state;
    gw_verdict_t verdict = {0};
    cm_value_t *p = cm_map_new ();
    assert_int_equal (gw_manage_query (GW_R_SESSION_LIST, "limit=1000&cursor=17.sess_a", p,
                                       &verdict),
                      0);
    assert_int_equal (cm_map_int (p, "limit", 0), 1000);
    assert_string_equal (cm_map_str_or (p, "cursor", ""), "17.sess_a");
    assert_int_equal (gw_manage_query (GW_R_SESSION_LIST, "limit=1001", p, &verdict), CM_EINVAL);
    assert_string_equal (verdict.code, "field_out_of_range");
    assert_int_equal (gw_manage_query (GW_R_SESSION_LIST, "limit=0", p, &verdict), CM_EINVAL);
    assert_int_equal (gw_manage_query (GW_R_SESSION_EXPORT, "format=markdown", p, &verdict), 0);
    assert_string_equal (cm_map_str_or (p, "format", ""), "markdown");
    assert_int_equal (gw_manage_query (GW_R_SESSION_EXPORT, "format=pdf", p, &verdict), CM_EINVAL);
    //  Another route's parameters are not read.
    assert_int_equal (gw_manage_query (GW_R_SESSION_GET, "format=pdf", p, &verdict), 0);
    size_t count = 9;
    assert_null (gw_manage_params (GW_R_SESSION_GET, &count));
    assert_int_equal (count, 0);
    assert_non_null (gw_manage_params (GW_R_SESSION_LIST, &count));
    assert_int_equal (count, 2);
    cm_value_destroy (&p);
}

static int
s_rename (const char *json, cm_value_t **payload, gw_verdict_t *verdict)
{
    json_t *body = json_loads (json, 0, NULL);
    assert_non_null (body);
    *payload = cm_map_new ();
    int rc = gw_validate_rename (body, 0, *payload, verdict);
    json_decref (body);
    return rc;
}

static void
test_rename_body (void **state)
{
    (void) state;
    gw_verdict_t verdict = {0};
    cm_value_t *p = NULL;
    assert_int_equal (s_rename ("{\"title\": \"  Trip \"}", &p, &verdict), 0);
    assert_string_equal (cm_map_str_or (p, "title", ""), "Trip");
    cm_value_destroy (&p);
    char big[260 * 2 + 20];
    strcpy (big, "{\"title\": \"");
    for (int i = 0; i < 200; i++)
        strcat (big, "\xc3\xa9"); //  200 code points: the limit
    strcat (big, "\"}");
    assert_int_equal (s_rename (big, &p, &verdict), 0);
    cm_value_destroy (&p);
    big[strlen (big) - 2] = 0;
    strcat (big, "x\"}");
    assert_int_equal (s_rename (big, &p, &verdict), CM_EINVAL);
    assert_string_equal (verdict.code, "field_too_long");
    cm_value_destroy (&p);
    const struct {
        const char *json, *code;
    } bad[] = {
        {"{}", "missing_field"},
        {"{\"title\": null}", "missing_field"},
        {"{\"title\": 7}", "invalid_field"},
        {"{\"title\": \"   \"}", "empty_field"},
        {"{\"title\": \"a\\nb\"}", "invalid_field"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal (s_rename (bad[i].json, &p, &verdict), CM_EINVAL);
        assert_string_equal (verdict.code, bad[i].code);
        assert_int_equal (cm_value_len (p), 0);
        cm_value_destroy (&p);
    }
}

static void
test_restore_errors (void **state)
{
    (void) state;
    gw_error_t error;
    cm_value_t *why = cm_map_new ();
    cm_map_set_str (why, "message", "the undo window (30 s after the delete) has passed");
    gw_error_map (GW_R_MESSAGE_RESTORE, CM_EBADSTATE, why, &error);
    assert_int_equal (error.status, 410);
    assert_string_equal (error.code, "undo_expired");
    assert_non_null (strstr (error.error, "30 s"));
    gw_error_map (GW_R_SESSION_RESTORE, CM_EBADSTATE, NULL, &error);
    assert_int_equal (error.status, 410);
    gw_error_map (GW_R_SESSION_RESTORE, CM_ENOTFOUND, NULL, &error);
    assert_int_equal (error.status, 404);
    assert_non_null (strstr (error.error, "deleted session"));
    gw_error_map (GW_R_MESSAGE_RESTORE, CM_ECONFLICT, NULL, &error);
    assert_int_equal (error.status, 409);
    //  Elsewhere EBADSTATE stays 409 invalid_state.
    gw_error_map (GW_R_MESSAGE_DELETE, CM_EBADSTATE, NULL, &error);
    assert_int_equal (error.status, 409);
    cm_value_destroy (&why);
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_delete_scope),
        cmocka_unit_test (test_list_page_and_export_format),
        cmocka_unit_test (test_rename_body),
        cmocka_unit_test (test_restore_errors),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
