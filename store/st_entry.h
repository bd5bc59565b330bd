/*  st_entry.h: one Raft log entry of the replicated store, encoded and
    decoded. An entry is what the writer would have committed in one LMDB
    txn without replication: a batch (write requests plus the task_claim
    long-polls parked with them, st_ops_write_batch_claims) or the
    periodic upkeep (st_ops_cleanup), with the leader-local inputs every
    replica must apply identically: the leader's wall clock and a seed for
    the ids minted while it applies (st_det.h). origin (the proposing
    node's id) and the seed let the proposer tell its own entry when it
    comes back committed (st_fsm.h).

    Layout (integers big-endian), so a batch is not limited by one msgpack
    value's 8 MiB:
      "CMRE" version(1)=1 kind(1) 0(2) now_ms(8) origin(8) seed(16)
      n(4) m(4), then n requests and m claims, each len(4) + an envelope
      as cm_envelope_encode makes it, then zero bytes up to a multiple of
      ST_ENTRY_ALIGN: raft 0.15's on-disk log assumes every entry's length
      is a multiple of 8, and an entry of another length reads back from
      disk at the wrong offset (canonical/raft issues 180 and 304; seen
      here as garbage applied by followers of a restarted leader).
    Limits: n and m each <= ST_ENTRY_ITEMS_MAX, each envelope <=
    CM_MAX_MESSAGE_BYTES. Decoding refuses anything else with CM_EPROTO
    and a reason (bad magic or version, unknown kind, a length past the
    end, trailing bytes other than the padding, an envelope that does not decode), never reading
    past size. Only batches carry requests; an upkeep entry has none.    */
#ifndef ST_ENTRY_H_INCLUDED
#define ST_ENTRY_H_INCLUDED

#include "cm_codec.h"
#include "st_det.h"

#include <stddef.h>
#include <stdint.h>

#define ST_ENTRY_ITEMS_MAX 256
#define ST_ENTRY_HEADER 48
#define ST_ENTRY_ALIGN 8

typedef enum { ST_ENTRY_BATCH = 1, ST_ENTRY_UPKEEP = 2 } st_entry_kind_t;

typedef struct {
    st_entry_kind_t kind;
    int64_t now_ms;
    uint64_t origin;
    unsigned char seed[ST_DET_SEED_BYTES];
    cm_envelope_t **requests; //  n, owned (decode) or borrowed (encode)
    size_t n;
    cm_envelope_t **claims;   //  m, likewise
    size_t m;
} st_entry_t;

//  The entry into a new malloc'd buffer (*data, *size; caller frees).
//  0, CM_EINVAL (a kind/count the layout refuses), CM_ETOOBIG (an
//  envelope past CM_MAX_MESSAGE_BYTES) or CM_ENOMEM.
int st_entry_encode (const st_entry_t *entry, char **data, size_t *size);
//  Decodes size bytes into *entry (its envelopes owned: st_entry_clear).
//  0, CM_EPROTO (why says what) or CM_ENOMEM.
int st_entry_decode (const void *data, size_t size, st_entry_t *entry, char *why,
                     size_t why_size);
//  Frees a decoded entry's envelopes and arrays.
void st_entry_clear (st_entry_t *entry);

#endif
