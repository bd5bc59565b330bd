/*  test_cm_shard: CHATMESH_STORE_SHARDS parsing and rendezvous placement
    (spread over 3 shards, 1/K moved when a shard is added, bad lists).  */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "cm_error.h"
#include "cm_shard.h"

#include <stdio.h>
#include <string.h>

static void
s_parse_ok (const char *list, cm_shards_t *out)
{
    char why[200] = "";
    int rc = cm_shards_parse (list, "tcp://127.0.0.1:7101", out, why, sizeof why);
    if (rc)
        fail_msg ("%s: %s", list, why);
}

static void
s_parse_bad (const char *list, const char *expected)
{
    cm_shards_t out;
    char why[200] = "";
    assert_int_equal (cm_shards_parse (list, "tcp://127.0.0.1:7101", &out, why, sizeof why),
                      CM_EINVAL);
    if (!strstr (why, expected))
        fail_msg ("%s: \"%s\" does not say \"%s\"", list, why, expected);
}

static void
test_empty_list_is_one_shard_on_the_store_endpoint (void **state)
{
    (void) state;
    cm_shards_t shards;
    s_parse_ok ("", &shards);
    assert_int_equal (shards.count, 1);
    assert_string_equal (shards.shards[0].name, CM_SHARD_DEFAULT_NAME);
    assert_string_equal (shards.shards[0].endpoint, "tcp://127.0.0.1:7101");
    s_parse_ok (NULL, &shards);
    assert_int_equal (shards.count, 1);
    assert_int_equal (cm_shards_pick (&shards, "any"), 0);
}

static void
test_names_endpoints_and_standbys (void **state)
{
    (void) state;
    cm_shards_t shards;
    s_parse_ok ("a=tcp://127.0.0.1:5001, b=tcp://10.0.0.2:5001,tcp://10.0.0.3:5001,c-2=ipc:///s",
                &shards);
    assert_int_equal (shards.count, 3);
    assert_string_equal (shards.shards[0].name, "a");
    assert_string_equal (shards.shards[0].endpoint, "tcp://127.0.0.1:5001");
    assert_string_equal (shards.shards[1].name, "b");
    assert_string_equal (shards.shards[1].endpoint, "tcp://10.0.0.2:5001,tcp://10.0.0.3:5001");
    assert_string_equal (shards.shards[2].name, "c-2");
    assert_int_equal (cm_shards_find (&shards, "c-2"), 2);
    assert_int_equal (cm_shards_find (&shards, "d"), -1);
}

static void
test_bad_lists_say_what_is_wrong (void **state)
{
    (void) state;
    s_parse_bad ("a=tcp://x:1,,b=tcp://y:1", "empty item");
    s_parse_bad ("a=tcp://x:1,", "empty item");
    s_parse_bad ("a=", "no endpoint");
    s_parse_bad ("A=tcp://x:1", "name must be");
    s_parse_bad ("=tcp://x:1", "name must be");
    s_parse_bad ("a b=tcp://x:1", "name must be");
    s_parse_bad ("a=tcp://x:1,a=tcp://y:1", "name listed twice");
    s_parse_bad ("a=tcp://x:1,b=tcp://x:1", "endpoint listed twice");
    s_parse_bad ("tcp://x:1", "needs a name=endpoint");
    s_parse_bad ("a=b=tcp://x:1", "more than one '='");
    char name[CM_SHARD_NAME_MAX + 2];
    memset (name, 'n', sizeof name - 1);
    name[sizeof name - 1] = 0;
    char list[200];
    snprintf (list, sizeof list, "%s=tcp://x:1", name);
    s_parse_bad (list, "name must be");
    char many[1000] = "";
    for (int i = 0; i <= CM_SHARDS_MAX; i++) {
        char item[40];
        snprintf (item, sizeof item, "%ss%d=tcp://h:%d", i ? "," : "", i, 5000 + i);
        strcat (many, item);
    }
    s_parse_bad (many, "more than 16 shards");
    char long_endpoint[400] = "a=tcp://";
    memset (long_endpoint + 8, 'h', 300);
    long_endpoint[308] = 0;
    s_parse_bad (long_endpoint, "longer than 255");
}

