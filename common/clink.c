/* clink.c - the cluster link (clink.h): hiredis async connections, one per
 * master, commands routed by key slot, redirections followed, the slot map
 * read again when the cluster changes.
 *
 * Lifetimes:
 *  - clink_conn: one per address in use (a master, an ASK target) plus the
 *    subscriber; at most CLUSTER_NODES_MAX, allocated once and kept until
 *    clink_free (an entry no longer in the map is closed and reused later).
 *    Its redisAsyncContext belongs to hiredis, which frees it after the
 *    disconnect callback; `ac` is cleared there. A context dropped on purpose
 *    is detached first (ac cleared before redisAsyncFree), so its connect,
 *    disconnect and handshake callbacks, which compare c->ac, do nothing.
 *  - clink_cmd: one per command, from clink_command_* until its callback ran.
 *    It is either in flight (priv of one hiredis callback, counted in
 *    inflight[slot]) or held in a list (held[slot], or `any` for keyless
 *    commands) waiting for a master, a timer or its slot's earlier commands.
 *  - the probe: a short-lived connection to a seed or a known node that is not
 *    up, for one CLUSTER SLOTS; ac->data is the link. */
#include "clink.h"

#include "log.h"

#include <hiredis/adapters/libevent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#define CLINK_EACH     (-3) /* a clink_each_master command: no routing */
#define CLINK_PROBE_MS 2000 /* a probe's connect + AUTH + CLUSTER SLOTS, at most */
#define CLINK_PUMP_MS  10   /* held commands are looked at this often */
#define CLINK_ADDR_MAX (CLUSTER_HOST_MAX + 8)

typedef struct clink_cmd clink_cmd;
struct clink_cmd {
    clink_cmd *next; /* in a held list */
    clink *l;
    redisCallbackFn *cb;
    void *priv;
    int slot; /* a slot, CLINK_ANY or CLINK_EACH */
    unsigned long long seq;
    long long deadline;   /* ms (monotonic) */
    long long not_before; /* ms: a retried error waits until then */
    int redirects;        /* MOVED, ASK and retries so far */
    int retries;          /* of which retries (their delay doubles) */
    char *ask_host;       /* an ASK: send ASKING and the command there, once */
    int ask_port;
    char *err; /* the last error reply (for a give-up after a wait) */
    size_t errlen;
    int argc;
    const char **argv;
    size_t *lens; /* the strings follow in the same allocation */
};

struct clink_conn {
    clink *l;
    int idx;  /* in l->nodes; -1: the subscriber */
    int used; /* names an address the link wants (reconnected when lost) */
    char host[CLUSTER_HOST_MAX];
    int port;
    char addr[CLINK_ADDR_MAX];
    redisAsyncContext *ac; /* NULL while down */
    int connected;         /* the connect callback said OK */
    int handshake;         /* replies of the first commands still awaited */
    int up;                /* connected and every first command accepted */
    int nslots;            /* slots it owns in l->owner */
    unsigned backoff_ms;
    struct event *retry, *deadline;
    /* the reply timeout: replies read on this connection, the count the last
     * look saw, since when (ms) it has owed replies without one coming */
    unsigned long long answered, seen;
    long long owed_since;
};

struct clink {
    struct event_base *base;
    redisurl url;
    clink_hooks h;
    int stopping;
    int ready;
    int serving; /* some master up (any_up said, all_down not since) */
    unsigned reply_ms;
    struct event *watch_ev; /* the reply timeout's look, every reply_ms / 4 */
    unsigned rr;            /* round robin for keyless commands */
    unsigned long long seq;
    clink_conn *nodes[CLUSTER_NODES_MAX];
    int16_t owner[CLUSTER_SLOTS];         /* node index or -1 */
    int inflight[CLUSTER_SLOTS];          /* commands of the slot sent, not answered */
    int16_t inflight_node[CLUSTER_SLOTS]; /* where the last of them went */
    clink_cmd *held[CLUSTER_SLOTS], *held_tail[CLUSTER_SLOTS];
    int busy[CLUSTER_SLOTS], busypos[CLUSTER_SLOTS]; /* slots with held commands */
    int nbusy;
    clink_cmd *any, *any_tail; /* keyless commands waiting for a master */
    int nheld;
    struct event *pump_ev;
    /* reading the map: one CLUSTER SLOTS at a time */
    struct event *refresh_ev, *probe_deadline;
    long long refresh_due, refresh_last; /* ms: the next read, the last one's start */
    int refreshing, refresh_again, refresh_cursor;
    uintptr_t refresh_gen;
    unsigned refresh_backoff;
    int refresh_failed_logged;
    redisAsyncContext *probe;
    char probe_host[CLUSTER_HOST_MAX];
    cluster_map map; /* the last reply parsed */
    /* the subscriber */
    clink_stats stats;
    int has_sub;
    clink_conn subc;
    unsigned sub_cursor;
    /* the subscriber's probe (the reply timeout for a connection that owes
     * no replies): its own channel, PUBLISHed to through a master every look;
     * a PUBLISH answered more than reply_ms ago whose message has not come
     * means the subscriber's node hangs */
    char probe_chan[64];
    unsigned long long probe_sent, probe_seen, probe_due;
    long long probe_due_at;
    int probe_inflight;
};

static void node_connect(clink_conn *c);
static void refresh_soon(clink *l, unsigned ms);
static void refresh_next(clink *l);
static int conn_init(clink *l, clink_conn *c, int idx);
static void conn_free(clink_conn *c);
static void watch_cb(evutil_socket_t fd, short what, void *arg);
static void sub_probe_msg_cb(redisAsyncContext *ac, void *r, void *priv);
static void sub_watch(clink *l, long long now);

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static struct timeval tv_ms(unsigned ms)
{
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    return tv;
}

/* ---------------------------------------------------------------- pure parts */

static int ieq(const char *a, size_t alen, const char *b)
{
    return alen == strlen(b) && strncasecmp(a, b, alen) == 0;
}

int clink_key_slot(int argc, const char **argv, const size_t *lens)
{
    static const char *const keyless[] = {
        "PING",   "ECHO",    "PUBLISH",  "PUBSUB",  "INFO",     "TIME",      "FUNCTION",
        "SCRIPT", "CLIENT",  "CLUSTER",  "CONFIG",  "COMMAND",  "DBSIZE",    "ROLE",
        "WAIT",   "SLOWLOG", "FLUSHALL", "FLUSHDB", "LASTSAVE", "RANDOMKEY", "HELLO",
        "AUTH",   "MULTI",   "EXEC",     "DISCARD", "UNWATCH",  "READONLY",  "READWRITE",
    };
    static const char *const scripts[] = {"EVAL",       "EVALSHA", "EVAL_RO",
                                          "EVALSHA_RO", "FCALL",   "FCALL_RO"};
    if (argc < 1 || !argv || !argv[0]) return CLINK_BAD;
#define LEN(i) (lens ? lens[i] : strlen(argv[i]))
    size_t n0 = LEN(0);
    for (size_t i = 0; i < sizeof keyless / sizeof *keyless; i++)
        if (ieq(argv[0], n0, keyless[i])) return CLINK_ANY;
    for (size_t i = 0; i < sizeof scripts / sizeof *scripts; i++) {
        if (!ieq(argv[0], n0, scripts[i])) continue;
        if (argc < 3) return CLINK_BAD;
        char buf[16];
        size_t n2 = LEN(2);
        if (n2 == 0 || n2 >= sizeof buf) return CLINK_BAD;
        memcpy(buf, argv[2], n2);
        buf[n2] = '\0';
        char *end;
        long nk = strtol(buf, &end, 10);
        if (*end || nk < 0 || nk > argc - 3) return CLINK_BAD;
        if (nk == 0) return CLINK_ANY;
        return (int)cluster_keyslot(argv[3], LEN(3));
    }
    if (argc < 2) return CLINK_ANY; /* no argument, no key */
    return (int)cluster_keyslot(argv[1], LEN(1));
#undef LEN
}

