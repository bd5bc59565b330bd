/*  svc_api_http: the HTTP API's answers around its endpoints (docs/api.md)
    against the real four binaries: 401 for every way a token can be
    wrong, 404 for other users' things, 400/413/415 and 422 for bad
    requests and bodies, the OpenAPI document listing every route, probes,
    metrics, security headers and CORS. The endpoints' own behaviour is
    svc_api_core's.

    One mesh for the whole group (the same settings as svc_api_core's);
    each test uses its own users and sessions so the per-user rate limit
    (60/min) never interferes.                                             */
#include "svc_api_util.h"

#include <jwt.h>
#include <time.h>

#define ORIGIN_OK "https://app.example"
#define MAX_CHARS 40
#define MAX_BODY 4096

static int
s_setup (void **state)
{
    static const char *const env[] = {
        "CHATMESH_MAX_BODY_BYTES=4096",
        "CHAT_ACTIONS_MAX_CONTENT_LENGTH=40",
        "CHATMESH_CORS_ORIGINS=" ORIGIN_OK ", https://other.example",
        "CHATMESH_BUILTIN_TOKENS_PER_SEC=2000",
        "CHATMESH_PROGRESS_INTERVAL_MS=10",
        NULL,
    };
    return svc_fixture_start (state, env);
}

//  The assistant's answer task must end before that message can be
//  regenerated again (409 otherwise).
static void
s_answered (svc_mesh_t *mesh, const char *token, const sa_turn_t *turn)
{
    json_t *status = sa_wait_task (mesh, token, turn->task_id, "completed", 20000);
    json_decref (status);
}

//  ---------------------------------------------------------------------------
//  401: every way a token can be wrong.

static char *
s_mint (const char *secret, jwt_alg_t alg, const char *sub, long exp_in, bool with_exp,
        long nbf_in)
{
    jwt_t *jwt = NULL;
    assert_int_equal (jwt_new (&jwt), 0);
    if (sub)
        jwt_add_grant (jwt, "sub", sub);
    jwt_add_grant_int (jwt, "iat", time (NULL));
    if (with_exp)
        jwt_add_grant_int (jwt, "exp", time (NULL) + exp_in);
    if (nbf_in)
        jwt_add_grant_int (jwt, "nbf", time (NULL) + nbf_in);
    if (alg == JWT_ALG_NONE)
        jwt_set_alg (jwt, JWT_ALG_NONE, NULL, 0);
    else
        jwt_set_alg (jwt, alg, (const unsigned char *) secret, (int) strlen (secret));
    char *token = jwt_encode_str (jwt);
    jwt_free (jwt);
    assert_non_null (token);
    return token;
}

static void
s_expect_401 (svc_mesh_t *mesh, const char *token, const char *label)
{
    svc_response_t r;
    if (svc_http (mesh, "GET", "/api/sessions", token, NULL, &r) != 0)
        fail_msg ("%s: no answer", label);
    if (r.status != 401)
        fail_msg ("%s: status %ld, wanted 401: %.200s", label, r.status, r.body);
    sa_error (&r, 401, "unauthorized");
    char value[128];
    assert_int_equal (svc_response_header (&r, "WWW-Authenticate", value, sizeof value), 0);
    assert_true (sa_prefix (value, "Bearer"));
    svc_response_free (&r);
}

