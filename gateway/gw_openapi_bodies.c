/*  gw_openapi_bodies.c: response and event schemas (gw_openapi_bodies.h). */
#include "gw_openapi_bodies.h"

#include "cm_event.h"

#include <stdio.h>
#include <string.h>

/*  A field's type, as text:
      string integer number boolean   the JSON type
      time                            an ISO 8601 date-time string
      date                            a YYYY-MM-DD string
      object                          any object (free-form on purpose)
      any                             any value
      =a|b                            one of these strings
      @Name                           the schema components/schemas/Name
      [T                              an array of T (any of the above)
    Flags: S_OPT the field may be absent (else required), S_NULL it may be
    null. A nullable @Name is that schema inlined with nullable: true, as
    OpenAPI 3.0 ignores siblings of $ref.                                */
#define S_OPT 1u
#define S_NULL 2u

typedef struct {
    const char *name;
    const char *type;
    unsigned flags;
} s_field_t;

typedef struct {
    const char *name;
    const char *description;
    bool reply; //  starts with success: true (the store's replies)
    const s_field_t *fields;
    size_t count;
} s_object_t;

#define S_FIELDS(...)                                                                          \
    (const s_field_t[]){__VA_ARGS__},                                                          \
        sizeof ((const s_field_t[]){__VA_ARGS__}) / sizeof (s_field_t)
#define S_OBJECT(name, description, ...) {name, description, false, S_FIELDS (__VA_ARGS__)}
#define S_REPLY(name, description, ...) {name, description, true, S_FIELDS (__VA_ARGS__)}

//  The head of a message action's reply (st_view_reply_head).
#define S_MESSAGE_HEAD(operation)                                                              \
    {"message_id", "string", 0}, {"session_id", "string", 0}, {"operation", operation, 0},     \
        {"timestamp", "time", 0}
#define S_SESSION_HEAD(operation)                                                              \
    {"session_id", "string", 0}, {"operation", operation, 0}, {"timestamp", "time", 0}
//  A message's versions (st_view_versions).
#define S_VERSIONS                                                                             \
    {"version_index", "integer", 0}, {"version_count", "integer", 0},                          \
        {"version_id", "string", 0}, {"version_ids", "[string", 0}
//  The analytics counters of a model, a user or a day (store/st_analytics.c).
#define S_COUNTERS                                                                             \
    {"turns", "integer", 0}, {"answers", "integer", 0}, {"regenerations", "integer", 0},       \
        {"edits", "integer", 0}, {"deletes", "integer", 0}, {"cancels", "integer", 0},         \
        {"failures", "integer", 0}, {"upvotes", "integer", 0}, {"downvotes", "integer", 0},    \
        {"withdrawals", "integer", 0}
#define S_FINISH "=length|cancelled|failed"

