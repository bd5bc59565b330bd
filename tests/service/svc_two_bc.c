/*  svc_two_bc: two broadcasters, both fed by the store; a kill -9 of one
    under SSE readers costs nothing.

    The mesh runs "broadcaster" and "broadcaster2" (svc_mesh_start_
    broadcasters): the store pushes every event to both, each gateway
    subscribes to both and keeps the first copy of each id. Readers on a
    few sessions watch votes go by while one broadcaster is killed with
    SIGKILL mid-run (and later the other, once the first is back). Every
    reader must get every vote's event exactly once, in order, with
    consecutive ids of one epoch, and no session_updated resync.

    Then, with both broadcasters' history cut to a few events per session,
    a reader that comes back through the other gateway with a
    Last-Event-ID older than either history holds gets the missed events
    from the store's log, no resync, as long as the store still keeps
    them (CHATMESH_STORE_EVENTS_KEEP events per session); one event more
    and the reader gets `resync`. (svc_fanout_kill is the same kill test
    at issue 27's scale: 1,000 readers on two gateways.)               */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "svc_fan.h"
#include "svc_harness.h"
#include "svc_json_util.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_SESSIONS 4
#define S_READERS_PER_SESSION 10
#define S_ROUNDS 30 //  votes per session; broadcasters die at rounds 10 and 20

static void
s_session (svc_mesh_t *mesh, const char *token, const char *session, char *assistant)
{
    char path[300];
    snprintf (path, sizeof path, "/api/run_sse/%s", session);
    svc_response_t response;
    assert_int_equal (svc_http (mesh, "POST", path, token, "{\"query\": \"two?\"}", &response),
                      0);
    assert_int_equal (response.status, 200);
    json_t *data = json_object_get (response.json, "data");
    snprintf (assistant, 400, "%s",
              json_string_value (json_object_get (data, "assistant_message_id")));
    char task[100];
    snprintf (task, sizeof task, "%s", svc_want_str (data, "task_id"));
    svc_response_free (&response);
    //  The first answer is complete: none of its events comes later.
    svc_want_task (mesh, token, task, 20000);
}

//  The reader's stream: no resync, ids of one epoch and consecutive (so
//  no event is missing or doubled), exactly `votes` vote events.
static void
s_check_reader (svc_sse_t *sse, int votes, const char *what)
{
    long long epoch = -1, seq = -1;
    int seen = 0;
    for (size_t i = 0; i < svc_sse_count (sse); i++) {
        const svc_event_t *event = svc_sse_at (sse, i);
        if (strcmp (event->event, "session_updated") == 0
            && json_is_true (json_object_get (event->json, "resync")))
            fail_msg ("%s: resync at event %zu", what, i);
        if (!event->id[0]) {
            assert_string_equal (event->event, "connection_status");
            continue;
        }
        long long e, s;
        assert_int_equal (sscanf (event->id, "%lld-%lld", &e, &s), 2);
        if (epoch >= 0 && (e != epoch || s != seq + 1))
            fail_msg ("%s: id %s after %lld-%lld", what, event->id, epoch, seq);
        epoch = e;
        seq = s;
        seen += strcmp (event->event, "feedback_submitted") == 0;
    }
    if (seen != votes)
        fail_msg ("%s: %d vote events for %d votes", what, seen, votes);
}

