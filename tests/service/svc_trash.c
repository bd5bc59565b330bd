/*  svc_trash: undoable deletes and session management through the real
    four binaries (issue 15): deleting one message leaves the turns around
    it, a restore within the window brings it back with both versions and
    its vote (a second tab sees message_deleted and message_restored), and
    after the window the upkeep purges it (audited); export round-trips
    (JSON holds every version, Markdown the active path); rename, delete
    and restore a whole session, list pages with a cursor; bad input gets
    its 4xx and changes nothing.                                          */
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
#define S_UNDO_MS 2000

static int
s_setup (void **state)
{
    static const char *const env[] = {"CHAT_ACTIONS_RATE_LIMIT=0",
                                      "CHAT_REGENERATION_RATE_LIMIT=0",
                                      "CHATMESH_BUILTIN_TOKENS_PER_SEC=0",
                                      "CHATMESH_UNDO_SECONDS=2",
                                      "CHAT_ACTIONS_CLEANUP_INTERVAL=1",
                                      "CHATMESH_ADMIN_USERS=root", NULL};
    return svc_fixture_start (state, env);
}

static void
s_expect (svc_mesh_t *mesh, const char *token, const char *method, const char *path,
          const char *body, long want, const char *code)
{
    json_t *json = svc_want_call (mesh, token, method, path, body, want);
    assert_string_equal (svc_json_str (json, "code", NULL), code);
    json_decref (json);
}

//  A turn of session, answered; the ids into user and assistant (300 bytes).
static void
s_turn (svc_mesh_t *mesh, const char *token, const char *session, const char *query, char *user,
        char *assistant)
{
    char path[200], body[200];
    snprintf (path, sizeof path, "/api/run_sse/%s", session);
    snprintf (body, sizeof body, "{\"query\": \"%s\"}", query);
    json_t *json = svc_want_call (mesh, token, "POST", path, body, 200);
    json_t *data = json_object_get (json, "data");
    char task_id[80];
    if (user)
        snprintf (user, 300, "%s", svc_want_str (data, "user_message_id"));
    if (assistant)
        snprintf (assistant, 300, "%s", svc_want_str (data, "assistant_message_id"));
    snprintf (task_id, sizeof task_id, "%s", svc_want_str (data, "task_id"));
    json_decref (json);
    svc_want_task (mesh, token, task_id, S_WAIT_MS);
}

//  GET /api/sessions/{session}: its messages (a new reference).
static json_t *
s_messages (svc_mesh_t *mesh, const char *token, const char *session)
{
    char path[200];
    snprintf (path, sizeof path, "/api/sessions/%s", session);
    json_t *json = svc_want_call (mesh, token, "GET", path, NULL, 200);
    json_t *messages = json_incref (json_object_get (json_object_get (json, "session"), "messages"));
    json_decref (json);
    assert_non_null (messages);
    return messages;
}