static const s_object_t s_objects[] = {
    //  The gateway's own answers.
    S_OBJECT ("Health", "GET /healthz: this gateway process answers", {"status", "=ok", 0},
              {"pid", "integer", 0}),
    S_OBJECT ("Ready", "GET /readyz: every backend answers",
              {"status", "=ready", 0}, {"store", "=ok", 0}, {"broadcaster", "=ok", 0},
              {"regenerator", "=ok|unknown", 0}, {"regenerators", "integer", S_OPT},
              {"store_writes", "=ok", 0}),
    //  Pieces shared by the bodies.
    S_OBJECT ("ThoughtStep", "one step of a thought process", {"step", "integer", 0},
              {"reasoning", "string", 0}),
    S_OBJECT ("ThoughtProcess",
              "how an answer was thought out (totalSteps null until known; the store keeps "
              "32 steps and 2000 bytes of each text)",
              {"thinkingAbout", "string", S_OPT}, {"totalSteps", "integer", S_NULL},
              {"steps", "[@ThoughtStep", 0}, {"conclusion", "string", S_OPT}),
    S_OBJECT ("Usage", "the model's token counts of the shown answer",
              {"prompt_tokens", "integer", 0}, {"completion_tokens", "integer", 0}),
    S_OBJECT ("MessageMetadata",
              "votes of the shown version; model, usage, thought_process of answers; "
              "finish_reason when the text is not a whole answer",
              {"edited", "boolean", 0}, {"regenerating", "boolean", 0},
              {"regenerated", "boolean", 0}, {"upvotes", "integer", 0},
              {"downvotes", "integer", 0}, {"model", "string", S_OPT},
              {"usage", "@Usage", S_OPT}, {"finish_reason", S_FINISH, S_OPT},
              {"thought_process", "@ThoughtProcess", S_OPT}),
    S_OBJECT ("Message", "a message as its active version shows it", {"id", "string", 0},
              {"role", "=user|assistant|system", 0}, {"content", "string", 0},
              {"timestamp", "time", 0}, S_VERSIONS, {"metadata", "@MessageMetadata", 0}),
    S_OBJECT ("SessionSummary", "a session without its messages", {"session_id", "string", 0},
              {"title", "string", 0}, {"created_at", "time", 0}, {"updated_at", "time", 0},
              {"message_count", "integer", 0}),
    S_OBJECT ("Session", "a session with the messages of its active path",
              {"session_id", "string", 0}, {"title", "string", 0}, {"created_at", "time", 0},
              {"updated_at", "time", 0}, {"message_count", "integer", 0},
              {"messages", "[@Message", 0}),
    S_OBJECT ("VoteCounts", "a message's votes", {"upvotes", "integer", 0},
              {"downvotes", "integer", 0}, {"total", "integer", 0}),
    S_OBJECT ("VersionVotes", "the votes of one version", {"version_index", "integer", 0},
              {"version_id", "string", 0}, {"upvotes", "integer", 0},
              {"downvotes", "integer", 0}),
    S_OBJECT ("FeedbackEntry", "one vote", {"id", "string", 0}, {"user_id", "string", 0},
              {"feedback_type", "=upvote|downvote", 0}, {"version_index", "integer", 0},
              {"reason", "string", S_NULL}, {"metadata", "object", S_NULL},
              {"created_at", "time", 0}),
    S_OBJECT ("HistoryEntry", "one edit of a message", {"id", "string", 0},
              {"original_content", "string", 0}, {"edited_content", "string", 0},
              {"edit_timestamp", "time", 0}, {"user_id", "string", 0}),
    S_OBJECT ("ExportBranch", "the question version an exported turn follows",
              {"message_id", "string", 0}, {"version_index", "integer", 0}),
    S_OBJECT ("ExportVersion", "one version of an exported turn",
              {"version_index", "integer", 0}, {"version_id", "string", 0},
              {"content", "string", 0}, {"model", "string", S_NULL},
              {"regenerated", "boolean", 0}, {"edited", "boolean", 0},
              {"created_at", "time", 0}, {"upvotes", "integer", 0}, {"downvotes", "integer", 0}),
    S_OBJECT ("ExportMessage", "one turn of an exported session with every version",
              {"message_id", "string", 0}, {"role", "=user|assistant|system", 0},
              {"timestamp", "time", 0}, {"version_index", "integer", 0},
              {"version_count", "integer", 0}, {"on_active_path", "boolean", 0},
              {"branch", "@ExportBranch", S_NULL}, {"versions", "[@ExportVersion", 0}),
    S_OBJECT ("ExportSession", "the whole tree of a session", {"session_id", "string", 0},
              {"title", "string", 0}, {"created_at", "time", 0}, {"updated_at", "time", 0},
              {"message_count", "integer", 0}, {"messages", "[@ExportMessage", 0}),
    S_OBJECT ("SessionAnalytics", "a session's counters (rates null without a sample)",
              {"total_messages", "integer", 0}, {"regeneration_count", "integer", 0},
              {"regeneration_completed", "integer", 0}, {"regeneration_failed", "integer", 0},
              {"regeneration_success_rate", "number", S_NULL}, {"edit_count", "integer", 0},
              {"feedback_count", "integer", 0}, {"upvotes", "integer", 0},
              {"downvotes", "integer", 0}, {"user_satisfaction", "number", S_NULL},
              {"average_regeneration_seconds", "number", S_NULL},
              {"p95_regeneration_seconds", "number", S_NULL}),
    S_OBJECT ("AuditEntry", "one audit entry (details: per action_type)", {"id", "string", 0},
              {"session_id", "string", 0}, {"message_id", "string", S_NULL},
              {"action_type", "string", 0}, {"user_id", "string", 0},
              {"details", "object", S_NULL}, {"client_ip", "string", S_NULL},
              {"user_agent", "string", S_NULL}, {"created_at", "time", 0},
              {"prev_hash", "string", S_NULL}),
    S_OBJECT ("AuditBreak", "the first broken link of the audit chain",
              {"index", "integer", 0}, {"id", "string", 0}, {"previous_id", "string", 0},
              {"reason", "string", 0}),
    S_OBJECT ("Reason", "a reason and how often it was given", {"reason", "string", 0},
              {"count", "integer", 0}),
    S_OBJECT ("FailureCause", "a failure cause and how often", {"cause", "string", 0},
              {"count", "integer", 0}),
    S_OBJECT ("ModelAnalytics",
              "a model's counters, rates per answer and time quantiles (null without "
              "answers)",
              {"model", "string", 0}, S_COUNTERS, {"regenerate_rate", "number", S_NULL},
              {"edit_rate", "number", S_NULL}, {"delete_rate", "number", S_NULL},
              {"cancel_rate", "number", S_NULL}, {"failure_rate", "number", S_NULL},
              {"top_down_reasons", "[@Reason", 0}, {"top_up_reasons", "[@Reason", 0},
              {"failures_by_cause", "[@FailureCause", 0},
              {"p50_generation_ms", "integer", S_NULL}, {"p95_generation_ms", "integer", S_NULL},
              {"p50_first_text_ms", "integer", S_NULL}, {"p95_first_text_ms", "integer", S_NULL}),
    S_OBJECT ("UserAnalytics", "a user's counters", {"user", "string", 0}, S_COUNTERS),
    S_OBJECT ("DayModelAnalytics", "a model's counters of one day", {"model", "string", 0},
              S_COUNTERS),
    S_OBJECT ("DayAnalytics", "one day's counters per model", {"date", "date", 0},
              {"models", "[@DayModelAnalytics", 0}),
    //  The data of the message and session actions.
    S_OBJECT ("StartedData", "the question's and the answer's ids, and the answer's task",
              {"session_id", "string", 0}, {"user_message_id", "string", 0},
              {"assistant_message_id", "string", 0}, {"task_id", "string", 0}),
    S_OBJECT ("RenameData", "the title now and before", {"title", "string", 0},
              {"previous_title", "string", 0}),
    S_OBJECT ("DeleteData", "what a delete removed, and until when it can be undone",
              {"deleted_count", "integer", 0}, {"deleted_message_ids", "[string", 0},
              {"scope", "=session|following|message", 0}, {"undo_until", "time", 0}),
    S_OBJECT ("RestoreData", "what an undo brought back", {"restored_count", "integer", 0},
              {"restored_message_ids", "[string", 0}),
    S_OBJECT ("EditData",
              "the edit; a question's gets a new version and, with a regeneration, the new "
              "branch's answer",
              {"original_content", "string", 0}, {"new_content", "string", 0},
              {"triggered_regeneration", "boolean", 0},
              {"regeneration_task_id", "string", S_NULL},
              {"assistant_message_id", "string", S_NULL}, S_VERSIONS),
    S_OBJECT ("RegenerateData", "the new task and the question it answers",
              {"task_id", "string", 0}, {"original_message_id", "string", 0}),
    S_OBJECT ("ContinueData", "the new task and the version it grows",
              {"task_id", "string", 0}, {"original_message_id", "string", 0},
              {"version_index", "integer", 0}),
    S_OBJECT ("ActivateData", "the version now shown (changed: false when it already was)",
              {"changed", "boolean", 0}, {"content", "string", 0}, S_VERSIONS),
    //  The 200 bodies.
    S_REPLY ("Started", "POST /api/run_sse as JSON", {"data", "@StartedData", 0}),
    S_REPLY ("SessionList", "one page of the caller's sessions, newest first",
             {"sessions", "[@SessionSummary", 0}, {"next_cursor", "string", S_NULL},
             {"unavailable_shards", "[string", S_OPT}),
    S_REPLY ("SessionView", "a session", {"session", "@Session", 0}),
    S_REPLY ("SessionRenamed", "a rename", S_SESSION_HEAD ("=session_rename"),
             {"data", "@RenameData", 0}),
    S_REPLY ("ExportJson", "?format=json: the whole tree", {"session_id", "string", 0},
             {"format", "=json", 0}, {"session", "@ExportSession", 0},
             {"exported_at", "time", 0}),
    S_REPLY ("ExportMarkdown", "?format=markdown: the active path as Markdown",
             {"session_id", "string", 0}, {"format", "=markdown", 0},
             {"content", "string", 0}, {"exported_at", "time", 0}),
    S_REPLY ("SessionDeleted", "a session delete", S_SESSION_HEAD ("=session_delete"),
             {"data", "@DeleteData", 0}),
    S_REPLY ("SessionRestored", "a session restore", S_SESSION_HEAD ("=session_restore"),
             {"data", "@RestoreData", 0}),
    S_REPLY ("Analytics", "a session's analytics", {"session_id", "string", 0},
             {"analytics", "@SessionAnalytics", 0}, {"timestamp", "time", 0}),
    S_REPLY ("Edited", "an edit", S_MESSAGE_HEAD ("=edit"), {"data", "@EditData", 0}),
    S_REPLY ("Deleted", "a message delete", S_MESSAGE_HEAD ("=delete"),
             {"data", "@DeleteData", 0}),
    S_REPLY ("Restored", "a message restore", S_MESSAGE_HEAD ("=restore"),
             {"data", "@RestoreData", 0}),
    S_REPLY ("Regenerating", "a regeneration started", S_MESSAGE_HEAD ("=regenerate"),
             {"data", "@RegenerateData", 0}),
    S_REPLY ("Continuing", "a continue started", S_MESSAGE_HEAD ("=continue"),
             {"data", "@ContinueData", 0}),
    S_REPLY ("Activated", "a version activated", S_MESSAGE_HEAD ("=version_activate"),
             {"data", "@ActivateData", 0}),
    S_REPLY ("FeedbackRecorded", "a vote recorded, on this version",
             {"feedback_id", "string", 0}, {"message_id", "string", 0},
             {"session_id", "string", 0}, {"version_index", "integer", 0},
             {"version_id", "string", 0}, {"timestamp", "time", 0}),
    S_REPLY ("FeedbackSummary",
             "the shown version's votes, every version's, and the latest votes",
             {"message_id", "string", 0}, {"feedback_summary", "@VoteCounts", 0},
             {"version_index", "integer", 0}, {"versions", "[@VersionVotes", 0},
             {"recent_feedback", "[@FeedbackEntry", 0}, {"timestamp", "time", 0}),
    S_REPLY ("FeedbackWithdrawn",
             "a withdrawal (withdrawn false and feedback_type null: there was no vote)",
             {"message_id", "string", 0}, {"session_id", "string", 0},
             {"withdrawn", "boolean", 0}, {"feedback_type", "=upvote|downvote", S_NULL},
             {"version_index", "integer", 0}, {"version_id", "string", 0},
             {"feedback_summary", "@VoteCounts", 0}, {"timestamp", "time", 0}),
    S_REPLY ("History", "a message's edits, oldest first", {"message_id", "string", 0},
             {"edit_count", "integer", 0}, {"history", "[@HistoryEntry", 0},
             {"timestamp", "time", 0}),
    S_REPLY ("TaskStatus",
             "a task (status in_progress while it runs; a cancelled one is failed with "
             "error_message cancelled)",
             {"task_id", "string", 0}, {"status", "=pending|in_progress|completed|failed", 0},
             {"progress", "integer", 0}, {"message_id", "string", 0},
             {"session_id", "string", 0}, {"created_at", "time", 0},
             {"started_at", "time", S_NULL}, {"completed_at", "time", S_NULL},
             {"error_message", "string", S_NULL}, {"thought_process", "@ThoughtProcess", S_OPT},
             {"timestamp", "time", 0}),
    S_REPLY ("AuditPage", "one page of audit entries, newest first",
             {"entries", "[@AuditEntry", 0}, {"next_cursor", "string", S_NULL}),
    S_REPLY ("AuditVerify", "the audit chain's walk", {"sound", "boolean", 0},
             {"entries", "integer", 0}, {"unchained", "integer", 0},
             {"broken", "@AuditBreak", S_NULL}, {"timestamp", "time", 0}),
    S_REPLY ("AdminAnalytics", "counters per model, per user and per day of a time range",
             {"from", "date", 0}, {"to", "date", 0}, {"models", "[@ModelAnalytics", 0},
             {"users", "[@UserAnalytics", 0}, {"days", "[@DayAnalytics", 0},
             {"timestamp", "time", 0}),
};

