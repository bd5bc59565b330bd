/*  st_verify.h: checks every record of a store against its checksum.

    Used by `chatmesh-store --verify DIR` and by every backup (st_db_backup
    verifies its copy before it is renamed into place). Read-only: it never
    writes to the environment it scans, so it may run beside a live store.

    A record is damaged when its checksum envelope does not match
    (st_record.h), when a record that must be a msgpack map does not decode
    or a fixed-size one has the wrong size, or when LMDB cannot read on
    from it (a damaged page: the rest of that db is counted as one damage).
    A record written before the envelope existed is "legacy": counted, not
    damage.                                                                */
#ifndef ST_VERIFY_H_INCLUDED
#define ST_VERIFY_H_INCLUDED

#include <lmdb.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

typedef struct {
    uint64_t records; //  scanned, in all dbs
    uint64_t legacy;  //  of them without a checksum envelope
    uint64_t damaged; //  damaged records, plus dbs missing or unreadable
} st_verify_counts_t;

//  Scans every db of the store in txn (read-only, from an environment
//  opened with at least ST_DBI_COUNT named dbs). Prints one line per
//  damage to out (NULL: silent), adds to *counts. 0 when nothing is
//  damaged, else CM_ECORRUPT.
int st_verify_txn (MDB_txn *txn, FILE *out, st_verify_counts_t *counts);

//  Opens path read-only (a store directory, or with is_file its data file
//  alone, opened without a lock file) and runs st_verify_txn, then prints
//  a summary line to out. It first checks the file is as long as its meta
//  page says (a cut file would fault mid-scan). 0 when every record is
//  sound, CM_ECORRUPT when something is damaged, CM_EDB when the store
//  cannot be opened (reason printed to out).
int st_verify_path (const char *path, bool is_file, FILE *out, st_verify_counts_t *counts);

#endif
