/*  test_gw_shards_admin: the operators' views merged over shards
    (gw_shards_admin.h): audit pages in one order with a cursor that
    misses and repeats nothing, also past a shard whose page ended early;
    analytics added up with rates, top reasons and quantiles computed from
    the sums; totals and the chain's verify.                             */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "cm_codec.h"
#include "gw_shards_admin.h"

#include <stdio.h>
#include <string.h>

//  A shard's audit: entry keys as hex cursors, newest (greatest) first.
typedef struct {
    const char *keys[8];
    int count;
    const char *stop; //  the page ends early just after this key (scan cap)
} s_log_t;

//  The store's admin_audit page of log before cursor (NULL: from the
//  newest), at most limit entries, as st_h_admin.c gives it.
static cm_value_t *
s_page (const s_log_t *log, const char *cursor, int64_t limit)
{
    cm_value_t *page = cm_map_new (), *entries = cm_arr_new ();
    const char *next = NULL;
    int64_t n = 0;
    static char early[64];
    for (int i = 0; i < log->count; i++) {
        const char *key = log->keys[i];
        if (cursor && strcmp (key, cursor) >= 0)
            continue;
        if (log->stop && strcmp (key, log->stop) <= 0 && n > 0) {
            snprintf (early, sizeof early, "%s00", key);
            next = early;
            break;
        }
        cm_value_t *entry = cm_map_new ();
        cm_map_set_str (entry, "id", key);
        cm_map_set_str (entry, "cursor", key);
        cm_arr_push (entries, entry);
        if (++n == limit) {
            next = key;
            break;
        }
    }
    cm_map_set (page, "entries", entries);
    if (next)
        cm_map_set_str (page, "next_cursor", next);
    else
        cm_map_set_nil (page, "next_cursor");
    return page;
}

//  Pages through the merge of logs at limit; every key once, newest first.
static void
s_walk (const s_log_t *logs, int count, int64_t limit, int want)
{
    char cursor[64] = "", last[64] = "~";
    int seen = 0, pages = 0;
    do {
        cm_value_t *replies[4];
        for (int i = 0; i < count; i++)
            replies[i] = s_page (&logs[i], cursor[0] ? cursor : NULL, limit);
        cm_value_t *merged = gw_shards_admin_audit (replies, count, limit);
        assert_non_null (merged);
        const cm_value_t *entries = cm_map_get (merged, "entries");
        assert_true ((int64_t) cm_value_len (entries) <= limit);
        for (size_t j = 0; j < cm_value_len (entries); j++) {
            const char *id = cm_map_str (cm_arr_at (entries, j), "id");
            assert_null (cm_map_get (cm_arr_at (entries, j), "cursor"));
            if (strcmp (id, last) >= 0)
                fail_msg ("%s after %s", id, last);
            snprintf (last, sizeof last, "%s", id);
            seen++;
        }
        const char *next = cm_map_str (merged, "next_cursor");
        snprintf (cursor, sizeof cursor, "%s", next ? next : "");
        cm_value_destroy (&merged);
        for (int i = 0; i < count; i++)
            cm_value_destroy (&replies[i]);
    } while (cursor[0] && ++pages < 40);
    assert_int_equal (seen, want);
}

static void
test_audit_pages_over_shards (void **state)
{
    (void) state;
    const s_log_t logs[] = {
        {{"0a", "07", "05", "01"}, 4, NULL},
        {{"0b", "09", "08", "03", "02"}, 5, NULL},
        {{"06", "04"}, 2, NULL},
    };
    for (int64_t limit = 1; limit <= 12; limit++)
        s_walk (logs, 3, limit, 11);
    //  A shard whose page ends early (its scan cap) holds the merge back
    //  to where it stopped; nothing is missed.
    const s_log_t early[] = {
        {{"0a", "07", "05", "01"}, 4, "07"},
        {{"0b", "09", "08", "03", "02"}, 5, NULL},
    };
    for (int64_t limit = 1; limit <= 10; limit++)
        s_walk (early, 2, limit, 9);
}

