#include "st_verify.h"

#include "cm_error.h"
#include "cm_codec.h"
#include "st_chain.h"
#include "st_db.h"
#include "st_record.h"

#include <errno.h>
#include <string.h>
#include <sys/stat.h>

static void
s_report (FILE *out, st_dbi_t which, const MDB_val *key, const char *why)
{
    if (!out)
        return;
    char text[ST_DB_KEY_TEXT_MAX];
    fprintf (out, "damaged: %s key \"%s\": %s\n", st_db_name (which),
             key ? st_record_key_text (key->mv_data, key->mv_size, text, sizeof text) : "",
             why);
}

//  What a sound payload of db which looks like beyond its checksum; NULL
//  when it is fine.
static const char *
s_payload_problem (st_dbi_t which, const void *data, size_t size)
{
    const unsigned char *p = data;
    switch (which) {
        case ST_DBI_VOTES:
            return size == 16 ? NULL : "vote counts are not 16 bytes";
        case ST_DBI_AUDIT_CHAIN:
            return size == ST_CHAIN_HEAD_BYTES ? NULL : "the audit chain head is not 88 bytes";
        case ST_DBI_COUNTERS:
            return size == 8 ? NULL : "a counter is not 8 bytes";
        case ST_DBI_EVENT_HEADS:
            return size == 8 ? NULL : "an event head is not 8 bytes";
        case ST_DBI_EVENTS: {
            cm_envelope_t *envelope = NULL;
            bool ok = cm_envelope_decode (data, size, &envelope) == 0
                      && envelope->type == CM_MSG_EVENT;
            cm_envelope_destroy (&envelope);
            return ok ? NULL : "an event is not an event envelope";
        }
        case ST_DBI_VERSIONS:
            //  A version head (0xC1, active, count, id: st_versions.h) or
            //  a version's map.
            if (size >= 9 && p[0] == 0xC1)
                return NULL;
            break;
        case ST_DBI_RATE:
            //  25-byte binary bucket, or an older msgpack one (st_db.h).
            if (size == 25 && p[0] == 0xC1)
                return NULL;
            break;
        case ST_DBI_USER_SESSIONS:
        case ST_DBI_MSG_INDEX:
        case ST_DBI_TASK_QUEUE:
        case ST_DBI_ACTIVE:
            return NULL; //  keys and ids: any bytes
        default:
            break;
    }
    cm_value_t *value = NULL;
    bool ok = cm_value_decode (data, size, &value) == 0 && value->type == CM_T_MAP;
    cm_value_destroy (&value);
    return ok ? NULL : "record does not decode";
}

static void
s_scan (MDB_txn *txn, st_dbi_t which, FILE *out, st_verify_counts_t *counts)
{
    MDB_dbi dbi;
    int rc = mdb_dbi_open (txn, st_db_name (which), 0, &dbi);
    if (rc) {
        char why[200];
        snprintf (why, sizeof why, "database cannot be opened: %s", mdb_strerror (rc));
        s_report (out, which, NULL, why);
        counts->damaged++;
        return;
    }
    MDB_cursor *cursor = NULL;
    rc = mdb_cursor_open (txn, dbi, &cursor);
    MDB_val k = {0, NULL}, v, last = {0, NULL};
    if (rc == 0)
        rc = mdb_cursor_get (cursor, &k, &v, MDB_FIRST);
    while (rc == 0) {
        counts->records++;
        const void *payload;
        size_t size;
        st_record_state_t state
            = st_record_open (k.mv_data, k.mv_size, v.mv_data, v.mv_size, &payload, &size);
        const char *problem = NULL;
        if (state == ST_RECORD_OK || state == ST_RECORD_LEGACY) {
            if (state == ST_RECORD_LEGACY)
                counts->legacy++;
            problem = s_payload_problem (which, payload, size);
        }
        else
            problem = st_record_state_text (state);
        if (problem) {
            s_report (out, which, &k, problem);
            counts->damaged++;
        }
        last = k;
        rc = mdb_cursor_get (cursor, &k, &v, MDB_NEXT);
    }
    if (rc != MDB_NOTFOUND) {
        char why[200];
        snprintf (why, sizeof why, "LMDB cannot read on after this key: %s", mdb_strerror (rc));
        s_report (out, which, last.mv_data ? &last : NULL, why);
        counts->damaged++;
    }
    if (cursor)
        mdb_cursor_close (cursor);
}

int
st_verify_txn (MDB_txn *txn, FILE *out, st_verify_counts_t *counts)
{
    uint64_t damaged = counts->damaged;
    for (int i = 0; i < ST_DBI_COUNT; i++)
        s_scan (txn, (st_dbi_t) i, out, counts);
    return counts->damaged == damaged ? 0 : CM_ECORRUPT;
}

//  A data file shorter than its last page faults (SIGBUS) when read:
//  refuse it before the scan.
static int
s_check_length (MDB_env *env, const char *file, FILE *out)
{
    struct stat st;
    MDB_envinfo info;
    MDB_stat db_stat;
    if (stat (file, &st) || mdb_env_info (env, &info) || mdb_env_stat (env, &db_stat))
        return 0; //  mdb_env_open read it: nothing more to learn here
    unsigned long long need = (unsigned long long) (info.me_last_pgno + 1) * db_stat.ms_psize;
    if ((unsigned long long) st.st_size >= need)
        return 0;
    if (out)
        fprintf (out, "damaged: %s is %lld bytes, its meta page says %llu: cut short\n", file,
                 (long long) st.st_size, need);
    return CM_ECORRUPT;
}

int
st_verify_path (const char *path, bool is_file, FILE *out, st_verify_counts_t *counts)
{
    char file[4200];
    if (is_file)
        snprintf (file, sizeof file, "%s", path);
    else
        snprintf (file, sizeof file, "%s/data.mdb", path);
    struct stat st;
    if (stat (file, &st)) {
        if (out)
            fprintf (out, "cannot verify %s: %s\n", file, strerror (errno));
        return CM_EDB;
    }
    MDB_env *env = NULL;
    int rc = mdb_env_create (&env);
    if (rc == 0)
        rc = mdb_env_set_maxdbs (env, ST_DBI_COUNT + 2);
    //  A lone copy has no lock file and nobody else uses it.
    unsigned flags = MDB_RDONLY | MDB_NOTLS | (is_file ? MDB_NOSUBDIR | MDB_NOLOCK : 0);
    if (rc == 0)
        rc = mdb_env_open (env, path, flags, 0600);
    if (rc) {
        if (out)
            fprintf (out, "cannot verify %s: LMDB cannot open it: %s\n", file,
                     mdb_strerror (rc));
        if (env)
            mdb_env_close (env);
        return CM_EDB;
    }
    rc = s_check_length (env, file, out);
    if (rc) {
        counts->damaged++;
        mdb_env_close (env);
        return rc;
    }
    MDB_txn *txn;
    rc = mdb_txn_begin (env, NULL, MDB_RDONLY, &txn);
    if (rc) {
        if (out)
            fprintf (out, "cannot verify %s: %s\n", file, mdb_strerror (rc));
        mdb_env_close (env);
        return CM_EDB;
    }
    rc = st_verify_txn (txn, out, counts);
    mdb_txn_abort (txn);
    mdb_env_close (env);
    if (out)
        fprintf (out,
                 "verified %s: %llu records, %llu damaged, %llu legacy (no checksum yet)\n",
                 file, (unsigned long long) counts->records,
                 (unsigned long long) counts->damaged, (unsigned long long) counts->legacy);
    return rc;
}
