/*  test_st_events.c: event ids minted in the commit, the event log, its
    retention, and the events_after read (st_events.h, st_h_events.h).  */
#include "test_st_util.h"

#include "st_events.h"
#include "st_format.h"

//  The id of event i of the last write, parsed.
static cm_event_id_t
s_id (st_fixture_t *f, size_t i)
{
    const char *text = cm_map_str (cm_arr_at (f->events, i), "id");
    assert_non_null (text);
    cm_event_id_t id;
    assert_int_equal (cm_event_id_parse (text, &id), 0);
    return id;
}

//  events_after through the read path; returns the reply payload (owned).
static cm_value_t *
s_after (st_fixture_t *f, const char *session, const char *after)
{
    cm_envelope_t *request = st_req (CM_MSG_EVENTS_AFTER, NULL);
    cm_map_set_str (request->payload, "session_id", session);
    if (after)
        cm_map_set_str (request->payload, "after", after);
    cm_envelope_t *reply = NULL;
    assert_int_equal (st_read (f, request, &reply), 0);
    assert_int_equal (reply->type, CM_MSG_OK);
    cm_value_t *payload = reply->payload;
    reply->payload = NULL;
    cm_envelope_destroy (&reply);
    return payload;
}

static cm_envelope_t *
s_start_req (const char *session, const char *query)
{
    cm_envelope_t *request = st_req (CM_MSG_SESSION_START, "alice");
    cm_map_set_str (request->payload, "session_id", session);
    cm_map_set_str (request->payload, "query", query);
    return request;
}

//  Two requests of one batch on one session get consecutive seqs in that
//  commit; another session counts from 1; the log holds what was published.
static void
test_numbered_in_the_commit (void **state)
{
    (void) state;
    st_fixture_t *f = st_fixture_new (16u << 20, 3);
    cm_envelope_t *requests[3] = {s_start_req ("s-a", "one"), s_start_req ("s-a", "two"),
                                  s_start_req ("s-b", "three")};
    cm_envelope_t *replies[3] = {NULL};
    assert_int_equal (st_ops_write_batch (f->ops, requests, 3, f->now, replies, &f->events), 0);
    size_t count = cm_value_len (f->events);
    assert_true (count >= 3);
    uint64_t next_a = 1, next_b = 1, epoch = s_id (f, 0).epoch;
    assert_true (epoch > 0);
    for (size_t i = 0; i < count; i++) {
        cm_event_id_t id = s_id (f, i);
        assert_int_equal (id.epoch, epoch);
        const char *session = cm_map_str (cm_arr_at (f->events, i), "session_id");
        uint64_t *next = strcmp (session, "s-a") == 0 ? &next_a : &next_b;
        assert_int_equal (id.seq, (*next)++);
    }
    assert_true (next_a >= 3); //  both of s-a's requests published
    //  The log answers the same ids with the bodies the broadcasters get.
    cm_value_t *payload = s_after (f, "s-a", NULL);
    assert_true (cm_map_bool (payload, "complete", false));
    assert_int_equal (cm_map_int (payload, "epoch", 0), (int64_t) epoch);
    const cm_value_t *logged = cm_map_get (payload, "events");
    assert_int_equal (cm_value_len (logged), next_a - 1);
    for (size_t i = 0, a = 0; i < count; i++) {
        const cm_value_t *event = cm_arr_at (f->events, i);
        if (strcmp (cm_map_str (event, "session_id"), "s-a"))
            continue;
        const cm_value_t *entry = cm_arr_at (logged, a++);
        assert_string_equal (cm_map_str (entry, "id"), cm_map_str (event, "id"));
        const cm_value_t *body = cm_map_get (entry, "body");
        cm_envelope_t *envelope = NULL;
        assert_int_equal (cm_envelope_decode (body->u.s.ptr, body->u.s.len, &envelope), 0);
        assert_int_equal (envelope->type, CM_MSG_EVENT);
        assert_string_equal (envelope->request_id, cm_map_str (event, "id"));
        assert_string_equal (cm_map_str (envelope->payload, "id"), cm_map_str (event, "id"));
        assert_string_equal (cm_map_str (envelope->payload, "event"), cm_map_str (event, "event"));
        assert_null (cm_map_get (envelope->payload, "session_id"));
        cm_envelope_destroy (&envelope);
    }
    cm_value_destroy (&payload);
    for (size_t i = 0; i < 3; i++) {
        cm_envelope_destroy (&replies[i]);
        cm_envelope_destroy (&requests[i]);
    }
    st_fixture_destroy (&f);
}

