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

#include "keys.h"

#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Shared Lua helpers, pasted in front of the scripts that use them. */

/* Distinct gateway ids of a session list ("gwid#connid", split at the last
 * '#'), skipping the session `skip` (may be nil). */
#define LUA_GATEWAYS                                                                               \
    "local function gateways(sessions, skip)\n"                                                    \
    "  if #sessions == 1 then\n"                                                                   \
    "    local s = sessions[1]\n"                                                                  \
    "    local g = s ~= skip and string.match(s, '^(.*)#')\n"                                      \
    "    if g then return {g} end\n"                                                               \
    "    return {}\n"                                                                              \
    "  end\n"                                                                                      \
    "  local out, seen = {}, {}\n"                                                                 \
    "  for _, s in ipairs(sessions) do\n"                                                          \
    "    if s ~= skip then\n"                                                                      \
    "      local g = string.match(s, '^(.*)#')\n"                                                  \
    "      if g and not seen[g] then seen[g] = true; out[#out + 1] = g end\n"                      \
    "    end\n"                                                                                    \
    "  end\n"                                                                                      \
    "  return out\n"                                                                               \
    "end\n"

/* Collects (user, seq) per gateway and publishes one multi-user envelope
 * {t:"m", f, u: [users], s: [seqs]?, x: skip session?} per gateway: a group
 * of 1,000 members costs one PUBLISH per gateway, not one per member. */
#define LUA_FANOUT                                                                                 \
    "local function fan_new() return {per = {}, order = {}} end\n"                                 \
    "local function fan_add(fan, g, user, seq)\n"                                                  \
    "  local e = fan.per[g]\n"                                                                     \
    "  if not e then e = {u = {}, s = {}}; fan.per[g] = e; fan.order[#fan.order + 1] = g end\n"    \
    "  e.u[#e.u + 1] = user\n"                                                                     \
    "  if seq then e.s[#e.s + 1] = seq end\n"                                                      \
    "end\n"                                                                                        \
    "local function fan_users(fan, users, sessions_fmt, skip)\n"                                   \
    "  for _, user in ipairs(users) do\n"                                                          \
    "    local ss = redis.call('SMEMBERS', string.format(sessions_fmt, user))\n"                   \
    "    for _, g in ipairs(gateways(ss, skip)) do fan_add(fan, g, user, nil) end\n"               \
    "  end\n"                                                                                      \
    "end\n"                                                                                        \
    "local function fan_publish(fan, prefix, frame, skip, emit)\n"                                 \
    "  for _, g in ipairs(fan.order) do\n"                                                         \
    "    local e = fan.per[g]\n"                                                                   \
    "    local env = {t = 'm', f = frame, u = e.u}\n"                                              \
    "    if #e.s > 0 then env.s = e.s end\n"                                                       \
    "    if skip then env.x = skip end\n"                                                          \
    "    if emit then emit(prefix .. g, env)\n"                                                    \
    "    else redis.call('PUBLISH', prefix .. g, cmsgpack.pack(env)) end\n"                        \
    "  end\n"                                                                                      \
    "end\n"

/* Who may see a conversation: for a group (is_group "1") its meta must exist
 * and user be a member; for 1:1 the other user's account must exist. Returns
 * nil or an error code string. */
#define LUA_ACCESS                                                                                 \
    "local function access(is_group, who_key, meta_key, user)\n"                                   \
    "  if is_group == '1' then\n"                                                                  \
    "    if redis.call('EXISTS', meta_key) == 0 then return 'no_such_user' end\n"                  \
    "    if redis.call('SISMEMBER', who_key, user) == 0 then return 'forbidden' end\n"             \
    "  elseif redis.call('EXISTS', who_key) == 0 then return 'no_such_user' end\n"                 \
    "  return nil\n"                                                                               \
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

/* send: a batch of messages from one router, stored, delivered and acked in
 * order (docs/internals.md). A Redis function (FCALL), not an EVAL script:
 * its helpers are built once when the library loads instead of on every call.
 * ARGV 1..9: gateway channel prefix, inbox cap, history cap, dedupe ttl, the
 * key formats of a member's meta, inbox, sessions and unread (keys.h; group
 * members' keys are built here, so this touches keys it cannot declare:
 * single Redis only), and the key of the gateway set. Then 6 ARGV per
 * message: from, to, data, cid, sender session id, sender conn; and its KEYS
 * in order: a 1:1 message 13 (sender cids, recipient account, ids, history,
 * recipient meta/inbox/sessions, sender meta/inbox/sessions, sender and
 * recipient contacts, recipient unread), a message to a #group 5 (sender
 * cids, group meta, group members, ids, history).
 *
 * Everything a gateway gets from one call (deliveries, acks, errors, in
 * message order) leaves in one PUBLISH per gateway channel: the payload is the
 * envelopes' msgpack objects one after the other. A group of 64 members or
 * more gets one envelope listing every member, published to every gateway in
 * the gateway set (each picks its own sessions), instead of a session lookup
 * per member. Returns one entry per message: {id, sender seq, sent},
 * {id, seq, sent, "dup"} for a retried cid, an error code string
 * (no_such_user, forbidden), or "failed: ..." when the message hit a Redis
 * error (the sender got `unavailable`). */
