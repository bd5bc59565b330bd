/*  test_cm_msg: the schemas check the CM_*_MAX limits the gateway uses.  */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "cm_error.h"
#include "cm_ids.h"
#include "cm_msg.h"

#include <string.h>

//  A payload of `type` with its required fields set ("x", 1) and
//  `field` set to `len` bytes of 'a'.
static int
s_validate_with (cm_msg_t type, const char *field, size_t len)
{
    cm_value_t *payload = cm_map_new ();
    size_t count;
    const cm_field_t *fields = cm_msg_schema (type, &count);
    for (size_t i = 0; i < count; i++)
        if (fields[i].required && fields[i].type == CM_T_STR)
            cm_map_set_str (payload, fields[i].name, "x");
        else if (fields[i].required && fields[i].type == CM_T_INT)
            cm_map_set_int (payload, fields[i].name, 1);
    char text[1024];
    assert_true (len < sizeof text);
    memset (text, 'a', len);
    cm_map_set_strn (payload, field, text, len);
    int rc = cm_msg_validate (type, payload, NULL, 0);
    cm_value_destroy (&payload);
    return rc;
}

static void
test_limits_are_the_shared_constants (void **state)
{
    (void) state;
    const struct {
        cm_msg_t type;
        const char *field;
        size_t max;
    } limits[] = {
        {CM_MSG_SESSION_GET, "ua", CM_UA_MAX},
        {CM_MSG_SESSION_GET, "user", CM_USER_MAX},
        {CM_MSG_SESSION_GET, "session_id", CM_SESSION_ID_MAX},
        {CM_MSG_TASK_STATUS, "task_id", CM_TASK_ID_MAX},
        {CM_MSG_TASK_CANCEL, "task_id", CM_TASK_ID_MAX},
        {CM_MSG_TASK_COMPLETE, "task_id", CM_TASK_ID_MAX},
        {CM_MSG_MESSAGE_EDIT, "message_id", CM_MESSAGE_ID_MAX},
        {CM_MSG_HISTORY_GET, "message_id", CM_MESSAGE_ID_MAX},
        {CM_MSG_RATE_CONSUME, "key", CM_MAP_KEY_MAX},
        {CM_MSG_RATE_REFUND, "key", CM_MAP_KEY_MAX},
        {CM_MSG_REGEN_CREATE, "model", CM_MODEL_MAX},
    };
    for (size_t i = 0; i < sizeof limits / sizeof limits[0]; i++) {
        assert_int_equal (s_validate_with (limits[i].type, limits[i].field, limits[i].max), 0);
        assert_int_equal (s_validate_with (limits[i].type, limits[i].field, limits[i].max + 1),
                          CM_EPROTO);
    }
    //  The message id limit is the longest id cm_msgid_parse takes.
    assert_int_equal (CM_MESSAGE_ID_MAX, 207);
    assert_int_equal (CM_TASK_ID_MAX, CM_ID_MAX);
}

//  Replies, reads, writes and notices as the store and broadcaster serve
//  them; the wire names round-trip.
static void
test_access_and_names (void **state)
{
    (void) state;
    const cm_msg_t writes[] = {CM_MSG_SESSION_START, CM_MSG_MESSAGE_EDIT,  CM_MSG_MESSAGE_DELETE,
                               CM_MSG_FEEDBACK_PUT,  CM_MSG_FEEDBACK_DELETE,
                               CM_MSG_REGEN_CREATE,  CM_MSG_TASK_CANCEL,
                               CM_MSG_RATE_CONSUME,  CM_MSG_TASK_CLAIM,    CM_MSG_TASK_PROGRESS,
                               CM_MSG_TASK_EVENT,    CM_MSG_TASK_COMPLETE, CM_MSG_TASK_FAIL,
                               CM_MSG_VERSION_ACTIVATE, CM_MSG_MESSAGE_RESTORE,
                               CM_MSG_SESSION_DELETE, CM_MSG_SESSION_RESTORE,
                               CM_MSG_SESSION_RENAME, CM_MSG_MESSAGE_CONTINUE,
                               CM_MSG_RATE_REFUND, CM_MSG_CLUSTER_CHANGE};
    size_t write_count = 0;
    for (int type = CM_MSG_NONE + 1; type < CM_MSG_COUNT; type++) {
        const char *name = cm_msg_name ((cm_msg_t) type);
        assert_int_equal (cm_msg_from_name (name, strlen (name)), type);
        bool listed = false;
        for (size_t i = 0; i < sizeof writes / sizeof writes[0]; i++)
            listed |= (int) writes[i] == type;
        assert_int_equal (cm_msg_access ((cm_msg_t) type) == CM_ACCESS_WRITE, listed);
        write_count += listed;
    }
    assert_int_equal (write_count, sizeof writes / sizeof writes[0]);
    assert_int_equal (cm_msg_access (CM_MSG_OK), CM_ACCESS_REPLY);
    assert_int_equal (cm_msg_access (CM_MSG_ERROR), CM_ACCESS_REPLY);
    assert_int_equal (cm_msg_access (CM_MSG_SESSION_GET), CM_ACCESS_READ);
    assert_int_equal (cm_msg_access (CM_MSG_EVENT), CM_ACCESS_NOTICE);
    size_t count;
    cm_msg_schema (CM_MSG_OK, &count);
    assert_int_equal (count, 0);
    cm_msg_schema (CM_MSG_ERROR, &count);
    assert_int_equal (count, 2);
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_limits_are_the_shared_constants),
        cmocka_unit_test (test_access_and_names),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
