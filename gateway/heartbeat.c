/* heartbeat.c - the alive key, the lapse check and the watchdog (heartbeat.h). */
#include "heartbeat.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "keys.h"
#include "log.h"
#include "metrics.h"
#include "proto.h"
#include "redis_link.h"
#include "startup.h"
#include "walltime.h"

static struct {
    char gwid[PROTO_GWID_MAX + 1];
    long long ttl;
    hb_hooks hooks;
    struct event *ev;
    uint64_t stuck_ms; /* since when the command connection made no progress, 0: it did */
    int known;         /* a beat was answered on this command connection */
    int again;         /* the last beat ran the lapsed hook: the next one runs it once more */
    int stopping;
    long long used_memory, maxmemory; /* INFO memory at the last beat; -1 unknown */
} hb = {.used_memory = -1, .maxmemory = -1};

void hb_redis_memory(long long *used, long long *max)
{
    *used = hb.used_memory;
    *max = hb.maxmemory;
}

/* A "name:value" line of an INFO reply, or -1. */
static long long hb_info_field(const char *info, const char *name)
{
    size_t n = strlen(name);
    for (const char *p = info; (p = strstr(p, name)); p += n)
        if ((p == info || p[-1] == '\n') && p[n] == ':') return strtoll(p + n + 1, NULL, 10);
    return -1;
}

static void hb_info_cb(redisAsyncContext *ac, void *r, void *priv)
{
    redisReply *rep = r;
    if (!rep || rep->type != REDIS_REPLY_STRING) return;
    hb.used_memory = hb_info_field(rep->str, "used_memory");
    hb.maxmemory = hb_info_field(rep->str, "maxmemory");
}

void hb_reset(void)
{
    hb.stuck_ms = 0;
    hb.known = hb.again = 0;
}

/* One beat's SET and SADD, which may be answered in either order (on a
 * cluster they go to different masters): the beat ends with the second. */
typedef struct hb_beat {
    int got;    /* replies so far */
    int lapsed; /* the SET found no alive key */
    int added;  /* the SADD's reply: 1 added, 0 there already, -1 none */
} hb_beat;

static void hb_log_error(const redisReply *rep)
{
    if (rep && rep->type == REDIS_REPLY_ERROR) log_warn("redis: %s", rep->str);
}

/* The second reply of a beat ends it. When beats on this connection were
 * answered before and this one found the alive key gone or the gateway out
 * of parley:gateways, the beats came too late and a router may have reaped
 * the gateway. A reaper's close meeting the new alive key does nothing, so
 * the re-open covers what it closed before; but a close is a chain of steps
 * (docs/internals.md "Scripts in steps") whose alive check may have passed
 * before this beat while its later steps land after the re-open: the next
 * beat re-opens every session once more (a re-open of a session in its sets
 * changes nothing). */
static void hb_beat_end(hb_beat *b)
{
    if (++b->got < 2) return;
    int added = b->added, lapsed = b->lapsed;
    free(b);
    if (added < 0) return; /* the SADD failed or was lost */
    if (hb.known && (lapsed || added == 1)) {
        metrics_inc(METRIC_HEARTBEAT_LAPSES);
        log_warn("gateway %s: a heartbeat came after the alive key expired (routers may have "
                 "reaped it): opening its sessions again",
                 hb.gwid);
        if (hb.hooks.lapsed) hb.hooks.lapsed();
        hb.again = 1;
    } else if (hb.again) {
        hb.again = 0;
        log_info("gateway %s: opening its sessions once more after the lapse", hb.gwid);
        if (hb.hooks.lapsed) hb.hooks.lapsed();
    }
    hb.known = 1;
}

static void hb_set_cb(redisAsyncContext *ac, void *r, void *priv)
{
    redisReply *rep = r;
    hb_beat *b = priv;
    if (rep && rep->type == REDIS_REPLY_NIL) b->lapsed = 1; /* SET ... GET: no key before */
    hb_log_error(rep);
    hb_beat_end(b);
}

static void hb_sadd_cb(redisAsyncContext *ac, void *r, void *priv)
{
    redisReply *rep = r;
    hb_beat *b = priv;
    hb_log_error(rep);
    if (rep && rep->type == REDIS_REPLY_INTEGER) b->added = rep->integer == 1;
    hb_beat_end(b);
}

void hb_beat_now(void)
{
    if (!rl_commands() || !startup_ready() || hb.stopping) return;
    char k[KEYS_MAX], ttl[24];
    keys_fmt(k, sizeof k, KEY_GW_ALIVE, hb.gwid);
    snprintf(ttl, sizeof ttl, "%lld", hb.ttl);
    const char *a1[] = {"SET", k, "1", "PX", ttl, "GET"};
    const char *a2[] = {"SADD", KEY_GATEWAYS, hb.gwid};
    hb_beat *b = calloc(1, sizeof *b);
    if (!b) return;
    b->added = -1;
    if (rl_command(hb_set_cb, b, 6, a1, NULL) < 0) b->got++; /* not sent: no reply comes */
    if (rl_command(hb_sadd_cb, b, 3, a2, NULL) < 0) b->got++;
    if (b->got == 2) free(b);
    const char *a3[] = {"INFO", "memory"}; /* for /metrics: a few µs of Redis per beat */
    rl_command(hb_info_cb, NULL, 2, a3, NULL);
}

/* A Redis that stops answering (stopped process, dead host without a reset)
 * leaves the TCP connection open: when the command connection makes no
 * progress for a whole TTL (commands wait and no reply comes: see
 * rl_commands_progressed), it is dropped (every pending callback gets NULL,
 * so clients get `unavailable`) and reconnected; /healthz says 503 between.
 * Progress, not the age of one beat: a Redis that is busy (a backlog after a
 * stall, a slow script) answers other commands, and a reply that is in but
 * not read yet (this loop was busy) is an answer too. Dropping a connection
 * that answers would fail every command in flight and re-open every session
 * for nothing, and made a reap of a live gateway race with its re-open. */
static void hb_watchdog(void)
{
    if (!rl_commands()) return;
    uint64_t now = walltime_ms();
    if (rl_commands_progressed()) {
        hb.stuck_ms = 0;
        return;
    }
    if (!hb.stuck_ms) hb.stuck_ms = now;
    if (now - hb.stuck_ms < (uint64_t)hb.ttl) return;
    log_warn("redis commands connection: no reply for %lld ms, reconnecting", hb.ttl);
    rl_drop_commands(); /* its commands_down hook resets this module */
}

static void hb_cb(evutil_socket_t fd, short what, void *arg)
{
    hb_watchdog();
    hb_beat_now();
    if (hb.hooks.tick) hb.hooks.tick();
}

int hb_start(struct event_base *base, const char *gwid, long long ttl_ms, const hb_hooks *hooks)
{
    snprintf(hb.gwid, sizeof hb.gwid, "%s", gwid);
    hb.ttl = ttl_ms;
    hb.hooks = *hooks;
    hb.ev = event_new(base, -1, EV_PERSIST, hb_cb, NULL);
    if (!hb.ev) return -1;
    long long every = ttl_ms / 3;
    struct timeval tv = {every / 1000, (every % 1000) * 1000};
    return evtimer_add(hb.ev, &tv);
}

void hb_stop(void)
{
    hb.stopping = 1;
    if (hb.ev) evtimer_del(hb.ev);
}

void hb_free(void)
{
    if (hb.ev) event_free(hb.ev);
    hb.ev = NULL;
}
