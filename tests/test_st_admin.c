/*  test_st_admin: the operators' handlers (st_h_admin.h): the audit query
    over every user with its filters, time range and cursor paging.     */
#include "test_st_util.h"

#include "st_h_admin.h"

#define ST_DAY 86400000LL

static int
s_setup (void **state)
{
    *state = st_fixture_new (64u << 20, 3);
    return 0;
}

static int
s_vote (st_fixture_t *f, const char *user, const char *message, const char *type)
{
    cm_envelope_t *vote = st_req (CM_MSG_FEEDBACK_PUT, user);
    cm_map_set_str (vote->payload, "message_id", message);
    cm_map_set_str (vote->payload, "feedback_type", type);
    return st_write (f, vote, NULL);
}

//  One admin_audit page; its entries (new, caller owns) and next cursor.
static int
s_page (st_fixture_t *f, const char *fields, const char *cursor, int limit, cm_value_t **entries,
        char *next)
{
    cm_envelope_t *query = st_req (CM_MSG_ADMIN_AUDIT, "root");
    //  fields: "name=value" pairs separated by ';' (from/to are integers).
    char copy[256];
    snprintf (copy, sizeof copy, "%s", fields ? fields : "");
    for (char *save = NULL, *pair = strtok_r (copy, ";", &save); pair;
         pair = strtok_r (NULL, ";", &save)) {
        char *eq = strchr (pair, '=');
        *eq = 0;
        if (strcmp (pair, "from") == 0 || strcmp (pair, "to") == 0)
            cm_map_set_int (query->payload, pair, strtoll (eq + 1, NULL, 10));
        else
            cm_map_set_str (query->payload, pair, eq + 1);
    }
    if (cursor)
        cm_map_set_str (query->payload, "cursor", cursor);
    if (limit)
        cm_map_set_int (query->payload, "limit", limit);
    cm_envelope_t *reply = NULL;
    int rc = st_read (f, query, &reply);
    if (rc == 0) {
        *entries = cm_value_dup (cm_map_get (reply->payload, "entries"));
        const char *n = cm_map_str (reply->payload, "next_cursor");
        strcpy (next, n ? n : "");
    }
    else
        rc = (int) cm_map_int (reply->payload, "code", 1);
    cm_envelope_destroy (&reply);
    return rc;
}

//  Three users act at three times; the operator sees all, filtered.
static void
test_audit_filters_and_paging (void **state)
{
    st_fixture_t *f = *state;
    char um[400], am[400], bm[400];
    int64_t t0 = f->now;
    assert_int_equal (st_start (f, "alice", "sa", "hello", um, am, NULL), 0);
    f->now += 1000;
    assert_int_equal (st_start (f, "bob", "sb", "hi", um, bm, NULL), 0);
    f->now += 1000;
    assert_int_equal (s_vote (f, "alice", am, "upvote"), 0);
    assert_int_equal (s_vote (f, "bob", bm, "downvote"), 0);
    f->now += 1000;
    assert_int_equal (st_start (f, "carol", "sc", "hey", um, NULL, NULL), 0);
    cm_value_t *entries = NULL;
    char next[600];
    assert_int_equal (s_page (f, NULL, NULL, 0, &entries, next), 0);
    assert_int_equal (cm_value_len (entries), 5);
    assert_string_equal (next, "");
    //  Newest first.
    assert_string_equal (cm_map_str_or (cm_arr_at (entries, 0), "user_id", ""), "carol");
    assert_string_equal (cm_map_str_or (cm_arr_at (entries, 4), "user_id", ""), "alice");
    cm_value_destroy (&entries);
    assert_int_equal (s_page (f, "user_id=bob", NULL, 0, &entries, next), 0);
    assert_int_equal (cm_value_len (entries), 2);
    cm_value_destroy (&entries);
    assert_int_equal (s_page (f, "action_type=feedback", NULL, 0, &entries, next), 0);
    assert_int_equal (cm_value_len (entries), 2);
    assert_string_equal (cm_map_str_or (cm_arr_at (entries, 0), "user_id", ""), "bob");
    cm_value_destroy (&entries);
    assert_int_equal (s_page (f, "session_id=sa;action_type=feedback", NULL, 0, &entries, next), 0);
    assert_int_equal (cm_value_len (entries), 1);
    cm_value_destroy (&entries);
    char range[100];
    snprintf (range, sizeof range, "from=%lld;to=%lld", (long long) t0 + 1000,
              (long long) t0 + 2000);
    assert_int_equal (s_page (f, range, NULL, 0, &entries, next), 0);
    assert_int_equal (cm_value_len (entries), 3); //  bob's start, both votes
    assert_string_equal (cm_map_str_or (cm_arr_at (entries, 2), "action_type", ""), "session_start");
    cm_value_destroy (&entries);
    //  Pages of two: every entry once, in order, the last page says so.
    const char *ids[5];
    cm_value_t *all = NULL;
    assert_int_equal (s_page (f, NULL, NULL, 0, &all, next), 0);
    for (int i = 0; i < 5; i++)
        ids[i] = cm_map_str_or (cm_arr_at (all, (size_t) i), "id", "");
    char cursor[600] = "";
    int seen = 0, pages = 0;
    do {
        assert_int_equal (s_page (f, NULL, cursor[0] ? cursor : NULL, 2, &entries, next), 0);
        //  A write between pages does not shift them.
        if (pages == 0) {
            f->now += 1000;
            assert_int_equal (s_vote (f, "alice", am, "downvote"), 0);
        }
        for (size_t i = 0; i < cm_value_len (entries); i++, seen++)
            assert_string_equal (cm_map_str_or (cm_arr_at (entries, i), "id", ""), ids[seen]);
        cm_value_destroy (&entries);
        strcpy (cursor, next);
        pages++;
    } while (cursor[0]);
    assert_int_equal (seen, 5);
    assert_int_equal (pages, 3);
    cm_value_destroy (&all);
}

