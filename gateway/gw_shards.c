/*  gw_shards.c: one pool per store shard and the walk (gw_shards.h).  */
#include "gw_shards.h"

#include "cm_error.h"
#include "cm_ids.h"
#include "gw_manage.h"
#include "gw_shard_rate.h"
#include "gw_shards_admin.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct gw_shards {
    cm_shards_t map;
    gw_backend_t *pools[CM_SHARDS_MAX];
    gw_shards_call_fn *call;
    void *arg;
};

gw_shards_t *
gw_shards_new (const cm_shards_t *map, const gw_backend_options_t *options,
               gw_shards_call_fn *call, void *arg)
{
    if (!map || map->count < 1 || map->count > CM_SHARDS_MAX || !call)
        return NULL;
    gw_shards_t *self = calloc (1, sizeof *self);
    if (!self)
        return NULL;
    self->map = *map;
    self->call = call;
    self->arg = arg;
    for (int i = 0; i < map->count; i++) {
        gw_backend_options_t shard = *options;
        shard.endpoint = map->shards[i].endpoint;
        self->pools[i] = gw_backend_new (&shard);
        if (!self->pools[i]) {
            gw_shards_destroy (&self);
            return NULL;
        }
    }
    return self;
}

void
gw_shards_destroy (gw_shards_t **self_p)
{
    gw_shards_t *self = *self_p;
    if (!self)
        return;
    for (int i = 0; i < self->map.count; i++)
        gw_backend_destroy (&self->pools[i]);
    free (self);
    *self_p = NULL;
}

int
gw_shards_count (const gw_shards_t *self)
{
    return self->map.count;
}

gw_backend_t *
gw_shards_pool (gw_shards_t *self, int index)
{
    return index >= 0 && index < self->map.count ? self->pools[index] : NULL;
}

const cm_shards_t *
gw_shards_map (const gw_shards_t *self)
{
    return &self->map;
}

int
gw_shards_call_on (gw_shards_t *self, int index, cm_msg_t type, cm_value_t *payload,
                   cm_value_t **ok, cm_value_t **err)
{
    if (index < 0 || index >= self->map.count) {
        cm_value_destroy (&payload);
        *ok = NULL;
        return CM_EINVAL;
    }
    return self->call (self->arg, self->pools[index], type, payload, ok, err);
}

const char *
gw_shards_name (const gw_shards_t *self, int index)
{
    return index >= 0 && index < self->map.count ? self->map.shards[index].name : NULL;
}

const char *
gw_shards_key (const cm_value_t *payload, char *buffer, size_t size)
{
    const char *session_id = cm_map_str (payload, "session_id");
    if (session_id && *session_id) {
        snprintf (buffer, size, "%s", session_id);
        return buffer;
    }
    cm_msgid_t id;
    const char *message_id = cm_map_str (payload, "message_id");
    if (message_id && cm_msgid_parse (message_id, &id) == 0) {
        snprintf (buffer, size, "%s", id.session_id);
        return buffer;
    }
    const char *task_id = cm_map_str (payload, "task_id");
    if (task_id && *task_id) {
        snprintf (buffer, size, "%s", task_id);
        return buffer;
    }
    return NULL;
}

//  One call to shard index with a copy of payload (NULL: CM_ENOMEM);
//  existing marks a session_start's search.
static int
s_ask (gw_shards_t *self, int index, cm_msg_t type, const cm_value_t *payload, bool existing,
       cm_value_t **ok, cm_value_t **err)
{
    *ok = *err = NULL;
    cm_value_t *copy = cm_value_dup (payload);
    if (copy && existing)
        cm_map_set_bool (copy, "existing", true);
    return self->call (self->arg, self->pools[index], type, copy, ok, err);
}

static bool
s_absent (int rc, const cm_value_t *err)
{
    return rc == CM_ENOTFOUND && strcmp (cm_map_str_or (err, "message", ""), CM_SHARD_ABSENT) == 0;
}

//  The shard did not answer: it may hold the key, so a walk that finds it
//  nowhere else ends with this failure, never with a not-found.
static bool
s_failed (int rc)
{
    return rc == CM_EBACKEND || rc == CM_ETIMEOUT;
}

//  Keeps the first failure of a walk (rc and err), drops later ones.
static void
s_keep_failure (int rc, cm_value_t **err, int *failed_rc, cm_value_t **failed_err)
{
    if (*failed_rc == 0) {
        *failed_rc = rc;
        *failed_err = *err;
        *err = NULL;
    }
    else
        cm_value_destroy (err);
}

