/*  svc_versions: answer versions through the real four binaries (issue
    15): two regenerates make three versions, each with its own text and
    votes; activating version 1 shows it, survives a reload and reaches a
    second SSE reader; a vote stays on the version it was given on; a
    version that does not exist, a bad number and another user's message
    are refused and change nothing. An edit of a question in a three-turn
    session starts a new branch; activating the question's version 1
    brings the old branch back with its answers, for a reload and a second
    reader too; switching to a version the question lacks, another user's
    and a deleted message are refused and change nothing.                */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "svc_harness.h"
#include "svc_json_util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define S_WAIT_MS 30000

static int
s_setup (void **state)
{
    static const char *const env[] = {"CHAT_ACTIONS_RATE_LIMIT=0",
                                      "CHAT_REGENERATION_RATE_LIMIT=0",
                                      "CHATMESH_BUILTIN_TOKENS_PER_SEC=0", NULL};
    return svc_fixture_start (state, env);
}

//  The session's message with id (a new reference), from GET.
static json_t *
s_message (svc_mesh_t *mesh, const char *token, const char *session, const char *id)
{
    char path[200];
    snprintf (path, sizeof path, "/api/sessions/%s", session);
    json_t *json = svc_want_call (mesh, token, "GET", path, NULL, 200);
    json_t *messages = json_object_get (json_object_get (json, "session"), "messages");
    size_t i;
    json_t *message, *found = NULL;
    json_array_foreach (messages, i, message)
        if (strcmp (svc_want_str (message, "id"), id) == 0)
            found = json_incref (message);
    json_decref (json);
    if (!found)
        fail_msg ("message %s is not in session %s", id, session);
    return found;
}

//  Regenerates the answer and waits for its message_regenerated on sse;
//  its content into text. Returns the event (borrowed from sse).
static const svc_event_t *
s_regenerate (svc_mesh_t *mesh, const char *token, svc_sse_t *sse, const char *id, char *text,
              size_t size)
{
    char path[400];
    snprintf (path, sizeof path, "/api/messages/%s/regenerate", id);
    json_t *json = svc_want_call (mesh, token, "POST", path, "{}", 200);
    char task_id[80];
    snprintf (task_id, sizeof task_id, "%s", svc_want_str (json_object_get (json, "data"), "task_id"));
    json_decref (json);
    svc_want_task (mesh, token, task_id, S_WAIT_MS);
    double deadline = svc_now_ms () + S_WAIT_MS;
    for (size_t i = 0; svc_now_ms () < deadline;) {
        for (size_t count = svc_sse_count (sse); i < count; i++) {
            const svc_event_t *event = svc_sse_at (sse, i);
            if (strcmp (event->event, "message_regenerated") == 0 && event->json
                && strcmp (svc_want_str (event->json, "taskId"), task_id) == 0) {
                snprintf (text, size, "%s", svc_want_str (event->json, "content"));
                return event;
            }
        }
        svc_sse_wait (sse, NULL, 100);
    }
    fail_msg ("no message_regenerated for %s", task_id);
    return NULL;
}

static void
s_vote (svc_mesh_t *mesh, const char *token, const char *id, const char *type, long long version)
{
    char path[400], body[64];
    snprintf (path, sizeof path, "/api/messages/%s/feedback", id);
    snprintf (body, sizeof body, "{\"feedback_type\": \"%s\"}", type);
    json_t *json = svc_want_call (mesh, token, "POST", path, body, 200);
    assert_int_equal (svc_want_int (json, "version_index"), version);
    json_decref (json);
}

//  POST .../versions/{n}/activate answering want; the body (caller decrefs).
static json_t *
s_activate (svc_mesh_t *mesh, const char *token, const char *id, const char *n, long want)
{
    char path[400];
    snprintf (path, sizeof path, "/api/messages/%s/versions/%s/activate", id, n);
    return svc_want_call (mesh, token, "POST", path, NULL, want);
}

//  The error code of a refused request's body.
static void
s_refused (json_t *json, const char *code)
{
    assert_true (json_is_false (json_object_get (json, "success")));
    assert_string_equal (svc_want_str (json, "code"), code);
    json_decref (json);
}

