/* rtq.c - texts on their way to the routers.
 *
 * The texts that arrive in one turn of the event loop are packed per routing
 * slot and published at the end of the turn: one PUBLISH on parley:rt:N
 * carries every envelope for slot N, one after the other (the router reads
 * them in order, docs/internals.md). Under load that is one Redis command,
 * one fan-out and one socket write for many messages; an idle gateway still
 * publishes each text at once (a batch of one, no timer).
 *
 * PUBLISH answers how many routers got the payload: 0 (no router owns the
 * slot right now) or an error means none of its texts was stored, and each
 * sender still connected gets `error unavailable` with its cid. A payload
 * whose connection dropped unanswered may or may not have reached a router:
 * no answer, the clients retry with their cids (protocol.md). */
#include "bus.h"
#include "gw.h"
#include "log.h"

#include <stdlib.h>
#include <string.h>

_Static_assert(PARLEY_SLOTS <= 64, "rtq_dirty is a 64-bit mask of slots");

#define RTQ_MAX_MSGS  128         /* texts per PUBLISH */
#define RTQ_MAX_BYTES (64 * 1024) /* payload bytes before an early publish */

typedef struct rtq_item {
    uint64_t conn;
    size_t cid_len;
    char cid[PROTO_CID_MAX];
} rtq_item;

/* The senders of one payload, handed to the PUBLISH callback. */
struct rtq_batch {
    int n, cap;
    rtq_item items[];
};

static void rtq_flush_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    rtq_flush(arg);
}

int rtq_init(gw_server *g)
{
    for (unsigned i = 0; i < PARLEY_SLOTS; i++)
        msgpack_sbuffer_init(&g->rtq[i].sb);
    g->rtq_ev = event_new(g->base, -1, 0, rtq_flush_cb, g);
    return g->rtq_ev ? 0 : -1;
}

void rtq_free(gw_server *g)
{
    for (unsigned i = 0; i < PARLEY_SLOTS; i++) {
        msgpack_sbuffer_destroy(&g->rtq[i].sb);
        free(g->rtq[i].batch);
        g->rtq[i].batch = NULL;
    }
    if (g->rtq_ev) event_free(g->rtq_ev);
    g->rtq_ev = NULL;
}

/* Every sender of the batch still connected: not stored. */
static void rtq_refuse(gw_server *g, const rtq_batch *b)
{
    for (int i = 0; i < b->n; i++) {
        gw_session *s = ws_session_find(g, b->items[i].conn);
        if (s) ws_unavailable(s, b->items[i].cid, b->items[i].cid_len);
    }
}

static void rtq_publish_cb(redisAsyncContext *ac, void *r, void *priv)
{
    gw_server *g = ac->data;
    rtq_batch *b = priv;
    redisReply *rep = r;
    if (rep && rep->type == REDIS_REPLY_INTEGER && rep->integer > 0)
        g->m.messages_published += (uint64_t)b->n;
    else if (rep) /* no router listens (0) or Redis refused */
        rtq_refuse(g, b);
    free(b);
}

static void rtq_publish(gw_server *g, unsigned slot)
{
    rtq_slot *q = &g->rtq[slot];
    rtq_batch *b = q->batch;
    char chan[KEYS_MAX];
    q->batch = NULL;
    if (!b) return;
    keys_fmt(chan, sizeof chan, CHAN_ROUTER, slot);
    const char *argv[] = {"PUBLISH", chan, q->sb.data};
    size_t lens[] = {7, strlen(chan), q->sb.size};
    int rc = rl_cmd_argv(g, rtq_publish_cb, b, 3, argv, lens);
    q->sb.size = 0;
    if (rc < 0) {
        rtq_refuse(g, b);
        free(b);
    }
}

void rtq_flush(gw_server *g)
{
    uint64_t dirty = g->rtq_dirty;
    g->rtq_dirty = 0;
    for (unsigned slot = 0; dirty; slot++, dirty >>= 1)
        if (dirty & 1) rtq_publish(g, slot);
}

int rtq_add(gw_server *g, unsigned slot, const bus_text *m)
{
    rtq_slot *q = &g->rtq[slot];
    rtq_batch *b = q->batch;
    if (m->cid.len > PROTO_CID_MAX) return -1;
    if (!b || b->n == b->cap) {
        int cap = b ? 2 * b->cap : 8;
        rtq_batch *nb = realloc(b, sizeof *nb + (size_t)cap * sizeof nb->items[0]);
        if (!nb) return -1;
        if (!b) nb->n = 0;
        nb->cap = cap;
        q->batch = b = nb;
    }
    msgpack_packer pk;
    msgpack_packer_init(&pk, &q->sb, msgpack_sbuffer_write);
    bus_enc_text(&pk, m);
    rtq_item *it = &b->items[b->n++];
    it->conn = m->conn;
    it->cid_len = m->cid.len;
    memcpy(it->cid, m->cid.p, m->cid.len);

    if (!g->rtq_dirty) event_active(g->rtq_ev, EV_TIMEOUT, 1);
    g->rtq_dirty |= (uint64_t)1 << slot;
    if (b->n >= RTQ_MAX_MSGS || q->sb.size >= RTQ_MAX_BYTES) {
        g->rtq_dirty &= ~((uint64_t)1 << slot);
        rtq_publish(g, slot);
    }
    return 0;
}
