/* scripts_send.c - the batch builder of the send function (common/lua/send.lua):
 * each message's KEYS and ARGV are added as it arrives, and one FCALL carries
 * the batch, its per-call ARGV first. The buffers are kept from batch to batch
 * (a busy router fills one per Redis round trip). Also the typed call of the
 * fanout function (common/lua/fanout.lua), which shares send's limits. */
#include "scripts_int.h"

#include "cluster.h"
#include "keys.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* the per-call ARGV, before the messages' (send.lua's header) */
enum {
    A_PREFIX,
    A_INBOX_CAP,
    A_HISTORY_CAP,
    A_DEDUPE_TTL,
    A_META_FMT,
    A_INBOX_FMT,
    A_SESSIONS_FMT,
    A_UNREAD_FMT,
    A_GATEWAYS,
    A_CHUNK,
    A_INBOX_BYTES,
    A_HISTORY_BYTES,
    A_JOB_FMT,
    A_TODO_FMT,
    A_FANOUTS,
    A_USER_RATE,
    A_USER_BURST,
    A_FANOUT_RATE,
    A_FANOUT_BURST,
    A_BYTE_RATE,
    A_BYTE_BURST,
    A_MENTIONS_FMT,
    A_READ_FMT,
    SEND_HEAD_ARGS
};

/* send_step.lua's split: the key formats after send.lua's per-call ARGV */
#define STEP_HEAD_ARGS 15

/* the limits in b->num */
enum {
    N_INBOX_CAP,
    N_HISTORY_CAP,
    N_DEDUPE_TTL,
    N_CHUNK,
    N_INBOX_BYTES,
    N_HISTORY_BYTES,
    N_USER_RATE,
    N_USER_BURST,
    N_FANOUT_RATE,
    N_FANOUT_BURST,
    N_BYTE_RATE,
    N_BYTE_BURST,
    N__COUNT
};

static void scripts_list_reset(scripts_list *l)
{
    l->len = 0;
    l->n = 0;
}

static void scripts_list_free(scripts_list *l)
{
    free(l->buf);
    free(l->off);
    free(l->lens);
    memset(l, 0, sizeof *l);
}

/* Appends one string; -1 when out of memory. */
static int scripts_list_add(scripts_list *l, const char *p, size_t len)
{
    if (l->len + len > l->cap) {
        size_t cap = l->cap ? l->cap : 4096;
        while (cap < l->len + len)
            cap *= 2;
        char *b = realloc(l->buf, cap);
        if (!b) return -1;
        l->buf = b;
        l->cap = cap;
    }
    if (l->n == l->ncap) {
        int ncap = l->ncap ? 2 * l->ncap : 256;
        size_t *o = realloc(l->off, (size_t)ncap * sizeof *o);
        if (!o) return -1;
        l->off = o;
        size_t *ln = realloc(l->lens, (size_t)ncap * sizeof *ln);
        if (!ln) return -1;
        l->lens = ln;
        l->ncap = ncap;
    }
    memcpy(l->buf + l->len, p, len);
    l->off[l->n] = l->len;
    l->lens[l->n] = len;
    l->len += len;
    l->n++;
    return 0;
}

static int scripts_list_str(scripts_list *l, const char *s)
{
    return scripts_list_add(l, s, strlen(s));
}

static int scripts_list_key(scripts_list *l, const char *fmt, const char *name)
{
    char key[KEYS_MAX];
    keys_fmt(key, sizeof key, fmt, name);
    return scripts_list_str(l, key);
}

void scripts_send_batch_init(scripts_send_batch *b, const scripts_send_limits *l)
{
    const int64_t v[N__COUNT] = {
        [N_INBOX_CAP] = l->inbox_cap,     [N_HISTORY_CAP] = l->history_cap,
        [N_DEDUPE_TTL] = l->dedupe_ttl_s, [N_CHUNK] = l->fanout_chunk,
        [N_INBOX_BYTES] = l->inbox_bytes, [N_HISTORY_BYTES] = l->history_bytes,
        [N_USER_RATE] = l->user_rate,     [N_USER_BURST] = l->user_burst,
        [N_FANOUT_RATE] = l->fanout_rate, [N_FANOUT_BURST] = l->fanout_burst,
        [N_BYTE_RATE] = l->byte_rate,     [N_BYTE_BURST] = l->byte_burst,
    };
    _Static_assert(N__COUNT <= sizeof(((scripts_send_batch *)0)->num) / 24, "room for the limits");
    memset(b, 0, sizeof *b);
    for (int i = 0; i < N__COUNT; i++)
        snprintf(b->num[i], sizeof b->num[i], "%" PRId64, v[i]);
}

