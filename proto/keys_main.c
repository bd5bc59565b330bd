/*  chatmesh-keys: writes the CURVE key pairs of the four services.
    Usage: chatmesh-keys DIR [--replace]   (see cm_curve.h for the layout)  */
#include "cm_curve.h"

#include <stdio.h>
#include <string.h>

static void
s_usage (FILE *to)
{
    fprintf (to, "Usage: chatmesh-keys DIR [--replace]\n"
                 "Writes DIR/<service>.cert_secret and DIR/public/<service>.cert for\n"
                 "store, broadcaster, regenerator and gateway. Existing key pairs are\n"
                 "kept unless --replace. Point CHATMESH_CURVE_DIR at DIR to turn CURVE on.\n");
}

int
main (int argc, char **argv)
{
    if (argc == 2 && (strcmp (argv[1], "--help") == 0 || strcmp (argv[1], "-h") == 0)) {
        s_usage (stdout);
        return 0;
    }
    if (argc < 2) {
        s_usage (stderr);
        return 2;
    }
    //  DIR first, then at most --replace: anything else is a typo, refused
    //  before a directory named after it is made.
    const char *bad = argv[1][0] == '-' ? argv[1]
                      : argc > 3        ? argv[3]
                      : argc == 3 && strcmp (argv[2], "--replace") != 0 ? argv[2]
                                                                        : NULL;
    if (bad) {
        fprintf (stderr, "chatmesh-keys: unknown argument '%s'\n", bad);
        s_usage (stderr);
        return 2;
    }
    bool replace = argc == 3;
    if (cm_curve_generate (argv[1], replace)) {
        fprintf (stderr, "chatmesh-keys: cannot write keys into %s\n", argv[1]);
        return 1;
    }
    printf ("chatmesh-keys: keys in %s (public keys in %s/public)\n", argv[1], argv[1]);
    return 0;
}
