/* deliver.c - envelopes to sessions, in inbox order (deliver.h). */
#include "deliver.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "bus.h"
#include "keys.h"
#include "log.h"
#include "metrics.h"
#include "presence.h"
#include "redis_link.h"
#include "scripts.h"

typedef struct dq_item {
    struct dq_item *next;
    dq_kind kind;
    int64_t seq; /* 0: no seq */
    size_t len;
    char frame[];
} dq_item;

struct deliver_sess {
    dq_item *head, *tail; /* envelopes waiting for hello or for a fetch */
    size_t bytes;
    int fetching; /* a page (sync script) is in flight */
    int paging;   /* a page was sent; the next is fetched once it drained */
    int64_t fetch_target;
    uint32_t fetch_gen; /* number of the latest fetch: an older reply is stale */
    /* a client's sync: replayed from its own cursor, then sync_end */
    int syncing;
    int64_t sync_cursor; /* the last seq replayed (starts at `after`) */
    char sync_epoch[PROTO_EPOCH_MAX + 1];
    int sync_queued; /* one more sync waits for this one (or a gap fetch) to end */
    int64_t queued_after;
    char queued_epoch[PROTO_EPOCH_MAX + 1];
};

/* What a page's callback needs: the session and which fetch it was. */
typedef struct deliver_fetch {
    uint64_t conn;
    uint32_t gen;
} deliver_fetch;

static struct {
    char gw_chan[KEYS_MAX];
    size_t send_queue;
    int64_t page_entries, page_bytes;
} dl;

void deliver_init(const char *gw_chan, size_t send_queue, int64_t page_entries, int64_t page_bytes)
{
    snprintf(dl.gw_chan, sizeof dl.gw_chan, "%s", gw_chan);
    dl.send_queue = send_queue;
    dl.page_entries = page_entries;
    dl.page_bytes = page_bytes;
}

/* A page or a sync under way: envelopes wait behind it. */
static int deliver_busy(const struct deliver_sess *d)
{
    return d && (d->fetching || d->paging || d->syncing);
}

static struct deliver_sess *deliver_state(gw_session *s)
{
    if (!s->dl) s->dl = calloc(1, sizeof *s->dl);
    return s->dl;
}

/* A group frame: every member becomes a contact of the session (presence).
 * No state query per member (a 1,000-member group would cost 1,000 per
 * session): states come with the next change, or from the subscribe check
 * when this gateway did not follow the member yet (presence.c). */
static void deliver_learn_members(gw_session *s, const char *frame, size_t len)
{
    msgpack_unpacked u;
    size_t off = 0;
    msgpack_unpacked_init(&u);
    if (msgpack_unpack_next(&u, frame, len, &off) == MSGPACK_UNPACK_SUCCESS &&
        u.data.type == MSGPACK_OBJECT_MAP) {
        const msgpack_object_map *m = &u.data.via.map;
        for (uint32_t i = 0; i < m->size; i++) {
            const msgpack_object *k = &m->ptr[i].key, *v = &m->ptr[i].val;
            if (k->type != MSGPACK_OBJECT_STR || k->via.str.size != 7 ||
                memcmp(k->via.str.ptr, "members", 7) || v->type != MSGPACK_OBJECT_ARRAY)
                continue;
            for (uint32_t j = 0; j < v->via.array.size; j++) {
                const msgpack_object *e = &v->via.array.ptr[j];
                if (e->type == MSGPACK_OBJECT_STR)
                    presence_follow_known(s, e->via.str.ptr, e->via.str.size, -1, -1);
            }
        }
    }
    msgpack_unpacked_destroy(&u);
}

/* Learns contacts from a frame sent to the session: the other party of a
 * text, the recipient of an acked text, the members of a group. */
static void deliver_learn(gw_session *s, const char *frame, size_t len)
{
    proto_str k = {0}, from = {0}, to = {0}, cid = {0};
    if (s->state == SESS_CLOSING) return;
    proto_peek_fields(frame, len, &k, &from, &to, &cid, NULL);
    if (k.len == 4 && !memcmp(k.p, "text", 4)) {
        if (from.len == strlen(s->user) && !memcmp(from.p, s->user, from.len))
            presence_follow(s, to.p, to.len);
        else
            presence_follow(s, from.p, from.len);
    } else if (k.len == 3 && !memcmp(k.p, "ack", 3) && cid.len) {
        char peer[PROTO_NAME_MAX + 2];
        if (pending_forget(&s->texts, cid.p, cid.len, peer)) presence_follow(s, peer, strlen(peer));
    } else if (k.len == 5 && !memcmp(k.p, "error", 5) && cid.len) {
        pending_forget(&s->texts, cid.p, cid.len, NULL);
    } else if (k.len == 5 && !memcmp(k.p, "group", 5)) {
        deliver_learn_members(s, frame, len);
    }
}