static void
test_versions (void **state)
{
    svc_mesh_t *mesh = *state;
    char *alice = svc_token (mesh, "alice", 3600), *bob = svc_token (mesh, "bob", 3600);
    const char *session = "sv_versions";
    json_t *json = svc_want_call (mesh, alice, "POST", "/api/run_sse/sv_versions",
                           "{\"query\": \"Why is the sky blue?\"}", 200);
    json_t *data = json_object_get (json, "data");
    char answer[300], question[300], task_id[80];
    snprintf (answer, sizeof answer, "%s", svc_want_str (data, "assistant_message_id"));
    snprintf (question, sizeof question, "%s", svc_want_str (data, "user_message_id"));
    snprintf (task_id, sizeof task_id, "%s", svc_want_str (data, "task_id"));
    json_decref (json);
    svc_want_task (mesh, alice, task_id, S_WAIT_MS);

    //  The first answer is version 1 of 1, and its id is the message id.
    char text[3][16384];
    json_t *message = s_message (mesh, alice, session, answer);
    snprintf (text[0], sizeof text[0], "%s", svc_want_str (message, "content"));
    assert_true (text[0][0] != 0);
    assert_int_equal (svc_want_int (message, "version_index"), 1);
    assert_int_equal (svc_want_int (message, "version_count"), 1);
    assert_string_equal (svc_want_str (message, "version_id"), answer);
    assert_int_equal (json_array_size (json_object_get (message, "version_ids")), 1);
    json_decref (message);
    s_vote (mesh, alice, answer, "upvote", 1);

    //  The second tab.
    char path[400];
    snprintf (path, sizeof path, "/api/run_sse/%s", session);
    svc_sse_t *sse = svc_sse_open (mesh, path, alice, NULL);
    assert_non_null (sse);
    assert_non_null (svc_sse_wait (sse, "connection_status", S_WAIT_MS));

    //  Two regenerates: versions 2 and 3, each announced as such.
    for (int n = 2; n <= 3; n++) {
        const svc_event_t *done = s_regenerate (mesh, alice, sse, answer, text[n - 1],
                                                sizeof text[n - 1]);
        assert_int_equal (svc_want_int (done->json, "versionIndex"), n);
        assert_int_equal (svc_want_int (done->json, "versionCount"), n);
        assert_string_not_equal (svc_want_str (done->json, "versionId"), answer);
    }
    assert_string_not_equal (text[0], text[1]);
    assert_string_not_equal (text[1], text[2]);
    assert_string_not_equal (text[0], text[2]);
    message = s_message (mesh, alice, session, answer);
    assert_string_equal (svc_want_str (message, "content"), text[2]);
    assert_int_equal (svc_want_int (message, "version_index"), 3);
    assert_int_equal (svc_want_int (message, "version_count"), 3);
    json_t *ids = json_object_get (message, "version_ids");
    assert_int_equal (json_array_size (ids), 3);
    assert_string_equal (json_string_value (json_array_get (ids, 0)), answer);
    assert_string_equal (json_string_value (json_array_get (ids, 2)),
                         svc_want_str (message, "version_id"));
    assert_string_not_equal (json_string_value (json_array_get (ids, 1)),
                             json_string_value (json_array_get (ids, 2)));
    //  The upvote was version 1's: version 3 has none.
    assert_int_equal (svc_want_int (json_object_get (message, "metadata"), "upvotes"), 0);
    json_decref (message);

    //  A downvote on version 3; the summary is the shown version's, and
    //  every version keeps its own counts.
    s_vote (mesh, alice, answer, "downvote", 3);
    snprintf (path, sizeof path, "/api/messages/%s/feedback", answer);
    json = svc_want_call (mesh, alice, "GET", path, NULL, 200);
    assert_int_equal (svc_want_int (json, "version_index"), 3);
    assert_int_equal (svc_want_int (json_object_get (json, "feedback_summary"), "downvotes"), 1);
    assert_int_equal (svc_want_int (json_object_get (json, "feedback_summary"), "upvotes"), 0);
    json_t *versions = json_object_get (json, "versions");
    assert_int_equal (json_array_size (versions), 3);
    const long long want_counts[3][2] = {{1, 0}, {0, 0}, {0, 1}};
    for (size_t i = 0; i < 3; i++) {
        json_t *v = json_array_get (versions, i);
        assert_int_equal (svc_want_int (v, "version_index"), (long long) i + 1);
        assert_int_equal (svc_want_int (v, "upvotes"), want_counts[i][0]);
        assert_int_equal (svc_want_int (v, "downvotes"), want_counts[i][1]);
    }
    json_decref (json);

    //  Back to version 1: the reply, the second tab and a reload agree.
    json = s_activate (mesh, alice, answer, "1", 200);
    data = json_object_get (json, "data");
    assert_true (json_is_true (json_object_get (data, "changed")));
    assert_string_equal (svc_want_str (data, "content"), text[0]);
    assert_int_equal (svc_want_int (data, "version_index"), 1);
    assert_int_equal (svc_want_int (data, "version_count"), 3);
    json_decref (json);
    const svc_event_t *switched = svc_sse_wait (sse, "version_activated", S_WAIT_MS);
    assert_non_null (switched);
    assert_string_equal (svc_want_str (switched->json, "messageId"), answer);
    assert_string_equal (svc_want_str (switched->json, "content"), text[0]);
    assert_int_equal (svc_want_int (switched->json, "versionIndex"), 1);
    assert_string_equal (svc_want_str (switched->json, "versionId"), answer);
    message = s_message (mesh, alice, session, answer);
    assert_string_equal (svc_want_str (message, "content"), text[0]);
    assert_int_equal (svc_want_int (message, "version_index"), 1);
    assert_int_equal (svc_want_int (json_object_get (message, "metadata"), "upvotes"), 1);
    assert_int_equal (svc_want_int (json_object_get (message, "metadata"), "downvotes"), 0);
    json_decref (message);
    //  Again: nothing to change.
    json = s_activate (mesh, alice, answer, "1", 200);
    assert_true (json_is_false (json_object_get (json_object_get (json, "data"), "changed")));
    json_decref (json);

    //  Refusals, none of which changes anything.
    s_refused (s_activate (mesh, alice, answer, "4", 404), "version_not_found");
    s_refused (s_activate (mesh, alice, question, "2", 404), "version_not_found");
    s_refused (s_activate (mesh, alice, answer, "0", 400), "invalid_version");
    s_refused (s_activate (mesh, alice, answer, "101", 400), "invalid_version");
    s_refused (s_activate (mesh, alice, answer, "two", 400), "invalid_version");
    s_refused (s_activate (mesh, bob, answer, "2", 404), "not_found");
    s_refused (s_activate (mesh, NULL, answer, "2", 401), "unauthorized");
    message = s_message (mesh, alice, session, answer);
    assert_string_equal (svc_want_str (message, "content"), text[0]);
    assert_int_equal (svc_want_int (message, "version_index"), 1);
    assert_int_equal (svc_want_int (message, "version_count"), 3);
    json_decref (message);

    //  Version 2 with its own text; its vote stays its own.
    json = s_activate (mesh, alice, answer, "2", 200);
    assert_string_equal (svc_want_str (json_object_get (json, "data"), "content"), text[1]);
    json_decref (json);
    s_vote (mesh, alice, answer, "upvote", 2);
    message = s_message (mesh, alice, session, answer);
    assert_string_equal (svc_want_str (message, "content"), text[1]);
    assert_int_equal (svc_want_int (json_object_get (message, "metadata"), "upvotes"), 1);
    json_decref (message);
    //  A vote naming its version (a tab still showing version 1) is that
    //  version's, whichever is shown; one the message lacks is refused.
    snprintf (path, sizeof path, "/api/messages/%s/feedback", answer);
    json = svc_want_call (mesh, alice, "POST", path, "{\"feedback_type\": \"downvote\", \"version\": 1}",
                   200);
    assert_int_equal (svc_want_int (json, "version_index"), 1);
    assert_string_equal (svc_want_str (json, "version_id"), answer);
    json_decref (json);
    s_refused (svc_want_call (mesh, alice, "POST", path,
                       "{\"feedback_type\": \"upvote\", \"version\": 4}", 404),
               "version_not_found");
    s_refused (svc_want_call (mesh, alice, "POST", path,
                       "{\"feedback_type\": \"upvote\", \"version\": 0}", 422),
               "field_out_of_range");
    json = svc_want_call (mesh, alice, "GET", path, NULL, 200);
    json_t *first = json_array_get (json_object_get (json, "versions"), 0);
    assert_int_equal (svc_want_int (first, "upvotes"), 0);
    assert_int_equal (svc_want_int (first, "downvotes"), 1);
    assert_int_equal (svc_want_int (json_object_get (json, "feedback_summary"), "upvotes"), 1);
    json_decref (json);
    json = s_activate (mesh, alice, answer, "3", 200);
    json_decref (json);
    message = s_message (mesh, alice, session, answer);
    assert_string_equal (svc_want_str (message, "content"), text[2]);
    assert_int_equal (svc_want_int (json_object_get (message, "metadata"), "upvotes"), 0);
    assert_int_equal (svc_want_int (json_object_get (message, "metadata"), "downvotes"), 1);
    json_decref (message);

    svc_sse_close (&sse);
    free (alice);
    free (bob);
}


