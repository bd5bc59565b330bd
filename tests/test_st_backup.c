/*  test_st_backup.c: hot backup of the real chatmesh-store binary
    (<build>/store/chatmesh-store, found from /proc/self/exe), and its clean
    exit on SIGTERM.

    A running store gets some writes; `chatmesh-store --backup DIR` copies
    it while it keeps serving; a second store started on DIR (another
    endpoint) answers the reads with the same records, and does not have a
    write made after the backup.                                           */
#include "test_st_util.h"

#include "cm_rpc.h"

#include <czmq.h>
#include <limits.h>
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>

extern char **environ;

#define S_UP_MS 20000 //  longest a start may take (ASan builds are slow)
#define S_SESSIONS 20

typedef struct {
    char dir[128];
    char binary[PATH_MAX];
} s_env_t;

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

//  Runs chatmesh-store with the given flags (NULL-terminated after the binary).
static pid_t
s_spawn (s_env_t *env, char **args)
{
    char *argv[16] = {env->binary};
    for (int i = 0; args[i]; i++) {
        assert_true (i + 2 < 16);
        argv[i + 1] = args[i];
    }
    pid_t pid = 0;
    assert_int_equal (posix_spawn (&pid, env->binary, NULL, NULL, argv, environ), 0);
    return pid;
}

//  Starts a store on store_dir serving endpoint.
static pid_t
s_start_store (s_env_t *env, const char *store_dir, const char *endpoint, const char *events)
{
    char *args[] = {"--store-dir", (char *) store_dir, "--store-endpoint", (char *) endpoint,
                    "--events-in-endpoint", (char *) events, "--log-level", "error", NULL};
    return s_spawn (env, args);
}

static int
s_exit_code (pid_t pid)
{
    int status = 0;
    assert_int_equal (waitpid (pid, &status, 0), pid);
    assert_true (WIFEXITED (status));
    return WEXITSTATUS (status);
}

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
            zclock_sleep (2); //  the DEALER has not connected yet
        cm_envelope_destroy (&reply);
        cm_envelope_destroy (&ping);
    }
    assert_int_equal (rc, 0);
}

static cm_envelope_t *
s_request (cm_msg_t type)
{
    cm_envelope_t *request = cm_envelope_new (type, NULL);
    cm_request_id (request->request_id, sizeof request->request_id);
    cm_map_set_str (request->payload, "user", "backup-user");
    cm_map_set_str (request->payload, "ip", "127.0.0.1");
    cm_map_set_str (request->payload, "ua", "backup-test");
    return request;
}

//  session_start; the assistant message id into assistant (>= 400 bytes).
static void
s_start_session (zsock_t *dealer, const char *session_id, const char *query, char *assistant)
{
    cm_envelope_t *request = s_request (CM_MSG_SESSION_START), *reply = NULL;
    cm_map_set_str (request->payload, "session_id", session_id);
    cm_map_set_str (request->payload, "query", query);
    assert_int_equal (cm_call (dealer, request, 5000, &reply), 0);
    snprintf (assistant, 400, "%s",
              cm_map_str_or (cm_map_get (reply->payload, "data"), "assistant_message_id", ""));
    assert_true (strlen (assistant) > 0);
    cm_envelope_destroy (&reply);
    cm_envelope_destroy (&request);
}

//  session_get: 0 with the first message's content into query, or the code.
static int
s_get_session (zsock_t *dealer, const char *session_id, char *query, size_t size)
{
    cm_envelope_t *request = s_request (CM_MSG_SESSION_GET), *reply = NULL;
    cm_map_set_str (request->payload, "session_id", session_id);
    int rc = cm_call (dealer, request, 5000, &reply);
    if (rc == 0) {
        const cm_value_t *messages =
            cm_map_get (cm_map_get (reply->payload, "session"), "messages");
        snprintf (query, size, "%s", cm_map_str_or (cm_arr_at (messages, 0), "content", ""));
    }
    cm_envelope_destroy (&reply);
    cm_envelope_destroy (&request);
    return rc;
}

