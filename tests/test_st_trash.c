/*  test_st_trash.c: undoable deletes and session management in the store
    (st_h_trash.h, st_h_manage.h, st_h_export.h) over a temp LMDB, no
    sockets: a delete of one message or of it and every later turn, the
    restore within the window with every version and vote, the purge
    after it, whole sessions, list pages, rename and export; every refusal
    writes nothing.                                                       */
#include "test_st_util.h"

#include "st_format.h"

#define ID 400

static int
s_setup (void **state)
{
    *state = st_fixture_new (4 << 20, 2);
    return 0;
}

//  A turn of session answered with answer.
static void
s_turn (st_fixture_t *f, const char *session, const char *query, const char *answer, char *user,
        char *assistant)
{
    char task[ID];
    assert_int_equal (st_start (f, "alice", session, query, user, assistant, task), 0);
    st_answer (f, task, answer);
    f->now += 10;
}

//  A second version of assistant, "v2".
static void
s_regenerate (st_fixture_t *f, const char *assistant)
{
    cm_envelope_t *request = st_req (CM_MSG_REGEN_CREATE, "alice");
    cm_map_set_str (request->payload, "message_id", assistant);
    cm_envelope_t *reply = NULL;
    assert_int_equal (st_write (f, request, &reply), 0);
    char task[ID];
    strcpy (task, cm_map_str_or (cm_map_get (reply->payload, "data"), "task_id", ""));
    cm_envelope_destroy (&reply);
    st_answer (f, task, "v2");
}

static int
s_vote (st_fixture_t *f, const char *message)
{
    cm_envelope_t *vote = st_req (CM_MSG_FEEDBACK_PUT, "alice");
    cm_map_set_str (vote->payload, "message_id", message);
    cm_map_set_str (vote->payload, "feedback_type", "upvote");
    return st_write (f, vote, NULL);
}

static int
s_delete (st_fixture_t *f, const char *user, const char *message, const char *scope,
          cm_envelope_t **reply)
{
    cm_envelope_t *request = st_req (CM_MSG_MESSAGE_DELETE, user);
    cm_map_set_str (request->payload, "message_id", message);
    if (scope)
        cm_map_set_str (request->payload, "scope", scope);
    return st_write (f, request, reply);
}

static int
s_restore (st_fixture_t *f, const char *user, const char *message)
{
    cm_envelope_t *request = st_req (CM_MSG_MESSAGE_RESTORE, user);
    cm_map_set_str (request->payload, "message_id", message);
    return st_write (f, request, NULL);
}

static int
s_session_op (st_fixture_t *f, cm_msg_t type, const char *user, const char *session)
{
    cm_envelope_t *request = st_req (type, user);
    cm_map_set_str (request->payload, "session_id", session);
    return st_write (f, request, NULL);
}

//  The session's messages (a new array), or NULL when session_get fails.
static cm_value_t *
s_messages (st_fixture_t *f, const char *session)
{
    cm_envelope_t *request = st_req (CM_MSG_SESSION_GET, "alice"), *reply = NULL;
    cm_map_set_str (request->payload, "session_id", session);
    if (st_read (f, request, &reply)) {
        cm_envelope_destroy (&reply);
        return NULL;
    }
    cm_value_t *session_view = (cm_value_t *) cm_map_get (reply->payload, "session");
    assert_int_equal (cm_map_int (session_view, "message_count", -1),
                      (int64_t) cm_value_len (cm_map_get (session_view, "messages")));
    cm_value_t *messages = cm_value_dup (cm_map_get (session_view, "messages"));
    cm_envelope_destroy (&reply);
    return messages;
}

static int64_t
s_upvotes (st_fixture_t *f, const char *message)
{
    cm_envelope_t *request = st_req (CM_MSG_FEEDBACK_GET, "alice"), *reply = NULL;
    cm_map_set_str (request->payload, "message_id", message);
    assert_int_equal (st_read (f, request, &reply), 0);
    int64_t ups = cm_map_int (cm_map_get (reply->payload, "feedback_summary"), "upvotes", -1);
    cm_envelope_destroy (&reply);
    return ups;
}

