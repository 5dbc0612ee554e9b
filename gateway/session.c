/* session.c - the session table and the write side (session.h).
 *
 * Writing: frames queued during a turn of the event loop are written at its
 * end, straight from here, every frame a session got in that turn in one
 * write (sendq_flush). Only a socket that did not take everything waits for
 * POLLOUT (lws keeps the unsent tail and asks for it; the rest stays in the
 * bounded sendq): a writable socket costs one send(), not an epoll_ctl to
 * arm POLLOUT, a wakeup, the callback and an epoll_ctl to disarm it.
 *
 * Closing: the gateway sends the close frame itself and waits for the
 * peer's (WS_CLOSE_WAIT s at most): lws 4.1 drops the TCP connection without
 * a close handshake when a writable callback returns -1. */
#include "session.h"

#include <inttypes.h>
#include <libwebsockets.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "keys.h"
#include "log.h"
#include "metrics.h"

#define SESS_CLOSE_WAIT 5 /* seconds to wait for the peer's close frame */
/* lws 4.1 keeps LWS_WRITE_CLOSE (4) private ("handled by lws_close_reason"),
 * but lws_write() sends a close frame for it as for its own close path. */
#define SESS_WRITE_CLOSE ((enum lws_write_protocol)4)

/* uthash is built with HASH_NONFATAL_OOM (CMakeLists.txt): an add that
 * finds no memory leaves the item out instead of exiting, so each add is
 * checked with a find. */

/* A user's local sessions: the head of the list through next_of_user. */
typedef struct sess_user {
    char name[PROTO_NAME_MAX + 1];
    gw_session *head;
    UT_hash_handle hh;
} sess_user;

static struct {
    struct event_base *base;
    size_t send_queue;
    uint64_t next_conn;
    gw_session *by_conn; /* uthash head */
    sess_user *by_user;  /* uthash head */
    size_t n;
    /* sessions with frames queued in this loop turn: their conn ids */
    uint64_t *flushq;
    size_t nflush, flushcap;
    struct event *flush_ev;
    void (*drained)(gw_session *s); /* the drained hook */
} tab;

static void sess_flush_cb(evutil_socket_t fd, short what, void *arg);

int sess_init(struct event_base *base, size_t send_queue)
{
    tab.base = base;
    tab.send_queue = send_queue;
    tab.flush_ev = event_new(base, -1, 0, sess_flush_cb, NULL);
    return tab.flush_ev ? 0 : -1;
}

void sess_free_all(void)
{
    if (tab.flush_ev) event_free(tab.flush_ev);
    tab.flush_ev = NULL;
    free(tab.flushq);
    tab.flushq = NULL;
    tab.nflush = tab.flushcap = 0;
    sess_user *u, *tmp;
    HASH_ITER(hh, tab.by_user, u, tmp)
    {
        HASH_DEL(tab.by_user, u);
        free(u);
    }
}

/* ---- the table ---- */

gw_session *sess_new(struct lws *wsi, const char *user, const char *gwid)
{
    size_t ulen = strlen(user);
    sess_user *u;
    HASH_FIND(hh, tab.by_user, user, ulen, u);
    if (!u) {
        u = calloc(1, sizeof *u);
        if (!u) return NULL;
        memcpy(u->name, user, ulen);
        HASH_ADD(hh, tab.by_user, name, ulen, u);
        sess_user *found;
        HASH_FIND(hh, tab.by_user, user, ulen, found);
        if (!found) { /* out of memory (HASH_NONFATAL_OOM): not added */
            free(u);
            return NULL;
        }
    }
    gw_session *s = calloc(1, sizeof *s);
    if (!s) {
        if (!u->head) {
            HASH_DEL(tab.by_user, u);
            free(u);
        }
        return NULL;
    }
    s->wsi = wsi;
    s->conn = ++tab.next_conn;
    memcpy(s->user, user, ulen);
    keys_session_ids(s->sessid, sizeof s->sessid, s->member, sizeof s->member, gwid, user, s->conn);
    s->state = SESS_OPENING;
    HASH_ADD(hh, tab.by_conn, conn, sizeof s->conn, s);
    if (sess_find(s->conn) != s) { /* out of memory (HASH_NONFATAL_OOM): not added */
        if (!u->head) {
            HASH_DEL(tab.by_user, u);
            free(u);
        }
        free(s);
        return NULL;
    }
    s->next_of_user = u->head;
    u->head = s;
    tab.n++;
    return s;
}

