-- include: access
--
-- history.lua - a page of a conversation's history, newest first from an id down.
-- Caller: the gateway (scripts_history).
--
-- KEYS  1 conversation history, 2 the other user's account (group: members), 3 the same as 2
--       (group: meta).
-- ARGV  1 user, 2 is_group ("1"/"0"), 3 before id (0: none), 4 limit.
-- Reply "no_such_user" / "forbidden" (access), or {more (0/1), entries oldest first...} from
-- ZREVRANGEBYSCORE history (before -inf LIMIT 0 limit+1.
local bad = access(ARGV[2], KEYS[2], KEYS[3], ARGV[1])
if bad then return bad end
local before, limit = tonumber(ARGV[3]), tonumber(ARGV[4])
local max = '+inf'
if before > 0 then max = '(' .. before end
local rows = redis.call('ZREVRANGEBYSCORE', KEYS[1], max, '-inf', 'LIMIT', 0, limit + 1)
local out = {0}
if #rows > limit then out[1] = 1 end
for i = math.min(#rows, limit), 1, -1 do out[#out + 1] = rows[i] end
return out
