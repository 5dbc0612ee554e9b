-- renew_slot.lua - extends a routing slot's lease if this router holds it.
-- Caller: the router (router/slots.c, scripts_renew_slot).
--
-- KEYS  1 parley:slot:N.
-- ARGV  1 router id, 2 lease ms.
-- PEXPIRE the lease only when it holds this router's id. Reply 1 when renewed, else 0.
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
