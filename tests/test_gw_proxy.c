/*  test_gw_proxy: CHATMESH_TRUSTED_PROXIES parsing and the client address
    behind trusted proxies (X-Forwarded-For from the right, one entry per
    trusted hop, CHATMESH_TRUSTED_PROXY_HOPS at most).                   */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "cm_error.h"
#include "gw_proxy.h"

#include <stdio.h>
#include <string.h>

static gw_proxies_t s_proxies;

static void
s_parse_ok (const char *list, int count)
{
    char why[256] = "";
    if (gw_proxies_parse (list, &s_proxies, why, sizeof why) != 0)
        fail_msg ("'%s' refused: %s", list, why);
    assert_int_equal (s_proxies.count, count);
}

//  Refused, with a reason that quotes `named` (NULL: nothing to quote), and
//  leaves an empty list behind.
static void
s_parse_bad (const char *list, const char *named)
{
    char why[256] = "";
    assert_int_equal (gw_proxies_parse (list, &s_proxies, why, sizeof why), CM_EINVAL);
    assert_int_equal (s_proxies.count, 0);
    assert_true (why[0]);
    if (named && !strstr (why, named))
        fail_msg ("'%s': reason '%s' does not name '%s'", list, why, named);
}

static const char *
s_client (const char *remote, const char *forwarded)
{
    static char out[GW_PROXY_ADDR_MAX];
    memset (out, 'x', sizeof out);
    gw_proxy_client (&s_proxies, remote, forwarded, out);
    return out;
}

static void
test_parse_lists (void **state)
{
    (void) state;
    s_parse_ok ("", 0);
    s_parse_ok ("   ", 0);
    s_parse_ok ("127.0.0.1", 1);
    s_parse_ok ("::1", 1);
    s_parse_ok ("10.0.0.0/8,172.16.0.0/12,192.168.0.0/16,127.0.0.1", 4);
    s_parse_ok ("  10.0.0.0/8 ,\t192.168.1.7 ,fd00::/8,  2001:db8::/32  ", 4);
    assert_int_equal (s_proxies.nets[0].family, AF_INET);
    assert_int_equal (s_proxies.nets[0].bits, 8);
    assert_int_equal (s_proxies.nets[1].bits, 32);
    assert_int_equal (s_proxies.nets[2].family, AF_INET6);
    assert_int_equal (s_proxies.nets[3].bits, 32);
    //  Prefix edges.
    s_parse_ok ("0.0.0.0/0,1.2.3.4/32,::/0,2001:db8::1/128", 4);
    //  A listed IPv4-mapped network is the IPv4 network.
    s_parse_ok ("::ffff:10.0.0.0/104", 1);
    assert_int_equal (s_proxies.nets[0].family, AF_INET);
    assert_int_equal (s_proxies.nets[0].bits, 8);
    //  GW_PROXY_MAX entries fit.
    char list[GW_PROXY_MAX * 16] = "";
    for (int i = 0; i < GW_PROXY_MAX; i++)
        snprintf (list + strlen (list), sizeof list - strlen (list), "%s10.0.0.%d", i ? "," : "",
                  i);
    s_parse_ok (list, GW_PROXY_MAX);
}

static void
test_parse_refuses_bad_entries (void **state)
{
    (void) state;
    s_parse_bad ("bogus", "'bogus'");
    s_parse_bad ("127.0.0.1,localhost", "'localhost'");
    s_parse_bad ("10.0.0.0/33", "'10.0.0.0/33'");
    s_parse_bad ("::/129", "'::/129'");
    s_parse_bad ("10.0.0.0/", "'10.0.0.0/'");
    s_parse_bad ("10.0.0.0/-1", "'10.0.0.0/-1'");
    s_parse_bad ("10.0.0.0/+8", "'10.0.0.0/+8'");
    s_parse_bad ("10.0.0.0/8/8", "'10.0.0.0/8/8'");
    s_parse_bad ("10.0.0.0/0008", "'10.0.0.0/0008'");
    s_parse_bad ("10.0.0.0/ 8", "'10.0.0.0/ 8'");
    s_parse_bad ("/8", "'/8'");
    s_parse_bad ("10.0.0.1/8", "'10.0.0.1/8'");       //  host bits set
    s_parse_bad ("10.0.0.128/25x", "'10.0.0.128/25x'");
    s_parse_bad ("192.168.1.1/31", "/31");             //  the last bit
    s_parse_bad ("2001:db8::1/64", "'2001:db8::1/64'");
    s_parse_bad ("256.0.0.1", "'256.0.0.1'");
    s_parse_bad ("10.1", "'10.1'");                    //  no short forms
    s_parse_bad ("10.0.0.1:80", "'10.0.0.1:80'");
    s_parse_bad ("[::1]", "'[::1]'");
    s_parse_bad ("fe80::1%eth0", "'fe80::1%eth0'");
    s_parse_bad ("10.0.0.1 10.0.0.2", "'10.0.0.1 10.0.0.2'");
    s_parse_bad ("10.0.0.1,,10.0.0.2", "empty entry");
    s_parse_bad ("10.0.0.1,", "empty entry");
    s_parse_bad (",10.0.0.1", "empty entry");
    s_parse_bad ("ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255/128x", NULL); //  too long
    //  A good list after a bad one starts from nothing.
    s_parse_ok ("127.0.0.1", 1);
    s_parse_bad ("127.0.0.1,nope", "'nope'");
    assert_false (gw_proxies_trust (&s_proxies, "127.0.0.1"));

    char list[(GW_PROXY_MAX + 1) * 16] = "";
    for (int i = 0; i <= GW_PROXY_MAX; i++)
        snprintf (list + strlen (list), sizeof list - strlen (list), "%s10.0.0.%d", i ? "," : "",
                  i);
    s_parse_bad (list, "more than 64 entries");
}

