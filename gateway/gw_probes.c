/*  gw_probes.c: /readyz and /metrics (gw_probes.h).                    */

#include "gw_probes.h"
#include "gw_leader_metrics.h"

#include "cm_error.h"
#include "gw_admin.h"
#include "gw_errors.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int
gw_probes_call (gw_metrics_t *metrics, gw_backend_t *backend, cm_msg_t type, cm_value_t *payload,
                cm_value_t **ok, cm_value_t **err)
{
    int rc = gw_backend_call (backend, type, payload, ok, err);
    if (rc && !gw_error_is_client (rc))
        gw_metrics_backend_error (metrics, rc);
    return rc;
}

//  Probes carry no caller: their payloads are {from}.
static cm_value_t *
s_from_gateway (void)
{
    cm_value_t *payload = cm_map_new ();
    if (payload)
        cm_map_set_str (payload, "from", "gateway");
    return payload;
}

//  What the shards' pings say: the first failure, the fewest
//  regenerators (-1: none reported), a shard refusing writes.
typedef struct {
    int rc;
    long long regenerators;
    char refused_since[64];
    char problems[300];
} s_pings_t;

static void
s_problem (char *problems, size_t size, const char *shard, const char *format, const char *what)
{
    size_t used = strlen (problems);
    snprintf (problems + used, size - used, "store%s%s: ", shard[0] ? " " : "", shard);
    used = strlen (problems);
    snprintf (problems + used, size - used, format, what);
    used = strlen (problems);
    snprintf (problems + used, size - used, "; ");
}

static void
s_ping_shards (const gw_probes_t *probes, s_pings_t *out)
{
    *out = (s_pings_t) {.regenerators = -1};
    int count = gw_shards_count (probes->shards);
    for (int i = 0; i < count; i++) {
        //  One shard is "store" as before; several are named.
        const char *name = count > 1 ? gw_shards_map (probes->shards)->shards[i].name : "";
        cm_value_t *ok = NULL, *err = NULL;
        int rc = gw_shards_call_on (probes->shards, i, CM_MSG_PING, s_from_gateway (), &ok, &err);
        cm_value_destroy (&err);
        const cm_value_t *regen = ok ? cm_map_get (ok, "regenerators") : NULL;
        //  A store that does not report regenerators is not held against
        //  readiness; one that reports zero is.
        long long regenerators = regen && regen->type == CM_T_INT ? (long long) regen->u.i : -1;
        //  Set while the store refuses writes because its disk is full.
        const char *since = ok ? cm_map_str (ok, "writes_refused_since") : NULL;
        if (rc) {
            if (!out->rc)
                out->rc = rc;
            s_problem (out->problems, sizeof out->problems, name, "%s", cm_strerror (rc));
        }
        else if (since) {
            snprintf (out->refused_since, sizeof out->refused_since, "%s", since);
            s_problem (out->problems, sizeof out->problems, name,
                       "writes refused since %s, its disk is full", since);
        }
        if (!rc && regenerators == 0) {
            size_t used = strlen (out->problems);
            snprintf (out->problems + used, sizeof out->problems - used,
                      "regenerator: none connected to the store%s%s; ", name[0] ? " " : "", name);
        }
        if (regenerators >= 0 && (out->regenerators < 0 || regenerators < out->regenerators))
            out->regenerators = regenerators;
        cm_value_destroy (&ok);
    }
}

int
gw_probes_ready (const gw_probes_t *probes, json_t **body, int *retry_after)
{
    *retry_after = 0;
    cm_value_t *ok = NULL, *err = NULL;
    s_pings_t pings;
    s_ping_shards (probes, &pings);
    int store_rc = pings.rc;
    long long regenerators = pings.regenerators;
    const char *refused_since = pings.refused_since;
    int history_rc = gw_probes_call (probes->metrics, probes->history, CM_MSG_PING, s_from_gateway (), &ok, &err);
    cm_value_destroy (&ok);
    cm_value_destroy (&err);
    char problems[400];
    snprintf (problems, sizeof problems, "%s", pings.problems);
    if (history_rc)
        snprintf (problems + strlen (problems), sizeof problems - strlen (problems),
                  "broadcaster: %s; ", cm_strerror (history_rc));
    *body = json_pack ("{s:s, s:s, s:s}", "store", store_rc ? "down" : "ok",
                       "broadcaster", history_rc ? "down" : "ok", "regenerator",
                       regenerators == 0 ? "down" : regenerators > 0 ? "ok" : "unknown");
    if (*body && regenerators >= 0)
        json_object_set_new (*body, "regenerators", json_integer (regenerators));
    if (*body && !store_rc)
        json_object_set_new (*body, "store_writes",
                             json_string (refused_since[0] ? "refused_disk_full" : "ok"));
    if (!problems[0]) {
        json_object_set_new (*body, "status", json_string ("ready"));
        return 200;
    }
    problems[strlen (problems) - 2] = 0;
    char error[450];
    snprintf (error, sizeof error, "Not ready: %s.", problems);
    const gw_http_error_info_t *info = gw_http_error_info (GW_E_NOT_READY);
    *retry_after = info->retry_after;
    json_object_set_new (*body, "success", json_false ());
    json_object_set_new (*body, "status", json_string (info->code));
    json_object_set_new (*body, "error", json_string (error));
    json_object_set_new (*body, "code", json_string (info->code));
    return info->status;
}

//  text with more after it (both taken; more may be NULL: text alone).
//  NULL when text is NULL or out of memory.
static char *
s_join (char *text, char *more)
{
    size_t len = text ? strlen (text) : 0, extra = more ? strlen (more) : 0;
    char *joined = text ? realloc (text, len + extra + 1) : NULL;
    if (joined && more)
        memcpy (joined + len, more, extra + 1);
    free (more);
    if (!joined)
        free (text);
    return joined;
}

//  Every shard's leader lines (gw_leader_metrics.h); NULL when none.
static char *
s_leader_lines (gw_shards_t *shards)
{
    if (!shards)
        return NULL;
    const char *names[CM_SHARDS_MAX];
    cm_leader_t *leaders[CM_SHARDS_MAX];
    int count = gw_shards_count (shards);
    for (int i = 0; i < count; i++) {
        names[i] = gw_shards_name (shards, i);
        leaders[i] = gw_backend_leader (gw_shards_pool (shards, i));
    }
    return gw_leader_metrics (names, leaders, count);
}

char *
gw_probes_metrics (const gw_probes_t *probes, long held)
{
    gw_metrics_vestibule (probes->metrics, held);
    cm_value_t *ok = NULL, *err = NULL;
    long long stale_sum = -1;
    for (int i = 0; i < gw_shards_count (probes->shards); i++) {
        if (gw_shards_call_on (probes->shards, i, CM_MSG_PING, s_from_gateway (), &ok, &err) == 0) {
            const cm_value_t *stale = cm_map_get (ok, "stale_writes_refused");
            if (stale && stale->type == CM_T_INT)
                stale_sum = (stale_sum < 0 ? 0 : stale_sum) + (long long) stale->u.i;
        }
        cm_value_destroy (&ok);
        cm_value_destroy (&err);
    }
    gw_metrics_store_stale (probes->metrics, stale_sum);
    char *text = s_join (gw_metrics_render (probes->metrics), s_leader_lines (probes->shards));
    char *actions = gw_shards_call (probes->shards, CM_MSG_ANALYTICS_TOTALS, s_from_gateway (), &ok,
                                    &err) == 0
                        ? gw_admin_metrics (ok)
                        : NULL;
    cm_value_destroy (&ok);
    cm_value_destroy (&err);
    return s_join (text, actions);
}
