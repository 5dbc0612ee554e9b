-- include: gateways fanout fan_users broadcast
--
-- group.lua - creates a group, or joins, leaves or adds members to one.
-- Caller: the gateway (scripts_group).
--
-- KEYS  1 group meta, 2 group members, 3 parley:groups (the open groups only: what a search
--       finds), 4 parley:users, 5 group history, 6 parley:gateways, 7 the history's byte count,
--       8 by's group throttle (parley:{u:BY}:groupop).
-- ARGV  1 op (create, join, leave, add), 2 #name, 3 by, 4 open ("1"/"0"), 5 now ms, 6 gateway
--       channel prefix, 7 the key format of a user's sessions, 8 the key format of a user's
--       groups, 9 member limit, 10 the key format of a user's unread, 11 the key format of a
--       user's read, 12 the most groups a user may have created (existing ones), 13 the key format
--       of a user's meta, 14 throttle window ms ("0": no throttle), 15.. members (create, add).
-- Throttle (per user, across all his sessions, gateways and groups): an op on a group of
-- BROADCAST_MIN (64) members or more (its members, plus those named; create: those named and
-- by) while KEYS 8 exists answers {"error", "rate_limited", ...} and changes nothing; else it
-- sets KEYS 8 for the window (whatever the op then answers). Checked first: O(1) (SCARD, SET NX
-- PX), before any member is read.
-- Unread follows membership: whoever becomes a member (create, join, add) starts with the
-- group's history read (read position = its newest id, or none when it is empty) and no unread
-- count, so what read.lua recounts later is exactly what send.lua counted since he joined; a
-- leaver's read position and unread count for the group are deleted, so a rejoiner starts
-- fresh. When the last member leaves, the group is deleted: its meta, its history (UNLINK), its
-- history's byte count and its search entry; its name is free again, and its creator may create
-- one more. Each creation stamps the meta with `gen` (Redis TIME in microseconds): a fan-out
-- still queued for a deleted group (fanout.lua) sees another or no `gen` and writes no member
-- of a group re-created under the same name.
-- Groups created: a user's meta field `groups` counts the groups he created that still exist;
-- a create over ARGV 12 answers forbidden.
-- Work: O(members named in ARGV, at most the member limit) writes, plus the notification: the
-- group frame (every member, sorted) to every member, through one envelope per gateway holding
-- one (fanout) or, from BROADCAST_MIN (64) members, one envelope to every gateway (broadcast: no
-- session lookup per member). Worst case measured (5,000 members created at once): see
-- docs/protocol.md "Bounded reads".
-- On a change, publishes {kind:"group", name, members (all, sorted), op, by, open} (fanout) to
-- every member, and to a leaver.
-- Reply {"ok"} (published), {"same", frame} when nothing changed (the gateway sends the frame to
-- the requesting session only), or {"error", code, message}.
local op, name, by, open = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local prefix, sessions_fmt, groups_fmt = ARGV[6], ARGV[7], ARGV[8]
local limit = tonumber(ARGV[9])
local unread_fmt, read_fmt = ARGV[10], ARGV[11]
local created_max, meta_fmt = tonumber(ARGV[12]), ARGV[13]
local FIRST = 15 -- the first member in ARGV
local function fail(code, message) return {'error', code, message} end
local size = #ARGV - FIRST + 1 + (op == 'create' and 1 or redis.call('SCARD', KEYS[2]))
if size >= BROADCAST_MIN and ARGV[14] ~= '0'
   and not redis.call('SET', KEYS[8], '1', 'PX', ARGV[14], 'NX') then
  return fail('rate_limited', 'at most one change of a group of ' .. BROADCAST_MIN ..
              ' members or more per ' .. ARGV[14] .. ' ms: retry later')
end
local function frame()
  local members = redis.call('SMEMBERS', KEYS[2])
  table.sort(members)
  local isopen = redis.call('HGET', KEYS[1], 'open') == '1'
  return cmsgpack.pack({kind = 'group', name = name, members = members, op = op,
                        by = by, open = isopen}), members
end
local function notify(extra)
  local f, members = frame()
  if extra then members[#members + 1] = extra end
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
local newest -- the history's newest id (false: empty), looked up once
local function add(user)
  redis.call('SADD', KEYS[2], user)
  redis.call('SADD', string.format(groups_fmt, user), name)
  if newest == nil then
    newest = redis.call('ZRANGE', KEYS[5], -1, -1, 'WITHSCORES')[2] or false
  end
  if newest then redis.call('HSET', string.format(read_fmt, user), name, newest)
  else redis.call('HDEL', string.format(read_fmt, user), name) end
  redis.call('HDEL', string.format(unread_fmt, user), name)
end
local exists = redis.call('EXISTS', KEYS[1]) == 1
if op == 'create' then
  if exists then return fail('forbidden', 'group ' .. name .. ' already exists') end
  local by_meta = string.format(meta_fmt, by)
  if created_max > 0 and (tonumber(redis.call('HGET', by_meta, 'groups')) or 0) >= created_max then
    return fail('forbidden', 'at most ' .. created_max .. ' groups created per user')
  end
  local m = missing_user()
  if m then return fail('no_such_user', 'no such user: ' .. m) end
  local set = {[by] = true}
  local n = 1
  for i = FIRST, #ARGV do if not set[ARGV[i]] then set[ARGV[i]] = true; n = n + 1 end end
  if n > limit then return fail('bad_field', 'members: at most ' .. limit .. ' per group') end
  local t = redis.call('TIME')
  redis.call('HSET', KEYS[1], 'open', open, 'created', ARGV[5], 'by', by, 'gen',
             t[1] .. string.format('%06d', tonumber(t[2])))
  redis.call('HINCRBY', by_meta, 'groups', 1)
  if open == '1' then redis.call('ZADD', KEYS[3], 0, name) end
  for user in pairs(set) do add(user) end
  return notify(nil)
end
if not exists then return fail('no_such_user', 'no such group: ' .. name) end
local member = redis.call('SISMEMBER', KEYS[2], by) == 1
if op == 'join' then
  if member then return {'same', (frame())} end
  if redis.call('HGET', KEYS[1], 'open') ~= '1' then
    return fail('forbidden', name .. ' is closed: a member must add you')
  end
  if redis.call('SCARD', KEYS[2]) >= limit then return fail('forbidden', name .. ' is full') end
  add(by)
  return notify(nil)
end
if not member then return fail('forbidden', 'not a member of ' .. name) end
if op == 'leave' then
  redis.call('SREM', KEYS[2], by)
  redis.call('SREM', string.format(groups_fmt, by), name)
  redis.call('HDEL', string.format(read_fmt, by), name)
  redis.call('HDEL', string.format(unread_fmt, by), name)
  local r = notify(by)
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
    redis.call('DEL', KEYS[1])
    redis.call('UNLINK', KEYS[5], KEYS[7])
    redis.call('ZREM', KEYS[3], name)
  end
  return r
end
if op == 'add' then
  local m = missing_user()
  if m then return fail('no_such_user', 'no such user: ' .. m) end
  local new, seen = {}, {}
  for i = FIRST, #ARGV do
    local u = ARGV[i]
    if not seen[u] and redis.call('SISMEMBER', KEYS[2], u) == 0 then
      seen[u] = true; new[#new + 1] = u
    end
  end
  if #new == 0 then return {'same', (frame())} end
  if redis.call('SCARD', KEYS[2]) + #new > limit then
    return fail('forbidden', name .. ' would have more than ' .. limit .. ' members')
  end
  for _, u in ipairs(new) do add(u) end
  return notify(nil)
end
return fail('bad_field', 'op: unknown')
