#include "cm_codec.h"
#include "cm_error.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

cm_envelope_t *
cm_envelope_new (cm_msg_t type, const char *request_id)
{
    cm_envelope_t *self = calloc (1, sizeof *self);
    if (!self)
        return NULL;
    self->type = type;
    if (request_id) { //  copied by hand: snprintf cost ~600 instructions per reply
        size_t len = strnlen (request_id, sizeof self->request_id - 1);
        memcpy (self->request_id, request_id, len);
        self->request_id[len] = 0;
    }
    self->payload = cm_map_new ();
    if (!self->payload) {
        free (self);
        return NULL;
    }
    return self;
}

void
cm_envelope_destroy (cm_envelope_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    cm_value_destroy (&(*self_p)->payload);
    free (*self_p);
    *self_p = NULL;
}

cm_envelope_t *
cm_envelope_reply_ok (const cm_envelope_t *request, cm_value_t *payload)
{
    cm_envelope_t *reply = cm_envelope_new (CM_MSG_OK, request ? request->request_id : NULL);
    if (reply && payload) {
        if (payload->type == CM_T_MAP) {
            cm_value_destroy (&reply->payload);
            reply->payload = payload;
            return reply;
        }
        cm_map_set (reply->payload, "value", payload);
        return reply;
    }
    cm_value_destroy (&payload);
    return reply;
}

cm_envelope_t *
cm_envelope_reply_error (const cm_envelope_t *request, int code, const char *message)
{
    cm_envelope_t *reply = cm_envelope_new (CM_MSG_ERROR, request ? request->request_id : NULL);
    if (!reply)
        return NULL;
    if (cm_map_set_int (reply->payload, "code", code)
        || cm_map_set_str (reply->payload, "message", message ? message : cm_strerror (code)))
        cm_envelope_destroy (&reply);
    return reply;
}

//  --------------------------------------------------------------------------
//  Encoding: msgpack packed by hand into a growable buffer, in the smallest
//  form for each value, as msgpack-c's packer does (the bytes are pinned by
//  test_cm_codec). Writing straight into the buffer costs a fraction of
//  msgpack-c's write callback per piece, and the store packs a few dozen
//  pieces per write.

typedef struct {
    char *data;
    size_t size;
    size_t alloc;
} s_out_t;

#define S_OUT_FIRST 256 //  bytes of a fresh buffer; most messages fit

static int s_grow (s_out_t *out, size_t n);

//  Room for n more bytes. 0 or CM_ENOMEM.
static inline int
s_room (s_out_t *out, size_t n)
{
    return out->alloc - out->size >= n ? 0 : s_grow (out, n);
}

static int
s_grow (s_out_t *out, size_t n)
{
    size_t alloc = out->alloc ? out->alloc : S_OUT_FIRST;
    while (alloc - out->size < n)
        alloc *= 2;
    char *data = realloc (out->data, alloc);
    if (!data)
        return CM_ENOMEM;
    out->data = data;
    out->alloc = alloc;
    return 0;
}

//  A type byte and value as `bytes` big-endian bytes (room already made).
static void
s_put (s_out_t *out, uint8_t tag, uint64_t value, int bytes)
{
    unsigned char *p = (unsigned char *) out->data + out->size;
    p[0] = tag;
    for (int i = bytes; i > 0; i--) {
        p[i] = (unsigned char) value;
        value >>= 8;
    }
    out->size += 1 + (size_t) bytes;
}

//  A header whose length is fixN below 2^fix_bits, else 8/16/32-bit
//  (tag8 0 when the 8-bit form does not exist: arrays and maps). The
//  caller made room for 5 bytes.
static inline void
s_head (s_out_t *out, uint8_t fix, int fix_bits, uint8_t tag8, uint8_t tag16, uint8_t tag32,
        size_t n)
{
    if (fix && n < ((size_t) 1 << fix_bits))
        s_put (out, (uint8_t) (fix | n), 0, 0);
    else if (tag8 && n < 256)
        s_put (out, tag8, n, 1);
    else if (n < 65536)
        s_put (out, tag16, n, 2);
    else
        s_put (out, tag32, n, 4);
}

