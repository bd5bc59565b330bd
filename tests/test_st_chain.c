/*  test_st_chain: the audit log's hash chain (st_chain.h). Entries are
    written by real requests; the tests then edit the LMDB behind the
    store's back with the mdb API (with a valid checksum envelope, as
    whoever knows the format would) and check the walk names the first
    broken link: a changed entry, a removed first or last one, a changed
    head. Expiry keeps the chain sound; a format-2 store upgrades.     */
#include "test_st_util.h"

#include "st_chain.h"
#include "st_format.h"
#include "st_key.h"
#include "st_record.h"
#include "st_verify.h"

static int
s_setup (void **state)
{
    *state = st_fixture_new (64u << 20, 3);
    return 0;
}

//  Five entries, one second apart (three session starts, two votes).
static void
s_five (st_fixture_t *f)
{
    char um[400], am[400];
    assert_int_equal (st_start (f, "alice", "sa", "one", um, am, NULL), 0);
    f->now += 1000;
    assert_int_equal (st_start (f, "bob", "sb", "two", um, NULL, NULL), 0);
    f->now += 1000;
    cm_envelope_t *vote = st_req (CM_MSG_FEEDBACK_PUT, "alice");
    cm_map_set_str (vote->payload, "message_id", am);
    cm_map_set_str (vote->payload, "feedback_type", "upvote");
    assert_int_equal (st_write (f, vote, NULL), 0);
    f->now += 1000;
    assert_int_equal (st_start (f, "carol", "sc", "three", um, NULL, NULL), 0);
    f->now += 1000;
    vote = st_req (CM_MSG_FEEDBACK_PUT, "alice");
    cm_map_set_str (vote->payload, "message_id", am);
    cm_map_set_str (vote->payload, "feedback_type", "downvote");
    assert_int_equal (st_write (f, vote, NULL), 0);
}

static st_chain_report_t
s_verify (st_fixture_t *f)
{
    MDB_txn *txn;
    assert_int_equal (st_db_read_begin (f->db, &txn), 0);
    st_chain_report_t report;
    assert_int_equal (st_chain_verify (txn, st_db_dbi (f->db, ST_DBI_AUDIT),
                                       st_db_dbi (f->db, ST_DBI_AUDIT_CHAIN), &report),
                      0);
    st_db_read_end (f->db, txn);
    return report;
}

//  The key and decoded record of the n-th (1 = oldest) audit entry.
static cm_value_t *
s_entry (st_fixture_t *f, int n, st_key_t *key)
{
    MDB_txn *txn;
    assert_int_equal (st_db_read_begin (f->db, &txn), 0);
    MDB_cursor *cursor;
    assert_int_equal (mdb_cursor_open (txn, st_db_dbi (f->db, ST_DBI_AUDIT), &cursor), 0);
    MDB_val k, v;
    int rc = mdb_cursor_get (cursor, &k, &v, MDB_FIRST);
    for (int i = 1; i < n && rc == 0; i++)
        rc = mdb_cursor_get (cursor, &k, &v, MDB_NEXT);
    assert_int_equal (rc, 0);
    const void *payload;
    size_t size;
    assert_int_equal (st_record_open (k.mv_data, k.mv_size, v.mv_data, v.mv_size, &payload, &size),
                      ST_RECORD_OK);
    cm_value_t *entry = NULL;
    assert_int_equal (cm_value_decode (payload, size, &entry), 0);
    assert_int_equal (st_key_set (key, k.mv_data, k.mv_size), 0);
    mdb_cursor_close (cursor);
    st_db_read_end (f->db, txn);
    return entry;
}

//  Edits db which with the mdb API, not through the store: puts data
//  under key, sealed in the checksum envelope as the store seals (data
//  NULL: deletes key).
static void
s_raw_put (st_fixture_t *f, st_dbi_t which, const st_key_t *key, const void *data, size_t size)
{
    MDB_txn *txn;
    assert_int_equal (st_db_write_begin (f->db, NULL, &txn), 0);
    MDB_val k = {key->len, (void *) key->bytes};
    if (!data)
        assert_int_equal (mdb_del (txn, st_db_dbi (f->db, which), &k, NULL), 0);
    else {
        MDB_val v = {ST_RECORD_HEADER + size, NULL};
        assert_int_equal (mdb_put (txn, st_db_dbi (f->db, which), &k, &v, MDB_RESERVE), 0);
        st_record_seal (v.mv_data, key->bytes, key->len, data, size);
        memcpy ((unsigned char *) v.mv_data + ST_RECORD_HEADER, data, size);
    }
    assert_int_equal (mdb_txn_commit (txn), 0);
}

