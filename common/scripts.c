/* scripts.c - every Lua script Parley runs in Redis (docs/internals.md lists
 * their KEYS, ARGV and replies), their SHA1s, and scripts_eval(): EVALSHA with
 * a transparent EVAL fallback when Redis answers NOSCRIPT.
 *
 * Scripts build client frames and gateway envelopes with cmsgpack.pack of a
 * Lua table: string keys make a map, 1..n keys an array, an integral Lua
 * number packs as a msgpack integer. Everything a gateway sees for one message
 * (deliveries, the sender's ack or error) is published by one atomic script,
 * so it can never see a delivery without the matching stored state. */
#include "scripts.h"

#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Shared Lua helpers, pasted in front of the scripts that use them. */

/* Distinct gateway ids of a session list ("gwid#connid", split at the last
 * '#'), skipping the session `skip` (may be nil). */
#define LUA_GATEWAYS                                                                               \
    "local function gateways(sessions, skip)\n"                                                    \
    "  local out, seen = {}, {}\n"                                                                 \
    "  for _, s in ipairs(sessions) do\n"                                                          \
    "    if s ~= skip then\n"                                                                      \
    "      local g = string.match(s, '^(.*)#')\n"                                                  \
    "      if g and not seen[g] then seen[g] = true; out[#out + 1] = g end\n"                      \
    "    end\n"                                                                                    \
    "  end\n"                                                                                      \
    "  return out\n"                                                                               \
    "end\n"

/* A new inbox epoch: server time in microseconds plus a short hash of
 * something unique to this call, so a lost and re-created inbox never gets
 * the epoch it had before. */
#define LUA_EPOCH                                                                                  \
    "local function new_epoch(uniq)\n"                                                             \
    "  local t = redis.call('TIME')\n"                                                             \
    "  return t[1] .. string.format('%06d', tonumber(t[2])) .. '-' ..\n"                           \
    "         string.sub(redis.sha1hex(uniq), 1, 8)\n"                                             \
    "end\n"

/* send: store one 1:1 message, deliver it, ack it (see internals.md).
 * Returns {id, sender seq, sent}; {id, seq, sent, "dup"} for a retried cid;
 * the string "no_such_user" when the recipient has no account. */
static const char SRC_SEND[] = LUA_GATEWAYS LUA_EPOCH
    "local from, to, data, cid = ARGV[1], ARGV[2], ARGV[3], ARGV[4]\n"
    "local sess, conn, prefix = ARGV[5], tonumber(ARGV[6]), ARGV[7]\n"
    "local inbox_cap, hist_cap = tonumber(ARGV[8]), tonumber(ARGV[9])\n"
    "local ttl = tonumber(ARGV[10])\n"
    "local sender_chan = prefix .. (string.match(sess, '^(.*)#') or sess)\n"
    "local function to_sender(frame, seq)\n"
    "  local env = {t = 'c', c = conn, f = cmsgpack.pack(frame)}\n"
    "  if seq then env.s = seq end\n"
    "  redis.call('PUBLISH', sender_chan, cmsgpack.pack(env))\n"
    "end\n"
    "local function ack(id, seq, sent)\n"
    "  local f = {kind = 'ack', id = id, seq = seq, sent = sent}\n"
    "  if cid ~= '' then f.cid = cid end\n"
    "  to_sender(f, seq)\n"
    "end\n"
    "if cid ~= '' then\n"
    "  local old = redis.call('GET', KEYS[1])\n"
    "  if old then\n"
    "    local v = cmsgpack.unpack(old)\n"
    "    ack(v[1], v[2], v[3])\n"
    "    return {v[1], v[2], v[3], 'dup'}\n"
    "  end\n"
    "end\n"
    "if redis.call('EXISTS', KEYS[2]) == 0 then\n"
    "  local e = {kind = 'error', code = 'no_such_user', message = 'no such user: ' .. to}\n"
    "  if cid ~= '' then e.cid = cid end\n"
    "  to_sender(e, nil)\n"
    "  return 'no_such_user'\n"
    "end\n"
    "local id = redis.call('INCR', KEYS[3])\n"
    "local t = redis.call('TIME')\n"
    "local sent = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n"
    "local msg = {kind = 'text', id = id, from = from, to = to, data = data, sent = sent}\n"
    "if cid ~= '' then msg.cid = cid end\n"
    "redis.call('RPUSH', KEYS[4], cmsgpack.pack(msg))\n"
    "redis.call('LTRIM', KEYS[4], -hist_cap, -1)\n"
    /* one inbox entry for `user`, pushed to its sessions except `skip` */
    "local function deliver(user, meta, inbox, sessions, skip)\n"
    "  local seq = redis.call('HINCRBY', meta, 'seq', 1)\n"
    "  if seq == 1 then redis.call('HSETNX', meta, 'epoch', new_epoch(user .. '|' .. id)) end\n"
    "  msg.seq = seq\n"
    "  local f = cmsgpack.pack(msg)\n"
    "  redis.call('RPUSH', inbox, f)\n"
    "  redis.call('LTRIM', inbox, -inbox_cap, -1)\n"
    "  local members = redis.call('SMEMBERS', sessions)\n"
    "  for _, g in ipairs(gateways(members, skip)) do\n"
    "    local env = {t = 'u', u = user, s = seq, f = f}\n"
    "    if skip then env.x = skip end\n"
    "    redis.call('PUBLISH', prefix .. g, cmsgpack.pack(env))\n"
    "  end\n"
    "  if #members > 0 then redis.call('HSET', meta, 'pushed', seq) end\n"
    "  return seq\n"
    "end\n"
    "local sseq\n"
    "if from == to then\n"
    "  sseq = deliver(to, KEYS[5], KEYS[6], KEYS[7], sess)\n"
    "else\n"
    "  deliver(to, KEYS[5], KEYS[6], KEYS[7], nil)\n"
    "  sseq = deliver(from, KEYS[8], KEYS[9], KEYS[10], sess)\n"
    "  redis.call('SADD', KEYS[11], to)\n"
    "  redis.call('SADD', KEYS[12], from)\n"
    "end\n"
    "if cid ~= '' then\n"
    "  redis.call('SET', KEYS[1], cmsgpack.pack({id, sseq, sent}), 'EX', ttl)\n"
    "end\n"
    "ack(id, sseq, sent)\n"
    "return {id, sseq, sent}\n";

