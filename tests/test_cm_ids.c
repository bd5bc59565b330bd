/*  test_cm_ids: message-id parsing (underscores!), session ids, event ids.  */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "cm_error.h"
#include "cm_ids.h"

#include <string.h>

static void
test_msgid_with_underscored_session (void **state)
{
    (void) state;
    cm_msgid_t id;
    assert_int_equal (cm_msgid_parse ("msg_123_test_session_123_assistant", &id), 0);
    assert_string_equal (id.uuid, "123");
    assert_string_equal (id.session_id, "test_session_123");
    assert_string_equal (id.role, "assistant");
    assert_int_equal (cm_msgid_parse ("msg_abc_s_user", &id), 0);
    assert_string_equal (id.session_id, "s");
    assert_string_equal (id.role, "user");
    assert_int_equal (cm_msgid_parse ("msg_a-b_x__y_system", &id), 0);
    assert_string_equal (id.session_id, "x__y");
}

static void
test_msgid_format_then_parse (void **state)
{
    (void) state;
    char uuid[CM_UUID_LEN + 1], text[CM_MESSAGE_ID_MAX + 1];
    cm_uuid (uuid);
    assert_int_equal (strlen (uuid), CM_UUID_LEN);
    assert_null (strchr (uuid, '_'));
    assert_int_equal (cm_msgid_format (text, sizeof text, uuid, "a_b-c", "user"), 0);
    cm_msgid_t id;
    assert_int_equal (cm_msgid_parse (text, &id), 0);
    assert_string_equal (id.uuid, uuid);
    assert_string_equal (id.session_id, "a_b-c");
}

static void
test_bad_msgids_are_rejected_and_leave_output_alone (void **state)
{
    (void) state;
    const char *bad[] = {
        "", "msg_", "msg__s_user", "msg_u_s_", "msg_u_s_admin", "msg_u__user",
        "message_u_s_user", "msg_u_s", "msg_u_s user_user", "msg_u_s/../x_user",
        "msg_u_s_user\n", "MSG_u_s_user", "msg_u_s%00_user", NULL};
    cm_msgid_t id;
    memset (&id, 'z', sizeof id);
    for (int i = 0; bad[i]; i++) {
        assert_int_equal (cm_msgid_parse (bad[i], &id), CM_EPROTO);
        assert_int_equal (id.uuid[0], 'z');
    }
    assert_int_equal (cm_msgid_parse (NULL, &id), CM_EPROTO);
    char long_session[CM_SESSION_ID_MAX + 20] = "msg_u_";
    memset (long_session + 6, 's', CM_SESSION_ID_MAX + 1);
    strcpy (long_session + 6 + CM_SESSION_ID_MAX + 1, "_user");
    assert_int_equal (cm_msgid_parse (long_session, &id), CM_EPROTO);
}

static void
test_session_ids (void **state)
{
    (void) state;
    assert_true (cm_session_id_valid ("test_session_123"));
    assert_true (cm_session_id_valid ("A-z_0"));
    assert_false (cm_session_id_valid (""));
    assert_false (cm_session_id_valid ("a b"));
    assert_false (cm_session_id_valid ("a/b"));
    assert_false (cm_session_id_valid ("ä"));
    assert_false (cm_session_id_valid (NULL));
    char max[CM_SESSION_ID_MAX + 2];
    memset (max, 'x', CM_SESSION_ID_MAX);
    max[CM_SESSION_ID_MAX] = 0;
    assert_true (cm_session_id_valid (max));
    max[CM_SESSION_ID_MAX] = 'x';
    max[CM_SESSION_ID_MAX + 1] = 0;
    assert_false (cm_session_id_valid (max));
}

static void
test_event_ids (void **state)
{
    (void) state;
    cm_event_id_t id;
    assert_int_equal (cm_event_id_parse ("1732520000123-42", &id), 0);
    assert_true (id.epoch == 1732520000123ULL && id.seq == 42);
    char text[48];
    cm_event_id_format (text, sizeof text, id);
    assert_string_equal (text, "1732520000123-42");
    const char *bad[] = {"", "-", "1-", "-1", "1", "a-1", "1-1x", "1--1", " 1-1",
                         "1-99999999999999999999999", "+1-1", NULL};
    for (int i = 0; bad[i]; i++)
        assert_int_equal (cm_event_id_parse (bad[i], &id), CM_EPROTO);
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_msgid_with_underscored_session),
        cmocka_unit_test (test_msgid_format_then_parse),
        cmocka_unit_test (test_bad_msgids_are_rejected_and_leave_output_alone),
        cmocka_unit_test (test_session_ids),
        cmocka_unit_test (test_event_ids),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
