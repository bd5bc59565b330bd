/*  gw_jwt.h: HS256 bearer tokens.

    libjwt 1.10 verifies the signature for the alg named in the token's own
    header and accepts alg "none", and it checks no claims. So verification
    here pins the alg to HS256 and enforces `exp` (required, in the future),
    `nbf` (when present, not in the future) and `sub` (required, 1..128
    chars, no control characters) itself.                                   */
#ifndef GW_JWT_H_INCLUDED
#define GW_JWT_H_INCLUDED

#include <stddef.h>
#include <stdint.h>

#define GW_USER_MAX 128
#define GW_TOKEN_MAX 8192

//  Verifies `token` against the secret at time now (seconds since the
//  epoch). 0 with the `sub` claim copied into user (GW_USER_MAX + 1 bytes),
//  or CM_EINVAL with a short reason (static storage) in *why, fit to show
//  to the client ("token expired").
int gw_jwt_verify (const char *secret, size_t secret_len, const char *token, int64_t now,
                   char *user, const char **why);

//  A new HS256 token for user valid from now for ttl seconds (negative ttl:
//  already expired, for tests). Caller frees with free(). NULL on failure.
char *gw_jwt_mint (const char *secret, size_t secret_len, const char *user, int64_t now,
                   int64_t ttl);

#endif
