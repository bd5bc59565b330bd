#include "cm_msg.h"
#include "cm_error.h"

#include <stdio.h>
#include <string.h>

//  Field shorthands keep each schema one readable block.
#define REQ(name, type, max) {name, type, true, max}
#define OPT(name, type, max) {name, type, false, max}
#define ID_MAX 128
#define MSGID_MAX 320

//  Every gateway request carries who asks and from where (for the audit log).
#define CALLER REQ ("user", CM_T_STR, ID_MAX), OPT ("ip", CM_T_STR, 64), OPT ("ua", CM_T_STR, 512)
//  Mutations also carry the per-minute limits the gateway enforces through
//  the store, so every gateway replica shares one budget.
#define LIMITED OPT ("rate_limit", CM_T_INT, 0), OPT ("regen_rate_limit", CM_T_INT, 0)

static const cm_field_t s_ok[] = {{NULL, CM_T_NIL, false, 0}};
static const cm_field_t s_error[] = {REQ ("code", CM_T_INT, 0), REQ ("message", CM_T_STR, 4096)};
static const cm_field_t s_ping[] = {OPT ("from", CM_T_STR, ID_MAX),
                                     OPT ("worker_prefix", CM_T_STR, ID_MAX)};
static const cm_field_t s_session_start[] = {
    CALLER, LIMITED, REQ ("session_id", CM_T_STR, ID_MAX), REQ ("query", CM_T_STR, 0),
    OPT ("model", CM_T_STR, 128), OPT ("temperature", CM_T_DBL, 0)};
static const cm_field_t s_session_get[] = {CALLER, REQ ("session_id", CM_T_STR, ID_MAX)};
static const cm_field_t s_session_list[] = {CALLER, OPT ("limit", CM_T_INT, 0)};
static const cm_field_t s_message_edit[] = {
    CALLER, LIMITED, REQ ("message_id", CM_T_STR, MSGID_MAX), REQ ("content", CM_T_STR, 0),
    OPT ("trigger_regeneration", CM_T_BOOL, 0)};
static const cm_field_t s_message_delete[] = {CALLER, LIMITED,
                                              REQ ("message_id", CM_T_STR, MSGID_MAX)};
static const cm_field_t s_feedback_put[] = {
    CALLER, LIMITED, REQ ("message_id", CM_T_STR, MSGID_MAX),
    REQ ("feedback_type", CM_T_STR, 16), OPT ("reason", CM_T_STR, 4096),
    OPT ("metadata", CM_T_MAP, 0)};
static const cm_field_t s_by_message[] = {CALLER, REQ ("message_id", CM_T_STR, MSGID_MAX)};
static const cm_field_t s_regen_create[] = {
    CALLER, LIMITED, REQ ("message_id", CM_T_STR, MSGID_MAX), OPT ("context", CM_T_STR, 0),
    OPT ("model", CM_T_STR, 128), OPT ("temperature", CM_T_DBL, 0)};
static const cm_field_t s_by_task[] = {CALLER, REQ ("task_id", CM_T_STR, ID_MAX)};
static const cm_field_t s_task_cancel[] = {CALLER, LIMITED, REQ ("task_id", CM_T_STR, ID_MAX)};
static const cm_field_t s_analytics_get[] = {CALLER, REQ ("session_id", CM_T_STR, ID_MAX)};
static const cm_field_t s_audit_query[] = {CALLER, OPT ("session_id", CM_T_STR, ID_MAX),
                                           OPT ("limit", CM_T_INT, 0)};
static const cm_field_t s_rate_consume[] = {REQ ("key", CM_T_STR, 256),
                                            REQ ("limit", CM_T_INT, 0),
                                            OPT ("window_ms", CM_T_INT, 0)};
static const cm_field_t s_task_claim[] = {REQ ("worker", CM_T_STR, ID_MAX),
                                          OPT ("max", CM_T_INT, 0), OPT ("wait_ms", CM_T_INT, 0)};
static const cm_field_t s_task_progress[] = {
    REQ ("worker", CM_T_STR, ID_MAX), REQ ("task_id", CM_T_STR, ID_MAX),
    REQ ("progress", CM_T_INT, 0), OPT ("message", CM_T_STR, 1024),
    OPT ("partial", CM_T_STR, 0)};
static const cm_field_t s_task_event[] = {
    REQ ("worker", CM_T_STR, ID_MAX), REQ ("task_id", CM_T_STR, ID_MAX),
    REQ ("event", CM_T_STR, 64), REQ ("data", CM_T_MAP, 0)};
static const cm_field_t s_task_complete[] = {
    REQ ("worker", CM_T_STR, ID_MAX), REQ ("task_id", CM_T_STR, ID_MAX),
    REQ ("content", CM_T_STR, 0), OPT ("model", CM_T_STR, 128)};
static const cm_field_t s_task_fail[] = {
    REQ ("worker", CM_T_STR, ID_MAX), REQ ("task_id", CM_T_STR, ID_MAX),
    REQ ("error", CM_T_STR, 4096), OPT ("retryable", CM_T_BOOL, 0)};
static const cm_field_t s_event[] = {REQ ("event", CM_T_STR, 64), REQ ("data", CM_T_MAP, 0)};
static const cm_field_t s_history[] = {REQ ("session_id", CM_T_STR, ID_MAX),
                                       OPT ("after", CM_T_STR, 64)};

