-- flags: no-writes
--
-- contacts_in.lua - a step of contacts.lua's member phase, on a group's tag {g:#NAME}: which of a
-- batch's candidates are members of a group listed before theirs.
-- Caller: contacts_members.lua's fork.
--
-- KEYS  1 the group's members.
-- ARGV  names.
-- Reply a msgpack array of 0/1, one per name. Work: one SMISMEMBER.
if #ARGV == 0 then return cmsgpack.pack({}) end
return cmsgpack.pack(redis.call('SMISMEMBER', KEYS[1], unpack(ARGV)))
