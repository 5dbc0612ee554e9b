/* startup.c - the duplicate-id check and the start-up cleanup (startup.h).
 *
 * Duplicate id: when parley:gw:ID:alive exists, look again a beat period
 * later; a TTL that dropped by less than the wait was refreshed by someone
 * else, and this process stops (two processes on one id would close each
 * other's sessions). A key left by a dead process just ages, and the
 * cleanup goes on: session_close for every member of parley:gw:ID:sessions. */
#define _GNU_SOURCE
#include "startup.h"

#include <stdio.h>
#include <string.h>

#include "keys.h"
#include "log.h"
#include "proto.h"
#include "redis_link.h"
#include "scripts.h"

static struct {
    char gwid[PROTO_GWID_MAX + 1];
    long long ttl;
    startup_hooks hooks;
    struct event *dup_timer;
    long long dup_pttl, dup_wait;
    int cleaning; /* checks or closes in flight; 0: idle */
    int ready;
} st;

int startup_ready(void)
{
    return st.ready;
}

static void startup_close_cb(redisAsyncContext *ac, void *r, void *priv)
{
    if (!r) { /* connection lost: the next connect starts the cleanup again */
        st.cleaning = 0;
        return;
    }
    if (--st.cleaning == 0) {
        st.ready = 1;
        log_info("gateway %s ready", st.gwid);
        if (st.hooks.ready) st.hooks.ready();
    }
}

static void startup_sessions_cb(redisAsyncContext *ac, void *r, void *priv)
{
    redisReply *rep = r;
    if (!rep || rep->type != REDIS_REPLY_ARRAY) {
        st.cleaning = 0;
        return;
    }
    st.cleaning = 1; /* held until all closes are queued */
    size_t n = 0;
    for (size_t i = 0; i < rep->elements; i++) {
        redisReply *e = rep->element[i];
        if (e->type != REDIS_REPLY_STRING) continue;
        const char *hash = memrchr(e->str, '#', e->len);
        if (!hash || !proto_valid_user(e->str, (size_t)(hash - e->str))) continue;
        char user[PROTO_NAME_MAX + 1], member[PROTO_NAME_MAX + 24], sessid[sizeof st.gwid + 24];
        size_t ulen = (size_t)(hash - e->str);
        if (e->len >= sizeof member) continue;
        memcpy(user, e->str, ulen);
        user[ulen] = '\0';
        memcpy(member, e->str, e->len);
        member[e->len] = '\0';
        snprintf(sessid, sizeof sessid, "%s%.*s", st.gwid, (int)(e->len - ulen), hash);
        if (scripts_session_close(ac, startup_close_cb, NULL, user, sessid, member, st.gwid, 0) ==
            REDIS_OK) {
            st.cleaning++;
            n++;
        }
    }
    if (n) log_info("closing %zu session(s) left by a previous gateway %s", n, st.gwid);
    startup_close_cb(ac, rep, NULL);
}

static void startup_cleanup(void)
{
    char k[KEYS_MAX];
    keys_fmt(k, sizeof k, KEY_GW_SESSIONS, st.gwid);
    const char *argv[] = {"SMEMBERS", k};
    if (rl_command(startup_sessions_cb, NULL, 2, argv, NULL) < 0) st.cleaning = 0;
}

static void startup_dup_second_cb(redisAsyncContext *ac, void *r, void *priv)
{
    long long p2;
    if (rl_reply_int(r, &p2) < 0) {
        st.cleaning = 0; /* connection lost: the next connect starts again */
        return;
    }
    /* unrefreshed, the TTL drops by the wait; a beat meanwhile puts it back up */
    if (p2 > st.dup_pttl - st.dup_wait + 50) {
        log_error("gateway id %s is in use by a running gateway (its heartbeat is being "
                  "refreshed): give this one another --id",
                  st.gwid);
        if (st.hooks.fatal) st.hooks.fatal();
        return;
    }
    startup_cleanup();
}

/* PTTL of our alive key, answered to cb: 0, or -1 when Redis is down. */
static int startup_pttl(redisCallbackFn *cb)
{
    char k[KEYS_MAX];
    keys_fmt(k, sizeof k, KEY_GW_ALIVE, st.gwid);
    const char *argv[] = {"PTTL", k};
    return rl_command(cb, NULL, 2, argv, NULL);
}

static void startup_dup_timer_cb(evutil_socket_t fd, short what, void *arg)
{
    if (startup_pttl(startup_dup_second_cb) < 0) st.cleaning = 0;
}

static void startup_dup_first_cb(redisAsyncContext *ac, void *r, void *priv)
{
    long long p1;
    if (rl_reply_int(r, &p1) < 0) {
        st.cleaning = 0;
        return;
    }
    if (p1 < 0) { /* no key (-2) or no TTL (-1): nobody beats for this id */
        startup_cleanup();
        return;
    }
    st.dup_pttl = p1;
    st.dup_wait = st.ttl / 3 + 100;
    struct timeval tv = {st.dup_wait / 1000, (st.dup_wait % 1000) * 1000};
    evtimer_add(st.dup_timer, &tv);
}

void startup_on_commands_up(void)
{
    if (st.ready || st.cleaning) return;
    if (startup_pttl(startup_dup_first_cb) == 0) st.cleaning = 1;
}

int startup_init(struct event_base *base, const char *gwid, long long heartbeat_ttl_ms,
                 const startup_hooks *hooks)
{
    snprintf(st.gwid, sizeof st.gwid, "%s", gwid);
    st.ttl = heartbeat_ttl_ms;
    st.hooks = *hooks;
    st.dup_timer = evtimer_new(base, startup_dup_timer_cb, NULL);
    return st.dup_timer ? 0 : -1;
}

void startup_free(void)
{
    if (st.dup_timer) event_free(st.dup_timer);
    st.dup_timer = NULL;
}
