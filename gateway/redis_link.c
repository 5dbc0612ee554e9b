/* redis_link.c - the gateway's two Redis connections, on the gateway's loop.
 *
 * "commands" carries scripts and plain commands; "subscriber" carries
 * SUBSCRIBE parley:gw:ID and parley:presence:NAME. Each reconnects on its own
 * with a backoff of 100 ms doubling to 2 s. After a reconnect every
 * subscription is issued again, and once both are back (the gateway channel
 * confirmed) every live session is re-opened and caught up (ws_on_redis_up).
 *
 * At the first successful start the sessions a previous process with the same
 * id left in parley:gw:ID:sessions are closed before /ws is served (g->ready);
 * then the heartbeat (SET alive PX ttl, SADD gateways) runs every ttl/3. */
#define _GNU_SOURCE
#include <hiredis/adapters/libevent.h>
#include <stdlib.h>
#include <string.h>

#include "gw.h"
#include "keys.h"
#include "log.h"
#include "scripts.h"

#define RL_BACKOFF_MIN 100
#define RL_BACKOFF_MAX 2000

static void rl_connect(gw_server *g, rl_conn *c);
static void rl_beat_now(gw_server *g);

int rl_ok(gw_server *g)
{
    return g->cmd.up && g->sub.up && g->sub_ready;
}

int rl_reply_int(const redisReply *r, long long *out)
{
    if (!r) return -1;
    if (r->type == REDIS_REPLY_INTEGER) {
        *out = r->integer;
        return 0;
    }
    if (r->type == REDIS_REPLY_STRING && r->len > 0 && r->len < 24) {
        char tmp[24], *end;
        memcpy(tmp, r->str, r->len);
        tmp[r->len] = '\0';
        long long v = strtoll(tmp, &end, 10);
        if (*end) return -1;
        *out = v;
        return 0;
    }
    return -1;
}

static rl_conn *rl_of(gw_server *g, const redisAsyncContext *ac)
{
    if (g->cmd.ac == ac) return &g->cmd;
    if (g->sub.ac == ac) return &g->sub;
    return NULL;
}

static void rl_retry_cb(evutil_socket_t fd, short what, void *arg)
{
    rl_conn *c = arg;
    gw_server *g = c->g;
    if (g->finishing) return;
    rl_connect(g, c);
}

static void rl_schedule(gw_server *g, rl_conn *c)
{
    if (g->finishing) return;
    struct timeval tv = {c->backoff_ms / 1000, (c->backoff_ms % 1000) * 1000};
    evtimer_add(c->retry, &tv);
    c->backoff_ms = c->backoff_ms * 2 > RL_BACKOFF_MAX ? RL_BACKOFF_MAX : c->backoff_ms * 2;
}

/* ---- startup: close what a previous process of this id left behind ---- */

static void rl_maybe_up(gw_server *g);

static void rl_cleanup_close_cb(redisAsyncContext *ac, void *r, void *priv)
{
    gw_server *g = ac->data;
    if (!r) { /* connection lost: the next connect starts the cleanup again */
        g->cleaning = 0;
        return;
    }
    if (--g->cleaning == 0) {
        g->ready = 1;
        log_info("gateway %s ready", g->gwid);
        rl_beat_now(g);
        rl_maybe_up(g);
    }
}