int clink_order_slot(int argc, const char **argv, const size_t *lens)
{
    int s = clink_key_slot(argc, argv, lens);
    if (s != CLINK_ANY) return s;
    if (argc >= 2 && ieq(argv[0], lens ? lens[0] : strlen(argv[0]), "PUBLISH"))
        return (int)cluster_keyslot(argv[1], lens ? lens[1] : strlen(argv[1]));
    return 0;
}

static int starts(const char *s, size_t len, const char *word)
{
    size_t n = strlen(word);
    return len >= n && memcmp(s, word, n) == 0 && (len == n || s[n] == ' ');
}

int clink_error_kind(const char *err, size_t len)
{
    if (!err) return CLINK_ERR_FINAL;
    if (starts(err, len, "MOVED")) return CLINK_ERR_MOVED;
    if (starts(err, len, "ASK")) return CLINK_ERR_ASK;
    if (starts(err, len, "TRYAGAIN") || starts(err, len, "CLUSTERDOWN") ||
        starts(err, len, "LOADING") || starts(err, len, "MASTERDOWN"))
        return CLINK_ERR_RETRY;
    return CLINK_ERR_FINAL;
}

/* ---------------------------------------------------------------- commands */

static clink_cmd *cmd_new(clink *l, redisCallbackFn *cb, void *priv, int slot, int argc,
                          const char **argv, const size_t *lens)
{
    size_t bytes = 0;
    for (int i = 0; i < argc; i++)
        bytes += lens ? lens[i] : strlen(argv[i]);
    char *mem =
        malloc(sizeof(clink_cmd) + (size_t)argc * (sizeof(char *) + sizeof(size_t)) + bytes);
    if (!mem) return NULL;
    clink_cmd *cmd = (clink_cmd *)mem;
    memset(cmd, 0, sizeof *cmd);
    cmd->l = l;
    cmd->cb = cb;
    cmd->priv = priv;
    cmd->slot = slot;
    cmd->seq = ++l->seq;
    cmd->deadline = now_ms() + CLINK_COMMAND_MS;
    cmd->argc = argc;
    cmd->argv = (const char **)(cmd + 1);
    cmd->lens = (size_t *)(cmd->argv + argc);
    char *data = (char *)(cmd->lens + argc);
    for (int i = 0; i < argc; i++) {
        size_t len = lens ? lens[i] : strlen(argv[i]);
        memcpy(data, argv[i], len);
        cmd->argv[i] = data;
        cmd->lens[i] = len;
        data += len;
    }
    return cmd;
}

static void cmd_free(clink_cmd *cmd)
{
    free(cmd->ask_host);
    free(cmd->err);
    free(cmd);
}

/* The command's one callback, then it is gone. */
static void cmd_deliver(clink_cmd *cmd, redisAsyncContext *ac, redisReply *reply)
{
    if (cmd->cb) cmd->cb(ac, reply, cmd->priv);
    cmd_free(cmd);
}

/* No master took it in time: its last error reply, or one saying why. */
static void cmd_giveup(clink_cmd *cmd)
{
    char buf[128];
    cmd->l->stats.gave_up++;
    redisReply r;
    memset(&r, 0, sizeof r);
    r.type = REDIS_REPLY_ERROR;
    if (cmd->err) {
        r.str = cmd->err;
        r.len = cmd->errlen;
    } else {
        if (cmd->slot >= 0)
            r.len = (size_t)snprintf(buf, sizeof buf,
                                     "CLUSTERDOWN clink: no master of slot %d up within %d ms",
                                     cmd->slot, CLINK_COMMAND_MS);
        else
            r.len = (size_t)snprintf(
                buf, sizeof buf, "CLUSTERDOWN clink: no master up within %d ms", CLINK_COMMAND_MS);
        r.str = buf;
    }
    cmd_deliver(cmd, NULL, &r);
}

static clink_conn *node_find(clink *l, const char *host, int port)
{
    for (int i = 0; i < CLUSTER_NODES_MAX; i++) {
        clink_conn *c = l->nodes[i];
        if (c && c->used && c->port == port && strcmp(c->host, host) == 0) return c;
    }
    return NULL;
}

/* The entry for host:port, made and connecting when new; NULL when the
 * table is full (or no memory). */
static clink_conn *node_get(clink *l, const char *host, int port)
{
    clink_conn *c = node_find(l, host, port);
    if (c || l->stopping) return c;
    for (int i = 0; i < CLUSTER_NODES_MAX; i++) {
        c = l->nodes[i];
        if (c && (c->used || c->ac)) continue; /* in use, or still closing */
        if (!c) {
            c = calloc(1, sizeof *c);
            if (!c) return NULL;
            if (conn_init(l, c, i) != 0) {
                conn_free(c);
                free(c);
                return NULL;
            }
            l->nodes[i] = c;
        }
        c->used = 1;
        c->nslots = 0;
        c->backoff_ms = CLINK_BACKOFF_MIN_MS;
        snprintf(c->host, sizeof c->host, "%s", host);
        c->port = port;
        snprintf(c->addr, sizeof c->addr, "%s%s%s:%d", strchr(host, ':') ? "[" : "", host,
                 strchr(host, ':') ? "]" : "", port);
        node_connect(c);
        return c;
    }
    log_warn("redis cluster: more than %d nodes; %s:%d left out", CLUSTER_NODES_MAX, host, port);
    return NULL;
}

/* The connection a command goes to now (maybe not up), or NULL. */
static clink_conn *any_master(clink *l)
{
    for (int pass = 0; pass < 2; pass++)
        for (unsigned i = 0; i < CLUSTER_NODES_MAX; i++) {
            unsigned k = (l->rr + i) % CLUSTER_NODES_MAX;
            clink_conn *c = l->nodes[k];
            if (c && c->used && c->up && (pass || c->nslots > 0)) {
                l->rr = k + 1;
                return c;
            }
        }
    return NULL;
}

static clink_conn *cmd_target(clink *l, clink_cmd *cmd)
{
    if (cmd->ask_host) return node_get(l, cmd->ask_host, cmd->ask_port);
    if (cmd->slot >= 0) {
        int o = l->owner[cmd->slot];
        return o >= 0 ? l->nodes[o] : NULL;
    }
    return any_master(l);
}

