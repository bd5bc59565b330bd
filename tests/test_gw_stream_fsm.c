//  test_gw_stream_fsm: the SSE stream lifecycle table, every (state, event) pair.
#include "gw_stream_fsm.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

//  The first test is the example: a stream handed to the hub, taken back
//  by a full socket, served by a slow-path thread and handed back again.
static void
test_a_detached_stream_leaves_and_rejoins_the_fast_path (void **state)
{
    (void) state;
    gw_stream_step_t step = gw_stream_fsm_step (GW_SS_OWNED, GW_SE_RELEASE);
    assert_true (step.ok);
    assert_int_equal (step.next, GW_SS_FAST);
    assert_int_equal (step.actions, GW_SA_ADOPT);
    assert_true (gw_stream_fsm_fast (step.next));
    step = gw_stream_fsm_step (step.next, GW_SE_HAND_BACK);
    assert_int_equal (step.next, GW_SS_QUEUED);
    assert_int_equal (step.actions, GW_SA_ENQUEUE);
    step = gw_stream_fsm_step (step.next, GW_SE_PICK);
    assert_int_equal (step.next, GW_SS_RUNNING);
    step = gw_stream_fsm_step (step.next, GW_SE_RELEASE);
    assert_int_equal (step.next, GW_SS_FAST);
    //  Not adopted twice: the hub counts a stream once.
    assert_int_equal (step.actions, 0);
}