//  One answered turn of session: ids into question and answer (300 bytes).
static void
s_turn (svc_mesh_t *mesh, const char *token, const char *session, const char *query,
        char *question, char *answer)
{
    char path[200], body[300];
    snprintf (path, sizeof path, "/api/run_sse/%s", session);
    snprintf (body, sizeof body, "{\"query\": \"%s\"}", query);
    json_t *json = svc_want_call (mesh, token, "POST", path, body, 200);
    json_t *data = json_object_get (json, "data");
    snprintf (question, 300, "%s", svc_want_str (data, "user_message_id"));
    snprintf (answer, 300, "%s", svc_want_str (data, "assistant_message_id"));
    char task_id[80];
    snprintf (task_id, sizeof task_id, "%s", svc_want_str (data, "task_id"));
    json_decref (json);
    svc_want_task (mesh, token, task_id, S_WAIT_MS);
}

//  The active path of session (GET): "id=content|..." into out.
static void
s_path (svc_mesh_t *mesh, const char *token, const char *session, char *out, size_t size)
{
    char path[200];
    snprintf (path, sizeof path, "/api/sessions/%s", session);
    json_t *json = svc_want_call (mesh, token, "GET", path, NULL, 200);
    json_t *messages = json_object_get (json_object_get (json, "session"), "messages");
    size_t i;
    json_t *message;
    out[0] = 0;
    json_array_foreach (messages, i, message)
    {
        size_t len = strlen (out);
        snprintf (out + len, size - len, "%s%s=%s", i ? "|" : "", svc_want_str (message, "id"),
                  svc_want_str (message, "content"));
    }
    json_decref (json);
}

