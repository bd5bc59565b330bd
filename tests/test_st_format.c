/*  test_st_format.c: the store's identity file, the meta-page and size
    checks, and st_db_open on damaged or missing files.

    Every st_db_open of a damaged directory runs in a forked child, so a
    crash by signal (SIGBUS on a truncated file, SIGSEGV after a failed
    map grow) fails the test instead of ending it; the child's log is
    checked to name the file.                                              */
#include "test_st_util.h"

#include "cm_log.h"
#include "st_format.h"

#include <fcntl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>

#define S_RECORDS 300

//  --------------------------------------------------------------------------
//  The format file

static void
test_format_round_trip (void **state)
{
    (void) state;
    st_format_t format, back;
    assert_int_equal (st_format_new (&format), 0);
    assert_int_equal (format.version, ST_FORMAT_VERSION);
    assert_int_equal (strlen (format.id), 32);
    char text[256], why[ST_FORMAT_WHY_MAX];
    size_t len = st_format_print (&format, text, sizeof text);
    assert_true (len > 0);
    assert_int_equal (st_format_parse (text, len, &back, why, sizeof why), 0);
    assert_string_equal (back.id, format.id);
    assert_int_equal (back.created_ms, format.created_ms);
    //  Two new identities differ.
    st_format_t other;
    assert_int_equal (st_format_new (&other), 0);
    assert_string_not_equal (other.id, format.id);
    //  Too small a buffer is 0, not a cut file.
    assert_int_equal (st_format_print (&format, text, 20), 0);
}

static void
test_format_parse_refuses (void **state)
{
    (void) state;
    const char *bad[] = {
        "",
        "chatmesh-store format 99\nid 0123456789abcdef0123456789abcdef\ncreated_ms 1\n",
        "chatmesh-store format 0\nid 0123456789abcdef0123456789abcdef\ncreated_ms 1\n",
        "chatmesh-store format 1\nid 0123456789abcdef\ncreated_ms 1\n",
        "chatmesh-store format 1\nid 0123456789ABCDEF0123456789ABCDEF\ncreated_ms 1\n",
        "chatmesh-store format 1\nid 0123456789abcdef0123456789abcdef\ncreated_ms 1\nmore\n",
        "chatmesh-store format 1\nid 0123456789abcdef0123456789abcdef\n",
        "lmdb\n",
    };
    const char *good = "chatmesh-store format 1\nid 0123456789abcdef0123456789abcdef\n"
                       "created_ms 1764000000000\n";
    st_format_t format;
    char why[ST_FORMAT_WHY_MAX];
    assert_int_equal (st_format_parse (good, strlen (good), &format, why, sizeof why), 0);
    assert_int_equal (format.created_ms, 1764000000000LL);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        why[0] = 0;
        assert_int_equal (st_format_parse (bad[i], strlen (bad[i]), &format, why, sizeof why),
                          CM_EPROTO);
        assert_true (strlen (why) > 0);
    }
    //  A NUL inside, and a file longer than any format file.
    char nul[80];
    memcpy (nul, good, 40);
    nul[10] = 0;
    assert_int_equal (st_format_parse (nul, 40, &format, why, sizeof why), CM_EPROTO);
    char long_text[400];
    memset (long_text, 'a', sizeof long_text);
    assert_int_equal (st_format_parse (long_text, sizeof long_text, &format, why, sizeof why),
                      CM_EPROTO);
    assert_non_null (strstr (why, "longer"));
}

static void
test_format_write_read (void **state)
{
    (void) state;
    char dir[] = "/tmp/st_format_XXXXXX";
    assert_non_null (mkdtemp (dir));
    st_format_t format, back;
    char why[ST_FORMAT_WHY_MAX];
    assert_int_equal (st_format_read (dir, &back, why, sizeof why), CM_ENOTFOUND);
    assert_int_equal (st_format_new (&format), 0);
    assert_int_equal (st_format_write (dir, &format), 0);
    assert_int_equal (st_format_read (dir, &back, why, sizeof why), 0);
    assert_string_equal (back.id, format.id);
    //  No temp file is left behind.
    char path[256];
    snprintf (path, sizeof path, "%s/%s.tmp", dir, ST_FORMAT_FILE);
    assert_int_not_equal (access (path, F_OK), 0);
    //  A directory that cannot be written: CM_EIO, nothing changed.
    assert_int_equal (st_format_write ("/nonexistent-dir", &format), CM_EIO);
    st_rmtree (dir);
}

