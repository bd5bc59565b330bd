/*  web_events: writes web/js/events.js, the frontend's copy of the events a
    browser's stream can carry, and the event table of docs/api.md, from
    proto/cm_event.h.

    web_events                 prints events.js
    web_events --check FILE    exit 0 when FILE is what it would write, else
                               1 and says how to regenerate (the ctests)
    web_events --write FILE    regenerates FILE

    A FILE ending in .md gets the table between its S_DOC_BEGIN and S_DOC_END
    lines (the rest of the file is left as it is); any other FILE is
    events.js.

    The file exports EV (name constants, EV.MESSAGE_EDITED ===
    'message_edited') and EVENT_TABLE, a JSON array (tests/browser's mock
    reads it as such) of {key, name, origin, terminal, doc, fields: [{name,
    type, required}]}, every cm_event_for_clients event in table order.    */
#include "cm_event.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_OUTPUT_MAX 65536 //  a generated or read file; the table is far smaller
#define S_DOC_BEGIN "<!-- events: made from proto/cm_event.h by web_events; do not edit -->\n"
#define S_DOC_END "<!-- /events -->\n"

typedef struct {
    char text[S_OUTPUT_MAX];
    size_t len;
    bool full;
} s_out_t;

static void
s_put (s_out_t *out, const char *format, ...) __attribute__ ((format (printf, 2, 3)));

static void
s_put (s_out_t *out, const char *format, ...)
{
    va_list args;
    va_start (args, format);
    int n = vsnprintf (out->text + out->len, sizeof out->text - out->len, format, args);
    va_end (args);
    if (n < 0 || (size_t) n >= sizeof out->text - out->len)
        out->full = true;
    else
        out->len += (size_t) n;
}

//  A JSON string; the table's texts are plain ASCII, escaped all the same.
static void
s_put_json (s_out_t *out, const char *text)
{
    s_put (out, "\"");
    for (const unsigned char *c = (const unsigned char *) text; *c; c++) {
        if (*c == '"' || *c == '\\')
            s_put (out, "\\%c", *c);
        else if (*c < 0x20)
            s_put (out, "\\u%04x", *c);
        else
            s_put (out, "%c", *c);
    }
    s_put (out, "\"");
}

static const char *
s_type_name (cm_type_t type)
{
    switch (type) {
    case CM_T_STR: return "string";
    case CM_T_INT: return "integer";
    case CM_T_BOOL: return "boolean";
    case CM_T_ARR: return "array";
    case CM_T_MAP: return "object";
    case CM_T_DBL: return "number";
    default: return "?";
    }
}

static const char *
s_origin_name (cm_event_origin_t origin)
{
    static const char *names[] = {"store", "regenerator", "gateway", "broadcaster"};
    return origin <= CM_EVENT_FROM_BROADCASTER ? names[origin] : "?";
}

//  The enum's name of an event from its wire name: MESSAGE_EDITED.
static void
s_put_key (s_out_t *out, const char *name)
{
    for (const char *c = name; *c; c++)
        s_put (out, "%c", *c >= 'a' && *c <= 'z' ? *c - 'a' + 'A' : *c);
}

static void
s_generate (s_out_t *out)
{
    s_put (out, "// The events a session's SSE stream can carry, generated from\n"
                "// proto/cm_event.h by tests/web/web_events.c. Do not edit: the ctest\n"
                "// web_events fails when this file is stale, and\n"
                "// `build/tests/web/web_events --write web/js/events.js` regenerates it.\n"
                "// Every event's data also carries sessionId and timestamp.\n\n"
                "export const EV = Object.freeze({\n");
    for (int event = CM_EVENT_NONE + 1; event < CM_EVENT_COUNT; event++) {
        if (!cm_event_for_clients ((cm_event_t) event))
            continue;
        const char *name = cm_event_name ((cm_event_t) event);
        s_put (out, "  ");
        s_put_key (out, name);
        s_put (out, ": '%s',\n", name);
    }
    s_put (out, "});\n\nexport const EVENT_TABLE = [\n");
    bool first = true;
    for (int event = CM_EVENT_NONE + 1; event < CM_EVENT_COUNT; event++) {
        if (!cm_event_for_clients ((cm_event_t) event))
            continue;
        const char *name = cm_event_name ((cm_event_t) event);
        s_put (out, "%s  {\"key\": \"", first ? "" : ",\n");
        first = false;
        s_put_key (out, name);
        s_put (out, "\", \"name\": ");
        s_put_json (out, name);
        s_put (out, ", \"origin\": \"%s\", \"terminal\": %s,\n   \"doc\": ",
               s_origin_name (cm_event_origin ((cm_event_t) event)),
               cm_event_terminal ((cm_event_t) event) ? "true" : "false");
        s_put_json (out, cm_event_doc ((cm_event_t) event));
        s_put (out, ",\n   \"fields\": [");
        size_t count;
        const cm_field_t *fields = cm_event_fields ((cm_event_t) event, &count);
        for (size_t i = 0; i < count; i++) {
            s_put (out, "%s\n    {\"name\": ", i ? "," : "");
            s_put_json (out, fields[i].name);
            s_put (out, ", \"type\": \"%s\", \"required\": %s}", s_type_name (fields[i].type),
                   fields[i].required ? "true" : "false");
        }
        s_put (out, "]}");
    }
    s_put (out, "\n];\n");
}