//  Counts of ids "s-<i>" per shard among n.
static void
s_spread (const cm_shards_t *shards, int n, int counts[CM_SHARDS_MAX])
{
    memset (counts, 0, sizeof (int) * CM_SHARDS_MAX);
    for (int i = 0; i < n; i++) {
        char id[32];
        snprintf (id, sizeof id, "session-%d", i);
        counts[cm_shards_pick (shards, id)]++;
    }
}

static void
test_sessions_spread_over_three_shards (void **state)
{
    (void) state;
    cm_shards_t shards;
    s_parse_ok ("a=tcp://h:1,b=tcp://h:2,c=tcp://h:3", &shards);
    int counts[CM_SHARDS_MAX];
    s_spread (&shards, 300, counts);
    for (int i = 0; i < 3; i++)
        if (counts[i] < 300 * 25 / 100 || counts[i] > 300 * 40 / 100)
            fail_msg ("300 ids: shard %d has %d", i, counts[i]);
    s_spread (&shards, 3000, counts);
    for (int i = 0; i < 3; i++)
        if (counts[i] < 3000 * 30 / 100 || counts[i] > 3000 * 37 / 100)
            fail_msg ("3000 ids: shard %d has %d", i, counts[i]);
}

//  A fourth shard takes about 1/4 of the ids; every other id keeps its
//  shard, and a moved id's old shard is its second choice now.
static void
test_adding_a_shard_moves_only_its_share (void **state)
{
    (void) state;
    cm_shards_t three, four;
    s_parse_ok ("a=tcp://h:1,b=tcp://h:2,c=tcp://h:3", &three);
    s_parse_ok ("a=tcp://h:1,b=tcp://h:2,c=tcp://h:3,d=tcp://h:4", &four);
    int moved = 0, n = 3000;
    for (int i = 0; i < n; i++) {
        char id[32];
        snprintf (id, sizeof id, "session-%d", i);
        int before = cm_shards_pick (&three, id), order[CM_SHARDS_MAX];
        cm_shards_rank (&four, id, order);
        if (order[0] == before)
            continue;
        assert_int_equal (order[0], 3); //  only to the new shard
        assert_int_equal (order[1], before);
        moved++;
    }
    if (moved < n * 21 / 100 || moved > n * 29 / 100)
        fail_msg ("%d of %d ids moved to the fourth shard", moved, n);
}

static void
test_placement_follows_names_not_endpoints_or_order (void **state)
{
    (void) state;
    cm_shards_t one, other;
    s_parse_ok ("a=tcp://h:1,b=tcp://h:2,c=tcp://h:3", &one);
    s_parse_ok ("c=tcp://z:9,a=tcp://y:8,b=tcp://x:7", &other);
    for (int i = 0; i < 200; i++) {
        char id[32];
        snprintf (id, sizeof id, "s_%d", i);
        assert_string_equal (one.shards[cm_shards_pick (&one, id)].name,
                             other.shards[cm_shards_pick (&other, id)].name);
    }
    int order[CM_SHARDS_MAX];
    cm_shards_rank (&one, "x", order);
    assert_true (cm_shard_score (one.shards[order[0]].name, "x")
                 >= cm_shard_score (one.shards[order[1]].name, "x"));
    assert_true (cm_shard_score (one.shards[order[1]].name, "x")
                 >= cm_shard_score (one.shards[order[2]].name, "x"));
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_empty_list_is_one_shard_on_the_store_endpoint),
        cmocka_unit_test (test_names_endpoints_and_standbys),
        cmocka_unit_test (test_bad_lists_say_what_is_wrong),
        cmocka_unit_test (test_sessions_spread_over_three_shards),
        cmocka_unit_test (test_adding_a_shard_moves_only_its_share),
        cmocka_unit_test (test_placement_follows_names_not_endpoints_or_order),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
