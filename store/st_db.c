#include "st_db.h"

#include "cm_codec.h"
#include "cm_error.h"
#include "cm_log.h"
#include "st_format.h"
#include "st_record.h"
#include "st_verify.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <inttypes.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

static const char *s_dbi_names[ST_DBI_COUNT] = {
    "sessions", "user_sessions", "messages", "msg_index", "feedback",  "history",
    "tasks",    "task_queue",    "active",   "audit",     "analytics", "rate",
    "votes",    "versions",      "idem",     "audit_chain", "counters", "events", "event_heads",
    "trash"};

//  The store format (st_format.h) each named database came with: a store
//  of an older format gets the later ones created when it opens.
static const unsigned s_dbi_since[ST_DBI_COUNT] = {
    [ST_DBI_VERSIONS] = 2, [ST_DBI_IDEM] = 3, [ST_DBI_AUDIT_CHAIN] = 3, [ST_DBI_COUNTERS] = 3,
    [ST_DBI_EVENTS] = 4, [ST_DBI_EVENT_HEADS] = 4, [ST_DBI_TRASH] = 5};

struct st_db {
    MDB_env *env;
    MDB_dbi dbis[ST_DBI_COUNT];
    size_t map_size;
    //  Readers hold it shared for the life of their txn; growing the map
    //  takes it exclusively, because mdb_env_set_mapsize needs no active txn.
    pthread_rwlock_t resize;
    //  Set (under resize) when a failed grow left LMDB without a map:
    //  from then on no txn may begin (st_db_grow).
    bool unmapped;
    char dir[4096];
    //  put/del attempts so far (only the writer thread writes): lets the
    //  batch tell a request that failed before changing anything from one
    //  that failed half-way (st_ops_write_batch).
    uint64_t writes;
    //  st_db_put encodes into this one buffer (writer thread only; LMDB
    //  copies the bytes), instead of a fresh 8 KiB msgpack buffer per put.
    char *encode_buf;
    size_t encode_cap;
    //  Raft index st_db_seal writes with each batch (writer only; 0: none).
    uint64_t staged_applied;
};

#define S_APPLIED_KEY "#raft_applied" //  '#': no session id, kept by format 6

int
st_db_error (int mdb_rc, const char *what)
{
    if (mdb_rc == 0)
        return 0;
    if (mdb_rc == MDB_NOTFOUND)
        return CM_ENOTFOUND;
    if (mdb_rc == MDB_MAP_FULL)
        return CM_EFULL;
    cm_error ("%s failed: %s", what, mdb_strerror (mdb_rc));
    return CM_EDB;
}

//  What the operator does about a damaged or missing file.
#define S_RESTORE "restore data.mdb from a backup (docs/store.md, \"When a file is damaged\")"

//  LMDB's lock file needs (maxreaders - 1) * 64 + 192 bytes for 254
//  readers: 16 KiB. Reserving twice that before LMDB maps it means a full
//  disk is an error here, not a SIGBUS when LMDB first writes a page of
//  the sparse file it would create (LMDB takes the larger size as room
//  for more readers).
#define S_LOCK_RESERVE 32768

//  Allocates lock.mdb's blocks up front. 0 or CM_EIO (logged).
static int
s_reserve_lock (const char *dir)
{
    char path[4300];
    snprintf (path, sizeof path, "%s/lock.mdb", dir);
    int fd = open (path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) {
        cm_error ("cannot open %s: %s", path, strerror (errno));
        return CM_EIO;
    }
    int rc = posix_fallocate (fd, 0, S_LOCK_RESERVE);
    close (fd);
    if (rc) {
        cm_error ("cannot reserve %d bytes for %s: %s; free space on its filesystem, then start "
                  "the store again",
                  S_LOCK_RESERVE, path, strerror (rc));
        return CM_EIO;
    }
    return 0;
}

