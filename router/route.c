/* route.c - the per-message path: gateway->router envelopes from
 * parley:rt:N become calls of the `send` function (docs/internals.md), in
 * arrival order on the single command connection.
 *
 * Batching (group commit): messages are collected while a call is in flight
 * and sent as one call when its answer comes back, at most ROUTE_BATCH_MAX
 * per call (a full batch goes at once, whatever is in flight). With nothing
 * in flight a message goes at the end of the loop turn it arrived in (with
 * the others of that turn): an idle router adds no delay, a busy one makes
 * its batches as large as the time Redis takes for the previous one. The
 * function runs them in order and publishes one payload per gateway, so the
 * per-call costs (the FCALL, a PUBLISH and a socket write per gateway) are
 * paid once per batch, not per message.
 * Before anything else is sent on the command connection that must follow
 * the messages (a slot release), route_flush() sends the open batch.
 *
 * The script stores, delivers and acks atomically, so this file only decodes,
 * validates and builds each message's KEYS and ARGV into the batch buffers;
 * scripts_eval copies the command (kept for a NOSCRIPT retry). The msgpack
 * zone is reused from message to message. A malformed envelope is logged and
 * dropped with the rest of its payload: the sender's gateway gets no answer,
 * so its client retries or gives up; nothing else is affected.
 *
 * Backpressure: with more than ROUTE_MAX_IN_FLIGHT messages unanswered,
 * reading the subscriber socket pauses (Redis buffers for us) until half of
 * them are answered. That bounds the command backlog, so the lease renewals
 * queued behind it stay timely and no other router claims a slot whose
 * messages are still queued here. (hiredis re-arms reads after its own
 * writes, so the pause is re-applied on each message while over the mark.) */
#include "router.h"

#include "bus.h"
#include "log.h"
#include "proto.h"
#include "scripts.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ROUTE_MAX_IN_FLIGHT    4096
#define ROUTE_RESUME_IN_FLIGHT (ROUTE_MAX_IN_FLIGHT / 2)

/* a 1:1 message's KEYS in the batch */
enum {
    K_CID,
    K_TO_ACCOUNT,
    K_IDS,
    K_HISTORY,
    K_TO_META,
    K_TO_INBOX,
    K_TO_SESSIONS,
    K_FROM_META,
    K_FROM_INBOX,
    K_FROM_SESSIONS,
    K_FROM_CONTACTS,
    K_TO_CONTACTS,
    K_TO_UNREAD,
    ROUTE_NKEYS
};

/* a group message's KEYS */
enum { G_CID, G_META, G_MEMBERS, G_IDS, G_HISTORY, ROUTE_GROUP_NKEYS };

/* the call's leading ARGV, then ROUTE_MSG_ARGS per message */
enum {
    A_PREFIX,
    A_INBOX_CAP,
    A_HISTORY_CAP,
    A_DEDUPE_TTL,
    A_META_FMT,
    A_INBOX_FMT,
    A_SESSIONS_FMT,
    A_UNREAD_FMT,
    A_GATEWAYS,
    ROUTE_HEAD_ARGS
};
#define ROUTE_MSG_ARGS 6 /* from, to, data, cid, sender session, sender conn */

#define ROUTE_CALLS_MAX 1 /* partial batches wait while this many calls are in flight */

/* what route_done needs of one call */
typedef struct route_call {
    router *r;
    int count;
} route_call;

static void route_list_reset(route_list *l)
{
    l->len = 0;
    l->n = 0;
}

static void route_list_free(route_list *l)
{
    free(l->buf);
    free(l->off);
    free(l->lens);
    memset(l, 0, sizeof *l);
}

