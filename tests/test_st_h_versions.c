/*  test_st_h_versions.c: answer versions in the store's handlers
    (st_h_versions.h) over a temp LMDB, no sockets: a regenerate adds a
    version, version_activate switches it, votes stay on their version,
    refusals write nothing, a delete takes the versions with it.          */
#include "test_st_util.h"

#include "st_versions.h"

#define ID 400

static int
s_setup (void **state)
{
    *state = st_fixture_new (4 << 20, 2);
    return 0;
}

static int
s_regen (st_fixture_t *f, const char *user, const char *message, char *task)
{
    cm_envelope_t *request = st_req (CM_MSG_REGEN_CREATE, user);
    cm_map_set_str (request->payload, "message_id", message);
    cm_envelope_t *reply = NULL;
    int rc = st_write (f, request, &reply);
    if (rc == 0)
        strcpy (task, cm_map_str_or (cm_map_get (reply->payload, "data"), "task_id", ""));
    cm_envelope_destroy (&reply);
    return rc;
}

//  Regenerates message and completes it with content.
static void
s_regenerate (st_fixture_t *f, const char *message, const char *content)
{
    char task[ID];
    assert_int_equal (s_regen (f, "alice", message, task), 0);
    st_answer (f, task, content);
}

static int
s_activate (st_fixture_t *f, const char *user, const char *message, int64_t n,
            cm_envelope_t **reply)
{
    cm_envelope_t *request = st_req (CM_MSG_VERSION_ACTIVATE, user);
    cm_map_set_str (request->payload, "message_id", message);
    cm_map_set_int (request->payload, "version", n);
    return st_write (f, request, reply);
}

static int
s_vote (st_fixture_t *f, const char *user, const char *message, const char *type)
{
    cm_envelope_t *vote = st_req (CM_MSG_FEEDBACK_PUT, user);
    cm_map_set_str (vote->payload, "message_id", message);
    cm_map_set_str (vote->payload, "feedback_type", type);
    return st_write (f, vote, NULL);
}

//  The session's message at index as session_get shows it (a copy).
static cm_value_t *
s_shown (st_fixture_t *f, const char *session, size_t index)
{
    cm_envelope_t *request = st_req (CM_MSG_SESSION_GET, "alice");
    cm_map_set_str (request->payload, "session_id", session);
    cm_envelope_t *reply = NULL;
    assert_int_equal (st_read (f, request, &reply), 0);
    const cm_value_t *messages = cm_map_get (cm_map_get (reply->payload, "session"), "messages");
    cm_value_t *msg = cm_value_dup (cm_arr_at (messages, index));
    cm_envelope_destroy (&reply);
    assert_non_null (msg);
    return msg;
}

//  Entries of the versions DBI.
static size_t
s_version_records (st_fixture_t *f)
{
    MDB_txn *txn;
    assert_int_equal (st_db_read_begin (f->db, &txn), 0);
    MDB_stat stat;
    assert_int_equal (mdb_stat (txn, st_db_dbi (f->db, ST_DBI_VERSIONS), &stat), 0);
    st_db_read_end (f->db, txn);
    return stat.ms_entries;
}

//  A turn with its first answer "one": the assistant message id.
static void
s_turn (st_fixture_t *f, char *asst)
{
    char task[ID];
    assert_int_equal (st_start (f, "alice", "s1", "q", NULL, asst, task), 0);
    st_answer (f, task, "one");
}

