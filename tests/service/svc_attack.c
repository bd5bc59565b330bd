/*  svc_attack: hostile clients against the real four binaries.

    Forged and mis-signed tokens, other users' ids, oversize and deeply
    nested bodies, invalid UTF-8, SSE framing injection through stored
    content, slow headers (slowloris), path traversal on static files and
    rate-limit bypass through path variants. Raw sockets are used where
    curl would normalise the request (dot segments, partial requests).  */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "svc_harness.h"
#include "svc_raw.h"
#include "tok_util.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define S_SECRET_TEXT "attack-secret-7f3a"

//  GET target on a raw connection (dot segments and the like go as is).
static long
s_raw_get (svc_mesh_t *mesh, const char *target, svc_raw_t *answer)
{
    char request[2048];
    int len = snprintf (request, sizeof request,
                        "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n",
                        target);
    return svc_raw_exchange (svc_mesh_port (mesh), request, (size_t) len, 5000, answer);
}

typedef struct {
    char session[64];
    char user_msg[400];
    char assistant_msg[400];
    char task[128];
} s_session_t;

static void
s_start_session (svc_mesh_t *mesh, const char *token, const char *session, const char *query,
                 s_session_t *out)
{
    svc_response_t response;
    assert_int_equal (svc_turn (mesh, token, session, query, &response), 200);
    snprintf (out->session, sizeof out->session, "%s", session);
    snprintf (out->user_msg, sizeof out->user_msg, "%s",
              svc_json_str (response.json, "data", "user_message_id"));
    snprintf (out->assistant_msg, sizeof out->assistant_msg, "%s",
              svc_json_str (response.json, "data", "assistant_message_id"));
    snprintf (out->task, sizeof out->task, "%s",
              svc_json_str (response.json, "data", "task_id"));
    svc_response_free (&response);
}

static long
s_feedback_total (svc_mesh_t *mesh, const char *token, const char *message_id)
{
    char path[512];
    snprintf (path, sizeof path, "/api/messages/%s/feedback", message_id);
    svc_response_t response;
    assert_int_equal (svc_http (mesh, "GET", path, token, NULL, &response), 0);
    assert_int_equal (response.status, 200);
    long total = (long) json_integer_value (
        json_object_get (json_object_get (response.json, "feedback_summary"), "total"));
    svc_response_free (&response);
    return total;
}

