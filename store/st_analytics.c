/*  st_analytics.c: action analytics as counters (st_analytics.h).  */
#include "st_analytics.h"

#include "cm_error.h"
#include "st_key.h"
#include "st_rows.h"
#include "st_view.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

//  Counters every model and user row lists (zero when never counted), in
//  this order; the text ones (reasons, causes) come on top.
static const char *const s_counters[] = {"turns",   "answers",  "regenerations", "edits",
                                         "deletes", "cancels",  "failures",      "upvotes",
                                         "downvotes", "withdrawals"};
#define S_COUNTERS (sizeof s_counters / sizeof s_counters[0])

//  How many bytes of text fit in max without cutting a UTF-8 sequence.
static size_t
s_cut (const char *text, size_t max)
{
    size_t len = strlen (text);
    if (len <= max)
        return len;
    while (max > 0 && ((unsigned char) text[max] & 0xc0) == 0x80)
        max--;
    return max;
}

static int
s_key (st_key_t *key, char kind, uint32_t day, const char *name, const char *counter,
       const char *suffix)
{
    size_t name_len = s_cut (name, ST_ANALYTICS_NAME_MAX);
    size_t counter_len = strlen (counter);
    size_t suffix_len = suffix ? s_cut (suffix, ST_ANALYTICS_TEXT_MAX) : 0;
    size_t len = 1 + 4 + name_len + 1 + counter_len + suffix_len;
    if (len > sizeof key->bytes)
        return CM_EINVAL;
    char *p = key->bytes;
    *p++ = kind;
    for (int i = 3; i >= 0; i--)
        *p++ = (char) ((day >> (8 * i)) & 0xff);
    memcpy (p, name, name_len);
    p += name_len;
    *p++ = 0;
    memcpy (p, counter, counter_len);
    p += counter_len;
    if (suffix_len)
        memcpy (p, suffix, suffix_len);
    key->len = len;
    return 0;
}

static int
s_add (st_ctx_t *c, char kind, uint32_t day, const char *name, const char *counter,
       const char *suffix)
{
    st_key_t key;
    ST_TRY (s_key (&key, kind, day, name, counter, suffix));
    const void *data;
    size_t size;
    uint64_t count = 0;
    int rc = st_db_get_raw (c->db, c->txn, ST_DBI_COUNTERS, key.bytes, key.len, &data, &size);
    if (rc == 0 && size == 8)
        count = st_db_be64_get (data);
    else if (rc == 0)
        return CM_ECORRUPT;
    else if (rc != CM_ENOTFOUND)
        return rc;
    unsigned char record[8];
    st_db_be64_put (record, count + 1);
    return st_db_put_raw (c->db, c->txn, ST_DBI_COUNTERS, key.bytes, key.len, record, 8);
}

//  The model an action counts for (into out, CM_MODEL_MAX + 1).
static int
s_model (st_ctx_t *c, const char *message_id, char *out)
{
    const char *asked = cm_map_str (c->p, "model");
    if (asked && *asked) {
        snprintf (out, CM_MODEL_MAX + 1, "%s", asked);
        return 0;
    }
    snprintf (out, CM_MODEL_MAX + 1, "default");
    st_key_t key;
    int rc = st_rows_message_key (c, message_id, &key);
    if (rc == CM_ENOTFOUND)
        return 0; //  gone (deleted) or never a message
    ST_TRY (rc);
    cm_value_t *msg = NULL;
    ST_TRY (st_db_get (c->db, c->txn, ST_DBI_MESSAGES, key.bytes, key.len, &msg));
    const char *model = cm_map_str (msg, "model");
    if (model && *model)
        snprintf (out, CM_MODEL_MAX + 1, "%s", model);
    cm_value_destroy (&msg);
    return 0;
}

//  One counter for the model and the user of the action, and (plain
//  counters only) the model's all-time total (kind 'T', day 0).
static int
s_both (st_ctx_t *c, uint32_t day, const char *model, const char *user, const char *counter,
        const char *suffix)
{
    ST_TRY (s_add (c, 'm', day, model, counter, suffix));
    if (!suffix)
        ST_TRY (s_add (c, 'T', 0, model, counter, NULL));
    return s_add (c, 'u', day, user, counter, suffix);
}

