/* main.c - parley-router: flags (docs/internals.md), the libevent loop, and
 * signals. SIGTERM/SIGINT release every slot (unsubscribe, then
 * release_slot), leave parley:routers and exit 0; a second signal, or 5 s
 * without Redis answering, exits at once. */
#include "router.h"

#include "config.h"
#include "log.h"
#include "scripts.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define ROUTER_STOP_TIMEOUT_MS  5000
#define ROUTER_STATS_INTERVAL_S 60

static char router_default_id[320];

void router_exit(router *r)
{
    if (r->stopping == ROUTER_EXITING) return;
    r->stopping = ROUTER_EXITING;
    log_info("routed %llu, duplicates %llu, no such user %llu, malformed %llu, failed %llu, "
             "lost %llu, rate limited %llu, fan-outs queued %llu, finished %llu",
             r->stats.routed, r->stats.dups, r->stats.no_user, r->stats.malformed, r->stats.failed,
             r->stats.lost, r->stats.limited, r->stats.pending, r->stats.fanned);
    conn_close(r);
    event_base_loopbreak(r->base);
}

/* One line a minute while messages flow: what an operator greps for. */
static void router_log_stats(evutil_socket_t fd, short what, void *arg)
{
    static router_stats last;
    router *r = arg;
    (void)fd;
    (void)what;
    if (memcmp(&last, &r->stats, sizeof(last)) == 0) return;
    log_info("last %ds: routed %llu, duplicates %llu, no such user %llu, malformed %llu, "
             "failed %llu, lost %llu, rate limited %llu in %llu script calls; in flight %lld; "
             "fan-outs queued %llu, finished %llu in %llu steps of %llu inbox writes",
             ROUTER_STATS_INTERVAL_S, r->stats.routed - last.routed, r->stats.dups - last.dups,
             r->stats.no_user - last.no_user, r->stats.malformed - last.malformed,
             r->stats.failed - last.failed, r->stats.lost - last.lost,
             r->stats.limited - last.limited, r->stats.batches - last.batches, r->in_flight,
             r->stats.pending - last.pending, r->stats.fanned - last.fanned,
             r->stats.fanout_steps - last.fanout_steps,
             r->stats.fanout_writes - last.fanout_writes);
    last = r->stats;
}

static void router_stop_timeout(evutil_socket_t fd, short what, void *arg)
{
    router *r = arg;
    (void)fd;
    (void)what;
    log_warn("shutdown: redis did not answer in time; exiting without releasing");
    router_exit(r);
}

static void router_on_signal(evutil_socket_t sig, short what, void *arg)
{
    router *r = arg;
    struct timeval tv = {ROUTER_STOP_TIMEOUT_MS / 1000, 0};
    (void)what;
    if (r->stopping) {
        log_warn("second signal: exiting now");
        router_exit(r);
        return;
    }
    log_info("%s: releasing slots and leaving", sig == SIGTERM ? "SIGTERM" : "SIGINT");
    r->stopping = ROUTER_STOPPING;
    if (r->reap_ev) event_del(r->reap_ev);
    r->stop_timeout_ev = evtimer_new(r->base, router_stop_timeout, r);
    evtimer_add(r->stop_timeout_ev, &tv);
    slots_shutdown(r);
}

