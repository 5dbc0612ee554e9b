/* ws_session.c - one WebSocket session: authentication at the upgrade, the
 * open sequence (session_open, contacts, hello, offline push), incoming frames
 * (assembly, limits, validation, rate limit, the actions of each kind), the
 * write side (bounded queue, closes) and the close sequence (session_close).
 *
 * Session life: ESTABLISHED -> OPENING (rx paused) -> hello sent -> LIVE ->
 * (CLOSING) -> CLOSED. Redis replies find the session again by its connection
 * id (ws_session_find), never by a stored pointer. */
#include <inttypes.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bus.h"
#include "gw.h"
#include "keys.h"
#include "log.h"
#include "scripts.h"
#include "token.h"

#define WS_MAX_PENDING_TEXTS 256
#define WS_CLOSE_WAIT        5 /* seconds to wait for the peer's close frame */
/* lws 4.1 keeps LWS_WRITE_CLOSE (4) private ("handled by lws_close_reason"),
 * but lws_write() sends a close frame for it as for its own close path. */
#define WS_WRITE_CLOSE ((enum lws_write_protocol)4)

/* ---- lookup ---- */

static size_t ws_conn_key(char *buf, size_t size, uint64_t conn)
{
    return (size_t)snprintf(buf, size, "%" PRIu64, conn);
}

gw_session *ws_session_find(gw_server *g, uint64_t conn)
{
    char k[24];
    size_t n = ws_conn_key(k, sizeof k, conn);
    return strmap_get(&g->sessions_by_conn, k, n);
}

gw_session *ws_sessions_of(gw_server *g, const char *user)
{
    return strmap_get(&g->sessions_by_user, user, strlen(user));
}

/* ---- sending ---- */

void ws_close(gw_session *s, int code, const char *reason)
{
    if (s->close_code) return;
    s->close_code = code;
    snprintf(s->close_reason, sizeof s->close_reason, "%s", reason);
    s->state = SESS_CLOSING;
    if (s->wsi) lws_callback_on_writable(s->wsi);
}

static void ws_slow_consumer(gw_session *s)
{
    s->g->m.slow_consumers++;
    log_info("conn %" PRIu64 " (%s): send queue over %lld bytes, dropping slow consumer", s->conn,
             s->user, s->g->cfg.send_queue);
    sendq_clear(&s->q);
    sendq_clear(&s->backlog);
    s->backlog_live = 0;
    s->close_after_flush = 0;
    s->close_code = 0;
    ws_close(s, 1008, "slow consumer");
}

static void ws_want_write(gw_session *s);

/* Moves backlog frames into the wire queue while it is at most half full (a
 * frame always fits an empty queue), keeping room for live frames. */
static void ws_pump(gw_session *s)
{
    size_t half = (size_t)s->g->cfg.send_queue / 2;
    while (s->backlog.head && (!s->q.head || s->q.bytes + s->backlog.head->len <= half)) {
        if (s->backlog.head->live) s->backlog_live -= s->backlog.head->len;
        sendq_move_head(&s->backlog, &s->q);
    }
    if (s->q.head) ws_want_write(s);
}

/* Writing: frames queued during a turn of the event loop are written at its
 * end, straight from here, every frame a session got in that turn in one
 * write (sendq_flush). Only a socket that did not take everything waits for
 * POLLOUT (lws keeps the unsent tail and asks for it; the rest stays in the
 * bounded sendq): a writable socket costs one send(), not an epoll_ctl to
 * arm POLLOUT, a wakeup, the callback and an epoll_ctl to disarm it. */
static void ws_flush_cb(evutil_socket_t fd, short what, void *arg)
{
    gw_server *g = arg;
    (void)fd;
    (void)what;
    /* entries appended while this runs (ws_pump) are handled in this pass */
    for (size_t i = 0; i < g->nflush; i++) {
        gw_session *s = ws_session_find(g, g->flushq[i]);
        if (!s) continue;
        s->flush_queued = 0;
        if (!s->wsi) continue;
        if (s->close_code || lws_partial_buffered(s->wsi)) {
            lws_callback_on_writable(s->wsi); /* the WRITEABLE callback takes over */
            continue;
        }
        if (sendq_flush(&s->q, s->wsi, &g->m.frames_out) < 0) {
            lws_callback_on_writable(s->wsi); /* the write error closes it there */
            continue;
        }
        ws_pump(s);
        if (s->q.head && !s->flush_queued) lws_callback_on_writable(s->wsi);
    }
    g->nflush = 0;
}

static void ws_want_write(gw_session *s)
{
    gw_server *g = s->g;
    if (!s->wsi || s->flush_queued) return;
    if (!g->flush_ev) g->flush_ev = event_new(g->base, -1, 0, ws_flush_cb, g);
    if (g->nflush == g->flushcap) {
        size_t cap = g->flushcap ? 2 * g->flushcap : 256;
        uint64_t *q = g->flush_ev ? realloc(g->flushq, cap * sizeof *q) : NULL;
        if (!q) { /* no memory for the list: the slow way */
            lws_callback_on_writable(s->wsi);
            return;
        }
        g->flushq = q;
        g->flushcap = cap;
    }
    g->flushq[g->nflush++] = s->conn;
    s->flush_queued = 1;
    if (g->nflush == 1) event_active(g->flush_ev, EV_TIMEOUT, 1);
}

void ws_flush_free(gw_server *g)
{
    if (g->flush_ev) event_free(g->flush_ev);
    g->flush_ev = NULL;
    free(g->flushq);
    g->flushq = NULL;
    g->nflush = g->flushcap = 0;
}

