/*  svc_shards: sessions sharded over store shards (CHATMESH_STORE_SHARDS,
    docs/architecture.md "Sharding") on one machine. The mesh's store is
    shard "a"; stores "b", "c" (and later "d") run beside it, each with its
    own data directory; gateways and a regenerator with the shard list run
    as extra instances. Which shard holds a session is asked of each store
    directly (session_get), never inferred from the gateway.
    Shows: 300 sessions land on all three shards (none above 45%); every
    API call works whatever shard its session is on; the user's list
    merges every shard; a user's rate-limit budget is one over all shards
    (on the shard of the user id); with a fourth shard every old session is still
    reachable and stays put; SSE streams of sessions on every shard through
    one gateway, and a Last-Event-ID replayed from the store log of the
    shard that holds the session; kill -9 of one shard fails only its sessions
    (503), the others keep working, and the list has the others' sessions
    and names the shard that did not answer.                                        */
#include "svc_api_util.h"
#include "svc_json_util.h"

#include "cm_shard.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>

#define S_SESSIONS 300
#define S_USER "shard-user"

typedef struct {
    svc_mesh_t *mesh;
    char endpoint[4][400];   //  a, b, c, d
    int store_handle[4];     //  extra instances of b, c, d (a is the mesh's)
    char three[1300], four[1800]; //  the shard lists
    char gw3[64], gw4[64];   //  gateway base URLs
    char *token;
    int home[S_SESSIONS];    //  the shard (0..2) holding session i
} s_world_t;

static s_world_t s_w;

//  Polls base's /readyz until 200 (20 s at most).
static int
s_wait_ready (const char *base)
{
    for (int i = 0; i < 400; i++) {
        svc_response_t r;
        int rc = svc_http_at (base, "GET", "/readyz", NULL, NULL, NULL, NULL, &r);
        long status = r.status;
        svc_response_free (&r);
        if (rc == 0 && status == 200)
            return 0;
        usleep (50000);
    }
    return -1;
}

//  Store shard `letter` (1..3: b, c, d) on its own data directory.
static int
s_spawn_store (int index)
{
    char dir[400], data[500], endpoint[500];
    snprintf (dir, sizeof dir, "%s/shard-%c", svc_mesh_dir (s_w.mesh), 'a' + index);
    mkdir (dir, 0700);
    snprintf (data, sizeof data, "CHATMESH_DATA_DIR=%s", dir);
    snprintf (endpoint, sizeof endpoint, "CHATMESH_STORE_ENDPOINT=%s", s_w.endpoint[index]);
    const char *env[] = {data, endpoint, NULL};
    s_w.store_handle[index] = svc_mesh_spawn_extra (s_w.mesh, "store", env);
    return s_w.store_handle[index] < 0 ? -1 : 0;
}

//  A gateway with the shard list and env's settings (NULL: none); its URL.
static int
s_spawn_gateway (const char *list, const char *const *env, char *url, size_t url_size)
{
    char shards[1900], listen[80];
    snprintf (shards, sizeof shards, "CHATMESH_STORE_SHARDS=%s", list);
    int port = svc_free_port ();
    snprintf (listen, sizeof listen, "CHATMESH_HTTP_LISTEN=127.0.0.1:%d", port);
    snprintf (url, url_size, "http://127.0.0.1:%d", port);
    const char *gateway[8] = {shards, listen};
    for (int i = 0; env && env[i] && i < 5; i++)
        gateway[2 + i] = env[i];
    if (svc_mesh_spawn_extra (s_w.mesh, "gateway", gateway) < 0)
        return -1;
    return s_wait_ready (url);
}

//  A gateway and a regenerator with the shard list; the gateway's URL.
static int
s_spawn_sharded (const char *list, char *url, size_t url_size)
{
    char shards[1900];
    snprintf (shards, sizeof shards, "CHATMESH_STORE_SHARDS=%s", list);
    const char *regenerator[] = {shards, NULL};
    if (svc_mesh_spawn_extra (s_w.mesh, "regenerator", regenerator) < 0)
        return -1;
    return s_spawn_gateway (list, NULL, url, url_size);
}

