//  test_st_task_fsm: the task lifecycle table, every (state, event) pair.
#include "cm_error.h"
#include "st_task_fsm.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

//  The first test is the example: a task's whole good life.
static void
test_a_task_is_claimed_and_completed (void **state)
{
    (void) state;
    st_task_state_t task = st_task_fsm_parse ("pending", false);
    assert_int_equal (task, ST_TASK_PENDING);
    st_task_step_t step = st_task_fsm_step (task, ST_TASK_CLAIM);
    assert_int_equal (step.rc, 0);
    assert_int_equal (step.actions, ST_TASK_DO_LEASE);
    step = st_task_fsm_step (step.next, ST_TASK_PROGRESS);
    assert_int_equal (step.next, ST_TASK_RUNNING);
    step = st_task_fsm_step (step.next, ST_TASK_COMPLETE);
    assert_int_equal (step.next, ST_TASK_COMPLETED);
    assert_string_equal (st_task_fsm_status (step.next), "completed");
    //  Once ended, the worker's next call is refused and changes nothing.
    step = st_task_fsm_step (step.next, ST_TASK_PROGRESS);
    assert_int_equal (step.rc, CM_ELEASE);
    assert_int_equal (step.next, ST_TASK_COMPLETED);
}

//  Written out by hand, pair by pair, apart from the table it checks.
static const struct {
    st_task_state_t state;
    st_task_event_t event;
    int rc;
    st_task_state_t next;
    unsigned actions;
} s_expected[] = {
    {ST_TASK_PENDING, ST_TASK_CLAIM, 0, ST_TASK_RUNNING, ST_TASK_DO_LEASE},
    {ST_TASK_PENDING, ST_TASK_TAKE_OVER, CM_EBADSTATE, ST_TASK_PENDING, 0},
    {ST_TASK_PENDING, ST_TASK_LEASE_EXPIRED, CM_EBADSTATE, ST_TASK_PENDING, 0},
    {ST_TASK_PENDING, ST_TASK_GIVE_UP, 0, ST_TASK_FAILED, ST_TASK_DO_END|ST_TASK_DO_ANNOUNCE},
    {ST_TASK_PENDING, ST_TASK_PROGRESS, CM_ELEASE, ST_TASK_PENDING, 0},
    {ST_TASK_PENDING, ST_TASK_THOUGHT, CM_ELEASE, ST_TASK_PENDING, 0},
    {ST_TASK_PENDING, ST_TASK_COMPLETE, CM_ELEASE, ST_TASK_PENDING, 0},
    {ST_TASK_PENDING, ST_TASK_RETRY, CM_ELEASE, ST_TASK_PENDING, 0},
    {ST_TASK_PENDING, ST_TASK_FAIL, CM_ELEASE, ST_TASK_PENDING, 0},
    {ST_TASK_PENDING, ST_TASK_CANCEL, 0, ST_TASK_CANCELLED, ST_TASK_DO_END|ST_TASK_DO_ANNOUNCE},
    {ST_TASK_PENDING, ST_TASK_MESSAGE_GONE, 0, ST_TASK_CANCELLED, ST_TASK_DO_END|ST_TASK_DO_ANNOUNCE},
    {ST_TASK_PENDING, ST_TASK_PURGE, CM_EBADSTATE, ST_TASK_PENDING, 0},
    {ST_TASK_RUNNING, ST_TASK_CLAIM, CM_EBADSTATE, ST_TASK_RUNNING, 0},
    {ST_TASK_RUNNING, ST_TASK_TAKE_OVER, 0, ST_TASK_RUNNING, ST_TASK_DO_LEASE},
    {ST_TASK_RUNNING, ST_TASK_LEASE_EXPIRED, 0, ST_TASK_PENDING, ST_TASK_DO_RELEASE},
    {ST_TASK_RUNNING, ST_TASK_GIVE_UP, 0, ST_TASK_FAILED, ST_TASK_DO_END|ST_TASK_DO_ANNOUNCE},
    {ST_TASK_RUNNING, ST_TASK_PROGRESS, 0, ST_TASK_RUNNING, ST_TASK_DO_RENEW},
    {ST_TASK_RUNNING, ST_TASK_THOUGHT, 0, ST_TASK_RUNNING, ST_TASK_DO_RENEW},
    {ST_TASK_RUNNING, ST_TASK_COMPLETE, 0, ST_TASK_COMPLETED, ST_TASK_DO_END},
    {ST_TASK_RUNNING, ST_TASK_RETRY, 0, ST_TASK_PENDING, ST_TASK_DO_RELEASE},
    {ST_TASK_RUNNING, ST_TASK_FAIL, 0, ST_TASK_FAILED, ST_TASK_DO_END|ST_TASK_DO_ANNOUNCE},
    {ST_TASK_RUNNING, ST_TASK_CANCEL, 0, ST_TASK_CANCELLED, ST_TASK_DO_END|ST_TASK_DO_ANNOUNCE},
    {ST_TASK_RUNNING, ST_TASK_MESSAGE_GONE, 0, ST_TASK_CANCELLED, ST_TASK_DO_END|ST_TASK_DO_ANNOUNCE},
    {ST_TASK_RUNNING, ST_TASK_PURGE, CM_EBADSTATE, ST_TASK_RUNNING, 0},
    {ST_TASK_COMPLETED, ST_TASK_CLAIM, CM_EBADSTATE, ST_TASK_COMPLETED, 0},
    {ST_TASK_COMPLETED, ST_TASK_TAKE_OVER, CM_EBADSTATE, ST_TASK_COMPLETED, 0},
    {ST_TASK_COMPLETED, ST_TASK_LEASE_EXPIRED, CM_EBADSTATE, ST_TASK_COMPLETED, 0},
    {ST_TASK_COMPLETED, ST_TASK_GIVE_UP, CM_EBADSTATE, ST_TASK_COMPLETED, 0},
    {ST_TASK_COMPLETED, ST_TASK_PROGRESS, CM_ELEASE, ST_TASK_COMPLETED, 0},
    {ST_TASK_COMPLETED, ST_TASK_THOUGHT, CM_ELEASE, ST_TASK_COMPLETED, 0},
    {ST_TASK_COMPLETED, ST_TASK_COMPLETE, CM_ELEASE, ST_TASK_COMPLETED, 0},
    {ST_TASK_COMPLETED, ST_TASK_RETRY, CM_ELEASE, ST_TASK_COMPLETED, 0},
    {ST_TASK_COMPLETED, ST_TASK_FAIL, CM_ELEASE, ST_TASK_COMPLETED, 0},
    {ST_TASK_COMPLETED, ST_TASK_CANCEL, CM_EBADSTATE, ST_TASK_COMPLETED, 0},
    {ST_TASK_COMPLETED, ST_TASK_MESSAGE_GONE, CM_EBADSTATE, ST_TASK_COMPLETED, 0},
    {ST_TASK_COMPLETED, ST_TASK_PURGE, 0, ST_TASK_COMPLETED, ST_TASK_DO_DELETE},
    {ST_TASK_FAILED, ST_TASK_CLAIM, CM_EBADSTATE, ST_TASK_FAILED, 0},
    {ST_TASK_FAILED, ST_TASK_TAKE_OVER, CM_EBADSTATE, ST_TASK_FAILED, 0},
    {ST_TASK_FAILED, ST_TASK_LEASE_EXPIRED, CM_EBADSTATE, ST_TASK_FAILED, 0},
    {ST_TASK_FAILED, ST_TASK_GIVE_UP, CM_EBADSTATE, ST_TASK_FAILED, 0},
    {ST_TASK_FAILED, ST_TASK_PROGRESS, CM_ELEASE, ST_TASK_FAILED, 0},
    {ST_TASK_FAILED, ST_TASK_THOUGHT, CM_ELEASE, ST_TASK_FAILED, 0},
    {ST_TASK_FAILED, ST_TASK_COMPLETE, CM_ELEASE, ST_TASK_FAILED, 0},
    {ST_TASK_FAILED, ST_TASK_RETRY, CM_ELEASE, ST_TASK_FAILED, 0},
    {ST_TASK_FAILED, ST_TASK_FAIL, CM_ELEASE, ST_TASK_FAILED, 0},
    {ST_TASK_FAILED, ST_TASK_CANCEL, CM_EBADSTATE, ST_TASK_FAILED, 0},
    {ST_TASK_FAILED, ST_TASK_MESSAGE_GONE, CM_EBADSTATE, ST_TASK_FAILED, 0},
    {ST_TASK_FAILED, ST_TASK_PURGE, 0, ST_TASK_FAILED, ST_TASK_DO_DELETE},
    {ST_TASK_CANCELLED, ST_TASK_CLAIM, CM_EBADSTATE, ST_TASK_CANCELLED, 0},
    {ST_TASK_CANCELLED, ST_TASK_TAKE_OVER, CM_EBADSTATE, ST_TASK_CANCELLED, 0},
    {ST_TASK_CANCELLED, ST_TASK_LEASE_EXPIRED, CM_EBADSTATE, ST_TASK_CANCELLED, 0},
    {ST_TASK_CANCELLED, ST_TASK_GIVE_UP, CM_EBADSTATE, ST_TASK_CANCELLED, 0},
    {ST_TASK_CANCELLED, ST_TASK_PROGRESS, CM_ECANCELLED, ST_TASK_CANCELLED, 0},
    {ST_TASK_CANCELLED, ST_TASK_THOUGHT, CM_ECANCELLED, ST_TASK_CANCELLED, 0},
    {ST_TASK_CANCELLED, ST_TASK_COMPLETE, CM_ECANCELLED, ST_TASK_CANCELLED, 0},
    {ST_TASK_CANCELLED, ST_TASK_RETRY, CM_ECANCELLED, ST_TASK_CANCELLED, 0},
    {ST_TASK_CANCELLED, ST_TASK_FAIL, CM_ECANCELLED, ST_TASK_CANCELLED, 0},
    {ST_TASK_CANCELLED, ST_TASK_CANCEL, CM_EBADSTATE, ST_TASK_CANCELLED, 0},
    {ST_TASK_CANCELLED, ST_TASK_MESSAGE_GONE, CM_EBADSTATE, ST_TASK_CANCELLED, 0},
    {ST_TASK_CANCELLED, ST_TASK_PURGE, 0, ST_TASK_CANCELLED, ST_TASK_DO_DELETE},
    {ST_TASK_UNKNOWN, ST_TASK_CLAIM, CM_EBADSTATE, ST_TASK_UNKNOWN, 0},
    {ST_TASK_UNKNOWN, ST_TASK_TAKE_OVER, CM_EBADSTATE, ST_TASK_UNKNOWN, 0},
    {ST_TASK_UNKNOWN, ST_TASK_LEASE_EXPIRED, CM_EBADSTATE, ST_TASK_UNKNOWN, 0},
    {ST_TASK_UNKNOWN, ST_TASK_GIVE_UP, CM_EBADSTATE, ST_TASK_UNKNOWN, 0},
    {ST_TASK_UNKNOWN, ST_TASK_PROGRESS, CM_ELEASE, ST_TASK_UNKNOWN, 0},
    {ST_TASK_UNKNOWN, ST_TASK_THOUGHT, CM_ELEASE, ST_TASK_UNKNOWN, 0},
    {ST_TASK_UNKNOWN, ST_TASK_COMPLETE, CM_ELEASE, ST_TASK_UNKNOWN, 0},
    {ST_TASK_UNKNOWN, ST_TASK_RETRY, CM_ELEASE, ST_TASK_UNKNOWN, 0},
    {ST_TASK_UNKNOWN, ST_TASK_FAIL, CM_ELEASE, ST_TASK_UNKNOWN, 0},
    {ST_TASK_UNKNOWN, ST_TASK_CANCEL, CM_EBADSTATE, ST_TASK_UNKNOWN, 0},
    {ST_TASK_UNKNOWN, ST_TASK_MESSAGE_GONE, CM_EBADSTATE, ST_TASK_UNKNOWN, 0},
    {ST_TASK_UNKNOWN, ST_TASK_PURGE, 0, ST_TASK_UNKNOWN, ST_TASK_DO_DELETE},
};

