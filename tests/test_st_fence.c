/*  test_st_fence.c: task leases taken over (st_task.h). Every lease gets
    the next fencing token, and a worker's write with any other is refused
    with CM_ESTALE and changes nothing, even from the same worker id and
    even after the successor finished; the successor continues the
    checkpointed text, with one resumed checkpoint at the seam.          */
#include "test_st_util.h"

#define ID 400

static int
s_setup (void **state)
{
    *state = st_fixture_new (1 << 20, 3);
    return 0;
}

//  A worker request about task with fencing token fence.
static cm_envelope_t *
s_worker_req (cm_msg_t type, const char *worker, const char *task, int64_t fence)
{
    cm_envelope_t *request = st_req (type, NULL);
    cm_map_set_str (request->payload, "worker", worker);
    cm_map_set_str (request->payload, "task_id", task);
    cm_map_set_int (request->payload, "fence", fence);
    return request;
}

static int
s_progress (st_fixture_t *f, const char *worker, const char *task, int64_t fence,
            const char *partial, cm_envelope_t **reply)
{
    cm_envelope_t *request = s_worker_req (CM_MSG_TASK_PROGRESS, worker, task, fence);
    cm_map_set_int (request->payload, "progress", 40);
    cm_map_set_str (request->payload, "partial", partial);
    return st_write (f, request, reply);
}

static int
s_complete (st_fixture_t *f, const char *worker, const char *task, int64_t fence,
            const char *content)
{
    cm_envelope_t *request = s_worker_req (CM_MSG_TASK_COMPLETE, worker, task, fence);
    cm_map_set_str (request->payload, "content", content);
    return st_write (f, request, NULL);
}

//  The stored content of the only assistant message of session s1.
static char *
s_answer (st_fixture_t *f, const char *user)
{
    cm_envelope_t *get = st_req (CM_MSG_SESSION_GET, user);
    cm_map_set_str (get->payload, "session_id", "s1");
    cm_envelope_t *reply = NULL;
    assert_int_equal (st_read (f, get, &reply), 0);
    const cm_value_t *messages = cm_map_get (cm_map_get (reply->payload, "session"), "messages");
    char *content = strdup (cm_map_str_or (cm_arr_at (messages, 1), "content", "?"));
    cm_envelope_destroy (&reply);
    return content;
}

//  A takeover by another worker: the old one's checkpoint and commit are
//  refused with a precise message, before and after the successor commits.
static void
test_stale_worker_refused (void **state)
{
    st_fixture_t *f = *state;
    char task[ID], claimed[ID];
    assert_int_equal (st_start (f, "alice", "s1", "q", NULL, NULL, task), 0);
    assert_int_equal (st_claim (f, "w1", claimed), 1);
    assert_int_equal (f->fence, 1);
    assert_int_equal (s_progress (f, "w1", task, 1, "old", NULL), 0);

    f->now += 10001; //  w1 paused past its lease; w2 takes over
    assert_int_equal (st_claim (f, "w2", claimed), 1);
    assert_int_equal (f->fence, 2);

    cm_envelope_t *reply = NULL;
    assert_int_equal (s_progress (f, "w1", task, 1, "old and more", &reply), CM_ESTALE);
    assert_string_equal (cm_map_str_or (reply->payload, "message", ""),
                         "fencing token 1 is stale: the task's lease is at 2");
    cm_envelope_destroy (&reply);
    assert_int_equal (cm_value_len (f->events), 0); //  nothing published
    assert_int_equal (s_complete (f, "w1", task, 1, "the stale answer"), CM_ESTALE);
    //  A token from the future is no better.
    assert_int_equal (s_progress (f, "w2", task, 3, "x", NULL), CM_ESTALE);
    //  The right token of another worker still needs the lease.
    assert_int_equal (s_progress (f, "w1", task, 2, "x", NULL), CM_ELEASE);

    assert_int_equal (s_progress (f, "w2", task, 2, "old and new", NULL), 0);
    assert_int_equal (s_complete (f, "w2", task, 2, "the successor's answer"), 0);
    //  Woken after the successor finished: still the stale token's error.
    assert_int_equal (s_complete (f, "w1", task, 1, "the stale answer"), CM_ESTALE);
    cm_envelope_t *fail = s_worker_req (CM_MSG_TASK_FAIL, "w1", task, 1);
    cm_map_set_str (fail->payload, "error", "late");
    assert_int_equal (st_write (f, fail, NULL), CM_ESTALE);
    char *content = s_answer (f, "alice");
    assert_string_equal (content, "the successor's answer");
    free (content);
}

