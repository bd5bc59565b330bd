#include "cm_event.h"
#include "cm_error.h"

#include <stdio.h>
#include <string.h>

#define REQ(name, type) {name, type, true, 0}
#define OPT(name, type) {name, type, false, 0}
//  Every task event names its task and the message it writes.
#define TASK REQ ("taskId", CM_T_STR), REQ ("messageId", CM_T_STR)

static const cm_field_t s_none[] = {{NULL, CM_T_NIL, false, 0}};
static const cm_field_t s_connection_status[] = {REQ ("status", CM_T_STR)};
static const cm_field_t s_session_updated[] = {REQ ("status", CM_T_STR),
                                               OPT ("resync", CM_T_BOOL)};
static const cm_field_t s_message_edited[] = {
    REQ ("messageId", CM_T_STR), REQ ("content", CM_T_STR), REQ ("previousContent", CM_T_STR),
    REQ ("edited", CM_T_BOOL)};
static const cm_field_t s_message_deleted[] = {REQ ("messageId", CM_T_STR),
                                               REQ ("deletedCount", CM_T_INT),
                                               REQ ("deletedMessageIds", CM_T_ARR)};
static const cm_field_t s_feedback_submitted[] = {
    REQ ("messageId", CM_T_STR), REQ ("feedbackId", CM_T_STR), REQ ("feedbackType", CM_T_STR),
    REQ ("upvotes", CM_T_INT), REQ ("downvotes", CM_T_INT)};
static const cm_field_t s_message_regenerating[] = {TASK, OPT ("originalMessageId", CM_T_STR),
                                                    OPT ("userQuery", CM_T_STR)};
static const cm_field_t s_regeneration_progress[] = {
    TASK, REQ ("progress", CM_T_INT), OPT ("message", CM_T_STR), OPT ("partialContent", CM_T_STR)};
static const cm_field_t s_thought_start[] = {TASK, REQ ("thinkingAbout", CM_T_STR),
                                             OPT ("totalSteps", CM_T_INT)};
static const cm_field_t s_thought_step[] = {TASK, REQ ("step", CM_T_INT),
                                            REQ ("reasoning", CM_T_STR), OPT ("steps", CM_T_ARR),
                                            OPT ("totalSteps", CM_T_INT)};
static const cm_field_t s_thought_complete[] = {TASK, REQ ("conclusion", CM_T_STR),
                                                OPT ("totalSteps", CM_T_INT)};
static const cm_field_t s_message_regenerated[] = {TASK, REQ ("content", CM_T_STR)};
static const cm_field_t s_regeneration_error[] = {TASK, REQ ("error", CM_T_STR)};

typedef struct {
    const char *name;
    cm_event_origin_t origin;
    bool terminal;
    const char *doc;
} s_event_info_t;

