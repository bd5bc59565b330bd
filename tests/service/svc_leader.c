/*  svc_leader: gateways and regenerators find the store's leader
    (cm_leader.h, docs/protocol.md "Following the leader").

    Beside the mesh's real store run two fake store nodes in this process
    (ROUTERs on ipc://): one always in an election ("leader unknown"), one
    a follower that answers every request "leader is <the real store>".
    The mesh's own regenerator is stopped; a gateway and a regenerator
    whose store list is "electing,follower,store" run as extra instances.
    Shows: every API call through that gateway works, a turn's
    regeneration is claimed and completed by that regenerator, and each
    process asked the fakes only while it learned the leader (a handful of
    requests in all, not one per call). A gateway whose only node is the
    follower (its hint names a node outside its list) answers 503, not a
    hang and not a wrong answer. Behind a frozen first node, a write
    without an Idempotency-Key is a 504 and never reaches the real store;
    with a key it is sent on and done once. A kill -9 and restart of the real store
    is a few 503s, then calls work again through the same gateway.       */
#include "svc_api_util.h"

#include "cm_leader.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/socket.h>

#define S_USER "leader-user"
#define S_CALLS 12

typedef struct {
    svc_mesh_t *mesh;
    char store[400], electing[400], follower[400], silent[400];
    zsock_t *electing_router, *follower_router, *silent_router;
    atomic_int electing_received, follower_received, silent_received;
    atomic_bool stop;
    pthread_t thread;
    char gw[64], lone_gw[64];
    char *token;
} s_world_t;

static s_world_t s_w;

//  Polls base + path until it answers want (20 s at most).
static int
s_wait_status (const char *base, const char *path, long want)
{
    for (int i = 0; i < 400; i++) {
        svc_response_t r;
        int rc = svc_http_at (base, "GET", path, NULL, NULL, NULL, NULL, &r);
        long status = r.status;
        svc_response_free (&r);
        if (rc == 0 && status == want)
            return 0;
        usleep (50000);
    }
    return -1;
}

//  Answers one request on a fake node with ENOTLEADER and message.
static void
s_refuse (zsock_t *router, const char *message, atomic_int *received)
{
    zmsg_t *msg = zmsg_recv (router);
    if (!msg)
        return;
    zframe_t *identity = zmsg_pop (msg);
    cm_envelope_t *request = NULL;
    if (cm_frame_decode (zmsg_last (msg), &request) == 0) {
        atomic_fetch_add (received, 1);
        cm_envelope_t *reply = cm_envelope_reply_error (request, CM_ENOTLEADER, message);
        cm_router_reply (router, identity, reply);
        cm_envelope_destroy (&reply);
    }
    cm_envelope_destroy (&request);
    zframe_destroy (&identity);
    zmsg_destroy (&msg);
}

static void *
s_fakes_run (void *arg)
{
    (void) arg;
    char hint[450];
    snprintf (hint, sizeof hint, "%s%s", CM_LEADER_IS, s_w.store);
    while (!atomic_load (&s_w.stop)) {
        zmq_pollitem_t items[] = {{zsock_resolve (s_w.electing_router), 0, ZMQ_POLLIN, 0},
                                  {zsock_resolve (s_w.follower_router), 0, ZMQ_POLLIN, 0},
                                  {zsock_resolve (s_w.silent_router), 0, ZMQ_POLLIN, 0}};
        if (zmq_poll (items, 3, 20) <= 0)
            continue;
        if (items[2].revents & ZMQ_POLLIN) {
            //  Takes the request and never answers (a frozen node).
            zmsg_t *msg = zmsg_recv (s_w.silent_router);
            if (msg)
                atomic_fetch_add (&s_w.silent_received, 1);
            zmsg_destroy (&msg);
        }
        if (items[0].revents & ZMQ_POLLIN)
            s_refuse (s_w.electing_router, CM_LEADER_UNKNOWN, &s_w.electing_received);
        if (items[1].revents & ZMQ_POLLIN)
            s_refuse (s_w.follower_router, hint, &s_w.follower_received);
    }
    return NULL;
}

