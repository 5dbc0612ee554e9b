/* conn.c - the router's two Redis connections: `cmd` carries every command
 * (pipelined, in arrival order), `sub` only SUBSCRIBE/UNSUBSCRIBE.
 *
 * Both are treated as one link: when either drops, the other is closed too,
 * the slot module forgets every lease it held (slots_on_down), and both are
 * re-opened with exponential backoff (100 ms doubling to 2 s). The link is
 * ready only once both connect sequences were accepted: AUTH/SELECT, CLIENT
 * SETNAME and, on `cmd`, the load of every script (first on the pipe, so
 * later calls never meet NOSCRIPT, whose retry could reorder messages). An
 * error reply to any of them (-LOADING while Redis loads its data, a
 * refused load) or no answer within CONN_HANDSHAKE_MS drops both and
 * reconnects after the backoff. Once ready, slots_on_ready() beats and
 * re-claims.
 *
 * Cluster mode (a redis-cluster:// URL): one cluster link (common/clink.h)
 * instead: `cmd` is a stand-in while some master is up (clink's any_up /
 * all_down; each master's connection has the connect sequence above), every
 * script step and plain command (conn_command) goes through the link,
 * routed by key; `sub` is the link's subscriber. One master away is not the
 * link down: commands of its slots wait in the link, then fail, and the
 * rest go on (slots.c keeps the routing slots whose lease keys are on live
 * masters, and those on the one away, which nobody can claim meanwhile).
 * The link reconnects by itself; when no master is up or the subscriber is
 * lost the slots are forgotten as above (the subscriber leaves their
 * channels when it stays up), and re-adopted once both are back. Send runs
 * in steps (route_set_steps). */
#include "router.h"

#include "clink.h"
#include "log.h"
#include "scripts.h"

#include <hiredis/adapters/libevent.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#define CONN_BACKOFF_MIN_MS 100
#define CONN_BACKOFF_MAX_MS 2000
#define CONN_HANDSHAKE_MS   5000

static void conn_schedule(router *r);

int conn_ready(const router *r)
{
    return r->cmd && r->sub && r->cmd_up && r->sub_up && !r->cmd_handshake && !r->sub_handshake;
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

/* Drops both connections at once (before the link is ready: nothing but the
 * connect sequences is pending, and their callbacks get NULL), then as
 * conn_lost. Safe inside a callback of either (hiredis frees it after). */
static void conn_abort(router *r, const char *which, const char *why)
{
    redisAsyncContext *cmd = r->cmd, *sub = r->sub;
    r->cmd = r->sub = NULL; /* detached: their disconnect callbacks find nothing */
    r->cmd_up = r->sub_up = r->cmd_handshake = r->sub_handshake = 0;
    if (cmd) redisAsyncFree(cmd);
    if (sub) redisAsyncFree(sub);
    conn_lost(r, which, why);
}

/* Both connections usable: the link is ready. */
static void conn_maybe_ready(router *r)
{
    if (!conn_ready(r)) return;
    if (r->handshake_ev) evtimer_del(r->handshake_ev);
    conn_healthy(r);
    slots_on_ready(r);
}

/* A reply of a connect sequence (CLIENT SETNAME, a script load). */
static void conn_handshake_cb(redisAsyncContext *ac, void *reply, void *privdata)
{
    router *r = ac->data;
    redisReply *rep = reply;
    int *up, *pending = ac == r->cmd ? &r->cmd_handshake : &r->sub_handshake;
    const char *which = ac == r->cmd ? "command" : "subscriber";
    char why[256];

    if (!rep || !conn_slot(r, ac, &up)) return; /* lost, or an old context */
    if (rep->type == REDIS_REPLY_ERROR) {
        snprintf(why, sizeof(why), "%s refused: %s", (const char *)privdata, rep->str);
        conn_abort(r, which, why);
        return;
    }
    if (*pending > 0) (*pending)--;
    conn_maybe_ready(r);
}

/* INFO cluster of the connect sequence: a cluster node runs send in steps
 * (each inside one hash slot), as does --send-steps. */
static void conn_info_cb(redisAsyncContext *ac, void *reply, void *privdata)
{
    router *r = ac->data;
    redisReply *rep = reply;
    int *up;
    if (rep && rep->type == REDIS_REPLY_STRING && conn_slot(r, ac, &up)) {
        r->cluster = strstr(rep->str, "cluster_enabled:1") != NULL;
        route_set_steps(r, r->cluster || r->cfg.send_steps);
    }
    conn_handshake_cb(ac, reply, privdata);
}

static void conn_handshake_timeout(evutil_socket_t fd, short what, void *arg)
{
    router *r = arg;
    (void)fd;
    (void)what;
    if (conn_ready(r) || r->stopping || (!r->cmd && !r->sub)) return;
    conn_abort(r, !r->cmd_up || r->cmd_handshake ? "command" : "subscriber",
               "no answer to the connect sequence within 5 s");
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
    conn_maybe_ready(r);
}

/* The connect sequences were accepted (so AUTH and SELECT passed, and Redis
 * is not loading): only now does the backoff reset, or a refused password
 * would retry every 100 ms. */
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
    if (slot == &r->cmd)
        r->cmd_handshake = 0;
    else
        r->sub_handshake = 0;
    conn_lost(r, which, status == REDIS_OK ? "closed" : (ac->errstr[0] ? ac->errstr : "error"));
}

