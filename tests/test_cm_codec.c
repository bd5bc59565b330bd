/*  test_cm_codec: every message type round-trips; bad bytes never crash.  */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "cm_codec.h"
#include "cm_error.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

//  Builds a payload that satisfies a type's schema: every field present
//  with a value of its declared type.
static cm_value_t *
s_valid_payload (cm_msg_t type)
{
    cm_value_t *payload = cm_map_new ();
    size_t count;
    const cm_field_t *fields = cm_msg_schema (type, &count);
    for (size_t i = 0; i < count; i++) {
        const cm_field_t *f = &fields[i];
        cm_value_t *v = NULL;
        switch (f->type) {
            case CM_T_STR: v = cm_str_new ("value_1"); break;
            case CM_T_INT: v = cm_int_new (-42); break;
            case CM_T_DBL: v = cm_dbl_new (0.75); break;
            case CM_T_BOOL: v = cm_bool_new (true); break;
            case CM_T_BIN: v = cm_bin_new ("\0\1\2", 3); break;
            case CM_T_ARR: v = cm_arr_new (); cm_arr_push (v, cm_int_new (1)); break;
            case CM_T_MAP: v = cm_map_new (); cm_map_set_str (v, "k", "v"); break;
            case CM_T_NIL: v = cm_nil_new (); break;
        }
        assert_int_equal (cm_map_set (payload, f->name, v), 0);
    }
    return payload;
}

//  The first test is also the usage example.
static void
test_feedback_put_round_trip (void **state)
{
    (void) state;
    cm_envelope_t *request = cm_envelope_new (CM_MSG_FEEDBACK_PUT, "req-1");
    cm_map_set_str (request->payload, "user", "alice");
    cm_map_set_str (request->payload, "message_id", "msg_0f3c_demo_session_assistant");
    cm_map_set_str (request->payload, "feedback_type", "upvote");
    cm_value_t *meta = cm_map_new ();
    cm_map_set_dbl (meta, "score", 0.5);
    cm_map_set (request->payload, "metadata", meta);

    char *bytes;
    size_t size;
    assert_int_equal (cm_envelope_encode (request, &bytes, &size), 0);
    cm_envelope_t *decoded = NULL;
    assert_int_equal (cm_envelope_decode (bytes, size, &decoded), 0);
    assert_int_equal (decoded->type, CM_MSG_FEEDBACK_PUT);
    assert_string_equal (decoded->request_id, "req-1");
    assert_true (cm_value_equal (decoded->payload, request->payload));
    assert_string_equal (cm_map_str (decoded->payload, "feedback_type"), "upvote");
    free (bytes);
    cm_envelope_destroy (&decoded);
    cm_envelope_destroy (&request);
    assert_null (request);
    cm_envelope_destroy (&request); //  second destroy is harmless
}

static void
test_every_type_round_trips (void **state)
{
    (void) state;
    for (int type = CM_MSG_NONE + 1; type < CM_MSG_COUNT; type++) {
        cm_envelope_t *envelope = cm_envelope_new ((cm_msg_t) type, "id");
        cm_value_destroy (&envelope->payload);
        envelope->payload = s_valid_payload ((cm_msg_t) type);
        char *bytes;
        size_t size;
        assert_int_equal (cm_envelope_encode (envelope, &bytes, &size), 0);
        cm_envelope_t *decoded = NULL;
        int rc = cm_envelope_decode (bytes, size, &decoded);
        if (rc)
            fail_msg ("type %s does not round-trip: %d", cm_msg_name ((cm_msg_t) type), rc);
        assert_int_equal (decoded->type, type);
        assert_true (cm_value_equal (decoded->payload, envelope->payload));
        assert_int_equal (cm_msg_from_name (cm_msg_name ((cm_msg_t) type),
                                            strlen (cm_msg_name ((cm_msg_t) type))),
                          type);
        free (bytes);
        cm_envelope_destroy (&decoded);
        cm_envelope_destroy (&envelope);
    }
}