void scripts_send_batch_steps(scripts_send_batch *b, int steps)
{
    b->steps = steps ? 1 : 0;
}

void scripts_send_batch_wait(scripts_send_batch *b, int replicas, int timeout_ms)
{
    b->wait_n = replicas > 0 ? replicas : 0;
    b->wait_ms = timeout_ms;
}

/* steps: the key of the id counter of the cluster slot of conv's history, and
 * that slot (send_step.lua's ARGV 9 and 10 of a message) */
static int scripts_send_slot_args(scripts_list *l, const char *conv)
{
    char key[KEYS_MAX], slot[16];
    int n = snprintf(key, sizeof key, KEY_HISTORY, conv);
    if (n < 0 || (size_t)n >= sizeof key) return -1;
    unsigned s = cluster_keyslot(key, (size_t)n);
    keys_fmt(key, sizeof key, KEY_SLOT_IDS, cluster_slot_tag(s));
    snprintf(slot, sizeof slot, "%u", s);
    return scripts_list_str(l, key) | scripts_list_str(l, slot);
}

void scripts_send_batch_free(scripts_send_batch *b)
{
    scripts_list_free(&b->keys);
    scripts_list_free(&b->args);
    b->count = 0;
}

void scripts_send_batch_clear(scripts_send_batch *b)
{
    scripts_list_reset(&b->keys);
    scripts_list_reset(&b->args);
    b->count = 0;
}

/* A 1:1 message's 18 KEYS. */
static int scripts_send_keys_pair(scripts_list *l, const char *from, const char *to,
                                  const char *conv)
{
    int rc = scripts_list_key(l, KEY_CIDS, from);
    rc |= scripts_list_key(l, KEY_ACCOUNT, to);
    rc |= scripts_list_str(l, KEY_IDS);
    rc |= scripts_list_key(l, KEY_HISTORY, conv);
    rc |= scripts_list_key(l, KEY_META, to);
    rc |= scripts_list_key(l, KEY_INBOX, to);
    rc |= scripts_list_key(l, KEY_SESSIONS, to);
    rc |= scripts_list_key(l, KEY_META, from);
    rc |= scripts_list_key(l, KEY_INBOX, from);
    rc |= scripts_list_key(l, KEY_SESSIONS, from);
    rc |= scripts_list_key(l, KEY_CONTACTS, from);
    rc |= scripts_list_key(l, KEY_CONTACTS, to);
    rc |= scripts_list_key(l, KEY_UNREAD, to);
    rc |= scripts_list_key(l, KEY_HISTORY_BYTES, conv);
    rc |= scripts_list_key(l, KEY_BUDGET, from);
    rc |= scripts_list_key(l, KEY_HIDDEN, to);
    rc |= scripts_list_key(l, KEY_MENTIONS, to);
    rc |= scripts_list_key(l, KEY_READ, to);
    return rc;
}

/* A #group message's 9 KEYS. */
static int scripts_send_keys_group(scripts_list *l, const char *from, const char *to,
                                   const char *conv)
{
    int rc = scripts_list_key(l, KEY_CIDS, from);
    rc |= scripts_list_key(l, KEY_GROUP_META, to);
    rc |= scripts_list_key(l, KEY_GROUP_MEMBERS, to);
    rc |= scripts_list_str(l, KEY_IDS);
    rc |= scripts_list_key(l, KEY_HISTORY, conv);
    rc |= scripts_list_key(l, KEY_GROUP_FANOUT, to);
    rc |= scripts_list_key(l, KEY_HISTORY_BYTES, conv);
    rc |= scripts_list_key(l, KEY_BUDGET, from);
    rc |= scripts_list_key(l, KEY_GROUP_ADMINS, to);
    return rc;
}