//  Upper bounds (ms) of the generation time buckets: 100 ms doubling to
//  about 27 min; a longer one counts in the last.
#define S_BUCKETS 15

static int64_t
s_bucket_bound (int i)
{
    return 100LL << i;
}

//  The bucket counter a generation of ms goes to ("gen_ms:<bound>").
static void
s_bucket_name (int64_t ms, char *out, size_t size)
{
    int i = 0;
    while (i < S_BUCKETS - 1 && ms > s_bucket_bound (i))
        i++;
    snprintf (out, size, "%lld", (long long) s_bucket_bound (i));
}

//  How long the finished task of an answer took, from its request (ms),
//  and until its first checkpoint with text; -1 when unknown (its record
//  is gone, no checkpoint had text).
static int
s_took (st_ctx_t *c, const cm_value_t *details, int64_t *took, int64_t *first)
{
    *took = -1;
    *first = -1;
    const char *task_id = cm_map_str (details, "task_id");
    if (!task_id)
        return 0;
    cm_value_t *task = NULL;
    int rc = st_db_get (c->db, c->txn, ST_DBI_TASKS, task_id, strlen (task_id), &task);
    if (rc == CM_ENOTFOUND)
        return 0;
    ST_TRY (rc);
    int64_t created = cm_map_int (task, "created_at", c->now);
    *took = c->now >= created ? c->now - created : 0;
    int64_t text_at = cm_map_int (task, "first_text_at", 0);
    if (text_at > 0)
        *first = text_at >= created ? text_at - created : 0;
    cm_value_destroy (&task);
    return 0;
}

int
st_analytics_count (st_ctx_t *c, const void *record, size_t size)
{
    cm_value_t *entry = NULL;
    if (cm_value_decode (record, size, &entry) || entry->type != CM_T_MAP) {
        cm_value_destroy (&entry);
        return CM_EPROTO;
    }
    const char *action = cm_map_str_or (entry, "action_type", "");
    const char *user = cm_map_str_or (entry, "user_id", "");
    const cm_value_t *details = cm_map_get (entry, "details");
    uint32_t day = (uint32_t) (c->now / ST_ANALYTICS_DAY_MS);
    const char *counter = NULL, *suffix = NULL;
    bool vote = strcmp (action, "feedback") == 0;
    bool up = vote && strcmp (cm_map_str_or (details, "feedback_type", ""), "upvote") == 0;
    if (strcmp (action, "session_start") == 0)
        counter = "turns";
    else if (strcmp (action, "regenerate") == 0)
        counter = "regenerations";
    else if (strcmp (action, "edit") == 0)
        counter = "edits";
    else if (strcmp (action, "delete") == 0)
        counter = "deletes";
    else if (strcmp (action, "regenerate_complete") == 0)
        counter = "answers";
    else if (vote)
        counter = up ? "upvotes" : "downvotes";
    else if (strcmp (action, "feedback_withdrawn") == 0)
        counter = "withdrawals";
    else if (strcmp (action, "regenerate_failed") == 0) {
        const char *cause = cm_map_str_or (details, "error", "");
        counter = strcmp (cause, "cancelled") == 0 ? "cancels" : "failures";
        if (strcmp (counter, "failures") == 0)
            suffix = cause;
    }
    int rc = 0;
    char model[CM_MODEL_MAX + 1];
    if (counter)
        rc = s_model (c, cm_map_str (entry, "message_id"), model);
    if (rc == 0 && counter)
        rc = s_both (c, day, model, user, counter, NULL);
    if (rc == 0 && suffix)
        rc = s_both (c, day, model, user, "failure:", suffix);
    int64_t took = -1, first = -1;
    if (rc == 0 && strcmp (action, "regenerate_complete") == 0)
        rc = s_took (c, details, &took, &first);
    char bound[24];
    if (rc == 0 && took >= 0) {
        s_bucket_name (took, bound, sizeof bound);
        rc = s_add (c, 'm', day, model, "gen_ms:", bound);
    }
    if (rc == 0 && first >= 0) {
        s_bucket_name (first, bound, sizeof bound);
        rc = s_add (c, 'm', day, model, "first_ms:", bound);
    }
    const char *reason = vote ? cm_map_str (c->p, "reason") : NULL;
    if (rc == 0 && reason && *reason)
        rc = s_both (c, day, model, user, up ? "up_reason:" : "down_reason:", reason);
    cm_value_destroy (&entry);
    return rc;
}

