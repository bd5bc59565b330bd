/*  gw_jwt.h: HS256 bearer tokens.

    libjwt 1.10 verifies the signature for the alg named in the token's own
    header and accepts alg "none", and it checks no claims. So verification
    here decodes the header and claims itself (nesting bounded, a repeated
    name refused), pins the alg to HS256, refuses a `crit` header (no
    extension is understood, RFC 7515 4.1.11) and enforces `exp` (required,
    a NumericDate: a number, fractions allowed, 0..GW_JWT_DATE_MAX, in the
    future), `nbf` (when present, the same kind of number, not in the
    future), `sub` (required, 1..128 chars, no control characters) and
    `role` (optional; a string when present: "admin" makes the caller an
    operator, gw_admin.h).                                                */
#ifndef GW_JWT_H_INCLUDED
#define GW_JWT_H_INCLUDED

#include "cm_msg.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define GW_TOKEN_MAX 8192
//  Deepest JSON nesting of the header or the claims.
#define GW_JWT_DEPTH_MAX 4
//  Latest NumericDate accepted: 9999-12-31T23:59:59Z.
#define GW_JWT_DATE_MAX 253402300799.0

//  Verifies `token` against the secret at time now (seconds since the
//  epoch). 0 with the `sub` claim copied into user (CM_USER_MAX + 1 bytes:
//  the store's limit of a caller, cm_msg.h), or CM_EINVAL with a short
//  reason (static storage) in *why, fit to show to the client ("token
//  expired").
int gw_jwt_verify (const char *secret, size_t secret_len, const char *token, int64_t now,
                   char *user, const char **why);

//  gw_jwt_verify that also tells whether the token's role claim is
//  "admin" (*admin, may be NULL; false on failure).
int gw_jwt_verify_role (const char *secret, size_t secret_len, const char *token, int64_t now,
                        char *user, bool *admin, const char **why);

//  A new HS256 token for user valid from now for ttl seconds (negative ttl:
//  already expired, for tests). Caller frees with free(). NULL on failure.
char *gw_jwt_mint (const char *secret, size_t secret_len, const char *user, int64_t now,
                   int64_t ttl);
//  The same with a role claim (NULL: none), e.g. "admin".
char *gw_jwt_mint_role (const char *secret, size_t secret_len, const char *user,
                        const char *role, int64_t now, int64_t ttl);

#endif
