/*  test_bc_history: the store's ids kept, bounded history, replay, pruning.  */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "bc_history.h"
#include "cm_error.h"

#include <stdio.h>
#include <string.h>

#define EPOCH 1700000000000ULL

typedef struct {
    cm_event_id_t ids[64];
    char bodies[64][32];
    size_t count;
} s_seen_t;

static int
s_collect (const bc_event_t *event, void *arg)
{
    s_seen_t *seen = arg;
    assert_true (seen->count < 64);
    seen->ids[seen->count] = event->id;
    assert_true (event->size < 32);
    memcpy (seen->bodies[seen->count], event->body, event->size);
    seen->bodies[seen->count][event->size] = '\0';
    seen->count++;
    return 0;
}

//  The store's side: each session's last seq (st_events.h numbers them).
static struct {
    char session[32];
    uint64_t last;
} s_store[16];

static bc_history_t *
s_history (size_t max_events, int64_t max_age_ms, size_t max_sessions)
{
    memset (s_store, 0, sizeof s_store);
    bc_history_limits_t limits = {max_events, max_age_ms, max_sessions};
    bc_history_t *history = bc_history_new (&limits);
    assert_non_null (history);
    return history;
}

//  The session's next id, as the store would mint it.
static cm_event_id_t
s_next (const char *session)
{
    size_t i = 0;
    while (s_store[i].session[0] && strcmp (s_store[i].session, session))
        i++;
    assert_true (i < 16);
    snprintf (s_store[i].session, sizeof s_store[i].session, "%s", session);
    return (cm_event_id_t) {EPOCH, ++s_store[i].last};
}

static void
s_append (bc_history_t *history, const char *session, const char *body, int64_t now,
          cm_event_id_t *id_out)
{
    cm_event_id_t id = s_next (session);
    assert_int_equal (bc_history_append (history, session, id, body, strlen (body), now), 0);
    if (id_out)
        *id_out = id;
}

//  Usage example: append the store's ids, replay them as they came.
static void
test_keeps_the_store_ids (void **state)
{
    (void) state;
    bc_history_t *history = s_history (500, 300000, 100);
    for (int i = 0; i < 5; i++)
        s_append (history, "s_1", "a", 1000, NULL);
    s_append (history, "other-session", "b", 1000, NULL);
    assert_int_equal (bc_history_sessions (history), 2);
    s_seen_t seen = {0};
    bool complete = false;
    bc_history_replay (history, "s_1", NULL, 1000, &complete, s_collect, &seen);
    assert_true (complete);
    assert_int_equal (seen.count, 5);
    for (size_t i = 0; i < 5; i++) {
        assert_int_equal (seen.ids[i].epoch, EPOCH);
        assert_int_equal (seen.ids[i].seq, i + 1);
    }
    bc_history_destroy (&history);
    assert_null (history);
}

//  A duplicate is refused and changes nothing; a gap or another epoch
//  starts the session's range again, so a replay never spans a hole.
static void
test_duplicates_gaps_and_epochs (void **state)
{
    (void) state;
    bc_history_t *history = s_history (500, 300000, 100);
    for (int i = 0; i < 3; i++)
        s_append (history, "s", "x", 0, NULL);
    assert_int_equal (bc_history_append (history, "s", (cm_event_id_t) {EPOCH, 3}, "d", 1, 0),
                      BC_HISTORY_DUPLICATE);
    assert_int_equal (bc_history_append (history, "s", (cm_event_id_t) {EPOCH, 1}, "d", 1, 0),
                      BC_HISTORY_DUPLICATE);
    assert_int_equal (bc_history_append (history, "s", (cm_event_id_t) {EPOCH, 0}, "d", 1, 0),
                      CM_EINVAL);
    assert_int_equal (bc_history_session_events (history, "s"), 3);
    //  4 never came: 5 starts the range again.
    assert_int_equal (bc_history_append (history, "s", (cm_event_id_t) {EPOCH, 5}, "g", 1, 0), 0);
    assert_int_equal (bc_history_session_events (history, "s"), 1);
    s_seen_t seen = {0};
    bool complete = true;
    cm_event_id_t after = {EPOCH, 3};
    bc_history_replay (history, "s", &after, 0, &complete, s_collect, &seen);
    assert_false (complete); //  4 is not here
    assert_int_equal (seen.count, 1);
    after.seq = 4;
    bc_history_replay (history, "s", &after, 0, &complete, s_collect, &seen);
    assert_true (complete);
    //  A new store (another epoch) restarts the range too, even lower.
    assert_int_equal (
        bc_history_append (history, "s", (cm_event_id_t) {EPOCH + 1, 1}, "n", 1, 0), 0);
    assert_int_equal (bc_history_session_events (history, "s"), 1);
    after = (cm_event_id_t) {EPOCH, 5};
    bc_history_replay (history, "s", &after, 0, &complete, s_collect, &seen);
    assert_false (complete);
    bc_history_destroy (&history);
}

