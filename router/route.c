/* route.c - the per-message path: one gateway->router envelope from
 * parley:rt:N becomes one `send` script call (docs/internals.md), in arrival
 * order on the single command connection.
 *
 * The script stores, delivers and acks atomically, so this file only decodes,
 * validates and builds the 12 KEYS and 10 ARGV. Keys are formatted on the
 * stack; the one allocation per message is scripts_eval's copy of the command
 * (kept for a NOSCRIPT retry) plus what hiredis needs to send it. The msgpack
 * zone is reused from message to message. A malformed envelope is logged and
 * dropped: the sender's gateway gets no answer, so its client retries or
 * gives up; nothing else is affected.
 *
 * Backpressure: with more than ROUTE_MAX_IN_FLIGHT sends unanswered, reading
 * the subscriber socket pauses (Redis buffers for us) until half of them are
 * answered. That bounds the command backlog, so the lease renewals queued
 * behind it stay timely and no other router claims a slot whose messages are
 * still queued here. (hiredis re-arms reads after its own writes, so the
 * pause is re-applied on each message while over the mark.) */
#include "router.h"

#include "bus.h"
#include "log.h"
#include "proto.h"
#include "scripts.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#define ROUTE_MAX_IN_FLIGHT    4096
#define ROUTE_RESUME_IN_FLIGHT (ROUTE_MAX_IN_FLIGHT / 2)

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

/* send_group's KEYS (ARGV: the same 10, then the 4 key formats) */
enum { G_CID, G_META, G_MEMBERS, G_IDS, G_HISTORY, ROUTE_GROUP_NKEYS };

enum {
    A_FROM,
    A_TO,
    A_DATA,
    A_CID,
    A_SESSION,
    A_CONN,
    A_PREFIX,
    A_INBOX_CAP,
    A_HISTORY_CAP,
    A_DEDUPE_TTL,
    ROUTE_NARGS,
    /* send_group only: key formats for the members' keys */
    A_META_FMT = ROUTE_NARGS,
    A_INBOX_FMT,
    A_SESSIONS_FMT,
    A_UNREAD_FMT,
    ROUTE_GROUP_NARGS
};

void route_init(router *r)
{
    snprintf(r->inbox_cap_s, sizeof(r->inbox_cap_s), "%lld", r->cfg.inbox_cap);
    snprintf(r->history_cap_s, sizeof(r->history_cap_s), "%lld", r->cfg.history_cap);
    snprintf(r->dedupe_ttl_s, sizeof(r->dedupe_ttl_s), "%lld", r->cfg.dedupe_ttl);
    msgpack_unpacked_init(&r->unpacked);
}

void route_free(router *r)
{
    msgpack_unpacked_destroy(&r->unpacked);
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

static void route_done(redisAsyncContext *ac, void *reply, void *privdata)
{
    router *r = privdata;
    redisReply *rep = reply;
    (void)ac;

    r->in_flight--;
    if (r->paused && r->in_flight <= ROUTE_RESUME_IN_FLIGHT) route_resume(r);
    if (!rep) {
        /* the link dropped with the command unanswered: it may or may not
         * have run; the client retries with its cid either way */
        r->stats.lost++;
        return;
    }
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
        r->stats.no_user++;
        break;
    case REDIS_REPLY_ERROR:
        r->stats.failed++;
        log_error("send script failed: %s", rep->str);
        break;
    default:
        r->stats.failed++;
        log_error("send script: unexpected reply type %d", rep->type);
    }
}

/* The KEYS of the 1:1 send script (all but the cid key). */
static void route_keys_pair(char keys[][KEYS_MAX], const char *from, const char *to,
                            const char *conv)
{
    keys_fmt(keys[K_TO_ACCOUNT], KEYS_MAX, KEY_ACCOUNT, to);
    keys_fmt(keys[K_IDS], KEYS_MAX, "%s", KEY_IDS);
    keys_fmt(keys[K_HISTORY], KEYS_MAX, KEY_HISTORY, conv);
    keys_fmt(keys[K_TO_META], KEYS_MAX, KEY_META, to);
    keys_fmt(keys[K_TO_INBOX], KEYS_MAX, KEY_INBOX, to);
    keys_fmt(keys[K_TO_SESSIONS], KEYS_MAX, KEY_SESSIONS, to);
    keys_fmt(keys[K_FROM_META], KEYS_MAX, KEY_META, from);
    keys_fmt(keys[K_FROM_INBOX], KEYS_MAX, KEY_INBOX, from);
    keys_fmt(keys[K_FROM_SESSIONS], KEYS_MAX, KEY_SESSIONS, from);
    keys_fmt(keys[K_FROM_CONTACTS], KEYS_MAX, KEY_CONTACTS, from);
    keys_fmt(keys[K_TO_CONTACTS], KEYS_MAX, KEY_CONTACTS, to);
    keys_fmt(keys[K_TO_UNREAD], KEYS_MAX, KEY_UNREAD, to);
}