static void
test_sound_then_an_edit_breaks_the_next_link (void **state)
{
    st_fixture_t *f = *state;
    s_five (f);
    st_chain_report_t report = s_verify (f);
    assert_true (report.sound);
    assert_int_equal (report.entries, 5);
    assert_int_equal (report.unchained, 0);
    //  Entry 3 (alice's first vote) now says bob voted.
    st_key_t key;
    cm_value_t *third = s_entry (f, 3, &key);
    assert_string_equal (cm_map_str_or (third, "action_type", ""), "feedback");
    cm_map_set_str (third, "user_id", "bob");
    char *bytes = NULL;
    size_t size = 0;
    assert_int_equal (cm_value_encode (third, &bytes, &size), 0);
    s_raw_put (f, ST_DBI_AUDIT, &key, bytes, size);
    free (bytes);
    //  The checksum is fine (whoever edited knew the envelope)...
    st_verify_counts_t counts = {0};
    MDB_txn *txn;
    assert_int_equal (st_db_read_begin (f->db, &txn), 0);
    assert_int_equal (st_verify_txn (txn, NULL, &counts), 0);
    st_db_read_end (f->db, txn);
    //  ...the chain is not: the link after the edited entry breaks.
    report = s_verify (f);
    assert_false (report.sound);
    assert_int_equal (report.index, 4);
    st_key_t fourth_key;
    cm_value_t *fourth = s_entry (f, 4, &fourth_key);
    assert_string_equal (report.id, cm_map_str_or (fourth, "id", ""));
    assert_string_equal (report.previous_id, cm_map_str_or (third, "id", ""));
    assert_non_null (strstr (report.why, "entry before it"));
    cm_value_destroy (&fourth);
    cm_value_destroy (&third);
}

//  Removing the newest entry, or the oldest, shows; so does a head that
//  was rewritten.
static void
test_removed_entries_show (void **state)
{
    st_fixture_t *f = *state;
    s_five (f);
    st_key_t last_key, first_key;
    cm_value_t *last = s_entry (f, 5, &last_key);
    cm_value_t *first = s_entry (f, 1, &first_key);
    cm_value_t *fourth = s_entry (f, 4, &(st_key_t){0});
    s_raw_put (f, ST_DBI_AUDIT, &last_key, NULL, 0);
    st_chain_report_t report = s_verify (f);
    assert_false (report.sound);
    assert_int_equal (report.index, 5);
    assert_string_equal (report.previous_id, cm_map_str_or (fourth, "id", ""));
    assert_non_null (strstr (report.why, "newest entries"));
    s_raw_put (f, ST_DBI_AUDIT, &first_key, NULL, 0);
    report = s_verify (f);
    assert_false (report.sound);
    assert_int_equal (report.index, 1);
    assert_non_null (strstr (report.why, "anchor"));
    cm_value_destroy (&fourth);
    cm_value_destroy (&first);
    cm_value_destroy (&last);
}

static void
test_a_rewritten_head_shows (void **state)
{
    st_fixture_t *f = *state;
    s_five (f);
    st_key_t head_key;
    assert_int_equal (st_key_set (&head_key, ST_CHAIN_HEAD_KEY, strlen (ST_CHAIN_HEAD_KEY)), 0);
    st_chain_head_t head = {.count = 4};
    unsigned char bytes[ST_CHAIN_HEAD_BYTES];
    st_chain_head_write (&head, bytes);
    s_raw_put (f, ST_DBI_AUDIT_CHAIN, &head_key, bytes, sizeof bytes);
    st_chain_report_t report = s_verify (f);
    assert_false (report.sound);
    assert_int_equal (report.index, 6);
    s_raw_put (f, ST_DBI_AUDIT_CHAIN, &head_key, bytes, 10);
    report = s_verify (f);
    assert_false (report.sound);
    assert_non_null (strstr (report.why, "head record is damaged"));
}

//  Upkeep drops the old entries and the chain stays sound (the anchor
//  moves); new entries go on linking.
static void
test_expiry_keeps_the_chain (void **state)
{
    st_fixture_t *f = *state;
    s_five (f);
    int64_t later = f->now + 7LL * 86400 * 1000 - 1500; //  entries 1-3 are past retention
    cm_value_t *events = NULL;
    assert_int_equal (st_ops_cleanup (f->ops, later, &events), 0);
    cm_value_destroy (&events);
    st_chain_report_t report = s_verify (f);
    assert_true (report.sound);
    assert_int_equal (report.entries, 2);
    f->now = later;
    assert_int_equal (st_start (f, "dave", "sd", "four", NULL, NULL, NULL), 0);
    report = s_verify (f);
    assert_true (report.sound);
    assert_int_equal (report.entries, 3);
}