int scripts_send_batch_add(scripts_send_batch *b, const char *from, const char *to,
                           const char *data, size_t data_len, const char *cid, size_t cid_len,
                           const char *gw, size_t gw_len, uint64_t conn, proto_kind kind,
                           int64_t ref, int on)
{
    char conv[KEYS_MAX], sess[96], connid[24], refs[24];
    const char *op = kind == PROTO_EDIT     ? "edit"
                     : kind == PROTO_DELETE ? "delete"
                     : kind == PROTO_REACT  ? (on ? "react+" : "react-")
                                            : "text";
    if (keys_conv(conv, sizeof conv, from, to) < 0) return -1;
    size_t keys_n = (size_t)b->keys.n, keys_len = b->keys.len;
    size_t args_n = (size_t)b->args.n, args_len = b->args.len;
    int rc = b->steps       ? 0
             : to[0] == '#' ? scripts_send_keys_group(&b->keys, from, to, conv)
                            : scripts_send_keys_pair(&b->keys, from, to, conv);
    size_t sl = (size_t)snprintf(sess, sizeof sess, "%.*s#%" PRIu64, (int)gw_len, gw, conn);
    size_t cl = (size_t)snprintf(connid, sizeof connid, "%" PRIu64, conn);
    rc |= scripts_list_str(&b->args, from);
    rc |= scripts_list_str(&b->args, to);
    rc |= scripts_list_add(&b->args, data, data_len);
    rc |= scripts_list_add(&b->args, cid, cid_len);
    rc |= scripts_list_add(&b->args, sess, sl < sizeof sess ? sl : sizeof sess - 1);
    rc |= scripts_list_add(&b->args, connid, cl);
    rc |= scripts_list_str(&b->args, op);
    if (ref > 0)
        snprintf(refs, sizeof refs, "%" PRId64, ref);
    else
        refs[0] = '\0';
    rc |= scripts_list_str(&b->args, refs);
    if (b->steps) rc |= scripts_send_slot_args(&b->args, conv);
    if (rc != 0) { /* out of memory: take this message back out */
        b->keys.n = (int)keys_n;
        b->keys.len = keys_len;
        b->args.n = (int)args_n;
        b->args.len = args_len;
        return -1;
    }
    b->count++;
    return 0;
}

