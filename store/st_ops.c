#include "st_ops.h"

#include "cm_error.h"
#include "cm_ids.h"
#include "cm_log.h"
#include "cm_time.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#define S_KEY_MAX 1024
#define S_RATE_WINDOW_MS 60000
#define S_TITLE_CHARS 60
#define S_MAX_WORKERS 256
#define S_MAX_DURATIONS 1000 //  regeneration times kept per session for avg/p95
#define S_RECENT_FEEDBACK 10
#define S_RANDOM_POOL 512
#define S_RECORD_MAGIC 0xC1 //  first byte of binary records (st_db.h)
#define S_RATE_RECORD 25
#define S_VOTES_RECORD 16
#define S_THOUGHT_STEPS 32   //  steps of one thought process kept in the store
#define S_THOUGHT_TEXT 2000  //  bytes kept of each of its texts

typedef struct {
    char name[CM_ID_MAX + 65];
    int64_t seen;
} s_worker_t;

struct st_ops {
    st_db_t *db;
    st_ops_config_t config;
    bool tasks_changed;        //  writer thread only
    int64_t next_lease_expiry; //  writer thread only
    uint64_t seq;              //  orders audit/history entries of the same ms
    cm_packer_t *packer;       //  writer thread only: audit and feedback records
    pthread_mutex_t workers_lock;
    s_worker_t workers[S_MAX_WORKERS];
};

//  Everything one request's handler needs. `ok` is the reply payload.
typedef struct {
    st_ops_t *ops;
    st_db_t *db;
    MDB_txn *txn;
    int64_t now;
    const cm_envelope_t *req;
    const cm_value_t *p;
    cm_value_t *events;
    cm_value_t *ok;
    const char *why;
    int64_t retry_after;
    char now_iso[CM_ISO_TIME_LEN + 1]; //  "" until s_now_set formats it
} s_ctx_t;

//  Propagate any error; handlers stay flat.
#define TRY(expr)                                                            \
    do {                                                                     \
        int try_rc_ = (expr);                                                \
        if (try_rc_)                                                         \
            return try_rc_;                                                  \
    } while (0)

//  --------------------------------------------------------------------------
//  Small helpers

static void
s_time_set (cm_value_t *map, const char *key, int64_t ms)
{
    if (ms <= 0) {
        cm_map_set_nil (map, key);
        return;
    }
    char iso[CM_ISO_TIME_LEN + 1];
    cm_iso_time (ms, iso, sizeof iso);
    cm_map_set_str (map, key, iso);
}

//  The request's own time, formatted once however many maps carry it.
static void
s_now_set (s_ctx_t *c, cm_value_t *map, const char *key)
{
    if (!c->now_iso[0]) {
        if (c->now <= 0) {
            cm_map_set_nil (map, key);
            return;
        }
        cm_iso_time (c->now, c->now_iso, sizeof c->now_iso);
    }
    cm_map_set_str (map, key, c->now_iso);
}

//  A v4 uuid as cm_uuid makes it, but from a per-thread pool of random
//  bytes refilled S_RANDOM_POOL at a time: one getrandom(2) per 32 ids
//  instead of one per id (the writer mints two or three per request).
static void
s_uuid (char *buffer)
{
    static _Thread_local unsigned char pool[S_RANDOM_POOL];
    static _Thread_local size_t used = S_RANDOM_POOL;
    if (used + 16 > S_RANDOM_POOL) {
        size_t got = 0;
        while (got < S_RANDOM_POOL) {
            ssize_t n = getrandom (pool + got, S_RANDOM_POOL - got, 0);
            if (n > 0)
                got += (size_t) n;
        }
        used = 0;
    }
    unsigned char *bytes = pool + used;
    used += 16;
    bytes[6] = (unsigned char) ((bytes[6] & 0x0f) | 0x40); //  version 4
    bytes[8] = (unsigned char) ((bytes[8] & 0x3f) | 0x80); //  variant 1
    static const char hex[] = "0123456789abcdef";
    for (size_t i = 0; i < 16; i++) {
        buffer[2 * i] = hex[bytes[i] >> 4];
        buffer[2 * i + 1] = hex[bytes[i] & 0x0f];
    }
    buffer[CM_UUID_LEN] = 0;
    memset (bytes, 0, 16); //  an id's randomness is used once
}

//  "<prefix>_<uuid>" (cm_id_new's format) into buffer (CM_ID_MAX + 1).
//  Pasted, not snprintf'd: ~800 instructions each, two ids per vote.
static void
s_id_new (char *buffer, const char *prefix)
{
    size_t len = strlen (prefix); //  our prefixes are short literals
    memcpy (buffer, prefix, len);
    buffer[len] = '_';
    s_uuid (buffer + len + 1);
}

//  Copies the string at key, or nil when absent.
static void
s_copy_str (cm_value_t *to, const char *to_key, const cm_value_t *from, const char *key)
{
    const char *s = cm_map_str (from, key);
    if (s)
        cm_map_set_str (to, to_key, s);
    else
        cm_map_set_nil (to, to_key);
}

static const char *
s_user (s_ctx_t *c)
{
    return cm_map_str_or (c->p, "user", "");
}

static size_t
s_key2 (char *key, const char *a, const char *b)
{
    size_t la = strlen (a), lb = strlen (b);
    memcpy (key, a, la);
    key[la] = 0;
    memcpy (key + la + 1, b, lb);
    return la + 1 + lb;
}

static size_t
s_message_key (char *key, const char *session_id, uint64_t seq)
{
    size_t len = strlen (session_id);
    memcpy (key, session_id, len);
    key[len] = 0;
    st_db_be64_put ((unsigned char *) key + len + 1, seq);
    return len + 9;
}

//  Appends each (key, value) of a prefix range as {k: bin, v: bin} into a
//  new array, so callers may change the db freely while walking results.
static int
s_collect (s_ctx_t *c, st_dbi_t which, const void *prefix, size_t prefix_len,
           cm_value_t **out)
{
    MDB_cursor *cursor;
    int rc = mdb_cursor_open (c->txn, st_db_dbi (c->db, which), &cursor);
    if (rc)
        return st_db_error (rc, "mdb_cursor_open");
    cm_value_t *list = cm_arr_new ();
    MDB_val k = {prefix_len, (void *) prefix}, v;
    rc = mdb_cursor_get (cursor, &k, &v, prefix_len ? MDB_SET_RANGE : MDB_FIRST);
    while (rc == 0) {
        if (k.mv_size < prefix_len || memcmp (k.mv_data, prefix, prefix_len) != 0)
            break;
        cm_value_t *item = cm_map_new ();
        cm_map_set (item, "k", cm_bin_new (k.mv_data, k.mv_size));
        cm_map_set (item, "v", cm_bin_new (v.mv_data, v.mv_size));
        cm_arr_push (list, item);
        rc = mdb_cursor_get (cursor, &k, &v, MDB_NEXT);
    }
    mdb_cursor_close (cursor);
    if (rc && rc != MDB_NOTFOUND) {
        cm_value_destroy (&list);
        return st_db_error (rc, "mdb_cursor_get");
    }
    *out = list;
    return 0;
}

static const cm_value_t *
s_item_k (const cm_value_t *list, size_t i)
{
    return cm_map_get (cm_arr_at (list, i), "k");
}

static const cm_value_t *
s_item_v (const cm_value_t *list, size_t i)
{
    return cm_map_get (cm_arr_at (list, i), "v");
}

static cm_value_t *
s_decode_item (const cm_value_t *bin)
{
    cm_value_t *value = NULL;
    if (cm_value_decode (bin->u.s.ptr, bin->u.s.len, &value) || value->type != CM_T_MAP)
        cm_value_destroy (&value);
    return value;
}

static void
s_event (s_ctx_t *c, const char *session_id, const char *name, cm_value_t *data)
{
    cm_map_set_str (data, "sessionId", session_id);
    s_now_set (c, data, "timestamp");
    cm_value_t *event = cm_map_new ();
    cm_map_set_str (event, "session_id", session_id);
    cm_map_set_str (event, "event", name);
    cm_map_set (event, "data", data);
    cm_arr_push (c->events, event);
}

//  The audit record of a mutation, in the same txn as the change. It is
//  streamed into the ops' packer (cm_packer_t), no map built per write:
//  s_audit_begin packs the fields before details, the caller packs details
//  (one value), s_audit_end packs the rest and puts the record. Field order
//  is the record's layout; keep it.
static cm_packer_t *
s_audit_begin (s_ctx_t *c, const char *session_id, const char *message_id, const char *action,
               const char *user, char *id)
{
    s_id_new (id, "log");
    cm_packer_t *pk = c->ops->packer;
    cm_packer_reset (pk);
    cm_pack_map (pk, 9);
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

static int
s_audit_end (s_ctx_t *c, const char *id)
{
    cm_packer_t *pk = c->ops->packer;
    cm_pack_str (pk, "client_ip");
    cm_pack_str (pk, cm_map_str (c->p, "ip"));
    cm_pack_str (pk, "user_agent");
    cm_pack_str (pk, cm_map_str (c->p, "ua"));
    cm_pack_str (pk, "created_at");
    cm_pack_int (pk, c->now);
    const char *data;
    size_t size;
    TRY (cm_packer_finish (pk, &data, &size));
    unsigned char key[16 + CM_ID_MAX];
    st_db_be64_put (key, (uint64_t) c->now);
    st_db_be64_put (key + 8, ++c->ops->seq);
    size_t id_len = strlen (id);
    memcpy (key + 16, id, id_len);
    return st_db_put_raw (c->db, c->txn, ST_DBI_AUDIT, key, 16 + id_len, data, size);
}

//  The audit record with details a map (taken; NULL for an empty one).
static int
s_audit (s_ctx_t *c, const char *session_id, const char *message_id, const char *action,
         const char *user, cm_value_t *details)
{
    char id[CM_ID_MAX + 1];
    cm_packer_t *pk = s_audit_begin (c, session_id, message_id, action, user, id);
    if (details)
        cm_pack_value (pk, details);
    else
        cm_pack_map (pk, 0);
    cm_value_destroy (&details);
    return s_audit_end (c, id);
}

//  A rate bucket record (st_db.h): the binary form, or an older msgpack map.
static int
s_rate_read (const void *data, size_t size, int64_t *start, int64_t *count, int64_t *window)
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
    *window = cm_map_int (bucket, "window_ms", S_RATE_WINDOW_MS);
    cm_value_destroy (&bucket);
    return 0;
}

//  Fixed-window token bucket: `limit` actions per window per key. On
//  exhaustion returns CM_ERATELIMIT with c->retry_after set; the caller's
//  txn is then aborted, so a rejected request changes nothing.
static int
s_rate (s_ctx_t *c, const char *key, int64_t limit, int64_t window_ms, int64_t *remaining)
{
    if (limit <= 0)
        return 0;
    size_t key_len = strlen (key);
    const void *data;
    size_t size;
    int64_t start = 0, count = 0, stored_window;
    int rc = st_db_get_raw (c->db, c->txn, ST_DBI_RATE, key, key_len, &data, &size);
    if (rc == 0)
        rc = s_rate_read (data, size, &start, &count, &stored_window);
    if (rc && rc != CM_ENOTFOUND)
        return rc;
    if (c->now - start >= window_ms || c->now < start) {
        start = c->now;
        count = 0;
    }
    if (count >= limit) {
        c->retry_after = start + window_ms - c->now;
        if (c->retry_after < 1)
            c->retry_after = 1;
        c->why = "rate limit exceeded";
        return CM_ERATELIMIT;
    }
    unsigned char record[S_RATE_RECORD];
    record[0] = S_RECORD_MAGIC;
    st_db_be64_put (record + 1, (uint64_t) start);
    st_db_be64_put (record + 9, (uint64_t) (count + 1));
    st_db_be64_put (record + 17, (uint64_t) window_ms);
    rc = st_db_put_raw (c->db, c->txn, ST_DBI_RATE, key, key_len, record, sizeof record);
    if (remaining)
        *remaining = limit - count - 1;
    return rc;
}

//  The caller's rate buckets: "a:<user>" for every write, "r:<user>" too
//  for regenerations. (The schema caps user well below the key buffer.)
static int
s_rate_user (s_ctx_t *c, bool regeneration)
{
    char key[CM_ID_MAX + 200];
    const char *user = s_user (c);
    size_t len = strlen (user);
    if (len > sizeof key - 3)
        len = sizeof key - 3;
    memcpy (key, "a:", 2);
    memcpy (key + 2, user, len);
    key[2 + len] = 0;
    TRY (s_rate (c, key, cm_map_int (c->p, "rate_limit", 0), S_RATE_WINDOW_MS, NULL));
    if (regeneration) {
        key[0] = 'r';
        TRY (s_rate (c, key, cm_map_int (c->p, "regen_rate_limit", 0), S_RATE_WINDOW_MS,
                     NULL));
    }
    return 0;
}

