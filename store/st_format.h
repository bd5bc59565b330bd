/*  st_format.h: what the store checks in its directory before and right
    after LMDB opens it, so that a damaged or missing file is refused at
    start (naming the file) instead of crashing the store or being
    silently re-created as an empty store.

    The identity file DIR/chatmesh-store.format is written once, when the
    store is created, atomically (temp file, fsync, rename, fsync of the
    directory). It is three text lines:

        chatmesh-store format 1
        id 9f0c...(32 hex digits)
        created_ms 1764000000000

    Its presence says "this directory holds a store": from then on a
    missing or empty data.mdb, or a named database that cannot be found, is
    an error, never a reason to create one (st_format_decide).

    The meta-page check reads LMDB's two meta pages with pread, before
    anything is mapped, and refuses pages that LMDB would trip over later
    (a bad magic, page size or root). The size check compares data.mdb's
    size with the pages the newest meta page says it holds: a shorter file
    would give SIGBUS on the first access beyond its end.

    Errors: 0, CM_ENOTFOUND (no such file), CM_EPROTO (a file that does not
    parse; why says how), CM_EIO (a system call failed; logged).          */
#ifndef ST_FORMAT_H_INCLUDED
#define ST_FORMAT_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ST_FORMAT_FILE "chatmesh-store.format"
//  Format 2 added the versions named database, format 3 idem, audit_chain
//  and counters, format 4 events and event_heads, format 5 trash (deleted
//  records during the undo window); format 6 keeps only "#epoch" in
//  event_heads (a session's counter is its newest event, st_events.h) and
//  has branches (messages tagged with the question version they follow,
//  st_branch.h: an older store's messages are all on the trunk; an older
//  build would show every branch of a session as one conversation). A
//  store of an older format opens: the databases its format lacks are
//  created, its event_heads loses the session heads, and the file says 6
//  after (st_db_open; an older build then refuses it, naming both formats).
#define ST_FORMAT_VERSION 6
#define ST_FORMAT_VERSION_MIN 1
//  Room for any "why" text below.
#define ST_FORMAT_WHY_MAX 256

typedef struct {
    uint32_t version;
    char id[33]; //  32 lowercase hex digits
    int64_t created_ms;
} st_format_t;

//  A new identity: ST_FORMAT_VERSION, a random id, created now. 0 or CM_EIO.
int st_format_new (st_format_t *out);
//  Text of the file into buffer (NUL-terminated); its length, or 0 when
//  size is too small.
size_t st_format_print (const st_format_t *format, char *buffer, size_t size);
//  Parses the text (len bytes, need not be NUL-terminated). 0 or
//  CM_EPROTO; a version outside ST_FORMAT_VERSION_MIN..ST_FORMAT_VERSION
//  is CM_EPROTO too.
int st_format_parse (const char *text, size_t len, st_format_t *out, char *why, size_t why_size);
//  Reads DIR/chatmesh-store.format. 0, CM_ENOTFOUND, CM_EPROTO, CM_EIO.
int st_format_read (const char *dir, st_format_t *out, char *why, size_t why_size);
//  Writes DIR/chatmesh-store.format atomically. 0 or CM_EIO (logged).
int st_format_write (const char *dir, const st_format_t *format);

//  What to do with a directory, from whether the format file exists and
//  data.mdb's size (-1: data.mdb does not exist).
typedef enum {
    ST_OPEN_NEW,        //  neither exists: create the store
    ST_OPEN_EXISTING,   //  both: open, creating nothing
    ST_OPEN_MIGRATE,    //  data.mdb without a format file (an earlier version)
    ST_OPEN_NO_DATA,    //  format file, data.mdb missing: refuse
    ST_OPEN_EMPTY_DATA, //  data.mdb of 0 bytes (with or without format): refuse
} st_open_kind_t;

st_open_kind_t st_format_decide (bool format_present, int64_t data_bytes);

//  The newest valid meta page of data.mdb, as LMDB will pick it.
typedef struct {
    uint64_t txnid;
    uint64_t last_pgno;
    uint32_t page_size;
} st_meta_t;

//  Checks LMDB's two meta pages in buffer (the first len bytes of
//  data.mdb; at least two pages are needed). 0 with *out set, or
//  CM_EPROTO with why naming the damaged page.
int st_format_meta_parse (const unsigned char *buffer, size_t len, st_meta_t *out, char *why,
                          size_t why_size);
//  Reads the meta pages of the file at path and checks them as above.
//  0, CM_EPROTO (why says what is wrong) or CM_EIO.
int st_format_meta_read (const char *path, st_meta_t *out, char *why, size_t why_size);

//  0 when a data file of file_bytes holds the last_pgno + 1 pages of
//  page_size bytes its meta page claims; CM_EPROTO with why giving both
//  sizes otherwise.
int st_format_check_size (uint64_t file_bytes, uint64_t last_pgno, uint32_t page_size, char *why,
                          size_t why_size);

#endif
