/*  st_branch.c: conversation branches (st_branch.h).  */
#include "st_branch.h"

#include "cm_error.h"
#include "st_rows.h"
#include "st_versions.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

bool
st_branch_point (const st_branch_item_t *item)
{
    return item->valid && item->question && item->count > 1;
}

//  The branch point standing in branch (seq, version) among the first n
//  items (resolved), or n when it has none yet.
static size_t
s_point_in (const st_branch_item_t *items, const size_t *points, size_t point_count,
            uint64_t seq, uint32_t version, size_t n)
{
    for (size_t j = 0; j < point_count; j++) {
        const st_branch_item_t *p = &items[points[j]];
        if (p->branch_seq == seq && p->branch_version == version)
            return points[j];
    }
    return n;
}

//  The branch point with that seq (resolved), or n.
static size_t
s_point_of (const st_branch_item_t *items, const size_t *points, size_t point_count,
            uint64_t seq, size_t n)
{
    for (size_t j = 0; j < point_count; j++)
        if (items[points[j]].seq == seq)
            return points[j];
    return n;
}

int
st_branch_resolve (st_branch_item_t *items, size_t n)
{
    size_t *points = malloc ((n ? n : 1) * sizeof *points), point_count = 0;
    if (!points)
        return CM_ENOMEM;
    for (size_t i = 0; i < n; i++) {
        st_branch_item_t *item = &items[i];
        item->on_path = false;
        item->branch_seq = 0;
        item->branch_version = 0;
        if (!item->valid)
            continue;
        uint64_t seq = item->tag_seq;
        uint32_t version = seq ? item->tag_version : 0;
        //  Each step goes one branch point deeper: at most point_count.
        for (size_t step = 0; step <= point_count; step++) {
            size_t p = s_point_in (items, points, point_count, seq, version, n);
            if (p == n)
                break;
            seq = items[p].seq;
            version = 1;
        }
        item->branch_seq = seq;
        item->branch_version = version;
        if (seq == 0)
            item->on_path = true;
        else {
            size_t p = s_point_of (items, points, point_count, seq, n);
            item->on_path = p < n && items[p].on_path && items[p].active == version;
        }
        if (st_branch_point (item))
            points[point_count++] = i;
    }
    free (points);
    return 0;
}

void
st_branch_tail (const st_branch_item_t *items, size_t n, uint64_t *seq, uint32_t *version)
{
    *seq = 0;
    *version = 0;
    for (size_t i = n; i-- > 0;) {
        const st_branch_item_t *item = &items[i];
        if (!item->on_path)
            continue;
        if (st_branch_point (item)) {
            *seq = item->seq;
            *version = item->active;
        }
        else {
            *seq = item->branch_seq;
            *version = item->branch_version;
        }
        return;
    }
}

//  The index of the item with that seq among the first n (seqs ascend), or n.
static size_t
s_index_of (const st_branch_item_t *items, size_t n, uint64_t seq)
{
    size_t low = 0, high = n;
    while (low < high) {
        size_t mid = low + (high - low) / 2;
        if (items[mid].seq < seq)
            low = mid + 1;
        else
            high = mid;
    }
    return low < n && items[low].seq == seq ? low : n;
}

void
st_branch_below (const st_branch_item_t *items, size_t n, size_t i, bool *below)
{
    for (size_t j = 0; j < n; j++)
        below[j] = j == i;
    for (size_t j = i + 1; j < n; j++) {
        const st_branch_item_t *item = &items[j];
        if (!item->valid)
            continue;
        if (item->branch_seq == items[i].branch_seq
            && item->branch_version == items[i].branch_version) {
            below[j] = true;
            continue;
        }
        //  Under a branch point that is below i.
        size_t k = s_index_of (items, j, item->branch_seq);
        below[j] = k < j && k >= i && below[k] && st_branch_point (&items[k]);
    }
}

