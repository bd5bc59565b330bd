/*  st_reads.c: which node serves a read (st_reads.h).  */
#include "st_reads.h"

#include "cm_error.h"
#include "cm_leader.h"

#include <stdio.h>

int
st_reads_check (bool leader, uint64_t applied, const cm_envelope_t *request, char *why,
                size_t why_size)
{
    const cm_value_t *min = cm_map_get (request->payload, CM_LEADER_MIN_FIELD);
    bool present = min && min->type != CM_T_NIL;
    if (present && (min->type != CM_T_INT || min->u.i < 0)) {
        snprintf (why, why_size, "field '%s' must be a non-negative integer",
                  CM_LEADER_MIN_FIELD);
        return CM_EPROTO;
    }
    if (leader)
        return 0;
    if (!present || (uint64_t) min->u.i > applied)
        return CM_ENOTLEADER;
    return 0;
}

void
st_reads_stamp (cm_envelope_t *reply, uint64_t index)
{
    if (reply && reply->type == CM_MSG_OK && reply->payload && index > 0)
        cm_map_set_int (reply->payload, CM_LEADER_APPLIED_FIELD, (int64_t) index);
}
