/*  svc_chaos: mixed load while every service in turn is killed with -9.

    For CHATMESH_CHAOS_SECONDS (default 60) two workers run session starts,
    votes, edits, deletes, regenerations and version switches on 20
    sessions of 4 users, with a 5 s client timeout, while 200 SSE readers
    (raw sockets, one poll thread) follow the sessions. Store, broadcaster,
    regenerator and gateway are each killed with SIGKILL and restarted.
    Then:
    - every acknowledged (200) vote (on the version it was given on), edit
      (a version of its question, each edit starting a branch) and delete
      is what the store's tree (the JSON export, every branch) holds, no
      acknowledged version is gone, every message shows one of its
      versions: the acknowledged switch (of an answer or a question),
      unless a regeneration completed after it; the active path (GET) is
      the tree's messages at versions they have, and every branch hangs
      under a question version that exists;
    - every accepted task ends completed or failed within a bound;
    - every reader saw strictly increasing ids within an epoch, with no gap
      unless a session_updated resync came first, and after the gateway's
      death reconnected with Last-Event-ID;
    - no request hung: each got an answer within the client timeout, a
      503/504 while a backend was down, never any other 5xx.             */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "svc_harness.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#define S_USERS 4
#define S_SESSIONS 20
#define S_READERS 200
#define S_WORKERS 2
#define S_MSGS 256
#define S_TASKS 2048
#define S_CLIENT_TIMEOUT_MS 5000

static svc_mesh_t *s_mesh;
static char *s_tokens[S_USERS];
static atomic_bool s_stop_load, s_stop_readers;
//  Readers whose first stream was answered 200: the load waits for all.
static atomic_int s_readers_streaming;

//  ---------------------------------------------------------------------------
//  Which service is down, for classifying answers

static pthread_mutex_t s_state_lock = PTHREAD_MUTEX_INITIALIZER;
static const char *s_down = NULL;     //  service killed and not yet restarted
static double s_gateway_back_ms = 0;  //  when the gateway was last restarted
static double s_kill_ms[4];
static int s_answers_while_down[4];   //  503/504 seen while that service was down
static int s_requests_while_down[4];

static const char *s_services[4] = {"store", "broadcaster", "regenerator", "gateway"};

static int
s_service_index (const char *name)
{
    for (int i = 0; i < 4; i++)
        if (name && strcmp (name, s_services[i]) == 0)
            return i;
    return -1;
}

//  ---------------------------------------------------------------------------
//  Counters of violations (each one fails the test) and of figures

static atomic_int s_hung, s_bad_5xx, s_transport_errors, s_missing_retry_after;
static atomic_int s_requests, s_ok, s_unavailable, s_client_errors;

typedef struct {
    long status;     //  0: no HTTP answer
    json_t *json;
    bool timed_out;
} s_answer_t;

//  One request with the 5 s client timeout, classified.
static void
s_request (const char *method, const char *path, int user, const char *body, s_answer_t *answer)
{
    memset (answer, 0, sizeof *answer);
    pthread_mutex_lock (&s_state_lock);
    const char *down_before = s_down;
    pthread_mutex_unlock (&s_state_lock);
    svc_response_t response;
    int rc = svc_http_timed (s_mesh, method, path, s_tokens[user], body,
                             S_CLIENT_TIMEOUT_MS, &response);
    pthread_mutex_lock (&s_state_lock);
    const char *down_after = s_down;
    double gateway_back = s_gateway_back_ms;
    pthread_mutex_unlock (&s_state_lock);
    const char *down = down_before ? down_before : down_after;
    answer->status = response.status;
    atomic_fetch_add (&s_requests, 1);
    if (rc == CURLE_OPERATION_TIMEDOUT) {
        answer->timed_out = true;
        answer->status = 0;
        atomic_fetch_add (&s_hung, 1);
        fprintf (stderr, "chaos: %s %s hung past %d ms (down: %s)\n", method, path,
                 S_CLIENT_TIMEOUT_MS, down ? down : "none");
    } else if (rc != CURLE_OK) {
        answer->status = 0;
        //  Refused or cut while the gateway was down or just back: expected.
        bool gateway_moment = (down && strcmp (down, "gateway") == 0)
                              || svc_now_ms () - gateway_back < 2000;
        if (!gateway_moment) {
            atomic_fetch_add (&s_transport_errors, 1);
            fprintf (stderr, "chaos: %s %s: %s (down: %s)\n", method, path,
                     curl_easy_strerror ((CURLcode) rc), down ? down : "none");
        }
    } else {
        answer->json = json_incref (response.json);
        long status = answer->status;
        if (status == 200)
            atomic_fetch_add (&s_ok, 1);
        else if (status == 503 || status == 504) {
            atomic_fetch_add (&s_unavailable, 1);
            char retry_after[32];
            if (status == 503
                && svc_response_header (&response, "Retry-After", retry_after, sizeof retry_after))
                atomic_fetch_add (&s_missing_retry_after, 1);
        } else if (status >= 500) {
            atomic_fetch_add (&s_bad_5xx, 1);
            fprintf (stderr, "chaos: %s %s answered %ld: %s\n", method, path, status,
                     response.body ? response.body : "");
        } else
            atomic_fetch_add (&s_client_errors, 1);
        int index = s_service_index (down);
        if (index >= 0) {
            pthread_mutex_lock (&s_state_lock);
            s_requests_while_down[index]++;
            if (status == 503 || status == 504)
                s_answers_while_down[index]++;
            pthread_mutex_unlock (&s_state_lock);
        }
    }
    svc_response_free (&response);
}