static void
test_kill_one_broadcaster_under_readers (void **state)
{
    svc_mesh_t *mesh = *state;
    char *token = svc_token (mesh, "erin", 600);
    char sessions[S_SESSIONS][32], assistants[S_SESSIONS][400];
    svc_sse_t *readers[S_SESSIONS][S_READERS_PER_SESSION];
    char probe_assistant[400];
    s_session (mesh, token, "two_bc_probe", probe_assistant);
    for (int s = 0; s < S_SESSIONS; s++) {
        snprintf (sessions[s], sizeof sessions[s], "two_bc_%d", s);
        s_session (mesh, token, sessions[s], assistants[s]);
        char path[200];
        snprintf (path, sizeof path, "/api/run_sse/%s", sessions[s]);
        for (int r = 0; r < S_READERS_PER_SESSION; r++) {
            readers[s][r] = svc_sse_open (mesh, path, token, NULL);
            assert_non_null (readers[s][r]);
            assert_non_null (svc_sse_wait (readers[s][r], "connection_status", 5000));
        }
    }
    for (int round = 0; round < S_ROUNDS; round++) {
        if (round == 10)
            assert_int_equal (svc_mesh_kill (mesh, "broadcaster", SIGKILL), 0);
        if (round == 15)
            assert_int_equal (svc_mesh_spawn (mesh, "broadcaster"), 0);
        if (round == 20) {
            //  The first is back and takes the store's events; only then
            //  does the other go. (A /readyz of 200 did not say so: the
            //  gateway's history calls may reach either broadcaster.) The
            //  store's PUSH may reconnect after rounds 15-19 were sent, so
            //  votes on a session nobody reads bring it events meanwhile.
            double deadline = svc_now_ms () + 20000;
            for (int probe = 0; svc_broadcaster_events_in (mesh, "") <= 0; probe++) {
                assert_true (svc_now_ms () < deadline);
                svc_want_vote (mesh, token, probe_assistant, probe);
            }
            assert_int_equal (svc_mesh_kill (mesh, "broadcaster2", SIGKILL), 0);
        }
        for (int s = 0; s < S_SESSIONS; s++)
            svc_want_vote (mesh, token, assistants[s], round);
    }
    for (int s = 0; s < S_SESSIONS; s++)
        for (int r = 0; r < S_READERS_PER_SESSION; r++) {
            char what[64];
            snprintf (what, sizeof what, "session %d reader %d", s, r);
            if (!svc_sse_wait_count (readers[s][r], "feedback_submitted", S_ROUNDS, 15000)) {
                size_t n = svc_sse_count (readers[s][r]);
                for (size_t i = 0; i < n; i++)
                    fprintf (stderr, "  %s %s\n", svc_sse_at (readers[s][r], i)->id,
                             svc_sse_at (readers[s][r], i)->event);
                fail_msg ("%s: not every vote arrived (%zu events, the last %s %s)", what, n,
                          n ? svc_sse_at (readers[s][r], n - 1)->event : "-",
                          n ? svc_sse_at (readers[s][r], n - 1)->id : "-");
            }
            assert_false (svc_sse_closed (readers[s][r]));
            s_check_reader (readers[s][r], S_ROUNDS, what);
            svc_sse_close (&readers[s][r]);
        }
    free (token);
}

//  History of 4 events per session in each broadcaster, 40 in the store.
#define S_HISTORY 4
#define S_KEEP 40

static long long
s_seq (const char *id)
{
    long long epoch, seq;
    return sscanf (id, "%lld-%lld", &epoch, &seq) == 2 ? seq : -1;
}

typedef struct {
    int reader;
    int type;
    size_t count;
} s_want_t;

//  The wanted reader holds at least count events of type (or closed).
static bool
s_has (const svc_fan_reader_t *reader, int index, void *arg)
{
    const s_want_t *want = arg;
    if (index != want->reader)
        return true;
    size_t n = 0;
    for (size_t i = 0; i < reader->count; i++)
        n += reader->events[i].type == want->type;
    return reader->closed || n >= want->count;
}

