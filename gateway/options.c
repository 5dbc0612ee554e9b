/* options.c - the gateway's flags, their defaults and checks. */
#include "options.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "clientaddr.h"
#include "config.h"
#include "log.h"
#include "origin.h"
#include "proto.h"
#include "secret.h"

static gw_options opts;
static secret opts_secret; /* holds a --secret-file's contents */

const gw_options *options_get(void)
{
    return &opts;
}

int options_parse(int argc, char **argv)
{
    gw_options *c = &opts;
    c->listen = "127.0.0.1";
    c->port = 8080;
    c->id = NULL;
    c->redis_url = "redis://127.0.0.1:6379";
    c->secret = NULL;
    c->secret_file = NULL;
    c->cookie_secure = 0;
    c->token_ttl = 604800;
    c->max_frame = 65536;
    c->send_queue = 1048576;
    c->ping_interval = 30;
    c->heartbeat_ttl = 5000;
    c->redis_reply_timeout = 5000;
    c->rate = 50;
    c->burst = 100;
    c->everyone_limit = 200;
    c->group_max = 5000;
    c->web_root = "web/dist";
    c->drain_timeout = 5000;
    c->body_timeout = 10000;
    c->max_url = 4096;
    c->max_headers = 8192;
    c->dev_auth = 0;
    c->log_level = "info";
    c->user_sessions = 20;   /* issue 12: per-user session limit */
    c->user_logins = 50;     /* issue 13: signed-in sessions kept per user */
    c->user_login_rate = 20; /* issue 13: ... and made per user per hour */
    c->user_login_window = 3600;
    c->last_seen_interval = 60;
    c->user_open_rate = 2; /* issue 12: how often one user may open sessions here */
    c->user_open_burst = 20;
    /* bounded reads (issue 12) */
    c->page_entries = 100;
    c->page_bytes = 262144;
    c->hello_entries = 50;
    c->preview_bytes = 256;
    c->groups_created = 100;
    /* per-user throttles (issue 12) */
    c->typing_interval = 1000;
    c->typing_interval_big = 5000;
    c->group_op_interval = 1000;
    /* logins (issue 13) */
    c->trusted_proxies = "";
    c->throttle_window = 900;
    c->throttle_addr = 100;
    c->throttle_account = 50;
    c->throttle_acct_addr = 10;
    c->password_workers = 0;
    c->password_queue = 256;
    c->password_queue_addr = 4;
    /* consent (issue 13) */
    c->max_blocks = 1000;
    c->wait_timeout = 1000;
    const config_opt table[] = {
        {"listen", "PARLEY_LISTEN", CONFIG_STR, &c->listen, 0, 0, "address to listen on"},
        {"port", "PARLEY_PORT", CONFIG_INT, &c->port, 1, 65535, "HTTP/WebSocket port"},
        {"id", "PARLEY_GATEWAY_ID", CONFIG_STR, &c->id, 0, 0,
         "gateway id (default <hostname>:<port>)"},
        {"redis-url", "PARLEY_REDIS_URL", CONFIG_STR, &c->redis_url, 0, 0,
         "redis://[:password@]host:port[/db] or unix:///path/redis.sock[?db=N]"},
        {"secret", "PARLEY_SECRET", CONFIG_STR, &c->secret, 0, 0,
         "token HMAC secret, >= 32 bytes beyond loopback (default: --secret-file, else a "
         "local-only development secret)"},
        {"secret-file", "PARLEY_SECRET_FILE", CONFIG_STR, &c->secret_file, 0, 0,
         "file holding the token secret (used when --secret is not given)"},
        {"cookie-secure", "PARLEY_COOKIE_SECURE", CONFIG_BOOL, &c->cookie_secure, 0, 0,
         "mark the login cookie Secure (served over https, e.g. behind a TLS proxy)"},
        {"token-ttl", "PARLEY_TOKEN_TTL", CONFIG_INT, &c->token_ttl, 60, 10LL * 365 * 86400,
         "token lifetime, seconds"},
        {"max-frame", "PARLEY_MAX_FRAME", CONFIG_INT, &c->max_frame, 256, 16 << 20,
         "largest incoming frame, bytes (larger: close 1009)"},
        {"send-queue", "PARLEY_SEND_QUEUE", CONFIG_INT, &c->send_queue, 4096, 1LL << 30,
         "queued bytes per socket before a slow reader is cut off"},
        {"ping-interval", "PARLEY_PING_INTERVAL", CONFIG_INT, &c->ping_interval, 1, 3600,
         "server ping period, seconds; silent peers dropped after two"},
        {"redis-reply-timeout", "PARLEY_REDIS_REPLY_TIMEOUT", CONFIG_INT, &c->redis_reply_timeout,
         0, 600000,
         "cluster: ms a master connection may owe replies without one before it is dropped as "
         "lost (0: TCP keepalive only)"},
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
        {"body-timeout", "PARLEY_BODY_TIMEOUT", CONFIG_INT, &c->body_timeout, 100, 600000,
         "longest time a request body may take to arrive, ms (longer: 408)"},
        {"max-url", "PARLEY_MAX_URL", CONFIG_INT, &c->max_url, 256, 16384,
         "longest request URL (path and query), bytes (longer: 414)"},
        {"max-headers", "PARLEY_MAX_HEADERS", CONFIG_INT, &c->max_headers, 1024, 32768,
         "most bytes of request headers (more: 431; far more: the connection closed)"},
        {"user-sessions", "PARLEY_USER_SESSIONS", CONFIG_INT, &c->user_sessions, 0, 1000000,
         "most open WebSockets of one user, all gateways (more: 429, or 4029 in a race; 0: none)"},
        {"user-logins", "PARLEY_USER_LOGINS", CONFIG_INT, &c->user_logins, 1, 10000,
         "signed-in sessions (tokens) one user keeps; past it the oldest is revoked"},
        {"user-login-rate", "PARLEY_USER_LOGIN_RATE", CONFIG_INT, &c->user_login_rate, 0, 1000000,
         "signed-in sessions made for one user per --user-login-window, all gateways (logins, "
         "registers, password changes; more: 429 with Retry-After; 0: no limit)"},
        {"user-login-window", "PARLEY_USER_LOGIN_WINDOW", CONFIG_INT, &c->user_login_window, 1,
         604800, "window of --user-login-rate, seconds"},
        {"last-seen-interval", "PARLEY_LAST_SEEN_INTERVAL", CONFIG_INT, &c->last_seen_interval, 0,
         86400,
         "seconds between moves of the last_seen of sessions with open sockets (0: only at opens)"},
        {"user-open-rate", "PARLEY_USER_OPEN_RATE", CONFIG_INT, &c->user_open_rate, 0, 1000000,
         "WebSockets one user may open per second on this gateway (more: 429; 0: no limit)"},
        {"user-open-burst", "PARLEY_USER_OPEN_BURST", CONFIG_INT, &c->user_open_burst, 1, 1000000,
         "WebSockets one user may open at once before --user-open-rate applies"},
        {"origins", "PARLEY_ORIGINS", CONFIG_STR, &c->origins, 0, 0,
         "origins whose pages may use the session cookie besides the one a request is addressed "
         "to, comma-separated https://host[:port] (others: 403)"},
        {"dev-auth", "PARLEY_DEV_AUTH", CONFIG_BOOL, &c->dev_auth, 0, 0,
         "seed compatibility: /ws?user=NAME without a token (loopback only)"},
        {"log-level", "PARLEY_LOG_LEVEL", CONFIG_STR, &c->log_level, 0, 0,
         "debug, info, warn, error"},
        /* bounded reads (issue 12) */
        {"page-entries", "PARLEY_PAGE_ENTRIES", CONFIG_INT, &c->page_entries, 1, 10000,
         "most inbox entries per sync / offline / gap page"},
        {"page-bytes", "PARLEY_PAGE_BYTES", CONFIG_INT, &c->page_bytes, 1024, 64 << 20,
         "most bytes of messages per sync page and per history answer (one entry always fits)"},
        {"hello-entries", "PARLEY_HELLO_ENTRIES", CONFIG_INT, &c->hello_entries, 1, 100000,
         "most entries in hello and in each following `users` page"},
        {"preview-bytes", "PARLEY_PREVIEW_BYTES", CONFIG_INT, &c->preview_bytes, 16, 1 << 20,
         "bytes of data kept in hello's `last` previews (cut on a UTF-8 boundary)"},
        {"groups-created", "PARLEY_GROUPS_CREATED", CONFIG_INT, &c->groups_created, 0, 1000000,
         "existing groups a user may have created (more: error forbidden; 0: no limit)"},
        /* per-user throttles (issue 12) */
        {"typing-interval", "PARLEY_TYPING_INTERVAL", CONFIG_INT, &c->typing_interval, 0, 3600000,
         "one typing notice per user and conversation per this many ms (more: dropped; 0: off)"},
        {"typing-interval-big", "PARLEY_TYPING_INTERVAL_BIG", CONFIG_INT, &c->typing_interval_big,
         0, 3600000, "the same, to a group of 64 members or more"},
        {"group-op-interval", "PARLEY_GROUP_OP_INTERVAL", CONFIG_INT, &c->group_op_interval, 0,
         3600000,
         "one change of a group of 64 members or more, and one join or leave of any group, per "
         "user per this many ms (more: error rate_limited; 0: off)"},
        /* logins (issue 13) */
        {"trusted-proxies", "PARLEY_TRUSTED_PROXIES", CONFIG_STR, &c->trusted_proxies, 0, 0,
         "comma-separated CIDRs/addresses of proxies whose X-Forwarded-For names the client "
         "(default none: the socket peer is the client)"},
        {"throttle-window", "PARLEY_THROTTLE_WINDOW", CONFIG_INT, &c->throttle_window, 1, 86400,
         "window of the login/register/password attempt budgets, seconds"},
        {"throttle-addr", "PARLEY_THROTTLE_ADDR", CONFIG_INT, &c->throttle_addr, 0, 100000000,
         "failed logins and password changes and all registers per client address and window "
         "(more: 429; 0: off)"},
        {"throttle-account", "PARLEY_THROTTLE_ACCOUNT", CONFIG_INT, &c->throttle_account, 0,
         100000000,
         "failed logins and password changes per account and window, all addresses "
         "(more: 429; 0: off)"},
        {"throttle-account-addr", "PARLEY_THROTTLE_ACCOUNT_ADDR", CONFIG_INT,
         &c->throttle_acct_addr, 0, 100000000,
         "failed logins and password changes per account and client address and window (more: "
         "429; 0: off)"},
        {"password-workers", "PARLEY_PASSWORD_WORKERS", CONFIG_INT, &c->password_workers, 0, 256,
         "password hashing threads, 64 MiB each while hashing (0: the number of cores)"},
        {"password-queue", "PARLEY_PASSWORD_QUEUE", CONFIG_INT, &c->password_queue, 1, 1000000,
         "password hashes queued or running, in all (more: 503)"},
        {"password-queue-addr", "PARLEY_PASSWORD_QUEUE_ADDR", CONFIG_INT, &c->password_queue_addr,
         0, 1000000,
         "password hashes queued or running per client address (more: 429; 0: no limit)"},
        /* consent (issue 13) */
        {"max-blocks", "PARLEY_MAX_BLOCKS", CONFIG_INT, &c->max_blocks, 0, 1000000,
         "users one user may block (more: error forbidden; 0: no limit)"},
        /* durable security writes (issue 15) */
        {"wait-replicas", "PARLEY_WAIT_REPLICAS", CONFIG_INT, &c->wait_replicas, 0, 16,
         "answer a block, a group remove, a logout and a password change only once their writes "
         "reached this many replicas (WAIT after each step; fewer in time: unavailable / 503; "
         "0: once the master has them)"},
        {"wait-timeout", "PARLEY_WAIT_TIMEOUT", CONFIG_INT, &c->wait_timeout, 1, 60000,
         "ms each WAIT of --wait-replicas gives the replicas (at most half --heartbeat-ttl)"},
    };
    const int n = (int)(sizeof table / sizeof table[0]);
    const char *prog = "parley-gateway";
    int argi = argc;
    if (config_parse(prog, "[flags]", table, n, argc, argv, &argi) < 0) return -1;
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
    char err[512];
    if (redisurl_parse(c->redis_url, &c->redis, err, sizeof err) < 0) {
        fprintf(stderr, "%s: --redis-url: %s\n", prog, err);
        return -1;
    }
    if (c->id) {
        if (strlen(c->id) > PROTO_GWID_MAX) { /* not cut short: refused below */
            fprintf(stderr, "%s: --id: '%s' is not 1 to %d characters of A-Za-z0-9_.:-\n", prog,
                    c->id, PROTO_GWID_MAX);
            return -1;
        }
        snprintf(c->gwid, sizeof c->gwid, "%s", c->id);
    } else {
        char host[256] = "localhost";
        gethostname(host, sizeof host - 1);
        snprintf(c->gwid, sizeof c->gwid, "%.50s:%lld", host, c->port);
    }
    if (!proto_valid_gwid(c->gwid, strlen(c->gwid))) {
        fprintf(stderr, "%s: --id: '%s' is not 1 to %d characters of A-Za-z0-9_.:-\n", prog,
                c->gwid, PROTO_GWID_MAX);
        return -1;
    }
    if (origin_init(c->origins, err, sizeof err) < 0) {
        fprintf(stderr, "%s: --origins: %s\n", prog, err);
        return -1;
    }
    if (clientaddr_init(c->trusted_proxies, err, sizeof err) < 0) {
        fprintf(stderr, "%s: --trusted-proxies: %s\n", prog, err);
        return -1;
    }
    if (c->wait_replicas > 0 && 2 * c->wait_timeout > c->heartbeat_ttl) {
        /* a WAIT holds the command connection (the alive key's refresh too) */
        fprintf(stderr, "%s: --wait-timeout %lld: at most half --heartbeat-ttl (%lld)\n", prog,
                c->wait_timeout, c->heartbeat_ttl);
        return -1;
    }
    if (c->dev_auth && !secret_addr_is_loopback(c->listen)) {
        fprintf(stderr, "%s: --dev-auth needs --listen on a loopback address, not '%s'\n", prog,
                c->listen);
        return -1;
    }
    char warn[256];
    if (secret_resolve(&opts_secret, c->secret, c->secret_file, !secret_addr_is_loopback(c->listen),
                       err, sizeof err, warn, sizeof warn) < 0) {
        fprintf(stderr, "%s: %s (--listen %s)\n", prog, err, c->listen);
        return -1;
    }
    c->secret = opts_secret.value;
    if (warn[0]) log_warn("%s", warn);
    if (c->dev_auth) log_warn("--dev-auth: /ws?user=NAME is accepted without a token");
    keys_fmt(c->gw_chan, sizeof c->gw_chan, CHAN_GW, c->gwid);
    return 0;
}