static void
test_hot_backup_restores_and_sigterm_exits_0 (void **state)
{
    (void) state;
    s_env_t env;
    snprintf (env.dir, sizeof env.dir, "/tmp/st_backup_XXXXXX");
    assert_non_null (mkdtemp (env.dir));
    s_find_binary (env.binary, sizeof env.binary);
    char live_dir[256], backup_dir[256], live_ep[256], copy_ep[256], events[256];
    snprintf (live_dir, sizeof live_dir, "%s/live", env.dir);
    snprintf (backup_dir, sizeof backup_dir, "%s/backup", env.dir);
    snprintf (live_ep, sizeof live_ep, "ipc://%s/live.ipc", env.dir);
    snprintf (copy_ep, sizeof copy_ep, "ipc://%s/copy.ipc", env.dir);
    snprintf (events, sizeof events, "ipc://%s/events.ipc", env.dir);
    assert_int_equal (mkdir (live_dir, 0700), 0);

    pid_t live = s_start_store (&env, live_dir, live_ep, events);
    zsock_t *dealer = cm_dealer_new (live_ep);
    assert_non_null (dealer);
    s_wait_up (dealer);
    char assistant[S_SESSIONS][400];
    for (int i = 0; i < S_SESSIONS; i++) {
        char session_id[64], query[64];
        snprintf (session_id, sizeof session_id, "backup-%d", i);
        snprintf (query, sizeof query, "backed up question %d", i);
        s_start_session (dealer, session_id, query, assistant[i]);
    }
    cm_envelope_t *vote = s_request (CM_MSG_FEEDBACK_PUT), *reply = NULL;
    cm_map_set_str (vote->payload, "message_id", assistant[0]);
    cm_map_set_str (vote->payload, "feedback_type", "downvote");
    assert_int_equal (cm_call (dealer, vote, 5000, &reply), 0);
    cm_envelope_destroy (&reply);
    cm_envelope_destroy (&vote);

    //  The backup runs while the live store keeps serving.
    char *backup_args[] = {"--store-dir", live_dir, "--backup", backup_dir, "--log-level",
                           "error", NULL};
    assert_int_equal (s_exit_code (s_spawn (&env, backup_args)), 0);
    char data_mdb[300];
    snprintf (data_mdb, sizeof data_mdb, "%s/data.mdb", backup_dir);
    struct stat st;
    assert_int_equal (stat (data_mdb, &st), 0);
    assert_true (st.st_size > 0);
    //  A second backup into the same directory must not overwrite the first.
    assert_int_not_equal (s_exit_code (s_spawn (&env, backup_args)), 0);

    char late[400];
    s_start_session (dealer, "after-backup", "written after the backup", late);

    //  A second store on the copy, another endpoint.
    pid_t copy = s_start_store (&env, backup_dir, copy_ep, events);
    zsock_t *copy_dealer = cm_dealer_new (copy_ep);
    assert_non_null (copy_dealer);
    s_wait_up (copy_dealer);
    for (int i = 0; i < S_SESSIONS; i++) {
        char session_id[64], expected[64], query[128];
        snprintf (session_id, sizeof session_id, "backup-%d", i);
        snprintf (expected, sizeof expected, "backed up question %d", i);
        assert_int_equal (s_get_session (copy_dealer, session_id, query, sizeof query), 0);
        assert_string_equal (query, expected);
    }
    cm_envelope_t *get = s_request (CM_MSG_FEEDBACK_GET);
    cm_map_set_str (get->payload, "message_id", assistant[0]);
    assert_int_equal (cm_call (copy_dealer, get, 5000, &reply), 0);
    const cm_value_t *summary = cm_map_get (reply->payload, "feedback_summary");
    assert_int_equal (cm_map_int (summary, "downvotes", -1), 1);
    assert_int_equal (cm_map_int (summary, "total", -1), 1);
    cm_envelope_destroy (&reply);
    cm_envelope_destroy (&get);
    char query[128];
    assert_int_equal (s_get_session (copy_dealer, "after-backup", query, sizeof query),
                      CM_ENOTFOUND);
    //  The live store still has everything, the late write included.
    assert_int_equal (s_get_session (dealer, "after-backup", query, sizeof query), 0);
    assert_string_equal (query, "written after the backup");

    //  SIGTERM: both exit 0.
    assert_int_equal (kill (copy, SIGTERM), 0);
    assert_int_equal (s_exit_code (copy), 0);
    assert_int_equal (kill (live, SIGTERM), 0);
    assert_int_equal (s_exit_code (live), 0);

    zsock_destroy (&copy_dealer);
    zsock_destroy (&dealer);
    st_rmtree (env.dir);
}

int
main (void)
{
    zsys_init ();
    zsys_handler_set (NULL); //  the test process keeps default signal handling
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_hot_backup_restores_and_sigterm_exits_0),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
