#include "st_versions.h"

#include "cm_error.h"
#include "cm_ids.h"
#include "cm_log.h"
#include "st_key.h"
#include "st_record.h"

#include <string.h>

#define S_HEAD_MAGIC 0xC1 //  a byte msgpack never uses (like the rate record's)
#define S_HEAD_FIXED 9    //  magic, active, count
#define S_VOTES_RECORD 16
#define S_ID_MAX (CM_ID_MAX + CM_MESSAGE_ID_MAX)
//  Keys of one message in the versions DBI: its head and every version.
#define S_MESSAGE_KEYS (CM_VERSIONS_MAX + 1)
#define S_MKEY_MAX 1024 //  the longest messages key (st_ops.c S_KEY_MAX)

//  What one version consists of: the fields a message record takes from
//  its active version. Everything else of the message (id, role, seq,
//  timestamp, regenerating) is the turn's, whichever version is shown.
//  finish_reason and generation: how the version's text ended when it did
//  not end complete, and what generated it (st_h_continue.h).
static const char *const s_fields[] = {"content", "model",         "thought_process", "regenerated",
                                       "edited",  "usage",         "finish_reason",   "generation"};
#define S_FIELD_COUNT (sizeof s_fields / sizeof s_fields[0])

static void
s_be32_put (unsigned char *out, uint32_t value)
{
    out[0] = (unsigned char) (value >> 24);
    out[1] = (unsigned char) (value >> 16);
    out[2] = (unsigned char) (value >> 8);
    out[3] = (unsigned char) value;
}

static uint32_t
s_be32_get (const unsigned char *in)
{
    return (uint32_t) in[0] << 24 | (uint32_t) in[1] << 16 | (uint32_t) in[2] << 8 | in[3];
}

uint32_t
st_versions_count (const cm_value_t *msg)
{
    int64_t count = cm_map_int (msg, "version_count", 1);
    return count < 1 || count > CM_VERSIONS_MAX ? 1 : (uint32_t) count;
}

uint32_t
st_versions_active (const cm_value_t *msg)
{
    int64_t active = cm_map_int (msg, "version", 1);
    return active < 1 || active > st_versions_count (msg) ? 1 : (uint32_t) active;
}

const char *
st_versions_active_id (const cm_value_t *msg)
{
    const char *id = cm_map_str (msg, "version_id");
    return id ? id : cm_map_str_or (msg, "id", "");
}

cm_value_t *
st_versions_ids (const cm_value_t *msg)
{
    const cm_value_t *ids = cm_map_get (msg, "version_ids");
    if (ids && ids->type == CM_T_ARR && cm_value_len (ids) == st_versions_count (msg))
        return cm_value_dup (ids);
    cm_value_t *one = cm_arr_new ();
    cm_arr_push (one, cm_str_new (cm_map_str_or (msg, "id", "")));
    return one;
}

size_t
st_versions_key (unsigned char *out, const void *mkey, size_t mkey_len, uint32_t n)
{
    memcpy (out, mkey, mkey_len);
    s_be32_put (out + mkey_len, n);
    return mkey_len + ST_VERSIONS_KEY_EXTRA;
}

size_t
st_versions_votes_key (unsigned char *out, const void *mkey, size_t mkey_len, uint32_t n)
{
    if (n <= 1) {
        memcpy (out, mkey, mkey_len);
        return mkey_len;
    }
    return st_versions_key (out, mkey, mkey_len, n);
}

size_t
st_versions_feedback_key (char *out, const char *message_id, const char *user, uint32_t n)
{
    size_t id_len = strlen (message_id), user_len = strlen (user);
    memcpy (out, message_id, id_len);
    out[id_len] = 0;
    memcpy (out + id_len + 1, user, user_len);
    size_t len = id_len + 1 + user_len;
    if (n <= 1)
        return len;
    out[len] = 0;
    s_be32_put ((unsigned char *) out + len + 1, n);
    return len + 5;
}