static void
test_bad_tokens_are_401 (void **state)
{
    svc_mesh_t *mesh = *state;
    const char *secret = svc_mesh_secret (mesh);
    char *alice = svc_token (mesh, "alice", 600);
    s_session_t session;
    s_start_session (mesh, alice, "tok_victim", S_SECRET_TEXT, &session);

    //  A valid token with its payload swapped for another user's.
    char *bob = svc_token (mesh, "bob", 600);
    size_t swapped_size = strlen (alice) + strlen (bob) + 1;
    char *swapped = malloc (swapped_size);
    char *alice_sig = strrchr (alice, '.'), *bob_sig = strrchr (bob, '.');
    snprintf (swapped, swapped_size, "%.*s%s", (int) (bob_sig - bob), bob, alice_sig);

    char future[256], past[256];
    long now = (long) time (NULL);
    snprintf (future, sizeof future, "{\"sub\":\"alice\",\"iat\":%ld,\"exp\":%ld}", now,
              now + 600);
    snprintf (past, sizeof past, "{\"sub\":\"alice\",\"exp\":\"%ld\"}", now + 600);
    //  2,000 nested arrays as the header: libjwt's JSON parser recursed on
    //  them and overflowed a gateway worker's stack before any check.
    char deep[2001];
    memset (deep, '[', 2000);
    deep[2000] = 0;
    char *bad[] = {
        tok_compose (deep, future, "AAAA"),
        tok_compose ("{\"alg\":\"HS256\",\"typ\":\"JWT\"}", deep, "AAAA"),
        tok_libjwt_claims (JWT_ALG_HS256, "not-the-secret-but-long-enough-1234", "alice", now,
                           now + 600),
        svc_token (mesh, "alice", -60),
        tok_compose ("{\"alg\":\"none\",\"typ\":\"JWT\"}", future, ""),
        tok_compose ("{\"alg\":\"none\",\"typ\":\"JWT\"}", future, "c2ln"),
        tok_compose ("{\"alg\":\"NONE\",\"typ\":\"JWT\"}", future, ""),
        tok_libjwt_claims (JWT_ALG_HS384, secret, "alice", now, now + 600),
        tok_libjwt_claims (JWT_ALG_HS512, secret, "alice", now, now + 600),
        tok_compose ("{\"alg\":\"RS256\",\"typ\":\"JWT\"}", future,
                     "QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFB"),
        tok_libjwt_claims (JWT_ALG_HS256, secret, "alice", now, 0),     //  no exp
        tok_libjwt_claims (JWT_ALG_HS256, secret, NULL, now, now + 600), //  no sub
        tok_compose ("{\"alg\":\"HS256\",\"typ\":\"JWT\"}", past, "AAAA"), //  exp as string
        swapped,
        strdup ("not.a.token"),
        strdup (""),
    };
    size_t count = sizeof bad / sizeof bad[0];
    char path[512];
    for (size_t i = 0; i < count; i++) {
        assert_non_null (bad[i]);
        svc_response_t response;
        assert_int_equal (svc_http (mesh, "GET", "/api/sessions/tok_victim", bad[i], NULL,
                                    &response),
                          0);
        if (response.status != 401)
            fail_msg ("bad token #%zu: GET session answered %ld", i, response.status);
        assert_null (strstr (response.body, S_SECRET_TEXT));
        assert_non_null (svc_json_str (response.json, "code", NULL));
        svc_response_free (&response);

        snprintf (path, sizeof path, "/api/messages/%s/feedback", session.assistant_msg);
        assert_int_equal (svc_http (mesh, "POST", path, bad[i], "{\"feedback_type\":\"upvote\"}",
                                    &response),
                          0);
        if (response.status != 401)
            fail_msg ("bad token #%zu: POST feedback answered %ld", i, response.status);
        svc_response_free (&response);

        //  The SSE endpoint takes the token from the query string too.
        snprintf (path, sizeof path, "/api/run_sse/tok_victim?access_token=%s", bad[i]);
        svc_sse_t *sse = svc_sse_open (mesh, path, NULL, NULL);
        assert_non_null (sse);
        if (svc_sse_status (sse) != 401)
            fail_msg ("bad token #%zu: SSE answered %ld", i, svc_sse_status (sse));
        svc_sse_close (&sse);
    }
    svc_response_t response;
    assert_int_equal (svc_http (mesh, "GET", "/healthz", NULL, NULL, &response), 0);
    assert_int_equal (response.status, 200);
    svc_response_free (&response);
    //  Nothing the bad tokens sent was stored.
    assert_int_equal (s_feedback_total (mesh, alice, session.assistant_msg), 0);
    for (size_t i = 0; i < count; i++)
        free (bad[i]);
    free (alice);
    free (bob);
}

static void
s_expect_404 (svc_mesh_t *mesh, const char *method, const char *path, const char *token,
              const char *body)
{
    svc_response_t response;
    assert_int_equal (svc_http (mesh, method, path, token, body, &response), 0);
    if (response.status != 404)
        fail_msg ("%s %s by another user answered %ld", method, path, response.status);
    assert_null (strstr (response.body, S_SECRET_TEXT));
    assert_false (json_is_true (json_object_get (response.json, "success")));
    svc_response_free (&response);
}