static const char SRC_SEND[] = LUA_GATEWAYS LUA_FANOUT LUA_ACCESS LUA_EPOCH
    "local char, floor\n"
    "local function mp_uint(n)\n"
    "  if n < 128 then return char(n) end\n"
    "  if n < 256 then return char(0xcc, n) end\n"
    "  if n < 65536 then return char(0xcd, floor(n / 256), n % 256) end\n"
    "  if n < 4294967296 then\n"
    "    return char(0xce, floor(n / 16777216), floor(n / 65536) % 256, floor(n / 256) % 256, n % "
    "256)\n"
    "  end\n"
    "  local hi, lo = floor(n / 4294967296), n % 4294967296\n"
    "  return char(0xcf, floor(hi / 16777216), floor(hi / 65536) % 256, floor(hi / 256) % 256,\n"
    "              hi % 256, floor(lo / 16777216), floor(lo / 65536) % 256, floor(lo / 256) % "
    "256,\n"
    "              lo % 256)\n"
    "end\n"
    "local function mp_str_head(n)\n"
    "  if n < 32 then return char(0xa0 + n) end\n"
    "  if n < 256 then return char(0xd9, n) end\n"
    "  if n < 65536 then return char(0xda, floor(n / 256), n % 256) end\n"
    "  return char(0xdb, floor(n / 16777216), floor(n / 65536) % 256, floor(n / 256) % 256, n % "
    "256)\n"
    "end\n"
    "local function mp_str(s) return mp_str_head(#s) .. s end\n"
    "local K_T, K_U, K_S, K_F, K_X, K_C, V_U, V_C, K_KIND_ACK, K_ID, K_SEQ, K_SENT, K_CID\n"
    "local ENV_U4, ENV_U5, ENV_C4, CIDS_MARK\n"
    "-- string and math are not reachable while the library loads: set up on the first call\n"
    "local function init()\n"
    "  char, floor = string.char, math.floor\n"
    "  K_T, K_U, K_S, K_F, K_X, K_C = mp_str('t'), mp_str('u'), mp_str('s'), mp_str('f'), "
    "mp_str('x'),\n"
    "                                 mp_str('c')\n"
    "  V_U, V_C = mp_str('u'), mp_str('c')\n"
    "  K_KIND_ACK, K_ID, K_SEQ = mp_str('kind') .. mp_str('ack'), mp_str('id'), mp_str('seq')\n"
    "  K_SENT, K_CID = mp_str('sent'), mp_str('cid')\n"
    "  ENV_U4, ENV_U5 = char(0x84) .. K_T .. V_U .. K_U, char(0x85) .. K_T .. V_U .. K_U\n"
    "  ENV_C4 = char(0x84) .. K_T .. V_C .. K_C\n"
    "  -- a field longer than any cid (64 bytes) and than hash-max-listpack-value\n"
    "  CIDS_MARK = 'parley: a field over 64 bytes keeps this hash a hashtable (O(1) cid lookups)'\n"
    "end\n"
    "-- a frame with seq added first: base is split once into its map header + 1 and the rest\n"
    "local function with_seq(head, rest, seq)\n"
    "  return head .. K_SEQ .. mp_uint(seq) .. rest\n"
    "end\n"
    "local prefix, inbox_cap, ttl, hist_trim\n"
    "local meta_fmt, inbox_fmt, sessions_fmt, unread_fmt, gateways_key\n"
    "local BROADCAST_MIN = 64 -- members from which a group message goes to every gateway\n"
    "local now\n"
    "local KEYS, ARGV\n"
    "local out, order\n"
    "local function emit(chan, bytes)\n"
    "  local l = out[chan]\n"
    "  if not l then l = {}; out[chan] = l; order[#order + 1] = chan end\n"
    "  l[#l + 1] = bytes\n"
    "end\n"
    "local function emit_table(chan, env) emit(chan, cmsgpack.pack(env)) end\n"
    "local function to_sender(m, frame)\n"
    "  emit(m.chan, cmsgpack.pack({t = 'c', c = m.conn, f = cmsgpack.pack(frame)}))\n"
    "end\n"
    "local function ack(m, id, seq, sent)\n"
    "  local f\n"
    "  if m.cid ~= '' then\n"
    "    f = char(0x85) .. K_KIND_ACK .. K_ID .. mp_uint(id) .. K_SEQ .. mp_uint(seq) .. K_SENT "
    "..\n"
    "        mp_uint(sent) .. K_CID .. mp_str(m.cid)\n"
    "  else\n"
    "    f = char(0x84) .. K_KIND_ACK .. K_ID .. mp_uint(id) .. K_SEQ .. mp_uint(seq) .. K_SENT "
    "..\n"
    "        mp_uint(sent)\n"
    "  end\n"
    "  emit(m.chan, ENV_C4 .. mp_uint(m.conn) .. K_S .. mp_uint(seq) .. K_F .. mp_str_head(#f) .. "
    "f)\n"
    "end\n"
    "local function refuse(m, code, message)\n"
    "  local e = {kind = 'error', code = code, message = message}\n"
    "  if m.cid ~= '' then e.cid = m.cid end\n"
    "  to_sender(m, e)\n"
    "  return code\n"
    "end\n"
    "local function new_message(m, ids, history)\n"
    "  local id = redis.call('INCR', ids)\n"
    "  local msg = {kind = 'text', id = id, from = m.from, to = m.to, data = m.data, sent = now}\n"
    "  if m.cid ~= '' then msg.cid = m.cid end\n"
    "  local base = cmsgpack.pack(msg)\n"
    "  redis.call('ZADD', history, id, base)\n"
    "  redis.call('ZREMRANGEBYRANK', history, '0', hist_trim)\n"
    "  return id, {base = base, head = char(string.byte(base, 1) + 1), rest = string.sub(base, "
    "2)}\n"
    "end\n"
    "local function remember(cids, cid, record)\n"
    "  local t = redis.call('TTL', cids)\n"
    "  if t >= 0 and t < ttl then\n"
    "    redis.call('RENAME', cids, cids .. ':old')\n"
    "    t = -2\n"
    "  end\n"
    "  if t < 0 then -- a new hash: marked so it is a hashtable from the start (no listpack "
    "scans)\n"
    "    redis.call('HSET', cids, cid, record, CIDS_MARK, '1')\n"
    "    redis.call('EXPIRE', cids, 2 * ttl)\n"
    "  else\n"
    "    redis.call('HSET', cids, cid, record)\n"
    "  end\n"
    "end\n"
    "local function finish(m, cids, id, sseq)\n"
    "  if m.cid ~= '' then\n"
    "    remember(cids, m.cid, char(0x93) .. mp_uint(id) .. mp_uint(sseq) .. mp_uint(now))\n"
    "  end\n"
    "  ack(m, id, sseq, now)\n"
    "  return {id, sseq, now}\n"
    "end\n"
    "local function append(user, meta, inbox, id, fr)\n"
    "  local seq = redis.call('HINCRBY', meta, 'seq', 1)\n"
    "  if seq == 1 then redis.call('HSETNX', meta, 'epoch', new_epoch(user .. '|' .. id)) end\n"
    "  local f = with_seq(fr.head, fr.rest, seq)\n"
    "  if redis.call('RPUSH', inbox, f) > inbox_cap then\n"
    "    redis.call('LTRIM', inbox, -inbox_cap, -1)\n"
    "  end\n"
    "  return seq, f\n"
    "end\n"
    "local function deliver(id, fr, user, meta, inbox, sessions, skip)\n"
    "  local seq, f = append(user, meta, inbox, id, fr)\n"
    "  local gws = gateways(redis.call('SMEMBERS', sessions), skip)\n"
    "  if #gws > 0 then\n"
    "    local env\n"
    "    if skip then\n"
    "      env = ENV_U5 .. mp_str(user) .. K_S .. mp_uint(seq) .. K_F .. mp_str_head(#f) .. f .. "
    "K_X ..\n"
    "            mp_str(skip)\n"
    "    else\n"
    "      env = ENV_U4 .. mp_str(user) .. K_S .. mp_uint(seq) .. K_F .. mp_str_head(#f) .. f\n"
    "    end\n"
    "    for _, g in ipairs(gws) do emit(prefix .. g, env) end\n"
    "  end\n"
    "  return seq\n"
    "end\n"
    "local function send_pair(m, k)\n"
    "  if redis.call('EXISTS', KEYS[k + 1]) == 0 then\n"
    "    return refuse(m, 'no_such_user', 'no such user: ' .. m.to)\n"
    "  end\n"
    "  local id, fr = new_message(m, KEYS[k + 2], KEYS[k + 3])\n"
    "  local sseq\n"
    "  if m.from == m.to then\n"
    "    sseq = deliver(id, fr, m.to, KEYS[k + 4], KEYS[k + 5], KEYS[k + 6], m.sess)\n"
    "  else\n"
    "    deliver(id, fr, m.to, KEYS[k + 4], KEYS[k + 5], KEYS[k + 6], nil)\n"
    "    redis.call('HINCRBY', KEYS[k + 12], m.from, 1)\n"
    "    sseq = deliver(id, fr, m.from, KEYS[k + 7], KEYS[k + 8], KEYS[k + 9], m.sess)\n"
    "    redis.call('SADD', KEYS[k + 10], m.to)\n"
    "    redis.call('SADD', KEYS[k + 11], m.from)\n"
    "  end\n"
    "  return finish(m, KEYS[k], id, sseq)\n"
    "end\n"
    "local function send_group(m, k)\n"
    "  local bad = access('1', KEYS[k + 2], KEYS[k + 1], m.from)\n"
    "  if bad == 'no_such_user' then return refuse(m, bad, 'no such group: ' .. m.to) end\n"
    "  if bad then return refuse(m, bad, 'not a member of ' .. m.to) end\n"
    "  local id, fr = new_message(m, KEYS[k + 3], KEYS[k + 4])\n"
    "  local members = redis.call('SMEMBERS', KEYS[k + 2])\n"
    "  -- a large group goes to every gateway in one envelope listing every member (each gateway\n"
    "  -- picks its own sessions) instead of looking up each member's sessions here\n"
    "  local all = #members >= BROADCAST_MIN and redis.call('SMEMBERS', gateways_key)\n"
    "  local fan, us, seqs, sseq = fan_new(), {}, {}, 0\n"
    "  for i, user in ipairs(members) do\n"
    "    local seq = append(user, string.format(meta_fmt, user), string.format(inbox_fmt, user), "
    "id, fr)\n"
    "    local skip = nil\n"
    "    if user == m.from then sseq, skip = seq, m.sess\n"
    "    else redis.call('HINCRBY', string.format(unread_fmt, user), m.to, 1) end\n"
    "    if all then\n"
    "      us[i], seqs[i] = user, seq\n"
    "    else\n"
    "      local ss = redis.call('SMEMBERS', string.format(sessions_fmt, user))\n"
    "      for _, g in ipairs(gateways(ss, skip)) do fan_add(fan, g, user, seq) end\n"
    "    end\n"
    "  end\n"
    "  if all then\n"
    "    local env = cmsgpack.pack({t = 'm', f = fr.base, u = us, s = seqs, x = m.sess})\n"
    "    for _, g in ipairs(all) do emit(prefix .. g, env) end\n"
    "  else\n"
    "    fan_publish(fan, prefix, fr.base, m.sess, emit_table)\n"
    "  end\n"
    "  return finish(m, KEYS[k], id, sseq)\n"
    "end\n"
    "local function send(keys, args)\n"
    "  if not char then init() end\n"
    "  KEYS, ARGV = keys, args\n"
    "  prefix, inbox_cap = ARGV[1], tonumber(ARGV[2])\n"
    "  ttl, hist_trim = tonumber(ARGV[4]), tostring(-tonumber(ARGV[3]) - 1)\n"
    "  meta_fmt, inbox_fmt, sessions_fmt, unread_fmt = ARGV[5], ARGV[6], ARGV[7], ARGV[8]\n"
    "  gateways_key = ARGV[9]\n"
    "  out, order = {}, {}\n"
    "  local t = redis.call('TIME')\n"
    "  now = tonumber(t[1]) * 1000 + floor(tonumber(t[2]) / 1000)\n"
    "  local res, k, a = {}, 1, 10\n"
    "  while a + 5 <= #ARGV do\n"
    "    local m = {from = ARGV[a], to = ARGV[a + 1], data = ARGV[a + 2], cid = ARGV[a + 3],\n"
    "               sess = ARGV[a + 4], conn = tonumber(ARGV[a + 5])}\n"
    "    m.chan = prefix .. (string.match(m.sess, '^(.*)#') or m.sess)\n"
    "    local group = string.byte(m.to, 1) == 35\n"
    "    local old = nil\n"
    "    if m.cid ~= '' then\n"
    "      old = redis.call('HGET', KEYS[k], m.cid) or redis.call('HGET', KEYS[k] .. ':old', "
    "m.cid)\n"
    "    end\n"
    "    if old then\n"
    "      local v = cmsgpack.unpack(old)\n"
    "      ack(m, v[1], v[2], v[3])\n"
    "      res[#res + 1] = {v[1], v[2], v[3], 'dup'}\n"
    "    else\n"
    "      local ok, r = pcall(group and send_group or send_pair, m, k)\n"
    "      if not ok then\n"
    "        refuse(m, 'unavailable', 'not stored: retry later with the same cid')\n"
    "        r = 'failed: ' .. tostring(r)\n"
    "      end\n"
    "      res[#res + 1] = r\n"
    "    end\n"
    "    if group then k = k + 5 else k = k + 13 end\n"
    "    a = a + 6\n"
    "  end\n"
    "  for _, c in ipairs(order) do redis.call('PUBLISH', c, table.concat(out[c])) end\n"
    "  return res\n"
    "end\n";

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
              "local first = added == 1 and redis.call('SCARD', KEYS[1]) == 1\n"
              "if first then\n"
              "  redis.call('SADD', KEYS[4], user)\n"
              "  redis.call('PUBLISH', chan, cmsgpack.pack({kind = 'online', from = user}))\n"
              "end\n"
              "local out = {seq, epoch}\n"
              "if first and seq > pushed then\n"
              "  local pending = redis.call('LRANGE', KEYS[3], -(seq - pushed), -1)\n"
              "  for i = 1, #pending do out[#out + 1] = pending[i] end\n"
              "  redis.call('HSET', KEYS[2], 'pushed', seq)\n"
              "end\n"
              "return out\n";

