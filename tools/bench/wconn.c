/* wconn.c - the epoll WebSocket client engine (RFC 6455 client side, the
 * subset a Parley gateway speaks: binary messages, ping/pong, close). */
#define _GNU_SOURCE /* memmem */
#include "wconn.h"
#include "bench.h"
#include "token.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#ifndef IP_BIND_ADDRESS_NO_PORT
#define IP_BIND_ADDRESS_NO_PORT 24
#endif

#define WC_READ_BUF  (256 * 1024)
#define WC_MAX_MSG   (16u << 20)
#define WC_TOKEN_TTL 86400

struct wc_engine {
    int epfd;
    struct sockaddr_in gw[BENCH_MAX_GW];
    int ngw;
    const char *secret, *prefix;
    wc_callbacks cb;
    void *ctx;
    char *rd;
    wc_conn **dirty;
    size_t ndirty, capdirty;
    uint64_t pending;
    uint32_t rng;
};

wc_engine *wc_new(const struct sockaddr_in *gw, int ngw, const char *secret, const char *prefix,
                  const wc_callbacks *cb, void *ctx)
{
    wc_engine *e = calloc(1, sizeof(*e));
    if (!e) return NULL;
    e->epfd = epoll_create1(EPOLL_CLOEXEC);
    e->rd = malloc(WC_READ_BUF);
    if (e->epfd < 0 || !e->rd) {
        free(e->rd);
        free(e);
        return NULL;
    }
    memcpy(e->gw, gw, sizeof(*gw) * (size_t)ngw);
    e->ngw = ngw;
    e->secret = secret;
    e->prefix = prefix;
    e->cb = *cb;
    e->ctx = ctx;
    e->rng = (uint32_t)getpid() * 2654435761u ^ (uint32_t)bench_now_ns();
    return e;
}

void wc_free(wc_engine *e)
{
    if (!e) return;
    close(e->epfd);
    free(e->rd);
    free(e->dirty);
    free(e);
}

int wc_epfd(wc_engine *e)
{
    return e->epfd;
}

uint64_t wc_pending(wc_engine *e)
{
    return e->pending;
}

void wc_ready(wc_engine *e, wc_conn *c)
{
    if (!c->pending) return;
    c->pending = 0;
    e->pending--;
}

static int wc_grow(char **buf, uint32_t *cap, size_t need)
{
    if (need <= *cap) return 0;
    size_t n = *cap ? *cap : 512;
    while (n < need)
        n *= 2;
    char *p = realloc(*buf, n);
    if (!p) return -1;
    *buf = p;
    *cap = (uint32_t)n;
    return 0;
}

static void wc_set_out(wc_engine *e, wc_conn *c, int on)
{
    if (c->want_out == on) return;
    struct epoll_event ev = {.events = EPOLLIN | (on ? EPOLLOUT : 0), .data.ptr = c};
    epoll_ctl(e->epfd, EPOLL_CTL_MOD, c->fd, &ev);
    c->want_out = (uint8_t)on;
}

void wc_close(wc_engine *e, wc_conn *c, const char *why)
{
    if (c->state == WC_CLOSED || c->state == WC_IDLE) return;
    wc_ready(e, c);
    if (c->fd >= 0) close(c->fd); /* also leaves the epoll set */
    c->fd = -1;
    c->state = WC_CLOSED;
    free(c->rbuf);
    free(c->wbuf);
    free(c->frag);
    c->rbuf = c->wbuf = c->frag = NULL;
    c->rlen = c->rcap = c->wlen = c->woff = c->wcap = c->flen = c->fcap = 0;
    e->cb.on_close(e->ctx, c, why);
}

int wc_start(wc_engine *e, wc_conn *c)
{
    char why[96];
    c->t_start = bench_now_ns();
    c->state = WC_CONNECTING;
    c->pending = 1;
    e->pending++;
    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c->fd < 0) {
        snprintf(why, sizeof why, "socket: %s", strerror(errno));
        wc_close(e, c, why);
        return -1;
    }
    int one = 1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (c->src) {
        struct sockaddr_in sa = {.sin_family = AF_INET};
        sa.sin_addr.s_addr = htonl(0x7f000000u | c->src);
        setsockopt(c->fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
        if (bind(c->fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
            snprintf(why, sizeof why, "bind 127.0.0.%u: %s", c->src, strerror(errno));
            wc_close(e, c, why);
            return -1;
        }
    }
    if (connect(c->fd, (struct sockaddr *)&e->gw[c->gw], sizeof e->gw[0]) < 0 &&
        errno != EINPROGRESS) {
        snprintf(why, sizeof why, "connect: %s", strerror(errno));
        wc_close(e, c, why);
        return -1;
    }
    struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT, .data.ptr = c};
    c->want_out = 1;
    if (epoll_ctl(e->epfd, EPOLL_CTL_ADD, c->fd, &ev) < 0) {
        snprintf(why, sizeof why, "epoll_ctl: %s", strerror(errno));
        wc_close(e, c, why);
        return -1;
    }
    return 0;
}