//  ---------------------------------------------------------------------------
//  What the clients were told (the model the store must match)

typedef struct {
    char id[256];
    bool user;
    bool deleted;           //  a 200 delete removed it
    bool maybe_deleted;     //  a delete that may or may not have happened
    int acked_edits;
    char last_edit[64];
    bool edit_uncertain;    //  an edit without a clear answer
    char vote;              //  'u', 'd' or 0: the last acknowledged vote
    long vote_version;      //  the version it was on (the reply's version_index)
    bool vote_uncertain;
    char shown[128];        //  version_id of the last acknowledged switch ("" none)
    char shown_at[40];      //  its reply's timestamp (the store's clock)
    bool shown_uncertain;   //  an unanswered switch or regeneration may have moved it
    long acked_versions;    //  the most versions an answer said it had: none may go
} s_msg_t;

typedef struct {
    char id[64];
    int user;
    s_msg_t msgs[S_MSGS];
    int count;
} s_session_t;

typedef struct {
    char id[64];
    char message_id[256];
    int user;
    char completed_at[40]; //  ISO, once seen completed
} s_task_t;

static s_session_t s_sessions[S_SESSIONS];
static s_task_t s_tasks[S_TASKS];
static atomic_int s_task_count;
static atomic_int s_actions[6];

static void
s_task_add (const char *id, const char *message_id, int user)
{
    if (!id)
        return;
    int index = atomic_fetch_add (&s_task_count, 1);
    if (index >= S_TASKS)
        return;
    snprintf (s_tasks[index].id, sizeof s_tasks[index].id, "%s", id);
    snprintf (s_tasks[index].message_id, sizeof s_tasks[index].message_id, "%s",
              message_id ? message_id : "");
    s_tasks[index].user = user;
}

static const char *
s_jstr (json_t *json, const char *a, const char *b)
{
    json_t *value = json_object_get (json, a);
    if (b)
        value = json_object_get (value, b);
    return json_string_value (value);
}

static s_msg_t *
s_pick_msg (s_session_t *session, bool user, unsigned *seed)
{
    int candidates[S_MSGS], n = 0;
    for (int i = 0; i < session->count; i++)
        if (session->msgs[i].user == user && !session->msgs[i].deleted
            && !session->msgs[i].maybe_deleted)
            candidates[n++] = i;
    return n ? &session->msgs[candidates[rand_r (seed) % n]] : NULL;
}

static void
s_run_sse (s_session_t *session, int round)
{
    char path[128], body[128];
    snprintf (path, sizeof path, "/api/run_sse/%s", session->id);
    snprintf (body, sizeof body, "{\"query\": \"chaos question %d\"}", round);
    s_answer_t answer;
    s_request ("POST", path, session->user, body, &answer);
    atomic_fetch_add (&s_actions[0], 1);
    if (answer.status == 200 && session->count + 2 <= S_MSGS) {
        const char *user_id = s_jstr (answer.json, "data", "user_message_id");
        const char *assistant_id = s_jstr (answer.json, "data", "assistant_message_id");
        if (user_id && assistant_id) {
            s_msg_t *m = &session->msgs[session->count++];
            memset (m, 0, sizeof *m);
            snprintf (m->id, sizeof m->id, "%s", user_id);
            m->user = true;
            m = &session->msgs[session->count++];
            memset (m, 0, sizeof *m);
            snprintf (m->id, sizeof m->id, "%s", assistant_id);
            s_task_add (s_jstr (answer.json, "data", "task_id"), assistant_id, session->user);
        }
    }
    json_decref (answer.json);
}

static void
s_feedback (s_session_t *session, unsigned *seed)
{
    s_msg_t *m = s_pick_msg (session, false, seed);
    if (!m)
        return;
    char type = rand_r (seed) % 2 ? 'u' : 'd';
    char path[400], body[128];
    snprintf (path, sizeof path, "/api/messages/%s/feedback", m->id);
    snprintf (body, sizeof body, "{\"feedback_type\": \"%s\"}", type == 'u' ? "upvote" : "downvote");
    s_answer_t answer;
    s_request ("POST", path, session->user, body, &answer);
    atomic_fetch_add (&s_actions[1], 1);
    if (answer.status == 200) {
        m->vote = type;
        m->vote_version = (long) json_integer_value (json_object_get (answer.json, "version_index"));
    }
    else if (answer.status == 0 || answer.status >= 500)
        m->vote_uncertain = true;
    json_decref (answer.json);
}

