/*  svc_binaries: what every service binary promises an operator: --help,
    a bad setting refused at start naming the setting (exit 2), and a
    clean exit (0) on SIGTERM while serving.                             */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "svc_harness.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

static const char *s_services[] = {"store", "broadcaster", "regenerator", "gateway"};

static void
test_help_lists_the_settings (void **state)
{
    (void) state;
    for (size_t i = 0; i < 4; i++) {
        char command[512], output[32768];
        snprintf (command, sizeof command, "%s/%s/chatmesh-%s --help 2>&1",
                  getenv ("CHATMESH_BIN_DIR"), s_services[i], s_services[i]);
        assert_int_equal (svc_run (command, output, sizeof output), 0);
        assert_non_null (strstr (output, "Usage"));
        assert_non_null (strstr (output, "CHATMESH_LOG_LEVEL"));
        assert_non_null (strstr (output, "CHATMESH_CURVE_DIR"));
    }
}

//  chatmesh-ping (health checks): --help answers 0, a mistyped option is
//  named and exits 2 instead of passing for a ping.
static void
test_ping_options (void **state)
{
    (void) state;
    char command[512], output[4096];
    snprintf (command, sizeof command, "%s/proto/chatmesh-ping --help 2>&1",
              getenv ("CHATMESH_BIN_DIR"));
    assert_int_equal (svc_run (command, output, sizeof output), 0);
    assert_non_null (strstr (output, "--worker-prefix"));
    snprintf (command, sizeof command,
              "%s/proto/chatmesh-ping --worker-prefx rg- tcp://127.0.0.1:1 100 2>&1",
              getenv ("CHATMESH_BIN_DIR"));
    assert_int_equal (svc_run (command, output, sizeof output), 2);
    assert_non_null (strstr (output, "unknown option '--worker-prefx'"));
}

static void
test_bad_settings_are_named (void **state)
{
    (void) state;
    //  One bad value per service, through the environment and through a flag.
    struct {
        const char *service, *setting, *assignment;
    } cases[] = {
        {"store", "CHATMESH_STORE_READERS", "CHATMESH_STORE_READERS=0"},
        {"broadcaster", "CHATMESH_HISTORY_MAX_EVENTS", "CHATMESH_HISTORY_MAX_EVENTS=lots"},
        {"regenerator", "CHATMESH_GENERATOR", "CHATMESH_GENERATOR=magic"},
        {"gateway", "CHATMESH_JWT_SECRET", "CHATMESH_JWT_SECRET="},
        {"store", "CHATMESH_LOG_LEVEL", "CHATMESH_LOG_LEVEL=loud"},
        {"gateway", "CHATMESH_TRUSTED_PROXIES",
         "CHATMESH_JWT_SECRET=0123456789abcdef CHATMESH_TRUSTED_PROXIES=10.0.0.0/8,bogus"},
        {"gateway", "CHATMESH_HTTP_REQUEST_TIMEOUT_MS",
         "CHATMESH_JWT_SECRET=0123456789abcdef CHATMESH_HTTP_REQUEST_TIMEOUT_MS=10"},
        {"gateway", "CHATMESH_TRUSTED_PROXY_HOPS",
         "CHATMESH_JWT_SECRET=0123456789abcdef CHATMESH_TRUSTED_PROXY_HOPS=0"},
        {"gateway", "CHATMESH_BACKEND_SOCKETS",
         "CHATMESH_JWT_SECRET=0123456789abcdef CHATMESH_BACKEND_SOCKETS=401"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char command[512], output[4096];
        snprintf (command, sizeof command, "env -u CHATMESH_JWT_SECRET %s %s/%s/chatmesh-%s 2>&1",
                  cases[i].assignment, getenv ("CHATMESH_BIN_DIR"), cases[i].service,
                  cases[i].service);
        assert_int_equal (svc_run (command, output, sizeof output), 2);
        if (!strstr (output, cases[i].setting))
            fail_msg ("%s: '%s' does not name %s", cases[i].service, output, cases[i].setting);
    }
    char command[512], output[4096];
    snprintf (command, sizeof command, "%s/store/chatmesh-store --store-sync maybe 2>&1",
              getenv ("CHATMESH_BIN_DIR"));
    assert_int_equal (svc_run (command, output, sizeof output), 2);
    assert_non_null (strstr (output, "CHATMESH_STORE_SYNC"));
    snprintf (command, sizeof command, "%s/store/chatmesh-store --no-such-flag 1 2>&1",
              getenv ("CHATMESH_BIN_DIR"));
    assert_int_equal (svc_run (command, output, sizeof output), 2);
    assert_non_null (strstr (output, "--no-such-flag"));
    //  The bad entry is named too, not only the setting.
    snprintf (command, sizeof command,
              "%s/gateway/chatmesh-gateway --jwt-secret 0123456789abcdef "
              "--trusted-proxies '127.0.0.1, 10.0.0.1/8' 2>&1",
              getenv ("CHATMESH_BIN_DIR"));
    assert_int_equal (svc_run (command, output, sizeof output), 2);
    assert_non_null (strstr (output, "CHATMESH_TRUSTED_PROXIES"));
    assert_non_null (strstr (output, "'10.0.0.1/8'"));
}

static void
test_sigterm_exits_cleanly (void **state)
{
    (void) state;
    svc_mesh_t *mesh = svc_mesh_start (NULL);
    assert_non_null (mesh);
    //  Serve one request first, so every service has live sockets and threads.
    char *token = svc_token (mesh, "term", 60);
    svc_response_t response;
    assert_int_equal (svc_http (mesh, "POST", "/api/run_sse/term_s", token,
                                "{\"query\": \"stop cleanly\"}", &response),
                      0);
    assert_int_equal (response.status, 200);
    svc_response_free (&response);
    free (token);
    for (int i = 3; i >= 0; i--) {
        assert_int_equal (svc_mesh_kill (mesh, s_services[i], SIGTERM), 0);
        int status = svc_mesh_exit_status (mesh, s_services[i]);
        if (!WIFEXITED (status) || WEXITSTATUS (status) != 0)
            fail_msg ("%s did not exit 0 on SIGTERM (wait status %d)", s_services[i], status);
    }
    svc_mesh_stop (&mesh);
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_help_lists_the_settings),
        cmocka_unit_test (test_ping_options),
        cmocka_unit_test (test_bad_settings_are_named),
        cmocka_unit_test (test_sigterm_exits_cleanly),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