/* session_close: returns 1 when this closed the user's last session, and
 * then records in `pushed` that every entry so far reached a session (send
 * does not track it per message: while a user has sessions, every entry is
 * pushed to them). Reaping (ARGV[5] "1"), it returns -1 and changes nothing
 * when the gateway's alive key (KEYS[5]) exists: a late heartbeat came in
 * between the reaper's look and this close. */
static const char SRC_SESSION_CLOSE[] =
    "local user, sid, member, chan = ARGV[1], ARGV[2], ARGV[3], ARGV[4]\n"
    "if ARGV[5] == '1' and redis.call('EXISTS', KEYS[5]) == 1 then return -1 end\n"
    "local removed = redis.call('SREM', KEYS[1], sid)\n"
    "redis.call('SREM', KEYS[3], member)\n"
    "if removed == 1 and redis.call('SCARD', KEYS[1]) == 0 then\n"
    "  local seq = redis.call('HGET', KEYS[4], 'seq')\n"
    "  if seq then redis.call('HSET', KEYS[4], 'pushed', seq) end\n"
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

/* typing: KEYS 1 recipient account (1:1) or group members, 2 recipient
 * sessions (1:1) or group meta. ARGV 1 gateway channel prefix, 2 to, 3 frame,
 * 4 is_group ("1"/"0"), 5 sender, 6 sessions format. Returns 1 when sent,
 * 0 when the user or group does not exist, -1 when the sender is not a
 * member of the group. */
