/* main.c - parley-gateway: flags, the libevent loop with lws (as a foreign
 * loop) and hiredis on it, and the drain on SIGTERM/SIGINT.
 *
 * Drain: /healthz turns 503 at once and new upgrades are refused; every
 * socket is closed with 1001; each close runs session_close; when every
 * socket is gone (its close handshake over, or timed out by lws) and every
 * reply is in (or --drain-timeout passed) the
 * heartbeat key is deleted and the gateway leaves parley:gateways; then the
 * lws context is destroyed while the loop still runs (lws 4.1 needs the loop
 * to finish its closes), the loop stops, and the context is destroyed again
 * (a no-op when the first call completed), as lws's foreign-loop example does.
 * A second signal skips the wait. */
#include <arpa/inet.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "gw.h"
#include "keys.h"
#include "log.h"

#define DEV_SECRET "parley-local-only-secret-do-not-deploy"

uint64_t gw_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* ---- drain ---- */

static void gw_finish(gw_server *g)
{
    if (g->finishing) return;
    g->finishing = 1;
    log_info("gateway %s stopping", g->gwid);
    if (g->drain_timer) evtimer_del(g->drain_timer);
    rl_stop(g);
    if (g->ctx) lws_context_destroy(g->ctx);
    struct timeval tv = {0, 100 * 1000};
    event_base_loopexit(g->base, &tv);
}

void gw_fatal(gw_server *g)
{
    g->exit_code = 1;
    g->draining = 1;
    gw_finish(g);
}

static void gw_final_cb(redisAsyncContext *ac, void *r, void *priv)
{
    gw_server *g = ac->data;
    if (--g->drain_pending <= 0) gw_finish(g);
}

void gw_drain_check(gw_server *g)
{
    if (!g->draining || g->finishing || g->nsessions || g->nws || g->nhttp || g->drain_pending)
        return;
    /* every session is closed: leave the set of gateways */
    char k[KEYS_MAX];
    keys_fmt(k, sizeof k, KEY_GW_ALIVE, g->gwid);
    const char *a1[] = {"DEL", k};
    const char *a2[] = {"SREM", KEY_GATEWAYS, g->gwid};
    if (rl_cmd_argv(g, gw_final_cb, NULL, 2, a1, NULL) == 0) g->drain_pending++;
    if (rl_cmd_argv(g, gw_final_cb, NULL, 3, a2, NULL) == 0) g->drain_pending++;
    if (!g->drain_pending) gw_finish(g);
}

static void gw_drain_timeout(evutil_socket_t fd, short what, void *arg)
{
    gw_server *g = arg;
    log_warn("drain timeout: %zu session(s) and %d Redis repl(ies) still pending", g->nsessions,
             g->drain_pending);
    gw_finish(g);
}

static void gw_signal(evutil_socket_t sig, short what, void *arg)
{
    gw_server *g = arg;
    if (g->draining) {
        log_info("second signal: stopping now");
        gw_finish(g);
        return;
    }
    g->draining = 1;
    log_info("signal %d: draining %zu session(s)", (int)sig, g->nsessions);
    ws_close_all(g, 1001, "going away");
    struct timeval tv = {g->cfg.drain_timeout / 1000, (g->cfg.drain_timeout % 1000) * 1000};
    evtimer_add(g->drain_timer, &tv);
    gw_drain_check(g);
}

/* ---- lws glue ---- */

static int gw_lws_cb(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                     size_t len)
{
    switch (reason) {
    case LWS_CALLBACK_ESTABLISHED:
    case LWS_CALLBACK_RECEIVE:
    case LWS_CALLBACK_SERVER_WRITEABLE:
    case LWS_CALLBACK_CLOSED:
    case LWS_CALLBACK_WSI_DESTROY:
    case LWS_CALLBACK_WS_PEER_INITIATED_CLOSE:
        return ws_callback(wsi, reason, user, in, len);
    default:
        return http_callback(wsi, reason, user, in, len);
    }
}

/* rx_buffer_size: lws keeps a buffer this big (+ LWS_PRE) for every open
 * WebSocket; left at 0 it is pt_serv_buf_size (4 KiB), most of an idle
 * connection's memory (parley-bench connect: 6.5 KiB per connection with
 * 4 KiB, 3.6 KiB with 1 KiB at 20k connections). Frames larger than it reach ws_receive in pieces,
 * which it reassembles (up to --max-frame), so a small one costs nothing for
 * chat-sized frames. tx_packet_size: left at 0, lws also cuts every send()
 * to the rx buffer size; sendq hands it batches of up to 64 KiB, which must
 * go out in one write. */
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

/* ---- flags ---- */

