/* lifecycle.c - the open and close sequences of a session (lifecycle.h).
 *
 * session_open and session_close are chains of steps on several hash slots
 * (docs/internals.md "Scripts in steps"): two calls sent one after the other
 * may run their steps interleaved. So a session's calls are ordered here: its
 * contacts after its session_open answered, and its session_close only once
 * no session_open of it is in flight (a close sent while the open's steps
 * still run could remove it before the open adds it to the user's set). */
#include "lifecycle.h"

#include <inttypes.h>
#include <libwebsockets.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "deliver.h"
#include "drain.h"
#include "log.h"
#include "metrics.h"
#include "presence.h"
#include "redis_link.h"
#include "revoke.h"
#include "scripts.h"
#include "sesscap.h"
#include "walltime.h"

/* The open sequence's state; lives as long as the session. */
struct lifecycle_sess {
    int opened;         /* session_open answered at least once */
    int reopening;      /* re-opens in flight (session_open after a reconnect or a reap) */
    int reopen_live;    /* a re-open came while OPENING: run it once LIVE */
    int64_t reopen_seq; /* last_seq when the oldest re-open in flight was sent */
    int64_t open_seq;
    int64_t open_from; /* the offline entries are (open_from, open_seq], fetched after hello */
    /* hello's list, page by page: the cursor of the next `users` page ("": done;
     * the member phase's is the longest, "m:S<20 digits>/#<name>/N<name>",
     * 91 bytes with 32-byte names) */
    char users_cursor[128];
    int users_fetching; /* a page is in flight */
    int users_waiting;  /* the next page is fetched once the session drained */
    int users_lost;     /* a page failed (Redis went away): asked again at the re-open */
    int opens;          /* session_open calls in flight (open and re-opens) */
};

/* A closed session whose session_close waits for its session_open calls in
 * flight (the last one's callback sends it). */
typedef struct lifecycle_deferred {
    struct lifecycle_deferred *next;
    uint64_t conn;
    int opens;    /* session_open calls still in flight */
    int draining; /* held for the drain */
    char user[sizeof((gw_session *)0)->user];
    char sessid[sizeof((gw_session *)0)->sessid];
    char member[sizeof((gw_session *)0)->member];
} lifecycle_deferred;

static struct {
    char gwid[PROTO_GWID_MAX + 1];
    long long everyone_limit;
    long long hello_entries, preview_bytes;
    long long last_seen_ms; /* --last-seen-interval (0: off) */
    uint64_t touched_ms;    /* when lifecycle_touch_logins last ran */
    int closes_pending;     /* session_close replies the drain waits for */
    lifecycle_deferred *deferred;
} lc;

void lifecycle_init(const char *gwid, long long everyone_limit, long long hello_entries,
                    long long preview_bytes, long long last_seen_ms)
{
    lc.last_seen_ms = last_seen_ms;
    lc.touched_ms = walltime_ms();
    snprintf(lc.gwid, sizeof lc.gwid, "%s", gwid);
    lc.everyone_limit = everyone_limit;
    lc.hello_entries = hello_entries;
    lc.preview_bytes = preview_bytes;
}

static void lifecycle_reopen_one(gw_session *s, void *arg);
static int lifecycle_run_contacts(gw_session *s);

static void lifecycle_send_close(const char *user, const char *sessid, const char *member,
                                 int draining);

/* A session_open answered for a session closed meanwhile: after its last
 * one, the close goes. Returns 1 when conn was such a session. */
static int lifecycle_deferred_open_done(uint64_t conn)
{
    for (lifecycle_deferred **p = &lc.deferred; *p; p = &(*p)->next) {
        lifecycle_deferred *d = *p;
        if (d->conn != conn) continue;
        if (--d->opens > 0) return 1;
        *p = d->next;
        lifecycle_send_close(d->user, d->sessid, d->member, d->draining);
        if (d->draining) drain_release(); /* the hold taken at the deferral */
        free(d);
        return 1;
    }
    return 0;
}