/* Appends one string; -1 when out of memory. */
static int route_list_add(route_list *l, const char *p, size_t len)
{
    if (l->len + len > l->cap) {
        size_t cap = l->cap ? l->cap : 4096;
        while (cap < l->len + len)
            cap *= 2;
        char *b = realloc(l->buf, cap);
        if (!b) return -1;
        l->buf = b;
        l->cap = cap;
    }
    if (l->n == l->ncap) {
        int ncap = l->ncap ? 2 * l->ncap : 256;
        size_t *o = realloc(l->off, (size_t)ncap * sizeof *o);
        if (!o) return -1;
        l->off = o;
        size_t *ln = realloc(l->lens, (size_t)ncap * sizeof *ln);
        if (!ln) return -1;
        l->lens = ln;
        l->ncap = ncap;
    }
    memcpy(l->buf + l->len, p, len);
    l->off[l->n] = l->len;
    l->lens[l->n] = len;
    l->len += len;
    l->n++;
    return 0;
}

static int route_list_fmt(route_list *l, const char *fmt, const char *name)
{
    char key[KEYS_MAX];
    keys_fmt(key, sizeof key, fmt, name);
    return route_list_add(l, key, strlen(key));
}

static void route_flush_cb(evutil_socket_t fd, short what, void *arg)
{
    router *r = arg;
    (void)fd;
    (void)what;
    if (r->calls_in_flight < ROUTE_CALLS_MAX) route_flush(r);
}

void route_init(router *r)
{
    snprintf(r->inbox_cap_s, sizeof(r->inbox_cap_s), "%lld", r->cfg.inbox_cap);
    snprintf(r->history_cap_s, sizeof(r->history_cap_s), "%lld", r->cfg.history_cap);
    snprintf(r->dedupe_ttl_s, sizeof(r->dedupe_ttl_s), "%lld", r->cfg.dedupe_ttl);
    msgpack_unpacked_init(&r->unpacked);
    r->flush_ev = event_new(r->base, -1, 0, route_flush_cb, r);
}

void route_free(router *r)
{
    msgpack_unpacked_destroy(&r->unpacked);
    if (r->flush_ev) event_free(r->flush_ev);
    r->flush_ev = NULL;
    route_list_free(&r->batch_keys);
    route_list_free(&r->batch_args);
}

static void route_pause(router *r)
{
    if (!r->sub) return;
    if (!r->paused) log_debug("backpressure: %lld sends in flight, pausing", r->in_flight);
    r->paused = 1;
    r->sub->ev.delRead(r->sub->ev.data);
}

static void route_resume(router *r)
{
    r->paused = 0;
    if (r->sub) r->sub->ev.addRead(r->sub->ev.data);
}

/* One message's entry of the script's reply. */
static void route_count(router *r, const redisReply *rep)
{
    switch (rep->type) {
    case REDIS_REPLY_ARRAY:
        if (rep->elements == 4) {
            r->stats.dups++;
        } else {
            r->stats.routed++;
            if (log_enabled(LOG_LVL_DEBUG) && rep->elements == 3)
                log_debug("stored id %lld seq %lld", rep->element[0]->integer,
                          rep->element[1]->integer);
        }
        break;
    case REDIS_REPLY_STRING:
    case REDIS_REPLY_STATUS:
        if (rep->len > 7 && memcmp(rep->str, "failed:", 7) == 0) {
            r->stats.failed++;
            log_error("send script: one message %s", rep->str);
        } else {
            r->stats.no_user++;
        }
        break;
    default:
        r->stats.failed++;
        log_error("send script: unexpected reply type %d", rep->type);
    }
}

static void route_done(redisAsyncContext *ac, void *reply, void *privdata)
{
    route_call *call = privdata;
    router *r = call->r;
    redisReply *rep = reply;
    (void)ac;

    r->in_flight -= call->count;
    if (r->paused && r->in_flight <= ROUTE_RESUME_IN_FLIGHT) route_resume(r);
    if (!rep) {
        /* the link dropped with the call unanswered: it may or may not
         * have run; the clients retry with their cids either way */
        r->stats.lost += (unsigned long long)call->count;
    } else if (rep->type == REDIS_REPLY_ARRAY) {
        for (size_t i = 0; i < rep->elements; i++)
            route_count(r, rep->element[i]);
        if (rep->elements != (size_t)call->count)
            log_error("send script answered %zu entries for %d messages", rep->elements,
                      call->count);
    } else {
        r->stats.failed += (unsigned long long)call->count;
        log_error("send script failed for %d messages: %s", call->count,
                  rep->type == REDIS_REPLY_ERROR ? rep->str : "unexpected reply");
    }
    free(call);
    r->calls_in_flight--;
    if (r->batch_count && r->calls_in_flight < ROUTE_CALLS_MAX)
        route_flush(r); /* what gathered meanwhile */
}