//  How many of alice's audit entries have action.
static int
s_audits (st_fixture_t *f, const char *action)
{
    cm_envelope_t *query = st_req (CM_MSG_AUDIT_QUERY, "alice"), *reply = NULL;
    cm_map_set_int (query->payload, "limit", 1000);
    assert_int_equal (st_read (f, query, &reply), 0);
    const cm_value_t *entries = cm_map_get (reply->payload, "entries");
    int n = 0;
    for (size_t i = 0; i < cm_value_len (entries); i++)
        n += strcmp (cm_map_str_or (cm_arr_at (entries, i), "action_type", ""), action) == 0;
    cm_envelope_destroy (&reply);
    return n;
}

//  Two answered turns; the first answer has two versions and a vote.
static void
s_story (st_fixture_t *f, char *u1, char *a1, char *u2, char *a2)
{
    s_turn (f, "sess_t", "first question", "first answer", u1, a1);
    s_regenerate (f, a1);
    assert_int_equal (s_vote (f, a1), 0);
    s_turn (f, "sess_t", "second question", "second answer", u2, a2);
}

static void
test_delete_one_message_and_restore_it (void **state)
{
    st_fixture_t *f = *state;
    char u1[ID], a1[ID], u2[ID], a2[ID];
    s_story (f, u1, a1, u2, a2);
    cm_envelope_t *reply = NULL;
    assert_int_equal (s_delete (f, "alice", a1, "message", &reply), 0);
    const cm_value_t *data = cm_map_get (reply->payload, "data");
    assert_int_equal (cm_map_int (data, "deleted_count", 0), 1);
    assert_string_equal (cm_map_str_or (data, "scope", ""), "message");
    assert_non_null (cm_map_str (data, "undo_until"));
    cm_envelope_destroy (&reply);
    assert_true (st_event_index (f, "message_deleted") >= 0);
    cm_value_t *messages = s_messages (f, "sess_t");
    assert_int_equal (cm_value_len (messages), 3); //  only the answer went
    assert_string_equal (cm_map_str_or (cm_arr_at (messages, 1), "id", ""), u2);
    cm_value_destroy (&messages);

    f->now += 29000; //  inside the 30 s window
    assert_int_equal (s_restore (f, "alice", a1), 0);
    const cm_value_t *event = st_event_data (f, "message_restored");
    assert_non_null (event);
    assert_int_equal (cm_map_int (event, "restoredCount", 0), 1);
    messages = s_messages (f, "sess_t");
    assert_int_equal (cm_value_len (messages), 4);
    const cm_value_t *back = cm_arr_at (messages, 1);
    assert_string_equal (cm_map_str_or (back, "id", ""), a1);
    assert_string_equal (cm_map_str_or (back, "content", ""), "v2");
    assert_int_equal (cm_map_int (back, "version_count", 0), 2);
    cm_value_destroy (&messages);
    assert_int_equal (s_upvotes (f, a1), 1);
    assert_int_equal (s_audits (f, "delete"), 1);
    assert_int_equal (s_audits (f, "restore"), 1);
    //  The tombstone is gone: a second restore has nothing to restore.
    assert_int_equal (s_restore (f, "alice", a1), CM_ECONFLICT);
}

static void
test_delete_following_takes_every_later_turn (void **state)
{
    st_fixture_t *f = *state;
    char u1[ID], a1[ID], u2[ID], a2[ID];
    s_story (f, u1, a1, u2, a2);
    cm_envelope_t *reply = NULL;
    assert_int_equal (s_delete (f, "alice", a1, NULL, &reply), 0); //  default: following
    assert_int_equal (cm_map_int (cm_map_get (reply->payload, "data"), "deleted_count", 0), 3);
    cm_envelope_destroy (&reply);
    cm_value_t *messages = s_messages (f, "sess_t");
    assert_int_equal (cm_value_len (messages), 1);
    cm_value_destroy (&messages);
    //  Its later messages are in the tombstone of a1, not their own.
    assert_int_equal (s_restore (f, "alice", a2), CM_ENOTFOUND);
    assert_int_equal (s_restore (f, "alice", a1), 0);
    messages = s_messages (f, "sess_t");
    assert_int_equal (cm_value_len (messages), 4);
    assert_string_equal (cm_map_str_or (cm_arr_at (messages, 3), "content", ""), "second answer");
    cm_value_destroy (&messages);
}

