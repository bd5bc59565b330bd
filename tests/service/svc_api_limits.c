/*  svc_api_limits: the API's answers that depend on time, load and
    failures, against the real binaries with TWO gateways on one store:
    409 for a second regeneration while one runs, cancel (and cancelling
    again), 429 with Retry-After from a rate limit shared by both gateways,
    503 with Retry-After (fast, never a hang) while the store is down and
    recovery by itself when it returns, 504 while the store is frozen
    (SIGSTOP), and /readyz naming the broadcaster when it is down.

    Regenerations are slow here (5 tokens/s) so one stays running, and the
    action budget is 5 per user per minute: each test uses its own users. */
#include "svc_api_util.h"

#include <pthread.h>
#include <signal.h>
#include <sys/types.h>

static int
s_setup (void **state)
{
    static const char *const env[] = {
        "CHATMESH_BUILTIN_TOKENS_PER_SEC=5",
        "CHAT_ACTIONS_RATE_LIMIT=5",
        "CHAT_REGENERATION_RATE_LIMIT=3",
        "CHATMESH_BACKEND_TIMEOUT_MS=1000",
        "CHATMESH_HTTP_THREADS=12",
        NULL,
    };
    if (svc_fixture_start (state, env))
        return -1;
    if (svc_mesh_spawn_gateway2 (*state, NULL)) {
        svc_fixture_teardown (state);
        return -1;
    }
    return 0;
}

//  ---------------------------------------------------------------------------

static void
test_conflict_and_cancel (void **state)
{
    svc_mesh_t *mesh = *state;
    char *token = svc_token (mesh, "nina", 600);
    sa_turn_t turn;
    sa_turn (mesh, token, "nina_slow", "a slow answer please", &turn); //  action 1
    //  The answer is being written (slowly): claimed, not finished.
    json_t *running = sa_wait_task (mesh, token, turn.task_id, "in_progress", 10000);
    assert_true (sa_int (running, "progress") < 100);
    sa_iso (running, "started_at");
    sa_null (running, "completed_at");
    json_decref (running);

    char regen[600], cancel[600];
    snprintf (regen, sizeof regen, "/api/messages/%s/regenerate", turn.assistant_id);
    svc_response_t r;
    //  A regeneration while the answer runs: 409.
    sa_req (mesh, "POST", regen, token, "{}", 409, &r);
    sa_error (&r, 409, "conflict");
    svc_response_free (&r);

    //  Cancel the answer: failed, "cancelled".
    snprintf (cancel, sizeof cancel, "/api/messages/tasks/%s/cancel", turn.task_id);
    sa_req (mesh, "POST", cancel, token, NULL, 200, &r); //  action 2
    sa_success (&r);
    sa_task_shape (r.json);
    sa_iso (r.json, "completed_at");
    assert_string_equal (sa_str (r.json, "task_id"), turn.task_id);
    assert_string_equal (sa_str (r.json, "status"), "failed");
    assert_string_equal (sa_str (r.json, "error_message"), "cancelled");
    svc_response_free (&r);
    json_t *failed = sa_wait_task (mesh, token, turn.task_id, "failed", 1000);
    assert_string_equal (sa_str (failed, "error_message"), "cancelled");
    sa_iso (failed, "completed_at");
    json_decref (failed);
    //  Cancelling again: the task already ended.
    sa_req (mesh, "POST", cancel, token, NULL, 409, &r);
    sa_error (&r, 409, "invalid_state");
    svc_response_free (&r);

    //  Now a regeneration starts; a second one while it runs is 409, on
    //  either gateway.
    sa_req (mesh, "POST", regen, token, "{\"temperature\": 0.3}", 200, &r); //  action 3
    char task[80];
    snprintf (task, sizeof task, "%s", sa_str (sa_obj (r.json, "data"), "task_id"));
    svc_response_free (&r);
    sa_req (mesh, "POST", regen, token, "{\"temperature\": 0.4}", 409, &r);
    sa_error (&r, 409, "conflict");
    svc_response_free (&r);
    sa_req_at (svc_mesh_url2 (mesh), "POST", regen, token, NULL, NULL, NULL, 409, &r);
    sa_error (&r, 409, "conflict");
    svc_response_free (&r);
    //  An edit that would regenerate that message conflicts too, and
    //  changes nothing.
    char edit[600];
    snprintf (edit, sizeof edit, "/api/messages/%s", turn.user_id);
    sa_req (mesh, "PUT", edit, token, "{\"content\": \"changed\"}", 409, &r);
    sa_error (&r, 409, "conflict");
    svc_response_free (&r);
    snprintf (edit, sizeof edit, "/api/messages/%s/history", turn.user_id);
    sa_req (mesh, "GET", edit, token, NULL, 200, &r);
    assert_int_equal (sa_int (r.json, "edit_count"), 0);
    svc_response_free (&r);
    //  The session shows the message as regenerating.
    sa_req (mesh, "GET", "/api/sessions/nina_slow", token, NULL, 200, &r);
    json_t *bot = json_array_get (sa_arr (sa_obj (r.json, "session"), "messages"), 1);
    assert_true (sa_bool (sa_obj (bot, "metadata"), "regenerating"));
    svc_response_free (&r);

    snprintf (cancel, sizeof cancel, "/api/messages/tasks/%s/cancel", task);
    sa_req (mesh, "POST", cancel, token, NULL, 200, &r); //  action 4
    assert_string_equal (sa_str (r.json, "error_message"), "cancelled");
    svc_response_free (&r);
    sa_req (mesh, "GET", "/api/sessions/nina_slow", token, NULL, 200, &r);
    bot = json_array_get (sa_arr (sa_obj (r.json, "session"), "messages"), 1);
    assert_false (sa_bool (sa_obj (bot, "metadata"), "regenerating"));
    svc_response_free (&r);
    sa_req (mesh, "GET", "/api/sessions/nina_slow/analytics", token, NULL, 200, &r);
    json_t *a = sa_obj (r.json, "analytics");
    assert_int_equal (sa_int (a, "regeneration_count"), 1);
    assert_int_equal (sa_int (a, "regeneration_failed"), 1);
    assert_true (sa_num (a, "regeneration_success_rate") == 0.0);
    svc_response_free (&r);
    free (token);
}