static void
test_regenerate_adds_versions (void **state)
{
    st_fixture_t *f = *state;
    char asst[ID];
    s_turn (f, asst);
    cm_value_t *msg = s_shown (f, "s1", 1);
    assert_int_equal (cm_map_int (msg, "version_index", 0), 1);
    assert_int_equal (cm_map_int (msg, "version_count", 0), 1);
    assert_string_equal (cm_map_str_or (msg, "version_id", ""), asst);
    assert_int_equal (cm_value_len (cm_map_get (msg, "version_ids")), 1);
    cm_value_destroy (&msg);
    assert_int_equal (s_version_records (f), 0); //  one version: no records

    const char *texts[] = {"one", "two", "three"};
    for (int n = 2; n <= 3; n++) {
        f->now += 1000;
        s_regenerate (f, asst, texts[n - 1]);
        const cm_value_t *data = st_event_data (f, "message_regenerated");
        assert_non_null (data);
        assert_string_equal (cm_map_str_or (data, "content", ""), texts[n - 1]);
        assert_int_equal (cm_map_int (data, "versionIndex", 0), n);
        assert_int_equal (cm_map_int (data, "versionCount", 0), n);
        assert_true (strncmp (cm_map_str_or (data, "versionId", ""), "ver_", 4) == 0);
    }
    msg = s_shown (f, "s1", 1);
    assert_string_equal (cm_map_str_or (msg, "content", ""), "three");
    assert_int_equal (cm_map_int (msg, "version_index", 0), 3);
    assert_int_equal (cm_map_int (msg, "version_count", 0), 3);
    const cm_value_t *ids = cm_map_get (msg, "version_ids");
    assert_string_equal (cm_arr_at (ids, 0)->u.s.ptr, asst);
    assert_string_equal (cm_arr_at (ids, 2)->u.s.ptr, cm_map_str_or (msg, "version_id", ""));
    assert_true (cm_map_bool (cm_map_get (msg, "metadata"), "regenerated", false));
    assert_false (cm_map_bool (cm_map_get (msg, "metadata"), "regenerating", true));
    cm_value_destroy (&msg);
    assert_int_equal (s_version_records (f), 4); //  head + three versions

    //  Every version's text is kept: activate each.
    for (int n = 1; n <= 3; n++) {
        cm_envelope_t *reply = NULL;
        assert_int_equal (s_activate (f, "alice", asst, n, &reply), 0);
        const cm_value_t *data = cm_map_get (reply->payload, "data");
        assert_string_equal (cm_map_str_or (data, "content", ""), texts[n - 1]);
        assert_true (cm_map_bool (data, "changed", false)); //  3 -> 1 -> 2 -> 3
        cm_envelope_destroy (&reply);
        msg = s_shown (f, "s1", 1);
        assert_string_equal (cm_map_str_or (msg, "content", ""), texts[n - 1]);
        assert_int_equal (cm_map_int (msg, "version_index", 0), n);
        cm_value_destroy (&msg);
    }
}

static void
test_activate_announces_and_refusals_write_nothing (void **state)
{
    st_fixture_t *f = *state;
    char asst[ID], user_msg[ID], task[ID];
    assert_int_equal (st_start (f, "alice", "s1", "q", user_msg, asst, task), 0);
    st_answer (f, task, "one");
    s_regenerate (f, asst, "two");

    cm_envelope_t *reply = NULL;
    assert_int_equal (s_activate (f, "alice", asst, 1, &reply), 0);
    cm_envelope_destroy (&reply);
    const cm_value_t *data = st_event_data (f, "version_activated");
    assert_non_null (data);
    assert_string_equal (cm_map_str_or (data, "messageId", ""), asst);
    assert_string_equal (cm_map_str_or (data, "content", ""), "one");
    assert_int_equal (cm_map_int (data, "versionIndex", 0), 1);
    assert_int_equal (cm_map_int (data, "versionCount", 0), 2);
    assert_string_equal (cm_map_str_or (data, "versionId", ""), asst);

    //  Already shown: no write, no event.
    uint64_t writes = st_db_writes (f->db);
    assert_int_equal (s_activate (f, "alice", asst, 1, &reply), 0);
    assert_false (cm_map_bool (cm_map_get (reply->payload, "data"), "changed", true));
    cm_envelope_destroy (&reply);
    assert_int_equal (cm_value_len (f->events), 0);
    assert_int_equal (st_db_writes (f->db), writes);

    const struct {
        const char *user, *message;
        int64_t n;
        int code;
    } refused[] = {{"alice", asst, 3, CM_ENOVERSION},   {"alice", asst, 0, CM_ENOVERSION},
                   {"alice", asst, -1, CM_ENOVERSION},  {"alice", asst, 101, CM_ENOVERSION},
                   {"alice", user_msg, 2, CM_ENOVERSION}, {"bob", asst, 2, CM_ENOTFOUND}};
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++) {
        writes = st_db_writes (f->db);
        assert_int_equal (s_activate (f, refused[i].user, refused[i].message, refused[i].n, NULL),
                          refused[i].code);
        assert_int_equal (st_db_writes (f->db), writes);
        assert_int_equal (cm_value_len (f->events), 0);
    }
    cm_value_t *msg = s_shown (f, "s1", 1);
    assert_string_equal (cm_map_str_or (msg, "content", ""), "one");
    assert_int_equal (cm_map_int (msg, "version_index", 0), 1);
    assert_int_equal (cm_map_int (msg, "version_count", 0), 2);
    cm_value_destroy (&msg);
}