//  A generation running when its message goes ends with it; the restored
//  message is not left regenerating, and can be regenerated again.
static void
test_restore_after_a_running_generation (void **state)
{
    st_fixture_t *f = *state;
    char u[ID], a[ID], task[ID], claimed[ID];
    assert_int_equal (st_start (f, "alice", "sess_t", "question", u, a, task), 0);
    assert_int_equal (st_claim (f, "w", claimed), 1);
    cm_value_t *messages = s_messages (f, "sess_t");
    assert_true (cm_map_bool (cm_map_get (cm_arr_at (messages, 1), "metadata"), "regenerating",
                              false));
    cm_value_destroy (&messages);
    assert_int_equal (s_delete (f, "alice", a, "message", NULL), 0);
    assert_true (st_event_index (f, "regeneration_error") >= 0);
    assert_int_equal (s_restore (f, "alice", a), 0);
    messages = s_messages (f, "sess_t");
    assert_false (cm_map_bool (cm_map_get (cm_arr_at (messages, 1), "metadata"), "regenerating",
                               true));
    cm_value_destroy (&messages);
    cm_envelope_t *request = st_req (CM_MSG_REGEN_CREATE, "alice");
    cm_map_set_str (request->payload, "message_id", a);
    assert_int_equal (st_write (f, request, NULL), 0);
}

static void
test_refusals_change_nothing (void **state)
{
    st_fixture_t *f = *state;
    char u1[ID], a1[ID], u2[ID], a2[ID];
    s_story (f, u1, a1, u2, a2);
    uint64_t writes = st_db_writes (f->db);
    assert_int_equal (s_delete (f, "alice", a1, "everything", NULL), CM_EINVAL);
    assert_int_equal (s_delete (f, "bob", a1, "message", NULL), CM_ENOTFOUND);
    assert_int_equal (s_restore (f, "alice", a1), CM_ECONFLICT); //  never deleted
    assert_int_equal (st_db_writes (f->db), writes);
    assert_int_equal (s_delete (f, "alice", a2, "message", NULL), 0);
    writes = st_db_writes (f->db);
    assert_int_equal (s_restore (f, "bob", a2), CM_ENOTFOUND); //  not bob's
    f->now += 30000;                                           //  the window has passed
    assert_int_equal (s_restore (f, "alice", a2), CM_EBADSTATE);
    assert_int_equal (st_db_writes (f->db), writes);
    cm_value_t *messages = s_messages (f, "sess_t");
    assert_int_equal (cm_value_len (messages), 3);
    cm_value_destroy (&messages);
}

static void
test_upkeep_purges_after_the_window (void **state)
{
    st_fixture_t *f = *state;
    char u1[ID], a1[ID], u2[ID], a2[ID];
    s_story (f, u1, a1, u2, a2);
    assert_int_equal (s_delete (f, "alice", u2, NULL, NULL), 0);
    int64_t deleted = f->now;
    cm_value_t *events = NULL;
    //  Within the window the upkeep keeps it...
    assert_int_equal (st_ops_cleanup (f->ops, deleted + 29999, &events), 0);
    cm_value_destroy (&events);
    assert_int_equal (s_audits (f, "purge"), 0);
    //  ...after it, the tombstone goes, audited.
    assert_int_equal (st_ops_cleanup (f->ops, deleted + 30000, &events), 0);
    cm_value_destroy (&events);
    assert_int_equal (s_audits (f, "purge"), 1);
    f->now = deleted + 1000; //  even a restore that claims an early time finds nothing
    assert_int_equal (s_restore (f, "alice", u2), CM_ENOTFOUND);
    MDB_txn *txn = NULL;
    assert_int_equal (st_db_read_begin (f->db, &txn), 0);
    MDB_stat stat;
    assert_int_equal (mdb_stat (txn, st_db_dbi (f->db, ST_DBI_TRASH), &stat), 0);
    assert_int_equal (stat.ms_entries, 0);
    st_db_read_end (f->db, txn);
}