static cm_value_t *
s_model (const char *model, int64_t answers, int64_t regenerations, const char *reason,
         int64_t reason_count, const char *bound, int64_t bucket)
{
    cm_value_t *row = cm_map_new ();
    cm_map_set_str (row, "model", model);
    cm_map_set_int (row, "answers", answers);
    cm_map_set_int (row, "regenerations", regenerations);
    cm_map_set_dbl (row, "regenerate_rate", 9.0); //  a shard's own: recomputed
    cm_map_set_int (row, "p50_generation_ms", 1); //  likewise
    cm_value_t *reasons = cm_arr_new (), *item = cm_map_new ();
    cm_map_set_str (item, "reason", reason);
    cm_map_set_int (item, "count", reason_count);
    cm_arr_push (reasons, item);
    cm_map_set (row, "top_down_reasons", reasons);
    cm_map_set (row, "top_up_reasons", cm_arr_new ());
    cm_map_set (row, "failures_by_cause", cm_arr_new ());
    cm_value_t *buckets = cm_map_new ();
    cm_map_set_int (buckets, bound, bucket);
    cm_map_set (row, "gen_ms_buckets", buckets);
    cm_map_set (row, "first_ms_buckets", cm_map_new ());
    return row;
}

static cm_value_t *
s_analytics (cm_value_t *model, const char *user, int64_t turns, const char *date)
{
    cm_value_t *reply = cm_map_new (), *models = cm_arr_new (), *users = cm_arr_new ();
    cm_arr_push (models, model);
    cm_value_t *row = cm_map_new ();
    cm_map_set_str (row, "user", user);
    cm_map_set_int (row, "turns", turns);
    cm_arr_push (users, row);
    cm_value_t *days = cm_arr_new (), *day = cm_map_new (), *day_models = cm_arr_new ();
    row = cm_map_new ();
    cm_map_set_str (row, "model", "m");
    cm_map_set_int (row, "turns", turns);
    cm_arr_push (day_models, row);
    cm_map_set_str (day, "date", date);
    cm_map_set (day, "models", day_models);
    cm_arr_push (days, day);
    cm_map_set_str (reply, "from", "2026-11-07");
    cm_map_set_str (reply, "to", "2026-12-06");
    cm_map_set (reply, "models", models);
    cm_map_set (reply, "users", users);
    cm_map_set (reply, "days", days);
    return reply;
}

static void
test_analytics_from_the_sums (void **state)
{
    (void) state;
    cm_value_t *replies[2] = {
        s_analytics (s_model ("m", 3, 1, "slow", 2, "100", 3), "ann", 2, "2026-12-06"),
        s_analytics (s_model ("m", 1, 1, "wrong", 3, "800", 1), "bob", 4, "2026-12-05"),
    };
    cm_value_t *merged = gw_shards_admin_analytics (replies, 2);
    assert_non_null (merged);
    const cm_value_t *models = cm_map_get (merged, "models");
    assert_int_equal (cm_value_len (models), 1);
    const cm_value_t *m = cm_arr_at (models, 0);
    assert_int_equal (cm_map_int (m, "answers", 0), 4);
    assert_int_equal (cm_map_int (m, "regenerations", 0), 2);
    assert_true (cm_map_dbl (m, "regenerate_rate", 0) == 0.5);
    //  Buckets 100: 3, 800: 1 -> p50 in 100, p95 in 800.
    assert_int_equal (cm_map_int (m, "p50_generation_ms", 0), 100);
    assert_int_equal (cm_map_int (m, "p95_generation_ms", 0), 800);
    assert_int_equal (cm_map_get (m, "p50_first_text_ms")->type, CM_T_NIL);
    assert_null (cm_map_get (m, "gen_ms_buckets"));
    const cm_value_t *reasons = cm_map_get (m, "top_down_reasons");
    assert_int_equal (cm_value_len (reasons), 2);
    assert_string_equal (cm_map_str (cm_arr_at (reasons, 0), "reason"), "wrong");
    assert_string_equal (cm_map_str (cm_arr_at (reasons, 1), "reason"), "slow");
    const cm_value_t *users = cm_map_get (merged, "users");
    assert_int_equal (cm_value_len (users), 2);
    assert_string_equal (cm_map_str (cm_arr_at (users, 0), "user"), "ann");
    const cm_value_t *days = cm_map_get (merged, "days");
    assert_int_equal (cm_value_len (days), 2);
    assert_string_equal (cm_map_str (cm_arr_at (days, 0), "date"), "2026-12-05");
    assert_string_equal (cm_map_str (merged, "from"), "2026-11-07");
    cm_value_destroy (&merged);
    for (int i = 0; i < 2; i++)
        cm_value_destroy (&replies[i]);
}

