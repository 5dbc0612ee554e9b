/* clientaddr.h - the address a request comes from (login throttling, the
 * password pool's per-address queue).
 *
 * The address is the socket's peer, unless that peer is in the trusted-proxy
 * list (--trusted-proxies: IPv4/IPv6 CIDRs or single addresses, comma
 * separated; default none). Then it is read from X-Forwarded-For: the list
 * (every X-Forwarded-For header, in order) is walked from the right, skipping
 * trusted proxies, and the first address that is not one is the client; a
 * malformed entry stops the walk at the hop before it. Nothing a client sends
 * is believed unless a trusted proxy put it there.
 *
 * Addresses are written as inet_ntop text (an IPv4-mapped IPv6 peer as
 * IPv4). For budgets an IPv6 client is its /64 (one host usually has a whole
 * /64): clientaddr_of writes "2001:db8:1:2::/64" for any address of that
 * prefix. */
#ifndef PARLEY_GW_CLIENTADDR_H
#define PARLEY_GW_CLIENTADDR_H

#include <stddef.h>

struct lws;

#define CLIENTADDR_MAX 64 /* a buffer for any address this module writes, NUL included */

/* Parses the list (NULL or "" for none). 0, or -1 with a one-line reason in
 * err (the entry that is not an address or CIDR). */
int clientaddr_init(const char *trusted, char *err, size_t errsize);
void clientaddr_free(void);

/* The client address of the request on wsi, into out (CLIENTADDR_MAX bytes).
 * 0, or -1 when the peer is unknown (out is then "unknown": such requests
 * share one budget). */
int clientaddr_of(struct lws *wsi, char *out, size_t size);

/* The same decision on text (tests, and clientaddr_of's core): peer is the
 * socket's address, xff the X-Forwarded-For list (NULL when none). */
int clientaddr_pick(const char *peer, const char *xff, char *out, size_t size);

#endif
