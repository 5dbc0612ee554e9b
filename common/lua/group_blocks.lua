-- flags: no-writes
--
-- group_blocks.lua - a forked step of group.lua on a named user's slot: does he block by?
-- Caller: group_users.lua.
--
-- KEYS  1 the user's blocks.
-- ARGV  1 by.
-- Reads only. Reply 1 when he blocks by, else 0.
return redis.call('SISMEMBER', KEYS[1], ARGV[1])
