-- include: gateways epoch store ref message step fork pair access limits
-- function: send_step
--
-- send_step.lua - send.lua's work in steps, each inside one hash slot: what the router runs on a
-- Redis Cluster (docs/internals.md "Scripts in steps", "The send path on a cluster"). One Redis
-- function whose ARGV 1 names the step; the steps chain by continuation (lib/step.lua,
-- lib/fork.lua), so the router's batch call gets one reply, as from send.lua.
-- Caller: the router (router/route.c through scripts_send_batch_call when its Redis is a
-- cluster: common/scripts_send.c), with ARGV 1 "split"; every other step is named by the one
-- before it.
--
-- split (KEYS 1: a key it does not touch, the first message's id counter, so batches spread
--   over the masters; the join runs there too): ARGV 2..24 as send.lua's ARGV 1..23, 25..37
--   the key formats of a user's cids, budget, account, hidden, contacts, recount, got, of a
--   conversation's history, history bytes, cid records, of a group's meta, members, admins, of a
--   conversation's open events; 39 "1" durable mode (below) or "0"; then 10 per message: send.lua's
--   8, the key of the counter of ids of the conversation's cluster slot (parley:{TAG}:ids,
--   keys.h KEY_SLOT_IDS) and that slot. Answers a fork: one chain per message, joined by "join".
-- Every other step: ARGV 2 the message's context (msgpack: the limits, key formats and the
--   message, with what earlier steps found), then its own. The chain of a message:
--   1:1:   from (sender: cid record, budget) -> to (recipient: account, blocks) -> conv (history:
--          id, store; the cid kept with the conversation) -> a fork of member steps (the sender's
--          own copy, the recipient's: inbox reference, seq, counts, live frame) -> close
--          (conversation: the open events written) -> done (sender: cid record, ack).
--   group: from (cid record) -> group (membership, size, mentions, the sender's role) -> budget
--          (sender) -> conv -> fan (the members now) -> parts (each a fork of member steps) ->
--          close -> done.
--   Order: conv adds the event to the conversation's open ones (`parley:{c:K}:open`, open_add)
--   and the message's member steps carry the other open ones: each member step writes, in id
--   order, every carried event its member has not got, then this one; close removes them. So a
--   conversation's events reach each inbox in id order whatever the order the member steps run
--   in, and after a stop too: a message whose chain stopped after conv is written by the next
--   message's member steps, before it (its retry then finds it written). Beyond 16 open events,
--   64 KB of them or 2 MB over all the copies, an older one is written by its own chain or retry
--   (not lost; maybe late).
-- Ids (cluster mode): counter x 16384 + slot, the counter per cluster slot (conv's KEYS 4): unique
-- across the deployment, increasing within a conversation, no global key. A change (edit, delete,
-- react) takes an id of its own the same way (its "event id": the members' steps key on it).
-- Stops between steps (a router crash, a lost connection, a failover): nothing is acknowledged
-- before done, so a stop leaves no acked message behind. What a stop leaves and what finishes it:
--   after from/to/group/budget: the budget taken, nothing stored; the client's retry (same cid)
--   runs the chain again.
--   after conv: the message in the history and among the open events (and the conversation's cid
--   record `parley:{c:K}:cids` "SENDER CID" -> [id, event id, sent]); a retry finds that record
--   and stores nothing again, then writes what the stop left out; the next message of the
--   conversation writes it to its participants before itself (above).
--   after some member steps: those members have it (and their `parley:{u:M}:got` mark: conversation
--   -> its newest events "EVENT:SEQ ..."); the retry's member steps skip whoever has it and answer
--   the seq written then.
--   A message never retried stays in the history and in the inboxes written (not acked: the
--   client shows it unsent until its next retry).
-- Deliveries are published by the step that writes the inbox (the member's step, done for the
-- sender's own copy): a gateway never sees a delivery before its stored state.
-- Durable mode (ARGV 39 of split "1": the router's --wait-replicas): the runner WAITs for the
-- replicas after every step (common/scripts_run.c scripts_eval_wait), and done publishes nothing
-- itself: it answers a continuation to "ack" (no KEYS: ARGV channel, payload pairs, then the
-- result), which publishes the sender's copy and the ack once done's writes are replicated. So
-- an ack follows the replication of every write of its message.
-- Results (join's reply, one per message, as send.lua's): {id, seq, sent} stored and acked,
-- {id, seq, sent, "dup"} a retry answered again, or a refusal's code ("no_such_user",
-- "forbidden", "rate_limited", "too_large", "bad_field"), "failed: ..." (answered unavailable).
-- Work per step: one message's keys of one slot; fan: one SMEMBERS and a fork of one member step
-- per member (each a few calls).
local CTX -- the message's context (unpacked ARGV 2)
local now
local function ctx_pack(extra)
  if extra then for k, v in pairs(extra) do CTX[k] = v end end
  return cmsgpack.pack(CTX)
end
local function ukey(fmt, user) return string.format(CTX.k[fmt], user) end
local function chan_of(sess) return prefix .. (string.match(sess, '^(.*)#') or sess) end
local function msg_of() -- the fields ack() and the refusals read
  return {cid = CTX.cid, conn = CTX.conn, chan = chan_of(CTX.sess)}
end
local function refuse(code, message)
  if CTX.paid then -- the budget taken by an earlier step (another slot): given back first
    flush()
    return step_next('send_step', {ukey('budget', CTX.from)},
                     {'refund', ctx_pack({paid = false}), code, message})
  end
  local e = {kind = 'error', code = code, message = message}
  if CTX.cid ~= '' then e.cid = CTX.cid end
  emit_table(chan_of(CTX.sess), {t = 'c', c = CTX.conn, f = cmsgpack.pack(e)})
  flush()
  return cmsgpack.pack(code)
end
local function result(r)
  flush()
  return cmsgpack.pack(r)
end
local function next_step(name, keys, extra, more)
  flush()
  local args = {name, ctx_pack(extra)}
  for _, a in ipairs(more or {}) do args[#args + 1] = a end
  return step_next('send_step', keys, args)
end
-- what a member step reads of the context (member_one, the entry's store_init and refusal): a
-- message's member steps get only that (not the key formats, the budgets' rates), since a group
-- message has one per member (the router builds and holds them all: half the bytes)
local MEMBER_FIELDS = {'prefix', 'icap', 'ibytes', 'ttl', 'sent', 'to', 'from', 'sess', 'conn',
                       'cid', 'op', 'id', 'eid', 'f', 'live', 'ref', 'mmentions', 'author', 'dseq',
                       'carry'}
local function member_pack()
  local m = {}
  for _, f in ipairs(MEMBER_FIELDS) do m[f] = CTX[f] end
  return cmsgpack.pack(m)
end
local function sender_keys() -- the sender's keys of the done step
  return {ukey('cids', CTX.from), ukey('meta', CTX.from)}
end
local function member_keys(u)
  return {ukey('meta', u), ukey('inbox', u), ukey('sessions', u), ukey('unread', u),
          ukey('mentions', u), ukey('read', u), ukey('recount', u), ukey('contacts', u),
          ukey('got', u)}
end
local function conv_keys()
  local c = CTX.conv
  return {string.format(CTX.k.history, c), string.format(CTX.k.hbytes, c),
          string.format(CTX.k.ccids, c), CTX.ids, string.format(CTX.k.copen, c)}
end
local function open_key() return string.format(CTX.k.copen, CTX.conv) end
local function is_group() return string.byte(CTX.to, 1) == 35 end
-- the live frame fr (split_frame) with user's seq to the gateways of his sessions (key sessions)
-- but the session skip: {t:"u", u, s, f, x?}
local function deliver(user, seq, fr, sessions, skip)
  local gws = gateways(redis.call('SMEMBERS', sessions), skip)
  if #gws == 0 then return end
  local env = {t = 'u', u = user, s = seq, f = with_seq(fr, seq)}
  if skip then env.x = skip end
  local bytes = cmsgpack.pack(env)
  for _, g in ipairs(gws) do emit(prefix .. g, bytes) end
end
-- takes one message costing copies inbox writes from the sender's budget (lib/limits.lua)
local function budget(key, copies, bytes)
  return budget_take(key, copies, bytes, CTX.rates, CTX.bursts, now)
end
-- gives back what budget() took for a message then refused (the refusal found on another slot,
-- after the budget: refund), never above a burst; nothing when the hash is gone (all full)
local function budget_give(key, copies, bytes)
  local v = redis.call('HMGET', key, 't', 'm', 'f', 'b')
  if not v[1] then return end
  local cost = {1, copies, bytes * copies}
  local left = {}
  for i = 1, 3 do
    left[i] = math.min(CTX.bursts[i], (tonumber(v[i + 1]) or CTX.bursts[i]) + cost[i])
  end
  redis.call('HSET', key, 'm', left[1], 'f', left[2], 'b', left[3])
end
local function over_budget(over)
  if over == 'too_large' then
    return refuse('too_large', 'this text costs more than your budget allows at once (its ' ..
                  'bytes times its copies, or its recipients): not stored, a retry cannot help')
  end
  return refuse('rate_limited', 'over your message budget: retry later with the same cid')
end
local function trim_history(history, hbytes, n, total)
  history_trim(history, hbytes, n, total, CTX.hcap, CTX.hbytes)
end
local function new_id(ids)
  return redis.call('INCR', ids) * 16384 + CTX.slot
end
local steps = {}
-- 1. the sender's cid record (a retry is answered again), then (1:1) the budget
function steps.from(keys)
  if CTX.cid ~= '' then
    local old = redis.call('HGET', keys[1], CTX.cid) or redis.call('HGET', keys[1] .. ':old',
                                                                     CTX.cid)
    if old then
      local v = cmsgpack.unpack(old)
      ack(msg_of(), v[1], v[2], v[3])
      return result({v[1], v[2], v[3], 'dup'})
    end
  end
  if is_group() then
    local g = CTX.to
    return next_step('group', {string.format(CTX.k.gmeta, g), string.format(CTX.k.gmembers, g),
                               string.format(CTX.k.gadmins, g)})
  end
  local over = budget(keys[2], CTX.from == CTX.to and 1 or 2, #CTX.data)
  if over then return over_budget(over) end
  return next_step('to', {ukey('account', CTX.to), ukey('hidden', CTX.to)}, {paid = true})
end
-- 2 (1:1). the recipient: an account; no block either way (a delete is allowed)
function steps.to(keys)
  if redis.call('EXISTS', keys[1]) == 0 then
    return refuse('no_such_user', 'no such user: ' .. CTX.to)
  end
  if CTX.op ~= 'delete' and redis.call('SISMEMBER', keys[2], CTX.from) == 1 then
    return refuse('forbidden', 'you cannot write to ' .. CTX.to)
  end
  return next_step('conv', conv_keys())
end
-- 2 (group). membership, size, the mentions of a text, the sender's role, a delete's number
function steps.group(keys)
  local bad = access('1', keys[2], keys[1], CTX.from)
  if bad == 'no_such_user' then return refuse(bad, 'no such group: ' .. CTX.to) end
  if bad then return refuse(bad, 'not a member of ' .. CTX.to) end
  local extra = {n = redis.call('SCARD', keys[2])}
  if CTX.op == 'text' then
    extra.mentions = mentions_of(CTX.data, function(u)
      return redis.call('SISMEMBER', keys[2], u) == 1
    end) or false
  elseif CTX.op == 'delete' then
    extra.admin = redis.call('HGET', keys[1], 'owner') == CTX.from or
                  redis.call('ZSCORE', keys[3], CTX.from) ~= false
    extra.dseq = redis.call('HINCRBY', keys[1], 'dseq', 1) -- read.lua's marks compare with it
  end
  return next_step('budget', {ukey('budget', CTX.from)}, extra)
end
-- 3 (group). the sender's budget: one copy per member
function steps.budget(keys)
  local over = budget(keys[1], CTX.n, #CTX.data)
  if over then return over_budget(over) end
  return next_step('conv', conv_keys(), {paid = true})
end
-- what a change makes of message msg (changed here): the live frame and the inbox reference
-- (without with / w), or nil and the refusal; 'same' when it changes nothing
local function apply(msg, id)
  local op = CTX.op
  if op == 'edit' then
    if msg.from ~= CTX.from then
      return nil, refuse('forbidden', 'only its author may edit a message')
    end
    if msg.deleted then return nil, refuse('bad_field', 'this message was deleted') end
    msg.data, msg.edited = CTX.data, now
    return {kind = 'edit', id = id, from = CTX.from, data = CTX.data, edited = now},
           {k = 'e', id = id, from = CTX.from, at = now}
  end
  if op == 'delete' then
    if msg.from ~= CTX.from and not CTX.admin then
      return nil, refuse('forbidden', is_group() and
                         'only its author, the owner or an admin may delete a message' or
                         'only its author may delete a message')
    end
    if msg.deleted then return 'same' end
    msg_delete(msg, CTX.from, now)
    return {kind = 'delete', id = id, by = CTX.from, deleted = now},
           {k = 'd', id = id, by = CTX.from, at = now}
  end
  if msg.deleted then return nil, refuse('bad_field', 'this message was deleted') end
  local on = op == 'react+'
  local r = msg_react(msg, CTX.from, CTX.data, on)
  if r == 'full' then return nil, refuse('bad_field', 'a message has at most 20 distinct emoji') end
  if r == 'same' then return 'same' end
  return {kind = 'react', id = id, from = CTX.from, emoji = CTX.data, on = on},
         {k = 'r', id = id, from = CTX.from, emoji = CTX.data, on = on}
end
-- a change's frames again, as the message is now (a re-run after a stop): the live frame and
-- the inbox reference (without with / w)
local function redo(msg, id)
  local op = CTX.op
  if op == 'edit' then
    return {kind = 'edit', id = id, from = CTX.from, data = msg.data, edited = msg.edited or now},
           {k = 'e', id = id, from = CTX.from, at = msg.edited or now}
  end
  if op == 'delete' then
    return {kind = 'delete', id = id, by = msg.by or CTX.from, deleted = msg.deleted or now},
           {k = 'd', id = id, by = msg.by or CTX.from, at = msg.deleted or now}
  end
  local on = op == 'react+'
  return {kind = 'react', id = id, from = CTX.from, emoji = CTX.data, on = on},
         {k = 'r', id = id, from = CTX.from, emoji = CTX.data, on = on}
end
-- The conversation's open events (hash KEYS 5 of conv: event id -> the event as member steps
-- write it): stored, not yet known to be in every participant's inbox. The event of extra is
-- added; the others (the oldest first, at most OPEN_MAX of them and OPEN_BYTES in all) ride along
-- in this message's member steps (extra.carry, their ids extra.ceids), which write each one a
-- member has not got before this one: a conversation's events reach each inbox in id order even
-- when an earlier message's chain stopped between its conversation step and its member steps (a
-- failover, a router crash) and its retry comes after this one, and whatever the order in which
-- the runner sends member steps. close removes what the chain wrote everywhere. One beyond the
-- caps is written by its own chain or retry, maybe after newer ones (a copy never lost: got
-- marks, and clients order by id).
-- What rides along is bounded per copy too (COPY_BYTES in all the member steps: a 5,000-member
-- group carries at most ~400 bytes of other events).
local OPEN_MAX, OPEN_BYTES, COPY_BYTES = 16, 65536, 2097152
local function open_add(key, extra)
  redis.call('HSET', key, extra.eid, cmsgpack.pack({
    from = CTX.from, to = CTX.to, sess = CTX.sess, op = CTX.op, id = extra.id, eid = extra.eid,
    f = extra.f or false, live = extra.live or false, ref = extra.ref or false,
    mmentions = extra.mmentions or false, author = extra.author or false,
    dseq = CTX.dseq or false}))
  redis.call('EXPIRE', key, 2 * CTX.ttl)
  local flat, open = redis.call('HGETALL', key), {} -- at most OPEN_MAX + 1 fields
  for i = 1, #flat, 2 do open[#open + 1] = {tonumber(flat[i]), flat[i + 1]} end
  table.sort(open, function(a, b) return a[1] < b[1] end)
  while #open > OPEN_MAX do
    redis.call('HDEL', key, open[1][1])
    table.remove(open, 1)
  end
  local copies = is_group() and math.max(CTX.n, 1) or 2
  local room = math.min(OPEN_BYTES, math.floor(COPY_BYTES / copies))
  local carry, ceids, bytes = {}, {}, 0
  for _, o in ipairs(open) do
    if o[1] ~= extra.eid and bytes + #o[2] <= room then
      carry[#carry + 1], ceids[#ceids + 1], bytes = o[2], o[1], bytes + #o[2]
    end
  end
  extra.carry, extra.ceids = carry, ceids
end
-- 4. the conversation: the id, the history (a text stored, a change applied), the cid kept here,
-- the event among the open ones
function steps.conv(keys)
  local history, hbytes, ccids = keys[1], keys[2], keys[3]
  local field = CTX.from .. ' ' .. CTX.cid
  local rec = CTX.cid ~= '' and (redis.call('HGET', ccids, field) or
                                 redis.call('HGET', ccids .. ':old', field))
  local v = rec and cmsgpack.unpack(rec)
  -- a record older than the dedupe time is another message's (the cid used again): the sender's
  -- record (from) and this one are rotated on clocks of their own, each forgets between 1 and 2
  -- ttl, so the sent time decides (as from's answer would within the ttl)
  if v and now - v[3] >= CTX.ttl * 1000 then rec, v = nil, nil end
  local extra
  if rec then -- stored by an earlier run of this chain: write what it may have left out
    extra = {id = v[1], eid = v[2], sent = v[3], author = v[4], mmentions = v[5], same = v[6]}
    now = v[3]
    if not extra.same then -- the frames again, from the message as it is now (no text is kept
      -- in the record: a deleted message's text is in no key)
      local raw, msg = msg_get(history, extra.id)
      if not raw then
        return refuse('bad_field', 'this message is no longer in the history')
      end
      if CTX.op == 'text' then
        extra.f = raw
      else
        extra.live, extra.ref = redo(msg, extra.id)
      end
    end
  elseif CTX.op == 'text' then
    local reply_to = nil
    if CTX.ref ~= '' then
      reply_to = tonumber(CTX.ref)
      if not reply_to or not msg_get(history, reply_to) then
        return refuse('bad_field', "field 'reply_to' names no message of this conversation")
      end
    end
    local mentions = CTX.mentions
    if not is_group() then
      local a, b = CTX.from, CTX.to
      mentions = mentions_of(CTX.data, function(n) return n == a or n == b end)
    end
    if not mentions then mentions = nil end
    local id = new_id(keys[4])
    local msg = {kind = 'text', id = id, from = CTX.from, to = CTX.to, data = CTX.data,
                 sent = now, reply_to = reply_to, mentions = mentions}
    if CTX.cid ~= '' then msg.cid = CTX.cid end
    local base = cmsgpack.pack(msg)
    history_add(history, hbytes, id, base, CTX.hcap, CTX.hbytes)
    extra = {id = id, eid = id, sent = now, f = base, mmentions = mentions or false}
  else
    local id = tonumber(CTX.ref)
    local raw, msg = msg_get(history, id)
    if not raw then
      return refuse('bad_field', "field 'id' names no message of this conversation")
    end
    local author, mentions = msg.from, msg.mentions or false
    local live, ref = apply(msg, id)
    if not live then return ref end
    if live == 'same' then
      extra = {id = id, eid = 0, sent = now, same = true}
    else
      local stored = msg_put(history, hbytes, id, raw, msg)
      if #stored > #raw then
        trim_history(history, hbytes, redis.call('ZCARD', history),
                     tonumber(redis.call('GET', hbytes)) or 0)
      end
      extra = {id = id, eid = new_id(keys[4]), sent = now, live = live, ref = ref,
               author = author, mmentions = mentions}
    end
  end
  if CTX.cid ~= '' and not rec then
    remember(ccids, field, cmsgpack.pack({extra.id, extra.eid, extra.sent, extra.author or false,
                                          extra.mmentions or false, extra.same or false}))
  end
  extra.paid = false -- stored: no refusal comes after this step
  if extra.same then return next_step('done', sender_keys(), extra) end
  extra.data = false -- in the frames now (f, live): not sent again with every member step
  open_add(keys[5], extra)
  if is_group() then
    return next_step('fan', {string.format(CTX.k.gmembers, CTX.to)}, extra)
  end
  -- the copies: the sender's first (done's ARGV 3), then the recipient's (none twice to oneself)
  flush()
  local ctx = ctx_pack(extra)
  local mctx = member_pack()
  local copies = {{'send_step', member_keys(CTX.from), {'member', mctx, CTX.from}}}
  if CTX.to ~= CTX.from then
    copies[2] = {'send_step', member_keys(CTX.to), {'member', mctx, CTX.to}}
  end
  return step_fork(copies, {'send_step', {open_key()}, {'close', ctx}})
end
-- 5 (group). the members now, the sender first (when he is one): a fork of "part" steps of at
-- most the fan-out chunk of them each (more when 4,096 parts would not hold them), each a fork of
-- its members' steps joined by "first" (the first one's seq: the sender's own, for the first
-- part); joined by close (a part runs on the group's node: KEYS the member set, not touched).
-- The member set is read at once (SMEMBERS: bounded by --group-max, like the budget's count).
function steps.fan(keys)
  local members, member = {}, false
  for _, u in ipairs(redis.call('SMEMBERS', keys[1])) do
    if u == CTX.from then member = true else members[#members + 1] = u end
  end
  if member then table.insert(members, 1, CTX.from) end
  local ctx = ctx_pack({member = member})
  local size = math.max(CTX.chunk, math.ceil(#members / 4096))
  local parts = {}
  for i = 1, #members, size do
    local p = {'part', ctx}
    for j = i, math.min(i + size - 1, #members) do p[#p + 1] = members[j] end
    parts[#parts + 1] = {'send_step', {keys[1]}, p}
  end
  return step_fork(parts, {'send_step', {open_key()}, {'close', ctx}}, true)
end
-- a part of the members (ARGV 3...): one member step each, joined by "first" (on the part's
-- node: its KEYS, the group's member set, not touched)
local function part(keys, args)
  local steps_of, mctx = {}, member_pack()
  for i = 3, #args do
    steps_of[#steps_of + 1] = {'send_step', member_keys(args[i]), {'member', mctx, args[i]}}
  end
  return step_fork(steps_of, {'send_step', keys, {'first'}}, true)
end
-- the frame user gets and the reference stored in his inbox, with w = how he names the
-- conversation
local function frames_for(w)
  if CTX.op == 'text' then
    return split_frame(CTX.f), split_frame(cmsgpack.pack({id = CTX.id, w = w}))
  end
  local live, ref = CTX.live, CTX.ref
  live.with, ref.w = w, w
  return split_frame(cmsgpack.pack(live)), split_frame(cmsgpack.pack(ref))
end
-- The user's got mark of conversation w (hash key, field w): the events written to his inbox
-- for it, newest first, "EVENT:SEQ EVENT:SEQ ...", at most GOT_KEEP. A member step writes an
-- event that is not in it (not a watermark: after a failover a retried message can come after
-- a later one, and must still be written; one older than the GOT_KEEP newest is written again,
-- a copy clients drop by id). Returns the seq written for CTX.eid, or nil, and the mark.
local GOT_KEEP = 64
local function got_seq(key, w)
  local got = redis.call('HGET', key, w)
  if not got then return nil, nil end
  for e, sq in string.gmatch(got, '(%d+):(%d+)') do
    if tonumber(e) == CTX.eid then return tonumber(sq), got end
  end
  return nil, got
end
-- records CTX.eid written with seq in the mark (got: what got_seq read)
local function got_add(key, w, got, seq)
  local v, n = CTX.eid .. ':' .. seq, 1
  for item in string.gmatch(got or '', '%S+') do
    if n >= GOT_KEEP then break end
    v, n = v .. ' ' .. item, n + 1
  end
  redis.call('HSET', key, w, v)
end
-- what the user's last read recount of the group saw (read.lua's mark): newest id, deletes
local function mark(key, g)
  local v = redis.call('HGET', key, g)
  if not v then return 0, 0 end
  local a, b = string.match(v, '^(%d+) (%d+)$')
  return tonumber(a) or 0, tonumber(b) or 0
end
-- one participant u, the event of CTX: the inbox reference, the live frame to his sessions (not
-- the sending one), his counts; once per event id (his got mark). Returns the seq.
local function member_one(keys, u)
  local group = is_group()
  local w = group and CTX.to or (u == CTX.to and CTX.from or CTX.to)
  local conv_name = group and CTX.to or CTX.from -- how the recipient's counts name it
  local seq, got = got_seq(keys[9], w)
  if not seq then
    local fr, ref = frames_for(w)
    seq = append(u, keys[1], keys[2], CTX.eid, ref)
    local skip = u == CTX.from and CTX.sess or nil
    deliver(u, seq, fr, keys[3], skip)
    local mentioned = false
    for _, m in ipairs(CTX.mmentions or {}) do if m == u then mentioned = true end end
    if CTX.op == 'text' and u ~= CTX.from then
      local pos = tonumber(redis.call('HGET', keys[6], conv_name)) or 0
      -- not read yet, nor counted by a read's recount since the message was stored (its mark)
      if pos < CTX.id and mark(keys[7], conv_name) < CTX.id then
        redis.call('HINCRBY', keys[4], conv_name, 1)
        if mentioned then redis.call('HINCRBY', keys[5], conv_name, 1) end
      end
    elseif CTX.op == 'delete' and u ~= CTX.author and
           (not group or select(2, mark(keys[7], CTX.to)) < (CTX.dseq or 0)) then
      -- everyone but its author who had not read it, the deleter too (an owner or admin)
      uncount(keys[6], keys[4], keys[5], conv_name, CTX.id, mentioned)
    end
    if CTX.op == 'text' and not group and CTX.from ~= CTX.to then
      redis.call('SADD', keys[8], w) -- each one's contacts: the other
    end
    got_add(keys[9], w, got, seq)
  end
  return seq
end
-- 5. one participant (ARGV 3), the sender's own copy too: the conversation's open events this
-- message carries (conv's open_add) and this one, in id order, each once (member_one). Reply:
-- this message's seq.
function steps.member(keys, args)
  local u, cur, seq = args[3], CTX, nil
  local evs = {cur}
  for _, raw in ipairs(cur.carry or {}) do
    evs[#evs + 1] = setmetatable(cmsgpack.unpack(raw), {__index = cur}) -- limits, key formats
  end
  table.sort(evs, function(a, b) return a.eid < b.eid end)
  for _, ev in ipairs(evs) do
    CTX = ev
    local s = member_one(keys, u)
    if ev == cur then seq = s end
  end
  CTX = cur
  flush()
  return seq
end
-- 6. the conversation again, once every member step answered: the events the chain wrote to
-- every participant leave the open ones; then done, with the fork's replies (ARGV 3...)
function steps.close(keys, args)
  redis.call('HDEL', keys[1], CTX.eid, unpack(CTX.ceids))
  local more = {}
  for i = 3, #args do more[#more + 1] = args[i] end
  return next_step('done', sender_keys(), {carry = false, ceids = false}, more)
end
-- 7. the sender: the cid record and the ack, once every copy is written. ARGV 3: the sender's
-- own seq (the first branch of the fork: conv's for a 1:1; fan's first part for a group he is in),
-- then the other branches' replies
function steps.done(keys, args)
  local sseq
  if CTX.same then
    sseq = tonumber(redis.call('HGET', keys[2], 'seq')) or 0
  elseif is_group() and not CTX.member then
    sseq = 0 -- no longer a member when fan read the members: no copy
  else
    sseq = tonumber(args[3]) or 0
  end
  if CTX.cid ~= '' then remember(keys[1], CTX.cid, cid_record(CTX.id, sseq, CTX.sent)) end
  ack(msg_of(), CTX.id, sseq, CTX.sent)
  if not CTX.wait then return result({CTX.id, sseq, CTX.sent}) end
  -- durable mode: the router WAITs for the replicas of this step's writes, then "ack" publishes
  -- the ack
  local pubs = {'ack'}
  for _, c in ipairs(order) do
    pubs[#pubs + 1] = c
    pubs[#pubs + 1] = table.concat(out[c])
  end
  pubs[#pubs + 1] = cmsgpack.pack({CTX.id, sseq, CTX.sent})
  return step_next('send_step', {keys[1]}, pubs)
end
-- the batch: one chain per message (ARGV as the header says)
local function split(keys, args)
  local k = {meta = args[6], inbox = args[7], sessions = args[8], unread = args[9],
             gateways = args[10], mentions = args[23], read = args[24], cids = args[25],
             budget = args[26], account = args[27], hidden = args[28], contacts = args[29],
             recount = args[30], got = args[31], history = args[32], hbytes = args[33],
             ccids = args[34], gmeta = args[35], gmembers = args[36], gadmins = args[37],
             copen = args[38]}
  local wait = args[39] == '1'
  local base = {k = k, prefix = args[2], icap = tonumber(args[3]), hcap = tonumber(args[4]),
                chunk = tonumber(args[11]),
                ttl = tonumber(args[5]), ibytes = tonumber(args[12]),
                hbytes = tonumber(args[13]),
                rates = {tonumber(args[17]), tonumber(args[19]), tonumber(args[21])},
                bursts = {tonumber(args[18]), tonumber(args[20]), tonumber(args[22])},
                wait = wait}
  local branches = {}
  local a = 40
  while a + 9 <= #args do
    local c = {}
    for key, v in pairs(base) do c[key] = v end
    c.from, c.to, c.data, c.cid, c.sess = args[a], args[a + 1], args[a + 2], args[a + 3],
                                           args[a + 4]
    c.conn, c.op, c.ref = tonumber(args[a + 5]), args[a + 6], args[a + 7]
    c.ids, c.slot = args[a + 8], tonumber(args[a + 9])
    c.conv = string.byte(c.to, 1) == 35 and c.to or pair_key(c.from, c.to)
    branches[#branches + 1] = {'send_step', {string.format(k.cids, c.from),
                                              string.format(k.budget, c.from)},
                               {'from', cmsgpack.pack(c)}}
    a = a + 10
  end
  return step_fork(branches, {'send_step', keys, {'join'}})
end
local function send_step(keys, args)
  local name = args[1]
  if name == 'split' then return split(keys, args) end
  if name == 'ack' then -- on the sender's node (KEYS 1 not touched): PUBLISH channel/payload
    -- pairs, answer the last argument
    for i = 2, #args - 1, 2 do redis.call('PUBLISH', args[i], args[i + 1]) end
    return args[#args]
  end
  if name == 'first' then return tonumber(args[2]) or 0 end
  if name == 'refund' then -- on the sender's node: the budget back, then the refusal (ARGV 3, 4)
    CTX = cmsgpack.unpack(args[2])
    budget_give(keys[1], is_group() and CTX.n or (CTX.from == CTX.to and 1 or 2), #CTX.data)
    return refuse(args[3], args[4])
  end
  if name == 'part' then
    CTX = cmsgpack.unpack(args[2])
    return part(keys, args)
  end
  if name == 'join' then
    local res = {}
    for i = 2, #args do res[#res + 1] = cmsgpack.unpack(args[i]) end
    return res
  end
  CTX = cmsgpack.unpack(args[2])
  store_init(CTX.prefix, CTX.icap, CTX.ibytes, CTX.ttl)
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
  if CTX.sent then now = CTX.sent end
  local fn = steps[name]
  if not fn then return redis.error_reply('send_step: no step ' .. tostring(name)) end
  local ok, r = pcall(fn, keys, args)
  if not ok then
    CTX.paid = false -- (kept: the retry is charged again, as after any stop)
    refuse('unavailable', 'not stored: retry later with the same cid')
    return cmsgpack.pack('failed: ' .. tostring(r))
  end
  return r
end