static void rl_cleanup_cb(redisAsyncContext *ac, void *r, void *priv)
{
    gw_server *g = ac->data;
    redisReply *rep = r;
    if (!rep || rep->type != REDIS_REPLY_ARRAY) {
        g->cleaning = 0;
        return;
    }
    g->cleaning = 1; /* held until all closes are queued */
    size_t n = 0;
    for (size_t i = 0; i < rep->elements; i++) {
        redisReply *e = rep->element[i];
        if (e->type != REDIS_REPLY_STRING) continue;
        const char *hash = memrchr(e->str, '#', e->len);
        if (!hash || !proto_valid_user(e->str, (size_t)(hash - e->str))) continue;
        char user[PROTO_NAME_MAX + 1], member[PROTO_NAME_MAX + 24];
        char sessid[GW_SESSID_MAX + 8];
        size_t ulen = (size_t)(hash - e->str);
        if (e->len >= sizeof member) continue;
        memcpy(user, e->str, ulen);
        user[ulen] = '\0';
        memcpy(member, e->str, e->len);
        member[e->len] = '\0';
        snprintf(sessid, sizeof sessid, "%s%.*s", g->gwid, (int)(e->len - ulen), hash);
        if (scripts_session_close(ac, rl_cleanup_close_cb, NULL, user, sessid, member, g->gwid,
                                  0) == REDIS_OK) {
            g->cleaning++;
            n++;
        }
    }
    if (n) log_info("closing %zu session(s) left by a previous gateway %s", n, g->gwid);
    rl_cleanup_close_cb(ac, rep, NULL);
}

static void rl_cleanup_now(gw_server *g)
{
    char k[KEYS_MAX];
    keys_fmt(k, sizeof k, KEY_GW_SESSIONS, g->gwid);
    const char *argv[] = {"SMEMBERS", k};
    if (!g->cmd.up ||
        redisAsyncCommandArgv(g->cmd.ac, rl_cleanup_cb, NULL, 2, argv, NULL) != REDIS_OK)
        g->cleaning = 0;
}

/* Before taking over the sessions of its id, make sure no running gateway
 * holds that id: when the alive key exists, look again a beat period later;
 * a TTL that dropped by less than the wait was refreshed by someone else, and this process stops
 * (two processes on one id would close each other's sessions). A key left by
 * a dead process just ages, and the cleanup goes on. */
static void rl_dup_second_cb(redisAsyncContext *ac, void *r, void *priv)
{
    gw_server *g = ac->data;
    long long p2;
    if (rl_reply_int(r, &p2) < 0) {
        g->cleaning = 0; /* connection lost: the next connect starts again */
        return;
    }
    /* unrefreshed, the TTL drops by the wait; a beat meanwhile puts it back up */
    if (p2 > g->dup_pttl - g->dup_wait + 50) {
        log_error("gateway id %s is in use by a running gateway (its heartbeat is being "
                  "refreshed): give this one another --id",
                  g->gwid);
        gw_fatal(g);
        return;
    }
    rl_cleanup_now(g);
}

static void rl_dup_timer_cb(evutil_socket_t fd, short what, void *arg)
{
    gw_server *g = arg;
    char k[KEYS_MAX];
    keys_fmt(k, sizeof k, KEY_GW_ALIVE, g->gwid);
    const char *argv[] = {"PTTL", k};
    if (!g->cmd.up ||
        redisAsyncCommandArgv(g->cmd.ac, rl_dup_second_cb, NULL, 2, argv, NULL) != REDIS_OK)
        g->cleaning = 0;
}

static void rl_dup_first_cb(redisAsyncContext *ac, void *r, void *priv)
{
    gw_server *g = ac->data;
    long long p1;
    if (rl_reply_int(r, &p1) < 0) {
        g->cleaning = 0;
        return;
    }
    if (p1 < 0) { /* no key (-2) or no TTL (-1): nobody beats for this id */
        rl_cleanup_now(g);
        return;
    }
    g->dup_pttl = p1;
    long long wait = g->cfg.heartbeat_ttl / 3 + 100;
    g->dup_wait = wait;
    struct timeval tv = {wait / 1000, (wait % 1000) * 1000};
    evtimer_add(g->dup_timer, &tv);
}

static void rl_start_cleanup(gw_server *g)
{
    char k[KEYS_MAX];
    keys_fmt(k, sizeof k, KEY_GW_ALIVE, g->gwid);
    const char *argv[] = {"PTTL", k};
    if (redisAsyncCommandArgv(g->cmd.ac, rl_dup_first_cb, NULL, 2, argv, NULL) == REDIS_OK)
        g->cleaning = 1;
}

/* ---- heartbeat ---- */