static void lifecycle_open_cb(redisAsyncContext *ac, void *r, void *priv)
{
    redisReply *rep = r;
    uint64_t conn = (uint64_t)(uintptr_t)priv;
    if (lifecycle_deferred_open_done(conn)) return;
    gw_session *s = sess_find(conn);
    if (s && s->lc && s->lc->opens > 0) s->lc->opens--;
    if (!s || s->state == SESS_CLOSING) return;
    struct lifecycle_sess *l = s->lc;
    long long seq;
    if (rep && rep->type == REDIS_REPLY_INTEGER && rep->integer < 0) { /* login revoked */
        log_info("conn %" PRIu64 " (%s): its signed-in session is gone (revoked)", s->conn,
                 s->user);
        if (l->reopening) l->reopening--;
        revoke_close(s);
        return;
    }
    if (rep && rep->type == REDIS_REPLY_INTEGER) { /* over --user-sessions: refused */
        log_info("conn %" PRIu64 " (%s): refused, the user has %lld session(s)", s->conn, s->user,
                 rep->integer);
        if (l->reopening) l->reopening--;
        metrics_inc(METRIC_SESSION_LIMIT);
        sess_close(s, SESSCAP_CLOSE_CODE, SESSCAP_CLOSE_REASON);
        return;
    }
    if (!rep || rep->type != REDIS_REPLY_ARRAY || rep->elements < 2 ||
        rl_reply_int(rep->element[0], &seq) < 0 || rep->element[1]->type != REDIS_REPLY_STRING ||
        rep->element[1]->len > PROTO_EPOCH_MAX) {
        if (rep && rep->type == REDIS_REPLY_ERROR)
            log_warn("session_open %s: %s", s->user, rep->str);
        if (l->reopening) l->reopening--;
        if (s->state == SESS_OPENING) sess_close(s, 1013, "try again later");
        /* a LIVE session whose re-open failed waits for the next reconnect */
        return;
    }
    redisReply *ep = rep->element[1];
    if (l->reopening) {
        l->reopening--;
        if (strlen(s->epoch) != ep->len || memcmp(s->epoch, ep->str, ep->len) != 0) {
            log_info("conn %" PRIu64 " (%s): inbox epoch changed, closing", s->conn, s->user);
            sess_close(s, 1012, "inbox epoch changed");
            return;
        }
        if (seq < l->reopen_seq) {
            /* Redis came back without writes this session saw: the seqs it
             * hands out next would be skipped as already sent. Compared with
             * what the session had when session_open was sent, not now: the
             * deliveries stored after the script ran come on the subscriber
             * connection and may be read before its reply. */
            log_warn("conn %" PRIu64 " (%s): inbox seq went back from %" PRId64 " to %lld, closing",
                     s->conn, s->user, l->reopen_seq, seq);
            sess_close(s, 1012, "inbox seq went back");
            return;
        }
        deliver_catch_up(s, seq + 1);
        deliver_drain(s);
        return;
    }
    long long from = seq;
    if (rep->elements > 2) rl_reply_int(rep->element[2], &from);
    int first = !l->opened;
    l->opened = 1;
    l->open_seq = seq;
    l->open_from = from >= 0 && from <= seq ? from : seq;
    memcpy(s->epoch, ep->str, ep->len);
    s->epoch[ep->len] = '\0';
    /* hello's contacts, now that the session is in the sets */
    if (first && s->state == SESS_OPENING && lifecycle_run_contacts(s) < 0)
        sess_close(s, 1013, "try again later");
}

/* A group entry's roles from the contacts script, {owner or "", role, more,
 * [admins]}, into c (its admins into pool, at most LIFECYCLE_ADMINS_MAX);
 * left a person's (role NULL) when it is not such an array. */
