/*  test_gw_leader_metrics: the shards' leader lines of /metrics
    (gw_leader_metrics.h): counters per shard, the leader gauge per node,
    label escaping, pools without a leader left out.                    */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "cm_error.h"
#include "gw_leader_metrics.h"

#include <stdlib.h>
#include <string.h>

static void
s_has (const char *text, const char *line)
{
    if (!strstr (text, line))
        fail_msg ("no \"%s\" in:\n%s", line, text);
}

static void
test_counters_and_the_leader_per_node (void **state)
{
    (void) state;
    cm_leader_t *a = cm_leader_new ("tcp://a1:1,tcp://a2:1,tcp://a3:1", CM_READS_LEADER);
    cm_leader_t *b = cm_leader_new ("tcp://b:1", CM_READS_LEADER);
    //  Shard a: node 1 says node 2 leads; node 2 then fails a send.
    cm_envelope_t *request = cm_envelope_new (CM_MSG_PING, "1.1");
    cm_envelope_t *hint = cm_envelope_reply_error (request, CM_ENOTLEADER, "leader is tcp://a2:1");
    assert_int_equal (cm_leader_observe (a, 0, CM_ENOTLEADER, hint), 1);
    assert_int_equal (cm_leader_observe (a, 1, CM_ETIMEOUT, NULL), 2);
    const char *names[] = {"a", "b", "history"};
    cm_leader_t *leaders[] = {a, b, NULL};
    char *text = gw_leader_metrics (names, leaders, 3);
    assert_non_null (text);
    s_has (text, "# TYPE chatmesh_store_not_leader_total counter\n");
    s_has (text, "chatmesh_store_not_leader_total{shard=\"a\"} 1\n");
    s_has (text, "chatmesh_store_not_leader_total{shard=\"b\"} 0\n");
    s_has (text, "chatmesh_store_node_failures_total{shard=\"a\"} 1\n");
    s_has (text, "# TYPE chatmesh_store_leader gauge\n");
    s_has (text, "chatmesh_store_leader{shard=\"a\",node=\"tcp://a1:1\"} 0\n");
    s_has (text, "chatmesh_store_leader{shard=\"a\",node=\"tcp://a2:1\"} 0\n");
    s_has (text, "chatmesh_store_leader{shard=\"a\",node=\"tcp://a3:1\"} 1\n");
    s_has (text, "chatmesh_store_leader{shard=\"b\",node=\"tcp://b:1\"} 1\n");
    assert_null (strstr (text, "history"));
    free (text);
    cm_envelope_destroy (&hint);
    cm_envelope_destroy (&request);
    cm_leader_destroy (&a);
    cm_leader_destroy (&b);
}

static void
test_labels_are_escaped_and_no_leader_is_no_lines (void **state)
{
    (void) state;
    cm_leader_t *odd = cm_leader_new ("ipc:///tmp/a\"b\\c", CM_READS_LEADER);
    const char *names[] = {"s"};
    cm_leader_t *leaders[] = {odd};
    char *text = gw_leader_metrics (names, leaders, 1);
    s_has (text, "chatmesh_store_leader{shard=\"s\",node=\"ipc:///tmp/a\\\"b\\\\c\"} 1\n");
    free (text);
    cm_leader_t *none[] = {NULL};
    text = gw_leader_metrics (names, none, 1);
    assert_string_equal (text, "");
    free (text);
    cm_leader_destroy (&odd);
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_counters_and_the_leader_per_node),
        cmocka_unit_test (test_labels_are_escaped_and_no_leader_is_no_lines),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
