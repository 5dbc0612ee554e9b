/* options.h - the gateway's flags (README "Configuration"), parsed once at
 * start and read-only afterwards.
 *
 * Every module reads the options it needs through options_get(); nothing
 * writes them after options_parse(). Derived values (the gateway id and its
 * channel) are computed here too, so every module sees the same ones. */
#ifndef PARLEY_GW_OPTIONS_H
#define PARLEY_GW_OPTIONS_H

#include "keys.h"
#include "proto.h"
#include "redisurl.h"

typedef struct gw_options {
    const char *listen;
    long long port;
    const char *id;
    const char *redis_url;
    const char *secret;            /* after options_parse: the secret in use (secret.h) */
    const char *secret_file;       /* --secret-file, or NULL */
    int cookie_secure;             /* the login cookie gets "Secure" (https only) */
    long long token_ttl;           /* seconds */
    long long max_frame;           /* bytes */
    long long send_queue;          /* bytes per socket */
    long long ping_interval;       /* seconds */
    long long heartbeat_ttl;       /* ms */
    long long redis_reply_timeout; /* ms, cluster mode: a master silent this long is dropped */
    long long rate;                /* frames per second per socket */
    long long burst;               /* token bucket size */
    long long everyone_limit;
    long long group_max;
    const char *web_root;
    long long drain_timeout; /* ms */
    long long body_timeout;  /* ms: the longest a request body may take */
    long long max_url;       /* bytes of a request's path and query (more: 414) */
    long long max_headers;   /* bytes of a request's header values (more: 431) */
    const char *origins;     /* --origins: more origins whose pages may use the cookie */
    int dev_auth;
    const char *log_level;
    long long user_sessions;      /* live sessions per user, all gateways (0: no limit) */
    long long user_logins;        /* signed-in sessions (tokens) a user keeps; the oldest revoked */
    long long user_login_rate;    /* signed-in sessions made per user per window (0: no limit) */
    long long user_login_window;  /* s: that window */
    long long last_seen_interval; /* s: how often open sockets move their session's last_seen */
    long long user_open_rate, user_open_burst; /* upgrades per user per second, bucket */
    /* bounded reads (issue 12): pages of sync/history, hello's list, groups */
    long long page_entries;   /* inbox entries per sync page */
    long long page_bytes;     /* bytes of entries per sync page and per history answer */
    long long hello_entries;  /* entries in hello and in each `users` page */
    long long preview_bytes;  /* bytes of `last`'s data in hello entries */
    long long groups_created; /* groups a user may have created */
    /* per-user throttles (issue 12), ms; 0: off */
    long long typing_interval;     /* typing notices per user and conversation */
    long long typing_interval_big; /* the same, to a group of 64 members or more */
    long long group_op_interval;   /* changes of a group of 64 members or more */
    /* logins (issue 13): attempt budgets per --throttle-window seconds (0: off) */
    const char *trusted_proxies;   /* CIDRs whose X-Forwarded-For is believed ("": none) */
    long long throttle_window;     /* seconds */
    long long throttle_addr;       /* failed attempts per client address */
    long long throttle_account;    /* failed attempts per account, every address */
    long long throttle_acct_addr;  /* failed attempts per account and address */
    long long password_workers;    /* hashing threads (0: the number of cores) */
    long long password_queue;      /* hashes queued or running, in all */
    long long password_queue_addr; /* the same, per client address (0: no limit) */
    long long max_blocks;          /* users one user may block (0: no limit) */
    long long wait_replicas;       /* replicas WAITed for by security writes (0: none) */
    long long wait_timeout;        /* ms each such WAIT may take */

    /* derived */
    redisurl redis;                /* --redis-url, parsed */
    char gwid[PROTO_GWID_MAX + 1]; /* --id, or <hostname>:<port> */
    char gw_chan[KEYS_MAX];        /* parley:gw:ID */
} gw_options;

/* Parses environment and argv (config.h precedence), starts logging and
 * derives the id; --trusted-proxies is parsed into clientaddr.h. 0, or -1 after printing a one-line
 * error (exit 2). */
int options_parse(int argc, char **argv);

const gw_options *options_get(void);

#endif