#define LIFECYCLE_ADMINS_MAX 32
static size_t lifecycle_parse_roles(const redisReply *r, proto_contact *c, proto_str *pool)
{
    static const char *const roles[] = {"owner", "admin", "member"};
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 4 ||
        r->element[0]->type != REDIS_REPLY_STRING || r->element[1]->type != REDIS_REPLY_STRING ||
        r->element[3]->type != REDIS_REPLY_ARRAY)
        return 0;
    for (size_t i = 0; i < sizeof roles / sizeof roles[0]; i++)
        if (r->element[1]->len == strlen(roles[i]) &&
            !memcmp(r->element[1]->str, roles[i], r->element[1]->len))
            c->role = roles[i];
    if (!c->role) return 0;
    const redisReply *o = r->element[0];
    if (proto_valid_user(o->str, o->len)) {
        c->owner = o->str;
        c->owner_len = o->len;
    }
    long long more = 0;
    rl_reply_int(r->element[2], &more);
    const redisReply *a = r->element[3];
    size_t k = 0;
    for (size_t i = 0; i < a->elements && k < LIFECYCLE_ADMINS_MAX; i++)
        if (a->element[i]->type == REDIS_REPLY_STRING &&
            proto_valid_user(a->element[i]->str, a->element[i]->len))
            pool[k++] = (proto_str){a->element[i]->str, a->element[i]->len};
    c->admins = pool;
    c->nadmins = k;
    c->admins_more = more > 0 || a->elements > LIFECYCLE_ADMINS_MAX;
    return k;
}

/* A page of the contacts script: {mode, next cursor, blocked, 8 fields per
 * entry} (online -1: hidden by a block; the 7th: a group's roles; the 8th:
 * the unread mentions). Fills *c
 * (n entries, pointing into rep; free(*c) frees the admins too) and the
 * cursor; -1 when it is not such a reply. */
static int lifecycle_parse_contacts(const redisReply *rep, long long *mode, char *cursor,
                                    size_t cursor_size, proto_contact **out, size_t *nout)
{
    if (!rep || rep->type != REDIS_REPLY_ARRAY || rep->elements < 3 ||
        rl_reply_int(rep->element[0], mode) < 0 || rep->element[1]->type != REDIS_REPLY_STRING ||
        rep->element[1]->len >= cursor_size || rep->element[2]->type != REDIS_REPLY_ARRAY)
        return -1;
    memcpy(cursor, rep->element[1]->str, rep->element[1]->len);
    cursor[rep->element[1]->len] = '\0';
    size_t n = (rep->elements - 3) / 8, k = 0, nadmins = 0;
    for (size_t i = 0; i < n; i++) {
        const redisReply *r = rep->element[3 + 8 * i + 6];
        if (r->type == REDIS_REPLY_ARRAY && r->elements == 4 &&
            r->element[3]->type == REDIS_REPLY_ARRAY)
            nadmins += r->element[3]->elements < LIFECYCLE_ADMINS_MAX ? r->element[3]->elements
                                                                      : LIFECYCLE_ADMINS_MAX;
    }
    /* one block: the entries, then the admins' names they point to */
    proto_contact *c = calloc(1, (n ? n : 1) * sizeof *c + nadmins * sizeof(proto_str));
    if (!c) return -1;
    proto_str *pool = (proto_str *)(c + (n ? n : 1));
    for (size_t i = 0; i < n; i++) {
        redisReply **e = rep->element + 3 + 8 * i;
        long long online = 0, unread = 0, read = 0, peer_read = 0, mentions = 0;
        if (e[0]->type != REDIS_REPLY_STRING ||
            (!proto_valid_user(e[0]->str, e[0]->len) && !proto_valid_group(e[0]->str, e[0]->len)))
            continue;
        rl_reply_int(e[1], &online);
        rl_reply_int(e[2], &unread);
        rl_reply_int(e[3], &read);
        rl_reply_int(e[4], &peer_read);
        rl_reply_int(e[7], &mentions);
        c[k].mentions = mentions;
        c[k].name = e[0]->str;
        c[k].len = e[0]->len;
        c[k].online = online > 0;
        c[k].hidden = online < 0;
        c[k].unread = unread;
        c[k].read = read;
        c[k].peer_read = peer_read;
        if (e[5]->type == REDIS_REPLY_STRING && proto_is_map(e[5]->str, e[5]->len)) {
            c[k].last = e[5]->str;
            c[k].last_len = e[5]->len;
        }
        if (e[0]->str[0] == '#') pool += lifecycle_parse_roles(e[6], &c[k], pool);
        k++;
    }
    *out = c;
    *nout = k;
    return 0;
}

