/*  test_cm_time: the hand-rolled ISO-8601 formatter against gmtime_r.  */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "cm_time.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

//  What cm_iso_time printed before it formatted by hand.
static void
s_reference (int64_t ms, char *buffer, size_t size)
{
    time_t seconds = (time_t) (ms / 1000);
    struct tm tm;
    gmtime_r (&seconds, &tm);
    char text[64];
    snprintf (text, sizeof text, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
              tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int) (ms % 1000));
    size_t n = strlen (text) < size - 1 ? strlen (text) : size - 1; //  snprintf's cut
    memcpy (buffer, text, n);
    buffer[n] = 0;
}

static void
s_check (int64_t ms)
{
    char got[CM_ISO_TIME_LEN + 1], want[CM_ISO_TIME_LEN + 1];
    cm_iso_time (ms, got, sizeof got);
    s_reference (ms, want, sizeof want);
    if (strcmp (got, want) != 0)
        fail_msg ("ms %lld: got %s, want %s", (long long) ms, got, want);
}

static void
test_known_instants (void **state)
{
    (void) state;
    char text[CM_ISO_TIME_LEN + 1];
    cm_iso_time (0, text, sizeof text);
    assert_string_equal (text, "1970-01-01T00:00:00.000Z");
    cm_iso_time (INT64_C (951782400999), text, sizeof text); //  leap day 2000
    assert_string_equal (text, "2000-02-29T00:00:00.999Z");
    cm_iso_time (INT64_C (1795600800123), text, sizeof text);
    assert_string_equal (text, "2026-11-25T10:00:00.123Z");
    cm_iso_time (INT64_C (253402300799999), text, sizeof text);
    assert_string_equal (text, "9999-12-31T23:59:59.999Z");
}

//  Every day boundary (and the ms on either side) from 1970 to 2401:
//  covers every month end, leap years, 2100's non-leap and 2400's leap.
static void
test_every_day_matches_gmtime (void **state)
{
    (void) state;
    for (int64_t day = 0; day < 157000; day++) {
        int64_t ms = day * 86400000;
        s_check (ms);
        s_check (ms + 1);
        if (ms)
            s_check (ms - 1);
    }
}

static void
test_every_millisecond_and_random_instants (void **state)
{
    (void) state;
    for (int64_t ms = 0; ms < 1000; ms++) {
        s_check (ms);
        s_check (INT64_C (1735689599000) + ms); //  2024-12-31T23:59:59
        s_check (INT64_C (1735689600000) + ms); //  2025-01-01T00:00:00
    }
    srand (42);
    for (int i = 0; i < 200000; i++) {
        int64_t ms = (((int64_t) rand () << 31) ^ rand ()) % INT64_C (253402300800000);
        s_check (ms);
    }
}

//  Outside 1970..9999 and with short buffers it behaves as before.
static void
test_edges_match_the_old_format (void **state)
{
    (void) state;
    s_check (-1);
    s_check (-86400000);
    s_check (INT64_C (253402300800000));
    for (size_t size = 1; size <= CM_ISO_TIME_LEN + 1; size++) {
        char got[CM_ISO_TIME_LEN + 1], want[CM_ISO_TIME_LEN + 1];
        memset (got, 'x', sizeof got);
        cm_iso_time (INT64_C (1795600800123), got, size);
        s_reference (INT64_C (1795600800123), want, size);
        assert_string_equal (got, want);
    }
}

//  The deadline is timeout_ms after the monotonic clock's reading, with
//  nanoseconds normalised (every millisecond of a second, so a carry into
//  tv_sec is taken too).
static void
test_mono_deadline (void **state)
{
    (void) state;
    for (int timeout_ms = 0; timeout_ms < 3000; timeout_ms += 7) {
        struct timespec before, deadline, after;
        clock_gettime (CLOCK_MONOTONIC, &before);
        cm_mono_deadline (&deadline, timeout_ms);
        clock_gettime (CLOCK_MONOTONIC, &after);
        assert_true (deadline.tv_nsec >= 0 && deadline.tv_nsec < 1000000000L);
        int64_t ns = (int64_t) deadline.tv_sec * 1000000000 + deadline.tv_nsec;
        int64_t lo = (int64_t) before.tv_sec * 1000000000 + before.tv_nsec;
        int64_t hi = (int64_t) after.tv_sec * 1000000000 + after.tv_nsec;
        int64_t span = (int64_t) timeout_ms * 1000000;
        assert_true (ns >= lo + span);
        assert_true (ns <= hi + span);
    }
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_known_instants),
        cmocka_unit_test (test_every_day_matches_gmtime),
        cmocka_unit_test (test_every_millisecond_and_random_instants),
        cmocka_unit_test (test_edges_match_the_old_format),
        cmocka_unit_test (test_mono_deadline),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
