// The events a session's SSE stream can carry, generated from
// proto/cm_event.h by tests/web/web_events.c. Do not edit: the ctest
// web_events fails when this file is stale, and
// `build/tests/web/web_events --write web/js/events.js` regenerates it.
// Every event's data also carries sessionId and timestamp.

export const EV = Object.freeze({
  CONNECTION_STATUS: 'connection_status',
  SESSION_UPDATED: 'session_updated',
  MESSAGE_EDITED: 'message_edited',
  MESSAGE_DELETED: 'message_deleted',
  MESSAGE_RESTORED: 'message_restored',
  FEEDBACK_SUBMITTED: 'feedback_submitted',
  FEEDBACK_WITHDRAWN: 'feedback_withdrawn',
  MESSAGE_REGENERATING: 'message_regenerating',
  REGENERATION_PROGRESS: 'regeneration_progress',
  THOUGHT_PROCESS_START: 'thought_process_start',
  THOUGHT_PROCESS_STEP: 'thought_process_step',
  THOUGHT_PROCESS_COMPLETE: 'thought_process_complete',
  MESSAGE_REGENERATED: 'message_regenerated',
  REGENERATION_ERROR: 'regeneration_error',
  VERSION_ACTIVATED: 'version_activated',
});

export const EVENT_TABLE = [
  {"key": "CONNECTION_STATUS", "name": "connection_status", "origin": "gateway", "terminal": false,
   "doc": "first event of every stream: the stream is attached",
   "fields": [
    {"name": "status", "type": "string", "required": true}]},
  {"key": "SESSION_UPDATED", "name": "session_updated", "origin": "store", "terminal": false,
   "doc": "a message was added (status message_added), or the reader must reload (resync)",
   "fields": [
    {"name": "status", "type": "string", "required": true},
    {"name": "resync", "type": "boolean", "required": false}]},
  {"key": "MESSAGE_EDITED", "name": "message_edited", "origin": "store", "terminal": false,
   "doc": "a message's content was replaced",
   "fields": [
    {"name": "messageId", "type": "string", "required": true},
    {"name": "content", "type": "string", "required": true},
    {"name": "previousContent", "type": "string", "required": true},
    {"name": "edited", "type": "boolean", "required": true}]},
  {"key": "MESSAGE_DELETED", "name": "message_deleted", "origin": "store", "terminal": false,
   "doc": "messages were deleted",
   "fields": [
    {"name": "messageId", "type": "string", "required": true},
    {"name": "deletedCount", "type": "integer", "required": true},
    {"name": "deletedMessageIds", "type": "array", "required": true}]},
  {"key": "MESSAGE_RESTORED", "name": "message_restored", "origin": "store", "terminal": false,
   "doc": "deleted messages are back (an undo): reload them",
   "fields": [
    {"name": "messageId", "type": "string", "required": true},
    {"name": "restoredCount", "type": "integer", "required": true},
    {"name": "restoredMessageIds", "type": "array", "required": true}]},
  {"key": "FEEDBACK_SUBMITTED", "name": "feedback_submitted", "origin": "store", "terminal": false,
   "doc": "a vote was recorded (counts: the voted version's)",
   "fields": [
    {"name": "messageId", "type": "string", "required": true},
    {"name": "feedbackId", "type": "string", "required": true},
    {"name": "feedbackType", "type": "string", "required": true},
    {"name": "upvotes", "type": "integer", "required": true},
    {"name": "downvotes", "type": "integer", "required": true},
    {"name": "versionIndex", "type": "integer", "required": false}]},
  {"key": "FEEDBACK_WITHDRAWN", "name": "feedback_withdrawn", "origin": "store", "terminal": false,
   "doc": "a vote was withdrawn: the type it had and the counts now (the version's)",
   "fields": [
    {"name": "messageId", "type": "string", "required": true},
    {"name": "feedbackType", "type": "string", "required": true},
    {"name": "upvotes", "type": "integer", "required": true},
    {"name": "downvotes", "type": "integer", "required": true},
    {"name": "versionIndex", "type": "integer", "required": false}]},
  {"key": "MESSAGE_REGENERATING", "name": "message_regenerating", "origin": "store", "terminal": false,
   "doc": "a generation attempt started (again after a takeover)",
   "fields": [
    {"name": "taskId", "type": "string", "required": true},
    {"name": "messageId", "type": "string", "required": true},
    {"name": "originalMessageId", "type": "string", "required": false},
    {"name": "userQuery", "type": "string", "required": false}]},
  {"key": "REGENERATION_PROGRESS", "name": "regeneration_progress", "origin": "store", "terminal": false,
   "doc": "a checkpoint: progress percent and the answer so far",
   "fields": [
    {"name": "taskId", "type": "string", "required": true},
    {"name": "messageId", "type": "string", "required": true},
    {"name": "progress", "type": "integer", "required": true},
    {"name": "message", "type": "string", "required": false},
    {"name": "partialContent", "type": "string", "required": false},
    {"name": "resumed", "type": "boolean", "required": false}]},
  {"key": "THOUGHT_PROCESS_START", "name": "thought_process_start", "origin": "regenerator", "terminal": false,
   "doc": "the generator started thinking",
   "fields": [
    {"name": "taskId", "type": "string", "required": true},
    {"name": "messageId", "type": "string", "required": true},
    {"name": "thinkingAbout", "type": "string", "required": true},
    {"name": "totalSteps", "type": "integer", "required": false}]},
  {"key": "THOUGHT_PROCESS_STEP", "name": "thought_process_step", "origin": "regenerator", "terminal": false,
   "doc": "one thought step; steps: every step so far, [{step, reasoning}]",
   "fields": [
    {"name": "taskId", "type": "string", "required": true},
    {"name": "messageId", "type": "string", "required": true},
    {"name": "step", "type": "integer", "required": true},
    {"name": "reasoning", "type": "string", "required": true},
    {"name": "steps", "type": "array", "required": false},
    {"name": "totalSteps", "type": "integer", "required": false}]},
  {"key": "THOUGHT_PROCESS_COMPLETE", "name": "thought_process_complete", "origin": "regenerator", "terminal": false,
   "doc": "the thinking reached its conclusion",
   "fields": [
    {"name": "taskId", "type": "string", "required": true},
    {"name": "messageId", "type": "string", "required": true},
    {"name": "conclusion", "type": "string", "required": true},
    {"name": "totalSteps", "type": "integer", "required": false}]},
  {"key": "MESSAGE_REGENERATED", "name": "message_regenerated", "origin": "store", "terminal": true,
   "doc": "the answer is committed: its whole content, and the version it is (a regenerate adds one; finishReason: length when the model's limit cut it)",
   "fields": [
    {"name": "taskId", "type": "string", "required": true},
    {"name": "messageId", "type": "string", "required": true},
    {"name": "content", "type": "string", "required": true},
    {"name": "versionIndex", "type": "integer", "required": false},
    {"name": "versionCount", "type": "integer", "required": false},
    {"name": "versionId", "type": "string", "required": false},
    {"name": "finishReason", "type": "string", "required": false}]},
  {"key": "REGENERATION_ERROR", "name": "regeneration_error", "origin": "store", "terminal": true,
   "doc": "the task ended without a whole answer (failed or cancelled); content and the version fields when the text so far was kept (finishReason cancelled or failed)",
   "fields": [
    {"name": "taskId", "type": "string", "required": true},
    {"name": "messageId", "type": "string", "required": true},
    {"name": "error", "type": "string", "required": true},
    {"name": "content", "type": "string", "required": false},
    {"name": "versionIndex", "type": "integer", "required": false},
    {"name": "versionCount", "type": "integer", "required": false},
    {"name": "versionId", "type": "string", "required": false},
    {"name": "finishReason", "type": "string", "required": false}]},
  {"key": "VERSION_ACTIVATED", "name": "version_activated", "origin": "store", "terminal": false,
   "doc": "a turn shows another of its versions: its content and version fields",
   "fields": [
    {"name": "messageId", "type": "string", "required": true},
    {"name": "content", "type": "string", "required": true},
    {"name": "versionIndex", "type": "integer", "required": true},
    {"name": "versionCount", "type": "integer", "required": true},
    {"name": "versionId", "type": "string", "required": true}]}
];