static void
test_other_users_ids_are_404 (void **state)
{
    svc_mesh_t *mesh = *state;
    char *alice = svc_token (mesh, "alice", 600), *mallory = svc_token (mesh, "mallory", 600);
    s_session_t victim, own;
    s_start_session (mesh, alice, "alice_private_2", S_SECRET_TEXT, &victim);
    s_start_session (mesh, mallory, "mallory_own", "mine", &own);

    char path[600];
    s_expect_404 (mesh, "GET", "/api/sessions/alice_private_2", mallory, NULL);
    s_expect_404 (mesh, "GET", "/api/sessions/alice_private_2/analytics", mallory, NULL);
    s_expect_404 (mesh, "POST", "/api/run_sse/alice_private_2", mallory,
                  "{\"query\": \"injected by mallory\"}");
    snprintf (path, sizeof path, "/api/messages/%s/feedback", victim.assistant_msg);
    s_expect_404 (mesh, "POST", path, mallory, "{\"feedback_type\": \"downvote\"}");
    s_expect_404 (mesh, "GET", path, mallory, NULL);
    snprintf (path, sizeof path, "/api/messages/%s/history", victim.user_msg);
    s_expect_404 (mesh, "GET", path, mallory, NULL);
    snprintf (path, sizeof path, "/api/messages/%s", victim.user_msg);
    s_expect_404 (mesh, "PUT", path, mallory,
                  "{\"content\": \"rewritten\", \"trigger_regeneration\": false}");
    snprintf (path, sizeof path, "/api/messages/%s/regenerate", victim.assistant_msg);
    s_expect_404 (mesh, "POST", path, mallory, "{}");
    snprintf (path, sizeof path, "/api/messages/tasks/%s/status", victim.task);
    s_expect_404 (mesh, "GET", path, mallory, NULL);
    snprintf (path, sizeof path, "/api/messages/tasks/%s/cancel", victim.task);
    s_expect_404 (mesh, "POST", path, mallory, NULL);
    snprintf (path, sizeof path, "/api/messages/%s", victim.assistant_msg);
    s_expect_404 (mesh, "DELETE", path, mallory, NULL);
    //  Alice's message uuid with mallory's own session id in the message id.
    char forged[400];
    const char *uuid_end = strchr (victim.user_msg + 4, '_');
    snprintf (forged, sizeof forged, "%.*s_mallory_own_user",
              (int) (uuid_end - victim.user_msg), victim.user_msg);
    snprintf (path, sizeof path, "/api/messages/%s", forged);
    s_expect_404 (mesh, "PUT", path, mallory, "{\"content\": \"x\", \"trigger_regeneration\": false}");

    svc_sse_t *sse = svc_sse_open (mesh, "/api/run_sse/alice_private_2", mallory, NULL);
    assert_non_null (sse);
    assert_int_equal (svc_sse_status (sse), 404);
    svc_sse_close (&sse);

    //  Mallory's list does not show it.
    svc_response_t response;
    assert_int_equal (svc_http (mesh, "GET", "/api/sessions", mallory, NULL, &response), 0);
    assert_int_equal (response.status, 200);
    assert_null (strstr (response.body, "alice_private_2"));
    svc_response_free (&response);

    //  Alice's session is untouched: both messages, her content, no vote,
    //  no edit, and the task was not cancelled by mallory.
    assert_int_equal (svc_http (mesh, "GET", "/api/sessions/alice_private_2", alice, NULL,
                                &response),
                      0);
    assert_int_equal (response.status, 200);
    json_t *messages = json_object_get (json_object_get (response.json, "session"), "messages");
    assert_int_equal (json_array_size (messages), 2);
    assert_string_equal (svc_json_str (json_array_get (messages, 0), "content", NULL), S_SECRET_TEXT);
    assert_null (strstr (response.body, "injected by mallory"));
    assert_null (strstr (response.body, "rewritten"));
    svc_response_free (&response);
    assert_int_equal (s_feedback_total (mesh, alice, victim.assistant_msg), 0);
    snprintf (path, sizeof path, "/api/messages/tasks/%s/status", victim.task);
    assert_int_equal (svc_http (mesh, "GET", path, alice, NULL, &response), 0);
    assert_int_equal (response.status, 200);
    const char *error = svc_json_str (response.json, "error_message", NULL);
    assert_true (!error || strcmp (error, "cancelled") != 0);
    svc_response_free (&response);
    free (alice);
    free (mallory);
}