//  A restart continues every session's count under the same epoch: an id
//  is never issued twice.
static void
test_monotonic_across_restart (void **state)
{
    (void) state;
    st_fixture_t *f = st_fixture_new (16u << 20, 3);
    assert_int_equal (st_start (f, "alice", "s-r", "before", NULL, NULL, NULL), 0);
    cm_event_id_t last = s_id (f, cm_value_len (f->events) - 1);
    st_ops_destroy (&f->ops);
    st_db_destroy (&f->db);
    assert_int_equal (st_db_open (f->dir, 16u << 20, false, &f->db), 0);
    st_ops_config_t config = {.lease_ms = 10000, .max_attempts = 3,
                              .retention_ms = 86400000, .worker_live_ms = 30000};
    f->ops = st_ops_new (f->db, &config);
    assert_int_equal (st_start (f, "alice", "s-r", "after", NULL, NULL, NULL), 0);
    cm_event_id_t first = s_id (f, 0);
    assert_int_equal (first.epoch, last.epoch);
    assert_int_equal (first.seq, last.seq + 1);
    st_fixture_destroy (&f);
}

//  A refused request mints no id: the next committed event continues.
static void
test_refused_mints_nothing (void **state)
{
    (void) state;
    st_fixture_t *f = st_fixture_new (16u << 20, 3);
    assert_int_equal (st_start (f, "alice", "s-x", "one", NULL, NULL, NULL), 0);
    cm_event_id_t last = s_id (f, cm_value_len (f->events) - 1);
    //  Bob may not write into alice's session.
    assert_int_not_equal (st_start (f, "bob", "s-x", "mine?", NULL, NULL, NULL), 0);
    assert_int_equal (cm_value_len (f->events), 0);
    assert_int_equal (st_start (f, "alice", "s-x", "two", NULL, NULL, NULL), 0);
    assert_int_equal (s_id (f, 0).seq, last.seq + 1);
    st_fixture_destroy (&f);
}

//  Numbers n bare events of session in one txn with keep; the last id.
static cm_event_id_t
s_number_id (st_fixture_t *f, const char *session, size_t n, size_t keep)
{
    MDB_txn *txn = NULL;
    assert_int_equal (st_db_write_begin (f->db, NULL, &txn), 0);
    cm_value_t *events = cm_arr_new ();
    for (size_t i = 0; i < n; i++) {
        cm_value_t *event = cm_map_new ();
        cm_map_set_str (event, "session_id", session);
        cm_map_set_str (event, "event", "session_updated");
        cm_value_t *data = cm_map_new ();
        cm_map_set_str (data, "sessionId", session);
        cm_map_set (event, "data", data);
        cm_arr_push (events, event);
    }
    assert_int_equal (st_events_number (f->db, txn, events, keep), 0);
    assert_int_equal (st_db_commit (txn), 0);
    cm_event_id_t id;
    assert_int_equal (cm_event_id_parse (cm_map_str (cm_arr_at (events, n - 1), "id"), &id), 0);
    cm_value_destroy (&events);
    return id;
}

//  The same, its epoch.
static uint64_t
s_number (st_fixture_t *f, const char *session, size_t n, size_t keep)
{
    return s_number_id (f, session, n, keep).epoch;
}

static void
s_expect (st_fixture_t *f, const char *after, bool complete, uint64_t first, uint64_t last)
{
    cm_value_t *payload = s_after (f, "s-k", after);
    assert_int_equal (cm_map_bool (payload, "complete", !complete), complete);
    const cm_value_t *events = cm_map_get (payload, "events");
    assert_int_equal (cm_value_len (events), last >= first ? last - first + 1 : 0);
    for (size_t i = 0; i < cm_value_len (events); i++) {
        cm_event_id_t id;
        assert_int_equal (cm_event_id_parse (cm_map_str (cm_arr_at (events, i), "id"), &id), 0);
        assert_int_equal (id.seq, first + i);
    }
    cm_value_destroy (&payload);
}