//  The 200 JSON body of each route (the export: one of two).
static const struct {
    gw_route_id_t route;
    const char *schema;
} s_bodies[] = {
    {GW_R_HEALTHZ, "Health"},
    {GW_R_READYZ, "Ready"},
    {GW_R_OPENAPI, "Document"},
    {GW_R_RUN_SSE_POST, "Started"},
    {GW_R_SESSION_LIST, "SessionList"},
    {GW_R_SESSION_GET, "SessionView"},
    {GW_R_SESSION_RENAME, "SessionRenamed"},
    {GW_R_SESSION_EXPORT, "Export"},
    {GW_R_SESSION_DELETE, "SessionDeleted"},
    {GW_R_SESSION_RESTORE, "SessionRestored"},
    {GW_R_ANALYTICS, "Analytics"},
    {GW_R_MESSAGE_EDIT, "Edited"},
    {GW_R_MESSAGE_DELETE, "Deleted"},
    {GW_R_MESSAGE_RESTORE, "Restored"},
    {GW_R_REGENERATE, "Regenerating"},
    {GW_R_MESSAGE_CONTINUE, "Continuing"},
    {GW_R_VERSION_ACTIVATE, "Activated"},
    {GW_R_FEEDBACK_PUT, "FeedbackRecorded"},
    {GW_R_FEEDBACK_GET, "FeedbackSummary"},
    {GW_R_FEEDBACK_DELETE, "FeedbackWithdrawn"},
    {GW_R_HISTORY_GET, "History"},
    {GW_R_TASK_STATUS, "TaskStatus"},
    {GW_R_TASK_CANCEL, "TaskStatus"},
    {GW_R_ADMIN_AUDIT, "AuditPage"},
    {GW_R_ADMIN_AUDIT_VERIFY, "AuditVerify"},
    {GW_R_ADMIN_ANALYTICS, "AdminAnalytics"},
};

