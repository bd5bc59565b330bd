/*  test_st_branch.c: conversation branches (st_branch.h, st_h_branch.h)
    over a temp LMDB, no sockets: the resolving rule on item arrays; an
    edit of a question in a three-turn session makes version 2 with an
    empty branch (or a new answer), and activating version 1 brings the
    old turns back; a new turn continues the shown branch; a delete with
    every later turn stays in its branch; refusals write nothing; a
    format-5 store upgrades.                                             */
#include "test_st_util.h"

#include "st_branch.h"
#include "st_format.h"

#define ID 400

static int
s_setup (void **state)
{
    *state = st_fixture_new (4 << 20, 2);
    return 0;
}

//  --- the rule, on items ------------------------------------------------

static st_branch_item_t
s_item (uint64_t seq, bool question, uint64_t tag, uint32_t tag_version, uint32_t active,
        uint32_t count)
{
    st_branch_item_t item = {.valid = true,
                             .question = question,
                             .seq = seq,
                             .tag_seq = tag,
                             .tag_version = tag_version,
                             .active = active,
                             .count = count};
    return item;
}

//  q1 a2 q3 a4 q5 a6 on the trunk; q3 edited twice (3 versions): its
//  version 2 has a8 (tagged 3/2), version 3 has q9 a10 (3/3). q3 shows 2.
static void
test_rule (void **state)
{
    (void) state;
    st_branch_item_t items[] = {
        s_item (1, true, 0, 0, 1, 1),  s_item (2, false, 0, 0, 1, 1),
        s_item (3, true, 0, 0, 2, 3),  s_item (4, false, 0, 0, 1, 1),
        s_item (5, true, 0, 0, 1, 1),  s_item (6, false, 0, 0, 1, 2),
        s_item (8, false, 3, 2, 1, 1), s_item (9, true, 3, 3, 1, 1),
        s_item (10, false, 3, 3, 1, 1),
    };
    size_t n = sizeof items / sizeof items[0];
    assert_int_equal (st_branch_resolve (items, n), 0);
    //  The turns that followed q3 before its first edit are its version 1.
    assert_int_equal (items[3].branch_seq, 3);
    assert_int_equal (items[3].branch_version, 1);
    assert_int_equal (items[5].branch_version, 1);
    assert_int_equal (items[2].branch_seq, 0);
    const bool shown[] = {true, true, true, false, false, false, true, false, false};
    for (size_t i = 0; i < n; i++)
        assert_int_equal (items[i].on_path, shown[i]);
    uint64_t seq;
    uint32_t version;
    st_branch_tail (items, n, &seq, &version);
    assert_int_equal (seq, 3);
    assert_int_equal (version, 2);

    //  Version 1 again: the old turns, and a new turn goes below a6.
    items[2].active = 1;
    assert_int_equal (st_branch_resolve (items, n), 0);
    const bool old[] = {true, true, true, true, true, true, false, false, false};
    for (size_t i = 0; i < n; i++)
        assert_int_equal (items[i].on_path, old[i]);
    st_branch_tail (items, n, &seq, &version);
    assert_int_equal (seq, 3);
    assert_int_equal (version, 1);

    //  What follows q3 in version 3's branch: q9, and a10 follows q3 at 3.
    size_t index[16];
    uint32_t at[16];
    size_t count = st_branch_above (items, n, 8, index, at);
    assert_int_equal (count, 4);
    assert_int_equal (index[0], 0);
    assert_int_equal (index[2], 2);
    assert_int_equal (at[2], 3);
    assert_int_equal (index[3], 7);

    //  Below q3: everything after it, in every branch; below a4: a4..a6.
    bool below[16];
    st_branch_below (items, n, 2, below);
    for (size_t i = 0; i < n; i++)
        assert_int_equal (below[i], i >= 2);
    st_branch_below (items, n, 3, below);
    for (size_t i = 0; i < n; i++)
        assert_int_equal (below[i], i >= 3 && i <= 5);

    //  A question of version 1's branch edited in turn (q5: 2 versions):
    //  a6, tagged as the trunk, is now q5's version 1.
    items[4].count = 2;
    items[4].active = 2;
    assert_int_equal (st_branch_resolve (items, n), 0);
    assert_int_equal (items[5].branch_seq, 5);
    assert_int_equal (items[5].branch_version, 1);
    assert_false (items[5].on_path);
    assert_true (items[4].on_path);
    st_branch_tail (items, n, &seq, &version);
    assert_int_equal (seq, 5);
    assert_int_equal (version, 2);
    //  A damaged record is in no branch.
    items[1].valid = false;
    assert_int_equal (st_branch_resolve (items, n), 0);
    assert_false (items[1].on_path);
    assert_true (items[2].on_path);
}