static void wc_mark_dirty(wc_engine *e, wc_conn *c)
{
    if (c->dirty) return;
    if (e->ndirty == e->capdirty) {
        size_t n = e->capdirty ? e->capdirty * 2 : 1024;
        wc_conn **p = realloc(e->dirty, n * sizeof(*p));
        if (!p) return;
        e->dirty = p;
        e->capdirty = n;
    }
    e->dirty[e->ndirty++] = c;
    c->dirty = 1;
}

static void wc_append_raw(wc_engine *e, wc_conn *c, const char *p, size_t n)
{
    if (c->state == WC_CLOSED || c->state == WC_IDLE) return;
    if (c->woff && c->woff == c->wlen) c->woff = c->wlen = 0;
    if (wc_grow(&c->wbuf, &c->wcap, (size_t)c->wlen + n)) {
        wc_close(e, c, "out of memory");
        return;
    }
    memcpy(c->wbuf + c->wlen, p, n);
    c->wlen += (uint32_t)n;
    wc_mark_dirty(e, c);
}

static void wc_queue_op(wc_engine *e, wc_conn *c, int opcode, const char *payload, size_t len)
{
    if (c->state == WC_CLOSED || c->state == WC_IDLE) return;
    size_t hl = len < 126 ? 6 : len < 65536 ? 8 : 14;
    if (c->woff && c->woff == c->wlen) c->woff = c->wlen = 0;
    if (wc_grow(&c->wbuf, &c->wcap, (size_t)c->wlen + hl + len)) {
        wc_close(e, c, "out of memory");
        return;
    }
    unsigned char *h = (unsigned char *)c->wbuf + c->wlen;
    h[0] = (unsigned char)(0x80 | opcode);
    if (len < 126) {
        h[1] = (unsigned char)(0x80 | len);
    } else if (len < 65536) {
        h[1] = 0x80 | 126;
        h[2] = (unsigned char)(len >> 8);
        h[3] = (unsigned char)len;
    } else {
        h[1] = 0x80 | 127;
        for (int i = 0; i < 8; i++)
            h[2 + i] = (unsigned char)((uint64_t)len >> (56 - 8 * i));
    }
    /* xorshift: a fresh mask per frame, as a client must */
    e->rng ^= e->rng << 13;
    e->rng ^= e->rng >> 17;
    e->rng ^= e->rng << 5;
    unsigned char *mask = h + hl - 4;
    memcpy(mask, &e->rng, 4);
    unsigned char *out = h + hl;
    for (size_t i = 0; i < len; i++)
        out[i] = (unsigned char)payload[i] ^ mask[i & 3];
    c->wlen += (uint32_t)(hl + len);
    wc_mark_dirty(e, c);
}

void wc_queue(wc_engine *e, wc_conn *c, const char *payload, size_t len)
{
    wc_queue_op(e, c, 2, payload, len);
}

/* Writes what c holds. Returns -1 when c was closed. */
static int wc_write(wc_engine *e, wc_conn *c)
{
    while (c->woff < c->wlen) {
        ssize_t n = write(c->fd, c->wbuf + c->woff, c->wlen - c->woff);
        if (n < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                wc_set_out(e, c, 1);
                return 0;
            }
            if (errno == EINTR) continue;
            char why[80];
            snprintf(why, sizeof why, "write: %s", strerror(errno));
            wc_close(e, c, why);
            return -1;
        }
        c->woff += (uint32_t)n;
    }
    c->woff = c->wlen = 0;
    if (c->wcap > 65536) { /* give back what a burst grew */
        free(c->wbuf);
        c->wbuf = NULL;
        c->wcap = 0;
    }
    if (c->state != WC_CONNECTING) wc_set_out(e, c, 0); /* nothing left: stop asking */
    return 0;
}

