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

int
gw_probes_ready (const gw_probes_t *probes, json_t **body, int *retry_after)
{
    *retry_after = 0;
    cm_value_t *ok = NULL, *err = NULL;
    int store_rc = gw_probes_call (probes->metrics, probes->store, CM_MSG_PING, s_from_gateway (), &ok, &err);
    cm_value_destroy (&err);
    const cm_value_t *regen = ok ? cm_map_get (ok, "regenerators") : NULL;
    //  A store that does not report regenerators is not held against
    //  readiness; one that reports zero is.
    long long regenerators = regen && regen->type == CM_T_INT ? (long long) regen->u.i : -1;
    //  Set while the store refuses writes because its disk is full.
    char refused_since[64] = "";
    const char *since = ok ? cm_map_str (ok, "writes_refused_since") : NULL;
    if (since)
        snprintf (refused_since, sizeof refused_since, "%s", since);
    cm_value_destroy (&ok);
    int history_rc = gw_probes_call (probes->metrics, probes->history, CM_MSG_PING, s_from_gateway (), &ok, &err);
    cm_value_destroy (&ok);
    cm_value_destroy (&err);
    char problems[300] = "";
    if (store_rc)
        snprintf (problems + strlen (problems), sizeof problems - strlen (problems),
                  "store: %s; ", cm_strerror (store_rc));
    else if (refused_since[0])
        snprintf (problems + strlen (problems), sizeof problems - strlen (problems),
                  "store: writes refused since %s, its disk is full; ", refused_since);
    if (!store_rc && regenerators == 0)
        snprintf (problems + strlen (problems), sizeof problems - strlen (problems),
                  "regenerator: none connected to the store; ");
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
    char error[400];
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
    const cm_value_t *stale = NULL;
    if (gw_probes_call (probes->metrics, probes->store, CM_MSG_PING, s_from_gateway (), &ok, &err) == 0)
        stale = cm_map_get (ok, "stale_writes_refused");
    gw_metrics_store_stale (probes->metrics, stale && stale->type == CM_T_INT ? (long long) stale->u.i : -1);
    cm_value_destroy (&ok);
    cm_value_destroy (&err);
    char *text = s_join (gw_metrics_render (probes->metrics), s_leader_lines (probes->shards));
    char *actions = gw_probes_call (probes->metrics, probes->store, CM_MSG_ANALYTICS_TOTALS, s_from_gateway (),
                                    &ok, &err) == 0
                        ? gw_admin_metrics (ok)
                        : NULL;
    cm_value_destroy (&ok);
    cm_value_destroy (&err);
    return s_join (text, actions);
}
