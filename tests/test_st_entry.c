/*  test_st_entry.c: the replicated store's Raft entries: round trip,
    padding, limits, and every refusal of a damaged entry.               */
#include "test_st_util.h"

#include "st_entry.h"

static cm_envelope_t *
s_vote (const char *user)
{
    cm_envelope_t *request = st_req (CM_MSG_FEEDBACK_PUT, user);
    cm_map_set_str (request->payload, "message_id", "msg_1");
    cm_map_set_str (request->payload, "feedback_type", "upvote");
    return request;
}

static void
test_round_trip (void **state)
{
    (void) state;
    cm_envelope_t *requests[2] = {s_vote ("alice"), s_vote ("bob")};
    cm_envelope_t *claim = st_req (CM_MSG_TASK_CLAIM, NULL);
    cm_map_set_str (claim->payload, "worker", "rg-1");
    st_entry_t entry = {.kind = ST_ENTRY_BATCH, .now_ms = 1764000000123, .origin = 3,
                        .requests = requests, .n = 2, .claims = &claim, .m = 1};
    for (int i = 0; i < ST_DET_SEED_BYTES; i++)
        entry.seed[i] = (unsigned char) (i * 7);
    char *data;
    size_t size;
    assert_int_equal (st_entry_encode (&entry, &data, &size), 0);
    assert_int_equal (size % ST_ENTRY_ALIGN, 0);
    st_entry_t back;
    char why[128];
    assert_int_equal (st_entry_decode (data, size, &back, why, sizeof why), 0);
    assert_int_equal (back.kind, ST_ENTRY_BATCH);
    assert_int_equal (back.now_ms, 1764000000123);
    assert_int_equal (back.origin, 3);
    assert_memory_equal (back.seed, entry.seed, ST_DET_SEED_BYTES);
    assert_int_equal (back.n, 2);
    assert_int_equal (back.m, 1);
    assert_int_equal (back.requests[1]->type, CM_MSG_FEEDBACK_PUT);
    assert_string_equal (cm_map_str (back.requests[1]->payload, "user"), "bob");
    assert_true (cm_value_equal (back.claims[0]->payload, claim->payload));
    st_entry_clear (&back);
    free (data);
    cm_envelope_destroy (&requests[0]);
    cm_envelope_destroy (&requests[1]);
    cm_envelope_destroy (&claim);
}

static void
test_upkeep (void **state)
{
    (void) state;
    st_entry_t entry = {.kind = ST_ENTRY_UPKEEP, .now_ms = 5, .origin = 1};
    char *data;
    size_t size;
    assert_int_equal (st_entry_encode (&entry, &data, &size), 0);
    assert_int_equal (size, ST_ENTRY_HEADER);
    st_entry_t back;
    char why[128];
    assert_int_equal (st_entry_decode (data, size, &back, why, sizeof why), 0);
    assert_int_equal (back.kind, ST_ENTRY_UPKEEP);
    assert_int_equal (back.n + back.m, 0);
    st_entry_clear (&back);
    free (data);
    //  An upkeep entry carries no request.
    cm_envelope_t *vote = s_vote ("alice");
    entry.requests = &vote;
    entry.n = 1;
    assert_int_equal (st_entry_encode (&entry, &data, &size), CM_EINVAL);
    cm_envelope_destroy (&vote);
}

static void
test_limits (void **state)
{
    (void) state;
    cm_envelope_t *vote = s_vote ("alice");
    cm_envelope_t *many[ST_ENTRY_ITEMS_MAX + 1];
    for (size_t i = 0; i <= ST_ENTRY_ITEMS_MAX; i++)
        many[i] = vote;
    st_entry_t entry = {.kind = ST_ENTRY_BATCH, .requests = many, .n = ST_ENTRY_ITEMS_MAX};
    char *data;
    size_t size;
    assert_int_equal (st_entry_encode (&entry, &data, &size), 0);
    st_entry_t back;
    char why[128];
    assert_int_equal (st_entry_decode (data, size, &back, why, sizeof why), 0);
    assert_int_equal (back.n, ST_ENTRY_ITEMS_MAX);
    st_entry_clear (&back);
    free (data);
    entry.n = ST_ENTRY_ITEMS_MAX + 1;
    assert_int_equal (st_entry_encode (&entry, &data, &size), CM_EINVAL);
    entry.n = 0;
    entry.kind = 9;
    assert_int_equal (st_entry_encode (&entry, &data, &size), CM_EINVAL);
    cm_envelope_destroy (&vote);
}

static void
s_refused (const void *data, size_t size, const char *reason)
{
    st_entry_t back;
    char why[128] = "";
    assert_int_equal (st_entry_decode (data, size, &back, why, sizeof why), CM_EPROTO);
    if (!strstr (why, reason))
        fail_msg ("\"%s\" does not say \"%s\"", why, reason);
    assert_null (back.requests);
    assert_int_equal (back.n, 0);
}

static void
test_damage (void **state)
{
    (void) state;
    cm_envelope_t *vote = s_vote ("alice");
    st_entry_t entry = {.kind = ST_ENTRY_BATCH, .requests = &vote, .n = 1};
    char *data;
    size_t size;
    assert_int_equal (st_entry_encode (&entry, &data, &size), 0);
    unsigned char *copy = malloc (size + 16);
    s_refused (data, 10, "no CMRE header");
    memcpy (copy, data, size);
    copy[0] = 'X';
    s_refused (copy, size, "no CMRE header");
    memcpy (copy, data, size);
    copy[4] = 2;
    s_refused (copy, size, "unknown version");
    memcpy (copy, data, size);
    copy[5] = 3;
    s_refused (copy, size, "unknown kind");
    memcpy (copy, data, size);
    copy[43] = 1; //  n = 257
    copy[42] = 1;
    s_refused (copy, size, "too many requests");
    memcpy (copy, data, size);
    copy[5] = ST_ENTRY_UPKEEP;
    s_refused (copy, size, "upkeep entry with requests");
    //  Every cut inside the envelope.
    for (size_t cut = ST_ENTRY_HEADER; cut < size - ST_ENTRY_ALIGN; cut += 3) {
        st_entry_t back;
        char why[128];
        assert_int_equal (st_entry_decode (data, cut, &back, why, sizeof why), CM_EPROTO);
    }
    memcpy (copy, data, size);
    copy[ST_ENTRY_HEADER] = 0x7f; //  a length far past the end
    s_refused (copy, size, "cut short");
    memcpy (copy, data, size);
    memset (copy + size, 0, 16);
    s_refused (copy, size + 8, "trailing bytes");
    memcpy (copy, data, size);
    copy[ST_ENTRY_HEADER + 4] ^= 0xff; //  the envelope's first byte
    s_refused (copy, size, "does not decode");
    free (copy);
    free (data);
    cm_envelope_destroy (&vote);
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_round_trip),
        cmocka_unit_test (test_upkeep),
        cmocka_unit_test (test_limits),
        cmocka_unit_test (test_damage),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