//  Logs why mdb_env_open refused dir, naming the file and the next step.
static void
s_open_refused (const char *dir, int rc)
{
    if (rc == EACCES || rc == EROFS || rc == EPERM) {
        //  Name the first of the files LMDB needs that we may not write.
        const char *names[] = {"data.mdb", "lock.mdb", ""};
        for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
            char path[4300];
            snprintf (path, sizeof path, "%s/%s", dir, names[i]);
            if (access (path, F_OK) == 0 && access (path, R_OK | W_OK)) {
                cm_error ("cannot open %s: %s; give the store's user read and write access "
                          "(or mount it writable)",
                          path, strerror (errno));
                return;
            }
        }
        cm_error ("opening LMDB in %s failed: %s", dir, mdb_strerror (rc));
        return;
    }
    if (rc == MDB_INVALID || rc == MDB_VERSION_MISMATCH || rc == MDB_CORRUPTED
        || rc == MDB_PAGE_NOTFOUND)
        cm_error ("%s/data.mdb is damaged: %s; " S_RESTORE, dir, mdb_strerror (rc));
    else
        cm_error ("opening LMDB in %s failed: %s", dir, mdb_strerror (rc));
}

//  Format 6: a session's event counter is its newest logged event's seq
//  (st_events.h), so the per-session heads of event_heads go; "#epoch"
//  (whose '#' no session id has) stays. They equal the newest event's seq
//  (written in its txn, and retention never deletes the newest), so no
//  counter moves back.
static int
s_drop_event_heads (MDB_txn *txn, MDB_dbi heads)
{
    MDB_cursor *cursor;
    int rc = mdb_cursor_open (txn, heads, &cursor);
    if (rc)
        return rc;
    MDB_val k, v;
    size_t dropped = 0;
    while ((rc = mdb_cursor_get (cursor, &k, &v, MDB_NEXT)) == 0) {
        if (k.mv_size > 0 && ((const char *) k.mv_data)[0] == '#')
            continue;
        if ((rc = mdb_cursor_del (cursor, 0)) != 0)
            break;
        dropped++;
    }
    mdb_cursor_close (cursor);
    if (dropped)
        cm_notice ("dropped %zu session heads of event_heads (format 6 reads a session's "
                   "newest event instead)",
                   dropped);
    return rc == MDB_NOTFOUND ? 0 : rc;
}

//  Opens the named databases. kind NEW creates them; EXISTING creates
//  only those its format (format_version) predates: a store with a format
//  file has all of its format's, so a missing one is damage (a meta root
//  pointing at the wrong page); MIGRATE needs "sessions" (there from the
//  first version) and creates the ones later versions added.
static int
s_open_dbis (st_db_t *self, const char *dir, st_open_kind_t kind, unsigned format_version)
{
    MDB_txn *txn;
    int rc = mdb_txn_begin (self->env, NULL, 0, &txn);
    for (int i = 0; rc == 0 && i < ST_DBI_COUNT; i++) {
        unsigned flags = kind == ST_OPEN_NEW ? MDB_CREATE : 0;
        rc = mdb_dbi_open (txn, s_dbi_names[i], flags, &self->dbis[i]);
        bool added_later = kind == ST_OPEN_MIGRATE
                           ? i != ST_DBI_SESSIONS
                           : kind == ST_OPEN_EXISTING && format_version < s_dbi_since[i];
        if (rc == MDB_NOTFOUND && added_later) {
            cm_notice ("creating named database %s in %s/data.mdb (added after this store was "
                       "made)",
                       s_dbi_names[i], dir);
            rc = mdb_dbi_open (txn, s_dbi_names[i], MDB_CREATE, &self->dbis[i]);
        }
        if (rc == MDB_NOTFOUND) {
            cm_error ("%s/data.mdb has no named database %s: its root points at the wrong "
                      "page or the file is not this store's; " S_RESTORE,
                      dir, s_dbi_names[i]);
            mdb_txn_abort (txn);
            return CM_EDB;
        }
    }
    if (rc == 0 && (kind == ST_OPEN_MIGRATE || (kind == ST_OPEN_EXISTING && format_version < 6)))
        rc = s_drop_event_heads (txn, self->dbis[ST_DBI_EVENT_HEADS]);
    if (rc == 0)
        rc = mdb_txn_commit (txn);
    else if (txn)
        mdb_txn_abort (txn);
    if (rc == MDB_MAP_FULL)
        cm_error ("opening LMDB in %s failed: map too small", dir);
    else if (rc == MDB_CORRUPTED || rc == MDB_PAGE_NOTFOUND || rc == MDB_INCOMPATIBLE
             || rc == MDB_BAD_DBI)
        cm_error ("%s/data.mdb is damaged: %s; " S_RESTORE, dir, mdb_strerror (rc));
    else if (rc)
        cm_error ("opening LMDB databases in %s failed: %s", dir, mdb_strerror (rc));
    return rc ? CM_EDB : 0;
}

