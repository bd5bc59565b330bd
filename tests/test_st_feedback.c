/*  test_st_feedback.c: withdrawing a vote (feedback_delete) over a temp
    LMDB, no sockets: the record and its count go, one audit entry and one
    feedback_withdrawn event; without a vote nothing changes; only the
    shown version's vote goes; it survives a reopen of the store.         */
#include "test_st_util.h"

#define ID 400

static int
s_setup (void **state)
{
    *state = st_fixture_new (1 << 20, 2);
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

//  feedback_delete by user on message with rate_limit (0: none); *reply
//  (may be NULL) gets the answer.
static int
s_withdraw (st_fixture_t *f, const char *user, const char *message, int64_t rate_limit,
            cm_envelope_t **reply)
{
    cm_envelope_t *request = st_req (CM_MSG_FEEDBACK_DELETE, user);
    cm_map_set_str (request->payload, "message_id", message);
    if (rate_limit)
        cm_map_set_int (request->payload, "rate_limit", rate_limit);
    return st_write (f, request, reply);
}

//  The message's feedback_get: upvotes, downvotes and how many recent votes.
static void
s_counts (st_fixture_t *f, const char *message, int64_t *ups, int64_t *downs, size_t *recent)
{
    cm_envelope_t *get = st_req (CM_MSG_FEEDBACK_GET, "alice");
    cm_map_set_str (get->payload, "message_id", message);
    cm_envelope_t *reply = NULL;
    assert_int_equal (st_read (f, get, &reply), 0);
    const cm_value_t *summary = cm_map_get (reply->payload, "feedback_summary");
    *ups = cm_map_int (summary, "upvotes", -1);
    *downs = cm_map_int (summary, "downvotes", -1);
    *recent = cm_value_len (cm_map_get (reply->payload, "recent_feedback"));
    cm_envelope_destroy (&reply);
}

//  The session's audit entries (newest first); the caller destroys *reply.
static const cm_value_t *
s_audit (st_fixture_t *f, cm_envelope_t **reply)
{
    cm_envelope_t *query = st_req (CM_MSG_AUDIT_QUERY, "alice");
    cm_map_set_str (query->payload, "session_id", "s1");
    cm_map_set_int (query->payload, "limit", 1000);
    assert_int_equal (st_read (f, query, reply), 0);
    return cm_map_get ((*reply)->payload, "entries");
}

static int64_t
s_feedback_count (st_fixture_t *f)
{
    cm_envelope_t *get = st_req (CM_MSG_ANALYTICS_GET, "alice");
    cm_map_set_str (get->payload, "session_id", "s1");
    cm_envelope_t *reply = NULL;
    assert_int_equal (st_read (f, get, &reply), 0);
    int64_t n = cm_map_int (cm_map_get (reply->payload, "analytics"), "feedback_count", -1);
    cm_envelope_destroy (&reply);
    return n;
}

static void
test_withdraw_a_vote (void **state)
{
    st_fixture_t *f = *state;
    char asst[ID];
    assert_int_equal (st_start (f, "alice", "s1", "q", NULL, asst, NULL), 0);
    assert_int_equal (s_vote (f, "alice", asst, "upvote"), 0);
    assert_int_equal (s_feedback_count (f), 1);
    f->now += 5;

    cm_envelope_t *reply = NULL;
    assert_int_equal (s_withdraw (f, "alice", asst, 0, &reply), 0);
    assert_true (cm_map_bool (reply->payload, "withdrawn", false));
    assert_string_equal (cm_map_str_or (reply->payload, "feedback_type", ""), "upvote");
    assert_string_equal (cm_map_str_or (reply->payload, "message_id", ""), asst);
    assert_string_equal (cm_map_str_or (reply->payload, "session_id", ""), "s1");
    const cm_value_t *summary = cm_map_get (reply->payload, "feedback_summary");
    assert_int_equal (cm_map_int (summary, "upvotes", -1), 0);
    assert_int_equal (cm_map_int (summary, "total", -1), 0);
    cm_envelope_destroy (&reply);
    //  One event, with the type withdrawn and the counts now.
    assert_int_equal (cm_value_len (f->events), 1);
    const cm_value_t *data = st_event_data (f, "feedback_withdrawn");
    assert_non_null (data);
    assert_string_equal (cm_map_str_or (data, "messageId", ""), asst);
    assert_string_equal (cm_map_str_or (data, "feedbackType", ""), "upvote");
    assert_int_equal (cm_map_int (data, "upvotes", -1), 0);
    assert_int_equal (cm_map_int (data, "downvotes", -1), 0);

    int64_t ups, downs;
    size_t recent;
    s_counts (f, asst, &ups, &downs, &recent);
    assert_int_equal (ups, 0);
    assert_int_equal (downs, 0);
    assert_int_equal (recent, 0);
    assert_int_equal (s_feedback_count (f), 0);
    const cm_value_t *entries = s_audit (f, &reply);
    size_t audits = cm_value_len (entries);
    const cm_value_t *newest = cm_arr_at (entries, 0);
    assert_string_equal (cm_map_str_or (newest, "action_type", ""), "feedback_withdrawn");
    assert_string_equal (cm_map_str_or (newest, "message_id", ""), asst);
    assert_string_equal (cm_map_str_or (newest, "user_id", ""), "alice");
    assert_string_equal (cm_map_str_or (cm_map_get (newest, "details"), "feedback_type", ""),
                         "upvote");
    cm_envelope_destroy (&reply);

    //  Nothing left to withdraw: withdrawn false, no event, no audit entry.
    assert_int_equal (s_withdraw (f, "alice", asst, 0, &reply), 0);
    assert_false (cm_map_bool (reply->payload, "withdrawn", true));
    assert_int_equal (cm_map_get (reply->payload, "feedback_type")->type, CM_T_NIL);
    assert_int_equal (cm_map_int (cm_map_get (reply->payload, "feedback_summary"), "total", -1), 0);
    cm_envelope_destroy (&reply);
    assert_int_equal (cm_value_len (f->events), 0);
    entries = s_audit (f, &reply);
    assert_int_equal (cm_value_len (entries), audits);
    cm_envelope_destroy (&reply);

    //  A new vote after the withdrawal is a first vote, not a replacement,
    //  and a downvote is withdrawn from the downvotes.
    assert_int_equal (s_vote (f, "alice", asst, "downvote"), 0);
    entries = s_audit (f, &reply);
    assert_false (cm_map_bool (cm_map_get (cm_arr_at (entries, 0), "details"), "replaced", true));
    cm_envelope_destroy (&reply);
    assert_int_equal (s_withdraw (f, "alice", asst, 0, &reply), 0);
    assert_string_equal (cm_map_str_or (reply->payload, "feedback_type", ""), "downvote");
    cm_envelope_destroy (&reply);
    s_counts (f, asst, &ups, &downs, &recent);
    assert_int_equal (downs, 0);
    assert_int_equal (recent, 0);
}

//  Another user's message, an unknown one and an exhausted rate limit are
//  refused and change nothing.
static void
test_withdraw_refused (void **state)
{
    st_fixture_t *f = *state;
    char asst[ID];
    assert_int_equal (st_start (f, "alice", "s1", "q", NULL, asst, NULL), 0);
    assert_int_equal (s_vote (f, "alice", asst, "upvote"), 0);
    assert_int_equal (s_withdraw (f, "bob", asst, 0, NULL), CM_ENOTFOUND);
    assert_int_equal (s_withdraw (f, "alice", "msg_nope_s1_assistant", 0, NULL), CM_ENOTFOUND);
    //  Withdrawing is an action: it spends the per-minute budget.
    f->now += 60000;
    assert_int_equal (s_vote (f, "alice", asst, "upvote"), 0);
    cm_envelope_t *request = st_req (CM_MSG_FEEDBACK_PUT, "alice");
    cm_map_set_str (request->payload, "message_id", asst);
    cm_map_set_str (request->payload, "feedback_type", "upvote");
    cm_map_set_int (request->payload, "rate_limit", 1);
    assert_int_equal (st_write (f, request, NULL), 0);
    assert_int_equal (s_withdraw (f, "alice", asst, 1, NULL), CM_ERATELIMIT);
    assert_int_equal (cm_value_len (f->events), 0);
    int64_t ups, downs;
    size_t recent;
    s_counts (f, asst, &ups, &downs, &recent);
    assert_int_equal (ups, 1);
    assert_int_equal (recent, 1);
}

//  The vote of the shown version goes; another version's stays with it.
static void
test_withdraw_the_shown_version (void **state)
{
    st_fixture_t *f = *state;
    char asst[ID], task[ID];
    assert_int_equal (st_start (f, "alice", "s1", "q", NULL, asst, task), 0);
    st_answer (f, task, "one");
    assert_int_equal (s_vote (f, "alice", asst, "upvote"), 0);
    cm_envelope_t *regen = st_req (CM_MSG_REGEN_CREATE, "alice");
    cm_map_set_str (regen->payload, "message_id", asst);
    cm_envelope_t *reply = NULL;
    assert_int_equal (st_write (f, regen, &reply), 0);
    strcpy (task, cm_map_str_or (cm_map_get (reply->payload, "data"), "task_id", ""));
    cm_envelope_destroy (&reply);
    st_answer (f, task, "two"); //  version 2, now shown, has no vote

    assert_int_equal (s_withdraw (f, "alice", asst, 0, &reply), 0);
    assert_false (cm_map_bool (reply->payload, "withdrawn", true));
    assert_int_equal (cm_map_int (reply->payload, "version_index", -1), 2);
    cm_envelope_destroy (&reply);
    assert_int_equal (s_vote (f, "alice", asst, "downvote"), 0);
    assert_int_equal (s_withdraw (f, "alice", asst, 0, &reply), 0);
    assert_string_equal (cm_map_str_or (reply->payload, "feedback_type", ""), "downvote");
    assert_int_equal (cm_map_int (reply->payload, "version_index", -1), 2);
    assert_true (strncmp (cm_map_str_or (reply->payload, "version_id", ""), "ver_", 4) == 0);
    cm_envelope_destroy (&reply);
    assert_int_equal (cm_map_int (st_event_data (f, "feedback_withdrawn"), "versionIndex", -1), 2);

    //  Version 1 keeps its upvote.
    cm_envelope_t *get = st_req (CM_MSG_FEEDBACK_GET, "alice");
    cm_map_set_str (get->payload, "message_id", asst);
    assert_int_equal (st_read (f, get, &reply), 0);
    const cm_value_t *versions = cm_map_get (reply->payload, "versions");
    assert_int_equal (cm_value_len (versions), 2);
    assert_int_equal (cm_map_int (cm_arr_at (versions, 0), "upvotes", -1), 1);
    assert_int_equal (cm_map_int (cm_arr_at (versions, 1), "upvotes", -1), 0);
    assert_int_equal (cm_map_int (cm_arr_at (versions, 1), "downvotes", -1), 0);
    assert_int_equal (cm_value_len (cm_map_get (reply->payload, "recent_feedback")), 1);
    cm_envelope_destroy (&reply);
}

//  A withdrawal is committed: a reopened store still has no vote.
static void
test_withdraw_is_durable (void **state)
{
    st_fixture_t *f = *state;
    char asst[ID];
    assert_int_equal (st_start (f, "alice", "s1", "q", NULL, asst, NULL), 0);
    assert_int_equal (s_vote (f, "alice", asst, "downvote"), 0);
    assert_int_equal (s_withdraw (f, "alice", asst, 0, NULL), 0);
    st_ops_destroy (&f->ops);
    st_db_destroy (&f->db);
    assert_int_equal (st_db_open (f->dir, 1 << 20, false, &f->db), 0);
    st_ops_config_t config = {.lease_ms = 10000,
                              .max_attempts = 2,
                              .retention_ms = 7LL * 86400 * 1000,
                              .worker_live_ms = 30000};
    f->ops = st_ops_new (f->db, &config);
    int64_t ups, downs;
    size_t recent;
    s_counts (f, asst, &ups, &downs, &recent);
    assert_int_equal (ups + downs, 0);
    assert_int_equal (recent, 0);
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown (test_withdraw_a_vote, s_setup, st_fixture_teardown),
        cmocka_unit_test_setup_teardown (test_withdraw_refused, s_setup, st_fixture_teardown),
        cmocka_unit_test_setup_teardown (test_withdraw_the_shown_version, s_setup, st_fixture_teardown),
        cmocka_unit_test_setup_teardown (test_withdraw_is_durable, s_setup, st_fixture_teardown),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
