/*  test_cm_curve: with CURVE on, a listed key talks, others get nothing.  */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "cm_curve.h"
#include "cm_error.h"
#include "cm_rpc.h"

#include <stdlib.h>
#include <string.h>

typedef struct {
    char dir[64];
    char endpoint[128];
    cm_curve_t *server_curve;
    zsock_t *router;
} fixture_t;

static int
s_setup (void **state)
{
    fixture_t *f = calloc (1, sizeof *f);
    snprintf (f->dir, sizeof f->dir, "/tmp/cmcurve-XXXXXX");
    if (!mkdtemp (f->dir))
        return -1;
    snprintf (f->endpoint, sizeof f->endpoint, "ipc://%s/store", f->dir);
    if (cm_curve_generate (f->dir, false))
        return -1;
    char why[256];
    if (cm_curve_new (f->dir, "store", &f->server_curve, why, sizeof why))
        return -1;
    f->router = zsock_new (ZMQ_ROUTER);
    cm_curve_server (f->server_curve, f->router);
    if (zsock_bind (f->router, "%s", f->endpoint))
        return -1;
    *state = f;
    return 0;
}

static int
s_teardown (void **state)
{
    fixture_t *f = *state;
    zsock_destroy (&f->router);
    cm_curve_destroy (&f->server_curve);
    char command[128];
    snprintf (command, sizeof command, "rm -rf %s", f->dir);
    assert_int_equal (system (command), 0);
    free (f);
    return 0;
}

//  Answers one request on the router if one arrives within timeout_ms.
static bool
s_serve_one (zsock_t *router, int timeout_ms)
{
    zpoller_t *poller = zpoller_new (router, NULL);
    bool served = false;
    if (zpoller_wait (poller, timeout_ms)) {
        zmsg_t *msg = zmsg_recv (router);
        zframe_t *identity = zmsg_pop (msg);
        cm_envelope_t *request = NULL;
        if (cm_frame_decode (zmsg_first (msg), &request) == 0) {
            cm_envelope_t *reply = cm_envelope_reply_ok (request, NULL);
            cm_router_reply (router, identity, reply);
            cm_envelope_destroy (&reply);
            cm_envelope_destroy (&request);
            served = true;
        }
        zframe_destroy (&identity);
        zmsg_destroy (&msg);
    }
    zpoller_destroy (&poller);
    return served;
}

static void
test_listed_key_is_served (void **state)
{
    fixture_t *f = *state;
    cm_curve_t *client_curve = NULL;
    char why[256];
    assert_int_equal (cm_curve_new (f->dir, "gateway", &client_curve, why, sizeof why), 0);
    zsock_t *dealer = cm_dealer_new_curve (f->endpoint, client_curve, "store");
    assert_non_null (dealer);
    //  The handshake takes a moment: ZMQ_IMMEDIATE refuses sends until then.
    cm_envelope_t *request = cm_envelope_new (CM_MSG_PING, "p1");
    zframe_t *frame = NULL;
    assert_int_equal (cm_frame_encode (request, &frame), 0);
    zsock_set_sndtimeo (dealer, 5000);
    assert_int_equal (zframe_send (&frame, dealer, 0), 0);
    assert_true (s_serve_one (f->router, 5000));
    zmsg_t *reply = zmsg_recv (dealer);
    assert_non_null (reply);
    zmsg_destroy (&reply);
    cm_envelope_destroy (&request);
    zsock_destroy (&dealer);
    cm_curve_destroy (&client_curve);
}

static void
test_unknown_key_and_plain_peer_get_nothing (void **state)
{
    fixture_t *f = *state;
    //  A key pair that is not in DIR/public.
    char rogue_dir[96];
    snprintf (rogue_dir, sizeof rogue_dir, "%s/rogue", f->dir);
    assert_int_equal (cm_curve_generate (rogue_dir, false), 0);
    char server_pub[160], copy[512];
    snprintf (server_pub, sizeof server_pub, "%s/public/store.cert", f->dir);
    snprintf (copy, sizeof copy, "cp %s %s/public/store.cert", server_pub, rogue_dir);
    assert_int_equal (system (copy), 0); //  it knows the server, not vice versa
    cm_curve_t *rogue = NULL;
    char why[256];
    assert_int_equal (cm_curve_new (rogue_dir, "gateway", &rogue, why, sizeof why), 0);
    zsock_t *dealer = cm_dealer_new_curve (f->endpoint, rogue, "store");
    zsock_t *plain = cm_dealer_new (f->endpoint);
    cm_envelope_t *request = cm_envelope_new (CM_MSG_PING, "p2"), *reply = NULL;
    int rc = cm_call (dealer, request, 500, &reply);
    assert_true (rc == CM_EBACKEND || rc == CM_ETIMEOUT);
    rc = cm_call (plain, request, 500, &reply);
    assert_true (rc == CM_EBACKEND || rc == CM_ETIMEOUT);
    assert_false (s_serve_one (f->router, 300)); //  nothing reached the server
    assert_null (reply);
    cm_envelope_destroy (&request);
    zsock_destroy (&dealer);
    zsock_destroy (&plain);
    cm_curve_destroy (&rogue);
}

static void
test_off_without_dir_and_missing_keys_named (void **state)
{
    (void) state;
    cm_curve_t *curve = (cm_curve_t *) 0x1;
    char why[256] = "";
    assert_int_equal (cm_curve_new (NULL, "store", &curve, why, sizeof why), 0);
    assert_null (curve);
    assert_int_equal (cm_curve_new ("", "store", &curve, why, sizeof why), 0);
    assert_null (curve);
    assert_int_equal (cm_curve_new ("/nonexistent", "store", &curve, why, sizeof why),
                      CM_EINVAL);
    assert_non_null (strstr (why, "store.cert_secret"));
    assert_int_equal (cm_curve_server (NULL, NULL), 0); //  off: no-op
}

int
main (void)
{
    zsys_handler_set (NULL);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown (test_listed_key_is_served, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_unknown_key_and_plain_peer_get_nothing, s_setup,
                                         s_teardown),
        cmocka_unit_test (test_off_without_dir_and_missing_keys_named),
    };
    int rc = cmocka_run_group_tests (tests, NULL, NULL);
    zsys_shutdown ();
    return rc;
}