//  A clock that goes back still appends: the key sorts after the newest.
static void
test_clock_going_back (void **state)
{
    st_fixture_t *f = *state;
    s_five (f);
    f->now -= 60000;
    assert_int_equal (st_start (f, "erin", "se", "back", NULL, NULL, NULL), 0);
    st_chain_report_t report = s_verify (f);
    assert_true (report.sound);
    assert_int_equal (report.entries, 6);
    st_key_t key;
    cm_value_t *newest = s_entry (f, 6, &key);
    assert_string_equal (cm_map_str_or (newest, "user_id", ""), "erin");
    cm_value_destroy (&newest);
}

//  `chatmesh-store --verify-audit`'s function on the closed store: sound,
//  then broken after an edit of the file through a fresh environment.
static void
test_verify_path (void **state)
{
    st_fixture_t *f = *state;
    s_five (f);
    st_key_t key;
    cm_value_t *second = s_entry (f, 2, &key);
    st_ops_destroy (&f->ops);
    st_db_destroy (&f->db);
    char out[1024];
    FILE *stream = fmemopen (out, sizeof out, "w");
    st_chain_report_t report;
    assert_int_equal (st_chain_verify_path (f->dir, stream, &report), 0);
    fclose (stream);
    assert_non_null (strstr (out, "is sound: 5 chained entries"));
    //  The store is closed: edit data.mdb with an environment of our own.
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi dbi;
    assert_int_equal (mdb_env_create (&env), 0);
    assert_int_equal (mdb_env_set_maxdbs (env, ST_DBI_COUNT + 2), 0);
    assert_int_equal (mdb_env_open (env, f->dir, 0, 0600), 0);
    assert_int_equal (mdb_txn_begin (env, NULL, 0, &txn), 0);
    assert_int_equal (mdb_dbi_open (txn, "audit", 0, &dbi), 0);
    cm_map_set_str (second, "client_ip", "10.0.0.1");
    char *bytes = NULL;
    size_t size = 0;
    assert_int_equal (cm_value_encode (second, &bytes, &size), 0);
    MDB_val k = {key.len, key.bytes}, v = {ST_RECORD_HEADER + size, NULL};
    assert_int_equal (mdb_put (txn, dbi, &k, &v, MDB_RESERVE), 0);
    st_record_seal (v.mv_data, key.bytes, key.len, bytes, size);
    memcpy ((unsigned char *) v.mv_data + ST_RECORD_HEADER, bytes, size);
    assert_int_equal (mdb_txn_commit (txn), 0);
    mdb_env_close (env);
    free (bytes);
    stream = fmemopen (out, sizeof out, "w");
    assert_int_equal (st_chain_verify_path (f->dir, stream, &report), CM_ECORRUPT);
    fclose (stream);
    assert_non_null (strstr (out, "is broken at entry 3"));
    assert_non_null (strstr (out, cm_map_str_or (second, "id", "?")));
    stream = fmemopen (out, sizeof out, "w");
    assert_int_equal (st_chain_verify_path ("/nonexistent/store", stream, &report), CM_EDB);
    fclose (stream);
    assert_non_null (strstr (out, "cannot verify"));
    cm_value_destroy (&second);
    //  The fixture's teardown expects a store to close.
    assert_int_equal (st_db_open (f->dir, 64u << 20, false, &f->db), 0);
    st_ops_config_t config = {.lease_ms = 10000, .max_attempts = 3,
                              .retention_ms = 7LL * 86400 * 1000, .worker_live_ms = 30000};
    f->ops = st_ops_new (f->db, &config);
}

