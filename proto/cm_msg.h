/*  cm_msg.h: every message chatmesh services exchange, in one table.

    A message is the envelope [version, type, request_id, payload]:
      version     positive integer, CM_PROTO_VERSION
      type        string, one of the names below
      request_id  string of 1..CM_REQUEST_ID_MAX bytes, echoed by the reply
      payload     map; its fields are checked against the type's schema
    docs/protocol.md is the prose version of this file and cm_msg.c.

    CM_MSG_TYPES(X): X (ENUM, "wire name", "one line of what it does").  */
#ifndef CM_MSG_H_INCLUDED
#define CM_MSG_H_INCLUDED

#include "cm_value.h"

#define CM_PROTO_VERSION 1
#define CM_REQUEST_ID_MAX 64
//  Whole encoded message and single string limits (bytes), and item budget.
#define CM_MAX_MESSAGE_BYTES (8u * 1024 * 1024)
#define CM_MAX_STRING_BYTES (1u * 1024 * 1024)
#define CM_MAX_ITEMS 200000
#define CM_MAX_DEPTH 12

#define CM_MSG_TYPES(X)                                                             \
    /* replies */                                                                   \
    X (OK, "ok", "success reply; payload depends on the request")                  \
    X (ERROR, "error", "failure reply: {code, message}")                           \
    /* any service */                                                               \
    X (PING, "ping", "liveness/readiness probe")                                    \
    /* gateway -> store */                                                          \
    X (SESSION_START, "session_start", "create/continue a session with a query")    \
    X (SESSION_GET, "session_get", "a session with its messages")                   \
    X (SESSION_LIST, "session_list", "the caller's sessions")                       \
    X (MESSAGE_EDIT, "message_edit", "replace content, record history")             \
    X (MESSAGE_DELETE, "message_delete", "delete a message and all later ones")     \
    X (FEEDBACK_PUT, "feedback_put", "record (or replace) the caller's vote")       \
    X (FEEDBACK_GET, "feedback_get", "vote summary and recent feedback")            \
    X (HISTORY_GET, "history_get", "edit history of a message")                     \
    X (REGEN_CREATE, "regen_create", "create a regeneration task")                  \
    X (TASK_STATUS, "task_status", "one task's status")                             \
    X (TASK_CANCEL, "task_cancel", "cancel a pending or running task")              \
    X (ANALYTICS_GET, "analytics_get", "per-session analytics")                     \
    X (AUDIT_QUERY, "audit_query", "audit log entries")                             \
    X (RATE_CONSUME, "rate_consume", "check-and-consume one rate-limit token")      \
    /* regenerator -> store */                                                      \
    X (TASK_CLAIM, "task_claim", "long-poll for claimable tasks, lease them")       \
    X (TASK_PROGRESS, "task_progress", "checkpoint progress, renew lease, publish")  \
    X (TASK_EVENT, "task_event", "publish a thought-process event for a task")      \
    X (TASK_COMPLETE, "task_complete", "commit the result, publish regenerated")    \
    X (TASK_FAIL, "task_fail", "fail (or requeue) a task, publish the error")       \
    /* store -> broadcaster, broadcaster -> gateway */                              \
    X (EVENT, "event", "one session event {event, data}")                           \
    /* gateway -> broadcaster */                                                    \
    X (HISTORY, "history", "events of a session after an id")

typedef enum {
    CM_MSG_NONE = 0,
#define X(name, wire, doc) CM_MSG_##name,
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
