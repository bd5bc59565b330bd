/*  test_st_crash.c: durability of acknowledged writes across kill -9.

    Runs the real chatmesh-store binary (<build>/store/chatmesh-store, found
    from /proc/self/exe) on an ipc:// endpoint in a temp dir. Client threads,
    each with its own DEALER, write as fast as they can: session_start, then
    an upvote on the new assistant message, remembering every write the
    store ACKNOWLEDGED. The test kill -9s the store at random moments
    (S_KILLS times), restarts it, waits until it answers ping, and checks
    that every acknowledged write since the previous check is there:
    the session with its query as the first message, and the vote counted.
    Unacknowledged writes may or may not be there; nothing is asserted
    about them. At the end every acknowledged write of the run is checked
    once more against the last restart.                                    */
#include "test_st_util.h"

#include "cm_ids.h"
#include "cm_rpc.h"

#include <czmq.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdatomic.h>
#include <sys/wait.h>

extern char **environ;

#define S_KILLS 12
#define S_CLIENTS 4
#define S_CALL_MS 1000  //  a request in flight at a kill waits this long
#define S_UP_MS 20000   //  longest a restart may take (ASan builds are slow)

typedef struct {
    char session_id[64];
    char query[64];
    char assistant_id[CM_MESSAGE_ID_MAX + 1];
    bool voted; //  the upvote on assistant_id was acknowledged
} s_write_t;

typedef struct {
    pthread_mutex_t lock;
    s_write_t *items; //  acknowledged writes of every client
    size_t count, capacity;
    atomic_bool stop;
    atomic_long acked;  //  items recorded (their start and vote answered)
    atomic_long broken; //  impossible replies seen by clients (asserted in main)
    char endpoint[256];
} s_shared_t;

typedef struct {
    s_shared_t *shared;
    int index;
} s_client_arg_t;

static void
s_record (s_shared_t *shared, const s_write_t *item)
{
    pthread_mutex_lock (&shared->lock);
    if (shared->count == shared->capacity) {
        shared->capacity = shared->capacity ? shared->capacity * 2 : 1024;
        shared->items = realloc (shared->items, shared->capacity * sizeof *shared->items);
        if (!shared->items)
            abort (); //  a test that cannot remember its writes cannot go on
    }
    shared->items[shared->count++] = *item;
    pthread_mutex_unlock (&shared->lock);
    atomic_fetch_add (&shared->acked, 1);
}

static void
s_caller (cm_envelope_t *request, const char *user)
{
    cm_request_id (request->request_id, sizeof request->request_id);
    cm_map_set_str (request->payload, "user", user);
    cm_map_set_str (request->payload, "ip", "127.0.0.1");
    cm_map_set_str (request->payload, "ua", "crash-test");
}

//  One write; 0 only when the store acknowledged it. A dead or restarting
//  store is an error or a timeout: the write counts as unacknowledged.
static int
s_write (zsock_t *dealer, cm_envelope_t *request, cm_envelope_t **reply)
{
    int rc = cm_call (dealer, request, S_CALL_MS, reply);
    if (rc == CM_EBACKEND)
        zclock_sleep (1); //  not connected (yet): back off a little, then retry
    return rc;
}

static void *
s_client (void *arg)
{
    s_client_arg_t *a = arg;
    s_shared_t *shared = a->shared;
    char user[32];
    snprintf (user, sizeof user, "crash-user-%d", a->index);
    zsock_t *dealer = cm_dealer_new (shared->endpoint);
    if (!dealer) {
        atomic_fetch_add (&shared->broken, 1);
        return NULL;
    }
    zsock_set_reconnect_ivl (dealer, 10);
    for (long n = 0; !atomic_load (&shared->stop); n++) {
        s_write_t item = {.voted = false};
        snprintf (item.session_id, sizeof item.session_id, "crash-%d-%ld", a->index, n);
        snprintf (item.query, sizeof item.query, "question %d/%ld", a->index, n);
        cm_envelope_t *request = cm_envelope_new (CM_MSG_SESSION_START, NULL), *reply = NULL;
        s_caller (request, user);
        cm_map_set_str (request->payload, "session_id", item.session_id);
        cm_map_set_str (request->payload, "query", item.query);
        int rc = s_write (dealer, request, &reply);
        cm_envelope_destroy (&request);
        if (rc) {
            cm_envelope_destroy (&reply);
            continue;
        }
        snprintf (item.assistant_id, sizeof item.assistant_id, "%s",
                  cm_map_str_or (cm_map_get (reply->payload, "data"), "assistant_message_id", ""));
        cm_envelope_destroy (&reply);
        if (!*item.assistant_id)
            atomic_fetch_add (&shared->broken, 1);

        request = cm_envelope_new (CM_MSG_FEEDBACK_PUT, NULL);
        s_caller (request, user);
        cm_map_set_str (request->payload, "message_id", item.assistant_id);
        cm_map_set_str (request->payload, "feedback_type", "upvote");
        item.voted = s_write (dealer, request, &reply) == 0;
        cm_envelope_destroy (&request);
        cm_envelope_destroy (&reply);
        s_record (shared, &item);
    }
    zsock_destroy (&dealer);
    return NULL;
}