static int gw_is_loopback(const char *addr)
{
    struct in_addr a4;
    if (!strcmp(addr, "localhost") || !strcmp(addr, "::1")) return 1;
    if (inet_pton(AF_INET, addr, &a4) == 1) return (ntohl(a4.s_addr) >> 24) == 127;
    return 0;
}

static int gw_flags(gw_server *g, int argc, char **argv)
{
    gw_config *c = &g->cfg;
    c->listen = "127.0.0.1";
    c->port = 8080;
    c->id = NULL;
    c->redis_url = "redis://127.0.0.1:6379";
    c->secret = NULL;
    c->token_ttl = 604800;
    c->max_frame = 65536;
    c->send_queue = 1048576;
    c->ping_interval = 30;
    c->heartbeat_ttl = 5000;
    c->rate = 50;
    c->burst = 100;
    c->everyone_limit = 200;
    c->group_max = 5000;
    c->web_root = "web/dist";
    c->drain_timeout = 5000;
    c->dev_auth = 0;
    c->log_level = "info";
    const config_opt opts[] = {
        {"listen", "PARLEY_LISTEN", CONFIG_STR, &c->listen, 0, 0, "address to listen on"},
        {"port", "PARLEY_PORT", CONFIG_INT, &c->port, 1, 65535, "HTTP/WebSocket port"},
        {"id", "PARLEY_GATEWAY_ID", CONFIG_STR, &c->id, 0, 0,
         "gateway id (default <hostname>:<port>)"},
        {"redis-url", "PARLEY_REDIS_URL", CONFIG_STR, &c->redis_url, 0, 0,
         "redis://[:password@]host:port[/db]"},
        {"secret", "PARLEY_SECRET", CONFIG_STR, &c->secret, 0, 0,
         "token HMAC secret (default: a local-only development secret)"},
        {"token-ttl", "PARLEY_TOKEN_TTL", CONFIG_INT, &c->token_ttl, 60, 10LL * 365 * 86400,
         "token lifetime, seconds"},
        {"max-frame", "PARLEY_MAX_FRAME", CONFIG_INT, &c->max_frame, 256, 16 << 20,
         "largest incoming frame, bytes (larger: close 1009)"},
        {"send-queue", "PARLEY_SEND_QUEUE", CONFIG_INT, &c->send_queue, 4096, 1LL << 30,
         "queued bytes per socket before a slow reader is cut off"},
        {"ping-interval", "PARLEY_PING_INTERVAL", CONFIG_INT, &c->ping_interval, 1, 3600,
         "server ping period, seconds; silent peers dropped after two"},
        {"heartbeat-ttl", "PARLEY_HEARTBEAT_TTL", CONFIG_INT, &c->heartbeat_ttl, 300, 3600000,
         "TTL of parley:gw:ID:alive, ms (refreshed every third)"},
        {"rate", "PARLEY_RATE", CONFIG_INT, &c->rate, 1, 1000000, "frames per second per socket"},
        {"burst", "PARLEY_BURST", CONFIG_INT, &c->burst, 1, 1000000, "token bucket size"},
        {"everyone-limit", "PARLEY_EVERYONE_LIMIT", CONFIG_INT, &c->everyone_limit, 0, 100000,
         "up to this many users, everyone is everyone's contact"},
        {"group-max", "PARLEY_GROUP_MAX", CONFIG_INT, &c->group_max, 2, 1000000,
         "most members a group may have"},
        {"web-root", "PARLEY_WEB_ROOT", CONFIG_STR, &c->web_root, 0, 0, "static files served at /"},
        {"drain-timeout", "PARLEY_DRAIN_TIMEOUT", CONFIG_INT, &c->drain_timeout, 0, 600000,
         "SIGTERM: longest wait for sockets and Redis, ms"},
        {"dev-auth", "PARLEY_DEV_AUTH", CONFIG_BOOL, &c->dev_auth, 0, 0,
         "seed compatibility: /ws?user=NAME without a token (loopback only)"},
        {"log-level", "PARLEY_LOG_LEVEL", CONFIG_STR, &c->log_level, 0, 0,
         "debug, info, warn, error"},
    };
    const int nopts = (int)(sizeof opts / sizeof opts[0]);
    const char *prog = "parley-gateway";
    int argi = argc;
    if (config_parse(prog, "[flags]", opts, nopts, argc, argv, &argi) < 0) return -1;
    if (argi < argc) {
        fprintf(stderr, "%s: unexpected argument '%s' (see --help)\n", prog, argv[argi]);
        return -1;
    }
    log_level lvl;
    if (log_parse_level(c->log_level, &lvl) < 0) {
        fprintf(stderr, "%s: --log-level: '%s' is not one of debug, info, warn, error\n", prog,
                c->log_level);
        return -1;
    }
    log_init(prog, lvl);
    char err[256];
    if (redisurl_parse(c->redis_url, &g->rurl, err, sizeof err) < 0) {
        fprintf(stderr, "%s: --redis-url: %s\n", prog, err);
        return -1;
    }
    if (c->id) {
        snprintf(g->gwid, sizeof g->gwid, "%s", c->id);
    } else {
        char host[256] = "localhost";
        gethostname(host, sizeof host - 1);
        snprintf(g->gwid, sizeof g->gwid, "%.50s:%lld", host, c->port);
    }
    if (!proto_valid_gwid(g->gwid, strlen(g->gwid))) {
        fprintf(stderr, "%s: --id: '%s' is not 1 to 64 characters of A-Za-z0-9_.:-\n", prog,
                g->gwid);
        return -1;
    }
    if (c->dev_auth && !gw_is_loopback(c->listen)) {
        fprintf(stderr, "%s: --dev-auth needs --listen on a loopback address, not '%s'\n", prog,
                c->listen);
        return -1;
    }
    if (!c->secret || !*c->secret) {
        c->secret = DEV_SECRET;
        log_warn("no --secret given: using the local-only development secret; set "
                 "PARLEY_SECRET for anything but a laptop");
    }
    if (c->dev_auth) log_warn("--dev-auth: /ws?user=NAME is accepted without a token");
    keys_fmt(g->gw_chan, sizeof g->gw_chan, CHAN_GW, g->gwid);
    return 0;
}