//  ---------------------------------------------------------------------------

static void
test_rate_limit_shared_by_gateways (void **state)
{
    svc_mesh_t *mesh = *state;
    const char *gw[2] = {svc_mesh_url (mesh), svc_mesh_url2 (mesh)};
    assert_string_not_equal (gw[0], gw[1]);
    char *token = svc_token (mesh, "olga", 600);
    sa_turn_t turn;
    sa_turn_at (gw[1], token, "olga_rl", "count my actions", &turn); //  action 1
    char path[600];
    snprintf (path, sizeof path, "/api/messages/%s/feedback", turn.assistant_id);
    svc_response_t r;
    //  Actions 2..5 alternate between the gateways: all pass.
    for (int i = 0; i < 4; i++) {
        sa_req_at (gw[i % 2], "POST", path, token,
                   i % 2 ? "{\"feedback_type\": \"downvote\"}" : "{\"feedback_type\": \"upvote\"}",
                   NULL, NULL, 200, &r);
        svc_response_free (&r);
    }
    //  The 6th is refused by either one: one budget, not one per replica.
    for (int i = 0; i < 2; i++) {
        sa_req_at (gw[i], "POST", path, token, "{\"feedback_type\": \"upvote\"}", NULL, NULL, 429,
                   &r);
        sa_error (&r, 429, "rate_limited");
        //  The window opened with action 1, a moment ago: most of the
        //  minute is left (seconds, not milliseconds).
        int seconds = sa_retry_after (&r);
        if (seconds < 45 || seconds > 60)
            fail_msg ("Retry-After %d s, expected the rest of a 60 s window", seconds);
        svc_response_free (&r);
    }
    //  A refused action changed nothing: the last accepted vote (downvote,
    //  action 5) stands.
    sa_req_at (gw[0], "GET", path, token, NULL, NULL, NULL, 200, &r);
    json_t *summary = sa_obj (r.json, "feedback_summary");
    assert_int_equal (sa_int (summary, "downvotes"), 1);
    assert_int_equal (sa_int (summary, "upvotes"), 0);
    svc_response_free (&r);
    //  Reads are not limited; other users have their own budget.
    sa_req_at (gw[1], "GET", "/api/sessions/olga_rl", token, NULL, NULL, NULL, 200, &r);
    svc_response_free (&r);
    //  Other mutations of the limited user are refused too, and change
    //  nothing.
    snprintf (path, sizeof path, "/api/messages/%s", turn.assistant_id);
    sa_req_at (gw[1], "DELETE", path, token, NULL, NULL, NULL, 429, &r);
    sa_retry_after (&r);
    svc_response_free (&r);
    sa_req_at (gw[0], "GET", "/api/sessions/olga_rl", token, NULL, NULL, NULL, 200, &r);
    assert_int_equal (sa_int (sa_obj (r.json, "session"), "message_count"), 2);
    svc_response_free (&r);
    char *other = svc_token (mesh, "pete", 600);
    sa_turn_at (gw[0], other, "pete_rl", "my own budget", &turn);
    free (other);
    free (token);
}