static void route_drop_batch(router *r)
{
    route_list_reset(&r->batch_keys);
    route_list_reset(&r->batch_args);
    r->batch_count = 0;
}

void route_flush(router *r)
{
    int count = r->batch_count;
    if (!count) return;
    route_list *k = &r->batch_keys, *a = &r->batch_args;
    int argc = k->n + ROUTE_HEAD_ARGS + a->n;
    const char **argv = malloc((size_t)argc * sizeof *argv);
    size_t *argvlen = malloc((size_t)argc * sizeof *argvlen);
    route_call *call = malloc(sizeof *call);
    if (!argv || !argvlen || !call || !conn_ready(r)) {
        free(argv);
        free(argvlen);
        free(call);
        r->stats.lost += (unsigned long long)count;
        route_drop_batch(r);
        return;
    }
    int i = 0;
    for (int j = 0; j < k->n; j++, i++) {
        argv[i] = k->buf + k->off[j];
        argvlen[i] = k->lens[j];
    }
    const char *head[ROUTE_HEAD_ARGS] = {
        [A_PREFIX] = CHAN_GW_PREFIX,
        [A_INBOX_CAP] = r->inbox_cap_s,
        [A_HISTORY_CAP] = r->history_cap_s,
        [A_DEDUPE_TTL] = r->dedupe_ttl_s,
        [A_META_FMT] = KEY_META,
        [A_INBOX_FMT] = KEY_INBOX,
        [A_SESSIONS_FMT] = KEY_SESSIONS,
        [A_UNREAD_FMT] = KEY_UNREAD,
        [A_GATEWAYS] = KEY_GATEWAYS,
    };
    for (int j = 0; j < ROUTE_HEAD_ARGS; j++, i++) {
        argv[i] = head[j];
        argvlen[i] = strlen(head[j]);
    }
    for (int j = 0; j < a->n; j++, i++) {
        argv[i] = a->buf + a->off[j];
        argvlen[i] = a->lens[j];
    }
    call->r = r;
    call->count = count;
    int rc = scripts_eval(r->cmd, SCRIPT_SEND, route_done, call, k->n, ROUTE_HEAD_ARGS + a->n, argv,
                          argvlen);
    free(argv);
    free(argvlen);
    route_drop_batch(r);
    r->stats.batches++;
    if (rc != REDIS_OK) {
        free(call);
        r->stats.lost += (unsigned long long)count;
        return;
    }
    r->calls_in_flight++;
    r->in_flight += count;
    if (r->in_flight >= ROUTE_MAX_IN_FLIGHT) route_pause(r);
}

/* The KEYS of a 1:1 message (send script, cid key first). */
static int route_keys_pair(route_list *l, const char *from, const char *to, const char *conv)
{
    int rc = route_list_fmt(l, KEY_CIDS, from);
    rc |= route_list_fmt(l, KEY_ACCOUNT, to);
    rc |= route_list_add(l, KEY_IDS, strlen(KEY_IDS));
    rc |= route_list_fmt(l, KEY_HISTORY, conv);
    rc |= route_list_fmt(l, KEY_META, to);
    rc |= route_list_fmt(l, KEY_INBOX, to);
    rc |= route_list_fmt(l, KEY_SESSIONS, to);
    rc |= route_list_fmt(l, KEY_META, from);
    rc |= route_list_fmt(l, KEY_INBOX, from);
    rc |= route_list_fmt(l, KEY_SESSIONS, from);
    rc |= route_list_fmt(l, KEY_CONTACTS, from);
    rc |= route_list_fmt(l, KEY_CONTACTS, to);
    rc |= route_list_fmt(l, KEY_UNREAD, to);
    return rc;
}