/*  What the event table (cm_event.h) does not say of a field: its items,
    its values, its format. event NULL: that field of every event.       */
static const struct {
    const char *event;
    const char *field;
    const char *type;
} s_event_fields[] = {
    {NULL, "timestamp", "time"},
    {NULL, "feedbackType", "=upvote|downvote"},
    {NULL, "finishReason", S_FINISH},
    {NULL, "deletedMessageIds", "[string"},
    {NULL, "restoredMessageIds", "[string"},
    {NULL, "steps", "[@ThoughtStep"},
    {"connection_status", "status", "=connected"},
    {"session_updated", "status",
     "=message_added|session_renamed|session_deleted|session_restored|resync"},
};

static json_t *s_type (json_t *schemas, const char *type, bool nullable);

static json_t *
s_ref (const char *name)
{
    char ref[128];
    snprintf (ref, sizeof ref, "#/components/schemas/%s", name);
    return json_pack ("{s:s}", "$ref", ref);
}

//  ["a", "b"] of "a|b".
static json_t *
s_enum (const char *values)
{
    json_t *list = json_array ();
    while (list && *values) {
        size_t len = strcspn (values, "|");
        json_array_append_new (list, json_stringn (values, len));
        values += len + (values[len] == '|');
    }
    return list;
}

static json_t *
s_type (json_t *schemas, const char *type, bool nullable)
{
    json_t *schema = NULL;
    if (type[0] == '@' && nullable) {
        json_t *copy = json_deep_copy (json_object_get (schemas, type + 1));
        if (copy)
            json_object_set_new (copy, "nullable", json_true ());
        return copy;
    }
    if (type[0] == '@')
        return s_ref (type + 1);
    if (type[0] == '[') {
        json_t *items = s_type (schemas, type + 1, false);
        schema = items ? json_pack ("{s:s, s:o}", "type", "array", "items", items) : NULL;
    }
    else if (type[0] == '=')
        schema = json_pack ("{s:s, s:o}", "type", "string", "enum", s_enum (type + 1));
    else if (strcmp (type, "time") == 0)
        schema = json_pack ("{s:s, s:s}", "type", "string", "format", "date-time");
    else if (strcmp (type, "date") == 0)
        schema = json_pack ("{s:s, s:s}", "type", "string", "format", "date");
    else if (strcmp (type, "any") == 0)
        schema = json_object ();
    else if (strcmp (type, "string") == 0 || strcmp (type, "integer") == 0
             || strcmp (type, "number") == 0 || strcmp (type, "boolean") == 0
             || strcmp (type, "object") == 0)
        schema = json_pack ("{s:s}", "type", type);
    if (schema && nullable) {
        json_object_set_new (schema, "nullable", json_true ());
        json_t *values = json_object_get (schema, "enum");
        if (values) //  an enum lists every value the field takes, null too
            json_array_append_new (values, json_null ());
    }
    return schema;
}

