/*  tok_util.h: JSON Web Tokens made by hand for tests, shared by the unit
    test of the gateway's verifier (test_gw_jwt) and the service tests
    (svc_harness, svc_attack, svc_edge).

    Two ways to make one, on purpose: libjwt (tok_libjwt*), which re-writes
    the JSON it is given, and exact texts (tok_compose, tok_hs256), for the
    tokens libjwt cannot or will not produce (repeated claims, a header
    that is not JSON, a fake signature). Neither uses the gateway's code,
    so a bug in gw_jwt cannot hide behind a shared one.
    Every function returns a string the caller frees, or NULL on failure. */
#ifndef TOK_UTIL_H_INCLUDED
#define TOK_UTIL_H_INCLUDED

#include <jwt.h>
#include <stddef.h>

//  base64url of len bytes of data, without padding (RFC 7515 section 2).
char *tok_b64url (const void *data, size_t len);

//  "b64url(header_json).b64url(claims_json).signature": the texts exactly as
//  given, the signature as is (e.g. "" or a fake one).
char *tok_compose (const char *header_json, const char *claims_json, const char *signature);

//  tok_compose signed with HMAC-SHA256 and secret over the exact texts:
//  what a correct HS256 signer makes of these bytes, whatever they say.
char *tok_hs256 (const char *secret, const char *header_json, const char *claims_json);

//  Signed by libjwt with alg and key (NULL for JWT_ALG_NONE): the claims of
//  claims_json and the header parameters of header_json (NULL: libjwt's
//  own "alg" and "typ" only).
char *tok_libjwt (jwt_alg_t alg, const char *key, const char *header_json,
                  const char *claims_json);

//  tok_libjwt with the usual claims: "sub" (sub NULL: none), "iat" and
//  "exp" (0: none; these are absolute times).
char *tok_libjwt_claims (jwt_alg_t alg, const char *key, const char *sub, long iat, long exp);

#endif
