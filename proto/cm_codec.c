#include "cm_codec.h"
#include "cm_error.h"

#include <math.h>
#include <msgpack.h>
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
//  Encoding

//  msgpack-c's packers return -1 when the buffer cannot grow, which would
//  read as CM_EPROTO; callers get CM_ENOMEM.
static int
s_grew (int msgpack_rc)
{
    return msgpack_rc ? CM_ENOMEM : 0;
}

static int
s_pack_str (msgpack_packer *pk, const char *s, size_t len)
{
    if (len > CM_MAX_STRING_BYTES)
        return CM_ETOOBIG;
    return s_grew (msgpack_pack_str (pk, len) || msgpack_pack_str_body (pk, s, len));
}

static int
s_pack (msgpack_packer *pk, const cm_value_t *value, int depth)
{
    if (depth > CM_MAX_DEPTH)
        return CM_ETOOBIG;
    switch (value->type) {
        case CM_T_NIL:
            return s_grew (msgpack_pack_nil (pk));
        case CM_T_BOOL:
            return s_grew (value->u.b ? msgpack_pack_true (pk) : msgpack_pack_false (pk));
        case CM_T_INT:
            return s_grew (msgpack_pack_int64 (pk, value->u.i));
        case CM_T_DBL:
            if (!isfinite (value->u.d))
                return CM_EINVAL;
            return s_grew (msgpack_pack_double (pk, value->u.d));
        case CM_T_STR:
            return s_pack_str (pk, value->u.s.ptr, value->u.s.len);
        case CM_T_BIN:
            if (value->u.s.len > CM_MAX_STRING_BYTES)
                return CM_ETOOBIG;
            return s_grew (msgpack_pack_bin (pk, value->u.s.len)
                           || msgpack_pack_bin_body (pk, value->u.s.ptr, value->u.s.len));
        case CM_T_ARR:
        case CM_T_MAP: {
            size_t len = value->u.c.len;
            int rc = s_grew (value->type == CM_T_ARR ? msgpack_pack_array (pk, len)
                                                     : msgpack_pack_map (pk, len));
            for (size_t i = 0; rc == 0 && i < len; i++) {
                if (value->type == CM_T_MAP)
                    rc = s_pack_str (pk, value->u.c.keys[i], strlen (value->u.c.keys[i]));
                if (rc == 0)
                    rc = s_pack (pk, value->u.c.items[i], depth + 1);
            }
            return rc;
        }
    }
    return CM_EINVAL;
}

static int
s_finish (msgpack_sbuffer *sbuf, int rc, char **buffer, size_t *size)
{
    if (rc == 0 && sbuf->size > CM_MAX_MESSAGE_BYTES)
        rc = CM_ETOOBIG;
    if (rc) {
        msgpack_sbuffer_destroy (sbuf);
        return rc;
    }
    *size = sbuf->size; //  release() zeroes it
    *buffer = msgpack_sbuffer_release (sbuf);
    msgpack_sbuffer_destroy (sbuf);
    return 0;
}

int
cm_value_encode (const cm_value_t *value, char **buffer, size_t *size)
{
    if (!value)
        return CM_EINVAL;
    msgpack_sbuffer sbuf;
    msgpack_sbuffer_init (&sbuf);
    msgpack_packer pk;
    msgpack_packer_init (&pk, &sbuf, msgpack_sbuffer_write);
    return s_finish (&sbuf, s_pack (&pk, value, 0), buffer, size);
}

int
cm_envelope_encode (const cm_envelope_t *self, char **buffer, size_t *size)
{
    if (!self || !self->payload || self->payload->type != CM_T_MAP)
        return CM_EINVAL;
    const char *name = cm_msg_name (self->type);
    size_t name_len = strlen (name), id_len = strlen (self->request_id);
    msgpack_sbuffer sbuf;
    msgpack_sbuffer_init (&sbuf);
    msgpack_packer pk;
    msgpack_packer_init (&pk, &sbuf, msgpack_sbuffer_write);
    int rc = s_grew (msgpack_pack_array (&pk, 4) || msgpack_pack_int (&pk, CM_PROTO_VERSION)
                     || msgpack_pack_str (&pk, name_len)
                     || msgpack_pack_str_body (&pk, name, name_len)
                     || msgpack_pack_str (&pk, id_len)
                     || msgpack_pack_str_body (&pk, self->request_id, id_len));
    if (rc == 0)
        rc = s_pack (&pk, self->payload, 0);
    return s_finish (&sbuf, rc, buffer, size);
}

