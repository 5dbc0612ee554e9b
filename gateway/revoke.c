/* revoke.c - the revocation set kept current, sockets of revoked sessions
 * closed (revoke.h). A read is a ZSCAN walk: every entry present for the
 * whole walk is returned (entries removed meanwhile had expired), each page
 * added to the set as it comes; the walk carries a number, and a reply of an
 * older walk is dropped. */
#include "revoke.h"

#include <libwebsockets.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "keys.h"
#include "log.h"
#include "proto.h"
#include "redis_link.h"
#include "revset.h"
#include "session.h"

#define REVOKE_RETRY_MS 1000

static struct {
    struct event *retry;
    int subscribed;    /* the subscription is confirmed */
    int want_read;     /* the walk is to go on (the command connection was down) */
    uintptr_t read_no; /* the number of the walk in progress */
    char cursor[32];   /* its ZSCAN cursor */
} rk;

void revoke_close(gw_session *s)
{
    /* a session still opening has reading paused: the peer's close frame
     * would wait unread, and the close with it, until lws's close timeout */
    if (s->wsi && s->state == SESS_OPENING) lws_rx_flow_control(s->wsi, 1);
    sess_close(s, REVOKE_CLOSE_CODE, REVOKE_CLOSE_REASON);
}

/* this gateway's sockets of login sid of user */
static void revoke_close_user(const char *user, size_t ulen, const char *sid)
{
    for (gw_session *s = sess_of_user(user, ulen); s; s = s->next_of_user)
        if (!strcmp(s->login, sid)) {
            log_info("conn %llu (%s): its signed-in session was revoked, closing",
                     (unsigned long long)s->conn, s->user);
            revoke_close(s);
        }
}

/* sid (slen bytes) of user (ulen bytes), whose token expires at exp (Unix
 * s), is revoked: entered in the set and, with close, this gateway's sockets
 * of it closed. */
static void revoke_apply(const char *user, size_t ulen, const char *sid, size_t slen, int64_t exp,
                         int close)
{
    if (revset_add(sid, slen, exp) < 0) log_warn("no memory for a revoked session");
    if (!close) return;
    char s[TOKEN_SID_LEN + 1];
    memcpy(s, sid, slen);
    s[slen] = '\0';
    revoke_close_user(user, ulen, s);
}

static void revoke_close_listed(gw_session *s, void *arg)
{
    (void)arg;
    if (s->login[0] && revset_has(s->login, (int64_t)time(NULL))) revoke_close(s);
}

/* "USER SID" (a zset member) or "USER SID EXP" (an announcement; exp 0):
 * entered; 0, or -1 when unreadable. */
static int revoke_enter(const char *p, size_t n, int64_t exp, int close)
{
    const char *end = p + n;
    const char *sp = memchr(p, ' ', n);
    if (!sp || !proto_valid_user(p, (size_t)(sp - p))) return -1;
    const char *sid = sp + 1;
    const char *sp2 = memchr(sid, ' ', (size_t)(end - sid));
    size_t slen = (size_t)((sp2 ? sp2 : end) - sid);
    if (sp2) {
        exp = 0;
        for (const char *q = sp2 + 1; q < end; q++) {
            if (*q < '0' || *q > '9' || exp > 99999999999LL) return -1;
            exp = exp * 10 + (*q - '0');
        }
    }
    if (!token_valid_sid(sid, slen) || exp <= 0) return -1;
    revoke_apply(p, (size_t)(sp - p), sid, slen, exp, close);
    return 0;
}

long long revoke_reply(const char *user, const redisReply *rep)
{
    long long n;
    if (!rep || rep->type != REDIS_REPLY_ARRAY || rep->elements < 1 ||
        rl_reply_int(rep->element[0], &n) < 0)
        return -1;
    for (size_t i = 1; i + 1 < rep->elements; i += 2) {
        long long exp;
        redisReply *sid = rep->element[i];
        if (sid->type != REDIS_REPLY_STRING || !token_valid_sid(sid->str, sid->len) ||
            rl_reply_int(rep->element[i + 1], &exp) < 0)
            continue;
        revoke_apply(user, strlen(user), sid->str, sid->len, exp, 1);
    }
    return n;
}