static void lifecycle_users_cb(redisAsyncContext *ac, void *r, void *priv);

/* Asks for the next `users` page. */
static void lifecycle_users_next(gw_session *s)
{
    struct lifecycle_sess *l = s->lc;
    if (!l->users_cursor[0] || l->users_fetching || l->users_waiting) return;
    if (scripts_contacts(rl_commands(), lifecycle_users_cb, (void *)(uintptr_t)s->conn, s->user,
                         lc.everyone_limit, l->users_cursor, lc.hello_entries,
                         lc.preview_bytes) == REDIS_OK)
        l->users_fetching = 1;
    else
        l->users_lost = 1; /* Redis down: the re-open after the reconnect asks again */
}

/* After a page: the next one once the session drained, if there is one. */
static void lifecycle_users_more(gw_session *s)
{
    if (!s->lc->users_cursor[0]) return;
    s->lc->users_waiting = 1;
    sess_when_drained(s);
}

/* {kind:"users", users, more}: a page of hello's list after hello. */
static void lifecycle_users_cb(redisAsyncContext *ac, void *r, void *priv)
{
    gw_session *s = sess_find((uint64_t)(uintptr_t)priv);
    if (!s || s->state == SESS_CLOSING) return;
    struct lifecycle_sess *l = s->lc;
    long long mode;
    char cursor[sizeof l->users_cursor];
    proto_contact *c = NULL;
    size_t k = 0;
    l->users_fetching = 0;
    if (lifecycle_parse_contacts(r, &mode, cursor, sizeof cursor, &c, &k) < 0) {
        redisReply *rep = r;
        if (rep && rep->type == REDIS_REPLY_ERROR) log_warn("contacts %s: %s", s->user, rep->str);
        l->users_lost = 1; /* the re-open after a reconnect asks again */
        return;
    }
    memcpy(l->users_cursor, cursor, sizeof cursor);
    if (k || !cursor[0]) { /* an empty page is not sent, unless it is the last */
        msgpack_sbuffer sb;
        msgpack_packer pk;
        msgpack_sbuffer_init(&sb);
        msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
        proto_enc_users(&pk, c, k, cursor[0] != 0);
        sess_send_replay(s, sb.data, sb.size);
        msgpack_sbuffer_destroy(&sb);
    }
    for (size_t i = 0; i < k; i++)
        presence_follow_known(s, c[i].name, c[i].len, c[i].online, c[i].hidden);
    free(c);
    if (!cursor[0]) return;
    if (k)
        lifecycle_users_more(s);
    else
        lifecycle_users_next(s); /* nothing was queued: no need to wait */
}

void lifecycle_on_drained(gw_session *s)
{
    if (!s->lc || !s->lc->users_waiting || s->state != SESS_LIVE) return;
    s->lc->users_waiting = 0;
    lifecycle_users_next(s);
}

/* hello (the first page of the list; `users` pages follow when there is
 * more), then LIVE, then the offline entries (open_from, open_seq] page by
 * page as the client reads them (deliver_catch_up: a gap fetch). */