//  Written out by hand, pair by pair, apart from the table it checks.
static const struct {
    gw_stream_state_t state;
    gw_stream_event_t event;
    bool ok;
    gw_stream_state_t next;
    unsigned actions;
} s_expected[] = {
    {GW_SS_OWNED, GW_SE_PUSH, true, GW_SS_OWNED, GW_SA_APPEND|GW_SA_SIGNAL},
    {GW_SS_OWNED, GW_SE_PARK, true, GW_SS_PARKED, 0},
    {GW_SS_OWNED, GW_SE_RELEASE, true, GW_SS_FAST, GW_SA_ADOPT},
    {GW_SS_OWNED, GW_SE_HAND_BACK, false, GW_SS_OWNED, 0},
    {GW_SS_OWNED, GW_SE_PICK, false, GW_SS_OWNED, 0},
    {GW_SS_OWNED, GW_SE_GONE, false, GW_SS_OWNED, 0},
    {GW_SS_OWNED, GW_SE_OVERFLOW, true, GW_SS_OVERFLOWED, GW_SA_SHUTDOWN|GW_SA_SIGNAL},
    {GW_SS_OWNED, GW_SE_CLOSE, true, GW_SS_CLOSED, GW_SA_SIGNAL},
    {GW_SS_OWNED, GW_SE_FAIL, true, GW_SS_GONE, 0},
    {GW_SS_OWNED, GW_SE_DONE, true, GW_SS_DONE, 0},
    {GW_SS_PARKED, GW_SE_PUSH, true, GW_SS_OWNED, GW_SA_APPEND|GW_SA_SIGNAL},
    {GW_SS_PARKED, GW_SE_PARK, false, GW_SS_PARKED, 0},
    {GW_SS_PARKED, GW_SE_RELEASE, false, GW_SS_PARKED, 0},
    {GW_SS_PARKED, GW_SE_HAND_BACK, true, GW_SS_OWNED, GW_SA_SIGNAL},
    {GW_SS_PARKED, GW_SE_PICK, false, GW_SS_PARKED, 0},
    {GW_SS_PARKED, GW_SE_GONE, true, GW_SS_GONE, GW_SA_SIGNAL},
    {GW_SS_PARKED, GW_SE_OVERFLOW, true, GW_SS_OVERFLOWED, GW_SA_SHUTDOWN|GW_SA_SIGNAL},
    {GW_SS_PARKED, GW_SE_CLOSE, true, GW_SS_CLOSED, GW_SA_SIGNAL},
    {GW_SS_PARKED, GW_SE_FAIL, false, GW_SS_PARKED, 0},
    {GW_SS_PARKED, GW_SE_DONE, false, GW_SS_PARKED, 0},
    {GW_SS_FAST, GW_SE_PUSH, true, GW_SS_QUEUED, GW_SA_APPEND|GW_SA_ENQUEUE},
    {GW_SS_FAST, GW_SE_PARK, false, GW_SS_FAST, 0},
    {GW_SS_FAST, GW_SE_RELEASE, false, GW_SS_FAST, 0},
    {GW_SS_FAST, GW_SE_HAND_BACK, true, GW_SS_QUEUED, GW_SA_ENQUEUE},
    {GW_SS_FAST, GW_SE_PICK, false, GW_SS_FAST, 0},
    {GW_SS_FAST, GW_SE_GONE, true, GW_SS_GONE, GW_SA_ENQUEUE},
    {GW_SS_FAST, GW_SE_OVERFLOW, true, GW_SS_OVERFLOWED, GW_SA_SHUTDOWN|GW_SA_ENQUEUE},
    {GW_SS_FAST, GW_SE_CLOSE, true, GW_SS_CLOSED, GW_SA_ENQUEUE},
    {GW_SS_FAST, GW_SE_FAIL, false, GW_SS_FAST, 0},
    {GW_SS_FAST, GW_SE_DONE, false, GW_SS_FAST, 0},
    {GW_SS_QUEUED, GW_SE_PUSH, true, GW_SS_QUEUED, GW_SA_APPEND},
    {GW_SS_QUEUED, GW_SE_PARK, false, GW_SS_QUEUED, 0},
    {GW_SS_QUEUED, GW_SE_RELEASE, false, GW_SS_QUEUED, 0},
    {GW_SS_QUEUED, GW_SE_HAND_BACK, false, GW_SS_QUEUED, 0},
    {GW_SS_QUEUED, GW_SE_PICK, true, GW_SS_RUNNING, 0},
    {GW_SS_QUEUED, GW_SE_GONE, false, GW_SS_QUEUED, 0},
    {GW_SS_QUEUED, GW_SE_OVERFLOW, true, GW_SS_OVERFLOWED, GW_SA_SHUTDOWN},
    {GW_SS_QUEUED, GW_SE_CLOSE, true, GW_SS_CLOSED, 0},
    {GW_SS_QUEUED, GW_SE_FAIL, false, GW_SS_QUEUED, 0},
    {GW_SS_QUEUED, GW_SE_DONE, false, GW_SS_QUEUED, 0},
    {GW_SS_RUNNING, GW_SE_PUSH, true, GW_SS_RUNNING, GW_SA_APPEND},
    {GW_SS_RUNNING, GW_SE_PARK, false, GW_SS_RUNNING, 0},
    {GW_SS_RUNNING, GW_SE_RELEASE, true, GW_SS_FAST, 0},
    {GW_SS_RUNNING, GW_SE_HAND_BACK, false, GW_SS_RUNNING, 0},
    {GW_SS_RUNNING, GW_SE_PICK, false, GW_SS_RUNNING, 0},
    {GW_SS_RUNNING, GW_SE_GONE, false, GW_SS_RUNNING, 0},
    {GW_SS_RUNNING, GW_SE_OVERFLOW, true, GW_SS_OVERFLOWED, GW_SA_SHUTDOWN},
    {GW_SS_RUNNING, GW_SE_CLOSE, true, GW_SS_CLOSED, 0},
    {GW_SS_RUNNING, GW_SE_FAIL, true, GW_SS_GONE, 0},
    {GW_SS_RUNNING, GW_SE_DONE, false, GW_SS_RUNNING, 0},
    {GW_SS_GONE, GW_SE_PUSH, true, GW_SS_GONE, 0},
    {GW_SS_GONE, GW_SE_PARK, false, GW_SS_GONE, 0},
    {GW_SS_GONE, GW_SE_RELEASE, false, GW_SS_GONE, 0},
    {GW_SS_GONE, GW_SE_HAND_BACK, false, GW_SS_GONE, 0},
    {GW_SS_GONE, GW_SE_PICK, true, GW_SS_GONE, 0},
    {GW_SS_GONE, GW_SE_GONE, false, GW_SS_GONE, 0},
    {GW_SS_GONE, GW_SE_OVERFLOW, true, GW_SS_GONE, 0},
    {GW_SS_GONE, GW_SE_CLOSE, true, GW_SS_CLOSED, 0},
    {GW_SS_GONE, GW_SE_FAIL, true, GW_SS_GONE, 0},
    {GW_SS_GONE, GW_SE_DONE, false, GW_SS_GONE, 0},
    {GW_SS_OVERFLOWED, GW_SE_PUSH, true, GW_SS_OVERFLOWED, 0},
    {GW_SS_OVERFLOWED, GW_SE_PARK, false, GW_SS_OVERFLOWED, 0},
    {GW_SS_OVERFLOWED, GW_SE_RELEASE, false, GW_SS_OVERFLOWED, 0},
    {GW_SS_OVERFLOWED, GW_SE_HAND_BACK, false, GW_SS_OVERFLOWED, 0},
    {GW_SS_OVERFLOWED, GW_SE_PICK, true, GW_SS_OVERFLOWED, 0},
    {GW_SS_OVERFLOWED, GW_SE_GONE, false, GW_SS_OVERFLOWED, 0},
    {GW_SS_OVERFLOWED, GW_SE_OVERFLOW, true, GW_SS_OVERFLOWED, 0},
    {GW_SS_OVERFLOWED, GW_SE_CLOSE, true, GW_SS_OVERFLOWED, 0},
    {GW_SS_OVERFLOWED, GW_SE_FAIL, true, GW_SS_OVERFLOWED, 0},
    {GW_SS_OVERFLOWED, GW_SE_DONE, true, GW_SS_DONE, 0},
    {GW_SS_CLOSED, GW_SE_PUSH, true, GW_SS_CLOSED, 0},
    {GW_SS_CLOSED, GW_SE_PARK, false, GW_SS_CLOSED, 0},
    {GW_SS_CLOSED, GW_SE_RELEASE, false, GW_SS_CLOSED, 0},
    {GW_SS_CLOSED, GW_SE_HAND_BACK, false, GW_SS_CLOSED, 0},
    {GW_SS_CLOSED, GW_SE_PICK, true, GW_SS_CLOSED, 0},
    {GW_SS_CLOSED, GW_SE_GONE, false, GW_SS_CLOSED, 0},
    {GW_SS_CLOSED, GW_SE_OVERFLOW, true, GW_SS_CLOSED, 0},
    {GW_SS_CLOSED, GW_SE_CLOSE, true, GW_SS_CLOSED, 0},
    {GW_SS_CLOSED, GW_SE_FAIL, true, GW_SS_CLOSED, 0},
    {GW_SS_CLOSED, GW_SE_DONE, true, GW_SS_DONE, 0},
    {GW_SS_DONE, GW_SE_PUSH, true, GW_SS_DONE, 0},
    {GW_SS_DONE, GW_SE_PARK, false, GW_SS_DONE, 0},
    {GW_SS_DONE, GW_SE_RELEASE, false, GW_SS_DONE, 0},
    {GW_SS_DONE, GW_SE_HAND_BACK, false, GW_SS_DONE, 0},
    {GW_SS_DONE, GW_SE_PICK, false, GW_SS_DONE, 0},
    {GW_SS_DONE, GW_SE_GONE, false, GW_SS_DONE, 0},
    {GW_SS_DONE, GW_SE_OVERFLOW, true, GW_SS_DONE, 0},
    {GW_SS_DONE, GW_SE_CLOSE, true, GW_SS_DONE, 0},
    {GW_SS_DONE, GW_SE_FAIL, false, GW_SS_DONE, 0},
    {GW_SS_DONE, GW_SE_DONE, false, GW_SS_DONE, 0},
};