/* The connect sequence's sender (scripts_conn_setup) on one Redis. */
static int conn_setup_send(void *ctx, const char *what, int argc, const char **argv,
                           const size_t *lens)
{
    return redisAsyncCommandArgv(ctx, conn_handshake_cb, (void *)what, argc, argv, lens);
}

static redisAsyncContext *conn_open(router *r, const char *which)
{
    char err[512];
    redisAsyncContext *ac = redisurl_async_connect(&r->url, err, sizeof(err));
    if (!ac) {
        if (!r->outage_logged) log_warn("redis %s connection: %s", which, err);
        return NULL;
    }
    int is_cmd = strcmp(which, "command") == 0, n = 0, ok;
    ac->data = r;
    redisLibeventAttach(ac, r->base);
    /* a Redis host that vanishes without a reset is noticed in ~30 s */
    if (!r->url.unix_socket) redisEnableKeepAlive(&ac->c);
    redisAsyncSetConnectCallback(ac, conn_on_connect);
    redisAsyncSetDisconnectCallback(ac, conn_on_disconnect);
    redisurl_async_prelude(ac, &r->url); /* disconnects on an error reply */
    /* visible in CLIENT LIST: parley-router:ID:commands / :subscriber; the
     * scripts first on the pipe: later EVALSHAs never meet NOSCRIPT */
    char name[320];
    snprintf(name, sizeof name, "parley-router:%s:%s", r->cfg.id,
             is_cmd ? "commands" : "subscriber");
    n = scripts_conn_setup(conn_setup_send, ac, name, is_cmd);
    ok = n > 0 ? REDIS_OK : REDIS_ERR;
    if (is_cmd && ok == REDIS_OK) {
        ok = redisAsyncCommand(ac, conn_info_cb, "INFO cluster", "INFO cluster");
        n++;
    }
    if (ok != REDIS_OK) {
        if (!r->outage_logged) log_warn("redis %s connection: cannot queue commands", which);
        redisAsyncFree(ac);
        return NULL;
    }
    if (is_cmd)
        r->cmd_handshake = n;
    else
        r->sub_handshake = n;
    return ac;
}

/* ---- cluster mode ---- */

/* What r->cmd is while the cluster link is ready: only tested and given to
 * scripts.h, whose steps go through the sender; never given to hiredis. */
static redisAsyncContext conn_stand_in;

