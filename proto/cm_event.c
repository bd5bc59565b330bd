#include "cm_event.h"
#include "cm_error.h"

#include <stdio.h>
#include <string.h>

//  Each event's data fields, one array per event, from the table.
#define X(name, wire, origin, terminal, doc, ...)                                            \
    static const cm_field_t s_fields_##name[] = {__VA_ARGS__};
CM_EVENTS (X)
#undef X

static const cm_field_t s_none[] = {CM_EVENT_NO_FIELDS};

typedef struct {
    const char *name;
    cm_event_origin_t origin;
    bool terminal;
    const char *doc;
} s_event_info_t;

static const s_event_info_t s_events[CM_EVENT_COUNT] = {
    [CM_EVENT_NONE] = {"?", CM_EVENT_FROM_STORE, false, ""},
#define X(name, wire, origin, terminal, doc, ...)                                            \
    [CM_EVENT_##name] = {wire, CM_EVENT_FROM_##origin, terminal, doc},
    CM_EVENTS (X)
#undef X
};

//  Entries per array; a lone CM_EVENT_NO_FIELDS counts as none (cm_event_fields).
#define COUNT(array) (sizeof (array) / sizeof (array[0]))
static const struct {
    const cm_field_t *fields;
    size_t count;
} s_fields[CM_EVENT_COUNT] = {
    [CM_EVENT_NONE] = {s_none, 0},
#define X(name, wire, origin, terminal, doc, ...)                                            \
    [CM_EVENT_##name] = {s_fields_##name, COUNT (s_fields_##name)},
    CM_EVENTS (X)
#undef X
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
    if (!s_valid (event)) {
        *count = 0;
        return s_none;
    }
    const cm_field_t *fields = s_fields[event].fields;
    *count = fields[0].name ? s_fields[event].count : 0;
    return fields;
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
    static const cm_field_t common[] = {CM_EV_REQ_ ("sessionId", STR), CM_EV_REQ_ ("timestamp", STR)};
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
