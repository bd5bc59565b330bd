/*  test_gw_replay: a broadcaster's history first, the store's log when it
    cannot cover the Last-Event-ID.                                      */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "cm_error.h"
#include <stdio.h>
#include "gw_replay.h"

typedef struct {
    int bc_rc, store_rc;
    bool bc_complete, store_complete;
    int bc_calls, store_calls;
    const char *bc_newest; //  the id of the broadcaster's last event, or NULL: none
} s_world_t;

static cm_value_t *
s_answer (bool complete, const char *who)
{
    cm_value_t *payload = cm_map_new ();
    cm_map_set_bool (payload, "complete", complete);
    cm_map_set_str (payload, "who", who);
    return payload;
}

static int
s_store (void *arg, const char *after, cm_value_t **payload);

static int
s_ask (void *arg, bool from_store, const char *after, cm_value_t **payload)
{
    if (from_store)
        return s_store (arg, after, payload);
    s_world_t *w = arg;
    w->bc_calls++;
    if (w->bc_rc)
        return w->bc_rc;
    *payload = s_answer (w->bc_complete, "bc");
    if (w->bc_newest) {
        cm_value_t *events = cm_arr_new (), *event = cm_map_new ();
        cm_map_set_str (event, "id", w->bc_newest);
        cm_arr_push (events, event);
        cm_map_set (*payload, "events", events);
    }
    return 0;
}

static int
s_store (void *arg, const char *after, cm_value_t **payload)
{
    s_world_t *w = arg;
    assert_non_null (after);
    w->store_calls++;
    if (w->store_rc)
        return w->store_rc;
    *payload = s_answer (w->store_complete, "store");
    return 0;
}

static const char *
s_fill_until (s_world_t *w, const char *after, const char *until, int expect_rc,
              bool expect_store)
{
    static char who[16];
    cm_value_t *payload = NULL;
    bool from_store = !expect_store;
    assert_int_equal (gw_replay_fill (s_ask, w, after, until, &payload, &from_store),
                      expect_rc);
    assert_int_equal (from_store, expect_store);
    snprintf (who, sizeof who, "%s", payload ? cm_map_str_or (payload, "who", "?") : "none");
    cm_value_destroy (&payload);
    return who;
}

static const char *
s_fill (s_world_t *w, const char *after, int expect_rc, bool expect_store)
{
    return s_fill_until (w, after, NULL, expect_rc, expect_store);
}

static void
test_sources (void **state)
{
    (void) state;
    //  The broadcaster covers it: the store is not asked.
    s_world_t w = {0, 0, true, true, 0, 0, NULL};
    assert_string_equal (s_fill (&w, "1-5", 0, false), "bc");
    assert_int_equal (w.store_calls, 0);
    //  A restarted broadcaster holds nothing: the store's log answers.
    w = (s_world_t) {0, 0, false, true, 0, 0, NULL};
    assert_string_equal (s_fill (&w, "1-5", 0, true), "store");
    //  A dead one (timeout): the store too.
    w = (s_world_t) {CM_ETIMEOUT, 0, false, true, 0, 0, NULL};
    assert_string_equal (s_fill (&w, "1-5", 0, true), "store");
    //  Retention trimmed it: the store's incomplete answer (resync).
    w = (s_world_t) {0, 0, false, false, 0, 0, NULL};
    assert_string_equal (s_fill (&w, "1-5", 0, true), "store");
    //  The store is down: the broadcaster's answer stays.
    w = (s_world_t) {0, CM_EBACKEND, false, true, 0, 0, NULL};
    assert_string_equal (s_fill (&w, "1-5", 0, false), "bc");
    assert_int_equal (w.store_calls, 1);
    //  Both down: the broadcaster's error, nothing.
    w = (s_world_t) {CM_ETIMEOUT, CM_EBACKEND, false, false, 0, 0, NULL};
    assert_string_equal (s_fill (&w, "1-5", CM_ETIMEOUT, false), "none");
    //  No id: nothing to cover, the store is not asked.
    w = (s_world_t) {0, 0, false, true, 0, 0, NULL};
    assert_string_equal (s_fill (&w, NULL, 0, false), "bc");
    assert_string_equal (s_fill (&w, "", 0, false), "bc");
    assert_int_equal (w.store_calls, 0);
}

//  A gap seen live (until = the live event): a broadcaster that calls its
//  answer complete but has not received the events up to it yet (the
//  other broadcaster's copy came first) does not cover it.
static void
test_gap_until (void **state)
{
    (void) state;
    //  Its events reach the one before 1-9: covered.
    s_world_t w = {0, 0, true, true, 0, 0, "1-8"};
    assert_string_equal (s_fill_until (&w, "1-5", "1-9", 0, false), "bc");
    assert_int_equal (w.store_calls, 0);
    //  They stop at 1-7: the store's log is asked.
    w = (s_world_t) {0, 0, true, true, 0, 0, "1-7"};
    assert_string_equal (s_fill_until (&w, "1-5", "1-9", 0, true), "store");
    //  It has nothing after 1-5 at all: the store too.
    w = (s_world_t) {0, 0, true, true, 0, 0, NULL};
    assert_string_equal (s_fill_until (&w, "1-5", "1-9", 0, true), "store");
    //  Another epoch: the store.
    w = (s_world_t) {0, 0, true, true, 0, 0, "2-8"};
    assert_string_equal (s_fill_until (&w, "1-5", "1-9", 0, true), "store");
    //  An until that does not parse checks nothing.
    w = (s_world_t) {0, 0, true, true, 0, 0, NULL};
    assert_string_equal (s_fill_until (&w, "1-5", "x", 0, false), "bc");
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_sources),
        cmocka_unit_test (test_gap_until),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
