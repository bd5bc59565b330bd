/*  st_h_versions.c: answer versions in the handlers (st_h_versions.h).  */
#include "st_h_versions.h"

#include "cm_error.h"
#include "st_versions.h"
#include "st_view.h"

#include <string.h>

int
st_h_versions_room (st_ctx_t *c, const cm_value_t *msg)
{
    if (st_versions_count (msg) < CM_VERSIONS_MAX)
        return 0;
    c->why = "the message has the most versions it can have; delete it or activate one";
    return CM_EBADSTATE;
}

static bool
s_continues (const cm_value_t *task)
{
    return strcmp (cm_map_str_or (task, "kind", ""), "continue") == 0;
}

bool
st_h_versions_in_place (const cm_value_t *task, const cm_value_t *msg)
{
    return s_continues (task) || strcmp (cm_map_str_or (task, "kind", ""), "answer") == 0
           || (st_versions_count (msg) == 1 && !*cm_map_str_or (msg, "content", ""));
}

//  A continue's answer: the version it continues grows in place.
static int
s_grow (st_ctx_t *c, const cm_value_t *task, const st_key_t *mkey, cm_value_t *msg,
        const cm_value_t *fields)
{
    int64_t n = cm_map_int (task, "continues_version", st_versions_active (msg));
    if (n >= 1 && n <= (int64_t) st_versions_count (msg))
        ST_TRY (st_versions_activate (c->db, c->txn, mkey->bytes, mkey->len, msg, (uint32_t) n,
                                      NULL));
    cm_value_t *old = cm_map_take (msg, "finish_reason");
    cm_value_destroy (&old);
    for (size_t i = 0; i < cm_value_len (fields); i++)
        cm_map_set (msg, cm_map_key_at (fields, i), cm_value_dup (cm_map_value_at (fields, i)));
    return st_versions_sync (c->db, c->txn, mkey->bytes, mkey->len, msg, c->now);
}

int
st_h_versions_answer (st_ctx_t *c, const cm_value_t *task, const st_key_t *mkey,
                      cm_value_t *msg, const cm_value_t *fields)
{
    if (s_continues (task))
        return s_grow (c, task, mkey, msg, fields);
    if (st_h_versions_in_place (task, msg)) {
        st_versions_take (msg, fields);
        return 0;
    }
    ST_TRY (st_h_versions_room (c, msg));
    return st_versions_add (c->db, c->txn, mkey->bytes, mkey->len, msg, fields, c->now, NULL);
}

int
st_h_version_activate (st_ctx_t *c)
{
    const char *message_id = cm_map_str (c->p, "message_id");
    int64_t n = cm_map_int (c->p, "version", 0);
    st_key_t mkey;
    cm_value_t *msg = NULL;
    ST_TRY (st_rows_message_load (c, message_id, &msg, &mkey, NULL));
    int rc = 0;
    uint32_t previous = st_versions_active (msg);
    if (n < 1 || n > (int64_t) st_versions_count (msg)) {
        c->why = "the message has no version of that number";
        rc = CM_ENOVERSION;
    }
    if (rc == 0)
        rc = st_rows_rate_user (c, false);
    bool changed = false;
    if (rc == 0)
        rc = st_versions_activate (c->db, c->txn, mkey.bytes, mkey.len, msg, (uint32_t) n,
                                   &changed);
    if (rc == 0 && changed)
        rc = st_db_put (c->db, c->txn, ST_DBI_MESSAGES, mkey.bytes, mkey.len, msg);
    const char *session_id = cm_map_str_or (msg, "session_id", "");
    if (rc == 0 && changed) {
        cm_value_t *details = cm_map_new ();
        cm_map_set_int (details, "version", n);
        cm_map_set_int (details, "previous_version", previous);
        cm_map_set_str (details, "version_id", st_versions_active_id (msg));
        rc = st_rows_audit (c, session_id, message_id, "version_activate", st_ctx_user (c),
                            details);
    }
    if (rc == 0) {
        st_view_reply_head (c, message_id, session_id, "version_activate");
        cm_value_t *data = cm_map_new ();
        cm_map_set_bool (data, "changed", changed);
        cm_map_set_str (data, "content", cm_map_str_or (msg, "content", ""));
        st_view_versions (data, msg);
        cm_map_set (c->ok, "data", data);
        if (changed)
            st_view_version_activated (c, msg);
    }
    cm_value_destroy (&msg);
    return rc;
}

int
st_h_versions_votes_total (st_ctx_t *c, const void *key, size_t key_len, int64_t *ups,
                           int64_t *downs)
{
    uint32_t active, count;
    char id[CM_ID_MAX + CM_MESSAGE_ID_MAX + 1];
    ST_TRY (st_versions_head (c->db, c->txn, key, key_len, &active, &count, id));
    *ups = *downs = 0;
    for (uint32_t n = 1; n <= count; n++) {
        int64_t u, d;
        ST_TRY (st_versions_votes_get (c->db, c->txn, key, key_len, n, NULL, &u, &d));
        *ups += u;
        *downs += d;
    }
    return 0;
}
