//  test_cm_event: the event table is complete and its checks bite.
#include "cm_error.h"
#include "cm_event.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

//  The first test is the example: build a feedback_submitted data map and
//  check it the way the store's tests check what it publishes.
static void
test_validate_feedback_submitted (void **state)
{
    (void) state;
    cm_value_t *data = cm_map_new ();
    cm_map_set_str (data, "sessionId", "s1");
    cm_map_set_str (data, "timestamp", "2026-12-02T10:00:00.000Z");
    cm_map_set_str (data, "messageId", "msg_x");
    cm_map_set_str (data, "feedbackId", "fb_1");
    cm_map_set_str (data, "feedbackType", "upvote");
    cm_map_set_int (data, "upvotes", 1);
    cm_map_set_int (data, "downvotes", 0);
    char why[64] = "";
    assert_int_equal (cm_event_validate (CM_EVENT_FEEDBACK_SUBMITTED, data, why, sizeof why), 0);
    cm_map_set_str (data, "upvotes", "one");
    assert_int_equal (cm_event_validate (CM_EVENT_FEEDBACK_SUBMITTED, data, why, sizeof why),
                      CM_EPROTO);
    assert_string_equal (why, "field 'upvotes' has the wrong type");
    cm_map_set_nil (data, "sessionId");
    assert_int_equal (cm_event_validate (CM_EVENT_FEEDBACK_SUBMITTED, data, why, sizeof why),
                      CM_EPROTO);
    assert_string_equal (why, "missing field 'sessionId'");
    cm_value_destroy (&data);
}

static void
test_every_event_round_trips_its_name (void **state)
{
    (void) state;
    for (int event = CM_EVENT_NONE + 1; event < CM_EVENT_COUNT; event++) {
        const char *name = cm_event_name ((cm_event_t) event);
        assert_string_not_equal (name, "?");
        assert_int_equal (cm_event_from_name (name, strlen (name)), event);
        assert_true (strlen (cm_event_doc ((cm_event_t) event)) > 0);
    }
    assert_int_equal (cm_event_from_name ("feedback", 8), CM_EVENT_NONE);
    assert_int_equal (cm_event_from_name ("feedback_submitted_", 19), CM_EVENT_NONE);
    assert_string_equal (cm_event_name (CM_EVENT_NONE), "?");
    assert_string_equal (cm_event_name (CM_EVENT_COUNT), "?");
}

//  Every event but the broadcaster's internal notice has at least one field
//  of its own, and no field list names a field twice.
static void
test_every_event_has_fields (void **state)
{
    (void) state;
    for (int event = CM_EVENT_NONE + 1; event < CM_EVENT_COUNT; event++) {
        size_t count;
        const cm_field_t *fields = cm_event_fields ((cm_event_t) event, &count);
        if (cm_event_origin ((cm_event_t) event) == CM_EVENT_FROM_BROADCASTER) {
            assert_false (cm_event_for_clients ((cm_event_t) event));
            continue;
        }
        assert_true (cm_event_for_clients ((cm_event_t) event));
        assert_true (count > 0);
        for (size_t i = 0; i < count; i++)
            for (size_t j = i + 1; j < count; j++)
                assert_string_not_equal (fields[i].name, fields[j].name);
    }
}

static void
test_terminal_events (void **state)
{
    (void) state;
    int terminal = 0;
    for (int event = CM_EVENT_NONE + 1; event < CM_EVENT_COUNT; event++)
        terminal += cm_event_terminal ((cm_event_t) event);
    assert_int_equal (terminal, 2);
    assert_true (cm_event_terminal (CM_EVENT_MESSAGE_REGENERATED));
    assert_true (cm_event_terminal (CM_EVENT_REGENERATION_ERROR));
    assert_false (cm_event_terminal (CM_EVENT_NONE));
}

static void
test_bad_data_is_refused (void **state)
{
    (void) state;
    assert_int_equal (cm_event_validate (CM_EVENT_NONE, NULL, NULL, 0), CM_EPROTO);
    cm_value_t *list = cm_arr_new ();
    char why[64];
    assert_int_equal (cm_event_validate (CM_EVENT_SESSION_UPDATED, list, why, sizeof why),
                      CM_EPROTO);
    assert_string_equal (why, "event data is not a map");
    cm_value_destroy (&list);
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_validate_feedback_submitted),
        cmocka_unit_test (test_every_event_round_trips_its_name),
        cmocka_unit_test (test_every_event_has_fields),
        cmocka_unit_test (test_terminal_events),
        cmocka_unit_test (test_bad_data_is_refused),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