//  --------------------------------------------------------------------------
//  Loading records with the ownership check

static int
s_session_load (s_ctx_t *c, const char *session_id, cm_value_t **session)
{
    TRY (st_db_get (c->db, c->txn, ST_DBI_SESSIONS, session_id, strlen (session_id), session));
    if (strcmp (cm_map_str_or (*session, "user", ""), s_user (c)) != 0) {
        cm_value_destroy (session);
        return CM_ENOTFOUND; //  never reveal another user's session
    }
    return 0;
}

//  A message and its key (into key, S_KEY_MAX). Checks the session's owner.
static int
s_message_load (s_ctx_t *c, const char *message_id, cm_value_t **message, char *key,
                size_t *key_len, cm_value_t **session)
{
    if (!message_id)
        return CM_ENOTFOUND;
    const void *data;
    size_t size;
    TRY (st_db_get_raw (c->db, c->txn, ST_DBI_MSG_INDEX, message_id, strlen (message_id), &data,
                        &size));
    if (size > S_KEY_MAX)
        return CM_EDB;
    memcpy (key, data, size);
    *key_len = size;
    cm_value_t *msg = NULL;
    TRY (st_db_get (c->db, c->txn, ST_DBI_MESSAGES, key, size, &msg));
    cm_value_t *owner = NULL;
    int rc = s_session_load (c, cm_map_str_or (msg, "session_id", ""), &owner);
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

//  Like s_message_load without decoding anything: the messages key of
//  message_id (into key, S_KEY_MAX) and its session id (into session_id,
//  CM_SESSION_ID_MAX + 1), with the ownership check. The key starts with
//  the session id, and user_sessions holds "user \0 session" exactly for
//  the sessions a user owns.
static int
s_message_locate (s_ctx_t *c, const char *message_id, char *key, size_t *key_len,
                  char *session_id)
{
    if (!message_id)
        return CM_ENOTFOUND;
    const void *data;
    size_t size;
    TRY (st_db_get_raw (c->db, c->txn, ST_DBI_MSG_INDEX, message_id, strlen (message_id), &data,
                        &size));
    if (size > S_KEY_MAX || size < 10)
        return CM_EDB;
    memcpy (key, data, size);
    *key_len = size;
    size_t session_len = size - 9;
    if (key[session_len] != 0 || session_len > CM_SESSION_ID_MAX)
        return CM_EDB;
    memcpy (session_id, key, session_len);
    session_id[session_len] = 0;
    const char *user = s_user (c);
    if (strlen (user) + 1 + session_len > S_KEY_MAX)
        return CM_ENOTFOUND;
    char owner_key[S_KEY_MAX];
    size_t owner_len = s_key2 (owner_key, user, session_id);
    return st_db_get_raw (c->db, c->txn, ST_DBI_USER_SESSIONS, owner_key, owner_len, &data,
                          &size); //  CM_ENOTFOUND: never reveal another user's message
}

//  Vote counts of the message at key. Without a votes record (st_db.h)
//  they are in the message map: msg when the caller has it decoded, else
//  read here.
static int
s_votes_get (s_ctx_t *c, const void *key, size_t key_len, const cm_value_t *msg, int64_t *ups,
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
        TRY (st_db_get (c->db, c->txn, ST_DBI_MESSAGES, key, key_len, &loaded));
        msg = loaded;
    }
    *ups = cm_map_int (msg, "upvotes", 0);
    *downs = cm_map_int (msg, "downvotes", 0);
    cm_value_destroy (&loaded);
    return 0;
}

static int
s_votes_put (s_ctx_t *c, const void *key, size_t key_len, int64_t ups, int64_t downs)
{
    unsigned char record[S_VOTES_RECORD];
    st_db_be64_put (record, (uint64_t) ups);
    st_db_be64_put (record + 8, (uint64_t) downs);
    return st_db_put_raw (c->db, c->txn, ST_DBI_VOTES, key, key_len, record, sizeof record);
}

static int
s_session_put (s_ctx_t *c, cm_value_t *session)
{
    const char *id = cm_map_str_or (session, "session_id", "");
    return st_db_put (c->db, c->txn, ST_DBI_SESSIONS, id, strlen (id), session);
}

