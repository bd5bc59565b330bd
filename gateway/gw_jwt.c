#include "gw_jwt.h"

#include "cm_error.h"
#include "gw_json.h"

#include <errno.h>
#include <jwt.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

//  Compact JWS: three base64url parts separated by exactly two dots. Checked
//  before libjwt sees the token so odd input never reaches its parser.
static bool
s_shape_ok (const char *token)
{
    size_t len = strlen (token), dots = 0;
    if (len == 0 || len > GW_TOKEN_MAX)
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = token[i];
        if (c == '.')
            dots++;
        else if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')
                   || c == '-' || c == '_'))
            return false;
    }
    return dots == 2;
}

//  libjwt parses the header and claims with jansson, which recurses per
//  nesting level: a token of 6,000 '[' would overflow the worker's stack
//  before any signature check. Decode both parts and bound their depth.
static bool
s_depth_ok (const char *token)
{
    for (int part = 0; part < 2; part++) {
        size_t len = strcspn (token, ".");
        char text[GW_TOKEN_MAX];
        size_t out = 0;
        uint32_t bits = 0;
        int nbits = 0;
        for (size_t i = 0; i < len; i++) {
            char c = token[i];
            int v = c >= 'A' && c <= 'Z'   ? c - 'A'
                    : c >= 'a' && c <= 'z' ? c - 'a' + 26
                    : c >= '0' && c <= '9' ? c - '0' + 52
                    : c == '-'             ? 62
                                           : 63;
            bits = (bits << 6) | (uint32_t) v;
            if ((nbits += 6) >= 8) {
                nbits -= 8;
                text[out++] = (char) ((bits >> nbits) & 0xff);
            }
        }
        if (gw_json_text_depth (text, out, 4) > 4)
            return false;
        token += len + 1;
    }
    return true;
}

static bool
s_user_ok (const char *user)
{
    size_t len = user ? strlen (user) : 0;
    if (len == 0 || len > GW_USER_MAX)
        return false;
    for (size_t i = 0; i < len; i++)
        if ((unsigned char) user[i] < 0x20 || user[i] == 0x7f)
            return false;
    return true;
}

int
gw_jwt_verify (const char *secret, size_t secret_len, const char *token, int64_t now,
               char *user, const char **why)
{
    *why = "invalid token";
    if (!token || !s_shape_ok (token) || !s_depth_ok (token) || !secret || secret_len == 0)
        return CM_EINVAL;
    jwt_t *jwt = NULL;
    if (jwt_decode (&jwt, token, (const unsigned char *) secret, (int) secret_len) || !jwt) {
        *why = "invalid token signature or encoding";
        return CM_EINVAL;
    }
    int rc = CM_EINVAL;
    if (jwt_get_alg (jwt) != JWT_ALG_HS256) {
        *why = "token algorithm must be HS256";
        goto done;
    }
    errno = 0;
    long exp = jwt_get_grant_int (jwt, "exp");
    if (errno || exp <= 0) {
        *why = "token has no exp claim";
        goto done;
    }
    if ((int64_t) exp <= now) {
        *why = "token expired";
        goto done;
    }
    errno = 0;
    long nbf = jwt_get_grant_int (jwt, "nbf");
    if (errno == 0 && (int64_t) nbf > now) {
        *why = "token not valid yet";
        goto done;
    }
    const char *sub = jwt_get_grant (jwt, "sub");
    if (!s_user_ok (sub)) {
        *why = "token has no valid sub claim";
        goto done;
    }
    memcpy (user, sub, strlen (sub) + 1);
    *why = NULL;
    rc = 0;
done:
    jwt_free (jwt);
    return rc;
}

char *
gw_jwt_mint (const char *secret, size_t secret_len, const char *user, int64_t now, int64_t ttl)
{
    if (!s_user_ok (user) || !secret || secret_len == 0)
        return NULL;
    jwt_t *jwt = NULL;
    if (jwt_new (&jwt))
        return NULL;
    char *token = NULL;
    if (jwt_add_grant (jwt, "sub", user) == 0 && jwt_add_grant_int (jwt, "iat", (long) now) == 0
        && jwt_add_grant_int (jwt, "exp", (long) (now + ttl)) == 0
        && jwt_set_alg (jwt, JWT_ALG_HS256, (const unsigned char *) secret, (int) secret_len)
               == 0)
        token = jwt_encode_str (jwt);
    jwt_free (jwt);
    return token;
}
