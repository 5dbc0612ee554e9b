-- register.lua - creates an account unless the name is taken.
-- Callers: the gateway (HTTP register; dev-auth accounts) and the CLI (useradd, bulk-users)
-- (scripts_register, scripts_register_sync, scripts_register_append).
--
-- KEYS  1 account, 2 parley:users.
-- ARGV  1 name, 2 password hash, 3 created ms, 4 the new-user channel (parley:users:new;
--       optional).
-- Publishes "NAME COUNT" on the new-user channel (COUNT = users now): every gateway listens
-- there, and while COUNT is within its --everyone-limit its sessions whose hello listed everyone
-- start following NAME's presence.
-- Reply 1 when created, 0 when the name is taken.
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], 'pw', ARGV[2], 'created', ARGV[3])
redis.call('ZADD', KEYS[2], 0, ARGV[1])
if ARGV[4] then
  redis.call('PUBLISH', ARGV[4], ARGV[1] .. ' ' .. redis.call('ZCARD', KEYS[2]))
end
return 1