static void clink_reply_cb(redisAsyncContext *ac, void *r, void *priv);

/* Queues cmd on c (up). 0, or -1 when hiredis refuses (c is closing). */
static int cmd_send(clink *l, clink_cmd *cmd, clink_conn *c)
{
    if (cmd->ask_host) {
        if (redisAsyncCommand(c->ac, NULL, NULL, "ASKING") != REDIS_OK) return -1;
        free(cmd->ask_host); /* once */
        cmd->ask_host = NULL;
    }
    if (redisAsyncCommandArgv(c->ac, clink_reply_cb, cmd, cmd->argc, cmd->argv, cmd->lens) !=
        REDIS_OK)
        return -1;
    if (cmd->slot >= 0) {
        l->inflight[cmd->slot]++;
        l->inflight_node[cmd->slot] = (int16_t)c->idx;
    }
    return 0;
}

static void pump_soon(clink *l)
{
    struct timeval tv = {0, 0};
    if (!l->stopping) evtimer_add(l->pump_ev, &tv);
}

/* Into its slot's held list, in the order the commands were given (a
 * redirected command goes back before the commands given after it). */
static void cmd_hold(clink *l, clink_cmd *cmd)
{
    cmd->next = NULL;
    l->nheld++;
    if (cmd->slot < 0) {
        if (l->any_tail)
            l->any_tail->next = cmd;
        else
            l->any = cmd;
        l->any_tail = cmd;
    } else {
        int s = cmd->slot;
        if (!l->held[s]) {
            l->held[s] = l->held_tail[s] = cmd;
            l->busypos[s] = l->nbusy;
            l->busy[l->nbusy++] = s;
        } else if (l->held_tail[s]->seq < cmd->seq) {
            l->held_tail[s]->next = cmd;
            l->held_tail[s] = cmd;
        } else {
            clink_cmd **p = &l->held[s];
            while (*p && (*p)->seq < cmd->seq)
                p = &(*p)->next;
            cmd->next = *p;
            *p = cmd;
        }
    }
    pump_soon(l);
}

static clink_cmd *held_pop(clink *l, int s)
{
    clink_cmd *cmd = l->held[s];
    l->held[s] = cmd->next;
    l->nheld--;
    if (!l->held[s]) {
        l->held_tail[s] = NULL;
        int pos = l->busypos[s], last = l->busy[--l->nbusy];
        l->busy[pos] = last;
        l->busypos[last] = pos;
    }
    cmd->next = NULL;
    return cmd;
}

static void held_push_front(clink *l, int s, clink_cmd *cmd)
{
    if (!l->held[s]) {
        l->held_tail[s] = cmd;
        l->busypos[s] = l->nbusy;
        l->busy[l->nbusy++] = s;
    }
    cmd->next = l->held[s];
    l->held[s] = cmd;
    l->nheld++;
}

/* Sends what slot s holds, in order, once the slot's earlier commands were
 * answered: a run of commands to one connection (pipelined), up to the first
 * that must wait (a timer, a master not up, another connection). */
static void pump_slot(clink *l, int s, long long now)
{
    clink_conn *batch = NULL;
    if (l->inflight[s] > 0) {
        /* only the deadlines */
        while (l->held[s] && now >= l->held[s]->deadline && !l->stopping)
            cmd_giveup(held_pop(l, s));
        return;
    }
    clink_cmd *cmd;
    while (!l->stopping && (cmd = l->held[s])) {
        if (now >= cmd->deadline) {
            cmd_giveup(held_pop(l, s));
            continue;
        }
        if (cmd->not_before > now) return;
        clink_conn *c = cmd_target(l, cmd);
        if (!c || !c->up) {
            /* waiting for a master: the map is read every CLINK_REFRESH_MS
             * meanwhile (a promoted replica is seen at once), not only at the
             * backoff of a link that is not ready */
            refresh_soon(l, CLINK_REFRESH_MS);
            return;
        }
        if (batch && c != batch) return;
        held_pop(l, s);
        if (cmd_send(l, cmd, c) != 0) {
            held_push_front(l, s, cmd);
            return;
        }
        batch = c;
    }
}

static void pump_any(clink *l, long long now)
{
    clink_cmd **p = &l->any, *prev = NULL;
    while (!l->stopping && *p) {
        clink_cmd *cmd = *p;
        clink_conn *c = NULL;
        int late = now >= cmd->deadline;
        if (!late && (cmd->not_before > now || !(c = any_master(l)) || !c->up)) {
            prev = cmd;
            p = &cmd->next;
            continue;
        }
        *p = cmd->next; /* out of the list */
        if (l->any_tail == cmd) l->any_tail = prev;
        l->nheld--;
        cmd->next = NULL;
        if (late) {
            cmd_giveup(cmd);
        } else if (cmd_send(l, cmd, c) != 0) {
            cmd_giveup(cmd);
        }
        p = prev ? &prev->next : &l->any; /* the callback may have added to the list */
    }
}

static void pump_cb(evutil_socket_t fd, short what, void *arg)
{
    clink *l = arg;
    long long now = now_ms();
    for (int i = 0; i < l->nbusy && !l->stopping;) {
        int s = l->busy[i];
        pump_slot(l, s, now);
        if (i < l->nbusy && l->busy[i] == s) i++; /* else s left: another is at i */
    }
    pump_any(l, now);
    if (l->nheld && !l->stopping) {
        struct timeval tv = tv_ms(CLINK_PUMP_MS);
        evtimer_add(l->pump_ev, &tv);
    }
}

static void set_owner(clink *l, int slot, clink_conn *c)
{
    int old = l->owner[slot];
    if (old >= 0 && l->nodes[old]) l->nodes[old]->nslots--;
    l->owner[slot] = (int16_t)(c ? c->idx : -1);
    if (c) c->nslots++;
}

static void ready_check(clink *l)
{
    int ok = 1;
    for (unsigned s = 0; s < CLUSTER_SLOTS && ok; s++) {
        int o = l->owner[s];
        ok = o >= 0 && l->nodes[o] && l->nodes[o]->up;
    }
    int serving = ok || clink_up_masters(l) > 0;
    if (l->stopping) return;
    if (serving && !l->serving) {
        l->serving = 1;
        if (l->h.any_up) l->h.any_up(l, l->h.arg);
        if (l->stopping) return;
    }
    if (ok != l->ready) {
        l->ready = ok;
        if (ok) {
            char buf[128];
            l->refresh_backoff = CLINK_BACKOFF_MIN_MS;
            l->refresh_failed_logged = 0;
            log_info("redis %s", clink_describe(l, buf, sizeof buf));
            if (l->h.ready) l->h.ready(l, l->h.arg);
        } else {
            char buf[128];
            log_warn("redis %s: commands of the slots without one wait",
                     clink_describe(l, buf, sizeof buf));
            refresh_soon(l, 0);
            if (l->h.down) l->h.down(l, l->h.arg);
        }
        if (l->stopping) return;
    }
    if (!serving && l->serving) {
        l->serving = 0;
        if (l->h.all_down) l->h.all_down(l, l->h.arg);
    }
}

