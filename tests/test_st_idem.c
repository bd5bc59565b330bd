/*  test_st_idem.c: idempotency keys (st_idem.h) over a temp LMDB: a
    retried regenerate, vote or edit with one key has one effect and gets
    the first reply again; the key with another request is refused and
    changes nothing; keys are per user; a refused first try keeps nothing;
    after 24 h the key is new again and upkeep drops the record.          */
#include "test_st_util.h"

#include "st_format.h"
#include "st_idem.h"

#define ID 400

static int
s_setup (void **state)
{
    *state = st_fixture_new (1 << 20, 3);
    return 0;
}

//  A session whose answer is done; its assistant and user message ids.
static void
s_answered (st_fixture_t *f, const char *user, char *user_msg, char *asst)
{
    char task[ID];
    assert_int_equal (st_start (f, user, "s1", "q", user_msg, asst, task), 0);
    assert_int_equal (st_claim (f, "w", NULL), 1);
    cm_envelope_t *done = st_req (CM_MSG_TASK_COMPLETE, NULL);
    cm_map_set_str (done->payload, "worker", "w");
    cm_map_set_str (done->payload, "task_id", task);
    cm_map_set_int (done->payload, "fence", f->fence);
    cm_map_set_str (done->payload, "content", "an answer");
    assert_int_equal (st_write (f, done, NULL), 0);
}

//  regen_create of message with key (NULL: none) and context, sent from
//  ip; the task id into task (may be NULL).
static int
s_regen_from (st_fixture_t *f, const char *user, const char *message, const char *key,
              const char *context, const char *ip, char *task)
{
    cm_envelope_t *request = st_req (CM_MSG_REGEN_CREATE, user);
    cm_map_set_str (request->payload, "message_id", message);
    cm_map_set_str (request->payload, "context", context);
    if (key)
        cm_map_set_str (request->payload, "idem_key", key);
    cm_map_set_str (request->payload, "ip", ip);
    cm_envelope_t *reply = NULL;
    int rc = st_write (f, request, &reply);
    if (rc == 0 && task)
        strcpy (task, cm_map_str_or (cm_map_get (reply->payload, "data"), "task_id", ""));
    else if (rc && task)
        task[0] = '\0';
    cm_envelope_destroy (&reply);
    return rc;
}

static int
s_regen (st_fixture_t *f, const char *user, const char *message, const char *key,
         const char *context, char *task)
{
    return s_regen_from (f, user, message, key, context, "10.0.0.1", task);
}

static void
test_regenerate_retried (void **state)
{
    st_fixture_t *f = *state;
    char user_msg[ID], asst[ID], first[ID] = "", again[ID] = "";
    s_answered (f, "alice", user_msg, asst);
    assert_int_equal (s_regen (f, "alice", asst, "k-1", "shorter", first), 0);
    //  20 retries, from another address (another gateway): the first reply.
    for (int i = 0; i < 20; i++) {
        assert_int_equal (s_regen_from (f, "alice", asst, "k-1", "shorter", "10.0.0.2", again),
                          0);
        assert_string_equal (again, first);
        assert_int_equal (cm_value_len (f->events), 0); //  no second effect, no event
    }
    //  One task: one claim, and a keyless regenerate still conflicts with it.
    assert_int_equal (st_claim (f, "w", NULL), 1);
    assert_int_equal (st_claim (f, "w", NULL), 0);
    assert_int_equal (s_regen (f, "alice", asst, NULL, "shorter", NULL), CM_ECONFLICT);

    //  The key with another body: refused, nothing changes.
    cm_envelope_t *other = st_req (CM_MSG_REGEN_CREATE, "alice");
    cm_map_set_str (other->payload, "message_id", asst);
    cm_map_set_str (other->payload, "context", "longer");
    cm_map_set_str (other->payload, "idem_key", "k-1");
    cm_envelope_t *reply = NULL;
    assert_int_equal (st_write (f, other, &reply), CM_EIDEMPOTENCY);
    assert_non_null (strstr (cm_map_str_or (reply->payload, "message", ""), "Idempotency-Key"));
    cm_envelope_destroy (&reply);
    assert_int_equal (cm_value_len (f->events), 0);
    //  ...and with another request type.
    cm_envelope_t *vote = st_req (CM_MSG_FEEDBACK_PUT, "alice");
    cm_map_set_str (vote->payload, "message_id", asst);
    cm_map_set_str (vote->payload, "feedback_type", "upvote");
    cm_map_set_str (vote->payload, "idem_key", "k-1");
    assert_int_equal (st_write (f, vote, NULL), CM_EIDEMPOTENCY);
}

//  *replayed (may be NULL): the reply's replay mark.
static int
s_vote_ex (st_fixture_t *f, const char *user, const char *message, const char *key,
           char *feedback_id, bool *replayed)
{
    cm_envelope_t *vote = st_req (CM_MSG_FEEDBACK_PUT, user);
    cm_map_set_str (vote->payload, "message_id", message);
    cm_map_set_str (vote->payload, "feedback_type", "upvote");
    cm_map_set_str (vote->payload, "idem_key", key);
    cm_envelope_t *reply = NULL;
    int rc = st_write (f, vote, &reply);
    if (rc == 0)
        strcpy (feedback_id, cm_map_str_or (reply->payload, "feedback_id", ""));
    if (replayed)
        *replayed = cm_map_bool (reply->payload, "replayed", false);
    cm_envelope_destroy (&reply);
    return rc;
}