static int conn_link_send(void *priv, redisCallbackFn *cb, void *cbpriv, int argc,
                          const char **argv, const size_t *lens)
{
    router *r = priv;
    if (!r->link) return REDIS_ERR;
    /* keyless steps in order too (send_step's split and ack): messages of one batch and the
     * next keep their order as on one connection (on another master while theirs is away) */
    return clink_command_ordered(r->link, cb, cbpriv, argc, argv, lens);
}

/* The connect sequence's sender on a cluster connection (the link counts the
 * replies). */
static int conn_link_setup_send(void *ctx, const char *what, int argc, const char **argv,
                                const size_t *lens)
{
    (void)what;
    return clink_conn_command(ctx, argc, argv, lens);
}

/* Each new connection of the link: its name and, on a master, every script. */
static void conn_link_handshake(clink *l, clink_conn *c, int sub, void *arg)
{
    router *r = arg;
    char name[320];
    (void)l;
    snprintf(name, sizeof name, "parley-router:%s:%s", r->cfg.id, sub ? "subscriber" : "commands");
    if (scripts_conn_setup(conn_link_setup_send, c, name, !sub) < 0)
        log_warn("redis cluster connection to %s: cannot queue its first commands",
                 clink_conn_addr(c));
}

/* One side of the link was lost: the slots go, as on one Redis. When the
 * subscriber stays up it leaves the channels of the slots it served (a
 * lease may pass to another router meanwhile); the anchor stays. */
static void conn_link_lost(router *r, const char *which, const char *why)
{
    r->healthy = 0;
    if (!r->outage_logged && !r->stopping) {
        log_warn("redis %s side lost (%s): dropping all slots until the link is back", which, why);
        r->outage_logged = 1;
    }
    for (unsigned i = 0; r->sub && i < PARLEY_SLOTS; i++) {
        char chan[KEYS_MAX];
        if (r->slot[i] == SLOT_FREE) continue;
        keys_fmt(chan, sizeof chan, CHAN_ROUTER, i);
        const char *argv[] = {"UNSUBSCRIBE", chan};
        redisAsyncCommandArgv(r->sub, NULL, NULL, 2, argv, NULL);
    }
    slots_on_down(r);
    if (r->stopping) router_exit(r);
}

static void conn_link_ready(clink *l, void *arg)
{
    router *r = arg;
    char desc[200];
    log_info("redis commands up: %s", clink_describe(l, desc, sizeof desc));
    r->cmd = &conn_stand_in;
    r->cmd_up = 1;
    r->cluster = 1;
    route_set_steps(r, 1); /* every script inside one slot */
    conn_maybe_ready(r);
}

static void conn_link_down(clink *l, void *arg)
{
    router *r = arg;
    char desc[200];
    r->cmd = NULL;
    r->cmd_up = 0;
    conn_link_lost(r, "command", clink_describe(l, desc, sizeof desc));
}

static void conn_link_sub_up(clink *l, void *arg)
{
    router *r = arg;
    r->sub = clink_subscriber_context(l);
    r->sub_up = r->sub != NULL;
    r->paused = 0; /* a new subscriber context reads from the start */
    log_info("redis subscriber connection up (%s)", clink_subscriber_addr(l));
    conn_maybe_ready(r);
}

static void conn_link_sub_down(clink *l, void *arg)
{
    router *r = arg;
    (void)l;
    r->sub = NULL; /* hiredis frees it */
    r->sub_up = 0;
    r->paused = 0;
    conn_link_lost(r, "subscriber", "connection lost");
}

static void conn_link_start(router *r)
{
    char err[256];
    const clink_hooks h = {.handshake = conn_link_handshake,
                           .any_up = conn_link_ready,
                           .all_down = conn_link_down,
                           .subscriber_up = conn_link_sub_up,
                           .subscriber_down = conn_link_sub_down,
                           .arg = r};
    if (r->link || r->stopping) return;
    r->link = clink_new(r->base, &r->url, &h, err, sizeof err);
    if (!r->link) {
        log_error("%s", err);
        router_exit(r);
        return;
    }
    clink_set_reply_timeout(r->link, (unsigned)r->cfg.reply_timeout);
    scripts_set_sender(conn_link_send, r);
}

