-- include: access
--
-- history.lua - a page of a conversation's history, newest first from an id down.
-- Caller: the gateway (scripts_history).
--
-- KEYS  1 conversation history, 2 the other user's account (group: members), 3 the same as 2
--       (group: meta).
-- ARGV  1 user, 2 is_group ("1"/"0"), 3 before id (0: none), 4 limit, 5 max bytes (B; absent:
--       no byte bound).
-- Reply "no_such_user" / "forbidden" (access), or {more (0/1), entries oldest first...}: the
-- newest `limit` entries below `before`, cut once they would pass B bytes (the newest one is
-- always given, so a page moves on whatever a message weighs); more = 1 when older entries
-- exist, among them those cut.
-- Work per call: ZREVRANGEBYSCORE in chunks of CHUNK (8) entries: at most limit entries and
-- B + CHUNK entries' bytes read, then one ZCOUNT.
local CHUNK = 8
local bad = access(ARGV[2], KEYS[2], KEYS[3], ARGV[1])
if bad then return bad end
local before, limit = tonumber(ARGV[3]), tonumber(ARGV[4])
local max_b = tonumber(ARGV[5]) or math.huge
local max = '+inf'
if before > 0 then max = '(' .. before end
local rows, bytes, more, lowest = {}, 0, 0, nil
while #rows < limit and more == 0 do
  local n = math.min(CHUNK, limit - #rows)
  local es = redis.call('ZREVRANGEBYSCORE', KEYS[1], max, '-inf', 'WITHSCORES', 'LIMIT', #rows, n)
  for i = 1, #es, 2 do
    if #rows > 0 and bytes + #es[i] > max_b then more = 1; break end
    rows[#rows + 1] = es[i]
    bytes = bytes + #es[i]
    lowest = es[i + 1]
  end
  if #es < 2 * n then break end
end
if more == 0 and lowest and redis.call('ZCOUNT', KEYS[1], '-inf', '(' .. lowest) > 0 then
  more = 1
end
local out = {more}
for i = #rows, 1, -1 do out[#out + 1] = rows[i] end
return out
