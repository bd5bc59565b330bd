/*  test_st_versions.c: versions of a message over a temp LMDB (st_versions.h):
    adding, switching, syncing, per-version votes and keys, delete, and a
    store of format 1 upgraded at open.                                    */
#include "test_st_util.h"

#include "st_format.h"
#include "st_versions.h"

static int
s_setup (void **state)
{
    *state = st_fixture_new (1 << 20, 2);
    return 0;
}

//  A message record as the store writes it, at the messages key of seq 2.
static cm_value_t *
s_message (unsigned char *mkey, size_t *mkey_len)
{
    memcpy (mkey, "ses_1\0", 6);
    st_db_be64_put (mkey + 6, 2);
    *mkey_len = 14;
    cm_value_t *msg = cm_map_new ();
    cm_map_set_str (msg, "id", "msg_0f3c_ses_1_assistant");
    cm_map_set_str (msg, "session_id", "ses_1");
    cm_map_set_int (msg, "seq", 2);
    cm_map_set_str (msg, "role", "assistant");
    cm_map_set_str (msg, "content", "first answer");
    cm_map_set_str (msg, "model", "m1");
    cm_map_set_int (msg, "timestamp", 1000);
    cm_map_set_bool (msg, "edited", false);
    cm_map_set_bool (msg, "regenerated", false);
    return msg;
}

static cm_value_t *
s_fields (const char *content, const char *model)
{
    cm_value_t *fields = cm_map_new ();
    cm_map_set_str (fields, "content", content);
    if (model)
        cm_map_set_str (fields, "model", model);
    cm_map_set_bool (fields, "regenerated", true);
    return fields;
}

static MDB_txn *
s_begin (st_fixture_t *f)
{
    MDB_txn *txn = NULL;
    assert_int_equal (st_db_write_begin (f->db, NULL, &txn), 0);
    return txn;
}

