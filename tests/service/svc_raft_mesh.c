/*  svc_raft_mesh.c: the whole mesh on a raft-replicated store: three real
    store nodes (svc_cluster.h) under a broadcaster, a regenerator and a
    gateway (svc_mesh_start_external_store), the gateway and regenerator
    given all three client endpoints, every node pushing to the one
    broadcaster (only the leader publishes).

    - Through HTTP: a turn (run_sse), a vote and a regeneration, each seen
      by an SSE reader.
    - Failover under load: a thread votes without pause over a few
      sessions (each vote with its own Idempotency-Key, retried with the
      same key until a 2xx, recording every acknowledged one), an SSE
      reader per session. The node leading is killed -9 twice (the one
      killed first is restarted and caught up, so the second kill hits
      the other node that took over); before the first kill a regeneration
      starts on a session of its own. Writes must resume within 5 s of
      each kill; the regeneration must finish; afterwards every session's
      shown counts are those of its last acknowledged vote; each reader
      saw no resync, ids consecutive in one epoch (the events the new
      leader commits but does not publish come from the event log) and
      every acknowledged vote's feedbackId exactly once, in order. With
      the mesh stopped and every node at the same applied index, the
      three LMDBs hold the same records (st_fsm_digest).                */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "st_db.h"
#include "st_fsm.h"
#include "svc_cluster.h"
#include "svc_harness.h"
#include "svc_json_util.h"

#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define S_NODES 3
#define S_SESSIONS 3
#define S_ROUNDS 2
#define S_VOTES_MAX 4096
#define S_RESUME_MS 5000

typedef struct {
    svc_cluster_t *cluster;
    svc_mesh_t *mesh;
    char sock_dir[64];
} s_fixture_t;

static int
s_setup (void **state)
{
    s_fixture_t *fixture = calloc (1, sizeof *fixture);
    snprintf (fixture->sock_dir, sizeof fixture->sock_dir, "/tmp/svc_raft_mesh_XXXXXX");
    if (!mkdtemp (fixture->sock_dir)) {
        free (fixture);
        return -1;
    }
    *state = fixture; //  s_teardown stops whatever started
    char events[128];
    snprintf (events, sizeof events, "CHATMESH_EVENTS_IN_ENDPOINT=ipc://%s/events-in",
              fixture->sock_dir);
    const char *node_env[] = {events, "CHATMESH_LOG_LEVEL=info", NULL};
    fixture->cluster = svc_cluster_start (S_NODES, node_env);
    if (!fixture->cluster)
        return -1;
    char endpoints[600] = "CHATMESH_STORE_ENDPOINT=";
    for (int i = 0; i < S_NODES; i++) {
        if (i)
            strcat (endpoints, ",");
        strcat (endpoints, svc_cluster_endpoint (fixture->cluster, i));
    }
    //  A slow builtin answer, so a regeneration started before a kill is
    //  still streaming when the leader dies.
    const char *env[] = {endpoints, events, "CHAT_ACTIONS_RATE_LIMIT=0",
                         "CHAT_REGENERATION_RATE_LIMIT=0", "CHATMESH_BUILTIN_TOKENS_PER_SEC=20",
                         NULL};
    fixture->mesh = svc_mesh_start_external_store (env);
    return fixture->mesh ? 0 : -1;
}

static int
s_teardown (void **state)
{
    s_fixture_t *fixture = *state;
    if (!fixture)
        return 0;
    svc_mesh_stop (&fixture->mesh);
    svc_cluster_stop (&fixture->cluster);
    char command[128];
    snprintf (command, sizeof command, "rm -rf '%s'", fixture->sock_dir);
    if (system (command) != 0)
        fprintf (stderr, "svc_raft_mesh: could not remove %s\n", fixture->sock_dir);
    free (fixture);
    return 0;
}