//  session_start: the shard that holds the session, else its first; a
//  shard that did not answer may hold it, so then none is created.
static int
s_start (gw_shards_t *self, const int *order, cm_value_t *payload, cm_value_t **ok,
         cm_value_t **err)
{
    int failed_rc = 0;
    cm_value_t *failed_err = NULL;
    for (int i = 0; i < self->map.count; i++) {
        int rc = s_ask (self, order[i], CM_MSG_SESSION_START, payload, true, ok, err);
        if (s_failed (rc)) {
            s_keep_failure (rc, err, &failed_rc, &failed_err);
            continue;
        }
        if (!s_absent (rc, *err)) {
            cm_value_destroy (&failed_err);
            cm_value_destroy (&payload);
            return rc;
        }
        cm_value_destroy (err);
    }
    if (failed_rc) {
        cm_value_destroy (&payload);
        *err = failed_err;
        return failed_rc;
    }
    return self->call (self->arg, self->pools[order[0]], CM_MSG_SESSION_START, payload, ok, err);
}

//  Any other keyed request: the first answer that is neither a not-found
//  nor a failure; else the walk's first failure; else the first shard's
//  not-found.
static int
s_walk (gw_shards_t *self, const int *order, cm_msg_t type, cm_value_t *payload,
        cm_value_t **ok, cm_value_t **err)
{
    int missing_rc = 0, failed_rc = 0;
    cm_value_t *missing_err = NULL, *failed_err = NULL;
    for (int i = 0; i < self->map.count; i++) {
        int rc = s_ask (self, order[i], type, payload, false, ok, err);
        if (s_failed (rc))
            s_keep_failure (rc, err, &failed_rc, &failed_err);
        else if (rc == CM_ENOTFOUND)
            s_keep_failure (rc, err, &missing_rc, &missing_err);
        else {
            cm_value_destroy (&missing_err);
            cm_value_destroy (&failed_err);
            cm_value_destroy (&payload);
            return rc;
        }
    }
    cm_value_destroy (&payload);
    if (failed_rc) {
        cm_value_destroy (&missing_err);
        *err = failed_err;
        return failed_rc;
    }
    *err = missing_err;
    return missing_rc;
}

//  events_after: a session's events are only on the shard that holds it,
//  and every other shard answers with none and complete false (an id of
//  another store, st_events.h). So the answer is the first that has
//  events or is complete; else a failure of the walk (that shard may
//  hold it); else the first shard's.
static int
s_events (gw_shards_t *self, const int *order, cm_value_t *payload, cm_value_t **ok,
          cm_value_t **err)
{
    int failed_rc = 0;
    cm_value_t *failed_err = NULL, *empty = NULL;
    bool answered = false, kept = false;
    int rc = 0;
    for (int i = 0; i < self->map.count && !answered; i++) {
        rc = s_ask (self, order[i], CM_MSG_EVENTS_AFTER, payload, false, ok, err);
        if (s_failed (rc))
            s_keep_failure (rc, err, &failed_rc, &failed_err);
        else if (rc == 0 && !cm_value_len (cm_map_get (*ok, "events"))
                 && !cm_map_bool (*ok, "complete", false)) {
            if (!kept) {
                kept = true;
                empty = *ok;
                *ok = NULL;
            }
            cm_value_destroy (ok);
        }
        else
            answered = true; //  events, complete, or the store's refusal
    }
    cm_value_destroy (&payload);
    if (!answered && failed_rc) {
        rc = failed_rc;
        *err = failed_err;
        failed_err = NULL;
    }
    else if (!answered) {
        rc = 0;
        *ok = empty;
        empty = NULL;
    }
    cm_value_destroy (&failed_err);
    cm_value_destroy (&empty);
    return rc;
}

//  The order of the session list (st_h_manage.c): newer update first,
//  ties by session id; places are "<updated_at ms>.<session_id>".
static int
s_place_cmp (const void *a, const void *b)
{
    const char *x = cm_map_str_or (*(const cm_value_t *const *) a, "cursor", "");
    const char *y = cm_map_str_or (*(const cm_value_t *const *) b, "cursor", "");
    long long tx = strtoll (x, NULL, 10), ty = strtoll (y, NULL, 10);
    if (tx != ty)
        return tx < ty ? 1 : -1;
    const char *ix = strchr (x, '.'), *iy = strchr (y, '.');
    return strcmp (ix ? ix + 1 : "", iy ? iy + 1 : "");
}