static int
s_analytics_update (s_ctx_t *c, const char *session_id, const char *counter, int64_t delta,
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

//  --------------------------------------------------------------------------
//  Thought process, kept so that a reload shows it
//
//  A task's record holds "thoughts": {about, total, steps: [reasoning...],
//  conclusion}, from its thought_process_* events (task_event). A completed
//  task leaves its thoughts on the message; task_status shows them while
//  it runs. The events themselves carry the full texts; the store keeps the
//  first S_THOUGHT_STEPS steps and S_THOUGHT_TEXT bytes of each text.

//  A copy of at most S_THOUGHT_TEXT bytes of the string at key, never
//  cutting a UTF-8 sequence; NULL when absent.
static cm_value_t *
s_thought_text (const cm_value_t *data, const char *key)
{
    const char *text = cm_map_str (data, key);
    if (!text)
        return NULL;
    size_t len = strlen (text);
    if (len > S_THOUGHT_TEXT) {
        len = S_THOUGHT_TEXT;
        while (len > 0 && ((unsigned char) text[len] & 0xc0) == 0x80)
            len--;
    }
    return cm_strn_new (text, len);
}

//  Adds one thought_process_* event (name, data) to the task's thoughts.
//  _start begins them afresh: a retried task thinks again.
static void
s_thoughts_add (cm_value_t *task, const char *name, const cm_value_t *data)
{
    cm_value_t *thoughts = cm_map_take (task, "thoughts");
    if (!thoughts || thoughts->type != CM_T_MAP || strcmp (name, "thought_process_start") == 0) {
        cm_value_destroy (&thoughts);
        thoughts = cm_map_new ();
        cm_map_set (thoughts, "steps", cm_arr_new ());
    }
    cm_value_t *text = NULL;
    if (strcmp (name, "thought_process_start") == 0
        && (text = s_thought_text (data, "thinkingAbout")))
        cm_map_set (thoughts, "about", text);
    else if (strcmp (name, "thought_process_complete") == 0
             && (text = s_thought_text (data, "conclusion")))
        cm_map_set (thoughts, "conclusion", text);
    else if (strcmp (name, "thought_process_step") == 0) {
        cm_value_t *steps = cm_map_take (thoughts, "steps");
        if (!steps || steps->type != CM_T_ARR) {
            cm_value_destroy (&steps);
            steps = cm_arr_new ();
        }
        if (cm_value_len (steps) < S_THOUGHT_STEPS && (text = s_thought_text (data, "reasoning")))
            cm_arr_push (steps, text);
        cm_map_set (thoughts, "steps", steps);
    }
    int64_t total = cm_map_int (data, "totalSteps", 0);
    if (total > 0)
        cm_map_set_int (thoughts, "total", total);
    cm_map_set (task, "thoughts", thoughts);
}

//  The API's shape of stored thoughts (record: a task or a message) as
//  to["thought_process"], in the events' camelCase: {thinkingAbout,
//  totalSteps, steps: [{step, reasoning}], conclusion}. Nothing when none.
static void
s_thoughts_view (cm_value_t *to, const cm_value_t *record)
{
    const cm_value_t *thoughts = cm_map_get (record, "thoughts");
    if (!thoughts || thoughts->type != CM_T_MAP)
        return;
    cm_value_t *view = cm_map_new ();
    s_copy_str (view, "thinkingAbout", thoughts, "about");
    int64_t total = cm_map_int (thoughts, "total", 0);
    if (total > 0)
        cm_map_set_int (view, "totalSteps", total);
    else
        cm_map_set_nil (view, "totalSteps");
    cm_value_t *steps = cm_arr_new ();
    const cm_value_t *stored = cm_map_get (thoughts, "steps");
    for (size_t i = 0; stored && stored->type == CM_T_ARR && i < cm_value_len (stored); i++) {
        const cm_value_t *reasoning = cm_arr_at (stored, i);
        if (reasoning->type != CM_T_STR)
            continue;
        cm_value_t *step = cm_map_new ();
        cm_map_set_int (step, "step", (int64_t) i + 1);
        cm_map_set_strn (step, "reasoning", reasoning->u.s.ptr, reasoning->u.s.len);
        cm_arr_push (steps, step);
    }
    cm_map_set (view, "steps", steps);
    s_copy_str (view, "conclusion", thoughts, "conclusion");
    cm_map_set (to, "thought_process", view);
}

static int s_task_load (s_ctx_t *c, const char *task_id, cm_value_t **task);

//  While a message is being generated, its thought process is the running
//  generation's so far (kept in the task record; the conclusion once it is
//  reached): a page loaded mid-generation shows it, not the last
//  generation's.
static void
s_running_thoughts_view (s_ctx_t *c, cm_value_t *to, const cm_value_t *msg)
{
    const char *message_id = cm_map_str_or (msg, "id", "");
    const void *data;
    size_t size;
    char task_id[CM_ID_MAX + 1];
    if (st_db_get_raw (c->db, c->txn, ST_DBI_ACTIVE, message_id, strlen (message_id), &data,
                       &size)
        || size > CM_ID_MAX)
        return;
    memcpy (task_id, data, size);
    task_id[size] = 0;
    cm_value_t *task = NULL;
    if (s_task_load (c, task_id, &task) == 0)
        s_thoughts_view (to, task);
    cm_value_destroy (&task);
}

//  The public shape of a message (docs/protocol.md); key is its messages key.
static cm_value_t *
s_message_view (s_ctx_t *c, const cm_value_t *key, const cm_value_t *msg)
{
    int64_t ups = 0, downs = 0;
    if (s_votes_get (c, key->u.s.ptr, key->u.s.len, msg, &ups, &downs))
        ups = downs = 0;
    cm_value_t *view = cm_map_new ();
    s_copy_str (view, "id", msg, "id");
    s_copy_str (view, "role", msg, "role");
    cm_map_set_str (view, "content", cm_map_str_or (msg, "content", ""));
    s_time_set (view, "timestamp", cm_map_int (msg, "timestamp", 0));
    cm_value_t *meta = cm_map_new ();
    cm_map_set_bool (meta, "edited", cm_map_bool (msg, "edited", false));
    cm_map_set_bool (meta, "regenerating", cm_map_bool (msg, "regenerating", false));
    cm_map_set_bool (meta, "regenerated", cm_map_bool (msg, "regenerated", false));
    cm_map_set_int (meta, "upvotes", ups);
    cm_map_set_int (meta, "downvotes", downs);
    if (cm_map_str (msg, "model"))
        cm_map_set_str (meta, "model", cm_map_str (msg, "model"));
    if (cm_map_bool (msg, "regenerating", false))
        s_running_thoughts_view (c, meta, msg);
    else
        s_thoughts_view (meta, msg);
    cm_map_set (view, "metadata", meta);
    return view;
}

static void
s_reply_head (s_ctx_t *c, const char *message_id, const char *session_id, const char *operation)
{
    c->ok = cm_map_new ();
    cm_map_set_str (c->ok, "message_id", message_id);
    cm_map_set_str (c->ok, "session_id", session_id);
    cm_map_set_str (c->ok, "operation", operation);
    s_now_set (c, c->ok, "timestamp");
}

//  --------------------------------------------------------------------------
//  Tasks

static bool
s_task_active (const cm_value_t *task)
{
    const char *status = cm_map_str_or (task, "status", "");
    return strcmp (status, "pending") == 0 || strcmp (status, "in_progress") == 0;
}

static int
s_task_put (s_ctx_t *c, const cm_value_t *task)
{
    const char *id = cm_map_str_or (task, "task_id", "");
    return st_db_put (c->db, c->txn, ST_DBI_TASKS, id, strlen (id), task);
}

static size_t
s_queue_key (unsigned char *key, const cm_value_t *task)
{
    const char *id = cm_map_str_or (task, "task_id", "");
    size_t len = strlen (id);
    st_db_be64_put (key, (uint64_t) cm_map_int (task, "created_at", 0));
    memcpy (key + 8, id, len);
    return 8 + len;
}

//  Creates a pending task for an assistant message and marks the message
//  regenerating. CM_ECONFLICT when the message already has an active task.
static int
s_task_create (s_ctx_t *c, const char *kind, cm_value_t *message, const char *message_key,
               size_t message_key_len, const char *original_message_id, const char *user_query,
               char *task_id)
{
    const char *message_id = cm_map_str_or (message, "id", "");
    const void *data;
    size_t size;
    int rc = st_db_get_raw (c->db, c->txn, ST_DBI_ACTIVE, message_id, strlen (message_id), &data,
                            &size);
    if (rc == 0) {
        c->why = "a regeneration is already running for this message";
        return CM_ECONFLICT;
    }
    if (rc != CM_ENOTFOUND)
        return rc;
    s_id_new (task_id, "regen");
    const char *session_id = cm_map_str_or (message, "session_id", "");
    cm_value_t *task = cm_map_new ();
    cm_map_set_str (task, "task_id", task_id);
    cm_map_set_str (task, "kind", kind);
    cm_map_set_str (task, "message_id", message_id);
    cm_map_set_str (task, "session_id", session_id);
    cm_map_set_str (task, "original_message_id", original_message_id);
    cm_map_set_str (task, "user", s_user (c));
    cm_map_set_str (task, "user_query", user_query);
    s_copy_str (task, "context", c->p, "context");
    s_copy_str (task, "model", c->p, "model");
    const cm_value_t *temperature = cm_map_get (c->p, "temperature");
    if (temperature && (temperature->type == CM_T_DBL || temperature->type == CM_T_INT))
        cm_map_set_dbl (task, "temperature", cm_map_dbl (c->p, "temperature", 0));
    else
        cm_map_set_nil (task, "temperature");
    cm_map_set_str (task, "status", "pending");
    cm_map_set_int (task, "progress", 0);
    cm_map_set_int (task, "attempts", 0);
    cm_map_set_int (task, "created_at", c->now);
    cm_map_set_int (task, "started_at", 0);
    cm_map_set_int (task, "completed_at", 0);
    cm_map_set_nil (task, "error_message");
    unsigned char qkey[8 + CM_ID_MAX];
    size_t qlen = s_queue_key (qkey, task);
    rc = s_task_put (c, task);
    if (rc == 0)
        rc = st_db_put_raw (c->db, c->txn, ST_DBI_TASK_QUEUE, qkey, qlen, "", 0);
    if (rc == 0)
        rc = st_db_put_raw (c->db, c->txn, ST_DBI_ACTIVE, message_id, strlen (message_id),
                            task_id, strlen (task_id));
    cm_value_destroy (&task);
    if (rc)
        return rc;
    cm_map_set_bool (message, "regenerating", true);
    TRY (st_db_put (c->db, c->txn, ST_DBI_MESSAGES, message_key, message_key_len, message));
    if (strcmp (kind, "answer") != 0)
        TRY (s_analytics_update (c, session_id, "regeneration_count", 1, -1));
    c->ops->tasks_changed = true;
    return 0;
}

//  Ends a task (completed or failed): leaves the queue and the active
//  index, clears the message's regenerating flag (when the message still
//  exists), counts it for analytics.
static int
s_task_finish (s_ctx_t *c, cm_value_t *task, const char *status, const char *error)
{
    unsigned char qkey[8 + CM_ID_MAX];
    size_t qlen = s_queue_key (qkey, task);
    int rc = st_db_del (c->db, c->txn, ST_DBI_TASK_QUEUE, qkey, qlen);
    if (rc && rc != CM_ENOTFOUND)
        return rc;
    const char *message_id = cm_map_str_or (task, "message_id", "");
    rc = st_db_del (c->db, c->txn, ST_DBI_ACTIVE, message_id, strlen (message_id));
    if (rc && rc != CM_ENOTFOUND)
        return rc;
    cm_map_set_str (task, "status", status);
    cm_map_set_int (task, "completed_at", c->now);
    cm_map_set_str (task, "lease_worker", "");
    if (error)
        cm_map_set_str (task, "error_message", error);
    else
        cm_map_set_int (task, "progress", 100);
    TRY (s_task_put (c, task));
    const char *session_id = cm_map_str_or (task, "session_id", "");
    bool is_regen = strcmp (cm_map_str_or (task, "kind", ""), "answer") != 0;
    if (is_regen) {
        int64_t took = c->now - cm_map_int (task, "created_at", c->now);
        TRY (s_analytics_update (c, session_id,
                                 error ? "regeneration_failed" : "regeneration_completed", 1,
                                 error ? -1 : took));
    }
    //  The message may be gone (deleted while generating).
    const void *data;
    size_t size;
    rc = st_db_get_raw (c->db, c->txn, ST_DBI_MSG_INDEX, message_id, strlen (message_id), &data,
                        &size);
    if (rc == CM_ENOTFOUND)
        return 0;
    TRY (rc);
    char mkey[S_KEY_MAX];
    size_t mlen = size < S_KEY_MAX ? size : S_KEY_MAX;
    memcpy (mkey, data, mlen);
    cm_value_t *message = NULL;
    TRY (st_db_get (c->db, c->txn, ST_DBI_MESSAGES, mkey, mlen, &message));
    cm_map_set_bool (message, "regenerating", false);
    rc = st_db_put (c->db, c->txn, ST_DBI_MESSAGES, mkey, mlen, message);
    cm_value_destroy (&message);
    return rc;
}

static void
s_error_event (s_ctx_t *c, const cm_value_t *task, const char *error)
{
    cm_value_t *data = cm_map_new ();
    s_copy_str (data, "taskId", task, "task_id");
    s_copy_str (data, "messageId", task, "message_id");
    cm_map_set_str (data, "error", error);
    s_event (c, cm_map_str_or (task, "session_id", ""), "regeneration_error", data);
}

//  Fails a task for good and announces it.
static int
s_task_fail_terminal (s_ctx_t *c, cm_value_t *task, const char *error, const char *user)
{
    TRY (s_task_finish (c, task, "failed", error));
    cm_value_t *details = cm_map_new ();
    s_copy_str (details, "task_id", task, "task_id");
    cm_map_set_str (details, "error", error);
    TRY (s_audit (c, cm_map_str_or (task, "session_id", ""), cm_map_str (task, "message_id"),
                  "regenerate_failed", user, details));
    s_error_event (c, task, error);
    return 0;
}

static int
s_task_load (s_ctx_t *c, const char *task_id, cm_value_t **task)
{
    if (!task_id)
        return CM_ENOTFOUND;
    return st_db_get (c->db, c->txn, ST_DBI_TASKS, task_id, strlen (task_id), task);
}

//  The worker's task: CM_ELEASE unless it holds the lease, CM_ECANCELLED
//  when someone ended the task under it (cancel, delete of its message).
static int
s_task_held (s_ctx_t *c, cm_value_t **task_out)
{
    cm_value_t *task = NULL;
    int rc = s_task_load (c, cm_map_str (c->p, "task_id"), &task);
    if (rc == CM_ENOTFOUND) {
        c->why = "no such task";
        return CM_ELEASE;
    }
    TRY (rc);
    const char *status = cm_map_str_or (task, "status", "");
    const char *worker = cm_map_str_or (c->p, "worker", "");
    if (strcmp (status, "failed") == 0 && cm_map_bool (task, "cancelled", false)) {
        cm_value_destroy (&task);
        return CM_ECANCELLED;
    }
    if (strcmp (status, "in_progress") != 0
        || strcmp (cm_map_str_or (task, "lease_worker", ""), worker) != 0) {
        cm_value_destroy (&task);
        return CM_ELEASE;
    }
    //  Working on a lease is a sign of life too: a regenerator whose every
    //  slot is busy claims nothing for a while (ping's regenerators).
    st_ops_worker_seen (c->ops, worker, c->now);
    *task_out = task;
    return 0;
}

//  --------------------------------------------------------------------------
//  Session start

static void
s_title (const char *query, char *title, size_t size)
{
    //  First S_TITLE_CHARS code points, never cutting a UTF-8 sequence.
    size_t bytes = 0, chars = 0;
    while (query[bytes] && chars < S_TITLE_CHARS) {
        size_t step = 1;
        unsigned char lead = (unsigned char) query[bytes];
        if (lead >= 0xf0)
            step = 4;
        else if (lead >= 0xe0)
            step = 3;
        else if (lead >= 0xc0)
            step = 2;
        size_t j;
        for (j = 1; j < step && query[bytes + j]; j++)
            ;
        if (j < step || bytes + step >= size)
            break;
        bytes += step;
        chars++;
    }
    memcpy (title, query, bytes);
    title[bytes] = 0;
}

static cm_value_t *
s_message_new (const char *session_id, uint64_t seq, const char *role, const char *content,
               int64_t now, char *id_out)
{
    char uuid[CM_UUID_LEN + 1];
    s_uuid (uuid);
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
    return msg; //  votes live in their own record (s_votes_get)
}

static int
s_message_insert (s_ctx_t *c, cm_value_t *msg, char *key, size_t *key_len)
{
    *key_len = s_message_key (key, cm_map_str_or (msg, "session_id", ""),
                              (uint64_t) cm_map_int (msg, "seq", 0));
    TRY (st_db_put (c->db, c->txn, ST_DBI_MESSAGES, key, *key_len, msg));
    const char *id = cm_map_str_or (msg, "id", "");
    return st_db_put_raw (c->db, c->txn, ST_DBI_MSG_INDEX, id, strlen (id), key, *key_len);
}

static int
s_session_start (s_ctx_t *c)
{
    const char *session_id = cm_map_str_or (c->p, "session_id", "");
    const char *query = cm_map_str_or (c->p, "query", "");
    if (!cm_session_id_valid (session_id)) {
        c->why = "invalid session id";
        return CM_EINVAL;
    }
    if (!*query) {
        c->why = "query must not be empty";
        return CM_EINVAL;
    }
    cm_value_t *session = NULL;
    int rc = st_db_get (c->db, c->txn, ST_DBI_SESSIONS, session_id, strlen (session_id), &session);
    if (rc == 0 && strcmp (cm_map_str_or (session, "user", ""), s_user (c)) != 0) {
        cm_value_destroy (&session);
        return CM_ENOTFOUND;
    }
    if (rc && rc != CM_ENOTFOUND)
        return rc;
    rc = s_rate_user (c, true);
    if (rc) {
        cm_value_destroy (&session);
        return rc;
    }
    if (!session) {
        char title[S_TITLE_CHARS * 4 + 1];
        s_title (query, title, sizeof title);
        session = cm_map_new ();
        cm_map_set_str (session, "session_id", session_id);
        cm_map_set_str (session, "user", s_user (c));
        cm_map_set_str (session, "title", title);
        cm_map_set_int (session, "created_at", c->now);
        cm_map_set_int (session, "message_count", 0);
        cm_map_set_int (session, "next_seq", 1);
        char ukey[S_KEY_MAX];
        size_t ulen = s_key2 (ukey, s_user (c), session_id);
        rc = st_db_put_raw (c->db, c->txn, ST_DBI_USER_SESSIONS, ukey, ulen, "", 0);
    }
    uint64_t seq = (uint64_t) cm_map_int (session, "next_seq", 1);
    char user_id[CM_MESSAGE_ID_MAX + 1], assistant_id[CM_MESSAGE_ID_MAX + 1];
    cm_value_t *user_msg = s_message_new (session_id, seq, "user", query, c->now, user_id);
    cm_value_t *asst_msg = s_message_new (session_id, seq + 1, "assistant", "", c->now,
                                          assistant_id);
    cm_map_set_int (session, "next_seq", (int64_t) seq + 2);
    cm_map_set_int (session, "message_count", cm_map_int (session, "message_count", 0) + 2);
    cm_map_set_int (session, "updated_at", c->now);
    char ukey[S_KEY_MAX], akey[S_KEY_MAX];
    size_t ulen, alen;
    char task_id[CM_ID_MAX + 1];
    if (rc == 0)
        rc = s_session_put (c, session);
    if (rc == 0)
        rc = s_message_insert (c, user_msg, ukey, &ulen);
    if (rc == 0)
        rc = s_message_insert (c, asst_msg, akey, &alen);
    if (rc == 0)
        rc = s_task_create (c, "answer", asst_msg, akey, alen, user_id, query, task_id);
    cm_value_destroy (&session);
    cm_value_destroy (&user_msg);
    cm_value_destroy (&asst_msg);
    TRY (rc);
    cm_value_t *details = cm_map_new ();
    cm_map_set_str (details, "task_id", task_id);
    cm_map_set_str (details, "assistant_message_id", assistant_id);
    TRY (s_audit (c, session_id, user_id, "session_start", s_user (c), details));
    cm_value_t *data = cm_map_new ();
    cm_map_set_str (data, "session_id", session_id);
    cm_map_set_str (data, "user_message_id", user_id);
    cm_map_set_str (data, "assistant_message_id", assistant_id);
    cm_map_set_str (data, "task_id", task_id);
    c->ok = cm_map_new ();
    cm_map_set (c->ok, "data", data);
    cm_value_t *event = cm_map_new ();
    cm_map_set_str (event, "status", "message_added");
    s_event (c, session_id, "session_updated", event);
    return 0;
}

//  --------------------------------------------------------------------------
//  Feedback, edit, delete, regenerate

//  The type of a stored vote without decoding it: s_feedback_put writes
//  feedback_type as the record's first key, so the msgpack starts with a
//  fixmap header, fixstr "feedback_type", fixstr "upvote"/"downvote".
//  1 up, 0 down, -1 for any other layout (decode those).
static int
s_vote_peek (const void *data, size_t size)
{
    const unsigned char *p = data;
    static const char key[] = "\xad" "feedback_type";
    if (size < 24 || (p[0] & 0xf0) != 0x80 || memcmp (p + 1, key, 14) != 0)
        return -1;
    if (p[15] == 0xa6 && memcmp (p + 16, "upvote", 6) == 0)
        return 1;
    if (p[15] == 0xa8 && memcmp (p + 16, "downvote", 8) == 0)
        return 0;
    return -1;
}

//  Touches four small records (vote, counts, rate bucket, audit) and never
//  decodes or rewrites the message itself: this is the hottest write.
static int
s_feedback_put (s_ctx_t *c)
{
    const char *type = cm_map_str_or (c->p, "feedback_type", "");
    bool up = strcmp (type, "upvote") == 0;
    if (!up && strcmp (type, "downvote") != 0) {
        c->why = "feedback_type must be upvote or downvote";
        return CM_EINVAL;
    }
    const char *message_id = cm_map_str (c->p, "message_id");
    char mkey[S_KEY_MAX], session_id[CM_SESSION_ID_MAX + 1];
    size_t mlen;
    TRY (s_message_locate (c, message_id, mkey, &mlen, session_id));
    TRY (s_rate_user (c, false));
    char fkey[S_KEY_MAX];
    size_t flen = s_key2 (fkey, message_id, s_user (c));
    const void *stored;
    size_t size;
    int rc = st_db_get_raw (c->db, c->txn, ST_DBI_FEEDBACK, fkey, flen, &stored, &size);
    if (rc && rc != CM_ENOTFOUND)
        return rc;
    bool replaced = rc == 0;
    int previous = replaced ? s_vote_peek (stored, size) : -1;
    if (replaced && previous < 0) {
        cm_value_t *record = NULL;
        if (cm_value_decode (stored, size, &record) || record->type != CM_T_MAP) {
            cm_value_destroy (&record);
            cm_error ("stored record in feedback does not decode");
            return CM_EPROTO;
        }
        previous = strcmp (cm_map_str_or (record, "feedback_type", ""), "upvote") == 0;
        cm_value_destroy (&record);
    }
    int64_t ups, downs;
    TRY (s_votes_get (c, mkey, mlen, NULL, &ups, &downs));
    if (replaced) {
        //  One vote per user per message: the new vote replaces the old.
        if (previous == 1)
            ups = ups > 0 ? ups - 1 : 0;
        else
            downs = downs > 0 ? downs - 1 : 0;
    }
    if (up)
        ups++;
    else
        downs++;
    char feedback_id[CM_ID_MAX + 1];
    s_id_new (feedback_id, "fb");
    //  Streamed like the audit record (s_audit_begin); field order is the
    //  record's layout, feedback_type first for s_vote_peek.
    cm_packer_t *pk = c->ops->packer;
    cm_packer_reset (pk);
    cm_pack_map (pk, 10);
    cm_pack_str (pk, "feedback_type");
    cm_pack_str (pk, type);
    cm_pack_str (pk, "id");
    cm_pack_str (pk, feedback_id);
    cm_pack_str (pk, "message_id");
    cm_pack_str (pk, message_id);
    cm_pack_str (pk, "session_id");
    cm_pack_str (pk, session_id);
    cm_pack_str (pk, "user_id");
    cm_pack_str (pk, s_user (c));
    cm_pack_str (pk, "reason");
    cm_pack_str (pk, cm_map_str (c->p, "reason"));
    const cm_value_t *metadata = cm_map_get (c->p, "metadata");
    cm_pack_str (pk, "metadata");
    cm_pack_value (pk, metadata && metadata->type == CM_T_MAP ? metadata : NULL);
    cm_pack_str (pk, "created_at");
    cm_pack_int (pk, c->now);
    cm_pack_str (pk, "client_ip");
    cm_pack_str (pk, cm_map_str (c->p, "ip"));
    cm_pack_str (pk, "user_agent");
    cm_pack_str (pk, cm_map_str (c->p, "ua"));
    const char *bytes;
    rc = cm_packer_finish (pk, &bytes, &size);
    if (rc == 0)
        rc = st_db_put_raw (c->db, c->txn, ST_DBI_FEEDBACK, fkey, flen, bytes, size);
    if (rc == 0)
        rc = s_votes_put (c, mkey, mlen, ups, downs);
    if (rc == 0) {
        char log_id[CM_ID_MAX + 1];
        pk = s_audit_begin (c, session_id, message_id, "feedback", s_user (c), log_id);
        cm_pack_map (pk, 2);
        cm_pack_str (pk, "feedback_type");
        cm_pack_str (pk, type);
        cm_pack_str (pk, "replaced");
        cm_pack_bool (pk, replaced);
        rc = s_audit_end (c, log_id);
    }
    TRY (rc);
    c->ok = cm_map_new ();
    cm_map_set_str (c->ok, "feedback_id", feedback_id);
    cm_map_set_str (c->ok, "message_id", message_id);
    cm_map_set_str (c->ok, "session_id", session_id);
    s_now_set (c, c->ok, "timestamp");
    cm_value_t *data = cm_map_new ();
    cm_map_set_str (data, "messageId", message_id);
    cm_map_set_str (data, "feedbackId", feedback_id);
    cm_map_set_str (data, "feedbackType", type);
    cm_map_set_int (data, "upvotes", ups);
    cm_map_set_int (data, "downvotes", downs);
    s_event (c, session_id, "feedback_submitted", data);
    return 0;
}

//  The first assistant message after seq in the session (message_edit), or
//  the last user message before seq (regen_create). *found NULL when none.
static int
s_neighbour (s_ctx_t *c, const char *session_id, uint64_t seq, bool after, cm_value_t **found,
             char *key, size_t *key_len)
{
    *found = NULL;
    char prefix[S_KEY_MAX];
    size_t plen = strlen (session_id) + 1;
    memcpy (prefix, session_id, plen);
    cm_value_t *list = NULL;
    TRY (s_collect (c, ST_DBI_MESSAGES, prefix, plen, &list));
    for (size_t i = 0; i < cm_value_len (list); i++) {
        const cm_value_t *k = s_item_k (list, i);
        uint64_t other = st_db_be64_get ((const unsigned char *) k->u.s.ptr + plen);
        if (after ? other <= seq : other >= seq)
            continue;
        cm_value_t *msg = s_decode_item (s_item_v (list, i));
        if (!msg)
            continue;
        const char *role = cm_map_str_or (msg, "role", "");
        bool wanted = after ? strcmp (role, "assistant") == 0 : strcmp (role, "user") == 0;
        if (!wanted) {
            cm_value_destroy (&msg);
            continue;
        }
        cm_value_destroy (found);
        *found = msg;
        memcpy (key, k->u.s.ptr, k->u.s.len);
        *key_len = k->u.s.len;
        if (after)
            break; //  the first one after; before: keep the last one
    }
    cm_value_destroy (&list);
    return 0;
}

static int
s_message_edit (s_ctx_t *c)
{
    const char *message_id = cm_map_str (c->p, "message_id");
    const char *content = cm_map_str_or (c->p, "content", "");
    if (!*content) {
        c->why = "content must not be empty";
        return CM_EINVAL;
    }
    bool trigger = cm_map_bool (c->p, "trigger_regeneration", true);
    char mkey[S_KEY_MAX], akey[S_KEY_MAX];
    size_t mlen, alen = 0;
    cm_value_t *msg = NULL, *assistant = NULL;
    TRY (s_message_load (c, message_id, &msg, mkey, &mlen, NULL));
    const char *session_id = cm_map_str_or (msg, "session_id", "");
    int rc = 0;
    if (trigger && strcmp (cm_map_str_or (msg, "role", ""), "user") == 0)
        rc = s_neighbour (c, session_id, (uint64_t) cm_map_int (msg, "seq", 0), true, &assistant,
                          akey, &alen);
    if (rc == 0)
        rc = s_rate_user (c, assistant != NULL);
    char *original = strdup (cm_map_str_or (msg, "content", ""));
    char hist_id[CM_ID_MAX + 1];
    s_id_new (hist_id, "hist");
    if (rc == 0) {
        cm_value_t *history = cm_map_new ();
        cm_map_set_str (history, "id", hist_id);
        cm_map_set_str (history, "message_id", message_id);
        cm_map_set_str (history, "session_id", session_id);
        cm_map_set_str (history, "original_content", original);
        cm_map_set_str (history, "edited_content", content);
        cm_map_set_int (history, "edit_timestamp", c->now);
        cm_map_set_str (history, "user_id", s_user (c));
        char hkey[S_KEY_MAX];
        size_t id_len = strlen (message_id), hist_len = strlen (hist_id);
        memcpy (hkey, message_id, id_len);
        hkey[id_len] = 0;
        st_db_be64_put ((unsigned char *) hkey + id_len + 1, (uint64_t) c->now);
        st_db_be64_put ((unsigned char *) hkey + id_len + 9, ++c->ops->seq);
        memcpy (hkey + id_len + 17, hist_id, hist_len);
        rc = st_db_put (c->db, c->txn, ST_DBI_HISTORY, hkey, id_len + 17 + hist_len, history);
        cm_value_destroy (&history);
    }
    if (rc == 0) {
        cm_map_set_str (msg, "content", content);
        cm_map_set_bool (msg, "edited", true);
        rc = st_db_put (c->db, c->txn, ST_DBI_MESSAGES, mkey, mlen, msg);
    }
    if (rc == 0)
        rc = s_analytics_update (c, session_id, "edit_count", 1, -1);
    char task_id[CM_ID_MAX + 1] = "";
    if (rc == 0 && assistant)
        rc = s_task_create (c, "edit", assistant, akey, alen, message_id, content, task_id);
    if (rc == 0) {
        cm_value_t *details = cm_map_new ();
        cm_map_set_str (details, "history_id", hist_id);
        if (*task_id)
            cm_map_set_str (details, "task_id", task_id);
        rc = s_audit (c, session_id, message_id, "edit", s_user (c), details);
    }
    cm_value_destroy (&assistant);
    if (rc) {
        free (original);
        cm_value_destroy (&msg);
        return rc;
    }
    s_reply_head (c, message_id, session_id, "edit");
    cm_value_t *data = cm_map_new ();
    cm_map_set_str (data, "original_content", original);
    cm_map_set_str (data, "new_content", content);
    cm_map_set_bool (data, "triggered_regeneration", *task_id != 0);
    if (*task_id)
        cm_map_set_str (data, "regeneration_task_id", task_id);
    else
        cm_map_set_nil (data, "regeneration_task_id");
    cm_map_set (c->ok, "data", data);
    cm_value_t *event = cm_map_new ();
    cm_map_set_str (event, "messageId", message_id);
    cm_map_set_str (event, "content", content);
    cm_map_set_str (event, "previousContent", original);
    cm_map_set_bool (event, "edited", true);
    s_event (c, session_id, "message_edited", event);
    free (original);
    cm_value_destroy (&msg);
    return 0;
}

//  Removes every key of a prefix range in one DBI.
static int
s_delete_prefix (s_ctx_t *c, st_dbi_t which, const void *prefix, size_t len)
{
    cm_value_t *list = NULL;
    TRY (s_collect (c, which, prefix, len, &list));
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < cm_value_len (list); i++) {
        const cm_value_t *k = s_item_k (list, i);
        rc = st_db_del (c->db, c->txn, which, k->u.s.ptr, k->u.s.len);
    }
    cm_value_destroy (&list);
    return rc;
}

