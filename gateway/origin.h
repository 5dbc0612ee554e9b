/* origin.h - the Origin allow-list: which web pages may use a user's cookie
 * (docs/protocol.md, "Origins"; the contract's "v1 additions: sessions and
 * safety").
 *
 * A browser sends the parley_token cookie with every request to this host,
 * whichever page started it: a WebSocket opened by a page of evil.example
 * would otherwise get a full session (cross-site WebSocket hijacking, OWASP),
 * and a form posted from it would act for the user (CSRF). The page's origin
 * is in the Origin header (RFC 6454), which a page cannot forge; when a
 * browser leaves Origin out, Sec-Fetch-Site (W3C Fetch Metadata) still says
 * whether the request crossed sites.
 *
 * The allow-list holds the origin each request was addressed to (its scheme
 * and Host: "http", or the first X-Forwarded-Proto value a TLS proxy in front
 * set) and the origins of --origins. Origins are compared as scheme, host
 * (case-insensitive) and port (the scheme's default when absent). */
#ifndef PARLEY_GW_ORIGIN_H
#define PARLEY_GW_ORIGIN_H

struct lws;

typedef enum {
    ORIGIN_ABSENT = 0, /* no Origin, and Sec-Fetch-Site absent, "same-origin" or "none" */
    ORIGIN_ALLOWED,    /* Origin names this host or one of --origins */
    ORIGIN_FOREIGN,    /* any other Origin ("null" included), or a cross-site fetch */
} origin_verdict;

#include <stddef.h>

/* list: --origins, comma-separated "scheme://host[:port]" (http or https, no
 * path), or NULL / "" for none; at most ORIGIN_LIST_MAX entries. 0, or -1 with
 * a one-line reason in err (naming the entry that does not parse). */
#define ORIGIN_LIST_MAX 32
int origin_init(const char *list, char *err, size_t errsize);

/* The verdict on the request on wsi (an HTTP request or an upgrade). */
origin_verdict origin_check(struct lws *wsi);

#endif