int
st_versions_head (st_db_t *db, MDB_txn *txn, const void *mkey, size_t mkey_len,
                  uint32_t *active, uint32_t *count, char *id)
{
    const void *data;
    size_t size;
    int rc = st_db_get_raw (db, txn, ST_DBI_VERSIONS, mkey, mkey_len, &data, &size);
    if (rc == CM_ENOTFOUND) {
        *active = *count = 1;
        id[0] = 0;
        return 0;
    }
    if (rc)
        return rc;
    const unsigned char *p = data;
    if (size < S_HEAD_FIXED || size > S_HEAD_FIXED + S_ID_MAX || p[0] != S_HEAD_MAGIC) {
        cm_error ("stored version head has %zu bytes and does not parse", size);
        return CM_ECORRUPT;
    }
    *active = s_be32_get (p + 1);
    *count = s_be32_get (p + 5);
    memcpy (id, p + S_HEAD_FIXED, size - S_HEAD_FIXED);
    id[size - S_HEAD_FIXED] = 0;
    return 0;
}

static int
s_head_put (st_db_t *db, MDB_txn *txn, const void *mkey, size_t mkey_len, uint32_t active,
            uint32_t count, const char *id)
{
    unsigned char record[S_HEAD_FIXED + S_ID_MAX];
    size_t id_len = strlen (id);
    if (id_len > S_ID_MAX)
        return CM_EINVAL;
    record[0] = S_HEAD_MAGIC;
    s_be32_put (record + 1, active);
    s_be32_put (record + 5, count);
    memcpy (record + S_HEAD_FIXED, id, id_len);
    return st_db_put_raw (db, txn, ST_DBI_VERSIONS, mkey, mkey_len, record,
                          S_HEAD_FIXED + id_len);
}

//  A version record from the version fields of `from` (a message, or the
//  fields of a new version).
static cm_value_t *
s_record_new (const cm_value_t *from, const char *id, const char *message_id, uint32_t n,
              int64_t created_at)
{
    cm_value_t *record = cm_map_new ();
    cm_map_set_str (record, "id", id);
    cm_map_set_str (record, "message_id", message_id);
    cm_map_set_int (record, "n", n);
    for (size_t i = 0; i < S_FIELD_COUNT; i++) {
        const cm_value_t *value = cm_map_get (from, s_fields[i]);
        if (value)
            cm_map_set (record, s_fields[i], cm_value_dup (value));
    }
    cm_map_set_int (record, "created_at", created_at);
    return record;
}

static int
s_record_put (st_db_t *db, MDB_txn *txn, const void *mkey, size_t mkey_len, uint32_t n,
              const cm_value_t *record)
{
    unsigned char key[ST_VERSIONS_KEY_EXTRA + S_MKEY_MAX];
    if (mkey_len > S_MKEY_MAX)
        return CM_EINVAL;
    size_t len = st_versions_key (key, mkey, mkey_len, n);
    return st_db_put (db, txn, ST_DBI_VERSIONS, key, len, record);
}

static int
s_record_get (st_db_t *db, MDB_txn *txn, const void *mkey, size_t mkey_len, uint32_t n,
              cm_value_t **out)
{
    unsigned char key[ST_VERSIONS_KEY_EXTRA + S_MKEY_MAX];
    if (mkey_len > S_MKEY_MAX)
        return CM_EINVAL;
    size_t len = st_versions_key (key, mkey, mkey_len, n);
    int rc = st_db_get (db, txn, ST_DBI_VERSIONS, key, len, out);
    if (rc == CM_ENOTFOUND) {
        //  The message counts this version: its record must be there.
        char text[ST_DB_KEY_TEXT_MAX];
        cm_error ("version %u of message %s is missing from versions", n,
                  st_record_key_text (mkey, mkey_len, text, sizeof text));
        return CM_ECORRUPT;
    }
    return rc;
}

void
st_versions_take (cm_value_t *msg, const cm_value_t *from)
{
    for (size_t i = 0; i < S_FIELD_COUNT; i++) {
        cm_value_t *old = cm_map_take (msg, s_fields[i]);
        cm_value_destroy (&old);
        const cm_value_t *value = cm_map_get (from, s_fields[i]);
        if (value)
            cm_map_set (msg, s_fields[i], cm_value_dup (value));
    }
}

