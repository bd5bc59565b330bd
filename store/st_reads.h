/*  st_reads.h: which node of a replicated store serves a read, and the
    applied Raft index replies carry (docs/protocol.md, "Following the
    leader"; the caller's half is proto/cm_leader.h).

    Read-your-writes from any node: a write's OK reply carries
    "applied_index", the Raft index of the entry that applied it; a
    caller that reads from any node (CHATMESH_STORE_READS=any) sends that
    index back as the read's "min_index". A node whose LMDB has applied
    min_index has every write the caller was told about, so it may serve
    the read; one behind refuses it (CM_ENOTLEADER, naming the leader, so
    the read follows the hint). The leader serves every read.

    The opt-in is the request's: a read WITHOUT min_index is the leader's
    only. A caller reading from the leader (CHATMESH_STORE_READS=leader,
    which promises read-your-writes across gateways) never sends one, so
    no store setting can make a follower answer it with older data. A
    caller reading from any node sends min_index = 0 before it has seen a
    write.

    Read replies carry no index: the caller's min_index then follows its
    own writes only, not the newest data a leader's read showed it, so a
    follower a few entries behind still serves it (read-your-writes, not
    monotonic reads across nodes).

    Pure functions, no sockets: st_server.c calls them on its main thread
    (st_reads_check, before handing the read to a reader) and st_raft.c
    (st_reads_stamp, on a committed write's OK replies).             */
#ifndef ST_READS_H_INCLUDED
#define ST_READS_H_INCLUDED

#include "cm_codec.h"

#include <stdbool.h>
#include <stdint.h>

//  May this node serve request (a READ type other than ping)? leader:
//  whether it leads; applied: its applied index, read BEFORE the read's
//  txn begins (the txn then sees at least that much). 0: serve it;
//  CM_ENOTLEADER: refuse it (no min_index and not the leader, or
//  min_index > applied); CM_EPROTO: min_index is not a non-negative
//  integer (why gets the reason; the caller answers it as an error).
int st_reads_check (bool leader, uint64_t applied, const cm_envelope_t *request, char *why,
                    size_t why_size);

//  Sets "applied_index" = index on an OK reply's payload (nothing for an
//  error reply, a NULL reply or index 0).
void st_reads_stamp (cm_envelope_t *reply, uint64_t index);

#endif