static void
test_votes_stay_on_their_version (void **state)
{
    st_fixture_t *f = *state;
    char asst[ID];
    s_turn (f, asst);
    assert_int_equal (s_vote (f, "alice", asst, "upvote"), 0);
    assert_int_equal (cm_map_int (st_event_data (f, "feedback_submitted"), "versionIndex", 0), 1);
    s_regenerate (f, asst, "two");
    cm_value_t *msg = s_shown (f, "s1", 1);
    assert_int_equal (cm_map_int (cm_map_get (msg, "metadata"), "upvotes", -1), 0);
    cm_value_destroy (&msg);
    assert_int_equal (s_vote (f, "alice", asst, "downvote"), 0);
    const cm_value_t *data = st_event_data (f, "feedback_submitted");
    assert_int_equal (cm_map_int (data, "versionIndex", 0), 2);
    assert_int_equal (cm_map_int (data, "upvotes", -1), 0);
    assert_int_equal (cm_map_int (data, "downvotes", -1), 1);
    assert_int_equal (s_vote (f, "bob", asst, "downvote"), CM_ENOTFOUND);

    cm_envelope_t *request = st_req (CM_MSG_FEEDBACK_GET, "alice");
    cm_map_set_str (request->payload, "message_id", asst);
    cm_envelope_t *reply = NULL;
    assert_int_equal (st_read (f, request, &reply), 0);
    const cm_value_t *summary = cm_map_get (reply->payload, "feedback_summary");
    assert_int_equal (cm_map_int (summary, "upvotes", -1), 0);
    assert_int_equal (cm_map_int (summary, "downvotes", -1), 1);
    assert_int_equal (cm_map_int (reply->payload, "version_index", 0), 2);
    const cm_value_t *versions = cm_map_get (reply->payload, "versions");
    assert_int_equal (cm_value_len (versions), 2);
    assert_int_equal (cm_map_int (cm_arr_at (versions, 0), "upvotes", -1), 1);
    assert_int_equal (cm_map_int (cm_arr_at (versions, 0), "downvotes", -1), 0);
    assert_string_equal (cm_map_str_or (cm_arr_at (versions, 0), "version_id", ""), asst);
    assert_int_equal (cm_map_int (cm_arr_at (versions, 1), "downvotes", -1), 1);
    assert_int_equal (cm_value_len (cm_map_get (reply->payload, "recent_feedback")), 2);
    cm_envelope_destroy (&reply);

    //  Version 1 shown again: its vote with it. A second vote on it
    //  replaces the first, on that version only.
    assert_int_equal (s_activate (f, "alice", asst, 1, NULL), 0);
    msg = s_shown (f, "s1", 1);
    assert_int_equal (cm_map_int (cm_map_get (msg, "metadata"), "upvotes", -1), 1);
    assert_int_equal (cm_map_int (cm_map_get (msg, "metadata"), "downvotes", -1), 0);
    cm_value_destroy (&msg);
    assert_int_equal (s_vote (f, "alice", asst, "downvote"), 0);
    data = st_event_data (f, "feedback_submitted");
    assert_int_equal (cm_map_int (data, "upvotes", -1), 0);
    assert_int_equal (cm_map_int (data, "downvotes", -1), 1);

    //  A vote names its version (a tab that still shows version 2): it is
    //  that version's; a version the message does not have writes nothing.
    cm_envelope_t *named = st_req (CM_MSG_FEEDBACK_PUT, "alice");
    cm_map_set_str (named->payload, "message_id", asst);
    cm_map_set_str (named->payload, "feedback_type", "upvote");
    cm_map_set_int (named->payload, "version", 2);
    assert_int_equal (st_write (f, named, &reply), 0);
    assert_int_equal (cm_map_int (reply->payload, "version_index", 0), 2);
    assert_true (strncmp (cm_map_str_or (reply->payload, "version_id", ""), "ver_", 4) == 0);
    cm_envelope_destroy (&reply);
    data = st_event_data (f, "feedback_submitted");
    assert_int_equal (cm_map_int (data, "versionIndex", 0), 2);
    assert_int_equal (cm_map_int (data, "upvotes", -1), 1);
    assert_int_equal (cm_map_int (data, "downvotes", -1), 0);
    msg = s_shown (f, "s1", 1); //  version 1 is shown, its counts unchanged
    assert_int_equal (cm_map_int (msg, "version_index", 0), 1);
    assert_int_equal (cm_map_int (cm_map_get (msg, "metadata"), "downvotes", -1), 1);
    cm_value_destroy (&msg);
    uint64_t writes = st_db_writes (f->db);
    named = st_req (CM_MSG_FEEDBACK_PUT, "alice");
    cm_map_set_str (named->payload, "message_id", asst);
    cm_map_set_str (named->payload, "feedback_type", "upvote");
    cm_map_set_int (named->payload, "version", 3);
    assert_int_equal (st_write (f, named, NULL), CM_ENOVERSION);
    assert_int_equal (st_db_writes (f->db), writes);

    //  The session's analytics count every version's votes.
    request = st_req (CM_MSG_ANALYTICS_GET, "alice");
    cm_map_set_str (request->payload, "session_id", "s1");
    assert_int_equal (st_read (f, request, &reply), 0);
    const cm_value_t *a = cm_map_get (reply->payload, "analytics");
    assert_int_equal (cm_map_int (a, "upvotes", -1), 1);
    assert_int_equal (cm_map_int (a, "downvotes", -1), 1);
    cm_envelope_destroy (&reply);
}