//  An extra gateway with store list `list` on a free port (and one more
//  setting, or NULL); its URL.
static int
s_spawn_gateway_with (const char *list, const char *setting, char *url, size_t url_size)
{
    char store[1400], listen[80];
    snprintf (store, sizeof store, "CHATMESH_STORE_ENDPOINT=%s", list);
    int port = svc_free_port ();
    snprintf (listen, sizeof listen, "CHATMESH_HTTP_LISTEN=127.0.0.1:%d", port);
    snprintf (url, url_size, "http://127.0.0.1:%d", port);
    const char *env[] = {store, listen, setting, NULL};
    return svc_mesh_spawn_extra (s_w.mesh, "gateway", env) < 0 ? -1 : 0;
}

static int
s_spawn_gateway (const char *list, char *url, size_t url_size)
{
    return s_spawn_gateway_with (list, NULL, url, url_size);
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
    snprintf (s_w.store, sizeof s_w.store, "ipc://%s/sock/store", dir);
    snprintf (s_w.electing, sizeof s_w.electing, "ipc://%s/sock/store-electing", dir);
    snprintf (s_w.follower, sizeof s_w.follower, "ipc://%s/sock/store-follower", dir);
    snprintf (s_w.silent, sizeof s_w.silent, "ipc://%s/sock/store-silent", dir);
    s_w.electing_router = zsock_new_router (s_w.electing);
    s_w.follower_router = zsock_new_router (s_w.follower);
    s_w.silent_router = zsock_new_router (s_w.silent);
    if (!s_w.electing_router || !s_w.follower_router || !s_w.silent_router
        || pthread_create (&s_w.thread, NULL, s_fakes_run, NULL))
        return -1;
    //  Only the regenerator below may claim the turns' tasks.
    if (svc_mesh_kill (s_w.mesh, "regenerator", SIGTERM))
        return -1;
    char list[1300], store[1400];
    snprintf (list, sizeof list, "%s,%s,%s", s_w.electing, s_w.follower, s_w.store);
    snprintf (store, sizeof store, "CHATMESH_STORE_ENDPOINT=%s", list);
    const char *regenerator[] = {store, NULL};
    if (svc_mesh_spawn_extra (s_w.mesh, "regenerator", regenerator) < 0
        || s_spawn_gateway (list, s_w.gw, sizeof s_w.gw)
        || s_wait_status (s_w.gw, "/readyz", 200))
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
    atomic_store (&s_w.stop, true);
    pthread_join (s_w.thread, NULL);
    zsock_destroy (&s_w.electing_router);
    zsock_destroy (&s_w.follower_router);
    zsock_destroy (&s_w.silent_router);
    return 0;
}

//  One API call through base that must answer want; the response freed.
static void
s_ok (const char *base, const char *method, const char *path, const char *body, long want)
{
    svc_response_t r;
    sa_req_at (base, method, path, s_w.token, body, NULL, NULL, want, &r);
    svc_response_free (&r);
}

//  Polls the task's status through base until it is completed (20 s).
static void
s_wait_completed (const char *base, const char *task_id)
{
    char path[200];
    snprintf (path, sizeof path, "/api/messages/tasks/%s/status", task_id);
    for (int waited = 0;; waited += 20) {
        svc_response_t r;
        sa_req_at (base, "GET", path, s_w.token, NULL, NULL, NULL, 200, &r);
        const char *status = sa_str (r.json, "status");
        bool done = strcmp (status, "completed") == 0;
        if (!done && (strcmp (status, "failed") == 0 || waited >= 20000))
            fail_msg ("task %s is '%s': %.300s", task_id, status, r.body);
        svc_response_free (&r);
        if (done)
            return;
        usleep (20000);
    }
}