//  A store of format 2 (no audit_chain, no counters, entries without
//  links) opens as format 3: its old entries count as unchained, the new
//  ones chain after them.
static void
test_format_2_store_upgrades (void **state)
{
    st_fixture_t *f = *state;
    s_five (f);
    MDB_txn *txn;
    assert_int_equal (st_db_write_begin (f->db, NULL, &txn), 0);
    //  Strip the links, as format 2 wrote them.
    MDB_cursor *cursor;
    assert_int_equal (mdb_cursor_open (txn, st_db_dbi (f->db, ST_DBI_AUDIT), &cursor), 0);
    cm_value_t *rows = cm_arr_new ();
    MDB_val k, v;
    for (int rc = mdb_cursor_get (cursor, &k, &v, MDB_FIRST); rc == 0;
         rc = mdb_cursor_get (cursor, &k, &v, MDB_NEXT)) {
        cm_value_t *row = cm_map_new ();
        cm_map_set (row, "k", cm_bin_new (k.mv_data, k.mv_size));
        cm_map_set (row, "v", cm_bin_new (v.mv_data, v.mv_size));
        cm_arr_push (rows, row);
    }
    mdb_cursor_close (cursor);
    assert_int_equal (mdb_drop (txn, st_db_dbi (f->db, ST_DBI_AUDIT_CHAIN), 1), 0);
    assert_int_equal (mdb_drop (txn, st_db_dbi (f->db, ST_DBI_COUNTERS), 1), 0);
    assert_int_equal (st_db_commit (txn), 0);
    for (size_t i = 0; i < cm_value_len (rows); i++) {
        const cm_value_t *rk = cm_map_get (cm_arr_at (rows, i), "k");
        const cm_value_t *rv = cm_map_get (cm_arr_at (rows, i), "v");
        const void *payload;
        size_t size;
        assert_int_equal (st_record_open (rk->u.s.ptr, rk->u.s.len, rv->u.s.ptr, rv->u.s.len,
                                          &payload, &size),
                          ST_RECORD_OK);
        cm_value_t *entry = NULL;
        assert_int_equal (cm_value_decode (payload, size, &entry), 0);
        cm_value_t *link = cm_map_take (entry, "prev_hash");
        cm_value_destroy (&link);
        char *bytes = NULL;
        assert_int_equal (cm_value_encode (entry, &bytes, &size), 0);
        st_key_t key;
        assert_int_equal (st_key_set (&key, rk->u.s.ptr, rk->u.s.len), 0);
        //  The audit db still exists; audit_chain was dropped.
        MDB_txn *w;
        assert_int_equal (st_db_write_begin (f->db, NULL, &w), 0);
        MDB_val wk = {key.len, key.bytes}, wv = {ST_RECORD_HEADER + size, NULL};
        assert_int_equal (mdb_put (w, st_db_dbi (f->db, ST_DBI_AUDIT), &wk, &wv, MDB_RESERVE), 0);
        st_record_seal (wv.mv_data, key.bytes, key.len, bytes, size);
        memcpy ((unsigned char *) wv.mv_data + ST_RECORD_HEADER, bytes, size);
        assert_int_equal (mdb_txn_commit (w), 0);
        free (bytes);
        cm_value_destroy (&entry);
    }
    cm_value_destroy (&rows);
    st_ops_destroy (&f->ops);
    st_db_destroy (&f->db);
    st_format_t format;
    char why[ST_FORMAT_WHY_MAX];
    assert_int_equal (st_format_read (f->dir, &format, why, sizeof why), 0);
    //  This format without its databases is damage...
    assert_int_equal (st_db_open (f->dir, 64u << 20, false, &f->db), CM_EDB);
    //  ...format 2 without them is an upgrade.
    format.version = 2;
    assert_int_equal (st_format_write (f->dir, &format), 0);
    assert_int_equal (st_db_open (f->dir, 64u << 20, false, &f->db), 0);
    assert_int_equal (st_format_read (f->dir, &format, why, sizeof why), 0);
    assert_int_equal (format.version, ST_FORMAT_VERSION);
    st_ops_config_t config = {.lease_ms = 10000, .max_attempts = 3,
                              .retention_ms = 7LL * 86400 * 1000, .worker_live_ms = 30000};
    f->ops = st_ops_new (f->db, &config);
    st_chain_report_t report = s_verify (f);
    assert_true (report.sound);
    assert_int_equal (report.unchained, 5);
    assert_int_equal (report.entries, 0);
    f->now += 1000;
    assert_int_equal (st_start (f, "frank", "sf", "new", NULL, NULL, NULL), 0);
    report = s_verify (f);
    assert_true (report.sound);
    assert_int_equal (report.unchained, 5);
    assert_int_equal (report.entries, 1);
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown (test_sound_then_an_edit_breaks_the_next_link, s_setup,
                                         st_fixture_teardown),
        cmocka_unit_test_setup_teardown (test_removed_entries_show, s_setup, st_fixture_teardown),
        cmocka_unit_test_setup_teardown (test_a_rewritten_head_shows, s_setup, st_fixture_teardown),
        cmocka_unit_test_setup_teardown (test_expiry_keeps_the_chain, s_setup, st_fixture_teardown),
        cmocka_unit_test_setup_teardown (test_clock_going_back, s_setup, st_fixture_teardown),
        cmocka_unit_test_setup_teardown (test_verify_path, s_setup, st_fixture_teardown),
        cmocka_unit_test_setup_teardown (test_format_2_store_upgrades, s_setup, st_fixture_teardown),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