static void
test_session_delete_and_restore (void **state)
{
    st_fixture_t *f = *state;
    char u1[ID], a1[ID], u2[ID], a2[ID];
    s_story (f, u1, a1, u2, a2);
    assert_int_equal (s_session_op (f, CM_MSG_SESSION_RESTORE, "alice", "sess_t"),
                      CM_ECONFLICT);
    assert_int_equal (s_session_op (f, CM_MSG_SESSION_DELETE, "bob", "sess_t"), CM_ENOTFOUND);
    assert_int_equal (s_session_op (f, CM_MSG_SESSION_DELETE, "alice", "sess_t"), 0);
    assert_string_equal (cm_map_str_or (st_event_data (f, "session_updated"), "status", ""),
                         "session_deleted");
    assert_null (s_messages (f, "sess_t"));
    cm_envelope_t *list = st_req (CM_MSG_SESSION_LIST, "alice"), *reply = NULL;
    assert_int_equal (st_read (f, list, &reply), 0);
    assert_int_equal (cm_value_len (cm_map_get (reply->payload, "sessions")), 0);
    cm_envelope_destroy (&reply);
    //  A message of a deleted session is gone with it.
    assert_int_equal (s_vote (f, a1), CM_ENOTFOUND);
    assert_int_equal (s_session_op (f, CM_MSG_SESSION_RESTORE, "bob", "sess_t"), CM_ENOTFOUND);
    //  While it can be restored, no new session takes its id (nor its undo),
    //  whoever asks.
    char u[ID], a[ID];
    assert_int_equal (st_start (f, "alice", "sess_t", "again", u, a, NULL), CM_ECONFLICT);
    assert_int_equal (st_start (f, "bob", "sess_t", "mine", u, a, NULL), CM_ECONFLICT);
    assert_null (s_messages (f, "sess_t"));
    f->now += 1000;
    assert_int_equal (s_session_op (f, CM_MSG_SESSION_RESTORE, "alice", "sess_t"), 0);
    cm_value_t *messages = s_messages (f, "sess_t");
    assert_int_equal (cm_value_len (messages), 4);
    assert_int_equal (cm_map_int (cm_arr_at (messages, 1), "version_count", 0), 2);
    cm_value_destroy (&messages);
    assert_int_equal (s_upvotes (f, a1), 1);
    assert_int_equal (s_audits (f, "session_delete"), 1);
    assert_int_equal (s_audits (f, "session_restore"), 1);
    //  After the window the id is free again.
    assert_int_equal (s_session_op (f, CM_MSG_SESSION_DELETE, "alice", "sess_t"), 0);
    f->now += 30000;
    assert_int_equal (st_start (f, "alice", "sess_t", "a new one", u, a, NULL), 0);
}

//  alice's sessions, a page of limit after cursor (NULL: the first);
//  next (CM_SESSION_CURSOR_MAX + 1) gets next_cursor or "".
static size_t
s_page (st_fixture_t *f, int64_t limit, const char *cursor, char *first, char *next)
{
    cm_envelope_t *request = st_req (CM_MSG_SESSION_LIST, "alice"), *reply = NULL;
    cm_map_set_int (request->payload, "limit", limit);
    if (cursor)
        cm_map_set_str (request->payload, "cursor", cursor);
    assert_int_equal (st_read (f, request, &reply), 0);
    const cm_value_t *sessions = cm_map_get (reply->payload, "sessions");
    strcpy (first, cm_map_str_or (cm_arr_at (sessions, 0), "session_id", ""));
    strcpy (next, cm_map_str_or (reply->payload, "next_cursor", ""));
    size_t n = cm_value_len (sessions);
    cm_envelope_destroy (&reply);
    return n;
}

