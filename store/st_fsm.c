/*  st_fsm.c: the replicated store's state machine (st_fsm.h).  */
#include "st_fsm.h"

#include "cm_error.h"
#include "cm_log.h"
#include "st_ctx.h"
#include "st_entry.h"

#include <errno.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define S_SNAPSHOT_HEADER 16
#define S_SNAPSHOT_VERSION 1
//  Audit and history keys order same-ms entries by ops->seq: derived from
//  the index, it is the same on every replica and grows across entries
//  (room for 2^20 records per entry, far above ST_ENTRY_ITEMS_MAX's).
#define S_SEQ_SHIFT 20

struct st_fsm {
    st_ops_t *ops;
    st_db_t *db;
    uint64_t node_id;
    uint64_t applied; //  cached "#raft_applied" (loop thread)
    bool awaiting;
    unsigned char awaited[ST_DET_SEED_BYTES];
    pthread_mutex_t lock;
};

st_fsm_t *
st_fsm_new (st_ops_t *ops, st_db_t *db, uint64_t node_id)
{
    st_fsm_t *self = calloc (1, sizeof *self);
    if (!self)
        return NULL;
    self->ops = ops;
    self->db = db;
    self->node_id = node_id;
    pthread_mutex_init (&self->lock, NULL);
    if (st_db_applied (db, NULL, &self->applied)) {
        st_fsm_destroy (&self);
        return NULL;
    }
    return self;
}

void
st_fsm_destroy (st_fsm_t **self_p)
{
    st_fsm_t *self = *self_p;
    if (!self)
        return;
    pthread_mutex_destroy (&self->lock);
    free (self);
    *self_p = NULL;
}

void
st_fsm_await (st_fsm_t *self, const unsigned char seed[ST_DET_SEED_BYTES])
{
    memcpy (self->awaited, seed, ST_DET_SEED_BYTES);
    self->awaiting = true;
}

void
st_fsm_await_none (st_fsm_t *self)
{
    self->awaiting = false;
}

uint64_t
st_fsm_applied (st_fsm_t *self)
{
    return self->applied;
}

void
st_fsm_lock (st_fsm_t *self)
{
    pthread_mutex_lock (&self->lock);
}

void
st_fsm_unlock (st_fsm_t *self)
{
    pthread_mutex_unlock (&self->lock);
}

void
st_fsm_result_destroy (st_fsm_result_t **result_p)
{
    st_fsm_result_t *result = *result_p;
    if (!result)
        return;
    for (size_t i = 0; i < result->n; i++)
        cm_envelope_destroy (&result->replies[i]);
    for (size_t i = 0; i < result->m; i++)
        cm_envelope_destroy (&result->claim_replies[i]);
    free (result->replies);
    free (result->claim_replies);
    cm_value_destroy (&result->events);
    free (result);
    *result_p = NULL;
}

static st_fsm_result_t *
s_result_new (size_t n, size_t m)
{
    st_fsm_result_t *result = calloc (1, sizeof *result);
    if (!result)
        return NULL;
    result->n = n;
    result->m = m;
    result->replies = calloc (n ? n : 1, sizeof *result->replies);
    result->claim_replies = calloc (m ? m : 1, sizeof *result->claim_replies);
    if (!result->replies || !result->claim_replies)
        st_fsm_result_destroy (&result);
    return result;
}

int
st_fsm_apply (st_fsm_t *self, uint64_t index, const void *data, size_t size,
              st_fsm_result_t **result_out)
{
    *result_out = NULL;
    if (index <= self->applied)
        return 0; //  LMDB already holds it: a replay after a restart
    st_entry_t entry;
    char why[128];
    int rc = st_entry_decode (data, size, &entry, why, sizeof why);
    if (rc == CM_ENOMEM)
        return rc;
    bool decoded = rc == 0;
    if (!decoded) {
        //  Only a bug writes such an entry; every replica skips it alike.
        cm_error ("raft entry %llu skipped: %s", (unsigned long long) index, why);
        entry = (st_entry_t) {.kind = ST_ENTRY_BATCH};
    }
    bool mine = decoded && self->awaiting && entry.origin == self->node_id
                && memcmp (entry.seed, self->awaited, ST_DET_SEED_BYTES) == 0;
    st_fsm_result_t *result = s_result_new (entry.n, entry.m);
    if (!result) {
        st_entry_clear (&entry);
        return CM_ENOMEM;
    }
    st_fsm_lock (self);
    st_det_begin (entry.seed, entry.now_ms);
    self->ops->seq = index << S_SEQ_SHIFT;
    st_db_stage_applied (self->db, index);
    if (entry.kind == ST_ENTRY_UPKEEP)
        rc = st_ops_cleanup (self->ops, entry.now_ms, &result->events);
    else
        rc = st_ops_write_batch_claims (self->ops, entry.requests, entry.n, entry.claims,
                                        entry.m, entry.now_ms, result->replies,
                                        result->claim_replies, &result->events);
    st_db_stage_applied (self->db, 0);
    st_det_end ();
    st_fsm_unlock (self);
    st_entry_clear (&entry);
    result->rc = rc;
    result->index = index;
    if (rc) {
        //  Nothing committed here, though the entry is committed in the
        //  cluster: this replica cannot apply what the others did.
        cm_error ("raft entry %llu could not be applied here: %s", (unsigned long long) index,
                  cm_strerror (rc));
        st_fsm_result_destroy (&result);
        return rc;
    }
    self->applied = index;
    if (mine) {
        self->awaiting = false;
        *result_out = result;
    }
    else
        st_fsm_result_destroy (&result);
    return 0;
}