//  A turn on a new session; its assistant message id into assistant (the
//  answer complete, so none of its events comes later).
static void
s_session (svc_mesh_t *mesh, const char *token, const char *session, char *assistant,
           size_t size)
{
    svc_response_t response;
    assert_int_equal (svc_turn (mesh, token, session, "replicated?", &response), 200);
    json_t *data = json_object_get (response.json, "data");
    snprintf (assistant, size, "%s", svc_want_str (data, "assistant_message_id"));
    char task[100];
    snprintf (task, sizeof task, "%s", svc_want_str (data, "task_id"));
    svc_response_free (&response);
    svc_want_task (mesh, token, task, 30000);
}

static svc_sse_t *
s_reader (svc_mesh_t *mesh, const char *token, const char *session)
{
    char path[200];
    snprintf (path, sizeof path, "/api/run_sse/%s", session);
    svc_sse_t *sse = svc_sse_open (mesh, path, token, NULL);
    assert_non_null (sse);
    assert_non_null (svc_sse_wait (sse, "connection_status", 5000));
    return sse;
}

//  Starts a regeneration of the message; its task id into task.
static void
s_regenerate (svc_mesh_t *mesh, const char *token, const char *message, char *task, size_t size)
{
    char path[200];
    snprintf (path, sizeof path, "/api/messages/%s/regenerate", message);
    json_t *json = svc_want_call (mesh, token, "POST", path, "{}", 200);
    snprintf (task, size, "%s", svc_want_str (json_object_get (json, "data"), "task_id"));
    json_decref (json);
}

//  The reader's stream: no resync, ids of one epoch and consecutive.
//  Its feedback_submitted feedbackIds into ids (up to max); their count.
static size_t
s_check_stream (svc_sse_t *sse, const char *what, char (*ids)[64], size_t max)
{
    long long epoch = -1, seq = -1;
    size_t votes = 0;
    for (size_t i = 0; i < svc_sse_count (sse); i++) {
        const svc_event_t *event = svc_sse_at (sse, i);
        if (strcmp (event->event, "session_updated") == 0
            && json_is_true (json_object_get (event->json, "resync")))
            fail_msg ("%s: resync at event %zu", what, i);
        if (!event->id[0])
            continue; //  connection_status
        long long e, s;
        assert_int_equal (sscanf (event->id, "%lld-%lld", &e, &s), 2);
        if (epoch >= 0 && (e != epoch || s != seq + 1))
            fail_msg ("%s: id %s after %lld-%lld (%s)", what, event->id, epoch, seq,
                      event->event);
        epoch = e;
        seq = s;
        if (strcmp (event->event, "feedback_submitted") == 0 && votes < max)
            snprintf (ids[votes++], 64, "%s", svc_want_str (event->json, "feedbackId"));
    }
    return votes;
}

static void
test_http_on_the_cluster (void **state)
{
    s_fixture_t *fixture = *state;
    svc_mesh_t *mesh = fixture->mesh;
    char *token = svc_token (mesh, "rm_http", 600);
    char assistant[200], task[100];
    s_session (mesh, token, "raft_mesh_http", assistant, sizeof assistant);
    svc_sse_t *sse = s_reader (mesh, token, "raft_mesh_http");
    svc_want_vote (mesh, token, assistant, 0);
    const svc_event_t *vote = svc_sse_wait (sse, "feedback_submitted", 10000);
    assert_non_null (vote);
    assert_string_equal (svc_want_str (vote->json, "messageId"), assistant);
    s_regenerate (mesh, token, assistant, task, sizeof task);
    assert_non_null (svc_sse_wait (sse, "message_regenerated", 30000));
    svc_want_task (mesh, token, task, 30000);
    char ids[4][64];
    assert_int_equal (s_check_stream (sse, "http reader", ids, 4), 1);
    svc_sse_close (&sse);
    free (token);
}

//  ---------------------------------------------------------------------------
//  The vote load (its own thread; HTTP only, the cluster is the main
//  thread's).