static int
s_delete_one (s_ctx_t *c, const cm_value_t *k, const cm_value_t *msg)
{
    const char *id = cm_map_str_or (msg, "id", "");
    size_t id_len = strlen (id);
    TRY (st_db_del (c->db, c->txn, ST_DBI_MESSAGES, k->u.s.ptr, k->u.s.len));
    TRY (st_db_del (c->db, c->txn, ST_DBI_MSG_INDEX, id, id_len));
    int gone = st_db_del (c->db, c->txn, ST_DBI_VOTES, k->u.s.ptr, k->u.s.len);
    if (gone && gone != CM_ENOTFOUND)
        return gone;
    char prefix[S_KEY_MAX];
    memcpy (prefix, id, id_len);
    prefix[id_len] = 0;
    TRY (s_delete_prefix (c, ST_DBI_FEEDBACK, prefix, id_len + 1));
    TRY (s_delete_prefix (c, ST_DBI_HISTORY, prefix, id_len + 1));
    //  A generation running for a deleted message ends now; its worker
    //  gets CM_ECANCELLED on its next call and publishes nothing.
    const void *data;
    size_t size;
    int rc = st_db_get_raw (c->db, c->txn, ST_DBI_ACTIVE, id, id_len, &data, &size);
    if (rc == CM_ENOTFOUND)
        return 0;
    TRY (rc);
    char task_id[CM_ID_MAX + 1];
    size_t tlen = size < CM_ID_MAX ? size : CM_ID_MAX;
    memcpy (task_id, data, tlen);
    task_id[tlen] = 0;
    cm_value_t *task = NULL;
    TRY (s_task_load (c, task_id, &task));
    cm_map_set_bool (task, "cancelled", true);
    rc = s_task_fail_terminal (c, task, "message deleted", s_user (c));
    cm_value_destroy (&task);
    return rc;
}

