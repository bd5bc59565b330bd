/*  st_h_admin.c: the operators' handlers (st_h_admin.h).  */
#include "st_h_admin.h"

#include "cm_error.h"
#include "st_analytics.h"
#include "st_chain.h"
#include "st_key.h"
#include "st_view.h"

#include <stdbool.h>
#include <string.h>

static int
s_nibble (char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

//  The key a cursor names. 0 or CM_EINVAL.
static int
s_cursor_key (const char *cursor, st_key_t *key)
{
    size_t len = strlen (cursor);
    if (len == 0 || len % 2 || len / 2 > sizeof key->bytes)
        return CM_EINVAL;
    for (size_t i = 0; i < len / 2; i++) {
        int hi = s_nibble (cursor[2 * i]), lo = s_nibble (cursor[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return CM_EINVAL;
        key->bytes[i] = (char) (hi * 16 + lo);
    }
    key->len = len / 2;
    return 0;
}

static void
s_cursor_text (const MDB_val *k, char *out)
{
    static const char digits[] = "0123456789abcdef";
    const unsigned char *p = k->mv_data;
    for (size_t i = 0; i < k->mv_size; i++) {
        out[2 * i] = digits[p[i] >> 4];
        out[2 * i + 1] = digits[p[i] & 15];
    }
    out[2 * k->mv_size] = 0;
}

//  The filter a field of the request sets: NULL matches anything.
static bool
s_match (const cm_value_t *entry, const char *field, const char *want)
{
    return !want || strcmp (cm_map_str_or (entry, field, ""), want) == 0;
}

int
st_h_admin_audit (st_ctx_t *c)
{
    int64_t limit = cm_map_int (c->p, "limit", 100);
    int64_t from = cm_map_int (c->p, "from", 0);
    int64_t to = cm_map_int (c->p, "to", INT64_MAX);
    const char *user = cm_map_str (c->p, "user_id");
    const char *session = cm_map_str (c->p, "session_id");
    const char *action = cm_map_str (c->p, "action_type");
    const char *cursor = cm_map_str (c->p, "cursor");
    bool places = cm_map_bool (c->p, "shard_cursors", false);
    st_key_t start;
    if (limit < 1 || limit > CM_AUDIT_PAGE_MAX) {
        c->why = "limit must be 1..1000";
        return CM_EINVAL;
    }
    if (from < 0 || to < from) {
        c->why = "the time range must have 0 <= from <= to";
        return CM_EINVAL;
    }
    if (cursor && s_cursor_key (cursor, &start)) {
        c->why = "cursor is not one this endpoint gave";
        return CM_EINVAL;
    }
    MDB_cursor *mc;
    int rc = mdb_cursor_open (c->txn, st_db_dbi (c->db, ST_DBI_AUDIT), &mc);
    if (rc)
        return st_db_error (rc, "mdb_cursor_open");
    //  Newest first: from just before the cursor (or the first key after
    //  `to`) backwards.
    if (!cursor) {
        start.len = 0;
        if (to < INT64_MAX)
            rc = st_key_audit (&start, to + 1, 0, "");
    }
    MDB_val k = {start.len, start.bytes}, v;
    if (rc == 0 && start.len) {
        rc = st_db_cursor_get (mc, ST_DBI_AUDIT, &k, &v, MDB_SET_RANGE);
        rc = rc == 0 ? st_db_cursor_get (mc, ST_DBI_AUDIT, &k, &v, MDB_PREV)
             : rc == CM_ENOTFOUND ? st_db_cursor_get (mc, ST_DBI_AUDIT, &k, &v, MDB_LAST)
                                  : rc;
    }
    else if (rc == 0)
        rc = st_db_cursor_get (mc, ST_DBI_AUDIT, &k, &v, MDB_LAST);
    cm_value_t *entries = cm_arr_new ();
    char next[2 * sizeof start.bytes + 3] = "";
    int64_t scanned = 0;
    while (rc == 0 && (int64_t) cm_value_len (entries) < limit) {
        if (st_key_audit_ms (k.mv_data, k.mv_size) < from)
            break;
        //  A filter that matches little must not hold a reader for the
        //  whole log: the page ends here, and its cursor goes on from
        //  this entry.
        if (++scanned > ST_ADMIN_SCAN_MAX) {
            //  The cursor names the smallest key after k (k \0), so the
            //  next page starts with k itself.
            s_cursor_text (&k, next);
            strcat (next, "00");
            break;
        }
        cm_value_t *entry = NULL;
        if (cm_value_decode (v.mv_data, v.mv_size, &entry) == 0 && entry->type == CM_T_MAP
            && s_match (entry, "user_id", user) && s_match (entry, "session_id", session)
            && s_match (entry, "action_type", action)) {
            st_view_audit_entry (entry);
            if (places) {
                char place[sizeof next];
                s_cursor_text (&k, place);
                cm_map_set_str (entry, "cursor", place);
            }
            cm_arr_push (entries, entry);
            entry = NULL;
            if ((int64_t) cm_value_len (entries) == limit)
                s_cursor_text (&k, next);
        }
        cm_value_destroy (&entry);
        rc = st_db_cursor_get (mc, ST_DBI_AUDIT, &k, &v, MDB_PREV);
    }
    mdb_cursor_close (mc);
    if (rc && rc != CM_ENOTFOUND) {
        cm_value_destroy (&entries);
        return rc;
    }
    c->ok = cm_map_new ();
    cm_map_set (c->ok, "entries", entries);
    if (next[0])
        cm_map_set_str (c->ok, "next_cursor", next);
    else
        cm_map_set_nil (c->ok, "next_cursor");
    return 0;
}

int
st_h_admin_audit_verify (st_ctx_t *c)
{
    st_chain_report_t report;
    ST_TRY (st_chain_verify (c->txn, st_db_dbi (c->db, ST_DBI_AUDIT),
                             st_db_dbi (c->db, ST_DBI_AUDIT_CHAIN), &report));
    c->ok = cm_map_new ();
    cm_map_set_bool (c->ok, "sound", report.sound);
    cm_map_set_int (c->ok, "entries", (int64_t) report.entries);
    cm_map_set_int (c->ok, "unchained", (int64_t) report.unchained);
    if (report.sound)
        cm_map_set_nil (c->ok, "broken");
    else {
        cm_value_t *broken = cm_map_new ();
        cm_map_set_int (broken, "index", (int64_t) report.index);
        cm_map_set_str (broken, "id", report.id);
        cm_map_set_str (broken, "previous_id", report.previous_id);
        cm_map_set_str (broken, "reason", report.why);
        cm_map_set (c->ok, "broken", broken);
    }
    st_view_now (c, c->ok, "timestamp");
    return 0;
}

int
st_h_admin_analytics (st_ctx_t *c)
{
    //  A bound left out never makes the range too wide or empty: `to`
    //  defaults to now, or to the last of the ST_ANALYTICS_DAYS_MAX days
    //  from `from` when that is earlier, or to `from` when `from` is in the
    //  future (a day with nothing counted yet); `from` defaults to 29 days
    //  before `to` (not before 0).
    bool has_from = cm_map_get (c->p, "from") != NULL;
    int64_t to = c->now;
    if (has_from) {
        int64_t first = cm_map_int (c->p, "from", 0);
        int64_t last = first / ST_ANALYTICS_DAY_MS * ST_ANALYTICS_DAY_MS
                       + ST_ANALYTICS_DAYS_MAX * ST_ANALYTICS_DAY_MS - 1;
        if (last < to)
            to = last;
        if (first > to)
            to = first;
    }
    to = cm_map_int (c->p, "to", to);
    int64_t from = cm_map_int (c->p, "from", to - 29 * ST_ANALYTICS_DAY_MS);
    if (from < 0)
        from = 0;
    ST_TRY (st_analytics_query (c, from, to, &c->ok));
    st_view_now (c, c->ok, "timestamp");
    return 0;
}

int
st_h_analytics_totals (st_ctx_t *c)
{
    cm_value_t *totals = NULL;
    ST_TRY (st_analytics_totals (c, &totals));
    c->ok = cm_map_new ();
    cm_map_set (c->ok, "totals", totals);
    return 0;
}
