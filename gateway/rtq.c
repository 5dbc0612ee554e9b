/* rtq.c - texts to the routers, one PUBLISH per slot per loop turn (rtq.h). */
#include "rtq.h"

#include <stdlib.h>
#include <string.h>

#include "keys.h"
#include "log.h"
#include "metrics.h"
#include "redis_link.h"

_Static_assert(PARLEY_SLOTS <= 64, "rtq_dirty is a 64-bit mask of slots");

#define RTQ_MAX_MSGS  128         /* texts per PUBLISH */
#define RTQ_MAX_BYTES (64 * 1024) /* payload bytes before an early publish */

typedef struct rtq_item {
    uint64_t conn;
    size_t cid_len;
    char cid[PROTO_CID_MAX];
} rtq_item;

/* The senders of one payload, handed to the PUBLISH callback (and on a
 * cluster to the lease check's). */
typedef struct rtq_batch {
    unsigned slot; /* routing slot, < PARLEY_SLOTS */
    int n, cap;
    rtq_item items[];
} rtq_batch;

typedef struct rtq_slot {
    msgpack_sbuffer sb; /* envelopes, one after the other */
    rtq_batch *batch;   /* their senders; NULL when empty */
} rtq_slot;

static struct {
    rtq_slot slot[PARLEY_SLOTS];
    uint64_t dirty;   /* slots with texts waiting */
    struct event *ev; /* publishes them at the end of this loop turn */
} rtq;

static void rtq_flush_cb(evutil_socket_t fd, short what, void *arg)
{
    rtq_flush();
}

int rtq_init(struct event_base *base)
{
    for (unsigned i = 0; i < PARLEY_SLOTS; i++)
        msgpack_sbuffer_init(&rtq.slot[i].sb);
    rtq.ev = event_new(base, -1, 0, rtq_flush_cb, NULL);
    return rtq.ev ? 0 : -1;
}

void rtq_free(void)
{
    for (unsigned i = 0; i < PARLEY_SLOTS; i++) {
        msgpack_sbuffer_destroy(&rtq.slot[i].sb);
        free(rtq.slot[i].batch);
        rtq.slot[i].batch = NULL;
    }
    if (rtq.ev) event_free(rtq.ev);
    rtq.ev = NULL;
}

void rtq_refuse_text(gw_session *s, const char *cid, size_t cid_len)
{
    proto_str c = {cid, cid_len};
    metrics_inc(METRIC_UNAVAILABLE);
    if (cid_len) pending_forget(&s->texts, cid, cid_len, NULL);
    sess_send_error(s, "unavailable", "not stored: retry later with the same cid", &c);
}

/* Every sender of the batch still connected: not stored. */
static void rtq_refuse(const rtq_batch *b)
{
    for (int i = 0; i < b->n; i++) {
        gw_session *s = sess_find(b->items[i].conn);
        if (s) rtq_refuse_text(s, b->items[i].cid, b->items[i].cid_len);
    }
}

/* On a cluster, a PUBLISH counted 0 subscribers: the answer of EXISTS on the
 * slot's lease (parley:slot:N). 1: a router holds the slot (subscribed on
 * another node: it has the texts); anything else (0, an error, the link
 * lost): nobody routes the slot, so nobody stored them: unavailable. */
static void rtq_lease_cb(redisAsyncContext *ac, void *r, void *priv)
{
    (void)ac;
    rtq_batch *b = priv;
    long long held = 0;
    if (r && rl_reply_int(r, &held) == 0 && held == 1)
        metrics_add(METRIC_MESSAGES_PUBLISHED, (uint64_t)b->n);
    else
        rtq_refuse(b);
    free(b);
}

static void rtq_publish_cb(redisAsyncContext *ac, void *r, void *priv)
{
    (void)ac;
    rtq_batch *b = priv;
    redisReply *rep = r;
    if (rep && rep->type == REDIS_REPLY_INTEGER && rep->integer > 0) {
        metrics_add(METRIC_MESSAGES_PUBLISHED, (uint64_t)b->n);
    } else if (rep && rep->type == REDIS_REPLY_INTEGER && rl_cluster()) {
        /* the count is the subscribers of one node (rl_cluster): 0 says
         * nothing, the slot's lease says whether a router holds it */
        char key[KEYS_MAX];
        keys_fmt(key, sizeof key, KEY_SLOT, b->slot);
        const char *argv[] = {"EXISTS", key};
        size_t lens[] = {6, strlen(key)};
        if (rl_command(rtq_lease_cb, b, 2, argv, lens) == 0) return;
        rtq_refuse(b);
    } else if (rep) { /* no router listens (0) or Redis refused */
        rtq_refuse(b);
    }
    free(b);
}

static void rtq_publish(unsigned slot)
{
    rtq_slot *q = &rtq.slot[slot];
    rtq_batch *b = q->batch;
    char chan[KEYS_MAX];
    q->batch = NULL;
    if (!b) return;
    keys_fmt(chan, sizeof chan, CHAN_ROUTER, slot);
    const char *argv[] = {"PUBLISH", chan, q->sb.data};
    size_t lens[] = {7, strlen(chan), q->sb.size};
    int rc = rl_command(rtq_publish_cb, b, 3, argv, lens);
    q->sb.size = 0;
    if (rc < 0) {
        rtq_refuse(b);
        free(b);
    }
}

void rtq_flush(void)
{
    uint64_t dirty = rtq.dirty;
    rtq.dirty = 0;
    for (unsigned slot = 0; dirty; slot++, dirty >>= 1)
        if (dirty & 1) rtq_publish(slot);
}

int rtq_add(unsigned slot, const bus_text *m)
{
    rtq_slot *q = &rtq.slot[slot];
    rtq_batch *b = q->batch;
    if (m->cid.len > PROTO_CID_MAX) return -1;
    if (!b || b->n == b->cap) {
        int cap = b ? 2 * b->cap : 8;
        rtq_batch *nb = realloc(b, sizeof *nb + (size_t)cap * sizeof nb->items[0]);
        if (!nb) return -1;
        if (!b) nb->n = 0;
        nb->slot = slot;
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

    if (!rtq.dirty) event_active(rtq.ev, EV_TIMEOUT, 1);
    rtq.dirty |= (uint64_t)1 << slot;
    if (b->n >= RTQ_MAX_MSGS || q->sb.size >= RTQ_MAX_BYTES) {
        rtq.dirty &= ~((uint64_t)1 << slot);
        rtq_publish(slot);
    }
    return 0;
}