static int
s_setup (void **state)
{
    (void) state;
    const char *env[] = {"CHAT_ACTIONS_RATE_LIMIT=0", "CHAT_REGENERATION_RATE_LIMIT=0",
                         "CHATMESH_BUILTIN_TOKENS_PER_SEC=0", "CHATMESH_STORE_SYNC=false", NULL};
    s_w.mesh = svc_mesh_start (env);
    if (!s_w.mesh)
        return -1;
    const char *dir = svc_mesh_dir (s_w.mesh);
    snprintf (s_w.endpoint[0], sizeof s_w.endpoint[0], "ipc://%s/sock/store", dir);
    for (int i = 1; i < 4; i++)
        snprintf (s_w.endpoint[i], sizeof s_w.endpoint[i], "ipc://%s/sock/store-%c", dir,
                  'a' + i);
    snprintf (s_w.three, sizeof s_w.three, "a=%s,b=%s,c=%s", s_w.endpoint[0], s_w.endpoint[1],
              s_w.endpoint[2]);
    snprintf (s_w.four, sizeof s_w.four, "%s,d=%s", s_w.three, s_w.endpoint[3]);
    if (s_spawn_store (1) || s_spawn_store (2)
        || s_spawn_sharded (s_w.three, s_w.gw3, sizeof s_w.gw3))
        return -1;
    s_w.token = svc_token (s_w.mesh, S_USER, 3600);
    return 0;
}

static int
s_teardown (void **state)
{
    (void) state;
    free (s_w.token);
    svc_mesh_stop (&s_w.mesh);
    return 0;
}

//  request (taken) straight to the store of shard index: its code, and
//  its reply in *reply_out (NULL: dropped).
static int
s_store_ask (int index, cm_envelope_t *request, cm_envelope_t **reply_out)
{
    zsock_t *dealer = cm_dealer_new (s_w.endpoint[index]);
    assert_non_null (dealer);
    zmq_pollitem_t item = {zsock_resolve (dealer), 0, ZMQ_POLLOUT, 0};
    assert_true (zmq_poll (&item, 1, 5000) > 0);
    cm_request_id (request->request_id, sizeof request->request_id);
    cm_envelope_t *reply = NULL;
    int code = cm_call (dealer, request, 5000, &reply);
    if (reply_out)
        *reply_out = reply;
    else
        cm_envelope_destroy (&reply);
    cm_envelope_destroy (&request);
    zsock_destroy (&dealer);
    return code;
}

static int
s_store_call (int index, cm_envelope_t *request)
{
    return s_store_ask (index, request, NULL);
}

//  session_get of session_id on shard index, straight to its store: 0
//  (held), CM_ENOTFOUND, or the failure.
static int
s_store_has (int index, const char *session_id)
{
    cm_envelope_t *request = cm_envelope_new (CM_MSG_SESSION_GET, NULL);
    cm_map_set_str (request->payload, "user", S_USER);
    cm_map_set_str (request->payload, "session_id", session_id);
    return s_store_call (index, request);
}

//  The one shard (of the first `count`) holding session_id; fails when it
//  is on none or on two.
static int
s_home (const char *session_id, int count)
{
    int home = -1;
    for (int i = 0; i < count; i++) {
        int rc = s_store_has (i, session_id);
        if (rc == 0) {
            if (home >= 0)
                fail_msg ("session %s on shards %d and %d", session_id, home, i);
            home = i;
        }
        else if (rc != CM_ENOTFOUND)
            fail_msg ("shard %d: session_get %s: %s", i, session_id, cm_strerror (rc));
    }
    if (home < 0)
        fail_msg ("session %s is on no shard", session_id);
    return home;
}

static void
s_session_id (int i, char *buffer, size_t size)
{
    snprintf (buffer, size, "shard-s-%d", i);
}

//  Polls the task's status on base until completed (30 s at most).
static void
s_wait_done (const char *base, const char *task_id)
{
    char path[200];
    snprintf (path, sizeof path, "/api/messages/tasks/%s/status", task_id);
    for (int i = 0; i < 1500; i++) {
        svc_response_t r;
        sa_req_at (base, "GET", path, s_w.token, NULL, NULL, NULL, 200, &r);
        const char *status = sa_str (r.json, "status");
        bool done = strcmp (status, "completed") == 0;
        if (!done && strcmp (status, "failed") == 0)
            fail_msg ("task %s failed: %.300s", task_id, r.body);
        svc_response_free (&r);
        if (done)
            return;
        usleep (20000);
    }
    fail_msg ("task %s not completed within 30 s", task_id);
}

static void
s_ok (const char *base, const char *method, const char *path, const char *body)
{
    svc_response_t r;
    sa_req_at (base, method, path, s_w.token, body, NULL, NULL, 200, &r);
    svc_response_free (&r);
}