static void rl_ignore_cb(redisAsyncContext *ac, void *r, void *priv)
{
    redisReply *rep = r;
    if (rep && rep->type == REDIS_REPLY_ERROR) log_warn("redis: %s", rep->str);
}

static void rl_beat_set_cb(redisAsyncContext *ac, void *r, void *priv)
{
    gw_server *g = ac->data;
    redisReply *rep = r;
    g->beat_sent_ms = 0; /* answered (or the connection is gone) */
    if (rep && rep->type == REDIS_REPLY_NIL) g->beat_lapsed = 1; /* SET ... GET: no key before */
    rl_ignore_cb(ac, r, priv);
}

/* The SADD's reply ends a beat. When beats on this connection were answered
 * before and this one found the alive key gone or the gateway out of
 * parley:gateways, the beats came too late (a backlog, a pause) and a router
 * may have reaped the gateway: every session is opened again and caught up,
 * as after a reconnect. A reaper's close meeting the new alive key does
 * nothing, so this covers what it closed before. */
static void rl_beat_sadd_cb(redisAsyncContext *ac, void *r, void *priv)
{
    gw_server *g = ac->data;
    redisReply *rep = r;
    rl_ignore_cb(ac, r, priv);
    if (!rep || rep->type != REDIS_REPLY_INTEGER) return;
    if (g->beat_known && (g->beat_lapsed || rep->integer == 1)) {
        g->m.heartbeat_lapses++;
        log_warn("gateway %s: a heartbeat came after the alive key expired (routers may have "
                 "reaped it): opening its sessions again",
                 g->gwid);
        if (rl_ok(g) && !g->draining) ws_on_redis_up(g);
    }
    g->beat_known = 1;
    g->beat_lapsed = 0;
}

static void rl_beat_now(gw_server *g)
{
    if (!g->cmd.up || !g->ready || g->finishing) return;
    char k[KEYS_MAX], ttl[24];
    keys_fmt(k, sizeof k, KEY_GW_ALIVE, g->gwid);
    snprintf(ttl, sizeof ttl, "%lld", g->cfg.heartbeat_ttl);
    const char *a1[] = {"SET", k, "1", "PX", ttl, "GET"};
    const char *a2[] = {"SADD", KEY_GATEWAYS, g->gwid};
    if (redisAsyncCommandArgv(g->cmd.ac, rl_beat_set_cb, NULL, 6, a1, NULL) == REDIS_OK &&
        !g->beat_sent_ms)
        g->beat_sent_ms = gw_now_ms();
    redisAsyncCommandArgv(g->cmd.ac, rl_beat_sadd_cb, NULL, 3, a2, NULL);
}

/* A Redis that stops answering (stopped process, dead host without a reset)
 * leaves the TCP connection open: when a heartbeat stays unanswered for the
 * whole TTL, the command connection is dropped (every pending callback gets
 * NULL, so clients get `unavailable`) and reconnected; /healthz says 503 in
 * between. */
static void rl_watchdog(gw_server *g)
{
    if (!g->cmd.up || !g->beat_sent_ms ||
        gw_now_ms() - g->beat_sent_ms < (uint64_t)g->cfg.heartbeat_ttl)
        return;
    log_warn("redis commands connection: no answer for %lld ms, reconnecting",
             g->cfg.heartbeat_ttl);
    redisAsyncContext *ac = g->cmd.ac;
    g->beat_sent_ms = 0;
    g->beat_known = g->beat_lapsed = 0;
    g->cmd.ac = NULL; /* so rl_on_disconnect does not see it as ours */
    g->cmd.up = 0;
    g->m.redis_reconnects++;
    redisAsyncFree(ac); /* every pending callback gets NULL */
    rl_schedule(g, &g->cmd);
}

static void rl_beat_cb(evutil_socket_t fd, short what, void *arg)
{
    rl_watchdog(arg);
    rl_beat_now(arg);
    presence_sweep(arg);
}

/* ---- subscriber ---- */

