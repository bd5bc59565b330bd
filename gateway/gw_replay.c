/*  gw_replay.c: broadcaster history, then the store's log (gw_replay.h).  */
#include "gw_replay.h"

int
gw_replay_fill (gw_replay_source_fn ask, void *arg, const char *after, cm_value_t **payload,
                bool *from_store)
{
    bool stored = false;
    *payload = NULL;
    int rc = ask (arg, false, after, payload);
    bool covered = rc == 0 && *payload && cm_map_bool (*payload, "complete", false);
    if (!covered && after && *after) {
        cm_value_t *logged = NULL;
        if (ask (arg, true, after, &logged) == 0 && logged) {
            cm_value_destroy (payload);
            *payload = logged;
            stored = true;
            rc = 0;
        }
        else
            cm_value_destroy (&logged);
    }
    if (from_store)
        *from_store = stored;
    return rc;
}
