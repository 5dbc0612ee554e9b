-- release_slot.lua - gives up a routing slot's lease if this router holds it.
-- Caller: the router (router/slots.c, scripts_release_slot).
--
-- KEYS  1 parley:slot:N.
-- ARGV  1 router id.
-- DEL the lease only when it holds this router's id. Reply 1 when deleted, else 0.
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
