/*  test_st_handover.c: a task handed straight to the regenerators waiting
    for one (st_ops_write_batch_claims): leased in the commit that creates
    it, exactly once, with the claim's events after the creation's, and
    parked claims left alone by batches that make nothing claimable.     */
#include "test_st_util.h"

#define ID 400

static int
s_setup (void **state)
{
    *state = st_fixture_new (1 << 20, 3);
    return 0;
}

static cm_envelope_t *
s_claim_req (const char *worker, int64_t max)
{
    cm_envelope_t *claim = st_req (CM_MSG_TASK_CLAIM, NULL);
    cm_map_set_str (claim->payload, "worker", worker);
    cm_map_set_int (claim->payload, "max", max);
    cm_map_set_int (claim->payload, "wait_ms", 1000);
    return claim;
}

static cm_envelope_t *
s_start_req (const char *user, const char *session)
{
    cm_envelope_t *start = st_req (CM_MSG_SESSION_START, user);
    cm_map_set_str (start->payload, "session_id", session);
    cm_map_set_str (start->payload, "query", "why is the sky blue?");
    return start;
}

static size_t
s_tasks (const cm_envelope_t *reply)
{
    assert_non_null (reply);
    assert_int_equal (reply->type, CM_MSG_OK);
    return cm_value_len (cm_map_get (reply->payload, "tasks"));
}

static const char *
s_task_id (const cm_envelope_t *reply, size_t i)
{
    return cm_map_str_or (cm_arr_at (cm_map_get (reply->payload, "tasks"), i), "task_id", "");
}

//  Runs requests with claims in one batch into f->events; replies kept.
static void
s_batch (st_fixture_t *f, cm_envelope_t **requests, size_t n, cm_envelope_t **claims, size_t m,
         cm_envelope_t **replies, cm_envelope_t **claim_replies)
{
    cm_value_destroy (&f->events);
    assert_int_equal (st_ops_write_batch_claims (f->ops, requests, n, claims, m, f->now, replies,
                                                 claim_replies, &f->events),
                      0);
    st_events_check (f->events);
}

static void
s_free (cm_envelope_t **envelopes, size_t n)
{
    for (size_t i = 0; i < n; i++)
        cm_envelope_destroy (&envelopes[i]);
}

//  A session start with a regenerator waiting: one batch creates the task
//  and leases it, the claim's message_regenerating after session_updated;
//  the lease is a real one (its fencing token is accepted) and nothing is
//  left for other long-polls.
static void
test_created_task_is_leased_in_its_commit (void **state)
{
    st_fixture_t *f = *state;
    (void) st_ops_take_tasks_changed (f->ops);
    cm_envelope_t *requests[1] = {s_start_req ("alice", "s1")}, *replies[1];
    cm_envelope_t *claims[1] = {s_claim_req ("w1", 4)}, *claim_replies[1];
    s_batch (f, requests, 1, claims, 1, replies, claim_replies);
    assert_int_equal (replies[0]->type, CM_MSG_OK);
    const char *task = cm_map_str_or (cm_map_get (replies[0]->payload, "data"), "task_id", "");
    assert_int_equal (s_tasks (claim_replies[0]), 1);
    assert_string_equal (s_task_id (claim_replies[0], 0), task);
    const cm_value_t *leased = cm_arr_at (cm_map_get (claim_replies[0]->payload, "tasks"), 0);
    assert_int_equal (cm_map_int (leased, "fence", 0), 1);
    assert_int_equal (cm_map_int (leased, "attempt", 0), 1);
    int updated = st_event_index (f, "session_updated");
    int regenerating = st_event_index (f, "message_regenerating");
    assert_true (updated >= 0);
    assert_true (regenerating > updated);
    assert_false (st_ops_take_tasks_changed (f->ops));

    cm_envelope_t *progress = st_req (CM_MSG_TASK_PROGRESS, NULL);
    cm_map_set_str (progress->payload, "worker", "w1");
    cm_map_set_str (progress->payload, "task_id", task);
    cm_map_set_int (progress->payload, "fence", 1);
    cm_map_set_int (progress->payload, "progress", 10);
    cm_map_set_str (progress->payload, "partial", "Rayleigh");
    assert_int_equal (st_write (f, progress, NULL), 0);
    //  Leased once: no claim finds it again.
    assert_int_equal (st_claim (f, "w2", NULL), 0);
    s_free (requests, 1);
    s_free (replies, 1);
    s_free (claims, 1);
    s_free (claim_replies, 1);
}

//  Votes make nothing claimable: the claims do not run (NULL replies, so
//  the server keeps them parked) and a pending flag is left as it was.
static void
test_batch_without_new_task_leaves_claims (void **state)
{
    st_fixture_t *f = *state;
    char asst[ID];
    assert_int_equal (st_start (f, "alice", "s1", "q", NULL, asst, NULL), 0);
    assert_true (st_ops_take_tasks_changed (f->ops));
    cm_envelope_t *requests[1] = {st_req (CM_MSG_FEEDBACK_PUT, "alice")}, *replies[1];
    cm_map_set_str (requests[0]->payload, "message_id", asst);
    cm_map_set_str (requests[0]->payload, "feedback_type", "upvote");
    cm_envelope_t *claims[1] = {s_claim_req ("w1", 1)}, *claim_replies[1];
    s_batch (f, requests, 1, claims, 1, replies, claim_replies);
    assert_int_equal (replies[0]->type, CM_MSG_OK);
    assert_null (claim_replies[0]);
    assert_int_equal (st_event_index (f, "message_regenerating"), -1);
    assert_false (st_ops_take_tasks_changed (f->ops));
    //  The task is still there for the next claim.
    assert_int_equal (st_claim (f, "w1", NULL), 1);
    s_free (requests, 1);
    s_free (replies, 1);
    s_free (claims, 1);
}

