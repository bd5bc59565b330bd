/*  st_h_branch.c: an edit of a question starts a branch (st_h_branch.h). */
#include "st_h_branch.h"

#include "cm_error.h"
#include "st_branch.h"
#include "st_h_versions.h"
#include "st_rows.h"
#include "st_task.h"
#include "st_versions.h"

#include <stdio.h>
#include <string.h>

//  The answer below question i on the path: the next message shown after
//  it, when that is an assistant message; n when there is none.
static size_t
s_answer_below (const st_branch_session_t *s, size_t i)
{
    for (size_t j = i + 1; j < s->n; j++)
        if (s->items[j].on_path)
            return s->items[j].question ? s->n : j;
    return s->n;
}

//  The checks of st_h_branch_edit, nothing written: *answer (borrowed from
//  s) is the answer below the question, NULL without one.
static int
s_check (st_ctx_t *c, const st_branch_session_t *s, const cm_value_t *msg, bool trigger,
         const cm_value_t **answer)
{
    *answer = NULL;
    size_t i = st_branch_find (s, cm_map_str_or (msg, "id", ""));
    if (i == s->n || !s->items[i].on_path) {
        c->why = "the question is not on the shown branch; activate the version it follows first";
        return CM_EBADSTATE;
    }
    ST_TRY (st_h_versions_room (c, msg));
    size_t a = s_answer_below (s, i);
    if (!trigger || a == s->n)
        return 0;
    *answer = s->msgs[a];
    char running[CM_ID_MAX + 1];
    int rc = st_task_running_id (c, cm_map_str_or (*answer, "id", ""), running);
    if (rc == 0) {
        c->why = "a regeneration of the answer below this question is running; wait for it or "
                 "cancel it";
        return CM_ECONFLICT;
    }
    return rc == CM_ENOTFOUND ? 0 : rc;
}

int
st_h_branch_edit (st_ctx_t *c, cm_value_t *msg, const st_key_t *mkey, cm_value_t *session,
                  const char *content, bool trigger, st_h_branch_edit_t *out)
{
    memset (out, 0, sizeof *out);
    const char *session_id = cm_map_str_or (msg, "session_id", "");
    st_branch_session_t s;
    ST_TRY (st_branch_load (c, session_id, &s));
    const cm_value_t *answer = NULL;
    int rc = s_check (c, &s, msg, trigger, &answer);
    bool regenerate = answer != NULL;
    st_branch_free (&s);
    if (rc == 0)
        rc = st_rows_rate_user (c, regenerate);
    //  The new version of the question; the branch below it starts empty.
    if (rc == 0) {
        cm_value_t *fields = cm_map_new ();
        cm_map_set_str (fields, "content", content);
        cm_map_set_bool (fields, "edited", true);
        rc = st_versions_add (c->db, c->txn, mkey->bytes, mkey->len, msg, fields, c->now,
                              &out->version);
        cm_value_destroy (&fields);
    }
    out->count = st_versions_count (msg);
    if (rc == 0)
        rc = st_db_put (c->db, c->txn, ST_DBI_MESSAGES, mkey->bytes, mkey->len, msg);
    cm_map_set_bool (session, "branched", true);
    cm_map_set_int (session, "updated_at", c->now);
    cm_value_t *reply = NULL;
    st_key_t akey;
    if (rc == 0 && regenerate) {
        uint64_t seq = (uint64_t) cm_map_int (session, "next_seq", 1);
        reply = st_rows_message_new (session_id, seq, "assistant", "", c->now, out->answer_id);
        st_branch_tag (reply, (uint64_t) cm_map_int (msg, "seq", 0), out->version);
        cm_map_set_int (session, "next_seq", (int64_t) seq + 1);
        cm_map_set_int (session, "message_count", cm_map_int (session, "message_count", 0) + 1);
        rc = st_rows_message_insert (c, reply, &akey);
    }
    if (rc == 0)
        rc = st_rows_session_put (c, session);
    if (rc == 0 && reply)
        rc = st_task_create (c, "edit", reply, &akey, cm_map_str_or (msg, "id", ""), content,
                             out->task_id);
    cm_value_destroy (&reply);
    return rc;
}