static void revoke_retry_later(void)
{
    struct timeval tv = {REVOKE_RETRY_MS / 1000, (REVOKE_RETRY_MS % 1000) * 1000};
    rk.want_read = 1;
    if (rk.retry) evtimer_add(rk.retry, &tv);
}

static void revoke_page(void);

static void revoke_page_cb(redisAsyncContext *ac, void *r, void *priv)
{
    redisReply *rep = r;
    if ((uintptr_t)priv != rk.read_no || !rk.subscribed) return; /* stale */
    if (!rep || rep->type != REDIS_REPLY_ARRAY || rep->elements != 2 ||
        rep->element[0]->type != REDIS_REPLY_STRING || rep->element[0]->len >= sizeof rk.cursor ||
        rep->element[1]->type != REDIS_REPLY_ARRAY) {
        if (rep) log_warn("ZSCAN %s: %s", KEY_REVOKED, rep->str ? rep->str : "unexpected reply");
        if (rep)
            revoke_retry_later();
        else
            rk.want_read = 1; /* a lost connection: its commands_up goes on */
        return;
    }
    redisReply *items = rep->element[1];
    for (size_t i = 0; i + 1 < items->elements; i += 2) {
        redisReply *m = items->element[i];
        long long exp = 0;
        if (m->type != REDIS_REPLY_STRING || rl_reply_int(items->element[i + 1], &exp) < 0)
            continue;
        revoke_enter(m->str, m->len, exp, 0);
    }
    memcpy(rk.cursor, rep->element[0]->str, rep->element[0]->len);
    rk.cursor[rep->element[0]->len] = '\0';
    if (strcmp(rk.cursor, "0") != 0) {
        revoke_page();
        return;
    }
    revset_set_loaded(); /* the first time: the gateway may take tokens (revset.h) */
    sess_each(revoke_close_listed, NULL);
    log_debug("%zu revoked session(s) known", revset_count());
}

static void revoke_page(void)
{
    char count[16];
    snprintf(count, sizeof count, "%d", REVOKE_PAGE);
    const char *argv[] = {"ZSCAN", KEY_REVOKED, rk.cursor, "COUNT", count};
    rk.want_read = 0;
    if (rl_command(revoke_page_cb, (void *)rk.read_no, 5, argv, NULL) < 0) rk.want_read = 1;
}

static void revoke_read(void)
{
    rk.read_no++;
    strcpy(rk.cursor, "0");
    revoke_page();
}

static void revoke_retry_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg;
    if (rk.want_read && rk.subscribed) revoke_page();
}

static void revoke_chan_cb(redisAsyncContext *ac, void *r, void *priv)
{
    rl_pubsub m;
    if (!r) { /* the subscriber is gone: read again after the next subscription */
        rk.subscribed = 0;
        return;
    }
    if (rl_pubsub_parse(r, &m) < 0) return;
    if (rl_pubsub_is(&m, "message")) {
        if (m.data && revoke_enter(m.data, m.data_len, 0, 1) < 0)
            log_warn("%s: unreadable announcement '%.*s'", CHAN_REVOKED,
                     (int)(m.data_len > 80 ? 80 : m.data_len), m.data);
    } else if (rl_pubsub_is(&m, "subscribe")) {
        rk.subscribed = 1;
        revoke_read();
    }
}

void revoke_on_subscriber_up(void)
{
    rk.subscribed = 0;
    rl_subscribe(CHAN_REVOKED, revoke_chan_cb, NULL);
}

void revoke_on_commands_up(void)
{
    if (rk.want_read && rk.subscribed) revoke_page();
}

int revoke_init(struct event_base *base)
{
    rk.retry = evtimer_new(base, revoke_retry_cb, NULL);
    return rk.retry ? 0 : -1;
}

void revoke_free(void)
{
    if (rk.retry) event_free(rk.retry);
    rk.retry = NULL;
    revset_free();
}
