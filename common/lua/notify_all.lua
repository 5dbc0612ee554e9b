-- notify_all.lua - a step: one frame for many users (64 or more: lib/notify.lua) as one envelope
-- to every live gateway: no lookup of each user's sessions (which are on as many slots as
-- users).
-- Callers: lib/notify.lua's chains (group_apply.lua, group_done.lua, read_set.lua,
-- typing_send.lua).
--
-- KEYS  1 parley:gateways.
-- ARGV  1 gateway channel prefix, 2 frame (msgpack), 3 the session the envelopes skip (x; ""
--       none), 4 the reply (msgpack, as notify_fan.lua's), 5.. the users.
-- Publishes {t:"m", f, u: users, x?} to every gateway in parley:gateways (each delivers to the
-- listed users it holds). Run again: the frame again (a group frame twice is one).
-- Reply ARGV 4, unpacked.
local env = {t = 'm', f = ARGV[2], u = {}}
for i = 5, #ARGV do env.u[#env.u + 1] = ARGV[i] end
if ARGV[3] ~= '' then env.x = ARGV[3] end
local packed = cmsgpack.pack(env)
for _, g in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  redis.call('PUBLISH', ARGV[1] .. g, packed)
end
return cmsgpack.unpack(ARGV[4])
