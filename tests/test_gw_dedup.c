/*  test_gw_dedup: the gateway keeps the first copy of each event id.  */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "gw_dedup.h"

#define E 1764000000000ULL

static cm_event_id_t
s_id (uint64_t epoch, uint64_t seq)
{
    return (cm_event_id_t) {epoch, seq};
}

//  Two broadcasters' copies, interleaved and one ahead of the other: every
//  id goes through once, in the order it first came.
static void
test_two_copies_one_delivery (void **state)
{
    (void) state;
    gw_dedup_t *dedup = gw_dedup_new ();
    assert_non_null (dedup);
    uint64_t a[] = {1, 2, 3, 4, 5, 6};
    uint64_t b[] = {1, 2, 3, 4, 5, 6};
    size_t ia = 0, ib = 0, delivered = 0;
    uint64_t last = 0;
    //  a runs two ahead, b catches up at the end.
    while (ia < 6 || ib < 6) {
        uint64_t seq = (ia < 6 && (ia <= ib + 2 || ib == 6)) ? a[ia++] : b[ib++];
        if (gw_dedup_admit (dedup, "s", s_id (E, seq))) {
            assert_int_equal (seq, last + 1);
            last = seq;
            delivered++;
        }
    }
    assert_int_equal (delivered, 6);
    assert_int_equal (gw_dedup_sessions (dedup), 1);
    gw_dedup_destroy (&dedup);
    assert_null (dedup);
}

//  Sessions count apart; an older id is dropped; a gap passes (the stream
//  fills it); another epoch passes and starts over; forget frees it.
static void
test_sessions_gaps_epochs_forget (void **state)
{
    (void) state;
    gw_dedup_t *dedup = gw_dedup_new ();
    assert_true (gw_dedup_admit (dedup, "s1", s_id (E, 5)));
    assert_true (gw_dedup_admit (dedup, "s2", s_id (E, 5)));
    assert_false (gw_dedup_admit (dedup, "s1", s_id (E, 5)));
    assert_false (gw_dedup_admit (dedup, "s1", s_id (E, 4)));
    assert_true (gw_dedup_admit (dedup, "s1", s_id (E, 9)));
    assert_false (gw_dedup_admit (dedup, "s1", s_id (E, 7))); //  below what passed
    assert_true (gw_dedup_admit (dedup, "s1", s_id (E + 1, 1)));
    assert_false (gw_dedup_admit (dedup, "s1", s_id (E + 1, 1)));
    assert_int_equal (gw_dedup_sessions (dedup), 2);
    gw_dedup_forget (dedup, "s1");
    gw_dedup_forget (dedup, "never-seen");
    assert_int_equal (gw_dedup_sessions (dedup), 1);
    //  Forgotten: its next copy passes again (a new subscription's first).
    assert_true (gw_dedup_admit (dedup, "s1", s_id (E + 1, 1)));
    gw_dedup_destroy (&dedup);
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_two_copies_one_delivery),
        cmocka_unit_test (test_sessions_gaps_epochs_forget),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
