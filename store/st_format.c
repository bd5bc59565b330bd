#include "st_format.h"

#include "cm_error.h"
#include "cm_log.h"
#include "cm_time.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

int
st_format_new (st_format_t *out)
{
    unsigned char bytes[16];
    if (getrandom (bytes, sizeof bytes, 0) != (ssize_t) sizeof bytes) {
        cm_error ("store id: getrandom failed: %s", strerror (errno));
        return CM_EIO;
    }
    out->version = ST_FORMAT_VERSION;
    for (size_t i = 0; i < sizeof bytes; i++)
        snprintf (out->id + 2 * i, 3, "%02x", bytes[i]);
    out->created_ms = cm_now_ms ();
    return 0;
}

size_t
st_format_print (const st_format_t *format, char *buffer, size_t size)
{
    int len = snprintf (buffer, size, "chatmesh-store format %" PRIu32 "\nid %s\ncreated_ms %" PRId64 "\n",
                        format->version, format->id, format->created_ms);
    return len > 0 && (size_t) len < size ? (size_t) len : 0;
}

static int
s_why (char *why, size_t why_size, const char *text)
{
    snprintf (why, why_size, "%s", text);
    return CM_EPROTO;
}

int
st_format_parse (const char *text, size_t len, st_format_t *out, char *why, size_t why_size)
{
    char copy[256];
    if (len >= sizeof copy)
        return s_why (why, why_size, "longer than 255 bytes");
    memcpy (copy, text, len);
    copy[len] = 0;
    if (strlen (copy) != len)
        return s_why (why, why_size, "holds a NUL byte");
    st_format_t format = {0};
    char id[64];
    int64_t created;
    unsigned version;
    int end = 0;
    if (sscanf (copy, "chatmesh-store format %u\nid %63[0-9a-f]\ncreated_ms %" SCNd64 "\n%n",
                &version, id, &created, &end)
            != 3
        || (size_t) end != len)
        return s_why (why, why_size,
                      "is not three lines 'chatmesh-store format N', 'id HEX', 'created_ms MS'");
    if (version < ST_FORMAT_VERSION_MIN || version > ST_FORMAT_VERSION) {
        snprintf (why, why_size, "says format %u; this build knows formats %d to %d", version,
                  ST_FORMAT_VERSION_MIN, ST_FORMAT_VERSION);
        return CM_EPROTO;
    }
    if (strlen (id) != 32)
        return s_why (why, why_size, "has an id that is not 32 hex digits");
    format.version = version;
    memcpy (format.id, id, 33);
    format.created_ms = created;
    *out = format;
    return 0;
}

int
st_format_read (const char *dir, st_format_t *out, char *why, size_t why_size)
{
    char path[4300];
    snprintf (path, sizeof path, "%s/%s", dir, ST_FORMAT_FILE);
    int fd = open (path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT)
            return CM_ENOTFOUND;
        cm_error ("cannot open %s: %s", path, strerror (errno));
        return CM_EIO;
    }
    char text[256];
    ssize_t len = read (fd, text, sizeof text);
    int err = errno;
    close (fd);
    if (len < 0) {
        cm_error ("cannot read %s: %s", path, strerror (err));
        return CM_EIO;
    }
    return st_format_parse (text, (size_t) len, out, why, why_size);
}