typedef struct {
    svc_mesh_t *mesh;
    const char *token;
    char (*assistants)[200];
    pthread_mutex_t lock;
    bool stop;
    size_t acked;
    double ack_ms[S_VOTES_MAX];     //  when the 2xx came
    double attempt_ms[S_VOTES_MAX]; //  when the attempt that got it was sent
    char feedback[S_VOTES_MAX][64];
    char failure[512]; //  set: the load stopped on it
} s_load_t;

static void *
s_load_run (void *arg)
{
    s_load_t *load = arg;
    for (size_t i = 0; i < S_VOTES_MAX; i++) {
        pthread_mutex_lock (&load->lock);
        bool stop = load->stop;
        pthread_mutex_unlock (&load->lock);
        if (stop)
            break;
        //  Votes go round the sessions; on one message they alternate, so
        //  each changes its counts.
        size_t session = i % S_SESSIONS;
        const char *body = (i / S_SESSIONS) % 2 ? "{\"feedback_type\": \"downvote\"}"
                                                : "{\"feedback_type\": \"upvote\"}";
        char path[300], key[64];
        snprintf (path, sizeof path, "/api/messages/%s/feedback", load->assistants[session]);
        snprintf (key, sizeof key, "Idempotency-Key: raft-mesh-vote-%zu", i);
        double deadline = svc_now_ms () + 30000;
        for (;;) {
            double sent = svc_now_ms ();
            svc_response_t response;
            int rc = svc_http_ex (load->mesh, "POST", path, load->token, body, NULL, key,
                                  &response);
            long status = rc ? 0 : response.status;
            const char *id = json_string_value (json_object_get (response.json, "feedback_id"));
            if (status == 200 && id) {
                pthread_mutex_lock (&load->lock);
                load->ack_ms[i] = svc_now_ms ();
                load->attempt_ms[i] = sent;
                snprintf (load->feedback[i], 64, "%s", id);
                load->acked = i + 1;
                pthread_mutex_unlock (&load->lock);
                svc_response_free (&response);
                break;
            }
            bool retry = status == 0 || status == 503 || status == 504;
            if (!retry || svc_now_ms () > deadline) {
                pthread_mutex_lock (&load->lock);
                snprintf (load->failure, sizeof load->failure, "vote %zu: %ld %.300s", i, status,
                          response.body ? response.body : "");
                pthread_mutex_unlock (&load->lock);
                svc_response_free (&response);
                return NULL;
            }
            svc_response_free (&response);
            usleep (50000);
        }
    }
    return NULL;
}

static size_t
s_acked (s_load_t *load)
{
    pthread_mutex_lock (&load->lock);
    size_t acked = load->acked;
    pthread_mutex_unlock (&load->lock);
    return acked;
}

//  Waits until the load acknowledged count votes (or failed). False at the
//  deadline.
static bool
s_wait_acked (s_load_t *load, size_t count, int timeout_ms)
{
    double deadline = svc_now_ms () + timeout_ms;
    while (svc_now_ms () < deadline) {
        pthread_mutex_lock (&load->lock);
        bool done = load->acked >= count || load->failure[0];
        pthread_mutex_unlock (&load->lock);
        if (done)
            return true;
        usleep (10000);
    }
    return false;
}

//  ms from the kill to the first vote acknowledged by an attempt sent
//  after it, or -1 at the deadline.
static double
s_resumed_after (s_load_t *load, double killed_ms, int timeout_ms)
{
    double deadline = svc_now_ms () + timeout_ms;
    while (svc_now_ms () < deadline) {
        pthread_mutex_lock (&load->lock);
        double resumed = -1;
        for (size_t i = 0; i < load->acked && resumed < 0; i++)
            if (load->attempt_ms[i] > killed_ms)
                resumed = load->ack_ms[i] - killed_ms;
        bool failed = load->failure[0];
        pthread_mutex_unlock (&load->lock);
        if (resumed >= 0 || failed)
            return resumed;
        usleep (10000);
    }
    return -1;
}

