//  gw_config: the gateway's settings come from one table; defaults, the
//  environment and flags in that order, each value checked.
#include "gw_config.h"
#include "cm_error.h"
#include "cm_log.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#define SECRET "a-test-secret-of-at-least-32-bytes!!"

static int
s_setup (void **state)
{
    (void) state;
    setenv ("CHATMESH_JWT_SECRET", SECRET, 1);
    unsetenv ("CHATMESH_SSE_MAX_STREAMS");
    unsetenv ("CHATMESH_HTTP_THREADS");
    unsetenv ("CHATMESH_LOG_LEVEL");
    return 0;
}

static int
s_load (int argc, char **argv, gw_config_t *config, char *why, size_t size)
{
    why[0] = 0;
    return gw_config_load (argc, argv, config, why, size);
}

//  gw_config_defaults is the table's defaults: the same as a load with an
//  empty environment (the drift this replaces had sse_max_streams 64 vs 1000).
static void
test_defaults_are_the_table (void **state)
{
    (void) state;
    static gw_config_t loaded, defaults;
    char why[256];
    char *argv[] = {"chatmesh-gateway", NULL};
    assert_int_equal (s_load (1, argv, &loaded, why, sizeof why), 0);
    gw_config_defaults (&defaults, SECRET);
    assert_int_equal (memcmp (&loaded, &defaults, sizeof loaded), 0);
    assert_int_equal (defaults.sse_max_streams, 1000);
    assert_string_equal (defaults.store_endpoint, "tcp://127.0.0.1:7101");
    assert_int_equal (defaults.log_level, CM_LOG_NOTICE);
}

static void
test_environment_then_flags (void **state)
{
    (void) state;
    static gw_config_t config;
    char why[256];
    setenv ("CHATMESH_SSE_MAX_STREAMS", "77", 1);
    setenv ("CHATMESH_HTTP_THREADS", "20", 1);
    char *argv[] = {"chatmesh-gateway", "--http-threads", "30", "--log-level=debug", NULL};
    assert_int_equal (s_load (4, argv, &config, why, sizeof why), 0);
    assert_int_equal (config.sse_max_streams, 77);
    assert_int_equal (config.http_threads, 30);
    assert_int_equal (config.log_level, CM_LOG_DEBUG);
    unsetenv ("CHATMESH_SSE_MAX_STREAMS");
    unsetenv ("CHATMESH_HTTP_THREADS");
}

static void
test_bad_values_name_the_setting (void **state)
{
    (void) state;
    static gw_config_t config;
    char why[256];
    char *out_of_range[] = {"chatmesh-gateway", "--http-threads", "0", NULL};
    assert_int_equal (s_load (3, out_of_range, &config, why, sizeof why), CM_EINVAL);
    assert_non_null (strstr (why, "CHATMESH_HTTP_THREADS"));
    char *level[] = {"chatmesh-gateway", "--log-level", "loud", NULL};
    assert_int_equal (s_load (3, level, &config, why, sizeof why), CM_EINVAL);
    assert_non_null (strstr (why, "CHATMESH_LOG_LEVEL"));
    char *unknown[] = {"chatmesh-gateway", "--no-such-flag", "1", NULL};
    assert_int_equal (s_load (3, unknown, &config, why, sizeof why), CM_EINVAL);
    assert_non_null (strstr (why, "--no-such-flag"));
    char *missing[] = {"chatmesh-gateway", "--http-threads", NULL};
    assert_int_equal (s_load (2, missing, &config, why, sizeof why), CM_EINVAL);
    assert_non_null (strstr (why, "needs a value"));
    char long_endpoint[300];
    memset (long_endpoint, 'x', sizeof long_endpoint - 1);
    long_endpoint[sizeof long_endpoint - 1] = 0;
    char *endpoint[] = {"chatmesh-gateway", "--store-endpoint", long_endpoint, NULL};
    assert_int_equal (s_load (3, endpoint, &config, why, sizeof why), CM_EINVAL);
    assert_non_null (strstr (why, "CHATMESH_STORE_ENDPOINT"));
    //  The shard list: a bad one names the setting and the item.
    char *shards[] = {"chatmesh-gateway", "--store-shards", "a=tcp://h:1,a=tcp://h:2", NULL};
    assert_int_equal (s_load (3, shards, &config, why, sizeof why), CM_EINVAL);
    assert_non_null (strstr (why, "CHATMESH_STORE_SHARDS"));
    assert_non_null (strstr (why, "name listed twice"));
    char *good[] = {"chatmesh-gateway", "--store-shards", "a=tcp://h:1,b=tcp://h:2", NULL};
    assert_int_equal (s_load (3, good, &config, why, sizeof why), 0);
    assert_int_equal (config.store_shards.count, 2);
    assert_string_equal (config.store_shards.shards[1].endpoint, "tcp://h:2");
    char *none[] = {"chatmesh-gateway", NULL};
    assert_int_equal (s_load (1, none, &config, why, sizeof why), 0);
    assert_int_equal (config.store_shards.count, 0); //  one shard: CHATMESH_STORE_ENDPOINT
    assert_int_equal (config.store_reads, CM_READS_LEADER);
}

