-- include: step tail
-- flags: no-writes
--
-- reap_check.lua - step: the reaper's checks of a gateway, each on its own key (session_close.lua
-- while reaping, forget_gateway.lua; docs/internals.md "Scripts in steps").
--
-- KEYS  1 the key checked: the gateway's alive key, or its session set.
-- ARGV  1 "alive" (stop when KEYS 1 exists: the gateway beat again) or "empty" (stop when the
--       set KEYS 1 has members: sessions opened meanwhile), 2 the reply when it stops (an
--       integer), 3.. the tail (lib/tail.lua): what runs when it does not.
-- Reads only. A beat that comes after this check and before the later steps is not seen by
-- them (no step sees two slots); the gateway then finds, at that beat, that its alive key had
-- lapsed (or that it had left parley:gateways) and opens its sessions again.
local stop
if ARGV[1] == 'alive' then
  stop = redis.call('EXISTS', KEYS[1]) == 1
else
  stop = redis.call('SCARD', KEYS[1]) > 0
end
if stop then return tonumber(ARGV[2]) end
return tail_run(ARGV, 3)
