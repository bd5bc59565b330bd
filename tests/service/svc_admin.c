/*  svc_admin: the operators' endpoints on the real four binaries
    (docs/api.md "Operators"). Three users act through the API; the
    operator then sees exactly the expected analytics and audit entries,
    pages through the audit once per entry (JSON and JSONL), the chain
    verifies; a non-operator gets 403 on every admin route the OpenAPI
    document lists; the counters survive kill -9 of the store; and a
    record changed in data.mdb behind the store's back is found, at its
    entry, by `chatmesh-store --verify-audit` and by the endpoint.       */
#include "svc_api_util.h"

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <time.h>

static const char *const s_env[] = {
    "CHATMESH_BUILTIN_TOKENS_PER_SEC=40",
    "CHATMESH_ADMIN_USERS=dora, ops",
    NULL,
};

static char *
s_admin_token (svc_mesh_t *mesh, const char *user)
{
    char claims[200];
    snprintf (claims, sizeof claims, "{\"sub\":\"%s\",\"role\":\"admin\",\"exp\":%lld}", user,
              (long long) time (NULL) + 3600);
    return svc_token_claims (mesh, claims, "HS256");
}

//  POST path with body; the task id of its data (when task_id is not NULL).
static void
s_post (svc_mesh_t *mesh, const char *token, const char *path, const char *body, char *task_id)
{
    svc_response_t r;
    sa_req (mesh, "POST", path, token, body, 200, &r);
    if (task_id)
        snprintf (task_id, 80, "%s", sa_str (sa_obj (r.json, "data"), "task_id"));
    svc_response_free (&r);
}

static void
s_done (svc_mesh_t *mesh, const char *token, const char *task_id, const char *want)
{
    json_t *task = sa_wait_task (mesh, token, task_id, want, 30000);
    json_decref (task);
}

static void
s_vote (svc_mesh_t *mesh, const char *token, const char *message, const char *body)
{
    char path[600];
    snprintf (path, sizeof path, "/api/messages/%s/feedback", message);
    s_post (mesh, token, path, body, NULL);
}

static void
s_regenerate (svc_mesh_t *mesh, const char *token, const char *message, char *task_id)
{
    char path[600];
    snprintf (path, sizeof path, "/api/messages/%s/regenerate", message);
    s_post (mesh, token, path, NULL, task_id);
}

//  The scripted run: 4 turns, 2 regenerations (one cancelled), 3 votes
//  (one replacing another), 1 delete, by alice, bob and carol.
static void
s_script (svc_mesh_t *mesh)
{
    char *alice = svc_token (mesh, "alice", 3600), *bob = svc_token (mesh, "bob", 3600),
         *carol = svc_token (mesh, "carol", 3600);
    char task[80];
    sa_turn_t a1, b1, b2, c1;
    sa_turn (mesh, alice, "adm_a", "tell me about granite", &a1);
    s_done (mesh, alice, a1.task_id, "completed");
    s_regenerate (mesh, alice, a1.assistant_id, task);
    s_done (mesh, alice, task, "completed");
    s_vote (mesh, alice, a1.assistant_id, "{\"feedback_type\":\"downvote\",\"reason\":\"too long\"}");
    s_vote (mesh, alice, a1.assistant_id, "{\"feedback_type\":\"upvote\"}");
    sa_turn (mesh, bob, "adm_b", "and basalt?", &b1);
    s_done (mesh, bob, b1.task_id, "completed");
    s_vote (mesh, bob, b1.assistant_id, "{\"feedback_type\":\"downvote\",\"reason\":\"wrong\"}");
    sa_turn (mesh, bob, "adm_b", "and obsidian?", &b2);
    s_done (mesh, bob, b2.task_id, "completed");
    char path[600];
    snprintf (path, sizeof path, "/api/messages/%s", b2.user_id);
    svc_response_t r;
    sa_req (mesh, "DELETE", path, bob, NULL, 200, &r);
    svc_response_free (&r);
    sa_turn (mesh, carol, "adm_c", "what is gneiss", &c1);
    s_done (mesh, carol, c1.task_id, "completed");
    s_regenerate (mesh, carol, c1.assistant_id, task);
    snprintf (path, sizeof path, "/api/messages/tasks/%s/cancel", task);
    s_post (mesh, carol, path, NULL, NULL);
    s_done (mesh, carol, task, "failed");
    free (alice);
    free (bob);
    free (carol);
}

