/*  st_ops_batch.c: the writer's group commit, st_ops_write_batch and
    st_ops_write_batch_claims (st_ops.h).                                  */
#include "st_ops.h"

#include "cm_error.h"
#include "st_batch.h"
#include "st_ctx.h"

//  Drops the items of arr past its first len (events of a request whose
//  changes were rolled back).
static void
s_arr_truncate (cm_value_t *arr, size_t len)
{
    while (arr->u.c.len > len)
        cm_value_destroy (&arr->u.c.items[--arr->u.c.len]);
}

//  The batch of st_ops_write_batch_claims, as st_batch_run's body.
typedef struct {
    st_ops_t *self;
    cm_envelope_t *const *requests;
    size_t n;
    cm_envelope_t *const *claims;
    size_t m;
    int64_t now;
    cm_envelope_t **replies;
    cm_envelope_t **claim_replies;
    bool claims_ran; //  this attempt ran the claims
} s_batch_t;

//  One request of an attempt. Fast path (nested false): it runs straight
//  in the batch txn. That is exact as long as a failing request has not
//  written anything yet (the st_db write count did not move), which is how
//  every handler fails on bad input, ownership, state or rate limits
//  (st_ctx.h). A request that fails after writing (or with a database
//  error) would leave half its changes in the txn, so the attempt is
//  abandoned (ST_BATCH_REPLAY) and the batch replayed with one nested txn
//  per request. Nesting costs LMDB a dirty-list allocation and a copy of
//  every touched page per request, which was ~1/3 of the writer's time.
static int
s_batch_one (st_ops_t *self, MDB_txn *txn, bool nested, const cm_envelope_t *request,
             int64_t now, cm_envelope_t **reply, cm_value_t *events)
{
    cm_envelope_destroy (reply); //  a previous attempt's
    if (!nested) {
        uint64_t writes = st_db_writes (self->db);
        int result = st_ops_handle (self, txn, request, now, reply, events);
        if (result == CM_EFULL)
            return CM_EFULL;
        if (result
            && (st_db_writes (self->db) != writes || result == CM_EDB || result == CM_ENOMEM))
            return ST_BATCH_REPLAY;
        return 0;
    }
    size_t events_before = cm_value_len (events);
    MDB_txn *child = NULL;
    ST_TRY (st_db_write_begin (self->db, txn, &child));
    int result = st_ops_handle (self, child, request, now, reply, events);
    if (result == 0)
        result = st_db_commit (child);
    else
        st_db_abort (child);
    if (result == CM_EFULL)
        return CM_EFULL;
    if (result && *reply && (*reply)->type == CM_MSG_OK) {
        //  The child commit itself failed after an ok reply.
        s_arr_truncate (events, events_before);
        cm_envelope_destroy (reply);
        *reply = cm_envelope_reply_error (request, result, NULL);
    }
    return 0;
}

static int
s_batch_body (void *arg, MDB_txn *txn, bool nested, cm_value_t *events)
{
    s_batch_t *b = arg;
    st_ops_t *self = b->self;
    for (size_t i = 0; i < b->m; i++)
        cm_envelope_destroy (&b->claim_replies[i]); //  a previous attempt's
    b->claims_ran = false;
    self->tasks_changed = false;
    for (size_t i = 0; i < b->n; i++) {
        int rc = s_batch_one (self, txn, nested, b->requests[i], b->now, &b->replies[i], events);
        if (rc)
            return rc;
    }
    if (b->m == 0 || !self->tasks_changed)
        return 0;
    //  The batch made a task claimable while regenerators wait for one:
    //  they claim it in this txn, so the task is created and leased in one
    //  commit and the lease goes out with the creation's reply, instead of
    //  a second commit on the writer's next turn. Each claim sweeps the
    //  whole queue; one that leaves a claimable task sets the flag again.
    self->tasks_changed = false;
    b->claims_ran = true;
    for (size_t i = 0; i < b->m; i++) {
        int rc = s_batch_one (self, txn, nested, b->claims[i], b->now, &b->claim_replies[i],
                              events);
        if (rc)
            return rc;
    }
    return 0;
}

int
st_ops_write_batch (st_ops_t *self, cm_envelope_t *const *requests, size_t n, int64_t now,
                    cm_envelope_t **replies, cm_value_t **events_out)
{
    return st_ops_write_batch_claims (self, requests, n, NULL, 0, now, replies, NULL, events_out);
}

int
st_ops_write_batch_claims (st_ops_t *self, cm_envelope_t *const *requests, size_t n,
                           cm_envelope_t *const *claims, size_t m, int64_t now,
                           cm_envelope_t **replies, cm_envelope_t **claim_replies,
                           cm_value_t **events_out)
{
    for (size_t i = 0; i < n; i++)
        replies[i] = NULL;
    for (size_t i = 0; i < m; i++)
        claim_replies[i] = NULL;
    bool earlier = self->tasks_changed; //  not yet taken by the writer
    s_batch_t batch = {self, requests, n, claims, m, now, replies, claim_replies, false};
    int rc = st_batch_run (self->db, self->config.events_keep, s_batch_body, &batch, events_out);
    if (rc == 0) {
        //  Claims that ran saw every task; a refused one leaves the task
        //  to the next try of the others.
        bool refused = false;
        for (size_t i = 0; i < m; i++)
            refused = refused || (claim_replies[i] && claim_replies[i]->type != CM_MSG_OK);
        if (!batch.claims_ran || refused)
            self->tasks_changed = self->tasks_changed || earlier || refused;
        //  A small write may fit on a full disk: the refusals end only
        //  once the disk has room again (statvfs only in that state).
        if (atomic_load (&self->refused_since) && !st_db_space_low (st_db_dir (self->db), NULL))
            atomic_store (&self->refused_since, 0);
        return 0;
    }
    //  Nothing committed: the claims did not run and wait on.
    for (size_t i = 0; i < m; i++)
        cm_envelope_destroy (&claim_replies[i]);
    self->tasks_changed = self->tasks_changed || earlier;
    if (rc == CM_ENOSPC) {
        long long none = 0;
        atomic_compare_exchange_strong (&self->refused_since, &none, (long long) now);
        atomic_fetch_add (&self->refused, n);
    }
    else if (rc != CM_EFULL) //  CM_EFULL here: the map could not grow (st_db_no_room)
        rc = CM_EDB;
    for (size_t i = 0; i < n; i++) {
        cm_envelope_destroy (&replies[i]);
        replies[i] = cm_envelope_reply_error (requests[i], rc == CM_EFULL ? CM_ENOSPC : rc,
                                              st_db_no_room (rc));
    }
    return rc;
}