static void
test_megabyte_body_is_413 (void **state)
{
    svc_mesh_t *mesh = *state;
    char *alice = svc_token (mesh, "alice", 600);
    s_session_t session;
    s_start_session (mesh, alice, "big_body", "hello", &session);

    const size_t body_size = 1024 * 1024;
    char *body = malloc (body_size + 1);
    memset (body, 'a', body_size);
    const char *prefix = "{\"feedback_type\":\"upvote\",\"reason\":\"";
    memcpy (body, prefix, strlen (prefix));
    memcpy (body + body_size - 2, "\"}", 2);
    body[body_size] = 0;
    const char *targets[][2] = {
        {"POST", "/api/messages/%s/feedback"},
        {"PUT", "/api/messages/%s"},
        {"POST", "/api/messages/%s/regenerate"},
        {"POST", "/api/run_sse/big_body_2%.0s"},
    };
    for (size_t i = 0; i < sizeof targets / sizeof targets[0]; i++) {
        char path[512], head[1536];
        snprintf (path, sizeof path, targets[i][1], session.assistant_msg);
        int head_len = snprintf (head, sizeof head,
                                 "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer %s\r\n"
                                 "Content-Type: application/json\r\nContent-Length: %zu\r\n"
                                 "Connection: close\r\n\r\n",
                                 targets[i][0], path, alice, body_size);
        char *request = malloc ((size_t) head_len + body_size);
        memcpy (request, head, (size_t) head_len);
        memcpy (request + head_len, body, body_size);
        double start = svc_now_ms ();
        long status = svc_raw_exchange (svc_mesh_port (mesh), request,
                                        (size_t) head_len + body_size, 5000, NULL);
        double took = svc_now_ms () - start;
        free (request);
        if (status != 413)
            fail_msg ("%s %s with 1 MB answered %ld", targets[i][0], targets[i][1], status);
        assert_true (took < 3000);
    }
    //  Nothing stored: no vote, no edit, no new session.
    assert_int_equal (s_feedback_total (mesh, alice, session.assistant_msg), 0);
    svc_response_t response;
    assert_int_equal (svc_http (mesh, "GET", "/api/sessions/big_body_2", alice, NULL, &response),
                      0);
    assert_int_equal (response.status, 404);
    svc_response_free (&response);
    char path[512];
    snprintf (path, sizeof path, "/api/messages/%s/history", session.assistant_msg);
    assert_int_equal (svc_http (mesh, "GET", path, alice, NULL, &response), 0);
    assert_int_equal (response.status, 200);
    assert_int_equal (json_integer_value (json_object_get (response.json, "edit_count")), 0);
    svc_response_free (&response);
    free (body);
    free (alice);
}

static char *
s_repeat (const char *open, const char *middle, const char *close, int depth)
{
    size_t size = strlen (open) * (size_t) depth + strlen (middle)
                  + strlen (close) * (size_t) depth + 1;
    char *text = malloc (size), *p = text;
    for (int i = 0; i < depth; i++)
        p += sprintf (p, "%s", open);
    p += sprintf (p, "%s", middle);
    for (int i = 0; i < depth; i++)
        p += sprintf (p, "%s", close);
    return text;
}

static void
test_deep_nesting_is_rejected (void **state)
{
    svc_mesh_t *mesh = *state;
    char *alice = svc_token (mesh, "alice", 600);
    s_session_t session;
    s_start_session (mesh, alice, "deep_nest", "hello", &session);
    char path[512];
    snprintf (path, sizeof path, "/api/messages/%s/feedback", session.assistant_msg);
    char *bodies[] = {
        s_repeat ("[", "", "", 10000),
        s_repeat ("[", "1", "]", 10000),
        s_repeat ("{\"a\":", "1", "}", 10000),
        s_repeat ("{\"feedback_type\":\"upvote\",\"metadata\":", "{}", "}", 1),
        NULL,
    };
    //  Deep metadata inside an otherwise valid body.
    char *deep = s_repeat ("{\"a\":", "1", "}", 5000);
    size_t size = strlen (deep) + 64;
    bodies[4] = malloc (size);
    snprintf (bodies[4], size, "{\"feedback_type\":\"upvote\",\"metadata\":%s}", deep);
    free (deep);
    for (size_t i = 0; i < 5; i++) {
        svc_response_t response;
        assert_int_equal (svc_http (mesh, "POST", path, alice, bodies[i], &response), 0);
        if (i == 3)
            assert_int_equal (response.status, 200); //  control: shallow metadata is fine
        else if (response.status != 400 && response.status != 422)
            fail_msg ("nested body #%zu answered %ld", i, response.status);
        svc_response_free (&response);
        free (bodies[i]);
    }
    svc_response_t response;
    assert_int_equal (svc_http (mesh, "GET", "/healthz", NULL, NULL, &response), 0);
    assert_int_equal (response.status, 200);
    svc_response_free (&response);
    assert_true (svc_mesh_pid (mesh, "gateway") > 0 && kill (svc_mesh_pid (mesh, "gateway"), 0) == 0);
    free (alice);
}