//  --- through the handlers ------------------------------------------------

static cm_envelope_t *
s_session (st_fixture_t *f, const char *user, const char *session)
{
    cm_envelope_t *request = st_req (CM_MSG_SESSION_GET, user);
    cm_map_set_str (request->payload, "session_id", session);
    cm_envelope_t *reply = NULL;
    assert_int_equal (st_read (f, request, &reply), 0);
    return reply;
}

//  The contents shown, joined by '|', into out.
static void
s_path (st_fixture_t *f, const char *session, char *out, size_t size)
{
    cm_envelope_t *reply = s_session (f, "alice", session);
    const cm_value_t *messages = cm_map_get (cm_map_get (reply->payload, "session"), "messages");
    out[0] = 0;
    for (size_t i = 0; i < cm_value_len (messages); i++) {
        size_t len = strlen (out);
        snprintf (out + len, size - len, "%s%s", i ? "|" : "",
                  cm_map_str_or (cm_arr_at (messages, i), "content", ""));
    }
    cm_envelope_destroy (&reply);
}

//  One answered turn: ids into question / answer.
static void
s_turn (st_fixture_t *f, const char *session, const char *query, const char *text,
        char *question, char *answer)
{
    char task[ID];
    assert_int_equal (st_start (f, "alice", session, query, question, answer, task), 0);
    st_answer (f, task, text);
}

static int
s_edit (st_fixture_t *f, const char *user, const char *id, const char *content, bool trigger,
        cm_envelope_t **reply)
{
    cm_envelope_t *edit = st_req (CM_MSG_MESSAGE_EDIT, user);
    cm_map_set_str (edit->payload, "message_id", id);
    cm_map_set_str (edit->payload, "content", content);
    cm_map_set_bool (edit->payload, "trigger_regeneration", trigger);
    return st_write (f, edit, reply);
}

static int
s_activate (st_fixture_t *f, const char *user, const char *id, int64_t n)
{
    cm_envelope_t *request = st_req (CM_MSG_VERSION_ACTIVATE, user);
    cm_map_set_str (request->payload, "message_id", id);
    cm_map_set_int (request->payload, "version", n);
    return st_write (f, request, NULL);
}

static int
s_delete (st_fixture_t *f, const char *id, const char *scope)
{
    cm_envelope_t *request = st_req (CM_MSG_MESSAGE_DELETE, "alice");
    cm_map_set_str (request->payload, "message_id", id);
    cm_map_set_str (request->payload, "scope", scope);
    return st_write (f, request, NULL);
}