/* A command's reply: to its callback, or followed (a redirection, a retried
 * error) back into its slot's held list. */
static void clink_reply_cb(redisAsyncContext *ac, void *r, void *priv)
{
    clink_cmd *cmd = priv;
    clink *l = cmd->l;
    redisReply *reply = r;
    const int s = cmd->slot;
    if (s >= 0) l->inflight[s]--;
    if (reply && ac && ac->data) ((clink_conn *)ac->data)->answered++;
    if (s == CLINK_EACH || !reply || l->stopping || reply->type != REDIS_REPLY_ERROR) {
        cmd_deliver(cmd, ac, reply);
        goto out;
    }
    int kind = clink_error_kind(reply->str, reply->len);
    long long now = now_ms();
    unsigned delay = 0;
    if (kind == CLINK_ERR_RETRY) {
        delay = CLINK_RETRY_MS << (cmd->retries < 3 ? cmd->retries : 3);
        if (delay > CLINK_RETRY_MAX_MS) delay = CLINK_RETRY_MAX_MS;
    }
    cluster_redirect rd;
    if (kind == CLINK_ERR_FINAL || ++cmd->redirects > CLINK_REDIRECTS_MAX ||
        now + delay >= cmd->deadline ||
        (kind != CLINK_ERR_RETRY && cluster_parse_redirect(reply->str, reply->len, &rd) != 1)) {
        cmd_deliver(cmd, ac, reply);
        goto out;
    }
    char *copy = malloc(reply->len + 1);
    if (!copy) {
        cmd_deliver(cmd, ac, reply);
        goto out;
    }
    memcpy(copy, reply->str, reply->len);
    copy[reply->len] = '\0';
    free(cmd->err);
    cmd->err = copy;
    cmd->errlen = reply->len;
    cmd->not_before = 0;
    if (kind == CLINK_ERR_MOVED) {
        clink_conn *c = node_get(l, rd.host, rd.port);
        if (!c) {
            cmd_deliver(cmd, ac, reply);
            goto out;
        }
        if (l->owner[rd.slot] != c->idx) {
            set_owner(l, (int)rd.slot, c);
            ready_check(l);
        }
        refresh_soon(l, CLINK_REFRESH_MS);
        l->stats.moved++;
    } else if (kind == CLINK_ERR_ASK) {
        l->stats.ask++;
        free(cmd->ask_host);
        cmd->ask_host = strdup(rd.host);
        cmd->ask_port = rd.port;
        if (!cmd->ask_host) {
            cmd_deliver(cmd, ac, reply);
            goto out;
        }
    } else {
        cmd->not_before = now + delay;
        cmd->retries++;
        l->stats.retried++;
        if (starts(reply->str, reply->len, "CLUSTERDOWN")) refresh_soon(l, CLINK_REFRESH_MS);
    }
    cmd_hold(l, cmd);
out:
    if (s >= 0 && !l->stopping && l->held[s] && l->inflight[s] == 0) pump_soon(l);
}

static int clink_submit(clink *l, clink_cmd *cmd)
{
    if (l->nheld >= CLINK_HELD_MAX) {
        cmd_free(cmd);
        return REDIS_ERR;
    }
    /* behind the slot's held commands, and behind its commands in flight on
     * another connection (the slot moved: they may come back redirected) */
    const int s = cmd->slot;
    clink_conn *c = cmd_target(l, cmd);
    int waits =
        s >= 0 && (l->held[s] || (c && l->inflight[s] > 0 && l->inflight_node[s] != c->idx));
    if (!waits && c && c->up && cmd_send(l, cmd, c) == 0) return REDIS_OK;
    if (!c && cmd->slot >= 0) refresh_soon(l, 0);
    cmd_hold(l, cmd);
    return REDIS_OK;
}

int clink_command_slot(clink *l, int slot, redisCallbackFn *cb, void *priv, int argc,
                       const char **argv, const size_t *lens)
{
    if (!l || l->stopping || argc < 1 || !argv || slot >= (int)CLUSTER_SLOTS) return REDIS_ERR;
    if (slot < 0) slot = CLINK_ANY;
    clink_cmd *cmd = cmd_new(l, cb, priv, slot, argc, argv, lens);
    if (!cmd) return REDIS_ERR;
    return clink_submit(l, cmd);
}

int clink_command_argv(clink *l, redisCallbackFn *cb, void *priv, int argc, const char **argv,
                       const size_t *lens)
{
    if (argc < 1 || !argv) return REDIS_ERR;
    int slot = clink_key_slot(argc, argv, lens);
    /* a bad numkeys: any master answers the error */
    return clink_command_slot(l, slot < 0 ? -1 : slot, cb, priv, argc, argv, lens);
}

int clink_command_ordered(clink *l, redisCallbackFn *cb, void *priv, int argc, const char **argv,
                          const size_t *lens)
{
    if (argc < 1 || !argv) return REDIS_ERR;
    int slot = clink_order_slot(argc, argv, lens);
    if (slot == CLINK_BAD) return clink_command_argv(l, cb, priv, argc, argv, lens);
    /* its order master is away: any other (what was sent there comes back NULL) */
    if (clink_key_slot(argc, argv, lens) == CLINK_ANY && l && !clink_slot_up(l, slot))
        slot = CLINK_ANY;
    return clink_command_slot(l, slot, cb, priv, argc, argv, lens);
}

int clink_each_master(clink *l, redisCallbackFn *cb, void *priv, int argc, const char **argv,
                      const size_t *lens)
{
    int sent = 0;
    if (!l || l->stopping || argc < 1) return 0;
    for (int i = 0; i < CLUSTER_NODES_MAX; i++) {
        clink_conn *c = l->nodes[i];
        if (!c || !c->used || !c->up || c->nslots == 0) continue;
        clink_cmd *cmd = cmd_new(l, cb, priv, CLINK_EACH, argc, argv, lens);
        if (!cmd) return -1;
        if (cmd_send(l, cmd, c) != 0) {
            cmd_free(cmd);
            continue;
        }
        sent++;
    }
    return sent;
}

/* ---------------------------------------------------------------- connections */

static void node_lost(clink_conn *c);

static void node_schedule(clink_conn *c)
{
    clink *l = c->l;
    if (l->stopping || !c->used) return;
    struct timeval tv = tv_ms(c->backoff_ms);
    evtimer_add(c->retry, &tv);
    c->backoff_ms =
        c->backoff_ms * 2 > CLINK_BACKOFF_MAX_MS ? CLINK_BACKOFF_MAX_MS : c->backoff_ms * 2;
}

static const char *node_role(const clink_conn *c)
{
    return c->idx < 0 ? "subscriber" : "master";
}

/* Drops c's context on purpose (a refused or unanswered handshake) and tries
 * again after the backoff. Safe inside one of its callbacks. */
static void node_abort(clink_conn *c)
{
    redisAsyncContext *ac = c->ac;
    c->ac = NULL; /* detached */
    c->connected = c->up = c->handshake = 0;
    evtimer_del(c->deadline);
    if (ac) redisAsyncFree(ac);
    node_lost(c);
}