//  Three new tasks, two waiting claims of max 1: each gets its own, and
//  the third is left claimable (the flag says so to the other polls).
static void
test_each_claim_gets_its_own_task (void **state)
{
    st_fixture_t *f = *state;
    (void) st_ops_take_tasks_changed (f->ops);
    cm_envelope_t *requests[3] = {s_start_req ("alice", "s1"), s_start_req ("bob", "s2"),
                                  s_start_req ("carol", "s3")};
    cm_envelope_t *replies[3];
    cm_envelope_t *claims[2] = {s_claim_req ("w1", 1), s_claim_req ("w2", 1)};
    cm_envelope_t *claim_replies[2];
    s_batch (f, requests, 3, claims, 2, replies, claim_replies);
    assert_int_equal (s_tasks (claim_replies[0]), 1);
    assert_int_equal (s_tasks (claim_replies[1]), 1);
    assert_string_not_equal (s_task_id (claim_replies[0], 0), s_task_id (claim_replies[1], 0));
    assert_true (st_ops_take_tasks_changed (f->ops));
    assert_int_equal (st_claim (f, "w3", NULL), 1);
    assert_int_equal (st_claim (f, "w3", NULL), 0);
    s_free (requests, 3);
    s_free (replies, 3);
    s_free (claims, 2);
    s_free (claim_replies, 2);
}

//  One new task, two waiting claims: the first in line gets it, the
//  second an empty answer (the server parks it again).
static void
test_first_waiting_claim_wins (void **state)
{
    st_fixture_t *f = *state;
    cm_envelope_t *requests[1] = {s_start_req ("alice", "s1")}, *replies[1];
    cm_envelope_t *claims[2] = {s_claim_req ("w1", 4), s_claim_req ("w2", 4)};
    cm_envelope_t *claim_replies[2];
    s_batch (f, requests, 1, claims, 2, replies, claim_replies);
    assert_int_equal (s_tasks (claim_replies[0]), 1);
    assert_int_equal (s_tasks (claim_replies[1]), 0);
    assert_false (st_ops_take_tasks_changed (f->ops));
    s_free (requests, 1);
    s_free (replies, 1);
    s_free (claims, 2);
    s_free (claim_replies, 2);
}

//  A request that fails after writing (its regeneration bucket refuses)
//  replays the batch nested: the good start's task is still leased once,
//  the refused start creates nothing, and the events are the committed
//  ones only.
static void
test_replayed_batch_leases_once (void **state)
{
    st_fixture_t *f = *state;
    cm_envelope_t *first = s_start_req ("carol", "c1");
    cm_map_set_int (first->payload, "rate_limit", 10);
    cm_map_set_int (first->payload, "regen_rate_limit", 1);
    assert_int_equal (st_write (f, first, NULL), 0);
    assert_int_equal (st_claim (f, "w0", NULL), 1);
    (void) st_ops_take_tasks_changed (f->ops);

    cm_envelope_t *requests[2] = {s_start_req ("alice", "s1"), s_start_req ("carol", "c2")};
    cm_map_set_int (requests[1]->payload, "rate_limit", 10);
    cm_map_set_int (requests[1]->payload, "regen_rate_limit", 1);
    cm_envelope_t *replies[2];
    cm_envelope_t *claims[1] = {s_claim_req ("w1", 4)}, *claim_replies[1];
    s_batch (f, requests, 2, claims, 1, replies, claim_replies);
    assert_int_equal (replies[0]->type, CM_MSG_OK);
    assert_int_equal (cm_map_int (replies[1]->payload, "code", 0), CM_ERATELIMIT);
    assert_int_equal (s_tasks (claim_replies[0]), 1);
    const char *task = cm_map_str_or (cm_map_get (replies[0]->payload, "data"), "task_id", "");
    assert_string_equal (s_task_id (claim_replies[0], 0), task);
    size_t regenerating = 0;
    for (size_t i = 0; i < cm_value_len (f->events); i++)
        regenerating += strcmp (cm_map_str_or (cm_arr_at (f->events, i), "event", ""),
                                "message_regenerating")
                        == 0;
    assert_int_equal (regenerating, 1);
    assert_int_equal (st_claim (f, "w2", NULL), 0);
    s_free (requests, 2);
    s_free (replies, 2);
    s_free (claims, 1);
    s_free (claim_replies, 1);
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown (test_created_task_is_leased_in_its_commit, s_setup,
                                         st_fixture_teardown),
        cmocka_unit_test_setup_teardown (test_batch_without_new_task_leaves_claims, s_setup,
                                         st_fixture_teardown),
        cmocka_unit_test_setup_teardown (test_each_claim_gets_its_own_task, s_setup,
                                         st_fixture_teardown),
        cmocka_unit_test_setup_teardown (test_first_waiting_claim_wins, s_setup,
                                         st_fixture_teardown),
        cmocka_unit_test_setup_teardown (test_replayed_batch_leases_once, s_setup,
                                         st_fixture_teardown),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
