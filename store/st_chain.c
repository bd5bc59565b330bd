/*  st_chain.c: the audit log's hash chain (st_chain.h).  */
#include "st_chain.h"

#include "cm_codec.h"
#include "cm_error.h"
#include "st_db.h"
#include "st_record.h"

#include <openssl/evp.h>
#include <string.h>

void
st_chain_hash (const void *key, size_t key_len, const void *record, size_t size,
               unsigned char *out)
{
    EVP_MD_CTX *md = EVP_MD_CTX_new ();
    unsigned int len = 0;
    if (!md || !EVP_DigestInit_ex (md, EVP_sha256 (), NULL) || !EVP_DigestUpdate (md, key, key_len)
        || !EVP_DigestUpdate (md, record, size) || !EVP_DigestFinal_ex (md, out, &len))
        //  Out of memory in libcrypto: a hash no entry has, so the link
        //  shows as broken rather than silently sound.
        memset (out, 0xff, ST_CHAIN_HASH);
    EVP_MD_CTX_free (md);
}

int
st_chain_head_read (const void *data, size_t size, st_chain_head_t *head)
{
    if (size != ST_CHAIN_HEAD_BYTES)
        return CM_ECORRUPT;
    const unsigned char *p = data;
    memcpy (head->anchor, p, ST_CHAIN_HASH);
    memcpy (head->last, p + 32, ST_CHAIN_HASH);
    head->count = st_db_be64_get (p + 64);
    head->last_ms = (int64_t) st_db_be64_get (p + 72);
    head->last_seq = st_db_be64_get (p + 80);
    return 0;
}

void
st_chain_head_write (const st_chain_head_t *head, unsigned char *out)
{
    memcpy (out, head->anchor, ST_CHAIN_HASH);
    memcpy (out + 32, head->last, ST_CHAIN_HASH);
    st_db_be64_put (out + 64, head->count);
    st_db_be64_put (out + 72, (uint64_t) head->last_ms);
    st_db_be64_put (out + 80, head->last_seq);
}

//  The log id at the end of an audit key (ms(8) seq(8) id).
static void
s_key_id (const MDB_val *k, char *out, size_t size)
{
    size_t len = k->mv_size > 16 ? k->mv_size - 16 : 0;
    if (len >= size)
        len = size - 1;
    memcpy (out, (const char *) k->mv_data + 16, len);
    out[len] = 0;
}

static void
s_broken (st_chain_report_t *report, const MDB_val *k, const char *previous, const char *why)
{
    report->sound = false;
    if (k)
        s_key_id (k, report->id, sizeof report->id);
    snprintf (report->previous_id, sizeof report->previous_id, "%s", previous);
    snprintf (report->why, sizeof report->why, "%s", why);
}