//  keep bounds a session's log; a Last-Event-ID whose successors were
//  trimmed, from another store or never reached is incomplete (resync).
static void
test_retention_and_completeness (void **state)
{
    (void) state;
    st_fixture_t *f = st_fixture_new (16u << 20, 3);
    uint64_t epoch = s_number (f, "s-k", 5, 3);
    char id[48];
    s_expect (f, NULL, true, 3, 5);
    s_expect (f, "0-1", false, 3, 5); //  another store's id: everything held
    cm_event_id_format (id, sizeof id, (cm_event_id_t) {epoch, 1});
    s_expect (f, id, false, 3, 5); //  2 was trimmed
    cm_event_id_format (id, sizeof id, (cm_event_id_t) {epoch, 2});
    s_expect (f, id, true, 3, 5);
    cm_event_id_format (id, sizeof id, (cm_event_id_t) {epoch, 4});
    s_expect (f, id, true, 5, 5);
    cm_event_id_format (id, sizeof id, (cm_event_id_t) {epoch, 5});
    s_expect (f, id, true, 1, 0);
    cm_event_id_format (id, sizeof id, (cm_event_id_t) {epoch, 6});
    s_expect (f, id, false, 3, 5); //  never reached
    //  A session with no events: nothing, complete only without an id.
    cm_value_t *payload = s_after (f, "s-none", NULL);
    assert_true (cm_map_bool (payload, "complete", false));
    assert_int_equal (cm_value_len (cm_map_get (payload, "events")), 0);
    cm_value_destroy (&payload);
    payload = s_after (f, "s-none", id);
    assert_false (cm_map_bool (payload, "complete", true));
    cm_value_destroy (&payload);
    //  Exactly keep stay however many come.
    assert_int_equal (s_number (f, "s-k", 10, 3), epoch);
    s_expect (f, NULL, true, 13, 15);
    st_fixture_destroy (&f);
}

//  More than fits in one reply: the newest that fit, incomplete.
static void
test_budget_keeps_the_newest (void **state)
{
    (void) state;
    st_fixture_t *f = st_fixture_new (16u << 20, 3);
    uint64_t epoch = s_number (f, "s-k", 10, 100);
    MDB_txn *txn = NULL;
    assert_int_equal (st_db_read_begin (f->db, &txn), 0);
    cm_value_t *whole = NULL, *cut = NULL;
    cm_event_id_t after = {epoch, 0};
    assert_int_equal (st_events_after (f->db, txn, "s-k", &after, 1u << 20, &whole), 0);
    const cm_value_t *events = cm_map_get (whole, "events");
    assert_int_equal (cm_value_len (events), 10);
    assert_true (cm_map_bool (whole, "complete", false));
    const cm_value_t *body = cm_map_get (cm_arr_at (events, 0), "body");
    size_t budget = 4 * (body->u.s.len + 96) + 10;
    assert_int_equal (st_events_after (f->db, txn, "s-k", &after, budget, &cut), 0);
    st_db_read_end (f->db, txn);
    events = cm_map_get (cut, "events");
    assert_int_equal (cm_value_len (events), 4);
    assert_false (cm_map_bool (cut, "complete", true));
    cm_event_id_t id;
    assert_int_equal (cm_event_id_parse (cm_map_str (cm_arr_at (events, 0), "id"), &id), 0);
    assert_int_equal (id.seq, 7);
    cm_value_destroy (&whole);
    cm_value_destroy (&cut);
    st_fixture_destroy (&f);
}

//  A session's count is its own newest event's, whatever sessions sort
//  beside it (one whose id it begins, one that begins it, the first and
//  the last in the log), and it goes on when older events were trimmed.
static void
test_count_is_the_sessions_newest (void **state)
{
    (void) state;
    st_fixture_t *f = st_fixture_new (16u << 20, 3);
    assert_int_equal (s_number_id (f, "s-k", 2, 100).seq, 2);
    assert_int_equal (s_number_id (f, "s-k2", 3, 100).seq, 3);
    assert_int_equal (s_number_id (f, "s-", 1, 100).seq, 1);
    assert_int_equal (s_number_id (f, "s-a", 4, 100).seq, 4);  //  the first key
    assert_int_equal (s_number_id (f, "s-z", 5, 100).seq, 5);  //  the last key
    assert_int_equal (s_number_id (f, "s-k", 1, 100).seq, 3);
    assert_int_equal (s_number_id (f, "s-k2", 1, 100).seq, 4);
    assert_int_equal (s_number_id (f, "s-", 1, 100).seq, 2);
    assert_int_equal (s_number_id (f, "s-z", 1, 100).seq, 6);
    assert_int_equal (s_number_id (f, "s-a", 1, 100).seq, 5);
    //  keep 1: only the newest is held, and the count still goes on.
    assert_int_equal (s_number_id (f, "s-k", 4, 1).seq, 7);
    assert_int_equal (s_number_id (f, "s-k", 1, 1).seq, 8);
    s_expect (f, NULL, true, 8, 8);
    st_fixture_destroy (&f);
}