size_t
st_branch_above (const st_branch_item_t *items, size_t n, size_t i, size_t *index,
                 uint32_t *version)
{
    size_t count = 0;
    uint64_t seq = items[i].branch_seq;
    uint32_t want = items[i].branch_version;
    //  Backwards: the branch's earlier messages, then its branch point
    //  (at the version the branch follows), then that point's branch.
    for (size_t j = i; j-- > 0;) {
        const st_branch_item_t *item = &items[j];
        if (!item->valid)
            continue;
        bool in_branch = item->branch_seq == seq && item->branch_version == want;
        bool point = seq != 0 && item->seq == seq;
        if (!in_branch && !point)
            continue;
        index[count] = j;
        version[count] = point ? want : item->active;
        count++;
        if (point) {
            seq = item->branch_seq;
            want = item->branch_version;
        }
    }
    (void) n;
    for (size_t a = 0, b = count; a + 1 < b; a++, b--) {
        size_t ti = index[a];
        index[a] = index[b - 1];
        index[b - 1] = ti;
        uint32_t tv = version[a];
        version[a] = version[b - 1];
        version[b - 1] = tv;
    }
    return count;
}

int
st_branch_load (st_ctx_t *c, const char *session_id, st_branch_session_t *out)
{
    memset (out, 0, sizeof *out);
    st_key_t prefix;
    ST_TRY (st_key_prefix (&prefix, session_id));
    ST_TRY (st_rows_collect (c, ST_DBI_MESSAGES, &prefix, &out->list));
    out->n = cm_value_len (out->list);
    size_t room = out->n ? out->n : 1;
    out->msgs = calloc (room, sizeof *out->msgs);
    out->items = calloc (room, sizeof *out->items);
    if (!out->msgs || !out->items) {
        st_branch_free (out);
        return CM_ENOMEM;
    }
    for (size_t i = 0; i < out->n; i++) {
        const cm_value_t *k = st_rows_key (out->list, i);
        cm_value_t *msg = st_rows_decode (st_rows_value (out->list, i));
        st_branch_item_t *item = &out->items[i];
        //  From the key, so that seqs ascend even past a damaged record.
        item->seq = k->u.s.len == prefix.len + 8 ? st_key_message_seq (k->u.s.ptr, prefix.len) : 0;
        out->msgs[i] = msg;
        if (!msg)
            continue;
        item->valid = true;
        item->question = strcmp (cm_map_str_or (msg, "role", ""), "user") == 0;
        int64_t tag = cm_map_int (msg, "branch_seq", 0);
        int64_t tag_version = cm_map_int (msg, "branch_version", 0);
        item->tag_seq = tag > 0 ? (uint64_t) tag : 0;
        item->tag_version = tag_version > 0 && tag_version <= CM_VERSIONS_MAX
                                ? (uint32_t) tag_version
                                : 1;
        item->active = st_versions_active (msg);
        item->count = st_versions_count (msg);
    }
    int rc = st_branch_resolve (out->items, out->n);
    if (rc)
        st_branch_free (out);
    return rc;
}

void
st_branch_free (st_branch_session_t *s)
{
    for (size_t i = 0; s->msgs && i < s->n; i++)
        cm_value_destroy (&s->msgs[i]);
    free (s->msgs);
    free (s->items);
    cm_value_destroy (&s->list);
    memset (s, 0, sizeof *s);
}

size_t
st_branch_find (const st_branch_session_t *s, const char *message_id)
{
    for (size_t i = 0; i < s->n; i++)
        if (s->msgs[i] && strcmp (cm_map_str_or (s->msgs[i], "id", ""), message_id) == 0)
            return i;
    return s->n;
}

void
st_branch_tag (cm_value_t *msg, uint64_t seq, uint32_t version)
{
    if (seq == 0)
        return;
    cm_map_set_int (msg, "branch_seq", (int64_t) seq);
    cm_map_set_int (msg, "branch_version", version);
}