static const char SRC_TYPING[] = LUA_GATEWAYS LUA_FANOUT LUA_ACCESS
    "local bad = access(ARGV[4], KEYS[1], KEYS[2], ARGV[5])\n"
    "if bad == 'no_such_user' then return 0 end\n"
    "if bad then return -1 end\n"
    "if ARGV[4] == '1' then\n"
    "  local others = {}\n"
    "  for _, m in ipairs(redis.call('SMEMBERS', KEYS[1])) do\n"
    "    if m ~= ARGV[5] then others[#others + 1] = m end\n"
    "  end\n"
    "  local fan = fan_new()\n"
    "  fan_users(fan, others, ARGV[6], nil)\n"
    "  fan_publish(fan, ARGV[1], ARGV[3], nil)\n"
    "  return 1\n"
    "end\n"
    "local env = cmsgpack.pack({t = 'u', u = ARGV[2], f = ARGV[3]})\n"
    "for _, g in ipairs(gateways(redis.call('SMEMBERS', KEYS[2]), nil)) do\n"
    "  redis.call('PUBLISH', ARGV[1] .. g, env)\n"
    "end\n"
    "return 1\n";

/* history: KEYS 1 conversation history, 2 other account (1:1) or group
 * members, 3 group meta (1:1: same as 2). ARGV 1 user, 2 is_group, 3 before
 * id (0: none), 4 limit. Returns {more (0/1), entries oldest first...} or
 * the string "no_such_user" / "forbidden". */
