/*  test_st_reads.c: which node of a replicated store serves a read, and
    the applied index a write's reply carries (store/st_reads.h).  */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "cm_error.h"
#include "cm_leader.h"
#include "st_reads.h"

#include <string.h>

static cm_envelope_t *
s_read (void)
{
    cm_envelope_t *request = cm_envelope_new (CM_MSG_SESSION_GET, "r1");
    assert_non_null (request);
    cm_map_set_str (request->payload, "user", "alice");
    cm_map_set_str (request->payload, "session_id", "s1");
    return request;
}

static int
s_check (bool leader, uint64_t applied, const cm_envelope_t *request)
{
    char why[160] = "";
    return st_reads_check (leader, applied, request, why, sizeof why);
}

//  The usage: a follower serves a read that needs no more than it has
//  applied, and refuses one ahead of it.
static void
test_a_follower_serves_what_it_has_applied (void **state)
{
    (void) state;
    cm_envelope_t *request = s_read ();
    cm_map_set_int (request->payload, CM_LEADER_MIN_FIELD, 41);
    assert_int_equal (s_check (false, 40, request), CM_ENOTLEADER);
    assert_int_equal (s_check (false, 41, request), 0);
    assert_int_equal (s_check (false, 1000, request), 0);
    cm_map_set_int (request->payload, CM_LEADER_MIN_FIELD, 0);
    assert_int_equal (s_check (false, 0, request), 0);
    cm_envelope_destroy (&request);
}

static void
test_a_read_without_min_index_is_the_leaders (void **state)
{
    (void) state;
    cm_envelope_t *request = s_read ();
    assert_int_equal (s_check (false, 1000, request), CM_ENOTLEADER);
    assert_int_equal (s_check (true, 0, request), 0);
    //  nil is absent (an optional field).
    cm_map_set (request->payload, CM_LEADER_MIN_FIELD, cm_nil_new ());
    assert_int_equal (s_check (false, 1000, request), CM_ENOTLEADER);
    assert_int_equal (s_check (true, 0, request), 0);
    cm_envelope_destroy (&request);
}

static void
test_the_leader_serves_every_read (void **state)
{
    (void) state;
    cm_envelope_t *request = s_read ();
    cm_map_set_int (request->payload, CM_LEADER_MIN_FIELD, INT64_MAX);
    assert_int_equal (s_check (true, 3, request), 0);
    assert_int_equal (s_check (false, UINT64_MAX - 1, request), 0);
    assert_int_equal (s_check (false, (uint64_t) INT64_MAX - 1, request), CM_ENOTLEADER);
    cm_envelope_destroy (&request);
}

static void
test_a_bad_min_index_is_refused_with_the_reason (void **state)
{
    (void) state;
    cm_envelope_t *request = s_read ();
    char why[160];
    cm_map_set_int (request->payload, CM_LEADER_MIN_FIELD, -1);
    assert_int_equal (st_reads_check (true, 10, request, why, sizeof why), CM_EPROTO);
    assert_string_equal (why, "field 'min_index' must be a non-negative integer");
    cm_map_set_str (request->payload, CM_LEADER_MIN_FIELD, "5");
    why[0] = 0;
    assert_int_equal (st_reads_check (false, 10, request, why, sizeof why), CM_EPROTO);
    assert_string_equal (why, "field 'min_index' must be a non-negative integer");
    cm_map_set (request->payload, CM_LEADER_MIN_FIELD, cm_dbl_new (1.0));
    assert_int_equal (st_reads_check (false, 10, request, why, sizeof why), CM_EPROTO);
    cm_envelope_destroy (&request);
}

static void
test_an_ok_reply_is_stamped_with_the_index (void **state)
{
    (void) state;
    cm_envelope_t *request = s_read ();
    cm_envelope_t *ok = cm_envelope_reply_ok (request, cm_map_new ());
    st_reads_stamp (ok, 57);
    assert_int_equal (cm_map_int (ok->payload, CM_LEADER_APPLIED_FIELD, -1), 57);
    cm_envelope_t *error = cm_envelope_reply_error (request, CM_ENOTFOUND, "no such session");
    st_reads_stamp (error, 57);
    assert_null (cm_map_get (error->payload, CM_LEADER_APPLIED_FIELD));
    cm_envelope_t *unreplicated = cm_envelope_reply_ok (request, cm_map_new ());
    st_reads_stamp (unreplicated, 0);
    assert_null (cm_map_get (unreplicated->payload, CM_LEADER_APPLIED_FIELD));
    st_reads_stamp (NULL, 57);
    cm_envelope_destroy (&unreplicated);
    cm_envelope_destroy (&error);
    cm_envelope_destroy (&ok);
    cm_envelope_destroy (&request);
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_a_follower_serves_what_it_has_applied),
        cmocka_unit_test (test_a_read_without_min_index_is_the_leaders),
        cmocka_unit_test (test_the_leader_serves_every_read),
        cmocka_unit_test (test_a_bad_min_index_is_refused_with_the_reason),
        cmocka_unit_test (test_an_ok_reply_is_stamped_with_the_index),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