/* ---- main ---- */

int main(int argc, char **argv)
{
    static gw_server server;
    gw_server *g = &server;
    if (gw_flags(g, argc, argv) < 0) return 2;
    signal(SIGPIPE, SIG_IGN);
    strmap_init(&g->sessions_by_user);
    strmap_init(&g->sessions_by_conn);
    strmap_init(&g->presence);

    g->base = event_base_new();
    if (!g->base) {
        log_error("cannot create the event loop");
        return 1;
    }
    if (pwpool_start(g) < 0) {
        log_error("cannot start the password worker");
        return 1;
    }

    lws_set_log_level(LLL_ERR | LLL_WARN, gw_lws_log);
    static lws_retry_bo_t retry;
    retry.secs_since_valid_ping = (uint16_t)g->cfg.ping_interval;
    retry.secs_since_valid_hangup = (uint16_t)(g->cfg.ping_interval * 2 + 1);
    void *loops[1] = {g->base};
    struct lws_context_creation_info info;
    memset(&info, 0, sizeof info);
    info.port = (int)g->cfg.port;
    /* lws takes an interface name or a numeric address */
    info.iface = strcmp(g->cfg.listen, "localhost") ? g->cfg.listen : "127.0.0.1";
    info.protocols = gw_protocols;
    info.options = LWS_SERVER_OPTION_LIBEVENT;
    info.foreign_loops = loops;
    info.pcontext = &g->ctx;
    info.user = g;
    info.retry_and_idle_policy = &retry;
    info.max_http_header_data = 4096;
    info.vhost_name = "parley";
    g->ctx = lws_create_context(&info);
    if (!g->ctx) {
        log_error("cannot listen on %s:%lld", g->cfg.listen, g->cfg.port);
        pwpool_stop();
        event_base_free(g->base);
        return 1;
    }

    g->drain_timer = evtimer_new(g->base, gw_drain_timeout, g);
    g->sig_term = evsignal_new(g->base, SIGTERM, gw_signal, g);
    g->sig_int = evsignal_new(g->base, SIGINT, gw_signal, g);
    evsignal_add(g->sig_term, NULL);
    evsignal_add(g->sig_int, NULL);
    if (rtq_init(g) < 0 || rl_start(g) < 0) {
        log_error("cannot start the Redis link");
        return 1;
    }
    char desc[300];
    log_info("gateway %s listening on %s:%lld, redis %s", g->gwid, g->cfg.listen, g->cfg.port,
             redisurl_describe(&g->rurl, desc, sizeof desc));

    event_base_dispatch(g->base);

    /* teardown, in the order lws's foreign-loop example uses */
    g->finishing = 1;
    lws_context_destroy(g->ctx); /* NULL (no-op) when the first call completed */
    if (g->cmd.ac) redisAsyncFree(g->cmd.ac);
    if (g->sub.ac) redisAsyncFree(g->sub.ac);
    rl_free(g);
    rtq_free(g);
    ws_flush_free(g);
    event_free(g->drain_timer);
    event_free(g->sig_term);
    event_free(g->sig_int);
    pwpool_stop();
    for (int i = 0; i < 10; i++)
        event_base_loop(g->base, EVLOOP_NONBLOCK);
    presence_free(g);
    strmap_free(&g->sessions_by_user);
    strmap_free(&g->sessions_by_conn);
    event_base_free(g->base);
    log_info("gateway %s stopped", g->gwid);
    return g->exit_code;
}