static void
test_invalid_session_rejected (void **state)
{
    (void) state;
    bc_history_t *history = s_history (500, 300000, 100);
    cm_event_id_t id = {EPOCH, 1};
    assert_int_equal (bc_history_append (history, "bad id", id, "x", 1, 0), CM_EINVAL);
    assert_int_equal (bc_history_append (history, "", id, "x", 1, 0), CM_EINVAL);
    assert_int_equal (bc_history_sessions (history), 0);
    bc_history_destroy (&history);
}

static void
test_replay_after_returns_exactly_later_events (void **state)
{
    (void) state;
    bc_history_t *history = s_history (500, 300000, 100);
    char body[16];
    for (int i = 1; i <= 10; i++) {
        snprintf (body, sizeof body, "e%d", i);
        s_append (history, "s", body, 100, NULL);
    }
    s_seen_t seen = {0};
    bool complete = false;
    cm_event_id_t after = {EPOCH, 7};
    assert_int_equal (bc_history_replay (history, "s", &after, 100, &complete, s_collect,
                                         &seen), 0);
    assert_true (complete);
    assert_int_equal (seen.count, 3);
    assert_int_equal (seen.ids[0].seq, 8);
    assert_int_equal (seen.ids[2].seq, 10);
    assert_string_equal (seen.bodies[0], "e8");
    assert_string_equal (seen.bodies[2], "e10");

    //  After the last one: nothing, complete.
    memset (&seen, 0, sizeof seen);
    after.seq = 10;
    bc_history_replay (history, "s", &after, 100, &complete, s_collect, &seen);
    assert_true (complete);
    assert_int_equal (seen.count, 0);

    //  No `after`: everything held, complete.
    memset (&seen, 0, sizeof seen);
    complete = false;
    bc_history_replay (history, "s", NULL, 100, &complete, s_collect, &seen);
    assert_true (complete);
    assert_int_equal (seen.count, 10);
    assert_int_equal (seen.ids[0].seq, 1);

    //  An id this session never reached (future seq): incomplete.
    memset (&seen, 0, sizeof seen);
    after.seq = 99;
    bc_history_replay (history, "s", &after, 100, &complete, s_collect, &seen);
    assert_false (complete);
    bc_history_destroy (&history);
}

static void
test_count_bound_makes_replay_incomplete (void **state)
{
    (void) state;
    bc_history_t *history = s_history (3, 300000, 100);
    for (int i = 0; i < 10; i++)
        s_append (history, "s", "x", 100, NULL);
    assert_int_equal (bc_history_session_events (history, "s"), 3);
    s_seen_t seen = {0};
    bool complete = true;
    //  Held: 8, 9, 10. After 7: complete; after 6: seq 7 is gone.
    cm_event_id_t after = {EPOCH, 7};
    bc_history_replay (history, "s", &after, 100, &complete, s_collect, &seen);
    assert_true (complete);
    assert_int_equal (seen.count, 3);
    assert_int_equal (seen.ids[0].seq, 8);
    memset (&seen, 0, sizeof seen);
    after.seq = 6;
    bc_history_replay (history, "s", &after, 100, &complete, s_collect, &seen);
    assert_false (complete);
    assert_int_equal (seen.count, 3); //  what is held still comes back
    bc_history_destroy (&history);
}

static void
test_age_bound (void **state)
{
    (void) state;
    bc_history_t *history = s_history (500, 1000, 100);
    s_append (history, "s", "old1", 0, NULL);
    s_append (history, "s", "old2", 500, NULL);
    s_append (history, "s", "new", 1400, NULL); //  drops seq 1 (1400 ms old)
    assert_int_equal (bc_history_session_events (history, "s"), 2);
    s_seen_t seen = {0};
    bool complete = true;
    //  At 1600, seq 2 (500) is 1100 ms old: gone too.
    bc_history_replay (history, "s", NULL, 1600, &complete, s_collect, &seen);
    assert_true (complete);
    assert_int_equal (seen.count, 1);
    assert_string_equal (seen.bodies[0], "new");
    cm_event_id_t after = {EPOCH, 1};
    bc_history_replay (history, "s", &after, 1600, &complete, s_collect, &seen);
    assert_false (complete);
    bc_history_destroy (&history);
}

static void
test_other_epoch_is_incomplete (void **state)
{
    (void) state;
    bc_history_t *history = s_history (500, 300000, 100);
    s_append (history, "s", "a", 0, NULL);
    s_append (history, "s", "b", 0, NULL);
    s_seen_t seen = {0};
    bool complete = true;
    cm_event_id_t after = {EPOCH - 1, 1};
    bc_history_replay (history, "s", &after, 0, &complete, s_collect, &seen);
    assert_false (complete);
    assert_int_equal (seen.count, 2); //  everything held, for the resync
    bc_history_destroy (&history);
}

