/*  test_cm_config: defaults, environment, flags, and bad values named.  */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "cm_config.h"
#include "cm_error.h"

#include <stdlib.h>
#include <string.h>

static const cm_cfg_spec_t s_specs[] = {
    CM_CFG_COMMON,
    {"TEST_PORT", "--port", CM_CFG_INT, "8080", 1, 65535, "port"},
    {"TEST_RATIO", "--ratio", CM_CFG_DBL, "0.5", 0, 2, "ratio"},
    {"TEST_SYNC", "--sync", CM_CFG_BOOL, "true", 0, 0, "sync"},
    {"TEST_NAME", "--name", CM_CFG_STR, "x", 1, 8, "name"},
};
#define N (sizeof s_specs / sizeof s_specs[0])

static int
s_load (int argc, char **argv, cm_config_t **config, char *why)
{
    return cm_config_load (s_specs, N, argc, argv, "test", "a test", config, why, 256);
}

static void
test_defaults_env_and_flags (void **state)
{
    (void) state;
    setenv ("TEST_PORT", "9000", 1);
    char *argv[] = {"test", "--ratio", "1.5", "--sync=off", "--name", "abc", NULL};
    cm_config_t *config = NULL;
    char why[256] = "";
    assert_int_equal (s_load (6, argv, &config, why), 0);
    assert_int_equal (cm_config_int (config, "TEST_PORT"), 9000);
    assert_true (cm_config_dbl (config, "TEST_RATIO") == 1.5);
    assert_false (cm_config_bool (config, "TEST_SYNC"));
    assert_string_equal (cm_config_str (config, "TEST_NAME"), "abc");
    assert_string_equal (cm_config_str (config, "CHATMESH_LOG_LEVEL"), "notice");
    cm_config_destroy (&config);
    assert_null (config);
    unsetenv ("TEST_PORT");
}

static void
test_bad_values_name_the_setting (void **state)
{
    (void) state;
    struct {
        const char *flag, *value, *expect;
    } cases[] = {{"--port", "0", "TEST_PORT"},      {"--port", "12x", "TEST_PORT"},
                 {"--ratio", "2.5", "TEST_RATIO"},  {"--ratio", "nan", "TEST_RATIO"},
                 {"--sync", "maybe", "TEST_SYNC"},  {"--name", "", "TEST_NAME"},
                 {"--name", "toolongname", "TEST_NAME"}, {"--bogus", "1", "--bogus"}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *argv[] = {"test", (char *) cases[i].flag, (char *) cases[i].value, NULL};
        cm_config_t *config = NULL;
        char why[256] = "";
        assert_int_equal (s_load (3, argv, &config, why), CM_EINVAL);
        assert_null (config);
        assert_non_null (strstr (why, cases[i].expect));
    }
    setenv ("TEST_PORT", "70000", 1);
    char *argv[] = {"test", NULL};
    cm_config_t *config = NULL;
    char why[256] = "";
    assert_int_equal (s_load (1, argv, &config, why), CM_EINVAL);
    assert_non_null (strstr (why, "environment"));
    unsetenv ("TEST_PORT");
    char *missing[] = {"test", "--port", NULL};
    assert_int_equal (s_load (2, missing, &config, why), CM_EINVAL);
}

static void
test_help (void **state)
{
    (void) state;
    char *argv[] = {"test", "--help", NULL};
    cm_config_t *config = NULL;
    char why[256];
    assert_int_equal (s_load (2, argv, &config, why), CM_CONFIG_HELP);
    assert_null (config);
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_defaults_env_and_flags),
        cmocka_unit_test (test_bad_values_name_the_setting),
        cmocka_unit_test (test_help),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
