/*  test_gw_shards: which shard a store request goes to (gw_shards.h),
    against fake shards: the session's first shard, the walk to where an
    older session lives, new sessions on their first shard, the merged
    session list, a replay from the event log of the shard that holds the
    session, and a down shard failing only what reaches it (the list
    leaves it out and names it).                                      */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "cm_error.h"
#include "gw_shards.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#define S_HELD_MAX 64

//  A fake shard: the sessions it holds (with their update times), and
//  whether it answers at all.
typedef struct {
    char held[S_HELD_MAX][40];
    int64_t updated[S_HELD_MAX];
    int count;
    bool down;
    int calls;
} s_shard_t;

typedef struct {
    gw_shards_t *shards;
    s_shard_t fake[CM_SHARDS_MAX];
} s_world_t;

static int
s_find (const s_shard_t *shard, const char *session_id)
{
    for (int i = 0; i < shard->count; i++)
        if (strcmp (shard->held[i], session_id) == 0)
            return i;
    return -1;
}

static void
s_hold (s_shard_t *shard, const char *session_id, int64_t updated)
{
    snprintf (shard->held[shard->count], sizeof shard->held[0], "%s", session_id);
    shard->updated[shard->count++] = updated;
}

static cm_value_t *
s_error (const char *why)
{
    cm_value_t *err = cm_map_new ();
    cm_map_set_str (err, "message", why);
    return err;
}

static int
s_fake_call (void *arg, gw_backend_t *pool, cm_msg_t type, cm_value_t *payload, cm_value_t **ok,
             cm_value_t **err)
{
    s_world_t *world = arg;
    int index = 0;
    while (gw_shards_pool (world->shards, index) != pool)
        index++;
    s_shard_t *shard = &world->fake[index];
    shard->calls++;
    *ok = *err = NULL;
    int rc = 0;
    char key[200];
    const char *session_id = gw_shards_key (payload, key, sizeof key);
    if (shard->down)
        rc = CM_EBACKEND;
    else if (type == CM_MSG_SESSION_LIST) {
        //  Every held session, with its place, newest first: the fake's
        //  page is all of them (limit 2 at most shown by the test).
        cm_value_t *list = cm_arr_new ();
        for (int i = 0; i < shard->count; i++) {
            cm_value_t *summary = cm_map_new ();
            cm_map_set_str (summary, "session_id", shard->held[i]);
            char place[80];
            snprintf (place, sizeof place, "%lld.%s", (long long) shard->updated[i],
                      shard->held[i]);
            if (cm_map_bool (payload, "shard_cursors", false))
                cm_map_set_str (summary, "cursor", place);
            cm_arr_push (list, summary);
        }
        *ok = cm_map_new ();
        cm_map_set (*ok, "sessions", list);
        cm_map_set_nil (*ok, "next_cursor");
    }
    else if (type == CM_MSG_EVENTS_AFTER) {
        //  The store's event log: a held session's events, complete; any
        //  other session none, incomplete (another store's id).
        bool held = s_find (shard, session_id) >= 0;
        cm_value_t *events = cm_arr_new ();
        if (held)
            cm_arr_push (events, cm_map_new ());
        *ok = cm_map_new ();
        cm_map_set (*ok, "events", events);
        cm_map_set_bool (*ok, "complete", held);
        cm_map_set_int (*ok, "shard", index);
    }
    else if (type == CM_MSG_SESSION_START && s_find (shard, session_id) < 0) {
        if (cm_map_bool (payload, "existing", false)) {
            rc = CM_ENOTFOUND;
            *err = s_error (CM_SHARD_ABSENT);
        }
        else
            s_hold (shard, session_id, 1);
    }
    else if (s_find (shard, session_id) < 0) {
        rc = CM_ENOTFOUND;
        *err = s_error (index == 0 ? "first shard: no such session" : "no such session");
    }
    if (rc == 0 && !*ok) {
        *ok = cm_map_new ();
        cm_map_set_int (*ok, "shard", index);
    }
    cm_value_destroy (&payload);
    return rc;
}

static void
s_world (s_world_t *world, const char *list)
{
    memset (world, 0, sizeof *world);
    cm_shards_t map;
    char why[200];
    assert_int_equal (cm_shards_parse (list, "tcp://127.0.0.1:1", &map, why, sizeof why), 0);
    gw_backend_options_t options = {.endpoint = "unused", .sockets = 1, .timeout_ms = 100};
    world->shards = gw_shards_new (&map, &options, s_fake_call, world);
    assert_non_null (world->shards);
}