static void
test_auth_failures_are_401 (void **state)
{
    svc_mesh_t *mesh = *state;
    s_expect_401 (mesh, NULL, "no token");
    s_expect_401 (mesh, "not-a-jwt", "garbage");
    s_expect_401 (mesh, "a.b.c", "three garbage parts");

    //  Tamper with a valid token: flip the last signature character.
    char *good = svc_token (mesh, "henry", 600);
    svc_response_t r;
    sa_req (mesh, "GET", "/api/sessions", good, NULL, 200, &r);
    svc_response_free (&r);
    char *bad_sig = strdup (good);
    size_t len = strlen (bad_sig);
    bad_sig[len - 1] = bad_sig[len - 1] == 'A' ? 'B' : 'A';
    s_expect_401 (mesh, bad_sig, "bad signature");
    free (bad_sig);

    //  Signed with another secret.
    char *other = s_mint ("another-secret-0123456789", JWT_ALG_HS256, "henry", 600, true, 0);
    s_expect_401 (mesh, other, "wrong secret");
    free (other);
    //  alg none (libjwt would accept it without a key).
    char *none = s_mint ("", JWT_ALG_NONE, "henry", 600, true, 0);
    s_expect_401 (mesh, none, "alg none");
    free (none);
    //  Another HMAC alg: refused on the alg whatever the key.
    char *hs512 = s_mint ("another-secret-0123456789", JWT_ALG_HS512, "henry", 600, true, 0);
    s_expect_401 (mesh, hs512, "HS512");
    free (hs512);
    char *expired = svc_token (mesh, "henry", -5);
    s_expect_401 (mesh, expired, "expired");
    free (expired);

    //  The right secret, wrong claims or alg.
    char claims[512];
    long now = (long) time (NULL);
    struct {
        const char *label, *alg;
        char claims[300];
    } wrong[6];
    snprintf (wrong[0].claims, 300, "{\"sub\": \"henry\", \"exp\": %ld}", now + 600);
    wrong[0].label = "HS512 with the right secret", wrong[0].alg = "HS512";
    snprintf (wrong[1].claims, 300, "{\"sub\": \"henry\", \"exp\": %ld}", now + 600);
    wrong[1].label = "alg none with the right claims", wrong[1].alg = "none";
    snprintf (wrong[2].claims, 300, "{\"sub\": \"henry\", \"iat\": %ld}", now);
    wrong[2].label = "missing exp", wrong[2].alg = "HS256";
    snprintf (wrong[3].claims, 300, "{\"sub\": \"henry\", \"exp\": %ld, \"nbf\": %ld}",
              now + 600, now + 300);
    wrong[3].label = "nbf in the future", wrong[3].alg = "HS256";
    snprintf (wrong[4].claims, 300, "{\"exp\": %ld}", now + 600);
    wrong[4].label = "missing sub", wrong[4].alg = "HS256";
    snprintf (wrong[5].claims, 300, "{\"sub\": \"%0129d\", \"exp\": %ld}", 0, now + 600);
    wrong[5].label = "sub of 129 characters", wrong[5].alg = "HS256";
    for (size_t i = 0; i < 6; i++) {
        char *token = svc_token_claims (mesh, wrong[i].claims, wrong[i].alg);
        assert_non_null (token);
        s_expect_401 (mesh, token, wrong[i].label);
        free (token);
    }
    //  ...and the same claims done right pass (the checks above are real).
    snprintf (claims, sizeof claims, "{\"sub\": \"%0128d\", \"exp\": %ld, \"nbf\": %ld}", 0,
              now + 600, now - 5);
    char *right = svc_token_claims (mesh, claims, "HS256");
    sa_req (mesh, "GET", "/api/sessions", right, NULL, 200, &r);
    svc_response_free (&r);
    free (right);

    //  Bearer scheme only; the token in the query only counts for SSE.
    svc_response_t q;
    sa_req_at (svc_mesh_url (mesh), "GET", "/api/sessions", NULL, NULL, NULL,
               "Authorization: Basic aGVucnk6cHc=", 401, &q);
    sa_error (&q, 401, "unauthorized");
    svc_response_free (&q);
    char path[2048];
    snprintf (path, sizeof path, "/api/sessions?access_token=%s", good);
    sa_req (mesh, "GET", path, NULL, NULL, 401, &q);
    svc_response_free (&q);
    //  ...where it works.
    sa_turn_t turn;
    sa_turn (mesh, good, "henry_s", "query token", &turn);
    snprintf (path, sizeof path, "/api/run_sse/henry_s?access_token=%s", good);
    svc_sse_t *sse = svc_sse_open (mesh, path, NULL, NULL);
    assert_non_null (sse);
    assert_int_equal (svc_sse_status (sse), 200);
    assert_non_null (svc_sse_wait (sse, "connection_status", 5000));
    svc_sse_close (&sse);
    //  ...and the SSE endpoint still demands one.
    sse = svc_sse_open (mesh, "/api/run_sse/henry_s", NULL, NULL);
    assert_non_null (sse);
    assert_int_equal (svc_sse_status (sse), 401);
    svc_sse_close (&sse);
    free (good);
}

//  ---------------------------------------------------------------------------
//  404: another user's things look exactly like missing ones.