void ws_send(gw_session *s, const char *frame, size_t len)
{
    if (s->close_code && !s->close_after_flush) return;
    if (s->backlog.head) { /* behind a replay */
        if (s->backlog_live + len > (size_t)s->g->cfg.send_queue) {
            ws_slow_consumer(s);
            return;
        }
        if (sendq_push(&s->backlog, frame, len) < 0) {
            ws_close(s, 1011, "out of memory");
            return;
        }
        s->backlog.tail->live = 1;
        s->backlog_live += len;
        return;
    }
    if (s->q.bytes + len > (size_t)s->g->cfg.send_queue) {
        ws_slow_consumer(s);
        return;
    }
    if (sendq_push(&s->q, frame, len) < 0) {
        ws_close(s, 1011, "out of memory");
        return;
    }
    ws_want_write(s);
}

/* A replayed inbox entry: paced through the backlog, never cut off for size
 * (its total is bounded by what one Redis reply held). */
void ws_send_replay(gw_session *s, const char *frame, size_t len)
{
    if (s->close_code) return;
    if (sendq_push(&s->backlog, frame, len) < 0) {
        ws_close(s, 1011, "out of memory");
        return;
    }
    ws_pump(s);
}

static void ws_send_packed(gw_session *s, msgpack_sbuffer *sb)
{
    ws_send(s, sb->data, sb->size);
    msgpack_sbuffer_destroy(sb);
}

static void ws_send_error(gw_session *s, const char *code, const char *message,
                          const proto_str *cid)
{
    msgpack_sbuffer sb;
    msgpack_packer pk;
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    proto_enc_error(&pk, code, message, cid);
    ws_send_packed(s, &sb);
}

void ws_close_all(gw_server *g, int code, const char *reason)
{
    size_t i;
    for (strmap_node *n = strmap_first(&g->sessions_by_conn, &i); n;
         n = strmap_next(&g->sessions_by_conn, n, &i))
        ws_close(n->val, code, reason);
}

/* ---- pending texts (cid -> recipient, to learn contacts from acks) ---- */

static void ws_remember_text(gw_session *s, const proto_str *cid, const proto_str *to)
{
    gw_pending_text *t = calloc(1, sizeof *t);
    if (!t) return;
    memcpy(t->cid, cid->p, cid->len);
    memcpy(t->to, to->p, to->len);
    t->next = s->texts;
    s->texts = t;
    if (++s->ntexts > WS_MAX_PENDING_TEXTS) { /* drop the oldest */
        gw_pending_text **pp = &s->texts;
        while ((*pp)->next)
            pp = &(*pp)->next;
        free(*pp);
        *pp = NULL;
        s->ntexts--;
    }
}

/* Removes the entry for cid; copies its recipient into to (size >= 34) when
 * asked. Returns 1 if found. */
int ws_forget_text(gw_session *s, const char *cid, size_t len, char *to)
{
    for (gw_pending_text **pp = &s->texts; *pp; pp = &(*pp)->next) {
        gw_pending_text *t = *pp;
        if (strlen(t->cid) == len && memcmp(t->cid, cid, len) == 0) {
            if (to) strcpy(to, t->to);
            *pp = t->next;
            free(t);
            s->ntexts--;
            return 1;
        }
    }
    return 0;
}

/* ---- the open sequence ---- */

static void ws_free_pending(gw_session *s)
{
    for (size_t i = 0; i < s->npending; i++)
        free(s->pending[i]);
    free(s->pending);
    free(s->pending_len);
    s->pending = NULL;
    s->pending_len = NULL;
    s->npending = 0;
}

static void ws_open_cb(redisAsyncContext *ac, void *r, void *priv)
{
    gw_server *g = ac->data;
    redisReply *rep = r;
    gw_session *s = ws_session_find(g, (uint64_t)(uintptr_t)priv);
    if (!s || s->state == SESS_CLOSING) return;
    long long seq;
    if (!rep || rep->type != REDIS_REPLY_ARRAY || rep->elements < 2 ||
        rl_reply_int(rep->element[0], &seq) < 0 || rep->element[1]->type != REDIS_REPLY_STRING ||
        rep->element[1]->len > PROTO_EPOCH_MAX) {
        if (rep && rep->type == REDIS_REPLY_ERROR)
            log_warn("session_open %s: %s", s->user, rep->str);
        s->reopening = 0;
        if (s->state == SESS_OPENING) ws_close(s, 1013, "try again later");
        /* a LIVE session whose re-open failed waits for the next reconnect */
        return;
    }
    redisReply *ep = rep->element[1];
    if (s->reopening) {
        s->reopening = 0;
        if (strlen(s->epoch) != ep->len || memcmp(s->epoch, ep->str, ep->len) != 0) {
            log_info("conn %" PRIu64 " (%s): inbox epoch changed, closing", s->conn, s->user);
            ws_close(s, 1012, "inbox epoch changed");
            return;
        }
        if (seq < s->last_seq) {
            /* Redis came back without writes this session saw: the seqs it
             * hands out next would be skipped as already sent */
            log_warn("conn %" PRIu64 " (%s): inbox seq went back from %" PRId64 " to %lld, closing",
                     s->conn, s->user, s->last_seq, seq);
            ws_close(s, 1012, "inbox seq went back");
            return;
        }
        deliver_catch_up(s, seq + 1);
        deliver_drain(s);
        return;
    }
    s->opened = 1;
    s->open_seq = seq;
    memcpy(s->epoch, ep->str, ep->len);
    s->epoch[ep->len] = '\0';
    size_t n = rep->elements - 2;
    if (n) {
        s->pending = calloc(n, sizeof *s->pending);
        s->pending_len = calloc(n, sizeof *s->pending_len);
        if (!s->pending || !s->pending_len) {
            ws_close(s, 1011, "out of memory");
            return;
        }
        for (size_t i = 0; i < n; i++) {
            redisReply *e = rep->element[i + 2];
            if (e->type != REDIS_REPLY_STRING) continue;
            s->pending[s->npending] = malloc(e->len ? e->len : 1);
            if (!s->pending[s->npending]) break;
            memcpy(s->pending[s->npending], e->str, e->len);
            s->pending_len[s->npending++] = e->len;
        }
    }
}