static const s_event_info_t s_events[CM_EVENT_COUNT] = {
    [CM_EVENT_NONE] = {"?", CM_EVENT_FROM_STORE, false, ""},
#define X(name, wire, origin, terminal, doc)                                                 \
    [CM_EVENT_##name] = {wire, CM_EVENT_FROM_##origin, terminal, doc},
    CM_EVENTS (X)
#undef X
};

//  The field lists, by event; kept apart from the X-macro so that each
//  list reads as one block. tests/test_cm_event.c checks every event has one.
#define FIELDS(array) array, sizeof (array) / sizeof (array[0])
static const struct {
    cm_event_t event;
    const cm_field_t *fields;
    size_t count;
} s_fields[] = {
    {CM_EVENT_CONNECTION_STATUS, FIELDS (s_connection_status)},
    {CM_EVENT_SESSION_UPDATED, FIELDS (s_session_updated)},
    {CM_EVENT_MESSAGE_EDITED, FIELDS (s_message_edited)},
    {CM_EVENT_MESSAGE_DELETED, FIELDS (s_message_deleted)},
    {CM_EVENT_FEEDBACK_SUBMITTED, FIELDS (s_feedback_submitted)},
    {CM_EVENT_MESSAGE_REGENERATING, FIELDS (s_message_regenerating)},
    {CM_EVENT_REGENERATION_PROGRESS, FIELDS (s_regeneration_progress)},
    {CM_EVENT_THOUGHT_PROCESS_START, FIELDS (s_thought_start)},
    {CM_EVENT_THOUGHT_PROCESS_STEP, FIELDS (s_thought_step)},
    {CM_EVENT_THOUGHT_PROCESS_COMPLETE, FIELDS (s_thought_complete)},
    {CM_EVENT_MESSAGE_REGENERATED, FIELDS (s_message_regenerated)},
    {CM_EVENT_REGENERATION_ERROR, FIELDS (s_regeneration_error)},
    {CM_EVENT_SUBSCRIBED, s_none, 0},
};

static bool
s_valid (cm_event_t event)
{
    return event > CM_EVENT_NONE && event < CM_EVENT_COUNT;
}

const char *
cm_event_name (cm_event_t event)
{
    return s_valid (event) ? s_events[event].name : "?";
}

cm_event_t
cm_event_from_name (const char *name, size_t len)
{
    for (int event = CM_EVENT_NONE + 1; event < CM_EVENT_COUNT; event++) {
        const char *candidate = s_events[event].name;
        if (strlen (candidate) == len && memcmp (candidate, name, len) == 0)
            return (cm_event_t) event;
    }
    return CM_EVENT_NONE;
}

cm_event_origin_t
cm_event_origin (cm_event_t event)
{
    return s_valid (event) ? s_events[event].origin : CM_EVENT_FROM_STORE;
}

bool
cm_event_terminal (cm_event_t event)
{
    return s_valid (event) && s_events[event].terminal;
}

const char *
cm_event_doc (cm_event_t event)
{
    return s_valid (event) ? s_events[event].doc : "";
}

bool
cm_event_for_clients (cm_event_t event)
{
    return s_valid (event) && s_events[event].origin != CM_EVENT_FROM_BROADCASTER;
}

const cm_field_t *
cm_event_fields (cm_event_t event, size_t *count)
{
    for (size_t i = 0; s_valid (event) && i < sizeof s_fields / sizeof s_fields[0]; i++)
        if (s_fields[i].event == event) {
            *count = s_fields[i].count;
            return s_fields[i].fields;
        }
    *count = 0;
    return s_none;
}

static int
s_reject (char *why, size_t why_size, const char *format, const char *field)
{
    if (why && why_size)
        snprintf (why, why_size, format, field);
    return CM_EPROTO;
}

static int
s_check (const cm_field_t *field, const cm_value_t *data, char *why, size_t why_size)
{
    const cm_value_t *value = cm_map_get (data, field->name);
    if (!value || value->type == CM_T_NIL)
        return field->required ? s_reject (why, why_size, "missing field '%s'", field->name) : 0;
    bool type_ok = value->type == field->type
                   || (field->type == CM_T_DBL && value->type == CM_T_INT);
    return type_ok ? 0 : s_reject (why, why_size, "field '%s' has the wrong type", field->name);
}

int
cm_event_validate (cm_event_t event, const cm_value_t *data, char *why, size_t why_size)
{
    if (!s_valid (event))
        return s_reject (why, why_size, "unknown event%s", "");
    if (!data || data->type != CM_T_MAP)
        return s_reject (why, why_size, "event data is not a map%s", "");
    static const cm_field_t common[] = {REQ ("sessionId", CM_T_STR), REQ ("timestamp", CM_T_STR)};
    for (size_t i = 0; i < sizeof common / sizeof common[0]; i++)
        if (s_check (&common[i], data, why, why_size))
            return CM_EPROTO;
    size_t count;
    const cm_field_t *fields = cm_event_fields (event, &count);
    for (size_t i = 0; i < count; i++)
        if (s_check (&fields[i], data, why, why_size))
            return CM_EPROTO;
    return 0;
}