//  The same worker id leases the task again (a restarted regenerator, or
//  another slot): the worker id matches, only the token tells them apart.
static void
test_same_worker_new_lease (void **state)
{
    st_fixture_t *f = *state;
    char task[ID];
    assert_int_equal (st_start (f, "bob", "s1", "q", NULL, NULL, task), 0);
    assert_int_equal (st_claim (f, "w", NULL), 1);
    f->now += 10001;
    assert_int_equal (st_claim (f, "w", NULL), 1);
    assert_int_equal (f->fence, 2);
    cm_envelope_t *event = s_worker_req (CM_MSG_TASK_EVENT, "w", task, 1);
    cm_map_set_str (event->payload, "event", "thought_process_start");
    cm_value_t *data = cm_map_new ();
    cm_map_set_str (data, "thinkingAbout", "stale");
    cm_map_set (event->payload, "data", data);
    assert_int_equal (st_write (f, event, NULL), CM_ESTALE);
    assert_int_equal (s_complete (f, "w", task, 1, "first slot"), CM_ESTALE);
    assert_int_equal (s_complete (f, "w", task, 2, "second slot"), 0);
    char *content = s_answer (f, "bob");
    assert_string_equal (content, "second slot");
    free (content);
}

//  The claim's tasks (borrowed from reply).
static const cm_value_t *
s_claim (st_fixture_t *f, const char *worker, cm_envelope_t **reply)
{
    cm_envelope_t *claim = st_req (CM_MSG_TASK_CLAIM, NULL);
    cm_map_set_str (claim->payload, "worker", worker);
    assert_int_equal (st_write (f, claim, reply), 0);
    return cm_arr_at (cm_map_get ((*reply)->payload, "tasks"), 0);
}

//  A takeover continues: the claim hands over the checkpointed text and
//  announces no new generation (no message_regenerating), and the new
//  holder's first checkpoint, only that one, is marked resumed.
static void
test_takeover_resumes (void **state)
{
    st_fixture_t *f = *state;
    char task[ID];
    assert_int_equal (st_start (f, "dan", "s1", "q", NULL, NULL, task), 0);
    cm_envelope_t *reply = NULL;
    const cm_value_t *claimed = s_claim (f, "w1", &reply);
    assert_string_equal (cm_map_str_or (claimed, "partial", "?"), "");
    cm_envelope_destroy (&reply);
    assert_true (st_event_index (f, "message_regenerating") >= 0);
    assert_int_equal (s_progress (f, "w1", task, 1, "The first half", NULL), 0);
    assert_null (cm_map_get (st_event_data (f, "regeneration_progress"), "resumed"));

    f->now += 10001;
    claimed = s_claim (f, "w2", &reply);
    assert_int_equal (cm_map_int (claimed, "fence", 0), 2);
    assert_string_equal (cm_map_str_or (claimed, "partial", ""), "The first half");
    cm_envelope_destroy (&reply);
    assert_int_equal (st_event_index (f, "message_regenerating"), -1);

    assert_int_equal (s_progress (f, "w2", task, 2, "The first half, then", NULL), 0);
    const cm_value_t *data = st_event_data (f, "regeneration_progress");
    assert_true (cm_map_bool (data, "resumed", false));
    assert_string_equal (cm_map_str_or (data, "partialContent", ""), "The first half, then");
    assert_int_equal (s_progress (f, "w2", task, 2, "The first half, then more", NULL), 0);
    assert_null (cm_map_get (st_event_data (f, "regeneration_progress"), "resumed"));
}

//  A worker request without a token is malformed (the schema needs it).
static void
test_fence_required (void **state)
{
    st_fixture_t *f = *state;
    char task[ID];
    assert_int_equal (st_start (f, "carol", "s1", "q", NULL, NULL, task), 0);
    assert_int_equal (st_claim (f, "w", NULL), 1);
    cm_envelope_t *request = st_req (CM_MSG_TASK_COMPLETE, NULL);
    cm_map_set_str (request->payload, "worker", "w");
    cm_map_set_str (request->payload, "task_id", task);
    cm_map_set_str (request->payload, "content", "unfenced");
    assert_int_equal (st_write (f, request, NULL), CM_EPROTO);
    char *content = s_answer (f, "carol");
    assert_string_equal (content, "");
    free (content);
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown (test_stale_worker_refused, s_setup, st_fixture_teardown),
        cmocka_unit_test_setup_teardown (test_same_worker_new_lease, s_setup, st_fixture_teardown),
        cmocka_unit_test_setup_teardown (test_fence_required, s_setup, st_fixture_teardown),
        cmocka_unit_test_setup_teardown (test_takeover_resumes, s_setup, st_fixture_teardown),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
