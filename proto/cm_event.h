/*  cm_event.h: every event a session's SSE stream can carry, in one table.

    An event travels store -> broadcaster -> gateway as the envelope
    `event {event: name, data: map}` (cm_msg.h) and reaches the browser as
    `event: <name>\ndata: <data as JSON>`. Every event's data carries
    `sessionId` and `timestamp` (ISO 8601, UTC); the other fields are listed
    per event in the table below (cm_event_fields), which the OpenAPI
    document, the frontend's event list and the tests are all made from.

    CM_EVENTS(X): X (ENUM, "wire name", ORIGIN, terminal, "what it says",
                     data fields...)
      ORIGIN    who mints it: STORE (after the commit that it reports),
                REGENERATOR (sent as task_event, published by the store after
                its checkpoint), GATEWAY (written by the gateway itself into
                one stream, never published), BROADCASTER (internal notice to
                gateways, never written to a browser)
      terminal  true for the events that end a task: exactly one per task  */
#ifndef CM_EVENT_H_INCLUDED
#define CM_EVENT_H_INCLUDED

#include "cm_msg.h"

#include <stdbool.h>
#include <stddef.h>

//  One data field of an event: name, cm_type_t suffix (STR, INT, BOOL, ARR,
//  MAP, DBL), required. CM_EVENT_NO_FIELDS marks an event with none.
#define CM_EVENT_FIELD(name, type, required) {name, CM_T_##type, required, 0}
#define CM_EVENT_NO_FIELDS {NULL, CM_T_NIL, false, 0}
#define CM_EV_REQ_(name, type) CM_EVENT_FIELD (name, type, true)
#define CM_EV_OPT_(name, type) CM_EVENT_FIELD (name, type, false)
//  Every task event names its task and the message it writes.
#define CM_EV_TASK_ CM_EV_REQ_ ("taskId", STR), CM_EV_REQ_ ("messageId", STR)

