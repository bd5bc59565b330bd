/*  st_rows.c: the store's records (st_rows.h).  */
#include "st_rows.h"

#include "cm_error.h"
#include "cm_log.h"
#include "st_analytics.h"

#include <string.h>

#define S_MAX_DURATIONS 1000 //  regeneration times kept per session for avg/p95
#define S_RECORD_MAGIC 0xC1  //  first byte of binary records (st_db.h)
#define S_RATE_RECORD 25
#define S_VOTES_RECORD 16

void
st_rows_copy_str (cm_value_t *to, const char *to_key, const cm_value_t *from, const char *key)
{
    const char *s = cm_map_str (from, key);
    if (s)
        cm_map_set_str (to, to_key, s);
    else
        cm_map_set_nil (to, to_key);
}

void
st_rows_usage_set (cm_value_t *msg, const cm_value_t *payload)
{
    cm_value_t *old = cm_map_take (msg, "usage");
    cm_value_destroy (&old);
    int64_t prompt = cm_map_int (payload, "prompt_tokens", -1);
    int64_t completion = cm_map_int (payload, "completion_tokens", -1);
    if (prompt < 0 || completion < 0)
        return;
    cm_value_t *usage = cm_map_new ();
    cm_map_set_int (usage, "prompt_tokens", prompt);
    cm_map_set_int (usage, "completion_tokens", completion);
    cm_map_set (msg, "usage", usage);
}

int
st_rows_collect (st_ctx_t *c, st_dbi_t which, const st_key_t *range, cm_value_t **out)
{
    const char *prefix = range ? range->bytes : "";
    size_t prefix_len = range ? range->len : 0;
    MDB_cursor *cursor;
    int rc = mdb_cursor_open (c->txn, st_db_dbi (c->db, which), &cursor);
    if (rc)
        return st_db_error (rc, "mdb_cursor_open");
    cm_value_t *list = cm_arr_new ();
    MDB_val k = {prefix_len, (void *) prefix}, v;
    rc = st_db_cursor_get (cursor, which, &k, &v, prefix_len ? MDB_SET_RANGE : MDB_FIRST);
    while (rc == 0) {
        if (k.mv_size < prefix_len || memcmp (k.mv_data, prefix, prefix_len) != 0)
            break;
        cm_value_t *item = cm_map_new ();
        cm_map_set (item, "k", cm_bin_new (k.mv_data, k.mv_size));
        cm_map_set (item, "v", cm_bin_new (v.mv_data, v.mv_size));
        cm_arr_push (list, item);
        rc = st_db_cursor_get (cursor, which, &k, &v, MDB_NEXT);
    }
    mdb_cursor_close (cursor);
    if (rc && rc != CM_ENOTFOUND) {
        cm_value_destroy (&list);
        return rc;
    }
    *out = list;
    return 0;
}

const cm_value_t *
st_rows_key (const cm_value_t *list, size_t i)
{
    return cm_map_get (cm_arr_at (list, i), "k");
}

const cm_value_t *
st_rows_value (const cm_value_t *list, size_t i)
{
    return cm_map_get (cm_arr_at (list, i), "v");
}

cm_value_t *
st_rows_decode (const cm_value_t *bin)
{
    cm_value_t *value = NULL;
    if (cm_value_decode (bin->u.s.ptr, bin->u.s.len, &value) || value->type != CM_T_MAP)
        cm_value_destroy (&value);
    return value;
}

//  The audit record of a mutation, in the same txn as the change. It is
//  streamed into the ops' packer (cm_packer_t), no map built per write:
//  st_rows_audit_begin packs the fields before details, the caller packs details
//  (one value), st_rows_audit_end packs the rest and puts the record. Field order
//  is the record's layout; keep it.
cm_packer_t *
st_rows_audit_begin (st_ctx_t *c, const char *session_id, const char *message_id, const char *action,
               const char *user, char *id)
{
    st_key_id_new (id, "log");
    cm_packer_t *pk = c->ops->packer;
    cm_packer_reset (pk);
    cm_pack_map (pk, 10);
    cm_pack_str (pk, "id");
    cm_pack_str (pk, id);
    cm_pack_str (pk, "session_id");
    cm_pack_str (pk, session_id ? session_id : "");
    cm_pack_str (pk, "message_id");
    cm_pack_str (pk, message_id); //  nil when NULL
    cm_pack_str (pk, "action_type");
    cm_pack_str (pk, action);
    cm_pack_str (pk, "user_id");
    cm_pack_str (pk, user ? user : "");
    cm_pack_str (pk, "details");
    return pk;
}

