-- include: step
-- flags: no-writes
--
-- contacts_group.lua - a step of contacts.lua, on a group's tag {g:#NAME}: the group entry's
-- roles and whether another member is online.
-- Caller: contacts_online.lua's fork ("names", "start"), contacts_gonline.lua ("check").
--
-- KEYS  1 the group's members, 2 its meta, 3 its admins ("check": the members only).
-- ARGV  1 "names": 2 user, 3... the online users but him (all of them: few are online).
--       1 "start": 2 user, 3 parley:online (many are online).
--       1 "check": 2 user, 3 the roles (msgpack), 4... the online users (at most EXACT_MAX).
-- Reply "1" or "0" (another member is online) followed by the roles, msgpack {owner ("" when
-- the meta has none), the user's role ("owner", "admin", "member"), more (1 when the admins were
-- cut, else 0), admins (the ADMINS_MAX (32) promoted earliest, sorted by name)}; or ("start")
-- the next step, contacts_gonline.lua on parley:online.
-- Online is exact while the group or the online set has at most EXACT_MAX (1,024) names: the
-- online users tested against the members ("names", or "check" after contacts_gonline.lua read
-- them), or the members (up to EXACT_MAX) against parley:online; past both, judged from SAMPLE
-- (64) random members (a big group with few members online may show offline).
-- Work: "names"/"start" one HGET, one ZSCORE, one ZRANGE of at most ADMINS_MAX + 1 names;
-- "names"/"check" one SMISMEMBER of at most EXACT_MAX names; "start" SCARD, then SMEMBERS of at
-- most EXACT_MAX names or SRANDMEMBER SAMPLE.
local EXACT_MAX, SAMPLE, ADMINS_MAX = 1024, 64, 32
local mode, user = ARGV[1], ARGV[2]
-- "1" when one of ARGV[from...] (not the user) is a member, else "0"
local function any_member(from)
  if #ARGV < from then return '0' end
  local names = {}
  for i = from, #ARGV do names[#names + 1] = ARGV[i] end
  local in_g = redis.call('SMISMEMBER', KEYS[1], unpack(names))
  for i, u in ipairs(names) do
    if in_g[i] == 1 and u ~= user then return '1' end
  end
  return '0'
end
if mode == 'check' then return any_member(4) .. ARGV[3] end
-- a group's owner, the user's own role in it and the ADMINS_MAX admins promoted earliest
local owner = redis.call('HGET', KEYS[2], 'owner')
local role = 'member'
if owner and owner == user then role = 'owner'
elseif redis.call('ZSCORE', KEYS[3], user) then role = 'admin' end
local admins, more = redis.call('ZRANGE', KEYS[3], 0, ADMINS_MAX), 0 -- one more: were they cut
if #admins > ADMINS_MAX then admins[#admins], more = nil, 1 end
table.sort(admins)
local roles = cmsgpack.pack({owner or '', role, more, admins})
if mode == 'names' then return any_member(3) .. roles end
local card = redis.call('SCARD', KEYS[1])
if card == 0 then return '0' .. roles end
local args = {roles, user}
if card <= EXACT_MAX then
  args[3] = 'members'
  for _, u in ipairs(redis.call('SMEMBERS', KEYS[1])) do args[#args + 1] = u end
else
  args[3] = KEYS[1] -- a big group: the online users may be fewer
  for _, u in ipairs(redis.call('SRANDMEMBER', KEYS[1], SAMPLE)) do args[#args + 1] = u end
end
return step_next('contacts_gonline', {ARGV[3]}, args)
