/* reaper.c - cleans up after gateways that died without closing their
 * sessions (crash, kill -9, lost host).
 *
 * Every --reap-interval ms, the router that holds slot 0 (so exactly one
 * router reaps at a time; any router takes over with the slot) looks at each
 * member of parley:gateways: when its parley:gw:ID:alive key is gone, it runs
 * session_close for every member of parley:gw:ID:sessions (which announces
 * `offline` for users left without a session), then removes the gateway from
 * parley:gateways (forget_gateway: once its session set is empty, unless its
 * alive key is back), once every close has answered: each is a chain of
 * steps (docs/internals.md "Scripts in steps") that may run on other
 * connections, so the order in which they were sent says nothing. One log
 * line per reaped gateway. Each close checks the alive key again, in its
 * first step, so a late heartbeat stops the reaping where it is; the gateway
 * notices at that beat (its alive key was gone, or it had left
 * parley:gateways) and opens its sessions again. A restarted gateway closes
 * its own leftovers at start. */
#include "router.h"

#include "log.h"
#include "proto.h"
#include "scripts.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* One dead gateway being reaped; freed by reaper_gw_done. */
typedef struct reaper_gw {
    router *r;
    int closed, offline, failed, alive;
    int closing; /* session_close calls not answered yet (+1 while they are being sent) */
    char id[72];
} reaper_gw;

static void reaper_gw_done(reaper_gw *g)
{
    g->r->reap_busy--;
    free(g);
}

/* The end of a gateway's round: forget_gateway answered (after every close). */
static void reaper_forget_cb(redisAsyncContext *ac, void *reply, void *privdata)
{
    reaper_gw *g = privdata;
    redisReply *rep = reply;
    (void)ac;
    if (g->alive)
        log_warn("gateway %s beat again while being reaped: %d session%s closed before, %d left "
                 "open",
                 g->id, g->closed, g->closed == 1 ? "" : "s", g->alive);
    else if (rep && rep->type == REDIS_REPLY_INTEGER && rep->integer == 1)
        log_info("reaped gateway %s: %d session%s closed, %d user%s went offline", g->id, g->closed,
                 g->closed == 1 ? "" : "s", g->offline, g->offline == 1 ? "" : "s");
    reaper_gw_done(g);
}

/* The last step: forget_gateway. */
static void reaper_forget(reaper_gw *g)
{
    router *r = g->r;
    if (!r->cmd || scripts_forget_gateway(r->cmd, reaper_forget_cb, g, g->id) != REDIS_OK)
        reaper_gw_done(g);
}

/* One close fewer outstanding; after the last, forget the gateway. */
static void reaper_closed(reaper_gw *g)
{
    if (--g->closing == 0) reaper_forget(g);
}

static void reaper_close_cb(redisAsyncContext *ac, void *reply, void *privdata)
{
    reaper_gw *g = privdata;
    redisReply *rep = reply;
    (void)ac;
    if (rep && rep->type == REDIS_REPLY_INTEGER && rep->integer < 0) {
        g->alive++; /* its heartbeat came back meanwhile */
    } else if (rep && rep->type == REDIS_REPLY_INTEGER) {
        g->closed++;
        g->offline += rep->integer == 1;
    } else if (rep && rep->type == REDIS_REPLY_ERROR) {
        g->failed++;
        log_warn("reaper: session_close on %s: %s", g->id, rep->str);
    }
    reaper_closed(g);
}

static void reaper_sessions_cb(redisAsyncContext *ac, void *reply, void *privdata)
{
    reaper_gw *g = privdata;
    redisReply *rep = reply;
    router *r = g->r;
    char gwset[KEYS_MAX], sid[160], user[PROTO_NAME_MAX + 1];
    (void)ac;

    if (!rep || rep->type != REDIS_REPLY_ARRAY || !r->cmd) {
        reaper_gw_done(g);
        return;
    }
    keys_fmt(gwset, sizeof(gwset), KEY_GW_SESSIONS, g->id);
    g->closing = 1; /* held until every close is sent */
    for (size_t i = 0; i < rep->elements; i++) {
        const char *member = rep->element[i]->str;
        if (keys_session_of_member(member, member ? strlen(member) : 0, g->id, user, sid,
                                   sizeof sid) < 0) {
            log_warn("reaper: odd member '%s' in %s, removing it", member ? member : "", gwset);
            conn_commandf(r, NULL, NULL, "SREM %s %s", gwset, member ? member : "");
            continue;
        }
        if (scripts_session_close(r->cmd, reaper_close_cb, g, user, sid, member, g->id, 1) ==
            REDIS_OK)
            g->closing++;
    }
    /* forget_gateway after every session_close has answered; it leaves the
     * gateway in parley:gateways if it beat again or has sessions (next round) */
    reaper_closed(g);
}

static void reaper_alive_cb(redisAsyncContext *ac, void *reply, void *privdata)
{
    reaper_gw *g = privdata;
    redisReply *rep = reply;
    router *r = g->r;
    char key[KEYS_MAX];
    (void)ac;
    if (!rep || rep->type != REDIS_REPLY_INTEGER || rep->integer != 0 || !r->cmd ||
        conn_commandf(r, reaper_sessions_cb, g, "SMEMBERS %s",
                      keys_fmt(key, sizeof(key), KEY_GW_SESSIONS, g->id)) != REDIS_OK)
        reaper_gw_done(g);
}

static void reaper_gateways_cb(redisAsyncContext *ac, void *reply, void *privdata)
{
    router *r = privdata;
    redisReply *rep = reply;
    char key[KEYS_MAX];
    (void)ac;

    if (rep && rep->type == REDIS_REPLY_ARRAY && r->cmd) {
        for (size_t i = 0; i < rep->elements; i++) {
            const char *id = rep->element[i]->str;
            if (!id || !proto_valid_gwid(id, strlen(id))) continue;
            reaper_gw *g = calloc(1, sizeof(*g));
            if (!g) break;
            g->r = r;
            snprintf(g->id, sizeof(g->id), "%s", id);
            r->reap_busy++;
            if (conn_commandf(r, reaper_alive_cb, g, "EXISTS %s",
                              keys_fmt(key, sizeof(key), KEY_GW_ALIVE, id)) != REDIS_OK)
                reaper_gw_done(g);
        }
    }
    r->reap_busy--; /* the SMEMBERS itself */
}

static void reaper_run(evutil_socket_t fd, short what, void *arg)
{
    router *r = arg;
    (void)fd;
    (void)what;
    if (r->reap_busy || r->stopping || !conn_ready(r) || !slots_held(r, 0)) return;
    if (conn_commandf(r, reaper_gateways_cb, r, "SMEMBERS %s", KEY_GATEWAYS) == REDIS_OK)
        r->reap_busy = 1;
}

void reaper_init(router *r)
{
    struct timeval tv = {r->cfg.reap_interval / 1000, (r->cfg.reap_interval % 1000) * 1000};
    r->reap_ev = event_new(r->base, -1, EV_PERSIST, reaper_run, r);
    event_add(r->reap_ev, &tv);
}
