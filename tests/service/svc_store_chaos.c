/*  svc_store_chaos: the store's fault suite (issue 26), on the real
    binaries, through the gateway. Three runs:

    - disk full while writes run: a writer thread sends turns without a
      pause while the store's 4 MiB tmpfs (mounting it needs root:
      otherwise the test exits 77, skipped) is filled twice, by a filler
      file and by the data itself. Every answer is 200 or 507
      insufficient_storage, /readyz says writes are refused, writes come
      back once space is freed without a restart. On the full disk a
      backup fails leaving no data.mdb, and a store whose lock.mdb was
      deleted exits 1 naming lock.mdb. Every acknowledged turn is there
      afterwards and the store verifies;
    - map full: a store with an 8 MiB map whose address space is limited
      (prlimit RLIMIT_AS) so the map cannot double: writes answer 507
      naming the map, the store does not crash, reads go on, and once the
      limit is lifted the next write grows the map and succeeds;
    - damage: a store of three sessions, stopped, is damaged in 14 ways
      (s_kinds) and started again. Each kind is one class: refused at
      start (exit 1, no signal, a log line naming the file, its words and
      docs/store.md; the damaged file left as it was), served exactly what
      was written, or refused per read (500 data_corrupted for the damaged
      record without its bytes, the others exact, --verify exit 1 naming
      the key). docs/store.md "When a file is damaged" has the table.   */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "svc_harness.h"
#include "svc_tmpfs.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define S_SKIP 77
#define S_MAX_ACKED 4000
#define S_QUERY_CHARS 8000
#define S_WAIT_MS 20000

static const char *s_env[] = {"CHAT_ACTIONS_RATE_LIMIT=0", "CHAT_REGENERATION_RATE_LIMIT=0",
                              "CHATMESH_LOG_LEVEL=notice", NULL};

//  ---------------------------------------------------------------------------
//  Shared helpers

//  An 8000-character question, different for each n (its first 12
//  characters), so a session served from another one's bytes shows.
static void
s_query (int n, char *query)
{
    snprintf (query, 13, "q%010d ", n);
    for (int i = 12; i < S_QUERY_CHARS; i++)
        query[i] = (char) ('a' + (i * 7 + n) % 26);
    query[S_QUERY_CHARS] = 0;
}

//  The store's log from byte offset on (caller frees).
static char *
s_log_since (svc_mesh_t *mesh, size_t offset)
{
    char path[700];
    snprintf (path, sizeof path, "%s/log/store.log", svc_mesh_dir (mesh));
    size_t size = 0;
    char *text = svc_read_bytes (path, &size);
    assert_non_null (text);
    assert_true (offset <= size);
    memmove (text, text + offset, size - offset + 1);
    return text;
}

static size_t
s_log_size (svc_mesh_t *mesh)
{
    char path[700];
    snprintf (path, sizeof path, "%s/log/store.log", svc_mesh_dir (mesh));
    struct stat st;
    return stat (path, &st) == 0 ? (size_t) st.st_size : 0;
}

//  Starts the store of the mesh and expects it to refuse: it exits by
//  itself (within the harness's 10 s bound, no signal) with status 1, and
//  what it logged holds every one of words (NULL-terminated).
static void
s_assert_start_refused (svc_mesh_t *mesh, const char *const *words)
{
    size_t offset = s_log_size (mesh);
    assert_int_equal (svc_mesh_spawn (mesh, "store"), 0);
    //  Signal 0: only waits for the exit (SIGKILL after 10 s, then -1).
    if (svc_mesh_kill (mesh, "store", 0))
        fail_msg ("the store did not refuse to start (it ran until killed)");
    int status = svc_mesh_exit_status (mesh, "store");
    char *log = s_log_since (mesh, offset);
    if (WIFSIGNALED (status))
        fail_msg ("the store died by signal %d: %s", WTERMSIG (status), log);
    assert_true (WIFEXITED (status));
    if (WEXITSTATUS (status) != 1)
        fail_msg ("the store exited %d, expected 1: %s", WEXITSTATUS (status), log);
    for (int i = 0; words[i]; i++)
        if (!strstr (log, words[i]))
            fail_msg ("the store's refusal does not say \"%s\": %s", words[i], log);
    free (log);
}

//  SIGTERM to the store: it stops cleanly (exit 0).
static void
s_stop_store (svc_mesh_t *mesh)
{
    assert_int_equal (svc_mesh_kill (mesh, "store", SIGTERM), 0);
    int status = svc_mesh_exit_status (mesh, "store");
    assert_true (WIFEXITED (status));
    assert_int_equal (WEXITSTATUS (status), 0);
}

