/*  st_membership.c: the cluster_change request (st_membership.h).  */
#include "st_membership.h"

#include "cm_error.h"
#include "cm_log.h"
#include "cm_msg.h"

#include <stdio.h>
#include <string.h>

cm_envelope_t *
st_membership_serve (st_raft_t *raft, const cm_envelope_t *request)
{
    char why[256];
    if (cm_msg_validate (request->type, request->payload, why, sizeof why))
        return cm_envelope_reply_error (request, CM_EPROTO, why);
    const cm_value_t *op_value = cm_map_get (request->payload, "op");
    const cm_value_t *address_value = cm_map_get (request->payload, "raft_address");
    int64_t id = cm_map_int (request->payload, "id", 0);
    const char *address
        = address_value && address_value->type == CM_T_STR ? address_value->u.s.ptr : NULL;
    bool add = strcmp (op_value->u.s.ptr, "add") == 0;
    if (!add && strcmp (op_value->u.s.ptr, "remove") != 0)
        return cm_envelope_reply_error (request, CM_EINVAL, "op must be \"add\" or \"remove\"");
    if (id <= 0)
        return cm_envelope_reply_error (request, CM_EINVAL, "id must be 1 or more");
    if (!add && address)
        return cm_envelope_reply_error (request, CM_EINVAL, "remove takes no raft_address");
    int rc = st_raft_change (raft, add ? ST_RAFT_ADD : ST_RAFT_REMOVE, (uint64_t) id, address,
                             ST_MEMBERSHIP_WAIT_MS, why, sizeof why);
    if (rc) {
        cm_warning ("cluster_change %s %lld: %s", op_value->u.s.ptr, (long long) id, why);
        return cm_envelope_reply_error (request, rc, why);
    }
    cm_notice ("cluster_change: node %lld %s", (long long) id, add ? "added as a voter" : "removed");
    cm_value_t *ok = cm_map_new ();
    cm_map_set_str (ok, "op", op_value->u.s.ptr);
    cm_map_set_int (ok, "id", id);
    return cm_envelope_reply_ok (request, ok);
}