//  The first test is the example: a message of one version gets two more,
//  the user switches back to the first, and every version keeps its own.
static void
test_add_and_activate (void **state)
{
    st_fixture_t *f = *state;
    unsigned char mkey[64];
    size_t mlen;
    cm_value_t *msg = s_message (mkey, &mlen);
    //  Written before versions: version 1 of 1, its id the message's.
    assert_int_equal (st_versions_count (msg), 1);
    assert_int_equal (st_versions_active (msg), 1);
    assert_string_equal (st_versions_active_id (msg), "msg_0f3c_ses_1_assistant");
    MDB_txn *txn = s_begin (f);
    uint32_t active, count;
    char id[CM_ID_MAX + CM_MESSAGE_ID_MAX + 1];
    assert_int_equal (st_versions_head (f->db, txn, mkey, mlen, &active, &count, id), 0);
    assert_int_equal (active, 1);
    assert_int_equal (count, 1);
    assert_string_equal (id, "");

    cm_value_t *fields = s_fields ("second answer", NULL);
    uint32_t index = 0;
    assert_int_equal (st_versions_add (f->db, txn, mkey, mlen, msg, fields, 2000, &index), 0);
    cm_value_destroy (&fields);
    assert_int_equal (index, 2);
    assert_int_equal (st_versions_count (msg), 2);
    assert_int_equal (st_versions_active (msg), 2);
    assert_string_equal (cm_map_str_or (msg, "content", ""), "second answer");
    //  A field the new version lacks is not carried over from the old one.
    assert_null (cm_map_get (msg, "model"));
    assert_true (cm_map_bool (msg, "regenerated", false));
    const char *v2 = st_versions_active_id (msg);
    assert_int_equal (strncmp (v2, "ver_", 4), 0);
    char v2_id[CM_ID_MAX + 1];
    strcpy (v2_id, v2);
    fields = s_fields ("third answer", "m3");
    assert_int_equal (st_versions_add (f->db, txn, mkey, mlen, msg, fields, 3000, &index), 0);
    cm_value_destroy (&fields);
    assert_int_equal (index, 3);
    cm_value_t *ids = st_versions_ids (msg);
    assert_int_equal (cm_value_len (ids), 3);
    assert_string_equal (cm_arr_at (ids, 0)->u.s.ptr, "msg_0f3c_ses_1_assistant");
    assert_string_equal (cm_arr_at (ids, 1)->u.s.ptr, v2_id);
    assert_string_not_equal (cm_arr_at (ids, 2)->u.s.ptr, v2_id);
    cm_value_destroy (&ids);
    assert_int_equal (st_versions_head (f->db, txn, mkey, mlen, &active, &count, id), 0);
    assert_int_equal (active, 3);
    assert_int_equal (count, 3);
    assert_string_equal (id, st_versions_active_id (msg));

    //  Back to version 1: its fields, as they were, model included.
    bool changed = false;
    assert_int_equal (st_versions_activate (f->db, txn, mkey, mlen, msg, 1, &changed), 0);
    assert_true (changed);
    assert_string_equal (cm_map_str_or (msg, "content", ""), "first answer");
    assert_string_equal (cm_map_str_or (msg, "model", ""), "m1");
    assert_false (cm_map_bool (msg, "regenerated", true));
    assert_string_equal (st_versions_active_id (msg), "msg_0f3c_ses_1_assistant");
    assert_int_equal (st_versions_head (f->db, txn, mkey, mlen, &active, &count, id), 0);
    assert_int_equal (active, 1);
    assert_int_equal (count, 3);
    assert_string_equal (id, "msg_0f3c_ses_1_assistant");
    //  The active one again: nothing written, nothing changed.
    uint64_t writes = st_db_writes (f->db);
    assert_int_equal (st_versions_activate (f->db, txn, mkey, mlen, msg, 1, &changed), 0);
    assert_false (changed);
    assert_int_equal (st_db_writes (f->db), writes);
    //  Out of range: CM_ENOVERSION, nothing written.
    assert_int_equal (st_versions_activate (f->db, txn, mkey, mlen, msg, 4, &changed),
                      CM_ENOVERSION);
    assert_int_equal (st_versions_activate (f->db, txn, mkey, mlen, msg, 0, &changed),
                      CM_ENOVERSION);
    assert_int_equal (st_db_writes (f->db), writes);
    assert_string_equal (cm_map_str_or (msg, "content", ""), "first answer");
    //  Each version as a record.
    cm_value_t *record = NULL;
    assert_int_equal (st_versions_get (f->db, txn, mkey, mlen, msg, 2, &record), 0);
    assert_string_equal (cm_map_str_or (record, "content", ""), "second answer");
    assert_string_equal (cm_map_str_or (record, "id", ""), v2_id);
    assert_int_equal (cm_map_int (record, "created_at", 0), 2000);
    cm_value_destroy (&record);
    assert_int_equal (st_versions_activate (f->db, txn, mkey, mlen, msg, 3, NULL), 0);
    assert_string_equal (cm_map_str_or (msg, "content", ""), "third answer");
    assert_string_equal (cm_map_str_or (msg, "model", ""), "m3");
    assert_int_equal (st_versions_get (f->db, txn, mkey, mlen, msg, 9, &record), CM_ENOVERSION);
    st_db_abort (txn);
    cm_value_destroy (&msg);
}

//  An edit of the active version reaches its record, and only its record.
static void
test_sync_after_edit (void **state)
{
    st_fixture_t *f = *state;
    unsigned char mkey[64];
    size_t mlen;
    cm_value_t *msg = s_message (mkey, &mlen);
    MDB_txn *txn = s_begin (f);
    //  One version: the message is its record, nothing to write.
    uint64_t writes = st_db_writes (f->db);
    assert_int_equal (st_versions_sync (f->db, txn, mkey, mlen, msg, 1500), 0);
    assert_int_equal (st_db_writes (f->db), writes);
    cm_value_t *fields = s_fields ("second answer", NULL);
    assert_int_equal (st_versions_add (f->db, txn, mkey, mlen, msg, fields, 2000, NULL), 0);
    cm_value_destroy (&fields);
    cm_map_set_str (msg, "content", "second answer, edited");
    cm_map_set_bool (msg, "edited", true);
    assert_int_equal (st_versions_sync (f->db, txn, mkey, mlen, msg, 2500), 0);
    assert_int_equal (st_versions_activate (f->db, txn, mkey, mlen, msg, 1, NULL), 0);
    assert_string_equal (cm_map_str_or (msg, "content", ""), "first answer");
    assert_false (cm_map_bool (msg, "edited", true));
    assert_int_equal (st_versions_activate (f->db, txn, mkey, mlen, msg, 2, NULL), 0);
    assert_string_equal (cm_map_str_or (msg, "content", ""), "second answer, edited");
    assert_true (cm_map_bool (msg, "edited", false));
    cm_value_t *record = NULL;
    assert_int_equal (st_versions_get (f->db, txn, mkey, mlen, msg, 2, &record), 0);
    assert_int_equal (cm_map_int (record, "created_at", 0), 2000); //  kept
    cm_value_destroy (&record);
    st_db_abort (txn);
    cm_value_destroy (&msg);
}

