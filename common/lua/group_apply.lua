-- include: step fork gctx gframe notify
--
-- group_apply.lua - a step of group.lua on the group's slot (the join of the group_blocks.lua
-- steps, when any): every check of the op on the group's own keys, then the change to them.
-- Callers: group_by.lua, group_users.lua (directly or as the join of its fork).
--
-- KEYS  1 group meta, 2 members, 3 join order, 4 admins.
-- ARGV  1 the state (msgpack: made, missing; lim and lgen: the limit below and the group's gen
--       it was read in), 2.. the context (lib/gctx.lua), then the replies of the
--       group_blocks.lua steps (1: that user blocks by).
-- Meta `pend` lists the changes whose later steps have not all run (msgpack, each {id, op, by,
-- add, drop, made, index, del, creator, removed, extra}). One that touches a user this op names,
-- or by (in its add or drop), and was listed when this op first got here (its id at most the
-- meta `pseq` read then: state lim), or deletes the group, is finished first (group_run.lua
-- with again), then this op from group_by.lua (its throttles not taken twice): so an op
-- finishes at most the changes pending when it started and is never chased by newer ones (a
-- join/leave flood cannot starve it, nor make one frame run more than those), a retry after a
-- stop finishes what stopped (its user is by or named in it), and two changes of one user's
-- keys for a group run at once only when the later one came while this op finished the earlier
-- ones (group.lua: "Not idempotent"). Changes of other users go on side by side.
-- A refusal: {"error", code, message}; nothing to change: {"same", frame}; both with nothing
-- written. Else the change to the group's keys (members, join order, admins, meta); a change of
-- roles alone (promote, demote) then publishes its frame (lib/notify.lua) and answers {"ok"};
-- any other is added to `pend` (its id: meta `pseq` + 1) and goes on in group_run.lua.
local st = cmsgpack.unpack(ARGV[1])
local c = gctx_read(2, st.nm)
local gk = {KEYS[1], KEYS[2], KEYS[3], KEYS[4]}
local op, name, by, open, limit = c.op, c.name, c.by, c.open, c.limit
-- the changes not finished yet (meta `pend`: a list); one that touches a user this op names (or
-- by), or deletes the group, is finished first (group_run.lua), then this op again from group_by
local raw = redis.call('HGET', KEYS[1], 'pend')
local pend = raw and cmsgpack.unpack(raw) or {}
-- only the changes listed when this op first came here (ids up to st.lim, meta `pseq` then) are
-- finished first: a change made since by another op is not chased (it runs in its own chain),
-- so an op finishes at most the changes pending when it started, however fast others come
-- (per generation of the group: a group deleted and created again under the name numbers its
-- changes from 1 again, so a new generation takes a new limit)
local gen = redis.call('HGET', KEYS[1], 'gen') or ''
if not st.lim or st.lgen ~= gen then
  st.lim, st.lgen = tonumber(redis.call('HGET', KEYS[1], 'pseq')) or 0, gen
end
if not st.nopend then -- (group_by.lua: a join or leave that changes nothing, within a window)
  local mine = {[by] = true}
  for _, u in ipairs(c.named) do mine[u] = true end
  for _, e in ipairs(pend) do
    local hit = e.del -- a deletion: always first (nothing runs on a group being deleted)
    if e.id <= st.lim then
      for _, list in ipairs({e.add, e.drop}) do
        for _, u in ipairs(list) do hit = hit or mine[u] end
      end
    end
    if hit then
      return step_next('group_run', {c.history, c.bytes},
                       c.args({e = cmsgpack.pack(e), gk = gk, again = true, size = st.size,
                               lim = st.lim, lgen = st.lgen}))
    end
  end
end
local function fail(code, message) return {'error', code, message} end
local blocked = false
for i = 2 + #c.list, #ARGV do
  if ARGV[i] == '1' then blocked = true end