//  --------------------------------------------------------------------------
//  The store process

typedef struct {
    char dir[128];
    char store_dir[192];
    char binary[PATH_MAX];
    char events[256];
    pid_t pid;
} s_proc_t;

static void
s_find_binary (char *binary, size_t size)
{
    char self[PATH_MAX - 64];
    ssize_t len = readlink ("/proc/self/exe", self, sizeof self - 1);
    assert_true (len > 0);
    self[len] = 0;
    char *slash = strrchr (self, '/');
    assert_non_null (slash);
    *slash = 0; //  <build>/tests
    snprintf (binary, size, "%s/../store/chatmesh-store", self);
    assert_int_equal (access (binary, X_OK), 0);
}

static void
s_spawn (s_proc_t *proc, const char *endpoint)
{
    char *argv[] = {proc->binary,
                    "--store-dir", proc->store_dir,
                    "--store-endpoint", (char *) endpoint,
                    "--events-in-endpoint", proc->events,
                    "--cleanup-interval", "0",
                    "--log-level", "error",
                    NULL};
    assert_int_equal (posix_spawn (&proc->pid, proc->binary, NULL, NULL, argv, environ), 0);
}

//  Polls ping until the store answers (or S_UP_MS runs out).
static void
s_wait_up (zsock_t *dealer)
{
    int64_t deadline = cm_mono_ms () + S_UP_MS;
    int rc = CM_EBACKEND;
    while (rc && cm_mono_ms () < deadline) {
        cm_envelope_t *ping = cm_envelope_new (CM_MSG_PING, NULL), *reply = NULL;
        cm_request_id (ping->request_id, sizeof ping->request_id);
        rc = cm_call (dealer, ping, 200, &reply);
        if (rc == CM_EBACKEND)
            zclock_sleep (2); //  the DEALER has not (re)connected yet
        cm_envelope_destroy (&reply);
        cm_envelope_destroy (&ping);
    }
    assert_int_equal (rc, 0);
}

//  --------------------------------------------------------------------------
//  Checks

static void
s_check (zsock_t *dealer, const s_write_t *item)
{
    const char *user_end = strchr (item->session_id + strlen ("crash-"), '-');
    char user[32];
    snprintf (user, sizeof user, "crash-user-%.*s",
              (int) (user_end - item->session_id - strlen ("crash-")),
              item->session_id + strlen ("crash-"));

    cm_envelope_t *request = cm_envelope_new (CM_MSG_SESSION_GET, NULL), *reply = NULL;
    s_caller (request, user);
    cm_map_set_str (request->payload, "session_id", item->session_id);
    int rc = cm_call (dealer, request, 5000, &reply);
    if (rc)
        fprintf (stderr, "acknowledged session %s lost: %d\n", item->session_id, rc);
    assert_int_equal (rc, 0);
    const cm_value_t *messages = cm_map_get (cm_map_get (reply->payload, "session"), "messages");
    assert_true (cm_value_len (messages) >= 2);
    assert_string_equal (cm_map_str_or (cm_arr_at (messages, 0), "content", ""), item->query);
    assert_string_equal (cm_map_str_or (cm_arr_at (messages, 1), "id", ""), item->assistant_id);
    cm_envelope_destroy (&reply);
    cm_envelope_destroy (&request);

    if (!item->voted)
        return;
    request = cm_envelope_new (CM_MSG_FEEDBACK_GET, NULL);
    s_caller (request, user);
    cm_map_set_str (request->payload, "message_id", item->assistant_id);
    rc = cm_call (dealer, request, 5000, &reply);
    assert_int_equal (rc, 0);
    const cm_value_t *summary = cm_map_get (reply->payload, "feedback_summary");
    if (cm_map_int (summary, "upvotes", -1) != 1)
        fprintf (stderr, "acknowledged vote on %s lost\n", item->assistant_id);
    assert_int_equal (cm_map_int (summary, "upvotes", -1), 1);
    cm_envelope_destroy (&reply);
    cm_envelope_destroy (&request);
}