void deliver_send(gw_session *s, dq_kind kind, const char *frame, size_t len)
{
    sess_send(s, frame, len);
    deliver_learn(s, frame, len);
}

void deliver_send_replay(gw_session *s, const char *frame, size_t len)
{
    sess_send_replay(s, frame, len);
    deliver_learn(s, frame, len);
}

enum { DELIVER_DONE = 0, DELIVER_FETCH = 1 };

static int deliver_one(gw_session *s, dq_kind kind, int64_t seq, const char *frame, size_t len)
{
    if (seq <= 0) {
        deliver_send(s, kind, frame, len);
        return DELIVER_DONE;
    }
    if (seq <= s->last_seq) {
        if (kind == DQ_CONN) /* a repeated ack (retry of a stored cid) */
            deliver_send(s, kind, frame, len);
        return DELIVER_DONE;
    }
    if (seq == s->last_seq + 1) {
        deliver_send(s, kind, frame, len);
        s->last_seq = seq;
        return DELIVER_DONE;
    }
    return DELIVER_FETCH;
}

static int deliver_enqueue(gw_session *s, dq_kind kind, int64_t seq, const char *frame, size_t len)
{
    struct deliver_sess *d = deliver_state(s);
    if (!d) {
        sess_close(s, 1011, "out of memory");
        return -1;
    }
    if (d->bytes + len > dl.send_queue) {
        metrics_inc(METRIC_SLOW_CONSUMERS);
        sess_close(s, 1008, "slow consumer");
        return -1;
    }
    dq_item *it = malloc(sizeof *it + len);
    if (!it) {
        sess_close(s, 1011, "out of memory");
        return -1;
    }
    it->next = NULL;
    it->kind = kind;
    it->seq = seq;
    it->len = len;
    memcpy(it->frame, frame, len);
    if (d->tail)
        d->tail->next = it;
    else
        d->head = it;
    d->tail = it;
    d->bytes += len;
    return 0;
}

void deliver_push(gw_session *s, dq_kind kind, int64_t seq, const char *frame, size_t len)
{
    if (s->state == SESS_CLOSING) return;
    if (s->state == SESS_LIVE && (!s->dl || (!deliver_busy(s->dl) && !s->dl->head))) {
        if (deliver_one(s, kind, seq, frame, len) == DELIVER_DONE) return;
        if (deliver_enqueue(s, kind, seq, frame, len) == 0) deliver_catch_up(s, seq);
        return;
    }
    deliver_enqueue(s, kind, seq, frame, len);
}

void deliver_drain(gw_session *s)
{
    struct deliver_sess *d = s->dl;
    while (d && d->head && !deliver_busy(d) && s->state == SESS_LIVE) {
        dq_item *it = d->head;
        if (deliver_one(s, it->kind, it->seq, it->frame, it->len) == DELIVER_FETCH) {
            deliver_catch_up(s, it->seq);
            return;
        }
        d->head = it->next;
        if (!d->head) d->tail = NULL;
        d->bytes -= it->len;
        free(it);
    }
    /* nothing under way any more: a client's sync that waited starts */
    if (d && !deliver_busy(d) && d->sync_queued && s->state == SESS_LIVE) {
        d->sync_queued = 0;
        if (deliver_sync(s, d->queued_after, d->queued_epoch) < 0)
            sess_send_error(s, "unavailable", "sync failed: retry later", NULL);
    }
}

void deliver_forget_fetch(gw_session *s)
{
    struct deliver_sess *d = s->dl;
    if (!d) return;
    if (d->syncing && d->fetching) { /* its page is lost with the connection: the client retries */
        d->syncing = 0;
        sess_send_error(s, "unavailable", "sync failed: retry later", NULL);
    }
    d->fetching = 0; /* a sync waiting for the drain goes on */
}

void deliver_detach(gw_session *s)
{
    struct deliver_sess *d = s->dl;
    if (!d) return;
    while (d->head) {
        dq_item *it = d->head;
        d->head = it->next;
        free(it);
    }
    free(d);
    s->dl = NULL;
}