int
st_branch_session_tail (st_ctx_t *c, const cm_value_t *session, uint64_t *seq,
                        uint32_t *version)
{
    *seq = 0;
    *version = 0;
    if (!cm_map_bool (session, "branched", false))
        return 0;
    st_branch_session_t s;
    ST_TRY (st_branch_load (c, cm_map_str_or (session, "session_id", ""), &s));
    st_branch_tail (s.items, s.n, seq, version);
    st_branch_free (&s);
    return 0;
}

//  The content of version `version` of message i (a new string).
static int
s_text (st_ctx_t *c, const st_branch_session_t *s, size_t i, uint32_t version, char **text)
{
    const cm_value_t *msg = s->msgs[i];
    const char *content = cm_map_str_or (msg, "content", "");
    cm_value_t *record = NULL;
    if (version != st_versions_active (msg)) {
        const cm_value_t *k = st_rows_key (s->list, i);
        ST_TRY (st_versions_get (c->db, c->txn, k->u.s.ptr, k->u.s.len, msg, version, &record));
        content = cm_map_str_or (record, "content", "");
    }
    *text = strdup (content);
    cm_value_destroy (&record);
    return *text ? 0 : CM_ENOMEM;
}

//  The messages above message_id: s loaded, *count of them in index and
//  version (new arrays, caller frees). CM_ENOTFOUND when it is not there.
static int
s_above (st_ctx_t *c, const char *session_id, const char *message_id, st_branch_session_t *s,
         size_t **index, uint32_t **version, size_t *count)
{
    ST_TRY (st_branch_load (c, session_id, s));
    size_t i = st_branch_find (s, message_id);
    *index = malloc ((s->n ? s->n : 1) * sizeof **index);
    *version = malloc ((s->n ? s->n : 1) * sizeof **version);
    int rc = !*index || !*version ? CM_ENOMEM : i == s->n ? CM_ENOTFOUND : 0;
    if (rc) {
        free (*index);
        free (*version);
        st_branch_free (s);
        return rc;
    }
    *count = st_branch_above (s->items, s->n, i, *index, *version);
    return 0;
}

int
st_branch_conversation (st_ctx_t *c, const char *session_id, const char *target_id,
                        const char *original_id, cm_value_t **out)
{
    st_branch_session_t s;
    size_t *index, count;
    uint32_t *version;
    ST_TRY (s_above (c, session_id, target_id, &s, &index, &version, &count));
    size_t end = count;
    for (size_t a = 0; a < count; a++)
        if (strcmp (cm_map_str_or (s.msgs[index[a]], "id", ""), original_id) == 0)
            end = a + 1;
    cm_value_t *conversation = cm_arr_new ();
    int rc = 0;
    for (size_t a = 0; rc == 0 && a < end; a++) {
        char *text = NULL;
        rc = s_text (c, &s, index[a], version[a], &text);
        if (rc)
            break;
        cm_value_t *turn = cm_map_new ();
        st_rows_copy_str (turn, "role", s.msgs[index[a]], "role");
        cm_map_set_str (turn, "content", text);
        free (text);
        cm_arr_push (conversation, turn);
    }
    free (index);
    free (version);
    st_branch_free (&s);
    if (rc)
        cm_value_destroy (&conversation);
    *out = conversation;
    return rc;
}

int
st_branch_question_of (st_ctx_t *c, const char *session_id, const char *message_id,
                       char *question_id, char **text)
{
    st_branch_session_t s;
    size_t *index, count;
    uint32_t *version;
    ST_TRY (s_above (c, session_id, message_id, &s, &index, &version, &count));
    int rc = CM_EINVAL;
    c->why = "no user message precedes this message";
    for (size_t a = count; a-- > 0;) {
        if (!s.items[index[a]].question)
            continue;
        snprintf (question_id, CM_MESSAGE_ID_MAX + 1, "%s",
                  cm_map_str_or (s.msgs[index[a]], "id", ""));
        c->why = NULL;
        rc = s_text (c, &s, index[a], version[a], text);
        break;
    }
    free (index);
    free (version);
    st_branch_free (&s);
    return rc;
}
