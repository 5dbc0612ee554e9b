/* main.c - parley-gateway: the composer. It reads the flags, makes the
 * libevent loop, runs lws on it (as a foreign loop) and hiredis on it, starts
 * every module with what it needs, and connects the modules' hooks: the one
 * place that knows all of them (gateway/README.md has the map).
 *
 * Drain (SIGTERM/SIGINT): /healthz turns 503 at once and new upgrades are
 * refused; every socket is closed with 1001; each close runs session_close;
 * when every socket is gone (its close handshake over, or timed out by lws)
 * and every reply is in (drain.h), or --drain-timeout passed, the heartbeat
 * key is deleted and the gateway leaves parley:gateways; then the lws
 * context is destroyed while the loop still runs (lws 4.1 needs the loop to
 * finish its closes), the loop stops, and the context is destroyed again (a
 * no-op when the first call completed), as lws's foreign-loop example does.
 * A second signal skips the wait. */
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "account.h"
#include "auth.h"
#include "clientaddr.h"
#include "deliver.h"
#include "drain.h"
#include "frames.h"
#include "heartbeat.h"
#include "http.h"
#include "keys.h"
#include "lifecycle.h"
#include "log.h"
#include "openrate.h"
#include "options.h"
#include "presence.h"
#include "pss.h"
#include "pwpool.h"
#include "redis_link.h"
#include "revoke.h"
#include "rtq.h"
#include "scripts.h"
#include "sesscap.h"
#include "session.h"
#include "startup.h"
#include "static.h"
#include "throttle.h"
#include "ws.h"

static struct {
    struct event_base *base;
    struct lws_context *ctx;
    struct event *sig_term, *sig_int, *drain_timer;
    int leaving;   /* the final DEL/SREM were sent */
    int finals;    /* their replies outstanding */
    int finishing; /* stopping the loop */
    int ever_up;   /* Redis was usable at least once */
    int exit_code;
} gw;

/* ---- stopping ---- */

static void gw_finish(void)
{
    if (gw.finishing) return;
    gw.finishing = 1;
    log_info("gateway %s stopping", options_get()->gwid);
    if (gw.drain_timer) evtimer_del(gw.drain_timer);
    rtq_flush(); /* texts of this turn go out before the link closes */
    hb_stop();
    rl_stop();
    if (gw.ctx) lws_context_destroy(gw.ctx);
    struct timeval tv = {0, 100 * 1000};
    event_base_loopexit(gw.base, &tv);
}

static void gw_fatal(void)
{
    gw.exit_code = 1;
    drain_begin(NULL);
    gw_finish();
}

static void gw_final_cb(redisAsyncContext *ac, void *r, void *priv)
{
    if (--gw.finals <= 0) gw_finish();
}

/* Drained: every session is closed; leave the set of gateways. */
static void gw_drained(void)
{
    if (gw.leaving || gw.finishing) return;
    gw.leaving = 1;
    const char *gwid = options_get()->gwid;
    char k[KEYS_MAX];
    keys_fmt(k, sizeof k, KEY_GW_ALIVE, gwid);
    const char *a1[] = {"DEL", k};
    const char *a2[] = {"SREM", KEY_GATEWAYS, gwid};
    if (rl_command(gw_final_cb, NULL, 2, a1, NULL) == 0) gw.finals++;
    if (rl_command(gw_final_cb, NULL, 3, a2, NULL) == 0) gw.finals++;
    if (!gw.finals) gw_finish();
}

static void gw_drain_timeout(evutil_socket_t fd, short what, void *arg)
{
    log_warn("drain timeout: %zu session(s) and %d Redis repl(ies) still pending", sess_count(),
             lifecycle_closes_pending() + gw.finals);
    gw_finish();
}

static void gw_signal(evutil_socket_t sig, short what, void *arg)
{
    if (drain_active()) {
        log_info("second signal: stopping now");
        gw_finish();
        return;
    }
    log_info("signal %d: draining %zu session(s)", (int)sig, sess_count());
    drain_begin(gw_drained);
    sess_close_all(1001, "going away");
    long long ms = options_get()->drain_timeout;
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    evtimer_add(gw.drain_timer, &tv);
    drain_check();
}

/* ---- hooks: what the modules' events mean for the others ---- */

/* A session's replay drained: the next page of what it waits for (hello's
 * list, inbox entries). */
static void gw_replay_drained(gw_session *s)
{
    lifecycle_on_drained(s);
    deliver_on_drained(s);
}

/* Redis usable again (both connections, the gateway channel confirmed, the
 * start-up cleanup done): after an outage every live session is re-opened. */