//  For every type with a required field: dropping it, or giving it the
//  wrong type, is CM_EPROTO, and *out stays untouched.
static void
test_every_type_rejects_missing_and_wrong_typed_fields (void **state)
{
    (void) state;
    for (int type = CM_MSG_NONE + 1; type < CM_MSG_COUNT; type++) {
        size_t count;
        const cm_field_t *fields = cm_msg_schema ((cm_msg_t) type, &count);
        for (size_t i = 0; i < count; i++) {
            for (int variant = 0; variant < 2; variant++) {
                if (variant == 0 && !fields[i].required)
                    continue;
                cm_envelope_t *envelope = cm_envelope_new ((cm_msg_t) type, "id");
                cm_value_destroy (&envelope->payload);
                envelope->payload = s_valid_payload ((cm_msg_t) type);
                cm_value_t *old = cm_map_take (envelope->payload, fields[i].name);
                cm_value_destroy (&old);
                if (variant == 1) //  a type no schema field accepts for this one
                    cm_map_set (envelope->payload, fields[i].name,
                                fields[i].type == CM_T_ARR ? cm_str_new ("x") : cm_arr_new ());
                char *bytes;
                size_t size;
                assert_int_equal (cm_envelope_encode (envelope, &bytes, &size), 0);
                cm_envelope_t *decoded = (cm_envelope_t *) 0x1;
                assert_int_equal (cm_envelope_decode (bytes, size, &decoded), CM_EPROTO);
                assert_ptr_equal (decoded, (cm_envelope_t *) 0x1);
                free (bytes);
                cm_envelope_destroy (&envelope);
            }
        }
    }
}

static void
test_string_over_field_limit_is_rejected (void **state)
{
    (void) state;
    cm_envelope_t *envelope = cm_envelope_new (CM_MSG_SESSION_GET, "id");
    char long_id[200];
    memset (long_id, 'a', sizeof long_id - 1);
    long_id[sizeof long_id - 1] = 0;
    cm_map_set_str (envelope->payload, "user", "bob");
    cm_map_set_str (envelope->payload, "session_id", long_id);
    char *bytes;
    size_t size;
    assert_int_equal (cm_envelope_encode (envelope, &bytes, &size), 0);
    cm_envelope_t *decoded = NULL;
    char why[128];
    assert_int_equal (cm_envelope_decode_why (bytes, size, &decoded, why, sizeof why), CM_EPROTO);
    assert_non_null (strstr (why, "session_id"));
    assert_null (decoded);
    free (bytes);
    cm_envelope_destroy (&envelope);
}

static void
test_every_truncation_is_rejected (void **state)
{
    (void) state;
    cm_envelope_t *envelope = cm_envelope_new (CM_MSG_TASK_COMPLETE, "r");
    cm_value_destroy (&envelope->payload);
    envelope->payload = s_valid_payload (CM_MSG_TASK_COMPLETE);
    char *bytes;
    size_t size;
    assert_int_equal (cm_envelope_encode (envelope, &bytes, &size), 0);
    for (size_t cut = 0; cut < size; cut++) {
        cm_envelope_t *decoded = NULL;
        assert_int_not_equal (cm_envelope_decode (bytes, cut, &decoded), 0);
        assert_null (decoded);
    }
    free (bytes);
    cm_envelope_destroy (&envelope);
}

static void
test_trailing_garbage_is_rejected (void **state)
{
    (void) state;
    cm_envelope_t *envelope = cm_envelope_new (CM_MSG_PING, "r");
    char *bytes;
    size_t size;
    assert_int_equal (cm_envelope_encode (envelope, &bytes, &size), 0);
    char *longer = malloc (size + 1);
    memcpy (longer, bytes, size);
    longer[size] = (char) 0xc0; //  a whole second object (nil)
    cm_envelope_t *decoded = NULL;
    assert_int_equal (cm_envelope_decode (longer, size + 1, &decoded), CM_EPROTO);
    assert_int_equal (cm_envelope_decode (bytes, size, &decoded), 0);
    cm_envelope_destroy (&decoded);
    free (longer);
    free (bytes);
    cm_envelope_destroy (&envelope);
}