static void rl_sub_cb(redisAsyncContext *ac, void *r, void *priv)
{
    gw_server *g = ac->data;
    redisReply *rep = r;
    if (!rep || rep->type != REDIS_REPLY_ARRAY || rep->elements < 3) return;
    redisReply *type = rep->element[0], *chan = rep->element[1], *data = rep->element[2];
    if (type->type != REDIS_REPLY_STRING || chan->type != REDIS_REPLY_STRING) return;
    int is_gw = chan->len == strlen(g->gw_chan) && memcmp(chan->str, g->gw_chan, chan->len) == 0;
    if (type->len == 7 && memcmp(type->str, "message", 7) == 0) {
        if (data->type != REDIS_REPLY_STRING) return;
        if (is_gw)
            deliver_envelope(g, data->str, data->len);
        else if (chan->len == sizeof(CHAN_USERS) - 1 && !memcmp(chan->str, CHAN_USERS, chan->len))
            presence_new_user(g, data->str, data->len);
        else
            presence_message(g, chan->str, data->str, data->len);
    } else if (type->len == 9 && memcmp(type->str, "subscribe", 9) == 0) {
        if (is_gw) {
            g->sub_ready = 1;
            rl_maybe_up(g);
        } else {
            presence_subscribed(g, chan->str, chan->len);
        }
    } else if (type->len == 11 && memcmp(type->str, "unsubscribe", 11) == 0) {
        presence_unsubscribed(g, chan->str, chan->len);
    }
}

void rl_subscribe(gw_server *g, const char *chan)
{
    if (!g->sub.up) return; /* issued again at reconnect */
    const char *argv[] = {"SUBSCRIBE", chan};
    redisAsyncCommandArgv(g->sub.ac, rl_sub_cb, NULL, 2, argv, NULL);
}

void rl_unsubscribe(gw_server *g, const char *chan)
{
    if (!g->sub.up) return;
    const char *argv[] = {"UNSUBSCRIBE", chan};
    redisAsyncCommandArgv(g->sub.ac, rl_sub_cb, NULL, 2, argv, NULL);
}

/* ---- connection life ---- */

/* Both connections usable: catch every session up (after a reconnect). */
static void rl_maybe_up(gw_server *g)
{
    if (!rl_ok(g) || !g->ready) return;
    if (g->ever_up) ws_on_redis_up(g);
    g->ever_up = 1;
}

static void rl_on_connect(const redisAsyncContext *cac, int status)
{
    redisAsyncContext *ac = (redisAsyncContext *)cac;
    gw_server *g = ac->data;
    rl_conn *c = rl_of(g, ac);
    if (!c) return;
    if (status != REDIS_OK) {
        log_warn("redis %s connection failed: %s", c->name, ac->errstr);
        c->ac = NULL; /* hiredis frees it */
        c->connecting = 0;
        rl_schedule(g, c);
        return;
    }
    c->connecting = 0;
    c->up = 1;
    c->backoff_ms = RL_BACKOFF_MIN;
    log_info("redis %s connection up", c->name);
    if (c == &g->sub) {
        rl_subscribe(g, g->gw_chan);
        rl_subscribe(g, CHAN_USERS);
        presence_resubscribe(g);
    } else {
        if (!g->ready && !g->cleaning) rl_start_cleanup(g);
        rl_beat_now(g);
        rl_maybe_up(g);
    }
}

static void rl_on_disconnect(const redisAsyncContext *cac, int status)
{
    redisAsyncContext *ac = (redisAsyncContext *)cac;
    gw_server *g = ac->data;
    rl_conn *c = rl_of(g, ac);
    if (!c) return;
    c->ac = NULL;
    c->up = 0;
    c->connecting = 0;
    if (c == &g->sub)
        g->sub_ready = 0;
    else
        g->beat_known = g->beat_lapsed = 0;
    if (g->finishing) {
        gw_drain_check(g);
        return;
    }
    g->m.redis_reconnects++;
    log_warn("redis %s connection lost%s%s", c->name, ac->errstr[0] ? ": " : "", ac->errstr);
    rl_schedule(g, c);
}

