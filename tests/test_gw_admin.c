/*  test_gw_admin: who is an operator, and the admin routes' query strings
    and JSONL export (gw_admin.h), with the 403 row of the route table.  */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "cm_error.h"
#include "gw_admin.h"
#include "gw_errors.h"
#include "gw_route.h"

#include <stdlib.h>
#include <string.h>

static void
test_operators (void **state)
{
    (void) state;
    assert_true (gw_admin_is ("", "alice", true));
    assert_false (gw_admin_is ("", "alice", false));
    assert_true (gw_admin_is ("root, ops ,alice", "alice", false));
    assert_true (gw_admin_is ("root, ops ,alice", "ops", false));
    assert_false (gw_admin_is ("root,ops", "op", false));
    assert_false (gw_admin_is ("root,ops", "rootx", false));
    assert_false (gw_admin_is ("root,,", "", false));
    assert_false (gw_admin_is (NULL, "root", false));
}

static void
test_times (void **state)
{
    (void) state;
    int64_t ms = -1;
    assert_int_equal (gw_admin_time ("1764000000000", &ms), 0);
    assert_int_equal (ms, 1764000000000LL);
    assert_int_equal (gw_admin_time ("2026-12-03", &ms), 0);
    assert_int_equal (ms, 1796256000000LL);
    assert_int_equal (gw_admin_time ("2026-12-03T01:02:03Z", &ms), 0);
    assert_int_equal (ms, 1796256000000LL + 3723000);
    assert_int_equal (gw_admin_time ("2026-12-03T01:02:03.250Z", &ms), 0);
    assert_int_equal (ms, 1796256000000LL + 3723250);
    const char *bad[] = {"", "2026-02-30", "2026-13-01", "2026-12-03T24:00:00Z", "+026-12-03",
                         "2026-12-03T01:02:03", "1969-12-31", "12x", "9999999999999999",
                         "2026-1-03", "2026-12-03 01:02:03Z"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        ms = 7;
        assert_int_equal (gw_admin_time (bad[i], &ms), CM_EINVAL);
        assert_int_equal (ms, 7);
    }
}