static void
test_trust (void **state)
{
    (void) state;
    s_parse_ok ("10.0.0.0/8,192.168.1.7,2001:db8::/32,172.16.0.0/12", 4);
    assert_true (gw_proxies_trust (&s_proxies, "10.0.0.0"));
    assert_true (gw_proxies_trust (&s_proxies, "10.255.255.255"));
    assert_false (gw_proxies_trust (&s_proxies, "11.0.0.0"));
    assert_false (gw_proxies_trust (&s_proxies, "9.255.255.255"));
    assert_true (gw_proxies_trust (&s_proxies, "192.168.1.7"));
    assert_false (gw_proxies_trust (&s_proxies, "192.168.1.6"));
    assert_false (gw_proxies_trust (&s_proxies, "192.168.1.8"));
    //  /12: 172.16.0.0 - 172.31.255.255 (a prefix inside a byte).
    assert_true (gw_proxies_trust (&s_proxies, "172.16.0.1"));
    assert_true (gw_proxies_trust (&s_proxies, "172.31.255.255"));
    assert_false (gw_proxies_trust (&s_proxies, "172.32.0.0"));
    assert_false (gw_proxies_trust (&s_proxies, "172.15.255.255"));
    assert_true (gw_proxies_trust (&s_proxies, "2001:db8:ffff::1"));
    assert_true (gw_proxies_trust (&s_proxies, "2001:DB8::"));
    assert_false (gw_proxies_trust (&s_proxies, "2001:db9::1"));
    //  A dual-stack listener's form of an IPv4 peer.
    assert_true (gw_proxies_trust (&s_proxies, "::ffff:10.1.2.3"));
    assert_false (gw_proxies_trust (&s_proxies, "::ffff:11.1.2.3"));
    //  An IPv4 network does not cover IPv6 addresses with the same bytes.
    assert_false (gw_proxies_trust (&s_proxies, "a00::"));
    assert_false (gw_proxies_trust (&s_proxies, ""));
    assert_false (gw_proxies_trust (&s_proxies, "not-an-address"));

    s_parse_ok ("0.0.0.0/0", 1);
    assert_true (gw_proxies_trust (&s_proxies, "0.0.0.0"));
    assert_true (gw_proxies_trust (&s_proxies, "255.255.255.255"));
    assert_false (gw_proxies_trust (&s_proxies, "::1"));
    s_parse_ok ("::/0", 1);
    assert_true (gw_proxies_trust (&s_proxies, "::1"));
    assert_true (gw_proxies_trust (&s_proxies, "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"));
    assert_false (gw_proxies_trust (&s_proxies, "127.0.0.1"));
    s_parse_ok ("2001:db8::1/128", 1);
    assert_true (gw_proxies_trust (&s_proxies, "2001:db8::1"));
    assert_false (gw_proxies_trust (&s_proxies, "2001:db8::"));
    assert_false (gw_proxies_trust (&s_proxies, "2001:db8::2"));
    s_parse_ok ("", 0);
    assert_false (gw_proxies_trust (&s_proxies, "127.0.0.1"));
}

