-- group_member.lua - a forked step of group.lua on one user's slot: his own keys for a group.
-- Caller: group_run.lua.
--
-- KEYS  1 his groups (set of #names), 2 read, 3 unread, 4 mentions, 5 recount marks, 6 meta.
-- ARGV  1 "add", "drop" or "unmade", 2 #name, 3 the group's newest id ("" none; add),
--       4 "1" when he created the group now (add).
-- add: only when #name is new in his groups set (so running it again changes nothing, also
-- after messages came): his read position = the newest id (none when ""), no unread, mentions
-- or recount mark for it; he created it: his meta's count of groups created + 1.
-- drop: #name leaves his groups set, his read position, counts and mark for it go.
-- unmade: the group he created is deleted: his count of groups created - 1 (not below 0; not
-- safe to run twice: at most one too many).
-- Reply 1.
local mode, name = ARGV[1], ARGV[2]
if mode == 'add' then
  if redis.call('SADD', KEYS[1], name) == 1 then
    if ARGV[3] ~= '' then redis.call('HSET', KEYS[2], name, ARGV[3])
    else redis.call('HDEL', KEYS[2], name) end
    redis.call('HDEL', KEYS[3], name)
    redis.call('HDEL', KEYS[4], name)
    redis.call('HDEL', KEYS[5], name)
    if ARGV[4] == '1' then redis.call('HINCRBY', KEYS[6], 'groups', 1) end
  end
elseif mode == 'drop' then
  redis.call('SREM', KEYS[1], name)
  redis.call('HDEL', KEYS[2], name)
  redis.call('HDEL', KEYS[3], name)
  redis.call('HDEL', KEYS[4], name)
  redis.call('HDEL', KEYS[5], name)
elseif (tonumber(redis.call('HGET', KEYS[6], 'groups')) or 0) > 0 then
  redis.call('HINCRBY', KEYS[6], 'groups', -1)
end
return 1
