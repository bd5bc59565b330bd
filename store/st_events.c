/*  st_events.c: event numbering and the event log (st_events.h).  */
#include "st_events.h"

#include "cm_codec.h"
#include "cm_error.h"
#include "cm_time.h"
#include "st_det.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_EPOCH_KEY "#epoch" //  '#' is no session id character
#define S_KEY_MAX (CM_SESSION_ID_MAX + 1 + 8)
#define S_ENTRY_OVERHEAD 96  //  id, keys and headers of one reply entry

static size_t
s_event_key (unsigned char *key, const char *session_id, size_t len, uint64_t seq)
{
    memcpy (key, session_id, len);
    key[len] = 0;
    st_db_be64_put (key + len + 1, seq);
    return len + 9;
}

//  Reads a u64 BE record of event_heads; *value 0 when absent.
static int
s_head_get (st_db_t *db, MDB_txn *txn, const char *key, uint64_t *value)
{
    const void *data;
    size_t size;
    *value = 0;
    int rc = st_db_get_raw (db, txn, ST_DBI_EVENT_HEADS, key, strlen (key), &data, &size);
    if (rc == CM_ENOTFOUND)
        return 0;
    if (rc)
        return rc;
    if (size != 8)
        return CM_ECORRUPT;
    *value = st_db_be64_get (data);
    return 0;
}

//  The session's last seq: that of its newest logged event (0 before its
//  first). Retention never deletes the newest, so this is the counter
//  itself, read from the page the next event goes to, and no head record
//  is rewritten per event (docs/store.md, "Event log").
static int
s_last_seq (st_db_t *db, MDB_txn *txn, const char *session_id, uint64_t *seq)
{
    *seq = 0;
    size_t len = strlen (session_id);
    unsigned char key[S_KEY_MAX];
    s_event_key (key, session_id, len, UINT64_MAX);
    MDB_cursor *cursor;
    int rc = st_db_error (mdb_cursor_open (txn, st_db_dbi (db, ST_DBI_EVENTS), &cursor),
                          "mdb_cursor_open");
    if (rc)
        return rc;
    //  The first key from the session's highest possible one (a seq never
    //  reached), then back one: the session's newest, if it has any. Only
    //  keys are read, so a damaged event (refused by events_after) does not
    //  stop its session's numbering.
    MDB_val k = {len + 9, key}, v;
    int mrc = mdb_cursor_get (cursor, &k, &v, MDB_SET_RANGE);
    if (mrc == 0)
        mrc = mdb_cursor_get (cursor, &k, &v, MDB_PREV);
    else if (mrc == MDB_NOTFOUND)
        mrc = mdb_cursor_get (cursor, &k, &v, MDB_LAST);
    mdb_cursor_close (cursor);
    rc = st_db_error (mrc, "mdb_cursor_get");
    if (rc == CM_ENOTFOUND)
        return 0;
    if (rc)
        return rc;
    if (k.mv_size == len + 9 && memcmp (k.mv_data, session_id, len) == 0
        && ((unsigned char *) k.mv_data)[len] == 0)
        *seq = st_db_be64_get ((unsigned char *) k.mv_data + len + 1);
    return 0;
}

static int
s_head_put (st_db_t *db, MDB_txn *txn, const char *key, uint64_t value)
{
    unsigned char bytes[8];
    st_db_be64_put (bytes, value);
    return st_db_put_raw (db, txn, ST_DBI_EVENT_HEADS, key, strlen (key), bytes, 8);
}

int
st_events_epoch (st_db_t *db, MDB_txn *txn, uint64_t *epoch)
{
    return s_head_get (db, txn, S_EPOCH_KEY, epoch);
}

//  Gives one event its id and stores it.
static int
s_number_one (st_db_t *db, MDB_txn *txn, cm_value_t *event, uint64_t epoch, size_t keep,
              char **buffer, size_t *capacity)
{
    const char *session_id = cm_map_str (event, "session_id");
    if (!cm_session_id_valid (session_id))
        return 0;
    uint64_t seq;
    int rc = s_last_seq (db, txn, session_id, &seq);
    if (rc)
        return rc;
    seq++;
    char id[48];
    cm_event_id_format (id, sizeof id, (cm_event_id_t) {epoch, seq});
    if (cm_map_set_str (event, "id", id))
        return CM_ENOMEM;
    //  The envelope as published (st_server): {event, data, id}, without
    //  session_id, which travels as its own frame.
    cm_value_t *session = cm_map_take (event, "session_id");
    cm_envelope_t envelope = {.type = CM_MSG_EVENT, .payload = event};
    snprintf (envelope.request_id, sizeof envelope.request_id, "%s", id);
    size_t size;
    rc = cm_envelope_encode_into (&envelope, buffer, capacity, &size);
    if (cm_map_set (event, "session_id", session)) //  takes session, even when it fails
        return CM_ENOMEM;
    if (rc)
        return rc;
    session_id = cm_map_str (event, "session_id");
    size_t len = strlen (session_id);
    unsigned char key[S_KEY_MAX];
    size_t key_len = s_event_key (key, session_id, len, seq);
    rc = st_db_put_raw (db, txn, ST_DBI_EVENTS, key, key_len, *buffer, size);
    if (rc == 0 && seq > keep) {
        key_len = s_event_key (key, session_id, len, seq - keep);
        rc = st_db_del (db, txn, ST_DBI_EVENTS, key, key_len);
        if (rc == CM_ENOTFOUND)
            rc = 0;
    }
    return rc;
}

