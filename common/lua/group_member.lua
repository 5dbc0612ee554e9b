-- group_member.lua - a forked step of group.lua on one user's slot: his own keys for a group.
-- Caller: group_run.lua.
--
-- KEYS  1 his groups (set of #names), 2 read, 3 unread, 4 mentions, 5 recount marks, 6 meta,
--       7 inbox.
-- ARGV  1 "add", "drop" or "unmade", 2 #name, 3 the group's newest id ("" none; add),
--       4 "1" when he created the group now (add).
-- add: only when #name is new in his groups set (so running it again changes nothing, also
-- after messages came): his read position = the newest id (none when ""), no mentions or
-- recount mark for it, and as unread only the group's texts in his inbox (the last SCAN
-- entries) with an id past that newest one: they came since he became a member (group_apply)
-- and were counted by their send, which may have run before this step; any other count is
-- stale (an empty history: none kept, a text in the moment between is not counted); he
-- created it: his meta's count of groups created + 1.
-- drop: #name leaves his groups set, his read position, counts and mark for it go.
-- unmade: the group he created is deleted: his count of groups created - 1 (not below 0; not
-- safe to run twice: at most one too many).
-- Reply 1.
local SCAN = 100 -- inbox entries looked at, at most
local mode, name = ARGV[1], ARGV[2]
if mode == 'add' then
  if redis.call('SADD', KEYS[1], name) == 1 then
    local came = 0
    if ARGV[3] ~= '' then
      redis.call('HSET', KEYS[2], name, ARGV[3])
      local newest = tonumber(ARGV[3])
      for _, raw in ipairs(redis.call('LRANGE', KEYS[7], -SCAN, -1)) do
        local e = cmsgpack.unpack(raw)
        if type(e) == 'table' and e.w == name and e.k == nil and (tonumber(e.id) or 0) > newest then
          came = came + 1
        end
      end
    else
      redis.call('HDEL', KEYS[2], name)
    end
    if came > 0 then redis.call('HSET', KEYS[3], name, came)
    else redis.call('HDEL', KEYS[3], name) end
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
