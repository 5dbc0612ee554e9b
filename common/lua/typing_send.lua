-- include: step fork gateways notify
--
-- typing_send.lua - a step of typing.lua on the recipient's (or the group's) slot: the delivery.
-- Caller: typing_gate.lua (or typing.lua when there is no throttle).
--
-- KEYS, ARGV  typing.lua's.
-- 1:1: {t:"u", u: to, f: frame} once per gateway holding a session of the recipient; reply 1. A
-- group: the frame to its members but the sender, as they are now (lib/notify.lua's steps), then
-- reply 1.
if ARGV[4] == '1' then
  local others = {}
  for _, m in ipairs(redis.call('SMEMBERS', KEYS[1])) do
    if m ~= ARGV[5] then others[#others + 1] = m end
  end
  -- as in one call before: from 64 members (the sender included), one envelope to every gateway
  return notify(others, ARGV[1], ARGV[3], nil, 1, ARGV[10], ARGV[6], #others + 1 >= NOTIFY_WIDE)
end
local env = cmsgpack.pack({t = 'u', u = ARGV[2], f = ARGV[3]})
for _, g in ipairs(gateways(redis.call('SMEMBERS', KEYS[2]), nil)) do
  redis.call('PUBLISH', ARGV[1] .. g, env)
end
return 1
