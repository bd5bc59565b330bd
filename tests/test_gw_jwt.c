/*  test_gw_jwt: HS256 verification, including the tokens libjwt 1.10 would
    accept on its own (alg none, another HMAC alg, no exp, crit, repeated
    claims) and the NumericDate forms of RFC 7519 (fractions).          */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "cm_error.h"
#include "gw_jwt.h"
#include "tok_util.h"

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
    char user[CM_USER_MAX + 1];
    const char *why = NULL;
    assert_int_equal (gw_jwt_verify (SECRET, strlen (SECRET), token, NOW, user, &why), 0);
    assert_string_equal (user, "alice_1");
    free (token);
}

static void
test_expired_and_wrong_secret (void **state)
{
    (void) state;
    char user[CM_USER_MAX + 1];
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

static void
test_alg_none_rejected (void **state)
{
    (void) state;
    char user[CM_USER_MAX + 1];
    const char *why = NULL;
    char *token = tok_libjwt_claims (JWT_ALG_NONE, NULL, "mallory", 0, NOW + 600);
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
    char user[CM_USER_MAX + 1];
    const char *why = NULL;
    //  Valid signature with the right secret, but HS512: not accepted.
    char *token = tok_libjwt_claims (JWT_ALG_HS512, SECRET, "alice", 0, NOW + 600);
    assert_int_equal (gw_jwt_verify (SECRET, strlen (SECRET), token, NOW, user, &why), CM_EINVAL);
    assert_string_equal (why, "token algorithm must be HS256");
    free (token);
}

static void
test_claims_required (void **state)
{
    (void) state;
    char user[CM_USER_MAX + 1];
    const char *why = NULL;
    char *no_exp = tok_libjwt_claims (JWT_ALG_HS256, SECRET, "alice", 0, 0);
    assert_int_equal (gw_jwt_verify (SECRET, strlen (SECRET), no_exp, NOW, user, &why), CM_EINVAL);
    assert_string_equal (why, "token has no exp claim");
    char *no_sub = tok_libjwt_claims (JWT_ALG_HS256, SECRET, NULL, 0, NOW + 600);
    assert_int_equal (gw_jwt_verify (SECRET, strlen (SECRET), no_sub, NOW, user, &why), CM_EINVAL);
    //  The store's limit of a user (cm_msg.h) is the token's: a sub the
    //  gateway accepts is never refused by the store's schema.
    char long_sub[CM_USER_MAX + 2];
    memset (long_sub, 'a', CM_USER_MAX);
    long_sub[CM_USER_MAX] = 0;
    char *longest = tok_libjwt_claims (JWT_ALG_HS256, SECRET, long_sub, 0, NOW + 600);
    assert_int_equal (gw_jwt_verify (SECRET, strlen (SECRET), longest, NOW, user, &why), 0);
    assert_string_equal (user, long_sub);
    free (longest);
    long_sub[CM_USER_MAX] = 'a';
    long_sub[CM_USER_MAX + 1] = 0;
    char *too_long = tok_libjwt_claims (JWT_ALG_HS256, SECRET, long_sub, 0, NOW + 600);
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
    char user[CM_USER_MAX + 1];
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

//  Verifies a token signed by libjwt with HS256 and the right secret,
//  carrying exactly the claims of claims_json and the header parameters of
//  header_json (may be NULL); returns the reason (NULL: accepted).
static const char *
s_verdict (const char *header_json, const char *claims_json, char *user)
{
    char *token = tok_libjwt (JWT_ALG_HS256, SECRET, header_json, claims_json);
    assert_non_null (token);
    const char *why = "unset";
    int rc = gw_jwt_verify (SECRET, strlen (SECRET), token, NOW, user, &why);
    free (token);
    assert_true (rc == 0 ? why == NULL : rc == CM_EINVAL && why != NULL);
    return why;
}

static void
test_numeric_dates (void **state)
{
    (void) state;
    char user[CM_USER_MAX + 1];
    //  RFC 7519 2: a NumericDate may have a fraction.
    assert_null (s_verdict (NULL, "{\"sub\":\"alice\",\"exp\":1800000600.25}", user));
    assert_string_equal (user, "alice");
    assert_string_equal (s_verdict (NULL, "{\"sub\":\"alice\",\"exp\":1800000000.0}", user),
                         "token expired");
    assert_null (s_verdict (NULL, "{\"sub\":\"alice\",\"exp\":1800000600,\"nbf\":1799999999.5}",
                            user));
    assert_string_equal (
        s_verdict (NULL, "{\"sub\":\"alice\",\"exp\":1800000600,\"nbf\":1800000000.5}", user),
        "token not valid yet");
    //  Not a number, or not a date: said so, not "no exp claim".
    assert_string_equal (s_verdict (NULL, "{\"sub\":\"alice\",\"exp\":\"1800000600\"}", user),
                         "token exp claim is not a number");
    assert_string_equal (s_verdict (NULL, "{\"sub\":\"alice\",\"exp\":1e300}", user),
                         "token exp claim is out of range");
    assert_string_equal (s_verdict (NULL, "{\"sub\":\"alice\",\"exp\":-5}", user),
                         "token exp claim is out of range");
    assert_string_equal (s_verdict (NULL, "{\"sub\":\"alice\",\"exp\":true}", user),
                         "token exp claim is not a number");
    assert_string_equal (
        s_verdict (NULL, "{\"sub\":\"alice\",\"exp\":1800000600,\"nbf\":\"soon\"}", user),
        "token nbf claim is not a number");
    //  The last second accepted, and the one after.
    assert_null (s_verdict (NULL, "{\"sub\":\"alice\",\"exp\":253402300799}", user));
    assert_string_equal (s_verdict (NULL, "{\"sub\":\"alice\",\"exp\":253402300800}", user),
                         "token exp claim is out of range");
}

static void
test_crit_refused (void **state)
{
    (void) state;
    char user[CM_USER_MAX + 1];
    assert_string_equal (s_verdict ("{\"crit\":[\"exp\"]}", "{\"sub\":\"alice\",\"exp\":1800000600}",
                                    user),
                         "token header has crit extensions, none is supported");
    //  Other header parameters are fine.
    assert_null (s_verdict ("{\"kid\":\"k1\"}", "{\"sub\":\"alice\",\"exp\":1800000600}", user));
}

static void
test_repeated_names_refused (void **state)
{
    (void) state;
    char user[CM_USER_MAX + 1];
    const char *why = NULL;
    //  Refused before the signature is looked at (the service test signs
    //  such a token properly).
    const char *cases[][2] = {
        {"{\"alg\":\"HS256\"}", "{\"sub\":\"alice\",\"sub\":\"bob\",\"exp\":1800000600}"},
        {"{\"alg\":\"HS256\"}", "{\"sub\":\"alice\",\"exp\":1800000600,\"exp\":1900000000}"},
        {"{\"alg\":\"HS256\",\"alg\":\"none\"}", "{\"sub\":\"alice\",\"exp\":1800000600}"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *token = tok_compose (cases[i][0], cases[i][1], "c2lnbmF0dXJl");
        assert_non_null (token);
        assert_int_equal (gw_jwt_verify (SECRET, strlen (SECRET), token, NOW, user, &why),
                          CM_EINVAL);
        assert_string_equal (why, "token repeats a header parameter or claim");
        free (token);
    }
}

//  The role claim: "admin" makes an operator, any other string does not,
//  a role that is no string refuses the token.
static void
test_role_claim (void **state)
{
    (void) state;
    char user[CM_USER_MAX + 1];
    const char *why = NULL;
    bool admin = true;
    char *plain = gw_jwt_mint (SECRET, strlen (SECRET), "alice", NOW, 600);
    assert_int_equal (gw_jwt_verify_role (SECRET, strlen (SECRET), plain, NOW, user, &admin, &why), 0);
    assert_false (admin);
    char *op = gw_jwt_mint_role (SECRET, strlen (SECRET), "root", "admin", NOW, 600);
    assert_int_equal (gw_jwt_verify_role (SECRET, strlen (SECRET), op, NOW, user, &admin, &why), 0);
    assert_true (admin);
    assert_string_equal (user, "root");
    char *viewer = tok_hs256 (SECRET, "{\"alg\":\"HS256\",\"typ\":\"JWT\"}",
                              "{\"sub\":\"bob\",\"exp\":1800000600,\"role\":\"Admin\"}");
    assert_int_equal (gw_jwt_verify_role (SECRET, strlen (SECRET), viewer, NOW, user, &admin, &why), 0);
    assert_false (admin);
    char *odd = tok_hs256 (SECRET, "{\"alg\":\"HS256\",\"typ\":\"JWT\"}",
                           "{\"sub\":\"bob\",\"exp\":1800000600,\"role\":[\"admin\"]}");
    admin = true;
    assert_int_equal (gw_jwt_verify_role (SECRET, strlen (SECRET), odd, NOW, user, &admin, &why),
                      CM_EINVAL);
    assert_false (admin);
    assert_string_equal (why, "token role claim is not a string");
    free (plain);
    free (op);
    free (viewer);
    free (odd);
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_role_claim),
        cmocka_unit_test (test_mint_then_verify),     cmocka_unit_test (test_expired_and_wrong_secret),
        cmocka_unit_test (test_alg_none_rejected),    cmocka_unit_test (test_other_hmac_alg_rejected),
        cmocka_unit_test (test_claims_required),      cmocka_unit_test (test_tampered_and_garbage),
        cmocka_unit_test (test_numeric_dates),        cmocka_unit_test (test_crit_refused),
        cmocka_unit_test (test_repeated_names_refused),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