//  Two regenerations of one message sent at the same moment through the
//  two gateways: the store decides, exactly one runs.
typedef struct {
    const char *base, *path, *token;
    svc_response_t response;
} s_shot_t;

static void *
s_shoot (void *arg)
{
    s_shot_t *shot = arg;
    svc_http_at (shot->base, "POST", shot->path, shot->token, "{}", NULL, NULL, &shot->response);
    return NULL;
}

static void
test_concurrent_regenerations_one_wins (void **state)
{
    svc_mesh_t *mesh = *state;
    char *token = svc_token (mesh, "vera", 600);
    sa_turn_t turn;
    sa_turn (mesh, token, "vera_race", "race me", &turn); //  a1, r1
    char path[600];
    svc_response_t r;
    snprintf (path, sizeof path, "/api/messages/tasks/%s/cancel", turn.task_id);
    sa_req (mesh, "POST", path, token, NULL, 200, &r); //  a2
    svc_response_free (&r);
    snprintf (path, sizeof path, "/api/messages/%s/regenerate", turn.assistant_id);
    s_shot_t shots[2] = {{svc_mesh_url (mesh), path, token, {0}},
                         {svc_mesh_url2 (mesh), path, token, {0}}};
    pthread_t threads[2];
    for (int i = 0; i < 2; i++)
        assert_int_equal (pthread_create (&threads[i], NULL, s_shoot, &shots[i]), 0);
    for (int i = 0; i < 2; i++)
        pthread_join (threads[i], NULL);
    int ok = -1, conflicts = 0;
    for (int i = 0; i < 2; i++) {
        if (shots[i].response.status == 200)
            ok = i;
        else if (shots[i].response.status == 409)
            conflicts++;
        else
            fail_msg ("racing regenerate: %ld %s", shots[i].response.status,
                      shots[i].response.body);
    }
    assert_true (ok >= 0);
    assert_int_equal (conflicts, 1);
    char task[80];
    snprintf (task, sizeof task, "%s",
              sa_str (sa_obj (shots[ok].response.json, "data"), "task_id"));
    for (int i = 0; i < 2; i++)
        svc_response_free (&shots[i].response);
    snprintf (path, sizeof path, "/api/messages/tasks/%s/cancel", task);
    sa_req (mesh, "POST", path, token, NULL, 200, &r); //  a4
    svc_response_free (&r);
    sa_req (mesh, "GET", "/api/sessions/vera_race/analytics", token, NULL, 200, &r);
    assert_int_equal (sa_int (sa_obj (r.json, "analytics"), "regeneration_count"), 1);
    svc_response_free (&r);
    free (token);
}

//  CHAT_REGENERATION_RATE_LIMIT (3 here) is a budget of its own inside the
//  action budget (5): every answer started and every regeneration counts.
static void
test_regeneration_rate_limit (void **state)
{
    svc_mesh_t *mesh = *state;
    const char *gw[2] = {svc_mesh_url (mesh), svc_mesh_url2 (mesh)};
    char *token = svc_token (mesh, "tom", 600);
    sa_turn_t turn;
    for (int i = 0; i < 3; i++) //  a1..a3, r1..r3, across both gateways
        sa_turn_at (gw[i % 2], token, "tom_regen", "answer me", &turn);
    svc_response_t r;
    for (int i = 0; i < 2; i++) {
        sa_req_at (gw[i], "POST", "/api/run_sse/tom_regen", token, "{\"query\": \"once more\"}",
                   NULL, NULL, 429, &r);
        sa_error (&r, 429, "rate_limited");
        int seconds = sa_retry_after (&r);
        assert_true (seconds >= 1 && seconds <= 60);
        svc_response_free (&r);
    }
    //  The refused requests used no action: a vote (a4) still passes, and
    //  nothing of them was stored.
    char path[600];
    snprintf (path, sizeof path, "/api/messages/%s/feedback", turn.assistant_id);
    sa_req (mesh, "POST", path, token, "{\"feedback_type\": \"upvote\"}", 200, &r);
    svc_response_free (&r);
    sa_req (mesh, "GET", "/api/sessions/tom_regen", token, NULL, 200, &r);
    assert_int_equal (sa_int (sa_obj (r.json, "session"), "message_count"), 6);
    svc_response_free (&r);
    free (token);
}

