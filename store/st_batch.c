/*  st_batch.c: the writer's retry-and-grow loop (st_batch.h).  */
#include "st_batch.h"

#include "cm_error.h"
#include "cm_log.h"
#include "st_events.h"

int
st_batch_run (st_db_t *db, size_t events_keep, st_batch_body_fn body, void *arg,
              cm_value_t **events_out)
{
    bool nested = false;
    for (int attempt = 0; attempt < ST_BATCH_ATTEMPTS; attempt++) {
        cm_value_t *events = cm_arr_new ();
        MDB_txn *txn = NULL;
        int rc = st_db_write_begin (db, NULL, &txn);
        if (rc == 0) {
            rc = body (arg, txn, nested, events);
            if (rc == 0)
                rc = st_events_number (db, txn, events, events_keep);
            if (rc == 0)
                rc = st_db_seal (db, txn); //  a replicated entry's index (st_fsm.h)
            if (rc == 0)
                rc = st_db_commit (txn);
            else
                st_db_abort (txn);
        }
        if (rc == 0) {
            *events_out = events;
            return 0;
        }
        cm_value_destroy (&events);
        if (rc == ST_BATCH_REPLAY && !nested) {
            cm_debug ("write batch replayed with nested txns");
            nested = true;
            continue;
        }
        if (rc == CM_EFULL && st_db_grow (db) == 0)
            continue; //  replay the whole attempt in the bigger map
        *events_out = cm_arr_new ();
        return rc == ST_BATCH_REPLAY ? CM_EDB : rc;
    }
    *events_out = cm_arr_new ();
    return CM_EDB;
}
