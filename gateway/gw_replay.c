/*  gw_replay.c: broadcaster history, then the store's log (gw_replay.h).  */
#include "gw_replay.h"

#include "cm_ids.h"

//  Whether answer's events reach the one just before until (same epoch,
//  seq >= until's - 1), or after already does. True when until is not
//  given or does not parse (nothing to check against).
static bool
s_reaches (const cm_value_t *answer, const char *after, const char *until)
{
    cm_event_id_t want, last;
    if (!until || !*until || cm_event_id_parse (until, &want) || want.seq == 0)
        return true;
    const char *newest = after;
    const cm_value_t *events = cm_map_get (answer, "events");
    size_t count = events && events->type == CM_T_ARR ? cm_value_len (events) : 0;
    if (count)
        newest = cm_map_str_or (cm_arr_at (events, count - 1), "id", "");
    return newest && cm_event_id_parse (newest, &last) == 0 && last.epoch == want.epoch
           && last.seq + 1 >= want.seq;
}

int
gw_replay_fill (gw_replay_source_fn ask, void *arg, const char *after, const char *until,
                cm_value_t **payload, bool *from_store)
{
    bool stored = false;
    *payload = NULL;
    int rc = ask (arg, false, after, payload);
    bool covered = rc == 0 && *payload && cm_map_bool (*payload, "complete", false)
                   && s_reaches (*payload, after, until);
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