//  ---------------------------------------------------------------------------

static void
test_store_down_503_then_recovers (void **state)
{
    svc_mesh_t *mesh = *state;
    char *token = svc_token (mesh, "quinn", 600);
    sa_turn_t turn;
    sa_turn (mesh, token, "quinn_down", "survive a crash", &turn);
    char path[600];
    snprintf (path, sizeof path, "/api/messages/%s/feedback", turn.assistant_id);
    assert_int_equal (svc_mesh_kill (mesh, "store", SIGKILL), 0);

    svc_response_t r;
    const char *gw[2] = {svc_mesh_url (mesh), svc_mesh_url2 (mesh)};
    //  Until a gateway's I/O thread has seen the connection drop, a call
    //  still goes out and times out (504): wait for both to know, as their
    //  /readyz tells, before timing the 503s.
    for (int i = 0; i < 2; i++) {
        long status = 0;
        for (double until = svc_now_ms () + 5000; status != 503 && svc_now_ms () < until;) {
            svc_http_at (gw[i], "GET", "/readyz", NULL, NULL, NULL, NULL, &r);
            status = r.status;
            svc_response_free (&r);
        }
        assert_int_equal (status, 503);
    }
    for (int i = 0; i < 2; i++) {
        double start = svc_now_ms ();
        sa_req_at (gw[i], "GET", "/api/sessions/quinn_down", token, NULL, NULL, NULL, 503, &r);
        double took = svc_now_ms () - start;
        sa_error (&r, 503, "backend_unavailable");
        sa_retry_after (&r);
        svc_response_free (&r);
        if (took > 1500)
            fail_msg ("503 took %.0f ms", took);
        start = svc_now_ms ();
        sa_req_at (gw[i], "POST", path, token, "{\"feedback_type\": \"upvote\"}", NULL, NULL, 503,
                   &r);
        took = svc_now_ms () - start;
        sa_error (&r, 503, "backend_unavailable");
        sa_retry_after (&r);
        svc_response_free (&r);
        if (took > 1500)
            fail_msg ("503 of a vote took %.0f ms", took);
    }
    sa_req (mesh, "GET", "/readyz", NULL, NULL, 503, &r);
    assert_string_equal (sa_str (r.json, "store"), "down");
    assert_non_null (strstr (sa_str (r.json, "error"), "store"));
    sa_retry_after (&r);
    svc_response_free (&r);
    //  Probes that need no backend still answer.
    sa_req (mesh, "GET", "/healthz", NULL, NULL, 200, &r);
    svc_response_free (&r);

    //  The store returns: both gateways recover by themselves.
    assert_int_equal (svc_mesh_spawn (mesh, "store"), 0);
    assert_int_equal (svc_mesh_wait_status (mesh, "/readyz", 200, 20000), 0);
    for (int i = 0; i < 2; i++) {
        long status = 0;
        for (int waited = 0; waited < 5000 && status != 200; waited += 20) {
            svc_response_t probe;
            svc_http_at (gw[i], "GET", "/api/sessions/quinn_down", token, NULL, NULL, NULL,
                         &probe);
            status = probe.status;
            svc_response_free (&probe);
            if (status != 200)
                usleep (20000);
        }
        assert_int_equal (status, 200);
    }
    sa_req (mesh, "POST", path, token, "{\"feedback_type\": \"upvote\"}", 200, &r);
    svc_response_free (&r);
    sa_req (mesh, "GET", "/api/sessions/quinn_down", token, NULL, 200, &r);
    assert_int_equal (sa_int (sa_obj (r.json, "session"), "message_count"), 2);
    svc_response_free (&r);
    free (token);
}