static cm_value_t *
s_payload (const char *field, const char *value)
{
    cm_value_t *payload = cm_map_new ();
    cm_map_set_str (payload, "user", "alice");
    cm_map_set_str (payload, field, value);
    return payload;
}

//  The call's rc; *shard the answering shard's index (-1 on failure).
static int
s_call (s_world_t *world, cm_msg_t type, cm_value_t *payload, int *shard, char *why,
        size_t why_size)
{
    cm_value_t *ok = NULL, *err = NULL;
    int rc = gw_shards_call (world->shards, type, payload, &ok, &err);
    *shard = rc ? -1 : (int) cm_map_int (ok, "shard", -1);
    if (why)
        snprintf (why, why_size, "%s", cm_map_str_or (err, "message", ""));
    cm_value_destroy (&ok);
    cm_value_destroy (&err);
    return rc;
}

static int
s_calls (s_world_t *world)
{
    int n = 0;
    for (int i = 0; i < CM_SHARDS_MAX; i++)
        n += world->fake[i].calls;
    return n;
}

static void
test_request_keys (void **state)
{
    (void) state;
    char key[200];
    cm_value_t *p = s_payload ("message_id", "msg_0123_my_session_assistant");
    assert_string_equal (gw_shards_key (p, key, sizeof key), "my_session");
    cm_map_set_str (p, "session_id", "other");
    assert_string_equal (gw_shards_key (p, key, sizeof key), "other");
    cm_value_destroy (&p);
    p = s_payload ("task_id", "regen_abc");
    assert_string_equal (gw_shards_key (p, key, sizeof key), "regen_abc");
    cm_value_destroy (&p);
    p = s_payload ("message_id", "not-a-message-id");
    assert_null (gw_shards_key (p, key, sizeof key));
    cm_value_destroy (&p);
}

//  A new session lands on its first shard after one search of every
//  shard; its later requests are one call each.
static void
test_new_session_on_its_first_shard (void **state)
{
    (void) state;
    s_world_t world;
    s_world (&world, "a=tcp://h:1,b=tcp://h:2,c=tcp://h:3");
    cm_shards_t map;
    char why[200];
    cm_shards_parse ("a=tcp://h:1,b=tcp://h:2,c=tcp://h:3", NULL, &map, why, sizeof why);
    for (int i = 0; i < 30; i++) {
        char id[32];
        snprintf (id, sizeof id, "s%d", i);
        int shard, before = s_calls (&world);
        assert_int_equal (s_call (&world, CM_MSG_SESSION_START, s_payload ("session_id", id),
                                  &shard, NULL, 0),
                          0);
        assert_int_equal (shard, cm_shards_pick (&map, id));
        assert_int_equal (s_calls (&world) - before, 3 + 1);
        before = s_calls (&world);
        assert_int_equal (s_call (&world, CM_MSG_SESSION_START, s_payload ("session_id", id),
                                  &shard, NULL, 0),
                          0);
        assert_int_equal (shard, cm_shards_pick (&map, id));
        assert_int_equal (s_call (&world, CM_MSG_SESSION_GET, s_payload ("session_id", id),
                                  &shard, NULL, 0),
                          0);
        assert_int_equal (shard, cm_shards_pick (&map, id));
        assert_int_equal (s_calls (&world) - before, 2);
    }
    gw_shards_destroy (&world.shards);
}