static void gw_maybe_up(void)
{
    if (!rl_ok() || !startup_ready()) return;
    if (gw.ever_up) lifecycle_reopen_all();
    gw.ever_up = 1;
}

static void gw_commands_up(void)
{
    startup_on_commands_up();
    sesscap_on_commands_up();
    revoke_on_commands_up();
    hb_beat_now();
}

static void gw_subscriber_up(void)
{
    deliver_on_subscriber_up(); /* first: its confirmation completes rl_ok() */
    presence_on_subscriber_up();
    sesscap_on_subscriber_up();
    revoke_on_subscriber_up();
}

static void gw_startup_ready(void)
{
    hb_beat_now();
    gw_maybe_up();
}

/* a beat found the gateway expired: routers may have closed its sessions */
/* each beat: presence's lazy unsubscribes, the sessions' last_seen */
static void gw_tick(void)
{
    presence_sweep();
    lifecycle_touch_logins();
}

static void gw_lapsed(void)
{
    if (rl_ok() && !drain_active()) lifecycle_reopen_all();
}

/* ---- lws glue ---- */

static int gw_lws_cb(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                     size_t len)
{
    if (ws_handles(reason)) return ws_callback(wsi, reason, user, in, len);
    return http_callback(wsi, reason, user, in, len);
}

/* rx_buffer_size: lws keeps a buffer this big (+ LWS_PRE) for every open
 * WebSocket; left at 0 it is pt_serv_buf_size (4 KiB), most of an idle
 * connection's memory (parley-bench connect: 6.5 KiB per connection with
 * 4 KiB, 3.6 KiB with 1 KiB at 20k connections). Frames larger than it
 * reach ws.c in pieces, which it reassembles (up to --max-frame), so a small
 * one costs nothing for chat-sized frames. tx_packet_size: left at 0, lws
 * also cuts every send() to the rx buffer size; sendq hands it batches of
 * up to 64 KiB, which must go out in one write. */
#define GW_RX_BUFFER     512
#define GW_TX_PACKET_MAX (64 * 1024 + 16)

static const struct lws_protocols gw_protocols[] = {
    {"parley", gw_lws_cb, sizeof(gw_pss), GW_RX_BUFFER, 0, NULL, GW_TX_PACKET_MAX},
    {NULL, NULL, 0, 0, 0, NULL, 0},
};

static void gw_lws_log(int level, const char *line)
{
    size_t n = strlen(line);
    while (n && (line[n - 1] == '\n' || line[n - 1] == '\r'))
        n--;
    if (level & LLL_ERR)
        log_error("lws: %.*s", (int)n, line);
    else
        log_warn("lws: %.*s", (int)n, line);
}

static struct lws_context *gw_listen(const gw_options *o)
{
    lws_set_log_level(LLL_ERR | LLL_WARN, gw_lws_log);
    static lws_retry_bo_t retry;
    retry.secs_since_valid_ping = (uint16_t)o->ping_interval;
    retry.secs_since_valid_hangup = (uint16_t)(o->ping_interval * 2 + 1);
    static void *loops[1];
    loops[0] = gw.base;
    struct lws_context_creation_info info;
    memset(&info, 0, sizeof info);
    info.port = (int)o->port;
    /* lws takes an interface name or a numeric address */
    info.iface = strcmp(o->listen, "localhost") ? o->listen : "127.0.0.1";
    info.protocols = gw_protocols;
    info.options = LWS_SERVER_OPTION_LIBEVENT;
    info.foreign_loops = loops;
    info.pcontext = &gw.ctx;
    info.retry_and_idle_policy = &retry;
    info.max_http_header_data = (unsigned short)HTTP_HEADER_BUF(o->max_url, o->max_headers);
    info.vhost_name = "parley";
    return lws_create_context(&info);
}

/* ---- main ---- */