//  The map under key in map, made when missing (borrowed).
static cm_value_t *
s_child (cm_value_t *map, const char *key)
{
    cm_value_t *child = (cm_value_t *) cm_map_get (map, key);
    if (!child) {
        cm_map_set (map, key, cm_map_new ());
        child = (cm_value_t *) cm_map_get (map, key);
    }
    return child;
}

static void
s_bump (cm_value_t *counts, const char *counter, int64_t n)
{
    cm_map_set_int (counts, counter, cm_map_int (counts, counter, 0) + n);
}

//  Adds the counters of kind for days d0..d1 into by_name (name ->
//  counter -> n) and, when by_day is not NULL, by_day (date -> name ->
//  counter -> n).
static int
s_scan (st_ctx_t *c, char kind, uint32_t d0, uint32_t d1, cm_value_t *by_name,
        cm_value_t *by_day)
{
    st_key_t start;
    ST_TRY (s_key (&start, kind, d0, "", "", NULL));
    start.len = 5;
    MDB_cursor *cursor;
    int rc = mdb_cursor_open (c->txn, st_db_dbi (c->db, ST_DBI_COUNTERS), &cursor);
    if (rc)
        return st_db_error (rc, "mdb_cursor_open");
    MDB_val k = {start.len, start.bytes}, v;
    rc = st_db_cursor_get (cursor, ST_DBI_COUNTERS, &k, &v, MDB_SET_RANGE);
    while (rc == 0) {
        const unsigned char *p = k.mv_data;
        if (k.mv_size < 6 || p[0] != (unsigned char) kind)
            break;
        uint32_t day = (uint32_t) p[1] << 24 | (uint32_t) p[2] << 16 | (uint32_t) p[3] << 8 | p[4];
        if (day > d1)
            break;
        const char *name = (const char *) p + 5;
        size_t name_len = strnlen (name, k.mv_size - 5);
        if (v.mv_size == 8 && name_len < k.mv_size - 5) {
            char name_text[ST_ANALYTICS_NAME_MAX + 1], counter[ST_KEY_MAX];
            snprintf (name_text, sizeof name_text, "%.*s", (int) name_len, name);
            snprintf (counter, sizeof counter, "%.*s", (int) (k.mv_size - 6 - name_len),
                      name + name_len + 1);
            int64_t n = (int64_t) st_db_be64_get (v.mv_data);
            s_bump (s_child (by_name, name_text), counter, n);
            if (by_day) {
                char date[CM_ISO_TIME_LEN + 1];
                cm_iso_time ((int64_t) day * ST_ANALYTICS_DAY_MS, date, sizeof date);
                date[10] = 0;
                s_bump (s_child (s_child (by_day, date), name_text), counter, n);
            }
        }
        rc = st_db_cursor_get (cursor, ST_DBI_COUNTERS, &k, &v, MDB_NEXT);
    }
    mdb_cursor_close (cursor);
    return rc == CM_ENOTFOUND ? 0 : rc;
}

typedef struct {
    const char *text;
    int64_t count;
} s_ranked_t;

static int
s_by_count (const void *a, const void *b)
{
    const s_ranked_t *x = a, *y = b;
    if (x->count != y->count)
        return x->count < y->count ? 1 : -1;
    return strcmp (x->text, y->text);
}

