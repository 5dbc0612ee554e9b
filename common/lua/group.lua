-- include: gateways fanout fan_users broadcast
--
-- group.lua - creates a group, or joins, leaves, adds, removes, promotes or demotes members.
-- Caller: the gateway (scripts_group).
--
-- KEYS  1 group meta, 2 group members, 3 parley:groups (the open groups only: what a search
--       finds), 4 parley:users, 5 group history, 6 parley:gateways, 7 the history's byte count,
--       8 by's group throttle (parley:{u:BY}:groupop), 9 the group's join order (zset member ->
--       join number), 10 its admins (zset admin -> promotion number).
-- ARGV  1 op (create, join, leave, add, remove, promote, demote), 2 #name, 3 by, 4 open
--       ("1"/"0"), 5 now ms, 6 gateway channel prefix, 7 the key format of a user's sessions,
--       8 the key format of a user's groups, 9 member limit, 10 the key format of a user's
--       unread, 11 the key format of a user's read, 12 the most groups a user may have created
--       (existing ones), 13 the key format of a user's meta, 14 throttle window ms ("0": no
--       throttle), 15 the key format of a user's blocks, 16 the key format of a user's
--       mentions, 17 of a user's recount marks (read.lua), 18.. members (create, add, remove,
--       promote, demote).
-- Roles: the creator is the owner (meta `owner`); the owner names admins (promote / demote:
-- owner only); remove: the owner or an admin, and an admin removes neither the owner nor another
-- admin (nobody names himself: leave instead); add to a closed group (not created open): the
-- owner or an admin; to an open one: any member. Every refusal of a right: forbidden, nothing
-- changed. Every member gets the next join number (meta `order`, one counter for joins and
-- promotions); when the owner leaves, the admin promoted earliest becomes owner, else the
-- member who joined earliest. A group from before roles (meta without `owner`) gets them at its
-- next op: its members' join order is filled in (all number 0: by name among them, before any
-- later joiner), and the owner is its creator if still a member, else the first of that order.
-- Consent: a create or add naming someone who blocks `by` (ARGV 15) is refused whole, forbidden.
-- A removed member is out of the member set at once, so nothing of the group reaches him after
-- the `remove` frame: send.lua writes only members, fanout.lua checks membership at each step,
-- typing reads the members per notice; his read position and unread count for the group go.
-- Throttle (per user, across all his sessions, gateways and groups): an op on a group of
-- BROADCAST_MIN (64) members or more (its members, plus those named; create: those named and
-- by) while KEYS 8 exists answers {"error", "rate_limited", ...} and changes nothing; else it
-- sets KEYS 8 for the window (whatever the op then answers). Checked first: O(1) (SCARD, SET NX
-- PX), before any member is read.
-- Unread follows membership: whoever becomes a member (create, join, add) starts with the
-- group's history read (read position = its newest id, or none when it is empty) and no unread
-- count, so what read.lua recounts later is exactly what send.lua counted since he joined; a
-- leaver's read position and unread count for the group are deleted, so a rejoiner starts
-- fresh (a removed member alike). When the last member leaves, the group is deleted: its meta,
-- its join order and admins, its history (UNLINK), its
-- history's byte count and its search entry; its name is free again, and its creator may create
-- one more. Each creation stamps the meta with `gen` (Redis TIME in microseconds): a fan-out
-- still queued for a deleted group (fanout.lua) sees another or no `gen` and writes no member
-- of a group re-created under the same name.
-- Groups created: a user's meta field `groups` counts the groups he created that still exist;
-- a create over ARGV 12 answers forbidden.
-- Work: O(members named in ARGV, at most the member limit) writes, each role check O(1) or
-- O(log n) (ZSCORE, ZRANGE 0 0), plus the notification: the
-- group frame (every member, sorted) to every member, through one envelope per gateway holding
-- one (fanout) or, from BROADCAST_MIN (64) members, one envelope to every gateway (broadcast: no
-- session lookup per member). Worst case measured (5,000 members created at once): see
-- docs/protocol.md "Bounded reads".
-- On a change, publishes {kind:"group", name, members (all, sorted), op, by, open, owner,
-- admins (sorted), removed (remove: those removed)} (fanout) to every member, and to a leaver or
-- those removed.
-- Reply {"ok"} (published), {"same", frame} when nothing changed (the gateway sends the frame to
-- the requesting session only), or {"error", code, message}.
local op, name, by, open = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local prefix, sessions_fmt, groups_fmt = ARGV[6], ARGV[7], ARGV[8]
local limit = tonumber(ARGV[9])
local unread_fmt, read_fmt = ARGV[10], ARGV[11]
local created_max, meta_fmt = tonumber(ARGV[12]), ARGV[13]
local blocks_fmt, mentions_fmt, recount_fmt = ARGV[15], ARGV[16], ARGV[17]
local FIRST = 18 -- the first member in ARGV
local function fail(code, message) return {'error', code, message} end
local size = #ARGV - FIRST + 1 + (op == 'create' and 1 or redis.call('SCARD', KEYS[2]))
if size >= BROADCAST_MIN and ARGV[14] ~= '0'
   and not redis.call('SET', KEYS[8], '1', 'PX', ARGV[14], 'NX') then
  return fail('rate_limited', 'at most one change of a group of ' .. BROADCAST_MIN ..
              ' members or more per ' .. ARGV[14] .. ' ms: retry later')