//  docs/api.md's table: one row per event a browser gets.
static void
s_generate_doc (s_out_t *out)
{
    s_put (out, "| event | ends a task | data (beyond sessionId, timestamp; ? optional) | what it says |\n"
                "|---|---|---|---|\n");
    for (int event = CM_EVENT_NONE + 1; event < CM_EVENT_COUNT; event++) {
        if (!cm_event_for_clients ((cm_event_t) event))
            continue;
        s_put (out, "| `%s` | %s | ", cm_event_name ((cm_event_t) event),
               cm_event_terminal ((cm_event_t) event) ? "yes" : "");
        size_t count;
        const cm_field_t *fields = cm_event_fields ((cm_event_t) event, &count);
        for (size_t i = 0; i < count; i++)
            s_put (out, "%s%s%s (%s)", i ? ", " : "", fields[i].name, fields[i].required ? "" : "?",
                   s_type_name (fields[i].type));
        s_put (out, " | %s |\n", cm_event_doc ((cm_event_t) event));
    }
}

//  The file's text (malloc'd, *len bytes) or NULL when it cannot be read.
static char *
s_read (const char *path, size_t *len)
{
    FILE *file = fopen (path, "rb");
    if (!file)
        return NULL;
    char *text = malloc (S_OUTPUT_MAX + 1);
    *len = text ? fread (text, 1, S_OUTPUT_MAX + 1, file) : 0;
    fclose (file);
    return text;
}

static bool
s_is_doc (const char *path)
{
    size_t len = strlen (path);
    return len > 3 && strcmp (path + len - 3, ".md") == 0;
}

//  What FILE should hold: events.js, or the .md file with its table section
//  replaced (into *want). 0, or 1 with the reason said.
static int
s_wanted (const char *path, s_out_t *want)
{
    if (!s_is_doc (path)) {
        s_generate (want);
        return want->full ? (fprintf (stderr, "web_events: events.js too large\n"), 1) : 0;
    }
    size_t len = 0;
    char *text = s_read (path, &len);
    if (!text || len > S_OUTPUT_MAX) {
        fprintf (stderr, "web_events: cannot read %s (at most %d bytes)\n", path, S_OUTPUT_MAX);
        free (text);
        return 1;
    }
    text[len] = 0;
    char *begin = strstr (text, S_DOC_BEGIN);
    char *end = begin ? strstr (begin, S_DOC_END) : NULL;
    if (!end) {
        fprintf (stderr, "web_events: %s has no lines\n  %s  %s", path, S_DOC_BEGIN, S_DOC_END);
        free (text);
        return 1;
    }
    begin += strlen (S_DOC_BEGIN);
    s_put (want, "%.*s", (int) (begin - text), text);
    s_generate_doc (want);
    s_put (want, "%s", end);
    free (text);
    return want->full ? (fprintf (stderr, "web_events: %s too large\n", path), 1) : 0;
}

static int
s_check (const char *path)
{
    static s_out_t want;
    if (s_wanted (path, &want))
        return 1;
    size_t len = 0;
    char *text = s_read (path, &len);
    bool same = text && len == want.len && memcmp (text, want.text, len) == 0;
    free (text);
    if (same)
        return 0;
    fprintf (stderr,
             "%s is not what proto/cm_event.h makes: regenerate it with\n"
             "  web_events --write %s\n",
             path, path);
    return 1;
}

static int
s_write (const char *path)
{
    static s_out_t want;
    if (s_wanted (path, &want))
        return 1;
    FILE *file = fopen (path, "wb");
    if (!file || fwrite (want.text, 1, want.len, file) != want.len) {
        fprintf (stderr, "web_events: cannot write %s\n", path);
        if (file)
            fclose (file);
        return 1;
    }
    return fclose (file) == 0 ? 0 : 1;
}

int
main (int argc, char **argv)
{
    if (argc == 1) {
        static s_out_t out;
        s_generate (&out);
        return !out.full && fwrite (out.text, 1, out.len, stdout) == out.len ? 0 : 1;
    }
    if (argc == 3 && strcmp (argv[1], "--check") == 0)
        return s_check (argv[2]);
    if (argc == 3 && strcmp (argv[1], "--write") == 0)
        return s_write (argv[2]);
    fprintf (stderr, "usage: web_events [--check FILE | --write FILE]\n");
    return 2;
}