/* After c went down (or never came up): the subscriber moves to another
 * node; a master's slots are read again and c reconnects. */
static void node_lost(clink_conn *c)
{
    clink *l = c->l;
    if (l->stopping) return;
    if (c->idx < 0) {
        l->sub_cursor++;
        node_schedule(c);
        return;
    }
    ready_check(l);
    if (c->nslots > 0) refresh_soon(l, 0);
    node_schedule(c);
}

static void node_maybe_up(clink_conn *c)
{
    clink *l = c->l;
    if (c->up || !c->connected || c->handshake > 0 || l->stopping) return;
    evtimer_del(c->deadline);
    c->up = 1;
    c->backoff_ms = CLINK_BACKOFF_MIN_MS;
    log_info("redis cluster %s connection to %s up", node_role(c), c->addr);
    if (c->idx < 0) {
        l->probe_seen = l->probe_sent; /* what was published before is not awaited */
        l->probe_due = 0;
        if (redisAsyncCommand(c->ac, sub_probe_msg_cb, l, "SUBSCRIBE %s", l->probe_chan) !=
            REDIS_OK)
            log_warn("redis cluster subscriber: cannot subscribe to its probe channel");
        if (l->h.subscriber_up) l->h.subscriber_up(l, l->h.arg);
        return;
    }
    ready_check(l);
    pump_soon(l);
}

/* Its probe channel's messages on the subscriber (and the confirmation). */
static void sub_probe_msg_cb(redisAsyncContext *ac, void *r, void *priv)
{
    clink *l = priv;
    redisReply *rep = r;
    (void)ac;
    if (!rep || rep->type != REDIS_REPLY_ARRAY || rep->elements < 3 ||
        rep->element[0]->type != REDIS_REPLY_STRING || strcmp(rep->element[0]->str, "message") ||
        rep->element[2]->type != REDIS_REPLY_STRING)
        return;
    unsigned long long seq = strtoull(rep->element[2]->str, NULL, 10);
    if (seq > l->probe_seen) l->probe_seen = seq;
    if (l->probe_due && l->probe_seen >= l->probe_due) l->probe_due = 0;
}

typedef struct sub_probe {
    clink *l;
    unsigned long long seq;
} sub_probe;

/* A probe PUBLISH answered: its message is due on the subscriber from now. */
static void sub_probe_pub_cb(redisAsyncContext *ac, void *r, void *priv)
{
    sub_probe *p = priv;
    clink *l = p->l;
    redisReply *rep = r;
    (void)ac;
    l->probe_inflight = 0;
    if (rep && rep->type == REDIS_REPLY_INTEGER && !l->stopping && p->seq > l->probe_seen &&
        !l->probe_due) {
        l->probe_due = p->seq;
        l->probe_due_at = now_ms();
    }
    free(p);
}

/* The subscriber's look (from watch_cb): the next probe, or the subscriber
 * dropped as lost when an answered one's message is overdue. */
static void sub_watch(clink *l, long long now)
{
    clink_conn *c = &l->subc;
    if (!l->has_sub || !c->up || !c->ac) return;
    int unread = 0; /* in but not read: reads paused by the owner, or this loop busy */
    if (l->probe_due && now - l->probe_due_at >= (long long)l->reply_ms &&
        !(c->ac->c.fd >= 0 && ioctl(c->ac->c.fd, FIONREAD, &unread) == 0 && unread > 0)) {
        l->stats.timeouts++;
        log_warn("redis cluster subscriber %s: its probe message did not come within %u ms; "
                 "dropping the connection as lost",
                 c->addr, l->reply_ms);
        l->probe_due = 0;
        redisAsyncContext *ac = c->ac;
        c->ac = NULL; /* detached: as a lost connection, without its disconnect callback */
        c->connected = c->up = c->handshake = 0;
        evtimer_del(c->deadline);
        redisAsyncFree(ac); /* the subscriptions' callbacks get NULL */
        if (l->h.subscriber_down) l->h.subscriber_down(l, l->h.arg);
        node_lost(c);
        return;
    }
    if (l->probe_inflight) return;
    sub_probe *p = malloc(sizeof *p);
    if (!p) return;
    p->l = l;
    p->seq = ++l->probe_sent;
    char seq[24];
    snprintf(seq, sizeof seq, "%llu", p->seq);
    const char *argv[] = {"PUBLISH", l->probe_chan, seq};
    if (clink_command_slot(l, -1, sub_probe_pub_cb, p, 3, argv, NULL) != REDIS_OK) {
        free(p);
        return;
    }
    l->probe_inflight = 1;
}

static void node_handshake_cb(redisAsyncContext *ac, void *r, void *priv)
{
    clink_conn *c = ac->data;
    redisReply *rep = r;
    if (!c || c->ac != ac || !rep) return; /* an old context, or lost: disconnect handles it */
    c->answered++;
    if (rep->type == REDIS_REPLY_ERROR) {
        log_warn("redis cluster %s connection to %s: a first command refused: %s; retrying in "
                 "%u ms",
                 node_role(c), c->addr, rep->str, c->backoff_ms);
        node_abort(c);
        return;
    }
    c->handshake--;
    node_maybe_up(c);
}

static void node_deadline_cb(evutil_socket_t fd, short what, void *arg)
{
    clink_conn *c = arg;
    if (c->up || !c->ac) return;
    log_warn("redis cluster %s connection to %s: no answer within %d ms; retrying in %u ms",
             node_role(c), c->addr, CLINK_HANDSHAKE_MS, c->backoff_ms);
    node_abort(c);
}

static void node_on_connect(const redisAsyncContext *ac, int status)
{
    clink_conn *c = ac->data;
    if (!c || c->ac != ac) return;
    if (status != REDIS_OK) {
        log_warn("redis cluster %s connection to %s failed: %s", node_role(c), c->addr, ac->errstr);
        c->ac = NULL; /* hiredis frees it */
        c->connected = c->up = c->handshake = 0;
        evtimer_del(c->deadline);
        node_lost(c);
        return;
    }
    c->connected = 1;
    node_maybe_up(c);
}

static void node_on_disconnect(const redisAsyncContext *ac, int status)
{
    clink_conn *c = ac->data;
    if (!c || c->ac != ac) return;
    int was_up = c->up;
    c->ac = NULL;
    c->connected = c->up = c->handshake = 0;
    evtimer_del(c->deadline);
    if (!c->used || c->l->stopping) return; /* closed on purpose */
    log_warn("redis cluster %s connection to %s lost%s%s", node_role(c), c->addr,
             ac->errstr[0] ? ": " : "", ac->errstr);
    if (c->idx < 0 && was_up && c->l->h.subscriber_down) c->l->h.subscriber_down(c->l, c->l->h.arg);
    node_lost(c);
}

