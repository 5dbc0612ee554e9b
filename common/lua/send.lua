-- include: gateways fanout access epoch
-- function: send
--
-- send.lua - a batch of text messages from one router, stored, delivered and acked in order.
-- Caller: the router (router/route.c through the scripts_send_batch_* builder, common/scripts.h).
--
-- A Redis function (FUNCTION LOAD REPLACE, FCALL), not an EVAL script: its helpers are built once
-- when the library loads instead of on every call (that set-up was most of the cost of a call
-- carrying one message). The build wraps this file as the library "parley_send_<16 hex of its
-- SHA1>" registering the local function `send` under the same name: two versions can be loaded
-- side by side (a rolling upgrade), and FUNCTION LOAD REPLACE never replaces another version.
--
-- ARGV 1..9, once per call: 1 gateway channel prefix (parley:gw:), 2 inbox cap, 3 history cap,
--   4 dedupe ttl s, 5..8 the key formats (keys.h, %s = user) of a member's meta, inbox,
--   sessions and unread, 9 parley:gateways.
-- Then 6 ARGV per message: from, to, data, cid ("" none), sender session id (gwid#connid),
--   sender connid.
-- KEYS, in message order:
--   1:1 (13): 1 sender cids, 2 recipient account, 3 parley:ids, 4 conversation history,
--     5 recipient meta, 6 recipient inbox, 7 recipient sessions, 8 sender meta, 9 sender inbox,
--     10 sender sessions, 11 sender contacts, 12 recipient contacts, 13 recipient unread;
--   to a #group (5): 1 sender cids, 2 group meta, 3 group members, 4 parley:ids, 5 group history.
--   The members' keys are built here from the formats, so this (like read, group, typing and
--   contacts) touches keys it does not declare: fine on one Redis, to be split for Redis Cluster.
--
-- sent = TIME in ms, once per call. For each message:
-- 1. If cids or cids:old holds the cid: the stored ack again to the sender's connection; result
--    {id, seq, sent, "dup"}.
-- 2. 1:1: no recipient account: error no_such_user (with cid) to the sender; result
--    "no_such_user". Group: no group: error no_such_user; sender not a member: error forbidden.
-- 3. id = INCR ids; the frame {kind:"text", id, from, to, data, sent, cid} (no seq) ZADDed to the
--    history with score id, trimmed to the cap (ZREMRANGEBYRANK).
-- 4. 1:1: for the recipient and (unless sending to oneself) the sender: seq = HINCRBY meta seq 1
--    (creating epoch on first use), the frame with seq added RPUSHed to the inbox (LTRIM to the
--    cap when longer); for each distinct gateway in sessions: {t:"u", u, s: seq, f} (the
--    sender's with x = the sending session). HINCRBY the recipient's unread for the sender, SADD
--    both contacts sets. Group: the same inbox entry for every member, HINCRBY unread for the
--    group (not the sender's), and one {t:"m", f, u, s, x: sender session} per gateway that
--    holds a member's session; a group of BROADCAST_MIN (64) members or more skips the
--    per-member session lookup: one envelope listing every member goes to every gateway in
--    parley:gateways, and each gateway delivers to the members it holds (1,000 members:
--    13 -> 8 ms of Redis time).
-- 5. The cid recorded in cids ([id, sender seq, sent]; cids renamed to cids:old first when its
--    TTL says it is older than the ttl; TTL 2 x ttl on a new hash, marked so it is a hashtable);
--    the ack {t:"c", c, s: sender seq, f: {kind:"ack", cid, id, seq, sent}} to the sender's
--    gateway. Result {id, sender seq, sent}.
-- A message that meets a Redis error (a key of the wrong type, left by hand) is answered error
-- unavailable and its result is "failed: ..."; the others in the call go on. What it wrote before
-- the error stays (Redis does not roll a script back), so a retry can leave a second history
-- entry; no key Parley writes itself can cause it.
--
-- Publishes: everything a gateway gets from one call (deliveries, acks, errors, in message order)
-- leaves in one PUBLISH per gateway channel, the payload being the envelopes' msgpack objects one
-- after the other. As the store and the publishes are one atomic step, a gateway never sees a
-- delivery without the matching stored state.
-- Reply: one entry per message, as above. The hot frames (inbox copies, deliveries, acks) are
-- built by concatenating msgpack pieces (mp_*), the others with cmsgpack.pack of a table.
local char, floor
local function mp_uint(n)
  if n < 128 then return char(n) end
  if n < 256 then return char(0xcc, n) end
  if n < 65536 then return char(0xcd, floor(n / 256), n % 256) end
  if n < 4294967296 then
    return char(0xce, floor(n / 16777216), floor(n / 65536) % 256, floor(n / 256) % 256, n % 256)
  end
  local hi, lo = floor(n / 4294967296), n % 4294967296
  return char(0xcf, floor(hi / 16777216), floor(hi / 65536) % 256, floor(hi / 256) % 256,
              hi % 256, floor(lo / 16777216), floor(lo / 65536) % 256, floor(lo / 256) % 256,
              lo % 256)
end
local function mp_str_head(n)
  if n < 32 then return char(0xa0 + n) end
  if n < 256 then return char(0xd9, n) end
  if n < 65536 then return char(0xda, floor(n / 256), n % 256) end
  return char(0xdb, floor(n / 16777216), floor(n / 65536) % 256, floor(n / 256) % 256, n % 256)
end
local function mp_str(s) return mp_str_head(#s) .. s end
local K_T, K_U, K_S, K_F, K_X, K_C, V_U, V_C, K_KIND_ACK, K_ID, K_SEQ, K_SENT, K_CID
local ENV_U4, ENV_U5, ENV_C4, CIDS_MARK
-- string and math are not reachable while the library loads: set up on the first call
local function init()
  char, floor = string.char, math.floor
  K_T, K_U, K_S, K_F, K_X, K_C = mp_str('t'), mp_str('u'), mp_str('s'), mp_str('f'), mp_str('x'),
                                 mp_str('c')
  V_U, V_C = mp_str('u'), mp_str('c')
  K_KIND_ACK, K_ID, K_SEQ = mp_str('kind') .. mp_str('ack'), mp_str('id'), mp_str('seq')
  K_SENT, K_CID = mp_str('sent'), mp_str('cid')
  ENV_U4, ENV_U5 = char(0x84) .. K_T .. V_U .. K_U, char(0x85) .. K_T .. V_U .. K_U
  ENV_C4 = char(0x84) .. K_T .. V_C .. K_C
  -- a field longer than any cid (64 bytes) and than hash-max-listpack-value
  CIDS_MARK = 'parley: a field over 64 bytes keeps this hash a hashtable (O(1) cid lookups)'
end
-- a frame with seq added first: base is split once into its map header + 1 and the rest
local function with_seq(head, rest, seq)
  return head .. K_SEQ .. mp_uint(seq) .. rest
end
local prefix, inbox_cap, ttl, hist_trim
local meta_fmt, inbox_fmt, sessions_fmt, unread_fmt, gateways_key
local BROADCAST_MIN = 64 -- members from which a group message goes to every gateway
local now
local KEYS, ARGV
local out, order
local function emit(chan, bytes)
  local l = out[chan]
  if not l then l = {}; out[chan] = l; order[#order + 1] = chan end
  l[#l + 1] = bytes
end
local function emit_table(chan, env) emit(chan, cmsgpack.pack(env)) end
local function to_sender(m, frame)
  emit(m.chan, cmsgpack.pack({t = 'c', c = m.conn, f = cmsgpack.pack(frame)}))
end
local function ack(m, id, seq, sent)
  local f
  if m.cid ~= '' then
    f = char(0x85) .. K_KIND_ACK .. K_ID .. mp_uint(id) .. K_SEQ .. mp_uint(seq) .. K_SENT ..
        mp_uint(sent) .. K_CID .. mp_str(m.cid)
  else
    f = char(0x84) .. K_KIND_ACK .. K_ID .. mp_uint(id) .. K_SEQ .. mp_uint(seq) .. K_SENT ..
        mp_uint(sent)
  end
  emit(m.chan, ENV_C4 .. mp_uint(m.conn) .. K_S .. mp_uint(seq) .. K_F .. mp_str_head(#f) .. f)
end
local function refuse(m, code, message)
  local e = {kind = 'error', code = code, message = message}
  if m.cid ~= '' then e.cid = m.cid end
  to_sender(m, e)
  return code
end
local function new_message(m, ids, history)
  local id = redis.call('INCR', ids)
  local msg = {kind = 'text', id = id, from = m.from, to = m.to, data = m.data, sent = now}
  if m.cid ~= '' then msg.cid = m.cid end
  local base = cmsgpack.pack(msg)
  redis.call('ZADD', history, id, base)
  redis.call('ZREMRANGEBYRANK', history, '0', hist_trim)
  return id, {base = base, head = char(string.byte(base, 1) + 1), rest = string.sub(base, 2)}
end
local function remember(cids, cid, record)
  local t = redis.call('TTL', cids)
  if t >= 0 and t < ttl then
    redis.call('RENAME', cids, cids .. ':old')
    t = -2
  end
  if t < 0 then -- a new hash: marked so it is a hashtable from the start (no listpack scans)
    redis.call('HSET', cids, cid, record, CIDS_MARK, '1')
    redis.call('EXPIRE', cids, 2 * ttl)
  else
    redis.call('HSET', cids, cid, record)
  end
end
local function finish(m, cids, id, sseq)
  if m.cid ~= '' then
    remember(cids, m.cid, char(0x93) .. mp_uint(id) .. mp_uint(sseq) .. mp_uint(now))
  end
  ack(m, id, sseq, now)
  return {id, sseq, now}
end
local function append(user, meta, inbox, id, fr)
  local seq = redis.call('HINCRBY', meta, 'seq', 1)
  if seq == 1 then redis.call('HSETNX', meta, 'epoch', new_epoch(user .. '|' .. id)) end
  local f = with_seq(fr.head, fr.rest, seq)
  if redis.call('RPUSH', inbox, f) > inbox_cap then
    redis.call('LTRIM', inbox, -inbox_cap, -1)
  end
  return seq, f
end
local function deliver(id, fr, user, meta, inbox, sessions, skip)
  local seq, f = append(user, meta, inbox, id, fr)
  local gws = gateways(redis.call('SMEMBERS', sessions), skip)
  if #gws > 0 then
    local env
    if skip then
      env = ENV_U5 .. mp_str(user) .. K_S .. mp_uint(seq) .. K_F .. mp_str_head(#f) .. f .. K_X ..
            mp_str(skip)
    else
      env = ENV_U4 .. mp_str(user) .. K_S .. mp_uint(seq) .. K_F .. mp_str_head(#f) .. f
    end
    for _, g in ipairs(gws) do emit(prefix .. g, env) end
  end
  return seq
end
local function send_pair(m, k)
  if redis.call('EXISTS', KEYS[k + 1]) == 0 then
    return refuse(m, 'no_such_user', 'no such user: ' .. m.to)
  end
  local id, fr = new_message(m, KEYS[k + 2], KEYS[k + 3])
  local sseq
  if m.from == m.to then
    sseq = deliver(id, fr, m.to, KEYS[k + 4], KEYS[k + 5], KEYS[k + 6], m.sess)
  else
    deliver(id, fr, m.to, KEYS[k + 4], KEYS[k + 5], KEYS[k + 6], nil)
    redis.call('HINCRBY', KEYS[k + 12], m.from, 1)
    sseq = deliver(id, fr, m.from, KEYS[k + 7], KEYS[k + 8], KEYS[k + 9], m.sess)
    redis.call('SADD', KEYS[k + 10], m.to)
    redis.call('SADD', KEYS[k + 11], m.from)
  end
  return finish(m, KEYS[k], id, sseq)
end
local function send_group(m, k)
  local bad = access('1', KEYS[k + 2], KEYS[k + 1], m.from)
  if bad == 'no_such_user' then return refuse(m, bad, 'no such group: ' .. m.to) end
  if bad then return refuse(m, bad, 'not a member of ' .. m.to) end
  local id, fr = new_message(m, KEYS[k + 3], KEYS[k + 4])
  local members = redis.call('SMEMBERS', KEYS[k + 2])
  -- a large group goes to every gateway in one envelope listing every member (each gateway
  -- picks its own sessions) instead of looking up each member's sessions here
  local all = #members >= BROADCAST_MIN and redis.call('SMEMBERS', gateways_key)
  local fan, us, seqs, sseq = fan_new(), {}, {}, 0
  for i, user in ipairs(members) do
    local seq = append(user, string.format(meta_fmt, user), string.format(inbox_fmt, user), id, fr)
    local skip = nil
    if user == m.from then sseq, skip = seq, m.sess
    else redis.call('HINCRBY', string.format(unread_fmt, user), m.to, 1) end
    if all then
      us[i], seqs[i] = user, seq
    else
      local ss = redis.call('SMEMBERS', string.format(sessions_fmt, user))
      for _, g in ipairs(gateways(ss, skip)) do fan_add(fan, g, user, seq) end
    end
  end
  if all then
    local env = cmsgpack.pack({t = 'm', f = fr.base, u = us, s = seqs, x = m.sess})
    for _, g in ipairs(all) do emit(prefix .. g, env) end
  else
    fan_publish(fan, prefix, fr.base, m.sess, emit_table)
  end
  return finish(m, KEYS[k], id, sseq)
end
local function send(keys, args)
  if not char then init() end
  KEYS, ARGV = keys, args
  prefix, inbox_cap = ARGV[1], tonumber(ARGV[2])
  ttl, hist_trim = tonumber(ARGV[4]), tostring(-tonumber(ARGV[3]) - 1)
  meta_fmt, inbox_fmt, sessions_fmt, unread_fmt = ARGV[5], ARGV[6], ARGV[7], ARGV[8]
  gateways_key = ARGV[9]
  out, order = {}, {}
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000 + floor(tonumber(t[2]) / 1000)
  local res, k, a = {}, 1, 10
  while a + 5 <= #ARGV do
    local m = {from = ARGV[a], to = ARGV[a + 1], data = ARGV[a + 2], cid = ARGV[a + 3],
               sess = ARGV[a + 4], conn = tonumber(ARGV[a + 5])}
    m.chan = prefix .. (string.match(m.sess, '^(.*)#') or m.sess)
    local group = string.byte(m.to, 1) == 35
    local old = nil
    if m.cid ~= '' then
      old = redis.call('HGET', KEYS[k], m.cid) or redis.call('HGET', KEYS[k] .. ':old', m.cid)
    end
    if old then
      local v = cmsgpack.unpack(old)
      ack(m, v[1], v[2], v[3])
      res[#res + 1] = {v[1], v[2], v[3], 'dup'}
    else
      local ok, r = pcall(group and send_group or send_pair, m, k)
      if not ok then
        refuse(m, 'unavailable', 'not stored: retry later with the same cid')
        r = 'failed: ' .. tostring(r)
      end
      res[#res + 1] = r
    end
    if group then k = k + 5 else k = k + 13 end
    a = a + 6
  end
  for _, c in ipairs(order) do redis.call('PUBLISH', c, table.concat(out[c])) end
  return res
end