//  300 sessions through the 3-shard gateway: each on exactly one shard,
//  the one cm_shards_pick names, and every shard holding 25..45%.
static void
test_sessions_land_on_all_three_shards (void **state)
{
    (void) state;
    cm_shards_t map;
    char why[200];
    assert_int_equal (cm_shards_parse (s_w.three, NULL, &map, why, sizeof why), 0);
    int counts[3] = {0};
    for (int i = 0; i < S_SESSIONS; i++) {
        char id[64];
        s_session_id (i, id, sizeof id);
        sa_turn_t turn;
        sa_turn_at (s_w.gw3, s_w.token, id, "hello shards", &turn);
        s_w.home[i] = s_home (id, 3);
        assert_int_equal (s_w.home[i], cm_shards_pick (&map, id));
        counts[s_w.home[i]]++;
    }
    printf ("300 sessions: a %d, b %d, c %d\n", counts[0], counts[1], counts[2]);
    for (int i = 0; i < 3; i++)
        if (counts[i] == 0 || counts[i] > S_SESSIONS * 45 / 100)
            fail_msg ("shard %c holds %d of %d sessions", 'a' + i, counts[i], S_SESSIONS);
}

//  The first session of each shard through every kind of request.
static void
test_every_call_works_on_every_shard (void **state)
{
    (void) state;
    for (int shard = 0; shard < 3; shard++) {
        int i = 0;
        while (s_w.home[i] != shard)
            i++;
        char id[64], path[600], body[200];
        s_session_id (i, id, sizeof id);
        const char *gw = s_w.gw3;
        sa_turn_t turn;
        sa_turn_at (gw, s_w.token, id, "second question", &turn);
        s_wait_done (gw, turn.task_id);
        snprintf (path, sizeof path, "/api/sessions/%s", id);
        s_ok (gw, "GET", path, NULL);
        s_ok (gw, "PATCH", path, "{\"title\": \"renamed\"}");
        snprintf (path, sizeof path, "/api/sessions/%s/export?format=json", id);
        s_ok (gw, "GET", path, NULL);
        snprintf (path, sizeof path, "/api/sessions/%s/analytics", id);
        s_ok (gw, "GET", path, NULL);
        snprintf (path, sizeof path, "/api/messages/%s/feedback", turn.assistant_id);
        s_ok (gw, "POST", path, "{\"feedback_type\": \"upvote\"}");
        s_ok (gw, "GET", path, NULL);
        s_ok (gw, "DELETE", path, NULL);
        snprintf (path, sizeof path, "/api/messages/%s/regenerate", turn.assistant_id);
        svc_response_t r;
        sa_req_at (gw, "POST", path, s_w.token, "{}", NULL, NULL, 200, &r);
        char task[80];
        snprintf (task, sizeof task, "%s", sa_str (sa_obj (r.json, "data"), "task_id"));
        svc_response_free (&r);
        s_wait_done (gw, task);
        snprintf (path, sizeof path, "/api/messages/%s/versions/1/activate", turn.assistant_id);
        s_ok (gw, "POST", path, NULL);
        snprintf (path, sizeof path, "/api/messages/%s", turn.user_id);
        snprintf (body, sizeof body, "{\"content\": \"edited on shard %c\"}", 'a' + shard);
        s_ok (gw, "PUT", path, body);
        snprintf (path, sizeof path, "/api/messages/%s/history", turn.user_id);
        s_ok (gw, "GET", path, NULL);
        snprintf (path, sizeof path, "/api/messages/%s?scope=following", turn.user_id);
        s_ok (gw, "DELETE", path, NULL);
        snprintf (path, sizeof path, "/api/messages/%s/restore", turn.user_id);
        s_ok (gw, "POST", path, NULL);
        svc_response_t head;
        svc_http_at (gw, "GET", "/api/sessions", s_w.token, NULL, NULL, NULL, &head);
        sa_want ("GET", "/api/sessions", 200, &head);
        svc_response_free (&head);
        snprintf (path, sizeof path, "/api/sessions/%s", id);
        s_ok (gw, "DELETE", path, NULL);
        snprintf (path, sizeof path, "/api/sessions/%s/restore", id);
        s_ok (gw, "POST", path, NULL);
        //  Still on its shard, and only there.
        assert_int_equal (s_home (id, 3), shard);
    }
}