static void
s_wait_caught_up (svc_cluster_t *cluster, int node, int timeout_ms)
{
    double deadline = svc_now_ms () + timeout_ms;
    while (svc_now_ms () < deadline) {
        long long leader_applied = -1;
        int leader = svc_cluster_leader (cluster, &leader_applied);
        long long applied = svc_cluster_applied (cluster, node);
        if (leader >= 0 && applied >= 0 && applied >= leader_applied - 64)
            return;
        usleep (50000);
    }
    fail_msg ("node %d did not catch up in %d ms", node, timeout_ms);
}

static void
test_leader_killed_under_votes (void **state)
{
    s_fixture_t *fixture = *state;
    svc_mesh_t *mesh = fixture->mesh;
    char *token = svc_token (mesh, "rm_load", 600);
    static s_load_t load;
    char assistants[S_SESSIONS][200], sessions[S_SESSIONS][32];
    svc_sse_t *readers[S_SESSIONS];
    for (int s = 0; s < S_SESSIONS; s++) {
        snprintf (sessions[s], sizeof sessions[s], "raft_mesh_%d", s);
        s_session (mesh, token, sessions[s], assistants[s], sizeof assistants[s]);
        readers[s] = s_reader (mesh, token, sessions[s]);
    }
    char regen_message[200], regen_task[100];
    s_session (mesh, token, "raft_mesh_regen", regen_message, sizeof regen_message);
    svc_sse_t *regen_reader = s_reader (mesh, token, "raft_mesh_regen");

    load.mesh = mesh;
    load.token = token;
    load.assistants = assistants;
    pthread_mutex_init (&load.lock, NULL);
    pthread_t thread;
    assert_int_equal (pthread_create (&thread, NULL, s_load_run, &load), 0);
    int killed = -1;
    double first_kill_ms = 0;
    for (int round = 0; round < S_ROUNDS; round++) {
        assert_true (s_wait_acked (&load, s_acked (&load) + 30, 30000));
        assert_string_equal (load.failure, "");
        if (round == 0) {
            s_regenerate (mesh, token, regen_message, regen_task, sizeof regen_task);
            //  It streams: the kill lands mid-answer.
            assert_non_null (svc_sse_wait (regen_reader, "regeneration_progress", 10000));
        }
        int leader = svc_cluster_leader (fixture->cluster, NULL);
        assert_true (leader >= 0);
        assert_int_not_equal (leader, killed); //  the restarted node follows
        double killed_ms = svc_now_ms ();
        assert_int_equal (svc_cluster_kill (fixture->cluster, leader, SIGKILL), 0);
        killed = leader;
        if (round == 0)
            first_kill_ms = killed_ms;
        double resumed = s_resumed_after (&load, killed_ms, 20000);
        fprintf (stderr, "svc_raft_mesh: round %d killed node %d; votes resumed after %.0f ms\n",
                 round, leader + 1, resumed);
        assert_string_equal (load.failure, "");
        assert_true (resumed >= 0 && resumed < S_RESUME_MS);
        assert_int_equal (svc_cluster_spawn (fixture->cluster, leader), 0);
        s_wait_caught_up (fixture->cluster, leader, 30000);
        if (round == 0)
            svc_want_task (mesh, token, regen_task, 60000);
    }
    assert_true (s_wait_acked (&load, s_acked (&load) + 10, 30000));
    pthread_mutex_lock (&load.lock);
    load.stop = true;
    pthread_mutex_unlock (&load.lock);
    pthread_join (thread, NULL);
    assert_string_equal (load.failure, "");
    size_t acked = load.acked;
    fprintf (stderr, "svc_raft_mesh: %zu votes acknowledged\n", acked);

    //  Every session shows its last acknowledged vote.
    for (int s = 0; s < S_SESSIONS; s++) {
        size_t last = acked - 1;
        while (last % S_SESSIONS != (size_t) s)
            last--;
        bool up = (last / S_SESSIONS) % 2 == 0;
        char path[200];
        snprintf (path, sizeof path, "/api/sessions/%s", sessions[s]);
        json_t *json = svc_want_call (mesh, token, "GET", path, NULL, 200);
        json_t *messages = json_object_get (json_object_get (json, "session"), "messages");
        json_t *answer = json_array_get (messages, 1);
        assert_string_equal (svc_want_str (answer, "id"), assistants[s]);
        json_t *metadata = json_object_get (answer, "metadata");
        assert_int_equal (svc_want_int (metadata, "upvotes"), up ? 1 : 0);
        assert_int_equal (svc_want_int (metadata, "downvotes"), up ? 0 : 1);
        json_decref (json);
    }
    //  Every reader got each acknowledged vote once, in order, no resync.
    static char seen[S_VOTES_MAX][64];
    for (int s = 0; s < S_SESSIONS; s++) {
        size_t want = 0;
        for (size_t i = (size_t) s; i < acked; i += S_SESSIONS)
            want++;
        char what[64];
        snprintf (what, sizeof what, "session %d reader", s);
        if (!svc_sse_wait_count (readers[s], "feedback_submitted", want, 15000))
            fail_msg ("%s: fewer than %zu vote events", what, want);
        size_t votes = s_check_stream (readers[s], what, seen, S_VOTES_MAX);
        assert_int_equal (votes, want);
        size_t v = 0;
        for (size_t i = (size_t) s; i < acked; i += S_SESSIONS, v++)
            if (strcmp (seen[v], load.feedback[i]) != 0)
                fail_msg ("%s: vote event %zu is %s, acknowledged vote %zu was %s", what, v,
                          seen[v], i, load.feedback[i]);
        svc_sse_close (&readers[s]);
    }
    //  The regeneration was still running when the leader died.
    const svc_event_t *regenerated = svc_sse_wait (regen_reader, "message_regenerated", 10000);
    assert_non_null (regenerated);
    assert_true (regenerated->received_ms > first_kill_ms);
    char ids[4][64];
    s_check_stream (regen_reader, "regeneration reader", ids, 4);
    svc_sse_close (&regen_reader);
    pthread_mutex_destroy (&load.lock);
    free (token);

    //  Nothing writes any more: every node reaches the leader's applied
    //  index; stopped (followers first), the three LMDBs are the same.
    svc_mesh_stop (&fixture->mesh);
    double deadline = svc_now_ms () + 15000;
    int leader = -1;
    bool same = false;
    while (!same && svc_now_ms () < deadline) {
        long long applied = -1;
        leader = svc_cluster_leader (fixture->cluster, &applied);
        same = leader >= 0 && applied > 0;
        for (int i = 0; same && i < S_NODES; i++)
            same = svc_cluster_applied (fixture->cluster, i) == applied;
        if (!same)
            usleep (50000);
    }
    assert_true (same);
    for (int i = 0; i < S_NODES; i++)
        if (i != leader)
            assert_int_equal (svc_cluster_kill (fixture->cluster, i, SIGTERM), 0);
    assert_int_equal (svc_cluster_kill (fixture->cluster, leader, SIGTERM), 0);
    char digests[S_NODES][65];
    for (int i = 0; i < S_NODES; i++) {
        st_db_t *db = NULL;
        assert_int_equal (st_db_open (svc_cluster_store_dir (fixture->cluster, i), 1 << 20, false,
                                      &db), 0);
        assert_int_equal (st_fsm_digest (db, digests[i]), 0);
        st_db_destroy (&db);
        fprintf (stderr, "svc_raft_mesh: node %d: %s\n", i + 1, digests[i]);
    }
    assert_string_equal (digests[0], digests[1]);
    assert_string_equal (digests[0], digests[2]);
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_http_on_the_cluster),
        cmocka_unit_test (test_leader_killed_under_votes),
    };
    return cmocka_run_group_tests (tests, s_setup, s_teardown);
}