//  Seven reasons over two shards: the top five of the sums.
static void
test_top_reasons_cut_after_the_sum (void **state)
{
    (void) state;
    cm_value_t *replies[2];
    for (int s = 0; s < 2; s++) {
        cm_value_t *row = s_model ("m", 1, 0, "r0", 1, "100", 1);
        cm_value_t *reasons = cm_map_take (row, "top_down_reasons");
        for (int i = 1; i < 7; i++) {
            char text[8];
            snprintf (text, sizeof text, "r%d", i);
            cm_value_t *item = cm_map_new ();
            cm_map_set_str (item, "reason", text);
            cm_map_set_int (item, "count", s == 0 ? i : (i == 1 ? 10 : 0));
            cm_arr_push (reasons, item);
        }
        cm_map_set (row, "top_down_reasons", reasons);
        replies[s] = s_analytics (row, "ann", 1, "2026-12-06");
    }
    cm_value_t *merged = gw_shards_admin_analytics (replies, 2);
    const cm_value_t *top = cm_map_get (cm_arr_at (cm_map_get (merged, "models"), 0),
                                        "top_down_reasons");
    assert_int_equal (cm_value_len (top), GW_SHARDS_TOP_REASONS);
    assert_string_equal (cm_map_str (cm_arr_at (top, 0), "reason"), "r1");
    assert_int_equal (cm_map_int (cm_arr_at (top, 0), "count", 0), 11);
    assert_string_equal (cm_map_str (cm_arr_at (top, 4), "reason"), "r3");
    cm_value_destroy (&merged);
    for (int i = 0; i < 2; i++)
        cm_value_destroy (&replies[i]);
}

static cm_value_t *
s_totals (const char *model, const char *counter, int64_t count)
{
    cm_value_t *reply = cm_map_new (), *list = cm_arr_new (), *item = cm_map_new ();
    cm_map_set_str (item, "model", model);
    cm_map_set_str (item, "counter", counter);
    cm_map_set_int (item, "count", count);
    cm_arr_push (list, item);
    cm_map_set (reply, "totals", list);
    return reply;
}

static void
test_totals_and_verify (void **state)
{
    (void) state;
    cm_value_t *totals[3] = {s_totals ("m", "turns", 2), s_totals ("m", "turns", 5),
                             s_totals ("m", "answers", 1)};
    cm_value_t *sum = gw_shards_admin_totals (totals, 3);
    const cm_value_t *list = cm_map_get (sum, "totals");
    assert_int_equal (cm_value_len (list), 2);
    for (size_t i = 0; i < 2; i++) {
        const cm_value_t *item = cm_arr_at (list, i);
        bool turns = strcmp (cm_map_str (item, "counter"), "turns") == 0;
        assert_int_equal (cm_map_int (item, "count", 0), turns ? 7 : 1);
    }
    cm_value_destroy (&sum);
    for (int i = 0; i < 3; i++)
        cm_value_destroy (&totals[i]);

    cm_value_t *verify[2];
    for (int i = 0; i < 2; i++) {
        verify[i] = cm_map_new ();
        cm_map_set_bool (verify[i], "sound", i == 0);
        cm_map_set_int (verify[i], "entries", 10 + i);
        cm_map_set_int (verify[i], "unchained", i);
        if (i == 0)
            cm_map_set_nil (verify[i], "broken");
        else {
            cm_value_t *broken = cm_map_new ();
            cm_map_set_str (broken, "id", "x");
            cm_map_set (verify[i], "broken", broken);
        }
    }
    cm_value_t *merged = gw_shards_admin_verify (verify, 2);
    assert_false (cm_map_bool (merged, "sound", true));
    assert_int_equal (cm_map_int (merged, "entries", 0), 21);
    assert_int_equal (cm_map_int (merged, "unchained", 0), 1);
    assert_string_equal (cm_map_str (cm_map_get (merged, "broken"), "id"), "x");
    cm_value_destroy (&merged);
    for (int i = 0; i < 2; i++)
        cm_value_destroy (&verify[i]);
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_audit_pages_over_shards),
        cmocka_unit_test (test_analytics_from_the_sums),
        cmocka_unit_test (test_top_reasons_cut_after_the_sum),
        cmocka_unit_test (test_totals_and_verify),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