void wc_flush(wc_engine *e)
{
    for (size_t i = 0; i < e->ndirty; i++) {
        wc_conn *c = e->dirty[i];
        c->dirty = 0;
        if (c->state == WC_OPEN || c->state == WC_UPGRADING) wc_write(e, c);
    }
    e->ndirty = 0;
}

static void wc_send_upgrade(wc_engine *e, wc_conn *c)
{
    char user[64], tok[TOKEN_MAX], req[512], sid[TOKEN_SID_LEN + 1];
    snprintf(user, sizeof user, "%s%u", e->prefix, c->user);
    /* the user's bulk session (parley bulk-users made it) */
    if (token_bulk_sid(e->secret, user, sid) < 0 ||
        token_mint(e->secret, user, sid, (int64_t)time(NULL) + WC_TOKEN_TTL, tok, sizeof tok) < 0) {
        wc_close(e, c, "cannot mint a token (user name too long?)");
        return;
    }
    char host[INET_ADDRSTRLEN];
    inet_ntop(AF_INET, &e->gw[c->gw].sin_addr, host, sizeof host);
    int n = snprintf(req, sizeof req,
                     "GET /ws?token=%s HTTP/1.1\r\nHost: %s:%u\r\nUpgrade: websocket\r\n"
                     "Connection: Upgrade\r\nSec-WebSocket-Key: cGFybGV5LWJlbmNoLWtleQ==\r\n"
                     "Sec-WebSocket-Version: 13\r\n\r\n",
                     tok, host, ntohs(e->gw[c->gw].sin_port));
    c->state = WC_UPGRADING;
    wc_append_raw(e, c, req, (size_t)n);
    c->dirty = 0; /* written right now, not at the next flush */
    for (size_t i = e->ndirty; i-- > 0;)
        if (e->dirty[i] == c) {
            e->dirty[i] = e->dirty[--e->ndirty];
            break;
        }
    wc_write(e, c);
}

/* Handles one complete frame. Returns -1 when c was closed. */
static int wc_frame(wc_engine *e, wc_conn *c, int fin, int op, const char *p, size_t len)
{
    if (op == 9) { /* ping */
        wc_queue_op(e, c, 10, p, len);
        return 0;
    }
    if (op == 10) return 0;
    if (op == 8) {
        char why[160];
        unsigned code = len >= 2 ? ((unsigned char)p[0] << 8 | (unsigned char)p[1]) : 1005;
        int rl = len > 2 ? (int)(len - 2 < 100 ? len - 2 : 100) : 0;
        snprintf(why, sizeof why, "closed by the server: %u %.*s", code, rl, len > 2 ? p + 2 : "");
        wc_close(e, c, why);
        return -1;
    }
    if (op == 1) {
        wc_close(e, c, "text frame from the server (protocol says binary only)");
        return -1;
    }
    if (op == 2 && fin && c->flen == 0) {
        e->cb.on_msg(e->ctx, c, p, len);
        return c->state == WC_OPEN ? 0 : -1;
    }
    if (op != 0 && op != 2) {
        wc_close(e, c, "unknown WebSocket opcode");
        return -1;
    }
    if ((size_t)c->flen + len > WC_MAX_MSG || wc_grow(&c->frag, &c->fcap, (size_t)c->flen + len)) {
        wc_close(e, c, "fragmented message too large");
        return -1;
    }
    memcpy(c->frag + c->flen, p, len);
    c->flen += (uint32_t)len;
    if (fin) {
        e->cb.on_msg(e->ctx, c, c->frag, c->flen);
        if (c->state != WC_OPEN) return -1;
        free(c->frag);
        c->frag = NULL;
        c->flen = c->fcap = 0;
    }
    return 0;
}

/* Parses frames in buf[0..len); returns the bytes consumed, or -1 when c was
 * closed. */
