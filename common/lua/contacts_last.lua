-- flags: no-writes
--
-- contacts_last.lua - a step of contacts.lua, on a conversation's tag {c:KEY}: the preview of its
-- newest message (an entry's last).
-- Caller: contacts_list.lua's fork.
--
-- KEYS  1 the conversation's history.
-- ARGV  1 preview bytes.
-- Reply "" when the history is empty, else its newest entry (its current state: a deleted one
-- has data ""); when it weighs more than the preview bytes, re-packed with its data cut to them
-- on a UTF-8 boundary (and truncated = true when cut) and without its reactions (who reacted is
-- history's to tell).
-- Work: one ZRANGE of one entry, decoded (at most --max-frame bytes) when over the preview.
local preview = tonumber(ARGV[1]) or 256
local function cut(s, max)
  if #s <= max then return s, false end
  local i = max
  -- back off over UTF-8 continuation bytes (10xxxxxx) so no character is split
  while i > 0 and string.byte(s, i + 1) >= 0x80 and string.byte(s, i + 1) < 0xC0 do i = i - 1 end
  return string.sub(s, 1, i), true
end
local e = redis.call('ZRANGE', KEYS[1], -1, -1)[1]
if not e then return '' end
if #e <= preview then return e end
local m = cmsgpack.unpack(e)
if type(m) ~= 'table' or type(m.data) ~= 'string' then return e end
local d, was = cut(m.data, preview)
if not was and not m.reactions then return e end
if was then m.data, m.truncated = d, true end
m.reactions = nil
return cmsgpack.pack(m)
