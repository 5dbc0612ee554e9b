/* origin.c - the Origin allow-list (origin.h). Origins and Host headers are
 * cut up by lws_parse_uri (libwebsockets), then held to the shape of an
 * origin: http or https, a host, a port of 1..65535 and no path. */
#include "origin.h"

#include <ctype.h>
#include <libwebsockets.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define ORIGIN_MAX 300 /* longest origin or Host compared, bytes */

/* An origin in one comparable form. */
typedef struct {
    int https;
    int port;
    char host[256]; /* lowercase, without IPv6 brackets */
} origin_t;

static origin_t origin_list[ORIGIN_LIST_MAX];
static int origin_count;

/* Parses "scheme://host[:port]" (len bytes at s) into *o: 0, or -1 when it
 * is not an http(s) origin. scheme_default: the scheme when s has none (a
 * Host header), or NULL when s must have one. */
static int origin_parse(const char *s, size_t len, const char *scheme_default, origin_t *o)
{
    char buf[ORIGIN_MAX + 16];
    if (len == 0 || len > ORIGIN_MAX) return -1;
    int n = scheme_default ? snprintf(buf, sizeof buf, "%s://%.*s", scheme_default, (int)len, s)
                           : snprintf(buf, sizeof buf, "%.*s", (int)len, s);
    if (n < 0 || (size_t)n >= sizeof buf || memchr(buf, '\0', (size_t)n)) return -1;
    /* a port must be digits only (lws takes atoi's word for it) */
    const char *auth = strstr(buf, "://");
    if (!auth) return -1;
    auth += 3;
    const char *colon = *auth == '[' ? strstr(auth, "]:") : strchr(auth, ':');
    if (colon) {
        const char *d = colon + (*colon == ']' ? 2 : 1);
        size_t nd = strspn(d, "0123456789");
        if (nd == 0 || nd > 5 || (d[nd] && strcmp(d + nd, "/") != 0)) return -1;
    }
    const char *prot, *ads, *path;
    int port = 0;
    if (lws_parse_uri(buf, &prot, &ads, &port, &path)) return -1;
    if (strcmp(path, "/") != 0) return -1; /* an origin has no path */
    if (!strcasecmp(prot, "https"))
        o->https = 1;
    else if (!strcasecmp(prot, "http"))
        o->https = 0;
    else
        return -1;
    size_t hl = strlen(ads);
    if (hl == 0 || hl >= sizeof o->host || *ads == '+') return -1;
    for (size_t i = 0; i < hl; i++) {
        unsigned char c = (unsigned char)ads[i];
        /* a DNS name or an IP address: no wildcard, userinfo, path or escapes */
        if (!isalnum(c) && c != '.' && c != '-' && c != ':' && c != '_') return -1;
        o->host[i] = (char)tolower(c);
    }
    o->host[hl] = '\0';
    if (port <= 0 || port > 65535) return -1;
    o->port = port;
    return 0;
}

static int origin_equal(const origin_t *a, const origin_t *b)
{
    return a->https == b->https && a->port == b->port && !strcmp(a->host, b->host);
}

int origin_init(const char *list, char *err, size_t errsize)
{
    origin_count = 0;
    if (!list || !*list) return 0;
    const char *p = list;
    while (*p) {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        while (len && isspace((unsigned char)*p)) {
            p++;
            len--;
        }
        while (len && isspace((unsigned char)p[len - 1]))
            len--;
        if (len) {
            if (origin_count == ORIGIN_LIST_MAX) {
                snprintf(err, errsize, "more than %d origins", ORIGIN_LIST_MAX);
                return -1;
            }
            if (origin_parse(p, len, NULL, &origin_list[origin_count]) < 0) {
                snprintf(err, errsize, "'%.*s' is not an origin (http[s]://host[:port], no path)",
                         (int)(len > 100 ? 100 : len), p);
                return -1;
            }
            origin_count++;
        }
        if (!end) break;
        p = end + 1;
    }
    return 0;
}

/* The origin the request was addressed to: its Host, with the scheme a TLS
 * proxy in front named in X-Forwarded-Proto, else http (the gateway itself
 * serves plain HTTP). 0, or -1 without a usable Host. Trusting the header
 * lends nothing to an attacker: a page cannot set it on a request, and a
 * client that can could set Origin to anything as well. */
static int origin_of_request(struct lws *wsi, origin_t *o)
{
    char host[ORIGIN_MAX + 1], proto[16] = "";
    int hl = lws_hdr_copy(wsi, host, sizeof host, WSI_TOKEN_HOST);
    if (hl <= 0) return -1;
    int pl = lws_hdr_custom_copy(wsi, proto, sizeof proto, "x-forwarded-proto:", 18);
    const char *scheme = "http";
    if (pl > 0) {
        proto[strcspn(proto, ", ")] = '\0';
        if (!strcasecmp(proto, "https")) scheme = "https";
    }
    return origin_parse(host, (size_t)hl, scheme, o);
}

origin_verdict origin_check(struct lws *wsi)
{
    char hdr[ORIGIN_MAX + 1];
    int len = lws_hdr_total_length(wsi, WSI_TOKEN_ORIGIN);
    if (len <= 0) {
        /* no Origin: a browser still says where a request came from in
         * Sec-Fetch-Site ("same-origin", "same-site", "cross-site", "none"
         * for one the user typed) */
        int sl = lws_hdr_custom_copy(wsi, hdr, sizeof hdr, "sec-fetch-site:", 15);
        if (sl > 0 && (!strcasecmp(hdr, "cross-site") || !strcasecmp(hdr, "same-site")))
            return ORIGIN_FOREIGN;
        return ORIGIN_ABSENT;
    }
    origin_t got, own;
    if (len > ORIGIN_MAX || lws_hdr_copy(wsi, hdr, sizeof hdr, WSI_TOKEN_ORIGIN) != len ||
        origin_parse(hdr, (size_t)len, NULL, &got) < 0)
        return ORIGIN_FOREIGN; /* "null", garbage */
    if (origin_of_request(wsi, &own) == 0 && origin_equal(&got, &own)) return ORIGIN_ALLOWED;
    for (int i = 0; i < origin_count; i++)
        if (origin_equal(&got, &origin_list[i])) return ORIGIN_ALLOWED;
    return ORIGIN_FOREIGN;
}