//  A user's budget is one over all shards: through a gateway with 6
//  actions a minute, 6 turns spread over sessions of all three shards
//  pass (a refused request in between costs nothing) and the 7th is 429
//  rate_limited with Retry-After, on any shard; the bucket is on the
//  shard the user id ranks first, and full there.
static void
test_user_budget_is_one_over_all_shards (void **state)
{
    (void) state;
    const char *limits[] = {"CHAT_ACTIONS_RATE_LIMIT=6", "CHAT_REGENERATION_RATE_LIMIT=0", NULL};
    char gw[64];
    assert_int_equal (s_spawn_gateway (s_w.three, limits, gw, sizeof gw), 0);
    const char *user = "shard-rate-user";
    char *token = svc_token (s_w.mesh, user, 3600);
    cm_shards_t map;
    char why[200];
    assert_int_equal (cm_shards_parse (s_w.three, NULL, &map, why, sizeof why), 0);
    //  Two session ids on each shard.
    char ids[6][64];
    int found[3] = {0};
    for (int i = 0, n = 0; n < 6; i++) {
        char id[64];
        snprintf (id, sizeof id, "shard-rate-%d", i);
        int shard = cm_shards_pick (&map, id);
        if (found[shard] < 2) {
            snprintf (ids[shard * 2 + found[shard]++], sizeof ids[0], "%s", id);
            n++;
        }
    }
    for (int i = 0; i < 6; i++) {
        svc_response_t r;
        svc_turn_at (gw, token, ids[(i % 3) * 2 + i / 3], "within the budget", &r);
        sa_want ("POST", "/api/run_sse", 200, &r);
        svc_response_free (&r);
        if (i == 2) {
            //  Refused by the session's shard: its token is given back.
            svc_http_at (gw, "PATCH", "/api/sessions/shard-rate-missing", token,
                         "{\"title\": \"nothing\"}", NULL, NULL, &r);
            sa_error (&r, 404, "not_found");
            svc_response_free (&r);
        }
    }
    for (int shard = 0; shard < 3; shard++) {
        svc_response_t r;
        svc_turn_at (gw, token, ids[shard * 2], "over the budget", &r);
        sa_error (&r, 429, "rate_limited");
        assert_non_null (strstr (r.headers, "Retry-After: "));
        svc_response_free (&r);
    }
    int home = cm_shards_pick (&map, user);
    for (int shard = 0; shard < 3; shard++) {
        cm_envelope_t *consume = cm_envelope_new (CM_MSG_RATE_CONSUME, NULL);
        char key[200];
        snprintf (key, sizeof key, "a:%s", user);
        cm_map_set_str (consume->payload, "key", key);
        cm_map_set_int (consume->payload, "limit", 6);
        assert_int_equal (s_store_call (shard, consume), shard == home ? CM_ERATELIMIT : 0);
    }
    free (token);
}

//  Count of entries (a JSON array) whose field is value.
static size_t
s_count_field (const json_t *entries, const char *field, const char *value)
{
    size_t n = 0;
    for (size_t i = 0; i < json_array_size (entries); i++)
        n += strcmp (sa_str (json_array_get (entries, i), field), value) == 0;
    return n;
}

//  admin_audit_verify's entries on shard index, straight from its store.
static int64_t
s_store_audit_entries (int index)
{
    cm_envelope_t *request = cm_envelope_new (CM_MSG_ADMIN_AUDIT_VERIFY, NULL);
    cm_map_set_str (request->payload, "user", "shard-op");
    cm_envelope_t *reply = NULL;
    assert_int_equal (s_store_ask (index, request, &reply), 0);
    int64_t entries = cm_map_int (reply->payload, "entries", -1);
    cm_envelope_destroy (&reply);
    return entries;
}