static void
test_client_address (void **state)
{
    (void) state;
    s_parse_ok ("127.0.0.1,10.0.0.0/8,::1", 3);
    //  Trusted peer: the rightmost entry, trimmed.
    assert_string_equal (s_client ("127.0.0.1", "203.0.113.7"), "203.0.113.7");
    assert_string_equal (s_client ("10.9.8.7", "  203.0.113.7\t"), "203.0.113.7");
    assert_string_equal (s_client ("::1", "2001:DB8::0:1"), "2001:db8::1"); //  canonical
    assert_string_equal (s_client ("127.0.0.1", "198.51.100.1, 2001:db8::7"), "2001:db8::7");
    //  Spoof attempt: the client's own entries are left of the proxy's.
    assert_string_equal (s_client ("127.0.0.1", "1.2.3.4, 5.6.7.8"), "5.6.7.8");
    assert_string_equal (s_client ("127.0.0.1", "1.2.3.4,5.6.7.8"), "5.6.7.8");
    assert_string_equal (s_client ("127.0.0.1", "1.2.3.4, 9.9.9.9, 5.6.7.8"), "5.6.7.8");
    //  Trusted peer, no or unusable header: the peer.
    assert_string_equal (s_client ("127.0.0.1", NULL), "127.0.0.1");
    assert_string_equal (s_client ("127.0.0.1", ""), "127.0.0.1");
    assert_string_equal (s_client ("127.0.0.1", "   "), "127.0.0.1");
    assert_string_equal (s_client ("127.0.0.1", "unknown"), "127.0.0.1");
    assert_string_equal (s_client ("127.0.0.1", "5.6.7.8,"), "127.0.0.1");
    assert_string_equal (s_client ("127.0.0.1", "5.6.7.8, garbage"), "127.0.0.1");
    assert_string_equal (s_client ("127.0.0.1", "5.6.7.8:1234"), "127.0.0.1");
    assert_string_equal (s_client ("127.0.0.1", "[2001:db8::1]"), "127.0.0.1");
    assert_string_equal (s_client ("127.0.0.1", "5.6.7.8 9.9.9.9"), "127.0.0.1");
    assert_string_equal (s_client ("127.0.0.1", "<script>"), "127.0.0.1");
    char long_entry[300];
    memset (long_entry, '1', sizeof long_entry - 1);
    long_entry[sizeof long_entry - 1] = 0;
    assert_string_equal (s_client ("127.0.0.1", long_entry), "127.0.0.1");
    //  The longest address text fits.
    assert_string_equal (s_client ("127.0.0.1", "ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255"),
                         "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff");
    //  Untrusted peer: the header is ignored.
    assert_string_equal (s_client ("203.0.113.9", "5.6.7.8"), "203.0.113.9");
    assert_string_equal (s_client ("11.0.0.1", "5.6.7.8"), "11.0.0.1");
    assert_string_equal (s_client ("2001:db8::9", NULL), "2001:db8::9");
    //  Nobody trusted (the default).
    s_parse_ok ("", 0);
    assert_string_equal (s_client ("127.0.0.1", "5.6.7.8"), "127.0.0.1");
}

//  Two proxy layers: a CDN (198.51.100.0/24) in front of nginx (10.0.0.5).
static void
test_client_address_two_hops (void **state)
{
    (void) state;
    s_parse_ok ("10.0.0.5,198.51.100.0/24", 2);
    assert_int_equal (s_proxies.hops, 1); //  parse resets it
    //  One hop (the default): the CDN is logged as the client.
    assert_string_equal (s_client ("10.0.0.5", "203.0.113.7, 198.51.100.9"), "198.51.100.9");
    s_proxies.hops = 2;
    //  Client -> CDN -> nginx -> gateway.
    assert_string_equal (s_client ("10.0.0.5", "203.0.113.7, 198.51.100.9"), "203.0.113.7");
    //  A forged entry from the client stays left of what the CDN appended.
    assert_string_equal (s_client ("10.0.0.5", "1.2.3.4, 203.0.113.7, 198.51.100.9"),
                         "203.0.113.7");
    //  Straight to nginx, not through the CDN: the walk stops at the first
    //  untrusted address, the client's own entries are not looked at.
    assert_string_equal (s_client ("10.0.0.5", "1.2.3.4, 203.0.113.7"), "203.0.113.7");
    //  Only as many hops as configured, even when every entry is trusted.
    assert_string_equal (s_client ("10.0.0.5", "203.0.113.7, 198.51.100.1, 198.51.100.2"),
                         "198.51.100.1");
    //  Entries run out while trusted: the leftmost one.
    assert_string_equal (s_client ("10.0.0.5", "198.51.100.9"), "198.51.100.9");
    //  Garbage where the CDN's entry should be: the walk ends at the last
    //  good hop, here nginx's own entry.
    assert_string_equal (s_client ("10.0.0.5", "203.0.113.7, bogus, 198.51.100.9"),
                         "198.51.100.9");
    assert_string_equal (s_client ("10.0.0.5", "203.0.113.7,,198.51.100.9"), "198.51.100.9");
    //  Untrusted peer: no walk at all.
    assert_string_equal (s_client ("203.0.113.50", "198.51.100.9"), "203.0.113.50");
    s_proxies.hops = GW_PROXY_HOPS_MAX;
    assert_string_equal (s_client ("10.0.0.5", "9.9.9.9, 198.51.100.1, 198.51.100.2, 198.51.100.3"),
                         "9.9.9.9");
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_parse_lists),
        cmocka_unit_test (test_parse_refuses_bad_entries),
        cmocka_unit_test (test_trust),
        cmocka_unit_test (test_client_address),
        cmocka_unit_test (test_client_address_two_hops),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