/* Copies s into a NUL-terminated buffer (names are at most 33 bytes). */
static const char *route_cstr(char *buf, size_t size, proto_str s)
{
    size_t n = s.len < size - 1 ? s.len : size - 1;
    memcpy(buf, s.p, n);
    buf[n] = '\0';
    return buf;
}

void route_message(router *r, unsigned slot, const char *buf, size_t len)
{
    bus_text m;
    char from[PROTO_NAME_MAX + 2], to[PROTO_NAME_MAX + 2], conv[2 * PROTO_NAME_MAX + 4];
    char keys[ROUTE_NKEYS][KEYS_MAX], sess[96], conn[24];
    const char *argv[ROUTE_NKEYS + ROUTE_GROUP_NARGS];
    size_t argvlen[ROUTE_NKEYS + ROUTE_GROUP_NARGS];

    if (bus_dec_text(buf, len, &r->unpacked, &m) != 0) {
        r->stats.malformed++;
        log_warn("slot %u: dropped a malformed envelope (%zu bytes)", slot, len);
        return;
    }
    route_cstr(from, sizeof(from), m.from);
    route_cstr(to, sizeof(to), m.to);
    if (keys_conv(conv, sizeof(conv), from, to) < 0) {
        r->stats.malformed++;
        log_warn("slot %u: dropped an envelope with unusable names", slot);
        return;
    }
    unsigned want = keys_slot(conv, strlen(conv));
    if (want != slot)
        log_warn("slot %u: %s -> %s belongs to slot %u (gateway %.*s misrouted it)", slot, from, to,
                 want, (int)m.gw.len, m.gw.p);
    if (!conn_ready(r)) {
        r->stats.lost++;
        return;
    }

    int group = to[0] == '#';
    int nkeys = group ? ROUTE_GROUP_NKEYS : ROUTE_NKEYS;
    keys_fmt(keys[K_CID], KEYS_MAX, KEY_CID, from, (int)m.cid.len, m.cid.p);
    if (group) {
        keys_fmt(keys[G_META], KEYS_MAX, KEY_GROUP_META, to);
        keys_fmt(keys[G_MEMBERS], KEYS_MAX, KEY_GROUP_MEMBERS, to);
        keys_fmt(keys[G_IDS], KEYS_MAX, "%s", KEY_IDS);
        keys_fmt(keys[G_HISTORY], KEYS_MAX, KEY_HISTORY, conv);
    } else {
        route_keys_pair(keys, from, to, conv);
    }
    for (int i = 0; i < nkeys; i++) {
        argv[i] = keys[i];
        argvlen[i] = strlen(keys[i]);
    }

    const char **a = argv + nkeys;
    size_t *al = argvlen + nkeys;
    a[A_FROM] = m.from.p;
    al[A_FROM] = m.from.len;
    a[A_TO] = m.to.p;
    al[A_TO] = m.to.len;
    a[A_DATA] = m.data.p;
    al[A_DATA] = m.data.len;
    a[A_CID] = m.cid.p;
    al[A_CID] = m.cid.len;
    al[A_SESSION] =
        (size_t)snprintf(sess, sizeof(sess), "%.*s#%" PRIu64, (int)m.gw.len, m.gw.p, m.conn);
    a[A_SESSION] = sess;
    al[A_CONN] = (size_t)snprintf(conn, sizeof(conn), "%" PRIu64, m.conn);
    a[A_CONN] = conn;
    a[A_PREFIX] = CHAN_GW_PREFIX;
    al[A_PREFIX] = sizeof(CHAN_GW_PREFIX) - 1;
    a[A_INBOX_CAP] = r->inbox_cap_s;
    al[A_INBOX_CAP] = strlen(r->inbox_cap_s);
    a[A_HISTORY_CAP] = r->history_cap_s;
    al[A_HISTORY_CAP] = strlen(r->history_cap_s);
    a[A_DEDUPE_TTL] = r->dedupe_ttl_s;
    al[A_DEDUPE_TTL] = strlen(r->dedupe_ttl_s);

    int nargs = ROUTE_NARGS;
    if (group) {
        static const char *const fmts[] = {KEY_META, KEY_INBOX, KEY_SESSIONS, KEY_UNREAD};
        for (int i = 0; i < 4; i++) {
            a[A_META_FMT + i] = fmts[i];
            al[A_META_FMT + i] = strlen(fmts[i]);
        }
        nargs = ROUTE_GROUP_NARGS;
    }
    if (scripts_eval(r->cmd, group ? SCRIPT_SEND_GROUP : SCRIPT_SEND, route_done, r, nkeys, nargs,
                     argv, argvlen) != REDIS_OK) {
        r->stats.lost++;
        return;
    }
    if (++r->in_flight >= ROUTE_MAX_IN_FLIGHT) route_pause(r);
}