static json_t *
s_object (json_t *schemas, const s_object_t *object)
{
    json_t *properties = json_object (), *required = json_array ();
    if (object->reply) {
        json_object_set_new (properties, "success",
                             json_pack ("{s:s, s:[b]}", "type", "boolean", "enum", 1));
        json_array_append_new (required, json_string ("success"));
    }
    for (size_t i = 0; i < object->count; i++) {
        const s_field_t *field = &object->fields[i];
        json_t *schema = s_type (schemas, field->type, field->flags & S_NULL);
        if (!schema) {
            fprintf (stderr, "gw_openapi_bodies: %s.%s: no schema for type '%s'\n", object->name,
                     field->name, field->type);
            json_decref (properties);
            json_decref (required);
            return NULL;
        }
        json_object_set_new (properties, field->name, schema);
        if (!(field->flags & S_OPT))
            json_array_append_new (required, json_string (field->name));
    }
    return json_pack ("{s:s, s:s, s:o, s:o, s:b}", "type", "object", "description",
                      object->description, "required", required, "properties", properties,
                      "additionalProperties", 0);
}

static const char *
s_event_type (const char *event, const char *field)
{
    for (size_t i = 0; i < sizeof s_event_fields / sizeof s_event_fields[0]; i++)
        if ((!s_event_fields[i].event || strcmp (s_event_fields[i].event, event) == 0)
            && strcmp (s_event_fields[i].field, field) == 0)
            return s_event_fields[i].type;
    return NULL;
}