//  session_list: every shard's page at the cursor, merged.
static int
s_list (gw_shards_t *self, cm_value_t *payload, cm_value_t **ok, cm_value_t **err)
{
    int64_t limit = cm_map_int (payload, "limit", 100);
    if (limit < 1 || limit > GW_SESSION_PAGE_MAX)
        limit = 100;
    cm_map_set_bool (payload, "shard_cursors", true);
    cm_value_t *pages[CM_SHARDS_MAX] = {0};
    size_t total = 0;
    bool more = false;
    int rc = 0, failed_rc = 0, answered = 0;
    cm_value_t *failed_err = NULL;
    //  The names of the shards that did not answer: the page has the
    //  others' sessions and says whose are missing.
    cm_value_t *down = cm_arr_new ();
    if (!down)
        rc = CM_ENOMEM;
    for (int i = 0; i < self->map.count && rc == 0; i++) {
        rc = s_ask (self, i, CM_MSG_SESSION_LIST, payload, false, &pages[i], err);
        if (s_failed (rc)) {
            s_keep_failure (rc, err, &failed_rc, &failed_err);
            rc = cm_arr_push (down, cm_str_new (self->map.shards[i].name));
        }
        else if (rc == 0) {
            answered++;
            total += cm_value_len (cm_map_get (pages[i], "sessions"));
            more |= cm_map_str (pages[i], "next_cursor") != NULL;
        }
    }
    cm_value_destroy (&payload);
    if (rc == 0 && answered == 0) {
        rc = failed_rc;
        *err = failed_err;
        failed_err = NULL;
    }
    cm_value_destroy (&failed_err);
    const cm_value_t **all = rc ? NULL : calloc (total ? total : 1, sizeof *all);
    if (!rc && !all)
        rc = CM_ENOMEM;
    cm_value_t *sessions = rc ? NULL : cm_arr_new ();
    if (!rc && !sessions)
        rc = CM_ENOMEM;
    if (rc == 0) {
        size_t n = 0;
        for (int i = 0; i < self->map.count; i++) {
            const cm_value_t *page = cm_map_get (pages[i], "sessions");
            for (size_t j = 0; j < cm_value_len (page); j++)
                all[n++] = cm_arr_at (page, j);
        }
        qsort (all, n, sizeof *all, s_place_cmp);
        size_t shown = n < (size_t) limit ? n : (size_t) limit;
        for (size_t j = 0; j < shown && rc == 0; j++) {
            cm_value_t *summary = cm_value_dup (all[j]);
            cm_value_t *place = summary ? cm_map_take (summary, "cursor") : NULL;
            cm_value_destroy (&place);
            rc = summary ? cm_arr_push (sessions, summary) : CM_ENOMEM;
        }
        *ok = rc ? NULL : cm_map_new ();
        if (rc == 0 && !*ok)
            rc = CM_ENOMEM;
        if (rc == 0) {
            cm_map_set (*ok, "sessions", sessions);
            sessions = NULL;
            //  More pages: a shard had more, or the merge left some out.
            if ((more || shown < n) && shown > 0)
                cm_map_set_str (*ok, "next_cursor", cm_map_str_or (all[shown - 1], "cursor", ""));
            else
                cm_map_set_nil (*ok, "next_cursor");
            if (cm_value_len (down))
                rc = cm_map_set (*ok, "unavailable_shards", down);
            else
                cm_value_destroy (&down);
            down = NULL;
            if (rc)
                cm_value_destroy (ok);
        }
    }
    cm_value_destroy (&down);
    cm_value_destroy (&sessions);
    free (all);
    for (int i = 0; i < self->map.count; i++)
        cm_value_destroy (&pages[i]);
    return rc;
}

//  A keyed request: its tokens on the user's shard, then the walk.
static int
s_keyed (gw_shards_t *self, const char *key, cm_msg_t type, cm_value_t *payload, cm_value_t **ok,
         cm_value_t **err)
{
    gw_shard_rate_t taken;
    int rc = gw_shard_rate_take (self, type, payload, &taken, err);
    if (rc) {
        cm_value_destroy (&payload);
        return rc;
    }
    int order[CM_SHARDS_MAX];
    cm_shards_rank (&self->map, key, order);
    rc = type == CM_MSG_SESSION_START  ? s_start (self, order, payload, ok, err)
         : type == CM_MSG_EVENTS_AFTER ? s_events (self, order, payload, ok, err)
                                       : s_walk (self, order, type, payload, ok, err);
    gw_shard_rate_settle (self, &taken, rc, *ok);
    return rc;
}

int
gw_shards_call (gw_shards_t *self, cm_msg_t type, cm_value_t *payload, cm_value_t **ok,
                cm_value_t **err)
{
    *ok = NULL;
    if (err)
        *err = NULL;
    cm_value_t *ignored = NULL;
    cm_value_t **err_out = err ? err : &ignored;
    char buffer[CM_MESSAGE_ID_MAX + 1];
    const char *key = payload ? gw_shards_key (payload, buffer, sizeof buffer) : NULL;
    int rc;
    bool every = type == CM_MSG_SESSION_LIST || gw_shards_admin_merges (type);
    if (self->map.count == 1 || !payload || (!every && !key))
        rc = self->call (self->arg, self->pools[0], type, payload, ok, err_out);
    else if (type == CM_MSG_SESSION_LIST)
        rc = s_list (self, payload, ok, err_out);
    else if (gw_shards_admin_merges (type))
        rc = gw_shards_admin_call (self, type, payload, ok, err_out);
    else
        rc = s_keyed (self, key, type, payload, ok, err_out);
    cm_value_destroy (&ignored);
    return rc;
}