static const char SRC_HISTORY[] = LUA_ACCESS
    "local bad = access(ARGV[2], KEYS[2], KEYS[3], ARGV[1])\n"
    "if bad then return bad end\n"
    "local before, limit = tonumber(ARGV[3]), tonumber(ARGV[4])\n"
    "local max = '+inf'\n"
    "if before > 0 then max = '(' .. before end\n"
    "local rows = redis.call('ZREVRANGEBYSCORE', KEYS[1], max, '-inf', 'LIMIT', 0, limit + 1)\n"
    "local out = {0}\n"
    "if #rows > limit then out[1] = 1 end\n"
    "for i = math.min(#rows, limit), 1, -1 do out[#out + 1] = rows[i] end\n"
    "return out\n";

/* read: KEYS 1 history, 2 other account (1:1) or group members, 3 group meta
 * (1:1: same as 2), 4 reader's read hash, 5 reader's unread hash. ARGV 1
 * reader, 2 with, 3 is_group, 4 upto, 5 gateway channel prefix, 6 sessions
 * format, 7 reader's session id. Moves the read position to upto (clamped to
 * the newest id), recounts unread, sends the receipt to the other
 * participants and the reader's other sessions. Returns {1, upto} when it
 * moved, {0, position} when not, or "no_such_user" / "forbidden". */
static const char SRC_READ[] = LUA_GATEWAYS LUA_FANOUT LUA_ACCESS
    "local reader, with, is_group = ARGV[1], ARGV[2], ARGV[3]\n"
    "local bad = access(is_group, KEYS[2], KEYS[3], reader)\n"
    "if bad then return bad end\n"
    "local upto = tonumber(ARGV[4])\n"
    "local top = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')\n"
    "local last = tonumber(top[2]) or 0\n"
    "if upto > last then upto = last end\n"
    "local cur = tonumber(redis.call('HGET', KEYS[4], with)) or 0\n"
    "if upto <= cur then return {0, cur} end\n"
    "redis.call('HSET', KEYS[4], with, upto)\n"
    "local unread = 0\n"
    "if upto < last then\n"
    "  for _, e in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. upto, '+inf')) do\n"
    "    local m = cmsgpack.unpack(e)\n"
    "    if type(m) == 'table' and m.from ~= reader then unread = unread + 1 end\n"
    "  end\n"
    "end\n"
    "if unread == 0 then redis.call('HDEL', KEYS[5], with)\n"
    "else redis.call('HSET', KEYS[5], with, unread) end\n"
    "local to\n"
    "if is_group == '1' then to = redis.call('SMEMBERS', KEYS[2])\n"
    "elseif with == reader then to = {reader}\n"
    "else to = {with, reader} end\n"
    "local fan = fan_new()\n"
    "fan_users(fan, to, ARGV[6], nil)\n"
    "local f = cmsgpack.pack({kind = 'read', from = reader, with = with, upto = upto})\n"
    "fan_publish(fan, ARGV[5], f, ARGV[7])\n"
    "return {1, upto}\n";

/* group: KEYS 1 group meta, 2 group members, 3 parley:groups, 4 parley:users.
 * (KEYS 3 lists the open groups only: they are what a search finds.)
 * ARGV 1 op (create, join, leave, add), 2 #name, 3 by, 4 open ("1"/"0"),
 * 5 now ms, 6 gateway channel prefix, 7 sessions format, 8 user-groups
 * format, 9 member limit, 10.. members. Sends {kind:"group", name, members
 * (all, sorted), op, by, open} to every member (and to a leaver). Returns
 * {"ok"}, {"same", frame} when nothing changed (the frame goes to the
 * requester only), or {"error", code, message}. */