typedef struct {
    const char *name;
    const cm_field_t *fields;
    size_t count;
} s_schema_t;

#define SCHEMA(array) array, sizeof (array) / sizeof (array[0])
static const s_schema_t s_schemas[CM_MSG_COUNT] = {
    [CM_MSG_NONE] = {"?", s_ok, 0},
    [CM_MSG_OK] = {"ok", s_ok, 0},
    [CM_MSG_ERROR] = {"error", SCHEMA (s_error)},
    [CM_MSG_PING] = {"ping", SCHEMA (s_ping)},
    [CM_MSG_SESSION_START] = {"session_start", SCHEMA (s_session_start)},
    [CM_MSG_SESSION_GET] = {"session_get", SCHEMA (s_session_get)},
    [CM_MSG_SESSION_LIST] = {"session_list", SCHEMA (s_session_list)},
    [CM_MSG_MESSAGE_EDIT] = {"message_edit", SCHEMA (s_message_edit)},
    [CM_MSG_MESSAGE_DELETE] = {"message_delete", SCHEMA (s_message_delete)},
    [CM_MSG_FEEDBACK_PUT] = {"feedback_put", SCHEMA (s_feedback_put)},
    [CM_MSG_FEEDBACK_GET] = {"feedback_get", SCHEMA (s_by_message)},
    [CM_MSG_HISTORY_GET] = {"history_get", SCHEMA (s_by_message)},
    [CM_MSG_REGEN_CREATE] = {"regen_create", SCHEMA (s_regen_create)},
    [CM_MSG_TASK_STATUS] = {"task_status", SCHEMA (s_by_task)},
    [CM_MSG_TASK_CANCEL] = {"task_cancel", SCHEMA (s_task_cancel)},
    [CM_MSG_ANALYTICS_GET] = {"analytics_get", SCHEMA (s_analytics_get)},
    [CM_MSG_AUDIT_QUERY] = {"audit_query", SCHEMA (s_audit_query)},
    [CM_MSG_RATE_CONSUME] = {"rate_consume", SCHEMA (s_rate_consume)},
    [CM_MSG_TASK_CLAIM] = {"task_claim", SCHEMA (s_task_claim)},
    [CM_MSG_TASK_PROGRESS] = {"task_progress", SCHEMA (s_task_progress)},
    [CM_MSG_TASK_EVENT] = {"task_event", SCHEMA (s_task_event)},
    [CM_MSG_TASK_COMPLETE] = {"task_complete", SCHEMA (s_task_complete)},
    [CM_MSG_TASK_FAIL] = {"task_fail", SCHEMA (s_task_fail)},
    [CM_MSG_EVENT] = {"event", SCHEMA (s_event)},
    [CM_MSG_HISTORY] = {"history", SCHEMA (s_history)},
};

const char *
cm_msg_name (cm_msg_t type)
{
    if (type <= CM_MSG_NONE || type >= CM_MSG_COUNT)
        return "?";
    return s_schemas[type].name;
}

cm_msg_t
cm_msg_from_name (const char *name, size_t len)
{
    for (int type = CM_MSG_NONE + 1; type < CM_MSG_COUNT; type++) {
        const char *candidate = s_schemas[type].name;
        if (strlen (candidate) == len && memcmp (candidate, name, len) == 0)
            return (cm_msg_t) type;
    }
    return CM_MSG_NONE;
}

const cm_field_t *
cm_msg_schema (cm_msg_t type, size_t *count)
{
    if (type <= CM_MSG_NONE || type >= CM_MSG_COUNT) {
        *count = 0;
        return s_ok;
    }
    *count = s_schemas[type].count;
    return s_schemas[type].fields;
}

static int
s_reject (char *why, size_t why_size, const char *format, const char *field)
{
    if (why && why_size)
        snprintf (why, why_size, format, field);
    return CM_EPROTO;
}

int
cm_msg_validate (cm_msg_t type, const cm_value_t *payload, char *why, size_t why_size)
{
    if (type <= CM_MSG_NONE || type >= CM_MSG_COUNT)
        return s_reject (why, why_size, "unknown message type%s", "");
    if (!payload || payload->type != CM_T_MAP)
        return s_reject (why, why_size, "payload is not a map%s", "");
    size_t count;
    const cm_field_t *fields = cm_msg_schema (type, &count);
    for (size_t i = 0; i < count; i++) {
        const cm_field_t *field = &fields[i];
        const cm_value_t *value = cm_map_get (payload, field->name);
        if (!value || value->type == CM_T_NIL) {
            if (field->required)
                return s_reject (why, why_size, "missing field '%s'", field->name);
            continue;
        }
        bool type_ok = value->type == field->type
                       || (field->type == CM_T_DBL && value->type == CM_T_INT);
        if (!type_ok)
            return s_reject (why, why_size, "field '%s' has the wrong type", field->name);
        size_t max = field->max_bytes ? field->max_bytes : CM_MAX_STRING_BYTES;
        if ((value->type == CM_T_STR || value->type == CM_T_BIN) && value->u.s.len > max)
            return s_reject (why, why_size, "field '%s' is too long", field->name);
    }
    return 0;
}