//  A store of format 5 kept a head per session in event_heads: it opens
//  as format 6 without them ("#epoch" stays), and every session counts on
//  from its newest event under the same epoch.
static void
test_format_5_store_upgrades (void **state)
{
    (void) state;
    st_fixture_t *f = st_fixture_new (16u << 20, 3);
    cm_event_id_t last = s_number_id (f, "s-k", 3, 100);
    MDB_txn *txn = NULL;
    unsigned char head[8];
    st_db_be64_put (head, last.seq);
    assert_int_equal (st_db_write_begin (f->db, NULL, &txn), 0);
    assert_int_equal (st_db_put_raw (f->db, txn, ST_DBI_EVENT_HEADS, "s-k", 3, head, 8), 0);
    assert_int_equal (st_db_commit (txn), 0);
    st_ops_destroy (&f->ops);
    st_db_destroy (&f->db);
    st_format_t format;
    char why[ST_FORMAT_WHY_MAX];
    assert_int_equal (st_format_read (f->dir, &format, why, sizeof why), 0);
    format.version = 5;
    assert_int_equal (st_format_write (f->dir, &format), 0);
    assert_int_equal (st_db_open (f->dir, 16u << 20, false, &f->db), 0);
    st_ops_config_t config = {.lease_ms = 10000, .max_attempts = 3,
                              .retention_ms = 86400000, .worker_live_ms = 30000};
    f->ops = st_ops_new (f->db, &config);
    assert_int_equal (st_format_read (f->dir, &format, why, sizeof why), 0);
    assert_int_equal (format.version, ST_FORMAT_VERSION);
    const void *data;
    size_t size;
    assert_int_equal (st_db_read_begin (f->db, &txn), 0);
    assert_int_equal (st_db_get_raw (f->db, txn, ST_DBI_EVENT_HEADS, "s-k", 3, &data, &size),
                      CM_ENOTFOUND);
    uint64_t epoch = 0;
    assert_int_equal (st_events_epoch (f->db, txn, &epoch), 0);
    st_db_read_end (f->db, txn);
    assert_int_equal (epoch, last.epoch);
    cm_event_id_t next = s_number_id (f, "s-k", 1, 100);
    assert_int_equal (next.epoch, last.epoch);
    assert_int_equal (next.seq, last.seq + 1);
    st_fixture_destroy (&f);
}

//  Bad input gets a precise error.
static void
test_bad_requests (void **state)
{
    (void) state;
    st_fixture_t *f = st_fixture_new (16u << 20, 3);
    const char *bad[] = {"", "7", "1-", "x-1", "-1-2", "1-2 "};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        cm_envelope_t *request = st_req (CM_MSG_EVENTS_AFTER, NULL);
        cm_map_set_str (request->payload, "session_id", "s-1");
        cm_map_set_str (request->payload, "after", bad[i]);
        cm_envelope_t *reply = NULL;
        assert_int_equal (st_read (f, request, &reply), CM_EPROTO);
        assert_string_equal (cm_map_str_or (reply->payload, "message", ""),
                             "after is not an event id <epoch>-<seq>");
        cm_envelope_destroy (&reply);
    }
    cm_envelope_t *request = st_req (CM_MSG_EVENTS_AFTER, NULL);
    cm_map_set_str (request->payload, "session_id", "bad session!");
    assert_int_equal (st_read (f, request, NULL), CM_EPROTO);
    st_fixture_destroy (&f);
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_numbered_in_the_commit),
        cmocka_unit_test (test_monotonic_across_restart),
        cmocka_unit_test (test_refused_mints_nothing),
        cmocka_unit_test (test_retention_and_completeness),
        cmocka_unit_test (test_budget_keeps_the_newest),
        cmocka_unit_test (test_count_is_the_sessions_newest),
        cmocka_unit_test (test_format_5_store_upgrades),
        cmocka_unit_test (test_bad_requests),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