//  Checks items [from, to) of the acknowledged list.
static void
s_check_range (s_shared_t *shared, zsock_t *dealer, size_t from, size_t to)
{
    for (size_t i = from; i < to; i++) {
        pthread_mutex_lock (&shared->lock);
        s_write_t item = shared->items[i]; //  the array may move under realloc
        pthread_mutex_unlock (&shared->lock);
        s_check (dealer, &item);
    }
}

static void
test_acknowledged_writes_survive_kill_9 (void **state)
{
    (void) state;
    s_proc_t proc = {.pid = 0};
    snprintf (proc.dir, sizeof proc.dir, "/tmp/st_crash_XXXXXX");
    assert_non_null (mkdtemp (proc.dir));
    snprintf (proc.store_dir, sizeof proc.store_dir, "%s/store", proc.dir);
    assert_int_equal (mkdir (proc.store_dir, 0700), 0);
    snprintf (proc.events, sizeof proc.events, "ipc://%s/events.ipc", proc.dir);
    s_find_binary (proc.binary, sizeof proc.binary);

    s_shared_t shared = {.count = 0};
    pthread_mutex_init (&shared.lock, NULL);
    snprintf (shared.endpoint, sizeof shared.endpoint, "ipc://%s/store.ipc", proc.dir);
    zsock_t *checker = cm_dealer_new (shared.endpoint);
    assert_non_null (checker);
    zsock_set_reconnect_ivl (checker, 10);

    s_spawn (&proc, shared.endpoint);
    s_wait_up (checker);
    pthread_t threads[S_CLIENTS];
    s_client_arg_t args[S_CLIENTS];
    for (int i = 0; i < S_CLIENTS; i++) {
        args[i] = (s_client_arg_t) {&shared, i};
        assert_int_equal (pthread_create (&threads[i], NULL, s_client, &args[i]), 0);
    }

    unsigned seed = (unsigned) time (NULL) ^ (unsigned) getpid ();
    fprintf (stderr, "crash test: seed %u\n", seed);
    size_t checked = 0;
    for (int round = 0; round < S_KILLS; round++) {
        //  Let writes flow (at least one item recorded this round, so every
        //  round kills a store that was busy and has something to check:
        //  counting a session's start alone let a kill right after the
        //  first start leave round 0 with nothing), then kill at a random
        //  moment.
        long before = atomic_load (&shared.acked);
        int64_t deadline = cm_mono_ms () + S_UP_MS;
        while (atomic_load (&shared.acked) == before && cm_mono_ms () < deadline)
            zclock_sleep (1);
        assert_true (atomic_load (&shared.acked) > before);
        zclock_sleep ((int) (rand_r (&seed) % 400)); //  the random moment
        assert_int_equal (kill (proc.pid, SIGKILL), 0);
        int status = 0;
        assert_int_equal (waitpid (proc.pid, &status, 0), proc.pid);
        assert_true (WIFSIGNALED (status) && WTERMSIG (status) == SIGKILL);

        pthread_mutex_lock (&shared.lock);
        size_t acknowledged = shared.count; //  every one was acked before the kill
        pthread_mutex_unlock (&shared.lock);
        s_spawn (&proc, shared.endpoint);
        s_wait_up (checker);
        s_check_range (&shared, checker, checked, acknowledged);
        fprintf (stderr, "round %d: %zu acknowledged sessions checked (%zu in all)\n", round,
                 acknowledged - checked, acknowledged);
        assert_true (acknowledged > checked);
        checked = acknowledged;
    }
    atomic_store (&shared.stop, true);
    for (int i = 0; i < S_CLIENTS; i++)
        pthread_join (threads[i], NULL);
    assert_int_equal (atomic_load (&shared.broken), 0);
    //  Everything acknowledged in the whole run, against the last restart.
    s_check_range (&shared, checker, 0, shared.count);

    //  SIGTERM: a clean exit.
    assert_int_equal (kill (proc.pid, SIGTERM), 0);
    int status = 0;
    assert_int_equal (waitpid (proc.pid, &status, 0), proc.pid);
    assert_true (WIFEXITED (status) && WEXITSTATUS (status) == 0);

    zsock_destroy (&checker);
    free (shared.items);
    pthread_mutex_destroy (&shared.lock);
    st_rmtree (proc.dir);
}

int
main (void)
{
    zsys_init ();
    zsys_handler_set (NULL); //  the test process keeps default signal handling
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_acknowledged_writes_survive_kill_9),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