static void
test_delete_restore_purge_export (void **state)
{
    svc_mesh_t *mesh = *state;
    char *alice = svc_token (mesh, "alice", 3600), *bob = svc_token (mesh, "bob", 3600),
         *root = svc_token (mesh, "root", 3600);
    const char *session = "sv_trash";
    char u1[300], a1[300], u2[300], a2[300], path[600];
    s_turn (mesh, alice, session, "Why is the sky blue?", u1, a1);
    snprintf (path, sizeof path, "/api/messages/%s/regenerate", a1);
    json_t *json = svc_want_call (mesh, alice, "POST", path, "{}", 200);
    svc_want_task (mesh, alice, svc_json_str (json, "data", "task_id"), S_WAIT_MS);
    json_decref (json);
    snprintf (path, sizeof path, "/api/messages/%s/feedback", a1);
    json_decref (svc_want_call (mesh, alice, "POST", path, "{\"feedback_type\": \"upvote\"}", 200));
    s_turn (mesh, alice, session, "And at sunset?", u2, a2);

    //  Export: the JSON holds both versions of the first answer, and the
    //  active one is what GET shows; Markdown the active path.
    json_t *before = s_messages (mesh, alice, session);
    assert_int_equal (json_array_size (before), 4);
    snprintf (path, sizeof path, "/api/sessions/%s/export", session);
    json = svc_want_call (mesh, alice, "GET", path, NULL, 200);
    assert_string_equal (svc_want_str (json, "format"), "json");
    json_t *tree = json_object_get (json_object_get (json, "session"), "messages");
    assert_int_equal (json_array_size (tree), 4);
    for (size_t i = 0; i < 4; i++) {
        json_t *shown = json_array_get (before, i), *exported = json_array_get (tree, i);
        assert_string_equal (svc_want_str (exported, "message_id"), svc_want_str (shown, "id"));
        json_t *versions = json_object_get (exported, "versions");
        assert_int_equal (json_array_size (versions), svc_want_int (shown, "version_count"));
        json_t *active = json_array_get (versions, (size_t) svc_want_int (exported, "version_index") - 1);
        assert_string_equal (svc_want_str (active, "content"), svc_want_str (shown, "content"));
    }
    json_t *versions = json_object_get (json_array_get (tree, 1), "versions");
    assert_int_equal (json_array_size (versions), 2);
    assert_string_not_equal (svc_want_str (json_array_get (versions, 0), "content"),
                             svc_want_str (json_array_get (versions, 1), "content"));
    assert_int_equal (svc_want_int (json_array_get (versions, 1), "upvotes"), 1);
    json_decref (json);
    snprintf (path, sizeof path, "/api/sessions/%s/export?format=markdown", session);
    json = svc_want_call (mesh, alice, "GET", path, NULL, 200);
    const char *markdown = svc_want_str (json, "content");
    for (size_t i = 0; i < 4; i++)
        assert_non_null (strstr (markdown, svc_want_str (json_array_get (before, i), "content")));
    assert_non_null (strstr (markdown, "## Assistant (version 2 of 2)"));
    json_decref (json);
    snprintf (path, sizeof path, "/api/sessions/%s/export?format=pdf", session);
    s_expect (mesh, alice, "GET", path, NULL, 422, "invalid_field");
    snprintf (path, sizeof path, "/api/sessions/%s/export", session);
    s_expect (mesh, bob, "GET", path, NULL, 404, "not_found");

    //  A second tab.
    snprintf (path, sizeof path, "/api/run_sse/%s", session);
    svc_sse_t *sse = svc_sse_open (mesh, path, alice, NULL);
    assert_non_null (sse);
    assert_non_null (svc_sse_wait (sse, "connection_status", S_WAIT_MS));

    //  Bad input changes nothing.
    snprintf (path, sizeof path, "/api/messages/%s?scope=everything", a1);
    s_expect (mesh, alice, "DELETE", path, NULL, 422, "invalid_field");
    snprintf (path, sizeof path, "/api/messages/%s/restore", a1);
    s_expect (mesh, alice, "POST", path, NULL, 409, "conflict"); //  not deleted
    snprintf (path, sizeof path, "/api/messages/%s?scope=message", a1);
    s_expect (mesh, bob, "DELETE", path, NULL, 404, "not_found");
    json_t *now = s_messages (mesh, alice, session);
    assert_true (json_equal (now, before));
    json_decref (now);

    //  Delete only the first answer: the turns around it stay.
    json = svc_want_call (mesh, alice, "DELETE", path, NULL, 200);
    assert_int_equal (svc_want_int (json_object_get (json, "data"), "deleted_count"), 1);
    assert_string_equal (svc_want_str (json_object_get (json, "data"), "scope"), "message");
    json_decref (json);
    assert_non_null (svc_sse_wait (sse, "message_deleted", S_WAIT_MS));
    now = s_messages (mesh, alice, session);
    assert_int_equal (json_array_size (now), 3);
    assert_string_equal (svc_want_str (json_array_get (now, 1), "id"), u2);
    json_decref (now);
    snprintf (path, sizeof path, "/api/messages/%s/restore", a1);
    s_expect (mesh, bob, "POST", path, NULL, 404, "not_found"); //  not bob's to undo
    json = svc_want_call (mesh, alice, "POST", path, NULL, 200);
    assert_int_equal (svc_want_int (json_object_get (json, "data"), "restored_count"), 1);
    json_decref (json);
    const svc_event_t *restored = svc_sse_wait (sse, "message_restored", S_WAIT_MS);
    assert_non_null (restored);
    assert_string_equal (svc_want_str (restored->json, "messageId"), a1);
    now = s_messages (mesh, alice, session);
    assert_true (json_equal (now, before)); //  both versions, the vote, all of it
    json_decref (now);

    //  Delete the second turn (and everything after it); after the window
    //  the restore is refused (410 until the upkeep purged it, 404 after).
    snprintf (path, sizeof path, "/api/messages/%s", u2);
    json_decref (svc_want_call (mesh, alice, "DELETE", path, NULL, 200));
    double deleted = svc_now_ms ();
    now = s_messages (mesh, alice, session);
    assert_int_equal (json_array_size (now), 2);
    json_decref (now);
    //  The window is a time, not an event: wait it out, then await the purge.
    double wait = deleted + S_UNDO_MS + 100 - svc_now_ms ();
    if (wait > 0)
        usleep ((useconds_t) (wait * 1000));
    snprintf (path, sizeof path, "/api/messages/%s/restore", u2);
    long status = 0;
    double deadline = svc_now_ms () + S_WAIT_MS;
    while (status != 404 && svc_now_ms () < deadline) {
        svc_response_t response;
        assert_int_equal (svc_http (mesh, "POST", path, alice, NULL, &response), 0);
        status = response.status;
        if (status == 410)
            assert_string_equal (svc_json_str (response.json, "code", NULL), "undo_expired");
        else
            assert_int_equal (status, 404);
        svc_response_free (&response);
        if (status != 404)
            usleep (50 * 1000);
    }
    assert_int_equal (status, 404);
    json = svc_want_call (mesh, root, "GET", "/api/admin/audit?action=purge", NULL, 200);
    json_t *entries = json_object_get (json, "entries");
    assert_int_equal (json_array_size (entries), 1);
    assert_string_equal (svc_want_str (json_array_get (entries, 0), "message_id"), u2);
    json_decref (json);
    now = s_messages (mesh, alice, session);
    assert_int_equal (json_array_size (now), 2);
    json_decref (now);
    json_decref (before);
    svc_sse_close (&sse);
    free (alice);
    free (bob);
    free (root);
}