int main(int argc, char **argv)
{
    if (options_parse(argc, argv) < 0) return 2;
    const gw_options *o = options_get();
    char err[256];
    if (scripts_check(err, sizeof err) < 0) {
        log_error("%s", err);
        return 1;
    }
    /* WAITs in flight hold the command connection one after the other: at most
     * half a heartbeat TTL of them, so the alive key is still refreshed */
    long long in_flight = o->heartbeat_ttl / (2 * o->wait_timeout);
    scripts_set_durable((int)o->wait_replicas, (int)o->wait_timeout,
                        in_flight > 0 ? (int)in_flight : 1);
    signal(SIGPIPE, SIG_IGN);

    gw.base = event_base_new();
    if (!gw.base) {
        log_error("cannot create the event loop");
        return 1;
    }
    if (pwpool_start(gw.base, (int)o->password_workers, (int)o->password_queue,
                     (int)o->password_queue_addr) < 0) {
        log_error("cannot start the password workers");
        return 1;
    }
    gw.ctx = gw_listen(o);
    if (!gw.ctx) {
        log_error("cannot listen on %s:%lld", o->listen, o->port);
        pwpool_stop();
        event_base_free(gw.base);
        return 1;
    }

    /* every module, bottom up */
    auth_init(o->secret, o->dev_auth);
    account_init(o->secret, o->token_ttl, o->user_logins, o->user_login_rate, o->user_login_window);
    const throttle_config tc = {.window_s = o->throttle_window,
                                .addr = o->throttle_addr,
                                .account = o->throttle_account,
                                .account_addr = o->throttle_acct_addr};
    throttle_init(&tc);
    static_init(o->web_root);
    http_init(gw.base, o->body_timeout, o->max_url, o->max_headers);
    ws_init((size_t)o->max_frame);
    presence_init(o->everyone_limit);
    deliver_init(o->gw_chan, (size_t)o->send_queue, o->page_entries, o->page_bytes);
    lifecycle_init(o->gwid, o->everyone_limit, o->hello_entries, o->preview_bytes,
                   o->last_seen_interval * 1000);
    const frame_config fc = {.gwid = o->gwid,
                             .rate = o->rate,
                             .burst = o->burst,
                             .group_max = o->group_max,
                             .page_bytes = o->page_bytes,
                             .groups_created = o->groups_created,
                             .typing_interval = o->typing_interval,
                             .typing_interval_big = o->typing_interval_big,
                             .group_op_interval = o->group_op_interval,
                             .max_blocks = o->max_blocks,
                             .dev_auth = o->dev_auth};
    frame_init(&fc);
    const rl_hooks rh = {.commands_up = gw_commands_up,
                         .commands_down = hb_reset,
                         .subscriber_up = gw_subscriber_up,
                         .up = gw_maybe_up};
    const startup_hooks sh = {.ready = gw_startup_ready, .fatal = gw_fatal};
    const hb_hooks hh = {.lapsed = gw_lapsed, .tick = gw_tick};
    char client_name[96];
    snprintf(client_name, sizeof client_name, "parley-gw:%s", o->gwid);

    gw.drain_timer = evtimer_new(gw.base, gw_drain_timeout, NULL);
    gw.sig_term = evsignal_new(gw.base, SIGTERM, gw_signal, NULL);
    gw.sig_int = evsignal_new(gw.base, SIGINT, gw_signal, NULL);
    evsignal_add(gw.sig_term, NULL);
    evsignal_add(gw.sig_int, NULL);
    openrate_init(o->user_open_rate, o->user_open_burst);
    rl_set_reply_timeout((unsigned)o->redis_reply_timeout);
    if (sess_init(gw.base, (size_t)o->send_queue) < 0 || rtq_init(gw.base) < 0 ||
        sesscap_init(gw.base, o->user_sessions) < 0 || revoke_init(gw.base) < 0 ||
        startup_init(gw.base, o->gwid, o->heartbeat_ttl, &sh) < 0 ||
        hb_start(gw.base, o->gwid, o->heartbeat_ttl, &hh) < 0 ||
        rl_start(gw.base, &o->redis, client_name, &rh) < 0) {
        log_error("cannot start the Redis link");
        return 1;
    }
    sess_set_drained_hook(gw_replay_drained);
    char desc[300];
    log_info("gateway %s listening on %s:%lld, redis %s, %d password workers", o->gwid, o->listen,
             o->port, redisurl_describe(&o->redis, desc, sizeof desc), pwpool_workers());

    event_base_dispatch(gw.base);

    /* teardown, in the order lws's foreign-loop example uses */
    gw.finishing = 1;
    lws_context_destroy(gw.ctx); /* NULL (no-op) when the first call completed */
    rl_free();
    hb_free();
    startup_free();
    rtq_free();
    sesscap_free();
    revoke_free();
    openrate_free();
    sess_free_all();
    event_free(gw.drain_timer);
    event_free(gw.sig_term);
    event_free(gw.sig_int);
    pwpool_stop();
    clientaddr_free();
    for (int i = 0; i < 10; i++)
        event_base_loop(gw.base, EVLOOP_NONBLOCK);
    presence_free();
    event_base_free(gw.base);
    log_info("gateway %s stopped", o->gwid);
    return gw.exit_code;
}
