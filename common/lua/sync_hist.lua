-- sync_hist.lua - a step of sync.lua's fork, on a conversation's tag {c:KEY}: the stored
-- messages of the ids a page of a user's inbox names.
-- Caller: sync.lua's fork (a 1:1), sync_member.lua's tail call (a group).
--
-- KEYS  1 the conversation's history.
-- ARGV  1 max bytes (B), 2... message ids (in the page's order).
-- Reply a msgpack array, one element per id: the history entry (msgpack bytes), 0 when the
-- history no longer holds it, or 1 when not read: once the entries read weigh B bytes or more,
-- the rest are not read (the page ends at the first of them; sync_page.lua).
-- Reads only. Work: one ZRANGEBYSCORE (O(log n)) per id read; at most B bytes plus one entry.
local max_b = tonumber(ARGV[1]) or 262144
local out, bytes = {}, 0
for i = 2, #ARGV do
  if bytes >= max_b then
    out[#out + 1] = 1
  else
    local raw = redis.call('ZRANGEBYSCORE', KEYS[1], ARGV[i], ARGV[i], 'LIMIT', 0, 1)[1]
    if raw then
      out[#out + 1] = raw
      bytes = bytes + #raw
    else
      out[#out + 1] = 0
    end
  end
end
return cmsgpack.pack(out)