end
local removed -- remove: who was removed (they get the frame too)
local function frame()
  local members = redis.call('SMEMBERS', KEYS[2])
  table.sort(members)
  local admins = redis.call('ZRANGE', KEYS[10], 0, -1)
  table.sort(admins)
  local isopen = redis.call('HGET', KEYS[1], 'open') == '1'
  local owner = redis.call('HGET', KEYS[1], 'owner') or nil
  return cmsgpack.pack({kind = 'group', name = name, members = members, op = op,
                        by = by, open = isopen, owner = owner, admins = admins,
                        removed = removed}), members
end
local function notify(extra)
  local f, members = frame()
  for _, u in ipairs(extra or {}) do members[#members + 1] = u end
  if #members >= BROADCAST_MIN then
    broadcast(KEYS[6], prefix, f, members, nil)
    return {'ok'}
  end
  local fan = fan_new()
  fan_users(fan, members, sessions_fmt, nil)
  fan_publish(fan, prefix, f, nil)
  return {'ok'}
end
local function missing_user()
  for i = FIRST, #ARGV do
    if not redis.call('ZSCORE', KEYS[4], ARGV[i]) then return ARGV[i] end
  end
  return nil
end
-- a named user blocks `by`: the whole create or add is refused
local function blocked_by_named()
  for i = FIRST, #ARGV do
    if ARGV[i] ~= by and
       redis.call('SISMEMBER', string.format(blocks_fmt, ARGV[i]), by) == 1 then
      return true
    end
  end
  return false
end
-- the named users, each once, in the order given
local function named()
  local out, seen = {}, {}
  for i = FIRST, #ARGV do
    if not seen[ARGV[i]] then seen[ARGV[i]] = true; out[#out + 1] = ARGV[i] end
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
local newest -- the history's newest id (false: empty), looked up once
local function add(user)
  redis.call('SADD', KEYS[2], user)
  redis.call('SADD', string.format(groups_fmt, user), name)
  redis.call('ZADD', KEYS[9], 'NX', next_order(), user)
  if newest == nil then
    newest = redis.call('ZRANGE', KEYS[5], -1, -1, 'WITHSCORES')[2] or false
  end
  if newest then redis.call('HSET', string.format(read_fmt, user), name, newest)
  else redis.call('HDEL', string.format(read_fmt, user), name) end
  redis.call('HDEL', string.format(unread_fmt, user), name)
  redis.call('HDEL', string.format(mentions_fmt, user), name)
  redis.call('HDEL', string.format(recount_fmt, user), name)
end
-- user is no member any more (leave, remove): his group entry, counters, order and role go
local function drop(user)
  redis.call('SREM', KEYS[2], user)
  redis.call('SREM', string.format(groups_fmt, user), name)
  redis.call('HDEL', string.format(read_fmt, user), name)
  redis.call('HDEL', string.format(unread_fmt, user), name)
  redis.call('HDEL', string.format(mentions_fmt, user), name)
  redis.call('HDEL', string.format(recount_fmt, user), name)
  redis.call('ZREM', KEYS[9], user)
  redis.call('ZREM', KEYS[10], user)
end
-- the owner (false: the group is empty); a group from before roles gets them now
local function owner_of()
  local owner = redis.call('HGET', KEYS[1], 'owner')
  if owner then return owner end
  if redis.call('ZCARD', KEYS[9]) == 0 then
    local cur = '0'
    repeat
      local r = redis.call('SSCAN', KEYS[2], cur, 'COUNT', 1000)
      cur = r[1]
      for _, u in ipairs(r[2]) do redis.call('ZADD', KEYS[9], 'NX', 0, u) end
    until cur == '0'
  end
  local creator = redis.call('HGET', KEYS[1], 'by')
  if creator and redis.call('SISMEMBER', KEYS[2], creator) == 1 then owner = creator
  else owner = redis.call('ZRANGE', KEYS[9], 0, 0)[1] or false end
  if owner then redis.call('HSET', KEYS[1], 'owner', owner) end
  return owner
end
local function is_admin(user) return redis.call('ZSCORE', KEYS[10], user) ~= false end
local exists = redis.call('EXISTS', KEYS[1]) == 1
if op == 'create' then
  if exists then return fail('forbidden', 'group ' .. name .. ' already exists') end
  local by_meta = string.format(meta_fmt, by)
  if created_max > 0 and (tonumber(redis.call('HGET', by_meta, 'groups')) or 0) >= created_max then
    return fail('forbidden', 'at most ' .. created_max .. ' groups created per user')
  end
  local m = missing_user()
  if m then return fail('no_such_user', 'no such user: ' .. m) end
  local set, list = {[by] = true}, {by}
  for i = FIRST, #ARGV do
    if not set[ARGV[i]] then set[ARGV[i]] = true; list[#list + 1] = ARGV[i] end
  end
  if #list > limit then return fail('bad_field', 'members: at most ' .. limit .. ' per group') end
  if blocked_by_named() then
    return fail('forbidden', 'one of the members named does not accept you')
  end
  local t = redis.call('TIME')
  redis.call('HSET', KEYS[1], 'open', open, 'created', ARGV[5], 'by', by, 'owner', by, 'gen',
             t[1] .. string.format('%06d', tonumber(t[2])))
  redis.call('DEL', KEYS[9], KEYS[10])
  redis.call('HINCRBY', by_meta, 'groups', 1)
  if open == '1' then redis.call('ZADD', KEYS[3], 0, name) end
  for _, user in ipairs(list) do add(user) end -- the creator first: number 1
  return notify(nil)
end
if not exists then return fail('no_such_user', 'no such group: ' .. name) end
local member = redis.call('SISMEMBER', KEYS[2], by) == 1
if op == 'join' then
  if member then return {'same', (frame())} end
  if redis.call('HGET', KEYS[1], 'open') ~= '1' then
    return fail('forbidden', name .. ' is closed: its owner or an admin must add you')
  end
  if redis.call('SCARD', KEYS[2]) >= limit then return fail('forbidden', name .. ' is full') end
  owner_of()
  add(by)
  return notify(nil)
end
if not member then return fail('forbidden', 'not a member of ' .. name) end
local owner = owner_of()
if op == 'leave' then
  drop(by)
  if owner == by then -- the admin promoted earliest, else the member who joined earliest
    local heir = redis.call('ZRANGE', KEYS[10], 0, 0)[1] or redis.call('ZRANGE', KEYS[9], 0, 0)[1]
    if heir then
      redis.call('HSET', KEYS[1], 'owner', heir)
      redis.call('ZREM', KEYS[10], heir)
    else
      redis.call('HDEL', KEYS[1], 'owner')
    end
  end
  local r = notify({by})
  if redis.call('SCARD', KEYS[2]) == 0 then
    -- the last member left: nobody can read the group any more, so it goes (its history
    -- with UNLINK: freed off the main thread, O(1) here whatever its size); the name is free
    local creator = redis.call('HGET', KEYS[1], 'by')
    if creator then
      local cm = string.format(meta_fmt, creator)
      if (tonumber(redis.call('HGET', cm, 'groups')) or 0) > 0 then
        redis.call('HINCRBY', cm, 'groups', -1)
      end
    end
    redis.call('DEL', KEYS[1], KEYS[9], KEYS[10])
    redis.call('UNLINK', KEYS[5], KEYS[7])
    redis.call('ZREM', KEYS[3], name)
  end
  return r
end
if op == 'add' then
  if redis.call('HGET', KEYS[1], 'open') ~= '1' and by ~= owner and not is_admin(by) then
    return fail('forbidden', name .. ' is closed: only its owner and admins may add members')
  end
  local m = missing_user()
  if m then return fail('no_such_user', 'no such user: ' .. m) end
  if blocked_by_named() then
    return fail('forbidden', 'one of the users named does not accept you')
  end
  local new = {}
  for _, u in ipairs(named()) do
    if redis.call('SISMEMBER', KEYS[2], u) == 0 then new[#new + 1] = u end
  end
  if #new == 0 then return {'same', (frame())} end
  if redis.call('SCARD', KEYS[2]) + #new > limit then
    return fail('forbidden', name .. ' would have more than ' .. limit .. ' members')
  end
  for _, u in ipairs(new) do add(u) end
  return notify(nil)
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
  if #gone == 0 then return {'same', (frame())} end
  for _, u in ipairs(gone) do drop(u) end
  table.sort(gone)
  removed = gone
  return notify(gone)
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
        redis.call('ZADD', KEYS[10], next_order(), u)
        changed = true
      end
    elseif redis.call('ZREM', KEYS[10], u) == 1 then
      changed = true
    end
  end
  if not changed then return {'same', (frame())} end
  return notify(nil)
end
return fail('bad_field', 'op: unknown')
