/*  test_st_record.c: CRC32C, the checksum envelope of every stored value,
    the checks on every read (st_db_get, st_db_get_raw, st_db_cursor_get,
    a request through st_ops), legacy values, st_verify and the verified
    backup.

    Damage is made the way a flipped bit would make it: the stored bytes
    are rewritten with mdb_put behind st_db's back, so no checksum follows
    them.                                                                  */
#include "test_st_util.h"

#include "st_crc.h"
#include "st_record.h"
#include "st_verify.h"

#include <sys/stat.h>

static void
test_crc32c (void **state)
{
    (void) state;
    //  The check value of CRC-32C (RFC 3720, B.4).
    assert_int_equal (st_crc32c (0, "123456789", 9), 0xE3069283u);
    assert_int_equal (st_crc32c_sw (0, "123456789", 9), 0xE3069283u);
    unsigned char zeros[32] = {0};
    assert_int_equal (st_crc32c (0, zeros, 32), 0x8A9136AAu);
    //  Both paths agree on every length and alignment, and pieces chain.
    unsigned char data[300];
    for (size_t i = 0; i < sizeof data; i++)
        data[i] = (unsigned char) (i * 131 + 7);
    for (size_t offset = 0; offset < 8; offset++)
        for (size_t len = 0; len + offset <= sizeof data; len += 13) {
            uint32_t whole = st_crc32c (0, data + offset, len);
            assert_int_equal (whole, st_crc32c_sw (0, data + offset, len));
            size_t half = len / 2;
            assert_int_equal (whole, st_crc32c (st_crc32c (0, data + offset, half),
                                                data + offset + half, len - half));
        }
}

static void
test_envelope (void **state)
{
    (void) state;
    const char key[] = "ses_1\0\0\0\0\0\0\0\0\x05";
    const char payload[] = "\x81\xa4text\xa5hello";
    size_t klen = sizeof key - 1, plen = sizeof payload - 1;
    unsigned char value[64];
    st_record_seal (value, key, klen, payload, plen);
    memcpy (value + ST_RECORD_HEADER, payload, plen);
    size_t vlen = ST_RECORD_HEADER + plen;
    const void *out;
    size_t out_len;
    assert_int_equal (st_record_open (key, klen, value, vlen, &out, &out_len), ST_RECORD_OK);
    assert_int_equal (out_len, plen);
    assert_memory_equal (out, payload, plen);
    //  Any single flipped byte after the magic is caught.
    for (size_t i = 1; i < vlen; i++) {
        value[i] ^= 0x10;
        assert_int_equal (st_record_open (key, klen, value, vlen, &out, &out_len),
                          ST_RECORD_BAD_CRC);
        value[i] ^= 0x10;
    }
    //  The same value under another key, or cut, is not sound either.
    assert_int_equal (st_record_open ("ses_2", 5, value, vlen, &out, &out_len),
                      ST_RECORD_BAD_CRC);
    assert_int_equal (st_record_open (key, klen, value, vlen - 1, &out, &out_len),
                      ST_RECORD_BAD_CRC);
    assert_int_equal (st_record_open (key, klen, value, 3, &out, &out_len), ST_RECORD_SHORT);
    //  Values from before the envelope: served as they are.
    assert_int_equal (st_record_open (key, klen, payload, plen, &out, &out_len),
                      ST_RECORD_LEGACY);
    assert_ptr_equal (out, payload);
    assert_int_equal (st_record_open (key, klen, "", 0, &out, &out_len), ST_RECORD_LEGACY);
    assert_int_equal (out_len, 0);
    assert_string_equal (st_record_state_text (ST_RECORD_BAD_CRC), "checksum mismatch");
}

static void
test_key_text (void **state)
{
    (void) state;
    char text[ST_DB_KEY_TEXT_MAX];
    assert_string_equal (st_record_key_text ("ses_1\0\x05\\", 8, text, sizeof text),
                         "ses_1\\x00\\x05\\\\");
    char small[12];
    assert_string_equal (st_record_key_text ("abcdefghijklmnop", 16, small, sizeof small),
                         "abcdefgh...");
    assert_string_equal (st_record_key_text ("abcdefghijk", 11, small, sizeof small),
                         "abcdefghijk");
    assert_string_equal (st_record_key_text ("\x01\x02\x03", 3, small, sizeof small),
                         "\\x01\\x02...");
}