int
st_rows_chain_head (st_ctx_t *c, st_chain_head_t *head)
{
    memset (head, 0, sizeof *head);
    const void *data;
    size_t size;
    int rc = st_db_get_raw (c->db, c->txn, ST_DBI_AUDIT_CHAIN, ST_CHAIN_HEAD_KEY,
                            strlen (ST_CHAIN_HEAD_KEY), &data, &size);
    if (rc == CM_ENOTFOUND)
        return 0;
    if (rc == 0 && st_chain_head_read (data, size, head)) {
        cm_error ("stored record in audit_chain has %zu bytes", size);
        rc = CM_ECORRUPT;
    }
    return rc;
}

int
st_rows_chain_head_put (st_ctx_t *c, const st_chain_head_t *head)
{
    unsigned char record[ST_CHAIN_HEAD_BYTES];
    st_chain_head_write (head, record);
    return st_db_put_raw (c->db, c->txn, ST_DBI_AUDIT_CHAIN, ST_CHAIN_HEAD_KEY,
                          strlen (ST_CHAIN_HEAD_KEY), record, sizeof record);
}

//  The record links to the newest entry (st_chain.h), and its key sorts
//  after that entry's even when the clock went back, so key order stays
//  the order of the chain.
int
st_rows_audit_end (st_ctx_t *c, const char *id)
{
    st_chain_head_t head;
    ST_TRY (st_rows_chain_head (c, &head));
    cm_packer_t *pk = c->ops->packer;
    cm_pack_str (pk, "client_ip");
    cm_pack_str (pk, cm_map_str (c->p, "ip"));
    cm_pack_str (pk, "user_agent");
    cm_pack_str (pk, cm_map_str (c->p, "ua"));
    cm_pack_str (pk, "created_at");
    cm_pack_int (pk, c->now);
    cm_pack_str (pk, "prev_hash");
    cm_pack_bin (pk, head.last, ST_CHAIN_HASH);
    const char *data;
    size_t size;
    ST_TRY (cm_packer_finish (pk, &data, &size));
    int64_t ms = c->now > head.last_ms ? c->now : head.last_ms;
    uint64_t seq = ++c->ops->seq;
    if (ms == head.last_ms && seq <= head.last_seq && head.count)
        c->ops->seq = seq = head.last_seq + 1;
    st_key_t key;
    ST_TRY (st_key_audit (&key, ms, seq, id));
    ST_TRY (st_db_put_raw (c->db, c->txn, ST_DBI_AUDIT, key.bytes, key.len, data, size));
    st_chain_hash (key.bytes, key.len, data, size, head.last);
    ST_TRY (st_analytics_count (c, data, size));
    head.count++;
    head.last_ms = ms;
    head.last_seq = seq;
    return st_rows_chain_head_put (c, &head);
}

//  The audit record with details a map (taken; NULL for an empty one).
int
st_rows_audit (st_ctx_t *c, const char *session_id, const char *message_id, const char *action,
         const char *user, cm_value_t *details)
{
    char id[CM_ID_MAX + 1];
    cm_packer_t *pk = st_rows_audit_begin (c, session_id, message_id, action, user, id);
    if (details)
        cm_pack_value (pk, details);
    else
        cm_pack_map (pk, 0);
    cm_value_destroy (&details);
    return st_rows_audit_end (c, id);
}