static void
test_every_pair (void **state)
{
    (void) state;
    int seen[ST_TASK_STATES][ST_TASK_EVENTS] = {{0}};
    size_t rows = sizeof s_expected / sizeof s_expected[0];
    assert_int_equal (rows, ST_TASK_STATES * ST_TASK_EVENTS);
    for (size_t i = 0; i < rows; i++) {
        st_task_state_t from = s_expected[i].state;
        st_task_event_t event = s_expected[i].event;
        seen[from][event]++;
        st_task_step_t step = st_task_fsm_step (from, event);
        if (step.rc != s_expected[i].rc || step.next != s_expected[i].next
            || step.actions != s_expected[i].actions || (step.rc != 0) != (step.why != NULL))
            fail_msg ("%s + %s: rc %d next %s actions %#x why %s", st_task_fsm_state_name (from),
                      st_task_fsm_event_name (event), step.rc, st_task_fsm_state_name (step.next),
                      step.actions, step.why ? step.why : "-");
        if (step.rc)
            assert_true (*step.why);
    }
    for (int s = 0; s < ST_TASK_STATES; s++)
        for (int e = 0; e < ST_TASK_EVENTS; e++)
            assert_int_equal (seen[s][e], 1);
}

static void
test_only_purge_leaves_an_ended_state (void **state)
{
    (void) state;
    for (int s = 0; s < ST_TASK_STATES; s++)
        for (int e = 0; e < ST_TASK_EVENTS; e++) {
            st_task_step_t step = st_task_fsm_step ((st_task_state_t) s, (st_task_event_t) e);
            if (st_task_fsm_ended ((st_task_state_t) s) && step.rc == 0)
                assert_true (e == ST_TASK_PURGE && (int) step.next == s);
            //  Every way out of the active states that ends the task ends it.
            if (step.rc == 0 && st_task_fsm_ended (step.next) && !st_task_fsm_ended (s))
                assert_true (step.actions & ST_TASK_DO_END);
        }
    assert_false (st_task_fsm_ended (ST_TASK_PENDING));
    assert_false (st_task_fsm_ended (ST_TASK_RUNNING));
    assert_true (st_task_fsm_ended (ST_TASK_UNKNOWN));
}