//  Votes: version 1 keeps the messages key (and the counts of a message
//  written before the votes DBI); the others count from zero on their own.
static void
test_votes_per_version (void **state)
{
    st_fixture_t *f = *state;
    unsigned char mkey[64], key[64];
    size_t mlen;
    cm_value_t *msg = s_message (mkey, &mlen);
    cm_map_set_int (msg, "upvotes", 4); //  an old message's own counts
    MDB_txn *txn = s_begin (f);
    assert_int_equal (st_db_put (f->db, txn, ST_DBI_MESSAGES, mkey, mlen, msg), 0);
    int64_t ups = -1, downs = -1;
    assert_int_equal (st_versions_votes_get (f->db, txn, mkey, mlen, 1, NULL, &ups, &downs), 0);
    assert_int_equal (ups, 4);
    assert_int_equal (downs, 0);
    assert_int_equal (st_versions_votes_get (f->db, txn, mkey, mlen, 2, NULL, &ups, &downs), 0);
    assert_int_equal (ups + downs, 0);
    assert_int_equal (st_versions_votes_put (f->db, txn, mkey, mlen, 2, 1, 7), 0);
    assert_int_equal (st_versions_votes_put (f->db, txn, mkey, mlen, 1, 5, 0), 0);
    assert_int_equal (st_versions_votes_get (f->db, txn, mkey, mlen, 2, msg, &ups, &downs), 0);
    assert_int_equal (ups, 1);
    assert_int_equal (downs, 7);
    assert_int_equal (st_versions_votes_get (f->db, txn, mkey, mlen, 1, msg, &ups, &downs), 0);
    assert_int_equal (ups, 5);
    //  The layout: version 1 under the messages key itself.
    assert_int_equal (st_versions_votes_key (key, mkey, mlen, 1), mlen);
    assert_memory_equal (key, mkey, mlen);
    assert_int_equal (st_versions_votes_key (key, mkey, mlen, 2), mlen + 4);
    assert_memory_equal (key + mlen, "\0\0\0\2", 4);
    char fkey[128];
    assert_int_equal (st_versions_feedback_key (fkey, "msg_a", "bob", 1), 9);
    assert_memory_equal (fkey, "msg_a\0bob", 9);
    assert_int_equal (st_versions_feedback_key (fkey, "msg_a", "bob", 3), 14);
    assert_memory_equal (fkey, "msg_a\0bob\0\0\0\0\3", 14);
    st_db_abort (txn);
    cm_value_destroy (&msg);
}