//  A rate bucket record (st_db.h): the binary form, or an older msgpack map.
int
st_rows_rate_read (const void *data, size_t size, int64_t *start, int64_t *count, int64_t *window)
{
    const unsigned char *p = data;
    if (size == S_RATE_RECORD && p[0] == S_RECORD_MAGIC) {
        *start = (int64_t) st_db_be64_get (p + 1);
        *count = (int64_t) st_db_be64_get (p + 9);
        *window = (int64_t) st_db_be64_get (p + 17);
        return 0;
    }
    cm_value_t *bucket = NULL;
    if (cm_value_decode (data, size, &bucket) || bucket->type != CM_T_MAP) {
        cm_value_destroy (&bucket);
        cm_error ("stored record in rate does not decode");
        return CM_EPROTO;
    }
    *start = cm_map_int (bucket, "window_start", 0);
    *count = cm_map_int (bucket, "count", 0);
    *window = cm_map_int (bucket, "window_ms", ST_RATE_WINDOW_MS);
    cm_value_destroy (&bucket);
    return 0;
}

//  Key's window as stored: *start and *count (0, 0 when there is none).
static int
s_rate_load (st_ctx_t *c, const st_key_t *key, int64_t *start, int64_t *count)
{
    const void *data;
    size_t size;
    int64_t stored_window;
    *start = *count = 0;
    int rc = st_db_get_raw (c->db, c->txn, ST_DBI_RATE, key->bytes, key->len, &data, &size);
    if (rc == 0)
        rc = st_rows_rate_read (data, size, start, count, &stored_window);
    return rc == CM_ENOTFOUND ? 0 : rc;
}

static int
s_rate_store (st_ctx_t *c, const st_key_t *key, int64_t start, int64_t count, int64_t window_ms)
{
    unsigned char record[S_RATE_RECORD];
    record[0] = S_RECORD_MAGIC;
    st_db_be64_put (record + 1, (uint64_t) start);
    st_db_be64_put (record + 9, (uint64_t) count);
    st_db_be64_put (record + 17, (uint64_t) window_ms);
    return st_db_put_raw (c->db, c->txn, ST_DBI_RATE, key->bytes, key->len, record, sizeof record);
}

//  The window's start and count now: a window that is over (or starts in
//  the future, after a clock step) is a new empty one at c->now.
static int
s_rate_now (st_ctx_t *c, const st_key_t *key, int64_t window_ms, int64_t *start, int64_t *count)
{
    ST_TRY (s_rate_load (c, key, start, count));
    if (c->now - *start >= window_ms || c->now < *start) {
        *start = c->now;
        *count = 0;
    }
    return 0;
}

//  Fixed-window token bucket: `limit` actions per window per key. On
//  exhaustion returns CM_ERATELIMIT with c->retry_after set; the caller's
//  txn is then aborted, so a rejected request changes nothing.
int
st_rows_rate (st_ctx_t *c, const st_key_t *key, int64_t limit, int64_t window_ms,
              int64_t *remaining)
{
    if (limit <= 0)
        return 0;
    int64_t start, count;
    ST_TRY (s_rate_now (c, key, window_ms, &start, &count));
    if (count >= limit) {
        c->retry_after = start + window_ms - c->now;
        if (c->retry_after < 1)
            c->retry_after = 1;
        c->why = "rate limit exceeded";
        return CM_ERATELIMIT;
    }
    if (remaining)
        *remaining = limit - count - 1;
    return s_rate_store (c, key, start, count + 1, window_ms);
}

int
st_rows_rate_window (st_ctx_t *c, const st_key_t *key, int64_t window_ms, int64_t *start)
{
    int64_t count;
    return s_rate_now (c, key, window_ms, start, &count);
}

int
st_rows_rate_refund (st_ctx_t *c, const st_key_t *key, int64_t window_start, bool *refunded)
{
    *refunded = false;
    const void *data;
    size_t size;
    int64_t start = 0, count = 0, window = ST_RATE_WINDOW_MS;
    int rc = st_db_get_raw (c->db, c->txn, ST_DBI_RATE, key->bytes, key->len, &data, &size);
    if (rc == CM_ENOTFOUND)
        return 0;
    if (rc == 0)
        rc = st_rows_rate_read (data, size, &start, &count, &window);
    if (rc || start != window_start || count < 1)
        return rc;
    *refunded = true;
    return s_rate_store (c, key, start, count - 1, window);
}