//  [{field: text, count}] of the counters named prefix<text>, most first
//  (ties by text), at most top of them (0: all).
static cm_value_t *
s_ranked (const cm_value_t *counts, const char *prefix, const char *field, size_t top)
{
    size_t n = cm_value_len (counts), used = 0, prefix_len = strlen (prefix);
    s_ranked_t *items = calloc (n ? n : 1, sizeof *items);
    for (size_t i = 0; items && i < n; i++) {
        const char *key = cm_map_key_at (counts, i);
        if (strncmp (key, prefix, prefix_len) == 0)
            items[used++] = (s_ranked_t) {key + prefix_len, cm_map_value_at (counts, i)->u.i};
    }
    qsort (items, used, sizeof *items, s_by_count);
    cm_value_t *list = cm_arr_new ();
    for (size_t i = 0; i < used && (!top || i < top); i++) {
        cm_value_t *item = cm_map_new ();
        cm_map_set_str (item, field, items[i].text);
        cm_map_set_int (item, "count", items[i].count);
        cm_arr_push (list, item);
    }
    free (items);
    return list;
}

//  row[name]: the upper bound (ms) of the bucket (counters prefix<bound>)
//  that holds quantile q of the model's generations (nil without any).
static void
s_quantile (cm_value_t *row, const char *name, const cm_value_t *counts, const char *prefix,
            double q)
{
    int64_t per[S_BUCKETS] = {0}, all = 0;
    for (int i = 0; i < S_BUCKETS; i++) {
        char key[40];
        snprintf (key, sizeof key, "%s%lld", prefix, (long long) s_bucket_bound (i));
        per[i] = cm_map_int (counts, key, 0);
        all += per[i];
    }
    if (!all) {
        cm_map_set_nil (row, name);
        return;
    }
    int64_t rank = (int64_t) ((double) all * q + 0.999999), seen = 0;
    if (rank < 1)
        rank = 1;
    for (int i = 0; i < S_BUCKETS; i++) {
        seen += per[i];
        if (seen >= rank) {
            cm_map_set_int (row, name, s_bucket_bound (i));
            return;
        }
    }
}

//  {label: name, <every counter>} of one model or user.
static cm_value_t *
s_row (const char *label, const char *name, const cm_value_t *counts)
{
    cm_value_t *row = cm_map_new ();
    cm_map_set_str (row, label, name);
    for (size_t i = 0; i < S_COUNTERS; i++)
        cm_map_set_int (row, s_counters[i], cm_map_int (counts, s_counters[i], 0));
    return row;
}

//  The per-answer rate of counter (nil without answers).
static void
s_rate (cm_value_t *row, const char *name, const char *counter)
{
    int64_t answers = cm_map_int (row, "answers", 0);
    if (answers > 0)
        cm_map_set_dbl (row, name, (double) cm_map_int (row, counter, 0) / (double) answers);
    else
        cm_map_set_nil (row, name);
}

//  row[name]: {bound: count} of the nonzero buckets prefix<bound>, for a
//  sharded gateway to add up before it takes the quantiles.
static void
s_buckets (cm_value_t *row, const char *name, const cm_value_t *counts, const char *prefix)
{
    cm_value_t *buckets = cm_map_new ();
    for (int i = 0; i < S_BUCKETS; i++) {
        char key[40], bound[24];
        snprintf (bound, sizeof bound, "%lld", (long long) s_bucket_bound (i));
        snprintf (key, sizeof key, "%s%s", prefix, bound);
        int64_t count = cm_map_int (counts, key, 0);
        if (count)
            cm_map_set_int (buckets, bound, count);
    }
    cm_map_set (row, name, buckets);
}

//  shard: the rows of one shard of several (admin_analytics'
//  "shard_counts"): every reason, and the buckets, so that sums are exact.
static cm_value_t *
s_rows (const char *label, const cm_value_t *by_name, bool details, bool shard)
{
    cm_value_t *rows = cm_arr_new ();
    for (size_t i = 0; i < cm_value_len (by_name); i++) {
        const cm_value_t *counts = cm_map_value_at (by_name, i);
        cm_value_t *row = s_row (label, cm_map_key_at (by_name, i), counts);
        if (details) {
            s_rate (row, "regenerate_rate", "regenerations");
            s_rate (row, "edit_rate", "edits");
            s_rate (row, "delete_rate", "deletes");
            s_rate (row, "cancel_rate", "cancels");
            s_rate (row, "failure_rate", "failures");
            size_t top = shard ? 0 : ST_ANALYTICS_TOP;
            cm_map_set (row, "top_down_reasons", s_ranked (counts, "down_reason:", "reason", top));
            cm_map_set (row, "top_up_reasons", s_ranked (counts, "up_reason:", "reason", top));
            cm_map_set (row, "failures_by_cause", s_ranked (counts, "failure:", "cause", 0));
            s_quantile (row, "p50_generation_ms", counts, "gen_ms:", 0.50);
            s_quantile (row, "p95_generation_ms", counts, "gen_ms:", 0.95);
            s_quantile (row, "p50_first_text_ms", counts, "first_ms:", 0.50);
            s_quantile (row, "p95_first_text_ms", counts, "first_ms:", 0.95);
            if (shard) {
                s_buckets (row, "gen_ms_buckets", counts, "gen_ms:");
                s_buckets (row, "first_ms_buckets", counts, "first_ms:");
            }
        }
        cm_arr_push (rows, row);
    }
    return rows;
}

