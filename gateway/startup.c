/* startup.c - the duplicate-id check and the start-up cleanup (startup.h).
 *
 * Duplicate id: when parley:gw:ID:alive exists, look again a beat period
 * later. A live gateway beats every TTL/3, so between the two looks its key
 * gained at least TTL/3 back over what the time between them took off; a key
 * left by a dead process just ages. The time between the looks is measured
 * (CLOCK_MONOTONIC, between the two replies), not taken from the timer, which
 * libevent may fire early from a loop turn's cached time; a TTL more than
 * TTL/6 above "first TTL - that time" was refreshed by someone else, and this
 * process stops (two processes on one id would close each other's sessions).
 * Otherwise the cleanup goes on: session_close for every member of
 * parley:gw:ID:sessions. (The margin was 50 ms of the timer's wait: under
 * ASan a restarted gateway once took its own dead predecessor's key for a
 * live one.)
 *
 * Attempts: the whole sequence is one attempt, numbered; every callback
 * carries its attempt's number and an old one's replies are ignored. Any
 * reply that is an error (-LOADING, a script error) or NULL (the connection
 * went) ends the attempt, and the next one starts on a timer with backoff
 * (100 ms doubling to 2 s), or at once on a new command connection. A step
 * left unanswered for the heartbeat TTL (no progress) ends the attempt too
 * and drops the command connection, which reconnects: nothing waits forever
 * on one reply. Every step is safe to repeat (session_close is idempotent;
 * our own heartbeat starts only once ready). */
#include "startup.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "keys.h"
#include "log.h"
#include "proto.h"
#include "redis_link.h"
#include "scripts.h"

#define STARTUP_BACKOFF_MIN 100 /* ms */
#define STARTUP_BACKOFF_MAX 2000

static struct {
    char gwid[PROTO_GWID_MAX + 1];
    long long ttl;
    startup_hooks hooks;
    struct event *dup_timer, *retry_timer, *deadline;
    long long dup_pttl, dup_wait;
    long long dup_at;  /* CLOCK_MONOTONIC ms of the first look's reply */
    uintptr_t attempt; /* the current attempt's number */
    int busy;          /* an attempt is under way */
    int closing;       /* its closes not answered yet */
    long long backoff_ms;
    int ready;
} st;

int startup_ready(void)
{
    return st.ready;
}

static void *startup_priv(void)
{
    return (void *)st.attempt;
}

static int startup_current(void *priv)
{
    return st.busy && (uintptr_t)priv == st.attempt;
}

static long long startup_mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void startup_timer(struct event *ev, long long ms)
{
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    evtimer_add(ev, &tv);
}

/* A reply is awaited: no progress within the TTL ends the attempt. */
static void startup_expect(void)
{
    startup_timer(st.deadline, st.ttl);
}

/* What went wrong with a reply, for the log. */
static const char *startup_why(const redisReply *rep)
{
    if (!rep) return "connection lost";
    return rep->type == REDIS_REPLY_ERROR ? rep->str : "unexpected reply";
}

/* Ends the attempt; the next starts after the backoff (or on commands_up). */
static void startup_fail(const char *step, const char *why)
{
    if (!st.busy) return;
    st.busy = 0;
    st.attempt++;
    evtimer_del(st.dup_timer);
    evtimer_del(st.deadline);
    log_warn("gateway %s start-up: %s: %s; retrying in %lld ms", st.gwid, step, why, st.backoff_ms);
    startup_timer(st.retry_timer, st.backoff_ms);
    st.backoff_ms =
        st.backoff_ms * 2 > STARTUP_BACKOFF_MAX ? STARTUP_BACKOFF_MAX : st.backoff_ms * 2;
}

/* One close less to wait for; the last one makes the gateway ready. */
static void startup_closed(void)
{
    if (--st.closing > 0) return;
    st.busy = 0;
    st.ready = 1;
    evtimer_del(st.deadline);
    log_info("gateway %s ready", st.gwid);
    if (st.hooks.ready) st.hooks.ready();
}

static void startup_close_cb(redisAsyncContext *ac, void *r, void *priv)
{
    redisReply *rep = r;
    if (!startup_current(priv)) return;
    if (!rep || rep->type == REDIS_REPLY_ERROR) {
        startup_fail("session_close", startup_why(rep));
        return;
    }
    startup_expect(); /* progress */
    startup_closed();
}

static void startup_sessions_cb(redisAsyncContext *ac, void *r, void *priv)
{
    redisReply *rep = r;
    if (!startup_current(priv)) return;
    if (!rep || rep->type != REDIS_REPLY_ARRAY) {
        startup_fail("SMEMBERS of its sessions", startup_why(rep));
        return;
    }
    st.closing = 1; /* held until all closes are queued */
    size_t n = 0;
    for (size_t i = 0; i < rep->elements; i++) {
        redisReply *e = rep->element[i];
        if (e->type != REDIS_REPLY_STRING) continue;
        char user[PROTO_NAME_MAX + 1], member[PROTO_NAME_MAX + 24], sessid[sizeof st.gwid + 24];
        if (e->len >= sizeof member ||
            keys_session_of_member(e->str, e->len, st.gwid, user, sessid, sizeof sessid) < 0)
            continue;
        memcpy(member, e->str, e->len);
        member[e->len] = '\0';
        if (scripts_session_close(ac, startup_close_cb, priv, user, sessid, member, st.gwid, 0) !=
            REDIS_OK) {
            startup_fail("session_close", "not queued");
            return;
        }
        st.closing++;
        n++;
    }
    if (n) log_info("closing %zu session(s) left by a previous gateway %s", n, st.gwid);
    startup_closed(); /* releases the hold */
}