//  The caller's rate buckets: "a:<user>" for every write, "r:<user>" too
//  for regenerations.
int
st_rows_rate_user (st_ctx_t *c, bool regeneration)
{
    st_key_t key;
    ST_TRY (st_key_rate_user (&key, false, st_ctx_user (c)));
    ST_TRY (st_rows_rate (c, &key, cm_map_int (c->p, "rate_limit", 0), ST_RATE_WINDOW_MS, NULL));
    if (regeneration) {
        ST_TRY (st_key_rate_user (&key, true, st_ctx_user (c)));
        ST_TRY (st_rows_rate (c, &key, cm_map_int (c->p, "regen_rate_limit", 0),
                              ST_RATE_WINDOW_MS, NULL));
    }
    return 0;
}

int
st_rows_session_load (st_ctx_t *c, const char *session_id, cm_value_t **session)
{
    ST_TRY (st_db_get (c->db, c->txn, ST_DBI_SESSIONS, session_id, strlen (session_id), session));
    if (strcmp (cm_map_str_or (*session, "user", ""), st_ctx_user (c)) != 0) {
        cm_value_destroy (session);
        return CM_ENOTFOUND; //  never reveal another user's session
    }
    return 0;
}

int
st_rows_message_key (st_ctx_t *c, const char *message_id, st_key_t *key)
{
    if (!message_id)
        return CM_ENOTFOUND;
    const void *data;
    size_t size;
    ST_TRY (st_db_get_raw (c->db, c->txn, ST_DBI_MSG_INDEX, message_id, strlen (message_id),
                           &data, &size));
    return st_key_set (key, data, size);
}

int
st_rows_message_load (st_ctx_t *c, const char *message_id, cm_value_t **message, st_key_t *key,
                      cm_value_t **session)
{
    ST_TRY (st_rows_message_key (c, message_id, key));
    cm_value_t *msg = NULL;
    ST_TRY (st_db_get (c->db, c->txn, ST_DBI_MESSAGES, key->bytes, key->len, &msg));
    cm_value_t *owner = NULL;
    int rc = st_rows_session_load (c, cm_map_str_or (msg, "session_id", ""), &owner);
    if (rc) {
        cm_value_destroy (&msg);
        return rc;
    }
    *message = msg;
    if (session)
        *session = owner;
    else
        cm_value_destroy (&owner);
    return 0;
}

//  The key starts with the session id, and user_sessions holds "user \0
//  session" exactly for the sessions a user owns.
int
st_rows_message_locate (st_ctx_t *c, const char *message_id, st_key_t *key, char *session_id)
{
    ST_TRY (st_rows_message_key (c, message_id, key));
    ST_TRY (st_key_message_session (key, session_id));
    st_key_t owner;
    if (st_key_pair (&owner, st_ctx_user (c), session_id))
        return CM_ENOTFOUND;
    const void *data;
    size_t size;
    return st_db_get_raw (c->db, c->txn, ST_DBI_USER_SESSIONS, owner.bytes, owner.len, &data,
                          &size); //  CM_ENOTFOUND: never reveal another user's message
}

//  Vote counts of the message at key. Without a votes record (st_db.h)
//  they are in the message map: msg when the caller has it decoded, else
//  read here.
int
st_rows_votes_get (st_ctx_t *c, const void *key, size_t key_len, const cm_value_t *msg, int64_t *ups,
             int64_t *downs)
{
    const void *data;
    size_t size;
    int rc = st_db_get_raw (c->db, c->txn, ST_DBI_VOTES, key, key_len, &data, &size);
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
    cm_value_t *loaded = NULL;
    if (!msg) {
        ST_TRY (st_db_get (c->db, c->txn, ST_DBI_MESSAGES, key, key_len, &loaded));
        msg = loaded;
    }
    *ups = cm_map_int (msg, "upvotes", 0);
    *downs = cm_map_int (msg, "downvotes", 0);
    cm_value_destroy (&loaded);
    return 0;
}