static void
test_other_users_things_are_404 (void **state)
{
    svc_mesh_t *mesh = *state;
    char *owner = svc_token (mesh, "ivan", 600), *thief = svc_token (mesh, "mallory", 600);
    sa_turn_t turn;
    sa_turn (mesh, owner, "ivan_private", "top secret plans", &turn);
    s_answered (mesh, owner, &turn);
    svc_response_t r;
    char path[600];
    struct {
        const char *method, *format, *id, *body;
    } probes[] = {
        {"GET", "/api/sessions/%s", "ivan_private", NULL},
        {"GET", "/api/sessions/%s/analytics", "ivan_private", NULL},
        {"POST", "/api/run_sse/%s", "ivan_private", "{\"query\": \"let me in\"}"},
        {"POST", "/api/messages/%s/regenerate", turn.assistant_id, "{}"},
        {"PUT", "/api/messages/%s", turn.user_id, "{\"content\": \"pwned\"}"},
        {"DELETE", "/api/messages/%s", turn.user_id, NULL},
        {"POST", "/api/messages/%s/feedback", turn.assistant_id,
         "{\"feedback_type\": \"downvote\"}"},
        {"GET", "/api/messages/%s/feedback", turn.assistant_id, NULL},
        {"GET", "/api/messages/%s/history", turn.user_id, NULL},
        {"GET", "/api/messages/tasks/%s/status", turn.task_id, NULL},
        {"POST", "/api/messages/tasks/%s/cancel", turn.task_id, NULL},
    };
    for (size_t i = 0; i < sizeof probes / sizeof probes[0]; i++) {
        snprintf (path, sizeof path, probes[i].format, probes[i].id);
        sa_req (mesh, probes[i].method, path, thief, probes[i].body, 404, &r);
        sa_error (&r, 404, "not_found");
        if (strstr (r.body, "secret") || strstr (r.body, "ivan"))
            fail_msg ("%s %s reveals content: %s", probes[i].method, path, r.body);
        svc_response_free (&r);
    }
    //  Same answer as for a session that does not exist at all.
    sa_req (mesh, "GET", "/api/sessions/ivan_private", thief, NULL, 404, &r);
    char *theirs = strdup (r.body);
    svc_response_free (&r);
    sa_req (mesh, "GET", "/api/sessions/no_such_session", thief, NULL, 404, &r);
    assert_string_equal (r.body, theirs);
    free (theirs);
    svc_response_free (&r);
    sa_req (mesh, "GET", "/api/sessions", thief, NULL, 200, &r);
    assert_null (strstr (r.body, "ivan_private"));
    svc_response_free (&r);
    //  Nothing changed for the owner.
    sa_req (mesh, "GET", "/api/sessions/ivan_private", owner, NULL, 200, &r);
    json_t *session = sa_obj (r.json, "session");
    assert_int_equal (sa_int (session, "message_count"), 2);
    json_t *first = json_array_get (sa_arr (session, "messages"), 0);
    assert_string_equal (sa_str (first, "content"), "top secret plans");
    json_t *bot = json_array_get (sa_arr (session, "messages"), 1);
    assert_int_equal (sa_int (sa_obj (bot, "metadata"), "downvotes"), 0);
    svc_response_free (&r);
    free (owner);
    free (thief);
}

//  ---------------------------------------------------------------------------
//  400 / 413 / 415 / 422