static void
test_api_and_regeneration_work_through_a_follower (void **state)
{
    (void) state;
    sa_turn_t turn;
    sa_turn_at (s_w.gw, s_w.token, "leader-s1", "hello through a follower", &turn);
    //  The regenerator claimed and completed it, following the leader too.
    s_wait_completed (s_w.gw, turn.task_id);
    char path[600];
    int calls = 0;
    for (int i = 0; i < S_CALLS / 4; i++, calls += 4) {
        s_ok (s_w.gw, "GET", "/api/sessions/leader-s1", NULL, 200);
        s_ok (s_w.gw, "PATCH", "/api/sessions/leader-s1", "{\"title\": \"followed\"}", 200);
        snprintf (path, sizeof path, "/api/messages/%s/feedback", turn.assistant_id);
        s_ok (s_w.gw, "POST", path, i % 2 ? "{\"feedback_type\": \"downvote\"}"
                                          : "{\"feedback_type\": \"upvote\"}", 200);
        s_ok (s_w.gw, "GET", path, NULL, 200);
    }
    snprintf (path, sizeof path, "/api/messages/%s/regenerate", turn.assistant_id);
    svc_response_t r;
    sa_req_at (s_w.gw, "POST", path, s_w.token, "{}", NULL, NULL, 200, &r);
    char task_id[80];
    snprintf (task_id, sizeof task_id, "%s", sa_str (sa_obj (r.json, "data"), "task_id"));
    svc_response_free (&r);
    s_wait_completed (s_w.gw, task_id);
    //  The session holds what the calls did (they reached the real store).
    sa_req_at (s_w.gw, "GET", "/api/sessions/leader-s1", s_w.token, NULL, NULL, NULL, 200, &r);
    assert_non_null (strstr (r.body, "followed"));
    svc_response_free (&r);

    //  Both fakes were asked (each process's first calls went round), and
    //  only while the leader was unknown: a few requests, not one a call.
    int electing = atomic_load (&s_w.electing_received);
    int follower = atomic_load (&s_w.follower_received);
    print_message ("%d API calls; fake nodes asked: electing %d, follower %d\n", calls + 4,
                   electing, follower);
    assert_true (electing >= 1);
    assert_true (follower >= 1);
    assert_true (electing + follower <= 12);
    //  The gateway's /metrics says what it followed and where calls go.
    sa_req_at (s_w.gw, "GET", "/metrics", NULL, NULL, NULL, NULL, 200, &r);
    char line[600];
    snprintf (line, sizeof line, "chatmesh_store_leader{shard=\"main\",node=\"%s\"} 1\n",
              s_w.store);
    assert_non_null (strstr (r.body, line));
    snprintf (line, sizeof line, "chatmesh_store_leader{shard=\"main\",node=\"%s\"} 0\n",
              s_w.follower);
    assert_non_null (strstr (r.body, line));
    const char *followed = strstr (r.body, "chatmesh_store_not_leader_total{shard=\"main\"} ");
    assert_non_null (followed);
    assert_true (atoi (followed + strlen ("chatmesh_store_not_leader_total{shard=\"main\"} ")) >= 2);
    svc_response_free (&r);
    int before = atomic_load (&s_w.electing_received) + atomic_load (&s_w.follower_received);
    for (int i = 0; i < S_CALLS; i++)
        s_ok (s_w.gw, "GET", "/api/sessions/leader-s1", NULL, 200);
    assert_int_equal (atomic_load (&s_w.electing_received)
                          + atomic_load (&s_w.follower_received),
                      before);
}

static void
test_a_hint_outside_the_list_is_a_503 (void **state)
{
    (void) state;
    assert_int_equal (s_spawn_gateway (s_w.follower, s_w.lone_gw, sizeof s_w.lone_gw), 0);
    assert_int_equal (s_wait_status (s_w.lone_gw, "/healthz", 200), 0);
    int before = atomic_load (&s_w.follower_received);
    svc_response_t r;
    double start = svc_now_ms ();
    sa_req_at (s_w.lone_gw, "GET", "/api/sessions/leader-s1", s_w.token, NULL, NULL, NULL, 503,
               &r);
    sa_error (&r, 503, "backend_unavailable");
    svc_response_free (&r);
    //  Bounded: the follower was asked a few times, at once (no budget
    //  spent waiting), and never made the gateway connect elsewhere.
    int asked = atomic_load (&s_w.follower_received) - before;
    assert_true (asked >= 1);
    assert_true (asked <= 2 * CM_LEADER_ATTEMPTS (1)); //  a /readyz probe may overlap
    assert_true (svc_now_ms () - start < 2000);
}

