/*  test_gw_shard_rate: a user's rate-limit tokens on the shard of the
    user id (gw_shard_rate.h), through gw_shards_call against fake shards
    that keep buckets: one budget over every shard, the request sent
    without its limits, tokens given back when the request changed nothing
    (refused, replayed) and the regeneration token when an edit started
    none, which requests count as regenerations, and the fallback to the
    session's shard while the user's does not answer.                    */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "cm_error.h"
#include "cm_ids.h"
#include "gw_shard_rate.h"

#include <stdio.h>
#include <string.h>

#define S_KEYS 8

//  A fake shard: its buckets (key -> tokens taken, one window), whether it
//  answers, what its next request answers, and what it last received.
typedef struct {
    char keys[S_KEYS][64];
    int64_t taken[S_KEYS];
    int key_count;
    bool down;
    int answer;              //  the next request's rc (0: ok)
    bool replayed;           //  the next ok says replayed
    bool no_regeneration;    //  the next ok's data says triggered_regeneration false
    bool saw_limits;         //  the last request carried rate_limit
    int requests, consumes, refunds;
} s_shard_t;

typedef struct {
    gw_shards_t *shards;
    s_shard_t fake[3];
} s_world_t;

#define S_WINDOW 1000

static int64_t *
s_bucket (s_shard_t *shard, const char *key)
{
    for (int i = 0; i < shard->key_count; i++)
        if (strcmp (shard->keys[i], key) == 0)
            return &shard->taken[i];
    snprintf (shard->keys[shard->key_count], sizeof shard->keys[0], "%s", key);
    shard->taken[shard->key_count] = 0;
    return &shard->taken[shard->key_count++];
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
    *ok = *err = NULL;
    int rc = 0;
    if (shard->down)
        rc = CM_EBACKEND;
    else if (type == CM_MSG_RATE_CONSUME) {
        shard->consumes++;
        int64_t *taken = s_bucket (shard, cm_map_str_or (payload, "key", ""));
        if (*taken >= cm_map_int (payload, "limit", 0)) {
            rc = CM_ERATELIMIT;
            *err = cm_map_new ();
            cm_map_set_str (*err, "message", "rate limit exceeded");
            cm_map_set_int (*err, "retry_after_ms", 5000);
        }
        else {
            ++*taken;
            *ok = cm_map_new ();
            cm_map_set_int (*ok, "window_start", S_WINDOW);
        }
    }
    else if (type == CM_MSG_RATE_REFUND) {
        shard->refunds++;
        int64_t *taken = s_bucket (shard, cm_map_str_or (payload, "key", ""));
        bool refunded = cm_map_int (payload, "window_start", 0) == S_WINDOW && *taken > 0;
        *taken -= refunded;
        *ok = cm_map_new ();
        cm_map_set_bool (*ok, "refunded", refunded);
    }
    else {
        //  Every fake holds every session: the first shard of the rank
        //  answers, as for a session that lives there.
        shard->requests++;
        shard->saw_limits = cm_map_get (payload, "rate_limit") != NULL;
        rc = shard->answer;
        shard->answer = 0;
        if (rc)
            *err = cm_map_new ();
        else {
            *ok = cm_map_new ();
            if (shard->replayed)
                cm_map_set_bool (*ok, "replayed", true);
            cm_value_t *data = cm_map_new ();
            if (shard->no_regeneration)
                cm_map_set_bool (data, "triggered_regeneration", false);
            cm_map_set (*ok, "data", data);
            shard->replayed = shard->no_regeneration = false;
        }
    }
    cm_value_destroy (&payload);
    return rc;
}

static void
s_world (s_world_t *world)
{
    memset (world, 0, sizeof *world);
    cm_shards_t map;
    char why[200];
    assert_int_equal (cm_shards_parse ("a=tcp://h:1,b=tcp://h:2,c=tcp://h:3", NULL, &map, why,
                                       sizeof why),
                      0);
    gw_backend_options_t options = {.endpoint = "unused", .sockets = 1, .timeout_ms = 100};
    world->shards = gw_shards_new (&map, &options, s_fake_call, world);
    assert_non_null (world->shards);
}

//  A limited request of type on session (as message_id when message is
//  set, with role) by user.
static int
s_limited (s_world_t *world, cm_msg_t type, const char *user, const char *session,
           const char *role, int64_t actions, int64_t regens)
{
    cm_value_t *payload = cm_map_new ();
    cm_map_set_str (payload, "user", user);
    if (role) {
        char id[CM_MESSAGE_ID_MAX + 1];
        assert_int_equal (cm_msgid_format (id, sizeof id, "1234", session, role), 0);
        cm_map_set_str (payload, "message_id", id);
    }
    else
        cm_map_set_str (payload, "session_id", session);
    cm_map_set_int (payload, "rate_limit", actions);
    cm_map_set_int (payload, "regen_rate_limit", regens);
    cm_value_t *ok = NULL, *err = NULL;
    int rc = gw_shards_call (world->shards, type, payload, &ok, &err);
    if (rc == CM_ERATELIMIT)
        assert_int_equal (cm_map_int (err, "retry_after_ms", 0), 5000);
    cm_value_destroy (&ok);
    cm_value_destroy (&err);
    return rc;
}

