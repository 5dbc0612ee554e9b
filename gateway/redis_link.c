/* redis_link.c - the gateway's two Redis connections (redis_link.h).
 *
 * Lifetimes: each connection's redisAsyncContext belongs to hiredis, which
 * frees it after the disconnect callback (or in redisAsyncFree); this file
 * only clears its pointer there. A dropped context is detached first
 * (pointer cleared before redisAsyncFree), so its disconnect callback finds
 * no connection of ours and does nothing.
 *
 * Cluster mode (a redis-cluster:// URL): both sides are one cluster link
 * (common/clink.h), made in rl_start and kept until rl_free (rl_drop_commands
 * makes a new one). The command side is the link's master connections (each
 * with the connect sequence above); every script step goes through it
 * (scripts_set_sender) and plain commands are routed by their first key; the
 * subscriber is the link's subscriber. The command side is "up" while any
 * master is (clink's any_up / all_down): a master lost takes its slots only
 * (their commands wait in the link, then fail; rl_keys_up tells the callers
 * that want to answer at once), the others go on. */
#include "redis_link.h"

#include <hiredis/adapters/libevent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

#include "clink.h"
#include "log.h"
#include "metrics.h"
#include "scripts.h"

#define RL_BACKOFF_MIN  100 /* ms */
#define RL_BACKOFF_MAX  2000
#define RL_HANDSHAKE_MS 5000 /* connect + CLIENT SETNAME + script loads, at most */

typedef struct rl_conn {
    redisAsyncContext *ac; /* NULL while down */
    int connected;         /* the connect callback said OK */
    int handshake;         /* replies of the connect sequence still awaited */
    int up;                /* connected and the whole sequence accepted: usable */
    uint32_t backoff_ms;   /* reset only once up */
    struct event *retry;
    struct event *deadline; /* the connect sequence's */
    const char *role;       /* "commands" / "subscriber" */
} rl_conn;

static struct {
    struct event_base *base;
    redisurl url;
    char name[128];
    rl_hooks hooks;
    rl_conn cmd, sub;
    int sub_confirmed; /* rl_subscriber_confirmed since the subscriber connected */
    int stopping;
    /* cluster mode: the link, whether it serves (its any_up hook came, not
     * all_down since), commands given to it and not answered, answers so far */
    clink *link;
    int link_ready; /* some master up (clink any_up, all_down) */
    unsigned reply_ms;
    int reply_ms_set; /* rl_set_reply_timeout came: else clink's default */
    long long link_pending;
    unsigned long long link_answered;
} rl;

/* What rl_commands() gives in cluster mode while the link is ready: a
 * stand-in that scripts.h only tests for NULL (every step goes through the
 * sender); never given to hiredis. */
static redisAsyncContext rl_stand_in;

static void rl_connect(rl_conn *c);

static void rl_hook(void (*fn)(void))
{
    if (fn) fn();
}

int rl_ok(void)
{
    if (rl.link) return rl.link_ready && clink_subscriber_up(rl.link) && rl.sub_confirmed;
    return rl.cmd.up && rl.sub.up && rl.sub_confirmed;
}

void rl_subscriber_confirmed(void)
{
    rl.sub_confirmed = 1;
    rl_hook(rl.hooks.up);
}