//  The title of leader-s1, read from the real store through the mesh's
//  own gateway, into title.
static void
s_title (char *title, size_t size)
{
    svc_response_t r;
    sa_req_at (svc_mesh_url (s_w.mesh), "GET", "/api/sessions/leader-s1", s_w.token, NULL, NULL,
               NULL, 200, &r);
    snprintf (title, size, "%s", sa_str (sa_obj (r.json, "session"), "title"));
    svc_response_free (&r);
}

//  A frozen node listed first (the gateway's first guess of the leader):
//  a write without an Idempotency-Key times out (504) and is NOT sent on
//  to the real store, so it did not happen twice, nor once behind the
//  client's back; the same write with a key is sent on and succeeds.
//  (Each gateway waits for /healthz only: /readyz would ping the store
//  and so learn the leader before the write.)
static void
test_a_write_is_resent_only_with_an_idempotency_key (void **state)
{
    (void) state;
    char list[900], plain_gw[64], keyed_gw[64], title[200];
    snprintf (list, sizeof list, "%s,%s", s_w.silent, s_w.store);
    const char *timeout = "CHATMESH_BACKEND_TIMEOUT_MS=1000";
    assert_int_equal (s_spawn_gateway_with (list, timeout, plain_gw, sizeof plain_gw), 0);
    assert_int_equal (s_spawn_gateway_with (list, timeout, keyed_gw, sizeof keyed_gw), 0);
    assert_int_equal (s_wait_status (plain_gw, "/healthz", 200), 0);
    assert_int_equal (s_wait_status (keyed_gw, "/healthz", 200), 0);
    s_title (title, sizeof title);
    assert_string_not_equal (title, "unkeyed");

    int silent = atomic_load (&s_w.silent_received);
    svc_response_t r;
    sa_req_at (plain_gw, "PATCH", "/api/sessions/leader-s1", s_w.token, "{\"title\": \"unkeyed\"}",
               NULL, NULL, 504, &r);
    sa_error (&r, 504, "backend_timeout");
    svc_response_free (&r);
    assert_int_equal (atomic_load (&s_w.silent_received), silent + 1);
    s_title (title, sizeof title);
    assert_string_not_equal (title, "unkeyed");

    sa_req_at (keyed_gw, "PATCH", "/api/sessions/leader-s1", s_w.token, "{\"title\": \"keyed\"}",
               NULL, "Idempotency-Key: leader-rename-1", 200, &r);
    svc_response_free (&r);
    assert_int_equal (atomic_load (&s_w.silent_received), silent + 2);
    s_title (title, sizeof title);
    assert_string_equal (title, "keyed");
}

//  The real store dies (kill -9) and comes back: meanwhile calls fail
//  fast as 503 (the fakes only point at it), then work again without a
//  gateway restart, whichever node the gateway last tried.
static void
test_the_leader_restarting_is_followed_again (void **state)
{
    (void) state;
    assert_int_equal (svc_mesh_kill (s_w.mesh, "store", SIGKILL), 0);
    svc_response_t r;
    double start = svc_now_ms ();
    sa_req_at (s_w.gw, "GET", "/api/sessions/leader-s1", s_w.token, NULL, NULL, NULL, 503, &r);
    svc_response_free (&r);
    assert_true (svc_now_ms () - start < 5000);
    assert_int_equal (svc_mesh_spawn (s_w.mesh, "store"), 0);
    assert_int_equal (s_wait_status (s_w.gw, "/readyz", 200), 0);
    s_ok (s_w.gw, "GET", "/api/sessions/leader-s1", NULL, 200);
    s_ok (s_w.gw, "PATCH", "/api/sessions/leader-s1", "{\"title\": \"after restart\"}", 200);
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_api_and_regeneration_work_through_a_follower),
        cmocka_unit_test (test_a_hint_outside_the_list_is_a_503),
        cmocka_unit_test (test_a_write_is_resent_only_with_an_idempotency_key),
        cmocka_unit_test (test_the_leader_restarting_is_followed_again),
    };
    return cmocka_run_group_tests (tests, s_setup, s_teardown);
}