//  Delete removes every version record, the head and the later versions'
//  votes, and nothing of the message next to it.
static void
test_delete (void **state)
{
    st_fixture_t *f = *state;
    unsigned char mkey[64], next[64];
    size_t mlen;
    cm_value_t *msg = s_message (mkey, &mlen);
    memcpy (next, mkey, mlen);
    st_db_be64_put (next + 6, 3);
    MDB_txn *txn = s_begin (f);
    for (int i = 0; i < 2; i++) {
        cm_value_t *fields = s_fields ("again", NULL);
        assert_int_equal (st_versions_add (f->db, txn, mkey, mlen, msg, fields, 2000, NULL), 0);
        cm_value_destroy (&fields);
    }
    assert_int_equal (st_versions_votes_put (f->db, txn, mkey, mlen, 1, 1, 0), 0);
    assert_int_equal (st_versions_votes_put (f->db, txn, mkey, mlen, 3, 2, 0), 0);
    assert_int_equal (st_versions_votes_put (f->db, txn, next, mlen, 2, 9, 0), 0);
    assert_int_equal (st_versions_delete (f->db, txn, mkey, mlen), 0);
    uint32_t active, count;
    char id[CM_ID_MAX + CM_MESSAGE_ID_MAX + 1];
    assert_int_equal (st_versions_head (f->db, txn, mkey, mlen, &active, &count, id), 0);
    assert_int_equal (count, 1);
    unsigned char key[64];
    cm_value_t *record = NULL;
    for (uint32_t n = 1; n <= 3; n++)
        assert_int_equal (st_db_get (f->db, txn, ST_DBI_VERSIONS, key,
                                     st_versions_key (key, mkey, mlen, n), &record),
                          CM_ENOTFOUND);
    const void *data;
    size_t size;
    assert_int_equal (st_db_get_raw (f->db, txn, ST_DBI_VOTES, key,
                                     st_versions_votes_key (key, mkey, mlen, 3), &data, &size),
                      CM_ENOTFOUND);
    //  Version 1's votes are the message's own (its delete removes them).
    assert_int_equal (st_db_get_raw (f->db, txn, ST_DBI_VOTES, mkey, mlen, &data, &size), 0);
    int64_t ups, downs;
    assert_int_equal (st_versions_votes_get (f->db, txn, next, mlen, 2, NULL, &ups, &downs), 0);
    assert_int_equal (ups, 9);
    st_db_abort (txn);
    cm_value_destroy (&msg);
}

//  The last version a message may have; then CM_EBADSTATE, nothing written.
static void
test_version_limit (void **state)
{
    st_fixture_t *f = *state;
    unsigned char mkey[64];
    size_t mlen;
    cm_value_t *msg = s_message (mkey, &mlen);
    MDB_txn *txn = s_begin (f);
    cm_value_t *fields = s_fields ("again", NULL);
    for (int i = 1; i < CM_VERSIONS_MAX; i++)
        assert_int_equal (st_versions_add (f->db, txn, mkey, mlen, msg, fields, 2000, NULL), 0);
    assert_int_equal (st_versions_count (msg), CM_VERSIONS_MAX);
    uint64_t writes = st_db_writes (f->db);
    assert_int_equal (st_versions_add (f->db, txn, mkey, mlen, msg, fields, 2000, NULL),
                      CM_EBADSTATE);
    assert_int_equal (st_db_writes (f->db), writes);
    cm_value_destroy (&fields);
    assert_int_equal (st_versions_delete (f->db, txn, mkey, mlen), 0);
    st_db_abort (txn);
    cm_value_destroy (&msg);
}

//  A store made by an older build (format 1, no versions database) opens,
//  gets the database and says the current format after; a store of a
//  later format without it is damage and refused.
static void
test_format_1_store_upgrades (void **state)
{
    (void) state;
    char dir[] = "/tmp/st_versions_XXXXXX";
    st_db_t *db = st_format_upgrade (dir, ST_DBI_VERSIONS, 1);
    st_db_destroy (&db);
    st_format_t format;
    char why[ST_FORMAT_WHY_MAX];
    assert_int_equal (st_format_read (dir, &format, why, sizeof why), 0);
    //  A format this build does not know is refused, naming both.
    format.version = ST_FORMAT_VERSION + 1;
    assert_int_equal (st_format_write (dir, &format), 0);
    assert_int_equal (st_format_read (dir, &format, why, sizeof why), CM_EPROTO);
    char range[32];
    snprintf (range, sizeof range, "formats 1 to %d", ST_FORMAT_VERSION);
    assert_non_null (strstr (why, range));
    st_rmtree (dir);
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown (test_add_and_activate, s_setup, st_fixture_teardown),
        cmocka_unit_test_setup_teardown (test_sync_after_edit, s_setup, st_fixture_teardown),
        cmocka_unit_test_setup_teardown (test_votes_per_version, s_setup, st_fixture_teardown),
        cmocka_unit_test_setup_teardown (test_delete, s_setup, st_fixture_teardown),
        cmocka_unit_test_setup_teardown (test_version_limit, s_setup, st_fixture_teardown),
        cmocka_unit_test (test_format_1_store_upgrades),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