//  Packs into the caller's reusable buffer (msgpack_sbuffer_write grows it).
static int
s_pack_into (const cm_envelope_t *envelope, const cm_value_t *value, char **buffer,
             size_t *capacity, size_t *size)
{
    *size = 0;
    msgpack_sbuffer sbuf = {.size = 0, .data = *buffer, .alloc = *buffer ? *capacity : 0};
    msgpack_packer pk;
    msgpack_packer_init (&pk, &sbuf, msgpack_sbuffer_write);
    int rc = 0;
    if (envelope) {
        const char *name = cm_msg_name (envelope->type);
        size_t name_len = strlen (name), id_len = strlen (envelope->request_id);
        rc = s_grew (msgpack_pack_array (&pk, 4) || msgpack_pack_int (&pk, CM_PROTO_VERSION)
                     || msgpack_pack_str (&pk, name_len)
                     || msgpack_pack_str_body (&pk, name, name_len)
                     || msgpack_pack_str (&pk, id_len)
                     || msgpack_pack_str_body (&pk, envelope->request_id, id_len));
    }
    if (rc == 0)
        rc = s_pack (&pk, value, 0);
    *buffer = sbuf.data;
    *capacity = sbuf.alloc;
    if (rc == 0 && sbuf.size > CM_MAX_MESSAGE_BYTES)
        rc = CM_ETOOBIG;
    if (rc)
        return rc;
    *size = sbuf.size;
    return 0;
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
    msgpack_sbuffer sbuf;
    msgpack_packer pk; //  writes into sbuf
    int rc;            //  first error since the reset
};

cm_packer_t *
cm_packer_new (void)
{
    cm_packer_t *self = calloc (1, sizeof *self);
    if (self) {
        msgpack_sbuffer_init (&self->sbuf);
        msgpack_packer_init (&self->pk, &self->sbuf, msgpack_sbuffer_write);
    }
    return self;
}

void
cm_packer_destroy (cm_packer_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    msgpack_sbuffer_destroy (&(*self_p)->sbuf);
    free (*self_p);
    *self_p = NULL;
}

void
cm_packer_reset (cm_packer_t *self)
{
    self->sbuf.size = 0;
    self->rc = 0;
}

void
cm_pack_map (cm_packer_t *self, size_t count)
{
    if (self->rc == 0)
        self->rc = s_grew (msgpack_pack_map (&self->pk, count));
}

void
cm_pack_str (cm_packer_t *self, const char *s)
{
    if (self->rc == 0)
        self->rc = s ? s_pack_str (&self->pk, s, strlen (s)) : s_grew (msgpack_pack_nil (&self->pk));
}

void
cm_pack_int (cm_packer_t *self, int64_t i)
{
    if (self->rc == 0)
        self->rc = s_grew (msgpack_pack_int64 (&self->pk, i));
}

void
cm_pack_bool (cm_packer_t *self, bool b)
{
    if (self->rc == 0)
        self->rc = s_grew (b ? msgpack_pack_true (&self->pk) : msgpack_pack_false (&self->pk));
}

void
cm_pack_nil (cm_packer_t *self)
{
    if (self->rc == 0)
        self->rc = s_grew (msgpack_pack_nil (&self->pk));
}

void
cm_pack_bin (cm_packer_t *self, const void *data, size_t size)
{
    if (self->rc == 0)
        self->rc = s_grew (msgpack_pack_bin (&self->pk, size));
    if (self->rc == 0)
        self->rc = s_grew (msgpack_pack_bin_body (&self->pk, data, size));
}

void
cm_pack_value (cm_packer_t *self, const cm_value_t *value)
{
    if (self->rc == 0)
        self->rc = value ? s_pack (&self->pk, value, 0) : s_grew (msgpack_pack_nil (&self->pk));
}