static void
test_replay_past_both_histories (void **state)
{
    svc_mesh_t *mesh = *state;
    assert_int_equal (svc_mesh_spawn_gateway2 (mesh, NULL), 0);
    int port2 = atoi (strrchr (svc_mesh_url2 (mesh), ':') + 1);
    char *token = svc_token (mesh, "frank", 600);
    char assistant[400];
    s_session (mesh, token, "two_bc_replay", assistant);
    svc_sse_t *sse = svc_sse_open (mesh, "/api/run_sse/two_bc_replay", token, NULL);
    assert_non_null (sse);
    assert_non_null (svc_sse_wait (sse, "connection_status", 5000));
    int votes = 0;
    svc_want_vote (mesh, token, assistant, votes++);
    const svc_event_t *seen = svc_sse_wait (sse, "feedback_submitted", 5000);
    assert_non_null (seen);
    char last_id[64];
    snprintf (last_id, sizeof last_id, "%s", seen->id);
    long long last = s_seq (last_id);
    svc_sse_close (&sse);

    svc_fan_t *fan = svc_fan_new (2);
    assert_non_null (fan);
    int feedback = svc_fan_type (fan, "feedback_submitted");
    int updated = svc_fan_type (fan, "session_updated");
    //  1. Exactly as many missed events as the store keeps, 10 times what
    //  a broadcaster holds: all replayed, from the store, in order.
    for (int i = 0; i < S_KEEP; i++)
        svc_want_vote (mesh, token, assistant, votes++);
    assert_int_equal (svc_fan_open (fan, port2, "/api/run_sse/two_bc_replay", token, last_id), 0);
    s_want_t want = {0, feedback, S_KEEP};
    assert_int_equal (svc_fan_wait (fan, s_has, &want, 10000), 0);
    //  and the stream goes on live after the replay.
    svc_want_vote (mesh, token, assistant, votes++);
    want.count = S_KEEP + 1;
    assert_int_equal (svc_fan_wait (fan, s_has, &want, 10000), 0);

    //  2. One more than the store keeps: resync, from the newest event on.
    long long newest = last + S_KEEP + 1;
    snprintf (last_id, sizeof last_id, "%lld-%lld", strtoll (last_id, NULL, 10), newest);
    for (int i = 0; i < S_KEEP + 1; i++)
        svc_want_vote (mesh, token, assistant, votes++);
    newest += S_KEEP + 1;
    assert_int_equal (svc_fan_open (fan, port2, "/api/run_sse/two_bc_replay", token, last_id), 1);
    want = (s_want_t) {1, updated, 1};
    assert_int_equal (svc_fan_wait (fan, s_has, &want, 10000), 0);
    svc_want_vote (mesh, token, assistant, votes++);
    want = (s_want_t) {1, feedback, 1};
    assert_int_equal (svc_fan_wait (fan, s_has, &want, 10000), 0);
    want = (s_want_t) {0, feedback, S_KEEP + 1 + S_KEEP + 1 + 1};
    assert_int_equal (svc_fan_wait (fan, s_has, &want, 10000), 0);
    svc_fan_stop (fan);

    const svc_fan_reader_t *replayed = svc_fan_reader (fan, 0);
    assert_int_equal (replayed->status, 200);
    assert_false (replayed->closed);
    assert_int_equal (replayed->resyncs, 0);
    size_t n = 0;
    for (size_t i = 0; i < replayed->count; i++) {
        const svc_fan_event_t *event = &replayed->events[i];
        if (event->seq < 0)
            continue; //  connection_status
        n++;
        assert_int_equal (event->type, feedback);
        assert_int_equal (event->seq, last + (long long) n);
    }
    //  (the votes of part 2 came live as well)
    assert_int_equal (n, S_KEEP + 1 + S_KEEP + 1 + 1);

    const svc_fan_reader_t *resynced = svc_fan_reader (fan, 1);
    assert_int_equal (resynced->status, 200);
    assert_int_equal (resynced->resyncs, 1);
    //  connection_status, the resync at the newest event, the next vote.
    assert_int_equal (resynced->count, 3);
    assert_int_equal (resynced->events[1].type, updated);
    assert_int_equal (resynced->events[1].seq, newest);
    assert_int_equal (resynced->events[2].type, feedback);
    assert_int_equal (resynced->events[2].seq, newest + 1);
    svc_fan_destroy (&fan);
    free (token);
}

static int
s_setup (void **state)
{
    //  120 votes in a few seconds: no rate limit in the way.
    const char *env[] = {"CHAT_ACTIONS_RATE_LIMIT=0", NULL};
    svc_mesh_t *mesh = svc_mesh_start_broadcasters (2, env);
    *state = mesh;
    return mesh ? 0 : -1;
}

static int
s_setup_short_history (void **state)
{
    char history[64], keep[64];
    snprintf (history, sizeof history, "CHATMESH_HISTORY_MAX_EVENTS=%d", S_HISTORY);
    snprintf (keep, sizeof keep, "CHATMESH_STORE_EVENTS_KEEP=%d", S_KEEP);
    const char *env[] = {"CHAT_ACTIONS_RATE_LIMIT=0", history, keep, NULL};
    svc_mesh_t *mesh = svc_mesh_start_broadcasters (2, env);
    *state = mesh;
    return mesh ? 0 : -1;
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown (test_kill_one_broadcaster_under_readers, s_setup,
                                         svc_fixture_teardown),
        cmocka_unit_test_setup_teardown (test_replay_past_both_histories, s_setup_short_history,
                                         svc_fixture_teardown),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