#define CM_EVENTS(X)                                                                         \
    X (CONNECTION_STATUS, "connection_status", GATEWAY, false,                               \
       "first event of every stream: the stream is attached", CM_EV_REQ_ ("status", STR))     \
    X (SESSION_UPDATED, "session_updated", STORE, false,                                     \
       "a message was added (status message_added), or the reader must reload (resync)",     \
       CM_EV_REQ_ ("status", STR), CM_EV_OPT_ ("resync", BOOL))                              \
    X (MESSAGE_EDITED, "message_edited", STORE, false, "a message's content was replaced",   \
       CM_EV_REQ_ ("messageId", STR), CM_EV_REQ_ ("content", STR),                           \
       CM_EV_REQ_ ("previousContent", STR), CM_EV_REQ_ ("edited", BOOL))                     \
    X (MESSAGE_DELETED, "message_deleted", STORE, false, "messages were deleted",            \
       CM_EV_REQ_ ("messageId", STR), CM_EV_REQ_ ("deletedCount", INT),                      \
       CM_EV_REQ_ ("deletedMessageIds", ARR))                                                \
    X (MESSAGE_RESTORED, "message_restored", STORE, false,                                   \
       "deleted messages are back (an undo): reload them", CM_EV_REQ_ ("messageId", STR),     \
       CM_EV_REQ_ ("restoredCount", INT), CM_EV_REQ_ ("restoredMessageIds", ARR))             \
    X (FEEDBACK_SUBMITTED, "feedback_submitted", STORE, false, "a vote was recorded (counts: the voted version's)",        \
       CM_EV_REQ_ ("messageId", STR), CM_EV_REQ_ ("feedbackId", STR),                        \
       CM_EV_REQ_ ("feedbackType", STR), CM_EV_REQ_ ("upvotes", INT),                        \
       CM_EV_REQ_ ("downvotes", INT), CM_EV_OPT_ ("versionIndex", INT))                      \
    X (FEEDBACK_WITHDRAWN, "feedback_withdrawn", STORE, false,                               \
       "a vote was withdrawn: the type it had and the counts now (the version's)",          \
       CM_EV_REQ_ ("messageId", STR), CM_EV_REQ_ ("feedbackType", STR),                      \
       CM_EV_REQ_ ("upvotes", INT), CM_EV_REQ_ ("downvotes", INT),                           \
       CM_EV_OPT_ ("versionIndex", INT))                                                     \
    X (MESSAGE_REGENERATING, "message_regenerating", STORE, false,                           \
       "a generation attempt started (again after a takeover)", CM_EV_TASK_,                 \
       CM_EV_OPT_ ("originalMessageId", STR), CM_EV_OPT_ ("userQuery", STR))                 \
    X (REGENERATION_PROGRESS, "regeneration_progress", STORE, false,                         \
       "a checkpoint: progress percent and the answer so far", CM_EV_TASK_,                  \
       CM_EV_REQ_ ("progress", INT), CM_EV_OPT_ ("message", STR),                            \
       CM_EV_OPT_ ("partialContent", STR), CM_EV_OPT_ ("resumed", BOOL))                     \
    X (THOUGHT_PROCESS_START, "thought_process_start", REGENERATOR, false,                   \
       "the generator started thinking", CM_EV_TASK_, CM_EV_REQ_ ("thinkingAbout", STR),     \
       CM_EV_OPT_ ("totalSteps", INT))                                                       \
    X (THOUGHT_PROCESS_STEP, "thought_process_step", REGENERATOR, false,                     \
       "one thought step; steps: every step so far, [{step, reasoning}]", CM_EV_TASK_,       \
       CM_EV_REQ_ ("step", INT), CM_EV_REQ_ ("reasoning", STR), CM_EV_OPT_ ("steps", ARR),   \
       CM_EV_OPT_ ("totalSteps", INT))                                                       \
    X (THOUGHT_PROCESS_COMPLETE, "thought_process_complete", REGENERATOR, false,             \
       "the thinking reached its conclusion", CM_EV_TASK_, CM_EV_REQ_ ("conclusion", STR),   \
       CM_EV_OPT_ ("totalSteps", INT))                                                       \
    X (MESSAGE_REGENERATED, "message_regenerated", STORE, true,                              \
       "the answer is committed: its whole content, and the version it is (a regenerate "    \
       "adds one; finishReason: length when the model's limit cut it)", CM_EV_TASK_,         \
       CM_EV_REQ_ ("content", STR), CM_EV_OPT_ ("versionIndex", INT),                        \
       CM_EV_OPT_ ("versionCount", INT), CM_EV_OPT_ ("versionId", STR),                      \
       CM_EV_OPT_ ("finishReason", STR))                                                     \
    X (REGENERATION_ERROR, "regeneration_error", STORE, true,                                \
       "the task ended without a whole answer (failed or cancelled); content and the "       \
       "version fields when the text so far was kept (finishReason cancelled or failed)",    \
       CM_EV_TASK_, CM_EV_REQ_ ("error", STR), CM_EV_OPT_ ("content", STR),                  \
       CM_EV_OPT_ ("versionIndex", INT), CM_EV_OPT_ ("versionCount", INT),                   \
       CM_EV_OPT_ ("versionId", STR), CM_EV_OPT_ ("finishReason", STR))                      \
    X (VERSION_ACTIVATED, "version_activated", STORE, false,                                 \
       "a turn shows another of its versions: its content and version fields",               \
       CM_EV_REQ_ ("messageId", STR), CM_EV_REQ_ ("content", STR),                           \
       CM_EV_REQ_ ("versionIndex", INT), CM_EV_REQ_ ("versionCount", INT),                   \
       CM_EV_REQ_ ("versionId", STR))                                                        \
    X (SUBSCRIBED, "subscribed", BROADCASTER, false,                                         \
       "internal: the broadcaster sends this session's events from now on",                  \
       CM_EVENT_NO_FIELDS)

typedef enum {
    CM_EVENT_NONE = 0,
#define X(name, wire, origin, terminal, doc, ...) CM_EVENT_##name,
    CM_EVENTS (X)
#undef X
        CM_EVENT_COUNT
} cm_event_t;

typedef enum {
    CM_EVENT_FROM_STORE,
    CM_EVENT_FROM_REGENERATOR,
    CM_EVENT_FROM_GATEWAY,
    CM_EVENT_FROM_BROADCASTER
} cm_event_origin_t;

//  Wire name ("feedback_submitted"); "?" for CM_EVENT_NONE or out of range.
const char *cm_event_name (cm_event_t event);
//  Event of a wire name (len bytes, need not be terminated), or CM_EVENT_NONE.
cm_event_t cm_event_from_name (const char *name, size_t len);
cm_event_origin_t cm_event_origin (cm_event_t event);
//  True for message_regenerated and regeneration_error.
bool cm_event_terminal (cm_event_t event);
//  One line of what the event says. Never NULL; static storage.
const char *cm_event_doc (cm_event_t event);
//  True when a browser's stream may carry it (every origin but BROADCASTER).
bool cm_event_for_clients (cm_event_t event);
//  The data fields beyond sessionId and timestamp: *count entries. Never
//  NULL (may be empty). Types as in cm_msg_schema (CM_T_DBL accepts ints).
const cm_field_t *cm_event_fields (cm_event_t event, size_t *count);

//  Checks an event's data map against its fields (sessionId and timestamp
//  included). 0 or CM_EPROTO with a short reason in `why` when given.
int cm_event_validate (cm_event_t event, const cm_value_t *data, char *why, size_t why_size);

#endif
