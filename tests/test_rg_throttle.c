/*  test_rg_throttle: progress at most once per interval, lease renewal.  */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "rg_throttle.h"

//  Usage example: a token every millisecond for a second, 100 ms interval.
static void
test_at_most_ten_per_second (void **state)
{
    (void) state;
    rg_throttle_t throttle;
    rg_throttle_init (&throttle, 100, 30000, 0);
    int sent = 0;
    for (int64_t now = 1; now <= 1000; now++)
        if (rg_throttle_due (&throttle, now, true)) {
            rg_throttle_progress_sent (&throttle, now);
            sent++;
        }
    assert_int_equal (sent, 10);
}

static void
test_nothing_changed_nothing_sent_until_renewal (void **state)
{
    (void) state;
    rg_throttle_t throttle;
    rg_throttle_init (&throttle, 100, 3000, 0); //  renew every 1000 ms
    assert_false (rg_throttle_due (&throttle, 500, false));
    assert_false (rg_throttle_due (&throttle, 999, false));
    assert_true (rg_throttle_due (&throttle, 1000, false));
    rg_throttle_progress_sent (&throttle, 1000);
    assert_false (rg_throttle_due (&throttle, 1050, true)); //  inside the interval
    assert_true (rg_throttle_due (&throttle, 1100, true));
}

static void
test_any_call_counts_as_renewal (void **state)
{
    (void) state;
    rg_throttle_t throttle;
    rg_throttle_init (&throttle, 100, 900, 0);
    rg_throttle_sent (&throttle, 250); //  e.g. a thought_process event
    assert_false (rg_throttle_due (&throttle, 500, false));
    assert_true (rg_throttle_due (&throttle, 550, false));
}

//  The first progress is not held back by the interval, nor by other calls
//  (thought events) made just before it; the next one is.
static void
test_first_progress_at_once (void **state)
{
    (void) state;
    rg_throttle_t throttle;
    rg_throttle_init (&throttle, 100, 30000, 0);
    assert_false (rg_throttle_due (&throttle, 1, false));
    rg_throttle_sent (&throttle, 1); //  thought_process_start
    assert_true (rg_throttle_due (&throttle, 2, true));
    rg_throttle_progress_sent (&throttle, 2);
    assert_false (rg_throttle_due (&throttle, 3, true));
    rg_throttle_sent (&throttle, 50); //  an event does not delay the next progress
    assert_true (rg_throttle_due (&throttle, 102, true));
}

static void
test_zero_interval_sends_every_change (void **state)
{
    (void) state;
    rg_throttle_t throttle;
    rg_throttle_init (&throttle, 0, 10000, 0);
    assert_true (rg_throttle_due (&throttle, 0, true));
    assert_false (rg_throttle_due (&throttle, 0, false));
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_at_most_ten_per_second),
        cmocka_unit_test (test_nothing_changed_nothing_sent_until_renewal),
        cmocka_unit_test (test_any_call_counts_as_renewal),
        cmocka_unit_test (test_first_progress_at_once),
        cmocka_unit_test (test_zero_interval_sends_every_change),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