/* The KEYS of a message to a #group. */
static int route_keys_group(route_list *l, const char *from, const char *to, const char *conv)
{
    int rc = route_list_fmt(l, KEY_CIDS, from);
    rc |= route_list_fmt(l, KEY_GROUP_META, to);
    rc |= route_list_fmt(l, KEY_GROUP_MEMBERS, to);
    rc |= route_list_add(l, KEY_IDS, strlen(KEY_IDS));
    rc |= route_list_fmt(l, KEY_HISTORY, conv);
    return rc;
}

/* Copies s into a NUL-terminated buffer (names are at most 33 bytes). */
static const char *route_cstr(char *buf, size_t size, proto_str s)
{
    size_t n = s.len < size - 1 ? s.len : size - 1;
    memcpy(buf, s.p, n);
    buf[n] = '\0';
    return buf;
}

/* Adds one decoded envelope to the batch. */
static void route_one(router *r, unsigned slot, const bus_text *m)
{
    char from[PROTO_NAME_MAX + 2], to[PROTO_NAME_MAX + 2], conv[2 * PROTO_NAME_MAX + 4];
    char sess[96], conn[24];

    route_cstr(from, sizeof(from), m->from);
    route_cstr(to, sizeof(to), m->to);
    if (keys_conv(conv, sizeof(conv), from, to) < 0) {
        r->stats.malformed++;
        log_warn("slot %u: dropped an envelope with unusable names", slot);
        return;
    }
    unsigned want = keys_slot(conv, strlen(conv));
    if (want != slot)
        log_warn("slot %u: %s -> %s belongs to slot %u (gateway %.*s misrouted it)", slot, from, to,
                 want, (int)m->gw.len, m->gw.p);
    if (!conn_ready(r)) {
        r->stats.lost++;
        return;
    }

    size_t keys_n = r->batch_keys.n, keys_len = r->batch_keys.len;
    size_t args_n = r->batch_args.n, args_len = r->batch_args.len;
    int rc = to[0] == '#' ? route_keys_group(&r->batch_keys, from, to, conv)
                          : route_keys_pair(&r->batch_keys, from, to, conv);
    size_t sl =
        (size_t)snprintf(sess, sizeof(sess), "%.*s#%" PRIu64, (int)m->gw.len, m->gw.p, m->conn);
    size_t cl = (size_t)snprintf(conn, sizeof(conn), "%" PRIu64, m->conn);
    rc |= route_list_add(&r->batch_args, m->from.p, m->from.len);
    rc |= route_list_add(&r->batch_args, m->to.p, m->to.len);
    rc |= route_list_add(&r->batch_args, m->data.p, m->data.len);
    rc |= route_list_add(&r->batch_args, m->cid.p, m->cid.len);
    rc |= route_list_add(&r->batch_args, sess, sl);
    rc |= route_list_add(&r->batch_args, conn, cl);
    if (rc != 0) { /* out of memory: take this message back out */
        r->batch_keys.n = (int)keys_n;
        r->batch_keys.len = keys_len;
        r->batch_args.n = (int)args_n;
        r->batch_args.len = args_len;
        r->stats.lost++;
        return;
    }
    if (++r->batch_count >= ROUTE_BATCH_MAX)
        route_flush(r);
    else if (r->batch_count == 1 && r->calls_in_flight < ROUTE_CALLS_MAX)
        event_active(r->flush_ev, EV_TIMEOUT, 1);
}

void route_message(router *r, unsigned slot, const char *buf, size_t len)
{
    size_t off = 0;
    while (off < len) {
        bus_text m;
        size_t used = 0;
        if (bus_next_text(buf + off, len - off, &r->unpacked, &m, &used) != 0) {
            r->stats.malformed++;
            log_warn("slot %u: dropped a malformed envelope (%zu of %zu bytes left)", slot,
                     len - off, len);
            return;
        }
        off += used;
        route_one(r, slot, &m);
    }
    if (len == 0) {
        r->stats.malformed++;
        log_warn("slot %u: dropped an empty message", slot);
    }
}