//  --------------------------------------------------------------------------
//  Snapshots

int
st_fsm_snapshot (st_fsm_t *self, void **data_out, size_t *size_out)
{
    *data_out = NULL;
    *size_out = 0;
    MDB_env *env = st_db_env (self->db);
    //  LMDB commits without fsync in replicated mode (the Raft log is the
    //  durable record): flush before raft may drop the log this covers.
    int rc = mdb_env_sync (env, 1);
    if (rc) {
        cm_error ("snapshot: mdb_env_sync failed: %s", mdb_strerror (rc));
        return CM_EIO;
    }
    int fd = memfd_create ("chatmesh-snapshot", MFD_CLOEXEC);
    if (fd < 0) {
        cm_error ("snapshot: memfd_create failed: %s", strerror (errno));
        return CM_EIO;
    }
    uint64_t applied = self->applied;
    rc = mdb_env_copyfd2 (env, fd, MDB_CP_COMPACT);
    off_t end = rc == 0 ? lseek (fd, 0, SEEK_END) : -1;
    unsigned char *buffer = end >= 0 ? malloc (S_SNAPSHOT_HEADER + (size_t) end) : NULL;
    size_t got = 0;
    while (buffer && got < (size_t) end) {
        ssize_t n = pread (fd, buffer + S_SNAPSHOT_HEADER + got, (size_t) end - got, (off_t) got);
        if (n <= 0)
            break;
        got += (size_t) n;
    }
    close (fd);
    if (!buffer || got != (size_t) end) {
        cm_error ("snapshot: copying LMDB failed: %s", rc ? mdb_strerror (rc) : "short read");
        free (buffer);
        return rc || end < 0 ? CM_EIO : buffer ? CM_EIO : CM_ENOMEM;
    }
    memcpy (buffer, "CMRS", 4);
    buffer[4] = S_SNAPSHOT_VERSION;
    buffer[5] = buffer[6] = buffer[7] = 0;
    st_db_be64_put (buffer + 8, applied);
    *data_out = buffer;
    *size_out = S_SNAPSHOT_HEADER + (size_t) end;
    cm_info ("snapshot at raft index %llu: %zu bytes", (unsigned long long) applied, *size_out);
    return 0;
}

//  Replaces every named database of self->db with the snapshot env's in
//  one write txn. An LMDB code (MDB_MAP_FULL: grow and call again).
static int
s_copy_in (st_fsm_t *self, MDB_env *snapshot)
{
    MDB_txn *from = NULL, *to = NULL;
    int rc = mdb_txn_begin (snapshot, NULL, MDB_RDONLY, &from);
    if (rc == 0)
        rc = mdb_txn_begin (st_db_env (self->db), NULL, 0, &to);
    for (int i = 0; rc == 0 && i < ST_DBI_COUNT; i++) {
        MDB_dbi source, target = st_db_dbi (self->db, (st_dbi_t) i);
        rc = mdb_dbi_open (from, st_db_name ((st_dbi_t) i), 0, &source);
        if (rc == 0)
            rc = mdb_drop (to, target, 0);
        MDB_cursor *cursor = NULL;
        if (rc == 0)
            rc = mdb_cursor_open (from, source, &cursor);
        MDB_val k, v;
        while (rc == 0 && (rc = mdb_cursor_get (cursor, &k, &v, MDB_NEXT)) == 0)
            rc = mdb_put (to, target, &k, &v, MDB_APPEND);
        if (rc == MDB_NOTFOUND)
            rc = 0;
        if (cursor)
            mdb_cursor_close (cursor);
    }
    if (rc == 0)
        rc = mdb_txn_commit (to);
    else if (to)
        mdb_txn_abort (to);
    if (from)
        mdb_txn_abort (from);
    return rc;
}