static void
test_edit_branches_and_switch_back (void **state)
{
    st_fixture_t *f = *state;
    char q[3][ID], a[3][ID], path[4096];
    s_turn (f, "b1", "q1", "a1", q[0], a[0]);
    s_turn (f, "b1", "q2", "a2", q[1], a[1]);
    s_turn (f, "b1", "q3", "a3", q[2], a[2]);
    s_path (f, "b1", path, sizeof path);
    assert_string_equal (path, "q1|a1|q2|a2|q3|a3");

    //  Edit q2 asking for an answer: the path is q1 a1 q2' and its answer.
    cm_envelope_t *reply = NULL;
    assert_int_equal (s_edit (f, "alice", q[1], "q2 edited", true, &reply), 0);
    const cm_value_t *data = cm_map_get (reply->payload, "data");
    assert_int_equal (cm_map_int (data, "version_index", 0), 2);
    assert_int_equal (cm_map_int (data, "version_count", 0), 2);
    char answer[ID], task[ID];
    strcpy (answer, cm_map_str_or (data, "assistant_message_id", ""));
    strcpy (task, cm_map_str_or (data, "regeneration_task_id", ""));
    cm_envelope_destroy (&reply);
    assert_true (st_event_index (f, "message_edited") >= 0);
    assert_true (st_event_index (f, "session_updated") >= 0);
    s_path (f, "b1", path, sizeof path);
    assert_string_equal (path, "q1|a1|q2 edited|");
    //  The claim answers the edited question after the trunk.
    cm_envelope_t *claim = st_req (CM_MSG_TASK_CLAIM, NULL);
    cm_map_set_str (claim->payload, "worker", "w");
    assert_int_equal (st_write (f, claim, &reply), 0);
    const cm_value_t *claimed = cm_arr_at (cm_map_get (reply->payload, "tasks"), 0);
    f->fence = cm_map_int (claimed, "fence", 0);
    const cm_value_t *conversation = cm_map_get (claimed, "conversation");
    assert_int_equal (cm_value_len (conversation), 3);
    assert_string_equal (cm_map_str_or (cm_arr_at (conversation, 2), "content", ""), "q2 edited");
    cm_envelope_destroy (&reply);
    cm_envelope_t *done = st_req (CM_MSG_TASK_COMPLETE, NULL);
    cm_map_set_str (done->payload, "worker", "w");
    cm_map_set_int (done->payload, "fence", f->fence);
    cm_map_set_str (done->payload, "task_id", task);
    cm_map_set_str (done->payload, "content", "a2'");
    assert_int_equal (st_write (f, done, NULL), 0);
    s_path (f, "b1", path, sizeof path);
    assert_string_equal (path, "q1|a1|q2 edited|a2'");

    //  A new turn continues the new branch.
    char q4[ID], a4[ID];
    s_turn (f, "b1", "q4", "a4", q4, a4);
    s_path (f, "b1", path, sizeof path);
    assert_string_equal (path, "q1|a1|q2 edited|a2'|q4|a4");

    //  Version 1: the old branch with its answers, then back to 2.
    assert_int_equal (s_activate (f, "alice", q[1], 1), 0);
    s_path (f, "b1", path, sizeof path);
    assert_string_equal (path, "q1|a1|q2|a2|q3|a3");
    cm_envelope_t *got = s_session (f, "alice", "b1");
    const cm_value_t *shown = cm_arr_at (
        cm_map_get (cm_map_get (got->payload, "session"), "messages"), 2);
    assert_int_equal (cm_map_int (shown, "version_index", 0), 1);
    assert_int_equal (cm_map_int (shown, "version_count", 0), 2);
    cm_envelope_destroy (&got);
    assert_int_equal (s_activate (f, "alice", q[1], 2), 0);
    s_path (f, "b1", path, sizeof path);
    assert_string_equal (path, "q1|a1|q2 edited|a2'|q4|a4");

    //  Without a regeneration the new branch starts empty; the message
    //  ids of the old branches still answer.
    assert_int_equal (s_edit (f, "alice", q[1], "q2 third", false, &reply), 0);
    assert_true (cm_map_get (cm_map_get (reply->payload, "data"), "assistant_message_id")->type
                 == CM_T_NIL);
    cm_envelope_destroy (&reply);
    s_path (f, "b1", path, sizeof path);
    assert_string_equal (path, "q1|a1|q2 third");
    cm_envelope_t *history = st_req (CM_MSG_HISTORY_GET, "alice");
    cm_map_set_str (history->payload, "message_id", a[2]);
    assert_int_equal (st_read (f, history, NULL), 0);

    //  Refusals change nothing: a version q2 lacks, another user, a
    //  question of a hidden branch, a question with versions alone.
    uint64_t writes = st_db_writes (f->db);
    assert_int_equal (s_activate (f, "alice", q[1], 4), CM_ENOVERSION);
    assert_int_equal (s_activate (f, "bob", q[1], 1), CM_ENOTFOUND);
    assert_int_equal (s_edit (f, "alice", q[2], "hidden", true, NULL), CM_EBADSTATE);
    assert_int_equal (s_edit (f, "bob", q[1], "not mine", true, NULL), CM_ENOTFOUND);
    assert_int_equal (s_delete (f, q[1], "message"), CM_EBADSTATE);
    assert_int_equal (st_db_writes (f->db), writes);
    s_path (f, "b1", path, sizeof path);
    assert_string_equal (path, "q1|a1|q2 third");

    //  A delete with every later turn of a hidden branch's answer stays in
    //  that branch; a deleted message cannot be switched.
    assert_int_equal (s_delete (f, a[1], "following"), 0);
    assert_int_equal (s_activate (f, "alice", q[1], 1), 0);
    s_path (f, "b1", path, sizeof path);
    assert_string_equal (path, "q1|a1|q2");
    assert_int_equal (s_activate (f, "alice", q[1], 2), 0);
    s_path (f, "b1", path, sizeof path);
    assert_string_equal (path, "q1|a1|q2 edited|a2'|q4|a4");
    assert_int_equal (s_activate (f, "alice", a[2], 1), CM_ENOTFOUND);
    (void) answer;
}