/* exactly one msgpack map */
static int ws_is_map(const char *p, size_t len)
{
    unsigned char b = len ? (unsigned char)p[0] : 0;
    return len && ((b & 0xf0) == 0x80 || b == 0xde || b == 0xdf) && proto_mp_check(p, len) == 0;
}

static void ws_contacts_cb(redisAsyncContext *ac, void *r, void *priv)
{
    gw_server *g = ac->data;
    redisReply *rep = r;
    gw_session *s = ws_session_find(g, (uint64_t)(uintptr_t)priv);
    if (!s || s->state != SESS_OPENING || !s->opened) return;
    long long mode;
    if (!rep || rep->type != REDIS_REPLY_ARRAY || rep->elements < 1 ||
        rl_reply_int(rep->element[0], &mode) < 0) {
        if (rep && rep->type == REDIS_REPLY_ERROR) log_warn("contacts %s: %s", s->user, rep->str);
        ws_close(s, 1013, "try again later");
        return;
    }
    size_t n = (rep->elements - 1) / 6, k = 0;
    proto_contact *c = calloc(n ? n : 1, sizeof *c);
    if (!c) {
        ws_close(s, 1011, "out of memory");
        return;
    }
    for (size_t i = 0; i < n; i++) {
        redisReply **e = rep->element + 1 + 6 * i;
        long long online = 0, unread = 0, read = 0, peer_read = 0;
        if (e[0]->type != REDIS_REPLY_STRING ||
            (!proto_valid_user(e[0]->str, e[0]->len) && !proto_valid_group(e[0]->str, e[0]->len)))
            continue;
        rl_reply_int(e[1], &online);
        rl_reply_int(e[2], &unread);
        rl_reply_int(e[3], &read);
        rl_reply_int(e[4], &peer_read);
        c[k].name = e[0]->str;
        c[k].len = e[0]->len;
        c[k].online = online != 0;
        c[k].unread = unread;
        c[k].read = read;
        c[k].peer_read = peer_read;
        if (e[5]->type == REDIS_REPLY_STRING && ws_is_map(e[5]->str, e[5]->len)) {
            c[k].last = e[5]->str;
            c[k].last_len = e[5]->len;
        }
        k++;
    }
    msgpack_sbuffer sb;
    msgpack_packer pk;
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    proto_enc_hello(&pk, s->user, s->open_seq, s->epoch, strlen(s->epoch), c, k);
    ws_send_replay(s, sb.data, sb.size); /* paced: a big hello is no slow reader */
    msgpack_sbuffer_destroy(&sb);
    for (size_t i = 0; i < s->npending; i++)
        deliver_send_replay(s, s->pending[i], s->pending_len[i]);
    ws_free_pending(s);
    s->last_seq = s->open_seq;
    s->state = SESS_LIVE;
    s->everyone = mode == 1;
    for (size_t i = 0; i < k; i++)
        presence_follow_known(s, c[i].name, c[i].len, c[i].online);
    free(c);
    log_debug("conn %" PRIu64 " (%s): hello sent, seq %" PRId64 ", %zu contact(s)%s", s->conn,
              s->user, s->open_seq, k, mode == 1 ? " (everyone)" : "");
    lws_rx_flow_control(s->wsi, 1);
    deliver_drain(s);
}

static void ws_ignore_cb(redisAsyncContext *ac, void *r, void *priv)
{
    redisReply *rep = r;
    if (rep && rep->type == REDIS_REPLY_ERROR) log_warn("redis: %s", rep->str);
}

static int ws_run_open(gw_session *s)
{
    gw_server *g = s->g;
    char k1[KEYS_MAX], k2[KEYS_MAX], k3[KEYS_MAX], k5[KEYS_MAX], chan[KEYS_MAX];
    keys_fmt(k1, sizeof k1, KEY_SESSIONS, s->user);
    keys_fmt(k2, sizeof k2, KEY_META, s->user);
    keys_fmt(k3, sizeof k3, KEY_INBOX, s->user);
    keys_fmt(k5, sizeof k5, KEY_GW_SESSIONS, g->gwid);
    keys_fmt(chan, sizeof chan, CHAN_PRESENCE, s->user);
    const char *argv[] = {k1, k2, k3, KEY_ONLINE, k5, s->user, s->sessid, s->member, chan};
    return rl_eval(g, SCRIPT_SESSION_OPEN, ws_open_cb, (void *)(uintptr_t)s->conn, 5, 4, argv,
                   NULL);
}

static int ws_run_contacts(gw_session *s)
{
    gw_server *g = s->g;
    char k2[KEYS_MAX], k4[KEYS_MAX], k5[KEYS_MAX], k6[KEYS_MAX], lim[24];
    keys_fmt(k2, sizeof k2, KEY_CONTACTS, s->user);
    keys_fmt(k4, sizeof k4, KEY_GROUPS_OF, s->user);
    keys_fmt(k5, sizeof k5, KEY_UNREAD, s->user);
    keys_fmt(k6, sizeof k6, KEY_READ, s->user);
    snprintf(lim, sizeof lim, "%lld", g->cfg.everyone_limit);
    const char *argv[] = {KEY_USERS, k2,  KEY_ONLINE,        k4,       k5,         k6,
                          s->user,   lim, KEY_GROUP_MEMBERS, KEY_READ, KEY_HISTORY};
    return rl_eval(g, SCRIPT_CONTACTS, ws_contacts_cb, (void *)(uintptr_t)s->conn, 6, 5, argv,
                   NULL);
}

/* Dev-auth users need an account so that others can send to them: create one
 * with a hash no password matches (register answers 0 if it exists). */
static void ws_dev_account(gw_session *s)
{
    char k1[KEYS_MAX], now[24];
    keys_fmt(k1, sizeof k1, KEY_ACCOUNT, s->user);
    snprintf(now, sizeof now, "%" PRIu64, gw_now_ms());
    const char *argv[] = {k1, KEY_USERS, s->user, "!dev-auth: no password", now, CHAN_USERS};
    rl_eval(s->g, SCRIPT_REGISTER, ws_ignore_cb, NULL, 2, 4, argv, NULL);
}