static int
s_message_delete (s_ctx_t *c)
{
    const char *message_id = cm_map_str (c->p, "message_id");
    char mkey[S_KEY_MAX];
    size_t mlen;
    cm_value_t *msg = NULL, *session = NULL;
    TRY (s_message_load (c, message_id, &msg, mkey, &mlen, &session));
    cm_value_destroy (&msg);
    const char *session_id = cm_map_str_or (session, "session_id", "");
    size_t plen = strlen (session_id) + 1;
    cm_value_t *list = NULL;
    int rc = s_rate_user (c, false);
    if (rc == 0)
        rc = s_collect (c, ST_DBI_MESSAGES, session_id, plen, &list);
    cm_value_t *ids = cm_arr_new ();
    for (size_t i = 0; rc == 0 && i < cm_value_len (list); i++) {
        const cm_value_t *k = s_item_k (list, i);
        //  Keys sort by seq, so "this message and every later one" is the
        //  tail of the range from this message's key.
        if (k->u.s.len != mlen || memcmp (k->u.s.ptr, mkey, mlen) < 0)
            continue;
        cm_value_t *item = s_decode_item (s_item_v (list, i));
        if (!item)
            continue;
        cm_arr_push (ids, cm_str_new (cm_map_str_or (item, "id", "")));
        rc = s_delete_one (c, k, item);
        cm_value_destroy (&item);
    }
    cm_value_destroy (&list);
    int64_t deleted = (int64_t) cm_value_len (ids);
    if (rc == 0) {
        int64_t count = cm_map_int (session, "message_count", 0) - deleted;
        cm_map_set_int (session, "message_count", count < 0 ? 0 : count);
        cm_map_set_int (session, "updated_at", c->now);
        rc = s_session_put (c, session);
    }
    if (rc == 0) {
        cm_value_t *details = cm_map_new ();
        cm_map_set_int (details, "deleted_count", deleted);
        cm_map_set (details, "deleted_message_ids", cm_value_dup (ids));
        rc = s_audit (c, session_id, message_id, "delete", s_user (c), details);
    }
    if (rc) {
        cm_value_destroy (&ids);
        cm_value_destroy (&session);
        return rc;
    }
    s_reply_head (c, message_id, session_id, "delete");
    cm_value_t *data = cm_map_new ();
    cm_map_set_int (data, "deleted_count", deleted);
    cm_map_set (data, "deleted_message_ids", cm_value_dup (ids));
    cm_map_set (c->ok, "data", data);
    cm_value_t *event = cm_map_new ();
    cm_map_set_str (event, "messageId", message_id);
    cm_map_set_int (event, "deletedCount", deleted);
    cm_map_set (event, "deletedMessageIds", ids);
    s_event (c, session_id, "message_deleted", event);
    cm_value_destroy (&session);
    return 0;
}

static int
s_regen_create (s_ctx_t *c)
{
    const char *message_id = cm_map_str (c->p, "message_id");
    char mkey[S_KEY_MAX], ukey[S_KEY_MAX];
    size_t mlen, ulen;
    cm_value_t *msg = NULL, *user_msg = NULL;
    TRY (s_message_load (c, message_id, &msg, mkey, &mlen, NULL));
    int rc = 0;
    if (strcmp (cm_map_str_or (msg, "role", ""), "assistant") != 0) {
        c->why = "only assistant messages can be regenerated";
        rc = CM_EINVAL;
    }
    const char *session_id = cm_map_str_or (msg, "session_id", "");
    if (rc == 0)
        rc = s_neighbour (c, session_id, (uint64_t) cm_map_int (msg, "seq", 0), false,
                          &user_msg, ukey, &ulen);
    if (rc == 0 && !user_msg) {
        c->why = "no user message precedes this message";
        rc = CM_EINVAL;
    }
    if (rc == 0)
        rc = s_rate_user (c, true);
    char task_id[CM_ID_MAX + 1];
    const char *user_id = user_msg ? cm_map_str_or (user_msg, "id", "") : "";
    if (rc == 0)
        rc = s_task_create (c, "regenerate", msg, mkey, mlen, user_id,
                            cm_map_str_or (user_msg, "content", ""), task_id);
    if (rc == 0) {
        cm_value_t *details = cm_map_new ();
        cm_map_set_str (details, "task_id", task_id);
        rc = s_audit (c, session_id, message_id, "regenerate", s_user (c), details);
    }
    if (rc == 0) {
        s_reply_head (c, message_id, session_id, "regenerate");
        cm_value_t *data = cm_map_new ();
        cm_map_set_str (data, "task_id", task_id);
        cm_map_set_str (data, "original_message_id", user_id);
        cm_map_set (c->ok, "data", data);
    }
    cm_value_destroy (&user_msg);
    cm_value_destroy (&msg);
    return rc;
}

//  --------------------------------------------------------------------------
//  Task requests

static cm_value_t *
s_task_status_view (s_ctx_t *c, const cm_value_t *task)
{
    cm_value_t *view = cm_map_new ();
    s_copy_str (view, "task_id", task, "task_id");
    s_copy_str (view, "status", task, "status");
    cm_map_set_int (view, "progress", cm_map_int (task, "progress", 0));
    s_copy_str (view, "message_id", task, "message_id");
    s_copy_str (view, "session_id", task, "session_id");
    s_time_set (view, "created_at", cm_map_int (task, "created_at", 0));
    s_time_set (view, "started_at", cm_map_int (task, "started_at", 0));
    s_time_set (view, "completed_at", cm_map_int (task, "completed_at", 0));
    s_copy_str (view, "error_message", task, "error_message");
    s_thoughts_view (view, task);
    s_now_set (c, view, "timestamp");
    return view;
}

static int
s_task_cancel (s_ctx_t *c)
{
    cm_value_t *task = NULL;
    TRY (s_task_load (c, cm_map_str (c->p, "task_id"), &task));
    int rc = 0;
    if (strcmp (cm_map_str_or (task, "user", ""), s_user (c)) != 0)
        rc = CM_ENOTFOUND;
    else if (!s_task_active (task)) {
        c->why = "the task has already ended";
        rc = CM_EBADSTATE;
    }
    if (rc == 0)
        rc = s_rate_user (c, false);
    if (rc == 0) {
        cm_map_set_bool (task, "cancelled", true);
        rc = s_task_fail_terminal (c, task, "cancelled", s_user (c));
    }
    if (rc == 0)
        c->ok = s_task_status_view (c, task);
    cm_value_destroy (&task);
    return rc;
}

//  The conversation a generation answers: messages of the session in
//  order, up to and including the user message that prompts the answer.
static cm_value_t *
s_conversation (s_ctx_t *c, const cm_value_t *task)
{
    cm_value_t *conversation = cm_arr_new ();
    const char *session_id = cm_map_str_or (task, "session_id", "");
    const char *original = cm_map_str_or (task, "original_message_id", "");
    const char *target = cm_map_str_or (task, "message_id", "");
    cm_value_t *list = NULL;
    if (s_collect (c, ST_DBI_MESSAGES, session_id, strlen (session_id) + 1, &list))
        return conversation;
    for (size_t i = 0; i < cm_value_len (list); i++) {
        cm_value_t *msg = s_decode_item (s_item_v (list, i));
        if (!msg)
            continue;
        const char *id = cm_map_str_or (msg, "id", "");
        bool stop = strcmp (id, target) == 0;
        if (!stop) {
            cm_value_t *turn = cm_map_new ();
            s_copy_str (turn, "role", msg, "role");
            cm_map_set_str (turn, "content", cm_map_str_or (msg, "content", ""));
            cm_arr_push (conversation, turn);
            stop = strcmp (id, original) == 0;
        }
        cm_value_destroy (&msg);
        if (stop)
            break;
    }
    cm_value_destroy (&list);
    return conversation;
}

static cm_value_t *
s_claim_view (s_ctx_t *c, const cm_value_t *task)
{
    cm_value_t *view = cm_map_new ();
    s_copy_str (view, "task_id", task, "task_id");
    s_copy_str (view, "kind", task, "kind");
    s_copy_str (view, "message_id", task, "message_id");
    s_copy_str (view, "session_id", task, "session_id");
    s_copy_str (view, "original_message_id", task, "original_message_id");
    s_copy_str (view, "user_query", task, "user_query");
    s_copy_str (view, "context", task, "context");
    s_copy_str (view, "model", task, "model");
    const cm_value_t *temperature = cm_map_get (task, "temperature");
    cm_map_set (view, "temperature",
                temperature ? cm_value_dup (temperature) : cm_nil_new ());
    cm_map_set_int (view, "attempt", cm_map_int (task, "attempts", 0));
    cm_map_set_int (view, "lease_ms", c->ops->config.lease_ms);
    cm_map_set (view, "conversation", s_conversation (c, task));
    return view;
}

//  Walks the active queue oldest first. Claims up to max claimable tasks
//  for worker (when worker is set), fails those out of attempts, and, with
//  requeue, turns expired leases back into pending ones (cleanup).
static int
s_sweep (s_ctx_t *c, const char *worker, int64_t max, bool requeue, cm_value_t *claimed)
{
    cm_value_t *list = NULL;
    TRY (s_collect (c, ST_DBI_TASK_QUEUE, "", 0, &list));
    int64_t next_expiry = 0;
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < cm_value_len (list); i++) {
        const cm_value_t *k = s_item_k (list, i);
        if (k->u.s.len <= 8 || k->u.s.len - 8 > CM_ID_MAX)
            continue;
        char task_id[CM_ID_MAX + 1];
        memcpy (task_id, k->u.s.ptr + 8, k->u.s.len - 8);
        task_id[k->u.s.len - 8] = 0;
        cm_value_t *task = NULL;
        rc = s_task_load (c, task_id, &task);
        if (rc == CM_ENOTFOUND) {
            rc = st_db_del (c->db, c->txn, ST_DBI_TASK_QUEUE, k->u.s.ptr, k->u.s.len);
            continue;
        }
        if (rc)
            break;
        const char *status = cm_map_str_or (task, "status", "");
        bool pending = strcmp (status, "pending") == 0;
        int64_t expires = cm_map_int (task, "lease_expires", 0);
        bool expired = strcmp (status, "in_progress") == 0 && expires <= c->now;
        if (!pending && !expired) {
            if (strcmp (status, "in_progress") == 0 && (!next_expiry || expires < next_expiry))
                next_expiry = expires;
            cm_value_destroy (&task);
            continue;
        }
        bool want = worker && (int64_t) cm_value_len (claimed) < max;
        int64_t attempts = cm_map_int (task, "attempts", 0);
        if ((want || requeue) && attempts >= c->ops->config.max_attempts) {
            char error[96];
            snprintf (error, sizeof error, "gave up after %lld attempts", (long long) attempts);
            rc = s_task_fail_terminal (c, task, error, cm_map_str (task, "user"));
        }
        else if (want) {
            cm_map_set_str (task, "status", "in_progress");
            cm_map_set_str (task, "lease_worker", worker);
            cm_map_set_int (task, "lease_expires", c->now + c->ops->config.lease_ms);
            cm_map_set_int (task, "attempts", attempts + 1);
            if (cm_map_int (task, "started_at", 0) <= 0)
                cm_map_set_int (task, "started_at", c->now);
            rc = s_task_put (c, task);
            if (rc == 0) {
                cm_arr_push (claimed, s_claim_view (c, task));
                cm_value_t *data = cm_map_new ();
                s_copy_str (data, "taskId", task, "task_id");
                s_copy_str (data, "messageId", task, "message_id");
                s_copy_str (data, "originalMessageId", task, "original_message_id");
                s_copy_str (data, "userQuery", task, "user_query");
                s_event (c, cm_map_str_or (task, "session_id", ""), "message_regenerating",
                         data);
                int64_t lease_end = c->now + c->ops->config.lease_ms;
                if (!next_expiry || lease_end < next_expiry)
                    next_expiry = lease_end;
            }
        }
        else if (requeue && expired) {
            cm_map_set_str (task, "status", "pending");
            cm_map_set_str (task, "lease_worker", "");
            rc = s_task_put (c, task);
            c->ops->tasks_changed = true;
        }
        else if (worker)
            //  Claimable now but beyond this call's max: wake other polls.
            c->ops->tasks_changed = true;
        cm_value_destroy (&task);
    }
    cm_value_destroy (&list);
    c->ops->next_lease_expiry = next_expiry;
    return rc;
}