//  The raw stored bytes under key (envelope included), copied to out.
static size_t
s_stored (st_fixture_t *f, st_dbi_t which, const void *key, size_t key_len, unsigned char *out,
          size_t cap)
{
    MDB_txn *txn;
    assert_int_equal (st_db_read_begin (f->db, &txn), 0);
    MDB_val k = {key_len, (void *) key}, v;
    assert_int_equal (mdb_get (txn, st_db_dbi (f->db, which), &k, &v), 0);
    assert_true (v.mv_size <= cap);
    memcpy (out, v.mv_data, v.mv_size);
    st_db_read_end (f->db, txn);
    return v.mv_size;
}

//  Stores bytes under key as they are, the way damage or an old store
//  would leave them.
static void
s_store_bytes (st_fixture_t *f, st_dbi_t which, const void *key, size_t key_len,
               const void *bytes, size_t size)
{
    MDB_txn *txn;
    assert_int_equal (st_db_write_begin (f->db, NULL, &txn), 0);
    MDB_val k = {key_len, (void *) key}, v = {size, (void *) bytes};
    assert_int_equal (mdb_put (txn, st_db_dbi (f->db, which), &k, &v, 0), 0);
    assert_int_equal (st_db_commit (txn), 0);
}

static void
test_reads_check (void **state)
{
    (void) state;
    st_fixture_t *f = st_fixture_new (8 << 20, 3);
    cm_value_t *record = cm_map_new ();
    cm_map_set_str (record, "text", "the answer is 42");
    MDB_txn *txn;
    assert_int_equal (st_db_write_begin (f->db, NULL, &txn), 0);
    assert_int_equal (st_db_put (f->db, txn, ST_DBI_TASKS, "tsk_1", 5, record), 0);
    assert_int_equal (st_db_put_raw (f->db, txn, ST_DBI_ACTIVE, "msg_1", 5, "tsk_1", 5), 0);
    assert_int_equal (st_db_commit (txn), 0);
    cm_value_destroy (&record);

    unsigned char bytes[256];
    size_t size = s_stored (f, ST_DBI_TASKS, "tsk_1", 5, bytes, sizeof bytes);
    assert_int_equal (bytes[0], ST_RECORD_MAGIC);
    //  Sound: served.
    assert_int_equal (st_db_read_begin (f->db, &txn), 0);
    assert_int_equal (st_db_get (f->db, txn, ST_DBI_TASKS, "tsk_1", 5, &record), 0);
    assert_string_equal (cm_map_str (record, "text"), "the answer is 42");
    cm_value_destroy (&record);
    st_db_read_end (f->db, txn);

    //  One byte of the text flipped ("42" -> "43"): refused on every path.
    unsigned char *hit = memmem (bytes, size, "42", 2);
    assert_non_null (hit);
    hit[1] = '3';
    s_store_bytes (f, ST_DBI_TASKS, "tsk_1", 5, bytes, size);
    assert_int_equal (st_db_read_begin (f->db, &txn), 0);
    assert_int_equal (st_db_get (f->db, txn, ST_DBI_TASKS, "tsk_1", 5, &record), CM_ECORRUPT);
    assert_null (record);
    const void *data = NULL;
    size_t data_len = 0;
    assert_int_equal (st_db_get_raw (f->db, txn, ST_DBI_TASKS, "tsk_1", 5, &data, &data_len),
                      CM_ECORRUPT);
    assert_null (data);
    MDB_cursor *cursor;
    assert_int_equal (mdb_cursor_open (txn, st_db_dbi (f->db, ST_DBI_TASKS), &cursor), 0);
    MDB_val k, v;
    assert_int_equal (st_db_cursor_get (cursor, ST_DBI_TASKS, &k, &v, MDB_FIRST), CM_ECORRUPT);
    mdb_cursor_close (cursor);
    //  The raw index value is checked too.
    assert_int_equal (st_db_get_raw (f->db, txn, ST_DBI_ACTIVE, "msg_1", 5, &data, &data_len),
                      0);
    assert_int_equal (data_len, 5);
    assert_memory_equal (data, "tsk_1", 5);
    st_db_read_end (f->db, txn);
    st_fixture_destroy (&f);
}

