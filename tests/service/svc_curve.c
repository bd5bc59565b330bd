/*  svc_curve: the mesh with CURVE on every link. The slice works; a peer
    whose key is not listed, or one without CURVE, reaches nothing.      */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "svc_harness.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char s_keys[128], s_rogue[160];

static int
s_setup (void **state)
{
    snprintf (s_keys, sizeof s_keys, "/tmp/cmkeys-XXXXXX");
    if (!mkdtemp (s_keys))
        return -1;
    snprintf (s_rogue, sizeof s_rogue, "%s/rogue", s_keys);
    char command[1024], env[200];
    snprintf (command, sizeof command, "%s/proto/chatmesh-keys %s >/dev/null && "
              "%s/proto/chatmesh-keys %s >/dev/null && cp %s/public/store.cert %s/public/ && "
              "cp %s/public/broadcaster.cert %s/public/",
              getenv ("CHATMESH_BIN_DIR"), s_keys, getenv ("CHATMESH_BIN_DIR"), s_rogue, s_keys,
              s_rogue, s_keys, s_rogue);
    if (svc_run (command, NULL, 0))
        return -1;
    snprintf (env, sizeof env, "CHATMESH_CURVE_DIR=%s", s_keys);
    const char *settings[] = {env, NULL};
    return svc_fixture_start (state, settings);
}

static int
s_teardown (void **state)
{
    svc_fixture_teardown (state);
    char command[200];
    snprintf (command, sizeof command, "rm -rf %s", s_keys);
    return svc_run (command, NULL, 0);
}

static void
test_slice_over_curve (void **state)
{
    svc_mesh_t *mesh = *state;
    char *token = svc_token (mesh, "carol", 600);
    svc_response_t response;
    assert_int_equal (svc_http (mesh, "POST", "/api/run_sse/curve_s", token,
                                "{\"query\": \"is this encrypted?\"}", &response),
                      0);
    assert_int_equal (response.status, 200);
    char path[600];
    snprintf (path, sizeof path, "/api/messages/%s/feedback",
              json_string_value (json_object_get (json_object_get (response.json, "data"),
                                                  "assistant_message_id")));
    svc_response_free (&response);
    svc_sse_t *sse = svc_sse_open (mesh, "/api/run_sse/curve_s", token, NULL);
    assert_non_null (sse);
    assert_non_null (svc_sse_wait (sse, "connection_status", 5000));
    assert_int_equal (svc_http (mesh, "POST", path, token, "{\"feedback_type\": \"upvote\"}",
                                &response),
                      0);
    assert_int_equal (response.status, 200);
    svc_response_free (&response);
    assert_non_null (svc_sse_wait (sse, "feedback_submitted", 5000));
    svc_sse_close (&sse);
    free (token);
}

static void
test_unknown_key_and_plain_peer_are_refused (void **state)
{
    svc_mesh_t *mesh = *state;
    const char *bin = getenv ("CHATMESH_BIN_DIR");
    char command[1024];
    //  The listed gateway key gets an answer from the store and the broadcaster.
    snprintf (command, sizeof command,
              "CHATMESH_CURVE_DIR=%s %s/proto/chatmesh-ping ipc://%s/sock/store 3000 >/dev/null",
              s_keys, bin, svc_mesh_dir (mesh));
    assert_int_equal (svc_run (command, NULL, 0), 0);
    snprintf (command, sizeof command,
              "CHATMESH_CURVE_DIR=%s %s/proto/chatmesh-ping --server broadcaster "
              "ipc://%s/sock/history 3000 >/dev/null",
              s_keys, bin, svc_mesh_dir (mesh));
    assert_int_equal (svc_run (command, NULL, 0), 0);
    //  A key pair the mesh does not list: no answer.
    snprintf (command, sizeof command,
              "CHATMESH_CURVE_DIR=%s %s/proto/chatmesh-ping ipc://%s/sock/store 1500 2>/dev/null",
              s_rogue, bin, svc_mesh_dir (mesh));
    assert_int_equal (svc_run (command, NULL, 0), 1);
    snprintf (command, sizeof command,
              "CHATMESH_CURVE_DIR=%s %s/proto/chatmesh-ping --server broadcaster "
              "ipc://%s/sock/history 1500 2>/dev/null",
              s_rogue, bin, svc_mesh_dir (mesh));
    assert_int_equal (svc_run (command, NULL, 0), 1);
    //  No CURVE at all: no answer.
    snprintf (command, sizeof command,
              "%s/proto/chatmesh-ping ipc://%s/sock/store 1500 2>/dev/null", bin,
              svc_mesh_dir (mesh));
    assert_int_equal (svc_run (command, NULL, 0), 1);
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_slice_over_curve),
        cmocka_unit_test (test_unknown_key_and_plain_peer_are_refused),
    };
    return cmocka_run_group_tests (tests, s_setup, s_teardown);
}