static const char *
s_cm_type (cm_type_t type)
{
    return type == CM_T_BOOL  ? "boolean"
           : type == CM_T_INT ? "integer"
           : type == CM_T_DBL ? "number"
           : type == CM_T_ARR ? "[any"
           : type == CM_T_MAP ? "object"
                              : "string";
}

//  Event_<name>: sessionId, timestamp and the table's fields; an optional
//  one may be null (the store writes a missing one as nil).
static json_t *
s_event (json_t *schemas, cm_event_t event)
{
    const char *name = cm_event_name (event);
    size_t count;
    const cm_field_t *table = cm_event_fields (event, &count);
    s_field_t fields[24];
    if (count + 2 > sizeof fields / sizeof fields[0])
        return NULL;
    fields[0] = (s_field_t) {"sessionId", "string", 0};
    fields[1] = (s_field_t) {"timestamp", "time", 0};
    for (size_t i = 0; i < count; i++) {
        const char *type = s_event_type (name, table[i].name);
        fields[i + 2] = (s_field_t) {table[i].name, type ? type : s_cm_type (table[i].type),
                                     table[i].required ? 0u : S_OPT | S_NULL};
    }
    s_object_t object = {name, cm_event_doc (event), false, fields, count + 2};
    return s_object (schemas, &object);
}