static void
test_session_list_pages_with_a_cursor (void **state)
{
    st_fixture_t *f = *state;
    char u[ID], a[ID], name[32];
    for (int i = 0; i < 5; i++) {
        snprintf (name, sizeof name, "sess_%d", i);
        assert_int_equal (st_start (f, "alice", name, "hi", u, a, NULL), 0);
    }
    f->now -= 1000; //  two sessions with the same updated_at: ties by id
    assert_int_equal (st_start (f, "alice", "sess_tie", "hi", u, a, NULL), 0);
    char cursor[CM_SESSION_CURSOR_MAX + 1] = "", first[64], seen[8][64];
    size_t total = 0, pages = 0;
    do {
        size_t n = s_page (f, 2, pages ? cursor : NULL, first, cursor);
        assert_true (n >= 1 && n <= 2);
        strcpy (seen[total], first);
        total += n;
        pages++;
    } while (cursor[0] && pages < 8);
    assert_int_equal (total, 6);
    assert_int_equal (pages, 3);
    for (size_t i = 1; i < pages; i++)
        assert_string_not_equal (seen[i], seen[i - 1]);
    uint64_t writes = st_db_writes (f->db);
    cm_envelope_t *request = st_req (CM_MSG_SESSION_LIST, "alice");
    cm_map_set_str (request->payload, "cursor", "yesterday");
    assert_int_equal (st_read (f, request, NULL), CM_EINVAL);
    assert_int_equal (st_db_writes (f->db), writes);
}

static int
s_rename (st_fixture_t *f, const char *user, const char *title)
{
    cm_envelope_t *request = st_req (CM_MSG_SESSION_RENAME, user);
    cm_map_set_str (request->payload, "session_id", "sess_t");
    cm_map_set_str (request->payload, "title", title);
    return st_write (f, request, NULL);
}

static void
test_rename (void **state)
{
    st_fixture_t *f = *state;
    char u[ID], a[ID];
    s_turn (f, "sess_t", "first question", "first answer", u, a);
    uint64_t writes = st_db_writes (f->db);
    assert_int_equal (s_rename (f, "alice", "   "), CM_EINVAL);
    assert_int_equal (s_rename (f, "bob", "Mine now"), CM_ENOTFOUND);
    assert_int_equal (st_db_writes (f->db), writes);
    assert_int_equal (s_rename (f, "alice", "Trip planning"), 0);
    assert_string_equal (cm_map_str_or (st_event_data (f, "session_updated"), "status", ""),
                         "session_renamed");
    cm_envelope_t *list = st_req (CM_MSG_SESSION_LIST, "alice"), *reply = NULL;
    assert_int_equal (st_read (f, list, &reply), 0);
    assert_string_equal (
        cm_map_str_or (cm_arr_at (cm_map_get (reply->payload, "sessions"), 0), "title", ""),
        "Trip planning");
    cm_envelope_destroy (&reply);
    assert_int_equal (s_audits (f, "session_rename"), 1);
}

static int
s_export (st_fixture_t *f, const char *user, const char *format, cm_envelope_t **reply)
{
    cm_envelope_t *request = st_req (CM_MSG_SESSION_EXPORT, user);
    cm_map_set_str (request->payload, "session_id", "sess_t");
    if (format)
        cm_map_set_str (request->payload, "format", format);
    return st_read (f, request, reply);
}

