/*  gw_shard_rate.c: rate-limit buckets on the user's shard (gw_shard_rate.h).  */
#include "gw_shard_rate.h"

#include "cm_error.h"
#include "cm_ids.h"

#include <stdio.h>
#include <string.h>

bool
gw_shard_rate_regeneration (cm_msg_t type, const cm_value_t *payload)
{
    if (type == CM_MSG_SESSION_START || type == CM_MSG_REGEN_CREATE
        || type == CM_MSG_MESSAGE_CONTINUE)
        return true;
    if (type != CM_MSG_MESSAGE_EDIT || !cm_map_bool (payload, "trigger_regeneration", true))
        return false;
    //  A question's edit asks for a new answer below it (st_h_branch.h);
    //  an answer's edit is in place.
    cm_msgid_t id;
    const char *message_id = cm_map_str (payload, "message_id");
    return message_id && cm_msgid_parse (message_id, &id) == 0 && strcmp (id.role, "user") == 0;
}

//  The bucket key of the store (st_key_rate_user) into key.
static void
s_key (const char *user, bool regeneration, char *key, size_t size)
{
    snprintf (key, size, "%s%s", regeneration ? "r:" : "a:", user);
}

//  One rate_consume on the user's shard: 0 with *window, or its failure.
static int
s_consume (gw_shards_t *shards, int shard, const char *user, bool regeneration, int64_t limit,
           int64_t *window, cm_value_t **err)
{
    char key[CM_USER_MAX + 3];
    s_key (user, regeneration, key, sizeof key);
    cm_value_t *payload = cm_map_new (), *ok = NULL;
    if (payload) {
        cm_map_set_str (payload, "key", key);
        cm_map_set_int (payload, "limit", limit);
    }
    int rc = gw_shards_call_on (shards, shard, CM_MSG_RATE_CONSUME, payload, &ok, err);
    if (rc == 0)
        *window = cm_map_int (ok, "window_start", 0);
    cm_value_destroy (&ok);
    return rc;
}

//  Gives one token back; a refund that fails loses the user that token
//  for the rest of the window, nothing more.
static void
s_refund (gw_shards_t *shards, int shard, const char *user, bool regeneration, int64_t window)
{
    char key[CM_USER_MAX + 3];
    s_key (user, regeneration, key, sizeof key);
    cm_value_t *payload = cm_map_new (), *ok = NULL, *err = NULL;
    if (payload) {
        cm_map_set_str (payload, "key", key);
        cm_map_set_int (payload, "window_start", window);
    }
    gw_shards_call_on (shards, shard, CM_MSG_RATE_REFUND, payload, &ok, &err);
    cm_value_destroy (&ok);
    cm_value_destroy (&err);
}

static bool
s_unanswered (int rc)
{
    return rc == CM_EBACKEND || rc == CM_ETIMEOUT;
}

static void
s_drop (cm_value_t *payload, const char *field)
{
    cm_value_t *value = cm_map_take (payload, field);
    cm_value_destroy (&value);
}

int
gw_shard_rate_take (gw_shards_t *shards, cm_msg_t type, cm_value_t *payload,
                    gw_shard_rate_t *taken, cm_value_t **err)
{
    *taken = (gw_shard_rate_t) {.shard = -1};
    *err = NULL;
    int64_t actions = cm_map_int (payload, "rate_limit", 0);
    int64_t regens = gw_shard_rate_regeneration (type, payload)
                         ? cm_map_int (payload, "regen_rate_limit", 0)
                         : 0;
    const char *user = cm_map_str (payload, "user");
    if ((actions <= 0 && regens <= 0) || !user || strlen (user) > CM_USER_MAX)
        return 0;
    snprintf (taken->user, sizeof taken->user, "%s", user);
    int shard = cm_shards_pick (gw_shards_map (shards), user);
    int rc = 0;
    if (actions > 0)
        rc = s_consume (shards, shard, user, false, actions, &taken->actions_window, err);
    if (rc == 0 && regens > 0) {
        rc = s_consume (shards, shard, user, true, regens, &taken->regen_window, err);
        if (rc && taken->actions_window)
            s_refund (shards, shard, user, false, taken->actions_window);
        if (rc)
            taken->actions_window = 0;
    }
    if (s_unanswered (rc)) {
        //  The request keeps its limits: its own shard counts it.
        cm_value_destroy (err);
        *taken = (gw_shard_rate_t) {.shard = -1};
        return 0;
    }
    if (rc)
        return rc;
    taken->shard = shard;
    s_drop (payload, "rate_limit");
    s_drop (payload, "regen_rate_limit");
    return 0;
}

void
gw_shard_rate_settle (gw_shards_t *shards, gw_shard_rate_t *taken, int rc, const cm_value_t *ok)
{
    if (taken->shard < 0)
        return;
    bool nothing_done = (rc != 0 && rc != CM_ETIMEOUT && rc != CM_EPROTO)
                        || (rc == 0 && cm_map_bool (ok, "replayed", false));
    bool no_regeneration
        = rc == 0 && cm_map_get (cm_map_get (ok, "data"), "triggered_regeneration")
          && !cm_map_bool (cm_map_get (ok, "data"), "triggered_regeneration", true);
    if (nothing_done && taken->actions_window)
        s_refund (shards, taken->shard, taken->user, false, taken->actions_window);
    if ((nothing_done || no_regeneration) && taken->regen_window)
        s_refund (shards, taken->shard, taken->user, true, taken->regen_window);
    taken->shard = -1;
}
