/*  test_st_peers.c: CHATMESH_STORE_PEERS parsing and its precise refusals. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "cm_error.h"
#include "st_peers.h"

#include <stdio.h>
#include <string.h>

static void
test_three_peers (void **state)
{
    (void) state;
    st_peers_t peers;
    char why[256] = "";
    assert_int_equal (st_peers_parse ("1=127.0.0.1:7201=tcp://127.0.0.1:7101,"
                                      "2=10.0.0.2:7201=tcp://10.0.0.2:7101,"
                                      "7=store-c:7201=tcp://store-c:7101",
                                      &peers, why, sizeof why),
                      0);
    assert_int_equal (peers.count, 3);
    assert_int_equal (peers.peers[2].id, 7);
    assert_string_equal (peers.peers[1].raft_address, "10.0.0.2:7201");
    assert_string_equal (peers.peers[2].endpoint, "tcp://store-c:7101");
    assert_non_null (st_peers_find (&peers, 7));
    assert_null (st_peers_find (&peers, 3));
}

static void
test_one_voter (void **state)
{
    (void) state;
    st_peers_t peers;
    char why[256];
    assert_int_equal (st_peers_parse ("1=127.0.0.1:7201=ipc:///tmp/s", &peers, why, sizeof why),
                      0);
    assert_int_equal (peers.count, 1);
}

//  Each refusal, with a word of its reason.
static void
s_refused (const char *text, const char *reason)
{
    st_peers_t peers;
    char why[256] = "";
    assert_int_equal (st_peers_parse (text, &peers, why, sizeof why), CM_EINVAL);
    if (!strstr (why, reason))
        fail_msg ("\"%s\": \"%s\" does not say \"%s\"", text, why, reason);
}

static void
test_refusals (void **state)
{
    (void) state;
    s_refused ("", "empty item");
    s_refused ("1=a:1=tcp://a:2,", "empty item");
    s_refused ("1=a:1", "id=raft_address=client_endpoint");
    s_refused ("0=a:1=tcp://a:2", "id must be");
    s_refused ("x=a:1=tcp://a:2", "id must be");
    s_refused ("1x=a:1=tcp://a:2", "id must be");
    s_refused ("99999999999999999999=a:1=tcp://a:2", "id must be");
    s_refused ("1=a=tcp://a:2", "host:port");
    s_refused ("1=a:0=tcp://a:2", "host:port");
    s_refused ("1=a:65536=tcp://a:2", "host:port");
    s_refused ("1=:80=tcp://a:2", "host:port");
    s_refused ("1=a:1=", "client endpoint");
    s_refused ("1=a:1=a:2", "client endpoint");
    s_refused ("1=a:1=tcp://a:1,1=b:1=tcp://b:1,3=c:1=tcp://c:1", "its id is also peer 1");
    s_refused ("1=a:1=tcp://a:1,2=a:1=tcp://b:1,3=c:1=tcp://c:1", "raft address");
    s_refused ("1=a:1=tcp://a:1,2=b:1=tcp://a:1,3=c:1=tcp://c:1", "client endpoint is also");
    s_refused ("1=a:1=tcp://a:1,2=b:1=tcp://b:1", "use 1, 3 or 5");
    s_refused ("1=a:1=tcp://a:1,2=b:1=tcp://b:1,3=c:1=tcp://c:1,4=d:1=tcp://d:1,"
               "5=e:1=tcp://e:1,6=f:1=tcp://f:1",
               "more than 5");
}

//  A joiner's list has no count rule (it bootstraps nothing), every other.
static void
test_join_any_count (void **state)
{
    (void) state;
    const char *four = "1=a:1=tcp://a:1,2=b:1=tcp://b:1,3=c:1=tcp://c:1,4=d:1=tcp://d:1";
    st_peers_t peers;
    char why[256] = "";
    assert_int_equal (st_peers_parse_join (four, &peers, why, sizeof why), 0);
    assert_int_equal (peers.count, 4);
    assert_string_equal (st_peers_find (&peers, 4)->raft_address, "d:1");
    assert_int_equal (st_peers_parse (four, &peers, why, sizeof why), CM_EINVAL);
    assert_non_null (strstr (why, "use 1, 3 or 5"));
    assert_int_equal (st_peers_parse_join ("1=a:1=tcp://a:1,1=b:1=tcp://b:1", &peers, why,
                                           sizeof why),
                      CM_EINVAL);
    assert_non_null (strstr (why, "its id is also peer 1"));
}

static void
test_limits (void **state)
{
    (void) state;
    char text[1024];
    char host[300];
    memset (host, 'h', sizeof host - 1);
    host[sizeof host - 1] = 0;
    snprintf (text, sizeof text, "1=%s:1=tcp://a:1", host);
    s_refused (text, "host:port");
    char endpoint[300];
    memset (endpoint, 'e', sizeof endpoint - 1);
    endpoint[sizeof endpoint - 1] = 0;
    memcpy (endpoint, "tcp://", 6);
    snprintf (text, sizeof text, "1=a:1=%s", endpoint);
    s_refused (text, "at most 255 bytes");
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_three_peers),
        cmocka_unit_test (test_one_voter),
        cmocka_unit_test (test_refusals),
        cmocka_unit_test (test_join_any_count),
        cmocka_unit_test (test_limits),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
