/*  test_gw_static: CHATMESH_WEB_LIBS parsing and which file a static
    request serves (the web dir, /lib/NAME, nothing else).              */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "cm_error.h"
#include "gw_static.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char s_dir[64];
static char s_outside[PATH_MAX];

static void
s_write (const char *path, const char *text)
{
    FILE *f = fopen (path, "w");
    assert_non_null (f);
    fputs (text, f);
    fclose (f);
}

static int
s_setup (void **state)
{
    (void) state;
    snprintf (s_dir, sizeof s_dir, "/tmp/test_gw_static.XXXXXX");
    assert_non_null (mkdtemp (s_dir));
    char path[PATH_MAX];
    snprintf (path, sizeof path, "%s/web", s_dir);
    assert_int_equal (mkdir (path, 0700), 0);
    snprintf (path, sizeof path, "%s/web/index.html", s_dir);
    s_write (path, "<p>hi</p>");
    snprintf (path, sizeof path, "%s/web/js", s_dir);
    assert_int_equal (mkdir (path, 0700), 0);
    snprintf (path, sizeof path, "%s/web/js/app.js", s_dir);
    s_write (path, "x");
    snprintf (s_outside, sizeof s_outside, "%s/lib.js", s_dir);
    s_write (s_outside, "lib");
    snprintf (path, sizeof path, "%s/web/escape.js", s_dir);
    assert_int_equal (symlink (s_outside, path), 0);
    return 0;
}

static int
s_teardown (void **state)
{
    (void) state;
    char cmd[128];
    snprintf (cmd, sizeof cmd, "rm -rf %s", s_dir);
    return system (cmd) == 0 ? 0 : -1;
}

