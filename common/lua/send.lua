-- include: gateways fanout access epoch store
-- function: send
--
-- send.lua - a batch of text messages from one router, stored, delivered and acked in order;
-- a message whose fan-out would be too much work for one call is stored and queued for
-- fanout.lua instead (bounded work per call).
-- Caller: the router (router/route.c through the scripts_send_batch_* builder, common/scripts.h).
--
-- A Redis function (FUNCTION LOAD REPLACE, FCALL), not an EVAL script: its helpers are built once
-- when the library loads instead of on every call (that set-up was most of the cost of a call
-- carrying one message). The build wraps this file as the library "parley_send_<16 hex of its
-- SHA1>" registering the local function `send` under the same name: two versions can be loaded
-- side by side (a rolling upgrade), and FUNCTION LOAD REPLACE never replaces another version.
--
-- ARGV 1..21, once per call: 1 gateway channel prefix (parley:gw:), 2 inbox cap (entries),
--   3 history cap (entries), 4 dedupe ttl s, 5..8 the key formats (keys.h, %s = user) of a
--   member's meta, inbox, sessions and unread, 9 parley:gateways, 10 fan-out chunk (member
--   writes one call may do inline), 11 inbox bytes cap, 12 history bytes cap, 13 the key
--   format of a fan-out job (%s #group, %s id), 14 of its member snapshot, 15 parley:fanouts,
--   16..21 the per-user budgets: messages/s, burst, inbox writes/s, burst, stored bytes/s,
--   burst (0 rate: no limit of that kind).
-- Then 6 ARGV per message: from, to, data, cid ("" none), sender session id (gwid#connid),
--   sender connid.
-- KEYS, in message order:
--   1:1 (16): 1 sender cids, 2 recipient account, 3 parley:ids, 4 conversation history,
--     5 recipient meta, 6 recipient inbox, 7 recipient sessions, 8 sender meta, 9 sender inbox,
--     10 sender sessions, 11 sender contacts, 12 recipient contacts, 13 recipient unread,
--     14 history bytes, 15 sender budget, 16 recipient hidden set (block.lua);
--   to a #group (8): 1 sender cids, 2 group meta, 3 group members, 4 parley:ids, 5 group history,
--     6 the group's fan-out queue, 7 history bytes, 8 sender budget.
--   The members' keys (and a job's) are built here from the formats, so this (like read, group,
--   typing and contacts) touches keys it does not declare: fine on one Redis, to be split for
--   Redis Cluster.
--
-- sent = TIME in ms, once per call. For each message:
-- 1. If cids or cids:old holds the cid: a stored record [id, seq, sent] is answered with the
--    stored ack again to the sender's connection; result {id, seq, sent, "dup"}. A pending record
--    [id, 0, sent, #group] (the message is stored, its fan-out not finished): the job's ack
--    target becomes this connection (the ack goes to the latest retry, once); result
--    {id, 0, sent, "pending", #group}.
-- 2. 1:1: no recipient account: error no_such_user (with cid) to the sender; result
--    "no_such_user". The recipient's hidden set holds the sender (either blocks the other):
--    error forbidden (with cid), result "forbidden", nothing stored or taken. Group: no group:
--    error no_such_user; sender not a member: error forbidden.
-- 3. The sender's budget (KEYS budget, a hash t, m, f, b: three token buckets refilled at their
--    rate per second of Redis TIME up to their burst): one message, `copies` inbox writes (1:1:
--    2, to oneself 1; a group: its member count), #data x copies stored bytes. Short of any:
--    error rate_limited (with cid), result "rate_limited", nothing stored or taken. A message
--    costing more than a burst (it could never pass): error too_large (with cid), result
--    "too_large". The hash expires a second after every bucket is full again.
-- 4. id = INCR ids; the frame {kind:"text", id, from, to, data, sent, cid} (no seq) ZADDed to the
--    history with score id; the oldest entries ZPOPMINed while it holds more than the history
--    cap or its bytes (KEYS history bytes, a counter of the sum of its frames' sizes, reset when
--    the history holds one entry) exceed the history bytes cap (never the newest).
-- 5. 1:1: for the recipient and (unless sending to oneself) the sender: seq = HINCRBY meta seq 1
--    (creating epoch on first use), the frame with seq added RPUSHed to the inbox, trimmed to both
--    inbox caps (lib/store.lua); for each distinct gateway in sessions: {t:"u", u, s: seq, f}
--    (the sender's with x = the sending session). HINCRBY the recipient's unread for the
--    sender, SADD both contacts sets.
--    Group, inline (the group has no queued fan-out and its members fit in what is left of this
--    call's chunk): the same inbox entry for every member, HINCRBY unread for the group (not the
--    sender's), and one {t:"m", f, u, s, x: sender session} per gateway that holds a member's
--    session; a group of BROADCAST_MIN (64) members or more skips the per-member session lookup:
--    one envelope listing every member goes to every gateway in parley:gateways.
--    Group, queued (more members than the chunk left, or a fan-out of the group is queued:
--    messages of a group are fanned out in id order): COPY of the member set into the job's
--    snapshot (less the sender, whose copy is written last), the job hash {from, cid, sess,
--    conn, sent, frame, n, gen: the group's incarnation} (KEY job), RPUSH id to the group's
--    queue, SADD the group to parley:fanouts, the pending record [id, 0, sent, #group] in
--    cids. No ack: fanout.lua acks once every member's inbox holds it.
--    Result {id, 0, sent, "pending", #group}.
-- 6. Inline: the cid recorded in cids ([id, sender seq, sent]; cids renamed to cids:old first
--    when its TTL says it is older than the ttl; TTL 2 x ttl on a new hash, marked so it is a
--    hashtable); the ack {t:"c", c, s: sender seq, f: {kind:"ack", cid, id, seq, sent}} to the
--    sender's gateway. Result {id, sender seq, sent}.
-- Work per call: at most 128 messages and 4 group messages (the router's batch), each 1:1 two
-- inbox writes, inline group members at most the chunk in all; a queued message O(1) calls plus
-- one COPY of the member set (C, no Lua per member: ~0.9 ms and ~220 KB for 5,000 members).
-- See docs/internals.md "Bounded work per call".
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
local K_U, K_X, V_U, ENV_U4, ENV_U5
local hist_cap, hist_bytes, chunk, work_left
local meta_fmt, inbox_fmt, sessions_fmt, unread_fmt, gateways_key, job_fmt, todo_fmt, fanouts_key
local rates, bursts -- per-user budgets: messages, inbox writes, bytes
local now
local KEYS, ARGV
local function to_sender(m, frame)
  emit(m.chan, cmsgpack.pack({t = 'c', c = m.conn, f = cmsgpack.pack(frame)}))
end
local function refuse(m, code, message)
  local e = {kind = 'error', code = code, message = message}
  if m.cid ~= '' then e.cid = m.cid end
  to_sender(m, e)
  return code
end
-- the delivery of one inbox entry to the gateways of user's sessions (but skip)
local function deliver(user, seq, f, sessions, skip)
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
end
-- takes one message costing copies inbox writes from the sender's budget; false when short
local function budget(key, copies, bytes)
  local cost = {1, copies, bytes * copies}
  local v = redis.call('HMGET', key, 't', 'm', 'f', 'b')
  local t = tonumber(v[1])
  local left, full_ms = {}, 0
  for i = 1, 3 do
    if rates[i] > 0 then
      local have = bursts[i]
      if t then
        have = math.min(bursts[i], (tonumber(v[i + 1]) or bursts[i]) + (now - t) * rates[i] / 1000)
      end
      if cost[i] > bursts[i] then return 'too_large' end -- never, whatever the wait
      if have < cost[i] then return 'rate_limited' end
      left[i] = have - cost[i]
      full_ms = math.max(full_ms, math.ceil((bursts[i] - left[i]) * 1000 / rates[i]))
    else
      left[i] = bursts[i] -- off: kept full, should it be turned on
    end
  end
  if full_ms > 0 then
    redis.call('HSET', key, 't', now, 'm', left[1], 'f', left[2], 'b', left[3])
    redis.call('PEXPIRE', key, full_ms + 1000)
  end
  return nil
end
-- the answer to a text the budget refused (over = budget's answer)
local function over_budget(m, over)
  if over == 'too_large' then
    return refuse(m, 'too_large', 'this text costs more than your budget allows at ' ..
                  'once (its bytes times its copies, or its recipients): not stored, ' ..
                  'a retry cannot help')
  end
  return refuse(m, 'rate_limited', 'over your message budget: retry later with the same cid')
end
local function new_message(m, ids, history, hbytes)
  local id = redis.call('INCR', ids)
  local msg = {kind = 'text', id = id, from = m.from, to = m.to, data = m.data, sent = now}
  if m.cid ~= '' then msg.cid = m.cid end
  local base = cmsgpack.pack(msg)
  redis.call('ZADD', history, id, base)
  local n, total = redis.call('ZCARD', history), #base
  if n == 1 then redis.call('SET', hbytes, total)
  else total = redis.call('INCRBY', hbytes, total) end
  if n > hist_cap or total > hist_bytes then
    local gone = 0
    while n > 1 and (n > hist_cap or total - gone > hist_bytes) do
      gone = gone + #redis.call('ZPOPMIN', history)[1]
      n = n - 1
    end
    if total - gone < 0 then redis.call('SET', hbytes, 0)
    else redis.call('DECRBY', hbytes, gone) end
  end
  return id, split_frame(base)
end
local function finish(m, cids, id, sseq)
  if m.cid ~= '' then remember(cids, m.cid, cid_record(id, sseq, now)) end
  ack(m, id, sseq, now)
  return {id, sseq, now}
end
local function store(user, id, fr, skip)
  local seq, f = append(user, string.format(meta_fmt, user), string.format(inbox_fmt, user), id, fr)
  deliver(user, seq, f, string.format(sessions_fmt, user), skip)
  return seq
end
local function send_pair(m, k)
  if redis.call('EXISTS', KEYS[k + 1]) == 0 then
    return refuse(m, 'no_such_user', 'no such user: ' .. m.to)
  end
  if redis.call('SISMEMBER', KEYS[k + 15], m.from) == 1 then
    return refuse(m, 'forbidden', 'you cannot write to ' .. m.to)
  end
  local self = m.from == m.to
  local over = budget(KEYS[k + 14], self and 1 or 2, #m.data)
  if over then return over_budget(m, over) end
  local id, fr = new_message(m, KEYS[k + 2], KEYS[k + 3], KEYS[k + 13])
  local sseq
  if self then
    sseq = store(m.to, id, fr, m.sess)
  else
    store(m.to, id, fr, nil)
    redis.call('HINCRBY', KEYS[k + 12], m.from, 1)
    sseq = store(m.from, id, fr, m.sess)
    redis.call('SADD', KEYS[k + 10], m.to)
    redis.call('SADD', KEYS[k + 11], m.from)
  end
  return finish(m, KEYS[k], id, sseq)
end
local function group_inline(m, k, id, fr, members)
  local d, sseq = members_new(#members >= BROADCAST_MIN, sessions_fmt), 0
  for _, user in ipairs(members) do
    local seq = append(user, string.format(meta_fmt, user), string.format(inbox_fmt, user), id, fr)
    local skip = nil
    if user == m.from then sseq, skip = seq, m.sess
    else redis.call('HINCRBY', string.format(unread_fmt, user), m.to, 1) end
    members_add(d, user, seq, skip)
  end
  members_publish(d, gateways_key, fr.base, m.sess)
  return finish(m, KEYS[k], id, sseq)
end
-- stored, its fan-out queued for fanout.lua
local function group_queue(m, k, id, fr, n)
  local job, todo = string.format(job_fmt, m.to, id), string.format(todo_fmt, m.to, id)
  redis.call('COPY', KEYS[k + 2], todo)
  redis.call('SREM', todo, m.from)
  redis.call('HSET', job, 'from', m.from, 'cid', m.cid, 'sess', m.sess, 'conn', m.conn,
             'sent', now, 'frame', fr.base, 'n', n,
             'gen', redis.call('HGET', KEYS[k + 1], 'gen') or '')
  redis.call('RPUSH', KEYS[k + 5], id)
  redis.call('SADD', fanouts_key, m.to)
  if m.cid ~= '' then
    remember(KEYS[k], m.cid, cmsgpack.pack({id, 0, now, m.to}))
  end
  return {id, 0, now, 'pending', m.to}
end
local function send_group(m, k)
  local bad = access('1', KEYS[k + 2], KEYS[k + 1], m.from)
  if bad == 'no_such_user' then return refuse(m, bad, 'no such group: ' .. m.to) end
  if bad then return refuse(m, bad, 'not a member of ' .. m.to) end
  local n = redis.call('SCARD', KEYS[k + 2])
  local over = budget(KEYS[k + 7], n, #m.data)
  if over then return over_budget(m, over) end
  local id, fr = new_message(m, KEYS[k + 3], KEYS[k + 4], KEYS[k + 6])
  if n > work_left or redis.call('EXISTS', KEYS[k + 5]) == 1 then
    return group_queue(m, k, id, fr, n)
  end
  work_left = work_left - n
  return group_inline(m, k, id, fr, redis.call('SMEMBERS', KEYS[k + 2]))
end
-- a retry of a cid already recorded
local function again(m, v)
  if v[2] == 0 and v[4] then -- pending: the ack goes to this connection when the fan-out ends
    local job = string.format(job_fmt, v[4], v[1])
    if redis.call('EXISTS', job) == 1 then
      redis.call('HSET', job, 'cid', m.cid, 'sess', m.sess, 'conn', m.conn)
    end
    return {v[1], 0, v[3], 'pending', v[4]}
  end
  ack(m, v[1], v[2], v[3])
  return {v[1], v[2], v[3], 'dup'}
end
local function send(keys, args)
  KEYS, ARGV = keys, args
  store_init(ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[11]), tonumber(ARGV[4]))
  if not K_U then
    K_U, K_X, V_U = mp_str('u'), mp_str('x'), mp_str('u')
    ENV_U4, ENV_U5 = char(0x84) .. K_T .. V_U .. K_U, char(0x85) .. K_T .. V_U .. K_U
  end
  hist_cap, hist_bytes = tonumber(ARGV[3]), tonumber(ARGV[12])
  meta_fmt, inbox_fmt, sessions_fmt, unread_fmt = ARGV[5], ARGV[6], ARGV[7], ARGV[8]
  gateways_key, chunk = ARGV[9], tonumber(ARGV[10])
  job_fmt, todo_fmt, fanouts_key = ARGV[13], ARGV[14], ARGV[15]
  rates = {tonumber(ARGV[16]), tonumber(ARGV[18]), tonumber(ARGV[20])}
  bursts = {tonumber(ARGV[17]), tonumber(ARGV[19]), tonumber(ARGV[21])}
  work_left = chunk
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
  local res, k, a = {}, 1, 22
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
      res[#res + 1] = again(m, cmsgpack.unpack(old))
    else
      local ok, r = pcall(group and send_group or send_pair, m, k)
      if not ok then
        refuse(m, 'unavailable', 'not stored: retry later with the same cid')
        r = 'failed: ' .. tostring(r)
      end
      res[#res + 1] = r
    end
    if group then k = k + 8 else k = k + 16 end
    a = a + 6
  end
  flush()
  return res
end
