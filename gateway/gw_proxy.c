#include "gw_proxy.h"

#include "cm_error.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_BLANK " \t"

//  The first 12 bytes of an IPv4-mapped IPv6 address (::ffff:a.b.c.d).
static const uint8_t s_v4_mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

//  A dual-stack listener reports an IPv4 peer as ::ffff:a.b.c.d; it is the
//  IPv4 address, so a proxy listed as 10.0.0.5 must match it (and a listed
//  mapped network is the IPv4 network).
static void
s_unmap (gw_proxy_net_t *net)
{
    if (net->family == AF_INET6 && net->bits >= 96
        && memcmp (net->addr, s_v4_mapped, sizeof s_v4_mapped) == 0) {
        memmove (net->addr, net->addr + 12, 4);
        memset (net->addr + 4, 0, 12);
        net->family = AF_INET;
        net->bits -= 96;
    }
}

//  Address text into a single-address network; false when it is not one.
static bool
s_parse_addr (const char *text, gw_proxy_net_t *net)
{
    memset (net, 0, sizeof *net);
    if (inet_pton (AF_INET, text, net->addr) == 1) {
        net->family = AF_INET;
        net->bits = 32;
        return true;
    }
    if (inet_pton (AF_INET6, text, net->addr) == 1) {
        net->family = AF_INET6;
        net->bits = 128;
        return true;
    }
    return false;
}

static int
s_addr_len (int family)
{
    return family == AF_INET ? 4 : 16;
}

//  The bits of address byte `byte` that a /bits prefix covers.
static uint8_t
s_mask (int bits, int byte)
{
    int keep = bits - 8 * byte;
    return keep >= 8 ? 0xff : keep <= 0 ? 0 : (uint8_t) (0xff << (8 - keep));
}

static bool
s_contains (const gw_proxy_net_t *net, const gw_proxy_net_t *addr)
{
    if (net->family != addr->family)
        return false;
    for (int i = 0; i < s_addr_len (net->family); i++)
        if ((net->addr[i] ^ addr->addr[i]) & s_mask (net->bits, i))
            return false;
    return true;
}

//  Text [start, stop) without the blanks around it.
static void
s_trim (const char **start, const char **stop)
{
    while (*start < *stop && strchr (S_BLANK, **start))
        (*start)++;
    while (*stop > *start && strchr (S_BLANK, (*stop)[-1]))
        (*stop)--;
}

//  One list entry, "ADDR" or "ADDR/BITS", of len bytes (trimmed).
static int
s_parse_entry (const char *entry, size_t len, gw_proxy_net_t *net, char *why, size_t why_size)
{
    if (len == 0) {
        snprintf (why, why_size, "empty entry (a stray comma?)");
        return CM_EINVAL;
    }
    char text[GW_PROXY_ADDR_MAX + 4]; //  + "/128"
    char *slash = NULL;
    if (len < sizeof text) {
        memcpy (text, entry, len);
        text[len] = 0;
        slash = strchr (text, '/');
        if (slash)
            *slash = 0;
    }
    if (len >= sizeof text || !s_parse_addr (text, net)) {
        snprintf (why, why_size, "'%.*s' is not an IPv4/IPv6 address or CIDR", (int) len, entry);
        return CM_EINVAL;
    }
    if (slash) {
        const char *digits = slash + 1;
        size_t count = strlen (digits);
        if (count == 0 || count > 3 || strspn (digits, "0123456789") != count
            || atoi (digits) > net->bits) {
            snprintf (why, why_size, "'%.*s': the prefix length must be 0 to %d", (int) len,
                      entry, net->bits);
            return CM_EINVAL;
        }
        net->bits = atoi (digits);
        //  10.0.0.1/8 is most likely a typo for one address or a network;
        //  refuse to guess which.
        for (int i = 0; i < s_addr_len (net->family); i++)
            if (net->addr[i] & (uint8_t) ~s_mask (net->bits, i)) {
                snprintf (why, why_size, "'%.*s' has address bits set past the /%d prefix",
                          (int) len, entry, net->bits);
                return CM_EINVAL;
            }
    }
    s_unmap (net);
    return 0;
}

//  The empty list: trust nobody, one hop.
static void
s_reset (gw_proxies_t *proxies)
{
    memset (proxies, 0, sizeof *proxies);
    proxies->hops = 1;
}

int
gw_proxies_parse (const char *list, gw_proxies_t *proxies, char *why, size_t why_size)
{
    s_reset (proxies);
    if (list[strspn (list, S_BLANK)] == 0)
        return 0;
    for (const char *start = list;;) {
        const char *end = strchr (start, ',');
        if (!end)
            end = start + strlen (start);
        const char *stop = end;
        s_trim (&start, &stop);
        if (proxies->count == GW_PROXY_MAX) {
            snprintf (why, why_size, "more than %d entries", GW_PROXY_MAX);
            s_reset (proxies);
            return CM_EINVAL;
        }
        if (s_parse_entry (start, (size_t) (stop - start), &proxies->nets[proxies->count], why,
                           why_size)) {
            s_reset (proxies);
            return CM_EINVAL;
        }
        proxies->count++;
        if (!*end)
            return 0;
        start = end + 1;
    }
}

bool
gw_proxies_trust (const gw_proxies_t *proxies, const char *addr)
{
    gw_proxy_net_t peer;
    if (proxies->count == 0 || !s_parse_addr (addr, &peer))
        return false;
    s_unmap (&peer);
    for (int i = 0; i < proxies->count; i++)
        if (s_contains (&proxies->nets[i], &peer))
            return true;
    return false;
}

void
gw_proxy_client (const gw_proxies_t *proxies, const char *remote_addr,
                 const char *forwarded_for, char out[GW_PROXY_ADDR_MAX])
{
    snprintf (out, GW_PROXY_ADDR_MAX, "%s", remote_addr);
    if (!forwarded_for)
        return;
    //  Right to left, one entry per trusted hop: each proxy appended the
    //  address it saw. Entries past the first untrusted address, or past
    //  `hops`, are whatever the client sent and are never looked at, so
    //  "X-Forwarded-For: 1.2.3.4" from a client cannot choose its address.
    const char *end = forwarded_for + strlen (forwarded_for);
    for (int hop = 0; end && hop < proxies->hops && gw_proxies_trust (proxies, out); hop++) {
        const char *start = end;
        while (start > forwarded_for && start[-1] != ',')
            start--;
        const char *stop = end;
        end = start > forwarded_for ? start - 1 : NULL; //  the comma, or no more
        s_trim (&start, &stop);
        size_t len = (size_t) (stop - start);
        char text[GW_PROXY_ADDR_MAX];
        gw_proxy_net_t client;
        if (len == 0 || len >= sizeof text)
            return;
        memcpy (text, start, len);
        text[len] = 0;
        if (!s_parse_addr (text, &client))
            return;
        //  Canonical text (inet_ntop) so one client reads the same everywhere.
        inet_ntop (client.family, client.addr, out, GW_PROXY_ADDR_MAX);
    }
}