end
local p = {op = op, by = by, add = {}, drop = {}}
local function same() return {'same', (gframe(gk, name, op, by, nil))} end
-- the named users, each once, in the order given
local function named()
  local out, seen = {}, {}
  for _, u in ipairs(c.named) do
    if not seen[u] then seen[u] = true; out[#out + 1] = u end
  end
  return out
end
local order -- the last join / promotion number given (meta `order`), read once
local function next_order()
  if not order then order = tonumber(redis.call('HGET', KEYS[1], 'order')) or 0 end
  order = order + 1
  redis.call('HSET', KEYS[1], 'order', order)
  return order
end
-- user becomes a member (his own keys: group_run.lua's steps)
local function add(user)
  redis.call('SADD', KEYS[2], user)
  redis.call('ZADD', KEYS[3], 'NX', next_order(), user)
  p.add[#p.add + 1] = user
end
-- user is no member any more (leave, remove): his order and role go (his keys: group_run.lua)
local function drop(user)
  redis.call('SREM', KEYS[2], user)
  redis.call('ZREM', KEYS[3], user)
  redis.call('ZREM', KEYS[4], user)
  p.drop[#p.drop + 1] = user
end
-- the owner (false: the group is empty); a group from before roles gets them now
local function owner_of()
  local owner = redis.call('HGET', KEYS[1], 'owner')
  if owner then return owner end
  if redis.call('ZCARD', KEYS[3]) == 0 then
    local cur = '0'
    repeat
      local r = redis.call('SSCAN', KEYS[2], cur, 'COUNT', 1000)
      cur = r[1]
      for _, u in ipairs(r[2]) do redis.call('ZADD', KEYS[3], 'NX', 0, u) end
    until cur == '0'
  end
  local creator = redis.call('HGET', KEYS[1], 'by')
  if creator and redis.call('SISMEMBER', KEYS[2], creator) == 1 then owner = creator
  else owner = redis.call('ZRANGE', KEYS[3], 0, 0)[1] or false end
  if owner then redis.call('HSET', KEYS[1], 'owner', owner) end
  return owner
end
local function is_admin(user) return redis.call('ZSCORE', KEYS[4], user) ~= false end
-- the change is made: what is left is recorded (numbered: meta `pseq`), then done by
-- group_run.lua's steps; a change of roles alone leaves nothing: its frame goes out now
local function run()
  if #p.add == 0 and #p.drop == 0 and not p.index then
    local f, members = gframe(gk, name, op, by, nil)
    return notify(members, c.prefix, f, nil, {'ok'}, c.gateways, c.sessions_fmt)
  end
  p.id = redis.call('HINCRBY', KEYS[1], 'pseq', 1)
  pend[#pend + 1] = p
  redis.call('HSET', KEYS[1], 'pend', cmsgpack.pack(pend))
  return step_next('group_run', {c.history, c.bytes}, c.args({e = cmsgpack.pack(p), gk = gk}))
end
local exists = redis.call('EXISTS', KEYS[1]) == 1
if op == 'create' then
  if exists then return fail('forbidden', 'group ' .. name .. ' already exists') end
  if c.created_max > 0 and (st.made or 0) >= c.created_max then
    return fail('forbidden', 'at most ' .. c.created_max .. ' groups created per user')
  end
  if st.missing then return fail('no_such_user', 'no such user: ' .. st.missing) end
  local set, list = {[by] = true}, {by}
  for _, u in ipairs(c.named) do
    if not set[u] then set[u] = true; list[#list + 1] = u end
  end
  if #list > limit then return fail('bad_field', 'members: at most ' .. limit .. ' per group') end
  if blocked then return fail('forbidden', 'one of the members named does not accept you') end
  local t = redis.call('TIME')
  redis.call('HSET', KEYS[1], 'open', open, 'created', c.now, 'by', by, 'owner', by, 'gen',
             t[1] .. string.format('%06d', tonumber(t[2])))
  redis.call('DEL', KEYS[3], KEYS[4])
  for _, user in ipairs(list) do add(user) end -- the creator first: number 1
  p.made = by
  if open == '1' then p.index = 'add' end
  return run()
end
if not exists then return fail('no_such_user', 'no such group: ' .. name) end
local member = redis.call('SISMEMBER', KEYS[2], by) == 1
if op == 'join' then
  if member then return same() end
  if redis.call('HGET', KEYS[1], 'open') ~= '1' then
    return fail('forbidden', name .. ' is closed: its owner or an admin must add you')
  end
  if redis.call('SCARD', KEYS[2]) >= limit then return fail('forbidden', name .. ' is full') end
  owner_of()
  add(by)
  return run()
end
if not member then return fail('forbidden', 'not a member of ' .. name) end
local owner = owner_of()
if op == 'leave' then
  drop(by)
  p.extra = {by}
  if owner == by then -- the admin promoted earliest, else the member who joined earliest
    local heir = redis.call('ZRANGE', KEYS[4], 0, 0)[1] or redis.call('ZRANGE', KEYS[3], 0, 0)[1]
    if heir then
      redis.call('HSET', KEYS[1], 'owner', heir)
      redis.call('ZREM', KEYS[4], heir)
    else
      redis.call('HDEL', KEYS[1], 'owner')
    end
  end
  if redis.call('SCARD', KEYS[2]) == 0 then
    -- the last member left: nobody can read the group any more, so it goes (group_run.lua and
    -- group_done.lua); the name is free then
    p.del, p.index = true, 'del'
    p.creator = redis.call('HGET', KEYS[1], 'by') or nil
    -- the deletion drops `pend` with the group: what other changes left to drop goes with it
    -- (they added nobody: every member left), up to one fork's worth (1,000)
    for _, e in ipairs(pend) do
      for _, u in ipairs(e.drop) do
        if u ~= by and #p.drop < 1000 then p.drop[#p.drop + 1] = u end
      end
    end
  end
  return run()
end
if op == 'add' then
  if redis.call('HGET', KEYS[1], 'open') ~= '1' and by ~= owner and not is_admin(by) then
    return fail('forbidden', name .. ' is closed: only its owner and admins may add members')
  end
  if st.missing then return fail('no_such_user', 'no such user: ' .. st.missing) end
  if blocked then return fail('forbidden', 'one of the users named does not accept you') end
  local new = {}
  for _, u in ipairs(named()) do
    if redis.call('SISMEMBER', KEYS[2], u) == 0 then new[#new + 1] = u end
  end
  if #new == 0 then return same() end
  if redis.call('SCARD', KEYS[2]) + #new > limit then
    return fail('forbidden', name .. ' would have more than ' .. limit .. ' members')
  end
  for _, u in ipairs(new) do add(u) end
  return run()
end
if op == 'remove' then
  if by ~= owner and not is_admin(by) then
    return fail('forbidden', 'only the owner and admins of ' .. name .. ' may remove members')
  end
  local gone = {}
  for _, u in ipairs(named()) do
    if u == by then return fail('forbidden', 'you cannot remove yourself: leave instead') end
    if redis.call('SISMEMBER', KEYS[2], u) == 1 then
      if u == owner then return fail('forbidden', 'the owner cannot be removed') end
      if by ~= owner and is_admin(u) then
        return fail('forbidden', 'an admin cannot remove another admin')
      end
      gone[#gone + 1] = u
    end
  end
  if #gone == 0 then return same() end
  for _, u in ipairs(gone) do drop(u) end
  table.sort(gone)
  p.removed, p.extra = gone, gone
  return run()
end
if op == 'promote' or op == 'demote' then
  if by ~= owner then
    return fail('forbidden', 'only the owner of ' .. name .. ' may ' .. op .. ' members')
  end
  local list = named()
  for _, u in ipairs(list) do
    if redis.call('SISMEMBER', KEYS[2], u) == 0 then
      return fail('no_such_user', 'not a member of ' .. name .. ': ' .. u)
    end
  end
  local changed = false
  for _, u in ipairs(list) do
    if op == 'promote' then
      if u ~= owner and not is_admin(u) then
        redis.call('ZADD', KEYS[4], next_order(), u)
        changed = true
      end
    elseif redis.call('ZREM', KEYS[4], u) == 1 then
      changed = true
    end
  end
  if not changed then return same() end
  return run()
end
return fail('bad_field', 'op: unknown')