static void
s_edit (s_session_t *session, unsigned *seed, int round)
{
    s_msg_t *m = s_pick_msg (session, true, seed);
    if (!m)
        return;
    bool regenerate = rand_r (seed) % 4 == 0;
    char path[400], body[160], content[64];
    snprintf (content, sizeof content, "edited %d-%u", round, rand_r (seed) % 100000);
    snprintf (path, sizeof path, "/api/messages/%s", m->id);
    snprintf (body, sizeof body, "{\"content\": \"%s\", \"trigger_regeneration\": %s}", content,
              regenerate ? "true" : "false");
    s_answer_t answer;
    s_request ("PUT", path, session->user, body, &answer);
    atomic_fetch_add (&s_actions[2], 1);
    //  The question gets a new version, shown, and a new branch below it,
    //  with a new answer when a regeneration is asked for.
    if (answer.status == 200) {
        m->acked_edits++;
        snprintf (m->last_edit, sizeof m->last_edit, "%s", content);
        json_t *data = json_object_get (answer.json, "data");
        const char *shown = s_jstr (data, "version_id", NULL);
        const char *at = s_jstr (answer.json, "timestamp", NULL);
        snprintf (m->shown, sizeof m->shown, "%s", shown ? shown : "?");
        snprintf (m->shown_at, sizeof m->shown_at, "%s", at ? at : "");
        long count = (long) json_integer_value (json_object_get (data, "version_count"));
        if (count > m->acked_versions)
            m->acked_versions = count;
        const char *reply_id = s_jstr (data, "assistant_message_id", NULL);
        if (reply_id && session->count < S_MSGS) {
            s_msg_t *reply = &session->msgs[session->count++];
            memset (reply, 0, sizeof *reply);
            snprintf (reply->id, sizeof reply->id, "%s", reply_id);
            s_task_add (s_jstr (data, "regeneration_task_id", NULL), reply_id, session->user);
        }
    } else if (answer.status == 0 || answer.status >= 500) {
        m->edit_uncertain = true;
        m->shown_uncertain = true;
    }
    json_decref (answer.json);
}

static void
s_delete (s_session_t *session)
{
    //  The newest live message: a delete takes it and everything after.
    int last = -1;
    for (int i = session->count - 1; i >= 0 && last < 0; i--)
        if (!session->msgs[i].deleted)
            last = i;
    if (last < 2) //  keep the first exchange
        return;
    char path[400];
    snprintf (path, sizeof path, "/api/messages/%s", session->msgs[last].id);
    s_answer_t answer;
    s_request ("DELETE", path, session->user, NULL, &answer);
    atomic_fetch_add (&s_actions[3], 1);
    if (answer.status == 200) {
        json_t *ids = json_object_get (json_object_get (answer.json, "data"), "deleted_message_ids");
        for (size_t k = 0; k < json_array_size (ids); k++) {
            const char *id = json_string_value (json_array_get (ids, k));
            for (int i = 0; id && i < session->count; i++)
                if (strcmp (session->msgs[i].id, id) == 0)
                    session->msgs[i].deleted = true;
        }
        session->msgs[last].deleted = true;
    } else if (answer.status == 0 || answer.status >= 500)
        for (int i = last; i < session->count; i++)
            session->msgs[i].maybe_deleted = true;
    json_decref (answer.json);
}

static void
s_regenerate (s_session_t *session, unsigned *seed)
{
    s_msg_t *m = s_pick_msg (session, false, seed);
    if (!m)
        return;
    char path[400];
    snprintf (path, sizeof path, "/api/messages/%s/regenerate", m->id);
    s_answer_t answer;
    s_request ("POST", path, session->user, "{}", &answer);
    atomic_fetch_add (&s_actions[4], 1);
    if (answer.status == 200)
        s_task_add (s_jstr (answer.json, "data", "task_id"), m->id, session->user);
    else if (answer.status == 0 || answer.status >= 500)
        m->shown_uncertain = true; //  a task nobody heard of may add a version
    json_decref (answer.json);
}

//  Shows version 1..3 of an answer or of a question (a question's brings
//  the branch below that version back; a 404 when it has fewer: no change).
static void
s_switch (s_session_t *session, unsigned *seed)
{
    s_msg_t *m = s_pick_msg (session, rand_r (seed) % 2 == 0, seed);
    if (!m)
        return;
    char path[400];
    snprintf (path, sizeof path, "/api/messages/%s/versions/%u/activate", m->id,
              1 + rand_r (seed) % 3);
    s_answer_t answer;
    s_request ("POST", path, session->user, NULL, &answer);
    atomic_fetch_add (&s_actions[5], 1);
    if (answer.status == 200) {
        const char *id = s_jstr (answer.json, "data", "version_id");
        const char *at = s_jstr (answer.json, "timestamp", NULL);
        snprintf (m->shown, sizeof m->shown, "%s", id ? id : "?");
        snprintf (m->shown_at, sizeof m->shown_at, "%s", at ? at : "");
        long count = (long) json_integer_value (
            json_object_get (json_object_get (answer.json, "data"), "version_count"));
        if (count > m->acked_versions)
            m->acked_versions = count;
    } else if (answer.status == 0 || answer.status >= 500)
        m->shown_uncertain = true;
    json_decref (answer.json);
}

