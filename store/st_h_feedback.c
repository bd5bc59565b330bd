/*  st_h_feedback.c: vote handlers (st_h_feedback.h).  */
#include "st_h_feedback.h"

#include "cm_error.h"
#include "cm_log.h"
#include "st_versions.h"
#include "st_view.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_RECENT_FEEDBACK 10

//  The type of a stored vote without decoding it: st_h_feedback_put writes
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

//  Whether the stored vote (size bytes) is an upvote: *up; 0 or CM_EPROTO.
static int
s_vote_is_up (const void *stored, size_t size, bool *up)
{
    int peek = s_vote_peek (stored, size);
    if (peek >= 0) {
        *up = peek == 1;
        return 0;
    }
    cm_value_t *record = NULL;
    if (cm_value_decode (stored, size, &record) || record->type != CM_T_MAP) {
        cm_value_destroy (&record);
        cm_error ("stored record in feedback does not decode");
        return CM_EPROTO;
    }
    *up = strcmp (cm_map_str_or (record, "feedback_type", ""), "upvote") == 0;
    cm_value_destroy (&record);
    return 0;
}

//  The version the request names (payload "version", else the shown one:
//  *version and id as the head gave them). Only a named version other than
//  the shown one decodes the message, for its id ("" for version 1).
static int
s_version_named (st_ctx_t *c, const st_key_t *mkey, uint32_t count, uint32_t *version,
                 char *id)
{
    int64_t named = cm_map_int (c->p, "version", 0);
    if (!cm_map_get (c->p, "version") || named == (int64_t) *version)
        return 0;
    if (named < 1 || named > (int64_t) count) {
        c->why = "the message has no version of that number";
        return CM_ENOVERSION;
    }
    *version = (uint32_t) named;
    id[0] = 0;
    if (named == 1)
        return 0;
    cm_value_t *msg = NULL;
    ST_TRY (st_db_get (c->db, c->txn, ST_DBI_MESSAGES, mkey->bytes, mkey->len, &msg));
    cm_value_t *ids = st_versions_ids (msg);
    const cm_value_t *named_id = cm_arr_at (ids, (size_t) named - 1);
    snprintf (id, CM_ID_MAX + CM_MESSAGE_ID_MAX + 1, "%s",
              named_id && named_id->type == CM_T_STR ? named_id->u.s.ptr : "");
    cm_value_destroy (&ids);
    cm_value_destroy (&msg);
    return 0;
}