static void lifecycle_contacts_cb(redisAsyncContext *ac, void *r, void *priv)
{
    redisReply *rep = r;
    gw_session *s = sess_find((uint64_t)(uintptr_t)priv);
    if (!s || s->state != SESS_OPENING || !s->lc->opened) return;
    struct lifecycle_sess *l = s->lc;
    long long mode;
    proto_contact *c = NULL;
    size_t k = 0;
    if (lifecycle_parse_contacts(rep, &mode, l->users_cursor, sizeof l->users_cursor, &c, &k) < 0) {
        if (rep && rep->type == REDIS_REPLY_ERROR) log_warn("contacts %s: %s", s->user, rep->str);
        sess_close(s, 1013, "try again later");
        return;
    }
    msgpack_sbuffer sb;
    msgpack_packer pk;
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    const redisReply *bl = rep->element[2]; /* the users s->user blocks */
    proto_str *blocked = calloc(bl->elements ? bl->elements : 1, sizeof *blocked);
    size_t nb = 0;
    for (size_t i = 0; blocked && i < bl->elements; i++)
        if (bl->element[i]->type == REDIS_REPLY_STRING)
            blocked[nb++] = (proto_str){bl->element[i]->str, bl->element[i]->len};
    proto_enc_hello(&pk, s->user, l->open_seq, s->epoch, strlen(s->epoch), c, k,
                    l->users_cursor[0] != 0, blocked, nb);
    free(blocked);
    sess_send_replay(s, sb.data, sb.size); /* paced: a big hello is no slow reader */
    msgpack_sbuffer_destroy(&sb);
    s->last_seq = l->open_from;
    s->state = SESS_LIVE;
    if (mode == 1) presence_set_everyone(s);
    for (size_t i = 0; i < k; i++)
        presence_follow_known(s, c[i].name, c[i].len, c[i].online, c[i].hidden);
    free(c);
    log_debug("conn %" PRIu64 " (%s): hello sent, seq %" PRId64 ", %zu contact(s)%s%s", s->conn,
              s->user, l->open_seq, k, mode == 1 ? " (everyone)" : "",
              l->users_cursor[0] ? ", more to follow" : "");
    lws_rx_flow_control(s->wsi, 1);
    lifecycle_users_more(s);
    deliver_catch_up(s, l->open_seq + 1);
    deliver_drain(s);
    if (l->reopen_live && s->state == SESS_LIVE) {
        l->reopen_live = 0;
        lifecycle_reopen_one(s, NULL);
    }
}

static void lifecycle_ignore_cb(redisAsyncContext *ac, void *r, void *priv)
{
    redisReply *rep = r;
    if (rep && rep->type == REDIS_REPLY_ERROR) log_warn("redis: %s", rep->str);
}

static int lifecycle_run_open(gw_session *s, int reopen)
{
    if (scripts_session_open(rl_commands(), lifecycle_open_cb, (void *)(uintptr_t)s->conn, s->user,
                             s->sessid, s->member, lc.gwid, reopen, sesscap_limit(), s->login,
                             (int64_t)walltime_ms()) != REDIS_OK)
        return -1;
    s->lc->opens++;
    return 0;
}

static int lifecycle_run_contacts(gw_session *s)
{
    return scripts_contacts(rl_commands(), lifecycle_contacts_cb, (void *)(uintptr_t)s->conn,
                            s->user, lc.everyone_limit, "", lc.hello_entries,
                            lc.preview_bytes) == REDIS_OK
               ? 0
               : -1;
}

/* Dev-auth users need an account so that others can send to them: create one
 * with a hash no password matches (register answers 0 if it exists). */
static void lifecycle_dev_account(gw_session *s)
{
    scripts_register(rl_commands(), lifecycle_ignore_cb, NULL, s->user, "!dev-auth: no password",
                     (int64_t)walltime_ms());
}

gw_session *lifecycle_open(struct lws *wsi, const char *user, const char *login, int dev_account)
{
    gw_session *s = sess_new(wsi, user, lc.gwid);
    if (!s) return NULL;
    snprintf(s->login, sizeof s->login, "%s", login);
    s->lc = calloc(1, sizeof *s->lc);
    if (!s->lc) {
        sess_remove(s);
        sess_free(s);
        return NULL;
    }
    drain_hold();
    metrics_inc(METRIC_CONNECTIONS_TOTAL);
    lws_rx_flow_control(wsi, 0);
    if (dev_account) lifecycle_dev_account(s);
    if (lifecycle_run_open(s, 0) < 0) sess_close(s, 1013, "try again later");
    log_debug("conn %" PRIu64 " (%s): open", s->conn, s->user);
    return s;
}

