#include "cm_curve.h"
#include "cm_error.h"

#include <stdio.h>
#include <sys/stat.h>

static const char *s_services[] = {"store", "broadcaster", "regenerator", "gateway"};
#define SERVICE_COUNT (sizeof s_services / sizeof s_services[0])

struct cm_curve {
    char dir[512];
    zcert_t *cert;
    zactor_t *auth;
};

int
cm_curve_new (const char *dir, const char *service, cm_curve_t **out, char *why,
              size_t why_size)
{
    *out = NULL;
    if (!dir || !*dir)
        return 0;
    char path[600];
    snprintf (path, sizeof path, "%s/%s.cert_secret", dir, service);
    zcert_t *cert = zcert_load (path);
    if (!cert) {
        snprintf (why, why_size, "CHATMESH_CURVE_DIR: cannot read key pair %s", path);
        return CM_EINVAL;
    }
    cm_curve_t *self = calloc (1, sizeof *self);
    snprintf (self->dir, sizeof self->dir, "%s", dir);
    self->cert = cert;
    *out = self;
    return 0;
}

void
cm_curve_destroy (cm_curve_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    zactor_destroy (&(*self_p)->auth);
    zcert_destroy (&(*self_p)->cert);
    free (*self_p);
    *self_p = NULL;
}

int
cm_curve_server (cm_curve_t *self, zsock_t *sock)
{
    if (!self)
        return 0;
    if (!self->auth) {
        //  zauth answers every ZAP request of this process: CURVE handshakes
        //  pass only for public keys found in DIR/public. One per process
        //  (it binds the ZAP endpoint), so only processes that bind start it.
        self->auth = zactor_new (zauth, NULL);
        char path[600];
        snprintf (path, sizeof path, "%s/public", self->dir);
        zstr_sendx (self->auth, "CURVE", path, NULL);
        zsock_wait (self->auth);
    }
    zcert_apply (self->cert, sock);
    zsock_set_curve_server (sock, 1);
    zsock_set_zap_domain (sock, "chatmesh");
    return 0;
}

int
cm_curve_client (cm_curve_t *self, zsock_t *sock, const char *server)
{
    if (!self)
        return 0;
    char path[600];
    snprintf (path, sizeof path, "%s/public/%s.cert", self->dir, server);
    zcert_t *server_cert = zcert_load (path);
    if (!server_cert)
        return CM_EINVAL;
    zcert_apply (self->cert, sock);
    zsock_set_curve_serverkey (sock, zcert_public_txt (server_cert));
    zcert_destroy (&server_cert);
    return 0;
}

int
cm_curve_generate (const char *dir, bool replace)
{
    char path[600];
    snprintf (path, sizeof path, "%s/public", dir);
    if (zsys_dir_create ("%s", path))
        return CM_EIO;
    chmod (dir, 0700);
    for (size_t i = 0; i < SERVICE_COUNT; i++) {
        snprintf (path, sizeof path, "%s/%s.cert_secret", dir, s_services[i]);
        zcert_t *cert = replace ? NULL : zcert_load (path);
        if (!cert) {
            cert = zcert_new ();
            zcert_set_meta (cert, "service", "%s", s_services[i]);
            snprintf (path, sizeof path, "%s/%s.cert", dir, s_services[i]);
            //  Writes <name>.cert (public) and <name>.cert_secret (both keys).
            if (zcert_save (cert, path)) {
                zcert_destroy (&cert);
                return CM_EIO;
            }
            snprintf (path, sizeof path, "%s/%s.cert_secret", dir, s_services[i]);
            chmod (path, 0600);
            snprintf (path, sizeof path, "%s/%s.cert", dir, s_services[i]);
            remove (path); //  the public copy lives under public/
        }
        snprintf (path, sizeof path, "%s/public/%s.cert", dir, s_services[i]);
        int rc = zcert_save_public (cert, path);
        zcert_destroy (&cert);
        if (rc)
            return CM_EIO;
    }
    return 0;
}