//  Sessions on every shard share one budget on the user's shard; the
//  request reaches its shard without limits.
static void
test_one_budget_over_every_shard (void **state)
{
    (void) state;
    s_world_t world;
    s_world (&world);
    int home = cm_shards_pick (gw_shards_map (world.shards), "ann");
    for (int i = 0; i < 6; i++) {
        char session[32];
        snprintf (session, sizeof session, "s%d", i);
        assert_int_equal (s_limited (&world, CM_MSG_FEEDBACK_PUT, "ann", session, "assistant",
                                     6, 0),
                          0);
    }
    assert_int_equal (s_limited (&world, CM_MSG_FEEDBACK_PUT, "ann", "s9", "assistant", 6, 0),
                      CM_ERATELIMIT);
    int requests = 0;
    for (int i = 0; i < 3; i++) {
        requests += world.fake[i].requests;
        assert_false (world.fake[i].saw_limits && world.fake[i].requests);
        assert_int_equal (world.fake[i].consumes, i == home ? 7 : 0);
    }
    assert_int_equal (requests, 6); //  the refused one was not sent
    assert_int_equal (*s_bucket (&world.fake[home], "a:ann"), 6);
    gw_shards_destroy (&world.shards);
}

//  A refused request and a replay give their tokens back; a request that
//  may have been done (a timeout) keeps them.
static void
test_tokens_back_when_nothing_changed (void **state)
{
    (void) state;
    s_world_t world;
    s_world (&world);
    int home = cm_shards_pick (gw_shards_map (world.shards), "bob");
    int session_shard = cm_shards_pick (gw_shards_map (world.shards), "t1");
    world.fake[session_shard].answer = CM_EBADSTATE;
    assert_int_equal (s_limited (&world, CM_MSG_SESSION_RENAME, "bob", "t1", NULL, 5, 0),
                      CM_EBADSTATE);
    assert_int_equal (*s_bucket (&world.fake[home], "a:bob"), 0);
    world.fake[session_shard].replayed = true;
    assert_int_equal (s_limited (&world, CM_MSG_SESSION_RENAME, "bob", "t1", NULL, 5, 0), 0);
    assert_int_equal (*s_bucket (&world.fake[home], "a:bob"), 0);
    //  No shard answers in time (the walk asks every one).
    for (int i = 0; i < 3; i++)
        world.fake[i].answer = CM_ETIMEOUT;
    assert_int_equal (s_limited (&world, CM_MSG_SESSION_RENAME, "bob", "t1", NULL, 5, 0),
                      CM_ETIMEOUT);
    assert_int_equal (*s_bucket (&world.fake[home], "a:bob"), 1);
    gw_shards_destroy (&world.shards);
}

//  Turns, regenerations, continues and a question's edit take an "r:"
//  token too; an edit that started none gives it back; an answer's edit
//  and a vote take none. A full "r:" bucket refuses without an "a:" token.
static void
test_regeneration_tokens (void **state)
{
    (void) state;
    s_world_t world;
    s_world (&world);
    int home = cm_shards_pick (gw_shards_map (world.shards), "cy");
    int64_t *regens = s_bucket (&world.fake[home], "r:cy");
    int64_t *actions = s_bucket (&world.fake[home], "a:cy");
    assert_int_equal (s_limited (&world, CM_MSG_SESSION_START, "cy", "u1", NULL, 100, 10), 0);
    assert_int_equal (s_limited (&world, CM_MSG_REGEN_CREATE, "cy", "u1", "assistant", 100, 10),
                      0);
    assert_int_equal (
        s_limited (&world, CM_MSG_MESSAGE_CONTINUE, "cy", "u1", "assistant", 100, 10), 0);
    assert_int_equal (s_limited (&world, CM_MSG_MESSAGE_EDIT, "cy", "u1", "user", 100, 10), 0);
    assert_int_equal (*regens, 4);
    int session_shard = cm_shards_pick (gw_shards_map (world.shards), "u1");
    world.fake[session_shard].no_regeneration = true;
    assert_int_equal (s_limited (&world, CM_MSG_MESSAGE_EDIT, "cy", "u1", "user", 100, 10), 0);
    assert_int_equal (*regens, 4);
    assert_int_equal (s_limited (&world, CM_MSG_MESSAGE_EDIT, "cy", "u1", "assistant", 100, 10),
                      0);
    assert_int_equal (s_limited (&world, CM_MSG_FEEDBACK_PUT, "cy", "u1", "assistant", 100, 10),
                      0);
    assert_int_equal (*regens, 4);
    assert_int_equal (*actions, 7);
    *regens = 10;
    assert_int_equal (s_limited (&world, CM_MSG_SESSION_START, "cy", "u1", NULL, 100, 10),
                      CM_ERATELIMIT);
    assert_int_equal (*actions, 7);
    cm_value_t *edit = cm_map_new ();
    cm_map_set_bool (edit, "trigger_regeneration", false);
    assert_false (gw_shard_rate_regeneration (CM_MSG_MESSAGE_EDIT, edit));
    cm_value_destroy (&edit);
    gw_shards_destroy (&world.shards);
}

//  The user's shard down: the request goes with its limits to its own
//  shard, which counts it; other users are not touched.
static void
test_user_shard_down_keeps_the_limits (void **state)
{
    (void) state;
    s_world_t world;
    s_world (&world);
    int home = cm_shards_pick (gw_shards_map (world.shards), "dee");
    world.fake[home].down = true;
    char session[32];
    int target = -1;
    for (int n = 0; target < 0 || target == home; n++) {
        snprintf (session, sizeof session, "v%d", n);
        target = cm_shards_pick (gw_shards_map (world.shards), session);
    }
    assert_int_equal (s_limited (&world, CM_MSG_FEEDBACK_PUT, "dee", session, "assistant", 5, 0),
                      0);
    assert_true (world.fake[target].saw_limits);
    gw_shards_destroy (&world.shards);
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_one_budget_over_every_shard),
        cmocka_unit_test (test_tokens_back_when_nothing_changed),
        cmocka_unit_test (test_regeneration_tokens),
        cmocka_unit_test (test_user_shard_down_keeps_the_limits),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