static const char SRC_GROUP[] = LUA_GATEWAYS LUA_FANOUT
    "local op, name, by, open = ARGV[1], ARGV[2], ARGV[3], ARGV[4]\n"
    "local prefix, sessions_fmt, groups_fmt = ARGV[6], ARGV[7], ARGV[8]\n"
    "local limit = tonumber(ARGV[9])\n"
    "local function fail(code, message) return {'error', code, message} end\n"
    "local function frame()\n"
    "  local members = redis.call('SMEMBERS', KEYS[2])\n"
    "  table.sort(members)\n"
    "  local isopen = redis.call('HGET', KEYS[1], 'open') == '1'\n"
    "  return cmsgpack.pack({kind = 'group', name = name, members = members, op = op,\n"
    "                        by = by, open = isopen}), members\n"
    "end\n"
    "local function notify(extra)\n"
    "  local f, members = frame()\n"
    "  if extra then members[#members + 1] = extra end\n"
    "  local fan = fan_new()\n"
    "  fan_users(fan, members, sessions_fmt, nil)\n"
    "  fan_publish(fan, prefix, f, nil)\n"
    "  return {'ok'}\n"
    "end\n"
    "local function missing_user()\n"
    "  for i = 10, #ARGV do\n"
    "    if not redis.call('ZSCORE', KEYS[4], ARGV[i]) then return ARGV[i] end\n"
    "  end\n"
    "  return nil\n"
    "end\n"
    "local function add(user)\n"
    "  redis.call('SADD', KEYS[2], user)\n"
    "  redis.call('SADD', string.format(groups_fmt, user), name)\n"
    "end\n"
    "local exists = redis.call('EXISTS', KEYS[1]) == 1\n"
    "if op == 'create' then\n"
    "  if exists then return fail('forbidden', 'group ' .. name .. ' already exists') end\n"
    "  local m = missing_user()\n"
    "  if m then return fail('no_such_user', 'no such user: ' .. m) end\n"
    "  local set = {[by] = true}\n"
    "  local n = 1\n"
    "  for i = 10, #ARGV do if not set[ARGV[i]] then set[ARGV[i]] = true; n = n + 1 end end\n"
    "  if n > limit then return fail('bad_field', 'members: at most ' .. limit .. ' per group') "
    "end\n"
    "  redis.call('HSET', KEYS[1], 'open', open, 'created', ARGV[5], 'by', by)\n"
    "  if open == '1' then redis.call('ZADD', KEYS[3], 0, name) end\n"
    "  for user in pairs(set) do add(user) end\n"
    "  return notify(nil)\n"
    "end\n"
    "if not exists then return fail('no_such_user', 'no such group: ' .. name) end\n"
    "local member = redis.call('SISMEMBER', KEYS[2], by) == 1\n"
    "if op == 'join' then\n"
    "  if member then return {'same', (frame())} end\n"
    "  if redis.call('HGET', KEYS[1], 'open') ~= '1' then\n"
    "    return fail('forbidden', name .. ' is closed: a member must add you')\n"
    "  end\n"
    "  if redis.call('SCARD', KEYS[2]) >= limit then return fail('forbidden', name .. ' is full') "
    "end\n"
    "  add(by)\n"
    "  return notify(nil)\n"
    "end\n"
    "if not member then return fail('forbidden', 'not a member of ' .. name) end\n"
    "if op == 'leave' then\n"
    "  redis.call('SREM', KEYS[2], by)\n"
    "  redis.call('SREM', string.format(groups_fmt, by), name)\n"
    "  return notify(by)\n"
    "end\n"
    "if op == 'add' then\n"
    "  local m = missing_user()\n"
    "  if m then return fail('no_such_user', 'no such user: ' .. m) end\n"
    "  local new, seen = {}, {}\n"
    "  for i = 10, #ARGV do\n"
    "    local u = ARGV[i]\n"
    "    if not seen[u] and redis.call('SISMEMBER', KEYS[2], u) == 0 then\n"
    "      seen[u] = true; new[#new + 1] = u\n"
    "    end\n"
    "  end\n"
    "  if #new == 0 then return {'same', (frame())} end\n"
    "  if redis.call('SCARD', KEYS[2]) + #new > limit then\n"
    "    return fail('forbidden', name .. ' would have more than ' .. limit .. ' members')\n"
    "  end\n"
    "  for _, u in ipairs(new) do add(u) end\n"
    "  return notify(nil)\n"
    "end\n"
    "return fail('bad_field', 'op: unknown')\n";

/* register: KEYS 1 account, 2 parley:users. ARGV 1 name, 2 hash, 3 created
 * ms, 4 the new-user channel (optional). Publishes "NAME COUNT" there (COUNT = users
 * now), so gateways in "everyone" mode follow the newcomer's presence.
 * Returns 1 when created, 0 when the name is taken. */
