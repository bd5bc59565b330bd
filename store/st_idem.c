/*  st_idem.c: idempotency keys (st_idem.h).  */
#include "st_idem.h"

#include "cm_codec.h"
#include "cm_error.h"
#include "st_key.h"
#include "st_rows.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

//  The request's fingerprint as 16 hex digits into fp (17 bytes).
static int
s_fingerprint (const st_ctx_t *c, char *fp)
{
    cm_value_t *copy = cm_value_dup (c->p);
    if (!copy)
        return CM_ENOMEM;
    static const char *const volatile_fields[] = {"ip", "ua", "rate_limit", "regen_rate_limit",
                                                  NULL};
    for (size_t i = 0; volatile_fields[i]; i++) {
        cm_value_t *field = cm_map_take (copy, volatile_fields[i]);
        cm_value_destroy (&field);
    }
    char *bytes = NULL;
    size_t size = 0;
    int rc = cm_value_encode (copy, &bytes, &size);
    cm_value_destroy (&copy);
    if (rc)
        return rc;
    uint64_t hash = 0xcbf29ce484222325ULL;
    for (size_t i = 0; i < size; i++)
        hash = (hash ^ (unsigned char) bytes[i]) * 0x100000001b3ULL;
    free (bytes);
    snprintf (fp, 17, "%016" PRIx64, hash);
    return 0;
}

int
st_idem_run (st_ctx_t *c, st_handler_fn handler)
{
    const char *key = cm_map_str (c->p, "idem_key");
    if (!key)
        return handler (c);
    st_key_t ikey;
    ST_TRY (st_key_pair (&ikey, st_ctx_user (c), key));
    char fp[17];
    ST_TRY (s_fingerprint (c, fp));
    const char *type = cm_msg_name (c->req->type);
    cm_value_t *record = NULL;
    int rc = st_db_get (c->db, c->txn, ST_DBI_IDEM, ikey.bytes, ikey.len, &record);
    if (rc && rc != CM_ENOTFOUND)
        return rc;
    bool fresh = rc == 0 && cm_map_int (record, "created_at", 0) > c->now - ST_IDEM_TTL_MS;
    if (fresh) {
        bool same = strcmp (cm_map_str_or (record, "type", ""), type) == 0
                    && strcmp (cm_map_str_or (record, "fp", ""), fp) == 0;
        if (same) {
            const cm_value_t *reply = cm_map_get (record, "reply");
            c->ok = reply ? cm_value_dup (reply) : cm_map_new ();
            if (c->ok && cm_map_set_bool (c->ok, "replayed", true))
                cm_value_destroy (&c->ok);
        }
        else
            c->why = "this Idempotency-Key was already used for another request in the last "
                     "24 hours; send a new key for a new action";
        cm_value_destroy (&record);
        return same ? (c->ok ? 0 : CM_ENOMEM) : CM_EIDEMPOTENCY;
    }
    cm_value_destroy (&record);
    ST_TRY (handler (c));
    record = cm_map_new ();
    cm_map_set_str (record, "type", type);
    cm_map_set_str (record, "fp", fp);
    cm_map_set (record, "reply", c->ok ? cm_value_dup (c->ok) : cm_map_new ());
    cm_map_set_int (record, "created_at", c->now);
    rc = st_db_put (c->db, c->txn, ST_DBI_IDEM, ikey.bytes, ikey.len, record);
    cm_value_destroy (&record);
    return rc;
}

int
st_idem_expire (st_ctx_t *c, int64_t cutoff)
{
    cm_value_t *list = NULL;
    ST_TRY (st_rows_collect (c, ST_DBI_IDEM, NULL, &list));
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < cm_value_len (list); i++) {
        cm_value_t *record = st_rows_decode (st_rows_value (list, i));
        if (record && cm_map_int (record, "created_at", 0) < cutoff) {
            const cm_value_t *k = st_rows_key (list, i);
            rc = st_db_del (c->db, c->txn, ST_DBI_IDEM, k->u.s.ptr, k->u.s.len);
        }
        cm_value_destroy (&record);
    }
    cm_value_destroy (&list);
    return rc;
}
