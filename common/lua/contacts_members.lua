-- include: step fork
-- flags: no-writes
--
-- contacts_members.lua - a step of contacts.lua's member phase, on a group's tag {g:#NAME}: the
-- next batch of its members, less the user; contacts_list.lua keeps those that are no 1:1
-- contact and in no group listed before (contacts_in.lua on each, a fork it joins).
-- Caller: contacts_list.lua.
--
-- KEYS  1 the group's members.
-- ARGV  1 S: the page's state (contacts.lua), with the batch S.b = {order, g, at (the position
--       in the group: contacts_list.lua), earlier (the groups before g to check against), room
--       (the entries the page has room for)}.
-- Reply the next step: contacts_list.lua with S.b's candidates, whether the group is done and
-- its next position, directly or as the join of the contacts_in.lua fork.
-- Work: SCARD, then a set of up to SMALL (2 * SMALL once paged by name) read whole and sorted,
-- at most room members looked at; or one SSCAN batch of COUNT room.
local SMALL = 128
local S = cmsgpack.unpack(ARGV[1])
local b, user = S.b, S.u
local budget = 4 * S.n -- members looked at a page (contacts_list.lua)
local card = redis.call('SCARD', KEYS[1])
local at = b.at
if at == '' then
  if card <= SMALL then at = 'N' else at = 'S0' end
elseif string.sub(at, 1, 1) == 'N' and card > 2 * SMALL then
  at = 'S0' -- it grew a lot meanwhile: scanned from the start (repeats allowed)
end
local cands, done, looked = {}, true, S.looked
if string.sub(at, 1, 1) == 'N' then
  local all, prev, took = redis.call('SMEMBERS', KEYS[1]), string.sub(at, 2), 0
  table.sort(all)
  for _, u in ipairs(all) do
    if u > prev then
      if took >= b.room or looked >= budget then done = false; break end
      took, looked, prev = took + 1, looked + 1, u
      if u ~= user then cands[#cands + 1] = u end
    end
  end
  at = 'N' .. prev
else
  local r = redis.call('SSCAN', KEYS[1], string.sub(at, 2), 'COUNT', math.max(b.room, 1))
  for _, u in ipairs(r[2]) do
    looked = looked + 1
    if u ~= user then cands[#cands + 1] = u end
  end
  done, at = r[1] == '0', 'S' .. r[1]
end
local earlier = b.earlier
b.cands, b.done, b.at, b.room, b.earlier = cands, done, at, nil, nil
S.looked = looked
local keys = {S.kc, S.kg, S.kbl}
if #cands == 0 or #earlier == 0 then
  return step_next('contacts_list', keys, {cmsgpack.pack(S)})
end
local fork = {}
for _, x in ipairs(earlier) do
  fork[#fork + 1] = {'contacts_in', {string.format(S.fm, x)}, cands}
end
return step_fork(fork, {'contacts_list', keys, {cmsgpack.pack(S)}})
