/*  cm_msg.h: every message chatmesh services exchange, in one table.

    A message is the envelope [version, type, request_id, payload]:
      version     positive integer, CM_PROTO_VERSION
      type        string, one of the names below
      request_id  string of 1..CM_REQUEST_ID_MAX bytes, echoed by the reply
      payload     map; its fields are checked against the type's schema
    docs/protocol.md is the prose version of this file and cm_msg.c.

    Adding a message is one row of CM_MSG_TYPES below.                    */
#ifndef CM_MSG_H_INCLUDED
#define CM_MSG_H_INCLUDED

#include "cm_ids.h"
#include "cm_value.h"

#define CM_PROTO_VERSION 1
#define CM_REQUEST_ID_MAX 64
//  Whole encoded message and single string limits (bytes), and item budget.
#define CM_MAX_MESSAGE_BYTES (8u * 1024 * 1024)
#define CM_MAX_STRING_BYTES (1u * 1024 * 1024)
#define CM_MAX_ITEMS 200000
#define CM_MAX_DEPTH 12
//  Field limits (bytes) the schemas below check and the gateway's
//  validators and OpenAPI document use (ids: cm_ids.h).
#define CM_MAP_KEY_MAX 256  //  a map key, 1..this
#define CM_USER_MAX 128     //  "user": a token's sub
#define CM_NAME_MAX 128     //  a worker or service name
#define CM_UA_MAX 500       //  "ua": the User-Agent, cut on a UTF-8 boundary
#define CM_IP_MAX 64        //  "ip"
#define CM_MODEL_MAX_CHARS 128              //  "model", in code points (the API limit)
#define CM_MODEL_MAX (4 * CM_MODEL_MAX_CHARS) //  "model" in bytes: any 128 code points fit
#define CM_EVENT_NAME_MAX 64
#define CM_TEXT_MAX 4096    //  error messages, feedback reasons (bytes)
#define CM_IDEM_KEY_MAX 255 //  an Idempotency-Key: 1..this printable ASCII bytes
//  Versions of one message (answer versions): numbered 1..this. A message
//  that has them all cannot be regenerated again (docs/store.md).
#define CM_VERSIONS_MAX 100
//  An admin audit page's cursor (hex of an audit key), and a page's size.
#define CM_AUDIT_CURSOR_MAX 512
#define CM_AUDIT_PAGE_MAX 1000
//  A session list page's cursor ("<updated_at ms>.<session id>"), and a
//  session title in bytes (200 code points).
#define CM_SESSION_CURSOR_MAX (21 + CM_SESSION_ID_MAX)
#define CM_TITLE_MAX (4 * 200)

//  One payload field of a schema: name, cm_type_t suffix, max bytes of a
//  string or bin (0 = CM_MAX_STRING_BYTES). Optional fields may be nil.
#define CM_MSG_REQ(name, type, max) {name, CM_T_##type, true, max}
#define CM_MSG_OPT(name, type, max) {name, CM_T_##type, false, max}
#define CM_MSG_NO_FIELDS {NULL, CM_T_NIL, false, 0}
//  Every gateway request carries who asks and from where (the audit log).
#define CM_MSG_CALLER                                                                    \
    CM_MSG_REQ ("user", STR, CM_USER_MAX), CM_MSG_OPT ("ip", STR, CM_IP_MAX),            \
        CM_MSG_OPT ("ua", STR, CM_UA_MAX)
//  Mutations also carry the per-minute limits the gateway enforces through
//  the store, so every gateway replica shares one budget.
//  And the Idempotency-Key of the action, when the client sent one
//  (store/st_idem.h): a retry with it has no second effect.
#define CM_MSG_LIMITED                                                                   \
    CM_MSG_OPT ("rate_limit", INT, 0), CM_MSG_OPT ("regen_rate_limit", INT, 0),           \
        CM_MSG_OPT ("idem_key", STR, CM_IDEM_KEY_MAX)
//  A worker's request about its task carries the lease's fencing token
//  ("fence", from task_claim): the store refuses any other (CM_ESTALE).
#define CM_MSG_WORKER_TASK                                                               \
    CM_MSG_REQ ("worker", STR, CM_NAME_MAX), CM_MSG_REQ ("task_id", STR, CM_TASK_ID_MAX), \
        CM_MSG_REQ ("fence", INT, 0)

/*  CM_MSG_TYPES(X): X (ENUM, "wire name", ACCESS, "what it does", fields...)
      ACCESS  REPLY (answers a request), READ (the receiver changes
              nothing: the store runs it on a reader thread), WRITE (the
              store runs it in a write transaction), NOTICE (one-way)
      fields  the payload's schema (CM_MSG_REQ / CM_MSG_OPT), checked by
              cm_msg_validate; CM_MSG_NO_FIELDS for a free-form payload    */
