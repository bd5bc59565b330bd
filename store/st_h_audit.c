/*  st_h_audit.c: audit, analytics and rate handlers (st_h_audit.h).  */
#include "st_h_audit.h"

#include "cm_error.h"
#include "st_h_versions.h"
#include "st_view.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

int
st_h_rate_consume (st_ctx_t *c)
{
    int64_t window = cm_map_int (c->p, "window_ms", ST_RATE_WINDOW_MS);
    if (window <= 0)
        window = ST_RATE_WINDOW_MS;
    int64_t limit = cm_map_int (c->p, "limit", 0);
    int64_t remaining = limit > 0 ? limit : 0;
    st_key_t key;
    ST_TRY (st_key_set (&key, cm_map_str_or (c->p, "key", ""),
                        strlen (cm_map_str_or (c->p, "key", ""))));
    ST_TRY (st_rows_rate (c, &key, limit, window, &remaining));
    int64_t start = c->now;
    if (limit > 0)
        ST_TRY (st_rows_rate_window (c, &key, window, &start));
    c->ok = cm_map_new ();
    cm_map_set_int (c->ok, "remaining", remaining);
    cm_map_set_int (c->ok, "retry_after_ms", 0);
    cm_map_set_int (c->ok, "window_start", start);
    return 0;
}

int
st_h_rate_refund (st_ctx_t *c)
{
    const char *text = cm_map_str_or (c->p, "key", "");
    st_key_t key;
    ST_TRY (st_key_set (&key, text, strlen (text)));
    bool refunded;
    ST_TRY (st_rows_rate_refund (c, &key, cm_map_int (c->p, "window_start", 0), &refunded));
    c->ok = cm_map_new ();
    cm_map_set_bool (c->ok, "refunded", refunded);
    return 0;
}

static int
s_cmp_i64 (const void *a, const void *b)
{
    int64_t x = *(const int64_t *) a, y = *(const int64_t *) b;
    return x < y ? -1 : x > y;
}

int
st_h_analytics_get (st_ctx_t *c)
{
    cm_value_t *session = NULL;
    ST_TRY (st_rows_session_load (c, cm_map_str_or (c->p, "session_id", ""), &session));
    const char *session_id = cm_map_str_or (session, "session_id", "");
    cm_value_t *list = NULL;
    st_key_t prefix;
    int rc = st_key_prefix (&prefix, session_id);
    if (rc == 0)
        rc = st_rows_collect (c, ST_DBI_MESSAGES, &prefix, &list);
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
        const cm_value_t *k = st_rows_key (list, i);
        int64_t u, d;
        if (st_h_versions_votes_total (c, k->u.s.ptr, k->u.s.len, &u, &d) == 0) {
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
    st_view_now (c, c->ok, "timestamp");
    cm_value_destroy (&list);
    cm_value_destroy (&stats);
    cm_value_destroy (&session);
    return 0;
}

int
st_h_audit_query (st_ctx_t *c)
{
    const char *session_id = cm_map_str (c->p, "session_id");
    if (session_id) {
        cm_value_t *session = NULL;
        ST_TRY (st_rows_session_load (c, session_id, &session));
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
    rc = st_db_cursor_get (cursor, ST_DBI_AUDIT, &k, &v, MDB_LAST);
    while (rc == 0 && (int64_t) cm_value_len (entries) < limit) {
        cm_value_t *entry = NULL;
        if (cm_value_decode (v.mv_data, v.mv_size, &entry) == 0 && entry->type == CM_T_MAP) {
            bool mine = session_id
                            ? strcmp (cm_map_str_or (entry, "session_id", ""), session_id) == 0
                            : strcmp (cm_map_str_or (entry, "user_id", ""), st_ctx_user (c)) == 0;
            if (mine) {
                st_view_audit_entry (entry);
                cm_arr_push (entries, entry);
                entry = NULL;
            }
        }
        cm_value_destroy (&entry);
        rc = st_db_cursor_get (cursor, ST_DBI_AUDIT, &k, &v, MDB_PREV);
    }
    mdb_cursor_close (cursor);
    if (rc && rc != CM_ENOTFOUND) {
        cm_value_destroy (&entries);
        return rc;
    }
    c->ok = cm_map_new ();
    cm_map_set (c->ok, "entries", entries);
    return 0;
}

int
st_h_audit_expire (st_ctx_t *c, int64_t cutoff)
{
    //  Audit keys start with their time: the old ones are the head.
    //  A chained entry that goes becomes the chain's anchor (st_chain.h).
    st_chain_head_t head;
    ST_TRY (st_rows_chain_head (c, &head));
    uint64_t count = head.count;
    cm_value_t *list = NULL;
    ST_TRY (st_rows_collect (c, ST_DBI_AUDIT, NULL, &list));
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < cm_value_len (list); i++) {
        const cm_value_t *k = st_rows_key (list, i);
        int64_t at = st_key_audit_ms (k->u.s.ptr, k->u.s.len);
        if (at < 0 || at >= cutoff)
            break;
        const cm_value_t *v = st_rows_value (list, i);
        cm_value_t *entry = st_rows_decode (v);
        if (entry && cm_map_get (entry, "prev_hash") && head.count) {
            st_chain_hash (k->u.s.ptr, k->u.s.len, v->u.s.ptr, v->u.s.len, head.anchor);
            head.count--;
        }
        cm_value_destroy (&entry);
        rc = st_db_del (c->db, c->txn, ST_DBI_AUDIT, k->u.s.ptr, k->u.s.len);
    }
    cm_value_destroy (&list);
    if (rc == 0 && head.count != count)
        rc = st_rows_chain_head_put (c, &head);
    if (rc == 0)
        rc = st_rows_collect (c, ST_DBI_RATE, NULL, &list);
    for (size_t i = 0; rc == 0 && i < cm_value_len (list); i++) {
        const cm_value_t *v = st_rows_value (list, i);
        int64_t start = 0, count, window = 0;
        if (st_rows_rate_read (v->u.s.ptr, v->u.s.len, &start, &count, &window)
            || start + window < c->now) {
            const cm_value_t *k = st_rows_key (list, i);
            rc = st_db_del (c->db, c->txn, ST_DBI_RATE, k->u.s.ptr, k->u.s.len);
        }
    }
    cm_value_destroy (&list);
    return rc;
}
