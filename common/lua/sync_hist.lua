-- flags: no-writes
--
-- sync_hist.lua - a step of sync.lua, on a conversation's tag {c:KEY}: the stored messages of the
-- ids a page of a user's inbox names, their sizes first ("size": sync.lua's probe), then those
-- the page keeps ("read": sync_cut.lua's).
-- Caller: sync.lua's fork (a 1:1), sync_member.lua's tail call (a group), sync_cut.lua's fork.
--
-- KEYS  1 the conversation's history.
-- ARGV  1 "size" or "read", 2... message ids (in the page's order).
-- Reply a msgpack array, one element per id: "size" the history entry's size in bytes, "read"
-- the entry (msgpack bytes); 0 when the history no longer holds it.
-- Reads only. Work: one ZRANGEBYSCORE (O(log n)) per id; "size" sends back numbers only.
local size = ARGV[1] == 'size'
local out = {}
for i = 2, #ARGV do
  local raw = redis.call('ZRANGEBYSCORE', KEYS[1], ARGV[i], ARGV[i], 'LIMIT', 0, 1)[1]
  if not raw then out[#out + 1] = 0
  elseif size then out[#out + 1] = #raw
  else out[#out + 1] = raw end
end
return cmsgpack.pack(out)