static int deliver_acked_in_dq(const struct deliver_sess *d, int64_t seq)
{
    for (const dq_item *it = d->head; it; it = it->next)
        if (it->kind == DQ_CONN && it->seq == seq) return 1;
    return 0;
}

static int deliver_request(gw_session *s, redisCallbackFn *cb, int64_t after, const char *epoch);
static void deliver_sync_cb(redisAsyncContext *ac, void *r, void *priv);

/* The seq of a reply's last entry (0: none). */
static int64_t deliver_last_of(const redisReply *rep)
{
    int64_t es = 0;
    const redisReply *e = rep->element[rep->elements - 1];
    if (rep->elements > 2 && e->type == REDIS_REPLY_STRING)
        proto_peek_fields(e->str, e->len, NULL, NULL, NULL, NULL, &es);
    return es;
}

/* The head of a sync.lua page, {recovered, seq, entries...}: 0 with both
 * set, or -1 (no reply: the link dropped; an error; a malformed reply). */
static int deliver_page_head(const redisReply *rep, long long *recovered, long long *seq)
{
    if (!rep || rep->type != REDIS_REPLY_ARRAY || rep->elements < 2) return -1;
    if (rl_reply_int(rep->element[0], recovered) < 0) return -1;
    return rl_reply_int(rep->element[1], seq) < 0 ? -1 : 0;
}

/* A gap fetch's page (the offline push is one too). Only entries that
 * follow last_seq without a hole are sent and counted: a session is never
 * advanced past an entry it was not sent. A page cut by its bounds (more
 * entries remain) asks for the next once the session has drained
 * (sess_when_drained): a reader that does not read makes the gateway fetch
 * and buffer nothing more. A reply of an older fetch (forgotten at a re-open,
 * then superseded) still delivers what continues the session, but its target
 * is not ours to judge. When the latest fetch cannot fill the gap (the epoch
 * changed, the cap dropped the entries, or an older inbox answered), the
 * session is closed with 1012: the client reconnects and syncs from what it
 * has seen, and gets the entries or `recovered: false` (protocol.md: gaps are
 * never silent). */
static void deliver_fetch_cb(redisAsyncContext *ac, void *r, void *priv)
{
    redisReply *rep = r;
    deliver_fetch f = *(deliver_fetch *)priv;
    free(priv);
    gw_session *s = sess_find(f.conn);
    long long recovered, seq;
    if (!s || !s->dl) return;
    struct deliver_sess *d = s->dl;
    int latest = f.gen == d->fetch_gen;
    if (latest) d->fetching = 0;
    if (s->state == SESS_CLOSING) return;
    if (deliver_page_head(rep, &recovered, &seq) < 0) {
        /* Redis went away: the re-open after the reconnect fetches again */
        if (rep && rep->type == REDIS_REPLY_ERROR) log_warn("sync (gap) %s: %s", s->user, rep->str);
        return;
    }
    metrics_inc(METRIC_REPLAY_PAGES);
    for (size_t i = 2; i < rep->elements; i++) {
        redisReply *e = rep->element[i];
        int64_t es = 0;
        if (e->type != REDIS_REPLY_STRING) continue;
        proto_peek_fields(e->str, e->len, NULL, NULL, NULL, NULL, &es);
        if (es <= s->last_seq) continue;
        if (es != s->last_seq + 1) break; /* a hole: never skipped over */
        if (!deliver_acked_in_dq(d, es)) deliver_send_replay(s, e->str, e->len);
        s->last_seq = es;
    }
    if (!latest) {
        if (!deliver_busy(d)) deliver_drain(s);
        return;
    }
    int64_t last = deliver_last_of(rep);
    if (recovered && last && last < seq && s->last_seq == last &&
        s->last_seq < d->fetch_target - 1) {
        d->paging = 1; /* more: the next page once this one drained */
        sess_when_drained(s);
        return;
    }
    if (s->last_seq < d->fetch_target - 1) {
        log_warn("conn %" PRIu64 " (%s): inbox entries %" PRId64 "..%" PRId64
                 " cannot be fetched (recovered=%lld, inbox seq %lld): closing, the client syncs",
                 s->conn, s->user, s->last_seq + 1, d->fetch_target - 1, recovered, seq);
        sess_close(s, 1012, "inbox gap: reconnect and sync");
        return;
    }
    if (!deliver_busy(d)) deliver_drain(s);
}