static const json_t *
s_row (const json_t *rows, const char *label, const char *name)
{
    for (size_t i = 0; i < json_array_size (rows); i++)
        if (strcmp (svc_json_str (json_array_get (rows, i), label, NULL) ?: "", name) == 0)
            return json_array_get (rows, i);
    fail_msg ("no %s '%s' in %s", label, name, json_dumps (rows, JSON_COMPACT));
    return NULL;
}

static void
s_counts (const json_t *row, const char *const *names, const long long *want, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (sa_int (row, names[i]) != want[i])
            fail_msg ("%s is %lld, wanted %lld", names[i], (long long) sa_int (row, names[i]),
                      want[i]);
}

static const char *const s_names[] = {"turns",   "answers",  "regenerations", "edits",
                                      "deletes", "cancels",  "failures",      "upvotes",
                                      "downvotes"};
#define S_N (sizeof s_names / sizeof s_names[0])

//  GET /api/admin/analytics as the operator: the exact numbers.
static json_t *
s_analytics (svc_mesh_t *mesh, const char *op)
{
    svc_response_t r;
    sa_req (mesh, "GET", "/api/admin/analytics", op, NULL, 200, &r);
    sa_success (&r);
    json_t *json = json_incref (r.json);
    svc_response_free (&r);
    const json_t *models = sa_arr (json, "models");
    static const long long builtin[] = {0, 5, 2, 0, 0, 1, 0, 1, 2};
    static const long long dflt[] = {4, 0, 0, 0, 1, 0, 0, 0, 0};
    const json_t *b = s_row (models, "model", "builtin");
    s_counts (b, s_names, builtin, S_N);
    s_counts (s_row (models, "model", "default"), s_names, dflt, S_N);
    assert_true (json_real_value (sa_get (b, "regenerate_rate")) == 0.4);
    //  Generation times: bucket bounds (100 ms doubling), p50 <= p95.
    json_int_t p50 = sa_int (b, "p50_generation_ms"), p95 = sa_int (b, "p95_generation_ms");
    assert_true (p50 >= 100 && p50 <= p95 && p95 % 100 == 0);
    //  A generation's first text comes no later than its end.
    const json_t *first = sa_get (b, "p50_first_text_ms");
    assert_true (json_is_null (first) || json_integer_value (first) <= p50);
    assert_true (json_is_null (sa_get (s_row (models, "model", "default"), "p50_generation_ms")));
    const json_t *reasons = sa_arr (b, "top_down_reasons");
    assert_int_equal (json_array_size (reasons), 2);
    assert_string_equal (sa_str (json_array_get (reasons, 0), "reason"), "too long");
    assert_string_equal (sa_str (json_array_get (reasons, 1), "reason"), "wrong");
    const json_t *users = sa_arr (json, "users");
    static const long long alice[] = {1, 2, 1, 0, 0, 0, 0, 1, 1};
    static const long long bob[] = {2, 2, 0, 0, 1, 0, 0, 0, 1};
    static const long long carol[] = {1, 1, 1, 0, 0, 1, 0, 0, 0};
    s_counts (s_row (users, "user", "alice"), s_names, alice, S_N);
    s_counts (s_row (users, "user", "bob"), s_names, bob, S_N);
    s_counts (s_row (users, "user", "carol"), s_names, carol, S_N);
    return json;
}

//  Every audit entry, newest first, through pages of `limit` (JSON), each
//  id once; the page count is checked.
static json_t *
s_audit_pages (svc_mesh_t *mesh, const char *op, int limit, size_t want)
{
    json_t *all = json_array ();
    char cursor[600] = "";
    size_t pages = 0;
    do {
        char path[800];
        snprintf (path, sizeof path, "/api/admin/audit?limit=%d%s%s", limit,
                  cursor[0] ? "&cursor=" : "", cursor);
        svc_response_t r;
        sa_req (mesh, "GET", path, op, NULL, 200, &r);
        const json_t *entries = sa_arr (r.json, "entries");
        for (size_t i = 0; i < json_array_size (entries); i++) {
            const char *id = sa_str (json_array_get (entries, i), "id");
            for (size_t j = 0; j < json_array_size (all); j++)
                if (strcmp (sa_str (json_array_get (all, j), "id"), id) == 0)
                    fail_msg ("entry %s came twice", id);
            json_array_append (all, json_array_get (entries, i));
        }
        const json_t *next = sa_get (r.json, "next_cursor");
        snprintf (cursor, sizeof cursor, "%s", json_is_string (next) ? json_string_value (next) : "");
        svc_response_free (&r);
        pages++;
    } while (cursor[0]);
    assert_int_equal (json_array_size (all), want);
    assert_int_equal (pages, (want + (size_t) limit - 1) / (size_t) limit
                                 + (want % (size_t) limit == 0));
    return all;
}

