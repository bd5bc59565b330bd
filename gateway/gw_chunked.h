/*  gw_chunked.h: the strict check of a chunked request body, in a stream.

    civetweb 1.15 reads a chunked body itself and refuses a chunk
    extension ("5;name=value", RFC 9112 7.1.1): it wants hex digits and
    CRLF alone. So the bytes civetweb receives after a chunked head go
    through this filter first (gw_recv.h): it checks each chunk line and
    removes what civetweb cannot read, and nothing else.
    - a chunk-size is 1 to GW_CHUNKED_DIGITS_MAX hex digits (no sign, no
      "0x"), followed by CRLF or by chunk extensions and then CRLF;
    - chunk extensions are BWS ";" and then anything but control
      characters (HTAB allowed) up to the CR. They are removed, with the
      whitespace before them: RFC 9112 says a recipient ignores an
      extension it does not understand, and the gateway understands none;
    - chunk data is passed on as it is, and must be followed by CRLF;
    - after the last chunk ("0" CRLF) everything is passed on as it is:
      the trailer section is civetweb's to read.
    A malformed byte makes the filter fail, at once and for good.
    A pure state machine over the bytes (no sockets, no allocation). */
#ifndef GW_CHUNKED_H
#define GW_CHUNKED_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

//  15 hex digits: a size below 2^60, far above any body limit, and no
//  overflow in the count.
#define GW_CHUNKED_DIGITS_MAX 15
//  Stands for a malformed byte (gw_chunked_filter): neither a hex digit,
//  nor CR, nor LF.
#define GW_CHUNKED_REFUSED 'x'

typedef enum {
    GW_CHUNKED_HEAD,     //  passing the request head on
    GW_CHUNKED_SIZE,     //  in the hex digits of a chunk-size
    GW_CHUNKED_EXT,      //  after the digits: BWS, extensions (removed)
    GW_CHUNKED_SIZE_LF,  //  the LF after a chunk line's CR
    GW_CHUNKED_DATA,     //  in a chunk's data
    GW_CHUNKED_DATA_CR,  //  the CR after a chunk's data
    GW_CHUNKED_DATA_LF,  //  the LF after a chunk's data
    GW_CHUNKED_DONE,     //  after the last chunk: everything passes
    GW_CHUNKED_FAILED,   //  a malformed byte was seen
} gw_chunked_phase_t;

typedef struct {
    gw_chunked_phase_t phase;
    uint64_t remaining; //  HEAD: head bytes left; DATA: data bytes left
    uint64_t size;      //  SIZE, EXT, SIZE_LF: the chunk-size so far
    int digits;         //  SIZE: digits so far
    bool extension;     //  EXT: the ';' was seen
} gw_chunked_t;

//  A filter for a connection whose first head_len bytes are its request
//  head (passed on as they are).
void gw_chunked_init (gw_chunked_t *filter, size_t head_len);

//  Filters the next len bytes of the connection in place. Returns the
//  number of bytes kept at the front of data (at most len, 0 when every
//  byte was an extension's), or -1 once the body was found malformed.
//  The call that finds a malformed byte keeps the good bytes before it and
//  puts GW_CHUNKED_REFUSED in its place, the last byte kept: civetweb
//  refuses that byte wherever a malformed one can be (in a chunk line,
//  or where a chunk's CRLF belongs) without reading any further, so the
//  request head reaches civetweb and the gateway answers the error.
long gw_chunked_filter (gw_chunked_t *filter, char *data, size_t len);

//  True once the last chunk's line is through: no byte after it changes.
bool gw_chunked_done (const gw_chunked_t *filter);
//  True once a malformed byte was seen.
bool gw_chunked_failed (const gw_chunked_t *filter);

#endif