//  The store is running (not exited, not a zombie).
static void
s_assert_store_alive (svc_mesh_t *mesh)
{
    int pid = svc_mesh_pid (mesh, "store");
    assert_true (pid > 0);
    int status;
    pid_t got = waitpid (pid, &status, WNOHANG);
    if (got == pid && WIFSIGNALED (status))
        fail_msg ("the store died by signal %d", WTERMSIG (status));
    assert_int_equal (got, 0);
}

static void
s_write_file (const char *path, const void *bytes, size_t len)
{
    int fd = open (path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    assert_true (fd >= 0);
    assert_int_equal (write (fd, bytes, len), (ssize_t) len);
    assert_int_equal (close (fd), 0);
}

static void
s_patch (const char *path, long offset, const void *bytes, size_t len)
{
    int fd = open (path, O_WRONLY);
    assert_true (fd >= 0);
    assert_int_equal (pwrite (fd, bytes, len, offset), (ssize_t) len);
    close (fd);
}

static void
s_shell (const char *format, ...)
{
    char command[4096];
    va_list args;
    va_start (args, format);
    vsnprintf (command, sizeof command, format, args);
    va_end (args);
    char output[4096];
    if (svc_run (command, output, sizeof output) != 0)
        fail_msg ("%s failed: %s", command, output);
}

//  ---------------------------------------------------------------------------
//  Disk full while writes run

typedef struct {
    svc_mesh_t *mesh;
    char *token;
    atomic_bool stop;
    atomic_int acked;   //  turns answered 200; their numbers in acked_n
    atomic_int refused; //  answered 507 insufficient_storage
    atomic_int other;   //  anything else: a failure, described in other_text
    int acked_n[S_MAX_ACKED];
    char other_text[400];
} s_writer_t;

//  Turns without a pause until stop, each with a fresh session and a
//  question of its own.
static void *
s_writer_run (void *arg)
{
    s_writer_t *w = arg;
    char *query = malloc (S_QUERY_CHARS + 1);
    for (int n = 0; !atomic_load (&w->stop) && atomic_load (&w->acked) < S_MAX_ACKED; n++) {
        char session[32];
        snprintf (session, sizeof session, "w_%d", n);
        s_query (n, query);
        svc_response_t r;
        long status = svc_turn (w->mesh, w->token, session, query, &r);
        const char *code = svc_json_str (r.json, "code", NULL);
        if (status == 200) {
            w->acked_n[atomic_load (&w->acked)] = n;
            atomic_fetch_add (&w->acked, 1);
        }
        else if (status == 507 && code && strcmp (code, "insufficient_storage") == 0
                 && r.body && strstr (r.body, "disk is full"))
            atomic_fetch_add (&w->refused, 1);
        else if (atomic_fetch_add (&w->other, 1) == 0)
            snprintf (w->other_text, sizeof w->other_text, "turn %d answered %ld: %.300s", n,
                      status, r.body ? r.body : "");
        svc_response_free (&r);
    }
    free (query);
    return NULL;
}

//  Waits until *counter reaches at least target. 0 or -1 (timeout).
static int
s_await_count (atomic_int *counter, int target)
{
    for (double start = svc_now_ms (); svc_now_ms () - start < S_WAIT_MS;) {
        if (atomic_load (counter) >= target)
            return 0;
        usleep (10000);
    }
    return -1;
}

static void
s_assert_not_ready (svc_mesh_t *mesh)
{
    svc_response_t r;
    assert_int_equal (svc_http (mesh, "GET", "/readyz", NULL, NULL, &r), 0);
    assert_int_equal (r.status, 503);
    assert_string_equal (svc_json_str (r.json, "store_writes", NULL), "refused_disk_full");
    svc_response_free (&r);
}

//  Space was freed: /readyz is ready again and the writer's turns are
//  acknowledged again, without a restart of anything.
static void
s_assert_writes_back (s_writer_t *w)
{
    assert_int_equal (svc_mesh_wait_status (w->mesh, "/readyz", 200, S_WAIT_MS), 0);
    assert_int_equal (s_await_count (&w->acked, atomic_load (&w->acked) + 3), 0);
}

//  Every acknowledged turn's question is in its session, whole.
static void
s_assert_acked_present (s_writer_t *w)
{
    char *query = malloc (S_QUERY_CHARS + 1);
    for (int i = 0; i < atomic_load (&w->acked); i++) {
        char path[64];
        snprintf (path, sizeof path, "/api/sessions/w_%d", w->acked_n[i]);
        svc_response_t r;
        assert_int_equal (svc_http (w->mesh, "GET", path, w->token, NULL, &r), 0);
        if (r.status != 200)
            fail_msg ("acknowledged %s: %ld %.200s", path, r.status, r.body);
        s_query (w->acked_n[i], query);
        if (!strstr (r.body, query))
            fail_msg ("acknowledged %s lost or changed its question", path);
        svc_response_free (&r);
    }
    free (query);
}

static svc_tmpfs_t s_fs;
//  Set when no tmpfs could be mounted: the other runs go on, and the
//  binary exits 77 (skipped) instead of 0 afterwards.
static bool s_mount_refused;

//  The tmpfs goes, whatever the test did (a failed assertion included).
static int
s_unmount (void **state)
{
    (void) state;
    svc_tmpfs_unmount (&s_fs);
    return 0;
}

static void
test_disk_full_while_writing (void **state)
{
    (void) state;
    char why[300];
    if (svc_tmpfs_mount (&s_fs, "svc_chaos_fs_", 4, why, sizeof why)) {
        fprintf (stderr, "skipped: the disk-full run: %s\n", why);
        s_mount_refused = true;
        skip ();
    }
    const char *mnt = s_fs.path;
    char store_env[700], store[600], filler[600], ballast[600], path[700];
    snprintf (store, sizeof store, "%s/store", mnt);
    snprintf (store_env, sizeof store_env, "CHATMESH_STORE_DIR=%s", store);
    snprintf (filler, sizeof filler, "%s/filler", mnt);
    snprintf (ballast, sizeof ballast, "%s/ballast", mnt);
    const char *env[] = {s_env[0], s_env[1], s_env[2], store_env, NULL};
    static s_writer_t w;
    w.mesh = svc_mesh_start (env);
    assert_non_null (w.mesh);
    w.token = svc_token (w.mesh, "chaos_disk", 3600);
    pthread_t writer;
    assert_int_equal (pthread_create (&writer, NULL, s_writer_run, &w), 0);
    assert_int_equal (s_await_count (&w.acked, 5), 0);

    //  1. A filler file takes the disk under the running writes.
    assert_int_equal (svc_tmpfs_fill (filler), 0);
    assert_int_equal (s_await_count (&w.refused, 1), 0);
    s_assert_not_ready (w.mesh);
    assert_int_equal (unlink (filler), 0);
    s_assert_writes_back (&w);

    //  2. The data itself takes the disk; freeing a ballast file is what
    //  brings it back (1.5 MiB: above the store's low mark).
    static char mib[3 << 19];
    s_write_file (ballast, mib, sizeof mib);
    int refused = atomic_load (&w.refused);
    assert_int_equal (s_await_count (&w.refused, refused + 1), 0);
    s_assert_not_ready (w.mesh);
    assert_int_equal (unlink (ballast), 0);
    s_assert_writes_back (&w);
    atomic_store (&w.stop, true);
    assert_int_equal (pthread_join (writer, NULL), 0);
    //  The answers to the writer's turns are still being generated, and
    //  their progress (with its event log) would fill the disk again behind
    //  the steps below, which fill it on purpose: the regenerator rests
    //  until the end.
    assert_int_equal (svc_mesh_kill (w.mesh, "regenerator", SIGTERM), 0);
    (void) svc_mesh_exit_status (w.mesh, "regenerator");
    if (atomic_load (&w.other))
        fail_msg ("%d answers neither 200 nor 507 insufficient_storage; the first: %s",
                  atomic_load (&w.other), w.other_text);
    char *log = s_log_since (w.mesh, 0);
    assert_non_null (strstr (log, "commit refused: the disk holding"));
    free (log);
    s_assert_acked_present (&w);

    //  3. A backup onto the full disk fails and leaves no data.mdb (nor
    //  its partial copy) behind.
    assert_int_equal (svc_tmpfs_fill (filler), 0);
    char output[16384], command[2048];
    snprintf (command, sizeof command,
              "%s/store/chatmesh-store --store-dir %s --backup %s/backup 2>&1",
              getenv ("CHATMESH_BIN_DIR"), store, mnt);
    assert_int_equal (svc_run (command, output, sizeof output), 1);
    assert_non_null (strstr (output, "No space left on device"));
    snprintf (path, sizeof path, "%s/backup/data.mdb", mnt);
    assert_int_not_equal (access (path, F_OK), 0);
    snprintf (path, sizeof path, "%s/backup/data.mdb.partial", mnt);
    assert_int_not_equal (access (path, F_OK), 0);

    //  4. lock.mdb deleted, the disk full: the store exits 1 naming it.
    s_stop_store (w.mesh);
    snprintf (path, sizeof path, "%s/lock.mdb", store);
    assert_int_equal (unlink (path), 0);
    snprintf (path, sizeof path, "%s/filler2", mnt);
    assert_int_equal (svc_tmpfs_fill (path), 0);
    s_assert_start_refused (w.mesh, (const char *[]) {"lock.mdb", "No space left on device",
                                                      NULL});
    assert_int_equal (unlink (path), 0);
    assert_int_equal (unlink (filler), 0);
    assert_int_equal (svc_mesh_spawn (w.mesh, "store"), 0);
    assert_int_equal (svc_mesh_spawn (w.mesh, "regenerator"), 0);
    assert_int_equal (svc_mesh_wait_status (w.mesh, "/readyz", 200, S_WAIT_MS), 0);
    s_assert_acked_present (&w);
    assert_true (atomic_load (&w.acked) > 20);
    assert_int_equal (svc_store_verify (store, output, sizeof output), 0);
    fprintf (stderr, "disk: %d turns acknowledged and kept, %d refused with 507\n",
             atomic_load (&w.acked), atomic_load (&w.refused));
    free (w.token);
    svc_mesh_stop (&w.mesh);
}

//  ---------------------------------------------------------------------------
//  Map full: the grow refused by the address space

//  Sets the store's soft RLIMIT_AS to its size now plus room bytes (the
//  hard limit stays, so it can be lifted again); room 0 lifts it.
static void
s_limit_store (svc_mesh_t *mesh, long room)
{
    int pid = svc_mesh_pid (mesh, "store");
    struct rlimit limit;
    assert_int_equal (prlimit (pid, RLIMIT_AS, NULL, &limit), 0);
    if (room == 0)
        limit.rlim_cur = limit.rlim_max;
    else {
        char path[64];
        snprintf (path, sizeof path, "/proc/%d/statm", pid);
        FILE *statm = fopen (path, "r");
        assert_non_null (statm);
        long pages = 0;
        assert_int_equal (fscanf (statm, "%ld", &pages), 1);
        fclose (statm);
        limit.rlim_cur = (rlim_t) pages * (rlim_t) sysconf (_SC_PAGESIZE) + (rlim_t) room;
    }
    assert_int_equal (prlimit (pid, RLIMIT_AS, &limit, NULL), 0);
}

static void
test_map_full_grow_refused (void **state)
{
    (void) state;
    const char *env[] = {s_env[0], s_env[1], s_env[2], "CHATMESH_STORE_MAP_MB=8", NULL};
    svc_mesh_t *mesh = svc_mesh_start (env);
    assert_non_null (mesh);
    char *token = svc_token (mesh, "chaos_map", 3600);
    //  6 MiB of room: the doubled map (16 MiB, mapped beside the old one
    //  for an instant) does not fit, the store's own allocations do.
    s_limit_store (mesh, 6 << 20);
    char *query = malloc (S_QUERY_CHARS + 1);
    int acked = 0;
    svc_response_t r = {0};
    for (; acked < 3000; acked++) {
        char session[32];
        snprintf (session, sizeof session, "m_%d", acked);
        s_query (acked, query);
        long status = svc_turn (mesh, token, session, query, &r);
        if (status != 200)
            break;
        svc_response_free (&r);
    }
    if (r.status != 507)
        fail_msg ("a write into a full map answered %ld: %.300s", r.status, r.body);
    assert_string_equal (svc_json_str (r.json, "code", NULL), "insufficient_storage");
    assert_non_null (strstr (r.body, "map is full"));
    svc_response_free (&r);
    assert_true (acked > 50);
    s_assert_store_alive (mesh);
    //  Reads go on, exactly.
    for (int i = 0; i < acked; i++) {
        char path[64];
        snprintf (path, sizeof path, "/api/sessions/m_%d", i);
        assert_int_equal (svc_http (mesh, "GET", path, token, NULL, &r), 0);
        assert_int_equal (r.status, 200);
        s_query (i, query);
        assert_non_null (strstr (r.body, query));
        svc_response_free (&r);
    }
    char *log = s_log_since (mesh, 0);
    assert_non_null (strstr (log, "growing the LMDB map of"));
    assert_non_null (strstr (log, "writes that need more room are refused"));
    assert_null (strstr (log, "no map left"));
    free (log);

    //  The limit lifted, writes are kept again: the first that needs
    //  room grows the map (a smaller one may still fit without).
    s_limit_store (mesh, 0);
    int after = 0;
    for (bool grown = false; !grown; after++) {
        assert_true (after < 200);
        char session[32];
        snprintf (session, sizeof session, "m_after_%d", after);
        s_query (acked + after, query);
        assert_int_equal (svc_turn (mesh, token, session, query, &r), 200);
        svc_response_free (&r);
        log = s_log_since (mesh, 0);
        grown = strstr (log, "LMDB map grown to 16 MiB") != NULL;
        free (log);
    }
    for (int i = 0; i < after; i++) {
        char path[64];
        snprintf (path, sizeof path, "/api/sessions/m_after_%d", i);
        assert_int_equal (svc_http (mesh, "GET", path, token, NULL, &r), 0);
        assert_int_equal (r.status, 200);
        s_query (acked + i, query);
        assert_non_null (strstr (r.body, query));
        svc_response_free (&r);
    }
    fprintf (stderr, "map: %d turns kept, then 507; %d more kept once the limit was lifted\n",
             acked, after);
    s_assert_store_alive (mesh);
    free (query);
    free (token);
    svc_mesh_stop (&mesh);
}

//  ---------------------------------------------------------------------------
//  Damage at start

#define S_SESSIONS 3

typedef enum { S_REFUSED, S_SERVED, S_PER_READ } s_class_t;

typedef struct {
    svc_mesh_t *mesh;
    char *token;
    char store[600];    //  the mesh's store directory
    char data[700];     //  its data.mdb
    char pristine[600]; //  a copy of the store directory, stopped
    char backup[600];   //  a backup of it (chatmesh-store --backup)
    json_t *truth[S_SESSIONS]; //  GET /api/sessions/ID as written
    //  Set by a damage of class S_PER_READ: the session read that must
    //  answer data_corrupted, the words --verify must print and a text
    //  the answer must not hold.
    int damaged_session;
    char verify_words[200];
    char hidden[64];
} s_damage_t;

static const char *s_texts[S_SESSIONS] = {
    "which mineral is quartz, and which is feldspar",
    "how far does a glacier move in one winter",
    "name three rivers that cross the Sahel"};

static void
s_session_id (int i, char *id, size_t size)
{
    snprintf (id, size, "dmg_s%d", i);
}

static size_t
s_file_size (const char *path)
{
    struct stat st;
    assert_int_equal (stat (path, &st), 0);
    return (size_t) st.st_size;
}

//  LMDB's meta pages (page 0 and 1 of data.mdb, 4096 bytes each here):
//  the offsets of the fields the damages touch.
#define S_PAGE 4096
#define S_META_MAGIC 16
#define S_META_MAIN_ROOT (16 + 24 + 48 + 40)
#define S_META_TXNID (16 + 24 + 96 + 8)

static uint64_t
s_u64_at (const unsigned char *p)
{
    uint64_t value;
    memcpy (&value, p, sizeof value);
    return value;
}

//  The meta page LMDB opens: the one with the larger txnid.
static long
s_newest_meta (const unsigned char *bytes)
{
    return s_u64_at (bytes + S_META_TXNID) > s_u64_at (bytes + S_PAGE + S_META_TXNID) ? 0
                                                                                      : S_PAGE;
}

static void
s_truncate (s_damage_t *d, size_t size)
{
    assert_int_equal (truncate (d->data, (off_t) size), 0);
}

static void
s_damage_short_8k (s_damage_t *d)
{
    s_truncate (d, s_file_size (d->data) - 8192);
}

static void
s_damage_half (s_damage_t *d)
{
    s_truncate (d, s_file_size (d->data) / 2);
}

static void
s_damage_empty (s_damage_t *d)
{
    s_truncate (d, 0);
}

static void
s_damage_deleted (s_damage_t *d)
{
    assert_int_equal (unlink (d->data), 0);
}

static void
s_damage_both_meta (s_damage_t *d)
{
    const char zeros[16] = {0};
    s_patch (d->data, S_META_MAGIC, zeros, sizeof zeros);
    s_patch (d->data, S_PAGE + S_META_MAGIC, zeros, sizeof zeros);
}

static void
s_damage_one_meta (s_damage_t *d)
{
    static const char zeros[S_PAGE];
    s_patch (d->data, S_PAGE, zeros, sizeof zeros);
}

//  The newest meta page's main root points at a leaf page of the data (a
//  page holding the first session's id, not the page of the names).
static void
s_damage_root_to_leaf (s_damage_t *d)
{
    size_t size;
    unsigned char *bytes = (unsigned char *) svc_read_bytes (d->data, &size);
    assert_non_null (bytes);
    uint64_t leaf = 0;
    for (size_t page = 2; !leaf && (page + 1) * S_PAGE <= size; page++) {
        const unsigned char *p = bytes + page * S_PAGE;
        if ((p[10] & 0x02) && memmem (p, S_PAGE, "dmg_s0", 6)
            && !memmem (p, S_PAGE, "user_sessions", 13))
            leaf = page;
    }
    assert_true (leaf >= 2);
    long meta = s_newest_meta (bytes);
    free (bytes);
    s_patch (d->data, meta + S_META_MAIN_ROOT, &leaf, sizeof leaf);
}

//  Flips one byte at the first place in data.mdb where --verify then
//  names d->verify_words: a key or a text is found in several databases.
//  at(bytes, size, from) gives the next candidate offset at or after
//  from, or -1.
static void
s_flip_where (s_damage_t *d, long (*at) (const unsigned char *, size_t, long), unsigned char bit)
{
    size_t size;
    unsigned char *bytes = (unsigned char *) svc_read_bytes (d->data, &size);
    assert_non_null (bytes);
    char output[16384];
    bool done = false;
    for (long offset = at (bytes, size, 2 * S_PAGE); !done && offset >= 0;
         offset = at (bytes, size, offset + 1)) {
        unsigned char flipped = bytes[offset] ^ bit;
        s_patch (d->data, offset, &flipped, 1);
        done = svc_store_verify (d->store, output, sizeof output) == 1
               && strstr (output, d->verify_words);
        if (!done)
            s_patch (d->data, offset, bytes + offset, 1);
    }
    free (bytes);
    if (!done)
        fail_msg ("no byte found whose flip makes --verify say %s", d->verify_words);
}

//  The middle byte of the value (past its 5-byte checksum envelope) of a
//  leaf node whose key is exactly "dmg_s1". LMDB's leaf node: data size
//  (u16 lo, u16 hi), flags (u16), key size (u16), key, data.
static long
s_session_value_at (const unsigned char *bytes, size_t size, long from)
{
    const char key[] = "dmg_s1";
    size_t key_len = sizeof key - 1;
    for (const unsigned char *p = bytes + from; p + key_len < bytes + size; p++) {
        p = memmem (p, size - (size_t) (p - bytes), key, key_len);
        if (!p)
            return -1;
        size_t data_size = (size_t) (p[-8] | p[-7] << 8) | (size_t) (p[-6] | p[-5] << 8) << 16;
        if ((size_t) (p[-2] | p[-1] << 8) == key_len && (p[-4] | p[-3] << 8) == 0
            && data_size > 5 + 1)
            return (long) (p - bytes) + (long) key_len + 5 + (long) (data_size - 5) / 2;
    }
    return -1;
}

//  The "S" of "Sahel" in a copy of the third session's question.
static long
s_sahel_at (const unsigned char *bytes, size_t size, long from)
{
    const char *text = s_texts[2];
    const unsigned char *p = memmem (bytes + from, size - (size_t) from, text, strlen (text));
    return p ? (long) (p - bytes) + (long) (strstr (text, "Sahel") - text) : -1;
}

//  A byte of the second session's record in sessions (its value, not its
//  key): the session read is refused, the others are served.
static void
s_damage_session_value (s_damage_t *d)
{
    d->damaged_session = 1;
    snprintf (d->verify_words, sizeof d->verify_words, "damaged: sessions key \"dmg_s1\"");
    snprintf (d->hidden, sizeof d->hidden, "glacier");
    s_flip_where (d, s_session_value_at, 0x01);
}

//  A byte inside the third session's question in its messages record
//  (key: session id, \0, seq as 8 bytes): "Sahel" becomes "sahel".
static void
s_damage_message_text (s_damage_t *d)
{
    d->damaged_session = 2;
    snprintf (d->verify_words, sizeof d->verify_words, "damaged: messages key \"dmg_s2\\x00");
    snprintf (d->hidden, sizeof d->hidden, "ahel");
    s_flip_where (d, s_sahel_at, 0x20);
}

//  A backup cut short (as a failed copy used to leave it), restored as
//  the store's only file.
static void
s_damage_partial_backup (s_damage_t *d)
{
    s_shell ("rm -f %s/* && cp %s/data.mdb %s/", d->store, d->backup, d->store);
    s_truncate (d, s_file_size (d->data) / 2);
}

//  A whole backup restored as the store's only file: migrated, served.
static void
s_damage_restored_backup (s_damage_t *d)
{
    s_shell ("rm -f %s/* && cp %s/data.mdb %s/", d->store, d->backup, d->store);
}

static void
s_damage_lock_deleted (s_damage_t *d)
{
    s_shell ("rm %s/lock.mdb", d->store);
}

static void
s_damage_format_deleted (s_damage_t *d)
{
    s_shell ("rm %s/chatmesh-store.format", d->store);
}

typedef struct {
    const char *name;
    void (*damage) (s_damage_t *d);
    s_class_t expect;
    //  S_REFUSED: what the log line says besides the path of data.mdb and
    //  docs/store.md.
    const char *words;
} s_kind_t;

static const s_kind_t s_kinds[] = {
    {"data.mdb 8 KiB short", s_damage_short_8k, S_REFUSED, "it was truncated"},
    {"data.mdb cut to half", s_damage_half, S_REFUSED, "it was truncated"},
    {"data.mdb empty", s_damage_empty, S_REFUSED, "is empty (0 bytes)"},
    {"data.mdb deleted", s_damage_deleted, S_REFUSED, "is missing"},
    {"both meta pages damaged", s_damage_both_meta, S_REFUSED, "meta page 0 has a wrong magic"},
    {"one meta page zeroed", s_damage_one_meta, S_REFUSED, "meta page 1 is not a meta page"},
    {"meta root at a leaf page", s_damage_root_to_leaf, S_REFUSED, "has no named database"},
    {"a partial backup restored", s_damage_partial_backup, S_REFUSED, "it was truncated"},
    {"a byte of a sessions value", s_damage_session_value, S_PER_READ, NULL},
    {"a byte of a message text", s_damage_message_text, S_PER_READ, NULL},
    {"a whole backup restored", s_damage_restored_backup, S_SERVED, NULL},
    {"lock.mdb deleted", s_damage_lock_deleted, S_SERVED, NULL},
    {"the format file deleted", s_damage_format_deleted, S_SERVED, NULL},
    {"no damage", NULL, S_SERVED, NULL},
};

//  What data.mdb is after the damage: a refusal must leave it so.
typedef struct {
    bool exists;
    size_t size;
    char *bytes;
} s_snapshot_t;

static s_snapshot_t
s_snapshot (const char *path)
{
    s_snapshot_t snapshot = {0};
    snapshot.bytes = svc_read_bytes (path, &snapshot.size);
    snapshot.exists = snapshot.bytes != NULL;
    return snapshot;
}

//  Each session read: the written one exactly, or (the damaged one)
//  500 data_corrupted without its text.
static void
s_assert_reads (s_damage_t *d, int damaged, const char *kind)
{
    for (int i = 0; i < S_SESSIONS; i++) {
        char id[32], path[64];
        s_session_id (i, id, sizeof id);
        snprintf (path, sizeof path, "/api/sessions/%s", id);
        svc_response_t r;
        assert_int_equal (svc_http (d->mesh, "GET", path, d->token, NULL, &r), 0);
        if (i == damaged) {
            if (r.status != 500 || !svc_json_str (r.json, "code", NULL)
                || strcmp (svc_json_str (r.json, "code", NULL), "data_corrupted"))
                fail_msg ("%s: the damaged %s answered %ld %.300s", kind, id, r.status, r.body);
            if (strstr (r.body, d->hidden))
                fail_msg ("%s: the refusal shows the damaged bytes: %s", kind, r.body);
        }
        else if (r.status != 200 || !json_equal (r.json, d->truth[i])) {
            char *truth = json_dumps (d->truth[i], JSON_COMPACT);
            fail_msg ("%s: %s answered %ld, not what was written: %s\nwritten: %s", kind, id,
                      r.status, r.body, truth);
        }
        svc_response_free (&r);
    }
}

static void
s_run_kind (s_damage_t *d, const s_kind_t *kind)
{
    s_shell ("rm -rf %s && cp -a %s %s", d->store, d->pristine, d->store);
    d->damaged_session = -1;
    if (kind->damage)
        kind->damage (d);
    if (kind->expect == S_REFUSED) {
        s_snapshot_t before = s_snapshot (d->data);
        s_assert_start_refused (d->mesh, (const char *[]) {d->data, kind->words,
                                                           "docs/store.md", NULL});
        //  The refusal changed nothing: no new store in its place.
        s_snapshot_t after = s_snapshot (d->data);
        if (after.exists != before.exists || after.size != before.size
            || (after.exists && memcmp (after.bytes, before.bytes, after.size)))
            fail_msg ("%s: the refused start changed data.mdb", kind->name);
        free (before.bytes);
        free (after.bytes);
        return;
    }
    assert_int_equal (svc_mesh_spawn (d->mesh, "store"), 0);
    if (svc_mesh_wait_status (d->mesh, "/readyz", 200, S_WAIT_MS))
        fail_msg ("%s: the store did not come up", kind->name);
    s_assert_reads (d, kind->expect == S_PER_READ ? d->damaged_session : -1, kind->name);
    char output[16384];
    int verified = svc_store_verify (d->store, output, sizeof output);
    if (kind->expect == S_PER_READ) {
        assert_int_equal (verified, 1);
        assert_non_null (strstr (output, d->verify_words));
        assert_null (strstr (output, d->hidden));
    }
    else if (verified != 0)
        fail_msg ("%s: --verify exited %d: %s", kind->name, verified, output);
    s_stop_store (d->mesh);
}

//  GET path once its answer is complete (the assistant's message no
//  longer regenerating): what the store holds from then on. NULL when it
//  did not complete in time.
static json_t *
s_await_answer (svc_mesh_t *mesh, const char *token, const char *path)
{
    for (double start = svc_now_ms (); svc_now_ms () - start < S_WAIT_MS; usleep (20000)) {
        svc_response_t r;
        assert_int_equal (svc_http (mesh, "GET", path, token, NULL, &r), 0);
        json_t *messages = json_object_get (json_object_get (r.json, "session"), "messages");
        json_t *last = json_array_get (messages, json_array_size (messages) - 1);
        json_t *regenerating = json_object_get (json_object_get (last, "metadata"),
                                                "regenerating");
        const char *role = svc_json_str (last, "role", NULL);
        if (r.status == 200 && role && strcmp (role, "assistant") == 0
            && json_is_false (regenerating)) {
            json_t *done = json_incref (r.json);
            svc_response_free (&r);
            return done;
        }
        svc_response_free (&r);
    }
    return NULL;
}

static void
test_damage_kinds (void **state)
{
    (void) state;
    static s_damage_t d;
    d.mesh = svc_mesh_start (s_env);
    assert_non_null (d.mesh);
    d.token = svc_token (d.mesh, "chaos_dmg", 3600);
    for (int i = 0; i < S_SESSIONS; i++) {
        char id[32], path[64];
        s_session_id (i, id, sizeof id);
        svc_response_t r;
        assert_int_equal (svc_turn (d.mesh, d.token, id, s_texts[i], &r), 200);
        svc_response_free (&r);
        snprintf (path, sizeof path, "/api/sessions/%s", id);
        d.truth[i] = s_await_answer (d.mesh, d.token, path);
        assert_non_null (d.truth[i]);
        char *written = json_dumps (d.truth[i], 0);
        assert_non_null (strstr (written, s_texts[i]));
        free (written);
    }
    s_stop_store (d.mesh);
    const char *dir = svc_mesh_dir (d.mesh);
    snprintf (d.store, sizeof d.store, "%s/store", dir);
    snprintf (d.data, sizeof d.data, "%s/data.mdb", d.store);
    snprintf (d.pristine, sizeof d.pristine, "%s/pristine", dir);
    snprintf (d.backup, sizeof d.backup, "%s/backup", dir);
    s_shell ("cp -a %s %s", d.store, d.pristine);
    s_shell ("%s/store/chatmesh-store --store-dir %s --backup %s 2>&1", getenv ("CHATMESH_BIN_DIR"),
             d.pristine, d.backup);
    int classes[3] = {0};
    for (size_t i = 0; i < sizeof s_kinds / sizeof s_kinds[0]; i++) {
        s_run_kind (&d, &s_kinds[i]);
        classes[s_kinds[i].expect]++;
        fprintf (stderr, "ok: %-28s %s\n", s_kinds[i].name,
                 s_kinds[i].expect == S_REFUSED  ? "refused at start"
                 : s_kinds[i].expect == S_SERVED ? "served exactly"
                                                 : "refused per read");
    }
    assert_int_equal (classes[S_REFUSED], 8);
    assert_int_equal (classes[S_PER_READ], 2);
    for (int i = 0; i < S_SESSIONS; i++)
        json_decref (d.truth[i]);
    free (d.token);
    svc_mesh_stop (&d.mesh);
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown (test_disk_full_while_writing, s_unmount),
        cmocka_unit_test (test_map_full_grow_refused),
        cmocka_unit_test (test_damage_kinds),
    };
    int failed = cmocka_run_group_tests (tests, NULL, NULL);
    return failed ? failed : s_mount_refused ? S_SKIP : 0;
}