/* After a Redis reconnect: run session_open again for every live session (the
 * sessions sets may have been reaped or lost) and fetch what was missed. */
void ws_on_redis_up(gw_server *g)
{
    size_t i;
    log_info("redis back: re-opening %zu session(s)", g->nsessions);
    for (strmap_node *n = strmap_first(&g->sessions_by_conn, &i); n;
         n = strmap_next(&g->sessions_by_conn, n, &i)) {
        gw_session *s = n->val;
        if (s->state != SESS_LIVE) continue;
        s->fetching = 0;
        s->reopening = 1;
        if (ws_run_open(s) < 0) s->reopening = 0;
    }
}

/* ---- authentication at the upgrade ---- */

/* Who is this upgrade for? 0 and user filled, or -1. */
static int ws_auth(struct lws *wsi, gw_server *g, char *user)
{
    if (http_token_user(wsi, g, user, 1) == 0) return 0;
    if (g->cfg.dev_auth) {
        char buf[PROTO_NAME_MAX + 16];
        const char *v = lws_get_urlarg_by_name(wsi, "user=", buf, sizeof buf);
        if (v && proto_valid_user(v, strlen(v))) {
            strcpy(user, v);
            return 0;
        }
    }
    return -1;
}

static int ws_reject(struct lws *wsi, int status, const char *code, const char *msg)
{
    char body[256];
    size_t pos = 0;
    pos += (size_t)snprintf(body, sizeof body, "{\"error\":\"%s\",\"message\":", code);
    json_put_str(body, sizeof body, &pos, msg, strlen(msg));
    if (pos + 2 < sizeof body) body[pos++] = '}';
    http_write_simple(wsi, status, "application/json", body, pos);
    return 1;
}

int ws_confirm_upgrade(struct lws *wsi, gw_server *g)
{
    char uri[64];
    char user[PROTO_NAME_MAX + 1];
    if (lws_hdr_copy(wsi, uri, sizeof uri, WSI_TOKEN_GET_URI) <= 0 || strcmp(uri, "/ws") != 0)
        return ws_reject(wsi, 404, "not_found", "no such path");
    if (g->draining) return ws_reject(wsi, 503, "unavailable", "this gateway is shutting down");
    if (!g->ready || !rl_ok(g))
        return ws_reject(wsi, 503, "unavailable", "storage unreachable, retry later");
    if (ws_auth(wsi, g, user) < 0)
        return ws_reject(wsi, 401, "unauthorized", "missing, invalid or expired token");
    return 0;
}

/* ---- incoming frames ---- */

static void ws_bad_frame(gw_session *s, const proto_error *err)
{
    s->g->m.bad_frames++;
    if (!s->logged_bad) {
        s->logged_bad = 1;
        log_info("conn %" PRIu64 " (%s): bad frame: %s: %s", s->conn, s->user, err->code,
                 err->message);
    }
}

static int ws_take_token(gw_session *s)
{
    gw_server *g = s->g;
    uint64_t now = gw_now_ms();
    s->tokens += (double)(now - s->bucket_ms) * (double)g->cfg.rate / 1000.0;
    s->bucket_ms = now;
    if (s->tokens > (double)g->cfg.burst) s->tokens = (double)g->cfg.burst;
    if (s->tokens < 1.0) return -1;
    s->tokens -= 1.0;
    return 0;
}

void ws_unavailable(gw_session *s, const char *cid, size_t cid_len)
{
    proto_str c = {cid, cid_len};
    s->g->m.unavailable++;
    if (cid_len) ws_forget_text(s, cid, cid_len, NULL);
    ws_send_error(s, "unavailable", "not stored: retry later with the same cid", &c);
}

static void ws_text(gw_session *s, const proto_frame *f)
{
    gw_server *g = s->g;
    proto_str cid = f->cid;
    char devcid[40];
    if (!cid.len) { /* dev-auth mode: the seed sent no cid; make one */
        unsigned char rnd[12];
        randombytes_buf(rnd, sizeof rnd);
        memcpy(devcid, "dev-", 4);
        sodium_bin2hex(devcid + 4, sizeof devcid - 4, rnd, sizeof rnd);
        cid.p = devcid;
        cid.len = strlen(devcid);
    }
    char to[PROTO_NAME_MAX + 1], conv[KEYS_MAX];
    memcpy(to, f->to.p, f->to.len);
    to[f->to.len] = '\0';
    /* a group's conversation key is its #name; the router checks membership */
    int clen = keys_conv(conv, sizeof conv, s->user, to);
    if (clen < 0) {
        ws_send_error(s, "bad_field", "to: invalid", &cid);
        return;
    }
    bus_text m = {.from = {s->user, strlen(s->user)},
                  .gw = {g->gwid, strlen(g->gwid)},
                  .to = f->to,
                  .data = f->data,
                  .cid = cid,
                  .conn = s->conn};
    ws_remember_text(s, &cid, &f->to);
    if (rtq_add(g, keys_slot(conv, (size_t)clen), &m) < 0) ws_unavailable(s, cid.p, cid.len);
}

static void ws_sync_cb(redisAsyncContext *ac, void *r, void *priv)
{
    gw_server *g = ac->data;
    redisReply *rep = r;
    gw_session *s = ws_session_find(g, (uint64_t)(uintptr_t)priv);
    if (!s || s->state == SESS_CLOSING) return;
    long long recovered, seq;
    if (!rep || rep->type != REDIS_REPLY_ARRAY || rep->elements < 2 ||
        rl_reply_int(rep->element[0], &recovered) < 0 || rl_reply_int(rep->element[1], &seq) < 0) {
        g->m.unavailable++;
        ws_send_error(s, "unavailable", "sync failed: retry later", NULL);
        return;
    }
    for (size_t i = 2; i < rep->elements; i++) {
        redisReply *e = rep->element[i];
        if (e->type != REDIS_REPLY_STRING) continue;
        int64_t es = 0;
        deliver_frame_fields(e->str, e->len, NULL, NULL, NULL, NULL, &es);
        deliver_send_replay(s, e->str, e->len);
        if (es > s->last_seq) s->last_seq = es;
    }
    msgpack_sbuffer sb;
    msgpack_packer pk;
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    proto_enc_sync_end(&pk, recovered != 0, seq);
    ws_send_packed(s, &sb);
}