static void
test_invalid_utf8_is_400 (void **state)
{
    svc_mesh_t *mesh = *state;
    char *alice = svc_token (mesh, "alice", 600);
    s_session_t session;
    s_start_session (mesh, alice, "utf8_attack", "hello", &session);
    char edit_path[512], feedback_path[512];
    snprintf (edit_path, sizeof edit_path, "/api/messages/%s", session.user_msg);
    snprintf (feedback_path, sizeof feedback_path, "/api/messages/%s/feedback",
              session.assistant_msg);
    const char *cases[][3] = {
        {"POST", "/api/run_sse/utf8_new", "{\"query\": \"bad \xff\xfe bytes\"}"},
        {"POST", "/api/run_sse/utf8_new", "{\"query\": \"overlong \xc0\xaf\"}"},
        {"PUT", edit_path, "{\"content\": \"surrogate \xed\xa0\x80\", \"trigger_regeneration\": false}"},
        {"PUT", edit_path, "{\"content\": \"lone escape \\ud800\", \"trigger_regeneration\": false}"},
        {"PUT", edit_path, "{\"content\": \"truncated \xe2\x82\", \"trigger_regeneration\": false}"},
        {"PUT", edit_path, "{\"content\": \"past max \xf4\x90\x80\x80\", \"trigger_regeneration\": false}"},
        {"POST", feedback_path, "{\"feedback_type\": \"upvote\", \"reason\": \"\x80\"}"},
        {"POST", feedback_path, "{\"feedback_type\": \"upvote\", \"metadata\": {\"k\xff\": 1}}"},
    };
    //  Keys the wire protocol cannot carry (empty, over 256 bytes) are the
    //  client's fault too: a 4xx, never a 5xx from the store's decoder.
    char long_key[400];
    snprintf (long_key, sizeof long_key, "{\"feedback_type\": \"upvote\", \"metadata\": {\"%0300d\": 1}}", 0);
    const char *bad_keys[] = {"{\"feedback_type\": \"upvote\", \"metadata\": {\"\": 1}}",
                              "{\"feedback_type\": \"upvote\", \"metadata\": {\"a\": {\"\": 1}}}",
                              long_key};
    for (size_t i = 0; i < 3; i++) {
        svc_response_t response;
        assert_int_equal (svc_http (mesh, "POST", feedback_path, alice, bad_keys[i], &response), 0);
        if (response.status < 400 || response.status > 499)
            fail_msg ("metadata key case #%zu answered %ld", i, response.status);
        svc_response_free (&response);
    }
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        svc_response_t response;
        assert_int_equal (svc_http (mesh, cases[i][0], cases[i][1], alice, cases[i][2], &response),
                          0);
        if (response.status != 400)
            fail_msg ("invalid UTF-8 case #%zu answered %ld", i, response.status);
        assert_non_null (response.json); //  the error itself is valid JSON
        svc_response_free (&response);
    }
    svc_response_t response;
    assert_int_equal (svc_http (mesh, "GET", "/api/sessions/utf8_new", alice, NULL, &response), 0);
    assert_int_equal (response.status, 404);
    svc_response_free (&response);
    assert_int_equal (s_feedback_total (mesh, alice, session.assistant_msg), 0);
    free (alice);
}

static void
test_sse_framing_survives_content (void **state)
{
    svc_mesh_t *mesh = *state;
    char *alice = svc_token (mesh, "alice", 600);
    const char *query = "q\r\n\r\nevent: x\ndata: y\n\nid: 999-1\n\n";
    const char *content = "line1\r\nline2\n\nevent: x\ndata: y\n\nid: 999-1\r\r: c\ndata: z";
    svc_sse_t *sse = svc_sse_open (mesh, "/api/run_sse/framing_s", alice, NULL);
    assert_non_null (sse);
    //  A new session is not the caller's yet: open the stream after
    //  creating it when the gateway insists on ownership.
    if (svc_sse_status (sse) != 200)
        svc_sse_close (&sse);
    s_session_t session;
    s_start_session (mesh, alice, "framing_s", query, &session);
    if (!sse)
        sse = svc_sse_open (mesh, "/api/run_sse/framing_s", alice, NULL);
    assert_non_null (sse);
    assert_int_equal (svc_sse_status (sse), 200);

    char path[512];
    snprintf (path, sizeof path, "/api/messages/%s", session.user_msg);
    json_t *json = json_pack ("{s:s,s:b}", "content", content, "trigger_regeneration", 0);
    char *body = json_dumps (json, 0);
    json_decref (json);
    svc_response_t response;
    assert_int_equal (svc_http (mesh, "PUT", path, alice, body, &response), 0);
    free (body);
    assert_int_equal (response.status, 200);
    //  Trimming only strips the ends; this content has none to strip.
    assert_string_equal (svc_json_str (response.json, "data", "new_content"), content);
    svc_response_free (&response);

    const svc_event_t *event = svc_sse_wait (sse, "message_edited", 10000);
    assert_non_null (event);
    assert_non_null (event->json);
    assert_string_equal (svc_json_str (event->json, "content", NULL), content);
    //  The query was stored trimmed of its trailing white space.
    assert_string_equal (svc_json_str (event->json, "previousContent", NULL),
                         "q\r\n\r\nevent: x\ndata: y\n\nid: 999-1");

    //  The stored content round-trips through GET.
    assert_int_equal (svc_http (mesh, "GET", "/api/sessions/framing_s", alice, NULL, &response), 0);
    assert_int_equal (response.status, 200);
    json_t *messages = json_object_get (json_object_get (response.json, "session"), "messages");
    assert_string_equal (svc_json_str (json_array_get (messages, 0), "content", NULL), content);
    svc_response_free (&response);

    //  No injected event, no injected id: every event is one of the
    //  protocol's, with JSON data, and ids come from the broadcaster.
    size_t count = svc_sse_count (sse);
    for (size_t i = 0; i < count; i++) {
        const svc_event_t *e = svc_sse_at (sse, i);
        assert_string_not_equal (e->event, "x");
        assert_true (strcmp (e->id, "999-1") != 0);
        assert_non_null (e->json);
        assert_true (strlen (e->event) > 0);
    }
    svc_sse_close (&sse);
    free (alice);
}

