-- include: step
-- flags: no-writes
--
-- sync_member.lua - a probe of sync.lua's fork, on a group's tag {g:#NAME}: whether the user is
-- still a member; if so, the sizes of the group's messages the page names (sync_hist.lua "size",
-- a tail call).
-- Caller: sync.lua's fork.
--
-- KEYS  1 the group's members.
-- ARGV  1 user, 2 the group's history key, 3 "size", 4... message ids.
-- Reply "out" (not a member: the page's entries of the group are {kind:"gone"}), else
-- sync_hist.lua's (a msgpack empty array when no ids).
-- Reads only. Work: one SISMEMBER.
if redis.call('SISMEMBER', KEYS[1], ARGV[1]) == 0 then return 'out' end
if #ARGV < 4 then return cmsgpack.pack({}) end
local args = {}
for i = 3, #ARGV do args[#args + 1] = ARGV[i] end
return step_next('sync_hist', {ARGV[2]}, args)