//  The operators' views hold every shard: a downvote on an answer of each
//  shard is in the analytics (the user's and the model's downvotes, the
//  three reasons), in the audit (in pages of 2, newest first, each entry
//  once, and in the JSONL export), in /metrics; the chain's entries are
//  those of all three stores.
static void
test_admin_views_hold_every_shard (void **state)
{
    (void) state;
    const char *admins[] = {"CHATMESH_ADMIN_USERS=shard-op", NULL};
    char gw[64];
    assert_int_equal (s_spawn_gateway (s_w.three, admins, gw, sizeof gw), 0);
    const char *voter = "shard-voter";
    char *token = svc_token (s_w.mesh, voter, 3600), *op = svc_token (s_w.mesh, "shard-op", 3600);
    cm_shards_t map;
    char why[200];
    assert_int_equal (cm_shards_parse (s_w.three, NULL, &map, why, sizeof why), 0);
    bool voted[3] = {false};
    for (int i = 0, n = 0; n < 3; i++) {
        char id[64], path[600], body[100];
        snprintf (id, sizeof id, "shard-vote-%d", i);
        int shard = cm_shards_pick (&map, id);
        if (voted[shard])
            continue;
        voted[shard] = true;
        n++;
        sa_turn_t turn;
        sa_turn_at (gw, token, id, "a question to vote on", &turn);
        char *saved = s_w.token;
        s_w.token = token;
        s_wait_done (gw, turn.task_id);
        s_w.token = saved;
        snprintf (path, sizeof path, "/api/messages/%s/feedback", turn.assistant_id);
        snprintf (body, sizeof body, "{\"feedback_type\": \"downvote\", \"reason\": \"on %c\"}",
                  'a' + shard);
        svc_response_t r;
        sa_req_at (gw, "POST", path, token, body, NULL, NULL, 200, &r);
        svc_response_free (&r);
    }
    svc_response_t r;
    sa_req_at (gw, "GET", "/api/admin/analytics", op, NULL, NULL, NULL, 200, &r);
    const json_t *users = sa_arr (r.json, "users"), *models = sa_arr (r.json, "models");
    const json_t *row = NULL;
    for (size_t i = 0; i < json_array_size (users); i++)
        if (strcmp (sa_str (json_array_get (users, i), "user"), voter) == 0)
            row = json_array_get (users, i);
    assert_non_null (row);
    assert_int_equal (sa_int (row, "downvotes"), 3);
    assert_int_equal (sa_int (row, "turns"), 3);
    json_int_t downvotes = 0;
    const json_t *reasons = NULL;
    for (size_t i = 0; i < json_array_size (models); i++) {
        downvotes += sa_int (json_array_get (models, i), "downvotes");
        if (sa_int (json_array_get (models, i), "downvotes"))
            reasons = sa_arr (json_array_get (models, i), "top_down_reasons");
    }
    assert_int_equal (downvotes, 3);
    assert_int_equal (json_array_size (reasons), 3);
    static const char *const want[] = {"on a", "on b", "on c"};
    for (int i = 0; i < 3; i++) {
        assert_string_equal (sa_str (json_array_get (reasons, i), "reason"), want[i]);
        assert_int_equal (sa_int (json_array_get (reasons, i), "count"), 1);
    }
    svc_response_free (&r);

    //  The voter's audit in pages of 2: newest first, each entry once,
    //  the three votes and three turns of three shards.
    json_t *all = json_array ();
    char cursor[600] = "", last[64] = "~";
    int pages = 0;
    do {
        char path[800];
        snprintf (path, sizeof path, "/api/admin/audit?user=%s&limit=2%s%s", voter,
                  cursor[0] ? "&cursor=" : "", cursor);
        sa_req_at (gw, "GET", path, op, NULL, NULL, NULL, 200, &r);
        const json_t *entries = sa_arr (r.json, "entries");
        assert_true (json_array_size (entries) <= 2);
        for (size_t i = 0; i < json_array_size (entries); i++) {
            const json_t *entry = json_array_get (entries, i);
            const char *when = sa_str (entry, "created_at");
            if (strcmp (when, last) > 0)
                fail_msg ("entry at %s after one at %s", when, last);
            snprintf (last, sizeof last, "%s", when);
            if (s_count_field (all, "id", sa_str (entry, "id")))
                fail_msg ("entry %s came twice", sa_str (entry, "id"));
            json_array_append (all, (json_t *) entry);
        }
        const json_t *next = sa_get (r.json, "next_cursor");
        snprintf (cursor, sizeof cursor, "%s", json_is_string (next) ? json_string_value (next) : "");
        svc_response_free (&r);
    } while (cursor[0] && ++pages < 50);
    assert_int_equal (s_count_field (all, "action_type", "feedback"), 3);
    assert_int_equal (s_count_field (all, "action_type", "session_start"), 3);
    size_t sessions = 0;
    for (size_t i = 0; i < json_array_size (all); i++)
        sessions += strncmp (sa_str (json_array_get (all, i), "session_id"), "shard-vote-", 11) == 0;
    assert_int_equal (sessions, json_array_size (all));
    json_decref (all);

    //  The export: the three votes, one a line.
    char path[300];
    snprintf (path, sizeof path, "/api/admin/audit?user=%s&action=feedback", voter);
    sa_req_at (gw, "GET", path, op, NULL, NULL, "Accept: application/x-ndjson", 200, &r);
    size_t lines = 0;
    for (const char *p = r.body; (p = strchr (p, '\n')); p++)
        lines++;
    assert_int_equal (lines, 3);
    svc_response_free (&r);

    sa_req_at (gw, "GET", "/metrics", NULL, NULL, NULL, NULL, 200, &r);
    assert_non_null (
        strstr (r.body, "chatmesh_actions_total{model=\"builtin\",action=\"downvotes\"} 3\n"));
    svc_response_free (&r);

    sa_req_at (gw, "GET", "/api/admin/audit/verify", op, NULL, NULL, NULL, 200, &r);
    assert_true (json_is_true (sa_get (r.json, "sound")));
    assert_int_equal (sa_int (r.json, "entries"),
                      s_store_audit_entries (0) + s_store_audit_entries (1)
                          + s_store_audit_entries (2));
    svc_response_free (&r);
    free (token);
    free (op);
}