static void
s_expect_rejected (const void *bytes, size_t size)
{
    cm_envelope_t *decoded = NULL;
    int rc = cm_envelope_decode (bytes, size, &decoded);
    assert_true (rc == CM_EPROTO || rc == CM_ETOOBIG);
    assert_null (decoded);
    cm_value_t *value = NULL;
    rc = cm_value_decode (bytes, size, &value);
    if (rc == 0)
        cm_value_destroy (&value); //  a bare value may be fine; an envelope is not
}

static void
test_malformed_envelopes_are_rejected (void **state)
{
    (void) state;
    //  [1, "ping", "r", {}] is 94 01 a4 70 69 6e 67 a1 72 80
    static const uint8_t good[] = {0x94, 0x01, 0xa4, 'p', 'i', 'n', 'g', 0xa1, 'r', 0x80};
    cm_envelope_t *decoded = NULL;
    assert_int_equal (cm_envelope_decode (good, sizeof good, &decoded), 0);
    cm_envelope_destroy (&decoded);

    static const uint8_t wrong_version[] = {0x94, 0x02, 0xa4, 'p', 'i', 'n', 'g', 0xa1, 'r', 0x80};
    static const uint8_t unknown_type[] = {0x94, 0x01, 0xa4, 'p', 'o', 'n', 'g', 0xa1, 'r', 0x80};
    static const uint8_t three_items[] = {0x93, 0x01, 0xa4, 'p', 'i', 'n', 'g', 0xa1, 'r'};
    static const uint8_t payload_array[] = {0x94, 0x01, 0xa4, 'p', 'i', 'n', 'g', 0xa1, 'r', 0x90};
    static const uint8_t type_is_int[] = {0x94, 0x01, 0x05, 0xa1, 'r', 0x80};
    static const uint8_t not_array[] = {0x80};
    //  map key that is an int, not a string
    static const uint8_t int_key[] = {0x94, 0x01, 0xa4, 'p', 'i', 'n', 'g', 0xa1, 'r', 0x81, 0x01, 0x02};
    //  duplicate key
    static const uint8_t dup_key[] = {0x94, 0x01, 0xa4, 'p', 'i', 'n', 'g', 0xa1, 'r', 0x82,
                                      0xa1, 'a', 0x01, 0xa1, 'a', 0x02};
    //  ext type inside the payload
    static const uint8_t ext[] = {0x94, 0x01, 0xa4, 'p', 'i', 'n', 'g', 0xa1, 'r', 0x81,
                                  0xa1, 'a', 0xd4, 0x01, 0x00};
    //  0xc1 is never used
    static const uint8_t reserved[] = {0x94, 0x01, 0xa4, 'p', 'i', 'n', 'g', 0xa1, 'r', 0xc1};
    //  uint64 above INT64_MAX
    static const uint8_t huge_uint[] = {0x94, 0x01, 0xa4, 'p', 'i', 'n', 'g', 0xa1, 'r', 0x81,
                                        0xa1, 'a', 0xcf, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
    s_expect_rejected (wrong_version, sizeof wrong_version);
    s_expect_rejected (unknown_type, sizeof unknown_type);
    s_expect_rejected (three_items, sizeof three_items);
    s_expect_rejected (payload_array, sizeof payload_array);
    s_expect_rejected (type_is_int, sizeof type_is_int);
    s_expect_rejected (not_array, sizeof not_array);
    s_expect_rejected (int_key, sizeof int_key);
    s_expect_rejected (dup_key, sizeof dup_key);
    s_expect_rejected (ext, sizeof ext);
    s_expect_rejected (reserved, sizeof reserved);
    s_expect_rejected (huge_uint, sizeof huge_uint);
    s_expect_rejected ("", 0);
    s_expect_rejected (NULL, 0);
}

//  Declared lengths far beyond the bytes present must not allocate.
static void
test_lying_lengths_are_rejected (void **state)
{
    (void) state;
    static const uint8_t array32[] = {0xdd, 0xff, 0xff, 0xff, 0xff, 0x01};
    static const uint8_t map32[] = {0xdf, 0x7f, 0xff, 0xff, 0xff};
    static const uint8_t str32[] = {0x94, 0x01, 0xdb, 0xff, 0xff, 0xff, 0xff, 'p'};
    static const uint8_t bin32[] = {0xc6, 0x00, 0x20, 0x00, 0x00, 'x'};
    s_expect_rejected (array32, sizeof array32);
    s_expect_rejected (map32, sizeof map32);
    s_expect_rejected (str32, sizeof str32);
    s_expect_rejected (bin32, sizeof bin32);
}

static void
test_oversize_and_deep_input_is_rejected (void **state)
{
    (void) state;
    //  A string over the 1 MiB limit that is really there.
    size_t big = CM_MAX_STRING_BYTES + 16;
    uint8_t *bytes = calloc (1, big + 5);
    bytes[0] = 0xdb;
    bytes[1] = (uint8_t) ((big) >> 24);
    bytes[2] = (uint8_t) ((big) >> 16);
    bytes[3] = (uint8_t) ((big) >> 8);
    bytes[4] = (uint8_t) big;
    cm_value_t *value = NULL;
    assert_int_equal (cm_value_decode (bytes, big + 5, &value), CM_ETOOBIG);
    assert_null (value);
    free (bytes);
    //  Whole message over the limit.
    size_t huge = CM_MAX_MESSAGE_BYTES + 1;
    bytes = calloc (1, huge);
    assert_int_equal (cm_value_decode (bytes, huge, &value), CM_ETOOBIG);
    free (bytes);
    //  Nesting deeper than CM_MAX_DEPTH: [[[[...]]]]
    uint8_t deep[64];
    memset (deep, 0x91, sizeof deep);
    deep[sizeof deep - 1] = 0x90;
    assert_int_equal (cm_value_decode (deep, sizeof deep, &value), CM_EPROTO);
    assert_null (value);
    //  Encoding refuses to build what decoding would refuse.
    cm_value_t *nested = cm_arr_new ();
    for (int i = 0; i < CM_MAX_DEPTH + 2; i++) {
        cm_value_t *outer = cm_arr_new ();
        cm_arr_push (outer, nested);
        nested = outer;
    }
    char *out;
    size_t size;
    assert_int_equal (cm_value_encode (nested, &out, &size), CM_ETOOBIG);
    cm_value_destroy (&nested);
}

//  Random bytes and random mutations of a valid message: no crash, and a
//  success always yields a schema-valid envelope. Some mutations must still
//  decode (a flip inside a string stays valid), or the loop proved nothing
//  about the success branch.
static void
test_random_mutations_never_crash (void **state)
{
    (void) state;
    cm_envelope_t *envelope = cm_envelope_new (CM_MSG_FEEDBACK_PUT, "x");
    cm_value_destroy (&envelope->payload);
    envelope->payload = s_valid_payload (CM_MSG_FEEDBACK_PUT);
    char *bytes;
    size_t size;
    assert_int_equal (cm_envelope_encode (envelope, &bytes, &size), 0);
    srand (12345);
    int decoded_count = 0;
    for (int round = 0; round < 20000; round++) {
        char *copy = malloc (size);
        memcpy (copy, bytes, size);
        int flips = 1 + rand () % 4;
        for (int f = 0; f < flips; f++)
            copy[rand () % size] = (char) (rand () & 0xff);
        cm_envelope_t *decoded = NULL;
        if (cm_envelope_decode (copy, size, &decoded) == 0) {
            assert_int_equal (cm_msg_validate (decoded->type, decoded->payload, NULL, 0), 0);
            cm_envelope_destroy (&decoded);
            decoded_count++;
        }
        free (copy);
    }
    assert_true (decoded_count > 100);
    assert_true (decoded_count < 20000);
    free (bytes);
    cm_envelope_destroy (&envelope);
}

static void
test_error_reply_carries_code_and_id (void **state)
{
    (void) state;
    cm_envelope_t *request = cm_envelope_new (CM_MSG_SESSION_GET, "abc");
    cm_envelope_t *reply = cm_envelope_reply_error (request, CM_ENOTFOUND, NULL);
    assert_int_equal (reply->type, CM_MSG_ERROR);
    assert_string_equal (reply->request_id, "abc");
    assert_int_equal (cm_map_int (reply->payload, "code", 0), CM_ENOTFOUND);
    assert_string_equal (cm_map_str (reply->payload, "message"), "no such record");
    assert_string_equal (cm_strerror (CM_ENOTFOUND), "no such record");
    assert_string_equal (cm_error_name (CM_ECONFLICT), "ECONFLICT");
    cm_envelope_destroy (&reply);
    cm_envelope_destroy (&request);
}

//  An envelope whose payload cannot be decoded still yields its request id,
//  so the error reply can reach the caller.
static void
test_request_id_is_peeked_from_invalid_payloads (void **state)
{
    (void) state;
    cm_envelope_t *envelope = cm_envelope_new (CM_MSG_FEEDBACK_PUT, "req-77");
    char long_key[300];
    memset (long_key, 'k', sizeof long_key - 1);
    long_key[sizeof long_key - 1] = 0;
    cm_map_set_str (envelope->payload, long_key, "v"); //  keys over 256 bytes are refused
    char *bytes;
    size_t size;
    assert_int_equal (cm_envelope_encode (envelope, &bytes, &size), 0);
    cm_envelope_t *decoded = NULL;
    assert_int_equal (cm_envelope_decode (bytes, size, &decoded), CM_EPROTO);
    char id[CM_REQUEST_ID_MAX + 1];
    assert_int_equal (cm_envelope_peek_request_id (bytes, size, id, sizeof id), 0);
    assert_string_equal (id, "req-77");
    //  Not an envelope at all, or cut before the id: no id.
    assert_int_equal (cm_envelope_peek_request_id ("\x93", 1, id, sizeof id), CM_EPROTO);
    assert_int_equal (cm_envelope_peek_request_id (bytes, 4, id, sizeof id), CM_EPROTO);
    free (bytes);
    cm_envelope_destroy (&envelope);
}

//  Floats are finite: NaN and infinity are refused both ways.
static void
test_non_finite_floats_are_rejected (void **state)
{
    (void) state;
    //  {"t": NaN} and {"t": +inf} as bare values, float64
    static const uint8_t nan64[] = {0x81, 0xa1, 't', 0xcb, 0x7f, 0xf8, 0, 0, 0, 0, 0, 0};
    static const uint8_t inf64[] = {0x81, 0xa1, 't', 0xcb, 0x7f, 0xf0, 0, 0, 0, 0, 0, 0};
    static const uint8_t nan32[] = {0x81, 0xa1, 't', 0xca, 0x7f, 0xc0, 0, 0};
    static const uint8_t fine[] = {0x81, 0xa1, 't', 0xcb, 0x3f, 0xe0, 0, 0, 0, 0, 0, 0};
    cm_value_t *value = NULL;
    assert_int_equal (cm_value_decode (nan64, sizeof nan64, &value), CM_EPROTO);
    assert_int_equal (cm_value_decode (inf64, sizeof inf64, &value), CM_EPROTO);
    assert_int_equal (cm_value_decode (nan32, sizeof nan32, &value), CM_EPROTO);
    assert_null (value);
    assert_int_equal (cm_value_decode (fine, sizeof fine, &value), 0);
    assert_true (cm_map_dbl (value, "t", 0) == 0.5);
    cm_value_destroy (&value);
    cm_value_t *map = cm_map_new ();
    cm_map_set_dbl (map, "t", NAN);
    char *bytes = NULL;
    size_t size;
    assert_int_equal (cm_value_encode (map, &bytes, &size), CM_EINVAL);
    assert_null (bytes);
    cm_value_destroy (&map);
}

//  The streaming packer gives cm_value_encode's bytes for the same map
//  built in the same order, whatever the types and size classes.
static void
test_packer_bytes_equal_value_encoding (void **state)
{
    (void) state;
    static const int64_t ints[] = {0,       1,          127,        128,       255,
                                   256,     65535,      65536,      INT32_MAX, INT64_MAX,
                                   -1,      -32,        -33,        -128,      -129,
                                   -32768,  -32769,     INT32_MIN,  INT64_MIN};
    static const size_t lengths[] = {0, 1, 31, 32, 255, 256, 65535, 65536};
    size_t count = 3 + sizeof ints / sizeof ints[0] + sizeof lengths / sizeof lengths[0];
    char *text = malloc (65537);
    memset (text, 'x', 65536);
    cm_value_t *nested = cm_map_new ();
    cm_map_set_dbl (nested, "score", 0.5);
    cm_value_t *list = cm_arr_new ();
    cm_arr_push (list, cm_str_new ("a"));
    cm_arr_push (list, cm_bin_new ("\0\1", 2));
    cm_arr_push (list, cm_nil_new ());
    cm_map_set (nested, "list", list);

    cm_value_t *map = cm_map_new ();
    cm_packer_t *pk = cm_packer_new ();
    assert_non_null (pk);
    for (int round = 0; round < 2; round++) { //  the second reuses the buffer
        cm_packer_reset (pk);
        cm_pack_map (pk, count);
        cm_pack_str (pk, "nil");
        cm_pack_str (pk, NULL);
        cm_pack_str (pk, "flags");
        cm_pack_bool (pk, round == 0);
        cm_pack_str (pk, "nested");
        cm_pack_value (pk, nested);
        if (round == 0) {
            cm_map_set_nil (map, "nil");
            cm_map_set_bool (map, "flags", true);
            cm_map_set (map, "nested", cm_value_dup (nested));
        }
        else
            cm_map_set_bool (map, "flags", false);
        for (size_t i = 0; i < sizeof ints / sizeof ints[0]; i++) {
            char key[24];
            snprintf (key, sizeof key, "i%zu", i);
            cm_pack_str (pk, key);
            cm_pack_int (pk, ints[i]);
            cm_map_set_int (map, key, ints[i]);
        }
        for (size_t i = 0; i < sizeof lengths / sizeof lengths[0]; i++) {
            char key[24];
            snprintf (key, sizeof key, "s%zu", i);
            text[lengths[i]] = 0;
            cm_pack_str (pk, key);
            cm_pack_str (pk, text);
            cm_map_set_str (map, key, text);
            text[lengths[i]] = 'x';
        }
        const char *packed;
        size_t packed_size;
        assert_int_equal (cm_packer_finish (pk, &packed, &packed_size), 0);
        char *encoded;
        size_t encoded_size;
        assert_int_equal (cm_value_encode (map, &encoded, &encoded_size), 0);
        assert_int_equal (packed_size, encoded_size);
        assert_memory_equal (packed, encoded, encoded_size);
        free (encoded);
    }
    cm_value_destroy (&map);
    cm_value_destroy (&nested);
    free (text);
    cm_packer_destroy (&pk);
    assert_null (pk);
}

//  The first error sticks until the next reset; a record never half-passes.
static void
test_packer_errors_stick_until_reset (void **state)
{
    (void) state;
    cm_packer_t *pk = cm_packer_new ();
    const char *data;
    size_t size;
    cm_value_t *bad = cm_dbl_new (NAN);
    cm_pack_map (pk, 2);
    cm_pack_str (pk, "x");
    cm_pack_value (pk, bad);
    cm_pack_str (pk, "y");
    cm_pack_int (pk, 1);
    assert_int_equal (cm_packer_finish (pk, &data, &size), CM_EINVAL);
    cm_value_destroy (&bad);

    char *big = malloc (CM_MAX_STRING_BYTES + 2);
    memset (big, 'b', CM_MAX_STRING_BYTES + 1);
    big[CM_MAX_STRING_BYTES + 1] = 0;
    cm_packer_reset (pk);
    cm_pack_str (pk, big);
    cm_pack_nil (pk);
    assert_int_equal (cm_packer_finish (pk, &data, &size), CM_ETOOBIG);
    free (big);

    cm_packer_reset (pk);
    cm_pack_nil (pk);
    assert_int_equal (cm_packer_finish (pk, &data, &size), 0);
    assert_int_equal (size, 1);
    assert_int_equal ((unsigned char) data[0], 0xc0);
    cm_packer_destroy (&pk);
}

//  msgpack's smallest form for every size class, byte for byte: the
//  store's records and every peer depend on these exact encodings.
typedef struct {
    cm_value_t *value;
    const char *head; //  expected leading bytes
    size_t head_len;
    size_t body_len; //  bytes after head
} s_golden_t;

static cm_value_t *
s_sized (cm_type_t type, size_t n)
{
    if (type == CM_T_STR || type == CM_T_BIN) {
        char *bytes = calloc (1, n + 1);
        memset (bytes, 'z', n);
        cm_value_t *v = type == CM_T_STR ? cm_strn_new (bytes, n) : cm_bin_new (bytes, n);
        free (bytes);
        return v;
    }
    cm_value_t *v = type == CM_T_ARR ? cm_arr_new () : cm_map_new ();
    for (size_t i = 0; i < n; i++) {
        if (type == CM_T_ARR)
            cm_arr_push (v, cm_nil_new ());
        else {
            char key[24];
            snprintf (key, sizeof key, "%05zu", i);
            cm_map_set_nil (v, key);
        }
    }
    return v;
}

static void
test_encodings_match_msgpack_byte_for_byte (void **state)
{
    (void) state;
#define G(v, h, body) {v, h, sizeof h - 1, body}
    s_golden_t cases[] = {
        G (cm_nil_new (), "\xc0", 0),
        G (cm_bool_new (true), "\xc3", 0),
        G (cm_bool_new (false), "\xc2", 0),
        G (cm_int_new (0), "\x00", 0),
        G (cm_int_new (127), "\x7f", 0),
        G (cm_int_new (128), "\xcc\x80", 0),
        G (cm_int_new (255), "\xcc\xff", 0),
        G (cm_int_new (256), "\xcd\x01\x00", 0),
        G (cm_int_new (65535), "\xcd\xff\xff", 0),
        G (cm_int_new (65536), "\xce\x00\x01\x00\x00", 0),
        G (cm_int_new (INT64_C (4294967295)), "\xce\xff\xff\xff\xff", 0),
        G (cm_int_new (INT64_C (4294967296)), "\xcf\x00\x00\x00\x01\x00\x00\x00\x00", 0),
        G (cm_int_new (INT64_MAX), "\xcf\x7f\xff\xff\xff\xff\xff\xff\xff", 0),
        G (cm_int_new (-1), "\xff", 0),
        G (cm_int_new (-32), "\xe0", 0),
        G (cm_int_new (-33), "\xd0\xdf", 0),
        G (cm_int_new (-128), "\xd0\x80", 0),
        G (cm_int_new (-129), "\xd1\xff\x7f", 0),
        G (cm_int_new (-32768), "\xd1\x80\x00", 0),
        G (cm_int_new (-32769), "\xd2\xff\xff\x7f\xff", 0),
        G (cm_int_new (INT32_MIN), "\xd2\x80\x00\x00\x00", 0),
        G (cm_int_new (INT64_C (-2147483649)), "\xd3\xff\xff\xff\xff\x7f\xff\xff\xff", 0),
        G (cm_int_new (INT64_MIN), "\xd3\x80\x00\x00\x00\x00\x00\x00\x00", 0),
        G (cm_dbl_new (0.5), "\xcb\x3f\xe0\x00\x00\x00\x00\x00\x00", 0),
        G (cm_dbl_new (-2.0), "\xcb\xc0\x00\x00\x00\x00\x00\x00\x00", 0),
        G (s_sized (CM_T_STR, 0), "\xa0", 0),
        G (s_sized (CM_T_STR, 31), "\xbf", 31),
        G (s_sized (CM_T_STR, 32), "\xd9\x20", 32),
        G (s_sized (CM_T_STR, 255), "\xd9\xff", 255),
        G (s_sized (CM_T_STR, 256), "\xda\x01\x00", 256),
        G (s_sized (CM_T_STR, 65535), "\xda\xff\xff", 65535),
        G (s_sized (CM_T_STR, 65536), "\xdb\x00\x01\x00\x00", 65536),
        G (s_sized (CM_T_BIN, 0), "\xc4\x00", 0),
        G (s_sized (CM_T_BIN, 255), "\xc4\xff", 255),
        G (s_sized (CM_T_BIN, 256), "\xc5\x01\x00", 256),
        G (s_sized (CM_T_BIN, 65536), "\xc6\x00\x01\x00\x00", 65536),
        G (s_sized (CM_T_ARR, 0), "\x90", 0),
        G (s_sized (CM_T_ARR, 15), "\x9f", 15),
        G (s_sized (CM_T_ARR, 16), "\xdc\x00\x10", 16),
        G (s_sized (CM_T_ARR, 65536), "\xdd\x00\x01\x00\x00", 65536),
        G (s_sized (CM_T_MAP, 0), "\x80", 0),
        G (s_sized (CM_T_MAP, 15), "\x8f\xa5" "00000\xc0", 15 * 7 - 7),
        G (s_sized (CM_T_MAP, 16), "\xde\x00\x10\xa5" "00000\xc0", 16 * 7 - 7),
    };
#undef G
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *bytes;
        size_t size;
        assert_int_equal (cm_value_encode (cases[i].value, &bytes, &size), 0);
        if (size != cases[i].head_len + cases[i].body_len
            || memcmp (bytes, cases[i].head, cases[i].head_len) != 0)
            fail_msg ("case %zu: %zu bytes, first 0x%02x", i, size, (unsigned char) bytes[0]);
        cm_value_t *back = NULL;
        assert_int_equal (cm_value_decode (bytes, size, &back), 0);
        assert_true (cm_value_equal (back, cases[i].value));
        cm_value_destroy (&back);
        free (bytes);
        cm_value_destroy (&cases[i].value);
    }
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_encodings_match_msgpack_byte_for_byte),
        cmocka_unit_test (test_packer_bytes_equal_value_encoding),
        cmocka_unit_test (test_packer_errors_stick_until_reset),
        cmocka_unit_test (test_feedback_put_round_trip),
        cmocka_unit_test (test_every_type_round_trips),
        cmocka_unit_test (test_every_type_rejects_missing_and_wrong_typed_fields),
        cmocka_unit_test (test_string_over_field_limit_is_rejected),
        cmocka_unit_test (test_every_truncation_is_rejected),
        cmocka_unit_test (test_trailing_garbage_is_rejected),
        cmocka_unit_test (test_malformed_envelopes_are_rejected),
        cmocka_unit_test (test_lying_lengths_are_rejected),
        cmocka_unit_test (test_oversize_and_deep_input_is_rejected),
        cmocka_unit_test (test_random_mutations_never_crash),
        cmocka_unit_test (test_error_reply_carries_code_and_id),
        cmocka_unit_test (test_request_id_is_peeked_from_invalid_payloads),
        cmocka_unit_test (test_non_finite_floats_are_rejected),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
