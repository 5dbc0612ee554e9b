-- contacts.lua - the list a session's hello carries: people and groups, with their counters.
-- Caller: the gateway, for hello (scripts_contacts).
--
-- KEYS  1 parley:users, 2 user contacts, 3 parley:online, 4 user groups, 5 user unread,
--       6 user read.
-- ARGV  1 user, 2 everyone-limit, 3 the key format of a group's members, 4 the key format of a
--       user's read, 5 the key format of a conversation's history.
-- Users: if ZCARD users <= limit everyone but the user (mode 1), else the contacts set united
-- with the members of the user's groups (mode 0); then the user's groups.
-- Reply {mode, then per entry: name, online, unread, read, peer_read, last (the newest history
-- entry, or "")}; for a group online = another member is online, peer_read 0.
-- unread and read are as stored: send.lua and read.lua keep them, group.lua starts a member's at
-- his join (read = the group's newest id then, unread absent) and deletes them when he leaves.
local user, limit, members_fmt, read_fmt = ARGV[1], tonumber(ARGV[2]), ARGV[3], ARGV[4]
local hist_fmt = ARGV[5]
local function last(conv)
  local e = redis.call('ZRANGE', string.format(hist_fmt, conv), -1, -1)
  return e[1] or ''
end
local groups = redis.call('SMEMBERS', KEYS[4])
local names, mode
if redis.call('ZCARD', KEYS[1]) <= limit then
  names, mode = redis.call('ZRANGE', KEYS[1], 0, -1), 1
else
  local sets = {KEYS[2]}
  for _, g in ipairs(groups) do sets[#sets + 1] = string.format(members_fmt, g) end
  names, mode = redis.call('SUNION', unpack(sets)), 0
end
local function num(v) return tonumber(v) or 0 end
local out = {mode}
for _, n in ipairs(names) do
  if n ~= user then
    out[#out + 1] = n
    out[#out + 1] = redis.call('SISMEMBER', KEYS[3], n)
    out[#out + 1] = num(redis.call('HGET', KEYS[5], n))
    out[#out + 1] = num(redis.call('HGET', KEYS[6], n))
    out[#out + 1] = num(redis.call('HGET', string.format(read_fmt, n), user))
    if user < n then out[#out + 1] = last(user .. '|' .. n)
    else out[#out + 1] = last(n .. '|' .. user) end
  end
end
local me = redis.call('SISMEMBER', KEYS[3], user)
for _, g in ipairs(groups) do
  local on = redis.call('SINTERCARD', 2, string.format(members_fmt, g), KEYS[3], 'LIMIT', 2)
  out[#out + 1] = g
  if on - me > 0 then out[#out + 1] = 1 else out[#out + 1] = 0 end
  out[#out + 1] = num(redis.call('HGET', KEYS[5], g))
  out[#out + 1] = num(redis.call('HGET', KEYS[6], g))
  out[#out + 1] = 0
  out[#out + 1] = last(g)
end
return out