void sess_remove(gw_session *s)
{
    HASH_DEL(tab.by_conn, s);
    sess_user *u;
    HASH_FIND(hh, tab.by_user, s->user, strlen(s->user), u);
    if (u) {
        for (gw_session **pp = &u->head; *pp; pp = &(*pp)->next_of_user)
            if (*pp == s) {
                *pp = s->next_of_user;
                break;
            }
        if (!u->head) {
            HASH_DEL(tab.by_user, u);
            free(u);
        }
    }
    s->next_of_user = NULL;
    tab.n--;
}

void sess_free(gw_session *s)
{
    sendq_clear(&s->q);
    sendq_clear(&s->backlog);
    pending_clear(&s->texts);
    free(s);
}

gw_session *sess_find(uint64_t conn)
{
    gw_session *s;
    HASH_FIND(hh, tab.by_conn, &conn, sizeof conn, s);
    return s;
}

gw_session *sess_of_user(const char *user, size_t len)
{
    sess_user *u;
    if (len == 0 || len > PROTO_NAME_MAX) return NULL;
    HASH_FIND(hh, tab.by_user, user, len, u);
    return u ? u->head : NULL;
}

size_t sess_count(void)
{
    return tab.n;
}

void sess_each(void (*fn)(gw_session *s, void *arg), void *arg)
{
    gw_session *s, *tmp;
    HASH_ITER(hh, tab.by_conn, s, tmp)
    fn(s, arg);
}

/* ---- writing ---- */

void sess_close(gw_session *s, int code, const char *reason)
{
    if (s->close_code) return;
    s->close_code = code;
    snprintf(s->close_reason, sizeof s->close_reason, "%s", reason);
    s->state = SESS_CLOSING;
    if (s->wsi) {
        /* a peer that stopped reading may never make the socket writable again (its close
         * frame could not be sent): lws drops the connection after SESS_CLOSE_WAIT s then */
        lws_set_timeout(s->wsi, PENDING_TIMEOUT_CLOSE_SEND, SESS_CLOSE_WAIT);
        lws_callback_on_writable(s->wsi);
    }
}

static void sess_close_one(gw_session *s, void *arg)
{
    const struct {
        int code;
        const char *reason;
    } *c = arg;
    sess_close(s, c->code, c->reason);
}

void sess_close_all(int code, const char *reason)
{
    struct {
        int code;
        const char *reason;
    } c = {code, reason};
    sess_each(sess_close_one, &c);
}

static void sess_slow_consumer(gw_session *s)
{
    metrics_inc(METRIC_SLOW_CONSUMERS);
    log_info("conn %" PRIu64 " (%s): send queue over %zu bytes, dropping slow consumer", s->conn,
             s->user, tab.send_queue);
    sendq_clear(&s->q);
    sendq_clear(&s->backlog);
    s->backlog_live = 0;
    s->close_after_flush = 0;
    s->close_code = 0;
    sess_close(s, 1008, "slow consumer");
}

static void sess_want_write(gw_session *s);

/* Moves backlog frames into the wire queue while it is at most half full (a
 * frame always fits an empty queue), keeping room for live frames. */
static void sess_pump(gw_session *s)
{
    size_t half = tab.send_queue / 2;
    while (s->backlog.head && (!s->q.head || s->q.bytes + s->backlog.head->len <= half)) {
        if (s->backlog.head->live) s->backlog_live -= s->backlog.head->len;
        sendq_move_head(&s->backlog, &s->q);
    }
    if (s->q.head) sess_want_write(s);
}

void sess_set_drained_hook(void (*fn)(gw_session *s))
{
    tab.drained = fn;
}

/* After a write: the replay has drained below the mark, tell the waiter. */
static void sess_check_drained(gw_session *s)
{
    if (!s->want_drained || s->close_code || s->backlog.head || s->q.bytes > tab.send_queue / 2)
        return;
    s->want_drained = 0;
    if (tab.drained) tab.drained(s);
}

void sess_when_drained(gw_session *s)
{
    if (s->close_code || !s->wsi) return;
    s->want_drained = 1;
    sess_want_write(s); /* a pass of the end-of-turn writes checks it */
}

static int sess_flush_q(gw_session *s)
{
    uint64_t n = 0;
    int rc = sendq_flush(&s->q, s->wsi, &n);
    metrics_add(METRIC_FRAMES_OUT, n);
    return rc;
}