static void
test_bad_requests_400_413_415 (void **state)
{
    svc_mesh_t *mesh = *state;
    char *token = svc_token (mesh, "judy", 600);
    sa_turn_t turn;
    sa_turn (mesh, token, "judy_bad", "hello there", &turn);
    char feedback[600], edit[600], regen[600];
    snprintf (feedback, sizeof feedback, "/api/messages/%s/feedback", turn.assistant_id);
    snprintf (edit, sizeof edit, "/api/messages/%s", turn.user_id);
    snprintf (regen, sizeof regen, "/api/messages/%s/regenerate", turn.user_id);
    const char *base = svc_mesh_url (mesh);
    svc_response_t r;

    sa_req (mesh, "POST", feedback, token, "{\"feedback_type\": ", 400, &r);
    sa_error (&r, 400, "invalid_json");
    svc_response_free (&r);
    //  Invalid UTF-8 in the body (a lone continuation byte, an overlong).
    sa_req (mesh, "POST", feedback, token, "{\"feedback_type\": \"upvote\", \"reason\": \"\x80\"}",
            400, &r);
    sa_error (&r, 400, "invalid_json");
    svc_response_free (&r);
    sa_req (mesh, "PUT", edit, token, "{\"content\": \"\xc0\xaf\"}", 400, &r);
    sa_error (&r, 400, NULL);
    svc_response_free (&r);
    //  Duplicate keys are ambiguous: refused.
    sa_req (mesh, "POST", feedback, token,
            "{\"feedback_type\": \"upvote\", \"feedback_type\": \"downvote\"}", 400, &r);
    sa_error (&r, 400, "invalid_json");
    svc_response_free (&r);
    //  Bad ids in the path.
    sa_req (mesh, "POST", "/api/messages/not-a-message-id/feedback", token,
            "{\"feedback_type\": \"upvote\"}", 400, &r);
    sa_error (&r, 400, "invalid_message_id");
    svc_response_free (&r);
    sa_req (mesh, "GET", "/api/messages/msg_abc_judy_bad_robot/history", token, NULL, 400, &r);
    sa_error (&r, 400, "invalid_message_id");
    svc_response_free (&r);
    sa_req (mesh, "GET", "/api/sessions/bad.session", token, NULL, 400, &r);
    sa_error (&r, 400, "invalid_session_id");
    svc_response_free (&r);
    //  Regenerating a user message.
    sa_req (mesh, "POST", regen, token, "{}", 400, &r);
    sa_error (&r, 400, "not_assistant_message");
    svc_response_free (&r);
    //  A required body that is absent.
    sa_req (mesh, "PUT", edit, token, "", 400, &r);
    sa_error (&r, 400, "missing_body");
    svc_response_free (&r);

    //  415: not JSON (also for an optional body).
    sa_req_at (base, "POST", feedback, token, "feedback_type=upvote", "text/plain", NULL, 415, &r);
    sa_error (&r, 415, "unsupported_media_type");
    svc_response_free (&r);
    sa_req_at (base, "POST", "/api/run_sse/judy_bad", token, "{\"query\": \"x\"}",
               "application/x-www-form-urlencoded", NULL, 415, &r);
    sa_error (&r, 415, "unsupported_media_type");
    svc_response_free (&r);
    //  Parameters of the media type are fine.
    sa_req_at (base, "POST", feedback, token, "{\"feedback_type\": \"upvote\"}",
               "application/json; charset=utf-8", NULL, 200, &r);
    svc_response_free (&r);

    //  413: over CHATMESH_MAX_BODY_BYTES (4096), even when valid JSON.
    size_t big = MAX_BODY + 100;
    char *body = malloc (big + 64);
    int n = snprintf (body, big + 64, "{\"feedback_type\": \"upvote\", \"metadata\": {\"pad\": \"");
    memset (body + n, 'x', big - (size_t) n);
    strcpy (body + big, "\"}}");
    sa_req (mesh, "POST", feedback, token, body, 413, &r);
    sa_error (&r, 413, "payload_too_large");
    svc_response_free (&r);
    free (body);
    //  The vote count shows none of the refused requests changed anything.
    sa_req (mesh, "GET", feedback, token, NULL, 200, &r);
    assert_int_equal (sa_int (sa_obj (r.json, "feedback_summary"), "total"), 1);
    svc_response_free (&r);
    free (token);
}

//  A string of `count` copies of utf8 (one character each).
static char *
s_repeat (const char *utf8, size_t count)
{
    size_t len = strlen (utf8);
    char *text = malloc (len * count + 1);
    for (size_t i = 0; i < count; i++)
        memcpy (text + i * len, utf8, len);
    text[len * count] = 0;
    return text;
}

static void
s_put_content (svc_mesh_t *mesh, const char *path, const char *token, const char *content,
               long want, const char *code)
{
    json_t *json = json_pack ("{s:s, s:b}", "content", content, "trigger_regeneration", 0);
    char *body = json_dumps (json, JSON_COMPACT);
    json_decref (json);
    svc_response_t r;
    sa_req (mesh, "PUT", path, token, body, want, &r);
    if (code)
        sa_error_field (&r, want, code, "content");
    else
        assert_string_equal (sa_str (sa_obj (r.json, "data"), "new_content"), content);
    svc_response_free (&r);
    free (body);
}