int
st_versions_add (st_db_t *db, MDB_txn *txn, const void *mkey, size_t mkey_len,
                 cm_value_t *msg, const cm_value_t *fields, int64_t now, uint32_t *index)
{
    uint32_t count = st_versions_count (msg);
    if (count >= CM_VERSIONS_MAX)
        return CM_EBADSTATE;
    const char *message_id = cm_map_str_or (msg, "id", "");
    int rc = 0;
    if (count == 1) {
        //  The message's only version becomes a record before it stops
        //  being the active one.
        cm_value_t *first
            = s_record_new (msg, message_id, message_id, 1, cm_map_int (msg, "timestamp", now));
        rc = s_record_put (db, txn, mkey, mkey_len, 1, first);
        cm_value_destroy (&first);
    }
    uint32_t n = count + 1;
    char id[CM_ID_MAX + 1];
    st_key_id_new (id, "ver"); //  from the entry's seed when replicated (st_det.h)
    if (rc == 0) {
        cm_value_t *record = s_record_new (fields, id, message_id, n, now);
        rc = s_record_put (db, txn, mkey, mkey_len, n, record);
        cm_value_destroy (&record);
    }
    if (rc == 0)
        rc = s_head_put (db, txn, mkey, mkey_len, n, n, id);
    if (rc)
        return rc;
    cm_value_t *ids = st_versions_ids (msg);
    cm_arr_push (ids, cm_str_new (id));
    st_versions_take (msg, fields);
    cm_map_set (msg, "version_ids", ids);
    cm_map_set_int (msg, "version", n);
    cm_map_set_int (msg, "version_count", n);
    cm_map_set_str (msg, "version_id", id);
    if (index)
        *index = n;
    return 0;
}

int
st_versions_activate (st_db_t *db, MDB_txn *txn, const void *mkey, size_t mkey_len,
                      cm_value_t *msg, uint32_t n, bool *changed)
{
    uint32_t count = st_versions_count (msg);
    if (changed)
        *changed = false;
    if (n < 1 || n > count)
        return CM_ENOVERSION;
    if (n == st_versions_active (msg))
        return 0;
    cm_value_t *record = NULL;
    int rc = s_record_get (db, txn, mkey, mkey_len, n, &record);
    const char *id = rc == 0 ? cm_map_str (record, "id") : NULL;
    if (rc == 0 && !id) {
        cm_error ("version %u of message %s has no id", n, cm_map_str_or (msg, "id", ""));
        rc = CM_ECORRUPT;
    }
    if (rc == 0)
        rc = s_head_put (db, txn, mkey, mkey_len, n, count, id);
    if (rc == 0) {
        st_versions_take (msg, record);
        cm_map_set_int (msg, "version", n);
        cm_map_set_str (msg, "version_id", id);
        if (changed)
            *changed = true;
    }
    cm_value_destroy (&record);
    return rc;
}

int
st_versions_sync (st_db_t *db, MDB_txn *txn, const void *mkey, size_t mkey_len,
                  const cm_value_t *msg, int64_t now)
{
    if (st_versions_count (msg) < 2)
        return 0;
    uint32_t n = st_versions_active (msg);
    cm_value_t *old = NULL;
    int rc = s_record_get (db, txn, mkey, mkey_len, n, &old);
    if (rc)
        return rc;
    cm_value_t *record = s_record_new (msg, st_versions_active_id (msg),
                                       cm_map_str_or (msg, "id", ""), n,
                                       cm_map_int (old, "created_at", now));
    cm_value_destroy (&old);
    rc = s_record_put (db, txn, mkey, mkey_len, n, record);
    cm_value_destroy (&record);
    return rc;
}

int
st_versions_get (st_db_t *db, MDB_txn *txn, const void *mkey, size_t mkey_len,
                 const cm_value_t *msg, uint32_t n, cm_value_t **out)
{
    uint32_t count = st_versions_count (msg);
    if (n < 1 || n > count)
        return CM_ENOVERSION;
    if (count == 1) {
        const char *id = cm_map_str_or (msg, "id", "");
        *out = s_record_new (msg, id, id, 1, cm_map_int (msg, "timestamp", 0));
        return 0;
    }
    return s_record_get (db, txn, mkey, mkey_len, n, out);
}

