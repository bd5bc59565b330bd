/*  st_chain.h: the audit log's hash chain.

    Every audit record (st_rows_audit_end) carries prev_hash, the SHA-256
    of the entry before it in key order, where an entry's hash is
    SHA-256(audit key || record bytes) (the record as stored, inside its
    checksum envelope, prev_hash included). The head record (the
    audit_chain db, key "head", 88 bytes, below) holds the hash of the
    newest entry, so removing entries from the end shows too, and the
    anchor: the hash of the newest entry upkeep expired (zero before any),
    which the oldest remaining entry's prev_hash must equal, so expiry
    keeps the chain whole while removing entries from its start shows.

      head  anchor(32) last(32) count(u64 BE) last_ms(u64 BE) last_seq(u64 BE)
            last = anchor while count is 0.

    Entries written before the chain (a store of format 2) have no
    prev_hash: they are counted as unchained while they precede the first
    chained one; one after it is a break. The checksum envelope guards
    against damage, the chain against edits: whoever rewrites a record
    with a valid envelope still breaks the link to the next entry.     */
#ifndef ST_CHAIN_H_INCLUDED
#define ST_CHAIN_H_INCLUDED

#include <lmdb.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define ST_CHAIN_HASH 32
#define ST_CHAIN_HEAD_BYTES 88
#define ST_CHAIN_HEAD_KEY "head"

typedef struct {
    unsigned char anchor[ST_CHAIN_HASH];
    unsigned char last[ST_CHAIN_HASH];
    uint64_t count;    //  chained entries in the log
    int64_t last_ms;   //  the newest entry's key: a new one sorts after it
    uint64_t last_seq;
} st_chain_head_t;

//  SHA-256 of key || record.
void st_chain_hash (const void *key, size_t key_len, const void *record, size_t size,
                    unsigned char *out);

//  The head record from its bytes / into 88 bytes. 0 or CM_ECORRUPT.
int st_chain_head_read (const void *data, size_t size, st_chain_head_t *head);
void st_chain_head_write (const st_chain_head_t *head, unsigned char *out);

//  The verdict of a walk.
typedef struct {
    bool sound;
    uint64_t entries;  //  chained entries walked
    uint64_t unchained; //  entries from before the chain
    //  When not sound: the position (1 = oldest) and id of the first
    //  entry whose link is broken, the id of the one before it ("" for
    //  none) and why.
    uint64_t index;
    char id[80];
    char previous_id[80];
    char why[200];
} st_chain_report_t;

//  Walks the audit db (its handle: audit) against the head in the
//  audit_chain db (chain) in txn. 0 with *report filled (sound or not),
//  or CM_EDB when LMDB fails.
int st_chain_verify (MDB_txn *txn, MDB_dbi audit, MDB_dbi chain, st_chain_report_t *report);

//  `chatmesh-store --verify-audit DIR`: opens DIR read-only (beside a
//  live store is fine), runs st_chain_verify and prints the verdict to
//  out. 0 when the chain is sound, CM_ECORRUPT when a link is broken,
//  CM_EDB when the store cannot be opened (reason printed).
int st_chain_verify_path (const char *dir, FILE *out, st_chain_report_t *report);

#endif