static int
s_task_claim (s_ctx_t *c)
{
    const char *worker = cm_map_str_or (c->p, "worker", "");
    if (!*worker) {
        c->why = "worker must not be empty";
        return CM_EINVAL;
    }
    int64_t max = cm_map_int (c->p, "max", 1);
    if (max < 1)
        max = 1;
    if (max > 64)
        max = 64;
    st_ops_worker_seen (c->ops, worker, c->now);
    cm_value_t *claimed = cm_arr_new ();
    int rc = s_sweep (c, worker, max, false, claimed);
    if (rc) {
        cm_value_destroy (&claimed);
        return rc;
    }
    c->ok = cm_map_new ();
    cm_map_set (c->ok, "tasks", claimed);
    return 0;
}

static int
s_task_progress (s_ctx_t *c)
{
    cm_value_t *task = NULL;
    TRY (s_task_held (c, &task));
    int64_t progress = cm_map_int (c->p, "progress", 0);
    progress = progress < 0 ? 0 : progress > 100 ? 100 : progress;
    int64_t lease_end = c->now + c->ops->config.lease_ms;
    cm_map_set_int (task, "progress", progress);
    cm_map_set_int (task, "lease_expires", lease_end);
    s_copy_str (task, "progress_message", c->p, "message");
    s_copy_str (task, "partial", c->p, "partial");
    int rc = s_task_put (c, task);
    if (rc == 0) {
        c->ok = cm_map_new ();
        s_time_set (c->ok, "lease_expires_at", lease_end);
        cm_value_t *data = cm_map_new ();
        s_copy_str (data, "taskId", task, "task_id");
        s_copy_str (data, "messageId", task, "message_id");
        cm_map_set_int (data, "progress", progress);
        cm_map_set_str (data, "message", cm_map_str_or (c->p, "message", ""));
        cm_map_set_str (data, "partialContent", cm_map_str_or (c->p, "partial", ""));
        s_event (c, cm_map_str_or (task, "session_id", ""), "regeneration_progress", data);
    }
    cm_value_destroy (&task);
    return rc;
}

static int
s_task_event (s_ctx_t *c)
{
    const char *name = cm_map_str_or (c->p, "event", "");
    if (strcmp (name, "thought_process_start") != 0 && strcmp (name, "thought_process_step") != 0
        && strcmp (name, "thought_process_complete") != 0) {
        c->why = "event must be thought_process_start, _step or _complete";
        return CM_EINVAL;
    }
    cm_value_t *task = NULL;
    TRY (s_task_held (c, &task));
    cm_map_set_int (task, "lease_expires", c->now + c->ops->config.lease_ms);
    s_thoughts_add (task, name, cm_map_get (c->p, "data"));
    int rc = s_task_put (c, task);
    if (rc == 0) {
        c->ok = cm_map_new ();
        const cm_value_t *given = cm_map_get (c->p, "data");
        cm_value_t *data = given && given->type == CM_T_MAP ? cm_value_dup (given) : cm_map_new ();
        s_copy_str (data, "taskId", task, "task_id");
        s_copy_str (data, "messageId", task, "message_id");
        s_event (c, cm_map_str_or (task, "session_id", ""), name, data);
    }
    cm_value_destroy (&task);
    return rc;
}

static int
s_task_complete (s_ctx_t *c)
{
    cm_value_t *task = NULL;
    TRY (s_task_held (c, &task));
    const char *message_id = cm_map_str_or (task, "message_id", "");
    const char *content = cm_map_str_or (c->p, "content", "");
    const void *data;
    size_t size;
    int rc = st_db_get_raw (c->db, c->txn, ST_DBI_MSG_INDEX, message_id, strlen (message_id), &data,
                            &size);
    char mkey[S_KEY_MAX];
    size_t mlen = 0;
    if (rc == 0) {
        mlen = size < S_KEY_MAX ? size : S_KEY_MAX;
        memcpy (mkey, data, mlen);
    }
    cm_value_t *msg = NULL;
    if (rc == 0)
        rc = st_db_get (c->db, c->txn, ST_DBI_MESSAGES, mkey, mlen, &msg);
    if (rc == CM_ENOTFOUND) {
        //  The message is gone (a delete ends its task, so this is a
        //  leftover): the worker stops; cleanup retires the task.
        cm_value_destroy (&task);
        return CM_ECANCELLED;
    }
    bool regenerated = strcmp (cm_map_str_or (task, "kind", ""), "answer") != 0;
    if (rc == 0) {
        cm_map_set_str (msg, "content", content);
        cm_map_set_bool (msg, "regenerated", regenerated);
        const char *model = cm_map_str (c->p, "model");
        if (!model)
            model = cm_map_str (task, "model");
        if (model)
            cm_map_set_str (msg, "model", model);
        //  The answer's thought process replaces the last one's (or goes,
        //  when this answer had none).
        cm_value_t *old = cm_map_take (msg, "thoughts");
        cm_value_destroy (&old);
        const cm_value_t *thoughts = cm_map_get (task, "thoughts");
        if (thoughts)
            cm_map_set (msg, "thoughts", cm_value_dup (thoughts));
        rc = st_db_put (c->db, c->txn, ST_DBI_MESSAGES, mkey, mlen, msg);
    }
    cm_value_destroy (&msg);
    if (rc == 0)
        rc = s_task_finish (c, task, "completed", NULL);
    if (rc == 0) {
        cm_value_t *details = cm_map_new ();
        s_copy_str (details, "task_id", task, "task_id");
        s_copy_str (details, "kind", task, "kind");
        rc = s_audit (c, cm_map_str_or (task, "session_id", ""), message_id,
                      "regenerate_complete", cm_map_str (task, "user"), details);
    }
    if (rc == 0) {
        c->ok = cm_map_new ();
        cm_value_t *event = cm_map_new ();
        s_copy_str (event, "taskId", task, "task_id");
        cm_map_set_str (event, "messageId", message_id);
        cm_map_set_str (event, "content", content);
        s_event (c, cm_map_str_or (task, "session_id", ""), "message_regenerated", event);
    }
    cm_value_destroy (&task);
    return rc;
}

static int
s_task_fail (s_ctx_t *c)
{
    cm_value_t *task = NULL;
    TRY (s_task_held (c, &task));
    const char *error = cm_map_str_or (c->p, "error", "generation failed");
    bool retry = cm_map_bool (c->p, "retryable", false)
                 && cm_map_int (task, "attempts", 0) < c->ops->config.max_attempts;
    int rc;
    if (retry) {
        cm_map_set_str (task, "status", "pending");
        cm_map_set_str (task, "lease_worker", "");
        cm_map_set_str (task, "last_error", error);
        rc = s_task_put (c, task);
        c->ops->tasks_changed = true;
    }
    else
        rc = s_task_fail_terminal (c, task, error, cm_map_str (task, "user"));
    if (rc == 0) {
        c->ok = cm_map_new ();
        cm_map_set_str (c->ok, "status", retry ? "pending" : "failed");
    }
    cm_value_destroy (&task);
    return rc;
}

static int
s_rate_consume (s_ctx_t *c)
{
    int64_t window = cm_map_int (c->p, "window_ms", S_RATE_WINDOW_MS);
    if (window <= 0)
        window = S_RATE_WINDOW_MS;
    int64_t limit = cm_map_int (c->p, "limit", 0);
    int64_t remaining = limit > 0 ? limit : 0;
    TRY (s_rate (c, cm_map_str_or (c->p, "key", ""), limit, window, &remaining));
    c->ok = cm_map_new ();
    cm_map_set_int (c->ok, "remaining", remaining);
    cm_map_set_int (c->ok, "retry_after_ms", 0);
    return 0;
}

//  --------------------------------------------------------------------------
//  Reads

static int
s_session_get (s_ctx_t *c)
{
    cm_value_t *session = NULL;
    TRY (s_session_load (c, cm_map_str_or (c->p, "session_id", ""), &session));
    const char *session_id = cm_map_str_or (session, "session_id", "");
    cm_value_t *list = NULL;
    int rc = s_collect (c, ST_DBI_MESSAGES, session_id, strlen (session_id) + 1, &list);
    if (rc) {
        cm_value_destroy (&session);
        return rc;
    }
    cm_value_t *messages = cm_arr_new ();
    for (size_t i = 0; i < cm_value_len (list); i++) {
        cm_value_t *msg = s_decode_item (s_item_v (list, i));
        if (msg)
            cm_arr_push (messages, s_message_view (c, s_item_k (list, i), msg));
        cm_value_destroy (&msg);
    }
    cm_value_destroy (&list);
    cm_value_t *view = cm_map_new ();
    cm_map_set_str (view, "session_id", session_id);
    cm_map_set_str (view, "title", cm_map_str_or (session, "title", ""));
    s_time_set (view, "created_at", cm_map_int (session, "created_at", 0));
    s_time_set (view, "updated_at", cm_map_int (session, "updated_at", 0));
    cm_map_set_int (view, "message_count", (int64_t) cm_value_len (messages));
    cm_map_set (view, "messages", messages);
    c->ok = cm_map_new ();
    cm_map_set (c->ok, "session", view);
    cm_value_destroy (&session);
    return 0;
}

static int
s_by_updated_desc (const void *a, const void *b)
{
    int64_t x = cm_map_int (*(const cm_value_t *const *) a, "updated_at", 0);
    int64_t y = cm_map_int (*(const cm_value_t *const *) b, "updated_at", 0);
    return x < y ? 1 : x > y ? -1 : 0;
}

static int
s_session_list (s_ctx_t *c)
{
    int64_t limit = cm_map_int (c->p, "limit", 100);
    if (limit < 1 || limit > 1000)
        limit = 100;
    const char *user = s_user (c);
    size_t plen = strlen (user) + 1;
    cm_value_t *list = NULL;
    TRY (s_collect (c, ST_DBI_USER_SESSIONS, user, plen, &list));
    size_t n = cm_value_len (list), count = 0;
    cm_value_t **sessions = calloc (n ? n : 1, sizeof *sessions);
    for (size_t i = 0; sessions && i < n; i++) {
        const cm_value_t *k = s_item_k (list, i);
        cm_value_t *session = NULL;
        if (st_db_get (c->db, c->txn, ST_DBI_SESSIONS, k->u.s.ptr + plen, k->u.s.len - plen,
                       &session)
            == 0)
            sessions[count++] = session;
    }
    cm_value_destroy (&list);
    if (!sessions)
        return CM_ENOMEM;
    qsort (sessions, count, sizeof *sessions, s_by_updated_desc);
    cm_value_t *out = cm_arr_new ();
    for (size_t i = 0; i < count; i++) {
        if ((int64_t) i < limit) {
            cm_value_t *view = cm_map_new ();
            s_copy_str (view, "session_id", sessions[i], "session_id");
            cm_map_set_str (view, "title", cm_map_str_or (sessions[i], "title", ""));
            s_time_set (view, "created_at", cm_map_int (sessions[i], "created_at", 0));
            s_time_set (view, "updated_at", cm_map_int (sessions[i], "updated_at", 0));
            cm_map_set_int (view, "message_count", cm_map_int (sessions[i], "message_count", 0));
            cm_arr_push (out, view);
        }
        cm_value_destroy (&sessions[i]);
    }
    free (sessions);
    c->ok = cm_map_new ();
    cm_map_set (c->ok, "sessions", out);
    return 0;
}

static int
s_by_created_desc (const void *a, const void *b)
{
    int64_t x = cm_map_int (*(const cm_value_t *const *) a, "created_at", 0);
    int64_t y = cm_map_int (*(const cm_value_t *const *) b, "created_at", 0);
    return x < y ? 1 : x > y ? -1 : 0;
}