//  Touches four small records (vote, counts, rate bucket, audit) and never
//  decodes or rewrites the message itself: this is the hottest write. The
//  vote is on the version the request names, by default the one the
//  message shows (its head, st_versions.h), and stays that version's when
//  another is shown or added.
int
st_h_feedback_put (st_ctx_t *c)
{
    const char *type = cm_map_str_or (c->p, "feedback_type", "");
    bool up = strcmp (type, "upvote") == 0;
    if (!up && strcmp (type, "downvote") != 0) {
        c->why = "feedback_type must be upvote or downvote";
        return CM_EINVAL;
    }
    const char *message_id = cm_map_str (c->p, "message_id");
    st_key_t mkey, fkey;
    char session_id[CM_SESSION_ID_MAX + 1];
    ST_TRY (st_rows_message_locate (c, message_id, &mkey, session_id));
    uint32_t version, count;
    char version_id[CM_ID_MAX + CM_MESSAGE_ID_MAX + 1];
    ST_TRY (st_versions_head (c->db, c->txn, mkey.bytes, mkey.len, &version, &count, version_id));
    ST_TRY (s_version_named (c, &mkey, count, &version, version_id));
    ST_TRY (st_key_pair (&fkey, message_id, st_ctx_user (c)));
    //  Both ids are capped far below ST_KEY_MAX: the version's 5 bytes fit.
    fkey.len = st_versions_feedback_key (fkey.bytes, message_id, st_ctx_user (c), version);
    ST_TRY (st_rows_rate_user (c, false));
    const void *stored;
    size_t size;
    int rc = st_db_get_raw (c->db, c->txn, ST_DBI_FEEDBACK, fkey.bytes, fkey.len, &stored, &size);
    if (rc && rc != CM_ENOTFOUND)
        return rc;
    bool replaced = rc == 0, previous_up = false;
    if (replaced)
        ST_TRY (s_vote_is_up (stored, size, &previous_up));
    int64_t ups, downs;
    ST_TRY (st_versions_votes_get (c->db, c->txn, mkey.bytes, mkey.len, version, NULL, &ups,
                                   &downs));
    if (replaced) {
        //  One vote per user per message: the new vote replaces the old.
        if (previous_up)
            ups = ups > 0 ? ups - 1 : 0;
        else
            downs = downs > 0 ? downs - 1 : 0;
    }
    if (up)
        ups++;
    else
        downs++;
    char feedback_id[CM_ID_MAX + 1];
    st_key_id_new (feedback_id, "fb");
    //  Streamed like the audit record (st_rows_audit_begin); field order is the
    //  record's layout, feedback_type first for s_vote_peek.
    cm_packer_t *pk = c->ops->packer;
    cm_packer_reset (pk);
    cm_pack_map (pk, 11);
    cm_pack_str (pk, "feedback_type");
    cm_pack_str (pk, type);
    cm_pack_str (pk, "id");
    cm_pack_str (pk, feedback_id);
    cm_pack_str (pk, "message_id");
    cm_pack_str (pk, message_id);
    cm_pack_str (pk, "session_id");
    cm_pack_str (pk, session_id);
    cm_pack_str (pk, "user_id");
    cm_pack_str (pk, st_ctx_user (c));
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
    cm_pack_str (pk, "version"); //  last: the layout before versions is kept
    cm_pack_int (pk, version);
    const char *bytes;
    rc = cm_packer_finish (pk, &bytes, &size);
    if (rc == 0)
        rc = st_db_put_raw (c->db, c->txn, ST_DBI_FEEDBACK, fkey.bytes, fkey.len, bytes, size);
    if (rc == 0)
        rc = st_versions_votes_put (c->db, c->txn, mkey.bytes, mkey.len, version, ups, downs);
    if (rc == 0) {
        char log_id[CM_ID_MAX + 1];
        pk = st_rows_audit_begin (c, session_id, message_id, "feedback", st_ctx_user (c), log_id);
        cm_pack_map (pk, 4);
        cm_pack_str (pk, "feedback_type");
        cm_pack_str (pk, type);
        cm_pack_str (pk, "replaced");
        cm_pack_bool (pk, replaced);
        cm_pack_str (pk, "version");
        cm_pack_int (pk, version);
        //  The operators' feedback export reads the reason here.
        cm_pack_str (pk, "reason");
        cm_pack_str (pk, cm_map_str (c->p, "reason"));
        rc = st_rows_audit_end (c, log_id);
    }
    ST_TRY (rc);
    c->ok = cm_map_new ();
    cm_map_set_str (c->ok, "feedback_id", feedback_id);
    cm_map_set_str (c->ok, "message_id", message_id);
    cm_map_set_str (c->ok, "session_id", session_id);
    cm_map_set_int (c->ok, "version_index", version);
    cm_map_set_str (c->ok, "version_id", version_id[0] ? version_id : message_id);
    st_view_now (c, c->ok, "timestamp");
    st_view_feedback_submitted (c, session_id, message_id, feedback_id, type, version, ups,
                                downs);
    return 0;
}