//  True once the peer has closed fd (or reset it); what it sent before
//  is appended to got (at most S_GOT_MAX - 1 bytes kept, NUL-terminated).
#define S_GOT_MAX 128
static bool
s_closed_by_peer (int fd, char *got)
{
    size_t len = strlen (got);
    char byte;
    ssize_t n;
    while ((n = recv (fd, &byte, 1, MSG_DONTWAIT)) > 0)
        if (len < S_GOT_MAX - 1) {
            got[len++] = byte;
            got[len] = 0;
        }
    return n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK);
}

static void
test_slowloris_is_cut_off (void **state)
{
    (void) state;
    //  Its own gateway with a short header deadline (the default is 10 s),
    //  so the test can tell that the deadline is what cut them off: each
    //  gets the vestibule's JSON 408 before the close.
    enum { TIMEOUT_MS = 3000 };
    const char *env[] = {"CHATMESH_HEADER_TIMEOUT_MS=3000", NULL};
    svc_mesh_t *mesh = svc_mesh_start (env);
    assert_non_null (mesh);
    int port = svc_mesh_port (mesh);
    enum { SLOW = 12 };
    int fds[SLOW];
    double closed_at[SLOW];
    char got[SLOW + 1][S_GOT_MAX];
    for (int i = 0; i < SLOW; i++) {
        fds[i] = svc_raw_connect (port, NULL, 1000);
        assert_true (fds[i] >= 0);
        const char *partial = i % 2 ? "GET /healthz HT" : "POST /api/run_sse/x HTTP/1.1\r\nHost: a\r\n";
        assert_true (send (fds[i], partial, strlen (partial), MSG_NOSIGNAL) > 0);
        closed_at[i] = 0;
        got[i][0] = 0;
    }
    //  One more trickles a header byte every 250 ms: a per-read timeout
    //  alone would never fire on it.
    int trickle = svc_raw_connect (port, NULL, 1000);
    assert_true (trickle >= 0);
    assert_true (send (trickle, "GET / HTTP/1.1\r\nX-Slow: ", 24, MSG_NOSIGNAL) > 0);
    double trickle_closed = 0;
    got[SLOW][0] = 0;

    double start = svc_now_ms ();
    int served = 0;
    //  Allow margin on a busy box.
    while (svc_now_ms () - start < 5 * TIMEOUT_MS) {
        double t0 = svc_now_ms ();
        svc_response_t response;
        assert_int_equal (svc_http (mesh, "GET", "/healthz", NULL, NULL, &response), 0);
        assert_int_equal (response.status, 200);
        svc_response_free (&response);
        assert_true (svc_now_ms () - t0 < 3000); //  others are served meanwhile
        served++;
        int open = 0;
        for (int i = 0; i < SLOW; i++) {
            if (!closed_at[i] && s_closed_by_peer (fds[i], got[i]))
                closed_at[i] = svc_now_ms () - start;
            open += !closed_at[i];
        }
        if (!trickle_closed) {
            if (s_closed_by_peer (trickle, got[SLOW]) || send (trickle, "a", 1, MSG_NOSIGNAL) < 0)
                trickle_closed = svc_now_ms () - start;
            else
                open++;
        }
        if (!open)
            break;
        usleep (250000);
    }
    for (int i = 0; i < SLOW; i++) {
        close (fds[i]);
        if (!closed_at[i])
            fail_msg ("slow connection %d still open after %d ms", i, 5 * TIMEOUT_MS);
        if (closed_at[i] < TIMEOUT_MS - 500)
            fail_msg ("slow connection %d cut after %.0f ms, before the %d ms timeout", i,
                      closed_at[i], TIMEOUT_MS);
        if (strncmp (got[i], "HTTP/1.1 408 ", 13) != 0)
            fail_msg ("slow connection %d got '%s' before the close, not a 408", i, got[i]);
    }
    close (trickle);
    if (!trickle_closed)
        fail_msg ("trickling connection still open after %d ms", 5 * TIMEOUT_MS);
    if (strncmp (got[SLOW], "HTTP/1.1 408 ", 13) != 0)
        fail_msg ("trickling connection got '%s' before the close, not a 408", got[SLOW]);
    assert_true (served > 3);
    svc_mesh_stop (&mesh);
    print_message ("slowloris: closed after %.1f s (trickle %.1f s), %d requests served meanwhile\n",
                   closed_at[0] / 1000, trickle_closed / 1000, served);
}