static void
test_store_frozen_504 (void **state)
{
    svc_mesh_t *mesh = *state;
    char *token = svc_token (mesh, "rita", 600);
    svc_response_t r;
    //  Calls borrow a DEALER to the store from the gateway's pool
    //  (gateway/gw_backend.h). A frozen store still accepts connections but
    //  completes no handshake, so a call on a DEALER not yet attached
    //  answers 503 (after 250 ms), one with an established link waits for
    //  the reply and answers 504. Warm the pool's links (this mesh runs 12
    //  workers) before freezing.
    for (int i = 0; i < 48; i++) {
        sa_req (mesh, "GET", "/api/sessions", token, NULL, 200, &r);
        svc_response_free (&r);
    }
    pid_t pid = svc_mesh_pid (mesh, "store");
    assert_true (pid > 0);
    assert_int_equal (kill (pid, SIGSTOP), 0);
    long statuses[6] = {0};
    double took[6] = {0};
    bool retry_after[6] = {false};
    int tries = 0, timeouts = 0;
    for (; tries < 6 && timeouts == 0; tries++) {
        double start = svc_now_ms ();
        svc_http (mesh, "GET", "/api/sessions", token, NULL, &r);
        took[tries] = svc_now_ms () - start;
        statuses[tries] = r.status;
        char value[32];
        retry_after[tries] = svc_response_header (&r, "Retry-After", value, sizeof value) == 0;
        if (r.status == 504 && r.json
            && strcmp (json_string_value (json_object_get (r.json, "code")), "backend_timeout")
                   == 0)
            timeouts++;
        svc_response_free (&r);
    }
    kill (pid, SIGCONT); //  before any assertion, so the mesh never stays frozen
    for (int i = 0; i < tries; i++) {
        if (statuses[i] != 503 && statuses[i] != 504)
            fail_msg ("frozen store: status %ld", statuses[i]);
        if (!retry_after[i])
            fail_msg ("frozen store: %ld without Retry-After", statuses[i]);
        //  CHATMESH_BACKEND_TIMEOUT_MS=1000: a 504 not before it, nothing
        //  much after it: never a hang.
        if (took[i] > 4000 || (statuses[i] == 504 && took[i] < 900))
            fail_msg ("frozen store: %ld after %.0f ms", statuses[i], took[i]);
    }
    if (timeouts == 0)
        fail_msg ("no 504 in %d requests to a frozen store", tries);
    //  Thawed: answers again (late replies to the timed-out call are dropped).
    long status = 0;
    for (int waited = 0; waited < 5000 && status != 200; waited += 20) {
        svc_http (mesh, "GET", "/api/sessions", token, NULL, &r);
        status = r.status;
        if (status == 200)
            sa_success (&r);
        svc_response_free (&r);
        if (status != 200)
            usleep (20000);
    }
    assert_int_equal (status, 200);
    free (token);
}

//  A GET timed from a thread of its own.
typedef struct {
    const char *base, *token;
    svc_response_t response;
    double took_ms;
} s_timed_get_t;

static void *
s_timed_get (void *arg)
{
    s_timed_get_t *get = arg;
    double start = svc_now_ms ();
    svc_http_at (get->base, "GET", "/api/sessions", get->token, NULL, NULL, NULL, &get->response);
    get->took_ms = svc_now_ms () - start;
    return NULL;
}

//  Runs n concurrent GETs, the ones from `later` on started later_ms after
//  the first ones; fills gets.
static void
s_concurrent_gets (svc_mesh_t *mesh, const char *token, s_timed_get_t *gets, int n, int later,
                   int later_ms)
{
    pthread_t threads[16];
    for (int i = 0; i < n; i++) {
        if (i == later)
            usleep ((useconds_t) later_ms * 1000); //  the load's shape, not a wait
        gets[i] = (s_timed_get_t) {svc_mesh_url (mesh), token, {0}, 0};
        assert_int_equal (pthread_create (&threads[i], NULL, s_timed_get, &gets[i]), 0);
    }
    for (int i = 0; i < n; i++)
        pthread_join (threads[i], NULL);
}

