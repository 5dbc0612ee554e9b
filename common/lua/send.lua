-- include: gateways fanout access epoch store members ref message limits
-- function: send
--
-- send.lua - a batch of texts and changes (edit, delete, react) from one router, stored,
-- delivered and acked in order; one whose fan-out would be too much work for one call is stored
-- and queued for fanout.lua instead (bounded work per call).
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
--   burst (0 rate: no limit of that kind), 22 the key format of a member's mentions, 23 of a
--   member's read positions.
-- Then 8 ARGV per message: from, to, data (a change: edit's new data, react's emoji, "" for a
--   delete), cid ("" none), sender session id (gwid#connid), sender connid, op ("text",
--   "edit", "delete", "react+" (add), "react-" (take back)), ref (text: reply_to or ""; a
--   change: the target message's id).
-- KEYS, in message order:
--   1:1 (18): 1 sender cids, 2 recipient account, 3 parley:ids, 4 conversation history,
--     5 recipient meta, 6 recipient inbox, 7 recipient sessions, 8 sender meta, 9 sender inbox,
--     10 sender sessions, 11 sender contacts, 12 recipient contacts, 13 recipient unread,
--     14 history bytes, 15 sender budget, 16 recipient hidden set (block.lua), 17 recipient
--     mentions, 18 recipient read;
--   to a #group (9): 1 sender cids, 2 group meta, 3 group members, 4 parley:ids, 5 group history,
--     6 the group's fan-out queue, 7 history bytes, 8 sender budget, 9 group admins.
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
-- 3b. reply_to (a text's ref) must name a message in the conversation's history, else error
--    bad_field (with cid). mentions (lib/message.lua mentions_of): the participants the data
--    names with '@' (1:1: the two; a group: SISMEMBER of its members), at most 64 lookups.
-- 4. id = INCR ids; the frame {kind:"text", id, from, to, data, sent, cid, reply_to?,
--    mentions?} (no seq) ZADDed to the
--    history with score id; the oldest entries ZPOPMINed while it holds more than the history
--    cap or its bytes (KEYS history bytes, a counter of the sum of its frames' sizes, reset when
--    the history holds one entry) exceed the history bytes cap (never the newest).
-- 5. 1:1: for the recipient and (unless sending to oneself) the sender: seq = HINCRBY meta seq 1
--    (creating epoch on first use), the inbox reference {seq, id, w: the peer} (lib/message.lua)
--    RPUSHed to the inbox, trimmed to both inbox caps (lib/store.lua); for each distinct gateway
--    in sessions: {t:"u", u, s: seq, f: the frame with seq} (the sender's with x = the sending
--    session). HINCRBY the recipient's unread for the sender (and his mentions when the text
--    mentions him), SADD both contacts sets.
--    Group, inline (the group has no queued fan-out and its members fit in what is left of this
--    call's chunk): the same inbox reference {seq, id, w: #group} for every member, HINCRBY
--    unread (and mentions, for those it mentions) for the group (not the sender's), and one
--    {t:"m", f, u, s, x: sender session} per gateway that holds a member's
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
-- Changes (op edit/delete/react+/react-; ref = the target id, which must be in the history, else
-- bad_field): access as a text (1:1: no_such_user; a block either way refuses edit and react,
-- forbidden, not a delete; a group: member). Rights: edit the author (forbidden), delete the
-- author or in a group its owner/admins (forbidden), checked before the message's state; edit or
-- react on a deleted message bad_field;
-- the 21st distinct emoji bad_field. A change that changes nothing (delete of a deleted message,
-- a reaction already there / not there) is acked with the sender's current seq, nothing sent.
-- Else the same budget as a text (data bytes: the new data or the emoji), the history entry
-- rewritten (lib/message.lua: edited + data; deleted + by, data "" and no reactions;
-- reactions {emoji: [users]}), and like a text to every participant: an inbox reference
-- ({k:"e"|"d"|"r", ...}) and the live frame edit {id, with, from, data, edited} / delete {id,
-- with, by, deleted} / react {id, with, from, emoji, on} with `with` as each names the
-- conversation; the ack {cid, id: the target, seq, sent}. A delete also takes the message off
-- the counts of every participant but its author who had not read it (read position < id):
-- unread -1, mentions -1 when it mentioned him; and a fan-out of it still queued gets the
-- deleted state as its frame. A group whose fan-out is queued or too big for the call's chunk
-- gets a job like a text's (its id a fresh INCR of parley:ids; fields frame, ref, target, op,
-- author, mentions, dseq (a delete's number in the group, meta `dseq`: read.lua's marks); an
-- edit's frame without its data, which fanout.lua reads from the history at
-- each step, so the text is stored only there), fanout.lua doing the member steps.
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
local mentions_fmt, read_fmt
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
-- takes one message costing copies inbox writes from the sender's budget (lib/limits.lua)
local function budget(key, copies, bytes)
  return budget_take(key, copies, bytes, rates, bursts, now)
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
-- the history's caps (lib/limits.lua)
local function trim_history(history, hbytes, n, total)
  history_trim(history, hbytes, n, total, hist_cap, hist_bytes)
end
-- a message rewritten in place (an edit, a reaction): stored, then the history trimmed to its caps
-- as after a new one (an edit that grows it may push the oldest out)
local function rewrite(history, hbytes, id, raw, msg)
  local stored = msg_put(history, hbytes, id, raw, msg)
  if #stored > #raw then
    trim_history(history, hbytes, redis.call('ZCARD', history),
                 tonumber(redis.call('GET', hbytes)) or 0)
  end
  return stored
end
local function new_message(m, ids, history, hbytes, reply_to, mentions)
  local id = redis.call('INCR', ids)
  local msg = {kind = 'text', id = id, from = m.from, to = m.to, data = m.data, sent = now,
               reply_to = reply_to, mentions = mentions}
  if m.cid ~= '' then msg.cid = m.cid end
  local base = cmsgpack.pack(msg)
  history_add(history, hbytes, id, base, hist_cap, hist_bytes)
  return id, split_frame(base)
end
local function finish(m, cids, id, sseq)
  if m.cid ~= '' then remember(cids, m.cid, cid_record(id, sseq, now)) end
  ack(m, id, sseq, now)
  return {id, sseq, now}
end
-- an inbox reference (lib/message.lua), split for with_seq
local function ref_of(t) return split_frame(cmsgpack.pack(t)) end
-- appends the reference ref to user's inbox and delivers the frame live (split) with its seq to
-- user's sessions but skip; the seq
local function store(user, id, ref, live, skip)
  local seq = append(user, string.format(meta_fmt, user), string.format(inbox_fmt, user), id, ref)
  deliver(user, seq, with_seq(live, seq), string.format(sessions_fmt, user), skip)
  return seq
end
-- the reply_to of m: nil (none), the id, or false when it names no message of history
local function reply_to_of(m, history)
  if m.ref == '' then return nil end
  local id = tonumber(m.ref)
  if not id or not msg_get(history, id) then return false end
  return id
end
local function bad_reply(m)
  return refuse(m, 'bad_field', "field 'reply_to' names no message of this conversation")
end
local function set_of(list)
  local s = {}
  for _, u in ipairs(list or {}) do s[u] = true end
  return s
end
local function send_pair(m, k)
  if redis.call('EXISTS', KEYS[k + 1]) == 0 then
    return refuse(m, 'no_such_user', 'no such user: ' .. m.to)
  end
  if redis.call('SISMEMBER', KEYS[k + 15], m.from) == 1 then
    return refuse(m, 'forbidden', 'you cannot write to ' .. m.to)
  end
  local reply_to = reply_to_of(m, KEYS[k + 3])
  if reply_to == false then return bad_reply(m) end
  local self = m.from == m.to
  local over = budget(KEYS[k + 14], self and 1 or 2, #m.data)
  if over then return over_budget(m, over) end
  local mentions = mentions_of(m.data, function(n) return n == m.from or n == m.to end)
  local id, fr = new_message(m, KEYS[k + 2], KEYS[k + 3], KEYS[k + 13], reply_to, mentions)
  local sseq
  if self then
    sseq = store(m.to, id, ref_of({id = id, w = m.to}), fr, m.sess)
  else
    store(m.to, id, ref_of({id = id, w = m.from}), fr, nil)
    redis.call('HINCRBY', KEYS[k + 12], m.from, 1)
    if set_of(mentions)[m.to] then redis.call('HINCRBY', KEYS[k + 16], m.from, 1) end
    sseq = store(m.from, id, ref_of({id = id, w = m.to}), fr, m.sess)
    redis.call('SADD', KEYS[k + 10], m.to)
    redis.call('SADD', KEYS[k + 11], m.from)
  end
  return finish(m, KEYS[k], id, sseq)
end
local function group_inline(m, k, id, fr, members, mentions)
  local d, sseq = members_new(#members >= BROADCAST_MIN, sessions_fmt), 0
  local ref, mset = ref_of({id = id, w = m.to}), set_of(mentions)
  for _, user in ipairs(members) do
    local seq = append(user, string.format(meta_fmt, user), string.format(inbox_fmt, user), id,
                       ref)
    local skip = nil
    if user == m.from then sseq, skip = seq, m.sess
    else
      redis.call('HINCRBY', string.format(unread_fmt, user), m.to, 1)
      if mset[user] then redis.call('HINCRBY', string.format(mentions_fmt, user), m.to, 1) end
    end
    members_add(d, user, seq, skip)
  end
  members_publish(d, gateways_key, fr.base, m.sess)
  return finish(m, KEYS[k], id, sseq)
end
-- queues the fan-out of job `jid` (a message id, or a change's own id from parley:ids) for
-- fanout.lua: the member snapshot, the job hash (fields: its own and the common ones below),
-- the queue entry and the pending cid record
local function group_queue(m, k, jid, fields, n)
  local job, todo = string.format(job_fmt, m.to, jid), string.format(todo_fmt, m.to, jid)
  redis.call('COPY', KEYS[k + 2], todo)
  redis.call('SREM', todo, m.from)
  redis.call('HSET', job, 'from', m.from, 'cid', m.cid, 'sess', m.sess, 'conn', m.conn,
             'sent', now, 'n', n, 'gen', redis.call('HGET', KEYS[k + 1], 'gen') or '',
             unpack(fields))
  redis.call('RPUSH', KEYS[k + 5], jid)
  redis.call('SADD', fanouts_key, m.to)
  if m.cid ~= '' then
    remember(KEYS[k], m.cid, cmsgpack.pack({jid, 0, now, m.to}))
  end
  return {jid, 0, now, 'pending', m.to}
end
local function group_refused(m, bad)
  if bad == 'no_such_user' then return refuse(m, bad, 'no such group: ' .. m.to) end
  return refuse(m, bad, 'not a member of ' .. m.to)
end
local function send_group(m, k)
  local bad = access('1', KEYS[k + 2], KEYS[k + 1], m.from)
  if bad then return group_refused(m, bad) end
  local reply_to = reply_to_of(m, KEYS[k + 4])
  if reply_to == false then return bad_reply(m) end
  local n = redis.call('SCARD', KEYS[k + 2])
  local over = budget(KEYS[k + 7], n, #m.data)
  if over then return over_budget(m, over) end
  local mentions = mentions_of(m.data, function(u)
    return redis.call('SISMEMBER', KEYS[k + 2], u) == 1
  end)
  local id, fr = new_message(m, KEYS[k + 3], KEYS[k + 4], KEYS[k + 6], reply_to, mentions)
  if n > work_left or redis.call('EXISTS', KEYS[k + 5]) == 1 then
    return group_queue(m, k, id, {'frame', fr.base}, n)
  end
  work_left = work_left - n
  return group_inline(m, k, id, fr, redis.call('SMEMBERS', KEYS[k + 2]), mentions)
end
-- ---- changes: edit, delete, react (m.op; m.ref the target id) ----
-- a change that changes nothing (a delete of a deleted message, a reaction already there or
-- not there): one message taken from the sender's budget (key bkey: no inbox write, no byte)
-- like any frame that is stored (its cid record), then the ack again, with the sender's current
-- seq, and the cid remembered
local function unchanged(m, k, id, bkey)
  local over = budget(bkey, 0, 0)
  if over then return over_budget(m, over) end
  local sseq = tonumber(redis.call('HGET', string.format(meta_fmt, m.from), 'seq')) or 0
  return finish(m, KEYS[k], id, sseq)
end
-- what a change makes of message msg (decoded, changed here): the live frame (without `with`),
-- the inbox reference (without w), or nil and the refusal's result
local function apply(m, msg, id, group, k, bkey)
  if m.op == 'edit' then -- the right first, then the state
    if msg.from ~= m.from then
      return nil, refuse(m, 'forbidden', 'only its author may edit a message')
    end
    if msg.deleted then return nil, refuse(m, 'bad_field', 'this message was deleted') end
    msg.data, msg.edited = m.data, now
    return {kind = 'edit', id = id, from = m.from, data = m.data, edited = now},
           {k = 'e', id = id, from = m.from, at = now}
  end
  if m.op == 'delete' then
    if msg.from ~= m.from and not (group and (
       redis.call('HGET', KEYS[k + 1], 'owner') == m.from or
       redis.call('ZSCORE', KEYS[k + 8], m.from))) then
      return nil, refuse(m, 'forbidden', group and
                         'only its author, the owner or an admin may delete a message' or
                         'only its author may delete a message')
    end
    if msg.deleted then return nil, unchanged(m, k, id, bkey) end
    msg_delete(msg, m.from, now)
    return {kind = 'delete', id = id, by = m.from, deleted = now},
           {k = 'd', id = id, by = m.from, at = now}
  end
  if msg.deleted then return nil, refuse(m, 'bad_field', 'this message was deleted') end
  local on = m.op == 'react+'
  local r = msg_react(msg, m.from, m.data, on)
  if r == 'full' then
    return nil, refuse(m, 'bad_field', 'a message has at most 20 distinct emoji')
  end
  if r == 'same' then return nil, unchanged(m, k, id, bkey) end
  return {kind = 'react', id = id, from = m.from, emoji = m.data, on = on},
         {k = 'r', id = id, from = m.from, emoji = m.data, on = on}
end
local function with_w(t, w, key)
  t[key] = w
  return split_frame(cmsgpack.pack(t))
end
local function change_pair(m, k)
  if redis.call('EXISTS', KEYS[k + 1]) == 0 then
    return refuse(m, 'no_such_user', 'no such user: ' .. m.to)
  end
  if m.op ~= 'delete' and redis.call('SISMEMBER', KEYS[k + 15], m.from) == 1 then
    return refuse(m, 'forbidden', 'you cannot write to ' .. m.to)
  end
  local id = tonumber(m.ref)
  local raw, msg = msg_get(KEYS[k + 3], id)
  if not raw then
    return refuse(m, 'bad_field', "field 'id' names no message of this conversation")
  end
  local mentioned = set_of(msg.mentions)[m.to]
  local live, ref = apply(m, msg, id, false, k, KEYS[k + 14])
  if not live then return ref end
  local self = m.from == m.to
  local over = budget(KEYS[k + 14], self and 1 or 2, #m.data)
  if over then return over_budget(m, over) end
  rewrite(KEYS[k + 3], KEYS[k + 13], id, raw, msg)
  local sseq
  if self then
    sseq = store(m.to, id, with_w(ref, m.to, 'w'), with_w(live, m.to, 'with'), m.sess)
  else
    store(m.to, id, with_w(ref, m.from, 'w'), with_w(live, m.from, 'with'), nil)
    if m.op == 'delete' then
      uncount(KEYS[k + 17], KEYS[k + 12], KEYS[k + 16], m.from, id, mentioned)
    end
    sseq = store(m.from, id, with_w(ref, m.to, 'w'), with_w(live, m.to, 'with'), m.sess)
  end
  return finish(m, KEYS[k], id, sseq)
end
local function change_group(m, k)
  local bad = access('1', KEYS[k + 2], KEYS[k + 1], m.from)
  if bad then return group_refused(m, bad) end
  local id = tonumber(m.ref)
  local raw, msg = msg_get(KEYS[k + 4], id)
  if not raw then
    return refuse(m, 'bad_field', "field 'id' names no message of this conversation")
  end
  local author, mentions = msg.from, msg.mentions
  local live, ref = apply(m, msg, id, true, k, KEYS[k + 7])
  if not live then return ref end
  local n = redis.call('SCARD', KEYS[k + 2])
  local over = budget(KEYS[k + 7], n, #m.data)
  if over then return over_budget(m, over) end
  local stored = rewrite(KEYS[k + 4], KEYS[k + 6], id, raw, msg)
  local dseq = 0
  if m.op == 'delete' then -- a fan-out still queued carries the text: it gets the deleted state
    local job = string.format(job_fmt, m.to, id)
    if redis.call('HEXISTS', job, 'frame') == 1 then redis.call('HSET', job, 'frame', stored) end
    dseq = redis.call('HINCRBY', KEYS[k + 1], 'dseq', 1) -- read.lua's marks compare with it
  end
  live, ref = with_w(live, m.to, 'with'), with_w(ref, m.to, 'w')
  if n > work_left or redis.call('EXISTS', KEYS[k + 5]) == 1 then
    local jid = redis.call('INCR', KEYS[k + 3])
    local queued = live.base -- an edit's job holds no text: fanout.lua reads it at each step
    if m.op == 'edit' then
      queued = cmsgpack.pack({kind = 'edit', id = id, with = m.to, from = m.from, edited = now})
    end
    return group_queue(m, k, jid, {'frame', queued, 'ref', ref.base, 'target', id,
                                   'op', m.op, 'author', author, 'dseq', dseq,
                                   'mentions', cmsgpack.pack(mentions or {})}, n)
  end
  work_left = work_left - n
  local members = redis.call('SMEMBERS', KEYS[k + 2])
  local d, sseq = members_new(#members >= BROADCAST_MIN, sessions_fmt), 0
  local mset = set_of(mentions)
  for _, user in ipairs(members) do
    local seq = append(user, string.format(meta_fmt, user), string.format(inbox_fmt, user), id,
                       ref)
    local skip = nil
    if user == m.from then sseq, skip = seq, m.sess end
    if m.op == 'delete' and user ~= author then
      uncount(string.format(read_fmt, user), string.format(unread_fmt, user),
              string.format(mentions_fmt, user), m.to, id, mset[user])
    end
    members_add(d, user, seq, skip)
  end
  members_publish(d, gateways_key, live.base, m.sess)
  return finish(m, KEYS[k], id, sseq)
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
  mentions_fmt, read_fmt = ARGV[22], ARGV[23]
  rates = {tonumber(ARGV[16]), tonumber(ARGV[18]), tonumber(ARGV[20])}
  bursts = {tonumber(ARGV[17]), tonumber(ARGV[19]), tonumber(ARGV[21])}
  work_left = chunk
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
  local res, k, a = {}, 1, 24
  while a + 7 <= #ARGV do
    local m = {from = ARGV[a], to = ARGV[a + 1], data = ARGV[a + 2], cid = ARGV[a + 3],
               sess = ARGV[a + 4], conn = tonumber(ARGV[a + 5]), op = ARGV[a + 6],
               ref = ARGV[a + 7]}
    m.chan = prefix .. (string.match(m.sess, '^(.*)#') or m.sess)
    local group = string.byte(m.to, 1) == 35
    local old = nil
    if m.cid ~= '' then
      old = redis.call('HGET', KEYS[k], m.cid) or redis.call('HGET', KEYS[k] .. ':old', m.cid)
    end
    if old then
      res[#res + 1] = again(m, cmsgpack.unpack(old))
    else
      local fn
      if m.op == 'text' then fn = group and send_group or send_pair
      else fn = group and change_group or change_pair end
      local ok, r = pcall(fn, m, k)
      if not ok then
        refuse(m, 'unavailable', 'not stored: retry later with the same cid')
        r = 'failed: ' .. tostring(r)
      end
      res[#res + 1] = r
    end
    if group then k = k + 9 else k = k + 18 end
    a = a + 8
  end
  flush()
  return res
end