int main(int argc, char **argv)
{
    static router r;
    char host[256] = "localhost", err[512];
    log_level level;

    if (scripts_check(err, sizeof err) < 0) {
        fprintf(stderr, "parley-router: %s\n", err);
        return 1;
    }
    if (gethostname(host, sizeof(host)) != 0) strcpy(host, "localhost");
    host[sizeof(host) - 1] = '\0';
    snprintf(router_default_id, sizeof(router_default_id), "%s:%ld", host, (long)getpid());
    r.cfg = (router_config){
        .redis_url = "redis://127.0.0.1:6379",
        .id = router_default_id,
        .inbox_cap = 1000,
        .history_cap = 10000,
        .dedupe_ttl = 86400,
        .lease_ms = 3000,
        .reap_interval = 1000,
        .inbox_bytes = 8 << 20,
        .history_bytes = 32 << 20,
        .fanout_chunk = 250,
        .user_rate = 20,
        .user_burst = 200,
        .user_fanout_rate = 10000,
        .user_fanout_burst = 50000,
        .user_byte_rate = 2 << 20,
        .user_byte_burst = 32 << 20,
        .wait_timeout = 1000,
        .reply_timeout = 5000,
        .log_level = "info",
    };
    const config_opt opts[] = {
        {"redis-url", "PARLEY_REDIS_URL", CONFIG_STR, &r.cfg.redis_url, 0, 0,
         "Redis (redis://[:password@]host:port[/db])"},
        {"id", "PARLEY_ROUTER_ID", CONFIG_STR, &r.cfg.id, 0, 0,
         "router id, the slot lease owner (default <hostname>:<pid>)"},
        {"inbox-cap", "PARLEY_INBOX_CAP", CONFIG_INT, &r.cfg.inbox_cap, 1, 10000000,
         "entries kept per user inbox"},
        {"history-cap", "PARLEY_HISTORY_CAP", CONFIG_INT, &r.cfg.history_cap, 1, 100000000,
         "messages kept per conversation"},
        {"inbox-bytes", "PARLEY_INBOX_BYTES", CONFIG_INT, &r.cfg.inbox_bytes, 65536, 1LL << 40,
         "bytes kept per user inbox (the oldest entries go first)"},
        {"history-bytes", "PARLEY_HISTORY_BYTES", CONFIG_INT, &r.cfg.history_bytes, 65536,
         1LL << 40, "bytes kept per conversation history (the oldest messages go first)"},
        {"fanout-chunk", "PARLEY_FANOUT_CHUNK", CONFIG_INT, &r.cfg.fanout_chunk, 1, 5000,
         "member inbox writes per script call; larger groups are fanned out in steps"},
        {"user-rate", "PARLEY_USER_RATE", CONFIG_INT, &r.cfg.user_rate, 0, 1000000,
         "messages per second per user, all sessions together (0: no limit)"},
        {"user-burst", "PARLEY_USER_BURST", CONFIG_INT, &r.cfg.user_burst, 1, 100000000,
         "bucket size of --user-rate"},
        {"user-fanout-rate", "PARLEY_USER_FANOUT_RATE", CONFIG_INT, &r.cfg.user_fanout_rate, 0,
         100000000,
         "inbox writes per second per user (a group message costs its members; 0: no limit)"},
        {"user-fanout-burst", "PARLEY_USER_FANOUT_BURST", CONFIG_INT, &r.cfg.user_fanout_burst, 1,
         1000000000, "bucket size of --user-fanout-rate"},
        {"send-steps", "PARLEY_SEND_STEPS", CONFIG_BOOL, &r.cfg.send_steps, 0, 0,
         "store messages in steps each inside one hash slot (send_step.lua), as on a Redis "
         "Cluster (where they always are), also on one Redis: slower, for tests"},
        {"wait-replicas", "PARLEY_WAIT_REPLICAS", CONFIG_INT, &r.cfg.wait_replicas, 0, 16,
         "acknowledge a message only once every write of it reached this many replicas (WAIT "
         "after each step; implies --send-steps; 0: acknowledge once the master has it)"},
        {"redis-reply-timeout", "PARLEY_REDIS_REPLY_TIMEOUT", CONFIG_INT, &r.cfg.reply_timeout, 0,
         600000,
         "cluster: ms a master connection may owe replies without one before it is dropped as "
         "lost (0: TCP keepalive only)"},
        {"wait-timeout", "PARLEY_WAIT_TIMEOUT", CONFIG_INT, &r.cfg.wait_timeout, 1, 60000,
         "ms WAIT gives the replicas; fewer in time: the message is not acknowledged (the "
         "client retries it)"},
        {"user-byte-rate", "PARLEY_USER_BYTE_RATE", CONFIG_INT, &r.cfg.user_byte_rate, 0, 1LL << 40,
         "stored bytes per second per user (data x copies; 0: no limit)"},
        {"user-byte-burst", "PARLEY_USER_BYTE_BURST", CONFIG_INT, &r.cfg.user_byte_burst, 1,
         1LL << 40, "bucket size of --user-byte-rate"},
        {"dedupe-ttl", "PARLEY_DEDUPE_TTL", CONFIG_INT, &r.cfg.dedupe_ttl, 1, 31536000,
         "how long a cid is remembered, seconds"},
        {"lease-ms", "PARLEY_LEASE_MS", CONFIG_INT, &r.cfg.lease_ms, 300, 600000,
         "slot lease, ms; renewed every lease/3"},
        {"reap-interval", "PARLEY_REAP_INTERVAL", CONFIG_INT, &r.cfg.reap_interval, 50, 3600000,
         "how often dead gateways are looked for, ms"},
        {"log-level", "PARLEY_LOG_LEVEL", CONFIG_STR, &r.cfg.log_level, 0, 0,
         "debug, info, warn, error"},
    };
    int argi;
    if (config_parse("parley-router", "[flags]", opts, sizeof(opts) / sizeof(opts[0]), argc, argv,
                     &argi) != 0)
        return 2;
    if (argi < argc) {
        fprintf(stderr, "parley-router: unexpected argument '%s' (try --help)\n", argv[argi]);
        return 2;
    }
    if (log_parse_level(r.cfg.log_level, &level) != 0) {
        fprintf(stderr, "parley-router: --log-level: '%s' is not debug, info, warn or error\n",
                r.cfg.log_level);
        return 2;
    }
    if (!r.cfg.id[0] || strlen(r.cfg.id) > 255 || strchr(r.cfg.id, ' ')) {
        fprintf(stderr, "parley-router: --id: must be 1 to 255 characters without spaces\n");
        return 2;
    }
    if (redisurl_parse(r.cfg.redis_url, &r.url, err, sizeof(err)) != 0) {
        fprintf(stderr, "parley-router: --redis-url: %s\n", err);
        return 2;
    }
    log_init("parley-router", level);
    signal(SIGPIPE, SIG_IGN);

    r.base = event_base_new();
    if (!r.base) {
        log_error("cannot create the event loop");
        return 1;
    }
    struct event *sigterm = evsignal_new(r.base, SIGTERM, router_on_signal, &r);
    struct event *sigint = evsignal_new(r.base, SIGINT, router_on_signal, &r);
    evsignal_add(sigterm, NULL);
    evsignal_add(sigint, NULL);

    struct timeval stats_tv = {ROUTER_STATS_INTERVAL_S, 0};
    struct event *stats = event_new(r.base, -1, EV_PERSIST, router_log_stats, &r);
    event_add(stats, &stats_tv);

    r.backoff_ms = 100;
    route_init(&r);
    slots_init(&r);
    reaper_init(&r);
    log_info("router %s starting (lease %lld ms, inbox cap %lld, history cap %lld)", r.cfg.id,
             r.cfg.lease_ms, r.cfg.inbox_cap, r.cfg.history_cap);
    conn_start(&r);

    event_base_dispatch(r.base);

    /* hiredis frees its contexts from the loop; give it one last pass */
    event_base_loop(r.base, EVLOOP_NONBLOCK);
    if (r.link) {
        conn_free(&r); /* the cluster link: r.cmd is a stand-in, r.sub the link's */
    } else {
        if (r.cmd) redisAsyncFree(r.cmd); /* its disconnect callback clears r.cmd */
        if (r.sub) redisAsyncFree(r.sub);
    }
    if (r.beat_ev) event_free(r.beat_ev);
    if (r.reap_ev) event_free(r.reap_ev);
    if (r.reconnect_ev) event_free(r.reconnect_ev);
    if (r.handshake_ev) event_free(r.handshake_ev);
    if (r.stop_timeout_ev) event_free(r.stop_timeout_ev);
    event_free(stats);
    event_free(sigterm);
    event_free(sigint);
    route_free(&r);
    event_base_free(r.base);
    return 0;
}
