-- include: gateways fanout epoch store members ref
-- function: fanout
--
-- fanout.lua - one bounded step of a group's queued fan-out (send.lua queues a group message
-- whose members are more than a call's chunk, and every later message of that group while one
-- is queued, so a group's messages are fanned out in id order).
-- Caller: the router that holds the group's slot (router/fanout.c, scripts_fanout), one step
-- after another, round-robin over the groups with a queued fan-out; any router may run a step
-- (each is atomic and takes its members from Redis), so one that dies mid-job leaves the rest
-- to the next owner of the slot, which finds the group in parley:fanouts.
-- A Redis function, like send (its library is parley_fanout_<16 hex>).
--
-- KEYS  1 the group's queue (list of message ids), 2 parley:fanouts, 3 group members,
--       4 parley:gateways, 5 group meta.
-- ARGV  1 #group, 2 gateway channel prefix, 3 inbox cap, 4 inbox bytes cap, 5 dedupe ttl s,
--       6 chunk (members per step), 7..12 the key formats (%s = user) of a member's meta, inbox,
--       sessions, unread, read and cids, 13 the key format of a job (%s #group, %s id),
--       14 of its member snapshot, 15 the key format of a member's mentions, 16 of a
--       conversation's history, 17 of a member's recount marks (read.lua).
-- A member whose read recount of the group (read.lua's mark "NEWEST DSEQ") already saw the text
-- (NEWEST >= id) or the delete (DSEQ >= the job's dseq) is not counted again: a read while a
-- fan-out waits would otherwise count the message twice.
-- A text's job appends the reference {seq, id, w: #group} (lib/message.lua) to each inbox and
-- counts it unread (and mentioned, for the members its `mentions` name); a change's job (send.lua:
-- fields op, target, ref, author, mentions; its queue entry is its own id) appends its `ref`
-- instead, counts nothing (a delete takes the message off the counts of each member but its
-- author whose read position is below the target), and its ack and cid record name the target.
-- The head job (the queue's first id): its hash {from, cid, sess, conn, sent, frame, n, gen} and
-- its snapshot, the set of the members when send stored it, less the sender. When the group's meta
-- no longer carries the job's `gen` (the group was deleted, perhaps re-created under the same
-- name), nobody of the snapshot is written: the snapshot is dropped and the step goes on to the
-- sender's copy and the ack (the message was stored; its group emptied). One step SPOPs up to
-- `chunk` members of the snapshot and, for each one still a member (SMISMEMBER: one who left since
-- gets nothing), appends the frame with the member's next seq to its inbox (both caps,
-- lib/store.lua) and HINCRBYs its unread for the group unless its read position is already at or
-- past the id. Deliveries: a group of BROADCAST_MIN (64) members or more: one {t:"m", f, u, s, x:
-- sender session} listing this step's members to every gateway in parley:gateways; a smaller one:
-- one per gateway holding a session of theirs (as send does inline). When the snapshot is empty,
-- the same step writes the sender's own copy (its sessions but the sending one get it), records the
-- cid ([id, sender seq, sent] replaces the pending record), acks to the job's connection (the
-- latest retry's) {t:"c", c, s: sender seq, f: ack}, deletes the job and pops it; an empty queue
-- takes the group out of parley:fanouts.
-- Work per step: at most chunk + 1 member writes (each ~6 Redis calls), one PUBLISH per gateway.
-- Reply {"more", id, written}, {"done", id, written, jobs left in the queue}, or {"idle"} when
-- nothing is queued (the group leaves parley:fanouts).
-- the frame a step delivers: the job's, but an edit's is read from the history at each step
-- (its job holds no text: a delete while it is queued leaves the text nowhere): the edit with the
-- message's data now, or its delete frame when it was deleted since (hist_fmt: history key format)
local function edit_frame(op, frame, g, target, hist_fmt)
  if op ~= 'edit' then return frame end
  local _, m = msg_get(string.format(hist_fmt, g), target)
  if not m then return frame end -- gone from the history: nothing to show but the id
  local f = cmsgpack.unpack(frame)
  if m.deleted then
    return cmsgpack.pack({kind = 'delete', id = target, with = g, by = m.by, deleted = m.deleted})
  end
  f.data, f.edited = m.data, m.edited or f.edited
  return cmsgpack.pack(f)
end
local function fanout(keys, args)
  local queue, fanouts, members_key = keys[1], keys[2], keys[3]
  local g = args[1]
  store_init(args[2], tonumber(args[3]), tonumber(args[4]), tonumber(args[5]))
  local chunk = tonumber(args[6])
  local meta_fmt, inbox_fmt, sessions_fmt, unread_fmt, read_fmt, cids_fmt =
    args[7], args[8], args[9], args[10], args[11], args[12]
  local mentions_fmt = args[15]
  local id = redis.call('LINDEX', queue, 0)
  if not id then
    redis.call('SREM', fanouts, g)
    return {'idle'}
  end
  local job, todo = string.format(args[13], g, id), string.format(args[14], g, id)
  local j = redis.call('HMGET', job, 'from', 'cid', 'sess', 'conn', 'sent', 'frame', 'n', 'gen',
                      'op', 'target', 'ref', 'author', 'mentions', 'dseq')
  local recount_fmt, job_dseq = args[17], tonumber(j[14]) or 0
  -- what user's last read recount of the group saw: newest id, deletes
  local function mark(user)
    if not recount_fmt then return 0, 0 end
    local v = redis.call('HGET', string.format(recount_fmt, user), g)
    if not v then return 0, 0 end
    local a, b = string.match(v, '^(%d+) (%d+)$')
    return tonumber(a) or 0, tonumber(b) or 0
  end
  id = tonumber(id)
  local written = 0
  if j[6] then
    local op, target, author = j[9], tonumber(j[10]) or id, j[12]
    local fr = split_frame(edit_frame(op, j[6], g, target, args[16]))
    local ref, mentioned
    if op then
      ref, mentioned = split_frame(j[11]), cmsgpack.unpack(j[13] or '\144')
    else
      ref = split_frame(cmsgpack.pack({id = id, w = g}))
      local msg = cmsgpack.unpack(j[6])
      mentioned = type(msg) == 'table' and msg.mentions
    end
    local mset = {}
    if type(mentioned) == 'table' then for _, u in ipairs(mentioned) do mset[u] = true end end
    local m = {from = j[1], cid = j[2], sess = j[3], conn = tonumber(j[4])}
    m.chan = prefix .. (string.match(m.sess, '^(.*)#') or m.sess)
    local sent = tonumber(j[5])
    local d = members_new(tonumber(j[7]) >= BROADCAST_MIN, sessions_fmt)
    if (redis.call('HGET', keys[5], 'gen') or '') ~= (j[8] or '') then
      redis.call('DEL', todo) -- another incarnation of the group, or none: nobody to write
    end
    local batch = redis.call('SPOP', todo, chunk)
    -- who is still a member, in one call for the whole step
    local still = #batch > 0 and redis.call('SMISMEMBER', members_key, unpack(batch)) or {}
    for i, user in ipairs(batch) do
      if still[i] == 1 then
        local seq = append(user, string.format(meta_fmt, user), string.format(inbox_fmt, user), id,
                           ref)
        if not op then
          local pos = tonumber(redis.call('HGET', string.format(read_fmt, user), g)) or 0
          if pos < id and mark(user) < id then
            redis.call('HINCRBY', string.format(unread_fmt, user), g, 1)
            if mset[user] then redis.call('HINCRBY', string.format(mentions_fmt, user), g, 1) end
          end
        elseif op == 'delete' and user ~= author and select(2, mark(user)) < job_dseq then
          uncount(string.format(read_fmt, user), string.format(unread_fmt, user),
                  string.format(mentions_fmt, user), g, target, mset[user])
        end
        members_add(d, user, seq, nil)
        written = written + 1
      end
    end
    local last = redis.call('EXISTS', todo) == 0
    local sseq
    if last then -- the sender's own copy, then the ack
      sseq = append(m.from, string.format(meta_fmt, m.from), string.format(inbox_fmt, m.from), id,
                    ref)
      members_add(d, m.from, sseq, m.sess)
      written = written + 1
    end
    members_publish(d, keys[4], fr.base, m.sess)
    if not last then
      flush()
      return {'more', id, written}
    end
    if m.cid ~= '' then
      remember(string.format(cids_fmt, m.from), m.cid, cid_record(target, sseq, sent))
    end
    ack(m, target, sseq, sent)
  end
  -- done (or a job whose hash is gone: nothing left to do for it)
  redis.call('DEL', job, todo)
  redis.call('LPOP', queue)
  local left = redis.call('LLEN', queue)
  if left == 0 then redis.call('SREM', fanouts, g) end
  flush()
  return {'done', id, written, left}
end