static void
test_static_traversal_is_refused (void **state)
{
    svc_mesh_t *mesh = *state;
    svc_raw_t answer;
    assert_int_equal (s_raw_get (mesh, "/index.html", &answer), 200);
    svc_raw_free (&answer);
    //  The frontend's libraries, from Debian's packages (./chatmesh installs them).
    assert_int_equal (s_raw_get (mesh, "/lib/marked.js", &answer), 200);
    assert_non_null (strstr (answer.text, "marked"));
    svc_raw_free (&answer);
    assert_int_equal (s_raw_get (mesh, "/lib/purify.js", &answer), 200);
    assert_non_null (strstr (answer.text, "DOMPurify"));
    svc_raw_free (&answer);
    const char *targets[] = {
        "/../../../../../../etc/passwd",
        "/%2e%2e/%2e%2e/%2e%2e/%2e%2e/etc/passwd",
        "/%2e%2e%2f%2e%2e%2f%2e%2e%2f%2e%2e%2fetc%2fpasswd",
        "/..%2f..%2f..%2f..%2fetc%2fpasswd",
        "/.%2e/.%2e/.%2e/.%2e/etc/passwd",
        "/%252e%252e/%252e%252e/etc/passwd",
        "//etc/passwd",
        "///etc/passwd",
        "/..%5c..%5c..%5c..%5cetc%5cpasswd",
        "/%5c..%5c..%5c..%5c..%5cetc/passwd",
        "/..\\..\\..\\..\\etc\\passwd",
        "/js/../../CMakeLists.txt",
        "/js/%2e%2e/%2e%2e/CMakeLists.txt",
        "/../CMakeLists.txt",
        "/%2e%2e/CMakeLists.txt",
        "/..;/CMakeLists.txt",
        "/%c0%ae%c0%ae/%c0%ae%c0%ae/etc/passwd",
        "/proc/self/environ",
        "/../../../../../../proc/self/environ",
        "/.git/config",
        //  The libraries' names (CHATMESH_WEB_LIBS) and nothing near them.
        "/lib/../../../../etc/passwd",
        "/lib/%2e%2e/%2e%2e/CMakeLists.txt",
        "/lib/marked.js/../../../../etc/passwd",
        "/lib/marked.js/",
        "/lib/",
        "/lib/passwd",
        "/lib//usr/share/javascript/marked/marked.min.js",
    };
    //  A NUL cuts the decoded path short: at most a file of web/ comes back.
    long status = s_raw_get (mesh, "/index.html%00.js", &answer);
    assert_true (status == 200 || status == 404 || status == 400);
    assert_null (strstr (answer.text, "root:"));
    svc_raw_free (&answer);
    for (size_t i = 0; i < sizeof targets / sizeof targets[0]; i++) {
        status = s_raw_get (mesh, targets[i], &answer);
        if (status != 404 && status != 400)
            fail_msg ("GET %s answered %ld", targets[i], status);
        assert_null (strstr (answer.text, "root:"));
        assert_null (strstr (answer.text, "cmake_minimum_required"));
        assert_null (strstr (answer.text, "CHATMESH_JWT_SECRET"));
        assert_null (strstr (answer.text, "[core]"));
        svc_raw_free (&answer);
    }
}