//  A frozen store with every backend socket busy: a request that waited for
//  a socket has only the rest of its CHATMESH_BACKEND_TIMEOUT_MS for the
//  reply, not a full timeout again (one budget per call). Two requests
//  take the two sockets; 200 ms later four more wait for them. Those get a
//  socket when the first two time out, 800 ms into their budget: with a
//  fresh timeout they would end about 1,800 ms after they began.
static void
test_frozen_store_busy_sockets_one_budget (void **state)
{
    (void) state; //  its own mesh: two backend sockets
    static const char *const env[] = {"CHATMESH_BACKEND_TIMEOUT_MS=1000",
                                      "CHATMESH_BACKEND_SOCKETS=2", "CHATMESH_HTTP_THREADS=12",
                                      NULL};
    svc_mesh_t *mesh = svc_mesh_start (env);
    assert_non_null (mesh);
    char *token = svc_token (mesh, "sami", 600);
    s_timed_get_t gets[6];
    s_concurrent_gets (mesh, token, gets, 2, 2, 0); //  both sockets connected
    for (int i = 0; i < 2; i++) {
        assert_int_equal (gets[i].response.status, 200);
        svc_response_free (&gets[i].response);
    }
    pid_t pid = svc_mesh_pid (mesh, "store");
    assert_true (pid > 0);
    assert_int_equal (kill (pid, SIGSTOP), 0);
    s_concurrent_gets (mesh, token, gets, 6, 2, 200);
    kill (pid, SIGCONT); //  before any assertion, so the mesh never stays frozen
    int timeouts = 0;
    for (int i = 0; i < 6; i++) {
        long status = gets[i].response.status;
        fprintf (stderr, "frozen store, 2 sockets, 6 requests: %ld after %.0f ms\n", status,
                 gets[i].took_ms);
        if (status != 503 && status != 504)
            fail_msg ("frozen store: status %ld", status);
        if (gets[i].took_ms > 1800) //  a fresh budget per wait would end near 2,000
            fail_msg ("frozen store: %ld after %.0f ms (budget 1000)", status, gets[i].took_ms);
        timeouts += status == 504;
        svc_response_free (&gets[i].response);
    }
    assert_true (timeouts >= 2); //  the two connected sockets waited for a reply
    assert_int_equal (svc_mesh_wait_status (mesh, "/readyz", 200, 10000), 0);
    free (token);
    svc_mesh_stop (&mesh);
}

static void
test_broadcaster_down_readyz_names_it (void **state)
{
    svc_mesh_t *mesh = *state;
    char *token = svc_token (mesh, "sam", 600);
    assert_int_equal (svc_mesh_kill (mesh, "broadcaster", SIGKILL), 0);
    assert_int_equal (svc_mesh_wait_status (mesh, "/readyz", 503, 5000), 0);
    svc_response_t r;
    sa_req (mesh, "GET", "/readyz", NULL, NULL, 503, &r);
    sa_error (&r, 503, "not_ready");
    assert_string_equal (sa_str (r.json, "broadcaster"), "down");
    assert_string_equal (sa_str (r.json, "store"), "ok");
    assert_non_null (strstr (sa_str (r.json, "error"), "broadcaster"));
    sa_retry_after (&r);
    svc_response_free (&r);
    //  The API itself still works: the store is the truth.
    sa_turn_t turn;
    sa_turn (mesh, token, "sam_nobc", "no broadcaster now", &turn);
    char path[600];
    snprintf (path, sizeof path, "/api/messages/%s/feedback", turn.assistant_id);
    sa_req (mesh, "POST", path, token, "{\"feedback_type\": \"upvote\"}", 200, &r);
    svc_response_free (&r);
    assert_int_equal (svc_mesh_spawn (mesh, "broadcaster"), 0);
    assert_int_equal (svc_mesh_wait_status (mesh, "/readyz", 200, 20000), 0);
    free (token);
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_conflict_and_cancel),
        cmocka_unit_test (test_rate_limit_shared_by_gateways),
        cmocka_unit_test (test_regeneration_rate_limit),
        cmocka_unit_test (test_concurrent_regenerations_one_wins),
        cmocka_unit_test (test_store_down_503_then_recovers),
        cmocka_unit_test (test_store_frozen_504),
        cmocka_unit_test (test_frozen_store_busy_sockets_one_budget),
        cmocka_unit_test (test_broadcaster_down_readyz_names_it),
    };
    return cmocka_run_group_tests (tests, s_setup, svc_fixture_teardown);
}
