-- include: step
-- register.lua - creates an account unless the name is taken; step 1 of 2 (the account, in the
-- user's slot), then register_index.lua (the name in parley:users, in its own slot).
-- Callers: the gateway (HTTP register; dev-auth accounts) and the CLI (useradd, bulk-users)
-- (scripts_register, scripts_register_sync, scripts_register_append).
--
-- KEYS  1 account.
-- ARGV  1 name, 2 password hash, 3 created ms, 4 parley:users, 5 the new-user channel
--       (parley:users:new).
-- Reply: the continuation to register_index (lib/step.lua), whose reply is the call's: 1 when
-- created, 0 when the name is taken.
-- A stop between the steps leaves an account that parley:users does not list (not found by a
-- search): any later register of the name (answered 0) runs register_index again and lists it.
local created = 0
if redis.call('EXISTS', KEYS[1]) == 0 then
  redis.call('HSET', KEYS[1], 'pw', ARGV[2], 'created', ARGV[3])
  created = 1
end
return step_next('register_index', {ARGV[4]}, {ARGV[1], created, ARGV[5]})