//  The stored form: status strings, with cancelled as failed + cancelled.
static void
test_stored_form_round_trips (void **state)
{
    (void) state;
    for (int s = 0; s < ST_TASK_UNKNOWN; s++) {
        const char *status = st_task_fsm_status ((st_task_state_t) s);
        assert_non_null (status);
        assert_int_equal (st_task_fsm_parse (status, st_task_fsm_cancelled ((st_task_state_t) s)), s);
    }
    assert_string_equal (st_task_fsm_status (ST_TASK_RUNNING), "in_progress");
    assert_string_equal (st_task_fsm_status (ST_TASK_CANCELLED), "failed");
    assert_true (st_task_fsm_cancelled (ST_TASK_CANCELLED));
    assert_false (st_task_fsm_cancelled (ST_TASK_FAILED));
    //  cancelled means something only beside failed.
    assert_int_equal (st_task_fsm_parse ("pending", true), ST_TASK_PENDING);
    assert_int_equal (st_task_fsm_parse ("failed", false), ST_TASK_FAILED);
    assert_int_equal (st_task_fsm_parse ("running", false), ST_TASK_UNKNOWN);
    assert_int_equal (st_task_fsm_parse ("", false), ST_TASK_UNKNOWN);
    assert_int_equal (st_task_fsm_parse (NULL, false), ST_TASK_UNKNOWN);
    assert_null (st_task_fsm_status (ST_TASK_UNKNOWN));
}

static void
test_out_of_range_is_refused (void **state)
{
    (void) state;
    st_task_step_t step = st_task_fsm_step (ST_TASK_STATES, ST_TASK_CLAIM);
    assert_int_equal (step.rc, CM_EINVAL);
    assert_int_equal (step.actions, 0);
    step = st_task_fsm_step (ST_TASK_PENDING, ST_TASK_EVENTS);
    assert_int_equal (step.rc, CM_EINVAL);
    assert_int_equal (step.next, ST_TASK_PENDING);
    assert_string_equal (st_task_fsm_state_name (ST_TASK_STATES), "?");
    assert_string_equal (st_task_fsm_event_name (ST_TASK_EVENTS), "?");
    assert_string_equal (st_task_fsm_event_name (ST_TASK_MESSAGE_GONE), "message_gone");
    assert_null (st_task_fsm_status (ST_TASK_STATES));
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_a_task_is_claimed_and_completed),
        cmocka_unit_test (test_every_pair),
        cmocka_unit_test (test_only_purge_leaves_an_ended_state),
        cmocka_unit_test (test_stored_form_round_trips),
        cmocka_unit_test (test_out_of_range_is_refused),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
