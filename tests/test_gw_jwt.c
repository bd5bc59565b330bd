/*  test_gw_jwt: HS256 verification, including the tokens libjwt 1.10 would
    accept on its own (alg none, another HMAC alg, no exp).             */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "cm_error.h"
#include "gw_jwt.h"

#include <jwt.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#define SECRET "unit-test-secret-0123456789"
#define NOW 1800000000

static void
test_mint_then_verify (void **state)
{
    (void) state;
    char *token = gw_jwt_mint (SECRET, strlen (SECRET), "alice_1", NOW, 600);
    assert_non_null (token);
    char user[GW_USER_MAX + 1];
    const char *why = NULL;
    assert_int_equal (gw_jwt_verify (SECRET, strlen (SECRET), token, NOW, user, &why), 0);
    assert_string_equal (user, "alice_1");
    free (token);
}

static void
test_expired_and_wrong_secret (void **state)
{
    (void) state;
    char user[GW_USER_MAX + 1];
    const char *why = NULL;
    char *expired = gw_jwt_mint (SECRET, strlen (SECRET), "alice", NOW, -1);
    assert_int_equal (gw_jwt_verify (SECRET, strlen (SECRET), expired, NOW, user, &why), CM_EINVAL);
    assert_string_equal (why, "token expired");
    char *token = gw_jwt_mint (SECRET, strlen (SECRET), "alice", NOW, 600);
    assert_int_equal (gw_jwt_verify ("another-secret-abcdefgh", 23, token, NOW, user, &why),
                      CM_EINVAL);
    //  Exactly at exp: expired.
    assert_int_equal (gw_jwt_verify (SECRET, strlen (SECRET), token, NOW + 600, user, &why),
                      CM_EINVAL);
    free (expired);
    free (token);
}

//  A token signed by libjwt with any alg and any claims.
static char *
s_forge (jwt_alg_t alg, const char *key, const char *sub, long exp, bool with_exp)
{
    jwt_t *jwt = NULL;
    jwt_new (&jwt);
    if (sub)
        jwt_add_grant (jwt, "sub", sub);
    if (with_exp)
        jwt_add_grant_int (jwt, "exp", exp);
    jwt_set_alg (jwt, alg, key ? (const unsigned char *) key : NULL, key ? (int) strlen (key) : 0);
    char *token = jwt_encode_str (jwt);
    jwt_free (jwt);
    return token;
}

static void
test_alg_none_rejected (void **state)
{
    (void) state;
    char user[GW_USER_MAX + 1];
    const char *why = NULL;
    char *token = s_forge (JWT_ALG_NONE, NULL, "mallory", NOW + 600, true);
    assert_non_null (token);
    assert_int_equal (gw_jwt_verify (SECRET, strlen (SECRET), token, NOW, user, &why), CM_EINVAL);
    free (token);
    //  Hand-made: {"alg":"none"}.{"sub":"mallory","exp":9999999999}. (empty sig)
    const char *none = "eyJhbGciOiJub25lIn0.eyJzdWIiOiJtYWxsb3J5IiwiZXhwIjo5OTk5OTk5OTk5fQ.";
    assert_int_equal (gw_jwt_verify (SECRET, strlen (SECRET), none, NOW, user, &why), CM_EINVAL);
}

static void
test_other_hmac_alg_rejected (void **state)
{
    (void) state;
    char user[GW_USER_MAX + 1];
    const char *why = NULL;
    //  Valid signature with the right secret, but HS512: not accepted.
    char *token = s_forge (JWT_ALG_HS512, SECRET, "alice", NOW + 600, true);
    assert_int_equal (gw_jwt_verify (SECRET, strlen (SECRET), token, NOW, user, &why), CM_EINVAL);
    assert_string_equal (why, "token algorithm must be HS256");
    free (token);
}

static void
test_claims_required (void **state)
{
    (void) state;
    char user[GW_USER_MAX + 1];
    const char *why = NULL;
    char *no_exp = s_forge (JWT_ALG_HS256, SECRET, "alice", 0, false);
    assert_int_equal (gw_jwt_verify (SECRET, strlen (SECRET), no_exp, NOW, user, &why), CM_EINVAL);
    assert_string_equal (why, "token has no exp claim");
    char *no_sub = s_forge (JWT_ALG_HS256, SECRET, NULL, NOW + 600, true);
    assert_int_equal (gw_jwt_verify (SECRET, strlen (SECRET), no_sub, NOW, user, &why), CM_EINVAL);
    char long_sub[200];
    memset (long_sub, 'a', 129);
    long_sub[129] = 0;
    char *too_long = s_forge (JWT_ALG_HS256, SECRET, long_sub, NOW + 600, true);
    assert_int_equal (gw_jwt_verify (SECRET, strlen (SECRET), too_long, NOW, user, &why),
                      CM_EINVAL);
    free (no_exp);
    free (no_sub);
    free (too_long);
}

static void
test_tampered_and_garbage (void **state)
{
    (void) state;
    char user[GW_USER_MAX + 1];
    const char *why = NULL;
    char *token = gw_jwt_mint (SECRET, strlen (SECRET), "alice", NOW, 600);
    //  Swap the payload for bob's, keep alice's signature.
    char *bob = gw_jwt_mint (SECRET, strlen (SECRET), "bob", NOW, 600);
    char forged[2048];
    const char *sig = strrchr (token, '.');
    size_t head_payload = (size_t) (strrchr (bob, '.') - bob);
    memcpy (forged, bob, head_payload);
    strcpy (forged + head_payload, sig);
    assert_int_equal (gw_jwt_verify (SECRET, strlen (SECRET), forged, NOW, user, &why), CM_EINVAL);
    assert_int_equal (gw_jwt_verify (SECRET, strlen (SECRET), "", NOW, user, &why), CM_EINVAL);
    assert_int_equal (gw_jwt_verify (SECRET, strlen (SECRET), "a.b", NOW, user, &why), CM_EINVAL);
    assert_int_equal (gw_jwt_verify (SECRET, strlen (SECRET), "a.b.c.d", NOW, user, &why),
                      CM_EINVAL);
    assert_int_equal (gw_jwt_verify (SECRET, strlen (SECRET), "a b.c.d", NOW, user, &why),
                      CM_EINVAL);
    free (token);
    free (bob);
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_mint_then_verify),     cmocka_unit_test (test_expired_and_wrong_secret),
        cmocka_unit_test (test_alg_none_rejected),    cmocka_unit_test (test_other_hmac_alg_rejected),
        cmocka_unit_test (test_claims_required),      cmocka_unit_test (test_tampered_and_garbage),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