static int
s_container (s_out_t *out, bool map, size_t count)
{
    if (s_room (out, 5))
        return CM_ENOMEM;
    if (map)
        s_head (out, 0x80, 4, 0, 0xde, 0xdf, count);
    else
        s_head (out, 0x90, 4, 0, 0xdc, 0xdd, count);
    return 0;
}

static int
s_bytes (s_out_t *out, bool str, const void *bytes, size_t len)
{
    if (len > CM_MAX_STRING_BYTES)
        return CM_ETOOBIG;
    if (s_room (out, 5 + len))
        return CM_ENOMEM;
    if (str)
        s_head (out, 0xa0, 5, 0xd9, 0xda, 0xdb, len);
    else
        s_head (out, 0, 0, 0xc4, 0xc5, 0xc6, len);
    memcpy (out->data + out->size, bytes, len);
    out->size += len;
    return 0;
}

static int
s_int (s_out_t *out, int64_t i)
{
    if (s_room (out, 9))
        return CM_ENOMEM;
    uint64_t bits = (uint64_t) i; //  two's complement; s_put keeps the low bytes
    if (i >= -32 && i < 128)
        s_put (out, (uint8_t) bits, 0, 0); //  positive or negative fixint
    else if (i >= 0 && i < 256)
        s_put (out, 0xcc, bits, 1);
    else if (i >= 0 && i < 65536)
        s_put (out, 0xcd, bits, 2);
    else if (i >= 0 && i < INT64_C (4294967296))
        s_put (out, 0xce, bits, 4);
    else if (i >= 0)
        s_put (out, 0xcf, bits, 8);
    else if (i >= -128)
        s_put (out, 0xd0, bits, 1);
    else if (i >= -32768)
        s_put (out, 0xd1, bits, 2);
    else if (i >= INT32_MIN)
        s_put (out, 0xd2, bits, 4);
    else
        s_put (out, 0xd3, bits, 8);
    return 0;
}

static int
s_byte (s_out_t *out, uint8_t byte)
{
    if (s_room (out, 1))
        return CM_ENOMEM;
    out->data[out->size++] = (char) byte;
    return 0;
}

static int
s_pack (s_out_t *out, const cm_value_t *value, int depth)
{
    if (depth > CM_MAX_DEPTH)
        return CM_ETOOBIG;
    switch (value->type) {
        case CM_T_NIL:
            return s_byte (out, 0xc0);
        case CM_T_BOOL:
            return s_byte (out, value->u.b ? 0xc3 : 0xc2);
        case CM_T_INT:
            return s_int (out, value->u.i);
        case CM_T_DBL: {
            if (!isfinite (value->u.d))
                return CM_EINVAL;
            if (s_room (out, 9))
                return CM_ENOMEM;
            uint64_t bits;
            memcpy (&bits, &value->u.d, sizeof bits);
            s_put (out, 0xcb, bits, 8);
            return 0;
        }
        case CM_T_STR:
        case CM_T_BIN:
            return s_bytes (out, value->type == CM_T_STR, value->u.s.ptr, value->u.s.len);
        case CM_T_ARR:
        case CM_T_MAP: {
            size_t len = value->u.c.len;
            int rc = s_container (out, value->type == CM_T_MAP, len);
            for (size_t i = 0; rc == 0 && i < len; i++) {
                if (value->type == CM_T_MAP)
                    rc = s_bytes (out, true, value->u.c.keys[i], strlen (value->u.c.keys[i]));
                if (rc == 0)
                    rc = s_pack (out, value->u.c.items[i], depth + 1);
            }
            return rc;
        }
    }
    return CM_EINVAL;
}

//  [version, type name, request_id, ...]: the envelope before its payload.
static int
s_envelope_head (s_out_t *out, const cm_envelope_t *envelope)
{
    const char *name = cm_msg_name (envelope->type);
    int rc = s_container (out, false, 4);
    if (rc == 0)
        rc = s_int (out, CM_PROTO_VERSION);
    if (rc == 0)
        rc = s_bytes (out, true, name, strlen (name));
    if (rc == 0)
        rc = s_bytes (out, true, envelope->request_id, strlen (envelope->request_id));
    return rc;
}