static void
test_legacy_values (void **state)
{
    (void) state;
    st_fixture_t *f = st_fixture_new (8 << 20, 3);
    //  A task record as an older store wrote it: bare msgpack.
    cm_value_t *record = cm_map_new ();
    cm_map_set_str (record, "text", "old");
    char *bare;
    size_t bare_len;
    assert_int_equal (cm_value_encode (record, &bare, &bare_len), 0);
    s_store_bytes (f, ST_DBI_TASKS, "tsk_1", 5, bare, bare_len);
    s_store_bytes (f, ST_DBI_ACTIVE, "msg_1", 5, "tsk_1", 5);
    cm_value_destroy (&record);

    st_verify_counts_t counts = {0};
    assert_int_equal (st_verify_path (f->dir, false, NULL, &counts), 0);
    assert_int_equal (counts.records, 2);
    assert_int_equal (counts.legacy, 2);
    assert_int_equal (counts.damaged, 0);

    MDB_txn *txn;
    assert_int_equal (st_db_read_begin (f->db, &txn), 0);
    assert_int_equal (st_db_get (f->db, txn, ST_DBI_TASKS, "tsk_1", 5, &record), 0);
    assert_string_equal (cm_map_str (record, "text"), "old");
    st_db_read_end (f->db, txn);
    //  The next write of the key gives it its envelope.
    assert_int_equal (st_db_write_begin (f->db, NULL, &txn), 0);
    assert_int_equal (st_db_put (f->db, txn, ST_DBI_TASKS, "tsk_1", 5, record), 0);
    assert_int_equal (st_db_commit (txn), 0);
    cm_value_destroy (&record);
    unsigned char bytes[64];
    size_t size = s_stored (f, ST_DBI_TASKS, "tsk_1", 5, bytes, sizeof bytes);
    assert_int_equal (size, ST_RECORD_HEADER + bare_len);
    assert_int_equal (bytes[0], ST_RECORD_MAGIC);
    assert_memory_equal (bytes + ST_RECORD_HEADER, bare, bare_len);
    free (bare);
    memset (&counts, 0, sizeof counts);
    assert_int_equal (st_verify_path (f->dir, false, NULL, &counts), 0);
    assert_int_equal (counts.legacy, 1);
    st_fixture_destroy (&f);
}

//  A user's turn through st_ops, then the stored user message's text
//  flipped: the read request is refused with CM_ECORRUPT, verify names the
//  key, and a backup fails and leaves no data.mdb.
static void
test_damaged_store (void **state)
{
    (void) state;
    st_fixture_t *f = st_fixture_new (8 << 20, 3);
    char user_msg[400], asst_msg[400], task[400];
    assert_int_equal (st_start (f, "alice", "s1", "what is quartz made of", user_msg, asst_msg,
                                task),
                      0);
    cm_envelope_t *get = st_req (CM_MSG_SESSION_GET, "alice");
    cm_map_set_str (get->payload, "session_id", "s1");
    assert_int_equal (st_read (f, get, NULL), 0);

    st_verify_counts_t counts = {0};
    assert_int_equal (st_verify_path (f->dir, false, NULL, &counts), 0);
    assert_true (counts.records > 5);
    assert_int_equal (counts.legacy, 0);

    //  The user message is the session's first: key s1 \0 seq 1? Find it
    //  by its text instead of assuming the sequence.
    MDB_txn *txn;
    assert_int_equal (st_db_read_begin (f->db, &txn), 0);
    MDB_cursor *cursor;
    assert_int_equal (mdb_cursor_open (txn, st_db_dbi (f->db, ST_DBI_MESSAGES), &cursor), 0);
    MDB_val k, v;
    unsigned char key[64], bytes[1024];
    size_t key_len = 0, size = 0;
    int rc = mdb_cursor_get (cursor, &k, &v, MDB_FIRST);
    while (rc == 0 && !key_len) {
        if (memmem (v.mv_data, v.mv_size, "quartz", 6)) {
            key_len = k.mv_size;
            memcpy (key, k.mv_data, k.mv_size);
            size = v.mv_size;
            memcpy (bytes, v.mv_data, v.mv_size);
        }
        rc = mdb_cursor_get (cursor, &k, &v, MDB_NEXT);
    }
    mdb_cursor_close (cursor);
    st_db_read_end (f->db, txn);
    assert_true (key_len > 0);
    unsigned char *hit = memmem (bytes, size, "quartz", 6);
    hit[0] = 'Q';
    s_store_bytes (f, ST_DBI_MESSAGES, key, key_len, bytes, size);

    get = st_req (CM_MSG_SESSION_GET, "alice");
    cm_map_set_str (get->payload, "session_id", "s1");
    cm_envelope_t *reply = NULL;
    assert_int_equal (st_read (f, get, &reply), CM_ECORRUPT);
    assert_int_equal (reply->type, CM_MSG_ERROR);
    assert_int_equal (cm_map_int (reply->payload, "code", 0), CM_ECORRUPT);
    cm_envelope_destroy (&reply);

    char *report = NULL;
    size_t report_len = 0;
    FILE *out = open_memstream (&report, &report_len);
    memset (&counts, 0, sizeof counts);
    assert_int_equal (st_verify_path (f->dir, false, out, &counts), CM_ECORRUPT);
    fclose (out);
    assert_int_equal (counts.damaged, 1);
    assert_non_null (strstr (report, "damaged: messages key \"s1\\x00"));
    assert_non_null (strstr (report, "checksum mismatch"));
    assert_non_null (strstr (report, "1 damaged"));
    assert_null (strstr (report, "Quartz"));
    free (report);

    char backup[200];
    snprintf (backup, sizeof backup, "%s/backup", f->dir);
    assert_int_equal (st_db_backup (f->dir, backup), CM_ECORRUPT);
    char path[300];
    struct stat st;
    snprintf (path, sizeof path, "%s/data.mdb", backup);
    assert_int_not_equal (stat (path, &st), 0);
    snprintf (path, sizeof path, "%s/data.mdb.partial", backup);
    assert_int_not_equal (stat (path, &st), 0);
    st_fixture_destroy (&f);
}

