-- include: fanout
--
-- notify_fan.lua - a step (the join after notify_gw.lua steps): one frame for several users, as
-- one envelope per gateway holding a session of theirs.
-- Callers: lib/notify.lua's chains (group_apply.lua, group_done.lua, read_set.lua,
-- typing_send.lua).
--
-- KEYS  1 parley:gateways (not touched: the step needs a slot to run on).
-- ARGV  1 gateway channel prefix, 2 frame (msgpack), 3 the session the envelopes skip (x; ""
--       none), 4 the reply (msgpack: what the chain answers after the delivery, a continuation
--       included: lib/step.lua), 5 n, 6..5+n the users, then the n replies of their notify_gw
--       steps in the same order (each: gateway ids, space-separated).
-- Publishes {t:"m", f, u: [users], x?} (lib/fanout.lua) once per gateway, users in order. A
-- stop before it: nothing was published (the caller's writes are done; the frame is lost, as any
-- notice of a gateway that was down). Run again: the frame again (clients take a group or read
-- frame twice as once).
-- Reply ARGV 4, unpacked.
local n = tonumber(ARGV[5])
local fan = fan_new()
for i = 1, n do
  local user = ARGV[5 + i]
  for g in string.gmatch(ARGV[5 + n + i] or '', '%S+') do fan_add(fan, g, user, nil) end
end
local skip = ARGV[3] ~= '' and ARGV[3] or nil
fan_publish(fan, ARGV[1], ARGV[2], skip)
return cmsgpack.unpack(ARGV[4])