//  Packs [envelope head] value into out; on success checks the size limit.
static int
s_encode (s_out_t *out, const cm_envelope_t *envelope, const cm_value_t *value)
{
    int rc = envelope ? s_envelope_head (out, envelope) : 0;
    if (rc == 0)
        rc = s_pack (out, value, 0);
    if (rc == 0 && out->size > CM_MAX_MESSAGE_BYTES)
        rc = CM_ETOOBIG;
    return rc;
}

//  Into a fresh malloc'd buffer the caller frees.
static int
s_encode_new (const cm_envelope_t *envelope, const cm_value_t *value, char **buffer,
              size_t *size)
{
    s_out_t out = {NULL, 0, 0};
    int rc = s_encode (&out, envelope, value);
    if (rc) {
        free (out.data);
        return rc;
    }
    *buffer = out.data;
    *size = out.size;
    return 0;
}

int
cm_value_encode (const cm_value_t *value, char **buffer, size_t *size)
{
    if (!value)
        return CM_EINVAL;
    return s_encode_new (NULL, value, buffer, size);
}

int
cm_envelope_encode (const cm_envelope_t *self, char **buffer, size_t *size)
{
    if (!self || !self->payload || self->payload->type != CM_T_MAP)
        return CM_EINVAL;
    return s_encode_new (self, self->payload, buffer, size);
}

//  Packs into the caller's reusable buffer (grown as needed).
static int
s_pack_into (const cm_envelope_t *envelope, const cm_value_t *value, char **buffer,
             size_t *capacity, size_t *size)
{
    s_out_t out = {*buffer, 0, *buffer ? *capacity : 0};
    int rc = s_encode (&out, envelope, value);
    *buffer = out.data;
    *capacity = out.alloc;
    *size = rc ? 0 : out.size;
    return rc;
}

int
cm_envelope_encode_into (const cm_envelope_t *self, char **buffer, size_t *capacity,
                         size_t *size)
{
    if (!self || !self->payload || self->payload->type != CM_T_MAP) {
        *size = 0;
        return CM_EINVAL;
    }
    return s_pack_into (self, self->payload, buffer, capacity, size);
}

int
cm_value_encode_into (const cm_value_t *value, char **buffer, size_t *capacity, size_t *size)
{
    if (!value) {
        *size = 0;
        return CM_EINVAL;
    }
    return s_pack_into (NULL, value, buffer, capacity, size);
}

//  --------------------------------------------------------------------------
//  Streaming packer

struct cm_packer {
    s_out_t out;
    int rc; //  first error since the reset
};

cm_packer_t *
cm_packer_new (void)
{
    return calloc (1, sizeof (cm_packer_t));
}

void
cm_packer_destroy (cm_packer_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    free ((*self_p)->out.data);
    free (*self_p);
    *self_p = NULL;
}

void
cm_packer_reset (cm_packer_t *self)
{
    self->out.size = 0;
    self->rc = 0;
}

void
cm_pack_map (cm_packer_t *self, size_t count)
{
    if (self->rc == 0)
        self->rc = s_container (&self->out, true, count);
}

void
cm_pack_str (cm_packer_t *self, const char *s)
{
    if (self->rc == 0)
        self->rc = s ? s_bytes (&self->out, true, s, strlen (s)) : s_byte (&self->out, 0xc0);
}

void
cm_pack_int (cm_packer_t *self, int64_t i)
{
    if (self->rc == 0)
        self->rc = s_int (&self->out, i);
}

void
cm_pack_bool (cm_packer_t *self, bool b)
{
    if (self->rc == 0)
        self->rc = s_byte (&self->out, b ? 0xc3 : 0xc2);
}

void
cm_pack_nil (cm_packer_t *self)
{
    if (self->rc == 0)
        self->rc = s_byte (&self->out, 0xc0);
}

void
cm_pack_value (cm_packer_t *self, const cm_value_t *value)
{
    if (self->rc == 0)
        self->rc = value ? s_pack (&self->out, value, 0) : s_byte (&self->out, 0xc0);
}