int rl_subscriber_up(void)
{
    if (rl.link) return clink_subscriber_up(rl.link);
    return rl.sub.up;
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

int rl_pubsub_parse(const redisReply *r, rl_pubsub *out)
{
    if (!r || r->type != REDIS_REPLY_ARRAY || r->elements < 3) return -1;
    const redisReply *type = r->element[0], *chan = r->element[1], *data = r->element[2];
    if (type->type != REDIS_REPLY_STRING || chan->type != REDIS_REPLY_STRING) return -1;
    out->type = type->str;
    out->type_len = type->len;
    out->chan = chan->str;
    out->chan_len = chan->len;
    out->data = NULL;
    out->data_len = 0;
    if (data->type == REDIS_REPLY_STRING) {
        out->data = data->str;
        out->data_len = data->len;
    }
    return 0;
}

int rl_pubsub_is(const rl_pubsub *p, const char *t)
{
    size_t n = strlen(t);
    return p->type_len == n && memcmp(p->type, t, n) == 0;
}

static rl_conn *rl_of(const redisAsyncContext *ac)
{
    if (ac && rl.cmd.ac == ac) return &rl.cmd;
    if (ac && rl.sub.ac == ac) return &rl.sub;
    return NULL;
}

static void rl_retry_cb(evutil_socket_t fd, short what, void *arg)
{
    if (!rl.stopping) rl_connect(arg);
}

static void rl_schedule(rl_conn *c)
{
    if (rl.stopping) return;
    struct timeval tv = {c->backoff_ms / 1000, (c->backoff_ms % 1000) * 1000};
    evtimer_add(c->retry, &tv);
    c->backoff_ms = c->backoff_ms * 2 > RL_BACKOFF_MAX ? RL_BACKOFF_MAX : c->backoff_ms * 2;
}

/* Drops c and reconnects after the backoff (which grows until a connection
 * is up): for a refused or unanswered connect sequence, and for the
 * watchdog (rl_drop_commands, which runs the hook first). No hook runs here.
 * Safe inside one of c's callbacks (hiredis frees it after). */
static void rl_abort(rl_conn *c)
{
    redisAsyncContext *ac = c->ac;
    c->ac = NULL; /* detached: its callbacks and disconnect find nothing of ours */
    c->connected = c->up = c->handshake = 0;
    evtimer_del(c->deadline);
    if (ac) redisAsyncFree(ac);
    rl_schedule(c);
}

/* The connection is usable: both the connect callback and every reply of
 * the connect sequence came. */
static void rl_maybe_up(rl_conn *c)
{
    if (c->up || !c->connected || c->handshake > 0) return;
    evtimer_del(c->deadline);
    c->up = 1;
    c->backoff_ms = RL_BACKOFF_MIN;
    log_info("redis %s connection up", c->role);
    if (c == &rl.sub) {
        rl_hook(rl.hooks.subscriber_up);
    } else {
        rl_hook(rl.hooks.commands_up);
        rl_hook(rl.hooks.up);
    }
}

/* A reply of the connect sequence (CLIENT SETNAME, a script load). An error
 * (-LOADING while Redis loads its data, a refused load) drops the
 * connection and tries again after the backoff: a connection whose scripts
 * are not loaded is not used (a later NOSCRIPT retry could reorder). */
static void rl_handshake_cb(redisAsyncContext *ac, void *r, void *priv)
{
    redisReply *rep = r;
    rl_conn *c = rl_of(ac);
    if (!c || !rep) return; /* an old context, or lost: its disconnect reconnects */
    if (rep->type == REDIS_REPLY_ERROR) {
        log_warn("redis %s connection: %s refused: %s; retrying in %u ms", c->role,
                 (const char *)priv, rep->str, c->backoff_ms);
        rl_abort(c);
        return;
    }
    c->handshake--;
    rl_maybe_up(c);
}

static void rl_deadline_cb(evutil_socket_t fd, short what, void *arg)
{
    rl_conn *c = arg;
    if (c->up || !c->ac) return;
    log_warn("redis %s connection: no answer within %d ms; retrying in %u ms", c->role,
             RL_HANDSHAKE_MS, c->backoff_ms);
    rl_abort(c);
}

static void rl_on_connect(const redisAsyncContext *cac, int status)
{
    rl_conn *c = rl_of(cac);
    if (!c) return;
    if (status != REDIS_OK) {
        log_warn("redis %s connection failed: %s", c->role, cac->errstr);
        c->ac = NULL; /* hiredis frees it */
        c->handshake = 0;
        evtimer_del(c->deadline);
        rl_schedule(c);
        return;
    }
    c->connected = 1;
    rl_maybe_up(c);
}

static void rl_on_disconnect(const redisAsyncContext *cac, int status)
{
    rl_conn *c = rl_of(cac);
    if (!c) return;
    int was_up = c->up;
    c->ac = NULL;
    c->up = c->connected = c->handshake = 0;
    evtimer_del(c->deadline);
    if (c == &rl.sub)
        rl.sub_confirmed = 0;
    else if (was_up)
        rl_hook(rl.hooks.commands_down);
    if (rl.stopping) return;
    metrics_inc(METRIC_REDIS_RECONNECTS);
    log_warn("redis %s connection lost%s%s", c->role, cac->errstr[0] ? ": " : "", cac->errstr);
    rl_schedule(c);
}

/* The connect sequence's sender (scripts_conn_setup) on one Redis: the
 * replies go to rl_handshake_cb, which names the command by `what`. */
static int rl_setup_send(void *ctx, const char *what, int argc, const char **argv,
                         const size_t *lens)
{
    return redisAsyncCommandArgv(ctx, rl_handshake_cb, (void *)what, argc, argv, lens);
}

static void rl_connect(rl_conn *c)
{
    char err[256];
    redisAsyncContext *ac = redisurl_async_connect(&rl.url, err, sizeof err);
    if (!ac) {
        log_warn("%s", err);
        rl_schedule(c);
        return;
    }
    c->ac = ac;
    redisLibeventAttach(ac, rl.base);
    /* a Redis host that vanishes without a reset is noticed in ~30 s, also on
     * the subscriber, which has no heartbeat of its own */
    if (!rl.url.unix_socket) redisEnableKeepAlive(&ac->c); /* TCP only */
    redisAsyncSetConnectCallback(ac, rl_on_connect);
    redisAsyncSetDisconnectCallback(ac, rl_on_disconnect);
    /* the connect sequence: the prelude (AUTH/SELECT; it disconnects on an
     * error), the name, and on the command connection every script, loaded
     * first so that later calls never meet NOSCRIPT */
    redisurl_async_prelude(ac, &rl.url);
    char name[192];
    snprintf(name, sizeof name, "%s:%s", rl.name, c->role);
    c->connected = c->up = c->handshake = 0;
    int n = scripts_conn_setup(rl_setup_send, ac, name, c == &rl.cmd);
    c->handshake = n > 0 ? n : 0;
    struct timeval tv = {RL_HANDSHAKE_MS / 1000, (RL_HANDSHAKE_MS % 1000) * 1000};
    evtimer_add(c->deadline, &tv);
    if (n < 0) rl_abort(c);
}

/* ---- cluster mode ---- */

/* A command given to the link: its owner's callback, counted for
 * rl_commands_progressed. */
typedef struct rl_cmd {
    redisCallbackFn *cb;
    void *priv;
} rl_cmd;

static void rl_link_cb(redisAsyncContext *ac, void *r, void *priv)
{
    rl_cmd *w = priv;
    rl.link_pending--;
    if (ac || !r) rl.link_answered++; /* a reply or a lost connection; not a give-up */
    if (w->cb) w->cb(ac, r, w->priv);
    free(w);
}

/* The sender of every script step and of rl_command: routed by key. */
static int rl_link_send(void *unused, redisCallbackFn *cb, void *priv, int argc, const char **argv,
                        const size_t *lens)
{
    (void)unused;
    rl_cmd *w = rl.link ? malloc(sizeof *w) : NULL;
    if (!w) return REDIS_ERR;
    w->cb = cb;
    w->priv = priv;
    /* keyless commands in order too (a send's steps, the routing channels' PUBLISHes), on
     * another master while theirs is away */
    if (clink_command_ordered(rl.link, rl_link_cb, w, argc, argv, lens) != REDIS_OK) {
        free(w);
        return REDIS_ERR;
    }
    rl.link_pending++;
    return REDIS_OK;
}

/* The connect sequence's sender on a cluster connection (the link counts the
 * replies). */
static int rl_link_setup_send(void *ctx, const char *what, int argc, const char **argv,
                              const size_t *lens)
{
    (void)what;
    return clink_conn_command(ctx, argc, argv, lens);
}

/* Each new connection of the link: its name and, on a master, every script
 * (the connect sequence of one Redis, per master). */
static void rl_link_handshake(clink *l, clink_conn *c, int sub, void *arg)
{
    (void)l;
    (void)arg;
    char name[192];
    snprintf(name, sizeof name, "%s:%s", rl.name, sub ? "subscriber" : "commands");
    if (scripts_conn_setup(rl_link_setup_send, c, name, !sub) < 0)
        log_warn("redis cluster connection to %s: cannot queue its first commands",
                 clink_conn_addr(c));
}

static void rl_link_ready(clink *l, void *arg)
{
    char desc[200];
    (void)arg;
    rl.link_ready = 1;
    log_info("redis commands up: %s", clink_describe(l, desc, sizeof desc));
    rl_hook(rl.hooks.commands_up);
    rl_hook(rl.hooks.up);
}

static void rl_link_down(clink *l, void *arg)
{
    char desc[200];
    (void)arg;
    rl.link_ready = 0;
    metrics_inc(METRIC_REDIS_RECONNECTS);
    log_warn("redis commands down: %s", clink_describe(l, desc, sizeof desc));
    rl_hook(rl.hooks.commands_down);
}

static void rl_link_sub_up(clink *l, void *arg)
{
    (void)arg;
    rl.sub_confirmed = 0;
    log_info("redis subscriber connection up (%s)", clink_subscriber_addr(l));
    rl_hook(rl.hooks.subscriber_up);
}

static void rl_link_sub_down(clink *l, void *arg)
{
    (void)l;
    (void)arg;
    rl.sub_confirmed = 0;
    metrics_inc(METRIC_REDIS_RECONNECTS);
}

static int rl_link_open(void)
{
    char err[256];
    const clink_hooks h = {.handshake = rl_link_handshake,
                           .any_up = rl_link_ready,
                           .all_down = rl_link_down,
                           .subscriber_up = rl_link_sub_up,
                           .subscriber_down = rl_link_sub_down};
    rl.link = clink_new(rl.base, &rl.url, &h, err, sizeof err);
    if (!rl.link) {
        log_error("%s", err);
        return -1;
    }
    rl.link_ready = 0;
    rl.link_pending = 0;
    if (rl.reply_ms_set) clink_set_reply_timeout(rl.link, rl.reply_ms);
    return 0;
}

void rl_set_reply_timeout(unsigned ms)
{
    rl.reply_ms = ms;
    rl.reply_ms_set = 1;
    if (rl.link) clink_set_reply_timeout(rl.link, ms);
}

int rl_keys_up(int n, const char *const *keys)
{
    if (!rl.link) return rl.cmd.up;
    if (!rl.link_ready) return 0;
    for (int i = 0; i < n; i++)
        if (!clink_key_up(rl.link, keys[i], strlen(keys[i]))) return 0;
    return 1;
}

int rl_start(struct event_base *base, const redisurl *url, const char *name, const rl_hooks *hooks)
{
    rl.base = base;
    rl.url = *url;
    snprintf(rl.name, sizeof rl.name, "%s", name);
    rl.hooks = *hooks;
    if (url->cluster) {
        scripts_set_sender(rl_link_send, NULL);
        return rl_link_open();
    }
    rl.cmd.role = "commands";
    rl.sub.role = "subscriber";
    rl.cmd.backoff_ms = rl.sub.backoff_ms = RL_BACKOFF_MIN;
    rl.cmd.retry = evtimer_new(base, rl_retry_cb, &rl.cmd);
    rl.sub.retry = evtimer_new(base, rl_retry_cb, &rl.sub);
    rl.cmd.deadline = evtimer_new(base, rl_deadline_cb, &rl.cmd);
    rl.sub.deadline = evtimer_new(base, rl_deadline_cb, &rl.sub);
    if (!rl.cmd.retry || !rl.sub.retry || !rl.cmd.deadline || !rl.sub.deadline) return -1;
    rl_connect(&rl.cmd);
    rl_connect(&rl.sub);
    return 0;
}

void rl_stop(void)
{
    rl.stopping = 1;
    if (rl.link) clink_stop(rl.link);
    if (rl.cmd.retry) evtimer_del(rl.cmd.retry);
    if (rl.sub.retry) evtimer_del(rl.sub.retry);
    if (rl.cmd.deadline) evtimer_del(rl.cmd.deadline);
    if (rl.sub.deadline) evtimer_del(rl.sub.deadline);
    if (rl.cmd.ac) redisAsyncDisconnect(rl.cmd.ac);
    if (rl.sub.ac) redisAsyncDisconnect(rl.sub.ac);
}

void rl_free(void)
{
    rl.stopping = 1;
    if (rl.link) {
        clink *l = rl.link;
        rl.link = NULL; /* callbacks run by the free find the link gone */
        clink_free(l);
        scripts_set_sender(NULL, NULL);
    }
    if (rl.cmd.ac) redisAsyncFree(rl.cmd.ac);
    if (rl.sub.ac) redisAsyncFree(rl.sub.ac);
    if (rl.cmd.retry) event_free(rl.cmd.retry);
    if (rl.sub.retry) event_free(rl.sub.retry);
    if (rl.cmd.deadline) event_free(rl.cmd.deadline);
    if (rl.sub.deadline) event_free(rl.sub.deadline);
    rl.cmd.retry = rl.sub.retry = rl.cmd.deadline = rl.sub.deadline = NULL;
}

int rl_cluster(void)
{
    return rl.url.cluster;
}

redisAsyncContext *rl_commands(void)
{
    if (rl.link) return rl.link_ready ? &rl_stand_in : NULL;
    return rl.cmd.up ? rl.cmd.ac : NULL;
}

int rl_command(redisCallbackFn *cb, void *priv, int argc, const char **argv, const size_t *lens)
{
    if (rl.link)
        return rl.link_ready && rl_link_send(NULL, cb, priv, argc, argv, lens) == REDIS_OK ? 0 : -1;
    if (!rl.cmd.up || !rl.cmd.ac) return -1;
    return redisAsyncCommandArgv(rl.cmd.ac, cb, priv, argc, argv, lens) == REDIS_OK ? 0 : -1;
}

int rl_commands_progressed(void)
{
    static const redisAsyncContext *seen_ac;
    static const redisCallback *seen_head;
    static unsigned long long seen_answered;
    if (rl.link && (!rl.reply_ms_set || rl.reply_ms > 0))
        return 1;  /* the link's reply timeout watches each master (a hung one alone is dropped) */
    if (rl.link) { /* any answer from any master counts */
        int moved = rl.link_pending <= 0 || rl.link_answered != seen_answered;
        seen_answered = rl.link_answered;
        return moved;
    }
    const redisAsyncContext *ac = rl.cmd.up ? rl.cmd.ac : NULL;
    const redisCallback *head = ac ? ac->replies.head : NULL;
    int moved = !head || ac != seen_ac || head != seen_head;
    /* the same head again after the queue emptied and refilled (an address
     * reused) also means replies came: a false "stuck" costs one more period */
    seen_ac = ac;
    seen_head = head;
    int unread = 0;
    if (!moved && ac && ac->c.fd >= 0 && ioctl(ac->c.fd, FIONREAD, &unread) == 0 && unread > 0)
        moved = 1; /* answered, not read yet: the loop is busy (e.g. after a Redis stall) */
    return moved;
}

void rl_drop_commands(void)
{
    if (rl.link) { /* a new link: every pending callback gets NULL, the subscriber comes again */
        clink *l = rl.link;
        int was_ready = rl.link_ready;
        rl.link = NULL;
        rl.link_ready = 0;
        rl.sub_confirmed = 0;
        metrics_inc(METRIC_REDIS_RECONNECTS);
        if (was_ready) rl_hook(rl.hooks.commands_down);
        clink_free(l);
        if (!rl.stopping && rl_link_open() < 0)
            log_error("redis cluster link: cannot make it again");
        return;
    }
    if (!rl.cmd.ac) return;
    metrics_inc(METRIC_REDIS_RECONNECTS);
    if (rl.cmd.up) rl_hook(rl.hooks.commands_down);
    rl_abort(&rl.cmd); /* every pending callback gets NULL, then a reconnect */
}

void rl_subscribe(const char *chan, redisCallbackFn *cb, void *priv)
{
    if (rl.link) {
        clink_subscribe(rl.link, chan, cb, priv); /* not up: issued again at subscriber_up */
        return;
    }
    if (!rl.sub.up) return; /* issued again at reconnect */
    const char *argv[] = {"SUBSCRIBE", chan};
    redisAsyncCommandArgv(rl.sub.ac, cb, priv, 2, argv, NULL);
}

void rl_unsubscribe(const char *chan)
{
    if (rl.link) {
        clink_unsubscribe(rl.link, chan);
        return;
    }
    if (!rl.sub.up) return;
    /* the confirmation goes to the channel's own callback (hiredis) */
    const char *argv[] = {"UNSUBSCRIBE", chan};
    redisAsyncCommandArgv(rl.sub.ac, NULL, NULL, 2, argv, NULL);
}