//  The user's list holds the sessions of every shard, in pages too.
static void
test_list_merges_every_shard (void **state)
{
    (void) state;
    bool seen[S_SESSIONS] = {false};
    int pages = 0, total = 0;
    char cursor[300] = "";
    do {
        char path[400];
        if (cursor[0])
            snprintf (path, sizeof path, "/api/sessions?limit=70&cursor=%s", cursor);
        else
            snprintf (path, sizeof path, "/api/sessions?limit=70");
        svc_response_t r;
        sa_req_at (s_w.gw3, "GET", path, s_w.token, NULL, NULL, NULL, 200, &r);
        json_t *list = sa_arr (r.json, "sessions");
        size_t n = json_array_size (list);
        assert_true (n <= 70);
        for (size_t j = 0; j < n; j++) {
            const char *id = sa_str (json_array_get (list, j), "session_id");
            int i = atoi (id + strlen ("shard-s-"));
            assert_true (i >= 0 && i < S_SESSIONS);
            if (seen[i])
                fail_msg ("session %s on two pages", id);
            seen[i] = true;
            total++;
        }
        json_t *next = sa_get (r.json, "next_cursor");
        cursor[0] = 0;
        if (json_is_string (next))
            snprintf (cursor, sizeof cursor, "%s", json_string_value (next));
        svc_response_free (&r);
        pages++;
    } while (cursor[0] && pages < 20);
    assert_int_equal (total, S_SESSIONS);
    assert_int_equal (pages, (S_SESSIONS + 69) / 70);
}

//  A fourth shard: every old session still answers through the 4-shard
//  gateway (those that rank d first too) and stays where it was; new
//  sessions reach d.
static void
test_fourth_shard_keeps_old_sessions_reachable (void **state)
{
    (void) state;
    assert_int_equal (s_spawn_store (3), 0);
    assert_int_equal (s_spawn_sharded (s_w.four, s_w.gw4, sizeof s_w.gw4), 0);
    cm_shards_t map;
    char why[200];
    assert_int_equal (cm_shards_parse (s_w.four, NULL, &map, why, sizeof why), 0);
    int rank_d = 0;
    for (int i = 0; i < S_SESSIONS; i++) {
        char id[64], path[200];
        s_session_id (i, id, sizeof id);
        snprintf (path, sizeof path, "/api/sessions/%s", id);
        s_ok (s_w.gw4, "GET", path, NULL);
        if (cm_shards_pick (&map, id) != 3)
            continue;
        //  A new turn on a session that now ranks d first stays put.
        if (rank_d++ < 10) {
            sa_turn_t turn;
            sa_turn_at (s_w.gw4, s_w.token, id, "after the fourth shard", &turn);
            assert_int_equal (s_home (id, 4), s_w.home[i]);
        }
    }
    printf ("%d of %d old sessions rank the new shard first\n", rank_d, S_SESSIONS);
    assert_true (rank_d > S_SESSIONS / 8 && rank_d < S_SESSIONS * 3 / 8);
    int on_d = 0;
    for (int i = 0; i < 40; i++) {
        char id[64];
        snprintf (id, sizeof id, "shard-new-%d", i);
        sa_turn_t turn;
        sa_turn_at (s_w.gw4, s_w.token, id, "a new session", &turn);
        int home = s_home (id, 4);
        assert_int_equal (home, cm_shards_pick (&map, id));
        on_d += home == 3;
        if (home == 3 && on_d == 1)
            s_wait_done (s_w.gw4, turn.task_id); //  d's tasks are claimed too
    }
    assert_true (on_d > 0);
}

