/*  st_h_export.c: session export as JSON or Markdown (st_h_export.h). */
#include "st_h_export.h"

#include "cm_error.h"
#include "st_branch.h"
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

//  One message of the tree: its fields, the branch it is in (the question
//  and version it follows, nil on the trunk), whether it is on the active
//  path, and every version.
static int
s_message (st_ctx_t *c, const st_branch_session_t *path, size_t i, cm_value_t **out)
{
    const cm_value_t *k = st_rows_key (path->list, i), *msg = path->msgs[i];
    const st_branch_item_t *item = &path->items[i];
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
    cm_map_set_bool (view, "on_active_path", item->on_path);
    //  Seqs ascend with the index: the branch point is found by seq.
    const cm_value_t *point = NULL;
    for (size_t j = 0; item->branch_seq && j < i; j++)
        if (path->items[j].seq == item->branch_seq)
            point = path->msgs[j];
    if (point) {
        cm_value_t *branch = cm_map_new ();
        st_rows_copy_str (branch, "message_id", point, "id");
        cm_map_set_int (branch, "version_index", item->branch_version);
        cm_map_set (view, "branch", branch);
    }
    else
        cm_map_set_nil (view, "branch");
    cm_map_set (view, "versions", versions);
    *out = view;
    return 0;
}

//  The active path as Markdown (a new string, caller frees; NULL: no memory).
static char *
s_markdown (const cm_value_t *session, const st_branch_session_t *path)
{
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream (&text, &len);
    if (!out)
        return NULL;
    fprintf (out, "# %s\n", cm_map_str_or (session, "title", ""));
    for (size_t i = 0; i < path->n; i++) {
        const cm_value_t *msg = path->msgs[i];
        if (!path->items[i].on_path)
            continue;
        bool user = strcmp (cm_map_str_or (msg, "role", ""), "user") == 0;
        fprintf (out, "\n## %s", user ? "User" : "Assistant");
        if (st_versions_count (msg) > 1)
            fprintf (out, " (version %u of %u)", st_versions_active (msg), st_versions_count (msg));
        fprintf (out, "\n\n%s\n", cm_map_str_or (msg, "content", ""));
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
    cm_value_t *session = NULL;
    const char *session_id = cm_map_str_or (c->p, "session_id", "");
    ST_TRY (st_rows_session_load (c, session_id, &session));
    cm_value_t *messages = cm_arr_new ();
    st_branch_session_t path;
    int rc = st_branch_load (c, session_id, &path);
    char *text = NULL;
    if (rc == 0 && markdown) {
        text = s_markdown (session, &path);
        if (!text)
            rc = CM_ENOMEM;
    }
    for (size_t i = 0; rc == 0 && !markdown && i < path.n; i++) {
        cm_value_t *view = NULL;
        if (!path.msgs[i])
            continue;
        rc = s_message (c, &path, i, &view);
        if (rc == 0)
            cm_arr_push (messages, view);
    }
    st_branch_free (&path);
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
