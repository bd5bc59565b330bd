/*  cm_codec.h: msgpack encoding of values and envelopes.

    This is the only module that includes msgpack headers. Decoders take any
    bytes: malformed, truncated, oversize, wrong-typed input and trailing
    garbage give CM_EPROTO (or CM_ETOOBIG past the size limits), never a
    crash or an assert. Before msgpack-c sees a buffer, a prescan checks that
    every declared length and count fits in the bytes that are actually
    there, so a 5-byte message cannot make the decoder allocate gigabytes.  */
#ifndef CM_CODEC_H_INCLUDED
#define CM_CODEC_H_INCLUDED

#include "cm_msg.h"
#include "cm_value.h"

typedef struct {
    cm_msg_t type;
    char request_id[CM_REQUEST_ID_MAX + 1];
    cm_value_t *payload; //  always a map; owned
} cm_envelope_t;

//  New envelope with an empty payload map. request_id may be NULL ("").
//  Returns NULL on out-of-memory.
cm_envelope_t *cm_envelope_new (cm_msg_t type, const char *request_id);
void cm_envelope_destroy (cm_envelope_t **self_p);

//  Replies echo the request's id. Takes ownership of payload (may be NULL).
cm_envelope_t *cm_envelope_reply_ok (const cm_envelope_t *request, cm_value_t *payload);
cm_envelope_t *cm_envelope_reply_error (const cm_envelope_t *request, int code,
                                        const char *message);

//  Encodes into a malloc'd buffer the caller frees. 0, CM_ENOMEM, CM_ETOOBIG.
int cm_envelope_encode (const cm_envelope_t *self, char **buffer, size_t *size);
//  Decodes and validates against the type's schema. On success *out is a
//  new envelope the caller owns; on error *out is untouched.
int cm_envelope_decode (const void *buffer, size_t size, cm_envelope_t **out);
//  Like decode, and when it fails tells why in `why` (for logs / replies).
int cm_envelope_decode_why (const void *buffer, size_t size, cm_envelope_t **out,
                            char *why, size_t why_size);

//  Reads only the request_id of an envelope whose payload may be invalid,
//  so a service can still address its error reply to the caller. 0 with the
//  id in buffer (size >= CM_REQUEST_ID_MAX + 1), or CM_EPROTO when even the
//  first three fields are not [version, type, request_id].
int cm_envelope_peek_request_id (const void *buffer, size_t size, char *request_id,
                                 size_t id_size);

//  Bare values (event bodies inside history replies, tests).
int cm_value_encode (const cm_value_t *value, char **buffer, size_t *size);

//  The same two encodings into a caller-owned buffer that is reused across
//  calls: *buffer (malloc'd or NULL) holds *capacity bytes and is realloc'd
//  when too small; *size gets the encoded length. The caller frees *buffer
//  once. For hot loops (the store's writer) that would otherwise allocate
//  and free a fresh buffer per message. On error *size is 0.
int cm_envelope_encode_into (const cm_envelope_t *self, char **buffer, size_t *capacity,
                             size_t *size);
int cm_value_encode_into (const cm_value_t *value, char **buffer, size_t *capacity,
                          size_t *size);
int cm_value_decode (const void *buffer, size_t size, cm_value_t **out);

//  Streaming writer for hot records of a fixed layout (the store's audit
//  and feedback records): packs straight into one reused buffer, with no
//  cm_value tree built and freed per record. Packing a map header, then
//  each key and value in order, gives exactly the bytes cm_value_encode
//  gives for the same map built in the same order. Errors are sticky:
//  pack the whole record, then ask cm_packer_finish.
typedef struct cm_packer cm_packer_t;

//  NULL on out-of-memory.
cm_packer_t *cm_packer_new (void);
void cm_packer_destroy (cm_packer_t **self_p);
//  Starts a new record; keeps the buffer.
void cm_packer_reset (cm_packer_t *self);
void cm_pack_map (cm_packer_t *self, size_t count);
void cm_pack_str (cm_packer_t *self, const char *s); //  NULL packs nil
void cm_pack_int (cm_packer_t *self, int64_t i);
void cm_pack_bool (cm_packer_t *self, bool b);
void cm_pack_nil (cm_packer_t *self);
void cm_pack_bin (cm_packer_t *self, const void *data, size_t size);
//  Any value, as cm_value_encode packs it; NULL packs nil.
void cm_pack_value (cm_packer_t *self, const cm_value_t *value);
//  0 with the record's bytes (valid until the next reset), or the first
//  error: CM_ENOMEM, CM_ETOOBIG, CM_EINVAL (non-finite float).
int cm_packer_finish (cm_packer_t *self, const char **data, size_t *size);

#endif