static int
s_feedback_get (s_ctx_t *c)
{
    const char *message_id = cm_map_str (c->p, "message_id");
    char mkey[S_KEY_MAX], session_id[CM_SESSION_ID_MAX + 1];
    size_t mlen;
    TRY (s_message_locate (c, message_id, mkey, &mlen, session_id));
    int64_t ups, downs;
    TRY (s_votes_get (c, mkey, mlen, NULL, &ups, &downs));
    char prefix[S_KEY_MAX];
    size_t plen = strlen (message_id) + 1;
    memcpy (prefix, message_id, plen);
    cm_value_t *list = NULL;
    TRY (s_collect (c, ST_DBI_FEEDBACK, prefix, plen, &list));
    size_t n = cm_value_len (list), count = 0;
    cm_value_t **items = calloc (n ? n : 1, sizeof *items);
    for (size_t i = 0; items && i < n; i++) {
        cm_value_t *item = s_decode_item (s_item_v (list, i));
        if (item)
            items[count++] = item;
    }
    cm_value_destroy (&list);
    if (!items)
        return CM_ENOMEM;
    qsort (items, count, sizeof *items, s_by_created_desc);
    cm_value_t *recent = cm_arr_new ();
    for (size_t i = 0; i < count; i++) {
        if (i < S_RECENT_FEEDBACK) {
            cm_value_t *view = cm_map_new ();
            s_copy_str (view, "id", items[i], "id");
            s_copy_str (view, "user_id", items[i], "user_id");
            s_copy_str (view, "feedback_type", items[i], "feedback_type");
            s_copy_str (view, "reason", items[i], "reason");
            const cm_value_t *meta = cm_map_get (items[i], "metadata");
            cm_map_set (view, "metadata", meta ? cm_value_dup (meta) : cm_nil_new ());
            s_time_set (view, "created_at", cm_map_int (items[i], "created_at", 0));
            cm_arr_push (recent, view);
        }
        cm_value_destroy (&items[i]);
    }
    free (items);
    c->ok = cm_map_new ();
    cm_map_set_str (c->ok, "message_id", message_id);
    cm_value_t *summary = cm_map_new ();
    cm_map_set_int (summary, "upvotes", ups);
    cm_map_set_int (summary, "downvotes", downs);
    cm_map_set_int (summary, "total", ups + downs);
    cm_map_set (c->ok, "feedback_summary", summary);
    cm_map_set (c->ok, "recent_feedback", recent);
    s_now_set (c, c->ok, "timestamp");
    return 0;
}

static int
s_history_get (s_ctx_t *c)
{
    const char *message_id = cm_map_str (c->p, "message_id");
    char mkey[S_KEY_MAX], session_id[CM_SESSION_ID_MAX + 1];
    size_t mlen;
    TRY (s_message_locate (c, message_id, mkey, &mlen, session_id));
    char prefix[S_KEY_MAX];
    size_t plen = strlen (message_id) + 1;
    memcpy (prefix, message_id, plen);
    cm_value_t *list = NULL;
    TRY (s_collect (c, ST_DBI_HISTORY, prefix, plen, &list));
    cm_value_t *history = cm_arr_new ();
    for (size_t i = 0; i < cm_value_len (list); i++) {
        cm_value_t *item = s_decode_item (s_item_v (list, i));
        if (!item)
            continue;
        cm_value_t *view = cm_map_new ();
        s_copy_str (view, "id", item, "id");
        s_copy_str (view, "original_content", item, "original_content");
        s_copy_str (view, "edited_content", item, "edited_content");
        s_time_set (view, "edit_timestamp", cm_map_int (item, "edit_timestamp", 0));
        s_copy_str (view, "user_id", item, "user_id");
        cm_arr_push (history, view);
        cm_value_destroy (&item);
    }
    cm_value_destroy (&list);
    c->ok = cm_map_new ();
    cm_map_set_str (c->ok, "message_id", message_id);
    cm_map_set_int (c->ok, "edit_count", (int64_t) cm_value_len (history));
    cm_map_set (c->ok, "history", history);
    s_now_set (c, c->ok, "timestamp");
    return 0;
}

static int
s_task_status (s_ctx_t *c)
{
    cm_value_t *task = NULL;
    TRY (s_task_load (c, cm_map_str (c->p, "task_id"), &task));
    int rc = 0;
    if (strcmp (cm_map_str_or (task, "user", ""), s_user (c)) != 0)
        rc = CM_ENOTFOUND;
    else
        c->ok = s_task_status_view (c, task);
    cm_value_destroy (&task);
    return rc;
}

static int
s_cmp_i64 (const void *a, const void *b)
{
    int64_t x = *(const int64_t *) a, y = *(const int64_t *) b;
    return x < y ? -1 : x > y;
}

static int
s_analytics_get (s_ctx_t *c)
{
    cm_value_t *session = NULL;
    TRY (s_session_load (c, cm_map_str_or (c->p, "session_id", ""), &session));
    const char *session_id = cm_map_str_or (session, "session_id", "");
    cm_value_t *list = NULL;
    int rc = s_collect (c, ST_DBI_MESSAGES, session_id, strlen (session_id) + 1, &list);
    cm_value_t *stats = NULL;
    if (rc == 0) {
        rc = st_db_get (c->db, c->txn, ST_DBI_ANALYTICS, session_id, strlen (session_id), &stats);
        if (rc == CM_ENOTFOUND) {
            stats = cm_map_new ();
            rc = 0;
        }
    }
    if (rc) {
        cm_value_destroy (&list);
        cm_value_destroy (&session);
        return rc;
    }
    int64_t ups = 0, downs = 0;
    for (size_t i = 0; i < cm_value_len (list); i++) {
        const cm_value_t *k = s_item_k (list, i);
        int64_t u, d;
        if (s_votes_get (c, k->u.s.ptr, k->u.s.len, NULL, &u, &d) == 0) {
            ups += u;
            downs += d;
        }
    }
    int64_t completed = cm_map_int (stats, "regeneration_completed", 0);
    int64_t failed = cm_map_int (stats, "regeneration_failed", 0);
    cm_value_t *a = cm_map_new ();
    cm_map_set_int (a, "total_messages", (int64_t) cm_value_len (list));
    cm_map_set_int (a, "regeneration_count", cm_map_int (stats, "regeneration_count", 0));
    cm_map_set_int (a, "regeneration_completed", completed);
    cm_map_set_int (a, "regeneration_failed", failed);
    if (completed + failed > 0)
        cm_map_set_dbl (a, "regeneration_success_rate",
                        (double) completed / (double) (completed + failed));
    else
        cm_map_set_nil (a, "regeneration_success_rate");
    cm_map_set_int (a, "edit_count", cm_map_int (stats, "edit_count", 0));
    cm_map_set_int (a, "feedback_count", ups + downs);
    cm_map_set_int (a, "upvotes", ups);
    cm_map_set_int (a, "downvotes", downs);
    if (ups + downs > 0)
        cm_map_set_dbl (a, "user_satisfaction", (double) ups / (double) (ups + downs));
    else
        cm_map_set_nil (a, "user_satisfaction");
    const cm_value_t *durations = cm_map_get (stats, "durations_ms");
    size_t n = durations && durations->type == CM_T_ARR ? cm_value_len (durations) : 0;
    if (n) {
        int64_t *sorted = calloc (n, sizeof *sorted);
        double sum = 0;
        for (size_t i = 0; sorted && i < n; i++) {
            const cm_value_t *d = cm_arr_at (durations, i);
            sorted[i] = d->type == CM_T_INT ? d->u.i : 0;
            sum += (double) sorted[i];
        }
        if (sorted) {
            qsort (sorted, n, sizeof *sorted, s_cmp_i64);
            size_t rank = (size_t) ceil (0.95 * (double) n);
            cm_map_set_dbl (a, "average_regeneration_seconds", sum / (double) n / 1000.0);
            cm_map_set_dbl (a, "p95_regeneration_seconds",
                            (double) sorted[rank ? rank - 1 : 0] / 1000.0);
            free (sorted);
        }
    }
    else {
        cm_map_set_nil (a, "average_regeneration_seconds");
        cm_map_set_nil (a, "p95_regeneration_seconds");
    }
    c->ok = cm_map_new ();
    cm_map_set_str (c->ok, "session_id", session_id);
    cm_map_set (c->ok, "analytics", a);
    s_now_set (c, c->ok, "timestamp");
    cm_value_destroy (&list);
    cm_value_destroy (&stats);
    cm_value_destroy (&session);
    return 0;
}

static int
s_audit_query (s_ctx_t *c)
{
    const char *session_id = cm_map_str (c->p, "session_id");
    if (session_id) {
        cm_value_t *session = NULL;
        TRY (s_session_load (c, session_id, &session));
        cm_value_destroy (&session);
    }
    int64_t limit = cm_map_int (c->p, "limit", 100);
    if (limit < 1 || limit > 1000)
        limit = 100;
    MDB_cursor *cursor;
    int rc = mdb_cursor_open (c->txn, st_db_dbi (c->db, ST_DBI_AUDIT), &cursor);
    if (rc)
        return st_db_error (rc, "mdb_cursor_open");
    cm_value_t *entries = cm_arr_new ();
    MDB_val k, v;
    //  Newest first: walk the time-ordered keys backwards.
    rc = mdb_cursor_get (cursor, &k, &v, MDB_LAST);
    while (rc == 0 && (int64_t) cm_value_len (entries) < limit) {
        cm_value_t *entry = NULL;
        if (cm_value_decode (v.mv_data, v.mv_size, &entry) == 0 && entry->type == CM_T_MAP) {
            bool mine = session_id
                            ? strcmp (cm_map_str_or (entry, "session_id", ""), session_id) == 0
                            : strcmp (cm_map_str_or (entry, "user_id", ""), s_user (c)) == 0;
            if (mine) {
                int64_t at = cm_map_int (entry, "created_at", 0);
                cm_map_set_nil (entry, "created_at");
                s_time_set (entry, "created_at", at);
                cm_arr_push (entries, entry);
                entry = NULL;
            }
        }
        cm_value_destroy (&entry);
        rc = mdb_cursor_get (cursor, &k, &v, MDB_PREV);
    }
    mdb_cursor_close (cursor);
    c->ok = cm_map_new ();
    cm_map_set (c->ok, "entries", entries);
    return 0;
}

//  --------------------------------------------------------------------------
//  Dispatch

typedef int (*s_handler_t) (s_ctx_t *c);

static s_handler_t
s_handler (cm_msg_t type)
{
    switch (type) {
        case CM_MSG_SESSION_START: return s_session_start;
        case CM_MSG_MESSAGE_EDIT: return s_message_edit;
        case CM_MSG_MESSAGE_DELETE: return s_message_delete;
        case CM_MSG_FEEDBACK_PUT: return s_feedback_put;
        case CM_MSG_REGEN_CREATE: return s_regen_create;
        case CM_MSG_TASK_CANCEL: return s_task_cancel;
        case CM_MSG_RATE_CONSUME: return s_rate_consume;
        case CM_MSG_TASK_CLAIM: return s_task_claim;
        case CM_MSG_TASK_PROGRESS: return s_task_progress;
        case CM_MSG_TASK_EVENT: return s_task_event;
        case CM_MSG_TASK_COMPLETE: return s_task_complete;
        case CM_MSG_TASK_FAIL: return s_task_fail;
        case CM_MSG_SESSION_GET: return s_session_get;
        case CM_MSG_SESSION_LIST: return s_session_list;
        case CM_MSG_FEEDBACK_GET: return s_feedback_get;
        case CM_MSG_HISTORY_GET: return s_history_get;
        case CM_MSG_TASK_STATUS: return s_task_status;
        case CM_MSG_ANALYTICS_GET: return s_analytics_get;
        case CM_MSG_AUDIT_QUERY: return s_audit_query;
        default: return NULL;
    }
}

bool
st_ops_is_write (cm_msg_t type)
{
    switch (type) {
        case CM_MSG_SESSION_START:
        case CM_MSG_MESSAGE_EDIT:
        case CM_MSG_MESSAGE_DELETE:
        case CM_MSG_FEEDBACK_PUT:
        case CM_MSG_REGEN_CREATE:
        case CM_MSG_TASK_CANCEL:
        case CM_MSG_RATE_CONSUME:
        case CM_MSG_TASK_CLAIM:
        case CM_MSG_TASK_PROGRESS:
        case CM_MSG_TASK_EVENT:
        case CM_MSG_TASK_COMPLETE:
        case CM_MSG_TASK_FAIL: return true;
        default: return false;
    }
}