int
cm_packer_finish (cm_packer_t *self, const char **data, size_t *size)
{
    if (self->rc == 0 && self->out.size > CM_MAX_MESSAGE_BYTES)
        self->rc = CM_ETOOBIG;
    if (self->rc)
        return self->rc;
    *data = self->out.data;
    *size = self->out.size;
    return 0;
}

//  --------------------------------------------------------------------------
//  Prescan: walk the msgpack bytes once, checking every declared length
//  against the bytes left, the nesting depth and the total item budget.
//  Extension types are not part of our protocol and are rejected here.

typedef struct {
    const uint8_t *p;
    size_t len;
    size_t off;
    size_t items;
} s_scan_t;

static int
s_need (s_scan_t *scan, uint64_t bytes)
{
    return bytes <= scan->len - scan->off ? 0 : CM_EPROTO;
}

static uint64_t
s_be (const uint8_t *p, int bytes)
{
    uint64_t v = 0;
    for (int i = 0; i < bytes; i++)
        v = (v << 8) | p[i];
    return v;
}

//  Reads an n-byte big-endian length that follows the type byte.
static int
s_length (s_scan_t *scan, int bytes, uint64_t *out)
{
    if (s_need (scan, (uint64_t) bytes))
        return CM_EPROTO;
    *out = s_be (scan->p + scan->off, bytes);
    scan->off += (size_t) bytes;
    return 0;
}

static int s_scan (s_scan_t *scan, int depth);

static int
s_scan_container (s_scan_t *scan, uint64_t count, int depth)
{
    //  Every element takes at least one byte: a count beyond the bytes left
    //  is a lie, whatever the limits.
    if (depth >= CM_MAX_DEPTH || s_need (scan, count))
        return CM_EPROTO;
    scan->items += count;
    if (scan->items > CM_MAX_ITEMS)
        return CM_ETOOBIG;
    for (uint64_t i = 0; i < count; i++)
        if (s_scan (scan, depth + 1))
            return CM_EPROTO;
    return 0;
}

static int
s_scan_bytes (s_scan_t *scan, uint64_t len)
{
    if (len > CM_MAX_STRING_BYTES)
        return CM_ETOOBIG;
    if (s_need (scan, len))
        return CM_EPROTO;
    scan->off += (size_t) len;
    return 0;
}

static int
s_scan (s_scan_t *scan, int depth)
{
    if (s_need (scan, 1))
        return CM_EPROTO;
    uint8_t tag = scan->p[scan->off++];
    uint64_t n;
    if (tag <= 0x7f || tag >= 0xe0 || tag == 0xc0 || tag == 0xc2 || tag == 0xc3)
        return 0;
    if (tag >= 0x80 && tag <= 0x8f)
        return s_scan_container (scan, (uint64_t) (tag & 0x0f) * 2, depth);
    if (tag >= 0x90 && tag <= 0x9f)
        return s_scan_container (scan, tag & 0x0f, depth);
    if (tag >= 0xa0 && tag <= 0xbf)
        return s_scan_bytes (scan, tag & 0x1f);
    switch (tag) {
        case 0xc4:
        case 0xd9:
            return s_length (scan, 1, &n) ? CM_EPROTO : s_scan_bytes (scan, n);
        case 0xc5:
        case 0xda:
            return s_length (scan, 2, &n) ? CM_EPROTO : s_scan_bytes (scan, n);
        case 0xc6:
        case 0xdb:
            return s_length (scan, 4, &n) ? CM_EPROTO : s_scan_bytes (scan, n);
        case 0xca:
            return s_scan_bytes (scan, 4);
        case 0xcb:
            return s_scan_bytes (scan, 8);
        case 0xcc:
        case 0xd0:
            return s_scan_bytes (scan, 1);
        case 0xcd:
        case 0xd1:
            return s_scan_bytes (scan, 2);
        case 0xce:
        case 0xd2:
            return s_scan_bytes (scan, 4);
        case 0xcf:
        case 0xd3:
            return s_scan_bytes (scan, 8);
        case 0xdc:
            return s_length (scan, 2, &n) ? CM_EPROTO : s_scan_container (scan, n, depth);
        case 0xdd:
            return s_length (scan, 4, &n) ? CM_EPROTO : s_scan_container (scan, n, depth);
        case 0xde:
            return s_length (scan, 2, &n) ? CM_EPROTO : s_scan_container (scan, n * 2, depth);
        case 0xdf:
            return s_length (scan, 4, &n) ? CM_EPROTO : s_scan_container (scan, n * 2, depth);
        default: //  0xc1 (never used) and every ext type
            return CM_EPROTO;
    }
}