int
st_versions_votes_get (st_db_t *db, MDB_txn *txn, const void *mkey, size_t mkey_len,
                       uint32_t n, const cm_value_t *msg, int64_t *ups, int64_t *downs)
{
    unsigned char key[ST_VERSIONS_KEY_EXTRA + S_MKEY_MAX];
    if (mkey_len > S_MKEY_MAX)
        return CM_EINVAL;
    size_t len = st_versions_votes_key (key, mkey, mkey_len, n);
    const void *data;
    size_t size;
    int rc = st_db_get_raw (db, txn, ST_DBI_VOTES, key, len, &data, &size);
    if (rc == 0) {
        if (size != S_VOTES_RECORD) {
            cm_error ("stored record in votes has %zu bytes", size);
            return CM_EPROTO;
        }
        *ups = (int64_t) st_db_be64_get (data);
        *downs = (int64_t) st_db_be64_get ((const unsigned char *) data + 8);
        return 0;
    }
    if (rc != CM_ENOTFOUND)
        return rc;
    *ups = *downs = 0;
    if (n > 1)
        return 0; //  votes records are as old as versions: no earlier counts
    cm_value_t *loaded = NULL;
    if (!msg) {
        rc = st_db_get (db, txn, ST_DBI_MESSAGES, mkey, mkey_len, &loaded);
        if (rc)
            return rc;
        msg = loaded;
    }
    *ups = cm_map_int (msg, "upvotes", 0);
    *downs = cm_map_int (msg, "downvotes", 0);
    cm_value_destroy (&loaded);
    return 0;
}

int
st_versions_votes_put (st_db_t *db, MDB_txn *txn, const void *mkey, size_t mkey_len,
                       uint32_t n, int64_t ups, int64_t downs)
{
    unsigned char key[ST_VERSIONS_KEY_EXTRA + S_MKEY_MAX];
    if (mkey_len > S_MKEY_MAX)
        return CM_EINVAL;
    size_t len = st_versions_votes_key (key, mkey, mkey_len, n);
    unsigned char record[S_VOTES_RECORD];
    st_db_be64_put (record, (uint64_t) ups);
    st_db_be64_put (record + 8, (uint64_t) downs);
    return st_db_put_raw (db, txn, ST_DBI_VOTES, key, len, record, sizeof record);
}

//  Deletes the keys of db which that are mkey + be32(n) (a version's) and,
//  with head, mkey itself.
static int
s_delete_range (st_db_t *db, MDB_txn *txn, st_dbi_t which, const void *mkey, size_t mkey_len,
                bool head)
{
    uint32_t versions[S_MESSAGE_KEYS];
    size_t found = 0;
    bool head_found = false;
    MDB_cursor *cursor;
    int rc = mdb_cursor_open (txn, st_db_dbi (db, which), &cursor);
    if (rc)
        return st_db_error (rc, "mdb_cursor_open");
    MDB_val k = {mkey_len, (void *) mkey}, v;
    rc = st_db_cursor_get (cursor, which, &k, &v, MDB_SET_RANGE);
    while (rc == 0 && k.mv_size >= mkey_len && memcmp (k.mv_data, mkey, mkey_len) == 0) {
        if (k.mv_size == mkey_len)
            head_found = true;
        else if (k.mv_size == mkey_len + ST_VERSIONS_KEY_EXTRA && found < S_MESSAGE_KEYS)
            versions[found++] = s_be32_get ((const unsigned char *) k.mv_data + mkey_len);
        rc = st_db_cursor_get (cursor, which, &k, &v, MDB_NEXT);
    }
    mdb_cursor_close (cursor);
    if (rc && rc != CM_ENOTFOUND)
        return rc;
    rc = head && head_found ? st_db_del (db, txn, which, mkey, mkey_len) : 0;
    unsigned char key[ST_VERSIONS_KEY_EXTRA + S_MKEY_MAX];
    for (size_t i = 0; rc == 0 && i < found; i++)
        rc = st_db_del (db, txn, which, key, st_versions_key (key, mkey, mkey_len, versions[i]));
    return rc;
}

int
st_versions_delete (st_db_t *db, MDB_txn *txn, const void *mkey, size_t mkey_len)
{
    if (mkey_len > S_MKEY_MAX)
        return CM_EINVAL;
    int rc = s_delete_range (db, txn, ST_DBI_VERSIONS, mkey, mkey_len, true);
    if (rc == 0)
        rc = s_delete_range (db, txn, ST_DBI_VOTES, mkey, mkey_len, false);
    return rc;
}