//  Before LMDB maps anything: which case the directory is, and, for an
//  existing data.mdb, whether its meta pages can be trusted. 0 or CM_EDB
//  (logged, naming the file).
static int
s_check_dir (const char *dir, st_open_kind_t *kind, st_format_t *format)
{
    char why[ST_FORMAT_WHY_MAX], data[4300];
    snprintf (data, sizeof data, "%s/data.mdb", dir);
    int rc = st_format_read (dir, format, why, sizeof why);
    if (rc == CM_EPROTO) {
        cm_error ("%s/%s %s; restore it from a backup of this store (docs/store.md, \"When a "
                  "file is damaged\")",
                  dir, ST_FORMAT_FILE, why);
        return CM_EDB;
    }
    if (rc && rc != CM_ENOTFOUND)
        return CM_EDB;
    bool has_format = rc == 0;
    struct stat st;
    int64_t data_bytes = -1;
    if (stat (data, &st) == 0)
        data_bytes = (int64_t) st.st_size;
    else if (errno != ENOENT) {
        cm_error ("cannot stat %s: %s", data, strerror (errno));
        return CM_EDB;
    }
    *kind = st_format_decide (has_format, data_bytes);
    if (*kind == ST_OPEN_NO_DATA) {
        cm_error ("%s is missing, but %s/%s says store %s lives here; " S_RESTORE, data, dir,
                  ST_FORMAT_FILE, format->id);
        return CM_EDB;
    }
    if (*kind == ST_OPEN_EMPTY_DATA) {
        if (has_format)
            cm_error ("%s is empty (0 bytes), but %s/%s says store %s lives here; " S_RESTORE,
                      data, dir, ST_FORMAT_FILE, format->id);
        else
            cm_error ("%s is empty (0 bytes) and there is no %s beside it; " S_RESTORE
                      ", or remove it if this directory never held a store",
                      data, ST_FORMAT_FILE);
        return CM_EDB;
    }
    if (*kind == ST_OPEN_NEW)
        return 0;
    st_meta_t meta;
    rc = st_format_meta_read (data, &meta, why, sizeof why);
    if (rc == CM_EPROTO)
        cm_error ("%s is damaged: %s; " S_RESTORE, data, why);
    return rc ? CM_EDB : 0;
}

//  After mdb_env_open, before any data page is touched: the file holds
//  every page the meta page counts. 0 or CM_EDB (logged).
static int
s_check_size (st_db_t *self, const char *dir, MDB_envinfo *info, MDB_stat *stat_out)
{
    char data[4300], why[ST_FORMAT_WHY_MAX];
    snprintf (data, sizeof data, "%s/data.mdb", dir);
    struct stat st;
    if (stat (data, &st)) {
        cm_error ("cannot stat %s: %s", data, strerror (errno));
        return CM_EDB;
    }
    mdb_env_info (self->env, info);
    mdb_env_stat (self->env, stat_out);
    if (st_format_check_size ((uint64_t) st.st_size, info->me_last_pgno, stat_out->ms_psize, why,
                              sizeof why)) {
        cm_error ("%s %s; " S_RESTORE, data, why);
        return CM_EDB;
    }
    return 0;
}