#define CM_MSG_TYPES(X)                                                                  \
    /* replies */                                                                        \
    X (OK, "ok", REPLY, "success reply; payload depends on the request", CM_MSG_NO_FIELDS) \
    X (ERROR, "error", REPLY, "failure reply: {code, message}",                          \
       CM_MSG_REQ ("code", INT, 0), CM_MSG_REQ ("message", STR, CM_TEXT_MAX))            \
    /* any service */                                                                    \
    X (PING, "ping", READ, "liveness/readiness probe", CM_MSG_OPT ("from", STR, CM_NAME_MAX), \
       CM_MSG_OPT ("worker_prefix", STR, CM_NAME_MAX))                                   \
    /* operator -> store leader (chatmesh-cluster add / remove) */                       \
    X (CLUSTER_CHANGE, "cluster_change", WRITE, "add or remove a raft member of the store", \
       CM_MSG_REQ ("op", STR, 16), CM_MSG_REQ ("id", INT, 0),                            \
       CM_MSG_OPT ("raft_address", STR, 255))                                            \
    /* gateway -> store */                                                               \
    X (SESSION_START, "session_start", WRITE, "create/continue a session with a query",  \
       CM_MSG_CALLER, CM_MSG_LIMITED, CM_MSG_REQ ("session_id", STR, CM_SESSION_ID_MAX),  \
       CM_MSG_REQ ("query", STR, 0), CM_MSG_OPT ("model", STR, CM_MODEL_MAX),             \
       CM_MSG_OPT ("temperature", DBL, 0))                                               \
    X (SESSION_GET, "session_get", READ, "a session with its messages", CM_MSG_CALLER,   \
       CM_MSG_REQ ("session_id", STR, CM_SESSION_ID_MAX))                                \
    X (SESSION_LIST, "session_list", READ, "the caller's sessions, newest first, paged", \
       CM_MSG_CALLER, CM_MSG_OPT ("limit", INT, 0),                                      \
       CM_MSG_OPT ("cursor", STR, CM_SESSION_CURSOR_MAX))                                \
    X (SESSION_RENAME, "session_rename", WRITE, "give a session another title",          \
       CM_MSG_CALLER, CM_MSG_LIMITED, CM_MSG_REQ ("session_id", STR, CM_SESSION_ID_MAX),  \
       CM_MSG_REQ ("title", STR, CM_TITLE_MAX))                                          \
    X (SESSION_EXPORT, "session_export", READ, "a session as JSON (every version) or Markdown", \
       CM_MSG_CALLER, CM_MSG_REQ ("session_id", STR, CM_SESSION_ID_MAX),                  \
       CM_MSG_OPT ("format", STR, 16))                                                   \
    X (MESSAGE_EDIT, "message_edit", WRITE, "replace content, record history",           \
       CM_MSG_CALLER, CM_MSG_LIMITED, CM_MSG_REQ ("message_id", STR, CM_MESSAGE_ID_MAX),  \
       CM_MSG_REQ ("content", STR, 0), CM_MSG_OPT ("trigger_regeneration", BOOL, 0))      \
    X (MESSAGE_DELETE, "message_delete", WRITE, "delete a message (scope message) or it and all later ones", \
       CM_MSG_CALLER, CM_MSG_LIMITED, CM_MSG_REQ ("message_id", STR, CM_MESSAGE_ID_MAX),  \
       CM_MSG_OPT ("scope", STR, 16))                                                    \
    X (MESSAGE_RESTORE, "message_restore", WRITE, "undo a message delete within the undo window", \
       CM_MSG_CALLER, CM_MSG_LIMITED, CM_MSG_REQ ("message_id", STR, CM_MESSAGE_ID_MAX))  \
    X (SESSION_DELETE, "session_delete", WRITE, "delete a whole session (undoable for a while)", \
       CM_MSG_CALLER, CM_MSG_LIMITED, CM_MSG_REQ ("session_id", STR, CM_SESSION_ID_MAX))  \
    X (SESSION_RESTORE, "session_restore", WRITE, "undo a session delete within the undo window", \
       CM_MSG_CALLER, CM_MSG_LIMITED, CM_MSG_REQ ("session_id", STR, CM_SESSION_ID_MAX))  \
    X (FEEDBACK_PUT, "feedback_put", WRITE, "record (or replace) the caller's vote",     \
       CM_MSG_CALLER, CM_MSG_LIMITED, CM_MSG_REQ ("message_id", STR, CM_MESSAGE_ID_MAX),  \
       CM_MSG_REQ ("feedback_type", STR, 16), CM_MSG_OPT ("reason", STR, CM_TEXT_MAX),    \
       CM_MSG_OPT ("metadata", MAP, 0), CM_MSG_OPT ("version", INT, 0))                  \
    X (FEEDBACK_DELETE, "feedback_delete", WRITE, "withdraw the caller's vote (if any)",  \
       CM_MSG_CALLER, CM_MSG_LIMITED, CM_MSG_REQ ("message_id", STR, CM_MESSAGE_ID_MAX))  \
    X (FEEDBACK_GET, "feedback_get", READ, "vote summary and recent feedback",           \
       CM_MSG_CALLER, CM_MSG_REQ ("message_id", STR, CM_MESSAGE_ID_MAX))                 \
    X (HISTORY_GET, "history_get", READ, "edit history of a message", CM_MSG_CALLER,     \
       CM_MSG_REQ ("message_id", STR, CM_MESSAGE_ID_MAX))                                \
    X (VERSION_ACTIVATE, "version_activate", WRITE, "show another version of a message",   \
       CM_MSG_CALLER, CM_MSG_LIMITED, CM_MSG_REQ ("message_id", STR, CM_MESSAGE_ID_MAX),  \
       CM_MSG_REQ ("version", INT, 0))                                                   \
    X (REGEN_CREATE, "regen_create", WRITE, "create a regeneration task", CM_MSG_CALLER, \
       CM_MSG_LIMITED, CM_MSG_REQ ("message_id", STR, CM_MESSAGE_ID_MAX),                 \
       CM_MSG_OPT ("context", STR, 0), CM_MSG_OPT ("instruction", STR, 0),                \
       CM_MSG_OPT ("model", STR, CM_MODEL_MAX), CM_MSG_OPT ("temperature", DBL, 0))        \
    X (MESSAGE_CONTINUE, "message_continue", WRITE, "continue a stopped or cut-off answer", \
       CM_MSG_CALLER, CM_MSG_LIMITED, CM_MSG_REQ ("message_id", STR, CM_MESSAGE_ID_MAX))  \
    X (TASK_STATUS, "task_status", READ, "one task's status", CM_MSG_CALLER,             \
       CM_MSG_REQ ("task_id", STR, CM_TASK_ID_MAX))                                      \
    X (TASK_CANCEL, "task_cancel", WRITE, "cancel a pending or running task",            \
       CM_MSG_CALLER, CM_MSG_LIMITED, CM_MSG_REQ ("task_id", STR, CM_TASK_ID_MAX))        \
    X (ANALYTICS_GET, "analytics_get", READ, "per-session analytics", CM_MSG_CALLER,     \
       CM_MSG_REQ ("session_id", STR, CM_SESSION_ID_MAX))                                \
    X (AUDIT_QUERY, "audit_query", READ, "audit log entries", CM_MSG_CALLER,             \
       CM_MSG_OPT ("session_id", STR, CM_SESSION_ID_MAX), CM_MSG_OPT ("limit", INT, 0))   \
    X (ADMIN_AUDIT, "admin_audit", READ, "an operator's audit query, newest first, paged", \
       CM_MSG_CALLER, CM_MSG_OPT ("user_id", STR, CM_USER_MAX),                           \
       CM_MSG_OPT ("session_id", STR, CM_SESSION_ID_MAX),                                 \
       CM_MSG_OPT ("action_type", STR, CM_EVENT_NAME_MAX), CM_MSG_OPT ("from", INT, 0),   \
       CM_MSG_OPT ("to", INT, 0), CM_MSG_OPT ("cursor", STR, CM_AUDIT_CURSOR_MAX),        \
       CM_MSG_OPT ("limit", INT, 0))                                                     \
    X (ADMIN_AUDIT_VERIFY, "admin_audit_verify", READ, "walk the audit log's hash chain", \
       CM_MSG_CALLER)                                                                    \
    X (ADMIN_ANALYTICS, "admin_analytics", READ, "action counters per model, day and user", \
       CM_MSG_CALLER, CM_MSG_OPT ("from", INT, 0), CM_MSG_OPT ("to", INT, 0))              \
    X (ANALYTICS_TOTALS, "analytics_totals", READ, "all-time action counters per model (/metrics)", \
       CM_MSG_OPT ("from", STR, CM_NAME_MAX))                                            \
    X (RATE_CONSUME, "rate_consume", WRITE, "check-and-consume one rate-limit token",    \
       CM_MSG_REQ ("key", STR, CM_MAP_KEY_MAX), CM_MSG_REQ ("limit", INT, 0),             \
       CM_MSG_OPT ("window_ms", INT, 0))                                                 \
    X (RATE_REFUND, "rate_refund", WRITE, "give back a token of the window rate_consume named", \
       CM_MSG_REQ ("key", STR, CM_MAP_KEY_MAX), CM_MSG_REQ ("window_start", INT, 0))       \
    /* regenerator -> store */                                                           \
    X (TASK_CLAIM, "task_claim", WRITE, "long-poll for claimable tasks, lease them",     \
       CM_MSG_REQ ("worker", STR, CM_NAME_MAX), CM_MSG_OPT ("max", INT, 0),               \
       CM_MSG_OPT ("wait_ms", INT, 0))                                                   \
    X (TASK_PROGRESS, "task_progress", WRITE, "checkpoint progress, renew lease, publish", \
       CM_MSG_WORKER_TASK, CM_MSG_REQ ("progress", INT, 0),                              \
       CM_MSG_OPT ("message", STR, 1024), CM_MSG_OPT ("partial", STR, 0))                \
    X (TASK_EVENT, "task_event", WRITE, "publish a thought-process event for a task",    \
       CM_MSG_WORKER_TASK, CM_MSG_REQ ("event", STR, CM_EVENT_NAME_MAX),                 \
       CM_MSG_REQ ("data", MAP, 0))                                                      \
    X (TASK_COMPLETE, "task_complete", WRITE, "commit the result, publish regenerated",  \
       CM_MSG_WORKER_TASK, CM_MSG_REQ ("content", STR, 0),                               \
       CM_MSG_OPT ("model", STR, CM_MODEL_MAX), CM_MSG_OPT ("prompt_tokens", INT, 0),     \
       CM_MSG_OPT ("completion_tokens", INT, 0), CM_MSG_OPT ("finish_reason", STR, 16))   \
    X (TASK_FAIL, "task_fail", WRITE, "fail (or requeue) a task, publish the error",     \
       CM_MSG_WORKER_TASK, CM_MSG_REQ ("error", STR, CM_TEXT_MAX),                       \
       CM_MSG_OPT ("retryable", BOOL, 0))                                                \
    /* store -> broadcaster, broadcaster -> gateway */                                   \
    X (EVENT, "event", NOTICE, "one session event {event, data, id: the store's id}",     \
       CM_MSG_REQ ("event", STR, CM_EVENT_NAME_MAX), CM_MSG_REQ ("data", MAP, 0),         \
       CM_MSG_OPT ("id", STR, 64))                                                        \
    /* gateway -> store: a Last-Event-ID older than the broadcasters' history */          \
    X (EVENTS_AFTER, "events_after", READ, "a session's logged events after an id",      \
       CM_MSG_REQ ("session_id", STR, CM_SESSION_ID_MAX), CM_MSG_OPT ("after", STR, 64))  \
    /* gateway -> broadcaster */                                                         \
    X (HISTORY, "history", READ, "events of a session after an id",                     \
       CM_MSG_REQ ("session_id", STR, CM_SESSION_ID_MAX), CM_MSG_OPT ("after", STR, 64))