int scripts_send_batch_call(scripts_send_batch *b, redisAsyncContext *ac, redisCallbackFn *cb,
                            void *priv)
{
    const scripts_list *k = &b->keys, *a = &b->args;
    const int head_n = b->steps ? 1 + SEND_HEAD_ARGS + STEP_HEAD_ARGS : SEND_HEAD_ARGS;
    /* steps: the split's one key, the first message's id counter (not touched: it places the
     * split and its join on that message's master, so batches spread over the masters) */
    const int nkeys = b->steps ? (a->n > 8 ? 1 : 0) : k->n;
    const int argc = nkeys + head_n + a->n;
    const char **argv = b->count ? malloc((size_t)argc * sizeof *argv) : NULL;
    size_t *argvlen = b->count ? malloc((size_t)argc * sizeof *argvlen) : NULL;
    int rc = REDIS_ERR;

    if (argv && argvlen) {
        const char *head[SEND_HEAD_ARGS] = {
            [A_PREFIX] = CHAN_GW_PREFIX,
            [A_INBOX_CAP] = b->num[N_INBOX_CAP],
            [A_HISTORY_CAP] = b->num[N_HISTORY_CAP],
            [A_DEDUPE_TTL] = b->num[N_DEDUPE_TTL],
            [A_META_FMT] = KEY_META,
            [A_INBOX_FMT] = KEY_INBOX,
            [A_SESSIONS_FMT] = KEY_SESSIONS,
            [A_UNREAD_FMT] = KEY_UNREAD,
            [A_GATEWAYS] = KEY_GATEWAYS,
            [A_CHUNK] = b->num[N_CHUNK],
            [A_INBOX_BYTES] = b->num[N_INBOX_BYTES],
            [A_HISTORY_BYTES] = b->num[N_HISTORY_BYTES],
            [A_JOB_FMT] = KEY_FANOUT_JOB,
            [A_TODO_FMT] = KEY_FANOUT_TODO,
            [A_FANOUTS] = KEY_FANOUTS,
            [A_USER_RATE] = b->num[N_USER_RATE],
            [A_USER_BURST] = b->num[N_USER_BURST],
            [A_FANOUT_RATE] = b->num[N_FANOUT_RATE],
            [A_FANOUT_BURST] = b->num[N_FANOUT_BURST],
            [A_BYTE_RATE] = b->num[N_BYTE_RATE],
            [A_BYTE_BURST] = b->num[N_BYTE_BURST],
            [A_MENTIONS_FMT] = KEY_MENTIONS,
            [A_READ_FMT] = KEY_READ,
        };
        /* send_step.lua's split: its name, send.lua's per-call ARGV, the key formats of the
         * steps (send_step.lua's header) */
        static const char *const step_head[STEP_HEAD_ARGS] = {
            KEY_CIDS,       KEY_BUDGET,        KEY_ACCOUNT,      KEY_HIDDEN,        KEY_CONTACTS,
            KEY_RECOUNT,    KEY_GOT,           KEY_HISTORY,      KEY_HISTORY_BYTES, KEY_CONV_CIDS,
            KEY_GROUP_META, KEY_GROUP_MEMBERS, KEY_GROUP_ADMINS, KEY_CONV_OPEN,     NULL,
        };
        int i = 0;
        for (int j = 0; !b->steps && j < k->n; j++, i++) {
            argv[i] = k->buf + k->off[j];
            argvlen[i] = k->lens[j];
        }
        if (nkeys && b->steps) { /* the first message's ARGV 9: its id counter's key */
            argv[i] = a->buf + a->off[8];
            argvlen[i++] = a->lens[8];
        }
        if (b->steps) {
            argv[i] = "split";
            argvlen[i++] = 5;
        }
        for (int j = 0; j < SEND_HEAD_ARGS; j++, i++) {
            argv[i] = head[j];
            argvlen[i] = strlen(head[j]);
        }
        for (int j = 0; b->steps && j < STEP_HEAD_ARGS; j++, i++) {
            argv[i] = step_head[j] ? step_head[j] : b->wait_n > 0 ? "1" : "0";
            argvlen[i] = strlen(argv[i]);
        }
        for (int j = 0; j < a->n; j++, i++) {
            argv[i] = a->buf + a->off[j];
            argvlen[i] = a->lens[j];
        }
        rc = scripts_eval_wait(ac, b->steps ? SCRIPT_SEND_STEP : SCRIPT_SEND, cb, priv,
                               b->steps ? b->wait_n : 0, b->wait_ms, nkeys, head_n + a->n, argv,
                               argvlen);
    }
    free(argv);
    free(argvlen);
    scripts_send_batch_clear(b);
    return rc;
}

int scripts_fanout(redisAsyncContext *ac, redisCallbackFn *cb, void *priv, const char *group,
                   const scripts_send_limits *l)
{
    scripts_cmd c;
    scripts_cmd_init(&c, SCRIPT_FANOUT);
    scripts_cmd_key(&c, KEY_GROUP_FANOUT, group);
    scripts_cmd_key(&c, KEY_FANOUTS);
    scripts_cmd_key(&c, KEY_GROUP_MEMBERS, group);
    scripts_cmd_key(&c, KEY_GATEWAYS);
    scripts_cmd_key(&c, KEY_GROUP_META, group);
    scripts_cmd_str(&c, group);
    scripts_cmd_str(&c, CHAN_GW_PREFIX);
    scripts_cmd_fmt(&c, "%" PRId64, l->inbox_cap);
    scripts_cmd_fmt(&c, "%" PRId64, l->inbox_bytes);
    scripts_cmd_fmt(&c, "%" PRId64, l->dedupe_ttl_s);
    scripts_cmd_fmt(&c, "%" PRId64, l->fanout_chunk);
    scripts_cmd_str(&c, KEY_META);
    scripts_cmd_str(&c, KEY_INBOX);
    scripts_cmd_str(&c, KEY_SESSIONS);
    scripts_cmd_str(&c, KEY_UNREAD);
    scripts_cmd_str(&c, KEY_READ);
    scripts_cmd_str(&c, KEY_CIDS);
    scripts_cmd_str(&c, KEY_FANOUT_JOB);
    scripts_cmd_str(&c, KEY_FANOUT_TODO);
    scripts_cmd_str(&c, KEY_MENTIONS);
    scripts_cmd_str(&c, KEY_HISTORY);
    scripts_cmd_str(&c, KEY_RECOUNT);
    return scripts_cmd_run(&c, ac, cb, priv);
}
