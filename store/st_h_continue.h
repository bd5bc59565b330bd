/*  st_h_continue.h: answers that end before their end keep their text and
    can be continued (issue 16; docs/store.md, "Stopped and cut-off
    answers").

    Every answer version a generation writes carries two version fields
    (st_versions.h):
      generation     {task_id, kind, original_message_id, context?,
                     instruction?, model?, temperature?}: the request that
                     generated it. A
                     continue keeps its origin's, so the builtin generator
                     (seeded by that task id and kind) writes the same
                     answer as an uninterrupted run.
      finish_reason  present only when the text is not a whole answer:
                     "cancelled" (stopped by its user), "length" (the
                     model's token limit cut it), "failed".
    Every function runs in the request's txn and returns 0 or a CM_E*
    code (st_ctx.h).                                                    */
#ifndef ST_H_CONTINUE_H_INCLUDED
#define ST_H_CONTINUE_H_INCLUDED

#include "st_rows.h"

//  A new map of the version fields the answer of task gets: content,
//  regenerated (not for a continue: the version keeps its own), model (the
//  worker's, else the task's, else msg's), the task's thought process when
//  it has one, and generation.
cm_value_t *st_h_continue_fields (st_ctx_t *c, const cm_value_t *task, const cm_value_t *msg,
                                  const char *content);

//  A task that ends without its whole answer (cancelled by its user, failed
//  for good) keeps what its readers saw: its last checkpoint (the task's
//  "partial") becomes the answer's text, marked finish_reason, written as
//  st_h_versions_answer writes an answer (in place for a first answer or a
//  continue, else as a new version). Nothing is written when no text was
//  checkpointed and the answer would be a new version, when the message is
//  gone or has no room for another version. The task gets "kept" (content,
//  versionIndex, versionCount, versionId, finishReason) for the
//  regeneration_error event st_task_apply then sends: call it before.
int st_h_continue_keep (st_ctx_t *c, cm_value_t *task, const char *finish_reason);

//  message_continue {message_id}: a "continue" task that appends to the
//  message's shown version (the same version: task_complete writes it in
//  place), starting from its text, for an answer with a finish_reason.
//  CM_ENOTFOUND (missing or another user's), CM_EINVAL (not an assistant
//  message), CM_ECONFLICT (a generation of it is pending or running),
//  CM_EBADSTATE (the answer is complete: nothing to continue), the rate
//  limit; all before anything is written. Audited as continue. Reply:
//  {message_id, session_id, operation: "continue", timestamp, data:
//  {task_id, original_message_id, version_index}}.
int st_h_message_continue (st_ctx_t *c);

#endif