static void
test_first_answer_in_place_and_delete_drops_versions (void **state)
{
    st_fixture_t *f = *state;
    char asst[ID], task[ID], claimed[ID];
    assert_int_equal (st_start (f, "alice", "s1", "q", NULL, asst, task), 0);
    //  The first answer never came: the regenerate writes version 1.
    assert_int_equal (st_claim (f, "w", claimed), 1);
    cm_envelope_t *fail = st_req (CM_MSG_TASK_FAIL, NULL);
    cm_map_set_str (fail->payload, "worker", "w");
    cm_map_set_int (fail->payload, "fence", f->fence);
    cm_map_set_str (fail->payload, "task_id", task);
    cm_map_set_str (fail->payload, "error", "down");
    assert_int_equal (st_write (f, fail, NULL), 0);
    s_regenerate (f, asst, "one");
    cm_value_t *msg = s_shown (f, "s1", 1);
    assert_string_equal (cm_map_str_or (msg, "content", ""), "one");
    assert_int_equal (cm_map_int (msg, "version_count", 0), 1);
    cm_value_destroy (&msg);
    s_regenerate (f, asst, "two");
    assert_int_equal (s_vote (f, "alice", asst, "upvote"), 0);
    assert_int_equal (s_version_records (f), 3);

    //  An edit of the shown version is kept in its record.
    cm_envelope_t *edit = st_req (CM_MSG_MESSAGE_EDIT, "alice");
    cm_map_set_str (edit->payload, "message_id", asst);
    cm_map_set_str (edit->payload, "content", "two, edited");
    assert_int_equal (st_write (f, edit, NULL), 0);
    assert_int_equal (s_activate (f, "alice", asst, 1, NULL), 0);
    assert_int_equal (s_activate (f, "alice", asst, 2, NULL), 0);
    msg = s_shown (f, "s1", 1);
    assert_string_equal (cm_map_str_or (msg, "content", ""), "two, edited");
    assert_true (cm_map_bool (cm_map_get (msg, "metadata"), "edited", false));
    cm_value_destroy (&msg);

    cm_envelope_t *del = st_req (CM_MSG_MESSAGE_DELETE, "alice");
    cm_map_set_str (del->payload, "message_id", asst);
    assert_int_equal (st_write (f, del, NULL), 0);
    assert_int_equal (s_version_records (f), 0);
    MDB_txn *txn;
    assert_int_equal (st_db_read_begin (f->db, &txn), 0);
    MDB_stat stat;
    assert_int_equal (mdb_stat (txn, st_db_dbi (f->db, ST_DBI_VOTES), &stat), 0);
    assert_int_equal (stat.ms_entries, 0);
    assert_int_equal (mdb_stat (txn, st_db_dbi (f->db, ST_DBI_FEEDBACK), &stat), 0);
    assert_int_equal (stat.ms_entries, 0);
    st_db_read_end (f->db, txn);
}

//  A turn holds CM_VERSIONS_MAX versions; a regenerate past them is
//  refused when it is asked for, and writes nothing.
static void
test_versions_limit (void **state)
{
    st_fixture_t *f = *state;
    char asst[ID], task[ID];
    s_turn (f, asst);
    for (int n = 2; n <= CM_VERSIONS_MAX; n++) {
        f->now += 10;
        s_regenerate (f, asst, "again");
    }
    cm_value_t *msg = s_shown (f, "s1", 1);
    assert_int_equal (cm_map_int (msg, "version_count", 0), CM_VERSIONS_MAX);
    cm_value_destroy (&msg);
    uint64_t writes = st_db_writes (f->db);
    assert_int_equal (s_regen (f, "alice", asst, task), CM_EBADSTATE);
    assert_int_equal (st_db_writes (f->db), writes);
    assert_int_equal (s_activate (f, "alice", asst, CM_VERSIONS_MAX, NULL), 0);
    assert_int_equal (s_activate (f, "alice", asst, 1, NULL), 0);
    msg = s_shown (f, "s1", 1);
    assert_string_equal (cm_map_str_or (msg, "content", ""), "one");
    cm_value_destroy (&msg);
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown (test_regenerate_adds_versions, s_setup, st_fixture_teardown),
        cmocka_unit_test_setup_teardown (test_activate_announces_and_refusals_write_nothing,
                                         s_setup, st_fixture_teardown),
        cmocka_unit_test_setup_teardown (test_votes_stay_on_their_version, s_setup, st_fixture_teardown),
        cmocka_unit_test_setup_teardown (test_first_answer_in_place_and_delete_drops_versions,
                                         s_setup, st_fixture_teardown),
        cmocka_unit_test_setup_teardown (test_versions_limit, s_setup, st_fixture_teardown),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
