/*  st_h_export.c: session export as JSON or Markdown (st_h_export.h). */
#include "st_h_export.h"

#include "cm_error.h"
#include "st_key.h"
#include "st_rows.h"
#include "st_versions.h"
#include "st_view.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

//  Version n of the message at key k, with its votes (a new map).
static int
s_version (st_ctx_t *c, const cm_value_t *k, const cm_value_t *msg, uint32_t n,
           cm_value_t **out)
{
    cm_value_t *record = NULL;
    ST_TRY (st_versions_get (c->db, c->txn, k->u.s.ptr, k->u.s.len, msg, n, &record));
    int64_t ups = 0, downs = 0;
    int rc = st_versions_votes_get (c->db, c->txn, k->u.s.ptr, k->u.s.len, n, msg, &ups, &downs);
    if (rc) {
        cm_value_destroy (&record);
        return rc;
    }
    cm_value_t *view = cm_map_new ();
    cm_map_set_int (view, "version_index", n);
    cm_map_set_str (view, "version_id",
                    cm_map_str_or (record, "id", cm_map_str_or (msg, "id", "")));
    cm_map_set_str (view, "content", cm_map_str_or (record, "content", ""));
    if (cm_map_str (record, "model"))
        cm_map_set_str (view, "model", cm_map_str (record, "model"));
    else
        cm_map_set_nil (view, "model");
    cm_map_set_bool (view, "regenerated", cm_map_bool (record, "regenerated", false));
    cm_map_set_bool (view, "edited", cm_map_bool (record, "edited", false));
    int64_t created = cm_map_int (record, "created_at", cm_map_int (msg, "timestamp", 0));
    st_view_time (view, "created_at", created);
    cm_map_set_int (view, "upvotes", ups);
    cm_map_set_int (view, "downvotes", downs);
    cm_value_destroy (&record);
    *out = view;
    return 0;
}

//  One message of the tree: its fields and every version.
static int
s_message (st_ctx_t *c, const cm_value_t *k, const cm_value_t *msg, cm_value_t **out)
{
    cm_value_t *versions = cm_arr_new ();
    uint32_t count = st_versions_count (msg);
    for (uint32_t n = 1; n <= count; n++) {
        cm_value_t *version = NULL;
        int rc = s_version (c, k, msg, n, &version);
        if (rc) {
            cm_value_destroy (&versions);
            return rc;
        }
        cm_arr_push (versions, version);
    }
    cm_value_t *view = cm_map_new ();
    st_rows_copy_str (view, "message_id", msg, "id");
    st_rows_copy_str (view, "role", msg, "role");
    st_view_time (view, "timestamp", cm_map_int (msg, "timestamp", 0));
    cm_map_set_int (view, "version_index", st_versions_active (msg));
    cm_map_set_int (view, "version_count", count);
    cm_map_set (view, "versions", versions);
    *out = view;
    return 0;
}

//  The active path as Markdown (a new string, caller frees; NULL: no memory).
static char *
s_markdown (const cm_value_t *session, const cm_value_t *list)
{
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream (&text, &len);
    if (!out)
        return NULL;
    fprintf (out, "# %s\n", cm_map_str_or (session, "title", ""));
    for (size_t i = 0; i < cm_value_len (list); i++) {
        cm_value_t *msg = st_rows_decode (st_rows_value (list, i));
        if (!msg)
            continue;
        bool user = strcmp (cm_map_str_or (msg, "role", ""), "user") == 0;
        fprintf (out, "\n## %s", user ? "User" : "Assistant");
        if (st_versions_count (msg) > 1)
            fprintf (out, " (version %u of %u)", st_versions_active (msg), st_versions_count (msg));
        fprintf (out, "\n\n%s\n", cm_map_str_or (msg, "content", ""));
        cm_value_destroy (&msg);
    }
    if (fclose (out) != 0) {
        free (text);
        return NULL;
    }
    return text;
}

int
st_h_session_export (st_ctx_t *c)
{
    const char *format = cm_map_str_or (c->p, "format", "json");
    bool markdown = strcmp (format, "markdown") == 0;
    if (!markdown && strcmp (format, "json") != 0) {
        c->why = "format must be \"json\" or \"markdown\"";
        return CM_EINVAL;
    }
    cm_value_t *session = NULL, *list = NULL;
    const char *session_id = cm_map_str_or (c->p, "session_id", "");
    ST_TRY (st_rows_session_load (c, session_id, &session));
    cm_value_t *messages = cm_arr_new ();
    st_key_t prefix;
    int rc = st_key_prefix (&prefix, session_id);
    if (rc == 0)
        rc = st_rows_collect (c, ST_DBI_MESSAGES, &prefix, &list);
    char *text = NULL;
    if (rc == 0 && markdown) {
        text = s_markdown (session, list);
        if (!text)
            rc = CM_ENOMEM;
    }
    for (size_t i = 0; rc == 0 && !markdown && i < cm_value_len (list); i++) {
        cm_value_t *msg = st_rows_decode (st_rows_value (list, i)), *view = NULL;
        if (!msg)
            continue;
        rc = s_message (c, st_rows_key (list, i), msg, &view);
        cm_value_destroy (&msg);
        if (rc == 0)
            cm_arr_push (messages, view);
    }
    cm_value_destroy (&list);
    if (rc) {
        cm_value_destroy (&messages);
        cm_value_destroy (&session);
        return rc;
    }
    c->ok = cm_map_new ();
    cm_map_set_str (c->ok, "session_id", session_id);
    cm_map_set_str (c->ok, "format", format);
    if (markdown) {
        cm_map_set_str (c->ok, "content", text);
        free (text);
        cm_value_destroy (&messages);
    }
    else {
        cm_value_t *tree = st_view_session_summary (session);
        cm_map_set (tree, "messages", messages);
        cm_map_set (c->ok, "session", tree);
    }
    st_view_now (c, c->ok, "exported_at");
    cm_value_destroy (&session);
    return 0;
}