static void startup_cleanup(void)
{
    char k[KEYS_MAX];
    keys_fmt(k, sizeof k, KEY_GW_SESSIONS, st.gwid);
    const char *argv[] = {"SMEMBERS", k};
    if (rl_command(startup_sessions_cb, startup_priv(), 2, argv, NULL) < 0)
        startup_fail("SMEMBERS of its sessions", "command connection down");
    else
        startup_expect();
}

static void startup_dup_second_cb(redisAsyncContext *ac, void *r, void *priv)
{
    long long p2;
    if (!startup_current(priv)) return;
    if (rl_reply_int(r, &p2) < 0) {
        startup_fail("PTTL of its alive key", startup_why(r));
        return;
    }
    /* unrefreshed, the TTL drops by the time between the looks; beats put at
     * least TTL/3 of it back */
    long long waited = startup_mono_ms() - st.dup_at;
    if (p2 > st.dup_pttl - waited + st.ttl / 6) {
        log_error("gateway id %s is in use by a running gateway (its heartbeat is being "
                  "refreshed): give this one another --id",
                  st.gwid);
        st.busy = 0;
        st.attempt++;
        evtimer_del(st.deadline);
        if (st.hooks.fatal) st.hooks.fatal();
        return;
    }
    startup_cleanup();
}

/* PTTL of our alive key, answered to cb (a reply is then awaited), or the
 * attempt fails when the command connection is down. */
static void startup_pttl(redisCallbackFn *cb)
{
    char k[KEYS_MAX];
    keys_fmt(k, sizeof k, KEY_GW_ALIVE, st.gwid);
    const char *argv[] = {"PTTL", k};
    if (rl_command(cb, startup_priv(), 2, argv, NULL) < 0)
        startup_fail("PTTL of its alive key", "command connection down");
    else
        startup_expect();
}

static void startup_dup_timer_cb(evutil_socket_t fd, short what, void *arg)
{
    if (!st.busy) return;
    long long left = st.dup_wait - (startup_mono_ms() - st.dup_at);
    if (left > 0) { /* fired early (a loop turn's cached time): a beat may not have come yet */
        startup_timer(st.dup_timer, left);
        return;
    }
    startup_pttl(startup_dup_second_cb);
}

static void startup_dup_first_cb(redisAsyncContext *ac, void *r, void *priv)
{
    long long p1;
    if (!startup_current(priv)) return;
    if (rl_reply_int(r, &p1) < 0) {
        startup_fail("PTTL of its alive key", startup_why(r));
        return;
    }
    if (p1 < 0) { /* no key (-2) or no TTL (-1): nobody beats for this id */
        startup_cleanup();
        return;
    }
    evtimer_del(st.deadline); /* nothing awaited while waiting */
    st.dup_pttl = p1;
    st.dup_at = startup_mono_ms();
    st.dup_wait = st.ttl / 3 + 100;
    startup_timer(st.dup_timer, st.dup_wait);
}

/* Starts an attempt unless one runs or it is done. While the command
 * connection is down, its commands_up (redis_link always reconnects) will. */
static void startup_begin(void)
{
    if (st.ready || st.busy || !rl_commands()) return;
    evtimer_del(st.retry_timer);
    st.busy = 1;
    st.attempt++;
    startup_pttl(startup_dup_first_cb);
}

static void startup_retry_cb(evutil_socket_t fd, short what, void *arg)
{
    startup_begin();
}

/* Nothing answered for the TTL: the command connection is stuck; dropping
 * it gives every pending callback NULL and reconnects (commands_up then
 * starts the next attempt). */
static void startup_deadline_cb(evutil_socket_t fd, short what, void *arg)
{
    if (!st.busy) return;
    char why[64];
    snprintf(why, sizeof why, "no answer for %lld ms, reconnecting", st.ttl);
    startup_fail("redis", why);
    rl_drop_commands();
}

void startup_on_commands_up(void)
{
    startup_begin();
}

int startup_init(struct event_base *base, const char *gwid, long long heartbeat_ttl_ms,
                 const startup_hooks *hooks)
{
    snprintf(st.gwid, sizeof st.gwid, "%s", gwid);
    st.ttl = heartbeat_ttl_ms;
    st.hooks = *hooks;
    st.backoff_ms = STARTUP_BACKOFF_MIN;
    st.dup_timer = evtimer_new(base, startup_dup_timer_cb, NULL);
    st.retry_timer = evtimer_new(base, startup_retry_cb, NULL);
    st.deadline = evtimer_new(base, startup_deadline_cb, NULL);
    return st.dup_timer && st.retry_timer && st.deadline ? 0 : -1;
}

void startup_free(void)
{
    if (st.dup_timer) event_free(st.dup_timer);
    if (st.retry_timer) event_free(st.retry_timer);
    if (st.deadline) event_free(st.deadline);
    st.dup_timer = st.retry_timer = st.deadline = NULL;
}