static void sess_flush_cb(evutil_socket_t fd, short what, void *arg)
{
    /* entries appended while this runs (sess_pump) are handled in this pass */
    for (size_t i = 0; i < tab.nflush; i++) {
        gw_session *s = sess_find(tab.flushq[i]);
        if (!s) continue;
        s->flush_queued = 0;
        if (!s->wsi) continue;
        if (s->close_code || lws_partial_buffered(s->wsi)) {
            lws_callback_on_writable(s->wsi); /* the WRITEABLE callback takes over */
            continue;
        }
        if (sess_flush_q(s) < 0) {
            lws_callback_on_writable(s->wsi); /* the write error closes it there */
            continue;
        }
        sess_pump(s);
        if (s->q.head && !s->flush_queued) lws_callback_on_writable(s->wsi);
        sess_check_drained(s);
    }
    tab.nflush = 0;
}

static void sess_want_write(gw_session *s)
{
    if (!s->wsi || s->flush_queued) return;
    if (tab.nflush == tab.flushcap) {
        size_t cap = tab.flushcap ? 2 * tab.flushcap : 256;
        uint64_t *q = realloc(tab.flushq, cap * sizeof *q);
        if (!q) { /* no memory for the list: the slow way */
            lws_callback_on_writable(s->wsi);
            return;
        }
        tab.flushq = q;
        tab.flushcap = cap;
    }
    tab.flushq[tab.nflush++] = s->conn;
    s->flush_queued = 1;
    if (tab.nflush == 1) event_active(tab.flush_ev, EV_TIMEOUT, 1);
}

void sess_send(gw_session *s, const char *frame, size_t len)
{
    if (s->close_code && !s->close_after_flush) return;
    if (s->backlog.head) { /* behind a replay */
        if (s->backlog_live + len > tab.send_queue) {
            sess_slow_consumer(s);
            return;
        }
        if (sendq_push(&s->backlog, frame, len) < 0) {
            sess_close(s, 1011, "out of memory");
            return;
        }
        s->backlog.tail->live = 1;
        s->backlog_live += len;
        return;
    }
    if (s->q.bytes + len > tab.send_queue) {
        sess_slow_consumer(s);
        return;
    }
    if (sendq_push(&s->q, frame, len) < 0) {
        sess_close(s, 1011, "out of memory");
        return;
    }
    sess_want_write(s);
}

void sess_send_replay(gw_session *s, const char *frame, size_t len)
{
    if (s->close_code) return;
    if (sendq_push(&s->backlog, frame, len) < 0) {
        sess_close(s, 1011, "out of memory");
        return;
    }
    sess_pump(s);
}

void sess_send_packed(gw_session *s, msgpack_sbuffer *sb)
{
    sess_send(s, sb->data, sb->size);
    msgpack_sbuffer_destroy(sb);
}

void sess_send_error(gw_session *s, const char *code, const char *message, const proto_str *cid)
{
    msgpack_sbuffer sb;
    msgpack_packer pk;
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    proto_enc_error(&pk, code, message, cid);
    sess_send_packed(s, &sb);
}

int sess_on_writable(gw_session *s)
{
    struct lws *wsi = s->wsi;
    if (s->close_code && (!s->close_after_flush || (!s->q.head && !s->backlog.head))) {
        /* Not "return -1": from this callback lws 4.1 drops the TCP
         * connection at once, without a close frame handshake. Send the
         * close frame ourselves and wait for the peer's (then
         * LWS_CALLBACK_WS_PEER_INITIATED_CLOSE), at most SESS_CLOSE_WAIT s. */
        if (!s->close_started) {
            unsigned char buf[LWS_PRE + 2 + sizeof s->close_reason];
            size_t n = strlen(s->close_reason);
            s->close_started = 1;
            buf[LWS_PRE] = (unsigned char)(s->close_code >> 8);
            buf[LWS_PRE + 1] = (unsigned char)(s->close_code & 0xff);
            memcpy(buf + LWS_PRE + 2, s->close_reason, n);
            if (lws_write(wsi, buf + LWS_PRE, 2 + n, SESS_WRITE_CLOSE) < 0) return -1;
            lws_set_timeout(wsi, PENDING_TIMEOUT_CLOSE_ACK, SESS_CLOSE_WAIT);
        }
        return 0;
    }
    if (sess_flush_q(s) < 0) return -1;
    sess_pump(s);
    if (s->q.head || s->close_code) lws_callback_on_writable(wsi);
    sess_check_drained(s);
    return 0;
}