/* session_open: returns {seq, epoch, pending entries...}. */
static const char SRC_SESSION_OPEN[] =
    LUA_EPOCH "local user, sid, member, chan = ARGV[1], ARGV[2], ARGV[3], ARGV[4]\n"
              "local added = redis.call('SADD', KEYS[1], sid)\n"
              "redis.call('SADD', KEYS[5], member)\n"
              "local m = redis.call('HMGET', KEYS[2], 'seq', 'epoch', 'pushed')\n"
              "local seq, epoch, pushed = tonumber(m[1]) or 0, m[2], tonumber(m[3]) or 0\n"
              "if not epoch then\n"
              "  epoch = new_epoch(user .. '|' .. sid)\n"
              "  redis.call('HSET', KEYS[2], 'epoch', epoch)\n"
              "end\n"
              "if added == 1 and redis.call('SCARD', KEYS[1]) == 1 then\n"
              "  redis.call('SADD', KEYS[4], user)\n"
              "  redis.call('PUBLISH', chan, cmsgpack.pack({kind = 'online', from = user}))\n"
              "end\n"
              "local out = {seq, epoch}\n"
              "if seq > pushed then\n"
              "  local pending = redis.call('LRANGE', KEYS[3], -(seq - pushed), -1)\n"
              "  for i = 1, #pending do out[#out + 1] = pending[i] end\n"
              "  redis.call('HSET', KEYS[2], 'pushed', seq)\n"
              "end\n"
              "return out\n";

/* session_close: returns 1 when this closed the user's last session. */
static const char SRC_SESSION_CLOSE[] =
    "local user, sid, member, chan = ARGV[1], ARGV[2], ARGV[3], ARGV[4]\n"
    "local removed = redis.call('SREM', KEYS[1], sid)\n"
    "redis.call('SREM', KEYS[3], member)\n"
    "if removed == 1 and redis.call('SCARD', KEYS[1]) == 0 then\n"
    "  redis.call('SREM', KEYS[2], user)\n"
    "  redis.call('PUBLISH', chan, cmsgpack.pack({kind = 'offline', from = user}))\n"
    "  return 1\n"
    "end\n"
    "return 0\n";