static void
test_validation_422 (void **state)
{
    svc_mesh_t *mesh = *state;
    char *token = svc_token (mesh, "kate", 600);
    sa_turn_t turn;
    sa_turn (mesh, token, "kate_422", "validate me", &turn);
    s_answered (mesh, token, &turn);
    char feedback[600], edit[600], regen[600];
    snprintf (feedback, sizeof feedback, "/api/messages/%s/feedback", turn.assistant_id);
    snprintf (edit, sizeof edit, "/api/messages/%s", turn.user_id);
    snprintf (regen, sizeof regen, "/api/messages/%s/regenerate", turn.assistant_id);
    svc_response_t r;

    struct {
        const char *path, *method, *body, *code, *field;
    } cases[] = {
        {feedback, "POST", "{\"feedback_type\": \"meh\"}", "invalid_field", "feedback_type"},
        {feedback, "POST", "{\"feedback_type\": 1}", "invalid_field", "feedback_type"},
        {feedback, "POST", "{}", "missing_field", "feedback_type"},
        {feedback, "POST", "{\"feedback_type\": \"upvote\", \"metadata\": \"x\"}",
         "invalid_field", "metadata"},
        {feedback, "POST", "{\"feedback_type\": \"upvote\", \"metadata\": [1]}", "invalid_field",
         "metadata"},
        {feedback, "POST", "{\"feedback_type\": \"upvote\", \"reason\": 7}", "invalid_field",
         "reason"},
        {regen, "POST", "{\"temperature\": 2.5}", "field_out_of_range", "temperature"},
        {regen, "POST", "{\"temperature\": -0.1}", "field_out_of_range", "temperature"},
        {regen, "POST", "{\"temperature\": \"hot\"}", "invalid_field", "temperature"},
        {regen, "POST", "{\"model\": 3}", "invalid_field", "model"},
        {regen, "POST", "{\"context\": false}", "invalid_field", "context"},
        {edit, "PUT", "{\"content\": 123}", "invalid_field", "content"},
        {edit, "PUT", "{\"content\": \" \\t\\n \"}", "empty_field", "content"},
        {edit, "PUT", "{\"trigger_regeneration\": false}", "missing_field", "content"},
        {edit, "PUT", "{\"content\": \"ok\", \"trigger_regeneration\": \"yes\"}",
         "invalid_field", "trigger_regeneration"},
        {"/api/run_sse/kate_422", "POST", "{\"query\": [\"q\"]}", "invalid_field", "query"},
        {"/api/run_sse/kate_422", "POST", "{\"query\": \"\"}", "empty_field", "query"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        sa_req (mesh, cases[i].method, cases[i].path, token, cases[i].body, 422, &r);
        sa_error_field (&r, 422, cases[i].code, cases[i].field);
        svc_response_free (&r);
    }
    //  A JSON body that is not an object.
    sa_req (mesh, "POST", feedback, token, "[\"upvote\"]", 422, &r);
    sa_error (&r, 422, "invalid_body");
    svc_response_free (&r);

    //  reason: 500 characters pass, 501 do not (counted in characters).
    char *reason = s_repeat ("\xc3\xa9", 500); //  é: 1000 bytes
    json_t *json = json_pack ("{s:s, s:s}", "feedback_type", "upvote", "reason", reason);
    char *body = json_dumps (json, JSON_COMPACT);
    sa_req (mesh, "POST", feedback, token, body, 200, &r);
    svc_response_free (&r);
    free (body);
    json_decref (json);
    free (reason);
    reason = s_repeat ("r", 501);
    json = json_pack ("{s:s, s:s}", "feedback_type", "upvote", "reason", reason);
    body = json_dumps (json, JSON_COMPACT);
    sa_req (mesh, "POST", feedback, token, body, 422, &r);
    sa_error_field (&r, 422, "field_too_long", "reason");
    svc_response_free (&r);
    free (body);
    json_decref (json);
    free (reason);

    //  content: CHAT_ACTIONS_MAX_CONTENT_LENGTH (40) characters, not bytes.
    char *text = s_repeat ("\xc3\xa9", MAX_CHARS); //  40 chars, 80 bytes
    s_put_content (mesh, edit, token, text, 200, NULL);
    free (text);
    text = s_repeat ("\xf0\x9f\x98\x80", MAX_CHARS); //  40 emoji, 160 bytes
    s_put_content (mesh, edit, token, text, 200, NULL);
    free (text);
    text = s_repeat ("\xe6\x97\xa5", MAX_CHARS + 1); //  41 chars
    s_put_content (mesh, edit, token, text, 422, "field_too_long");
    free (text);
    text = s_repeat ("a", MAX_CHARS + 1);
    s_put_content (mesh, edit, token, text, 422, "field_too_long");
    free (text);
    //  Trimmed before counting and storing.
    sa_req (mesh, "PUT", edit, token,
            "{\"content\": \"   trimmed   \", \"trigger_regeneration\": false}", 200, &r);
    assert_string_equal (sa_str (sa_obj (r.json, "data"), "new_content"), "trimmed");
    svc_response_free (&r);
    //  A regenerate's instruction: 41 characters are refused and change
    //  nothing (no task, no version); 40 pass, and the (builtin) answer
    //  follows it.
    char session_path[300];
    snprintf (session_path, sizeof session_path, "/api/sessions/%s", "kate_422");
    sa_req (mesh, "GET", session_path, token, NULL, 200, &r);
    char *before = json_dumps (sa_obj (r.json, "session"), JSON_SORT_KEYS | JSON_COMPACT);
    svc_response_free (&r);
    text = s_repeat ("\xc3\xa9", MAX_CHARS + 1);
    json = json_pack ("{s:s}", "instruction", text);
    body = json_dumps (json, JSON_COMPACT);
    sa_req (mesh, "POST", regen, token, body, 422, &r);
    sa_error_field (&r, 422, "field_too_long", "instruction");
    svc_response_free (&r);
    free (body);
    json_decref (json);
    free (text);
    sa_req (mesh, "POST", regen, token, "{\"instruction\": 7}", 422, &r);
    sa_error_field (&r, 422, "invalid_field", "instruction");
    svc_response_free (&r);
    sa_req (mesh, "GET", session_path, token, NULL, 200, &r);
    char *after = json_dumps (sa_obj (r.json, "session"), JSON_SORT_KEYS | JSON_COMPACT);
    svc_response_free (&r);
    assert_string_equal (after, before);
    free (after);
    free (before);
    text = s_repeat ("s", MAX_CHARS - strlen ("shorter "));
    char instruction[64];
    snprintf (instruction, sizeof instruction, "shorter %s", text);
    free (text);
    json = json_pack ("{s:s}", "instruction", instruction);
    body = json_dumps (json, JSON_COMPACT);
    sa_req (mesh, "POST", regen, token, body, 200, &r);
    free (body);
    json_decref (json);
    char instructed[CM_ID_MAX + 1];
    snprintf (instructed, sizeof instructed, "%s", sa_str (sa_obj (r.json, "data"), "task_id"));
    svc_response_free (&r);
    json_decref (sa_wait_task (mesh, token, instructed, "completed", 20000));
    //  The edit above started a branch without an answer: the answer is on
    //  the question's version 1.
    char activate[600];
    snprintf (activate, sizeof activate, "/api/messages/%s/versions/1/activate", turn.user_id);
    sa_req (mesh, "POST", activate, token, NULL, 200, &r);
    svc_response_free (&r);
    sa_req (mesh, "GET", session_path, token, NULL, 200, &r);
    const char *answer = sa_str (json_array_get (sa_arr (sa_obj (r.json, "session"), "messages"), 1),
                                 "content");
    char shown[128];
    snprintf (shown, sizeof shown, "As you asked — _%s_", instruction);
    assert_non_null (strstr (answer, shown));
    svc_response_free (&r);
    //  Bounds of temperature are inclusive.
    sa_req (mesh, "POST", regen, token, "{\"temperature\": 2.0}", 200, &r);
    svc_response_free (&r);
    free (token);
}

//  ---------------------------------------------------------------------------
//  Probes, OpenAPI, metrics, headers, CORS

static void
test_openapi_lists_every_route (void **state)
{
    svc_mesh_t *mesh = *state;
    svc_response_t r;
    sa_req (mesh, "GET", "/api/openapi.json", NULL, NULL, 200, &r);
    assert_true (sa_prefix (sa_str (r.json, "openapi"), "3."));
    json_t *paths = sa_obj (r.json, "paths");
    static const struct {
        const char *path, *method;
    } routes[] = {
        {"/api/run_sse/{session_id}", "post"},
        {"/api/run_sse/{session_id}", "get"},
        {"/api/sessions", "get"},
        {"/api/sessions/{session_id}", "get"},
        {"/api/sessions/{session_id}/analytics", "get"},
        {"/api/messages/{message_id}", "put"},
        {"/api/messages/{message_id}/continue", "post"},
        {"/api/messages/{message_id}", "delete"},
        {"/api/messages/{message_id}/regenerate", "post"},
        {"/api/messages/{message_id}/feedback", "post"},
        {"/api/messages/{message_id}/feedback", "get"},
        {"/api/messages/{message_id}/history", "get"},
        {"/api/messages/tasks/{task_id}/status", "get"},
        {"/api/messages/tasks/{task_id}/cancel", "post"},
        {"/healthz", "get"},
        {"/readyz", "get"},
        {"/metrics", "get"},
        {"/api/openapi.json", "get"},
    };
    for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++) {
        json_t *item = json_object_get (paths, routes[i].path);
        json_t *operation = item ? json_object_get (item, routes[i].method) : NULL;
        if (!json_is_object (operation))
            fail_msg ("openapi.json lacks %s %s", routes[i].method, routes[i].path);
        sa_obj (operation, "responses");
    }
    svc_response_free (&r);
}

