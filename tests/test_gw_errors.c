/*  test_gw_errors: the table of client errors and the store -> HTTP map.  */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "cm_error.h"
#include "gw_errors.h"

#include <string.h>

static const int s_cm_codes[] = {
#define X(name, code, text) CM_##name,
    CM_ERRORS (X)
#undef X
};

static void
test_every_code_has_one_status (void **state)
{
    (void) state;
    for (int e = GW_E_NONE + 1; e < GW_E_COUNT; e++) {
        const gw_http_error_info_t *info = gw_http_error_info ((gw_http_error_t) e);
        assert_true (info->code[0]);
        assert_in_range (info->status, 400, 599);
        assert_true (info->when[0]);
        //  A server-side failure tells the client when to retry, except the
        //  two a retry cannot fix: a damaged record and a full disk.
        if (info->status >= 500 && e != GW_E_DATA_CORRUPTED && e != GW_E_INSUFFICIENT_STORAGE)
            assert_true (info->retry_after > 0);
        if (e == GW_E_DATA_CORRUPTED || e == GW_E_INSUFFICIENT_STORAGE)
            assert_int_equal (info->retry_after, 0);
        for (int other = e + 1; other < GW_E_COUNT; other++)
            assert_string_not_equal (info->code, gw_http_error_info ((gw_http_error_t) other)->code);
    }
    //  docs/api.md: out of memory is a 503 the client retries, everywhere.
    assert_int_equal (gw_http_error_info (GW_E_INTERNAL_ERROR)->status, 503);
    assert_int_equal (gw_http_error_info (GW_E_INTERNAL_ERROR)->retry_after, 1);
    assert_int_equal (gw_http_error_info (GW_E_COUNT)->status, 0);
}

//  Every status sent has its reason phrase: the table's, the vestibule's
//  (gw_accept.h) and the successes.
static void
test_every_status_has_a_reason (void **state)
{
    (void) state;
    for (int e = GW_E_NONE + 1; e < GW_E_COUNT; e++)
        assert_string_not_equal (gw_http_reason (gw_http_error_info ((gw_http_error_t) e)->status), "Status");
    const int vestibule[] = {200, 204, 400, 408, 429, 431, 501, 503, 505};
    for (size_t i = 0; i < sizeof vestibule / sizeof vestibule[0]; i++)
        assert_string_not_equal (gw_http_reason (vestibule[i]), "Status");
    assert_string_equal (gw_http_reason (431), "Request Header Fields Too Large");
    assert_string_equal (gw_http_reason (299), "Status");
}

//  Each store code maps to a row of the table, with that row's status.
static void
test_store_errors_map_into_the_table (void **state)
{
    (void) state;
    for (size_t i = 0; i < sizeof s_cm_codes / sizeof s_cm_codes[0]; i++)
        for (int route = GW_R_NONE; route < GW_R_COUNT; route++) {
            gw_error_t error;
            gw_error_map ((gw_route_id_t) route, s_cm_codes[i], NULL, &error);
            bool found = false;
            for (int e = GW_E_NONE + 1; e < GW_E_COUNT && !found; e++) {
                const gw_http_error_info_t *info = gw_http_error_info ((gw_http_error_t) e);
                found = info->code == error.code && info->status == error.status;
            }
            assert_true (found);
            assert_true (error.error[0]);
            assert_null (strstr (error.error, "%s"));
        }
}

static void
test_not_found_names_the_route_noun (void **state)
{
    (void) state;
    gw_error_t error;
    gw_error_map (GW_R_TASK_CANCEL, CM_ENOTFOUND, NULL, &error);
    assert_string_equal (error.error, "No such task, or it is not yours.");
    gw_error_map (GW_R_ANALYTICS, CM_ENOTFOUND, NULL, &error);
    assert_string_equal (error.error, "No such session, or it is not yours.");
    gw_error_map (GW_R_HISTORY_GET, CM_ENOTFOUND, NULL, &error);
    assert_string_equal (error.error, "No such message, or it is not yours.");
    gw_error_map (GW_R_REGENERATE, CM_EBADSTATE, NULL, &error);
    assert_string_equal (error.code, "not_assistant_message");
    gw_error_map (GW_R_TASK_CANCEL, CM_EBADSTATE, NULL, &error);
    assert_string_equal (error.code, "invalid_state");
    gw_error_map (GW_R_FEEDBACK_PUT, CM_ETOOBIG, NULL, &error);
    assert_int_equal (error.status, 413);
    gw_error_map (GW_R_TASK_STATUS, CM_ECANCELLED, NULL, &error);
    assert_int_equal (error.status, 409);
}

//  What the client caused is not a backend error: the list is the table's
//  4xx rows (it once missed ETOOBIG and ECANCELLED).
static void
test_client_fault_follows_the_table (void **state)
{
    (void) state;
    const int client[] = {CM_ENOTFOUND, CM_EINVAL,   CM_ECONFLICT, CM_ERATELIMIT,
                          CM_EBADSTATE, CM_ETOOBIG, CM_ECANCELLED, CM_ENOVERSION};
    for (size_t i = 0; i < sizeof client / sizeof client[0]; i++)
        assert_true (gw_error_is_client (client[i]));
    const int backend[] = {CM_EBACKEND, CM_ETIMEOUT, CM_EDB, CM_EPROTO, CM_ENOMEM, CM_EIO};
    for (size_t i = 0; i < sizeof backend / sizeof backend[0]; i++)
        assert_false (gw_error_is_client (backend[i]));
    for (size_t i = 0; i < sizeof s_cm_codes / sizeof s_cm_codes[0]; i++) {
        gw_error_t error;
        gw_error_map (GW_R_FEEDBACK_PUT, s_cm_codes[i], NULL, &error);
        assert_int_equal (gw_error_is_client (s_cm_codes[i]), error.status < 500);
    }
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_every_code_has_one_status),
        cmocka_unit_test (test_every_status_has_a_reason),
        cmocka_unit_test (test_store_errors_map_into_the_table),
        cmocka_unit_test (test_not_found_names_the_route_noun),
        cmocka_unit_test (test_client_fault_follows_the_table),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