static void
test_edit_branches (void **state)
{
    svc_mesh_t *mesh = *state;
    char *alice = svc_token (mesh, "alice", 3600), *bob = svc_token (mesh, "bob", 3600);
    const char *session = "sv_branches";
    char q[3][300], a[3][300];
    s_turn (mesh, alice, session, "What is a lease?", q[0], a[0]);
    s_turn (mesh, alice, session, "What is a fencing token?", q[1], a[1]);
    s_turn (mesh, alice, session, "Why do clocks drift?", q[2], a[2]);
    static char before[65536], after[65536], now[65536];
    s_path (mesh, alice, session, before, sizeof before);
    //  The second tab.
    char path[400];
    snprintf (path, sizeof path, "/api/run_sse/%s", session);
    svc_sse_t *sse = svc_sse_open (mesh, path, alice, NULL);
    assert_non_null (sse);
    assert_non_null (svc_sse_wait (sse, "connection_status", S_WAIT_MS));

    //  Edit the second question: version 2 of it, with a new answer below.
    snprintf (path, sizeof path, "/api/messages/%s", q[1]);
    json_t *json = svc_want_call (mesh, alice, "PUT", path,
                                  "{\"content\": \"What is a vector clock?\"}", 200);
    json_t *data = json_object_get (json, "data");
    assert_int_equal (svc_want_int (data, "version_index"), 2);
    assert_int_equal (svc_want_int (data, "version_count"), 2);
    char answer[300], task_id[80];
    snprintf (answer, sizeof answer, "%s", svc_want_str (data, "assistant_message_id"));
    snprintf (task_id, sizeof task_id, "%s", svc_want_str (data, "regeneration_task_id"));
    json_decref (json);
    assert_string_not_equal (answer, a[1]);
    svc_want_task (mesh, alice, task_id, S_WAIT_MS);
    snprintf (path, sizeof path, "/api/sessions/%s", session);
    json = svc_want_call (mesh, alice, "GET", path, NULL, 200);
    json_t *messages = json_object_get (json_object_get (json, "session"), "messages");
    assert_int_equal (json_array_size (messages), 4);
    json_t *edited = json_array_get (messages, 2);
    assert_string_equal (svc_want_str (edited, "id"), q[1]);
    assert_string_equal (svc_want_str (edited, "content"), "What is a vector clock?");
    assert_int_equal (svc_want_int (edited, "version_index"), 2);
    assert_int_equal (svc_want_int (edited, "version_count"), 2);
    assert_int_equal (json_array_size (json_object_get (edited, "version_ids")), 2);
    //  Version 1's id is the question's id: ids clients hold stay valid.
    assert_string_equal (json_string_value (json_array_get (json_object_get (edited, "version_ids"), 0)),
                         q[1]);
    json_t *reply = json_array_get (messages, 3);
    assert_string_equal (svc_want_str (reply, "id"), answer);
    assert_non_null (strstr (svc_want_str (reply, "content"), "vector clock"));
    json_decref (json);
    s_path (mesh, alice, session, after, sizeof after);

    //  Version 1 of the question: the old branch, answers intact; the
    //  second tab hears it; a reload shows the same.
    json = s_activate (mesh, alice, q[1], "1", 200);
    data = json_object_get (json, "data");
    assert_true (json_is_true (json_object_get (data, "changed")));
    assert_string_equal (svc_want_str (data, "content"), "What is a fencing token?");
    json_decref (json);
    const svc_event_t *switched = svc_sse_wait (sse, "version_activated", S_WAIT_MS);
    assert_non_null (switched);
    assert_string_equal (svc_want_str (switched->json, "messageId"), q[1]);
    assert_int_equal (svc_want_int (switched->json, "versionIndex"), 1);
    assert_int_equal (svc_want_int (switched->json, "versionCount"), 2);
    s_path (mesh, alice, session, now, sizeof now);
    assert_string_equal (now, before);
    s_path (mesh, alice, session, now, sizeof now);
    assert_string_equal (now, before);

    //  Refusals, none of which changes anything.
    s_refused (s_activate (mesh, alice, q[1], "3", 404), "version_not_found");
    s_refused (s_activate (mesh, bob, q[1], "2", 404), "not_found");
    //  A deleted message: the third turn, deleted with what follows it.
    snprintf (path, sizeof path, "/api/messages/%s?scope=following", q[2]);
    json_decref (svc_want_call (mesh, alice, "DELETE", path, NULL, 200));
    s_refused (s_activate (mesh, alice, q[2], "1", 404), "not_found");
    snprintf (path, sizeof path, "/api/messages/%s/restore", q[2]);
    json_decref (svc_want_call (mesh, alice, "POST", path, NULL, 200));
    s_path (mesh, alice, session, now, sizeof now);
    assert_string_equal (now, before);
    //  The new branch is kept too.
    json_decref (s_activate (mesh, alice, q[1], "2", 200));
    s_path (mesh, alice, session, now, sizeof now);
    assert_string_equal (now, after);

    svc_sse_close (&sse);
    free (alice);
    free (bob);
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_versions),
        cmocka_unit_test (test_edit_branches),
    };
    return cmocka_run_group_tests (tests, s_setup, svc_fixture_teardown);
}
