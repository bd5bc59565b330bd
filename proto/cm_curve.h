/*  cm_curve.h: optional ZeroMQ CURVE on every service-to-service link.

    Off unless CHATMESH_CURVE_DIR names a key directory made by
    `./chatmesh keys DIR` (chatmesh-keys):
        DIR/<service>.cert_secret   a service's own key pair (keep private)
        DIR/public/<service>.cert   every service's public key
    When on, every socket that binds is a CURVE server that admits only the
    public keys in DIR/public (a zauth actor checks each handshake), and
    every socket that connects is a CURVE client that knows its server's
    public key. A peer without a listed key can neither publish events nor
    query anything: its handshake fails and no message passes.

    Services: store, broadcaster, regenerator, gateway.                  */
#ifndef CM_CURVE_H_INCLUDED
#define CM_CURVE_H_INCLUDED

#include <czmq.h>

typedef struct cm_curve cm_curve_t;

//  dir NULL or "": CURVE off, *out = NULL, returns 0 (every call below is
//  then a no-op). Otherwise loads `service`'s key pair and returns 0, or
//  CM_EINVAL with `why` naming the missing file. The first cm_curve_server
//  call starts the process's zauth actor.
int cm_curve_new (const char *dir, const char *service, cm_curve_t **out, char *why,
                  size_t why_size);
void cm_curve_destroy (cm_curve_t **self_p);

//  Call before zsock_bind: makes sock a CURVE server. 0 or CM_EINVAL.
int cm_curve_server (cm_curve_t *self, zsock_t *sock);
//  Call before zsock_connect: makes sock a CURVE client of `server` (a
//  service name). 0 or CM_EINVAL when that server's public key is missing.
int cm_curve_client (cm_curve_t *self, zsock_t *sock, const char *server);

//  Writes a fresh key pair for each service into dir (and dir/public).
//  0 or CM_EIO. Existing keys are kept unless `replace`.
int cm_curve_generate (const char *dir, bool replace);

#endif