//  Returns 0 when `buffer` holds exactly one well-formed msgpack object.
static int
s_prescan (const void *buffer, size_t size)
{
    if (!buffer || size == 0)
        return CM_EPROTO;
    if (size > CM_MAX_MESSAGE_BYTES)
        return CM_ETOOBIG;
    s_scan_t scan = {buffer, size, 0, 0};
    int rc = s_scan (&scan, 0);
    if (rc)
        return rc;
    return scan.off == size ? 0 : CM_EPROTO; //  trailing garbage
}

//  --------------------------------------------------------------------------
//  Bytes -> cm_value, straight from the buffer once the prescan passed: it
//  checked every length, count and tag, so these reads stay in bounds and
//  see no ext types. (Building through msgpack-c's unpacker cost a zone and
//  an object tree per message on top of the values.)

typedef struct {
    cm_type_t type; //  STR and BIN carry bytes/n; ARR and MAP n items
    uint64_t n;
    int64_t i;
    double d;
    bool b;
    bool too_big; //  a uint64 past INT64_MAX: no cm_value holds it
    const char *bytes;
} s_token_t;

static uint64_t
s_next (s_scan_t *scan, int bytes)
{
    uint64_t v = s_be (scan->p + scan->off, bytes);
    scan->off += (size_t) bytes;
    return v;
}

//  Reads one item's header (and a scalar's value) at scan->off.
static void
s_token (s_scan_t *scan, s_token_t *t)
{
    uint8_t tag = scan->p[scan->off++];
    t->too_big = false;
    t->type = CM_T_INT;
    if (tag <= 0x7f || tag >= 0xe0) {
        t->i = (int8_t) tag; //  positive or negative fixint
        return;
    }
    if (tag <= 0x9f) {
        t->type = tag <= 0x8f ? CM_T_MAP : CM_T_ARR;
        t->n = tag & 0x0f;
        return;
    }
    if (tag <= 0xbf) {
        t->type = CM_T_STR;
        t->n = tag & 0x1f;
    }
    else
        switch (tag) {
            case 0xc0: t->type = CM_T_NIL; return;
            case 0xc2: t->type = CM_T_BOOL; t->b = false; return;
            case 0xc3: t->type = CM_T_BOOL; t->b = true; return;
            case 0xc4: t->type = CM_T_BIN; t->n = s_next (scan, 1); break;
            case 0xc5: t->type = CM_T_BIN; t->n = s_next (scan, 2); break;
            case 0xc6: t->type = CM_T_BIN; t->n = s_next (scan, 4); break;
            case 0xd9: t->type = CM_T_STR; t->n = s_next (scan, 1); break;
            case 0xda: t->type = CM_T_STR; t->n = s_next (scan, 2); break;
            case 0xdb: t->type = CM_T_STR; t->n = s_next (scan, 4); break;
            case 0xca: {
                uint32_t bits = (uint32_t) s_next (scan, 4);
                float f;
                memcpy (&f, &bits, sizeof f);
                t->type = CM_T_DBL;
                t->d = f;
                return;
            }
            case 0xcb: {
                uint64_t bits = s_next (scan, 8);
                memcpy (&t->d, &bits, sizeof t->d);
                t->type = CM_T_DBL;
                return;
            }
            case 0xcc: t->i = (int64_t) s_next (scan, 1); return;
            case 0xcd: t->i = (int64_t) s_next (scan, 2); return;
            case 0xce: t->i = (int64_t) s_next (scan, 4); return;
            case 0xcf: {
                uint64_t u = s_next (scan, 8);
                t->too_big = u > (uint64_t) INT64_MAX;
                t->i = (int64_t) u;
                return;
            }
            case 0xd0: t->i = (int8_t) s_next (scan, 1); return;
            case 0xd1: t->i = (int16_t) s_next (scan, 2); return;
            case 0xd2: t->i = (int32_t) s_next (scan, 4); return;
            case 0xd3: t->i = (int64_t) s_next (scan, 8); return;
            case 0xdc: t->type = CM_T_ARR; t->n = s_next (scan, 2); return;
            case 0xdd: t->type = CM_T_ARR; t->n = s_next (scan, 4); return;
            case 0xde: t->type = CM_T_MAP; t->n = s_next (scan, 2); return;
            default: t->type = CM_T_MAP; t->n = s_next (scan, 4); return; //  0xdf
        }
    t->bytes = (const char *) scan->p + scan->off; //  str or bin body
    scan->off += (size_t) t->n;
}

