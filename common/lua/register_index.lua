-- register_index.lua - step 2 of register.lua: lists a user in parley:users and announces it.
-- KEYS  1 parley:users.
-- ARGV  1 name, 2 1 (register.lua created the account) or 0 (it existed), 3 the new-user channel
--       ("": none).
-- Publishes "NAME COUNT" on the channel (COUNT = users now) when the name was not listed yet:
-- every gateway listens there, and while COUNT is within its --everyone-limit its sessions whose
-- hello listed everyone start following NAME's presence.
-- Reply ARGV 2 (1 created, 0 taken). Running it again adds nothing and announces nothing.
if redis.call('ZADD', KEYS[1], 0, ARGV[1]) == 1 and ARGV[3] ~= '' then
  redis.call('PUBLISH', ARGV[3], ARGV[1] .. ' ' .. redis.call('ZCARD', KEYS[1]))
end
return tonumber(ARGV[2])