static int
s_vote (st_fixture_t *f, const char *user, const char *message, const char *key,
        char *feedback_id)
{
    return s_vote_ex (f, user, message, key, feedback_id, NULL);
}

static int
s_history_len (st_fixture_t *f, const char *user, const char *message)
{
    cm_envelope_t *history = st_req (CM_MSG_HISTORY_GET, user);
    cm_map_set_str (history->payload, "message_id", message);
    cm_envelope_t *reply = NULL;
    assert_int_equal (st_read (f, history, &reply), 0);
    int n = (int) cm_value_len (cm_map_get (reply->payload, "history"));
    cm_envelope_destroy (&reply);
    return n;
}

static void
test_vote_and_edit_retried (void **state)
{
    st_fixture_t *f = *state;
    char user_msg[ID], asst[ID], first[ID], again[ID];
    s_answered (f, "bob", user_msg, asst);
    //  A first try refused (no such message) keeps nothing: the retry runs.
    assert_int_equal (s_vote (f, "bob", "msg_nope", "v-1", first), CM_ENOTFOUND);
    bool replayed = true;
    assert_int_equal (s_vote_ex (f, "bob", asst, "v-1", first, &replayed), 0);
    assert_false (replayed);
    assert_int_equal (st_event_index (f, "feedback_submitted"), 0);
    assert_int_equal (s_vote_ex (f, "bob", asst, "v-1", again, &replayed), 0);
    assert_true (replayed); //  the first reply, marked
    assert_string_equal (again, first);
    assert_int_equal (cm_value_len (f->events), 0);
    //  Keys are per user: carol's "v-1" is her own.
    char carols[ID];
    assert_int_equal (s_vote (f, "carol", asst, "v-1", carols), CM_ENOTFOUND);

    for (int i = 0; i < 3; i++) {
        cm_envelope_t *edit = st_req (CM_MSG_MESSAGE_EDIT, "bob");
        cm_map_set_str (edit->payload, "message_id", user_msg);
        cm_map_set_str (edit->payload, "content", "second");
        cm_map_set_str (edit->payload, "idem_key", "e-1");
        assert_int_equal (st_write (f, edit, NULL), 0);
    }
    assert_int_equal (s_history_len (f, "bob", user_msg), 1);
}

static void
test_key_expires_after_a_day (void **state)
{
    st_fixture_t *f = *state;
    char user_msg[ID], asst[ID], first[ID], later[ID];
    s_answered (f, "dan", user_msg, asst);
    assert_int_equal (s_regen (f, "dan", asst, "d-1", "shorter", first), 0);
    assert_int_equal (st_claim (f, "w", NULL), 1);
    cm_envelope_t *done = st_req (CM_MSG_TASK_COMPLETE, NULL);
    cm_map_set_str (done->payload, "worker", "w");
    cm_map_set_str (done->payload, "task_id", first);
    cm_map_set_int (done->payload, "fence", f->fence);
    cm_map_set_str (done->payload, "content", "a second answer");
    assert_int_equal (st_write (f, done, NULL), 0);
    f->now += ST_IDEM_TTL_MS - 1; //  still the same action
    assert_int_equal (s_regen (f, "dan", asst, "d-1", "shorter", later), 0);
    assert_string_equal (later, first);
    f->now += 2; //  a day later the key is a new action
    assert_int_equal (s_regen (f, "dan", asst, "d-1", "longer", later), 0);
    assert_string_not_equal (later, first);
    //  Upkeep keeps a record younger than a day...
    cm_value_t *events = NULL;
    assert_int_equal (st_ops_cleanup (f->ops, f->now + ST_IDEM_TTL_MS - 1, &events), 0);
    cm_value_destroy (&events);
    assert_int_equal (s_regen (f, "dan", asst, "d-1", "other", NULL), CM_EIDEMPOTENCY);
    //  ...and drops older ones: the request then runs (and meets the task
    //  the key's last action started).
    assert_int_equal (st_ops_cleanup (f->ops, f->now + ST_IDEM_TTL_MS + 1, &events), 0);
    cm_value_destroy (&events);
    assert_int_equal (s_regen (f, "dan", asst, "d-1", "other", NULL), CM_ECONFLICT);
}

//  A store of format 2 (before the idem database) opens, gets it, and
//  says the current format after; a store of this format without it is damage.
static void
test_format_2_store_upgrades (void **state)
{
    (void) state;
    char dir[] = "/tmp/st_idem_XXXXXX";
    st_db_t *db = st_format_upgrade (dir, ST_DBI_IDEM, 2);
    st_db_destroy (&db);
    st_rmtree (dir);
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown (test_regenerate_retried, s_setup, st_fixture_teardown),
        cmocka_unit_test_setup_teardown (test_vote_and_edit_retried, s_setup, st_fixture_teardown),
        cmocka_unit_test_setup_teardown (test_key_expires_after_a_day, s_setup, st_fixture_teardown),
        cmocka_unit_test (test_format_2_store_upgrades),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