//  A filter that matches nothing in a long log: the page stops after
//  ST_ADMIN_SCAN_MAX entries with a cursor, and the next page goes on
//  from the first entry not yet looked at (the oldest, here).
static void
test_audit_scan_budget (void **state)
{
    st_fixture_t *f = *state;
    char am[400];
    assert_int_equal (st_start (f, "alice", "sa", "hello", NULL, am, NULL), 0);
    const size_t votes = ST_ADMIN_SCAN_MAX + 5, batch = 1000;
    cm_envelope_t *requests[1000], *replies[1000];
    for (size_t done = 0; done < votes; done += batch) {
        size_t n = votes - done < batch ? votes - done : batch;
        for (size_t i = 0; i < n; i++) {
            requests[i] = st_req (CM_MSG_FEEDBACK_PUT, "alice");
            cm_map_set_str (requests[i]->payload, "message_id", am);
            cm_map_set_str (requests[i]->payload, "feedback_type", "upvote");
        }
        cm_value_t *events = NULL;
        assert_int_equal (st_ops_write_batch (f->ops, requests, n, f->now, replies, &events), 0);
        cm_value_destroy (&events);
        for (size_t i = 0; i < n; i++) {
            assert_int_equal (replies[i]->type, CM_MSG_OK);
            cm_envelope_destroy (&replies[i]);
            cm_envelope_destroy (&requests[i]);
        }
    }
    cm_value_t *entries = NULL;
    char next[600], cursor[600];
    assert_int_equal (s_page (f, "action_type=session_start", NULL, 0, &entries, next), 0);
    assert_int_equal (cm_value_len (entries), 0);
    assert_true (next[0]);
    cm_value_destroy (&entries);
    strcpy (cursor, next);
    assert_int_equal (s_page (f, "action_type=session_start", cursor, 0, &entries, next), 0);
    assert_int_equal (cm_value_len (entries), 1);
    assert_string_equal (next, "");
    cm_value_destroy (&entries);
    //  Unfiltered pages are full long before the budget.
    assert_int_equal (s_page (f, NULL, NULL, 1000, &entries, next), 0);
    assert_int_equal (cm_value_len (entries), 1000);
    cm_value_destroy (&entries);
}

static void
test_audit_bad_requests (void **state)
{
    st_fixture_t *f = *state;
    cm_value_t *entries = NULL;
    char next[600];
    assert_int_equal (s_page (f, NULL, "zz", 0, &entries, next), CM_EINVAL);
    assert_int_equal (s_page (f, NULL, "abc", 0, &entries, next), CM_EINVAL);
    assert_int_equal (s_page (f, NULL, NULL, 1001, &entries, next), CM_EINVAL);
    assert_int_equal (s_page (f, "from=5;to=4", NULL, 0, &entries, next), CM_EINVAL);
    assert_int_equal (s_page (f, NULL, NULL, 1000, &entries, next), 0);
    assert_int_equal (cm_value_len (entries), 0);
    assert_string_equal (next, "");
    cm_value_destroy (&entries);
}