int
st_format_write (const char *dir, const st_format_t *format)
{
    char path[4300], temp[4310], text[256];
    snprintf (path, sizeof path, "%s/%s", dir, ST_FORMAT_FILE);
    snprintf (temp, sizeof temp, "%s.tmp", path);
    size_t len = st_format_print (format, text, sizeof text);
    int fd = open (temp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    const char *step = "create";
    if (fd >= 0) {
        step = "write";
        bool ok = write (fd, text, len) == (ssize_t) len;
        if (ok) {
            step = "fsync";
            ok = fsync (fd) == 0;
        }
        int err = errno;
        close (fd);
        errno = err;
        if (ok) {
            step = "rename";
            ok = rename (temp, path) == 0;
        }
        if (ok) {
            //  The rename is durable only once the directory is flushed.
            step = "fsync the directory of";
            int dir_fd = open (dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
            ok = dir_fd >= 0 && fsync (dir_fd) == 0;
            err = errno;
            if (dir_fd >= 0)
                close (dir_fd);
            errno = err;
            if (ok)
                return 0;
        }
        err = errno;
        unlink (temp);
        errno = err;
    }
    cm_error ("cannot %s %s: %s", step, path, strerror (errno));
    return CM_EIO;
}

st_open_kind_t
st_format_decide (bool format_present, int64_t data_bytes)
{
    if (data_bytes == 0)
        return ST_OPEN_EMPTY_DATA;
    if (format_present)
        return data_bytes < 0 ? ST_OPEN_NO_DATA : ST_OPEN_EXISTING;
    return data_bytes < 0 ? ST_OPEN_NEW : ST_OPEN_MIGRATE;
}

//  LMDB 0.9's meta page (lmdb's mdb.c, MDB_page and MDB_meta, 64-bit):
//  a 16-byte page header (flags at 10), then magic, version, address,
//  mapsize, the free and main MDB_db (48 bytes each: the free one's first
//  u32 is the page size, each one's root at 40), last page, txnid.
#define S_PAGE_FLAGS 10
#define S_P_META 0x08
#define S_MAGIC 16
#define S_VERSION 20
#define S_FREE_DB 40
#define S_MAIN_DB 88
#define S_DB_ROOT 40
#define S_LAST_PG 136
#define S_TXNID 144
#define S_META_END 152
#define S_MDB_MAGIC 0xBEEFC0DEu
#define S_MDB_DATA_VERSION 1u
#define S_P_INVALID UINT64_MAX

static uint64_t
s_u64 (const unsigned char *at)
{
    uint64_t value;
    memcpy (&value, at, sizeof value);
    return value;
}

static uint32_t
s_u32 (const unsigned char *at)
{
    uint32_t value;
    memcpy (&value, at, sizeof value);
    return value;
}

static uint16_t
s_u16 (const unsigned char *at)
{
    uint16_t value;
    memcpy (&value, at, sizeof value);
    return value;
}

//  Checks one meta page; NULL or what is wrong with it.
static const char *
s_meta_check (const unsigned char *page, uint32_t page_size)
{
    if (!(s_u16 (page + S_PAGE_FLAGS) & S_P_META))
        return "is not a meta page";
    if (s_u32 (page + S_MAGIC) != S_MDB_MAGIC)
        return "has a wrong magic number";
    if (s_u32 (page + S_VERSION) != S_MDB_DATA_VERSION)
        return "has an unknown LMDB data version";
    if (s_u32 (page + S_FREE_DB) != page_size)
        return "disagrees with meta page 0 on the page size";
    uint64_t last = s_u64 (page + S_LAST_PG);
    if (last < 1)
        return "has a last page number below 1";
    uint64_t free_root = s_u64 (page + S_FREE_DB + S_DB_ROOT);
    uint64_t main_root = s_u64 (page + S_MAIN_DB + S_DB_ROOT);
    if ((free_root != S_P_INVALID && (free_root < 2 || free_root > last))
        || (main_root != S_P_INVALID && (main_root < 2 || main_root > last)))
        return "has a root page outside the file's pages";
    return NULL;
}

int
st_format_meta_parse (const unsigned char *buffer, size_t len, st_meta_t *out, char *why,
                      size_t why_size)
{
    if (len < S_META_END)
        return s_why (why, why_size, "is too short to hold LMDB's meta pages");
    uint32_t page_size = s_u32 (buffer + S_FREE_DB);
    if (page_size < 512 || page_size > 65536 || (page_size & (page_size - 1)))
        return s_why (why, why_size, "meta page 0 has no valid page size");
    if (len < (size_t) page_size + S_META_END)
        return s_why (why, why_size, "is too short to hold LMDB's two meta pages");
    uint64_t txnids[2];
    for (int i = 0; i < 2; i++) {
        const unsigned char *page = buffer + (size_t) i * page_size;
        const char *wrong = s_meta_check (page, page_size);
        if (wrong) {
            snprintf (why, why_size, "meta page %d %s", i, wrong);
            return CM_EPROTO;
        }
        txnids[i] = s_u64 (page + S_TXNID);
    }
    //  As LMDB picks it: the meta page with the larger txnid.
    const unsigned char *newest = buffer + (txnids[1] > txnids[0] ? page_size : 0);
    out->txnid = s_u64 (newest + S_TXNID);
    out->last_pgno = s_u64 (newest + S_LAST_PG);
    out->page_size = page_size;
    return 0;
}

int
st_format_meta_read (const char *path, st_meta_t *out, char *why, size_t why_size)
{
    int fd = open (path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        cm_error ("cannot open %s: %s", path, strerror (errno));
        return CM_EIO;
    }
    //  Two pages of the largest page size LMDB uses.
    size_t size = 2 * 65536;
    unsigned char *buffer = malloc (size);
    ssize_t len = buffer ? pread (fd, buffer, size, 0) : -1;
    int err = errno;
    close (fd);
    int rc;
    if (len < 0) {
        cm_error ("cannot read %s: %s", path, strerror (err));
        rc = CM_EIO;
    }
    else
        rc = st_format_meta_parse (buffer, (size_t) len, out, why, why_size);
    free (buffer);
    return rc;
}

int
st_format_check_size (uint64_t file_bytes, uint64_t last_pgno, uint32_t page_size, char *why,
                      size_t why_size)
{
    //  last_pgno comes from a file: bound it before multiplying.
    uint64_t pages = last_pgno + 1;
    if (last_pgno >= UINT64_MAX / 65536 || pages * page_size > file_bytes) {
        snprintf (why, why_size,
                  "is %" PRIu64 " bytes, but its meta page says it holds %" PRIu64
                  " pages of %" PRIu32 " bytes (%" PRIu64 " bytes): it was truncated",
                  file_bytes, pages, page_size,
                  last_pgno >= UINT64_MAX / 65536 ? UINT64_MAX : pages * page_size);
        return CM_EPROTO;
    }
    return 0;
}