/* The subscriber's next address: the map's masters, then the seeds, in turn. */
static void sub_pick(clink *l, clink_conn *c)
{
    int n = 0;
    for (int i = 0; i < CLUSTER_NODES_MAX; i++)
        if (l->nodes[i] && l->nodes[i]->used && l->nodes[i]->nslots > 0) n++;
    unsigned k = l->sub_cursor % (unsigned)(n + l->url.nseeds);
    if (k < (unsigned)n) {
        for (int i = 0; i < CLUSTER_NODES_MAX; i++) {
            clink_conn *m = l->nodes[i];
            if (!m || !m->used || m->nslots == 0) continue;
            if (k-- == 0) {
                snprintf(c->host, sizeof c->host, "%s", m->host);
                c->port = m->port;
                break;
            }
        }
    } else {
        k -= (unsigned)n;
        snprintf(c->host, sizeof c->host, "%s", l->url.seeds[k].host);
        c->port = l->url.seeds[k].port;
    }
    snprintf(c->addr, sizeof c->addr, "%s%s%s:%d", strchr(c->host, ':') ? "[" : "", c->host,
             strchr(c->host, ':') ? "]" : "", c->port);
}

static void node_connect(clink_conn *c)
{
    clink *l = c->l;
    char err[256];
    if (l->stopping || !c->used || c->ac) return;
    if (c->idx < 0) sub_pick(l, c);
    redisurl u = l->url;
    u.cluster = 0;
    u.unix_socket = 0;
    u.db = 0;
    snprintf(u.host, sizeof u.host, "%s", c->host);
    u.port = c->port;
    redisAsyncContext *ac = redisurl_async_connect(&u, err, sizeof err);
    if (!ac) {
        log_warn("redis cluster %s connection: %s", node_role(c), err);
        node_lost(c);
        return;
    }
    c->ac = ac;
    c->connected = c->up = c->handshake = 0;
    ac->data = c;
    redisLibeventAttach(ac, l->base);
    redisEnableKeepAlive(&ac->c);
    redisAsyncSetConnectCallback(ac, node_on_connect);
    redisAsyncSetDisconnectCallback(ac, node_on_disconnect);
    redisurl_async_prelude(ac, &u); /* AUTH; disconnects on an error reply */
    if (l->h.handshake) l->h.handshake(l, c, c->idx < 0, l->h.arg);
    struct timeval tv = tv_ms(CLINK_HANDSHAKE_MS);
    if (c->ac == ac) evtimer_add(c->deadline, &tv);
}

static void node_retry_cb(evutil_socket_t fd, short what, void *arg)
{
    clink_conn *c = arg;
    if (!c->l->stopping && c->used && !c->ac) node_connect(c);
}

/* Stops using c (no longer in the map): pending replies still come, then it
 * closes. */
static void node_close(clink_conn *c)
{
    c->used = 0;
    c->up = 0;
    evtimer_del(c->retry);
    evtimer_del(c->deadline);
    log_info("redis cluster: %s left the map, closing its connection", c->addr);
    if (!c->ac) return;
    if (c->connected) {
        redisAsyncDisconnect(c->ac); /* on_disconnect clears c->ac */
    } else {
        redisAsyncContext *ac = c->ac;
        c->ac = NULL;
        redisAsyncFree(ac);
    }
}

int clink_conn_command(clink_conn *c, int argc, const char **argv, const size_t *lens)
{
    if (!c || !c->ac) return REDIS_ERR;
    if (redisAsyncCommandArgv(c->ac, node_handshake_cb, NULL, argc, argv, lens) != REDIS_OK)
        return REDIS_ERR;
    c->handshake++;
    return REDIS_OK;
}

const char *clink_conn_addr(const clink_conn *c)
{
    return c->addr;
}

/* ---------------------------------------------------------------- the map */

static void map_apply(clink *l, const cluster_map *m)
{
    int idx[CLUSTER_NODES_MAX];
    for (int i = 0; i < m->nnodes; i++) {
        clink_conn *c = node_get(l, m->nodes[i].host, m->nodes[i].port);
        idx[i] = c ? c->idx : -1;
    }
    for (int i = 0; i < CLUSTER_NODES_MAX; i++)
        if (l->nodes[i]) l->nodes[i]->nslots = 0;
    for (unsigned s = 0; s < CLUSTER_SLOTS; s++) {
        int o = m->owner[s] >= 0 ? idx[m->owner[s]] : -1;
        l->owner[s] = (int16_t)o;
        if (o >= 0) l->nodes[o]->nslots++;
    }
    for (int i = 0; i < CLUSTER_NODES_MAX; i++) {
        clink_conn *c = l->nodes[i];
        if (!c || !c->used || c->nslots > 0) continue;
        int asked = 0; /* an ASK target of a held command stays */
        for (int k = 0; k < l->nbusy && !asked; k++)
            for (clink_cmd *x = l->held[l->busy[k]]; x && !asked; x = x->next)
                asked = x->ask_host && x->ask_port == c->port && strcmp(x->ask_host, c->host) == 0;
        if (!asked) node_close(c);
    }
    ready_check(l);
    pump_soon(l);
}

static void refresh_retry(clink *l)
{
    refresh_soon(l, l->refresh_backoff);
    l->refresh_backoff = l->refresh_backoff * 2 > CLINK_BACKOFF_MAX_MS ? CLINK_BACKOFF_MAX_MS
                                                                       : l->refresh_backoff * 2;
}

/* A CLUSTER SLOTS reply from host: applied, or the next source is asked. */
static void refresh_reply(clink *l, const redisReply *r, const char *host)
{
    char err[160];
    if (!r || r->type != REDIS_REPLY_ARRAY) {
        if (r && r->type == REDIS_REPLY_ERROR)
            log_warn("redis cluster: CLUSTER SLOTS on %s: %s", host, r->str);
        refresh_next(l);
        return;
    }
    if (cluster_map_from_slots(&l->map, r, host, err, sizeof err) != 0 || l->map.covered == 0) {
        log_warn("redis cluster: %s: %s", host, l->map.covered ? err : "no slot assigned");
        refresh_next(l);
        return;
    }
    l->refreshing = 0;
    l->stats.map_reads++;
    map_apply(l, &l->map);
    if (l->stopping) return;
    if (l->refresh_again) {
        l->refresh_again = 0;
        refresh_soon(l, CLINK_REFRESH_MS);
    } else if (!l->ready) {
        refresh_retry(l);
    }
}

static void refresh_node_cb(redisAsyncContext *ac, void *r, void *priv)
{
    clink_conn *c = ac->data;
    clink *l = c->l;
    if (r) c->answered++;
    if (!l->refreshing || (uintptr_t)priv != l->refresh_gen || l->stopping) return;
    refresh_reply(l, r, c->host);
}

static void probe_slots_cb(redisAsyncContext *ac, void *r, void *priv)
{
    clink *l = ac->data;
    if (ac != l->probe || (uintptr_t)priv != l->refresh_gen) return;
    l->probe = NULL;
    evtimer_del(l->probe_deadline);
    if (r) redisAsyncDisconnect(ac); /* after this callback */
    if (l->stopping) return;
    refresh_reply(l, r, l->probe_host);
}

static void probe_on_connect(const redisAsyncContext *ac, int status)
{
    /* a failure: the CLUSTER SLOTS callback gets NULL next */
    if (status != REDIS_OK) log_debug("redis cluster: probe connect failed: %s", ac->errstr);
}

