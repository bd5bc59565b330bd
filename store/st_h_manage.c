/*  st_h_manage.c: session list pages and renames (st_h_manage.h).     */
#include "st_h_manage.h"

#include "cm_error.h"
#include "st_key.h"
#include "st_rows.h"
#include "st_view.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

//  Newest update first; ties by session id, so the order is total and a
//  cursor names one place in it.
static int
s_order (const cm_value_t *a, const cm_value_t *b)
{
    int64_t x = cm_map_int (a, "updated_at", 0), y = cm_map_int (b, "updated_at", 0);
    if (x != y)
        return x < y ? 1 : -1;
    return strcmp (cm_map_str_or (a, "session_id", ""), cm_map_str_or (b, "session_id", ""));
}

static int
s_by_order (const void *a, const void *b)
{
    return s_order (*(const cm_value_t *const *) a, *(const cm_value_t *const *) b);
}

//  The cursor as the (updated_at, session_id) of the last session shown,
//  in a map like a session's; NULL when it is not a cursor.
static cm_value_t *
s_cursor_parse (const char *text)
{
    char *end = NULL;
    long long ms = strtoll (text, &end, 10);
    if (end == text || *end != '.' || !cm_session_id_valid (end + 1))
        return NULL;
    cm_value_t *at = cm_map_new ();
    cm_map_set_int (at, "updated_at", ms);
    cm_map_set_str (at, "session_id", end + 1);
    return at;
}

//  A session's place as a cursor: "<updated_at ms>.<session_id>".
static void
s_cursor_format (const cm_value_t *session, char *buffer, size_t size)
{
    snprintf (buffer, size, "%" PRId64 ".%s", cm_map_int (session, "updated_at", 0),
              cm_map_str_or (session, "session_id", ""));
}

int
st_h_session_list (st_ctx_t *c)
{
    int64_t limit = cm_map_int (c->p, "limit", 100);
    if (limit < 1 || limit > 1000)
        limit = 100;
    const char *cursor = cm_map_str (c->p, "cursor");
    cm_value_t *after = cursor ? s_cursor_parse (cursor) : NULL;
    if (cursor && !after) {
        c->why = "cursor is not a next_cursor value";
        return CM_EINVAL;
    }
    st_key_t prefix;
    cm_value_t *list = NULL;
    int rc = st_key_prefix (&prefix, st_ctx_user (c));
    if (rc == 0)
        rc = st_rows_collect (c, ST_DBI_USER_SESSIONS, &prefix, &list);
    if (rc) {
        cm_value_destroy (&after);
        return rc;
    }
    size_t plen = prefix.len, n = cm_value_len (list), count = 0;
    cm_value_t **sessions = calloc (n ? n : 1, sizeof *sessions);
    for (size_t i = 0; sessions && i < n; i++) {
        const cm_value_t *k = st_rows_key (list, i);
        cm_value_t *session = NULL;
        if (st_db_get (c->db, c->txn, ST_DBI_SESSIONS, k->u.s.ptr + plen, k->u.s.len - plen,
                       &session)
            != 0)
            continue;
        if (after && s_order (session, after) <= 0)
            cm_value_destroy (&session);
        else
            sessions[count++] = session;
    }
    cm_value_destroy (&list);
    if (!sessions) {
        cm_value_destroy (&after);
        return CM_ENOMEM;
    }
    qsort (sessions, count, sizeof *sessions, s_by_order);
    cm_value_t *out = cm_arr_new ();
    size_t shown = count < (size_t) limit ? count : (size_t) limit;
    bool cursors = cm_map_bool (c->p, "shard_cursors", false);
    for (size_t i = 0; i < shown; i++) {
        cm_value_t *summary = st_view_session_summary (sessions[i]);
        if (cursors) {
            //  Each session's place in the order, for a sharded gateway
            //  that merges the pages of every shard.
            char place[CM_SESSION_CURSOR_MAX + 1];
            s_cursor_format (sessions[i], place, sizeof place);
            cm_map_set_str (summary, "cursor", place);
        }
        cm_arr_push (out, summary);
    }
    c->ok = cm_map_new ();
    cm_map_set (c->ok, "sessions", out);
    if (shown < count) {
        char next[CM_SESSION_CURSOR_MAX + 1];
        s_cursor_format (sessions[shown - 1], next, sizeof next);
        cm_map_set_str (c->ok, "next_cursor", next);
    }
    else
        cm_map_set_nil (c->ok, "next_cursor");
    for (size_t i = 0; i < count; i++)
        cm_value_destroy (&sessions[i]);
    free (sessions);
    cm_value_destroy (&after);
    return 0;
}

int
st_h_session_rename (st_ctx_t *c)
{
    const char *session_id = cm_map_str (c->p, "session_id");
    const char *title = cm_map_str_or (c->p, "title", "");
    if (!title[strspn (title, " ")]) {
        c->why = "title must not be empty";
        return CM_EINVAL;
    }
    cm_value_t *session = NULL;
    ST_TRY (st_rows_session_load (c, session_id, &session));
    int rc = st_rows_rate_user (c, false);
    char *previous = strdup (cm_map_str_or (session, "title", ""));
    if (!previous)
        rc = CM_ENOMEM;
    if (rc == 0) {
        cm_map_set_str (session, "title", title);
        cm_map_set_int (session, "updated_at", c->now);
        rc = st_rows_session_put (c, session);
    }
    cm_value_destroy (&session);
    cm_value_t *data = cm_map_new ();
    cm_map_set_str (data, "title", title);
    cm_map_set_str (data, "previous_title", previous ? previous : "");
    free (previous);
    if (rc == 0)
        rc = st_rows_audit (c, session_id, NULL, "session_rename", st_ctx_user (c),
                            cm_value_dup (data));
    if (rc) {
        cm_value_destroy (&data);
        return rc;
    }
    c->ok = cm_map_new ();
    cm_map_set_str (c->ok, "session_id", session_id);
    cm_map_set_str (c->ok, "operation", "session_rename");
    st_view_now (c, c->ok, "timestamp");
    cm_map_set (c->ok, "data", data);
    cm_value_t *event = cm_map_new ();
    cm_map_set_str (event, "status", "session_renamed");
    st_view_event (c, session_id, CM_EVENT_SESSION_UPDATED, event);
    return 0;
}