//  Claims the one pending task as worker "w" and completes it with model
//  (NULL: the worker names none) or fails it for good with error.
static void
s_work_after (st_fixture_t *f, const char *model, const char *error, int64_t text_ms)
{
    char task[400];
    assert_int_equal (st_claim (f, "w", task), 1);
    //  A checkpoint with text after text_ms (< 0: none), then the end.
    if (text_ms >= 0) {
        f->now += text_ms;
        cm_envelope_t *progress = st_req (CM_MSG_TASK_PROGRESS, NULL);
        cm_map_set_str (progress->payload, "worker", "w");
        cm_map_set_str (progress->payload, "task_id", task);
        cm_map_set_int (progress->payload, "fence", f->fence);
        cm_map_set_int (progress->payload, "progress", 10);
        cm_map_set_str (progress->payload, "partial", "an");
        assert_int_equal (st_write (f, progress, NULL), 0);
    }
    cm_envelope_t *done = st_req (error ? CM_MSG_TASK_FAIL : CM_MSG_TASK_COMPLETE, NULL);
    cm_map_set_str (done->payload, "worker", "w");
    cm_map_set_str (done->payload, "task_id", task);
    cm_map_set_int (done->payload, "fence", f->fence);
    if (error)
        cm_map_set_str (done->payload, "error", error);
    else
        cm_map_set_str (done->payload, "content", "an answer");
    if (model)
        cm_map_set_str (done->payload, "model", model);
    assert_int_equal (st_write (f, done, NULL), 0);
}

static void
s_work (st_fixture_t *f, const char *model, const char *error)
{
    s_work_after (f, model, error, -1);
}

static int
s_regen (st_fixture_t *f, const char *user, const char *message, char *task)
{
    cm_envelope_t *request = st_req (CM_MSG_REGEN_CREATE, user);
    cm_map_set_str (request->payload, "message_id", message);
    cm_envelope_t *reply = NULL;
    int rc = st_write (f, request, &reply);
    if (rc == 0 && task)
        strcpy (task, cm_map_str_or (cm_map_get (reply->payload, "data"), "task_id", ""));
    cm_envelope_destroy (&reply);
    return rc;
}

static cm_value_t *
s_analytics (st_fixture_t *f, int64_t from, int64_t to, int *code)
{
    cm_envelope_t *query = st_req (CM_MSG_ADMIN_ANALYTICS, "root");
    if (from >= 0)
        cm_map_set_int (query->payload, "from", from);
    if (to >= 0)
        cm_map_set_int (query->payload, "to", to);
    cm_envelope_t *reply = NULL;
    *code = st_read (f, query, &reply);
    cm_value_t *out = *code ? NULL : cm_value_dup (reply->payload);
    if (*code)
        *code = (int) cm_map_int (reply->payload, "code", 1);
    cm_envelope_destroy (&reply);
    return out;
}

//  The row of rows whose label field is name.
static const cm_value_t *
s_row (const cm_value_t *rows, const char *label, const char *name)
{
    for (size_t i = 0; i < cm_value_len (rows); i++)
        if (strcmp (cm_map_str_or (cm_arr_at (rows, i), label, ""), name) == 0)
            return cm_arr_at (rows, i);
    fail_msg ("no %s %s", label, name);
    return NULL;
}