//  A voter that votes until told to stop, counting the answers.
typedef struct {
    svc_mesh_t *mesh;
    char *token;
    char path[600];
    atomic_bool stop;
    atomic_int acked;      //  200
    atomic_int unanswered; //  no answer, or the store gone (may have committed)
} s_storm_t;

static void *
s_storm (void *arg)
{
    s_storm_t *storm = arg;
    for (int i = 0; !atomic_load (&storm->stop); i++) {
        svc_response_t r;
        int rc = svc_http_timed (storm->mesh, "POST", storm->path, storm->token,
                                 i % 2 ? "{\"feedback_type\":\"upvote\"}"
                                       : "{\"feedback_type\":\"downvote\"}",
                                 5000, &r);
        if (rc == 0 && r.status == 200)
            atomic_fetch_add (&storm->acked, 1);
        else if (rc != 0 || r.status >= 500)
            atomic_fetch_add (&storm->unanswered, 1);
        svc_response_free (&r);
    }
    return NULL;
}

static void
test_operators_insight (void **state)
{
    svc_mesh_t *mesh = *state;
    s_script (mesh);
    char *op = s_admin_token (mesh, "root"), *dora = svc_token (mesh, "dora", 3600);
    char *alice = svc_token (mesh, "alice", 3600);

    //  A non-operator gets 403 on every admin route the document lists;
    //  no token is 401; dora (CHATMESH_ADMIN_USERS) and root (role) pass.
    svc_response_t r;
    sa_req (mesh, "GET", "/api/openapi.json", NULL, NULL, 200, &r);
    const char *path;
    json_t *item;
    int admin_routes = 0;
    json_object_foreach (sa_obj (r.json, "paths"), path, item)
    {
        if (strncmp (path, "/api/admin/", 11) != 0)
            continue;
        admin_routes++;
        assert_non_null (json_object_get (json_object_get (json_object_get (item, "get"),
                                                           "responses"),
                                          "403"));
        svc_response_t denied;
        sa_req (mesh, "GET", path, alice, NULL, 403, &denied);
        assert_string_equal (sa_str (denied.json, "code"), "forbidden");
        svc_response_free (&denied);
        sa_req (mesh, "GET", path, NULL, NULL, 401, &denied);
        svc_response_free (&denied);
        sa_req (mesh, "GET", path, dora, NULL, 200, &denied);
        svc_response_free (&denied);
    }
    svc_response_free (&r);
    assert_int_equal (admin_routes, 3);

    //  The dashboard page and its modules are served (web/admin.html).
    static const char *const pages[][2] = {{"/admin.html", "js/admin.js"},
                                            {"/js/admin.js", "./dashboard.js"},
                                            {"/js/dashboard.js", "export function barChart"}};
    for (size_t i = 0; i < sizeof pages / sizeof pages[0]; i++) {
        sa_req (mesh, "GET", pages[i][0], NULL, NULL, 200, &r);
        assert_non_null (strstr (r.body, pages[i][1]));
        svc_response_free (&r);
    }

    json_t *before = s_analytics (mesh, op);

    //  The audit: 16 entries; carol's, newest first; the votes.
    json_t *all = s_audit_pages (mesh, op, 3, 16);
    json_t *again = s_audit_pages (mesh, op, 1000, 16);
    assert_true (json_equal (all, again));
    json_decref (again);
    sa_req (mesh, "GET", "/api/admin/audit?user=carol", op, NULL, 200, &r);
    const json_t *entries = sa_arr (r.json, "entries");
    static const char *const carol[] = {"regenerate_failed", "regenerate", "regenerate_complete",
                                        "session_start"};
    assert_int_equal (json_array_size (entries), 4);
    for (size_t i = 0; i < 4; i++)
        assert_string_equal (sa_str (json_array_get (entries, i), "action_type"), carol[i]);
    assert_string_equal (sa_str (sa_obj (json_array_get (entries, 0), "details"), "error"),
                         "cancelled");
    svc_response_free (&r);
    sa_req (mesh, "GET", "/api/admin/audit?action=feedback&session=adm_a", op, NULL, 200, &r);
    entries = sa_arr (r.json, "entries");
    assert_int_equal (json_array_size (entries), 2);
    //  The votes' details carry their reasons (the feedback export).
    assert_true (json_is_null (sa_get (sa_obj (json_array_get (entries, 0), "details"), "reason")));
    assert_string_equal (sa_str (sa_obj (json_array_get (entries, 1), "details"), "reason"),
                         "too long");
    svc_response_free (&r);
    sa_req (mesh, "GET", "/api/admin/audit?from=2000-01-01&to=2000-12-31", op, NULL, 200, &r);
    assert_int_equal (json_array_size (sa_arr (r.json, "entries")), 0);
    svc_response_free (&r);
    sa_req (mesh, "GET", "/api/admin/audit?limit=0", op, NULL, 422, &r);
    assert_string_equal (sa_str (r.json, "code"), "field_out_of_range");
    svc_response_free (&r);
    sa_req (mesh, "GET", "/api/admin/audit?cursor=xyz", op, NULL, 422, &r);
    svc_response_free (&r);

    //  JSONL: five lines, the same entries, the cursor in a header.
    sa_req_at (svc_mesh_url (mesh), "GET", "/api/admin/audit?limit=5", op, NULL, NULL,
               "Accept: application/x-ndjson", 200, &r);
    char type[100], next[600];
    assert_int_equal (svc_response_header (&r, "Content-Type", type, sizeof type), 0);
    assert_string_equal (type, "application/x-ndjson");
    assert_int_equal (svc_response_header (&r, "X-Next-Cursor", next, sizeof next), 0);
    size_t lines = 0;
    for (char *line = r.body, *end; (end = strchr (line, '\n')); line = end + 1, lines++) {
        json_t *entry = json_loadb (line, (size_t) (end - line), 0, NULL);
        assert_non_null (entry);
        assert_string_equal (sa_str (entry, "id"), sa_str (json_array_get (all, lines), "id"));
        json_decref (entry);
    }
    assert_int_equal (lines, 5);
    svc_response_free (&r);

    //  The chain verifies.
    sa_req (mesh, "GET", "/api/admin/audit/verify", op, NULL, 200, &r);
    assert_true (json_is_true (sa_get (r.json, "sound")));
    assert_int_equal (sa_int (r.json, "entries"), 16);
    assert_true (json_is_null (sa_get (r.json, "broken")));
    svc_response_free (&r);

    //  The same counters in /metrics.
    sa_req (mesh, "GET", "/metrics", NULL, NULL, 200, &r);
    assert_non_null (strstr (r.body, "chatmesh_actions_total{model=\"builtin\",action=\"answers\"} 5\n"));
    assert_non_null (strstr (r.body, "chatmesh_actions_total{model=\"default\",action=\"turns\"} 4\n"));
    assert_non_null (strstr (r.body, "chatmesh_actions_total{model=\"builtin\",action=\"cancels\"} 1\n"));
    svc_response_free (&r);

    //  kill -9: the counters were in the commits.
    assert_int_equal (svc_mesh_kill (mesh, "store", SIGKILL), 0);
    assert_int_equal (svc_mesh_spawn (mesh, "store"), 0);
    assert_int_equal (svc_mesh_wait_status (mesh, "/readyz", 200, 20000), 0);
    json_t *after = s_analytics (mesh, op);
    sa_req (mesh, "GET", "/api/admin/audit/verify", op, NULL, 200, &r);
    assert_true (json_is_true (sa_get (r.json, "sound")));
    assert_int_equal (sa_int (r.json, "entries"), 16);
    svc_response_free (&r);
    sa_req (mesh, "GET", "/metrics", NULL, NULL, 200, &r);
    assert_non_null (strstr (r.body, "chatmesh_actions_total{model=\"builtin\",action=\"answers\"} 5\n"));
    svc_response_free (&r);
    assert_true (json_equal (sa_get (before, "models"), sa_get (after, "models")));
    assert_true (json_equal (sa_get (before, "users"), sa_get (after, "users")));
    json_decref (after);
    json_decref (before);

    //  kill -9 in the middle of a stream of votes: every acknowledged vote
    //  is counted, at most the unanswered ones besides, and the chain is
    //  sound (entries, head and counters share each commit).
    s_storm_t storm = {.mesh = mesh, .token = svc_token (mesh, "erin", 3600)};
    sa_turn_t e1;
    sa_turn (mesh, storm.token, "adm_e", "what is schist", &e1);
    s_done (mesh, storm.token, e1.task_id, "completed");
    snprintf (storm.path, sizeof storm.path, "/api/messages/%s/feedback", e1.assistant_id);
    pthread_t voter;
    assert_int_equal (pthread_create (&voter, NULL, s_storm, &storm), 0);
    for (int waited = 0; atomic_load (&storm.acked) < 15 && waited < 30000; waited += 5)
        usleep (5000);
    assert_true (atomic_load (&storm.acked) >= 15);
    assert_int_equal (svc_mesh_kill (mesh, "store", SIGKILL), 0);
    atomic_store (&storm.stop, true);
    pthread_join (voter, NULL);
    assert_int_equal (svc_mesh_spawn (mesh, "store"), 0);
    assert_int_equal (svc_mesh_wait_status (mesh, "/readyz", 200, 20000), 0);
    sa_req (mesh, "GET", "/api/admin/analytics", op, NULL, 200, &r);
    const json_t *erin = s_row (sa_arr (r.json, "users"), "user", "erin");
    long long counted = (long long) (sa_int (erin, "upvotes") + sa_int (erin, "downvotes"));
    int acked = atomic_load (&storm.acked), unanswered = atomic_load (&storm.unanswered);
    if (counted < acked || counted > acked + unanswered)
        fail_msg ("%lld votes counted, %d acknowledged, %d unanswered", counted, acked,
                  unanswered);
    svc_response_free (&r);
    sa_req (mesh, "GET", "/api/admin/audit/verify", op, NULL, 200, &r);
    assert_true (json_is_true (sa_get (r.json, "sound")));
    assert_int_equal (sa_int (r.json, "entries"), 16 + 2 + counted);
    svc_response_free (&r);
    free (storm.token);

    //  Change the fifth entry (1 = oldest) in data.mdb with the store down:
    //  every copy of its id in a record value ("id" then the id) loses a
    //  letter.
    const char *victim = sa_str (json_array_get (all, 16 - 5), "id");
    assert_int_equal (svc_mesh_kill (mesh, "store", SIGTERM), 0);
    char dir[600], data[700], output[4096], command[1400];
    snprintf (dir, sizeof dir, "%s/store", svc_mesh_dir (mesh));
    snprintf (data, sizeof data, "%s/data.mdb", dir);
    size_t size;
    char *bytes = svc_read_bytes (data, &size);
    assert_non_null (bytes);
    size_t len = strlen (victim), flipped = 0;
    //  The id is 36 bytes: msgpack's str8 header (0xd9, 36) follows "id".
    for (size_t at = 5; at + len <= size; at++)
        if (memcmp (bytes + at, victim, len) == 0
            && memcmp (bytes + at - 5, "\xa2id\xd9", 4) == 0) {
            bytes[at + len - 1] ^= 0x01;
            flipped++;
        }
    assert_true (flipped >= 1);
    FILE *file = fopen (data, "r+b");
    assert_non_null (file);
    assert_int_equal (fwrite (bytes, 1, size, file), size);
    fclose (file);
    free (bytes);
    snprintf (command, sizeof command, "%s/store/chatmesh-store --verify-audit %s 2>&1",
              getenv ("CHATMESH_BIN_DIR"), dir);
    assert_int_equal (svc_run (command, output, sizeof output), 1);
    assert_non_null (strstr (output, "broken at entry 5"));
    assert_non_null (strstr (output, victim));
    assert_int_equal (svc_mesh_spawn (mesh, "store"), 0);
    assert_int_equal (svc_mesh_wait_status (mesh, "/readyz", 200, 20000), 0);
    sa_req (mesh, "GET", "/api/admin/audit/verify", op, NULL, 200, &r);
    assert_true (json_is_false (sa_get (r.json, "sound")));
    const json_t *broken = sa_obj (r.json, "broken");
    assert_int_equal (sa_int (broken, "index"), 5);
    assert_string_equal (sa_str (broken, "id"), victim);
    assert_string_equal (sa_str (broken, "previous_id"), sa_str (json_array_get (all, 16 - 4), "id"));
    svc_response_free (&r);
    json_decref (all);
    free (op);
    free (dora);
    free (alice);
}

static int
s_setup (void **state)
{
    return svc_fixture_start (state, s_env);
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown (test_operators_insight, s_setup, svc_fixture_teardown),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