static void
test_every_pair (void **state)
{
    (void) state;
    int seen[GW_SS_STATES][GW_SE_EVENTS] = {{0}};
    size_t rows = sizeof s_expected / sizeof s_expected[0];
    assert_int_equal (rows, GW_SS_STATES * GW_SE_EVENTS);
    for (size_t i = 0; i < rows; i++) {
        gw_stream_state_t from = s_expected[i].state;
        gw_stream_event_t event = s_expected[i].event;
        seen[from][event]++;
        gw_stream_step_t step = gw_stream_fsm_step (from, event);
        if (step.ok != s_expected[i].ok || step.next != s_expected[i].next
            || step.actions != s_expected[i].actions)
            fail_msg ("%s + %s: %s, next %s, actions %#x", gw_stream_fsm_state_name (from),
                      gw_stream_fsm_event_name (event), step.ok ? "ok" : "refused",
                      gw_stream_fsm_state_name (step.next), step.actions);
    }
    for (int s = 0; s < GW_SS_STATES; s++)
        for (int e = 0; e < GW_SE_EVENTS; e++)
            assert_int_equal (seen[s][e], 1);
}

//  What the stream code relies on, over the whole table.
static void
test_invariants (void **state)
{
    (void) state;
    for (int s = 0; s < GW_SS_STATES; s++)
        for (int e = 0; e < GW_SE_EVENTS; e++) {
            gw_stream_step_t step = gw_stream_fsm_step ((gw_stream_state_t) s, (gw_stream_event_t) e);
            if (!step.ok) {
                assert_int_equal (step.next, s);
                assert_int_equal (step.actions, 0);
                continue;
            }
            //  An end is never left but for another end, and does nothing.
            if (gw_stream_fsm_ended ((gw_stream_state_t) s)) {
                assert_true (gw_stream_fsm_ended (step.next));
                assert_int_equal (step.actions, 0);
            }
            //  Only a stream that leaves FAST joins the slow-path queue,
            //  so one thread at a time serves it.
            if (step.actions & GW_SA_ENQUEUE)
                assert_int_equal (s, GW_SS_FAST);
            if (s == GW_SS_FAST && !gw_stream_fsm_fast (step.next))
                assert_true (step.actions & GW_SA_ENQUEUE);
            //  Only a connection thread is woken.
            if (step.actions & GW_SA_SIGNAL)
                assert_true (s == GW_SS_OWNED || s == GW_SS_PARKED);
        }
    //  Any thread may push or close, in any state.
    for (int s = 0; s < GW_SS_STATES; s++) {
        assert_true (gw_stream_fsm_step ((gw_stream_state_t) s, GW_SE_PUSH).ok);
        assert_true (gw_stream_fsm_step ((gw_stream_state_t) s, GW_SE_OVERFLOW).ok);
        assert_true (gw_stream_fsm_step ((gw_stream_state_t) s, GW_SE_CLOSE).ok);
    }
}