//  Actions on two days give exactly these counters.
static void
test_analytics_counts (void **state)
{
    st_fixture_t *f = *state;
    char um[400], am[400], bm[400], task[400];
    int64_t day1 = f->now;
    //  alice: a turn answered by m1, regenerated (answered by m1 again),
    //  voted down with a reason, then a second vote up replaces it.
    assert_int_equal (st_start (f, "alice", "sa", "q1", um, am, NULL), 0);
    f->now += 1300; //  claimed at 1300 ms, first text and end at 1500: the 1600 ms buckets
    s_work_after (f, "m1", NULL, 200);
    assert_int_equal (s_regen (f, "alice", am, task), 0);
    f->now += 300; //  in the 400 ms one
    s_work (f, "m1", NULL);
    cm_envelope_t *vote = st_req (CM_MSG_FEEDBACK_PUT, "alice");
    cm_map_set_str (vote->payload, "message_id", am);
    cm_map_set_str (vote->payload, "feedback_type", "downvote");
    cm_map_set_str (vote->payload, "reason", "wrong");
    assert_int_equal (st_write (f, vote, NULL), 0);
    vote = st_req (CM_MSG_FEEDBACK_PUT, "alice");
    cm_map_set_str (vote->payload, "message_id", am);
    cm_map_set_str (vote->payload, "feedback_type", "upvote");
    assert_int_equal (st_write (f, vote, NULL), 0);
    cm_envelope_t *withdraw = st_req (CM_MSG_FEEDBACK_DELETE, "alice");
    cm_map_set_str (withdraw->payload, "message_id", am);
    assert_int_equal (st_write (f, withdraw, NULL), 0);
    //  bob: a turn whose generation fails, a regeneration he cancels.
    assert_int_equal (st_start (f, "bob", "sb", "q2", um, bm, NULL), 0);
    s_work (f, NULL, "model overloaded");
    assert_int_equal (s_regen (f, "bob", bm, task), 0);
    cm_envelope_t *cancel = st_req (CM_MSG_TASK_CANCEL, "bob");
    cm_map_set_str (cancel->payload, "task_id", task);
    assert_int_equal (st_write (f, cancel, NULL), 0);
    //  Next day: alice asks again (answered by m2) and deletes that turn.
    f->now += ST_DAY;
    assert_int_equal (st_start (f, "alice", "sa", "q3", um, NULL, NULL), 0);
    s_work (f, "m2", NULL);
    cm_envelope_t *del = st_req (CM_MSG_MESSAGE_DELETE, "alice");
    cm_map_set_str (del->payload, "message_id", um);
    assert_int_equal (st_write (f, del, NULL), 0);

    int code;
    cm_value_t *a = s_analytics (f, day1, f->now, &code);
    assert_int_equal (code, 0);
    const cm_value_t *models = cm_map_get (a, "models");
    const cm_value_t *m1 = s_row (models, "model", "m1");
    assert_int_equal (cm_map_int (m1, "answers", -1), 2);
    assert_int_equal (cm_map_int (m1, "regenerations", -1), 1);
    assert_int_equal (cm_map_int (m1, "upvotes", -1), 1);
    assert_int_equal (cm_map_int (m1, "downvotes", -1), 1);
    assert_int_equal (cm_map_int (m1, "withdrawals", -1), 1);
    assert_true (cm_map_dbl (m1, "regenerate_rate", 0) == 0.5);
    assert_int_equal (cm_map_int (m1, "p50_generation_ms", -1), 400);
    assert_int_equal (cm_map_int (m1, "p95_generation_ms", -1), 1600);
    //  Only the first answer had a checkpoint with text.
    assert_int_equal (cm_map_int (m1, "p50_first_text_ms", -1), 1600);
    assert_int_equal (cm_map_int (m1, "p95_first_text_ms", -1), 1600);
    const cm_value_t *reasons = cm_map_get (m1, "top_down_reasons");
    assert_int_equal (cm_value_len (reasons), 1);
    assert_string_equal (cm_map_str_or (cm_arr_at (reasons, 0), "reason", ""), "wrong");
    assert_int_equal (cm_map_int (cm_arr_at (reasons, 0), "count", 0), 1);
    //  Turns and bob's actions name no model: "default".
    const cm_value_t *dflt = s_row (models, "model", "default");
    assert_int_equal (cm_map_int (dflt, "turns", -1), 3);
    assert_int_equal (cm_map_int (dflt, "failures", -1), 1);
    assert_int_equal (cm_map_int (dflt, "cancels", -1), 1);
    assert_int_equal (cm_map_int (dflt, "regenerations", -1), 1);
    assert_int_equal (cm_map_int (dflt, "deletes", -1), 1);
    assert_int_equal (cm_map_get (dflt, "regenerate_rate")->type, CM_T_NIL);
    assert_int_equal (cm_map_get (dflt, "p50_generation_ms")->type, CM_T_NIL);
    assert_int_equal (cm_map_get (dflt, "p95_first_text_ms")->type, CM_T_NIL);
    const cm_value_t *causes = cm_map_get (dflt, "failures_by_cause");
    assert_int_equal (cm_value_len (causes), 1);
    assert_string_equal (cm_map_str_or (cm_arr_at (causes, 0), "cause", ""), "model overloaded");
    assert_int_equal (cm_map_int (s_row (models, "model", "m2"), "answers", -1), 1);
    assert_int_equal (cm_map_int (s_row (models, "model", "m2"), "p95_generation_ms", -1), 100);
    //  Per user.
    const cm_value_t *users = cm_map_get (a, "users");
    const cm_value_t *alice = s_row (users, "user", "alice");
    assert_int_equal (cm_map_int (alice, "turns", -1), 2);
    assert_int_equal (cm_map_int (alice, "answers", -1), 3);
    assert_int_equal (cm_map_int (alice, "deletes", -1), 1);
    assert_int_equal (cm_map_int (alice, "upvotes", -1), 1);
    const cm_value_t *bob = s_row (users, "user", "bob");
    assert_int_equal (cm_map_int (bob, "turns", -1), 1);
    assert_int_equal (cm_map_int (bob, "failures", -1), 1);
    assert_int_equal (cm_map_int (bob, "cancels", -1), 1);
    //  Per day.
    const cm_value_t *days = cm_map_get (a, "days");
    assert_int_equal (cm_value_len (days), 2);
    const cm_value_t *second = cm_map_get (cm_arr_at (days, 1), "models");
    assert_int_equal (cm_map_int (s_row (second, "model", "default"), "turns", -1), 1);
    assert_int_equal (cm_map_int (s_row (second, "model", "m2"), "answers", -1), 1);
    cm_value_destroy (&a);
    //  The first day alone.
    a = s_analytics (f, day1, day1, &code);
    assert_int_equal (cm_map_int (s_row (cm_map_get (a, "models"), "model", "default"), "turns", -1),
                      2);
    assert_int_equal (cm_value_len (cm_map_get (a, "days")), 1);
    cm_value_destroy (&a);
    //  Ranges refused.
    assert_null (s_analytics (f, day1, day1 - 1, &code));
    assert_int_equal (code, CM_EINVAL);
    assert_null (s_analytics (f, day1, day1 + 366 * ST_DAY, &code));
    assert_int_equal (code, CM_EINVAL);
    a = s_analytics (f, day1, day1 + 365 * ST_DAY, &code);
    assert_int_equal (code, 0);
    cm_value_destroy (&a);
    //  `from` in the future with `to` left out: that one day, nothing counted.
    a = s_analytics (f, f->now + 1000 * ST_DAY, -1, &code);
    assert_int_equal (code, 0);
    assert_string_equal (cm_map_str_or (a, "from", ""), cm_map_str_or (a, "to", "-"));
    assert_int_equal (cm_value_len (cm_map_get (a, "days")), 0);
    cm_value_destroy (&a);
    //  The all-time totals of /metrics: plain counters only.
    cm_envelope_t *reply = NULL;
    assert_int_equal (st_read (f, st_req (CM_MSG_ANALYTICS_TOTALS, NULL), &reply), 0);
    const cm_value_t *totals = cm_map_get (reply->payload, "totals");
    int64_t m1_answers = -1, failures = -1;
    for (size_t i = 0; i < cm_value_len (totals); i++) {
        const cm_value_t *t = cm_arr_at (totals, i);
        const char *model = cm_map_str_or (t, "model", ""), *counter = cm_map_str_or (t, "counter", "");
        assert_null (strchr (counter, ':'));
        if (strcmp (model, "m1") == 0 && strcmp (counter, "answers") == 0)
            m1_answers = cm_map_int (t, "count", 0);
        if (strcmp (model, "default") == 0 && strcmp (counter, "failures") == 0)
            failures = cm_map_int (t, "count", 0);
    }
    assert_int_equal (m1_answers, 2);
    assert_int_equal (failures, 1);
    cm_envelope_destroy (&reply);
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown (test_audit_filters_and_paging, s_setup, st_fixture_teardown),
        cmocka_unit_test_setup_teardown (test_audit_bad_requests, s_setup, st_fixture_teardown),
        cmocka_unit_test_setup_teardown (test_audit_scan_budget, s_setup, st_fixture_teardown),
        cmocka_unit_test_setup_teardown (test_analytics_counts, s_setup, st_fixture_teardown),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
