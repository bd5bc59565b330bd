/*  test_st_util.h: shared fixtures of the store's unit tests (header-only,
    included by tests/test_st_*.c; not a test itself).                    */
#ifndef TEST_ST_UTIL_H_INCLUDED
#define TEST_ST_UTIL_H_INCLUDED

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "cm_codec.h"
#include "cm_error.h"
#include "cm_event.h"
#include "cm_time.h"
#include "st_db.h"
#include "st_format.h"
#include "st_ops.h"

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct {
    char dir[128];
    st_db_t *db;
    st_ops_t *ops;
    cm_value_t *events; //  of the last write
    int64_t now;        //  fake clock for the logic tests
    int64_t fence;      //  fencing token of the first task st_claim leased last
} st_fixture_t;

static int
s_rm_entry (const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void) sb, (void) flag, (void) ftw;
    return remove (path);
}

static inline void
st_rmtree (const char *dir)
{
    nftw (dir, s_rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static inline st_fixture_t *
st_fixture_new (size_t map_bytes, int max_attempts)
{
    st_fixture_t *f = calloc (1, sizeof *f);
    snprintf (f->dir, sizeof f->dir, "/tmp/st_test_XXXXXX");
    assert_non_null (mkdtemp (f->dir));
    assert_int_equal (st_db_open (f->dir, map_bytes, false, &f->db), 0);
    st_ops_config_t config = {.lease_ms = 10000,
                              .max_attempts = max_attempts,
                              .retention_ms = 7LL * 86400 * 1000,
                              .worker_live_ms = 30000};
    f->ops = st_ops_new (f->db, &config);
    f->now = 1764000000000LL;
    return f;
}

static inline void
st_fixture_destroy (st_fixture_t **f_p)
{
    st_fixture_t *f = *f_p;
    cm_value_destroy (&f->events);
    st_ops_destroy (&f->ops);
    st_db_destroy (&f->db);
    st_rmtree (f->dir);
    free (f);
    *f_p = NULL;
}

//  cmocka teardown of a fixture made in a setup by st_fixture_new.
static inline int
st_fixture_teardown (void **state)
{
    st_fixture_t *f = *state;
    st_fixture_destroy (&f);
    return 0;
}

//  A request with the caller fields set.
static inline cm_envelope_t *
st_req (cm_msg_t type, const char *user)
{
    cm_envelope_t *request = cm_envelope_new (type, "t-1");
    if (user) {
        cm_map_set_str (request->payload, "user", user);
        cm_map_set_str (request->payload, "ip", "127.0.0.1");
        cm_map_set_str (request->payload, "ua", "cmocka");
    }
    return request;
}

//  Every event a write publishes is one of cm_event.h's, from the store or
//  relayed for the regenerator, with the data its table entry lists and no
//  other field.
static inline void
st_events_check (const cm_value_t *events)
{
    for (size_t i = 0; events && i < cm_value_len (events); i++) {
        const cm_value_t *event = cm_arr_at (events, i);
        const char *name = cm_map_str_or (event, "event", "");
        cm_event_t type = cm_event_from_name (name, strlen (name));
        char why[128] = "";
        if (cm_event_validate (type, cm_map_get (event, "data"), why, sizeof why))
            fail_msg ("event %s: %s", name, why);
        //  ...and nothing it does not list.
        const cm_value_t *data = cm_map_get (event, "data");
        size_t count;
        const cm_field_t *fields = cm_event_fields (type, &count);
        for (size_t k = 0; k < cm_value_len (data); k++) {
            const char *key = cm_map_key_at (data, k);
            bool listed = strcmp (key, "sessionId") == 0 || strcmp (key, "timestamp") == 0;
            for (size_t j = 0; j < count && !listed; j++)
                listed = strcmp (fields[j].name, key) == 0;
            if (!listed)
                fail_msg ("event %s: field '%s' is not in cm_event.h", name, key);
        }
        assert_true (cm_event_origin (type) == CM_EVENT_FROM_STORE
                     || cm_event_origin (type) == CM_EVENT_FROM_REGENERATOR);
        assert_string_equal (cm_map_str_or (event, "session_id", ""),
                             cm_map_str_or (cm_map_get (event, "data"), "sessionId", "?"));
    }
}

//  Runs one write (consuming request); returns the code, *reply if wanted.
//  Checks the events it published (st_events_check).
static inline int
st_write (st_fixture_t *f, cm_envelope_t *request, cm_envelope_t **reply_out)
{
    cm_envelope_t *reply = NULL;
    cm_value_destroy (&f->events);
    int rc = st_ops_write_batch (f->ops, &request, 1, f->now, &reply, &f->events);
    assert_int_equal (rc, 0);
    assert_non_null (reply);
    st_events_check (f->events);
    int code = reply->type == CM_MSG_OK ? 0 : (int) cm_map_int (reply->payload, "code", 1);
    if (reply_out)
        *reply_out = reply;
    else
        cm_envelope_destroy (&reply);
    cm_envelope_destroy (&request);
    return code;
}

static inline int
st_read (st_fixture_t *f, cm_envelope_t *request, cm_envelope_t **reply_out)
{
    cm_envelope_t *reply = NULL;
    int rc = st_ops_read (f->ops, request, f->now, &reply);
    assert_non_null (reply);
    if (reply_out)
        *reply_out = reply;
    else
        cm_envelope_destroy (&reply);
    cm_envelope_destroy (&request);
    return rc;
}

//  Starts a session turn; fills the ids (buffers >= 400 bytes).
static inline int
st_start (st_fixture_t *f, const char *user, const char *session, const char *query,
          char *user_msg, char *asst_msg, char *task)
{
    cm_envelope_t *request = st_req (CM_MSG_SESSION_START, user);
    cm_map_set_str (request->payload, "session_id", session);
    cm_map_set_str (request->payload, "query", query);
    cm_envelope_t *reply = NULL;
    int rc = st_write (f, request, &reply);
    if (rc == 0) {
        const cm_value_t *data = cm_map_get (reply->payload, "data");
        if (user_msg)
            strcpy (user_msg, cm_map_str_or (data, "user_message_id", ""));
        if (asst_msg)
            strcpy (asst_msg, cm_map_str_or (data, "assistant_message_id", ""));
        if (task)
            strcpy (task, cm_map_str_or (data, "task_id", ""));
    }
    cm_envelope_destroy (&reply);
    return rc;
}

//  Claims for worker; returns the number of tasks and copies the first id
//  (and its fencing token into f->fence).
static inline size_t
st_claim (st_fixture_t *f, const char *worker, char *task_id)
{
    cm_envelope_t *request = st_req (CM_MSG_TASK_CLAIM, NULL);
    cm_map_set_str (request->payload, "worker", worker);
    cm_envelope_t *reply = NULL;
    assert_int_equal (st_write (f, request, &reply), 0);
    const cm_value_t *tasks = cm_map_get (reply->payload, "tasks");
    size_t n = cm_value_len (tasks);
    if (n && task_id)
        strcpy (task_id, cm_map_str_or (cm_arr_at (tasks, 0), "task_id", ""));
    if (n)
        f->fence = cm_map_int (cm_arr_at (tasks, 0), "fence", 0);
    cm_envelope_destroy (&reply);
    return n;
}

//  Worker "w" claims the one pending task (it must be task) and completes
//  it with content, under the lease's fencing token.
static inline void
st_answer (st_fixture_t *f, const char *task, const char *content)
{
    char claimed[CM_TASK_ID_MAX + 1];
    assert_int_equal (st_claim (f, "w", claimed), 1);
    assert_string_equal (claimed, task);
    cm_envelope_t *done = st_req (CM_MSG_TASK_COMPLETE, NULL);
    cm_map_set_str (done->payload, "worker", "w");
    cm_map_set_int (done->payload, "fence", f->fence);
    cm_map_set_str (done->payload, "task_id", task);
    cm_map_set_str (done->payload, "content", content);
    assert_int_equal (st_write (f, done, NULL), 0);
}

//  Index of the first event named name in the last write's events, or -1.
static inline int
st_event_index (st_fixture_t *f, const char *name)
{
    for (size_t i = 0; f->events && i < cm_value_len (f->events); i++)
        if (strcmp (cm_map_str_or (cm_arr_at (f->events, i), "event", ""), name) == 0)
            return (int) i;
    return -1;
}

static inline const cm_value_t *
st_event_data (st_fixture_t *f, const char *name)
{
    int i = st_event_index (f, name);
    return i < 0 ? NULL : cm_map_get (cm_arr_at (f->events, (size_t) i), "data");
}

//  The upgrade of a store made by a build of format `old`, from before
//  database dbi existed. Makes a store in dir (a mkdtemp template, filled
//  in), drops dbi, and checks: saying the current format without dbi it is
//  damage (CM_EDB); saying `old` it opens, gets dbi back (empty, "k" not
//  found) and says the current format after, with the same id. Returns the
//  open store; the caller destroys it and removes dir.
static inline st_db_t *
st_format_upgrade (char *dir, st_dbi_t dbi, int old)
{
    assert_non_null (mkdtemp (dir));
    st_db_t *db = NULL;
    assert_int_equal (st_db_open (dir, 1 << 20, false, &db), 0);
    MDB_txn *txn = NULL;
    assert_int_equal (st_db_write_begin (db, NULL, &txn), 0);
    assert_int_equal (mdb_drop (txn, st_db_dbi (db, dbi), 1), 0);
    assert_int_equal (st_db_commit (txn), 0);
    st_db_destroy (&db);
    st_format_t format;
    char why[ST_FORMAT_WHY_MAX];
    assert_int_equal (st_format_read (dir, &format, why, sizeof why), 0);
    assert_int_equal (format.version, ST_FORMAT_VERSION);
    assert_int_equal (st_db_open (dir, 1 << 20, false, &db), CM_EDB);
    format.version = old;
    assert_int_equal (st_format_write (dir, &format), 0);
    assert_int_equal (st_db_open (dir, 1 << 20, false, &db), 0);
    st_format_t after;
    assert_int_equal (st_format_read (dir, &after, why, sizeof why), 0);
    assert_int_equal (after.version, ST_FORMAT_VERSION);
    assert_string_equal (after.id, format.id);
    assert_int_equal (st_db_read_begin (db, &txn), 0);
    const void *data;
    size_t size;
    assert_int_equal (st_db_get_raw (db, txn, dbi, "k", 1, &data, &size), CM_ENOTFOUND);
    st_db_read_end (db, txn);
    return db;
}

#endif