static void ws_sync(gw_session *s, const proto_frame *f)
{
    char k1[KEYS_MAX], k2[KEYS_MAX], after[24], epoch[PROTO_EPOCH_MAX + 1];
    keys_fmt(k1, sizeof k1, KEY_META, s->user);
    keys_fmt(k2, sizeof k2, KEY_INBOX, s->user);
    snprintf(after, sizeof after, "%" PRId64, f->after);
    memcpy(epoch, f->epoch.p, f->epoch.len);
    epoch[f->epoch.len] = '\0';
    const char *argv[] = {k1, k2, after, epoch};
    if (rl_eval(s->g, SCRIPT_SYNC, ws_sync_cb, (void *)(uintptr_t)s->conn, 2, 2, argv, NULL) < 0) {
        s->g->m.unavailable++;
        ws_send_error(s, "unavailable", "sync failed: retry later", NULL);
    }
}

static void ws_typing_cb(redisAsyncContext *ac, void *r, void *priv)
{
    gw_server *g = ac->data;
    redisReply *rep = r;
    gw_session *s = ws_session_find(g, (uint64_t)(uintptr_t)priv);
    if (!s || s->state == SESS_CLOSING) return;
    long long n;
    if (rl_reply_int(rep, &n) < 0) {
        g->m.unavailable++;
        ws_send_error(s, "unavailable", "typing not delivered", NULL);
    } else if (n == 0) {
        ws_send_error(s, "no_such_user", "no such user or group", NULL);
    } else if (n < 0) {
        ws_send_error(s, "forbidden", "not a member of that group", NULL);
    }
}

/* The keys that tell who may see a conversation: for a group its members and
 * meta, for 1:1 the other user's account (twice: the scripts take 3 keys).
 * Returns 1 for a group. */
static int ws_conv_keys(const char *self, const char *with, char *hist, char *who, char *meta)
{
    char conv[KEYS_MAX];
    keys_conv(conv, sizeof conv, self, with);
    keys_fmt(hist, KEYS_MAX, KEY_HISTORY, conv);
    if (with[0] == '#') {
        keys_fmt(who, KEYS_MAX, KEY_GROUP_MEMBERS, with);
        keys_fmt(meta, KEYS_MAX, KEY_GROUP_META, with);
        return 1;
    }
    keys_fmt(who, KEYS_MAX, KEY_ACCOUNT, with);
    keys_fmt(meta, KEYS_MAX, KEY_ACCOUNT, with);
    return 0;
}

/* Answers a script's "no_such_user" / "forbidden" string reply; returns 1 if
 * rep was one. */
static int ws_refused(gw_session *s, const redisReply *rep, const char *what)
{
    char msg[96];
    if (!rep || rep->type != REDIS_REPLY_STRING) return 0;
    if (rep->len == 9 && !memcmp(rep->str, "forbidden", 9)) {
        snprintf(msg, sizeof msg, "%s: not a member", what);
        ws_send_error(s, "forbidden", msg, NULL);
    } else {
        snprintf(msg, sizeof msg, "%s: no such user or group", what);
        ws_send_error(s, "no_such_user", msg, NULL);
    }
    return 1;
}

static void ws_typing(gw_session *s, const proto_frame *f)
{
    gw_server *g = s->g;
    char to[PROTO_NAME_MAX + 2], k1[KEYS_MAX], k2[KEYS_MAX];
    memcpy(to, f->to.p, f->to.len);
    to[f->to.len] = '\0';
    int group = to[0] == '#';
    if (group) {
        keys_fmt(k1, sizeof k1, KEY_GROUP_MEMBERS, to);
        keys_fmt(k2, sizeof k2, KEY_GROUP_META, to);
    } else {
        keys_fmt(k1, sizeof k1, KEY_ACCOUNT, to);
        keys_fmt(k2, sizeof k2, KEY_SESSIONS, to);
    }
    msgpack_sbuffer sb;
    msgpack_packer pk;
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    proto_enc_typing(&pk, s->user, strlen(s->user), to, f->to.len);
    const char *argv[] = {k1,      k2,          CHAN_GW_PREFIX, to, sb.data, group ? "1" : "0",
                          s->user, KEY_SESSIONS};
    size_t lens[] = {strlen(k1), strlen(k2), strlen(CHAN_GW_PREFIX), f->to.len,
                     sb.size,    1,          strlen(s->user),        strlen(KEY_SESSIONS)};
    if (rl_eval(g, SCRIPT_TYPING, ws_typing_cb, (void *)(uintptr_t)s->conn, 2, 6, argv, lens) < 0) {
        g->m.unavailable++;
        ws_send_error(s, "unavailable", "typing not delivered", NULL);
    }
    msgpack_sbuffer_destroy(&sb);
}

/* history: the reply names the conversation, so the callback needs it back */
typedef struct ws_hist_req {
    uint64_t conn;
    size_t with_len;
    char with[PROTO_NAME_MAX + 2];
} ws_hist_req;

