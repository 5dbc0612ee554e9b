/* clientaddr.c - the client address of a request (clientaddr.h): the socket
 * peer, or X-Forwarded-For's rightmost untrusted hop when the peer is a
 * trusted proxy. The trusted list is parsed once at start and read-only
 * afterwards. */
#include "clientaddr.h"

#include <arpa/inet.h>
#include <libwebsockets.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

typedef struct ca_addr {
    int v6; /* 0: IPv4 (in the first 4 bytes) */
    unsigned char b[16];
} ca_addr;

typedef struct ca_net {
    ca_addr a;
    int bits;
} ca_net;

static struct {
    ca_net *nets; /* --trusted-proxies */
    size_t n;
} ca;

/* s[0..len) (spaces around it ignored) as an address; an IPv4-mapped IPv6
 * address is IPv4. 0, or -1. */
static int ca_parse(const char *s, size_t len, ca_addr *out)
{
    while (len && (*s == ' ' || *s == '\t')) {
        s++;
        len--;
    }
    while (len && (s[len - 1] == ' ' || s[len - 1] == '\t'))
        len--;
    char buf[INET6_ADDRSTRLEN + 1];
    if (!len || len >= sizeof buf) return -1;
    memcpy(buf, s, len);
    buf[len] = '\0';
    memset(out, 0, sizeof *out);
    struct in6_addr a6;
    if (inet_pton(AF_INET, buf, out->b) == 1) return 0;
    if (inet_pton(AF_INET6, buf, &a6) != 1) return -1;
    if (IN6_IS_ADDR_V4MAPPED(&a6)) {
        memcpy(out->b, a6.s6_addr + 12, 4);
        return 0;
    }
    out->v6 = 1;
    memcpy(out->b, a6.s6_addr, 16);
    return 0;
}

static int ca_in(const ca_net *n, const ca_addr *a)
{
    if (n->a.v6 != a->v6) return 0;
    int full = n->bits / 8, rest = n->bits % 8;
    if (memcmp(n->a.b, a->b, (size_t)full)) return 0;
    if (!rest) return 1;
    unsigned char mask = (unsigned char)(0xff << (8 - rest));
    return (n->a.b[full] & mask) == (a->b[full] & mask);
}

static int ca_trusted(const ca_addr *a)
{
    for (size_t i = 0; i < ca.n; i++)
        if (ca_in(&ca.nets[i], a)) return 1;
    return 0;
}

static void ca_format(const ca_addr *a, char *out, size_t size)
{
    char buf[INET6_ADDRSTRLEN];
    if (!a->v6) {
        inet_ntop(AF_INET, a->b, buf, sizeof buf);
        snprintf(out, size, "%s", buf);
        return;
    }
    unsigned char p[16] = {0};
    memcpy(p, a->b, 8); /* the /64 */
    inet_ntop(AF_INET6, p, buf, sizeof buf);
    snprintf(out, size, "%s/64", buf);
}

int clientaddr_init(const char *trusted, char *err, size_t errsize)
{
    clientaddr_free();
    if (!trusted || !*trusted) return 0;
    size_t cap = 1;
    for (const char *p = trusted; *p; p++)
        cap += *p == ',';
    ca.nets = calloc(cap, sizeof *ca.nets);
    if (!ca.nets) {
        snprintf(err, errsize, "out of memory");
        return -1;
    }
    const char *p = trusted;
    for (;;) {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        const char *slash = memchr(p, '/', len);
        ca_net *n = &ca.nets[ca.n];
        size_t alen = slash ? (size_t)(slash - p) : len;
        int ok = ca_parse(p, alen, &n->a) == 0;
        int max = n->a.v6 ? 128 : 32;
        n->bits = max;
        if (ok && slash) {
            char *e;
            char num[8];
            size_t nl = len - alen - 1;
            ok = nl > 0 && nl < sizeof num;
            if (ok) {
                memcpy(num, slash + 1, nl);
                num[nl] = '\0';
                long b = strtol(num, &e, 10);
                ok = *e == '\0' && b >= 0 && b <= max;
                n->bits = (int)b;
            }
        }
        if (!ok) {
            snprintf(err, errsize, "'%.*s' is not an IPv4/IPv6 address or CIDR", (int)len, p);
            clientaddr_free();
            return -1;
        }
        ca.n++;
        if (!end) break;
        p = end + 1;
    }
    return 0;
}

void clientaddr_free(void)
{
    free(ca.nets);
    ca.nets = NULL;
    ca.n = 0;
}

int clientaddr_pick(const char *peer, const char *xff, char *out, size_t size)
{
    ca_addr cur, a;
    if (!peer || ca_parse(peer, strlen(peer), &cur) < 0) {
        snprintf(out, size, "unknown");
        return -1;
    }
    if (xff && ca_trusted(&cur)) {
        /* from the right: each hop a trusted proxy vouches for */
        size_t end = strlen(xff);
        for (;;) {
            size_t start = end;
            while (start > 0 && xff[start - 1] != ',')
                start--;
            if (ca_parse(xff + start, end - start, &a) < 0) break;
            cur = a;
            if (!ca_trusted(&cur) || start == 0) break;
            end = start - 1;
        }
    }
    ca_format(&cur, out, size);
    return 0;
}

/* Every X-Forwarded-For header of the request, joined with ','; NULL when
 * there is none (or no memory). The caller frees it. */
static char *ca_xff(struct lws *wsi)
{
    int total = lws_hdr_total_length(wsi, WSI_TOKEN_X_FORWARDED_FOR);
    if (total <= 0) return NULL;
    size_t cap = (size_t)total * 2 + 64; /* room for the commas between fragments */
    char *all = malloc(cap), *frag = malloc((size_t)total + 1);
    size_t used = 0;
    if (!all || !frag) {
        free(all);
        free(frag);
        return NULL;
    }
    all[0] = '\0';
    for (int i = 0;; i++) {
        int n = lws_hdr_copy_fragment(wsi, frag, total + 1, WSI_TOKEN_X_FORWARDED_FOR, i);
        if (n < 0) break;
        if (used + (size_t)n + 2 > cap) break;
        if (used) all[used++] = ',';
        memcpy(all + used, frag, (size_t)n);
        used += (size_t)n;
        all[used] = '\0';
    }
    free(frag);
    return all;
}

int clientaddr_of(struct lws *wsi, char *out, size_t size)
{
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    char peer[INET6_ADDRSTRLEN] = "";
    int fd = wsi ? lws_get_socket_fd(wsi) : -1;
    if (fd < 0 || getpeername(fd, (struct sockaddr *)&ss, &sl) < 0) {
        snprintf(out, size, "unknown");
        return -1;
    }
    if (ss.ss_family == AF_INET)
        inet_ntop(AF_INET, &((struct sockaddr_in *)&ss)->sin_addr, peer, sizeof peer);
    else if (ss.ss_family == AF_INET6)
        inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&ss)->sin6_addr, peer, sizeof peer);
    char *xff = ca.n ? ca_xff(wsi) : NULL;
    int rc = clientaddr_pick(peer, xff, out, size);
    free(xff);
    return rc;
}
