#include "cm_msg.h"
#include "cm_error.h"

#include <stdio.h>
#include <string.h>

//  Each type's fields, one array per type, from the table.
#define X(id, wire, access, doc, ...) static const cm_field_t s_fields_##id[] = {__VA_ARGS__};
CM_MSG_TYPES (X)
#undef X

static const cm_field_t s_none[] = {CM_MSG_NO_FIELDS};

typedef struct {
    const char *name;
    cm_msg_access_t access;
    const cm_field_t *fields;
    size_t count;     //  entries; a lone CM_MSG_NO_FIELDS counts as none (cm_msg_schema)
} s_schema_t;

#define COUNT(array) (sizeof (array) / sizeof (array[0]))
static const s_schema_t s_schemas[CM_MSG_COUNT] = {
    [CM_MSG_NONE] = {"?", CM_ACCESS_NOTICE, s_none, 0},
#define X(id, wire, access, doc, ...)                                                       \
    [CM_MSG_##id] = {wire, CM_ACCESS_##access, s_fields_##id, COUNT (s_fields_##id)},
    CM_MSG_TYPES (X)
#undef X
};

cm_msg_access_t
cm_msg_access (cm_msg_t type)
{
    if (type <= CM_MSG_NONE || type >= CM_MSG_COUNT)
        return CM_ACCESS_NOTICE;
    return s_schemas[type].access;
}

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
        return s_none;
    }
    const cm_field_t *fields = s_schemas[type].fields;
    *count = fields[0].name ? s_schemas[type].count : 0;
    return fields;
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
