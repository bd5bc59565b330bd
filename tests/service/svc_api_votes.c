/*  svc_api_votes: withdrawing a vote (DELETE /api/messages/{id}/feedback,
    docs/api.md) against the real four binaries: the answer's shape, the
    feedback_withdrawn event on the session's stream, the counts in
    feedback and analytics, the audit entry (read from the store), a second
    withdrawal that changes nothing, 400/401/404, the OpenAPI operation,
    and the withdrawal still there after a store restart.                 */
#include "svc_api_util.h"

#include <signal.h>

static int
s_setup (void **state)
{
    static const char *const env[] = {"CHATMESH_BUILTIN_TOKENS_PER_SEC=2000", NULL};
    return svc_fixture_start (state, env);
}

//  GET feedback of path: upvotes + downvotes, and the recent votes' count.
static void
s_counts (svc_mesh_t *mesh, const char *path, const char *token, long *total, size_t *recent)
{
    svc_response_t r;
    sa_req (mesh, "GET", path, token, NULL, 200, &r);
    *total = (long) sa_int (sa_obj (r.json, "feedback_summary"), "total");
    *recent = json_array_size (sa_arr (r.json, "recent_feedback"));
    svc_response_free (&r);
}

static void
test_withdraw_a_vote (void **state)
{
    svc_mesh_t *mesh = *state;
    char *token = svc_token (mesh, "vera", 600);
    sa_turn_t turn;
    sa_turn (mesh, token, "vera_votes", "vote on me", &turn);
    //  The answer is done first, so the stream carries only the votes.
    json_decref (sa_wait_task (mesh, token, turn.task_id, "completed", 20000));
    svc_sse_t *sse = svc_sse_open (mesh, "/api/run_sse/vera_votes", token, NULL);
    assert_non_null (sse);
    assert_non_null (svc_sse_wait (sse, "connection_status", 5000));
    char path[600];
    snprintf (path, sizeof path, "/api/messages/%s/feedback", turn.assistant_id);
    svc_response_t r;
    sa_req (mesh, "POST", path, token, "{\"feedback_type\": \"upvote\"}", 200, &r);
    svc_response_free (&r);
    assert_non_null (svc_sse_wait (sse, "feedback_submitted", 5000));

    sa_req (mesh, "DELETE", path, token, NULL, 200, &r);
    sa_success (&r);
    assert_string_equal (sa_str (r.json, "message_id"), turn.assistant_id);
    assert_string_equal (sa_str (r.json, "session_id"), "vera_votes");
    assert_true (sa_bool (r.json, "withdrawn"));
    assert_string_equal (sa_str (r.json, "feedback_type"), "upvote");
    assert_int_equal (sa_int (r.json, "version_index"), 1); //  one version: its id is the message's
    assert_string_equal (sa_str (r.json, "version_id"), turn.assistant_id);
    json_t *summary = sa_obj (r.json, "feedback_summary");
    assert_int_equal (sa_int (summary, "upvotes"), 0);
    assert_int_equal (sa_int (summary, "downvotes"), 0);
    assert_int_equal (sa_int (summary, "total"), 0);
    sa_iso (r.json, "timestamp");
    svc_response_free (&r);
    const svc_event_t *event = svc_sse_wait (sse, "feedback_withdrawn", 5000);
    assert_non_null (event);
    assert_string_equal (sa_str (event->json, "messageId"), turn.assistant_id);
    assert_string_equal (sa_str (event->json, "feedbackType"), "upvote");
    assert_int_equal (sa_int (event->json, "upvotes"), 0);
    assert_int_equal (sa_int (event->json, "downvotes"), 0);

    long total;
    size_t recent;
    s_counts (mesh, path, token, &total, &recent);
    assert_int_equal (total, 0);
    assert_int_equal (recent, 0);
    sa_req (mesh, "GET", "/api/sessions/vera_votes/analytics", token, NULL, 200, &r);
    assert_int_equal (sa_int (sa_obj (r.json, "analytics"), "feedback_count"), 0);
    svc_response_free (&r);
    int code;
    cm_value_t *audit = sa_audit_query (mesh, "vera", "vera_votes", &code);
    assert_int_equal (code, 0);
    const cm_value_t *newest = cm_arr_at (cm_map_get (audit, "entries"), 0);
    assert_string_equal (cm_map_str_or (newest, "action_type", ""), "feedback_withdrawn");
    assert_string_equal (cm_map_str_or (newest, "message_id", ""), turn.assistant_id);
    size_t audits = cm_value_len (cm_map_get (audit, "entries"));
    cm_value_destroy (&audit);

    //  Again: nothing to withdraw, still 200, nothing written or sent.
    sa_req (mesh, "DELETE", path, token, NULL, 200, &r);
    assert_false (sa_bool (r.json, "withdrawn"));
    sa_null (r.json, "feedback_type");
    svc_response_free (&r);
    audit = sa_audit_query (mesh, "vera", "vera_votes", &code);
    assert_int_equal (cm_value_len (cm_map_get (audit, "entries")), audits);
    cm_value_destroy (&audit);
    //  The next event on the stream is the vote after it: the second
    //  withdrawal sent none.
    sa_req (mesh, "POST", path, token, "{\"feedback_type\": \"downvote\"}", 200, &r);
    svc_response_free (&r);
    event = svc_sse_wait (sse, NULL, 5000);
    assert_non_null (event);
    assert_string_equal (event->event, "feedback_submitted");
    svc_sse_close (&sse);

    //  Durable: a restarted store still has the downvote only.
    sa_req (mesh, "DELETE", path, token, NULL, 200, &r);
    assert_string_equal (sa_str (r.json, "feedback_type"), "downvote");
    svc_response_free (&r);
    assert_int_equal (svc_mesh_kill (mesh, "store", SIGTERM), 0);
    assert_int_equal (svc_mesh_spawn (mesh, "store"), 0);
    assert_int_equal (svc_mesh_wait_status (mesh, "/readyz", 200, 20000), 0);
    s_counts (mesh, path, token, &total, &recent);
    assert_int_equal (total, 0);
    assert_int_equal (recent, 0);
    free (token);
}

