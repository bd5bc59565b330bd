/*  cm_error.h: the one table of chatmesh error codes.

    Every function that can fail returns 0 or one of these negative codes.
    Names, codes and texts come from the same X-macro so they cannot drift.
    The codes travel on the wire (error replies carry the code), so a code's
    number never changes once released; add new ones at the end.

    CM_ENOTLEADER is a replicated store follower's answer to a write (and
    to a read it may not serve). Its "message" is "leader is <endpoint>"
    (the leader's client endpoint as CHATMESH_STORE_PEERS advertises it)
    or "leader unknown" (an election is running). The request was not
    executed, so the caller may send it again to the leader.               */
#ifndef CM_ERROR_H_INCLUDED
#define CM_ERROR_H_INCLUDED

#define CM_ERRORS(X)                                                         \
    X (EPROTO, -1, "malformed message")                                      \
    X (ENOTFOUND, -2, "no such record")                                      \
    X (ECONFLICT, -3, "regeneration already running")                        \
    X (EBACKEND, -4, "backend service unavailable")                          \
    X (ETIMEOUT, -5, "backend service did not answer in time")               \
    X (EINVAL, -6, "invalid argument")                                       \
    X (ENOMEM, -7, "out of memory")                                          \
    X (ERATELIMIT, -8, "rate limit exceeded")                                \
    X (ETOOBIG, -9, "too large")                                             \
    X (EDB, -10, "database error")                                           \
    X (ELEASE, -11, "task lease is held by another worker or has ended")     \
    X (ECANCELLED, -12, "cancelled")                                         \
    X (EBADSTATE, -13, "operation not allowed in the record's current state") \
    X (EFULL, -14, "queue full")                                             \
    X (EIO, -15, "input/output error")                                       \
    X (ECORRUPT, -16, "stored record is damaged (checksum mismatch)")        \
    X (ENOSPC, -17, "no space left on the store's disk")                    \
    X (ENOVERSION, -18, "no such version of the message")                  \
    X (ESTALE, -19, "stale fencing token: the task was taken over")         \
    X (EIDEMPOTENCY, -20, "idempotency key already used for another request") \
    X (ENOTLEADER, -21, "this store node is not the leader")

typedef enum {
    CM_OK = 0,
#define X(name, code, text) CM_##name = code,
    CM_ERRORS (X)
#undef X
} cm_error_t;

//  Human text for a code ("malformed message"). Never NULL; static storage.
const char *
    cm_strerror (int code);

//  Symbolic name for a code ("EPROTO"). Never NULL; static storage.
const char *
    cm_error_name (int code);

#endif
