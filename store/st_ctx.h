/*  st_ctx.h: what every store request handler gets, and what it promises.

    Internal to the store (st_ops.h is the public face). The modules under
    it, bottom up: st_key (key layouts and ids), st_rows (records: load with
    the ownership check, put, counters, audit), st_view (replies and event
    data: the only place with camelCase names and ISO times), st_task_fsm
    (the task lifecycle, pure) and st_task (applies it to task records),
    the handler families st_h_sessions, st_h_feedback, st_h_tasks and
    st_h_audit, and st_batch (runs a write batch: one retry-and-grow loop).

    The handler contract (st_handler_fn):
      - returns 0 or a CM_E* code (cm_error.h), never anything else;
      - on 0 it may set c->ok (the reply payload, taken by the dispatcher;
        NULL means an empty map) and append events to c->events;
      - on failure it has written nothing: every check that can refuse
        the request (bad input, ownership, state, rate limit) comes before
        its first put or delete, and c->why / c->retry_after explain the
        refusal. A handler that fails after writing (a database error, out
        of memory, CM_EFULL) is still correct, because st_batch sees the
        write count move (st_db_writes) and replays the batch with one
        nested txn per request, but it costs the fast path. c->ok is
        destroyed and c->events dropped on failure.
    A read handler runs in a read-only txn and must not write at all.   */
#ifndef ST_CTX_H_INCLUDED
#define ST_CTX_H_INCLUDED

#include "cm_codec.h"
#include "cm_ids.h"
#include "cm_time.h"
#include "st_db.h"
#include "st_ops.h"

#include <pthread.h>
#include <stdatomic.h>

#define ST_MAX_WORKERS 256

typedef struct {
    char name[CM_ID_MAX + 65];
    int64_t seen;
} st_worker_t;

//  The ops object: what outlives a request. Handlers reach it as c->ops.
struct st_ops {
    st_db_t *db;
    st_ops_config_t config;
    bool tasks_changed;        //  writer thread only
    int64_t next_lease_expiry; //  writer thread only
    uint64_t seq;              //  orders audit/history entries of the same ms
    cm_packer_t *packer;       //  writer thread only: audit and feedback records
    pthread_mutex_t workers_lock;
    st_worker_t workers[ST_MAX_WORKERS];
    //  Disk full (CM_ENOSPC at commit): when the first refused batch since
    //  the last commit that worked came (ms, 0 = writes go through), and
    //  how many write requests were refused so far. Set by the writer, read
    //  by ping on the readers.
    atomic_llong refused_since;
    atomic_ullong refused;
    //  Worker writes refused for a stale fencing token (st_task_held), for
    //  ping (stale_writes_refused) and so the gateway's /metrics.
    atomic_ullong stale_refused;
};

//  Everything one request's handler needs. p is the request's payload.
typedef struct {
    st_ops_t *ops;
    st_db_t *db;
    MDB_txn *txn;
    int64_t now;
    const cm_envelope_t *req;
    const cm_value_t *p;
    cm_value_t *events;  //  array this request's events go to (st_view_event)
    cm_value_t *ok;      //  the reply payload, set by the handler on success
    const char *why;     //  text of a refusal (NULL: cm_strerror): static or why_buf
    char why_buf[160];   //  a refusal's text formatted for this request
    int64_t retry_after; //  ms, with CM_ERATELIMIT
    char now_iso[CM_ISO_TIME_LEN + 1]; //  "" until st_view_now formats it
} st_ctx_t;

//  One request type's handler; see the contract above.
typedef int (*st_handler_fn) (st_ctx_t *c);

//  Propagate any error; handlers stay flat.
#define ST_TRY(expr)                                                         \
    do {                                                                     \
        int try_rc_ = (expr);                                                \
        if (try_rc_)                                                         \
            return try_rc_;                                                  \
    } while (0)

//  The user the request acts for ("" when none: upkeep). Borrowed from
//  the request.
static inline const char *
st_ctx_user (const st_ctx_t *c)
{
    return cm_map_str_or (c->p, "user", "");
}

#endif