typedef enum {
    CM_MSG_NONE = 0,
#define X(name, wire, access, doc, ...) CM_MSG_##name,
    CM_MSG_TYPES (X)
#undef X
        CM_MSG_COUNT
} cm_msg_t;

//  Schema of one payload field.
typedef struct {
    const char *name;
    cm_type_t type;   //  CM_T_DBL also accepts ints
    bool required;    //  optional fields may also be nil
    size_t max_bytes; //  strings and bins; 0 = CM_MAX_STRING_BYTES
} cm_field_t;

typedef enum { CM_ACCESS_REPLY, CM_ACCESS_READ, CM_ACCESS_WRITE, CM_ACCESS_NOTICE } cm_msg_access_t;

//  What the receiver does with a type (CM_ACCESS_NOTICE for an unknown one).
cm_msg_access_t cm_msg_access (cm_msg_t type);
//  Wire name of a type ("feedback_put"); "?" for an unknown enum.
const char *cm_msg_name (cm_msg_t type);
//  Type of a wire name, or CM_MSG_NONE.
cm_msg_t cm_msg_from_name (const char *name, size_t len);
//  The schema of a type: *count fields. Never NULL (may be empty).
const cm_field_t *cm_msg_schema (cm_msg_t type, size_t *count);

//  Checks a payload map against a type's schema. 0 or CM_EPROTO; when
//  `why` is given, it receives a short static-or-buffered reason.
int cm_msg_validate (cm_msg_t type, const cm_value_t *payload, char *why, size_t why_size);

#endif