static void probe_on_disconnect(const redisAsyncContext *ac, int status)
{
}

static void probe_deadline_cb(evutil_socket_t fd, short what, void *arg)
{
    clink *l = arg;
    redisAsyncContext *ac = l->probe;
    if (!ac) return;
    l->probe = NULL;
    l->refresh_gen++; /* its callback, NULL now, is stale */
    log_warn("redis cluster: %s did not answer CLUSTER SLOTS within %d ms", l->probe_host,
             CLINK_PROBE_MS);
    redisAsyncFree(ac);
    refresh_next(l);
}

/* A one-off connection to host:port for CLUSTER SLOTS. 0, or -1 when it
 * cannot even start. */
static int probe_open(clink *l, const char *host, int port)
{
    char err[256];
    redisurl u = l->url;
    u.cluster = 0;
    u.unix_socket = 0;
    u.db = 0;
    snprintf(u.host, sizeof u.host, "%s", host);
    u.port = port;
    redisAsyncContext *ac = redisurl_async_connect(&u, err, sizeof err);
    if (!ac) {
        log_debug("redis cluster: %s", err);
        return -1;
    }
    ac->data = l;
    redisLibeventAttach(ac, l->base);
    redisAsyncSetConnectCallback(ac, probe_on_connect);
    redisAsyncSetDisconnectCallback(ac, probe_on_disconnect);
    redisurl_async_prelude(ac, &u);
    uintptr_t gen = ++l->refresh_gen;
    if (redisAsyncCommand(ac, probe_slots_cb, (void *)gen, "CLUSTER SLOTS") != REDIS_OK) {
        redisAsyncFree(ac);
        return -1;
    }
    l->probe = ac;
    snprintf(l->probe_host, sizeof l->probe_host, "%s", host);
    struct timeval tv = tv_ms(CLINK_PROBE_MS);
    evtimer_add(l->probe_deadline, &tv);
    return 0;
}

/* Asks the next source for the map: an up master's connection, a seed, a
 * known node that is not up; none left: again after the backoff. */
static void refresh_next(clink *l)
{
    const int nn = CLUSTER_NODES_MAX, total = 2 * nn + l->url.nseeds;
    while (!l->stopping && l->refresh_cursor < total) {
        int k = l->refresh_cursor++;
        if (k < nn) {
            clink_conn *c = l->nodes[k];
            if (!c || !c->used || !c->up) continue;
            uintptr_t gen = ++l->refresh_gen;
            if (redisAsyncCommand(c->ac, refresh_node_cb, (void *)gen, "CLUSTER SLOTS") == REDIS_OK)
                return;
            continue;
        }
        k -= nn;
        if (k < l->url.nseeds) {
            if (probe_open(l, l->url.seeds[k].host, l->url.seeds[k].port) == 0) return;
            continue;
        }
        k -= l->url.nseeds;
        clink_conn *c = l->nodes[k];
        if (c && c->used && !c->up && probe_open(l, c->host, c->port) == 0) return;
    }
    l->refreshing = 0;
    if (l->stopping) return;
    if (!l->refresh_failed_logged) {
        log_warn("redis cluster: no node answered CLUSTER SLOTS; retrying (backoff up to %d ms)",
                 CLINK_BACKOFF_MAX_MS);
        l->refresh_failed_logged = 1;
    }
    l->refresh_again = 0;
    refresh_retry(l);
}

static void refresh_cb(evutil_socket_t fd, short what, void *arg)
{
    clink *l = arg;
    if (l->stopping || l->refreshing) return;
    l->refreshing = 1;
    l->refresh_again = 0;
    l->refresh_cursor = 0;
    l->refresh_last = now_ms();
    refresh_next(l);
}

/* Reads the map in ms (or sooner if already due sooner), but never sooner
 * than CLINK_REFRESH_MS after the last read started (a storm of MOVED or
 * CLUSTERDOWN replies makes at most one read per period); during a read, once
 * more after it. */
static void refresh_soon(clink *l, unsigned ms)
{
    if (l->stopping) return;
    if (l->refreshing) {
        l->refresh_again = 1;
        return;
    }
    long long now = now_ms(), due = now + ms;
    if (l->refresh_last && due < l->refresh_last + CLINK_REFRESH_MS)
        due = l->refresh_last + CLINK_REFRESH_MS;
    if (evtimer_pending(l->refresh_ev, NULL) && l->refresh_due <= due) return;
    l->refresh_due = due;
    struct timeval tv = tv_ms((unsigned)(due - now));
    evtimer_add(l->refresh_ev, &tv);
}

/* ---------------------------------------------------------------- the link */

static int conn_init(clink *l, clink_conn *c, int idx)
{
    c->l = l;
    c->idx = idx;
    c->backoff_ms = CLINK_BACKOFF_MIN_MS;
    c->retry = evtimer_new(l->base, node_retry_cb, c);
    c->deadline = evtimer_new(l->base, node_deadline_cb, c);
    return c->retry && c->deadline ? 0 : -1;
}

clink *clink_new(struct event_base *base, const redisurl *u, const clink_hooks *h, char *err,
                 size_t errlen)
{
    if (!u || !u->cluster || u->nseeds < 1) {
        snprintf(err, errlen, "redis cluster: the URL names no seed (redis-cluster://host:port)");
        return NULL;
    }
    clink *l = calloc(1, sizeof *l);
    if (!l) {
        snprintf(err, errlen, "redis cluster: out of memory");
        return NULL;
    }
    l->base = base;
    l->url = *u;
    if (h) l->h = *h;
    for (unsigned s = 0; s < CLUSTER_SLOTS; s++)
        l->owner[s] = -1;
    l->refresh_backoff = CLINK_BACKOFF_MIN_MS;
    l->pump_ev = evtimer_new(base, pump_cb, l);
    l->refresh_ev = evtimer_new(base, refresh_cb, l);
    l->probe_deadline = evtimer_new(base, probe_deadline_cb, l);
    l->watch_ev = event_new(base, -1, EV_PERSIST, watch_cb, l);
    l->has_sub = h && h->subscriber_up;
    snprintf(l->probe_chan, sizeof l->probe_chan, "clink:probe:%ld:%p", (long)getpid(), (void *)l);
    if (!l->pump_ev || !l->refresh_ev || !l->probe_deadline || !l->watch_ev ||
        (l->has_sub && conn_init(l, &l->subc, -1) != 0)) {
        snprintf(err, errlen, "redis cluster: out of memory");
        clink_free(l);
        return NULL;
    }
    refresh_soon(l, 0);
    clink_set_reply_timeout(l, CLINK_REPLY_MS);
    if (l->has_sub) {
        l->subc.used = 1;
        node_connect(&l->subc);
    }
    return l;
}

int clink_ready(const clink *l)
{
    return l && l->ready;
}

int clink_serving(const clink *l)
{
    return l && l->serving;
}

int clink_slot_up(const clink *l, int slot)
{
    if (!l || slot < 0 || slot >= (int)CLUSTER_SLOTS) return 0;
    int o = l->owner[slot];
    return o >= 0 && l->nodes[o] && l->nodes[o]->used && l->nodes[o]->up;
}

