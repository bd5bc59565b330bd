/*  gw_proxy.h: which address a request came from, behind trusted proxies.

    CHATMESH_TRUSTED_PROXIES lists the reverse proxies (addresses or CIDRs)
    allowed to name the client in X-Forwarded-For. A request from a trusted
    proxy is attributed to the rightmost entry of the header (the one that
    proxy appended). With CHATMESH_TRUSTED_PROXY_HOPS = N > 1 (a CDN or a
    load balancer in front of nginx), the walk goes on leftwards while the
    address reached is itself trusted, N entries at most. Anything further
    left came from the client and may be forged. No sockets here: plain
    text in, plain text out, so the rule is unit tested on its own.     */
#ifndef GW_PROXY_H_INCLUDED
#define GW_PROXY_H_INCLUDED

#include <arpa/inet.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

//  Most entries in the list; a proxy tier is a handful of networks.
#define GW_PROXY_MAX 64
//  Most proxy layers (CHATMESH_TRUSTED_PROXY_HOPS).
#define GW_PROXY_HOPS_MAX 10
//  Room for any address text gw_proxy_client writes, NUL included.
#define GW_PROXY_ADDR_MAX INET6_ADDRSTRLEN

typedef struct {
    int family;          //  AF_INET or AF_INET6
    int bits;            //  prefix length: 32 / 128 for a single address
    uint8_t addr[16];    //  network address (4 bytes used for AF_INET)
} gw_proxy_net_t;

typedef struct {
    int count;           //  0 = trust nobody
    int hops;            //  X-Forwarded-For entries to walk, 1..GW_PROXY_HOPS_MAX
    gw_proxy_net_t nets[GW_PROXY_MAX];
} gw_proxies_t;

//  Parses a comma-separated list of IPv4/IPv6 addresses and CIDRs (spaces
//  around entries allowed; "" = empty list). 0, or CM_EINVAL with the
//  offending entry and what is wrong with it in `why`. Sets hops to 1.
int gw_proxies_parse (const char *list, gw_proxies_t *proxies, char *why, size_t why_size);

//  True when addr (text) parses as an address inside one of the networks.
bool gw_proxies_trust (const gw_proxies_t *proxies, const char *addr);

//  The client's address into out (GW_PROXY_ADDR_MAX bytes). Starting from
//  remote_addr, while the address reached is trusted and fewer than hops
//  entries were taken, the next entry of forwarded_for (X-Forwarded-For,
//  may be NULL) from the right becomes the address, trimmed and in
//  canonical form. An entry that is not an address ends the walk where it
//  is (its hop may be a proxy that got garbage).
void gw_proxy_client (const gw_proxies_t *proxies, const char *remote_addr,
                      const char *forwarded_for, char out[GW_PROXY_ADDR_MAX]);

#endif
