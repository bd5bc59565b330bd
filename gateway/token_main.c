/*  chatmesh-token: mints a development bearer token for the gateway.

    chatmesh-token --user NAME [--ttl SECONDS] [--admin]
    The secret comes from CHATMESH_JWT_SECRET or CHATMESH_JWT_SECRET_FILE,
    the same settings the gateway reads. Prints the token on stdout.   */
#include "cm_error.h"
#include "gw_config.h"
#include "gw_jwt.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static void
s_usage (FILE *out)
{
    fprintf (out, "Usage: chatmesh-token --user NAME [--ttl SECONDS] [--admin]\n"
                  "Prints an HS256 token for the chatmesh gateway. The secret comes from\n"
                  "CHATMESH_JWT_SECRET or CHATMESH_JWT_SECRET_FILE. Default ttl: 3600.\n"
                  "--admin adds the claim role: \"admin\" (an operator: /api/admin/...).\n");
}

int
main (int argc, char **argv)
{
    const char *user = NULL;
    long long ttl = 3600;
    bool admin = false; //  role "admin": an operator (gw_admin.h)
    for (int i = 1; i < argc; i++) {
        if (strcmp (argv[i], "--help") == 0 || strcmp (argv[i], "-h") == 0) {
            s_usage (stdout);
            return 0;
        }
        if (strcmp (argv[i], "--admin") == 0)
            admin = true;
        else if (strcmp (argv[i], "--user") == 0 && i + 1 < argc)
            user = argv[++i];
        else if (strncmp (argv[i], "--user=", 7) == 0)
            user = argv[i] + 7;
        else if ((strcmp (argv[i], "--ttl") == 0 && i + 1 < argc)
                 || strncmp (argv[i], "--ttl=", 6) == 0) {
            const char *text = argv[i][5] == '=' ? argv[i] + 6 : argv[++i];
            char *end = NULL;
            ttl = strtoll (text, &end, 10);
            if (!*text || *end || ttl < 1 || ttl > 31536000) {
                fprintf (stderr, "chatmesh-token: --ttl: '%s' is not 1..31536000 seconds\n", text);
                return 2;
            }
        }
        else {
            fprintf (stderr, "chatmesh-token: unknown argument '%s'\n", argv[i]);
            s_usage (stderr);
            return 2;
        }
    }
    if (!user || !*user || strlen (user) > CM_USER_MAX) {
        fprintf (stderr, "chatmesh-token: --user NAME (1..%d chars) is required\n", CM_USER_MAX);
        return 2;
    }
    static char secret[GW_SECRET_MAX + 1];
    size_t secret_len = 0;
    char why[256];
    if (gw_config_secret (getenv ("CHATMESH_JWT_SECRET"), getenv ("CHATMESH_JWT_SECRET_FILE"),
                          secret, sizeof secret, &secret_len, why, sizeof why)) {
        fprintf (stderr, "chatmesh-token: %s\n", why);
        return 2;
    }
    char *token = gw_jwt_mint_role (secret, secret_len, user, admin ? "admin" : NULL,
                                     (int64_t) time (NULL), ttl);
    if (!token) {
        fprintf (stderr, "chatmesh-token: cannot mint a token for that user\n");
        return 1;
    }
    printf ("%s\n", token);
    free (token);
    return 0;
}