//  A replicated shard's node list and where its reads go (cm_leader.h).
static void
test_store_nodes_and_reads (void **state)
{
    (void) state;
    static gw_config_t config;
    char why[256];
    char *twice[] = {"chatmesh-gateway", "--store-endpoint", "tcp://h:1,tcp://g:1,tcp://h:1", NULL};
    assert_int_equal (s_load (3, twice, &config, why, sizeof why), CM_EINVAL);
    assert_string_equal (why, "CHATMESH_STORE_ENDPOINT: node tcp://h:1 is listed twice");
    char nine[400] = "a=tcp://n0:1";
    for (int i = 1; i <= CM_LEADER_ENDPOINTS_MAX; i++)
        snprintf (nine + strlen (nine), sizeof nine - strlen (nine), ",tcp://n%d:1", i);
    char *many[] = {"chatmesh-gateway", "--store-shards", nine, NULL};
    assert_int_equal (s_load (3, many, &config, why, sizeof why), CM_EINVAL);
    assert_non_null (strstr (why, "CHATMESH_STORE_SHARDS: shard a: more than 8 store nodes"));
    *strrchr (nine, ',') = '\0';
    assert_int_equal (s_load (3, many, &config, why, sizeof why), 0);
    char *three[] = {"chatmesh-gateway", "--store-endpoint", "tcp://a:1,tcp://b:1,tcp://c:1",
                     "--store-reads", "any", NULL};
    assert_int_equal (s_load (5, three, &config, why, sizeof why), 0);
    assert_int_equal (config.store_reads, CM_READS_ANY);
    char *bad[] = {"chatmesh-gateway", "--store-reads", "nearby", NULL};
    assert_int_equal (s_load (3, bad, &config, why, sizeof why), CM_EINVAL);
    assert_string_equal (why, "CHATMESH_STORE_READS: \"nearby\" is neither leader nor any");
}

static void
test_secret_is_required_and_long_enough (void **state)
{
    (void) state;
    static gw_config_t config;
    char why[256];
    char *argv[] = {"chatmesh-gateway", NULL};
    unsetenv ("CHATMESH_JWT_SECRET");
    assert_int_equal (s_load (1, argv, &config, why, sizeof why), CM_EINVAL);
    assert_non_null (strstr (why, "CHATMESH_JWT_SECRET"));
    setenv ("CHATMESH_JWT_SECRET", "short", 1);
    assert_int_equal (s_load (1, argv, &config, why, sizeof why), CM_EINVAL);
    assert_non_null (strstr (why, "at least"));
    setenv ("CHATMESH_JWT_SECRET", SECRET, 1);
    assert_int_equal (s_load (1, argv, &config, why, sizeof why), 0);
    assert_int_equal (config.secret_len, strlen (SECRET));
}

static void
test_help_is_answered (void **state)
{
    (void) state;
    static gw_config_t config;
    char why[256];
    char *argv[] = {"chatmesh-gateway", "--help", NULL};
    fflush (stdout);
    FILE *saved = stdout;
    stdout = fopen ("/dev/null", "w");
    int rc = s_load (2, argv, &config, why, sizeof why);
    fclose (stdout);
    stdout = saved;
    assert_int_equal (rc, GW_CONFIG_HELP);
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup (test_defaults_are_the_table, s_setup),
        cmocka_unit_test_setup (test_environment_then_flags, s_setup),
        cmocka_unit_test_setup (test_bad_values_name_the_setting, s_setup),
        cmocka_unit_test_setup (test_store_nodes_and_reads, s_setup),
        cmocka_unit_test_setup (test_secret_is_required_and_long_enough, s_setup),
        cmocka_unit_test_setup (test_help_is_answered, s_setup),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