/* Asks for the page after `after` of the session's inbox; 0, or -1 when
 * Redis is down (the re-open after the reconnect fetches again). */
static int deliver_request(gw_session *s, redisCallbackFn *cb, int64_t after, const char *epoch)
{
    struct deliver_sess *d = s->dl;
    deliver_fetch *f = malloc(sizeof *f);
    if (!f) return -1;
    f->conn = s->conn;
    f->gen = d->fetch_gen + 1;
    /* the offline push and gap fetches get stand-ins for entries whose message
     * left its history; a client's sync is answered recovered: false */
    if (scripts_sync(rl_commands(), cb, f, s->user, after, epoch, dl.page_entries, dl.page_bytes,
                     cb == deliver_fetch_cb) != REDIS_OK) {
        free(f);
        return -1;
    }
    d->fetch_gen = f->gen;
    d->fetching = 1;
    return 0;
}

void deliver_catch_up(gw_session *s, int64_t target)
{
    struct deliver_sess *d;
    if (!(d = deliver_state(s))) return;
    if (target > d->fetch_target) d->fetch_target = target;
    if (deliver_busy(d) || s->last_seq >= target - 1) return;
    deliver_request(s, deliver_fetch_cb, s->last_seq, s->epoch);
}

/* The end of a client's sync: {kind:"sync", recovered, seq}, then what
 * waited behind it. */
static void deliver_sync_end(gw_session *s, int recovered, int64_t seq)
{
    struct deliver_sess *d = s->dl;
    msgpack_sbuffer sb;
    msgpack_packer pk;
    d->syncing = 0;
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    proto_enc_sync_end(&pk, recovered, seq);
    sess_send_packed(s, &sb);
    deliver_drain(s);
}

/* A page of a client's sync: every entry after the cursor, in order (the
 * client asked for them, so entries the session already had come again);
 * the session's position moves to the newest entry sent. */
static void deliver_sync_cb(redisAsyncContext *ac, void *r, void *priv)
{
    redisReply *rep = r;
    deliver_fetch f = *(deliver_fetch *)priv;
    free(priv);
    gw_session *s = sess_find(f.conn);
    long long recovered, seq;
    if (!s || !s->dl || f.gen != s->dl->fetch_gen) return;
    struct deliver_sess *d = s->dl;
    d->fetching = 0;
    if (s->state == SESS_CLOSING || !d->syncing) return;
    if (deliver_page_head(rep, &recovered, &seq) < 0) {
        if (rep && rep->type == REDIS_REPLY_ERROR) log_warn("sync %s: %s", s->user, rep->str);
        d->syncing = 0;
        sess_send_error(s, "unavailable", "sync failed: retry later", NULL);
        deliver_drain(s);
        return;
    }
    metrics_inc(METRIC_REPLAY_PAGES);
    for (size_t i = 2; i < rep->elements; i++) {
        redisReply *e = rep->element[i];
        int64_t es = 0;
        if (e->type != REDIS_REPLY_STRING) continue;
        proto_peek_fields(e->str, e->len, NULL, NULL, NULL, NULL, &es);
        if (es != d->sync_cursor + 1) break; /* never reached: the script checked */
        deliver_send_replay(s, e->str, e->len);
        d->sync_cursor = es;
        if (es > s->last_seq) s->last_seq = es;
    }
    if (recovered && rep->elements > 2 && d->sync_cursor < seq &&
        d->sync_cursor == deliver_last_of(rep)) {
        d->paging = 1; /* more: the next page once this one drained */
        sess_when_drained(s);
        return;
    }
    deliver_sync_end(s, recovered != 0, seq);
}

int deliver_sync(gw_session *s, int64_t after, const char *epoch)
{
    struct deliver_sess *d = deliver_state(s);
    if (!d) return -1;
    if (deliver_busy(d) || s->state != SESS_LIVE) {
        if (d->sync_queued) return -2;
        d->sync_queued = 1;
        d->queued_after = after;
        snprintf(d->queued_epoch, sizeof d->queued_epoch, "%s", epoch);
        return 0;
    }
    d->syncing = 1;
    d->sync_cursor = after;
    snprintf(d->sync_epoch, sizeof d->sync_epoch, "%s", epoch);
    if (deliver_request(s, deliver_sync_cb, after, epoch) < 0) {
        d->syncing = 0;
        return -1;
    }
    return 0;
}

