#include "tok_util.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

char *
tok_b64url (const void *data, size_t len)
{
    static const char table[]
        = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    const unsigned char *bytes = data;
    char *out = malloc (len * 4 / 3 + 4);
    if (!out)
        return NULL;
    size_t o = 0;
    for (size_t i = 0; i < len; i += 3) {
        uint32_t v = (uint32_t) bytes[i] << 16;
        if (i + 1 < len)
            v |= (uint32_t) bytes[i + 1] << 8;
        if (i + 2 < len)
            v |= bytes[i + 2];
        out[o++] = table[(v >> 18) & 63];
        out[o++] = table[(v >> 12) & 63];
        if (i + 1 < len)
            out[o++] = table[(v >> 6) & 63];
        if (i + 2 < len)
            out[o++] = table[v & 63];
    }
    out[o] = 0;
    return out;
}

char *
tok_compose (const char *header_json, const char *claims_json, const char *signature)
{
    char *header = tok_b64url (header_json, strlen (header_json));
    char *claims = tok_b64url (claims_json, strlen (claims_json));
    char *token = NULL;
    if (header && claims) {
        size_t size = strlen (header) + strlen (claims) + strlen (signature) + 3;
        token = malloc (size);
        if (token)
            snprintf (token, size, "%s.%s.%s", header, claims, signature);
    }
    free (header);
    free (claims);
    return token;
}

char *
tok_hs256 (const char *secret, const char *header_json, const char *claims_json)
{
    //  The signing input is the first two parts: compose with no signature,
    //  then drop the trailing '.' while the MAC is taken.
    char *input = tok_compose (header_json, claims_json, "");
    if (!input)
        return NULL;
    size_t input_len = strlen (input) - 1;
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int mac_len = 0;
    char *signature = NULL;
    if (HMAC (EVP_sha256 (), secret, (int) strlen (secret), (const unsigned char *) input,
              input_len, mac, &mac_len))
        signature = tok_b64url (mac, mac_len);
    char *token = NULL;
    if (signature) {
        size_t size = input_len + 1 + strlen (signature) + 1;
        token = malloc (size);
        if (token)
            snprintf (token, size, "%.*s.%s", (int) input_len, input, signature);
    }
    free (signature);
    free (input);
    return token;
}

//  Signs jwt with alg and key and encodes it; frees jwt.
static char *
s_encode (jwt_t *jwt, jwt_alg_t alg, const char *key)
{
    char *token = NULL;
    if (jwt_set_alg (jwt, alg, (const unsigned char *) key, key ? (int) strlen (key) : 0) == 0)
        token = jwt_encode_str (jwt);
    jwt_free (jwt);
    return token;
}

char *
tok_libjwt (jwt_alg_t alg, const char *key, const char *header_json, const char *claims_json)
{
    jwt_t *jwt = NULL;
    if (jwt_new (&jwt))
        return NULL;
    if (jwt_add_grants_json (jwt, claims_json)
        || (header_json && jwt_add_headers_json (jwt, header_json))) {
        jwt_free (jwt);
        return NULL;
    }
    return s_encode (jwt, alg, key);
}

char *
tok_libjwt_claims (jwt_alg_t alg, const char *key, const char *sub, long iat, long exp)
{
    jwt_t *jwt = NULL;
    if (jwt_new (&jwt))
        return NULL;
    if (sub)
        jwt_add_grant (jwt, "sub", sub);
    if (iat)
        jwt_add_grant_int (jwt, "iat", iat);
    if (exp)
        jwt_add_grant_int (jwt, "exp", exp);
    return s_encode (jwt, alg, key);
}
