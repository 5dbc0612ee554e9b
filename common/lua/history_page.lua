-- flags: no-writes
--
-- history_page.lua - the page of history.lua (its second step, on the conversation's tag
-- {c:KEY}), once access was granted.
-- Caller: history.lua's tail call.
--
-- KEYS  1 conversation history.
-- ARGV  1 before id (0: none), 2 limit, 3 max bytes (B; "" or absent: no byte bound).
-- Reply {more (0/1), entries oldest first...}: the newest `limit` entries below `before`, cut
-- once they would pass B bytes (the newest one is always given, so a page moves on whatever a
-- message weighs); more = 1 when older entries exist, among them those cut.
-- Work per call: ZREVRANGEBYSCORE in chunks of CHUNK (8) entries: at most limit entries and
-- B + CHUNK entries' bytes read, then one ZCOUNT.
local CHUNK = 8
local before, limit = tonumber(ARGV[1]) or 0, tonumber(ARGV[2]) or 0
local max_b = tonumber(ARGV[3]) or math.huge
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