static void
test_format_decide (void **state)
{
    (void) state;
    assert_int_equal (st_format_decide (false, -1), ST_OPEN_NEW);
    assert_int_equal (st_format_decide (true, 8192), ST_OPEN_EXISTING);
    assert_int_equal (st_format_decide (false, 8192), ST_OPEN_MIGRATE);
    assert_int_equal (st_format_decide (true, -1), ST_OPEN_NO_DATA);
    assert_int_equal (st_format_decide (true, 0), ST_OPEN_EMPTY_DATA);
    assert_int_equal (st_format_decide (false, 0), ST_OPEN_EMPTY_DATA);
}

static void
test_check_size (void **state)
{
    (void) state;
    char why[ST_FORMAT_WHY_MAX];
    assert_int_equal (st_format_check_size (12288, 2, 4096, why, sizeof why), 0);
    assert_int_equal (st_format_check_size (1 << 20, 2, 4096, why, sizeof why), 0);
    assert_int_equal (st_format_check_size (12287, 2, 4096, why, sizeof why), CM_EPROTO);
    assert_non_null (strstr (why, "12287 bytes"));
    assert_non_null (strstr (why, "12288 bytes"));
    assert_int_equal (st_format_check_size (8192, 2, 4096, why, sizeof why), CM_EPROTO);
    //  A last page number from a damaged file that would overflow.
    assert_int_equal (st_format_check_size (8192, UINT64_MAX - 1, 4096, why, sizeof why),
                      CM_EPROTO);
    assert_int_equal (st_format_check_size (8192, UINT64_MAX, 65536, why, sizeof why), CM_EPROTO);
}

//  --------------------------------------------------------------------------
//  A store with records, and the damage done to it

typedef struct {
    char dir[64];
    char data[128];
    char log[128];
    unsigned char *pristine; //  data.mdb as written
    size_t pristine_len;
} s_store_t;

static void
s_key (int i, char *key, size_t size)
{
    snprintf (key, size, "sess-%05d", i);
}

static void
s_store_fill (s_store_t *store)
{
    snprintf (store->dir, sizeof store->dir, "/tmp/st_damage_XXXXXX");
    assert_non_null (mkdtemp (store->dir));
    snprintf (store->data, sizeof store->data, "%s/data.mdb", store->dir);
    snprintf (store->log, sizeof store->log, "%s.log", store->dir);
    st_db_t *db;
    assert_int_equal (st_db_open (store->dir, 8 << 20, false, &db), 0);
    MDB_txn *txn;
    assert_int_equal (st_db_write_begin (db, NULL, &txn), 0);
    for (int i = 0; i < S_RECORDS; i++) {
        char key[32], text[400];
        s_key (i, key, sizeof key);
        memset (text, 'a' + i % 26, sizeof text - 1);
        text[sizeof text - 1] = 0;
        cm_value_t *value = cm_map_new ();
        cm_map_set_str (value, "title", text);
        cm_map_set_int (value, "n", i);
        assert_int_equal (st_db_put (db, txn, ST_DBI_SESSIONS, key, strlen (key), value), 0);
        cm_value_destroy (&value);
    }
    assert_int_equal (st_db_commit (txn), 0);
    st_db_destroy (&db);
    FILE *file = fopen (store->data, "rb");
    assert_non_null (file);
    fseek (file, 0, SEEK_END);
    store->pristine_len = (size_t) ftell (file);
    rewind (file);
    store->pristine = malloc (store->pristine_len);
    assert_int_equal (fread (store->pristine, 1, store->pristine_len, file), store->pristine_len);
    fclose (file);
}

static void
s_store_restore (s_store_t *store, size_t len)
{
    FILE *file = fopen (store->data, "wb");
    assert_non_null (file);
    assert_int_equal (fwrite (store->pristine, 1, len, file), len);
    fclose (file);
}

static void
s_store_destroy (s_store_t *store)
{
    free (store->pristine);
    st_rmtree (store->dir);
    remove (store->log);
}