//  A store of format 5 (before branches) opens, says the current format
//  after, and serves its sessions as they were: every message on the trunk.
static void
test_format_5_store_upgrades (void **state)
{
    st_fixture_t *f = *state;
    char q[ID], a[ID], path[1024];
    s_turn (f, "old", "question", "answer", q, a);
    st_ops_destroy (&f->ops);
    st_db_destroy (&f->db);
    st_format_t format;
    char why[ST_FORMAT_WHY_MAX];
    assert_int_equal (st_format_read (f->dir, &format, why, sizeof why), 0);
    assert_int_equal (format.version, ST_FORMAT_VERSION);
    format.version = 5;
    assert_int_equal (st_format_write (f->dir, &format), 0);
    assert_int_equal (st_db_open (f->dir, 4 << 20, false, &f->db), 0);
    st_ops_config_t config = {.lease_ms = 10000, .max_attempts = 2,
                              .retention_ms = 7LL * 86400 * 1000, .worker_live_ms = 30000};
    f->ops = st_ops_new (f->db, &config);
    st_format_t after;
    assert_int_equal (st_format_read (f->dir, &after, why, sizeof why), 0);
    assert_int_equal (after.version, ST_FORMAT_VERSION);
    assert_string_equal (after.id, format.id);
    s_path (f, "old", path, sizeof path);
    assert_string_equal (path, "question|answer");
    //  Its first edit branches as in a new store.
    assert_int_equal (s_edit (f, "alice", q, "question 2", false, NULL), 0);
    s_path (f, "old", path, sizeof path);
    assert_string_equal (path, "question 2");
    assert_int_equal (s_activate (f, "alice", q, 1), 0);
    s_path (f, "old", path, sizeof path);
    assert_string_equal (path, "question|answer");
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_rule),
        cmocka_unit_test_setup_teardown (test_edit_branches_and_switch_back, s_setup,
                                         st_fixture_teardown),
        cmocka_unit_test_setup_teardown (test_format_5_store_upgrades, s_setup,
                                         st_fixture_teardown),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