int
st_analytics_query (st_ctx_t *c, int64_t from, int64_t to, cm_value_t **out)
{
    if (from < 0 || to < from) {
        c->why = "the time range must have 0 <= from <= to";
        return CM_EINVAL;
    }
    int64_t d0 = from / ST_ANALYTICS_DAY_MS, d1 = to / ST_ANALYTICS_DAY_MS;
    if (d1 - d0 >= ST_ANALYTICS_DAYS_MAX || d1 > UINT32_MAX) {
        c->why = "the time range may span at most 366 days";
        return CM_EINVAL;
    }
    cm_value_t *models = cm_map_new (), *users = cm_map_new (), *days = cm_map_new ();
    int rc = s_scan (c, 'm', (uint32_t) d0, (uint32_t) d1, models, days);
    if (rc == 0)
        rc = s_scan (c, 'u', (uint32_t) d0, (uint32_t) d1, users, NULL);
    if (rc == 0) {
        cm_value_t *reply = cm_map_new ();
        char date[CM_ISO_TIME_LEN + 1];
        cm_iso_time (d0 * ST_ANALYTICS_DAY_MS, date, sizeof date);
        date[10] = 0;
        cm_map_set_str (reply, "from", date);
        cm_iso_time (d1 * ST_ANALYTICS_DAY_MS, date, sizeof date);
        date[10] = 0;
        cm_map_set_str (reply, "to", date);
        bool shard = cm_map_bool (c->p, "shard_counts", false);
        cm_map_set (reply, "models", s_rows ("model", models, true, shard));
        cm_map_set (reply, "users", s_rows ("user", users, false, shard));
        //  The scan went day by day: the dates are in order.
        cm_value_t *list = cm_arr_new ();
        for (size_t i = 0; i < cm_value_len (days); i++) {
            cm_value_t *day = cm_map_new ();
            cm_map_set_str (day, "date", cm_map_key_at (days, i));
            cm_map_set (day, "models", s_rows ("model", cm_map_value_at (days, i), false, shard));
            cm_arr_push (list, day);
        }
        cm_map_set (reply, "days", list);
        *out = reply;
    }
    cm_value_destroy (&models);
    cm_value_destroy (&users);
    cm_value_destroy (&days);
    return rc;
}

int
st_analytics_totals (st_ctx_t *c, cm_value_t **out)
{
    cm_value_t *by_name = cm_map_new ();
    int rc = s_scan (c, 'T', 0, 0, by_name, NULL);
    if (rc) {
        cm_value_destroy (&by_name);
        return rc;
    }
    cm_value_t *list = cm_arr_new ();
    for (size_t i = 0; i < cm_value_len (by_name); i++) {
        const cm_value_t *counts = cm_map_value_at (by_name, i);
        for (size_t k = 0; k < cm_value_len (counts); k++) {
            cm_value_t *item = cm_map_new ();
            cm_map_set_str (item, "model", cm_map_key_at (by_name, i));
            cm_map_set_str (item, "counter", cm_map_key_at (counts, k));
            cm_map_set_int (item, "count", cm_map_value_at (counts, k)->u.i);
            cm_arr_push (list, item);
        }
    }
    cm_value_destroy (&by_name);
    *out = list;
    return 0;
}