bool
st_ops_is_read (cm_msg_t type)
{
    return type == CM_MSG_PING || (!st_ops_is_write (type) && s_handler (type) != NULL);
}

st_ops_t *
st_ops_new (st_db_t *db, const st_ops_config_t *config)
{
    st_ops_t *self = calloc (1, sizeof *self);
    if (!self)
        return NULL;
    self->db = db;
    self->config = *config;
    if (self->config.max_attempts < 1)
        self->config.max_attempts = 1;
    if (self->config.worker_live_ms <= 0)
        self->config.worker_live_ms = 30000;
    self->packer = cm_packer_new ();
    if (!self->packer) {
        free (self);
        return NULL;
    }
    pthread_mutex_init (&self->workers_lock, NULL);
    return self;
}

void
st_ops_destroy (st_ops_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    pthread_mutex_destroy (&(*self_p)->workers_lock);
    cm_packer_destroy (&(*self_p)->packer);
    free (*self_p);
    *self_p = NULL;
}

//  Turns a handler's result into the reply envelope.
static cm_envelope_t *
s_reply (s_ctx_t *c, int rc)
{
    if (rc == 0) {
        cm_value_t *ok = c->ok ? c->ok : cm_map_new ();
        c->ok = NULL;
        return cm_envelope_reply_ok (c->req, ok);
    }
    cm_value_destroy (&c->ok);
    cm_envelope_t *reply = cm_envelope_reply_error (c->req, rc, c->why ? c->why : cm_strerror (rc));
    if (reply && rc == CM_ERATELIMIT)
        cm_map_set_int (reply->payload, "retry_after_ms", c->retry_after);
    return reply;
}

static int
s_run (st_ops_t *self, MDB_txn *txn, const cm_envelope_t *request, int64_t now,
       cm_envelope_t **reply, cm_value_t *events, bool write)
{
    s_ctx_t c = {.ops = self, .db = self->db, .txn = txn, .now = now, .req = request,
                 .p = request->payload, .events = cm_arr_new ()};
    s_handler_t handler = s_handler (request->type);
    int rc;
    if (!handler || st_ops_is_write (request->type) != write) {
        c.why = "not a store request of this kind";
        rc = CM_EPROTO;
    }
    else {
        char why[128];
        rc = cm_msg_validate (request->type, request->payload, why, sizeof why);
        rc = rc ? CM_EPROTO : handler (&c);
        if (rc == CM_EPROTO && !c.why)
            c.why = "malformed request";
    }
    if (rc == 0 && events) {
        //  Move, in order, without copying big contents.
        for (size_t i = 0; i < c.events->u.c.len; i++)
            cm_arr_push (events, c.events->u.c.items[i]);
        c.events->u.c.len = 0;
    }
    cm_value_destroy (&c.events);
    *reply = s_reply (&c, rc);
    if (rc && rc != CM_EFULL && rc != CM_EDB)
        cm_debug ("%s refused: %s", cm_msg_name (request->type), cm_error_name (rc));
    return rc;
}

int
st_ops_handle (st_ops_t *self, MDB_txn *txn, const cm_envelope_t *request, int64_t now,
               cm_envelope_t **reply, cm_value_t *events)
{
    return s_run (self, txn, request, now, reply, events, true);
}

//  Drops the items of arr past its first len (events of a request whose
//  changes were rolled back).
static void
s_arr_truncate (cm_value_t *arr, size_t len)
{
    while (arr->u.c.len > len)
        cm_value_destroy (&arr->u.c.items[--arr->u.c.len]);
}

#define S_REPLAY 1 //  s_batch_once: run the batch again with nested txns

//  One attempt at a batch. Fast path (nested false): every request runs
//  straight in the batch txn. That is exact as long as a failing request
//  has not written anything yet (the st_db write count did not move), which
//  is how every handler fails on bad input, ownership, state or rate
//  limits: its checks come first. A request that fails after writing (or
//  with a database error) would leave half its changes in the txn, so the
//  attempt is abandoned (S_REPLAY) and the batch replayed with one nested
//  txn per request. Nesting costs LMDB a dirty-list allocation and a copy
//  of every touched page per request, which was ~1/3 of the writer's time.
//  Returns 0 (committed), S_REPLAY, CM_EFULL (grow and replay) or CM_EDB.
static int
s_batch_once (st_ops_t *self, cm_envelope_t *const *requests, size_t n, int64_t now,
              cm_envelope_t **replies, cm_value_t *events, bool nested)
{
    MDB_txn *txn = NULL;
    int rc = st_db_write_begin (self->db, NULL, &txn);
    for (size_t i = 0; rc == 0 && i < n; i++) {
        size_t events_before = cm_value_len (events);
        if (!nested) {
            uint64_t writes = st_db_writes (self->db);
            int result = s_run (self, txn, requests[i], now, &replies[i], events, true);
            if (result == CM_EFULL)
                rc = CM_EFULL;
            else if (result
                     && (st_db_writes (self->db) != writes || result == CM_EDB
                         || result == CM_ENOMEM))
                rc = S_REPLAY;
            continue;
        }
        MDB_txn *child = NULL;
        rc = st_db_write_begin (self->db, txn, &child);
        if (rc)
            break;
        int result = s_run (self, child, requests[i], now, &replies[i], events, true);
        if (result == 0)
            result = st_db_commit (child);
        else
            st_db_abort (child);
        if (result == CM_EFULL) {
            rc = CM_EFULL;
            break;
        }
        if (result && replies[i] && replies[i]->type == CM_MSG_OK) {
            //  The child commit itself failed after an ok reply.
            s_arr_truncate (events, events_before);
            cm_envelope_destroy (&replies[i]);
            replies[i] = cm_envelope_reply_error (requests[i], result, NULL);
        }
    }
    if (rc == 0)
        return st_db_commit (txn);
    st_db_abort (txn);
    return rc;
}

int
st_ops_write_batch (st_ops_t *self, cm_envelope_t *const *requests, size_t n, int64_t now,
                    cm_envelope_t **replies, cm_value_t **events_out)
{
    bool nested = false;
    for (int attempt = 0; attempt < 32; attempt++) {
        for (size_t i = 0; i < n; i++)
            replies[i] = NULL;
        cm_value_t *events = cm_arr_new ();
        int rc = s_batch_once (self, requests, n, now, replies, events, nested);
        if (rc == 0) {
            *events_out = events;
            return 0;
        }
        cm_value_destroy (&events);
        for (size_t i = 0; i < n; i++)
            cm_envelope_destroy (&replies[i]);
        if (rc == S_REPLAY && !nested) {
            cm_debug ("write batch of %zu replayed with nested txns", n);
            nested = true;
            continue;
        }
        if (rc == CM_EFULL && st_db_grow (self->db) == 0)
            continue; //  replay the whole batch in the bigger map
        break;
    }
    for (size_t i = 0; i < n; i++)
        replies[i] = cm_envelope_reply_error (requests[i], CM_EDB, NULL);
    *events_out = cm_arr_new ();
    return CM_EDB;
}

int
st_ops_read (st_ops_t *self, const cm_envelope_t *request, int64_t now, cm_envelope_t **reply)
{
    MDB_txn *txn;
    int rc = st_db_read_begin (self->db, &txn);
    if (rc) {
        *reply = cm_envelope_reply_error (request, rc, NULL);
        return rc;
    }
    if (request->type == CM_MSG_PING) {
        cm_value_t *ok = cm_map_new ();
        cm_map_set_str (ok, "service", "store");
        cm_map_set_int (ok, "regenerators", st_ops_live_workers (self, now, NULL));
        //  A regenerator's health check asks about itself: worker ids
        //  start "rg-<host>-<pid>-" (rg_service.c).
        const char *prefix = cm_map_str (request->payload, "worker_prefix");
        if (prefix)
            cm_map_set_int (ok, "regenerators_matching", st_ops_live_workers (self, now, prefix));
        *reply = cm_envelope_reply_ok (request, ok);
    }
    else
        rc = s_run (self, txn, request, now, reply, NULL, false);
    st_db_read_end (self->db, txn);
    return rc;
}

int
st_ops_cleanup (st_ops_t *self, int64_t now, cm_value_t **events_out)
{
    for (int attempt = 0; attempt < 8; attempt++) {
        cm_envelope_t *request = cm_envelope_new (CM_MSG_NONE, "cleanup");
        s_ctx_t c = {.ops = self, .db = self->db, .now = now, .req = request,
                     .p = request->payload, .events = cm_arr_new ()};
        int rc = st_db_write_begin (self->db, NULL, &c.txn);
        if (rc == 0)
            rc = s_sweep (&c, NULL, 0, true, NULL);
        int64_t cutoff = now - self->config.retention_ms;
        cm_value_t *list = NULL;
        if (rc == 0)
            rc = s_collect (&c, ST_DBI_TASKS, "", 0, &list);
        for (size_t i = 0; rc == 0 && i < cm_value_len (list); i++) {
            cm_value_t *task = s_decode_item (s_item_v (list, i));
            if (task && !s_task_active (task) && cm_map_int (task, "completed_at", 0) < cutoff) {
                const cm_value_t *k = s_item_k (list, i);
                rc = st_db_del (self->db, c.txn, ST_DBI_TASKS, k->u.s.ptr, k->u.s.len);
            }
            cm_value_destroy (&task);
        }
        cm_value_destroy (&list);
        //  Audit keys start with their time: the old ones are the head.
        if (rc == 0)
            rc = s_collect (&c, ST_DBI_AUDIT, "", 0, &list);
        for (size_t i = 0; rc == 0 && i < cm_value_len (list); i++) {
            const cm_value_t *k = s_item_k (list, i);
            if (k->u.s.len < 8
                || (int64_t) st_db_be64_get ((const unsigned char *) k->u.s.ptr) >= cutoff)
                break;
            rc = st_db_del (self->db, c.txn, ST_DBI_AUDIT, k->u.s.ptr, k->u.s.len);
        }
        cm_value_destroy (&list);
        if (rc == 0)
            rc = s_collect (&c, ST_DBI_RATE, "", 0, &list);
        for (size_t i = 0; rc == 0 && i < cm_value_len (list); i++) {
            const cm_value_t *v = s_item_v (list, i);
            int64_t start = 0, count, window = 0;
            if (s_rate_read (v->u.s.ptr, v->u.s.len, &start, &count, &window) || start + window < now) {
                const cm_value_t *k = s_item_k (list, i);
                rc = st_db_del (self->db, c.txn, ST_DBI_RATE, k->u.s.ptr, k->u.s.len);
            }
        }
        cm_value_destroy (&list);
        if (rc == 0)
            rc = st_db_commit (c.txn);
        else
            st_db_abort (c.txn);
        cm_envelope_destroy (&request);
        if (rc == 0) {
            *events_out = c.events;
            return 0;
        }
        cm_value_destroy (&c.events);
        if (rc == CM_EFULL && st_db_grow (self->db) == 0)
            continue;
        *events_out = cm_arr_new ();
        return rc;
    }
    *events_out = cm_arr_new ();
    return CM_EDB;
}

bool
st_ops_take_tasks_changed (st_ops_t *self)
{
    bool changed = self->tasks_changed;
    self->tasks_changed = false;
    return changed;
}

int64_t
st_ops_next_lease_expiry (st_ops_t *self)
{
    return self->next_lease_expiry;
}

void
st_ops_worker_seen (st_ops_t *self, const char *worker, int64_t now)
{
    pthread_mutex_lock (&self->workers_lock);
    int slot = -1, oldest = 0;
    for (int i = 0; i < S_MAX_WORKERS; i++) {
        if (strcmp (self->workers[i].name, worker) == 0) {
            slot = i;
            break;
        }
        if (self->workers[i].seen < self->workers[oldest].seen)
            oldest = i;
    }
    if (slot < 0) {
        slot = oldest;
        snprintf (self->workers[slot].name, sizeof self->workers[slot].name, "%s", worker);
    }
    self->workers[slot].seen = now;
    pthread_mutex_unlock (&self->workers_lock);
}

int
st_ops_live_workers (st_ops_t *self, int64_t now, const char *prefix)
{
    int live = 0;
    size_t prefix_len = prefix ? strlen (prefix) : 0;
    pthread_mutex_lock (&self->workers_lock);
    for (int i = 0; i < S_MAX_WORKERS; i++)
        if (self->workers[i].name[0] && now - self->workers[i].seen <= self->config.worker_live_ms
            && strncmp (self->workers[i].name, prefix ? prefix : "", prefix_len) == 0)
            live++;
    pthread_mutex_unlock (&self->workers_lock);
    return live;
}