/* A session opening while its gateway was reaped (its session_open may have
 * run before the reaper's close) must be opened again too, or it would stay
 * out of the user's session set and get nothing: it is, as soon as hello is
 * out. (One whose session_open is lost with the connection is closed 1013.) */
static void lifecycle_reopen_one(gw_session *s, void *arg)
{
    if (s->state == SESS_OPENING) s->lc->reopen_live = 1;
    if (s->state != SESS_LIVE) return;
    deliver_forget_fetch(s);
    if (s->lc->users_lost) { /* a page lost with the connection: asked again */
        s->lc->users_lost = 0;
        lifecycle_users_next(s);
    }
    if (!s->lc->reopening) s->lc->reopen_seq = s->last_seq;
    if (lifecycle_run_open(s, 1) == 0) s->lc->reopening++;
}

int lifecycle_closes_pending(void)
{
    return lc.closes_pending;
}

void lifecycle_reopen_all(void)
{
    log_info("redis back: re-opening %zu session(s)", sess_count());
    sess_each(lifecycle_reopen_one, NULL);
}

/* one user's sockets (s is the first of them): their distinct logins */
static void lifecycle_touch_user(gw_session *s, void *arg)
{
    const char *sids[LIFECYCLE_TOUCH_MAX];
    size_t n = 0;
    if (sess_of_user(s->user, strlen(s->user)) != s) return; /* the user's first only */
    for (gw_session *o = s; o && n < LIFECYCLE_TOUCH_MAX; o = o->next_of_user) {
        if (!o->login[0] || o->state != SESS_LIVE) continue;
        size_t i = 0;
        while (i < n && strcmp(sids[i], o->login) != 0)
            i++;
        if (i == n) sids[n++] = o->login;
    }
    if (n)
        scripts_login_touch(rl_commands(), lifecycle_ignore_cb, NULL, s->user,
                            (int64_t) * (uint64_t *)arg, sids, n);
}

void lifecycle_touch_logins(void)
{
    uint64_t now = walltime_ms();
    if (lc.last_seen_ms <= 0 || now - lc.touched_ms < (uint64_t)lc.last_seen_ms || !rl_ok()) return;
    lc.touched_ms = now;
    sess_each(lifecycle_touch_user, &now);
}

static void lifecycle_close_cb(redisAsyncContext *ac, void *r, void *priv)
{
    redisReply *rep = r;
    if (rep && rep->type == REDIS_REPLY_ERROR) log_warn("session_close: %s", rep->str);
    if (priv) { /* held for the drain */
        lc.closes_pending--;
        drain_release();
    }
}

static void lifecycle_send_close(const char *user, const char *sessid, const char *member,
                                 int draining)
{
    if (scripts_session_close(rl_commands(), lifecycle_close_cb, draining ? (void *)1 : NULL, user,
                              sessid, member, lc.gwid, 0) == REDIS_OK &&
        draining) {
        lc.closes_pending++;
        drain_hold();
    }
}

void lifecycle_closed(gw_session *s)
{
    sess_remove(s);
    presence_unfollow_all(s);
    int draining = drain_active();
    lifecycle_deferred *d = s->lc && s->lc->opens > 0 ? calloc(1, sizeof *d) : NULL;
    if (d) { /* after its session_open calls in flight (the top of this file) */
        d->conn = s->conn;
        d->opens = s->lc->opens;
        d->draining = draining;
        memcpy(d->user, s->user, sizeof d->user);
        memcpy(d->sessid, s->sessid, sizeof d->sessid);
        memcpy(d->member, s->member, sizeof d->member);
        d->next = lc.deferred;
        lc.deferred = d;
        if (draining) drain_hold();
    } else {
        lifecycle_send_close(s->user, s->sessid, s->member, draining);
    }
    /* if Redis is down, the reaper closes it once our heartbeat expires, or
     * the next start of this gateway id does */
    log_debug("conn %" PRIu64 " (%s): closed", s->conn, s->user);
    deliver_detach(s);
    free(s->lc);
    s->lc = NULL;
    sess_free(s);
    drain_release();
}
