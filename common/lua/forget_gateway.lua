-- forget_gateway.lua - the reaper's last step for a dead gateway.
-- Caller: the router (router/reaper.c, scripts_forget_gateway), after session_close of every
-- member of the gateway's session set.
--
-- KEYS  1 parley:gateways, 2 gateway alive, 3 gateway sessions.
-- ARGV  1 gateway id.
-- SREM the id from parley:gateways unless it beat again (alive exists) or has sessions (opened
-- meanwhile). Reply 1 when removed, else 0.
if redis.call('EXISTS', KEYS[2]) == 1 or redis.call('SCARD', KEYS[3]) > 0 then return 0 end
return redis.call('SREM', KEYS[1], ARGV[1])