static void *
s_worker (void *arg)
{
    int index = (int) (intptr_t) arg;
    unsigned seed = 1234u + (unsigned) index;
    for (int round = 0; !atomic_load (&s_stop_load); round++) {
        //  Each worker owns every S_WORKERS-th session: no shared model.
        int pick = index + S_WORKERS * (rand_r (&seed) % (S_SESSIONS / S_WORKERS));
        s_session_t *session = &s_sessions[pick];
        int roll = rand_r (&seed) % 100;
        if (roll < 12)
            s_run_sse (session, round);
        else if (roll < 47)
            s_feedback (session, &seed);
        else if (roll < 72)
            s_edit (session, &seed, round);
        else if (roll < 77)
            s_delete (session);
        else if (roll < 88)
            s_regenerate (session, &seed);
        else
            s_switch (session, &seed);
        usleep (40000);
    }
    return NULL;
}

//  ---------------------------------------------------------------------------
//  SSE readers: raw sockets in one poll loop

typedef struct {
    int session;
    int fd;                  //  -1: not connected
    double retry_at;
    char buf[65536];
    size_t len;
    bool headers_done;
    long status;
    char last_id[64];
    uint64_t epoch, seq;     //  of last_id
    bool resync_pending;     //  a resync since the last id
    int streams;             //  200 streams opened
    int streams_with_id;     //  of which sent a Last-Event-ID
    int events, resyncs, epoch_changes;
    int gaps, not_increasing;
    char first_violation[160];
} s_reader_t;

static s_reader_t s_readers[S_READERS];