/* sync: returns {recovered 0/1, seq, entries with seq > after...}. */
static const char SRC_SYNC[] =
    "local after, epoch = tonumber(ARGV[1]), ARGV[2]\n"
    "local m = redis.call('HMGET', KEYS[1], 'seq', 'epoch')\n"
    "local seq = tonumber(m[1]) or 0\n"
    "if not after or m[2] ~= epoch or after > seq or after < 0 then return {0, seq} end\n"
    "if after == seq then return {1, seq} end\n"
    "local entries = redis.call('LRANGE', KEYS[2], -(seq - after), -1)\n"
    "if #entries ~= seq - after then return {0, seq} end\n"
    "local first = cmsgpack.unpack(entries[1])\n"
    "if type(first) ~= 'table' or first.seq ~= after + 1 then return {0, seq} end\n"
    "local out = {1, seq}\n"
    "for i = 1, #entries do out[#out + 1] = entries[i] end\n"
    "return out\n";

/* typing: returns 0 when the recipient has no account, else 1. */
static const char SRC_TYPING[] =
    LUA_GATEWAYS "if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end\n"
                 "local env = cmsgpack.pack({t = 'u', u = ARGV[2], f = ARGV[3]})\n"
                 "for _, g in ipairs(gateways(redis.call('SMEMBERS', KEYS[2]), nil)) do\n"
                 "  redis.call('PUBLISH', ARGV[1] .. g, env)\n"
                 "end\n"
                 "return 1\n";

/* register: returns 1 when created, 0 when the name is taken. */
static const char SRC_REGISTER[] =
    "if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end\n"
    "redis.call('HSET', KEYS[1], 'pw', ARGV[2], 'created', ARGV[3])\n"
    "redis.call('ZADD', KEYS[2], 0, ARGV[1])\n"
    "return 1\n";

/* contacts: returns {mode (1 everyone, 0 contacts), name1, online1, ...}. */
static const char SRC_CONTACTS[] = "local user, limit = ARGV[1], tonumber(ARGV[2])\n"
                                   "local names, mode\n"
                                   "if redis.call('ZCARD', KEYS[1]) <= limit then\n"
                                   "  names, mode = redis.call('ZRANGE', KEYS[1], 0, -1), 1\n"
                                   "else\n"
                                   "  names, mode = redis.call('SMEMBERS', KEYS[2]), 0\n"
                                   "end\n"
                                   "local out = {mode}\n"
                                   "for _, n in ipairs(names) do\n"
                                   "  if n ~= user then\n"
                                   "    out[#out + 1] = n\n"
                                   "    out[#out + 1] = redis.call('SISMEMBER', KEYS[3], n)\n"
                                   "  end\n"
                                   "end\n"
                                   "return out\n";

/* release_slot: DEL the lease if this router owns it; returns 1 or 0. */
static const char SRC_RELEASE_SLOT[] =
    "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end\n"
    "return 0\n";

/* renew_slot: PEXPIRE the lease if this router owns it; returns 1 or 0. */
static const char SRC_RENEW_SLOT[] = "if redis.call('GET', KEYS[1]) == ARGV[1] then\n"
                                     "  return redis.call('PEXPIRE', KEYS[1], ARGV[2])\n"
                                     "end\n"
                                     "return 0\n";

static const struct {
    const char *name;
    const char *src;
} scripts_table[SCRIPT__COUNT] = {
    [SCRIPT_SEND] = {"send", SRC_SEND},
    [SCRIPT_SESSION_OPEN] = {"session_open", SRC_SESSION_OPEN},
    [SCRIPT_SESSION_CLOSE] = {"session_close", SRC_SESSION_CLOSE},
    [SCRIPT_SYNC] = {"sync", SRC_SYNC},
    [SCRIPT_TYPING] = {"typing", SRC_TYPING},
    [SCRIPT_REGISTER] = {"register", SRC_REGISTER},
    [SCRIPT_CONTACTS] = {"contacts", SRC_CONTACTS},
    [SCRIPT_RELEASE_SLOT] = {"release_slot", SRC_RELEASE_SLOT},
    [SCRIPT_RENEW_SLOT] = {"renew_slot", SRC_RENEW_SLOT},
};

static char scripts_shas[SCRIPT__COUNT][41];
static int scripts_ready;

void scripts_init(void)
{
    static const char hex[] = "0123456789abcdef";
    unsigned char md[SHA_DIGEST_LENGTH];

    if (scripts_ready) return;
    for (int i = 0; i < SCRIPT__COUNT; i++) {
        const char *src = scripts_table[i].src;
        SHA1((const unsigned char *)src, strlen(src), md);
        for (int j = 0; j < SHA_DIGEST_LENGTH; j++) {
            scripts_shas[i][2 * j] = hex[md[j] >> 4];
            scripts_shas[i][2 * j + 1] = hex[md[j] & 15];
        }
        scripts_shas[i][40] = '\0';
    }
    scripts_ready = 1;
}

