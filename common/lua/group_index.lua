-- group_index.lua - a forked step of group.lua on parley:groups (the open groups: what a search
-- finds).
-- Caller: group_run.lua.
--
-- KEYS  1 parley:groups.
-- ARGV  1 "add" (an open group created) or "del" (a group deleted), 2 #name.
-- Safe to run again. Reply 1.
if ARGV[1] == 'add' then redis.call('ZADD', KEYS[1], 0, ARGV[2])
else redis.call('ZREM', KEYS[1], ARGV[2]) end
return 1