static void ws_history_cb(redisAsyncContext *ac, void *r, void *priv)
{
    gw_server *g = ac->data;
    redisReply *rep = r;
    ws_hist_req *q = priv;
    gw_session *s = ws_session_find(g, q->conn);
    long long more;
    if (!s || s->state == SESS_CLOSING) goto out;
    if (ws_refused(s, rep, "history")) goto out;
    if (!rep || rep->type != REDIS_REPLY_ARRAY || rep->elements < 1 ||
        rl_reply_int(rep->element[0], &more) < 0) {
        g->m.unavailable++;
        ws_send_error(s, "unavailable", "history failed: retry later", NULL);
        goto out;
    }
    size_t n = rep->elements - 1, k = 0;
    const char **msgs = calloc(n ? n : 1, sizeof *msgs);
    size_t *lens = calloc(n ? n : 1, sizeof *lens);
    if (!msgs || !lens) {
        free(msgs);
        free(lens);
        ws_send_error(s, "unavailable", "out of memory", NULL);
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        redisReply *e = rep->element[i + 1];
        /* only well-formed maps are spliced into the answer */
        if (e->type != REDIS_REPLY_STRING || !ws_is_map(e->str, e->len)) continue;
        msgs[k] = e->str;
        lens[k++] = e->len;
    }
    msgpack_sbuffer sb;
    msgpack_packer pk;
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    proto_enc_history(&pk, q->with, q->with_len, msgs, lens, k, more != 0);
    ws_send_packed(s, &sb);
    free(msgs);
    free(lens);
out:
    free(q);
}

static void ws_history(gw_session *s, const proto_frame *f)
{
    gw_server *g = s->g;
    char hist[KEYS_MAX], who[KEYS_MAX], meta[KEYS_MAX], before[24], limit[24];
    ws_hist_req *q = calloc(1, sizeof *q);
    if (!q) {
        ws_send_error(s, "unavailable", "out of memory", NULL);
        return;
    }
    q->conn = s->conn;
    q->with_len = f->with.len;
    memcpy(q->with, f->with.p, f->with.len);
    int group = ws_conv_keys(s->user, q->with, hist, who, meta);
    snprintf(before, sizeof before, "%" PRId64, f->before);
    snprintf(limit, sizeof limit, "%" PRId64, f->limit);
    const char *argv[] = {hist, who, meta, s->user, group ? "1" : "0", before, limit};
    if (rl_eval(g, SCRIPT_HISTORY, ws_history_cb, q, 3, 4, argv, NULL) < 0) {
        free(q);
        g->m.unavailable++;
        ws_send_error(s, "unavailable", "history failed: retry later", NULL);
    }
}

static void ws_read_cb(redisAsyncContext *ac, void *r, void *priv)
{
    gw_server *g = ac->data;
    redisReply *rep = r;
    gw_session *s = ws_session_find(g, (uint64_t)(uintptr_t)priv);
    if (!s || s->state == SESS_CLOSING) return;
    if (ws_refused(s, rep, "read")) return;
    if (!rep || rep->type != REDIS_REPLY_ARRAY) {
        g->m.unavailable++;
        ws_send_error(s, "unavailable", "read position not stored: retry later", NULL);
    }
}

static void ws_read(gw_session *s, const proto_frame *f)
{
    gw_server *g = s->g;
    char with[PROTO_NAME_MAX + 2], hist[KEYS_MAX], who[KEYS_MAX], meta[KEYS_MAX];
    char kread[KEYS_MAX], kunread[KEYS_MAX], upto[24];
    memcpy(with, f->with.p, f->with.len);
    with[f->with.len] = '\0';
    int group = ws_conv_keys(s->user, with, hist, who, meta);
    keys_fmt(kread, sizeof kread, KEY_READ, s->user);
    keys_fmt(kunread, sizeof kunread, KEY_UNREAD, s->user);
    snprintf(upto, sizeof upto, "%" PRId64, f->upto);
    const char *argv[] = {hist,         who,
                          meta,         kread,
                          kunread,      s->user,
                          with,         group ? "1" : "0",
                          upto,         CHAN_GW_PREFIX,
                          KEY_SESSIONS, s->sessid};
    if (rl_eval(g, SCRIPT_READ, ws_read_cb, (void *)(uintptr_t)s->conn, 5, 7, argv, NULL) < 0) {
        g->m.unavailable++;
        ws_send_error(s, "unavailable", "read position not stored: retry later", NULL);
    }
}

static void ws_group_cb(redisAsyncContext *ac, void *r, void *priv)
{
    gw_server *g = ac->data;
    redisReply *rep = r;
    gw_session *s = ws_session_find(g, (uint64_t)(uintptr_t)priv);
    if (!s || s->state == SESS_CLOSING) return;
    if (!rep || rep->type != REDIS_REPLY_ARRAY || rep->elements < 1 ||
        rep->element[0]->type != REDIS_REPLY_STRING) {
        if (rep && rep->type == REDIS_REPLY_ERROR) log_warn("group script: %s", rep->str);
        g->m.unavailable++;
        ws_send_error(s, "unavailable", "group change not stored: retry later", NULL);
        return;
    }
    redisReply *st = rep->element[0];
    if (st->len == 4 && !memcmp(st->str, "same", 4) && rep->elements >= 2 &&
        rep->element[1]->type == REDIS_REPLY_STRING) {
        deliver_send(s, DQ_CONN, rep->element[1]->str, rep->element[1]->len);
    } else if (st->len == 5 && !memcmp(st->str, "error", 5) && rep->elements >= 3 &&
               rep->element[1]->type == REDIS_REPLY_STRING &&
               rep->element[2]->type == REDIS_REPLY_STRING) {
        char code[24], msg[128];
        snprintf(code, sizeof code, "%.*s", (int)rep->element[1]->len, rep->element[1]->str);
        snprintf(msg, sizeof msg, "%.*s", (int)rep->element[2]->len, rep->element[2]->str);
        ws_send_error(s, code, msg, NULL);
    }
    /* "ok": the group frame reaches every member (this session too) through
     * its gateway channel */
}