static ssize_t wc_parse(wc_engine *e, wc_conn *c, const char *buf, size_t len)
{
    size_t off = 0;
    if (c->state == WC_UPGRADING) {
        const char *end = memmem(buf, len, "\r\n\r\n", 4);
        if (!end) {
            if (len > 8192) {
                wc_close(e, c, "HTTP answer too long");
                return -1;
            }
            return 0;
        }
        if (len < 12 || memcmp(buf, "HTTP/1.1 101", 12) != 0) {
            /* the status line, and Retry-After when the answer has one (429) */
            char why[96];
            int n =
                snprintf(why, sizeof why, "upgrade refused: %.*s", (int)(len < 12 ? len : 12), buf);
            for (const char *h = buf; h && h < end; h = memchr(h, '\n', (size_t)(end - h))) {
                h += *h == '\n';
                if (end - h > 12 && strncasecmp(h, "retry-after:", 12) == 0) {
                    snprintf(why + n, sizeof why - (size_t)n, " (Retry-After: %ld)",
                             strtol(h + 12, NULL, 10));
                    break;
                }
            }
            wc_close(e, c, why);
            return -1;
        }
        c->state = WC_OPEN;
        off = (size_t)(end - buf) + 4;
    }
    while (len - off >= 2) {
        const unsigned char *h = (const unsigned char *)buf + off;
        size_t hl = 2;
        uint64_t pl = h[1] & 0x7f;
        if (h[1] & 0x80) {
            wc_close(e, c, "masked frame from the server");
            return -1;
        }
        if (pl == 126) {
            if (len - off < 4) break;
            pl = (uint64_t)h[2] << 8 | h[3];
            hl = 4;
        } else if (pl == 127) {
            if (len - off < 10) break;
            pl = 0;
            for (int i = 0; i < 8; i++)
                pl = pl << 8 | h[2 + i];
            hl = 10;
        }
        if (pl > WC_MAX_MSG) {
            wc_close(e, c, "frame too large");
            return -1;
        }
        if (len - off < hl + pl) break;
        if (wc_frame(e, c, h[0] & 0x80, h[0] & 0x0f, buf + off + hl, (size_t)pl) < 0) return -1;
        off += hl + (size_t)pl;
    }
    return (ssize_t)off;
}

static void wc_read(wc_engine *e, wc_conn *c)
{
    for (;;) {
        ssize_t n = read(c->fd, e->rd, WC_READ_BUF);
        if (n < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK) return;
            if (errno == EINTR) continue;
            char why[80];
            snprintf(why, sizeof why, "read: %s", strerror(errno));
            wc_close(e, c, why);
            return;
        }
        if (n == 0) {
            wc_close(e, c,
                     c->state == WC_UPGRADING ? "closed during the upgrade"
                                              : "connection closed by the server");
            return;
        }
        ssize_t used;
        if (c->rlen == 0) {
            used = wc_parse(e, c, e->rd, (size_t)n);
            if (used < 0) return;
            if (used < n) {
                if (wc_grow(&c->rbuf, &c->rcap, (size_t)(n - used))) {
                    wc_close(e, c, "out of memory");
                    return;
                }
                memcpy(c->rbuf, e->rd + used, (size_t)(n - used));
                c->rlen = (uint32_t)(n - used);
            }
        } else {
            if (wc_grow(&c->rbuf, &c->rcap, (size_t)c->rlen + (size_t)n)) {
                wc_close(e, c, "out of memory");
                return;
            }
            memcpy(c->rbuf + c->rlen, e->rd, (size_t)n);
            c->rlen += (uint32_t)n;
            used = wc_parse(e, c, c->rbuf, c->rlen);
            if (used < 0) return;
            memmove(c->rbuf, c->rbuf + used, c->rlen - (size_t)used);
            c->rlen -= (uint32_t)used;
            if (c->rlen == 0) {
                free(c->rbuf);
                c->rbuf = NULL;
                c->rcap = 0;
            }
        }
        if (n < WC_READ_BUF) return;
    }
}

void wc_event(wc_engine *e, wc_conn *c, uint32_t events)
{
    if (c->state == WC_CONNECTING) {
        int err = 0;
        socklen_t l = sizeof err;
        getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &l);
        if (err || (events & (EPOLLERR | EPOLLHUP))) {
            char why[80];
            snprintf(why, sizeof why, "connect: %s", strerror(err ? err : ECONNRESET));
            wc_close(e, c, why);
            return;
        }
        if (events & EPOLLOUT) wc_send_upgrade(e, c);
        return;
    }
    if (events & EPOLLIN) wc_read(e, c);
    if (c->state == WC_CLOSED) return;
    if (events & EPOLLOUT) wc_write(e, c);
    if (c->state == WC_CLOSED) return;
    if ((events & (EPOLLERR | EPOLLHUP)) && !(events & EPOLLIN))
        wc_close(e, c, "socket error or hang-up");
}
