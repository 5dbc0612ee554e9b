-- typing_gate.lua - a step of typing.lua on the sender's slot: the throttle.
-- Caller: typing.lua.
--
-- KEYS  1 the sender's typing throttle for the conversation (parley:{u:FROM}:typing:TO).
-- ARGV  1 window ms, 2 what follows (msgpack: typing_send.lua's continuation).
-- While KEYS 1 exists the notice is dropped: reply 1 (as if sent). Else KEYS 1 is set for the
-- window (SET NX PX) and the chain goes on with ARGV 2.
if not redis.call('SET', KEYS[1], '1', 'PX', ARGV[1], 'NX') then return 1 end
return cmsgpack.unpack(ARGV[2])