int
st_h_feedback_delete (st_ctx_t *c)
{
    const char *message_id = cm_map_str (c->p, "message_id");
    st_key_t mkey, fkey;
    char session_id[CM_SESSION_ID_MAX + 1];
    ST_TRY (st_rows_message_locate (c, message_id, &mkey, session_id));
    //  The vote on the shown version, as st_h_feedback_put keys it.
    uint32_t version, count;
    char version_id[CM_ID_MAX + CM_MESSAGE_ID_MAX + 1];
    ST_TRY (st_versions_head (c->db, c->txn, mkey.bytes, mkey.len, &version, &count, version_id));
    ST_TRY (st_key_pair (&fkey, message_id, st_ctx_user (c)));
    fkey.len = st_versions_feedback_key (fkey.bytes, message_id, st_ctx_user (c), version);
    ST_TRY (st_rows_rate_user (c, false));
    const void *stored;
    size_t size;
    int rc = st_db_get_raw (c->db, c->txn, ST_DBI_FEEDBACK, fkey.bytes, fkey.len, &stored, &size);
    if (rc && rc != CM_ENOTFOUND)
        return rc;
    bool withdrawn = rc == 0, up = false;
    int64_t ups, downs;
    ST_TRY (st_versions_votes_get (c->db, c->txn, mkey.bytes, mkey.len, version, NULL, &ups,
                                   &downs));
    if (withdrawn) {
        ST_TRY (s_vote_is_up (stored, size, &up));
        if (up)
            ups = ups > 0 ? ups - 1 : 0;
        else
            downs = downs > 0 ? downs - 1 : 0;
        const char *type = up ? "upvote" : "downvote";
        ST_TRY (st_db_del (c->db, c->txn, ST_DBI_FEEDBACK, fkey.bytes, fkey.len));
        ST_TRY (st_versions_votes_put (c->db, c->txn, mkey.bytes, mkey.len, version, ups, downs));
        char log_id[CM_ID_MAX + 1];
        cm_packer_t *pk = st_rows_audit_begin (c, session_id, message_id, "feedback_withdrawn",
                                               st_ctx_user (c), log_id);
        cm_pack_map (pk, 2);
        cm_pack_str (pk, "feedback_type");
        cm_pack_str (pk, type);
        cm_pack_str (pk, "version");
        cm_pack_int (pk, version);
        ST_TRY (st_rows_audit_end (c, log_id));
        cm_value_t *data = cm_map_new ();
        cm_map_set_str (data, "messageId", message_id);
        cm_map_set_str (data, "feedbackType", type);
        cm_map_set_int (data, "versionIndex", version);
        cm_map_set_int (data, "upvotes", ups);
        cm_map_set_int (data, "downvotes", downs);
        st_view_event (c, session_id, CM_EVENT_FEEDBACK_WITHDRAWN, data);
    }
    c->ok = cm_map_new ();
    cm_map_set_str (c->ok, "message_id", message_id);
    cm_map_set_str (c->ok, "session_id", session_id);
    cm_map_set_bool (c->ok, "withdrawn", withdrawn);
    if (withdrawn)
        cm_map_set_str (c->ok, "feedback_type", up ? "upvote" : "downvote");
    else
        cm_map_set_nil (c->ok, "feedback_type");
    cm_map_set_int (c->ok, "version_index", version);
    cm_map_set_str (c->ok, "version_id", version_id[0] ? version_id : message_id);
    cm_value_t *summary = cm_map_new ();
    cm_map_set_int (summary, "upvotes", ups);
    cm_map_set_int (summary, "downvotes", downs);
    cm_map_set_int (summary, "total", ups + downs);
    cm_map_set (c->ok, "feedback_summary", summary);
    st_view_now (c, c->ok, "timestamp");
    return 0;
}

static int
s_by_created_desc (const void *a, const void *b)
{
    int64_t x = cm_map_int (*(const cm_value_t *const *) a, "created_at", 0);
    int64_t y = cm_map_int (*(const cm_value_t *const *) b, "created_at", 0);
    return x < y ? 1 : x > y ? -1 : 0;
}

int
st_h_feedback_get (st_ctx_t *c)
{
    const char *message_id = cm_map_str (c->p, "message_id");
    st_key_t mkey, prefix;
    cm_value_t *msg = NULL;
    ST_TRY (st_rows_message_load (c, message_id, &msg, &mkey, NULL));
    //  The summary is the shown version's; versions has every one's.
    int64_t ups = 0, downs = 0;
    uint32_t active = st_versions_active (msg), version_count = st_versions_count (msg);
    cm_value_t *ids = st_versions_ids (msg), *versions = cm_arr_new ();
    int rc = 0;
    for (uint32_t n = 1; rc == 0 && n <= version_count; n++) {
        int64_t u, d;
        rc = st_versions_votes_get (c->db, c->txn, mkey.bytes, mkey.len, n, msg, &u, &d);
        cm_value_t *item = cm_map_new ();
        cm_map_set_int (item, "version_index", n);
        cm_map_set (item, "version_id", cm_value_dup (cm_arr_at (ids, n - 1)));
        cm_map_set_int (item, "upvotes", u);
        cm_map_set_int (item, "downvotes", d);
        cm_arr_push (versions, item);
        if (n == active) {
            ups = u;
            downs = d;
        }
    }
    cm_value_destroy (&ids);
    cm_value_destroy (&msg);
    if (rc) {
        cm_value_destroy (&versions);
        return rc;
    }
    ST_TRY (st_key_prefix (&prefix, message_id));
    cm_value_t *list = NULL;
    ST_TRY (st_rows_collect (c, ST_DBI_FEEDBACK, &prefix, &list));
    size_t n = cm_value_len (list), count = 0;
    cm_value_t **items = calloc (n ? n : 1, sizeof *items);
    for (size_t i = 0; items && i < n; i++) {
        cm_value_t *item = st_rows_decode (st_rows_value (list, i));
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
            cm_arr_push (recent, st_view_feedback_entry (items[i]));
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
    cm_map_set_int (c->ok, "version_index", active);
    cm_map_set (c->ok, "versions", versions);
    cm_map_set (c->ok, "recent_feedback", recent);
    st_view_now (c, c->ok, "timestamp");
    return 0;
}
