/* scripts_cmd.c - builds one script call's KEYS and ARGV (scripts_cmd,
 * scripts_int.h) for the typed calls of scripts.c, and hands it to a runner
 * (scripts_run.c). Building allocates nothing unless a call has more than
 * SCRIPTS_CMD_INLINE strings (a group's members). */
#include "scripts_int.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void scripts_cmd_init(scripts_cmd *c, script_id id)
{
    c->id = id;
    c->nkeys = 0;
    c->n = 0;
    c->cap = SCRIPTS_CMD_INLINE;
    c->failed = 0;
    c->v = c->v_inline;
    c->len = c->len_inline;
    c->used = 0;
}

static void scripts_cmd_release(scripts_cmd *c)
{
    if (c->v != c->v_inline) {
        free(c->v);
        free(c->len);
    }
    c->v = c->v_inline;
    c->len = c->len_inline;
}

/* Room for one more string; 0, or -1 (marked failed). */
static int scripts_cmd_room(scripts_cmd *c)
{
    if (c->failed) return -1;
    if (c->n < c->cap) return 0;
    int cap = 2 * c->cap;
    const char **v = malloc((size_t)cap * sizeof *v);
    size_t *len = malloc((size_t)cap * sizeof *len);
    if (!v || !len) {
        free(v);
        free(len);
        c->failed = 1;
        return -1;
    }
    memcpy(v, c->v, (size_t)c->n * sizeof *v);
    memcpy(len, c->len, (size_t)c->n * sizeof *len);
    scripts_cmd_release(c);
    c->v = v;
    c->len = len;
    c->cap = cap;
    return 0;
}

void scripts_cmd_arg(scripts_cmd *c, const char *p, size_t len)
{
    if (scripts_cmd_room(c) < 0) return;
    c->v[c->n] = p;
    c->len[c->n++] = len;
}

void scripts_cmd_str(scripts_cmd *c, const char *s)
{
    scripts_cmd_arg(c, s, strlen(s));
}

static void scripts_cmd_vfmt(scripts_cmd *c, const char *fmt, va_list ap)
{
    size_t room = sizeof c->scratch - c->used;
    int n = vsnprintf(c->scratch + c->used, room, fmt, ap);
    if (n < 0 || (size_t)n >= room) {
        c->failed = 1;
        return;
    }
    scripts_cmd_arg(c, c->scratch + c->used, (size_t)n);
    c->used += (size_t)n + 1;
}

void scripts_cmd_fmt(scripts_cmd *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    scripts_cmd_vfmt(c, fmt, ap);
    va_end(ap);
}

void scripts_cmd_key(scripts_cmd *c, const char *fmt, ...)
{
    va_list ap;
    if (c->nkeys != c->n) c->failed = 1; /* a key after an ARGV entry */
    va_start(ap, fmt);
    scripts_cmd_vfmt(c, fmt, ap);
    va_end(ap);
    if (!c->failed) c->nkeys = c->n;
}

int scripts_cmd_run(scripts_cmd *c, redisAsyncContext *ac, redisCallbackFn *cb, void *priv)
{
    int rc = c->failed ? REDIS_ERR
                       : scripts_eval(ac, c->id, cb, priv, c->nkeys, c->n - c->nkeys, c->v, c->len);
    scripts_cmd_release(c);
    return rc;
}

/* scripts_set_durable's replicas and timeout (0: none), and its calls in
 * flight (at most scripts_durable_max) */
static int scripts_durable_n, scripts_durable_ms, scripts_durable_max, scripts_durable_live;

void scripts_set_durable(int replicas, int timeout_ms, int max_in_flight)
{
    scripts_durable_n = replicas > 0 ? replicas : 0;
    scripts_durable_ms = timeout_ms;
    scripts_durable_max = max_in_flight > 0 ? max_in_flight : 1;
}

/* A durable call's own callback and its argument, while it runs. */
typedef struct scripts_durable_call {
    redisCallbackFn *cb;
    void *priv;
} scripts_durable_call;

static void scripts_durable_cb(redisAsyncContext *ac, void *r, void *priv)
{
    scripts_durable_call d = *(scripts_durable_call *)priv;
    free(priv);
    scripts_durable_live--;
    d.cb(ac, r, d.priv);
}

int scripts_cmd_run_durable(scripts_cmd *c, redisAsyncContext *ac, redisCallbackFn *cb, void *priv)
{
    if (!scripts_durable_n) return scripts_cmd_run(c, ac, cb, priv);
    scripts_durable_call *d = NULL;
    int rc = REDIS_ERR;
    if (!c->failed && scripts_durable_live < scripts_durable_max && (d = malloc(sizeof *d))) {
        d->cb = cb;
        d->priv = priv;
        rc = scripts_eval_wait(ac, c->id, scripts_durable_cb, d, scripts_durable_n,
                               scripts_durable_ms, c->nkeys, c->n - c->nkeys, c->v, c->len);
        if (rc == REDIS_OK)
            scripts_durable_live++;
        else
            free(d);
    }
    scripts_cmd_release(c);
    return rc;
}

redisReply *scripts_cmd_run_sync(scripts_cmd *c, redisContext *rc)
{
    redisReply *r =
        c->failed ? NULL : scripts_eval_sync(rc, c->id, c->nkeys, c->n - c->nkeys, c->v, c->len);
    scripts_cmd_release(c);
    return r;
}

int scripts_cmd_append(scripts_cmd *c, redisContext *rc)
{
    int r = c->failed ? REDIS_ERR
                      : scripts_append_sync(rc, c->id, c->nkeys, c->n - c->nkeys, c->v, c->len);
    scripts_cmd_release(c);
    return r;
}
