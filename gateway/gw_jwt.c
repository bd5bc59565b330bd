#include "gw_jwt.h"

#include "cm_error.h"
#include "gw_json.h"

#include <jansson.h>
#include <jwt.h>
#include <math.h>
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

//  base64url-decodes the part of token up to the next '.' or the end into
//  out (at least GW_TOKEN_MAX bytes). Returns the length decoded.
static size_t
s_b64url_decode (const char *part, size_t len, char *out)
{
    size_t n = 0;
    uint32_t bits = 0;
    int nbits = 0;
    for (size_t i = 0; i < len; i++) {
        char c = part[i];
        int v = c >= 'A' && c <= 'Z'   ? c - 'A'
                : c >= 'a' && c <= 'z' ? c - 'a' + 26
                : c >= '0' && c <= '9' ? c - '0' + 52
                : c == '-'             ? 62
                                       : 63;
        bits = (bits << 6) | (uint32_t) v;
        if ((nbits += 6) >= 8) {
            nbits -= 8;
            out[n++] = (char) ((bits >> nbits) & 0xff);
        }
    }
    return n;
}

//  Decodes one part of the token as a JSON object. libjwt parses with
//  jansson too, which recurses per nesting level (6,000 '[' would overflow
//  a worker's stack), and which keeps the last of two equal names: the
//  depth is bounded first and a repeated name refuses the token.
static json_t *
s_part_json (const char *part, size_t len, char *scratch, const char **why)
{
    size_t n = s_b64url_decode (part, len, scratch);
    if (gw_json_text_depth (scratch, n, GW_JWT_DEPTH_MAX) > GW_JWT_DEPTH_MAX) {
        *why = "token JSON is nested too deeply";
        return NULL;
    }
    json_error_t error;
    json_t *json = json_loadb (scratch, n, JSON_REJECT_DUPLICATES, &error);
    if (!json && json_error_code (&error) == json_error_duplicate_key) {
        *why = "token repeats a header parameter or claim";
        return NULL;
    }
    if (!json_is_object (json)) {
        json_decref (json);
        *why = "invalid token encoding";
        return NULL;
    }
    return json;
}

//  A NumericDate claim (RFC 7519 2: seconds, fractions allowed) into *value.
//  0, CM_ENOTFOUND when absent, or CM_EINVAL with a reason.
static int
s_numeric_date (json_t *claims, const char *name, double *value, const char **why)
{
    json_t *claim = json_object_get (claims, name);
    if (!claim)
        return CM_ENOTFOUND;
    if (!json_is_number (claim)) {
        *why = strcmp (name, "exp") == 0 ? "token exp claim is not a number"
                                         : "token nbf claim is not a number";
        return CM_EINVAL;
    }
    double date = json_number_value (claim);
    if (!isfinite (date) || date < 0 || date > GW_JWT_DATE_MAX) {
        *why = strcmp (name, "exp") == 0 ? "token exp claim is out of range"
                                         : "token nbf claim is out of range";
        return CM_EINVAL;
    }
    *value = date;
    return 0;
}

static bool
s_user_ok (const char *user, size_t len)
{
    if (!user || len == 0 || len > CM_USER_MAX || strlen (user) != len)
        return false;
    for (size_t i = 0; i < len; i++)
        if ((unsigned char) user[i] < 0x20 || user[i] == 0x7f)
            return false;
    return true;
}

//  The header and claims, once the signature is known to be good.
static int
s_check (json_t *header, json_t *claims, int64_t now, char *user, bool *admin, const char **why)
{
    const char *alg = json_string_value (json_object_get (header, "alg"));
    if (!alg || strcmp (alg, "HS256") != 0) {
        *why = "token algorithm must be HS256";
        return CM_EINVAL;
    }
    //  RFC 7515 4.1.11: extensions named in crit must be understood, and
    //  this gateway understands none.
    if (json_object_get (header, "crit")) {
        *why = "token header has crit extensions, none is supported";
        return CM_EINVAL;
    }
    double exp = 0, nbf = 0;
    int rc = s_numeric_date (claims, "exp", &exp, why);
    if (rc == CM_ENOTFOUND)
        *why = "token has no exp claim";
    if (rc)
        return CM_EINVAL;
    if (exp <= (double) now) {
        *why = "token expired";
        return CM_EINVAL;
    }
    rc = s_numeric_date (claims, "nbf", &nbf, why);
    if (rc == CM_EINVAL)
        return CM_EINVAL;
    if (rc == 0 && nbf > (double) now) {
        *why = "token not valid yet";
        return CM_EINVAL;
    }
    json_t *sub = json_object_get (claims, "sub");
    if (!s_user_ok (json_string_value (sub), json_string_length (sub))) {
        *why = "token has no valid sub claim";
        return CM_EINVAL;
    }
    json_t *role = json_object_get (claims, "role");
    if (role && !json_is_string (role)) {
        *why = "token role claim is not a string";
        return CM_EINVAL;
    }
    memcpy (user, json_string_value (sub), json_string_length (sub) + 1);
    if (admin)
        *admin = role && strcmp (json_string_value (role), "admin") == 0;
    return 0;
}

int
gw_jwt_verify (const char *secret, size_t secret_len, const char *token, int64_t now,
               char *user, const char **why)
{
    return gw_jwt_verify_role (secret, secret_len, token, now, user, NULL, why);
}

int
gw_jwt_verify_role (const char *secret, size_t secret_len, const char *token, int64_t now,
                    char *user, bool *admin, const char **why)
{
    if (admin)
        *admin = false;
    *why = "invalid token";
    if (!token || !s_shape_ok (token) || !secret || secret_len == 0)
        return CM_EINVAL;
    char *scratch = malloc (GW_TOKEN_MAX);
    if (!scratch)
        return CM_EINVAL;
    size_t header_len = strcspn (token, ".");
    const char *payload = token + header_len + 1;
    json_t *header = s_part_json (token, header_len, scratch, why);
    json_t *claims = header ? s_part_json (payload, strcspn (payload, "."), scratch, why) : NULL;
    free (scratch);
    int rc = CM_EINVAL;
    jwt_t *jwt = NULL;
    if (!claims)
        goto done;
    if (jwt_decode (&jwt, token, (const unsigned char *) secret, (int) secret_len) || !jwt) {
        *why = "invalid token signature or encoding";
        goto done;
    }
    rc = s_check (header, claims, now, user, admin, why);
    if (rc == 0)
        *why = NULL;
done:
    jwt_free (jwt);
    json_decref (header);
    json_decref (claims);
    return rc;
}

char *
gw_jwt_mint (const char *secret, size_t secret_len, const char *user, int64_t now, int64_t ttl)
{
    return gw_jwt_mint_role (secret, secret_len, user, NULL, now, ttl);
}

char *
gw_jwt_mint_role (const char *secret, size_t secret_len, const char *user, const char *role,
                  int64_t now, int64_t ttl)
{
    if (!user || !s_user_ok (user, strlen (user)) || !secret || secret_len == 0)
        return NULL;
    jwt_t *jwt = NULL;
    if (jwt_new (&jwt))
        return NULL;
    char *token = NULL;
    if (jwt_add_grant (jwt, "sub", user) == 0 && jwt_add_grant_int (jwt, "iat", (long) now) == 0
        && jwt_add_grant_int (jwt, "exp", (long) (now + ttl)) == 0
        && (!role || jwt_add_grant (jwt, "role", role) == 0)
        && jwt_set_alg (jwt, JWT_ALG_HS256, (const unsigned char *) secret, (int) secret_len)
               == 0)
        token = jwt_encode_str (jwt);
    jwt_free (jwt);
    return token;
}
