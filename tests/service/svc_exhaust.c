/*  svc_exhaust: connection exhaustion against one gateway (issue 25).

    10,000 idle connections plus 1,000 slowloris connections (svc_flood.h)
    are held open on one gateway while another client times GET /healthz
    and an authenticated GET /api/sessions/{id}, each on a fresh
    connection. The vestibule (gateway/gw_accept.h) holds the flood at the
    cost of a descriptor each, so every request of the other client is
    answered, none waits for a thread: the slowest one under the flood
    stays under S_STARVED_MS (3 s: one SYN retransmit on a loaded CI
    machine costs 1 s), a bound a starved gateway (requests queued behind
    held threads until the 120 s header deadline, or refused) misses by
    minutes. The speed figure,
    the flooded/quiet p99 ratio (target 2x), is bench/exhaust's: CI
    machines are too noisy for a ratio bound here (one measured 2.19x
    where the quiet machine gives 1.14x). The header deadline is raised to 120 s here so that no
    flood connection is cut during the measurement (svc_attack and
    svc_framing test the deadline); the flood comes from 60 source
    addresses so that the default per-address cap (256) holds all of it
    (svc_framing tests the cap).                                          */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "svc_flood.h"
#include "svc_harness.h"

#include <stdio.h>
#include <stdlib.h>

#define S_STARVED_MS 3000.0

static const svc_exhaust_params_t s_params = {
    .idle = 10000,
    .slow = 1000,
    .addresses = 60, //  11,000 / 60 = 184 per address, under the cap of 256
    .rounds = 3,
    .samples = 400, //  1,200 per probe and phase: the p99 is the 12th slowest
};

static void
test_flood_does_not_slow_others (void **state)
{
    (void) state;
    const char *env[] = {"CHATMESH_HEADER_TIMEOUT_MS=120000", NULL};
    svc_mesh_t *mesh = svc_mesh_start (env);
    assert_non_null (mesh);
    char *token = svc_token (mesh, "exhaust", 3600);
    svc_response_t response;
    assert_int_equal (svc_http (mesh, "POST", "/api/run_sse/exhaust_s", token,
                                "{\"query\":\"hello\"}", &response),
                      0);
    assert_int_equal (response.status, 200);
    svc_response_free (&response);

    svc_exhaust_result_t result;
    char why[256];
    if (svc_exhaust_run (mesh, token, "exhaust_s", &s_params, &result, why, sizeof why))
        fail_msg ("exhaust: %s", why);
    svc_exhaust_print (&s_params, &result);
    assert_int_equal (result.failed, 0);
    for (int p = 0; p < SVC_EXHAUST_PROBES; p++)
        if (result.flooded[p].max > S_STARVED_MS)
            fail_msg ("%s: a request under the flood took %.0f ms (starved: bound %.0f ms)",
                      result.name[p], result.flooded[p].max, S_STARVED_MS);
    //  The gateway is itself again once the flood has gone.
    assert_int_equal (svc_mesh_wait_status (mesh, "/readyz", 200, 10000), 0);
    free (token);
    svc_mesh_stop (&mesh);
}

int
main (void)
{
    long needed = s_params.idle + s_params.slow + 256;
    long limit = svc_flood_raise_nofile (20000);
    if (limit < needed) {
        fprintf (stderr, "svc_exhaust: needs %ld file descriptors, RLIMIT_NOFILE allows %ld\n",
                 needed, limit);
        return 77;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_flood_does_not_slow_others),
    };
    return cmocka_run_group_tests_name ("exhaust", tests, NULL, NULL);
}