static const char SRC_REGISTER[] =
    "if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end\n"
    "redis.call('HSET', KEYS[1], 'pw', ARGV[2], 'created', ARGV[3])\n"
    "redis.call('ZADD', KEYS[2], 0, ARGV[1])\n"
    "if ARGV[4] then\n"
    "  redis.call('PUBLISH', ARGV[4], ARGV[1] .. ' ' .. redis.call('ZCARD', KEYS[2]))\n"
    "end\n"
    "return 1\n";

/* contacts: KEYS 1 parley:users, 2 user contacts, 3 parley:online, 4 user
 * groups, 5 user unread, 6 user read. ARGV 1 user, 2 everyone-limit,
 * 3 group-members format, 4 read format, 5 history format. Returns {mode
 * (1 everyone, 0 contacts), then per entry: name, online, unread, read,
 * peer_read, last (the newest history entry, or "")}: users
 * first (everyone, or the contacts set plus the members of the user's
 * groups), then the user's groups (online: another member is online;
 * peer_read 0). */
static const char SRC_CONTACTS[] =
    "local user, limit, members_fmt, read_fmt = ARGV[1], tonumber(ARGV[2]), ARGV[3], ARGV[4]\n"
    "local hist_fmt = ARGV[5]\n"
    "local function last(conv)\n"
    "  local e = redis.call('ZRANGE', string.format(hist_fmt, conv), -1, -1)\n"
    "  return e[1] or ''\n"
    "end\n"
    "local groups = redis.call('SMEMBERS', KEYS[4])\n"
    "local names, mode\n"
    "if redis.call('ZCARD', KEYS[1]) <= limit then\n"
    "  names, mode = redis.call('ZRANGE', KEYS[1], 0, -1), 1\n"
    "else\n"
    "  local sets = {KEYS[2]}\n"
    "  for _, g in ipairs(groups) do sets[#sets + 1] = string.format(members_fmt, g) end\n"
    "  names, mode = redis.call('SUNION', unpack(sets)), 0\n"
    "end\n"
    "local function num(v) return tonumber(v) or 0 end\n"
    "local out = {mode}\n"
    "for _, n in ipairs(names) do\n"
    "  if n ~= user then\n"
    "    out[#out + 1] = n\n"
    "    out[#out + 1] = redis.call('SISMEMBER', KEYS[3], n)\n"
    "    out[#out + 1] = num(redis.call('HGET', KEYS[5], n))\n"
    "    out[#out + 1] = num(redis.call('HGET', KEYS[6], n))\n"
    "    out[#out + 1] = num(redis.call('HGET', string.format(read_fmt, n), user))\n"
    "    if user < n then out[#out + 1] = last(user .. '|' .. n)\n"
    "    else out[#out + 1] = last(n .. '|' .. user) end\n"
    "  end\n"
    "end\n"
    "local me = redis.call('SISMEMBER', KEYS[3], user)\n"
    "for _, g in ipairs(groups) do\n"
    "  local on = redis.call('SINTERCARD', 2, string.format(members_fmt, g), KEYS[3], 'LIMIT', 2)\n"
    "  out[#out + 1] = g\n"
    "  if on - me > 0 then out[#out + 1] = 1 else out[#out + 1] = 0 end\n"
    "  out[#out + 1] = num(redis.call('HGET', KEYS[5], g))\n"
    "  out[#out + 1] = num(redis.call('HGET', KEYS[6], g))\n"
    "  out[#out + 1] = 0\n"
    "  out[#out + 1] = last(g)\n"
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

/* forget_gateway: the reaper's last step. SREM the gateway from
 * parley:gateways unless it beat again (alive key back) or has sessions
 * (opened meanwhile); returns 1 when removed, else 0. */
static const char SRC_FORGET_GATEWAY[] =
    "if redis.call('EXISTS', KEYS[2]) == 1 or redis.call('SCARD', KEYS[3]) > 0 then return 0 end\n"
    "return redis.call('SREM', KEYS[1], ARGV[1])\n";

/* fn: a Redis function library (FUNCTION LOAD, FCALL) whose source defines
 * `local function NAME(keys, args)`; scripts_init() wraps it with the
 * library header and the registration. Else an EVAL script. */
static const struct {
    const char *name;
    const char *src;
    int fn;
} scripts_table[SCRIPT__COUNT] = {
    [SCRIPT_SEND] = {"send", SRC_SEND, 1},
    [SCRIPT_HISTORY] = {"history", SRC_HISTORY},
    [SCRIPT_READ] = {"read", SRC_READ},
    [SCRIPT_GROUP] = {"group", SRC_GROUP},
    [SCRIPT_SESSION_OPEN] = {"session_open", SRC_SESSION_OPEN},
    [SCRIPT_SESSION_CLOSE] = {"session_close", SRC_SESSION_CLOSE},
    [SCRIPT_SYNC] = {"sync", SRC_SYNC},
    [SCRIPT_TYPING] = {"typing", SRC_TYPING},
    [SCRIPT_REGISTER] = {"register", SRC_REGISTER},
    [SCRIPT_CONTACTS] = {"contacts", SRC_CONTACTS},
    [SCRIPT_RELEASE_SLOT] = {"release_slot", SRC_RELEASE_SLOT},
    [SCRIPT_RENEW_SLOT] = {"renew_slot", SRC_RENEW_SLOT},
    [SCRIPT_FORGET_GATEWAY] = {"forget_gateway", SRC_FORGET_GATEWAY},
};