int
cm_packer_finish (cm_packer_t *self, const char **data, size_t *size)
{
    if (self->rc == 0 && self->sbuf.size > CM_MAX_MESSAGE_BYTES)
        self->rc = CM_ETOOBIG;
    if (self->rc)
        return self->rc;
    *data = self->sbuf.data;
    *size = self->sbuf.size;
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
//  msgpack object -> cm_value

static cm_value_t *
s_convert (const msgpack_object *obj)
{
    switch (obj->type) {
        case MSGPACK_OBJECT_NIL:
            return cm_nil_new ();
        case MSGPACK_OBJECT_BOOLEAN:
            return cm_bool_new (obj->via.boolean);
        case MSGPACK_OBJECT_POSITIVE_INTEGER:
            if (obj->via.u64 > (uint64_t) INT64_MAX)
                return NULL;
            return cm_int_new ((int64_t) obj->via.u64);
        case MSGPACK_OBJECT_NEGATIVE_INTEGER:
            return cm_int_new (obj->via.i64);
        case MSGPACK_OBJECT_FLOAT32:
        case MSGPACK_OBJECT_FLOAT64:
            //  No field means NaN or infinity, and NaN would not even equal
            //  itself after a round trip: the protocol has finite floats only.
            return isfinite (obj->via.f64) ? cm_dbl_new (obj->via.f64) : NULL;
        case MSGPACK_OBJECT_STR:
            return cm_strn_new (obj->via.str.ptr, obj->via.str.size);
        case MSGPACK_OBJECT_BIN:
            return cm_bin_new (obj->via.bin.ptr, obj->via.bin.size);
        case MSGPACK_OBJECT_ARRAY: {
            cm_value_t *arr = cm_arr_new ();
            for (uint32_t i = 0; arr && i < obj->via.array.size; i++) {
                cm_value_t *child = s_convert (&obj->via.array.ptr[i]);
                if (!child || cm_arr_push (arr, child))
                    cm_value_destroy (&arr);
            }
            return arr;
        }
        case MSGPACK_OBJECT_MAP: {
            cm_value_t *map = cm_map_new ();
            for (uint32_t i = 0; map && i < obj->via.map.size; i++) {
                const msgpack_object_kv *kv = &obj->via.map.ptr[i];
                //  Keys are non-empty strings without NULs.
                if (kv->key.type != MSGPACK_OBJECT_STR || kv->key.via.str.size == 0
                    || kv->key.via.str.size > CM_MAP_KEY_MAX
                    || memchr (kv->key.via.str.ptr, 0, kv->key.via.str.size)) {
                    cm_value_destroy (&map);
                    break;
                }
                char key[CM_MAP_KEY_MAX + 1];
                memcpy (key, kv->key.via.str.ptr, kv->key.via.str.size);
                key[kv->key.via.str.size] = 0;
                if (cm_map_get (map, key)) { //  duplicate keys are ambiguous
                    cm_value_destroy (&map);
                    break;
                }
                cm_value_t *child = s_convert (&kv->val);
                if (!child || cm_map_set (map, key, child))
                    cm_value_destroy (&map);
            }
            return map;
        }
        default:
            return NULL;
    }
}

//  Runs prescan + msgpack-c, and hands the root object to `use`.
static int
s_unpack (const void *buffer, size_t size, msgpack_unpacked *result)
{
    int rc = s_prescan (buffer, size);
    if (rc)
        return rc;
    msgpack_unpacked_init (result);
    size_t offset = 0;
    msgpack_unpack_return ret = msgpack_unpack_next (result, buffer, size, &offset);
    if (ret != MSGPACK_UNPACK_SUCCESS || offset != size) {
        msgpack_unpacked_destroy (result);
        return CM_EPROTO;
    }
    return 0;
}

int
cm_value_decode (const void *buffer, size_t size, cm_value_t **out)
{
    msgpack_unpacked result;
    int rc = s_unpack (buffer, size, &result);
    if (rc)
        return rc;
    cm_value_t *value = s_convert (&result.data);
    msgpack_unpacked_destroy (&result);
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
    msgpack_unpacked result;
    int rc = s_unpack (buffer, size, &result);
    if (rc)
        return s_why (why, why_size, rc, rc == CM_ETOOBIG ? "message too large"
                                                          : "not one well-formed msgpack object");
    const msgpack_object *root = &result.data;
    const msgpack_object *f = root->via.array.ptr;
    rc = CM_EPROTO;
    const char *reason = "envelope is not [version, type, request_id, payload]";
    cm_msg_t type = CM_MSG_NONE;
    if (root->type != MSGPACK_OBJECT_ARRAY || root->via.array.size != 4)
        goto done;
    if (f[0].type != MSGPACK_OBJECT_POSITIVE_INTEGER || f[0].via.u64 != CM_PROTO_VERSION) {
        reason = "unsupported protocol version";
        goto done;
    }
    if (f[1].type != MSGPACK_OBJECT_STR
        || (type = cm_msg_from_name (f[1].via.str.ptr, f[1].via.str.size)) == CM_MSG_NONE) {
        reason = "unknown message type";
        goto done;
    }
    if (f[2].type != MSGPACK_OBJECT_STR || f[2].via.str.size > CM_REQUEST_ID_MAX
        || memchr (f[2].via.str.ptr, 0, f[2].via.str.size)) {
        reason = "bad request id";
        goto done;
    }
    if (f[3].type != MSGPACK_OBJECT_MAP) {
        reason = "payload is not a map";
        goto done;
    }
    cm_envelope_t *envelope = cm_envelope_new (type, NULL);
    if (!envelope) {
        rc = CM_ENOMEM;
        reason = "out of memory";
        goto done;
    }
    memcpy (envelope->request_id, f[2].via.str.ptr, f[2].via.str.size);
    envelope->request_id[f[2].via.str.size] = 0;
    cm_value_destroy (&envelope->payload);
    envelope->payload = s_convert (&f[3]);
    char schema_why[128] = "payload does not convert";
    if (!envelope->payload
        || cm_msg_validate (type, envelope->payload, schema_why, sizeof schema_why)) {
        cm_envelope_destroy (&envelope);
        msgpack_unpacked_destroy (&result);
        return s_why (why, why_size, CM_EPROTO, schema_why);
    }
    *out = envelope;
    rc = 0;
    reason = "";
done:
    msgpack_unpacked_destroy (&result);
    return s_why (why, why_size, rc, reason);
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