static void
test_predicates_and_names (void **state)
{
    (void) state;
    assert_false (gw_stream_fsm_ended (GW_SS_RUNNING));
    assert_true (gw_stream_fsm_ended (GW_SS_GONE));
    assert_true (gw_stream_fsm_ended (GW_SS_DONE));
    assert_false (gw_stream_fsm_ended (GW_SS_STATES));
    assert_true (gw_stream_fsm_fast (GW_SS_PARKED));
    assert_false (gw_stream_fsm_fast (GW_SS_QUEUED));
    assert_string_equal (gw_stream_fsm_state_name (GW_SS_OVERFLOWED), "overflowed");
    assert_string_equal (gw_stream_fsm_event_name (GW_SE_HAND_BACK), "hand_back");
    assert_string_equal (gw_stream_fsm_state_name (GW_SS_STATES), "?");
    assert_string_equal (gw_stream_fsm_event_name (GW_SE_EVENTS), "?");
    gw_stream_step_t step = gw_stream_fsm_step (GW_SS_OWNED, GW_SE_EVENTS);
    assert_false (step.ok);
    assert_int_equal (step.next, GW_SS_OWNED);
    assert_false (gw_stream_fsm_step (GW_SS_STATES, GW_SE_PUSH).ok);
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_a_detached_stream_leaves_and_rejoins_the_fast_path),
        cmocka_unit_test (test_every_pair),
        cmocka_unit_test (test_invariants),
        cmocka_unit_test (test_predicates_and_names),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