static void
test_backup_verified (void **state)
{
    (void) state;
    st_fixture_t *f = st_fixture_new (8 << 20, 3);
    assert_int_equal (st_start (f, "alice", "s1", "hello", NULL, NULL, NULL), 0);
    char backup[200], path[300];
    snprintf (backup, sizeof backup, "%s/backup", f->dir);
    assert_int_equal (st_db_backup (f->dir, backup), 0);
    struct stat st;
    snprintf (path, sizeof path, "%s/data.mdb", backup);
    assert_int_equal (stat (path, &st), 0);
    snprintf (path, sizeof path, "%s/data.mdb.partial", backup);
    assert_int_not_equal (stat (path, &st), 0);
    st_verify_counts_t counts = {0}, live = {0};
    assert_int_equal (st_verify_path (backup, false, NULL, &counts), 0);
    assert_int_equal (st_verify_path (f->dir, false, NULL, &live), 0);
    assert_int_equal (counts.records, live.records);
    //  A second backup into the same directory is refused; the first stays.
    assert_int_equal (st_db_backup (f->dir, backup), CM_EIO);
    memset (&counts, 0, sizeof counts);
    assert_int_equal (st_verify_path (backup, false, NULL, &counts), 0);
    assert_int_equal (counts.records, live.records);
    st_fixture_destroy (&f);
}

static void
test_verify_refuses (void **state)
{
    (void) state;
    st_fixture_t *f = st_fixture_new (8 << 20, 3);
    assert_int_equal (st_start (f, "alice", "s1", "hello", NULL, NULL, NULL), 0);
    st_db_destroy (&f->db);
    char path[300];
    snprintf (path, sizeof path, "%s/data.mdb", f->dir);
    //  Cut to 3 of its pages: the meta page points beyond the end.
    struct stat st;
    assert_int_equal (stat (path, &st), 0);
    assert_int_equal (truncate (path, 3 * 4096), 0);
    char *report = NULL;
    size_t report_len = 0;
    FILE *out = open_memstream (&report, &report_len);
    st_verify_counts_t counts = {0};
    assert_int_equal (st_verify_path (f->dir, false, out, &counts), CM_ECORRUPT);
    fclose (out);
    assert_non_null (strstr (report, "cut short"));
    free (report);
    //  No data file at all.
    assert_int_equal (unlink (path), 0);
    memset (&counts, 0, sizeof counts);
    assert_int_equal (st_verify_path (f->dir, false, NULL, &counts), CM_EDB);
    st_ops_destroy (&f->ops);
    st_fixture_destroy (&f);
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_crc32c),         cmocka_unit_test (test_envelope),
        cmocka_unit_test (test_key_text),       cmocka_unit_test (test_reads_check),
        cmocka_unit_test (test_legacy_values),  cmocka_unit_test (test_damaged_store),
        cmocka_unit_test (test_backup_verified), cmocka_unit_test (test_verify_refuses),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