//  Child: opens the store and reads every record back. Exit codes:
//  0 served every record exactly, 10 refused at start, 11 a record
//  missing or different.
static int
s_child_open_and_read (const char *dir)
{
    st_db_t *db;
    if (st_db_open (dir, 8 << 20, false, &db))
        return 10;
    MDB_txn *txn;
    int rc = st_db_read_begin (db, &txn);
    for (int i = 0; rc == 0 && i < S_RECORDS; i++) {
        char key[32];
        s_key (i, key, sizeof key);
        cm_value_t *value = NULL;
        rc = st_db_get (db, txn, ST_DBI_SESSIONS, key, strlen (key), &value);
        if (rc == 0 && (cm_map_int (value, "n", -1) != i
                        || strlen (cm_map_str_or (value, "title", "")) != 399
                        || cm_map_str_or (value, "title", "")[0] != 'a' + i % 26))
            rc = -1;
        cm_value_destroy (&value);
    }
    if (rc == 0)
        st_db_read_end (db, txn);
    st_db_destroy (&db);
    return rc ? 11 : 0;
}

//  Runs s_child_open_and_read in a child with its log in store->log;
//  returns its exit code (a signal fails the test).
static int
s_open_in_child (s_store_t *store)
{
    pid_t pid = fork ();
    assert_true (pid >= 0);
    if (pid == 0) {
        int fd = open (store->log, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        dup2 (fd, STDERR_FILENO);
        cm_log_init ("test", CM_LOG_NOTICE);
        _exit (s_child_open_and_read (store->dir));
    }
    int status;
    assert_int_equal (waitpid (pid, &status, 0), pid);
    if (WIFSIGNALED (status))
        fprintf (stderr, "st_db_open died by signal %d\n", WTERMSIG (status));
    assert_false (WIFSIGNALED (status));
    assert_true (WIFEXITED (status));
    return WEXITSTATUS (status);
}

//  The child refused to start and its log names data.mdb with words.
static void
s_assert_refused (s_store_t *store, const char *words)
{
    assert_int_equal (s_open_in_child (store), 10);
    char *log = NULL;
    FILE *file = fopen (store->log, "r");
    assert_non_null (file);
    size_t cap = 0;
    ssize_t len = getdelim (&log, &cap, 0, file);
    fclose (file);
    assert_true (len > 0);
    if (!strstr (log, store->data) || !strstr (log, words) || !strstr (log, "docs/store.md"))
        fprintf (stderr, "log lacks '%s' or '%s': %s", store->data, words, log);
    assert_non_null (strstr (log, store->data));
    assert_non_null (strstr (log, words));
    assert_non_null (strstr (log, "docs/store.md"));
    free (log);
}

static void
s_patch (s_store_t *store, size_t offset, const void *bytes, size_t len)
{
    int fd = open (store->data, O_WRONLY);
    assert_true (fd >= 0);
    assert_int_equal (pwrite (fd, bytes, len, (off_t) offset), (ssize_t) len);
    close (fd);
}

//  Offset of the main root in the meta page LMDB uses (LMDB writes the
//  meta page of txnid t at page t % 2).
static size_t
s_newest_main_root (s_store_t *store)
{
    st_meta_t meta;
    char why[ST_FORMAT_WHY_MAX];
    assert_int_equal (st_format_meta_read (store->data, &meta, why, sizeof why), 0);
    return (meta.txnid % 2) * meta.page_size + 88 + 40;
}

//  A leaf page of the sessions database: it holds a record key.
static uint64_t
s_sessions_leaf (s_store_t *store)
{
    for (size_t page = 2; (page + 1) * 4096 <= store->pristine_len; page++) {
        const unsigned char *p = store->pristine + page * 4096;
        if ((p[10] & 0x02) && memmem (p, 4096, "sess-00", 7))
            return page;
    }
    fail_msg ("no leaf of the sessions database found");
    return 0;
}

static void
test_open_parses_what_lmdb_reads (void **state)
{
    (void) state;
    s_store_t store;
    s_store_fill (&store);
    st_meta_t meta;
    char why[ST_FORMAT_WHY_MAX];
    assert_int_equal (st_format_meta_read (store.data, &meta, why, sizeof why), 0);
    MDB_env *env;
    assert_int_equal (mdb_env_create (&env), 0);
    assert_int_equal (mdb_env_open (env, store.dir, MDB_RDONLY, 0600), 0);
    MDB_envinfo info;
    MDB_stat stat;
    mdb_env_info (env, &info);
    mdb_env_stat (env, &stat);
    assert_int_equal (meta.txnid, info.me_last_txnid);
    assert_int_equal (meta.last_pgno, info.me_last_pgno);
    assert_int_equal (meta.page_size, stat.ms_psize);
    assert_true (meta.last_pgno > 10); //  enough pages to damage
    mdb_env_close (env);
    //  Undamaged: served exactly, at start after start.
    assert_int_equal (s_open_in_child (&store), 0);
    assert_int_equal (s_open_in_child (&store), 0);
    s_store_destroy (&store);
}

static void
test_open_refuses_truncated (void **state)
{
    (void) state;
    s_store_t store;
    s_store_fill (&store);
    s_store_restore (&store, 8192);
    s_assert_refused (&store, "is 8192 bytes");
    s_store_restore (&store, store.pristine_len / 2);
    s_assert_refused (&store, "truncated");
    s_store_restore (&store, store.pristine_len - 1);
    s_assert_refused (&store, "truncated");
    s_store_restore (&store, 100);
    s_assert_refused (&store, "too short");
    s_store_restore (&store, store.pristine_len);
    assert_int_equal (s_open_in_child (&store), 0);
    s_store_destroy (&store);
}

static void
test_open_refuses_damaged_meta (void **state)
{
    (void) state;
    s_store_t store;
    s_store_fill (&store);
    unsigned char zeros[4096] = {0};
    s_patch (&store, 0, zeros, sizeof zeros);
    s_assert_refused (&store, "meta page 0");
    s_store_restore (&store, store.pristine_len);
    s_patch (&store, 4096, zeros, sizeof zeros);
    s_assert_refused (&store, "meta page 1");
    s_store_restore (&store, store.pristine_len);
    s_patch (&store, 0, zeros, sizeof zeros);
    s_patch (&store, 4096, zeros, sizeof zeros);
    s_assert_refused (&store, "damaged");
    //  A flipped magic number.
    s_store_restore (&store, store.pristine_len);
    s_patch (&store, 4096 + 16, "\x00", 1);
    s_assert_refused (&store, "magic");
    //  Both main roots far beyond the last page.
    s_store_restore (&store, store.pristine_len);
    uint64_t far = 1u << 30;
    s_patch (&store, 88 + 40, &far, 8);
    s_patch (&store, 4096 + 88 + 40, &far, 8);
    s_assert_refused (&store, "root page outside");
    s_store_destroy (&store);
}

static void
test_open_refuses_wrong_root (void **state)
{
    (void) state;
    s_store_t store;
    s_store_fill (&store);
    //  Point both meta pages' main root at a leaf of the sessions
    //  database (a page holding a record key): the named databases are
    //  not there, and the store must not create them afresh.
    uint64_t leaf = s_sessions_leaf (&store);
    s_patch (&store, s_newest_main_root (&store), &leaf, 8);
    s_assert_refused (&store, "no named database sessions");
    s_store_destroy (&store);
}

static void
test_open_refuses_missing_or_empty (void **state)
{
    (void) state;
    s_store_t store;
    s_store_fill (&store);
    assert_int_equal (remove (store.data), 0);
    s_assert_refused (&store, "is missing");
    s_store_restore (&store, 0);
    s_assert_refused (&store, "is empty");
    //  The refusals changed nothing: no data.mdb was created.
    struct stat st;
    assert_int_equal (stat (store.data, &st), 0);
    assert_int_equal (st.st_size, 0);
    s_store_destroy (&store);
}

static void
test_open_migrates_store_without_format (void **state)
{
    (void) state;
    s_store_t store;
    s_store_fill (&store);
    char path[256];
    snprintf (path, sizeof path, "%s/%s", store.dir, ST_FORMAT_FILE);
    assert_int_equal (remove (path), 0);
    //  Served exactly, and the format file is back.
    assert_int_equal (s_open_in_child (&store), 0);
    assert_int_equal (access (path, F_OK), 0);
    //  Without a format file a damaged root refuses too (no empty store).
    assert_int_equal (remove (path), 0);
    uint64_t leaf = s_sessions_leaf (&store);
    s_patch (&store, s_newest_main_root (&store), &leaf, 8);
    s_assert_refused (&store, "no named database sessions");
    assert_int_not_equal (access (path, F_OK), 0);
    s_store_destroy (&store);
}

//  --------------------------------------------------------------------------
//  A map that cannot grow

//  Child: fills an 8 MiB map, limits the address space so the map cannot
//  double, and checks that growing fails cleanly and the store still
//  reads what it committed. Exit 0, or the step that failed.
static int
s_child_grow_refused (const char *dir)
{
    st_db_t *db;
    if (st_db_open (dir, 8 << 20, false, &db))
        return 1;
    char value[100000];
    memset (value, 'v', sizeof value);
    int committed = 0, rc = 0;
    while (rc == 0) {
        MDB_txn *txn;
        if (st_db_write_begin (db, NULL, &txn))
            return 2;
        char key[32];
        snprintf (key, sizeof key, "k%05d", committed);
        rc = st_db_put_raw (db, txn, ST_DBI_TASKS, key, strlen (key), value, sizeof value);
        if (rc == 0)
            rc = st_db_commit (txn);
        else
            st_db_abort (txn);
        if (rc == 0)
            committed++;
    }
    if (rc != CM_EFULL || committed < 10)
        return 3;
    //  Room for 4 MiB more: the 16 MiB map does not fit.
    long pages = 0;
    FILE *statm = fopen ("/proc/self/statm", "r");
    if (!statm || fscanf (statm, "%ld", &pages) != 1)
        return 4;
    fclose (statm);
    struct rlimit limit;
    limit.rlim_cur = limit.rlim_max = (rlim_t) pages * (rlim_t) sysconf (_SC_PAGESIZE) + (4 << 20);
    if (setrlimit (RLIMIT_AS, &limit))
        return 5;
    if (st_db_grow (db) != CM_EDB || st_db_map_size (db) != 8 << 20)
        return 6;
    //  A write that needs room still fails, and nothing faults.
    MDB_txn *txn;
    if (st_db_write_begin (db, NULL, &txn))
        return 7;
    rc = st_db_put_raw (db, txn, ST_DBI_TASKS, "more", 4, value, sizeof value);
    if (rc == 0)
        rc = st_db_commit (txn);
    else
        st_db_abort (txn);
    if (rc != CM_EFULL)
        return 8;
    if (st_db_grow (db) != CM_EDB)
        return 9;
    //  Every committed record is there.
    if (st_db_read_begin (db, &txn))
        return 10;
    for (int i = 0; i < committed; i++) {
        char key[32];
        snprintf (key, sizeof key, "k%05d", i);
        const void *data;
        size_t size;
        if (st_db_get_raw (db, txn, ST_DBI_TASKS, key, strlen (key), &data, &size)
            || size != sizeof value || memcmp (data, value, size))
            return 11;
    }
    st_db_read_end (db, txn);
    st_db_destroy (&db);
    return 0;
}

static void
test_grow_refused_by_address_space (void **state)
{
    (void) state;
    char dir[] = "/tmp/st_grow_XXXXXX";
    assert_non_null (mkdtemp (dir));
    pid_t pid = fork ();
    assert_true (pid >= 0);
    if (pid == 0)
        _exit (s_child_grow_refused (dir));
    int status;
    assert_int_equal (waitpid (pid, &status, 0), pid);
    if (WIFSIGNALED (status))
        fprintf (stderr, "the store died by signal %d after a refused grow\n", WTERMSIG (status));
    assert_false (WIFSIGNALED (status));
    assert_int_equal (WEXITSTATUS (status), 0);
    st_rmtree (dir);
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_format_round_trip),
        cmocka_unit_test (test_format_parse_refuses),
        cmocka_unit_test (test_format_write_read),
        cmocka_unit_test (test_format_decide),
        cmocka_unit_test (test_check_size),
        cmocka_unit_test (test_open_parses_what_lmdb_reads),
        cmocka_unit_test (test_open_refuses_truncated),
        cmocka_unit_test (test_open_refuses_damaged_meta),
        cmocka_unit_test (test_open_refuses_wrong_root),
        cmocka_unit_test (test_open_refuses_missing_or_empty),
        cmocka_unit_test (test_open_migrates_store_without_format),
        cmocka_unit_test (test_grow_refused_by_address_space),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