static void
test_withdraw_refused (void **state)
{
    svc_mesh_t *mesh = *state;
    char *token = svc_token (mesh, "walt", 600);
    char *other = svc_token (mesh, "xena", 600);
    sa_turn_t turn;
    sa_turn (mesh, token, "walt_votes", "vote on me", &turn);
    char path[600];
    snprintf (path, sizeof path, "/api/messages/%s/feedback", turn.assistant_id);
    svc_response_t r;
    sa_req (mesh, "POST", path, token, "{\"feedback_type\": \"upvote\"}", 200, &r);
    svc_response_free (&r);
    sa_req (mesh, "DELETE", path, NULL, NULL, 401, &r);
    sa_error (&r, 401, "unauthorized");
    svc_response_free (&r);
    sa_req (mesh, "DELETE", path, other, NULL, 404, &r);
    sa_error (&r, 404, "not_found");
    svc_response_free (&r);
    sa_req (mesh, "DELETE", "/api/messages/msg_nope_walt_votes_assistant/feedback", token, NULL,
            404, &r);
    sa_error (&r, 404, "not_found");
    svc_response_free (&r);
    sa_req (mesh, "DELETE", "/api/messages/not-a-message-id/feedback", token, NULL, 400, &r);
    sa_error (&r, 400, "invalid_message_id");
    svc_response_free (&r);
    //  None of them touched the vote.
    long total;
    size_t recent;
    s_counts (mesh, path, token, &total, &recent);
    assert_int_equal (total, 1);
    assert_int_equal (recent, 1);
    //  The path's methods, and the operation in the OpenAPI document.
    sa_req (mesh, "PUT", path, token, "{}", 405, &r);
    char allow[64];
    assert_int_equal (svc_response_header (&r, "Allow", allow, sizeof allow), 0);
    assert_string_equal (allow, "GET, POST, DELETE");
    svc_response_free (&r);
    sa_req (mesh, "GET", "/api/openapi.json", NULL, NULL, 200, &r);
    json_t *op = json_object_get (
        json_object_get (sa_obj (r.json, "paths"), "/api/messages/{message_id}/feedback"),
        "delete");
    assert_non_null (op);
    assert_string_equal (sa_str (op, "operationId"), "feedback_delete");
    svc_response_free (&r);
    free (other);
    free (token);
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_withdraw_a_vote),
        cmocka_unit_test (test_withdraw_refused),
    };
    return cmocka_run_group_tests (tests, s_setup, svc_fixture_teardown);
}
