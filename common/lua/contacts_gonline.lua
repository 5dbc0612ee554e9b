-- include: step
-- flags: no-writes
--
-- contacts_gonline.lua - a step of contacts_group.lua, on parley:online: whether another member
-- of a group is online.
-- Caller: contacts_group.lua ("start": more than contacts_online.lua's ONLINE_PASS users online).
--
-- KEYS  1 parley:online.
-- ARGV  1 the roles (msgpack, contacts_group.lua), 2 user, 3 "members" (the names after are all
--       the group's members) or the group's members key (a group of more than EXACT_MAX: the
--       names after are a sample of them), 4... names.
-- Reply contacts_group.lua's ("1"/"0" then the roles), or, for a big group while at most
-- EXACT_MAX users are online, contacts_group.lua's "check" of them against its members.
-- Work: one SMISMEMBER of at most EXACT_MAX names, or SCARD and SMEMBERS of at most EXACT_MAX.
local EXACT_MAX = 1024
local roles, user, what = ARGV[1], ARGV[2], ARGV[3]
if what ~= 'members' and redis.call('SCARD', KEYS[1]) <= EXACT_MAX then
  local args = {'check', user, roles}
  for _, u in ipairs(redis.call('SMEMBERS', KEYS[1])) do args[#args + 1] = u end
  return step_next('contacts_group', {what}, args)
end
local names = {}
for i = 4, #ARGV do names[#names + 1] = ARGV[i] end
if #names > 0 then
  local on = redis.call('SMISMEMBER', KEYS[1], unpack(names))
  for i, u in ipairs(names) do
    if on[i] == 1 and u ~= user then return '1' .. roles end
  end
end
return '0' .. roles
