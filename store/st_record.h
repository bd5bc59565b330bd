/*  st_record.h: the checksum envelope around every value stored in LMDB.

    LMDB checks nothing of what it stores, so a flipped bit in a data page
    would be served as data. Every value the store writes is therefore

        0xC7  crc32c (4 bytes, big-endian)  payload

    where the CRC covers the key followed by the payload (a value moved under
    another key fails too) and payload is what the record layouts in st_db.h
    describe. 0xC7 cannot start any value written before the envelope
    existed: those were msgpack maps (0x80-0x8f, 0xde, 0xdf), rate buckets
    (0xC1), vote counts (a u64 BE count: 0x00), ids (ASCII) or empty. Such
    a legacy value is served as it is and gets its envelope the next time
    its key is written; `chatmesh-store --verify` counts them
    (docs/store.md, "Checksums").                                          */
#ifndef ST_RECORD_H_INCLUDED
#define ST_RECORD_H_INCLUDED

#include <stddef.h>
#include <stdint.h>

#define ST_RECORD_MAGIC 0xC7
#define ST_RECORD_HEADER 5

typedef enum {
    ST_RECORD_OK,       //  envelope present, CRC matches
    ST_RECORD_LEGACY,   //  written before the envelope: no checksum to check
    ST_RECORD_SHORT,    //  starts with the magic but is shorter than a header
    ST_RECORD_BAD_CRC,  //  the CRC does not match key + payload
} st_record_state_t;

//  Writes the ST_RECORD_HEADER bytes that go before payload under key.
void st_record_seal (unsigned char *header, const void *key, size_t key_len,
                     const void *payload, size_t payload_len);

//  Checks a stored value. On OK or LEGACY sets *payload / *payload_len
//  (pointing into value: borrowed like the value); otherwise leaves them.
st_record_state_t st_record_open (const void *key, size_t key_len, const void *value,
                                  size_t value_len, const void **payload, size_t *payload_len);

//  "checksum mismatch", ...: static text for a state.
const char *st_record_state_text (st_record_state_t state);

//  The key as printable text for logs and reports: printable ASCII as is,
//  a backslash doubled, every other byte \xHH; cut with "..." to fit cap
//  (cap >= 8). Returns out.
char *st_record_key_text (const void *key, size_t key_len, char *out, size_t cap);

#endif
