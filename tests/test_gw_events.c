//  test_gw_events: tests/fixtures/events.json, the event story the frontend's
//  model is tested with (tests/web/test_model.mjs), is what the mesh sends:
//  every event in it is a client event of cm_event.h whose data has the
//  table's fields and no other, and every client event appears in it.
#include "cm_error.h"
#include "cm_event.h"
#include "gw_json.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

static json_t *
s_fixture (void)
{
    json_error_t error;
    json_t *root = json_load_file (CM_TEST_FIXTURES "/events.json", 0, &error);
    if (!root)
        fail_msg ("events.json:%d: %s", error.line, error.text);
    return root;
}

//  True when data has no field beyond sessionId, timestamp and the table's.
static bool
s_only_listed (cm_event_t event, const cm_value_t *data, const char **extra)
{
    size_t count;
    const cm_field_t *fields = cm_event_fields (event, &count);
    for (size_t k = 0; k < cm_value_len (data); k++) {
        const char *key = cm_map_key_at (data, k);
        bool listed = strcmp (key, "sessionId") == 0 || strcmp (key, "timestamp") == 0;
        for (size_t j = 0; j < count && !listed; j++)
            listed = strcmp (fields[j].name, key) == 0;
        if (!listed) {
            *extra = key;
            return false;
        }
    }
    return true;
}

static void
test_fixture_events_match_the_table (void **state)
{
    (void) state;
    json_t *root = s_fixture ();
    json_t *events = json_object_get (root, "events");
    assert_true (json_array_size (events) > 0);
    bool seen[CM_EVENT_COUNT] = {false};
    size_t i;
    json_t *entry;
    json_array_foreach (events, i, entry) {
        const char *name = json_string_value (json_object_get (entry, "event"));
        assert_non_null (name);
        cm_event_t event = cm_event_from_name (name, strlen (name));
        if (!cm_event_for_clients (event))
            fail_msg ("events[%zu]: '%s' is not an event a browser gets", i, name);
        cm_value_t *data = gw_json_to_value (json_object_get (entry, "data"), 8);
        char why[128] = "";
        const char *extra = NULL;
        if (cm_event_validate (event, data, why, sizeof why))
            fail_msg ("events[%zu] %s: %s", i, name, why);
        if (!s_only_listed (event, data, &extra))
            fail_msg ("events[%zu] %s: field '%s' is not in cm_event.h", i, name, extra);
        assert_string_equal (cm_map_str_or (data, "sessionId", ""),
                             json_string_value (json_object_get (root, "sessionId")));
        cm_value_destroy (&data);
        seen[event] = true;
    }
    for (int event = CM_EVENT_NONE + 1; event < CM_EVENT_COUNT; event++)
        if (cm_event_for_clients ((cm_event_t) event) && !seen[event])
            fail_msg ("events.json has no %s", cm_event_name ((cm_event_t) event));
    json_decref (root);
}

//  The checks bite: a fixture entry that lost a field or gained one fails.
static void
test_a_drifted_entry_is_caught (void **state)
{
    (void) state;
    json_t *root = s_fixture ();
    json_t *entry = json_array_get (json_object_get (root, "events"), 0);
    cm_value_t *data = gw_json_to_value (json_object_get (entry, "data"), 8);
    const char *extra = NULL;
    assert_true (s_only_listed (CM_EVENT_CONNECTION_STATUS, data, &extra));
    cm_map_set_str (data, "mood", "good");
    assert_false (s_only_listed (CM_EVENT_CONNECTION_STATUS, data, &extra));
    assert_string_equal (extra, "mood");
    cm_map_set_nil (data, "status");
    assert_int_equal (cm_event_validate (CM_EVENT_CONNECTION_STATUS, data, NULL, 0), CM_EPROTO);
    cm_value_destroy (&data);
    json_decref (root);
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_fixture_events_match_the_table),
        cmocka_unit_test (test_a_drifted_entry_is_caught),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
