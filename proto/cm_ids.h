/*  cm_ids.h: identifiers of sessions, messages, tasks and events.

    Session id: 1..128 chars of [A-Za-z0-9_-] (underscores allowed).
    Message id: msg_{uuid}_{session_id}_{role}, role user|assistant|system.
    Other ids:  regen_{uuid}, fb_{uuid}, hist_{uuid}, log_{uuid}.
    A uuid here is 32 lowercase hex digits (v4, no dashes) so that it never
    contains the '_' that separates the parts of a message id.             */
#ifndef CM_IDS_H_INCLUDED
#define CM_IDS_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CM_SESSION_ID_MAX 128
#define CM_UUID_LEN 32
#define CM_ROLE_MAX 9 //  "assistant"
#define CM_MSGID_UUID_MAX 64 //  uuid part of ids minted elsewhere
#define CM_MESSAGE_ID_MAX (4 + CM_MSGID_UUID_MAX + 1 + CM_SESSION_ID_MAX + 1 + CM_ROLE_MAX)
#define CM_ID_MAX 64 //  regen_/fb_/hist_/log_ ids
#define CM_TASK_ID_MAX CM_ID_MAX //  a task id is a regen_ id

typedef struct {
    char uuid[CM_MSGID_UUID_MAX + 1];
    char session_id[CM_SESSION_ID_MAX + 1];
    char role[CM_ROLE_MAX + 1];
} cm_msgid_t;

bool cm_session_id_valid (const char *text);

//  Parse "msg_{uuid}_{session}_{role}". Session ids may contain '_', so cut
//  after the uuid and at the LAST '_', never by counting underscores. The
//  uuid part is 1..64 chars of [A-Za-z0-9-] so that ids minted elsewhere
//  (the original guide's "msg_123_...") parse too.
//  Returns 0 or CM_EPROTO; on error *id is left untouched.
int cm_msgid_parse (const char *text, cm_msgid_t *id);

//  Writes "msg_{uuid}_{session}_{role}" into buffer (CM_MESSAGE_ID_MAX + 1).
int cm_msgid_format (char *buffer, size_t size, const char *uuid, const char *session_id,
                     const char *role);

//  32 random lowercase hex digits from getrandom(2). buffer: CM_UUID_LEN + 1.
void cm_uuid (char *buffer);

//  "<prefix>_<uuid>" into buffer (CM_ID_MAX + 1).
void cm_id_new (char *buffer, size_t size, const char *prefix);

//  SSE event ids are "<epoch>-<seq>": epoch names one broadcaster start,
//  seq counts that session's events from 1. Both unsigned decimal.
typedef struct {
    uint64_t epoch;
    uint64_t seq;
} cm_event_id_t;

//  0 or CM_EPROTO (empty, signs, spaces, overflow, trailing text).
int cm_event_id_parse (const char *text, cm_event_id_t *id);
//  buffer of at least 42 bytes.
void cm_event_id_format (char *buffer, size_t size, cm_event_id_t id);

#endif
