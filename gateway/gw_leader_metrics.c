/*  gw_leader_metrics.c: the shards' leader lines (gw_leader_metrics.h).  */
#include "gw_leader_metrics.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    char *text;
    size_t len, cap;
    bool failed;
} s_out_t;

static void
s_add (s_out_t *out, const char *format, ...)
{
    if (out->failed)
        return;
    va_list args;
    va_start (args, format);
    int need = vsnprintf (NULL, 0, format, args);
    va_end (args);
    if (need < 0 || out->len + (size_t) need + 1 > out->cap) {
        size_t cap = (out->cap + (size_t) (need > 0 ? need : 0) + 1) * 2;
        char *grown = need < 0 ? NULL : realloc (out->text, cap);
        if (!grown) {
            out->failed = true;
            return;
        }
        out->text = grown;
        out->cap = cap;
    }
    va_start (args, format);
    vsnprintf (out->text + out->len, out->cap - out->len, format, args);
    va_end (args);
    out->len += (size_t) need;
}

//  value as a label value: \ " and newline escaped.
static void
s_add_label (s_out_t *out, const char *value)
{
    for (const char *p = value; *p; p++) {
        if (*p == '\\' || *p == '"')
            s_add (out, "\\%c", *p);
        else if (*p == '\n')
            s_add (out, "\\n");
        else
            s_add (out, "%c", *p);
    }
}

static void
s_counter (s_out_t *out, const char *name, const char *help, const char *const *names,
           cm_leader_t *const *leaders, int count, uint64_t (*value) (const cm_leader_t *))
{
    s_add (out, "# HELP %s %s\n# TYPE %s counter\n", name, help, name);
    for (int i = 0; i < count; i++)
        if (leaders[i]) {
            s_add (out, "%s{shard=\"", name);
            s_add_label (out, names[i]);
            s_add (out, "\"} %" PRIu64 "\n", value (leaders[i]));
        }
}

char *
gw_leader_metrics (const char *const *names, cm_leader_t *const *leaders, int count)
{
    s_out_t out = {0};
    s_add (&out, "%s", "");
    bool any = false;
    for (int i = 0; i < count; i++)
        any |= leaders[i] != NULL;
    if (any) {
        s_counter (&out, "chatmesh_store_not_leader_total",
                   "Store answers \"not leader\" this gateway followed, per shard.", names,
                   leaders, count, cm_leader_not_leader_total);
        s_counter (&out, "chatmesh_store_node_failures_total",
                   "Sends to a store node that failed (no connection, or no answer in time), "
                   "per shard.",
                   names, leaders, count, cm_leader_node_failures_total);
        s_add (&out, "# HELP chatmesh_store_leader 1 for the store node this gateway's calls "
                     "go to (the one last seen leading), 0 for the shard's other nodes.\n"
                     "# TYPE chatmesh_store_leader gauge\n");
        for (int i = 0; i < count; i++) {
            if (!leaders[i])
                continue;
            int current = cm_leader_current (leaders[i]);
            for (int node = 0; node < cm_leader_count (leaders[i]); node++) {
                s_add (&out, "chatmesh_store_leader{shard=\"");
                s_add_label (&out, names[i]);
                s_add (&out, "\",node=\"");
                s_add_label (&out, cm_leader_endpoint (leaders[i], node));
                s_add (&out, "\"} %d\n", node == current);
            }
        }
    }
    if (out.failed) {
        free (out.text);
        return NULL;
    }
    return out.text;
}