static void
test_session_cap_drops_least_recently_active (void **state)
{
    (void) state;
    bc_history_t *history = s_history (500, 300000, 3);
    s_append (history, "a", "x", 1, NULL);
    s_append (history, "b", "x", 2, NULL);
    s_append (history, "c", "x", 3, NULL);
    s_append (history, "a", "x", 4, NULL); //  a is now the most recent
    s_append (history, "d", "x", 5, NULL); //  drops b
    assert_int_equal (bc_history_sessions (history), 3);
    assert_int_equal (bc_history_session_events (history, "b"), 0);
    assert_int_equal (bc_history_session_events (history, "a"), 2);
    assert_int_equal (bc_history_session_events (history, "c"), 1);
    assert_int_equal (bc_history_session_events (history, "d"), 1);
    //  A gateway that saw b's event 1 cannot get a complete replay.
    s_seen_t seen = {0};
    bool complete = true;
    cm_event_id_t after = {EPOCH, 1};
    bc_history_replay (history, "b", &after, 6, &complete, s_collect, &seen);
    assert_false (complete);
    assert_int_equal (seen.count, 0);
    bc_history_destroy (&history);
}

static void
test_prune_idle_sessions_and_ids_keep_increasing (void **state)
{
    (void) state;
    bc_history_t *history = s_history (500, 1000, 100);
    cm_event_id_t id;
    s_append (history, "idle", "x", 0, NULL);
    s_append (history, "idle", "x", 0, &id);
    assert_int_equal (id.seq, 2);
    s_append (history, "busy", "x", 900, NULL);
    assert_int_equal (bc_history_prune (history, 1000), 0); //  exactly max age: kept
    assert_int_equal (bc_history_prune (history, 1500), 1);
    assert_int_equal (bc_history_sessions (history), 1);
    assert_int_equal (bc_history_session_events (history, "idle"), 0);
    assert_int_equal (bc_history_session_events (history, "busy"), 1);
    //  The idle session comes back with the store's next id.
    s_append (history, "idle", "x", 1600, &id);
    assert_int_equal (id.seq, 3);
    //  Nothing was issued between 2 and 3, so that replay is complete.
    s_seen_t seen = {0};
    bool complete = false;
    cm_event_id_t after = {EPOCH, 2};
    bc_history_replay (history, "idle", &after, 1600, &complete, s_collect, &seen);
    assert_true (complete);
    assert_int_equal (seen.count, 1);
    //  But a gateway that saw only event 1 missed event 2, which is gone.
    after.seq = 1;
    bc_history_replay (history, "idle", &after, 1600, &complete, s_collect, &seen);
    assert_false (complete);
    assert_int_equal (bc_history_prune (history, 10000), 2);
    assert_int_equal (bc_history_sessions (history), 0);
    bc_history_destroy (&history);
}

static void
test_ring_grows_and_wraps (void **state)
{
    (void) state;
    bc_history_t *history = s_history (50, 300000, 10);
    char body[16];
    for (int i = 1; i <= 137; i++) {
        snprintf (body, sizeof body, "%d", i);
        s_append (history, "s", body, i, NULL);
    }
    s_seen_t seen = {0};
    bool complete;
    cm_event_id_t after = {EPOCH, 120};
    bc_history_replay (history, "s", &after, 200, &complete, s_collect, &seen);
    assert_true (complete);
    assert_int_equal (seen.count, 17);
    for (size_t i = 0; i < seen.count; i++) {
        assert_int_equal (seen.ids[i].seq, 121 + i);
        snprintf (body, sizeof body, "%zu", 121 + i);
        assert_string_equal (seen.bodies[i], body);
    }
    bc_history_destroy (&history);
}

static void
test_bad_limits (void **state)
{
    (void) state;
    bc_history_limits_t limits = {0, 1000, 10};
    assert_null (bc_history_new (&limits));
    limits = (bc_history_limits_t) {10, 0, 10};
    assert_null (bc_history_new (&limits));
    limits = (bc_history_limits_t) {10, 10, 0};
    assert_null (bc_history_new (&limits));
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_keeps_the_store_ids),
        cmocka_unit_test (test_duplicates_gaps_and_epochs),
        cmocka_unit_test (test_invalid_session_rejected),
        cmocka_unit_test (test_replay_after_returns_exactly_later_events),
        cmocka_unit_test (test_count_bound_makes_replay_incomplete),
        cmocka_unit_test (test_age_bound),
        cmocka_unit_test (test_other_epoch_is_incomplete),
        cmocka_unit_test (test_session_cap_drops_least_recently_active),
        cmocka_unit_test (test_prune_idle_sessions_and_ids_keep_increasing),
        cmocka_unit_test (test_ring_grows_and_wraps),
        cmocka_unit_test (test_bad_limits),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