int
st_events_number (st_db_t *db, MDB_txn *txn, cm_value_t *events, size_t keep)
{
    size_t count = events ? cm_value_len (events) : 0;
    if (count == 0)
        return 0;
    if (keep == 0)
        keep = ST_EVENTS_KEEP_DEFAULT;
    uint64_t epoch;
    int rc = st_events_epoch (db, txn, &epoch);
    if (rc == 0 && epoch == 0) {
        epoch = (uint64_t) st_det_now (cm_now_ms ()); //  the entry's clock when replicated
        rc = s_head_put (db, txn, S_EPOCH_KEY, epoch);
    }
    char *buffer = NULL;
    size_t capacity = 0;
    for (size_t i = 0; rc == 0 && i < count; i++)
        rc = s_number_one (db, txn, (cm_value_t *) cm_arr_at (events, i), epoch, keep, &buffer,
                           &capacity);
    free (buffer);
    return rc;
}

//  One logged event found by the walk back (data valid until the txn ends).
typedef struct {
    uint64_t seq;
    MDB_val body;
} s_found_t;

//  Walks back from the session's newest event (last_seq) over those after
//  after_seq that fit in budget (*full when one did not), then appends
//  them to out oldest first. *oldest: the oldest seq taken (last_seq + 1
//  when none).
static int
s_collect (st_db_t *db, MDB_txn *txn, const char *session_id, uint64_t epoch,
           uint64_t after_seq, uint64_t last_seq, size_t budget, cm_value_t *out,
           uint64_t *oldest, bool *full)
{
    size_t len = strlen (session_id);
    unsigned char key[S_KEY_MAX];
    size_t key_len = s_event_key (key, session_id, len, last_seq);
    MDB_cursor *cursor;
    int rc = st_db_error (mdb_cursor_open (txn, st_db_dbi (db, ST_DBI_EVENTS), &cursor),
                          "mdb_cursor_open");
    if (rc)
        return rc;
    s_found_t *found = NULL;
    size_t count = 0, cap = 0, bytes = 0;
    MDB_val k = {key_len, key}, v;
    rc = st_db_cursor_get (cursor, ST_DBI_EVENTS, &k, &v, MDB_SET_KEY);
    *oldest = last_seq + 1;
    while (rc == 0) {
        if (k.mv_size != len + 9 || memcmp (k.mv_data, session_id, len)
            || ((unsigned char *) k.mv_data)[len] != 0)
            break;
        uint64_t seq = st_db_be64_get ((unsigned char *) k.mv_data + len + 1);
        if (seq <= after_seq || seq + 1 != *oldest)
            break;
        if (bytes + v.mv_size + S_ENTRY_OVERHEAD > budget) {
            *full = true;
            break;
        }
        if (count == cap) {
            cap = cap ? cap * 2 : 64;
            s_found_t *grown = realloc (found, cap * sizeof *grown);
            if (!grown) {
                rc = CM_ENOMEM;
                break;
            }
            found = grown;
        }
        found[count++] = (s_found_t) {seq, v};
        bytes += v.mv_size + S_ENTRY_OVERHEAD;
        *oldest = seq;
        rc = st_db_cursor_get (cursor, ST_DBI_EVENTS, &k, &v, MDB_PREV);
    }
    mdb_cursor_close (cursor);
    if (rc == CM_ENOTFOUND)
        rc = 0;
    for (size_t i = count; rc == 0 && i > 0; i--) {
        char id[48];
        cm_event_id_format (id, sizeof id, (cm_event_id_t) {epoch, found[i - 1].seq});
        cm_value_t *item = cm_map_new ();
        if (!item || cm_map_set_str (item, "id", id)
            || cm_map_set (item, "body",
                           cm_bin_new (found[i - 1].body.mv_data, found[i - 1].body.mv_size))) {
            cm_value_destroy (&item);
            rc = CM_ENOMEM;
        }
        else if (cm_arr_push (out, item)) //  takes item, even when it fails
            rc = CM_ENOMEM;
    }
    free (found);
    return rc;
}

int
st_events_after (st_db_t *db, MDB_txn *txn, const char *session_id, const cm_event_id_t *after,
                 size_t budget, cm_value_t **payload)
{
    *payload = NULL;
    uint64_t epoch, last_seq;
    int rc = st_events_epoch (db, txn, &epoch);
    if (rc == 0)
        rc = s_last_seq (db, txn, session_id, &last_seq);
    if (rc)
        return rc;
    //  An id of another store, or one this session never reached: all
    //  held events go, and complete says the reader must resync.
    bool comparable = after && after->epoch == epoch && after->seq <= last_seq;
    uint64_t after_seq = comparable ? after->seq : 0;
    cm_value_t *events = cm_arr_new ();
    uint64_t oldest = last_seq + 1;
    bool full = false;
    if (!events)
        return CM_ENOMEM;
    if (last_seq)
        rc = s_collect (db, txn, session_id, epoch, after_seq, last_seq, budget, events, &oldest,
                        &full);
    bool complete = !full && (!after || (comparable && oldest == after_seq + 1));
    cm_value_t *out = cm_map_new ();
    if (rc == 0
        && (!out || cm_map_set_int (out, "epoch", (int64_t) epoch)
            || cm_map_set_bool (out, "complete", complete)))
        rc = CM_ENOMEM;
    if (rc == 0) {
        rc = cm_map_set (out, "events", events) ? CM_ENOMEM : 0; //  takes events
        events = NULL;
    }
    cm_value_destroy (&events);
    if (rc) {
        cm_value_destroy (&out);
        return rc;
    }
    *payload = out;
    return 0;
}