static void
test_probes_metrics_headers (void **state)
{
    svc_mesh_t *mesh = *state;
    svc_response_t r;
    sa_req (mesh, "GET", "/healthz", NULL, NULL, 200, &r);
    assert_string_equal (sa_str (r.json, "status"), "ok");
    svc_response_free (&r);
    sa_req (mesh, "GET", "/readyz", NULL, NULL, 200, &r);
    assert_string_equal (sa_str (r.json, "status"), "ready");
    assert_string_equal (sa_str (r.json, "store"), "ok");
    assert_string_equal (sa_str (r.json, "broadcaster"), "ok");
    assert_string_equal (sa_str (r.json, "regenerator"), "ok");
    svc_response_free (&r);

    sa_req (mesh, "GET", "/metrics", NULL, NULL, 200, &r);
    char type[128];
    assert_int_equal (svc_response_header (&r, "Content-Type", type, sizeof type), 0);
    assert_true (sa_prefix (type, "text/plain"));
    static const char *names[] = {
        "# TYPE chatmesh_gateway_requests_total counter",
        "# TYPE chatmesh_gateway_request_duration_seconds histogram",
        "chatmesh_gateway_request_duration_seconds_bucket{le=\"+Inf\"}",
        "# TYPE chatmesh_gateway_requests_in_flight gauge",
        "# TYPE chatmesh_gateway_sse_connections gauge",
        "# TYPE chatmesh_gateway_sse_events_total counter",
        "# TYPE chatmesh_gateway_sse_dropped_total counter",
        "# TYPE chatmesh_gateway_backend_errors_total counter",
        "chatmesh_gateway_requests_total{route=\"readyz\",status=\"200\"}",
    };
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (!strstr (r.body, names[i]))
            fail_msg ("/metrics lacks '%s'", names[i]);
    svc_response_free (&r);

    //  Security headers: API answers are never cached or sniffed.
    char *token = svc_token (mesh, "leo", 600);
    char value[512];
    sa_req (mesh, "GET", "/api/sessions", token, NULL, 200, &r);
    assert_int_equal (svc_response_header (&r, "X-Content-Type-Options", value, sizeof value), 0);
    assert_string_equal (value, "nosniff");
    assert_int_equal (svc_response_header (&r, "Cache-Control", value, sizeof value), 0);
    assert_non_null (strstr (value, "no-store"));
    svc_response_free (&r);
    //  ...errors included.
    sa_req (mesh, "GET", "/api/sessions", NULL, NULL, 401, &r);
    assert_int_equal (svc_response_header (&r, "Cache-Control", value, sizeof value), 0);
    assert_non_null (strstr (value, "no-store"));
    svc_response_free (&r);
    //  The frontend carries a CSP.
    sa_req (mesh, "GET", "/", NULL, NULL, 200, &r);
    assert_int_equal (svc_response_header (&r, "Content-Type", value, sizeof value), 0);
    assert_true (sa_prefix (value, "text/html"));
    assert_int_equal (svc_response_header (&r, "Content-Security-Policy", value, sizeof value),
                      0);
    assert_non_null (strstr (value, "default-src 'self'"));
    assert_int_equal (svc_response_header (&r, "X-Content-Type-Options", value, sizeof value), 0);
    svc_response_free (&r);
    //  Unknown API path: JSON 404; wrong method: 405 with Allow.
    sa_req (mesh, "GET", "/api/nothing/here", token, NULL, 404, &r);
    sa_error (&r, 404, NULL);
    svc_response_free (&r);
    sa_req (mesh, "PATCH", "/api/sessions", token, NULL, 405, &r);
    sa_error (&r, 405, "method_not_allowed");
    assert_int_equal (svc_response_header (&r, "Allow", value, sizeof value), 0);
    assert_string_equal (value, "GET");
    svc_response_free (&r);
    free (token);
}