static void
test_export_json_holds_every_version_markdown_the_path (void **state)
{
    st_fixture_t *f = *state;
    char u1[ID], a1[ID], u2[ID], a2[ID];
    s_story (f, u1, a1, u2, a2);
    cm_envelope_t *reply = NULL;
    assert_int_equal (s_export (f, "alice", NULL, &reply), 0);
    const cm_value_t *messages = cm_map_get (cm_map_get (reply->payload, "session"), "messages");
    assert_int_equal (cm_value_len (messages), 4);
    const cm_value_t *answer = cm_arr_at (messages, 1);
    assert_string_equal (cm_map_str_or (answer, "message_id", ""), a1);
    assert_int_equal (cm_map_int (answer, "version_index", 0), 2);
    const cm_value_t *versions = cm_map_get (answer, "versions");
    assert_int_equal (cm_value_len (versions), 2);
    assert_string_equal (cm_map_str_or (cm_arr_at (versions, 0), "content", ""), "first answer");
    assert_string_equal (cm_map_str_or (cm_arr_at (versions, 0), "version_id", ""), a1);
    assert_string_equal (cm_map_str_or (cm_arr_at (versions, 1), "content", ""), "v2");
    assert_int_equal (cm_map_int (cm_arr_at (versions, 1), "upvotes", -1), 1);
    assert_int_equal (cm_map_int (cm_arr_at (versions, 0), "upvotes", -1), 0);
    cm_envelope_destroy (&reply);

    assert_int_equal (s_export (f, "alice", "markdown", &reply), 0);
    const char *text = cm_map_str_or (reply->payload, "content", "");
    assert_non_null (strstr (text, "# first question\n"));
    assert_non_null (strstr (text, "## User\n\nfirst question\n"));
    assert_non_null (strstr (text, "## Assistant (version 2 of 2)\n\nv2\n"));
    assert_null (strstr (text, "first answer")); //  only the active path
    assert_non_null (strstr (text, "## Assistant\n\nsecond answer\n"));
    cm_envelope_destroy (&reply);

    assert_int_equal (s_export (f, "alice", "pdf", NULL), CM_EINVAL);
    assert_int_equal (s_export (f, "bob", NULL, NULL), CM_ENOTFOUND);
}

//  A store of format 4 (before the trash database) opens, gets it and
//  says the current format after; a store of the current format without it
//  is damage.
static void
test_format_4_store_upgrades (void **state)
{
    (void) state;
    char dir[] = "/tmp/st_trash_XXXXXX";
    assert_non_null (mkdtemp (dir));
    st_db_t *db = NULL;
    assert_int_equal (st_db_open (dir, 1 << 20, false, &db), 0);
    MDB_txn *txn = NULL;
    assert_int_equal (st_db_write_begin (db, NULL, &txn), 0);
    assert_int_equal (mdb_drop (txn, st_db_dbi (db, ST_DBI_TRASH), 1), 0);
    assert_int_equal (st_db_commit (txn), 0);
    st_db_destroy (&db);
    assert_int_equal (st_db_open (dir, 1 << 20, false, &db), CM_EDB);
    st_format_t format;
    char why[ST_FORMAT_WHY_MAX];
    assert_int_equal (st_format_read (dir, &format, why, sizeof why), 0);
    assert_int_equal (format.version, ST_FORMAT_VERSION);
    format.version = 4;
    assert_int_equal (st_format_write (dir, &format), 0);
    assert_int_equal (st_db_open (dir, 1 << 20, false, &db), 0);
    assert_int_equal (st_format_read (dir, &format, why, sizeof why), 0);
    assert_int_equal (format.version, ST_FORMAT_VERSION);
    assert_int_equal (st_db_write_begin (db, NULL, &txn), 0);
    assert_int_equal (st_db_put_raw (db, txn, ST_DBI_TRASH, "k", 1, "v", 1), 0);
    assert_int_equal (st_db_commit (txn), 0);
    st_db_destroy (&db);
    st_rmtree (dir);
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown (test_delete_one_message_and_restore_it, s_setup,
                                         st_fixture_teardown),
        cmocka_unit_test_setup_teardown (test_delete_following_takes_every_later_turn, s_setup,
                                         st_fixture_teardown),
        cmocka_unit_test_setup_teardown (test_restore_after_a_running_generation, s_setup,
                                         st_fixture_teardown),
        cmocka_unit_test_setup_teardown (test_refusals_change_nothing, s_setup, st_fixture_teardown),
        cmocka_unit_test_setup_teardown (test_upkeep_purges_after_the_window, s_setup,
                                         st_fixture_teardown),
        cmocka_unit_test_setup_teardown (test_session_delete_and_restore, s_setup, st_fixture_teardown),
        cmocka_unit_test_setup_teardown (test_session_list_pages_with_a_cursor, s_setup,
                                         st_fixture_teardown),
        cmocka_unit_test_setup_teardown (test_rename, s_setup, st_fixture_teardown),
        cmocka_unit_test_setup_teardown (test_export_json_holds_every_version_markdown_the_path,
                                         s_setup, st_fixture_teardown),
        cmocka_unit_test (test_format_4_store_upgrades),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