const char *scripts_source(script_id id)
{
    return (unsigned)id < SCRIPT__COUNT ? scripts_table[id].src : NULL;
}

const char *scripts_sha(script_id id)
{
    scripts_init();
    return (unsigned)id < SCRIPT__COUNT ? scripts_shas[id] : NULL;
}

const char *scripts_name(script_id id)
{
    return (unsigned)id < SCRIPT__COUNT ? scripts_table[id].name : NULL;
}

/* One in-flight scripts_eval call. A single allocation holds the request and
 * a copy of the command (argv, lengths, bytes), so the command can be sent
 * again as EVAL after a NOSCRIPT reply. Freed after the user callback ran. */
typedef struct scripts_call {
    redisCallbackFn *cb;
    void *privdata;
    script_id id;
    int argc;
    const char **argv; /* argc entries: EVALSHA sha nkeys keys... args... */
    size_t *argvlen;
    char nkeys[12];
    /* argv, argvlen and the copied bytes follow */
} scripts_call;

static void scripts_finish(redisAsyncContext *ac, scripts_call *call, void *reply)
{
    if (call->cb) call->cb(ac, reply, call->privdata);
    free(call);
}

static void scripts_eval_cb(redisAsyncContext *ac, void *r, void *privdata);

static void scripts_retry_cb(redisAsyncContext *ac, void *r, void *privdata)
{
    scripts_finish(ac, privdata, r);
}

static void scripts_eval_cb(redisAsyncContext *ac, void *r, void *privdata)
{
    scripts_call *call = privdata;
    redisReply *reply = r;

    if (reply && reply->type == REDIS_REPLY_ERROR && reply->len >= 8 &&
        memcmp(reply->str, "NOSCRIPT", 8) == 0) {
        call->argv[0] = "EVAL";
        call->argvlen[0] = 4;
        call->argv[1] = scripts_table[call->id].src;
        call->argvlen[1] = strlen(call->argv[1]);
        if (redisAsyncCommandArgv(ac, scripts_retry_cb, call, call->argc, call->argv,
                                  call->argvlen) == REDIS_OK)
            return;
        /* the context is going away: report it like a disconnect */
        reply = NULL;
    }
    scripts_finish(ac, call, reply);
}

int scripts_eval(redisAsyncContext *ac, script_id id, redisCallbackFn *cb, void *privdata,
                 int nkeys, int nargs, const char **argv, const size_t *argvlen)
{
    const int n = nkeys + nargs;
    const int argc = 3 + n;
    size_t bytes = 0;
    scripts_call *call;
    char *data;

    if ((unsigned)id >= SCRIPT__COUNT || nkeys < 0 || nargs < 0) return REDIS_ERR;
    scripts_init();
    for (int i = 0; i < n; i++)
        bytes += argvlen ? argvlen[i] : strlen(argv[i]);
    call = malloc(sizeof(*call) + (size_t)argc * (sizeof(char *) + sizeof(size_t)) + bytes);
    if (!call) return REDIS_ERR;
    call->cb = cb;
    call->privdata = privdata;
    call->id = id;
    call->argc = argc;
    call->argv = (const char **)(call + 1);
    call->argvlen = (size_t *)(call->argv + argc);
    data = (char *)(call->argvlen + argc);

    call->argv[0] = "EVALSHA";
    call->argvlen[0] = 7;
    call->argv[1] = scripts_shas[id];
    call->argvlen[1] = 40;
    call->argvlen[2] = (size_t)snprintf(call->nkeys, sizeof(call->nkeys), "%d", nkeys);
    call->argv[2] = call->nkeys;
    for (int i = 0; i < n; i++) {
        size_t len = argvlen ? argvlen[i] : strlen(argv[i]);
        memcpy(data, argv[i], len);
        call->argv[3 + i] = data;
        call->argvlen[3 + i] = len;
        data += len;
    }
    if (redisAsyncCommandArgv(ac, scripts_eval_cb, call, argc, call->argv, call->argvlen) !=
        REDIS_OK) {
        free(call);
        return REDIS_ERR;
    }
    return REDIS_OK;
}

int scripts_load(redisAsyncContext *ac)
{
    scripts_init();
    for (int i = 0; i < SCRIPT__COUNT; i++) {
        const char *argv[] = {"SCRIPT", "LOAD", scripts_table[i].src};
        if (redisAsyncCommandArgv(ac, NULL, NULL, 3, argv, NULL) != REDIS_OK) return REDIS_ERR;
    }
    return REDIS_OK;
}