static void
test_libs_parse (void **state)
{
    (void) state;
    gw_web_libs_t libs;
    char why[256] = "";
    assert_int_equal (gw_web_libs_parse ("", &libs, why, sizeof why), 0);
    assert_int_equal (libs.count, 0);
    assert_int_equal (gw_web_libs_parse (GW_WEB_LIBS_DEFAULT, &libs, why, sizeof why), 0);
    assert_int_equal (libs.count, 3);
    assert_string_equal (libs.libs[0].name, "marked.js");
    assert_string_equal (libs.libs[1].path, "/usr/share/nodejs/dompurify/dist/purify.min.js");
    assert_int_equal (gw_web_libs_parse (" a.js=/x/a.js , b-1_2=/y ", &libs, why, sizeof why), 0);
    assert_int_equal (libs.count, 2);
    assert_string_equal (libs.libs[0].path, "/x/a.js");
    assert_string_equal (libs.libs[1].name, "b-1_2");

    const struct {
        const char *spec, *quoted, *what;
    } bad[] = {
        {"a.js", "'a.js'", "NAME=/path"},
        {"a.js=rel/a.js", "'a.js=rel/a.js'", "absolute"},
        {"=/x", "'=/x'", "the name"},
        {".hidden=/x", "'.hidden=/x'", "the name"},
        {"a/b=/x", "'a/b=/x'", "the name"},
        {"a=/x,a=/y", "'a=/y'", "twice"},
        {"a=/x,,b=/y", "''", "NAME=/path"},
        {"a=", "'a='", "absolute"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        why[0] = '\0';
        assert_int_equal (gw_web_libs_parse (bad[i].spec, &libs, why, sizeof why), CM_EINVAL);
        assert_int_equal (libs.count, 0);
        if (!strstr (why, bad[i].quoted) || !strstr (why, bad[i].what))
            fail_msg ("'%s': %s", bad[i].spec, why);
    }
    //  Limits: 16 libraries pass, 17 do not; a 63-character name passes, 64 not.
    char spec[1024] = "";
    for (int i = 0; i < GW_WEB_LIBS_MAX; i++)
        snprintf (spec + strlen (spec), sizeof spec - strlen (spec), "%sl%d=/x", i ? "," : "", i);
    assert_int_equal (gw_web_libs_parse (spec, &libs, why, sizeof why), 0);
    assert_int_equal (libs.count, GW_WEB_LIBS_MAX);
    strcat (spec, ",one_more=/x");
    assert_int_equal (gw_web_libs_parse (spec, &libs, why, sizeof why), CM_EINVAL);
    assert_non_null (strstr (why, "more than 16"));
    char name[80];
    memset (name, 'n', 63);
    snprintf (name + 63, sizeof name - 63, "=/x");
    assert_int_equal (gw_web_libs_parse (name, &libs, why, sizeof why), 0);
    memset (name, 'n', 64);
    snprintf (name + 64, sizeof name - 64, "=/x");
    assert_int_equal (gw_web_libs_parse (name, &libs, why, sizeof why), CM_EINVAL);
}

static void
test_path_ok (void **state)
{
    (void) state;
    assert_true (gw_static_path_ok ("/"));
    assert_true (gw_static_path_ok ("/js/app.js"));
    assert_false (gw_static_path_ok ("js/app.js"));
    assert_false (gw_static_path_ok ("/../etc/passwd"));
    assert_false (gw_static_path_ok ("/js/../../x"));
    assert_false (gw_static_path_ok ("/.git/config"));
    assert_false (gw_static_path_ok ("/js//app.js"));
    assert_false (gw_static_path_ok ("/js\\app.js"));
    assert_false (gw_static_path_ok ("/js/a\x01.js"));
}

static void
test_resolve (void **state)
{
    (void) state;
    char web[PATH_MAX], real[PATH_MAX], spec[2 * PATH_MAX + 64], why[256];
    int64_t size = -1;
    snprintf (web, sizeof web, "%s/web", s_dir);
    gw_web_libs_t libs;
    snprintf (spec, sizeof spec, "lib.js=%s,gone.js=%s/none.js", s_outside, s_dir);
    assert_int_equal (gw_web_libs_parse (spec, &libs, why, sizeof why), 0);

    assert_int_equal (gw_static_resolve (web, &libs, "/", real, &size), 0);
    assert_non_null (strstr (real, "/web/index.html"));
    assert_int_equal (size, 9);
    assert_int_equal (gw_static_resolve (web, &libs, "/js/app.js", real, &size), 0);
    assert_int_equal (size, 1);
    //  A listed library, outside the web dir.
    assert_int_equal (gw_static_resolve (web, &libs, "/lib/lib.js", real, &size), 0);
    assert_string_equal (strrchr (real, '/'), "/lib.js");
    assert_int_equal (size, 3);
    //  Unlisted names, a listed file that is missing, a directory, a
    //  symlink out of the web dir, traversal: nothing.
    assert_int_equal (gw_static_resolve (web, &libs, "/lib/other.js", real, &size), -1);
    assert_int_equal (gw_static_resolve (web, &libs, "/lib/gone.js", real, &size), -1);
    assert_int_equal (gw_static_resolve (web, &libs, "/lib/", real, &size), -1);
    assert_int_equal (gw_static_resolve (web, &libs, "/js", real, &size), -1);
    assert_int_equal (gw_static_resolve (web, &libs, "/escape.js", real, &size), -1);
    assert_int_equal (gw_static_resolve (web, &libs, "/../lib.js", real, &size), -1);
    assert_int_equal (gw_static_resolve (web, &libs, "/nope.html", real, &size), -1);
    //  Without libraries /lib/ is an ordinary (missing) path of the web dir.
    gw_web_libs_t none = {0};
    assert_int_equal (gw_static_resolve (web, &none, "/lib/lib.js", real, &size), -1);
}

//  The type by the extension, whatever its case; unknown ones download.
static void
test_mime (void **state)
{
    (void) state;
    assert_string_equal (gw_static_mime ("/w/index.html"), "text/html; charset=utf-8");
    assert_string_equal (gw_static_mime ("/w/APP.JS"), "text/javascript; charset=utf-8");
    assert_string_equal (gw_static_mime ("/w/a.b/style.css"), "text/css; charset=utf-8");
    assert_string_equal (gw_static_mime ("/w/icon.svg"), "image/svg+xml");
    assert_string_equal (gw_static_mime ("/w/notes"), "application/octet-stream");
    assert_string_equal (gw_static_mime ("/w/x.exe"), "application/octet-stream");
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_libs_parse),
        cmocka_unit_test (test_path_ok),
        cmocka_unit_test (test_resolve),
        cmocka_unit_test (test_mime),
    };
    return cmocka_run_group_tests (tests, s_setup, s_teardown);
}