int
st_rows_votes_put (st_ctx_t *c, const void *key, size_t key_len, int64_t ups, int64_t downs)
{
    unsigned char record[S_VOTES_RECORD];
    st_db_be64_put (record, (uint64_t) ups);
    st_db_be64_put (record + 8, (uint64_t) downs);
    return st_db_put_raw (c->db, c->txn, ST_DBI_VOTES, key, key_len, record, sizeof record);
}

int
st_rows_session_put (st_ctx_t *c, cm_value_t *session)
{
    const char *id = cm_map_str_or (session, "session_id", "");
    return st_db_put (c->db, c->txn, ST_DBI_SESSIONS, id, strlen (id), session);
}

int
st_rows_analytics_update (st_ctx_t *c, const char *session_id, const char *counter, int64_t delta,
                    int64_t duration_ms)
{
    cm_value_t *stats = NULL;
    int rc = st_db_get (c->db, c->txn, ST_DBI_ANALYTICS, session_id, strlen (session_id), &stats);
    if (rc == CM_ENOTFOUND)
        stats = cm_map_new ();
    else if (rc)
        return rc;
    if (counter)
        cm_map_set_int (stats, counter, cm_map_int (stats, counter, 0) + delta);
    if (duration_ms >= 0) {
        cm_value_t *list = cm_map_take (stats, "durations_ms");
        if (!list || list->type != CM_T_ARR) {
            cm_value_destroy (&list);
            list = cm_arr_new ();
        }
        if (cm_value_len (list) >= S_MAX_DURATIONS) {
            //  Keep the most recent ones: rebuild without the oldest.
            cm_value_t *trimmed = cm_arr_new ();
            for (size_t i = 1; i < cm_value_len (list); i++)
                cm_arr_push (trimmed, cm_value_dup (cm_arr_at (list, i)));
            cm_value_destroy (&list);
            list = trimmed;
        }
        cm_arr_push (list, cm_int_new (duration_ms));
        cm_map_set (stats, "durations_ms", list);
    }
    rc = st_db_put (c->db, c->txn, ST_DBI_ANALYTICS, session_id, strlen (session_id), stats);
    cm_value_destroy (&stats);
    return rc;
}

cm_value_t *
st_rows_message_new (const char *session_id, uint64_t seq, const char *role, const char *content,
               int64_t now, char *id_out)
{
    char uuid[CM_UUID_LEN + 1];
    st_key_uuid (uuid);
    cm_msgid_format (id_out, CM_MESSAGE_ID_MAX + 1, uuid, session_id, role);
    cm_value_t *msg = cm_map_new ();
    cm_map_set_str (msg, "id", id_out);
    cm_map_set_str (msg, "session_id", session_id);
    cm_map_set_int (msg, "seq", (int64_t) seq);
    cm_map_set_str (msg, "role", role);
    cm_map_set_str (msg, "content", content);
    cm_map_set_int (msg, "timestamp", now);
    cm_map_set_bool (msg, "edited", false);
    cm_map_set_bool (msg, "regenerating", false);
    cm_map_set_bool (msg, "regenerated", false);
    return msg; //  votes live in their own record (st_rows_votes_get)
}

int
st_rows_message_insert (st_ctx_t *c, cm_value_t *msg, st_key_t *key)
{
    ST_TRY (st_key_message (key, cm_map_str_or (msg, "session_id", ""),
                            (uint64_t) cm_map_int (msg, "seq", 0)));
    ST_TRY (st_db_put (c->db, c->txn, ST_DBI_MESSAGES, key->bytes, key->len, msg));
    const char *id = cm_map_str_or (msg, "id", "");
    return st_db_put_raw (c->db, c->txn, ST_DBI_MSG_INDEX, id, strlen (id), key->bytes,
                          key->len);
}

int
st_rows_delete_prefix (st_ctx_t *c, st_dbi_t which, const st_key_t *prefix)
{
    cm_value_t *list = NULL;
    ST_TRY (st_rows_collect (c, which, prefix, &list));
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < cm_value_len (list); i++) {
        const cm_value_t *k = st_rows_key (list, i);
        rc = st_db_del (c->db, c->txn, which, k->u.s.ptr, k->u.s.len);
    }
    cm_value_destroy (&list);
    return rc;
}