//  A session made before the fourth shard stays on its shard: every
//  request finds it there, and a new turn does not copy it elsewhere.
static void
test_old_sessions_found_after_a_shard_is_added (void **state)
{
    (void) state;
    cm_shards_t three, four;
    char why[200];
    cm_shards_parse ("a=tcp://h:1,b=tcp://h:2,c=tcp://h:3", NULL, &three, why, sizeof why);
    cm_shards_parse ("a=tcp://h:1,b=tcp://h:2,c=tcp://h:3,d=tcp://h:4", NULL, &four, why,
                     sizeof why);
    s_world_t world;
    s_world (&world, "a=tcp://h:1,b=tcp://h:2,c=tcp://h:3,d=tcp://h:4");
    int moved = 0;
    for (int i = 0; i < 60; i++) {
        char id[32], message[80];
        snprintf (id, sizeof id, "old%d", i);
        int home = cm_shards_pick (&three, id);
        s_hold (&world.fake[home], id, 1);
        snprintf (message, sizeof message, "msg_0a1b_%s_user", id);
        int shard;
        assert_int_equal (s_call (&world, CM_MSG_FEEDBACK_PUT, s_payload ("message_id", message),
                                  &shard, NULL, 0),
                          0);
        assert_int_equal (shard, home);
        assert_int_equal (s_call (&world, CM_MSG_SESSION_START, s_payload ("session_id", id),
                                  &shard, NULL, 0),
                          0);
        assert_int_equal (shard, home);
        assert_int_equal (world.fake[3].count, 0);
        //  A replay from the event log: the holder's events, past the
        //  shards that have none of them.
        assert_int_equal (s_call (&world, CM_MSG_EVENTS_AFTER, s_payload ("session_id", id),
                                  &shard, NULL, 0),
                          0);
        assert_int_equal (shard, home);
        moved += cm_shards_pick (&four, id) != home;
    }
    //  A session held nowhere: the first shard's empty answer.
    cm_value_t *ok = NULL, *err = NULL;
    assert_int_equal (gw_shards_call (world.shards, CM_MSG_EVENTS_AFTER,
                                      s_payload ("session_id", "nowhere"), &ok, &err),
                      0);
    assert_int_equal (cm_value_len (cm_map_get (ok, "events")), 0);
    assert_false (cm_map_bool (ok, "complete", true));
    cm_value_destroy (&ok);
    //  Some of them rank the new shard first: the walk was needed.
    assert_true (moved > 0);
    gw_shards_destroy (&world.shards);
}

//  Missing everywhere: the first shard's not-found is the answer.
static void
test_missing_everywhere_is_the_first_shards_not_found (void **state)
{
    (void) state;
    s_world_t world;
    s_world (&world, "a=tcp://h:1,b=tcp://h:2,c=tcp://h:3");
    int shard;
    char why[200];
    //  Whichever shard ranks first, the answer is its own not-found.
    assert_int_equal (s_call (&world, CM_MSG_SESSION_GET, s_payload ("session_id", "nobody"),
                              &shard, why, sizeof why),
                      CM_ENOTFOUND);
    assert_int_equal (s_calls (&world), 3);
    assert_non_null (strstr (why, "no such session"));
    gw_shards_destroy (&world.shards);
}

//  A down shard fails the sessions it holds; those of the others answer
//  without asking it.
static void
test_down_shard_fails_only_what_reaches_it (void **state)
{
    (void) state;
    cm_shards_t map;
    char why[200];
    cm_shards_parse ("a=tcp://h:1,b=tcp://h:2,c=tcp://h:3", NULL, &map, why, sizeof why);
    s_world_t world;
    s_world (&world, "a=tcp://h:1,b=tcp://h:2,c=tcp://h:3");
    for (int i = 0; i < 30; i++) {
        char id[32];
        snprintf (id, sizeof id, "s%d", i);
        s_hold (&world.fake[cm_shards_pick (&map, id)], id, 1);
    }
    world.fake[1].down = true;
    int failed = 0;
    for (int i = 0; i < 30; i++) {
        char id[32];
        snprintf (id, sizeof id, "s%d", i);
        int shard, home = cm_shards_pick (&map, id);
        int rc = s_call (&world, CM_MSG_SESSION_START, s_payload ("session_id", id), &shard,
                         NULL, 0);
        assert_int_equal (rc, home == 1 ? CM_EBACKEND : 0);
        failed += rc != 0;
        if (rc == 0)
            assert_int_equal (shard, home);
    }
    assert_true (failed > 0 && failed < 30);
    //  A key on another shard is found past the down one (a task id
    //  names no session); no new session is made while a shard is down.
    char task[32];
    for (int n = 0;; n++) {
        int order[CM_SHARDS_MAX];
        snprintf (task, sizeof task, "regen_%d", n);
        cm_shards_rank (&map, task, order);
        if (order[0] == 1 && order[1] == 2)
            break; //  asked of the down shard first
    }
    s_hold (&world.fake[2], task, 1);
    int shard;
    assert_int_equal (s_call (&world, CM_MSG_TASK_STATUS, s_payload ("task_id", task),
                              &shard, NULL, 0),
                      0);
    assert_int_equal (shard, 2);
    assert_int_equal (s_call (&world, CM_MSG_TASK_STATUS, s_payload ("task_id", "regen_none"),
                              &shard, NULL, 0),
                      CM_EBACKEND);
    for (int i = 0; i < 30; i++) {
        char id[32];
        snprintf (id, sizeof id, "fresh%d", i);
        assert_int_equal (s_call (&world, CM_MSG_SESSION_START, s_payload ("session_id", id),
                                  &shard, NULL, 0),
                          CM_EBACKEND);
    }
    assert_int_equal (world.fake[0].count + world.fake[2].count, 30 - failed + 1);
    //  The list: the sessions of the shards that answer, and the name of
    //  the one that did not; when none answers, its failure.
    cm_value_t *ok = NULL, *err = NULL;
    cm_value_t *list = s_payload ("user", "alice");
    cm_map_set_int (list, "limit", 100);
    assert_int_equal (gw_shards_call (world.shards, CM_MSG_SESSION_LIST, list, &ok, &err), 0);
    assert_int_equal (cm_value_len (cm_map_get (ok, "sessions")),
                      world.fake[0].count + world.fake[2].count);
    const cm_value_t *down = cm_map_get (ok, "unavailable_shards");
    assert_int_equal (cm_value_len (down), 1);
    assert_string_equal (cm_arr_at (down, 0)->u.s.ptr, "b");
    cm_value_destroy (&ok);
    world.fake[0].down = world.fake[2].down = true;
    assert_int_equal (s_call (&world, CM_MSG_SESSION_LIST, s_payload ("user", "alice"), &failed,
                              NULL, 0),
                      CM_EBACKEND);
    gw_shards_destroy (&world.shards);
}