static void ws_group(gw_session *s, const proto_frame *f)
{
    static const char *const ops[] = {"", "create", "join", "leave", "add"};
    gw_server *g = s->g;
    char name[PROTO_NAME_MAX + 2], meta[KEYS_MAX], members[KEYS_MAX], now[24], max[24];
    memcpy(name, f->name.p, f->name.len);
    name[f->name.len] = '\0';
    keys_fmt(meta, sizeof meta, KEY_GROUP_META, name);
    keys_fmt(members, sizeof members, KEY_GROUP_MEMBERS, name);
    snprintf(now, sizeof now, "%" PRIu64, gw_now_ms());
    snprintf(max, sizeof max, "%lld", g->cfg.group_max);
    uint32_t nm = (f->op == PROTO_OP_CREATE || f->op == PROTO_OP_ADD) ? f->nmembers : 0;
    int argc = 13 + (int)nm;
    const char **argv = calloc((size_t)argc, sizeof *argv);
    size_t *lens = calloc((size_t)argc, sizeof *lens);
    if (!argv || !lens) {
        free(argv);
        free(lens);
        ws_send_error(s, "unavailable", "out of memory", NULL);
        return;
    }
    const char *fixed[] = {meta,       members,        KEY_GROUPS,   KEY_USERS,
                           ops[f->op], name,           s->user,      f->open ? "1" : "0",
                           now,        CHAN_GW_PREFIX, KEY_SESSIONS, KEY_GROUPS_OF,
                           max};
    for (int i = 0; i < 13; i++) {
        argv[i] = fixed[i];
        lens[i] = strlen(fixed[i]);
    }
    for (uint32_t i = 0; i < nm; i++) {
        argv[13 + i] = f->members->via.array.ptr[i].via.str.ptr;
        lens[13 + i] = f->members->via.array.ptr[i].via.str.size;
    }
    if (rl_eval(g, SCRIPT_GROUP, ws_group_cb, (void *)(uintptr_t)s->conn, 4, argc - 4, argv, lens) <
        0) {
        g->m.unavailable++;
        ws_send_error(s, "unavailable", "group change not stored: retry later", NULL);
    }
    free(argv);
    free(lens);
}

static void ws_frame(gw_session *s, const char *buf, size_t len)
{
    gw_server *g = s->g;
    msgpack_unpacked u;
    proto_frame f;
    proto_error err;
    g->m.frames_in++;
    msgpack_unpacked_init(&u);
    if (proto_decode(buf, len, &u, g->cfg.dev_auth ? PROTO_ALLOW_NO_CID : 0, &f, &err) < 0) {
        ws_bad_frame(s, &err);
        ws_send_error(s, err.code, err.message, err.cid.len ? &err.cid : NULL);
        if (err.close) {
            s->close_after_flush = 1;
            ws_close(s, err.close, "bad frame");
        }
        msgpack_unpacked_destroy(&u);
        return;
    }
    if (ws_take_token(s) < 0) {
        g->m.rate_limited++;
        ws_send_error(s, "rate_limited", "too many frames: slow down",
                      f.kind == PROTO_TEXT && f.cid.len ? &f.cid : NULL);
        msgpack_unpacked_destroy(&u);
        return;
    }
    switch (f.kind) {
    case PROTO_TEXT:
        ws_text(s, &f);
        break;
    case PROTO_SYNC:
        ws_sync(s, &f);
        break;
    case PROTO_TYPING:
        ws_typing(s, &f);
        break;
    case PROTO_READ:
        ws_read(s, &f);
        break;
    case PROTO_HISTORY:
        ws_history(s, &f);
        break;
    case PROTO_GROUP:
        ws_group(s, &f);
        break;
    default:
        ws_send_error(s, "unknown_kind", "unknown kind", NULL);
        break;
    }
    msgpack_unpacked_destroy(&u);
}

/* Assembles a message from its fragments (and lws's partial deliveries of a
 * large frame) without ever holding more than --max-frame bytes. */
static int ws_receive(gw_session *s, struct lws *wsi, const char *in, size_t len)
{
    gw_server *g = s->g;
    int first = lws_is_first_fragment(wsi);
    int last = lws_is_final_fragment(wsi) && lws_remaining_packet_payload(wsi) == 0;
    if (s->state == SESS_CLOSING) return 0;
    if (!in) in = ""; /* an empty frame */
    if (first && s->rx_len == 0) {
        if (!lws_frame_is_binary(wsi)) {
            proto_error e = {.code = "bad_frame"};
            snprintf(e.message, sizeof e.message, "text frames are not accepted");
            ws_bad_frame(s, &e);
            ws_close(s, 1003, "binary frames only");
            return 0;
        }
    }
    if (s->rx_len + len > (size_t)g->cfg.max_frame) {
        proto_error e = {.code = "too_large"};
        snprintf(e.message, sizeof e.message, "frame over %lld bytes", g->cfg.max_frame);
        ws_bad_frame(s, &e);
        s->rx_len = 0;
        ws_close(s, 1009, "frame too large");
        return 0;
    }
    if (first && last && s->rx_len == 0) {
        ws_frame(s, in, len);
        return 0;
    }
    if (s->rx_len + len > s->rx_cap) {
        size_t cap = s->rx_cap ? s->rx_cap : 4096;
        while (cap < s->rx_len + len)
            cap *= 2;
        if (cap > (size_t)g->cfg.max_frame) cap = (size_t)g->cfg.max_frame;
        char *nb = realloc(s->rx, cap);
        if (!nb) {
            ws_close(s, 1011, "out of memory");
            return 0;
        }
        s->rx = nb;
        s->rx_cap = cap;
    }
    memcpy(s->rx + s->rx_len, in, len);
    s->rx_len += len;
    if (last) {
        size_t n = s->rx_len;
        s->rx_len = 0;
        ws_frame(s, s->rx, n);
    }
    return 0;
}

/* ---- open and close ---- */

