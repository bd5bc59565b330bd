/*  gw_route.h: method + path -> route, with ids checked, and query strings.

    Pure functions over strings: no civetweb here, so every routing rule is
    unit-tested. The table of routes (gw_route_info) is also what /metrics
    labels and the OpenAPI coverage test iterate.                           */
#ifndef GW_ROUTE_H_INCLUDED
#define GW_ROUTE_H_INCLUDED

#include "cm_ids.h"
#include "cm_msg.h"
#include "gw_validate.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*  GW_ROUTES(X): every route, one row each, in matching order:
    X (ENUM, "METHOD", "pattern", "name", auth, message, limited, body,
       validator, "noun", "summary", "reply")
      name       metrics label and OpenAPI operation (snake_case)
      auth       needs a bearer token
      message    the store request it makes (first, for the streams), or
                 CM_MSG_NONE when the gateway answers itself
      limited    a mutation: carries the per-minute rate limits
      body       GW_BODY_NONE / _OPTIONAL / _REQUIRED (JSON)
      validator  checks the body into the payload (gw_validate.h) or NULL
      noun       what a 404 says is missing ("No such task, ...")
      summary    one line for the OpenAPI document
      reply      the fields of a 200, for the OpenAPI document
    A path under /api/messages/tasks/ is never a message id (see
    gw_route_match). Rows before GW_R_STATIC are matched
    by pattern; GW_R_STATIC and GW_R_PREFLIGHT are chosen by gw_route_match
    itself. Adding an endpoint: one row here (and the store's handler).    */
#define GW_ROUTES(X)                                                                           \
    X (HEALTHZ, "GET", "/healthz", "healthz", false, CM_MSG_NONE, false, GW_BODY_NONE, NULL,   \
       "", "Liveness", "status: ok")                                                          \
    X (READYZ, "GET", "/readyz", "readyz", false, CM_MSG_NONE, false, GW_BODY_NONE, NULL, "",  \
       "Readiness: store (with regenerators) and broadcaster answer",                         \
       "status: ready, store, broadcaster, regenerator, regenerators")                        \
    X (METRICS, "GET", "/metrics", "metrics", false, CM_MSG_NONE, false, GW_BODY_NONE, NULL,   \
       "", "Prometheus metrics", "Prometheus text format")                                    \
    X (OPENAPI, "GET", "/api/openapi.json", "openapi", false, CM_MSG_NONE, false,              \
       GW_BODY_NONE, NULL, "", "This document", "OpenAPI 3 document")                         \
    X (RUN_SSE_POST, "POST", "/api/run_sse/{session_id}", "run_sse_post", true,                \
       CM_MSG_SESSION_START, true, GW_BODY_REQUIRED, gw_validate_run_sse, "session",          \
       "Start or continue a session with a query",                                            \
       "JSON (data: {task_id, ...}), or with Accept: text/event-stream the session's events " \
       "until the answer is done")                                                            \
    X (RUN_SSE_GET, "GET", "/api/run_sse/{session_id}", "run_sse_get", true, CM_MSG_SESSION_GET, \
       false, GW_BODY_NONE, NULL, "session", "SSE stream of the session's events",             \
       "text/event-stream of the session's events (id/event/data frames, ': keepalive' "      \
       "comments). A session_updated event with resync: true means history was lost: "        \
       "refetch state.")                                                                      \
    X (SESSION_LIST, "GET", "/api/sessions", "session_list", true, CM_MSG_SESSION_LIST, false, \
       GW_BODY_NONE, NULL, "session", "The caller's sessions",                                \
       "sessions: [{session_id, title, created_at, updated_at, message_count}], next_cursor " \
       "(null on the last page); unavailable_shards: the names of the store shards that did " \
       "not answer, only when some did not (their sessions are missing from the page)")      \
    X (SESSION_GET, "GET", "/api/sessions/{session_id}", "session_get", true,                  \
       CM_MSG_SESSION_GET, false, GW_BODY_NONE, NULL, "session",                              \
       "A session with the messages of its active path (one version per turn)",              \
       "session: {session_id, title, created_at, updated_at, message_count (of the path), "   \
       "messages}")                                                                           \
    X (SESSION_RENAME, "PATCH", "/api/sessions/{session_id}", "session_rename", true,          \
       CM_MSG_SESSION_RENAME, true, GW_BODY_REQUIRED, gw_validate_rename, "session",          \
       "Rename a session (title: 1..200 characters)",                                         \
       "session_id, operation: session_rename, data: {title, previous_title}")                \
    X (SESSION_EXPORT, "GET", "/api/sessions/{session_id}/export", "session_export", true,     \
       CM_MSG_SESSION_EXPORT, false, GW_BODY_NONE, NULL, "session",                           \
       "Export a session: ?format=json (the whole tree: every version of every turn) or "    \
       "?format=markdown (the active path)",                                                  \
       "json: session_id, format, session {session_id, title, created_at, updated_at, "       \
       "messages: [{message_id, role, version_index, version_count, on_active_path, branch " \
       "(null on the trunk, else {message_id, version_index}: the question version it "       \
       "follows), versions: [{version_id, "                                                   \
       "version_index, content, model, upvotes, downvotes, created_at}]}]}; markdown: "       \
       "session_id, format, content (the Markdown text)")                                     \
    X (SESSION_DELETE, "DELETE", "/api/sessions/{session_id}", "session_delete", true,         \
       CM_MSG_SESSION_DELETE, true, GW_BODY_NONE, NULL, "session",                            \
       "Delete a whole session; POST .../restore undoes it for CHATMESH_UNDO_SECONDS",        \
       "session_id, operation: session_delete, data: {deleted_count, deleted_message_ids, "   \
       "scope: session, undo_until}")                                                         \
    X (SESSION_RESTORE, "POST", "/api/sessions/{session_id}/restore", "session_restore", true, \
       CM_MSG_SESSION_RESTORE, true, GW_BODY_NONE, NULL, "deleted session",                   \
       "Undo a session delete within the undo window (410 undo_expired after it)",            \
       "session_id, operation: session_restore, data: {restored_count, restored_message_ids}") \
    X (ANALYTICS, "GET", "/api/sessions/{session_id}/analytics", "analytics", true,            \
       CM_MSG_ANALYTICS_GET, false, GW_BODY_NONE, NULL, "session", "Session analytics",        \
       "session_id, analytics, timestamp")                                                    \
    X (MESSAGE_EDIT, "PUT", "/api/messages/{message_id}", "message_edit", true,                \
       CM_MSG_MESSAGE_EDIT, true, GW_BODY_REQUIRED, gw_validate_edit, "message",              \
       "Edit a message: a question gets a new version and a new branch below it (the "      \
       "turns that followed stay, shown again when its earlier version is activated; with "   \
       "a regeneration the branch starts with a new answer); an answer is edited in place",   \
       "operation: edit, data: {original_content, new_content, triggered_regeneration, "      \
       "regeneration_task_id, assistant_message_id (the new branch's answer, or null), "      \
       "version_index, version_count, version_id, version_ids}")                              \
    X (MESSAGE_DELETE, "DELETE", "/api/messages/{message_id}", "message_delete", true,         \
       CM_MSG_MESSAGE_DELETE, true, GW_BODY_NONE, NULL, "message",                            \
       "Delete a message and every later one of its branch with the branches below them "   \
       "(?scope=following, the default) or only it (?scope=message; 409 invalid_state for "  \
       "a question with versions); POST .../restore undoes it for CHATMESH_UNDO_SECONDS",      \
       "operation: delete, data: {deleted_count, deleted_message_ids, scope, undo_until}")    \
    X (MESSAGE_RESTORE, "POST", "/api/messages/{message_id}/restore", "message_restore", true, \
       CM_MSG_MESSAGE_RESTORE, true, GW_BODY_NONE, NULL, "deleted message",                   \
       "Undo a message delete (the id the DELETE named) within the undo window (410 "          \
       "undo_expired after it); every open stream of the session gets message_restored",      \
       "operation: restore, data: {restored_count, restored_message_ids}")                     \
    X (REGENERATE, "POST", "/api/messages/{message_id}/regenerate", "regenerate", true,        \
       CM_MSG_REGEN_CREATE, true, GW_BODY_OPTIONAL, gw_validate_regenerate, "message",        \
       "Regenerate an assistant message",                                                     \
       "operation: regenerate, data: {task_id, original_message_id}")                          \
    X (MESSAGE_CONTINUE, "POST", "/api/messages/{message_id}/continue", "message_continue",    \
       true, CM_MSG_MESSAGE_CONTINUE, true, GW_BODY_NONE, NULL, "message",                    \
       "Continue an answer that was stopped, cut off by the length limit or failed: the "     \
       "same version grows from its text (409 invalid_state for a complete answer)",          \
       "operation: continue, data: {task_id, original_message_id, version_index}")            \
    X (VERSION_ACTIVATE, "POST", "/api/messages/{message_id}/versions/{version}/activate",      \
       "version_activate", true, CM_MSG_VERSION_ACTIVATE, true, GW_BODY_NONE, NULL, "message",  \
       "Show another version of a message (1-based; of a question: the branch below that "   \
       "version comes back; every open stream of the session gets version_activated)",       \
       "operation: version_activate, data: {changed, content, version_index, version_count, " \
       "version_id, version_ids}")                                                            \
    X (FEEDBACK_PUT, "POST", "/api/messages/{message_id}/feedback", "feedback_put", true,      \
       CM_MSG_FEEDBACK_PUT, true, GW_BODY_REQUIRED, gw_validate_feedback, "message",          \
       "Vote on a message (a second vote replaces the first)",                              \
       "feedback_id, message_id, session_id, timestamp")                    \
    X (FEEDBACK_GET, "GET", "/api/messages/{message_id}/feedback", "feedback_get", true,       \
       CM_MSG_FEEDBACK_GET, false, GW_BODY_NONE, NULL, "message", "Vote summary and recent feedback",  \
       "message_id, feedback_summary {upvotes, downvotes, total}, recent_feedback, "   \
       "timestamp")                                     \
    X (FEEDBACK_DELETE, "DELETE", "/api/messages/{message_id}/feedback", "feedback_delete",    \
       true, CM_MSG_FEEDBACK_DELETE, true, GW_BODY_NONE, NULL, "message",                     \
       "Withdraw the caller's vote on the shown version (none: withdrawn false, no change)",  \
       "message_id, session_id, withdrawn, feedback_type (the withdrawn vote's, or null), "   \
       "version_index, version_id, feedback_summary {upvotes, downvotes, total}, timestamp")  \
    X (HISTORY_GET, "GET", "/api/messages/{message_id}/history", "history_get", true,          \
       CM_MSG_HISTORY_GET, false, GW_BODY_NONE, NULL, "message", "Edit history",               \
       "message_id, edit_count, history, timestamp")                                          \
    X (TASK_STATUS, "GET", "/api/messages/tasks/{task_id}/status", "task_status", true,        \
       CM_MSG_TASK_STATUS, false, GW_BODY_NONE, NULL, "task", "A regeneration task's status",   \
       "task_id, status, progress, message_id, session_id, created_at, started_at, "          \
       "completed_at, error_message, timestamp")                                              \
    X (TASK_CANCEL, "POST", "/api/messages/tasks/{task_id}/cancel", "task_cancel", true,       \
       CM_MSG_TASK_CANCEL, true, GW_BODY_NONE, NULL, "task",                                  \
       "Cancel a pending or running regeneration",                                            \
       "task_id, status: failed, error_message: cancelled")                                   \
    X (ADMIN_AUDIT, "GET", "/api/admin/audit", "admin_audit", true, CM_MSG_ADMIN_AUDIT,        \
       false, GW_BODY_NONE, NULL, "audit entry",                                              \
       "Operators: every user's audit entries, newest first",   \
       "entries: [{id, session_id, message_id, action_type, user_id, details, client_ip, "    \
       "user_agent, created_at}], next_cursor (null on the last page); with Accept: "          \
       "application/x-ndjson one entry per line and the cursor in X-Next-Cursor")            \
    X (ADMIN_AUDIT_VERIFY, "GET", "/api/admin/audit/verify", "admin_audit_verify", true,      \
       CM_MSG_ADMIN_AUDIT_VERIFY, false, GW_BODY_NONE, NULL, "audit entry",                    \
       "Operators: walk the audit log's hash chain",                                           \
       "sound, entries, unchained, broken: null or {index, id, previous_id, reason} of the "   \
       "first broken link, timestamp")                                                        \
    X (ADMIN_ANALYTICS, "GET", "/api/admin/analytics", "admin_analytics", true,               \
       CM_MSG_ADMIN_ANALYTICS, false, GW_BODY_NONE, NULL, "analytics",                         \
       "Operators: action counters per model, per day and per user (from, to: a time range)", \
       "from, to (dates), models: [{model, turns, answers, regenerations, edits, deletes, "    \
       "cancels, failures, upvotes, downvotes, regenerate_rate, edit_rate, delete_rate, "      \
       "cancel_rate, failure_rate, top_down_reasons, top_up_reasons, failures_by_cause, "      \
       "p50_generation_ms, p95_generation_ms, p50_first_text_ms, p95_first_text_ms}], "       \
       "users: [{user, ...counters}], days: [{date, models: [{model, ...counters}]}], "        \
       "timestamp")                                                                           \
    X (STATIC, "GET", "/", "static", false, CM_MSG_NONE, false, GW_BODY_NONE, NULL, "file",    \
       "The chat frontend (static files from CHATMESH_WEB_DIR)", "HTML")                      \
    X (PREFLIGHT, "OPTIONS", "", "preflight", false, CM_MSG_NONE, false, GW_BODY_NONE, NULL,   \
       "", "CORS preflight", "")

typedef enum {
    GW_R_NONE = 0,     //  no route: see match.status
#define X(id, ...) GW_R_##id,
    GW_ROUTES (X)
#undef X
    GW_R_COUNT
} gw_route_id_t;

typedef enum { GW_BODY_NONE = 0, GW_BODY_OPTIONAL, GW_BODY_REQUIRED } gw_body_need_t;

//  Checks a JSON body (NULL when an optional one is absent) and adds its
//  fields to the store request's payload; 0 or CM_EINVAL with a verdict.
typedef int (gw_validator_fn) (const json_t *body, int max_chars, cm_value_t *payload,
                               gw_verdict_t *verdict);

typedef struct {
    const char *method;     //  "GET"
    const char *pattern;    //  "/api/messages/{message_id}/feedback"
    const char *name;       //  metrics label ("feedback_get")
    bool auth;              //  needs a bearer token
    cm_msg_t message;       //  store request, CM_MSG_NONE for none
    bool limited;           //  carries the rate limits
    gw_body_need_t body;
    gw_validator_fn *validate; //  NULL: the body has no fields to check
    const char *noun;       //  "message"
    const char *summary;
    const char *reply;
} gw_route_info_t;

//  Info of one route (GW_R_NONE .. GW_R_COUNT-1); never NULL.
const gw_route_info_t *gw_route_info (gw_route_id_t route);

//  True for the operators' routes (/api/admin/...): 403 for anyone else.
bool gw_route_admin (gw_route_id_t route);

//  Methods of the path patterns, in the order Allow lists them.
#define GW_ALLOW_MAX 40

typedef struct {
    gw_route_id_t route;
    //  When route == GW_R_NONE: the HTTP status (400/404/405), the error
    //  code and a sentence for the client (static storage).
    int status;
    const char *code;
    const char *error;
    char allow[GW_ALLOW_MAX]; //  405: the Allow header value ("" otherwise)
    //  Parameters of the path (empty when the route has none).
    char session_id[CM_SESSION_ID_MAX + 1];
    char message_id[CM_MESSAGE_ID_MAX + 1];
    cm_msgid_t msgid;     //  parsed message_id
    char task_id[CM_TASK_ID_MAX + 1];
    uint32_t version; //  {version}: 1..CM_VERSIONS_MAX (0: none in the path)
} gw_match_t;

//  Routes `path` (without query string, already percent-decoded) for
//  `method`. Always fills *match; returns true when a route was found.
bool gw_route_match (const char *method, const char *path, gw_match_t *match);

//  The store request's payload gains the path's parameters: session_id,
//  message_id, task_id and version, those the route has.
void gw_match_payload (const gw_match_t *match, cm_value_t *payload);

//  Finds `name` in a query string ("a=1&b=2", no leading '?'), percent- and
//  '+'-decodes its value into buffer. 0, CM_ENOTFOUND, CM_ETOOBIG when the
//  value does not fit, or CM_EINVAL when name appears more than once
//  (buffer then holds "").
int gw_query_get (const char *query, const char *name, char *buffer, size_t size);

//  Copies uri into buffer with the value of every access_token parameter
//  replaced by "REDACTED", so a token never reaches a log line.
void gw_redact_uri (const char *uri, char *buffer, size_t size);

#endif