int conn_command(router *r, redisCallbackFn *cb, void *priv, int argc, const char **argv,
                 const size_t *lens)
{
    if (r->link) return r->cmd_up ? conn_link_send(r, cb, priv, argc, argv, lens) : REDIS_ERR;
    if (!r->cmd) return REDIS_ERR;
    return redisAsyncCommandArgv(r->cmd, cb, priv, argc, argv, lens);
}

/* A command hiredis formatted ("*N\r\n$len\r\narg\r\n...") as argv. */
static int conn_link_formatted(router *r, redisCallbackFn *cb, void *priv, const char *cmd, int len)
{
    const char *p = cmd, *end = cmd + len;
    int argc = p < end && *p == '*' ? atoi(p + 1) : 0, rc = REDIS_ERR;
    const char **argv = argc > 0 ? malloc((size_t)argc * sizeof *argv) : NULL;
    size_t *lens = argc > 0 ? malloc((size_t)argc * sizeof *lens) : NULL;
    int i = 0;
    p = argv && lens ? memchr(p, '\n', (size_t)(end - p)) : NULL;
    for (; p && i < argc; i++) {
        p++; /* past '\n': "$len\r\n" */
        if (p >= end || *p != '$') break;
        long n = atol(p + 1);
        p = memchr(p, '\n', (size_t)(end - p));
        if (!p || n < 0 || n > end - p - 1) break;
        argv[i] = p + 1;
        lens[i] = (size_t)n;
        p += 1 + n + 1; /* the argument, "\r", then '\n' */
        if (p >= end || *p != '\n') break;
    }
    if (argc > 0 && i == argc) rc = conn_command(r, cb, priv, argc, argv, lens);
    free(argv);
    free(lens);
    return rc;
}

int conn_commandf(router *r, redisCallbackFn *cb, void *priv, const char *fmt, ...)
{
    va_list ap;
    int rc = REDIS_ERR;
    va_start(ap, fmt);
    if (!r->link) {
        if (r->cmd) rc = redisvAsyncCommand(r->cmd, cb, priv, fmt, ap);
    } else if (r->cmd_up) {
        char *cmd = NULL;
        int len = redisvFormatCommand(&cmd, fmt, ap);
        if (len > 0) rc = conn_link_formatted(r, cb, priv, cmd, len);
        redisFreeCommand(cmd);
    }
    va_end(ap);
    return rc;
}

void conn_start(router *r)
{
    if (r->url.cluster) {
        conn_link_start(r);
        return;
    }
    struct timeval tv = {CONN_HANDSHAKE_MS / 1000, (CONN_HANDSHAKE_MS % 1000) * 1000};
    if (r->stopping) return;
    if (!r->handshake_ev) r->handshake_ev = evtimer_new(r->base, conn_handshake_timeout, r);
    if (r->handshake_ev) evtimer_add(r->handshake_ev, &tv);
    if (!r->cmd) r->cmd = conn_open(r, "command");
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

void conn_free(router *r)
{
    if (!r->link) return;
    clink *l = r->link;
    r->link = NULL;
    r->cmd = r->sub = NULL;
    clink_free(l);
    scripts_set_sender(NULL, NULL);
}

void conn_close(router *r)
{
    if (r->link) {
        if (r->reconnect_ev) evtimer_del(r->reconnect_ev);
        if (r->handshake_ev) evtimer_del(r->handshake_ev);
        clink_stop(r->link);
        return;
    }
    if (r->reconnect_ev) evtimer_del(r->reconnect_ev);
    if (r->handshake_ev) evtimer_del(r->handshake_ev);
    if (r->cmd) redisAsyncDisconnect(r->cmd);
    if (r->sub) redisAsyncDisconnect(r->sub);
}