static void
s_reader_connect (s_reader_t *r)
{
    int fd = socket (AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    struct sockaddr_in addr = {.sin_family = AF_INET,
                               .sin_port = htons ((uint16_t) svc_mesh_port (s_mesh)),
                               .sin_addr.s_addr = htonl (INADDR_LOOPBACK)};
    if (fd < 0)
        return;
    int rc = connect (fd, (struct sockaddr *) &addr, sizeof addr);
    if (rc && errno != EINPROGRESS) {
        close (fd);
        r->retry_at = svc_now_ms () + 300 + rand () % 700;
        return;
    }
    r->fd = fd;
    r->len = 0;
    r->headers_done = false;
    r->status = 0;
}

static void
s_reader_send_request (s_reader_t *r)
{
    s_session_t *session = &s_sessions[r->session];
    char request[4096], last[128] = "";
    if (r->last_id[0])
        snprintf (last, sizeof last, "Last-Event-ID: %s\r\n", r->last_id);
    int len = snprintf (request, sizeof request,
                        "GET /api/run_sse/%s?access_token=%s HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                        "Accept: text/event-stream\r\n%sConnection: close\r\n\r\n",
                        session->id, s_tokens[session->user], last);
    if (send (r->fd, request, (size_t) len, MSG_NOSIGNAL) != len) {
        close (r->fd);
        r->fd = -1;
        r->retry_at = svc_now_ms () + 300 + rand () % 700;
    }
}

static void
s_violation (s_reader_t *r, const char *what, const char *id)
{
    char last[sizeof r->last_id];
    memcpy (last, r->last_id, sizeof last);
    if (!r->first_violation[0])
        snprintf (r->first_violation, sizeof r->first_violation, "%s at %s after %s", what, id,
                  last);
}

static void
s_reader_event (s_reader_t *r, char *block)
{
    char id[64] = "", event[64] = "";
    const char *data = NULL;
    char *save = NULL;
    for (char *line = strtok_r (block, "\n", &save); line;
         line = strtok_r (NULL, "\n", &save)) {
        size_t len = strlen (line);
        if (len && line[len - 1] == '\r')
            line[len - 1] = 0;
        if (strncmp (line, "id: ", 4) == 0)
            snprintf (id, sizeof id, "%s", line + 4);
        else if (strncmp (line, "event: ", 7) == 0)
            snprintf (event, sizeof event, "%s", line + 7);
        else if (strncmp (line, "data: ", 6) == 0)
            data = line + 6;
    }
    if (!event[0] && !id[0])
        return; //  comment (keepalive)
    r->events++;
    if (strcmp (event, "session_updated") == 0 && data) {
        json_t *json = json_loads (data, 0, NULL);
        if (json_is_true (json_object_get (json, "resync"))) {
            r->resync_pending = true;
            r->resyncs++;
        }
        json_decref (json);
    }
    if (!id[0])
        return;
    uint64_t epoch, seq;
    if (sscanf (id, "%" SCNu64 "-%" SCNu64, &epoch, &seq) != 2) {
        r->not_increasing++;
        s_violation (r, "unparsable id", id);
        return;
    }
    if (r->last_id[0]) {
        if (epoch == r->epoch) {
            if (seq <= r->seq) {
                r->not_increasing++;
                s_violation (r, "id not increasing", id);
            } else if (seq != r->seq + 1 && !r->resync_pending) {
                r->gaps++;
                s_violation (r, "gap without resync", id);
            }
        } else {
            r->epoch_changes++;
            if (epoch < r->epoch) {
                r->not_increasing++;
                s_violation (r, "older epoch", id);
            }
        }
    }
    snprintf (r->last_id, sizeof r->last_id, "%s", id);
    r->epoch = epoch;
    r->seq = seq;
    r->resync_pending = false;
}

static void
s_reader_input (s_reader_t *r)
{
    ssize_t n = recv (r->fd, r->buf + r->len, sizeof r->buf - r->len - 1, 0);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
        return;
    if (n <= 0) {
        close (r->fd);
        r->fd = -1;
        r->retry_at = svc_now_ms () + 200 + rand () % 800;
        return;
    }
    r->len += (size_t) n;
    r->buf[r->len] = 0;
    if (!r->headers_done) {
        char *end = strstr (r->buf, "\r\n\r\n");
        if (!end)
            return;
        r->status = strtol (r->buf + 9, NULL, 10);
        r->headers_done = true;
        if (r->status == 200) {
            if (r->streams++ == 0)
                atomic_fetch_add (&s_readers_streaming, 1);
            r->streams_with_id += r->last_id[0] ? 1 : 0; //  it was sent
        }
        size_t used = (size_t) (end - r->buf) + 4;
        memmove (r->buf, r->buf + used, r->len - used + 1);
        r->len -= used;
    }
    char *end;
    while ((end = strstr (r->buf, "\n\n"))) {
        *end = 0;
        if (r->status == 200)
            s_reader_event (r, r->buf);
        size_t used = (size_t) (end - r->buf) + 2;
        memmove (r->buf, r->buf + used, r->len - used + 1);
        r->len -= used;
    }
    if (r->len >= sizeof r->buf - 1) //  one event larger than the buffer
        r->len = 0;
}

static void *
s_reader_loop (void *arg)
{
    (void) arg;
    struct pollfd fds[S_READERS];
    bool connecting[S_READERS] = {false};
    while (!atomic_load (&s_stop_readers)) {
        double now = svc_now_ms ();
        int n = 0;
        int map[S_READERS];
        for (int i = 0; i < S_READERS; i++) {
            s_reader_t *r = &s_readers[i];
            if (r->fd < 0 && now >= r->retry_at) {
                s_reader_connect (r);
                connecting[i] = r->fd >= 0;
            }
            if (r->fd >= 0) {
                fds[n].fd = r->fd;
                fds[n].events = connecting[i] ? POLLOUT : POLLIN;
                fds[n].revents = 0;
                map[n++] = i;
            }
        }
        if (poll (fds, (nfds_t) n, 100) <= 0)
            continue;
        for (int k = 0; k < n; k++) {
            s_reader_t *r = &s_readers[map[k]];
            if (!fds[k].revents)
                continue;
            if (connecting[map[k]]) {
                int err = 0;
                socklen_t len = sizeof err;
                getsockopt (r->fd, SOL_SOCKET, SO_ERROR, &err, &len);
                connecting[map[k]] = false;
                if (err) {
                    close (r->fd);
                    r->fd = -1;
                    r->retry_at = svc_now_ms () + 300 + rand () % 700;
                } else
                    s_reader_send_request (r);
                continue;
            }
            s_reader_input (r);
        }
    }
    for (int i = 0; i < S_READERS; i++)
        if (s_readers[i].fd >= 0)
            close (s_readers[i].fd);
    return NULL;
}

//  ---------------------------------------------------------------------------

static void
s_set_down (const char *service)
{
    pthread_mutex_lock (&s_state_lock);
    s_down = service;
    if (!service)
        s_gateway_back_ms = svc_now_ms ();
    pthread_mutex_unlock (&s_state_lock);
}

static void
s_sleep_until (double deadline_ms)
{
    while (svc_now_ms () < deadline_ms)
        usleep (50000);
}

static int
s_get_retry (const char *path, int user, s_answer_t *answer, int timeout_ms)
{
    double deadline = svc_now_ms () + timeout_ms;
    do {
        s_request ("GET", path, user, NULL, answer);
        if (answer->status != 0 && answer->status != 503 && answer->status != 504)
            return 0;
        json_decref (answer->json);
        answer->json = NULL;
        usleep (200000);
    } while (svc_now_ms () < deadline);
    return -1;
}

static void
test_chaos (void **state)
{
    (void) state;
    const char *seconds_env = getenv ("CHATMESH_CHAOS_SECONDS");
    int seconds = seconds_env ? atoi (seconds_env) : 60;
    if (seconds < 20)
        seconds = 20;
    const char *env[] = {"CHAT_ACTIONS_RATE_LIMIT=0",
                         "CHAT_REGENERATION_RATE_LIMIT=0",
                         "CHATMESH_HTTP_THREADS=300",
                         "CHATMESH_PROGRESS_INTERVAL_MS=250",
                         "CHATMESH_TASK_LEASE_MS=3000",
                         "CHATMESH_LOG_LEVEL=notice",
                         NULL};
    s_mesh = svc_mesh_start (env);
    assert_non_null (s_mesh);
    const char *users[S_USERS] = {"chaos_ann", "chaos_bob", "chaos_cy", "chaos_di"};
    for (int u = 0; u < S_USERS; u++)
        s_tokens[u] = svc_token (s_mesh, users[u], 3600);
    for (int i = 0; i < S_SESSIONS; i++) {
        snprintf (s_sessions[i].id, sizeof s_sessions[i].id, "chaos_s_%02d", i);
        s_sessions[i].user = i % S_USERS;
        s_run_sse (&s_sessions[i], 0);
        assert_int_equal (s_sessions[i].count, 2);
    }
    for (int i = 0; i < S_READERS; i++) {
        s_readers[i].session = i % S_SESSIONS;
        s_readers[i].fd = -1;
        s_readers[i].retry_at = svc_now_ms () + (i % 50) * 20; //  stagger the opening
    }
    pthread_t reader_thread, workers[S_WORKERS];
    pthread_create (&reader_thread, NULL, s_reader_loop, NULL);
    //  The load starts once every reader holds a stream.
    double connect_deadline = svc_now_ms () + 30000;
    while (atomic_load (&s_readers_streaming) < S_READERS && svc_now_ms () < connect_deadline)
        usleep (20000);
    assert_int_equal (atomic_load (&s_readers_streaming), S_READERS);
    for (int w = 0; w < S_WORKERS; w++)
        pthread_create (&workers[w], NULL, s_worker, (void *) (intptr_t) w);

    //  The kill schedule: each service down ~3 s, spread over the run.
    double start = svc_now_ms ();
    double slot = seconds * 1000.0 / 5;
    for (int i = 0; i < 4; i++) {
        s_sleep_until (start + slot * (i + 1) - 1500);
        s_kill_ms[i] = svc_now_ms () - start;
        s_set_down (s_services[i]);
        assert_int_equal (svc_mesh_kill (s_mesh, s_services[i], SIGKILL), 0);
        usleep (3000000);
        assert_int_equal (svc_mesh_spawn (s_mesh, s_services[i]), 0);
        if (strcmp (s_services[i], "gateway") == 0) {
            //  The new gateway listens within a moment; count from then.
            svc_mesh_wait_status (s_mesh, "/healthz", 200, 10000);
        }
        s_set_down (NULL);
        print_message ("chaos: %s killed at %.1f s, back at %.1f s\n", s_services[i],
                       s_kill_ms[i] / 1000, (svc_now_ms () - start) / 1000);
    }
    s_sleep_until (start + seconds * 1000.0);
    atomic_store (&s_stop_load, true);
    for (int w = 0; w < S_WORKERS; w++)
        pthread_join (workers[w], NULL);
    assert_int_equal (svc_mesh_wait_status (s_mesh, "/readyz", 200, 20000), 0);

    //  1. Every task ends, within a bound (leases expire after 3 s, so a
    //  task orphaned by the regenerator's death is claimed again).
    int task_count = atomic_load (&s_task_count);
    if (task_count > S_TASKS)
        task_count = S_TASKS;
    double task_deadline = svc_now_ms () + 120000;
    int completed = 0, failed = 0, stuck = 0, task_missing = 0;
    for (int t = 0; t < task_count; t++) {
        char path[256];
        snprintf (path, sizeof path, "/api/messages/tasks/%.64s/status", s_tasks[t].id);
        for (;;) {
            s_answer_t answer;
            s_request ("GET", path, s_tasks[t].user, NULL, &answer);
            const char *status = s_jstr (answer.json, "status", NULL);
            bool done = answer.status == 200 && status
                        && (strcmp (status, "completed") == 0 || strcmp (status, "failed") == 0);
            if (done && strcmp (status, "completed") == 0) {
                completed++;
                //  The message it wrote, as the store says.
                const char *at = s_jstr (answer.json, "completed_at", NULL);
                const char *wrote = s_jstr (answer.json, "message_id", NULL);
                snprintf (s_tasks[t].completed_at, sizeof s_tasks[t].completed_at, "%s",
                          at ? at : "");
                if (wrote)
                    snprintf (s_tasks[t].message_id, sizeof s_tasks[t].message_id, "%s", wrote);
            }
            else if (done)
                failed++;
            long http = answer.status;
            json_decref (answer.json);
            if (done)
                break;
            if (http == 404) {
                task_missing++;
                fprintf (stderr, "chaos: task %s is gone (404)\n", s_tasks[t].id);
                break;
            }
            if (svc_now_ms () > task_deadline) {
                stuck++;
                fprintf (stderr, "chaos: task %s not terminal (%s)\n", s_tasks[t].id,
                         status ? status : "?");
                break;
            }
            usleep (250000);
        }
    }

    //  2. Every acknowledged change is in the store: in the whole tree (the
    //  export: every branch, every version), and the active path (GET) is
    //  made of the tree's messages at versions they have.
    int lost_votes = 0, lost_edits = 0, resurrected = 0, vanished = 0, checked = 0;
    int broken_versions = 0, lost_switches = 0, switches_checked = 0, lost_versions = 0;
    int broken_paths = 0, hidden = 0;
    for (int i = 0; i < S_SESSIONS; i++) {
        s_session_t *session = &s_sessions[i];
        char path[400];
        snprintf (path, sizeof path, "/api/sessions/%.64s/export?format=json", session->id);
        s_answer_t answer, shown_path;
        assert_int_equal (s_get_retry (path, session->user, &answer, 20000), 0);
        assert_int_equal (answer.status, 200);
        json_t *messages = json_object_get (json_object_get (answer.json, "session"), "messages");
        snprintf (path, sizeof path, "/api/sessions/%.64s", session->id);
        assert_int_equal (s_get_retry (path, session->user, &shown_path, 20000), 0);
        assert_int_equal (shown_path.status, 200);
        json_t *on_path
            = json_object_get (json_object_get (shown_path.json, "session"), "messages");
        size_t tree_on_path = 0;
        for (size_t k = 0; k < json_array_size (messages); k++) {
            json_t *t = json_array_get (messages, k);
            tree_on_path += json_is_true (json_object_get (t, "on_active_path"));
            hidden += !json_is_true (json_object_get (t, "on_active_path"));
            //  A branch hangs under a question version that exists.
            json_t *branch = json_object_get (t, "branch");
            if (!json_is_object (branch))
                continue;
            const char *question = s_jstr (branch, "message_id", NULL);
            long version = (long) json_integer_value (json_object_get (branch, "version_index"));
            bool there = false;
            for (size_t q = 0; question && q < json_array_size (messages) && !there; q++) {
                json_t *other = json_array_get (messages, q);
                there = strcmp (s_jstr (other, "message_id", NULL), question) == 0 && version >= 1
                        && version <= json_integer_value (json_object_get (other, "version_count"));
            }
            if (!there) {
                broken_paths++;
                fprintf (stderr, "chaos: %s hangs under a missing %s version %ld\n",
                         s_jstr (t, "message_id", NULL), question ? question : "?", version);
            }
        }
        //  Each message shown is the tree's, at the version the tree says.
        for (size_t k = 0; k < json_array_size (on_path); k++) {
            json_t *p = json_array_get (on_path, k), *t = NULL;
            for (size_t q = 0; q < json_array_size (messages) && !t; q++)
                if (strcmp (s_jstr (json_array_get (messages, q), "message_id", NULL),
                            s_jstr (p, "id", NULL)) == 0)
                    t = json_array_get (messages, q);
            long index = (long) json_integer_value (json_object_get (p, "version_index"));
            json_t *version = t ? json_array_get (json_object_get (t, "versions"),
                                                  (size_t) index - 1)
                                : NULL;
            if (!t || !json_is_true (json_object_get (t, "on_active_path")) || !version
                || strcmp (s_jstr (version, "version_id", NULL), s_jstr (p, "version_id", NULL))
                       != 0) {
                broken_paths++;
                fprintf (stderr, "chaos: %s on the path at version %ld is not the tree's\n",
                         s_jstr (p, "id", NULL), index);
            }
        }
        if (tree_on_path != json_array_size (on_path)) {
            broken_paths++;
            fprintf (stderr, "chaos: %s shows %zu messages, its tree marks %zu\n", session->id,
                     json_array_size (on_path), tree_on_path);
        }
        json_decref (shown_path.json);
        for (int m = 0; m < session->count; m++) {
            s_msg_t *msg = &session->msgs[m];
            json_t *found = NULL;
            for (size_t k = 0; k < json_array_size (messages) && !found; k++)
                if (strcmp (s_jstr (json_array_get (messages, k), "message_id", NULL), msg->id)
                    == 0)
                    found = json_array_get (messages, k);
            if (msg->deleted) {
                if (found) {
                    resurrected++;
                    fprintf (stderr, "chaos: deleted %s is back\n", msg->id);
                }
                continue;
            }
            if (msg->maybe_deleted)
                continue;
            if (!found) {
                vanished++;
                fprintf (stderr, "chaos: %s vanished\n", msg->id);
                continue;
            }
            checked++;
            //  The shown version is one it has, every version is there, and
            //  an acknowledged switch is what it shows (unless a
            //  regeneration or an unanswered switch came after it).
            long index = (long) json_integer_value (json_object_get (found, "version_index"));
            long count = (long) json_integer_value (json_object_get (found, "version_count"));
            json_t *versions = json_object_get (found, "versions");
            if (index < 1 || index > count || json_array_size (versions) != (size_t) count) {
                broken_versions++;
                fprintf (stderr, "chaos: %s shows version %ld of %ld\n", msg->id, index, count);
                continue;
            }
            if (count < msg->acked_versions) {
                lost_versions++;
                fprintf (stderr, "chaos: %s has %ld versions, %ld were acknowledged\n", msg->id,
                         count, msg->acked_versions);
            }
            //  A regeneration completed at or after the switch shows its own
            //  version (ISO times of the store's clock compare as strings).
            bool checkable = msg->shown[0] && !msg->shown_uncertain;
            for (int t = 0; checkable && t < task_count; t++)
                if (strcmp (s_tasks[t].message_id, msg->id) == 0 && s_tasks[t].completed_at[0]
                    && strcmp (s_tasks[t].completed_at, msg->shown_at) >= 0)
                    checkable = false;
            const char *shown = s_jstr (json_array_get (versions, (size_t) index - 1),
                                        "version_id", NULL);
            if (checkable && strcmp (shown ? shown : "", msg->shown) != 0) {
                lost_switches++;
                fprintf (stderr, "chaos: %s shows %s, acknowledged switch was to %s\n", msg->id,
                         shown ? shown : "?", msg->shown);
            }
            switches_checked += checkable;
            //  An acknowledged edit is a version of its question.
            bool edit_kept = !msg->acked_edits || msg->edit_uncertain;
            for (size_t v = 0; !edit_kept && v < json_array_size (versions); v++)
                edit_kept = strcmp (s_jstr (json_array_get (versions, v), "content", NULL),
                                    msg->last_edit) == 0;
            if (!edit_kept) {
                lost_edits++;
                fprintf (stderr, "chaos: %s has no version '%s', an acknowledged edit\n", msg->id,
                         msg->last_edit);
            }
            if (msg->vote) {
                char fpath[400];
                snprintf (fpath, sizeof fpath, "/api/messages/%.256s/feedback", msg->id);
                s_answer_t votes;
                assert_int_equal (s_get_retry (fpath, session->user, &votes, 20000), 0);
                //  A vote stays on the version it was given on.
                json_t *summary = json_array_get (json_object_get (votes.json, "versions"),
                                                  (size_t) msg->vote_version - 1);
                long up = (long) json_integer_value (json_object_get (summary, "upvotes"));
                long down = (long) json_integer_value (json_object_get (summary, "downvotes"));
                bool ok = msg->vote_uncertain ? up + down == 1
                                              : (msg->vote == 'u' ? up == 1 && down == 0
                                                                  : up == 0 && down == 1);
                if (!ok) {
                    lost_votes++;
                    fprintf (stderr,
                             "chaos: %s version %ld votes up=%ld down=%ld, acknowledged '%c'\n",
                             msg->id, msg->vote_version, up, down, msg->vote);
                }
                json_decref (votes.json);
            }
        }
        json_decref (answer.json);
    }
    usleep (1000000); //  let the readers take the last events
    atomic_store (&s_stop_readers, true);
    pthread_join (reader_thread, NULL);

    //  3. Readers.
    int reader_gaps = 0, reader_order = 0, no_reconnect = 0, total_events = 0, resyncs = 0;
    int epoch_changes = 0, streams = 0;
    for (int i = 0; i < S_READERS; i++) {
        s_reader_t *r = &s_readers[i];
        reader_gaps += r->gaps;
        reader_order += r->not_increasing;
        total_events += r->events;
        resyncs += r->resyncs;
        epoch_changes += r->epoch_changes;
        streams += r->streams;
        if (r->first_violation[0])
            fprintf (stderr, "chaos: reader %d (%s): %s\n", i, s_sessions[r->session].id,
                     r->first_violation);
        //  The gateway died once: every reader opened a second stream, and
        //  resumed with Last-Event-ID.
        if (r->streams < 2 || r->streams_with_id < 1)
            no_reconnect++;
    }
    print_message ("chaos: %d s, %d requests (%d ok, %d 503/504, %d 4xx), actions run_sse=%d "
                   "feedback=%d edit=%d delete=%d regenerate=%d switch=%d (%d checked)\n",
                   seconds, atomic_load (&s_requests), atomic_load (&s_ok),
                   atomic_load (&s_unavailable), atomic_load (&s_client_errors),
                   atomic_load (&s_actions[0]), atomic_load (&s_actions[1]),
                   atomic_load (&s_actions[2]), atomic_load (&s_actions[3]),
                   atomic_load (&s_actions[4]), atomic_load (&s_actions[5]), switches_checked);
    print_message ("chaos: tasks %d (completed %d, failed %d, stuck %d, missing %d); %d messages "
                   "checked, %d in hidden branches\n",
                   task_count, completed, failed, stuck, task_missing, checked, hidden);
    print_message ("chaos: readers %d, streams %d, events %d, resyncs %d, epoch changes %d\n",
                   S_READERS, streams, total_events, resyncs, epoch_changes);
    for (int i = 0; i < 4; i++)
        print_message ("chaos: while %s was down: %d requests, %d answered 503/504\n",
                       s_services[i], s_requests_while_down[i], s_answers_while_down[i]);

    assert_int_equal (atomic_load (&s_hung), 0);
    assert_int_equal (atomic_load (&s_bad_5xx), 0);
    assert_int_equal (atomic_load (&s_transport_errors), 0);
    assert_int_equal (atomic_load (&s_missing_retry_after), 0);
    assert_int_equal (stuck, 0);
    assert_int_equal (task_missing, 0);
    assert_int_equal (lost_votes, 0);
    assert_int_equal (broken_versions, 0);
    assert_int_equal (lost_versions, 0);
    assert_int_equal (broken_paths, 0);
    assert_int_equal (lost_switches, 0);
    assert_int_equal (lost_edits, 0);
    assert_int_equal (resurrected, 0);
    assert_int_equal (vanished, 0);
    assert_int_equal (reader_gaps, 0);
    assert_int_equal (reader_order, 0);
    assert_int_equal (no_reconnect, 0);
    assert_true (total_events > S_READERS);
    assert_true (checked > S_SESSIONS);
    //  With the store down, a request that needs it got 503/504.
    if (s_requests_while_down[0] > 0)
        assert_true (s_answers_while_down[0] > 0);
    for (int u = 0; u < S_USERS; u++)
        free (s_tokens[u]);
    svc_mesh_stop (&s_mesh);
}

int
main (void)
{
    curl_global_init (CURL_GLOBAL_ALL);
    signal (SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_chaos),
    };
    int failed = cmocka_run_group_tests (tests, NULL, NULL);
    curl_global_cleanup ();
    return failed;
}