//  Events after the stream's last one: the first replayed follows it
//  (same store epoch, next seq), and no resync.
static void
s_check_replay (svc_sse_t *sse, const char *last_id, const char *assistant)
{
    long long epoch, seq, first_epoch = -1, first_seq = -1;
    assert_int_equal (sscanf (last_id, "%lld-%lld", &epoch, &seq), 2);
    for (size_t i = 0; i < svc_sse_count (sse); i++) {
        const svc_event_t *event = svc_sse_at (sse, i);
        if (strcmp (event->event, "session_updated") == 0)
            assert_false (json_is_true (json_object_get (event->json, "resync")));
        if (strcmp (event->event, "feedback_submitted") == 0) {
            assert_string_equal (sa_str (event->json, "messageId"), assistant);
            if (first_epoch < 0)
                assert_int_equal (sscanf (event->id, "%lld-%lld", &first_epoch, &first_seq), 2);
        }
    }
    assert_int_equal (first_epoch, epoch);
    assert_int_equal (first_seq, seq + 1);
}

//  Streams through one 4-shard gateway, of a session on each of a, b, c
//  and of one that ranks d first but lives on an older shard: each gets
//  its own session's events. Then, with the streams closed, two votes on
//  each, and the broadcaster kill -9 and restarted (its history is
//  gone): a reconnect with Last-Event-ID is replayed from the store's log
//  of the shard that holds the session, exactly after that id.
static void
test_sse_streams_and_replays_every_shard (void **state)
{
    (void) state;
    cm_shards_t map;
    char why[200];
    assert_int_equal (cm_shards_parse (s_w.four, NULL, &map, why, sizeof why), 0);
    int picks[4] = {-1, -1, -1, -1};
    for (int i = 0; i < S_SESSIONS; i++) {
        char id[64];
        s_session_id (i, id, sizeof id);
        if (cm_shards_pick (&map, id) == 3) {
            if (picks[3] < 0)
                picks[3] = i;
        }
        else if (picks[s_w.home[i]] < 0)
            picks[s_w.home[i]] = i;
    }
    char ids[4][64], assistants[4][400], last[4][64];
    svc_sse_t *streams[4];
    for (int k = 0; k < 4; k++) {
        assert_true (picks[k] >= 0);
        s_session_id (picks[k], ids[k], sizeof ids[k]);
        sa_turn_t turn;
        sa_turn_at (s_w.gw4, s_w.token, ids[k], "a question to stream", &turn);
        s_wait_done (s_w.gw4, turn.task_id);
        snprintf (assistants[k], sizeof assistants[k], "%s", turn.assistant_id);
        char path[200];
        snprintf (path, sizeof path, "/api/run_sse/%s", ids[k]);
        streams[k] = svc_sse_open_at (s_w.gw4, path, s_w.token, NULL);
        assert_non_null (streams[k]);
        assert_non_null (svc_sse_wait (streams[k], "connection_status", 5000));
    }
    for (int k = 0; k < 4; k++) {
        char path[2048];
        snprintf (path, sizeof path, "/api/messages/%s/feedback", assistants[k]);
        s_ok (s_w.gw4, "POST", path, "{\"feedback_type\": \"upvote\"}");
        const svc_event_t *event = svc_sse_wait (streams[k], "feedback_submitted", 5000);
        assert_non_null (event);
        assert_string_equal (sa_str (event->json, "messageId"), assistants[k]);
        snprintf (last[k], sizeof last[k], "%s", event->id);
    }
    for (int k = 0; k < 4; k++) {
        //  Nothing of the other sessions came.
        for (size_t i = 0; i < svc_sse_count (streams[k]); i++) {
            const svc_event_t *event = svc_sse_at (streams[k], i);
            if (strcmp (event->event, "feedback_submitted") == 0)
                assert_string_equal (sa_str (event->json, "messageId"), assistants[k]);
        }
        svc_sse_close (&streams[k]);
    }
    for (int k = 0; k < 4; k++) {
        char path[2048];
        snprintf (path, sizeof path, "/api/messages/%s/feedback", assistants[k]);
        s_ok (s_w.gw4, "POST", path, "{\"feedback_type\": \"downvote\"}");
        s_ok (s_w.gw4, "POST", path, "{\"feedback_type\": \"upvote\"}");
    }
    assert_int_equal (svc_mesh_kill (s_w.mesh, "broadcaster", SIGKILL), 0);
    assert_int_equal (svc_mesh_spawn (s_w.mesh, "broadcaster"), 0);
    assert_int_equal (s_wait_ready (s_w.gw4), 0);
    for (int k = 0; k < 4; k++) {
        char path[200];
        snprintf (path, sizeof path, "/api/run_sse/%s", ids[k]);
        svc_sse_t *sse = svc_sse_open_at (s_w.gw4, path, s_w.token, last[k]);
        assert_non_null (sse);
        if (!svc_sse_wait_count (sse, "feedback_submitted", 2, 5000))
            fail_msg ("session %s (shard %d): the replay after %s did not come", ids[k], k,
                      last[k]);
        s_check_replay (sse, last[k], assistants[k]);
        svc_sse_close (&sse);
    }
}