static void
test_audit_query (void **state)
{
    (void) state;
    cm_value_t *p = cm_map_new ();
    gw_verdict_t verdict = {0};
    assert_int_equal (gw_admin_query (GW_R_ADMIN_AUDIT,
                                      "user=bob&session=s1&action=feedback&from=2026-12-03&"
                                      "to=1796342400000&limit=5&cursor=00ff&other=1",
                                      p, &verdict),
                      0);
    assert_string_equal (cm_map_str_or (p, "user_id", ""), "bob");
    assert_string_equal (cm_map_str_or (p, "session_id", ""), "s1");
    assert_string_equal (cm_map_str_or (p, "action_type", ""), "feedback");
    assert_string_equal (cm_map_str_or (p, "cursor", ""), "00ff");
    assert_int_equal (cm_map_int (p, "from", 0), 1796256000000LL);
    assert_int_equal (cm_map_int (p, "to", 0), 1796342400000LL);
    assert_int_equal (cm_map_int (p, "limit", 0), 5);
    cm_value_destroy (&p);
    p = cm_map_new ();
    assert_int_equal (gw_admin_query (GW_R_ADMIN_AUDIT, NULL, p, &verdict), 0);
    assert_int_equal (cm_value_len (p), 0);
    cm_value_destroy (&p);
    struct {
        const char *query, *code, *names;
    } bad[] = {
        {"limit=0", "field_out_of_range", "'limit'"},
        {"limit=1001", "field_out_of_range", "'limit'"},
        {"limit=5x", "field_out_of_range", "'limit'"},
        {"limit=5&limit=6", "field_out_of_range", "'limit'"},
        {"user=a&user=b", "invalid_field", "'user'"},
        {"user=", "invalid_field", "'user'"},
        {"session=a%01b", "invalid_field", "'session'"},
        {"from=yesterday", "invalid_field", "'from'"},
        {"from=2026-12-04&to=2026-12-03", "field_out_of_range", "'from'"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        p = cm_map_new ();
        memset (&verdict, 0, sizeof verdict);
        assert_int_equal (gw_admin_query (GW_R_ADMIN_AUDIT, bad[i].query, p, &verdict), CM_EINVAL);
        assert_int_equal (verdict.status, 422);
        assert_string_equal (verdict.code, bad[i].code);
        assert_non_null (strstr (verdict.error, bad[i].names));
        cm_value_destroy (&p);
    }
    //  The analytics route takes the range only; verify takes nothing.
    p = cm_map_new ();
    assert_int_equal (gw_admin_query (GW_R_ADMIN_ANALYTICS, "from=2026-12-01&user=bob", p, &verdict), 0);
    assert_int_equal (cm_value_len (p), 1);
    assert_int_equal (cm_map_int (p, "from", 0), 1796083200000LL);
    cm_value_destroy (&p);
    p = cm_map_new ();
    assert_int_equal (gw_admin_query (GW_R_ADMIN_AUDIT_VERIFY, "from=x", p, &verdict), 0);
    assert_int_equal (cm_value_len (p), 0);
    cm_value_destroy (&p);
    //  A user name over the limit.
    char query[400] = "user=";
    memset (query + 5, 'u', CM_USER_MAX + 1);
    p = cm_map_new ();
    assert_int_equal (gw_admin_query (GW_R_ADMIN_AUDIT, query, p, &verdict), CM_EINVAL);
    assert_non_null (strstr (verdict.error, "longer than"));
    cm_value_destroy (&p);
}

static void
test_ndjson (void **state)
{
    (void) state;
    json_t *body = json_pack ("{s:b, s:[{s:s}, {s:s, s:i}], s:n}", "success", 1, "entries", "id",
                              "log_2", "id", "log_1", "n", 3, "next_cursor");
    size_t len = 0;
    char *text = gw_admin_ndjson (body, &len);
    assert_string_equal (text, "{\"id\":\"log_2\"}\n{\"id\":\"log_1\",\"n\":3}\n");
    assert_int_equal (len, strlen (text));
    free (text);
    json_decref (body);
    body = json_pack ("{s:[]}", "entries");
    text = gw_admin_ndjson (body, &len);
    assert_string_equal (text, "");
    assert_int_equal (len, 0);
    free (text);
    json_decref (body);
    assert_true (gw_admin_wants_ndjson ("application/json, application/x-ndjson;q=0.9"));
    assert_false (gw_admin_wants_ndjson ("application/json"));
    assert_false (gw_admin_wants_ndjson (NULL));
}

static void
test_metrics (void **state)
{
    (void) state;
    cm_value_t *reply = cm_map_new (), *totals = cm_arr_new ();
    cm_value_t *item = cm_map_new ();
    cm_map_set_str (item, "model", "m\"1\\x\ny");
    cm_map_set_str (item, "counter", "answers");
    cm_map_set_int (item, "count", 7);
    cm_arr_push (totals, item);
    cm_map_set (reply, "totals", totals);
    char *text = gw_admin_metrics (reply);
    assert_non_null (strstr (text, "# TYPE chatmesh_actions_total counter\n"));
    assert_non_null (
        strstr (text, "chatmesh_actions_total{model=\"m\\\"1\\\\x\\ny\",action=\"answers\"} 7\n"));
    free (text);
    cm_value_destroy (&reply);
    text = gw_admin_metrics (NULL);
    assert_null (strstr (text, "chatmesh_actions_total{"));
    assert_non_null (strstr (text, "# HELP chatmesh_actions_total"));
    free (text);
}

static void
test_admin_routes (void **state)
{
    (void) state;
    gw_match_t match;
    assert_true (gw_route_match ("GET", "/api/admin/audit", &match));
    assert_int_equal (match.route, GW_R_ADMIN_AUDIT);
    assert_true (gw_route_admin (GW_R_ADMIN_AUDIT));
    assert_true (gw_route_admin (GW_R_ADMIN_AUDIT_VERIFY));
    assert_true (gw_route_admin (GW_R_ADMIN_ANALYTICS));
    assert_true (gw_route_match ("GET", "/api/admin/audit/verify", &match));
    assert_int_equal (match.route, GW_R_ADMIN_AUDIT_VERIFY);
    assert_false (gw_route_admin (GW_R_SESSION_LIST));
    assert_false (gw_route_admin (GW_R_STATIC));
    assert_int_equal (gw_http_error_info (GW_E_FORBIDDEN)->status, 403);
    assert_string_equal (gw_http_error_info (GW_E_FORBIDDEN)->code, "forbidden");
    assert_false (gw_route_match ("POST", "/api/admin/audit", &match));
    assert_int_equal (match.status, 405);
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_operators), cmocka_unit_test (test_times),
        cmocka_unit_test (test_audit_query), cmocka_unit_test (test_ndjson),
        cmocka_unit_test (test_admin_routes), cmocka_unit_test (test_metrics),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
