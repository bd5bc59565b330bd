#include "st_db.h"

#include "cm_codec.h"
#include "cm_error.h"
#include "cm_log.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static const char *s_dbi_names[ST_DBI_COUNT] = {
    "sessions", "user_sessions", "messages", "msg_index", "feedback",  "history",
    "tasks",    "task_queue",    "active",   "audit",     "analytics", "rate",
    "votes"};

struct st_db {
    MDB_env *env;
    MDB_dbi dbis[ST_DBI_COUNT];
    size_t map_size;
    //  Readers hold it shared for the life of their txn; growing the map
    //  takes it exclusively, because mdb_env_set_mapsize needs no active txn.
    pthread_rwlock_t resize;
    //  put/del attempts so far (only the writer thread writes): lets the
    //  batch tell a request that failed before changing anything from one
    //  that failed half-way (st_ops_write_batch).
    uint64_t writes;
    //  st_db_put encodes into this one buffer (writer thread only; LMDB
    //  copies the bytes), instead of a fresh 8 KiB msgpack buffer per put.
    char *encode_buf;
    size_t encode_cap;
};

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

int
st_db_open (const char *dir, size_t map_bytes, bool sync, st_db_t **out)
{
    st_db_t *self = calloc (1, sizeof *self);
    if (!self)
        return CM_ENOMEM;
    pthread_rwlock_init (&self->resize, NULL);
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
    if (rc) {
        cm_error ("opening LMDB in %s failed: %s", dir, mdb_strerror (rc));
        if (self->env)
            mdb_env_close (self->env);
        pthread_rwlock_destroy (&self->resize);
        free (self);
        return CM_EDB;
    }
    MDB_envinfo info;
    mdb_env_info (self->env, &info);
    self->map_size = info.me_mapsize;
    MDB_txn *txn;
    rc = mdb_txn_begin (self->env, NULL, 0, &txn);
    for (int i = 0; rc == 0 && i < ST_DBI_COUNT; i++)
        rc = mdb_dbi_open (txn, s_dbi_names[i], MDB_CREATE, &self->dbis[i]);
    if (rc == 0)
        rc = mdb_txn_commit (txn);
    else
        mdb_txn_abort (txn);
    if (rc == MDB_MAP_FULL) {
        //  A brand-new env whose map cannot even hold the catalogue.
        cm_error ("opening LMDB in %s failed: map too small", dir);
    }
    if (rc) {
        if (rc != MDB_MAP_FULL)
            cm_error ("opening LMDB databases in %s failed: %s", dir, mdb_strerror (rc));
        mdb_env_close (self->env);
        pthread_rwlock_destroy (&self->resize);
        free (self);
        return CM_EDB;
    }
    *out = self;
    return 0;
}

void
st_db_destroy (st_db_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    st_db_t *self = *self_p;
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
    return st_db_error (mdb_txn_begin (self->env, parent, 0, txn), "mdb_txn_begin");
}

int
st_db_commit (MDB_txn *txn)
{
    return st_db_error (mdb_txn_commit (txn), "mdb_txn_commit");
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
    size_t size = self->map_size * 2;
    int rc = mdb_env_set_mapsize (self->env, size);
    if (rc == 0)
        self->map_size = size;
    pthread_rwlock_unlock (&self->resize);
    if (rc)
        return st_db_error (rc, "mdb_env_set_mapsize");
    cm_notice ("LMDB map grown to %zu MiB", size >> 20);
    return 0;
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

MDB_dbi
st_db_dbi (st_db_t *self, st_dbi_t which)
{
    return self->dbis[which];
}

int
st_db_get_raw (st_db_t *self, MDB_txn *txn, st_dbi_t which, const void *key, size_t key_len,
               const void **data, size_t *size)
{
    MDB_val k = {key_len, (void *) key}, v;
    int rc = mdb_get (txn, self->dbis[which], &k, &v);
    if (rc)
        return st_db_error (rc, "mdb_get");
    *data = v.mv_data;
    *size = v.mv_size;
    return 0;
}

int
st_db_put_raw (st_db_t *self, MDB_txn *txn, st_dbi_t which, const void *key, size_t key_len,
               const void *data, size_t size)
{
    MDB_val k = {key_len, (void *) key}, v = {size, (void *) data};
    self->writes++;
    return st_db_error (mdb_put (txn, self->dbis[which], &k, &v, 0), "mdb_put");
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
        cm_error ("stored record in %s does not decode", s_dbi_names[which]);
        return CM_EPROTO;
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
    MDB_env *env = NULL;
    int rc = mdb_env_create (&env);
    if (rc == 0)
        rc = mdb_env_set_maxdbs (env, ST_DBI_COUNT + 2);
    //  Read-only and no TLS: we only need one read txn for the copy, and
    //  the live store keeps writing meanwhile (MVCC gives us a snapshot).
    if (rc == 0)
        rc = mdb_env_open (env, src_dir, MDB_RDONLY | MDB_NOTLS, 0600);
    if (rc == 0)
        rc = mdb_env_copy2 (env, dst_dir, MDB_CP_COMPACT);
    if (env)
        mdb_env_close (env);
    if (rc) {
        cm_error ("backup of %s into %s failed: %s", src_dir, dst_dir, mdb_strerror (rc));
        return CM_EDB;
    }
    return 0;
}
