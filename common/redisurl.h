/* redisurl.h - the Redis URL every Parley process takes (--redis-url), and
 * the AUTH/SELECT prelude it implies on a fresh connection.
 *
 * Accepted forms: redis://[[user]:password@]host[:port][/db]
 *                 unix://[[user]:password@]/path/to/redis.sock[?db=N]
 *                 redis-cluster://[[user]:password@]host[:port][,host[:port]...]
 * The last names a Redis Cluster by seed nodes (any of its nodes; the slot map
 * is read from the first that answers: common/cluster.h); it has no db (a
 * cluster has only db 0). Its first seed is also host/port.
 * host may be a bracketed IPv6 address ([::1]); port defaults to 6379, db to 0.
 * The password may be percent-encoded (%40 for '@'). A Unix socket is the
 * cheaper link when Redis runs on the same machine (no TCP stack per
 * message). */
#ifndef PARLEY_REDISURL_H
#define PARLEY_REDISURL_H

#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <stddef.h>
#include <sys/time.h>

#define REDISURL_HOST_MAX   256
#define REDISURL_SECRET_MAX 256
#define REDISURL_SEEDS_MAX  16 /* seed nodes in a redis-cluster:// URL */

typedef struct redisurl {
    char host[REDISURL_HOST_MAX]; /* unix: the socket path */
    int unix_socket;
    int port;
    char user[REDISURL_SECRET_MAX]; /* "" unless redis://user:pw@ (Redis 6 ACL) */
    char password[REDISURL_SECRET_MAX];
    int has_password;
    int db;
    int cluster; /* redis-cluster://: the seeds below (host/port: the first) */
    int nseeds;
    struct {
        char host[REDISURL_HOST_MAX];
        int port;
    } seeds[REDISURL_SEEDS_MAX];
} redisurl;

/* Parses url into *out. Returns 0, or -1 with a one-line reason in err. */
int redisurl_parse(const char *url, redisurl *out, char *err, size_t errlen);

/* Connects synchronously (timeout may be NULL) and runs AUTH and SELECT as the
 * URL asks; for a cluster URL, to the first seed that answers (no SELECT).
 * Returns the context, or NULL with the reason in err. */
redisContext *redisurl_connect(const redisurl *u, const struct timeval *timeout, char *err,
                               size_t errlen);

/* Starts an asynchronous connection (no event loop attached yet). Returns the
 * context or NULL with the reason in err. */
redisAsyncContext *redisurl_async_connect(const redisurl *u, char *err, size_t errlen);

/* Queues AUTH and SELECT (as the URL asks) as the first commands of an async
 * connection: call right after redisurl_async_connect and attaching the loop;
 * later commands are pipelined behind them. On an error reply the prelude logs
 * it and disconnects (the owner's disconnect callback then runs). Returns
 * REDIS_OK or REDIS_ERR. */
int redisurl_async_prelude(redisAsyncContext *ac, const redisurl *u);

/* "host:port/db" or "unix:PATH/db" for log lines (never the password). */
const char *redisurl_describe(const redisurl *u, char *buf, size_t size);

#endif
