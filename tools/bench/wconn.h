/* wconn.h - a lean epoll WebSocket client for many connections.
 *
 * One wc_engine per worker process: an epoll set, one shared read buffer and
 * the callbacks. A wc_conn is a client socket going through
 * TCP connect -> HTTP upgrade (token in the query string) -> WebSocket frames.
 * Frames out are masked and appended to the connection's write buffer, which
 * the caller flushes once per batch (many frames, one write). Frames in are
 * reassembled and handed to on_msg one binary message at a time; pings are
 * answered. Buffers are allocated only while they hold bytes, so an idle
 * connection costs the struct alone.
 *
 * Lifetime: the caller owns the wc_conn array. wc_start() opens the socket;
 * the engine closes it on error or server close and calls on_close exactly
 * once per wc_start. A refused upgrade's reason reads "upgrade refused:
 * HTTP/1.1 NNN", plus " (Retry-After: S)" when the answer has that header; a
 * close by the server "closed by the server: CODE reason". */
#ifndef PARLEY_BENCH_WCONN_H
#define PARLEY_BENCH_WCONN_H

#include <netinet/in.h>
#include <stddef.h>
#include <stdint.h>

enum { WC_IDLE, WC_CONNECTING, WC_UPGRADING, WC_OPEN, WC_CLOSED };

typedef struct wc_conn {
    int fd;
    uint8_t state;
    uint8_t gw;
    uint8_t want_out; /* EPOLLOUT armed */
    uint8_t dirty;    /* on the engine's flush list */
    uint8_t hello;
    uint8_t group_seen;
    uint8_t pending; /* counted in wc_pending() */
    uint32_t user;   /* user number: name is <prefix><user> */
    uint32_t idx;    /* index in the caller's array */
    uint32_t src;    /* source address 127.0.0.<src>, 0 = kernel's choice */
    uint64_t t_start;
    char *rbuf; /* unparsed bytes (partial frame) */
    uint32_t rlen, rcap;
    char *wbuf; /* unsent bytes */
    uint32_t wlen, woff, wcap;
    char *frag; /* fragmented message being reassembled */
    uint32_t flen, fcap;
} wc_conn;

typedef struct wc_engine wc_engine;

typedef struct wc_callbacks {
    void (*on_msg)(void *ctx, wc_conn *c, const char *buf, size_t len);
    void (*on_close)(void *ctx, wc_conn *c, const char *why);
} wc_callbacks;

wc_engine *wc_new(const struct sockaddr_in *gw, int ngw, const char *secret, const char *prefix,
                  const wc_callbacks *cb, void *ctx);
void wc_free(wc_engine *e);
int wc_epfd(wc_engine *e);

/* Starts connecting c (c->gw, c->user, c->src set). Returns 0, or -1 after
 * on_close was called with the reason. */
int wc_start(wc_engine *e, wc_conn *c);
/* Handles one epoll event whose data.ptr is a wc_conn. */
void wc_event(wc_engine *e, wc_conn *c, uint32_t events);
/* Appends one masked binary frame to c's write buffer (flushed by wc_flush). */
void wc_queue(wc_engine *e, wc_conn *c, const char *payload, size_t len);
/* Writes every connection with queued bytes (one write each). */
void wc_flush(wc_engine *e);
void wc_close(wc_engine *e, wc_conn *c, const char *why);
/* Connections started and neither closed nor marked ready: the handshakes in
 * flight, up to the application's first frame (hello), so a bound on them
 * also bounds the work queued in the server (session scripts), not just TCP
 * and HTTP. */
uint64_t wc_pending(wc_engine *e);
void wc_ready(wc_engine *e, wc_conn *c);

#endif