static cm_value_t *s_build (s_scan_t *scan, const s_token_t *t);

//  A map's n entries. Keys are non-empty strings without NULs, at most 256
//  bytes, each once (duplicates are ambiguous). NULL on any violation.
static cm_value_t *
s_build_map (s_scan_t *scan, uint64_t n)
{
    cm_value_t *map = cm_map_new ();
    if (!map || cm_reserve (map, (size_t) n)) {
        cm_value_destroy (&map);
        return NULL;
    }
    for (uint64_t i = 0; i < n; i++) {
        s_token_t key, val;
        s_token (scan, &key);
        if (key.type != CM_T_STR || key.n == 0 || key.n > 256 || memchr (key.bytes, 0, key.n)) {
            cm_value_destroy (&map);
            return NULL;
        }
        char name[257];
        memcpy (name, key.bytes, key.n);
        name[key.n] = 0;
        s_token (scan, &val);
        cm_value_t *child = s_build (scan, &val);
        size_t before = map->u.c.len;
        //  cm_map_set replaces a present key: a length that did not grow
        //  is a duplicate.
        if (!child || cm_map_set (map, name, child) || map->u.c.len == before) {
            cm_value_destroy (&map);
            return NULL;
        }
    }
    return map;
}

//  The value that t (just read) starts. NULL when it has no cm_value form
//  (uint64 past INT64_MAX, non-finite float, bad map key) or out of memory.
static cm_value_t *
s_build (s_scan_t *scan, const s_token_t *t)
{
    switch (t->type) {
        case CM_T_NIL:
            return cm_nil_new ();
        case CM_T_BOOL:
            return cm_bool_new (t->b);
        case CM_T_INT:
            return t->too_big ? NULL : cm_int_new (t->i);
        case CM_T_DBL:
            //  No field means NaN or infinity, and NaN would not even equal
            //  itself after a round trip: the protocol has finite floats only.
            return isfinite (t->d) ? cm_dbl_new (t->d) : NULL;
        case CM_T_STR:
            return cm_strn_new (t->bytes, (size_t) t->n);
        case CM_T_BIN:
            return cm_bin_new (t->bytes, (size_t) t->n);
        case CM_T_ARR: {
            cm_value_t *arr = cm_arr_new ();
            if (arr && cm_reserve (arr, (size_t) t->n))
                cm_value_destroy (&arr);
            for (uint64_t i = 0; arr && i < t->n; i++) {
                s_token_t item;
                s_token (scan, &item);
                cm_value_t *child = s_build (scan, &item);
                if (!child || cm_arr_push (arr, child))
                    cm_value_destroy (&arr);
            }
            return arr;
        }
        case CM_T_MAP:
            return s_build_map (scan, t->n);
    }
    return NULL;
}

int
cm_value_decode (const void *buffer, size_t size, cm_value_t **out)
{
    int rc = s_prescan (buffer, size);
    if (rc)
        return rc;
    s_scan_t scan = {buffer, size, 0, 0};
    s_token_t root;
    s_token (&scan, &root);
    cm_value_t *value = s_build (&scan, &root);
    if (!value)
        return CM_EPROTO;
    *out = value;
    return 0;
}