static void rl_connect(gw_server *g, rl_conn *c)
{
    char err[256];
    redisAsyncContext *ac = redisurl_async_connect(&g->rurl, err, sizeof err);
    if (!ac) {
        log_warn("%s", err);
        rl_schedule(g, c);
        return;
    }
    ac->data = g;
    c->ac = ac;
    c->connecting = 1;
    redisLibeventAttach(ac, g->base);
    /* a Redis host that vanishes without a reset is noticed in ~30 s, also on
     * the subscriber, which has no heartbeat of its own */
    if (!g->rurl.unix_socket) redisEnableKeepAlive(&ac->c); /* TCP only */
    redisAsyncSetConnectCallback(ac, rl_on_connect);
    redisAsyncSetDisconnectCallback(ac, rl_on_disconnect);
    redisurl_async_prelude(ac, &g->rurl);
    /* names show in CLIENT LIST: parley-gw:ID:commands / :subscriber */
    char name[128];
    snprintf(name, sizeof name, "parley-gw:%s:%s", g->gwid, c->name);
    const char *argv[] = {"CLIENT", "SETNAME", name};
    redisAsyncCommandArgv(ac, rl_ignore_cb, NULL, 3, argv, NULL);
    if (c == &g->cmd) scripts_load(ac);
}

int rl_start(gw_server *g)
{
    g->cmd.g = g->sub.g = g;
    g->cmd.name = "commands";
    g->sub.name = "subscriber";
    g->cmd.backoff_ms = g->sub.backoff_ms = RL_BACKOFF_MIN;
    g->cmd.retry = evtimer_new(g->base, rl_retry_cb, &g->cmd);
    g->sub.retry = evtimer_new(g->base, rl_retry_cb, &g->sub);
    g->beat = event_new(g->base, -1, EV_PERSIST, rl_beat_cb, g);
    g->dup_timer = evtimer_new(g->base, rl_dup_timer_cb, g);
    if (!g->cmd.retry || !g->sub.retry || !g->beat || !g->dup_timer) return -1;
    long long every = g->cfg.heartbeat_ttl / 3;
    struct timeval tv = {every / 1000, (every % 1000) * 1000};
    evtimer_add(g->beat, &tv);
    rl_connect(g, &g->cmd);
    rl_connect(g, &g->sub);
    return 0;
}

/* Graceful: pending replies are delivered, then the disconnect callbacks run. */
void rl_stop(gw_server *g)
{
    rtq_flush(g); /* texts of this turn go out before the link closes */
    if (g->cmd.retry) evtimer_del(g->cmd.retry);
    if (g->sub.retry) evtimer_del(g->sub.retry);
    if (g->beat) evtimer_del(g->beat);
    if (g->dup_timer) evtimer_del(g->dup_timer);
    if (g->cmd.ac) redisAsyncDisconnect(g->cmd.ac);
    if (g->sub.ac) redisAsyncDisconnect(g->sub.ac);
}

void rl_free(gw_server *g)
{
    if (g->cmd.retry) event_free(g->cmd.retry);
    if (g->sub.retry) event_free(g->sub.retry);
    if (g->beat) event_free(g->beat);
    if (g->dup_timer) event_free(g->dup_timer);
    g->dup_timer = NULL;
    g->cmd.retry = g->sub.retry = g->beat = NULL;
}

int rl_cmd_argv(gw_server *g, redisCallbackFn *cb, void *priv, int argc, const char **argv,
                const size_t *argvlen)
{
    if (!g->cmd.up || !g->cmd.ac) return -1;
    return redisAsyncCommandArgv(g->cmd.ac, cb, priv, argc, argv, argvlen) == REDIS_OK ? 0 : -1;
}

int rl_eval(gw_server *g, int script, redisCallbackFn *cb, void *priv, int nkeys, int nargs,
            const char **argv, const size_t *argvlen)
{
    if (!g->cmd.up || !g->cmd.ac) return -1;
    return scripts_eval(g->cmd.ac, (script_id)script, cb, priv, nkeys, nargs, argv, argvlen) ==
                   REDIS_OK
               ? 0
               : -1;
}
