/*  test_gw_idem.c: the Idempotency-Key header (gw_idem.h) and where the
    OpenAPI document offers it: every mutation, no read.                 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "cm_error.h"
#include "cm_msg.h"
#include "gw_idem.h"
#include "gw_openapi.h"
#include "gw_route.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void
test_header_checked (void **state)
{
    (void) state;
    cm_value_t *payload = cm_map_new ();
    gw_verdict_t verdict = {0};
    //  None: nothing added.
    assert_int_equal (gw_idem_take (NULL, payload, &verdict), 0);
    assert_null (cm_map_get (payload, "idem_key"));
    assert_int_equal (gw_idem_take ("9b1f0c2e-4d1a-4c39-8f31-2b8e6a0f7c11", payload, &verdict), 0);
    assert_string_equal (cm_map_str (payload, "idem_key"), "9b1f0c2e-4d1a-4c39-8f31-2b8e6a0f7c11");
    //  The limit exactly, and one past it.
    char key[CM_IDEM_KEY_MAX + 2];
    memset (key, 'k', CM_IDEM_KEY_MAX);
    key[CM_IDEM_KEY_MAX] = '\0';
    assert_int_equal (gw_idem_take (key, payload, &verdict), 0);
    assert_int_equal (strlen (cm_map_str (payload, "idem_key")), CM_IDEM_KEY_MAX);
    key[CM_IDEM_KEY_MAX] = 'k';
    key[CM_IDEM_KEY_MAX + 1] = '\0';
    const char *bad[] = {key, "", "two words", "tab\there", "caf\xc3\xa9", "del\x7f"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        cm_value_t *fresh = cm_map_new ();
        memset (&verdict, 0, sizeof verdict);
        assert_int_equal (gw_idem_take (bad[i], fresh, &verdict), CM_EINVAL);
        assert_int_equal (verdict.status, 400);
        assert_string_equal (verdict.code, "invalid_idempotency_key");
        assert_non_null (strstr (verdict.error, "Idempotency-Key"));
        assert_null (cm_map_get (fresh, "idem_key")); //  nothing changed
        cm_value_destroy (&fresh);
    }
    cm_value_destroy (&payload);
}

//  The store's replay mark is taken out of its reply: the body the client
//  gets is the first answer's.
static void
test_replay_mark (void **state)
{
    (void) state;
    cm_value_t *ok = cm_map_new ();
    cm_map_set_str (ok, "feedback_id", "fb_1");
    assert_false (gw_idem_replayed (ok));
    cm_map_set_bool (ok, "replayed", true);
    assert_true (gw_idem_replayed (ok));
    assert_null (cm_map_get (ok, "replayed"));
    assert_string_equal (cm_map_str (ok, "feedback_id"), "fb_1");
    assert_false (gw_idem_replayed (NULL));
    cm_value_destroy (&ok);
}

//  True when the operation of route lists the header.
static bool
s_offers (json_t *doc, gw_route_id_t route)
{
    const gw_route_info_t *info = gw_route_info (route);
    char method[16];
    size_t n = strlen (info->method);
    for (size_t i = 0; i <= n && i < sizeof method; i++)
        method[i] = (char) (info->method[i] >= 'A' && info->method[i] <= 'Z'
                                ? info->method[i] + 32
                                : info->method[i]);
    json_t *op = json_object_get (json_object_get (json_object_get (doc, "paths"), info->pattern),
                                  method);
    assert_non_null (op);
    json_t *parameters = json_object_get (op, "parameters");
    for (size_t i = 0; i < json_array_size (parameters); i++) {
        json_t *p = json_array_get (parameters, i);
        if (strcmp (json_string_value (json_object_get (p, "name")), GW_IDEM_HEADER) == 0) {
            assert_string_equal (json_string_value (json_object_get (p, "in")), "header");
            //  ...with both of its errors.
            json_t *responses = json_object_get (op, "responses");
            char *e400 = json_dumps (json_object_get (responses, "400"), 0);
            char *e422 = json_dumps (json_object_get (responses, "422"), 0);
            assert_non_null (strstr (e400, "invalid_idempotency_key"));
            assert_non_null (strstr (e422, "idempotency_key_reused"));
            free (e400);
            free (e422);
            return true;
        }
    }
    return false;
}

static void
test_openapi_offers_it_on_mutations (void **state)
{
    (void) state;
    json_t *doc = json_loads (gw_openapi_json (), 0, NULL);
    assert_non_null (doc);
    int mutations = 0;
    for (int r = GW_R_NONE + 1; r < GW_R_STATIC; r++) {
        const gw_route_info_t *info = gw_route_info ((gw_route_id_t) r);
        assert_int_equal (s_offers (doc, (gw_route_id_t) r), info->limited);
        mutations += info->limited;
    }
    assert_true (mutations >= 6);
    json_decref (doc);
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_header_checked),
        cmocka_unit_test (test_replay_mark),
        cmocka_unit_test (test_openapi_offers_it_on_mutations),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