//  kill -9 of shard b: its sessions get 503, the others answer as before,
//  new turns included; the list pages through the others' sessions with
//  unavailable_shards ["b"].
static void
test_killed_shard_fails_only_its_sessions (void **state)
{
    (void) state;
    assert_int_equal (svc_mesh_kill_extra (s_w.mesh, s_w.store_handle[1], SIGKILL), 0);
    int checked[3] = {0}, turns = 0;
    for (int i = 0; i < S_SESSIONS; i++) {
        int home = s_w.home[i];
        if (checked[home] >= 15)
            continue;
        checked[home]++;
        char id[64], path[200];
        s_session_id (i, id, sizeof id);
        snprintf (path, sizeof path, "/api/sessions/%s", id);
        svc_response_t r;
        svc_http_at (s_w.gw4, "GET", path, s_w.token, NULL, NULL, NULL, &r);
        if (home == 1)
            sa_error (&r, 503, "backend_unavailable");
        else
            sa_want ("GET", path, 200, &r);
        svc_response_free (&r);
        if (home != 1 && turns < 4) {
            sa_turn_t turn;
            sa_turn_at (s_w.gw4, s_w.token, id, "while b is down", &turn);
            s_wait_done (s_w.gw4, turn.task_id);
            turns++;
        }
    }
    assert_int_equal (checked[1], 15);
    //  The list: every page has the sessions of a, c and d only, and
    //  says b did not answer; paging still ends.
    int listed = 0, pages = 0;
    char cursor[300] = "";
    do {
        char path[400];
        snprintf (path, sizeof path, "/api/sessions?limit=100%s%s", cursor[0] ? "&cursor=" : "",
                  cursor);
        svc_response_t r;
        sa_req_at (s_w.gw4, "GET", path, s_w.token, NULL, NULL, NULL, 200, &r);
        const json_t *down = sa_arr (r.json, "unavailable_shards");
        assert_int_equal (json_array_size (down), 1);
        assert_string_equal (json_string_value (json_array_get (down, 0)), "b");
        const json_t *list = sa_arr (r.json, "sessions");
        for (size_t j = 0; j < json_array_size (list); j++) {
            const char *id = sa_str (json_array_get (list, j), "session_id");
            if (strncmp (id, "shard-s-", 8) == 0) {
                assert_int_not_equal (s_w.home[atoi (id + 8)], 1);
                listed++;
            }
        }
        const json_t *next = sa_get (r.json, "next_cursor");
        snprintf (cursor, sizeof cursor, "%s", json_is_string (next) ? json_string_value (next) : "");
        svc_response_free (&r);
    } while (cursor[0] && ++pages < 20);
    int elsewhere = 0;
    for (int i = 0; i < S_SESSIONS; i++)
        elsewhere += s_w.home[i] != 1;
    assert_int_equal (listed, elsewhere);
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_sessions_land_on_all_three_shards),
        cmocka_unit_test (test_every_call_works_on_every_shard),
        cmocka_unit_test (test_user_budget_is_one_over_all_shards),
        cmocka_unit_test (test_list_merges_every_shard),
        cmocka_unit_test (test_admin_views_hold_every_shard),
        cmocka_unit_test (test_fourth_shard_keeps_old_sessions_reachable),
        cmocka_unit_test (test_sse_streams_and_replays_every_shard),
        cmocka_unit_test (test_killed_shard_fails_only_its_sessions),
    };
    return cmocka_run_group_tests (tests, s_setup, s_teardown);
}
