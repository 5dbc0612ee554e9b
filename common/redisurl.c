/* redisurl.c - parsing redis:// URLs and the AUTH/SELECT prelude of a fresh
 * connection, shared by the gateway, the router and the CLI (redisurl.h). */
#include "redisurl.h"

#include "log.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>

static int fail(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int fail(char *err, size_t errlen, const char *fmt, ...)
{
    if (err && errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return -1;
}

static int hexval(int c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* Copies p[0..len) percent-decoded into out (size). Returns 0 or -1. */
static int pct_decode(const char *p, size_t len, char *out, size_t size)
{
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        int c = (unsigned char)p[i];
        if (c == '%') {
            int h, l;
            if (i + 2 >= len) return -1;
            h = hexval((unsigned char)p[i + 1]);
            l = hexval((unsigned char)p[i + 2]);
            if (h < 0 || l < 0) return -1;
            c = h * 16 + l;
            i += 2;
        }
        if (o + 1 >= size) return -1;
        out[o++] = (char)c;
    }
    out[o] = '\0';
    return 0;
}

static int parse_int(const char *p, size_t len, long min, long max, long *out)
{
    char buf[16];
    char *end;
    if (len == 0 || len >= sizeof(buf)) return -1;
    for (size_t i = 0; i < len; i++)
        if (!isdigit((unsigned char)p[i])) return -1;
    memcpy(buf, p, len);
    buf[len] = '\0';
    errno = 0;
    long v = strtol(buf, &end, 10);
    if (errno || *end || v < min || v > max) return -1;
    *out = v;
    return 0;
}

/* userinfo [user]:password@ in p[0..at) into out. */
static int parse_userinfo(const char *p, const char *at, redisurl *out, char *err, size_t errlen)
{
    const char *colon = memchr(p, ':', (size_t)(at - p));
    if (!colon) {
        /* redis://password@host: accepted as a bare password */
        colon = p - 1;
    } else if (colon > p) {
        if (pct_decode(p, (size_t)(colon - p), out->user, sizeof(out->user)) != 0)
            return fail(err, errlen, "redis url: bad user name");
    }
    if (pct_decode(colon + 1, (size_t)(at - colon - 1), out->password, sizeof(out->password)) != 0)
        return fail(err, errlen, "redis url: bad password encoding");
    out->has_password = 1;
    return 0;
}

/* unix://[userinfo@]/absolute/path[?db=N] (p: after the scheme) */
static int parse_unix(const char *p, redisurl *out, char *err, size_t errlen)
{
    const char *slash = strchr(p, '/'), *q, *end;
    long v;
    if (!slash) return fail(err, errlen, "redis url: unix:// needs an absolute socket path");
    const char *at = NULL;
    for (const char *c = p; c < slash; c++)
        if (*c == '@') at = c;
    if (at ? at + 1 != slash : slash != p)
        return fail(err, errlen, "redis url: unix:// takes no host, only /path");
    if (at && parse_userinfo(p, at, out, err, errlen) != 0) return -1;
    q = strchr(slash, '?');
    end = q ? q : slash + strlen(slash);
    if ((size_t)(end - slash) >= sizeof(((struct sockaddr_un *)0)->sun_path))
        return fail(err, errlen, "redis url: socket path too long");
    if (end - slash < 2) return fail(err, errlen, "redis url: missing socket path");
    memcpy(out->host, slash, (size_t)(end - slash));
    out->host[end - slash] = '\0';
    if (q) {
        if (strncmp(q, "?db=", 4) != 0 || parse_int(q + 4, strlen(q + 4), 0, 1000000, &v) != 0)
            return fail(err, errlen, "redis url: after the path only ?db=N is understood");
        out->db = (int)v;
    }
    out->unix_socket = 1;
    out->port = 0;
    return 0;
}

/* host[:port] in p[0..end) (an IPv6 host in brackets) into host (size
 * REDISURL_HOST_MAX) and *port (unchanged when absent). 0, or -1 with err. */
static int parse_hostport(const char *p, const char *end, char *host, int *port, char *err,
                          size_t errlen)
{
    const char *hostend;
    long v;
    if (*p == '[') {
        const char *rb = memchr(p, ']', (size_t)(end - p));
        if (!rb) return fail(err, errlen, "redis url: unterminated [ipv6] host");
        if ((size_t)(rb - p - 1) >= REDISURL_HOST_MAX || rb == p + 1)
            return fail(err, errlen, "redis url: bad host");
        memcpy(host, p + 1, (size_t)(rb - p - 1));
        host[rb - p - 1] = '\0';
        hostend = rb + 1;
        if (hostend < end && *hostend != ':')
            return fail(err, errlen, "redis url: junk after [host]");
    } else {
        hostend = memchr(p, ':', (size_t)(end - p));
        if (!hostend) hostend = end;
        if (hostend == p) return fail(err, errlen, "redis url: missing host");
        if ((size_t)(hostend - p) >= REDISURL_HOST_MAX)
            return fail(err, errlen, "redis url: host too long");
        memcpy(host, p, (size_t)(hostend - p));
        host[hostend - p] = '\0';
    }
    if (hostend < end) { /* ":port" */
        if (parse_int(hostend + 1, (size_t)(end - hostend - 1), 1, 65535, &v) != 0)
            return fail(err, errlen, "redis url: bad port");
        *port = (int)v;
    }
    return 0;
}

/* redis-cluster://[userinfo@]seed[,seed...] (p: after the scheme) */
static int parse_cluster(const char *p, redisurl *out, char *err, size_t errlen)
{
    const char *end = p + strlen(p), *at = NULL;
    if (memchr(p, '/', (size_t)(end - p)) || memchr(p, '?', (size_t)(end - p)))
        return fail(err, errlen,
                    "redis url: redis-cluster:// takes seed nodes only (no /db: a "
                    "cluster has db 0 only)");
    for (const char *q = p; q < end; q++)
        if (*q == '@') at = q;
    if (at) {
        if (parse_userinfo(p, at, out, err, errlen) != 0) return -1;
        p = at + 1;
    }
    while (p <= end) {
        const char *comma = memchr(p, ',', (size_t)(end - p));
        const char *stop = comma ? comma : end;
        if (out->nseeds == REDISURL_SEEDS_MAX)
            return fail(err, errlen, "redis url: more than %d seed nodes", REDISURL_SEEDS_MAX);
        out->seeds[out->nseeds].port = 6379;
        if (parse_hostport(p, stop, out->seeds[out->nseeds].host, &out->seeds[out->nseeds].port,
                           err, errlen) != 0)
            return -1;
        out->nseeds++;
        if (!comma) break;
        p = comma + 1;
    }
    memcpy(out->host, out->seeds[0].host, sizeof out->host);
    out->port = out->seeds[0].port;
    out->cluster = 1;
    return 0;
}

int redisurl_parse(const char *url, redisurl *out, char *err, size_t errlen)
{
    static const char scheme[] = "redis://", uscheme[] = "unix://", cscheme[] = "redis-cluster://";
    const char *p, *end, *at, *slash;
    long v;

    memset(out, 0, sizeof(*out));
    out->port = 6379;
    if (url && strncmp(url, uscheme, sizeof(uscheme) - 1) == 0)
        return parse_unix(url + sizeof(uscheme) - 1, out, err, errlen);
    if (url && strncmp(url, cscheme, sizeof(cscheme) - 1) == 0)
        return parse_cluster(url + sizeof(cscheme) - 1, out, err, errlen);
    if (!url || strncmp(url, scheme, sizeof(scheme) - 1) != 0)
        return fail(err, errlen,
                    "redis url must start with redis://, unix:// or redis-cluster:// (got '%s')",
                    url ? url : "");
    p = url + sizeof(scheme) - 1;
    end = p + strlen(p);
    slash = memchr(p, '/', (size_t)(end - p));
    if (!slash) slash = end;

    /* userinfo: everything before the last '@' of the authority */
    at = NULL;
    for (const char *q = p; q < slash; q++)
        if (*q == '@') at = q;
    if (at) {
        if (parse_userinfo(p, at, out, err, errlen) != 0) return -1;
        p = at + 1;
    }
    if (parse_hostport(p, slash, out->host, &out->port, err, errlen) != 0) return -1;

    /* [/db] */
    if (slash < end && slash + 1 < end) {
        if (parse_int(slash + 1, (size_t)(end - slash - 1), 0, 1000000, &v) != 0)
            return fail(err, errlen, "redis url: bad database number '%s'", slash + 1);
        out->db = (int)v;
    }
    return 0;
}

const char *redisurl_describe(const redisurl *u, char *buf, size_t size)
{
    if (u->unix_socket) {
        snprintf(buf, size, "unix:%s/%d", u->host, u->db);
        return buf;
    }
    const int v6 = strchr(u->host, ':') != NULL;
    if (u->cluster) {
        snprintf(buf, size, "cluster %s%s%s:%d%s", v6 ? "[" : "", u->host, v6 ? "]" : "", u->port,
                 u->nseeds > 1 ? " (and more seeds)" : "");
        return buf;
    }
    snprintf(buf, size, "%s%s%s:%d/%d", v6 ? "[" : "", u->host, v6 ? "]" : "", u->port, u->db);
    return buf;
}

/* Runs one prelude command synchronously; returns 0 or -1 with err set. */
static int sync_cmd(redisContext *c, char *err, size_t errlen, int argc, const char **argv)
{
    redisReply *r = redisCommandArgv(c, argc, argv, NULL);
    if (!r) return fail(err, errlen, "redis %s: %s", argv[0], c->errstr);
    if (r->type == REDIS_REPLY_ERROR) {
        fail(err, errlen, "redis %s: %s", argv[0], r->str);
        freeReplyObject(r);
        return -1;
    }
    freeReplyObject(r);
    return 0;
}

redisContext *redisurl_connect(const redisurl *u, const struct timeval *timeout, char *err,
                               size_t errlen)
{
    char desc[300], dbs[16];
    redisContext *c;
    if (u->cluster) { /* the first seed that answers */
        redisurl one = *u;
        one.cluster = 0;
        for (int i = 0; i < u->nseeds; i++) {
            memcpy(one.host, u->seeds[i].host, sizeof one.host);
            one.port = u->seeds[i].port;
            if ((c = redisurl_connect(&one, timeout, err, errlen))) return c;
        }
        return NULL; /* err: the last seed's reason */
    }
    if (u->unix_socket)
        c = timeout ? redisConnectUnixWithTimeout(u->host, *timeout) : redisConnectUnix(u->host);
    else
        c = timeout ? redisConnectWithTimeout(u->host, u->port, *timeout)
                    : redisConnect(u->host, u->port);
    if (!c) {
        fail(err, errlen, "redis %s: out of memory", redisurl_describe(u, desc, sizeof(desc)));
        return NULL;
    }
    if (c->err) {
        fail(err, errlen, "cannot connect to redis at %s: %s",
             redisurl_describe(u, desc, sizeof(desc)), c->errstr);
        redisFree(c);
        return NULL;
    }
    if (timeout) redisSetTimeout(c, *timeout);
    if (u->has_password) {
        const char *a3[] = {"AUTH", u->user, u->password};
        const char *a2[] = {"AUTH", u->password};
        if (u->user[0] ? sync_cmd(c, err, errlen, 3, a3) : sync_cmd(c, err, errlen, 2, a2)) {
            redisFree(c);
            return NULL;
        }
    }
    if (u->db) {
        snprintf(dbs, sizeof(dbs), "%d", u->db);
        const char *a[] = {"SELECT", dbs};
        if (sync_cmd(c, err, errlen, 2, a)) {
            redisFree(c);
            return NULL;
        }
    }
    return c;
}

redisAsyncContext *redisurl_async_connect(const redisurl *u, char *err, size_t errlen)
{
    char desc[300];
    redisAsyncContext *ac =
        u->unix_socket ? redisAsyncConnectUnix(u->host) : redisAsyncConnect(u->host, u->port);
    if (!ac) {
        fail(err, errlen, "redis %s: out of memory", redisurl_describe(u, desc, sizeof(desc)));
        return NULL;
    }
    if (ac->err) {
        fail(err, errlen, "cannot connect to redis at %s: %s",
             redisurl_describe(u, desc, sizeof(desc)), ac->errstr);
        redisAsyncFree(ac);
        return NULL;
    }
    return ac;
}

static void prelude_cb(redisAsyncContext *ac, void *r, void *privdata)
{
    redisReply *reply = r;
    /* after a refused AUTH the SELECT fails too: say it once */
    if (reply && reply->type == REDIS_REPLY_ERROR && !(ac->c.flags & REDIS_DISCONNECTING)) {
        log_error("redis %s refused: %s", (const char *)privdata, reply->str);
        redisAsyncDisconnect(ac);
    }
}

int redisurl_async_prelude(redisAsyncContext *ac, const redisurl *u)
{
    char dbs[16];
    if (u->has_password) {
        const char *argv[] = {"AUTH", u->user, u->password};
        int rc = u->user[0] ? redisAsyncCommandArgv(ac, prelude_cb, (void *)"AUTH", 3, argv, NULL)
                            : redisAsyncCommandArgv(ac, prelude_cb, (void *)"AUTH", 2,
                                                    (const char *[]){"AUTH", u->password}, NULL);
        if (rc != REDIS_OK) return REDIS_ERR;
    }
    if (u->db) {
        snprintf(dbs, sizeof(dbs), "%d", u->db);
        const char *argv[] = {"SELECT", dbs};
        if (redisAsyncCommandArgv(ac, prelude_cb, (void *)"SELECT", 2, argv, NULL) != REDIS_OK)
            return REDIS_ERR;
    }
    return REDIS_OK;
}