int
st_db_open (const char *dir, size_t map_bytes, bool sync, st_db_t **out)
{
    st_open_kind_t kind;
    st_format_t format = {0};
    if (s_check_dir (dir, &kind, &format) || s_reserve_lock (dir))
        return CM_EDB;
    st_db_t *self = calloc (1, sizeof *self);
    if (!self)
        return CM_ENOMEM;
    pthread_rwlock_init (&self->resize, NULL);
    snprintf (self->dir, sizeof self->dir, "%s", dir);
    int rc = mdb_env_create (&self->env);
    if (rc == 0)
        rc = mdb_env_set_maxdbs (self->env, ST_DBI_COUNT + 2);
    if (rc == 0)
        rc = mdb_env_set_maxreaders (self->env, 254);
    if (rc == 0)
        rc = mdb_env_set_mapsize (self->env, map_bytes);
    //  MDB_NOTLS: reader slots belong to txns, not threads, so any thread
    //  may run any read txn.
    unsigned flags = MDB_NOTLS | (sync ? 0 : MDB_NOSYNC);
    if (rc == 0)
        rc = mdb_env_open (self->env, dir, flags, 0600);
    if (rc)
        s_open_refused (dir, rc);
    MDB_envinfo info;
    MDB_stat stat;
    if (rc == 0 && (s_check_size (self, dir, &info, &stat) || s_open_dbis (self, dir, kind, format.version)))
        rc = CM_EDB;
    //  A new store (or one of an earlier version, now known to open) gets
    //  its identity only once its databases are committed: a crash before
    //  leaves a data.mdb without a format file, which the next start
    //  migrates.
    if (rc == 0 && kind != ST_OPEN_EXISTING
        && (st_format_new (&format) || st_format_write (dir, &format)))
        rc = CM_EDB;
    //  A store of an older format has its new databases now: it is of this
    //  format from here on (same id). A crash before the write only means
    //  the next start finds the databases there and writes it then.
    bool upgraded = rc == 0 && kind == ST_OPEN_EXISTING && format.version < ST_FORMAT_VERSION;
    if (upgraded) {
        format.version = ST_FORMAT_VERSION;
        if (st_format_write (dir, &format))
            rc = CM_EDB;
    }
    if (rc) {
        if (self->env)
            mdb_env_close (self->env);
        pthread_rwlock_destroy (&self->resize);
        free (self);
        //  A store this call began to create (on a full disk, say) holds
        //  nothing: remove its data.mdb, so the next start creates it
        //  again instead of refusing an empty or partial file.
        if (kind == ST_OPEN_NEW) {
            char data[4300];
            snprintf (data, sizeof data, "%s/data.mdb", dir);
            unlink (data);
        }
        return CM_EDB;
    }
    mdb_env_info (self->env, &info);
    self->map_size = info.me_mapsize;
    //  A meta page rolled back to an older commit opens without a word
    //  from LMDB: the txnid in the log is how an operator can tell.
    cm_notice ("store %s %s %s/data.mdb at txnid %zu (%zu pages of %u bytes)", format.id,
               kind == ST_OPEN_NEW       ? "created"
               : kind == ST_OPEN_MIGRATE ? "migrated"
               : upgraded                ? "upgraded to this format and opened"
                                         : "opened",
               dir, (size_t) info.me_last_txnid, (size_t) info.me_last_pgno + 1, stat.ms_psize);
    *out = self;
    return 0;
}

void
st_db_destroy (st_db_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    st_db_t *self = *self_p;
    if (!self->unmapped)
        mdb_env_sync (self->env, 1);
    mdb_env_close (self->env);
    pthread_rwlock_destroy (&self->resize);
    free (self->encode_buf);
    free (self);
    *self_p = NULL;
}

int
st_db_write_begin (st_db_t *self, MDB_txn *parent, MDB_txn **txn)
{
    //  Only the writer grows the map, so no lock is needed to read this.
    if (self->unmapped)
        return CM_EDB;
    return st_db_error (mdb_txn_begin (self->env, parent, 0, txn), "mdb_txn_begin");
}

bool
st_db_space_low (const char *dir, uint64_t *free_bytes)
{
    struct statvfs fs;
    if (statvfs (dir, &fs))
        return false;
    uint64_t avail = (uint64_t) fs.f_bavail * fs.f_frsize;
    uint64_t total = (uint64_t) fs.f_blocks * fs.f_frsize;
    if (free_bytes)
        *free_bytes = avail;
    return avail < ST_DB_SPACE_LOW_BYTES || avail < total / 100;
}

int
st_db_commit (MDB_txn *txn)
{
    //  The path must be read before the commit: the txn is gone after it.
    const char *dir = NULL;
    mdb_env_get_path (mdb_txn_env (txn), &dir);
    int rc = mdb_txn_commit (txn);
    //  LMDB reports a short page write as EIO: only statvfs tells a full
    //  disk from a failing one.
    uint64_t free_bytes = 0;
    if ((rc == ENOSPC || rc == EIO || rc == EDQUOT) && dir
        && (rc == ENOSPC || rc == EDQUOT || st_db_space_low (dir, &free_bytes))) {
        cm_error ("commit refused: the disk holding %s is full (%" PRIu64
                  " bytes free, LMDB said: %s); free space there, writes resume by "
                  "themselves",
                  dir, free_bytes, mdb_strerror (rc));
        return CM_ENOSPC;
    }
    return st_db_error (rc, "mdb_txn_commit");
}