static void
test_rate_limit_has_no_side_door (void **state)
{
    (void) state;
    const char *env[] = {"CHAT_ACTIONS_RATE_LIMIT=6", NULL};
    svc_mesh_t *mesh = svc_mesh_start (env);
    assert_non_null (mesh);
    char *alice = svc_token (mesh, "alice", 600);
    s_session_t session;
    s_start_session (mesh, alice, "rate_s", "hello", &session);
    char path[600];
    snprintf (path, sizeof path, "/api/messages/%s/feedback", session.assistant_msg);
    long status = 0;
    int accepted = 0;
    for (int i = 0; i < 20 && status != 429; i++) {
        svc_response_t response;
        assert_int_equal (svc_http (mesh, "POST", path, alice, "{\"feedback_type\":\"upvote\"}",
                                    &response),
                          0);
        status = response.status;
        accepted += status == 200;
        if (status == 429) {
            char retry[32];
            assert_int_equal (svc_response_header (&response, "Retry-After", retry, sizeof retry), 0);
        }
        svc_response_free (&response);
    }
    assert_int_equal (status, 429);
    assert_true (accepted >= 1 && accepted <= 6);

    const char *variants[] = {
        "/API/messages/%s/feedback",
        "/Api/Messages/%s/Feedback",
        "/api//messages/%s/feedback",
        "//api/messages/%s/feedback",
        "/api/messages//%s/feedback",
        "/api/messages/%s//feedback",
        "/api/messages/%s/feedback/",
        "/api/messages/%s/feedback//",
        "/api/messages/%s/FEEDBACK",
        "/api/./messages/%s/feedback",
        "/api/messages/%s/./feedback",
        "/api/x/../messages/%s/feedback",
        "/%%61pi/messages/%s/feedback",
        "/api/messages/%s/feedback%%2f",
        "/api/messages/%s/feedback?x=1",
        "/api/messages/%s/feedback;x",
        "/api/messages/%s/feedback%%00",
    };
    int port = svc_mesh_port (mesh);
    for (size_t i = 0; i < sizeof variants / sizeof variants[0]; i++) {
        char target[800], request[2048];
        snprintf (target, sizeof target, variants[i], session.assistant_msg);
        const char *body = "{\"feedback_type\":\"downvote\"}";
        int len = snprintf (request, sizeof request,
                            "POST %s HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer %s\r\n"
                            "Content-Type: application/json\r\nContent-Length: %zu\r\n"
                            "Connection: close\r\n\r\n%s",
                            target, alice, strlen (body), body);
        long got = svc_raw_exchange (port, request, (size_t) len, 5000, NULL);
        if (got < 400 || got == 503 || got == 500)
            fail_msg ("POST %s after the budget was spent answered %ld", target, got);
    }
    //  No downvote got through any variant.
    svc_response_t response;
    assert_int_equal (svc_http (mesh, "GET", path, alice, NULL, &response), 0);
    assert_int_equal (response.status, 200);
    json_t *summary = json_object_get (response.json, "feedback_summary");
    assert_int_equal (json_integer_value (json_object_get (summary, "downvotes")), 0);
    svc_response_free (&response);
    free (alice);
    svc_mesh_stop (&mesh);
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_bad_tokens_are_401),
        cmocka_unit_test (test_other_users_ids_are_404),
        cmocka_unit_test (test_megabyte_body_is_413),
        cmocka_unit_test (test_deep_nesting_is_rejected),
        cmocka_unit_test (test_invalid_utf8_is_400),
        cmocka_unit_test (test_sse_framing_survives_content),
        cmocka_unit_test (test_static_traversal_is_refused),
        cmocka_unit_test (test_slowloris_is_cut_off),
    };
    const struct CMUnitTest own_mesh[] = {
        cmocka_unit_test (test_rate_limit_has_no_side_door),
    };
    int failed = cmocka_run_group_tests_name ("attack", tests, svc_fixture_setup,
                                              svc_fixture_teardown);
    failed += cmocka_run_group_tests_name ("attack_rate_limit", own_mesh, NULL, NULL);
    return failed;
}
