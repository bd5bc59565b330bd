/*  gw_idem.c: the Idempotency-Key header (gw_idem.h).  */
#include "gw_idem.h"

#include "cm_error.h"
#include "cm_msg.h"
#include "gw_errors.h"

#include <stdio.h>
#include <string.h>

int
gw_idem_take (const char *header, cm_value_t *payload, gw_verdict_t *verdict)
{
    if (!header)
        return 0;
    size_t len = strlen (header);
    bool visible = true;
    for (size_t i = 0; i < len && visible; i++)
        visible = header[i] >= 0x21 && header[i] <= 0x7e;
    if (len == 0 || len > CM_IDEM_KEY_MAX || !visible) {
        const gw_http_error_info_t *info = gw_http_error_info (GW_E_INVALID_IDEMPOTENCY_KEY);
        verdict->status = info->status;
        verdict->code = info->code;
        snprintf (verdict->error, sizeof verdict->error,
                  "%s must be 1 to %d visible ASCII characters (no spaces), e.g. a UUID.",
                  GW_IDEM_HEADER, CM_IDEM_KEY_MAX);
        return CM_EINVAL;
    }
    return cm_map_set_str (payload, "idem_key", header) ? CM_ENOMEM : 0;
}

bool
gw_idem_replayed (cm_value_t *ok)
{
    cm_value_t *mark = ok ? cm_map_take (ok, "replayed") : NULL;
    bool replayed = mark && mark->type == CM_T_BOOL && mark->u.b;
    cm_value_destroy (&mark);
    return replayed;
}