/* EVAL scripts: the SHA1 of the source. Functions: the function name, which
 * is also the library's name: "parley_NAME_" + 16 hex digits of the SHA1 of
 * the source, so two versions can be loaded side by side (a rolling upgrade)
 * and FUNCTION LOAD REPLACE never replaces another version. */
static char scripts_shas[SCRIPT__COUNT][64];
static char *scripts_libs[SCRIPT__COUNT]; /* functions: the library code */
static int scripts_ready;

void scripts_init(void)
{
    static const char hex[] = "0123456789abcdef";
    unsigned char md[SHA_DIGEST_LENGTH];
    char h[41];

    if (scripts_ready) return;
    for (int i = 0; i < SCRIPT__COUNT; i++) {
        const char *src = scripts_table[i].src;
        SHA1((const unsigned char *)src, strlen(src), md);
        for (int j = 0; j < SHA_DIGEST_LENGTH; j++) {
            h[2 * j] = hex[md[j] >> 4];
            h[2 * j + 1] = hex[md[j] & 15];
        }
        h[40] = '\0';
        if (!scripts_table[i].fn) {
            memcpy(scripts_shas[i], h, sizeof h);
            continue;
        }
        snprintf(scripts_shas[i], sizeof scripts_shas[i], "parley_%s_%.16s", scripts_table[i].name,
                 h);
        const char *fmt = "#!lua name=%s\n%sredis.register_function('%s', %s)\n";
        size_t n = strlen(fmt) + 2 * strlen(scripts_shas[i]) + strlen(src) +
                   strlen(scripts_table[i].name) + 1;
        scripts_libs[i] = malloc(n); /* lives as long as the process */
        if (!scripts_libs[i]) abort();
        snprintf(scripts_libs[i], n, fmt, scripts_shas[i], src, scripts_shas[i],
                 scripts_table[i].name);
    }
    scripts_ready = 1;
}

const char *scripts_source(script_id id)
{
    scripts_init();
    if ((unsigned)id >= SCRIPT__COUNT) return NULL;
    return scripts_table[id].fn ? scripts_libs[id] : scripts_table[id].src;
}

int scripts_is_function(script_id id)
{
    return (unsigned)id < SCRIPT__COUNT && scripts_table[id].fn;
}

int scripts_load_argv(script_id id, const char *argv[4])
{
    if (scripts_is_function(id)) {
        argv[0] = "FUNCTION";
        argv[1] = "LOAD";
        argv[2] = "REPLACE";
        argv[3] = scripts_source(id);
        return 4;
    }
    argv[0] = "SCRIPT";
    argv[1] = "LOAD";
    argv[2] = scripts_source(id);
    return 3;
}

int scripts_missing(const char *err, size_t len)
{
    static const char fn[] = "ERR Function not found";
    return (len >= 8 && memcmp(err, "NOSCRIPT", 8) == 0) ||
           (len >= sizeof fn - 1 && memcmp(err, fn, sizeof fn - 1) == 0);
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

    if (reply && reply->type == REDIS_REPLY_ERROR && scripts_missing(reply->str, reply->len)) {
        int ok;
        if (scripts_table[call->id].fn) { /* load the library, then the same FCALL */
            const char *load[4];
            int n = scripts_load_argv(call->id, load);
            ok = redisAsyncCommandArgv(ac, NULL, NULL, n, load, NULL) == REDIS_OK;
        } else {
            call->argv[0] = "EVAL";
            call->argvlen[0] = 4;
            call->argv[1] = scripts_table[call->id].src;
            call->argvlen[1] = strlen(call->argv[1]);
            ok = 1;
        }
        if (ok && redisAsyncCommandArgv(ac, scripts_retry_cb, call, call->argc, call->argv,
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

    call->argv[0] = scripts_table[id].fn ? "FCALL" : "EVALSHA";
    call->argvlen[0] = strlen(call->argv[0]);
    call->argv[1] = scripts_shas[id];
    call->argvlen[1] = strlen(scripts_shas[id]);
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
        const char *argv[4];
        int n = scripts_load_argv(i, argv);
        if (redisAsyncCommandArgv(ac, NULL, NULL, n, argv, NULL) != REDIS_OK) return REDIS_ERR;
    }
    return REDIS_OK;
}

int scripts_session_close(redisAsyncContext *ac, redisCallbackFn *cb, void *privdata,
                          const char *user, const char *sessid, const char *member,
                          const char *gwid, int reaping)
{
    char k1[KEYS_MAX], k3[KEYS_MAX], k4[KEYS_MAX], k5[KEYS_MAX], chan[KEYS_MAX];
    const char *argv[] = {keys_fmt(k1, sizeof k1, KEY_SESSIONS, user),
                          KEY_ONLINE,
                          keys_fmt(k3, sizeof k3, KEY_GW_SESSIONS, gwid),
                          keys_fmt(k4, sizeof k4, KEY_META, user),
                          keys_fmt(k5, sizeof k5, KEY_GW_ALIVE, gwid),
                          user,
                          sessid,
                          member,
                          keys_fmt(chan, sizeof chan, CHAN_PRESENCE, user),
                          reaping ? "1" : "0"};
    return scripts_eval(ac, SCRIPT_SESSION_CLOSE, cb, privdata, 5, 5, argv, NULL);
}