static void
test_cors_preflight (void **state)
{
    svc_mesh_t *mesh = *state;
    const char *base = svc_mesh_url (mesh);
    svc_response_t r;
    char value[512];
    sa_req_at (base, "OPTIONS", "/api/messages/msg_1_s_user", NULL, NULL, NULL,
               "Origin: " ORIGIN_OK, 204, &r);
    assert_int_equal (svc_response_header (&r, "Access-Control-Allow-Origin", value, sizeof value),
                      0);
    assert_string_equal (value, ORIGIN_OK);
    assert_int_equal (
        svc_response_header (&r, "Access-Control-Allow-Methods", value, sizeof value), 0);
    assert_non_null (strstr (value, "PUT"));
    assert_non_null (strstr (value, "DELETE"));
    assert_int_equal (
        svc_response_header (&r, "Access-Control-Allow-Headers", value, sizeof value), 0);
    assert_non_null (strstr (value, "Authorization"));
    assert_non_null (strstr (value, "Content-Type"));
    assert_int_equal (svc_response_header (&r, "Vary", value, sizeof value), 0);
    svc_response_free (&r);
    //  The second origin of the list works too.
    sa_req_at (base, "OPTIONS", "/api/sessions", NULL, NULL, NULL,
               "Origin: https://other.example", 204, &r);
    assert_int_equal (svc_response_header (&r, "Access-Control-Allow-Origin", value, sizeof value),
                      0);
    assert_string_equal (value, "https://other.example");
    svc_response_free (&r);
    //  A disallowed origin (also a prefix/suffix trick) gets no CORS headers.
    const char *bad[] = {"Origin: https://evil.example", "Origin: https://app.example.evil",
                         "Origin: https://app.exampl"};
    for (size_t i = 0; i < 3; i++) {
        sa_req_at (base, "OPTIONS", "/api/sessions", NULL, NULL, NULL, bad[i], 204, &r);
        if (svc_response_header (&r, "Access-Control-Allow-Origin", value, sizeof value) == 0)
            fail_msg ("%s was allowed", bad[i]);
        assert_int_not_equal (
            svc_response_header (&r, "Access-Control-Allow-Methods", value, sizeof value), 0);
        svc_response_free (&r);
    }
    //  An actual request from the allowed origin carries the header, and
    //  exposes Retry-After.
    char *token = svc_token (mesh, "mike", 600);
    sa_req_at (base, "GET", "/api/sessions", token, NULL, NULL, "Origin: " ORIGIN_OK, 200, &r);
    assert_int_equal (svc_response_header (&r, "Access-Control-Allow-Origin", value, sizeof value),
                      0);
    assert_string_equal (value, ORIGIN_OK);
    assert_int_equal (
        svc_response_header (&r, "Access-Control-Expose-Headers", value, sizeof value), 0);
    assert_non_null (strstr (value, "Retry-After"));
    //  A page of another origin may read what marks a replayed action too.
    assert_non_null (strstr (value, "Idempotent-Replayed"));
    svc_response_free (&r);
    free (token);
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_auth_failures_are_401),
        cmocka_unit_test (test_other_users_things_are_404),
        cmocka_unit_test (test_bad_requests_400_413_415),
        cmocka_unit_test (test_validation_422),
        cmocka_unit_test (test_openapi_lists_every_route),
        cmocka_unit_test (test_probes_metrics_headers),
        cmocka_unit_test (test_cors_preflight),
    };
    return cmocka_run_group_tests (tests, s_setup, svc_fixture_teardown);
}