void
st_db_abort (MDB_txn *txn)
{
    if (txn)
        mdb_txn_abort (txn);
}

int
st_db_read_begin (st_db_t *self, MDB_txn **txn)
{
    pthread_rwlock_rdlock (&self->resize);
    if (self->unmapped) {
        pthread_rwlock_unlock (&self->resize);
        return CM_EDB;
    }
    int rc = mdb_txn_begin (self->env, NULL, MDB_RDONLY, txn);
    if (rc) {
        pthread_rwlock_unlock (&self->resize);
        return st_db_error (rc, "mdb_txn_begin (read)");
    }
    return 0;
}

void
st_db_read_end (st_db_t *self, MDB_txn *txn)
{
    mdb_txn_abort (txn);
    pthread_rwlock_unlock (&self->resize);
}

int
st_db_grow (st_db_t *self)
{
    pthread_rwlock_wrlock (&self->resize);
    if (self->unmapped) {
        pthread_rwlock_unlock (&self->resize);
        return CM_EDB;
    }
    size_t size = self->map_size * 2;
    //  mdb_env_set_mapsize unmaps the old map before it maps the new one,
    //  and when that fails it leaves the environment with no map at all
    //  (and setting the old size again does not map it back): a txn would
    //  fault on it. So first try whether the address space has room for
    //  the new map (this asks for both maps at once for an instant, so it
    //  may refuse a grow that would just have fitted).
    int rc = 0;
    void *probe = mmap (NULL, size, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (probe == MAP_FAILED)
        rc = errno;
    else {
        munmap (probe, size);
        rc = mdb_env_set_mapsize (self->env, size);
        if (rc == 0)
            self->map_size = size;
        else
            self->unmapped = true; //  never touch the environment again
    }
    pthread_rwlock_unlock (&self->resize);
    if (rc && self->unmapped)
        cm_error ("growing the LMDB map of %s/data.mdb to %zu MiB failed: %s, and LMDB has "
                  "no map left; every request is refused now: restart the store (with more "
                  "memory or address space)",
                  self->dir, size >> 20, mdb_strerror (rc));
    else if (rc)
        cm_error ("growing the LMDB map of %s/data.mdb to %zu MiB failed: %s; writes that "
                  "need more room are refused (reads go on): give the store more memory or "
                  "address space, or start it with a larger CHATMESH_STORE_MAP_MB",
                  self->dir, size >> 20, mdb_strerror (rc));
    if (rc)
        return CM_EDB;
    cm_notice ("LMDB map grown to %zu MiB", size >> 20);
    return 0;
}

const char *
st_db_no_room (int rc)
{
    if (rc == CM_ENOSPC)
        return "The store's disk is full, so this change was not saved; reads still work, and "
               "writes resume once the operator frees space.";
    if (rc == CM_EFULL)
        return "The store's database map is full and cannot grow (no address space left), so "
               "this change was not saved; reads still work, and writes resume once the "
               "operator gives the store more address space or a larger CHATMESH_STORE_MAP_MB.";
    return NULL;
}

const char *
st_db_dir (st_db_t *self)
{
    const char *dir = "";
    mdb_env_get_path (self->env, &dir);
    return dir;
}

void
st_db_stage_applied (st_db_t *self, uint64_t index)
{
    self->staged_applied = index;
}

int
st_db_seal (st_db_t *self, MDB_txn *txn)
{
    if (!self->staged_applied)
        return 0;
    unsigned char bytes[8];
    st_db_be64_put (bytes, self->staged_applied);
    return st_db_put_raw (self, txn, ST_DBI_EVENT_HEADS, S_APPLIED_KEY, strlen (S_APPLIED_KEY),
                          bytes, sizeof bytes);
}

int
st_db_applied (st_db_t *self, MDB_txn *txn, uint64_t *index)
{
    *index = 0;
    MDB_txn *own = NULL;
    if (!txn) {
        int rc = st_db_read_begin (self, &own);
        if (rc)
            return rc;
        txn = own;
    }
    const void *data;
    size_t size;
    int rc = st_db_get_raw (self, txn, ST_DBI_EVENT_HEADS, S_APPLIED_KEY, strlen (S_APPLIED_KEY),
                            &data, &size);
    if (rc == 0 && size == 8)
        *index = st_db_be64_get (data);
    else if (rc == 0)
        rc = CM_ECORRUPT;
    if (own)
        st_db_read_end (self, own);
    return rc == CM_ENOTFOUND ? 0 : rc;
}

MDB_env *
st_db_env (st_db_t *self)
{
    return self->env;
}

size_t
st_db_map_size (st_db_t *self)
{
    return self->map_size;
}

uint64_t
st_db_writes (st_db_t *self)
{
    return self->writes;
}

const char *
st_db_name (st_dbi_t which)
{
    return which < ST_DBI_COUNT ? s_dbi_names[which] : "?";
}

MDB_dbi
st_db_dbi (st_db_t *self, st_dbi_t which)
{
    return self->dbis[which];
}

//  Strips and checks the checksum envelope (st_record.h) of a value read
//  under key in which. A damaged one is logged with its db and key and is
//  CM_ECORRUPT; its bytes are never handed on.
static int
s_open_value (st_dbi_t which, const MDB_val *k, MDB_val *v)
{
    const void *payload;
    size_t size;
    st_record_state_t state = st_record_open (k->mv_data, k->mv_size, v->mv_data, v->mv_size,
                                              &payload, &size);
    if (state == ST_RECORD_OK || state == ST_RECORD_LEGACY) {
        v->mv_data = (void *) payload;
        v->mv_size = size;
        return 0;
    }
    char text[ST_DB_KEY_TEXT_MAX];
    cm_error ("damaged record in %s, key \"%s\": %s (restore from a backup, "
              "docs/store.md)",
              s_dbi_names[which], st_record_key_text (k->mv_data, k->mv_size, text, sizeof text),
              st_record_state_text (state));
    return CM_ECORRUPT;
}

int
st_db_get_raw (st_db_t *self, MDB_txn *txn, st_dbi_t which, const void *key, size_t key_len,
               const void **data, size_t *size)
{
    MDB_val k = {key_len, (void *) key}, v;
    int rc = mdb_get (txn, self->dbis[which], &k, &v);
    if (rc)
        return st_db_error (rc, "mdb_get");
    rc = s_open_value (which, &k, &v);
    if (rc)
        return rc;
    *data = v.mv_data;
    *size = v.mv_size;
    return 0;
}

int
st_db_cursor_get (MDB_cursor *cursor, st_dbi_t which, MDB_val *key,
                  MDB_val *data, MDB_cursor_op op)
{
    int rc = mdb_cursor_get (cursor, key, data, op);
    if (rc)
        return st_db_error (rc, "mdb_cursor_get");
    return s_open_value (which, key, data);
}

int
st_db_put_raw (st_db_t *self, MDB_txn *txn, st_dbi_t which, const void *key, size_t key_len,
               const void *data, size_t size)
{
    MDB_val k = {key_len, (void *) key}, v = {ST_RECORD_HEADER + size, NULL};
    self->writes++;
    //  MDB_RESERVE: LMDB makes room in its page and we write header and
    //  payload there, so the envelope costs no extra copy.
    int rc = mdb_put (txn, self->dbis[which], &k, &v, MDB_RESERVE);
    if (rc)
        return st_db_error (rc, "mdb_put");
    unsigned char *out = v.mv_data;
    st_record_seal (out, key, key_len, data, size);
    if (size)
        memcpy (out + ST_RECORD_HEADER, data, size);
    return 0;
}

int
st_db_get (st_db_t *self, MDB_txn *txn, st_dbi_t which, const void *key, size_t key_len,
           cm_value_t **out)
{
    const void *data;
    size_t size;
    int rc = st_db_get_raw (self, txn, which, key, key_len, &data, &size);
    if (rc)
        return rc;
    cm_value_t *value = NULL;
    if (cm_value_decode (data, size, &value) || value->type != CM_T_MAP) {
        cm_value_destroy (&value);
        char text[ST_DB_KEY_TEXT_MAX];
        cm_error ("damaged record in %s, key \"%s\": does not decode (restore from a "
                  "backup, docs/store.md)",
                  s_dbi_names[which], st_record_key_text (key, key_len, text, sizeof text));
        return CM_ECORRUPT;
    }
    *out = value;
    return 0;
}

int
st_db_put (st_db_t *self, MDB_txn *txn, st_dbi_t which, const void *key, size_t key_len,
           const cm_value_t *value)
{
    size_t size;
    int rc = cm_value_encode_into (value, &self->encode_buf, &self->encode_cap, &size);
    if (rc)
        return rc;
    return st_db_put_raw (self, txn, which, key, key_len, self->encode_buf, size);
}

int
st_db_del (st_db_t *self, MDB_txn *txn, st_dbi_t which, const void *key, size_t key_len)
{
    MDB_val k = {key_len, (void *) key};
    self->writes++;
    return st_db_error (mdb_del (txn, self->dbis[which], &k, NULL), "mdb_del");
}

void
st_db_be64_put (unsigned char *out, uint64_t value)
{
    for (int i = 7; i >= 0; i--) {
        out[i] = (unsigned char) (value & 0xff);
        value >>= 8;
    }
}

uint64_t
st_db_be64_get (const unsigned char *in)
{
    uint64_t value = 0;
    for (int i = 0; i < 8; i++)
        value = (value << 8) | in[i];
    return value;
}

int
st_db_backup (const char *src_dir, const char *dst_dir)
{
    if (mkdir (dst_dir, 0700) && errno != EEXIST) {
        cm_error ("backup: cannot create %s: %s", dst_dir, strerror (errno));
        return CM_EIO;
    }
    char final[4200], partial[4200];
    snprintf (final, sizeof final, "%s/data.mdb", dst_dir);
    snprintf (partial, sizeof partial, "%s/data.mdb.partial", dst_dir);
    struct stat st;
    if (stat (final, &st) == 0) {
        cm_error ("backup: %s already exists; back up into a new directory", final);
        return CM_EIO;
    }
    //  The copy goes to data.mdb.partial and becomes data.mdb only once it
    //  is complete, on disk and verified: a data.mdb in a backup directory
    //  is always a whole, sound copy.
    int fd = open (partial, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd < 0) {
        cm_error ("backup: cannot create %s: %s", partial, strerror (errno));
        return CM_EIO;
    }
    MDB_env *env = NULL;
    int rc = mdb_env_create (&env);
    if (rc == 0)
        rc = mdb_env_set_maxdbs (env, ST_DBI_COUNT + 2);
    //  Read-only and no TLS: we only need one read txn for the copy, and
    //  the live store keeps writing meanwhile (MVCC gives us a snapshot).
    if (rc == 0)
        rc = mdb_env_open (env, src_dir, MDB_RDONLY | MDB_NOTLS, 0600);
    if (rc == 0)
        rc = mdb_env_copyfd2 (env, fd, MDB_CP_COMPACT);
    if (env)
        mdb_env_close (env);
    if (rc == 0 && fsync (fd))
        rc = errno;
    if (close (fd) && rc == 0)
        rc = errno;
    if (rc) {
        cm_error ("backup of %s into %s failed: %s", src_dir, dst_dir, mdb_strerror (rc));
        unlink (partial);
        return CM_EDB;
    }
    st_verify_counts_t counts = {0};
    rc = st_verify_path (partial, true, stderr, &counts);
    if (rc) {
        cm_error ("backup of %s failed: the copy has %" PRIu64 " damaged records (listed "
                  "above); %s removed. Restore the store from an older backup "
                  "(docs/store.md)",
                  src_dir, counts.damaged, partial);
        unlink (partial);
        return rc == CM_ECORRUPT ? CM_ECORRUPT : CM_EDB;
    }
    if (rename (partial, final)) {
        cm_error ("backup: cannot rename %s to %s: %s", partial, final, strerror (errno));
        unlink (partial);
        return CM_EIO;
    }
    //  The rename itself must survive a crash too.
    int dfd = open (dst_dir, O_RDONLY | O_DIRECTORY);
    if (dfd >= 0) {
        fsync (dfd);
        close (dfd);
    }
    return 0;
}