int
gw_openapi_bodies_add (json_t *schemas)
{
    for (size_t i = 0; i < sizeof s_objects / sizeof s_objects[0]; i++) {
        json_t *schema = s_object (schemas, &s_objects[i]);
        if (!schema || json_object_set_new (schemas, s_objects[i].name, schema))
            return -1;
    }
    json_t *export
        = json_pack ("{s:[o,o]}", "oneOf", s_ref ("ExportJson"), s_ref ("ExportMarkdown"));
    json_t *document = json_pack ("{s:s, s:s}", "type", "object", "description",
                                  "an OpenAPI 3.0 document (this one)");
    if (json_object_set_new (schemas, "Export", export)
        || json_object_set_new (schemas, "Document", document))
        return -1;
    for (int e = CM_EVENT_NONE + 1; e < CM_EVENT_COUNT; e++) {
        if (!cm_event_for_clients ((cm_event_t) e))
            continue;
        char name[96];
        snprintf (name, sizeof name, "Event_%s", cm_event_name ((cm_event_t) e));
        json_t *schema = s_event (schemas, (cm_event_t) e);
        if (!schema || json_object_set_new (schemas, name, schema))
            return -1;
    }
    //  Every schema a body names is there.
    for (size_t i = 0; i < sizeof s_bodies / sizeof s_bodies[0]; i++)
        if (!json_object_get (schemas, s_bodies[i].schema))
            return -1;
    return 0;
}

const char *
gw_openapi_body_200 (gw_route_id_t route)
{
    for (size_t i = 0; i < sizeof s_bodies / sizeof s_bodies[0]; i++)
        if (s_bodies[i].route == route)
            return s_bodies[i].schema;
    return NULL;
}

const char *
gw_openapi_body_ndjson_line (gw_route_id_t route)
{
    return route == GW_R_ADMIN_AUDIT ? "AuditEntry" : NULL;
}

int
gw_openapi_bodies_ready_error (json_t *schema)
{
    json_t *properties = json_object_get (schema, "properties");
    if (!properties)
        return -1;
    static const s_field_t fields[] = {
        {"status", "=not_ready", 0},          {"store", "=ok|down", 0},
        {"broadcaster", "=ok|down", 0},       {"regenerator", "=ok|down|unknown", 0},
        {"regenerators", "integer", 0},       {"store_writes", "=ok|refused_disk_full", 0},
    };
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++)
        if (json_object_set_new (properties, fields[i].name, s_type (NULL, fields[i].type, false)))
            return -1;
    return 0;
}