//  Every shard's sessions in one order; the page ends at the limit with
//  next_cursor at its last session, without the shards' own places.
static void
test_list_merges_every_shard (void **state)
{
    (void) state;
    s_world_t world;
    s_world (&world, "a=tcp://h:1,b=tcp://h:2,c=tcp://h:3");
    s_hold (&world.fake[0], "x", 30);
    s_hold (&world.fake[0], "y", 10);
    s_hold (&world.fake[1], "z", 20);
    s_hold (&world.fake[2], "w", 40);
    s_hold (&world.fake[2], "v", 20);
    cm_value_t *payload = s_payload ("user", "alice");
    cm_map_set_int (payload, "limit", 4);
    cm_value_t *ok = NULL, *err = NULL;
    assert_int_equal (gw_shards_call (world.shards, CM_MSG_SESSION_LIST, payload, &ok, &err), 0);
    const cm_value_t *list = cm_map_get (ok, "sessions");
    assert_int_equal (cm_value_len (list), 4);
    const char *expected[] = {"w", "x", "v", "z"};
    for (int i = 0; i < 4; i++) {
        assert_string_equal (cm_map_str (cm_arr_at (list, (size_t) i), "session_id"),
                             expected[i]);
        assert_null (cm_map_get (cm_arr_at (list, (size_t) i), "cursor"));
    }
    assert_string_equal (cm_map_str (ok, "next_cursor"), "20.z");
    cm_value_destroy (&ok);
    payload = s_payload ("user", "alice");
    assert_int_equal (gw_shards_call (world.shards, CM_MSG_SESSION_LIST, payload, &ok, &err), 0);
    assert_int_equal (cm_value_len (cm_map_get (ok, "sessions")), 5);
    assert_non_null (cm_map_get (ok, "next_cursor"));
    assert_null (cm_map_str (ok, "next_cursor"));
    cm_value_destroy (&ok);
    gw_shards_destroy (&world.shards);
}

//  One shard: every request one call to it, as before sharding.
static void
test_one_shard_is_one_call (void **state)
{
    (void) state;
    s_world_t world;
    s_world (&world, "");
    int shard;
    assert_int_equal (s_call (&world, CM_MSG_SESSION_START, s_payload ("session_id", "s"), &shard,
                              NULL, 0),
                      0);
    assert_int_equal (s_call (&world, CM_MSG_SESSION_GET, s_payload ("session_id", "t"), &shard,
                              NULL, 0),
                      CM_ENOTFOUND);
    assert_int_equal (s_calls (&world), 2);
    gw_shards_destroy (&world.shards);
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_request_keys),
        cmocka_unit_test (test_new_session_on_its_first_shard),
        cmocka_unit_test (test_old_sessions_found_after_a_shard_is_added),
        cmocka_unit_test (test_missing_everywhere_is_the_first_shards_not_found),
        cmocka_unit_test (test_down_shard_fails_only_what_reaches_it),
        cmocka_unit_test (test_list_merges_every_shard),
        cmocka_unit_test (test_one_shard_is_one_call),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