static int
s_why (char *why, size_t why_size, int rc, const char *text)
{
    if (why && why_size) { //  every decode sets it, "" included: no snprintf
        size_t len = strnlen (text, why_size - 1);
        memcpy (why, text, len);
        why[len] = 0;
    }
    return rc;
}

int
cm_envelope_decode_why (const void *buffer, size_t size, cm_envelope_t **out, char *why,
                        size_t why_size)
{
    int rc = s_prescan (buffer, size);
    if (rc)
        return s_why (why, why_size, rc, rc == CM_ETOOBIG ? "message too large"
                                                          : "not one well-formed msgpack object");
    s_scan_t scan = {buffer, size, 0, 0};
    s_token_t root, version, name, id, payload;
    s_token (&scan, &root);
    if (root.type != CM_T_ARR || root.n != 4)
        return s_why (why, why_size, CM_EPROTO,
                      "envelope is not [version, type, request_id, payload]");
    s_token (&scan, &version);
    if (version.type != CM_T_INT || version.too_big || version.i != CM_PROTO_VERSION)
        return s_why (why, why_size, CM_EPROTO, "unsupported protocol version");
    s_token (&scan, &name);
    cm_msg_t type = CM_MSG_NONE;
    if (name.type != CM_T_STR
        || (type = cm_msg_from_name (name.bytes, (size_t) name.n)) == CM_MSG_NONE)
        return s_why (why, why_size, CM_EPROTO, "unknown message type");
    s_token (&scan, &id);
    if (id.type != CM_T_STR || id.n > CM_REQUEST_ID_MAX || memchr (id.bytes, 0, id.n))
        return s_why (why, why_size, CM_EPROTO, "bad request id");
    s_token (&scan, &payload);
    if (payload.type != CM_T_MAP)
        return s_why (why, why_size, CM_EPROTO, "payload is not a map");
    cm_envelope_t *envelope = calloc (1, sizeof *envelope);
    if (!envelope)
        return s_why (why, why_size, CM_ENOMEM, "out of memory");
    envelope->type = type;
    memcpy (envelope->request_id, id.bytes, (size_t) id.n);
    envelope->payload = s_build_map (&scan, payload.n);
    char schema_why[128] = "payload does not convert";
    if (!envelope->payload
        || cm_msg_validate (type, envelope->payload, schema_why, sizeof schema_why)) {
        cm_envelope_destroy (&envelope);
        return s_why (why, why_size, CM_EPROTO, schema_why);
    }
    *out = envelope;
    return s_why (why, why_size, 0, "");
}

int
cm_envelope_decode (const void *buffer, size_t size, cm_envelope_t **out)
{
    return cm_envelope_decode_why (buffer, size, out, NULL, 0);
}

//  --------------------------------------------------------------------------
//  Peeking at the request id: walk the array header and the first two
//  fields with the prescan's reader; the payload is never looked at.

int
cm_envelope_peek_request_id (const void *buffer, size_t size, char *request_id,
                             size_t id_size)
{
    if (!buffer || size == 0 || size > CM_MAX_MESSAGE_BYTES)
        return CM_EPROTO;
    const uint8_t *p = buffer;
    if (p[0] != 0x94) //  fixarray of 4: every encoder of ours writes this
        return CM_EPROTO;
    s_scan_t scan = {p, size, 1, 0};
    if (s_scan (&scan, 1) || s_scan (&scan, 1)) //  version, type
        return CM_EPROTO;
    size_t start = scan.off;
    if (s_scan (&scan, 1) || start >= size)
        return CM_EPROTO;
    uint8_t tag = p[start];
    size_t header = tag >= 0xa0 && tag <= 0xbf ? 1 : tag == 0xd9 ? 2 : tag == 0xda ? 3 : 0;
    if (header == 0)
        return CM_EPROTO;
    size_t len = scan.off - start - header;
    if (len > CM_REQUEST_ID_MAX || len + 1 > id_size || memchr (p + start + header, 0, len))
        return CM_EPROTO;
    memcpy (request_id, p + start + header, len);
    request_id[len] = 0;
    return 0;
}