int
st_fsm_restore (st_fsm_t *self, const void *data, size_t size)
{
    const unsigned char *in = data;
    if (size < S_SNAPSHOT_HEADER || memcmp (in, "CMRS", 4) != 0 || in[4] != S_SNAPSHOT_VERSION) {
        cm_error ("raft snapshot refused: not a store snapshot of this version");
        return CM_EPROTO;
    }
    uint64_t applied = st_db_be64_get (in + 8);
    if (applied <= self->applied) {
        cm_notice ("raft snapshot at index %llu: LMDB already holds index %llu, kept",
                   (unsigned long long) applied, (unsigned long long) self->applied);
        return 0;
    }
    char path[4200];
    snprintf (path, sizeof path, "%s/raft-restore-XXXXXX", st_db_dir (self->db));
    int fd = mkstemp (path);
    if (fd < 0) {
        cm_error ("raft snapshot: cannot create %s: %s", path, strerror (errno));
        return CM_EIO;
    }
    size_t body = size - S_SNAPSHOT_HEADER, put = 0;
    while (put < body) {
        ssize_t n = write (fd, in + S_SNAPSHOT_HEADER + put, body - put);
        if (n <= 0)
            break;
        put += (size_t) n;
    }
    close (fd);
    int rc = put == body ? 0 : CM_ENOSPC;
    MDB_env *snapshot = NULL;
    if (rc == 0) {
        int mrc = mdb_env_create (&snapshot);
        if (mrc == 0)
            mrc = mdb_env_set_maxdbs (snapshot, ST_DBI_COUNT + 4);
        if (mrc == 0)
            mrc = mdb_env_set_mapsize (snapshot, body + (1u << 20));
        if (mrc == 0)
            mrc = mdb_env_open (snapshot, path, MDB_NOSUBDIR | MDB_RDONLY | MDB_NOLOCK, 0600);
        while (mrc == 0 && (mrc = s_copy_in (self, snapshot)) == MDB_MAP_FULL)
            if (st_db_grow (self->db))
                break;
        if (mrc)
            cm_error ("raft snapshot: loading it failed: %s", mdb_strerror (mrc));
        rc = mrc == 0 ? 0 : mrc == MDB_MAP_FULL ? CM_ENOSPC : CM_EDB;
    }
    if (snapshot)
        mdb_env_close (snapshot);
    unlink (path);
    if (rc == 0) {
        st_db_applied (self->db, NULL, &self->applied);
        cm_notice ("raft snapshot restored: LMDB now at index %llu",
                   (unsigned long long) self->applied);
    }
    return rc;
}

//  --------------------------------------------------------------------------
//  Digest

int
st_fsm_digest (st_db_t *db, char digest[65])
{
    MDB_txn *txn;
    int rc = st_db_read_begin (db, &txn);
    if (rc)
        return rc;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new ();
    rc = ctx && EVP_DigestInit_ex (ctx, EVP_sha256 (), NULL) ? 0 : CM_ENOMEM;
    for (int i = 0; rc == 0 && i < ST_DBI_COUNT; i++) {
        const char *name = st_db_name ((st_dbi_t) i);
        EVP_DigestUpdate (ctx, name, strlen (name) + 1);
        MDB_cursor *cursor = NULL;
        int mrc = mdb_cursor_open (txn, st_db_dbi (db, (st_dbi_t) i), &cursor);
        MDB_val k, v;
        while (mrc == 0 && (mrc = mdb_cursor_get (cursor, &k, &v, MDB_NEXT)) == 0) {
            unsigned char lengths[16];
            st_db_be64_put (lengths, k.mv_size);
            st_db_be64_put (lengths + 8, v.mv_size);
            EVP_DigestUpdate (ctx, lengths, sizeof lengths);
            EVP_DigestUpdate (ctx, k.mv_data, k.mv_size);
            EVP_DigestUpdate (ctx, v.mv_data, v.mv_size);
        }
        if (cursor)
            mdb_cursor_close (cursor);
        if (mrc != MDB_NOTFOUND)
            rc = st_db_error (mrc, "digest");
    }
    unsigned char sum[32];
    unsigned int len = 0;
    if (rc == 0 && !EVP_DigestFinal_ex (ctx, sum, &len))
        rc = CM_EDB;
    EVP_MD_CTX_free (ctx);
    st_db_read_end (db, txn);
    for (unsigned i = 0; rc == 0 && i < len; i++)
        snprintf (digest + 2 * i, 3, "%02x", sum[i]);
    return rc;
}
