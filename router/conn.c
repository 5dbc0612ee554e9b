/* conn.c - the router's two Redis connections: `cmd` carries every command
 * (pipelined, in arrival order), `sub` only SUBSCRIBE/UNSUBSCRIBE.
 *
 * Both are treated as one link: when either drops, the other is closed too,
 * the slot module forgets every lease it held (slots_on_down), and both are
 * re-opened with exponential backoff (100 ms doubling to 5 s). Once both are
 * up again, slots_on_ready() beats and re-claims. */
#include "router.h"

#include "log.h"
#include "scripts.h"

#include <hiredis/adapters/libevent.h>
#include <string.h>

#define CONN_BACKOFF_MIN_MS 100
#define CONN_BACKOFF_MAX_MS 5000

static void conn_schedule(router *r);

int conn_ready(const router *r)
{
    return r->cmd && r->sub && r->cmd_up && r->sub_up;
}

static redisAsyncContext **conn_slot(router *r, const redisAsyncContext *ac, int **up)
{
    if (ac == r->cmd) {
        *up = &r->cmd_up;
        return &r->cmd;
    }
    if (ac == r->sub) {
        *up = &r->sub_up;
        return &r->sub;
    }
    return NULL;
}

/* Either connection is gone: drop the other and all lease state. */
static void conn_lost(router *r, const char *which, const char *why)
{
    r->healthy = 0;
    r->paused = 0; /* a new subscriber context reads from the start */
    if (!r->outage_logged && !r->stopping) {
        log_warn("redis %s connection lost (%s): dropping all slots, reconnecting", which, why);
        r->outage_logged = 1;
    }
    slots_on_down(r);
    if (r->cmd && r->cmd_up) redisAsyncDisconnect(r->cmd);
    if (r->sub && r->sub_up) redisAsyncDisconnect(r->sub);
    if (r->stopping) {
        if (!r->cmd && !r->sub) router_exit(r);
        return;
    }
    conn_schedule(r);
}

static void conn_on_connect(const redisAsyncContext *ac, int status)
{
    router *r = ac->data;
    int *up;
    redisAsyncContext **slot = conn_slot(r, ac, &up);
    const char *which = ac == r->cmd ? "command" : "subscriber";

    if (!slot) return;
    if (status != REDIS_OK) {
        /* hiredis frees the context after this callback */
        *slot = NULL;
        *up = 0;
        conn_lost(r, which, ac->errstr);
        return;
    }
    *up = 1;
    log_debug("redis %s connection up", which);
    if (conn_ready(r)) slots_on_ready(r);
}

/* A real reply came back (so AUTH and SELECT passed): only now does the
 * backoff reset, or a refused password would retry every 100 ms. */
void conn_healthy(router *r)
{
    char desc[300];
    if (r->healthy) return;
    r->healthy = 1;
    r->backoff_ms = CONN_BACKOFF_MIN_MS;
    r->outage_logged = 0;
    log_info("connected to redis at %s", redisurl_describe(&r->url, desc, sizeof(desc)));
}

static void conn_on_disconnect(const redisAsyncContext *ac, int status)
{
    router *r = ac->data;
    int *up;
    redisAsyncContext **slot = conn_slot(r, ac, &up);
    const char *which = ac == r->cmd ? "command" : "subscriber";

    if (!slot) return;
    *slot = NULL;
    *up = 0;
    conn_lost(r, which, status == REDIS_OK ? "closed" : (ac->errstr[0] ? ac->errstr : "error"));
}

static redisAsyncContext *conn_open(router *r, const char *which)
{
    char err[512];
    redisAsyncContext *ac = redisurl_async_connect(&r->url, err, sizeof(err));
    if (!ac) {
        if (!r->outage_logged) log_warn("redis %s connection: %s", which, err);
        return NULL;
    }
    ac->data = r;
    redisLibeventAttach(ac, r->base);
    redisAsyncSetConnectCallback(ac, conn_on_connect);
    redisAsyncSetDisconnectCallback(ac, conn_on_disconnect);
    redisurl_async_prelude(ac, &r->url);
    /* visible in CLIENT LIST: parley-router:ID:commands / :subscriber */
    redisAsyncCommand(ac, NULL, NULL, "CLIENT SETNAME parley-router:%s:%s", r->cfg.id,
                      strcmp(which, "command") == 0 ? "commands" : "subscriber");
    return ac;
}

void conn_start(router *r)
{
    if (r->stopping) return;
    if (!r->cmd) {
        r->cmd = conn_open(r, "command");
        /* first on the pipe: later EVALSHAs never meet NOSCRIPT */
        if (r->cmd) scripts_load(r->cmd);
    }
    if (!r->sub) r->sub = conn_open(r, "subscriber");
    if (!r->cmd || !r->sub) {
        r->outage_logged = 1;
        conn_lost(r, !r->cmd ? "command" : "subscriber", "connect failed");
    }
}

static void conn_retry(evutil_socket_t fd, short what, void *arg)
{
    router *r = arg;
    (void)fd;
    (void)what;
    conn_start(r);
}

/* Re-open once both contexts are gone (hiredis frees them asynchronously). */
static void conn_schedule(router *r)
{
    struct timeval tv;
    if (!r->reconnect_ev) r->reconnect_ev = evtimer_new(r->base, conn_retry, r);
    if (evtimer_pending(r->reconnect_ev, NULL)) return;
    tv.tv_sec = r->backoff_ms / 1000;
    tv.tv_usec = (r->backoff_ms % 1000) * 1000;
    evtimer_add(r->reconnect_ev, &tv);
    r->backoff_ms *= 2;
    if (r->backoff_ms > CONN_BACKOFF_MAX_MS) r->backoff_ms = CONN_BACKOFF_MAX_MS;
}

void conn_close(router *r)
{
    if (r->reconnect_ev) evtimer_del(r->reconnect_ev);
    if (r->cmd) redisAsyncDisconnect(r->cmd);
    if (r->sub) redisAsyncDisconnect(r->sub);
}
