/*  st_view.h: what the store answers and announces, built from records.

    The only place in the store with camelCase names (event data, the
    thought process) and ISO 8601 times: records keep snake_case names and
    ms since the epoch, and every reply and event map is made here, in the
    shapes docs/protocol.md and cm_event.h give. The maps returned are new
    (the caller owns them); an event goes to c->events, to be published
    after the commit (st_ops.h).                                         */
#ifndef ST_VIEW_H_INCLUDED
#define ST_VIEW_H_INCLUDED

#include "cm_event.h"
#include "st_branch.h"
#include "st_rows.h"

//  map[key] = ms as ISO 8601 UTC, or nil when ms <= 0.
void st_view_time (cm_value_t *map, const char *key, int64_t ms);
//  map[key] = the request's time (c->now), formatted once per request.
void st_view_now (st_ctx_t *c, cm_value_t *map, const char *key);

//  Queues an event (cm_event.h) for after the commit: data (taken) gains
//  sessionId and timestamp.
void st_view_event (st_ctx_t *c, const char *session_id, cm_event_t name, cm_value_t *data);
//  data (taken) gains taskId and messageId from task, then as st_view_event
//  in task's session (a regenerator's thought_process_* event).
void st_view_task_event (st_ctx_t *c, const cm_value_t *task, cm_event_t name,
                         cm_value_t *data);
//  One builder per event the store mints; ids as in the event table.
void st_view_session_updated (st_ctx_t *c, const char *session_id);
void st_view_message_edited (st_ctx_t *c, const char *session_id, const char *message_id,
                             const char *content, const char *previous);
//  ids (taken): the deleted messages' ids.
void st_view_message_deleted (st_ctx_t *c, const char *session_id, const char *message_id,
                              cm_value_t *ids);
//  ups and downs: the counts of the version voted on (version).
void st_view_feedback_submitted (st_ctx_t *c, const char *session_id, const char *message_id,
                                 const char *feedback_id, const char *type, uint32_t version,
                                 int64_t ups, int64_t downs);
void st_view_regenerating (st_ctx_t *c, const cm_value_t *task);
//  resumed: the first checkpoint of a lease that continued the text
//  (data.resumed: true, the seam; absent otherwise).
void st_view_progress (st_ctx_t *c, const cm_value_t *task, int64_t progress,
                       const char *message, const char *partial, bool resumed);
//  The answer now stored in msg, with its version (versionIndex,
//  versionCount, versionId).
void st_view_regenerated (st_ctx_t *c, const cm_value_t *task, const cm_value_t *msg);
//  msg's active version changed: its content and version fields.
void st_view_version_activated (st_ctx_t *c, const cm_value_t *msg);
void st_view_error_event (st_ctx_t *c, const cm_value_t *task, const char *error);

//  The thought process a task's record keeps, in the one shape the events,
//  the API and the frontend share (docs/api.md): {thinkingAbout,
//  totalSteps, steps: [{step, reasoning}], conclusion}, totalSteps nil
//  until known. Adds one thought_process_* event's data to task (other
//  events: nothing); _start begins it afresh (a retried task thinks
//  again). The store keeps the first 32 steps and 2000 bytes of each text.
void st_view_thoughts_add (cm_value_t *task, cm_event_t event, const cm_value_t *data);
//  to["thought_process"] = a copy of the record's (a task's or a
//  message's); nothing when it has none.
void st_view_thoughts (cm_value_t *to, const cm_value_t *record);

//  The public shape of a message (docs/protocol.md); key is its messages
//  key (bin). It shows the active version, with its votes and the
//  version fields of st_view_versions. A message being generated shows
//  the running generation's thoughts.
cm_value_t *st_view_message (st_ctx_t *c, const cm_value_t *key, const cm_value_t *msg);
//  to gains msg's versions (st_versions.h): version_index (the active one,
//  1-based), version_count, version_id (the active one's) and version_ids
//  (index i: version i + 1). A message of one version: 1, 1, its id.
void st_view_versions (cm_value_t *to, const cm_value_t *msg);
//  A session with the messages of its active path (st_branch.h).
cm_value_t *st_view_session (st_ctx_t *c, const cm_value_t *session,
                             const st_branch_session_t *path);
//  A session without its messages (session_list).
cm_value_t *st_view_session_summary (const cm_value_t *session);
cm_value_t *st_view_history_entry (const cm_value_t *item);
cm_value_t *st_view_feedback_entry (const cm_value_t *item);
//  An audit record as audit_query answers it: created_at as ISO (in place).
void st_view_audit_entry (cm_value_t *entry);

//  c->ok = {message_id, session_id, operation, timestamp}: the head of an
//  edit, delete or regenerate reply.
void st_view_reply_head (st_ctx_t *c, const char *message_id, const char *session_id,
                         const char *operation);
//  task_status's and task_cancel's reply.
cm_value_t *st_view_task_status (st_ctx_t *c, const cm_value_t *task);
//  One claimed task as task_claim answers it, with the conversation it
//  answers (the session's messages up to the user message that prompts it).
cm_value_t *st_view_claim (st_ctx_t *c, const cm_value_t *task);

#endif