int clink_key_up(const clink *l, const char *key, size_t len)
{
    return clink_slot_up(l, (int)cluster_keyslot(key, len));
}

/* The reply timeout's look at every master connection (the top of
 * clink.h): one that owes replies and read none for reply_ms, with nothing
 * unread on its socket, is dropped as lost (an up one reconnects; one
 * closing because it left the map is gone). */
static void watch_cb(evutil_socket_t fd, short what, void *arg)
{
    clink *l = arg;
    long long now = now_ms();
    for (int i = 0; i < CLUSTER_NODES_MAX && !l->stopping && l->reply_ms; i++) {
        clink_conn *c = l->nodes[i];
        /* up, or closing (no longer in the map: its commands in flight hold
         * their slots' later ones back until they are answered) */
        if (!c || !c->ac || !c->connected || (c->used && !c->up)) continue;
        int owed = c->ac->replies.head != NULL;
        if (!owed || c->answered != c->seen) {
            c->seen = c->answered;
            c->owed_since = owed ? now : 0;
            continue;
        }
        if (!c->owed_since) c->owed_since = now;
        if (now - c->owed_since < (long long)l->reply_ms) continue;
        int unread = 0;
        if (c->ac->c.fd >= 0 && ioctl(c->ac->c.fd, FIONREAD, &unread) == 0 && unread > 0)
            continue; /* answered, not read yet: this loop was busy */
        l->stats.timeouts++;
        log_warn("redis cluster master %s: no reply for %u ms while commands wait; dropping the "
                 "connection as lost",
                 c->addr, l->reply_ms);
        c->owed_since = 0;
        node_abort(c); /* its commands get NULL; the map is read again; it reconnects */
    }
    if (!l->stopping && l->reply_ms) sub_watch(l, now);
}

void clink_set_reply_timeout(clink *l, unsigned ms)
{
    if (!l) return;
    l->reply_ms = ms;
    event_del(l->watch_ev);
    if (!ms || l->stopping) return;
    unsigned every = ms / 4 < 50 ? 50 : ms / 4;
    struct timeval tv = tv_ms(every);
    event_add(l->watch_ev, &tv);
}

int clink_up_masters(const clink *l)
{
    int n = 0;
    for (int i = 0; l && i < CLUSTER_NODES_MAX; i++)
        if (l->nodes[i] && l->nodes[i]->used && l->nodes[i]->up && l->nodes[i]->nslots > 0) n++;
    return n;
}

const char *clink_describe(const clink *l, char *buf, size_t size)
{
    int masters = 0, up = 0, served = 0;
    for (int i = 0; i < CLUSTER_NODES_MAX; i++) {
        const clink_conn *c = l->nodes[i];
        if (!c || !c->used || c->nslots == 0) continue;
        masters++;
        if (c->up) {
            up++;
            served += c->nslots;
        }
    }
    snprintf(buf, size, "cluster (seed %s:%d%s): %d/%d masters up, %d/%d slots served",
             l->url.seeds[0].host, l->url.seeds[0].port, l->url.nseeds > 1 ? " and more" : "", up,
             masters, served, CLUSTER_SLOTS);
    return buf;
}

int clink_subscriber_up(const clink *l)
{
    return l && l->has_sub && l->subc.up;
}

const char *clink_subscriber_addr(const clink *l)
{
    return l && l->has_sub && l->subc.ac ? l->subc.addr : NULL;
}

void clink_stats_get(const clink *l, clink_stats *out)
{
    *out = l->stats;
}

redisAsyncContext *clink_subscriber_context(const clink *l)
{
    return clink_subscriber_up(l) ? l->subc.ac : NULL;
}

int clink_subscribe(clink *l, const char *chan, redisCallbackFn *cb, void *priv)
{
    if (!clink_subscriber_up(l)) return REDIS_ERR;
    const char *argv[] = {"SUBSCRIBE", chan};
    return redisAsyncCommandArgv(l->subc.ac, cb, priv, 2, argv, NULL);
}

int clink_unsubscribe(clink *l, const char *chan)
{
    if (!clink_subscriber_up(l)) return REDIS_ERR;
    const char *argv[] = {"UNSUBSCRIBE", chan};
    return redisAsyncCommandArgv(l->subc.ac, NULL, NULL, 2, argv, NULL);
}

/* Every held command gets NULL (the link stops). */
static void clink_drop_held(clink *l)
{
    while (l->nbusy > 0) {
        int s = l->busy[0];
        cmd_deliver(held_pop(l, s), NULL, NULL);
    }
    while (l->any) {
        clink_cmd *cmd = l->any;
        l->any = cmd->next;
        if (!l->any) l->any_tail = NULL;
        l->nheld--;
        cmd_deliver(cmd, NULL, NULL);
    }
}

static void conn_stop(clink_conn *c)
{
    if (c->retry) evtimer_del(c->retry);
    if (c->deadline) evtimer_del(c->deadline);
    if (!c->ac) return;
    if (c->connected) {
        redisAsyncDisconnect(c->ac);
    } else {
        redisAsyncContext *ac = c->ac;
        c->ac = NULL;
        redisAsyncFree(ac);
    }
}

void clink_stop(clink *l)
{
    if (!l || l->stopping) return;
    l->stopping = 1;
    if (l->pump_ev) evtimer_del(l->pump_ev);
    if (l->refresh_ev) evtimer_del(l->refresh_ev);
    if (l->probe_deadline) evtimer_del(l->probe_deadline);
    if (l->watch_ev) event_del(l->watch_ev);
    if (l->probe) {
        redisAsyncContext *ac = l->probe;
        l->probe = NULL;
        redisAsyncDisconnect(ac);
    }
    clink_drop_held(l);
    for (int i = 0; i < CLUSTER_NODES_MAX; i++)
        if (l->nodes[i]) conn_stop(l->nodes[i]);
    if (l->has_sub) conn_stop(&l->subc);
}

static void conn_free(clink_conn *c)
{
    if (c->ac) {
        redisAsyncContext *ac = c->ac;
        c->ac = NULL;
        redisAsyncFree(ac); /* in-flight commands get NULL */
    }
    if (c->retry) event_free(c->retry);
    if (c->deadline) event_free(c->deadline);
    c->retry = c->deadline = NULL;
}

void clink_free(clink *l)
{
    if (!l) return;
    l->stopping = 1;
    clink_drop_held(l);
    if (l->probe) {
        redisAsyncContext *ac = l->probe;
        l->probe = NULL;
        redisAsyncFree(ac);
    }
    for (int i = 0; i < CLUSTER_NODES_MAX; i++)
        if (l->nodes[i]) {
            conn_free(l->nodes[i]);
            free(l->nodes[i]);
        }
    if (l->has_sub) conn_free(&l->subc);
    if (l->pump_ev) event_free(l->pump_ev);
    if (l->refresh_ev) event_free(l->refresh_ev);
    if (l->probe_deadline) event_free(l->probe_deadline);
    if (l->watch_ev) event_free(l->watch_ev);
    free(l);
}
