/*  gw_head.h: the strict check of an HTTP/1.x request head.

    A pure function over the bytes received so far (no sockets): the
    vestibule (gw_accept.h) peeks at a new connection's bytes and calls
    gw_head_check until it says COMPLETE or REJECT. Only a COMPLETE head
    reaches civetweb, so everything civetweb would read ambiguously is
    refused here (RFC 9112 sections 2-6, docs/api.md "Security"):
    - lines end in CRLF: a bare LF or a bare CR is refused;
    - request line: method SP target SP version, single spaces; the target
      is origin-form ("/path?query") or "*" for OPTIONS; absolute-form
      ("http://host/path") and authority-form are refused with their own
      sentence; versions other than HTTP/1.0 and HTTP/1.1 get 505;
    - a field line is name ":" OWS value OWS: the name is token characters
      (so whitespace before the colon is refused), the value has no
      control characters; a line starting with SP or HTAB (obs-fold) is
      refused;
    - Content-Length is 1-18 digits (no sign, no hex, nothing after);
      repeats must carry the same value; Transfer-Encoding is exactly
      "chunked", at most once, never with Content-Length, never in
      HTTP/1.0 (501 for another coding);
    - HTTP/1.1 needs exactly one Host, HTTP/1.0 at most one;
    - at most GW_HEAD_FIELDS_MAX field lines and GW_HEAD_MAX bytes up to
      and including the empty line (431 otherwise).
    A head is refused as soon as its bytes so far are wrong, without
    waiting for the rest.                                                 */
#ifndef GW_HEAD_H
#define GW_HEAD_H

#include <stdbool.h>
#include <stddef.h>

#define GW_HEAD_MAX 16384
#define GW_HEAD_FIELDS_MAX 64

typedef enum {
    GW_HEAD_INCOMPLETE, //  nothing wrong so far: wait for more bytes
    GW_HEAD_COMPLETE,   //  a valid head: head_len bytes long
    GW_HEAD_REJECT,     //  status, code and error say why
} gw_head_state_t;

typedef struct {
    size_t head_len;   //  COMPLETE: bytes up to and including the empty line
    bool chunked;      //  COMPLETE: the body is chunked (gw_chunked.h)
    int status;        //  REJECT: 400, 431, 501 or 505
    const char *code;  //  REJECT: the JSON "code" (static string)
    const char *error; //  REJECT: the JSON "error" sentence (static string)
} gw_head_t;

//  Checks the first len bytes a client sent. Fills *head, returns its state.
gw_head_state_t gw_head_check (const char *data, size_t len, gw_head_t *head);

#endif
