/*  chatmesh-keys: writes the CURVE key pairs of the four services.
    Usage: chatmesh-keys DIR [--replace]   (see cm_curve.h for the layout)  */
#include "cm_curve.h"

#include <stdio.h>
#include <string.h>

int
main (int argc, char **argv)
{
    if (argc < 2 || strcmp (argv[1], "--help") == 0) {
        printf ("Usage: chatmesh-keys DIR [--replace]\n"
                "Writes DIR/<service>.cert_secret and DIR/public/<service>.cert for\n"
                "store, broadcaster, regenerator and gateway. Existing key pairs are\n"
                "kept unless --replace. Point CHATMESH_CURVE_DIR at DIR to turn CURVE on.\n");
        return argc < 2 ? 2 : 0;
    }
    bool replace = argc > 2 && strcmp (argv[2], "--replace") == 0;
    if (cm_curve_generate (argv[1], replace)) {
        fprintf (stderr, "chatmesh-keys: cannot write keys into %s\n", argv[1]);
        return 1;
    }
    printf ("chatmesh-keys: keys in %s (public keys in %s/public)\n", argv[1], argv[1]);
    return 0;
}