void deliver_on_drained(gw_session *s)
{
    struct deliver_sess *d = s->dl;
    if (!d || !d->paging || s->state == SESS_CLOSING) return;
    d->paging = 0;
    if (d->syncing) {
        if (deliver_request(s, deliver_sync_cb, d->sync_cursor, d->sync_epoch) < 0) {
            d->syncing = 0;
            sess_send_error(s, "unavailable", "sync failed: retry later", NULL);
            deliver_drain(s);
        }
        return;
    }
    if (s->last_seq >= d->fetch_target - 1) {
        deliver_drain(s);
        return;
    }
    deliver_request(s, deliver_fetch_cb, s->last_seq, s->epoch);
}

/* Pushes the frame to s and the user's sessions after it, except the one
 * whose session id is `except` (the sending session). */
static void deliver_to_sessions(gw_session *s, const proto_str *except, int64_t seq,
                                const char *frame, size_t len)
{
    for (; s; s = s->next_of_user) {
        if (except->len && except->len == strlen(s->sessid) &&
            memcmp(except->p, s->sessid, except->len) == 0)
            continue;
        deliver_push(s, DQ_USER, seq, frame, len);
    }
}

/* A multi-user envelope (group message, receipt, group change, group
 * typing): the frame goes to the local sessions of every listed user; with
 * per-user seqs each user gets its own copy with "seq" added. */
static void deliver_many(const bus_delivery *d)
{
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    for (uint32_t i = 0; i < d->users->via.array.size; i++) {
        const msgpack_object *o = &d->users->via.array.ptr[i];
        gw_session *s = sess_of_user(o->via.str.ptr, o->via.str.size);
        if (!s) continue;
        const char *frame = d->frame.p;
        size_t len = d->frame.len;
        int64_t seq = 0;
        if (d->seqs) {
            seq = (int64_t)d->seqs->via.array.ptr[i].via.u64;
            sb.size = 0;
            if (proto_add_seq(d->frame.p, d->frame.len, seq, &sb) < 0) {
                log_warn("multi-user envelope: frame is not a map");
                break;
            }
            frame = sb.data;
            len = sb.size;
        }
        deliver_to_sessions(s, &d->except, seq, frame, len);
    }
    msgpack_sbuffer_destroy(&sb);
}

static void deliver_dispatch(const bus_delivery *d)
{
    if (d->t == BUS_TO_USER) {
        deliver_to_sessions(sess_of_user(d->user.p, d->user.len), &d->except, d->seq, d->frame.p,
                            d->frame.len);
    } else if (d->t == BUS_TO_MANY) {
        deliver_many(d);
    } else if (d->t == BUS_HIDE) {
        for (gw_session *s = sess_of_user(d->user.p, d->user.len); s; s = s->next_of_user)
            if (s->state != SESS_CLOSING) presence_hide(s, d->peer.p, d->peer.len, d->hide);
    } else {
        gw_session *s = sess_find(d->conn);
        if (s) deliver_push(s, DQ_CONN, d->seq, d->frame.p, d->frame.len);
    }
}

/* A payload holds one or more envelopes, one after the other (the send
 * script publishes everything of one batch for this gateway at once). A
 * malformed one ends the payload: nothing after it can be found. */
static void deliver_payload(const char *buf, size_t len)
{
    msgpack_unpacked u;
    msgpack_unpacked_init(&u);
    size_t off = 0, used;
    do {
        bus_delivery d;
        if (bus_next_delivery(buf + off, len - off, &u, &d, &used) < 0) {
            log_warn("malformed envelope on %s (%zu of %zu bytes left)", dl.gw_chan, len - off,
                     len);
            break;
        }
        deliver_dispatch(&d);
        off += used;
    } while (off < len);
    msgpack_unpacked_destroy(&u);
}

/* Everything on parley:gw:ID: envelopes, and the SUBSCRIBE confirmation. */
static void deliver_chan_cb(redisAsyncContext *ac, void *r, void *priv)
{
    rl_pubsub m;
    if (rl_pubsub_parse(r, &m) < 0) return;
    if (rl_pubsub_is(&m, "message")) {
        if (m.data) deliver_payload(m.data, m.data_len);
    } else if (rl_pubsub_is(&m, "subscribe")) {
        rl_subscriber_confirmed();
    }
}

void deliver_on_subscriber_up(void)
{
    rl_subscribe(dl.gw_chan, deliver_chan_cb, NULL);
}