int
st_chain_verify (MDB_txn *txn, MDB_dbi audit, MDB_dbi chain, st_chain_report_t *report)
{
    memset (report, 0, sizeof *report);
    report->sound = true;
    st_chain_head_t head = {0};
    MDB_val hk = {strlen (ST_CHAIN_HEAD_KEY), ST_CHAIN_HEAD_KEY}, hv;
    int rc = mdb_get (txn, chain, &hk, &hv);
    const void *payload;
    size_t size;
    if (rc == 0) {
        st_record_state_t state
            = st_record_open (hk.mv_data, hk.mv_size, hv.mv_data, hv.mv_size, &payload, &size);
        if ((state != ST_RECORD_OK && state != ST_RECORD_LEGACY)
            || st_chain_head_read (payload, size, &head)) {
            s_broken (report, NULL, "", "the chain's head record is damaged");
            return 0;
        }
    }
    else if (rc != MDB_NOTFOUND)
        return st_db_error (rc, "mdb_get");
    MDB_cursor *cursor;
    rc = mdb_cursor_open (txn, audit, &cursor);
    if (rc)
        return st_db_error (rc, "mdb_cursor_open");
    unsigned char running[ST_CHAIN_HASH];
    memcpy (running, head.anchor, ST_CHAIN_HASH);
    char previous[80] = "";
    MDB_val k, v;
    uint64_t position = 0;
    rc = mdb_cursor_get (cursor, &k, &v, MDB_FIRST);
    while (rc == 0 && report->sound) {
        position++;
        report->index = position;
        st_record_state_t state
            = st_record_open (k.mv_data, k.mv_size, v.mv_data, v.mv_size, &payload, &size);
        cm_value_t *entry = NULL;
        if ((state != ST_RECORD_OK && state != ST_RECORD_LEGACY)
            || cm_value_decode (payload, size, &entry) || entry->type != CM_T_MAP) {
            s_broken (report, &k, previous, "the entry is damaged (checksum or encoding)");
            cm_value_destroy (&entry);
            break;
        }
        const cm_value_t *prev = cm_map_get (entry, "prev_hash");
        if (!prev && report->entries == 0)
            report->unchained++;
        else if (!prev || prev->type != CM_T_BIN || prev->u.s.len != ST_CHAIN_HASH)
            s_broken (report, &k, previous, "the entry has no hash link, but entries before it do");
        else if (memcmp (prev->u.s.ptr, running, ST_CHAIN_HASH) != 0)
            s_broken (report, &k, previous,
                      report->entries ? "its prev_hash is not the hash of the entry before it: "
                                        "that entry was changed, or entries between were removed"
                                      : "its prev_hash is not the chain's anchor: the oldest "
                                        "entries were removed or changed");
        else {
            st_chain_hash (k.mv_data, k.mv_size, payload, size, running);
            report->entries++;
        }
        cm_value_destroy (&entry);
        s_key_id (&k, previous, sizeof previous);
        if (report->sound)
            rc = mdb_cursor_get (cursor, &k, &v, MDB_NEXT);
    }
    mdb_cursor_close (cursor);
    if (rc && rc != MDB_NOTFOUND)
        return st_db_error (rc, "mdb_cursor_get");
    if (report->sound && (report->entries != head.count
                          || memcmp (running, head.last, ST_CHAIN_HASH) != 0)) {
        report->index = position + 1;
        s_broken (report, NULL, previous,
                  "the log ends before the chain's head: the newest entries were removed or "
                  "changed");
    }
    if (report->sound)
        report->index = 0;
    return 0;
}

int
st_chain_verify_path (const char *dir, FILE *out, st_chain_report_t *report)
{
    MDB_env *env = NULL;
    int rc = mdb_env_create (&env);
    if (rc == 0)
        rc = mdb_env_set_maxdbs (env, ST_DBI_COUNT + 2);
    if (rc == 0)
        rc = mdb_env_open (env, dir, MDB_RDONLY | MDB_NOTLS, 0600);
    MDB_txn *txn = NULL;
    if (rc == 0)
        rc = mdb_txn_begin (env, NULL, MDB_RDONLY, &txn);
    MDB_dbi audit = 0, chain = 0;
    if (rc == 0)
        rc = mdb_dbi_open (txn, st_db_name (ST_DBI_AUDIT), 0, &audit);
    if (rc == 0)
        rc = mdb_dbi_open (txn, st_db_name (ST_DBI_AUDIT_CHAIN), 0, &chain);
    if (rc) {
        fprintf (out, "cannot verify the audit log of %s: %s\n", dir, mdb_strerror (rc));
        if (txn)
            mdb_txn_abort (txn);
        if (env)
            mdb_env_close (env);
        return CM_EDB;
    }
    rc = st_chain_verify (txn, audit, chain, report);
    mdb_txn_abort (txn);
    mdb_env_close (env);
    if (rc) {
        fprintf (out, "cannot verify the audit log of %s: LMDB failed\n", dir);
        return CM_EDB;
    }
    if (report->sound) {
        fprintf (out, "audit log of %s is sound: %llu chained entries, %llu from before the chain\n",
                 dir, (unsigned long long) report->entries,
                 (unsigned long long) report->unchained);
        return 0;
    }
    fprintf (out,
             "audit log of %s is broken at entry %llu (id \"%s\", after \"%s\"): %s\n", dir,
             (unsigned long long) report->index, report->id, report->previous_id, report->why);
    return CM_ECORRUPT;
}