static void
test_sessions_rename_delete_restore_and_pages (void **state)
{
    svc_mesh_t *mesh = *state;
    char *alice = svc_token (mesh, "carol", 3600), *bob = svc_token (mesh, "dave", 3600);
    s_turn (mesh, alice, "sv_side_a", "Plan a trip", NULL, NULL);
    s_turn (mesh, alice, "sv_side_b", "Cook dinner", NULL, NULL);
    s_turn (mesh, alice, "sv_side_c", "Fix the bike", NULL, NULL);

    //  Rename; bad titles and other users change nothing.
    json_t *json = svc_want_call (mesh, alice, "PATCH", "/api/sessions/sv_side_a",
                           "{\"title\": \"Lisbon in May\"}", 200);
    assert_string_equal (svc_json_str (json, "data", "previous_title"), "Plan a trip");
    json_decref (json);
    s_expect (mesh, alice, "PATCH", "/api/sessions/sv_side_a", "{\"title\": \"  \"}", 422,
              "empty_field");
    s_expect (mesh, alice, "PATCH", "/api/sessions/sv_side_a", "{}", 422, "missing_field");
    s_expect (mesh, bob, "PATCH", "/api/sessions/sv_side_a", "{\"title\": \"mine\"}", 404,
              "not_found");
    json = svc_want_call (mesh, alice, "GET", "/api/sessions/sv_side_a", NULL, 200);
    assert_string_equal (svc_json_str (json, "session", "title"), "Lisbon in May");
    json_decref (json);

    //  Pages of one: three sessions, three pages, each once.
    char cursor[200] = "", path[400], seen[3][64];
    size_t pages = 0;
    do {
        snprintf (path, sizeof path, "/api/sessions?limit=1%s%s", pages ? "&cursor=" : "",
                  pages ? cursor : "");
        json = svc_want_call (mesh, alice, "GET", path, NULL, 200);
        json_t *sessions = json_object_get (json, "sessions");
        assert_int_equal (json_array_size (sessions), 1);
        assert_true (pages < 3);
        snprintf (seen[pages], sizeof seen[pages], "%s",
                  svc_want_str (json_array_get (sessions, 0), "session_id"));
        for (size_t i = 0; i < pages; i++)
            assert_string_not_equal (seen[i], seen[pages]);
        const char *next = json_string_value (json_object_get (json, "next_cursor"));
        snprintf (cursor, sizeof cursor, "%s", next ? next : "");
        json_decref (json);
        pages++;
    } while (cursor[0]);
    assert_int_equal (pages, 3);
    s_expect (mesh, alice, "GET", "/api/sessions?limit=0", NULL, 422, "field_out_of_range");
    s_expect (mesh, alice, "GET", "/api/sessions?cursor=soon", NULL, 422, "validation_error");

    //  Delete a whole session and undo it.
    s_expect (mesh, bob, "DELETE", "/api/sessions/sv_side_b", NULL, 404, "not_found");
    s_expect (mesh, alice, "POST", "/api/sessions/sv_side_b/restore", NULL, 409, "conflict");
    json_t *before = s_messages (mesh, alice, "sv_side_b");
    json = svc_want_call (mesh, alice, "DELETE", "/api/sessions/sv_side_b", NULL, 200);
    assert_int_equal (svc_want_int (json_object_get (json, "data"), "deleted_count"), 2);
    json_decref (json);
    s_expect (mesh, alice, "GET", "/api/sessions/sv_side_b", NULL, 404, "not_found");
    json = svc_want_call (mesh, alice, "GET", "/api/sessions", NULL, 200);
    assert_int_equal (json_array_size (json_object_get (json, "sessions")), 2);
    json_decref (json);
    s_expect (mesh, bob, "POST", "/api/sessions/sv_side_b/restore", NULL, 404, "not_found");
    json_decref (svc_want_call (mesh, alice, "POST", "/api/sessions/sv_side_b/restore", NULL, 200));
    json_t *after = s_messages (mesh, alice, "sv_side_b");
    assert_true (json_equal (after, before));
    json_decref (after);
    json_decref (before);
    free (alice);
    free (bob);
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_delete_restore_purge_export),
        cmocka_unit_test (test_sessions_rename_delete_restore_and_pages),
    };
    return cmocka_run_group_tests (tests, s_setup, svc_fixture_teardown);
}