static int ws_established(struct lws *wsi, gw_server *g, gw_pss *pss)
{
    char user[PROTO_NAME_MAX + 1];
    if (g->draining || ws_auth(wsi, g, user) < 0) return -1;
    gw_session *s = calloc(1, sizeof *s);
    if (!s) return -1;
    s->g = g;
    s->wsi = wsi;
    s->conn = ++g->next_conn;
    strcpy(s->user, user);
    snprintf(s->sessid, sizeof s->sessid, "%s#%" PRIu64, g->gwid, s->conn);
    snprintf(s->member, sizeof s->member, "%s#%" PRIu64, user, s->conn);
    s->state = SESS_OPENING;
    s->tokens = (double)g->cfg.burst;
    s->bucket_ms = gw_now_ms();
    char k[24];
    size_t kn = ws_conn_key(k, sizeof k, s->conn);
    if (strmap_put(&g->sessions_by_conn, k, kn, s) < 0) {
        free(s);
        return -1;
    }
    s->next_of_user = ws_sessions_of(g, user);
    strmap_put(&g->sessions_by_user, user, strlen(user), s);
    pss->s = s;
    pss->is_ws = 1;
    g->nws++;
    g->nsessions++;
    g->m.connections_total++;
    lws_rx_flow_control(wsi, 0);
    if (g->cfg.dev_auth && http_token_user(wsi, g, user, 1) < 0) ws_dev_account(s);
    if (ws_run_open(s) < 0 || ws_run_contacts(s) < 0) ws_close(s, 1013, "try again later");
    log_debug("conn %" PRIu64 " (%s): open", s->conn, s->user);
    return 0;
}

static void ws_close_cb(redisAsyncContext *ac, void *r, void *priv)
{
    gw_server *g = ac->data;
    redisReply *rep = r;
    if (rep && rep->type == REDIS_REPLY_ERROR) log_warn("session_close: %s", rep->str);
    if (priv) { /* counted for the drain */
        g->drain_pending--;
        gw_drain_check(g);
    }
}

static void ws_closed(gw_server *g, gw_session *s)
{
    char k[24];
    size_t kn = ws_conn_key(k, sizeof k, s->conn);
    strmap_del(&g->sessions_by_conn, k, kn);
    gw_session **pp = NULL, *head = ws_sessions_of(g, s->user);
    if (head == s) {
        if (s->next_of_user)
            strmap_put(&g->sessions_by_user, s->user, strlen(s->user), s->next_of_user);
        else
            strmap_del(&g->sessions_by_user, s->user, strlen(s->user));
    } else {
        for (pp = &head->next_of_user; *pp; pp = &(*pp)->next_of_user)
            if (*pp == s) {
                *pp = s->next_of_user;
                break;
            }
    }
    presence_unfollow_all(s);

    if (g->cmd.up && g->cmd.ac &&
        scripts_session_close(g->cmd.ac, ws_close_cb, g->draining ? (void *)1 : NULL, s->user,
                              s->sessid, s->member, g->gwid, 0) == REDIS_OK &&
        g->draining)
        g->drain_pending++;
    /* if Redis is down, the reaper closes it once our heartbeat expires, or
     * the next start of this gateway id does */

    log_debug("conn %" PRIu64 " (%s): closed", s->conn, s->user);
    sendq_clear(&s->q);
    sendq_clear(&s->backlog);
    deliver_clear(s);
    ws_free_pending(s);
    while (s->texts)
        ws_forget_text(s, s->texts->cid, strlen(s->texts->cid), NULL);
    free(s->rx);
    free(s);
    g->nsessions--;
    gw_drain_check(g);
}

int ws_callback(struct lws *wsi, enum lws_callback_reasons reason, gw_pss *pss, void *in,
                size_t len)
{
    gw_server *g = lws_context_user(lws_get_context(wsi));
    gw_session *s = pss ? pss->s : NULL;
    switch (reason) {
    case LWS_CALLBACK_ESTABLISHED:
        return ws_established(wsi, g, pss);
    case LWS_CALLBACK_RECEIVE:
        if (!s) return -1;
        return ws_receive(s, wsi, in, len);
    case LWS_CALLBACK_SERVER_WRITEABLE:
        if (!s) return -1;
        if (s->close_code && (!s->close_after_flush || (!s->q.head && !s->backlog.head))) {
            /* Not "return -1": from this callback lws 4.1 drops the TCP
             * connection at once, without a close frame handshake. Send the
             * close frame ourselves and wait for the peer's (then
             * LWS_CALLBACK_WS_PEER_INITIATED_CLOSE), at most WS_CLOSE_WAIT s. */
            if (!s->close_started) {
                unsigned char buf[LWS_PRE + 2 + sizeof s->close_reason];
                size_t n = strlen(s->close_reason);
                s->close_started = 1;
                buf[LWS_PRE] = (unsigned char)(s->close_code >> 8);
                buf[LWS_PRE + 1] = (unsigned char)(s->close_code & 0xff);
                memcpy(buf + LWS_PRE + 2, s->close_reason, n);
                if (lws_write(wsi, buf + LWS_PRE, 2 + n, WS_WRITE_CLOSE) < 0) return -1;
                lws_set_timeout(wsi, PENDING_TIMEOUT_CLOSE_ACK, WS_CLOSE_WAIT);
            }
            return 0;
        }
        if (sendq_flush(&s->q, wsi, &g->m.frames_out) < 0) return -1;
        ws_pump(s);
        if (s->q.head || s->close_code) lws_callback_on_writable(wsi);
        return 0;
    case LWS_CALLBACK_WS_PEER_INITIATED_CLOSE:
        /* the answer to our close frame: done (lws would echo another) */
        return s && s->close_started ? -1 : 0;
    case LWS_CALLBACK_CLOSED:
        if (s) {
            pss->s = NULL;
            s->wsi = NULL;
            ws_closed(g, s);
        }
        return 0;
    case LWS_CALLBACK_WSI_DESTROY:
        if (pss && pss->is_ws) {
            pss->is_ws = 0;
            g->nws--;
            gw_drain_check(g);
        }
        return 0;
    default:
        return 0;
    }
}
