-- inbox_refs.lua - turns the full-copy entries of one inbox (written before inbox entries became
-- references: lib/ref.lua) into references, a bounded batch at a time, so a later delete leaves
-- their text in no key.
-- Caller: the CLI (`parley migrate-inboxes`, scripts_inbox_refs_sync), once after an upgrade.
--
-- KEYS  1 user inbox, 2 user meta.
-- ARGV  1 user, 2 first index (0-based), 3 entries per call (N >= 1).
-- Entries [first, first + N) that carry `kind` "text" become {seq, id, w} (w: the #group for a
-- group message, else the other user of the pair, the user himself for a note to himself), in
-- place (LSET); other entries are left as they are. The meta's `bytes` (the inbox's byte count,
-- lib/store.lua) loses what the entries shrank by.
-- Reply {next index (0 when the inbox is done), entries converted}.
-- Work per call: one LRANGE of N entries, at most N LSETs (each O(index) on a list).
local user, first, n = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local es = redis.call('LRANGE', KEYS[1], first, first + n - 1)
local converted, shrunk = 0, 0
for i, raw in ipairs(es) do
  local e = cmsgpack.unpack(raw)
  if type(e) == 'table' and e.kind == 'text' and type(e.seq) == 'number' and
     type(e.id) == 'number' and type(e.to) == 'string' and type(e.from) == 'string' then
    local w = e.to
    if string.byte(w, 1) ~= 35 and e.to == user then w = e.from end
    local ref = cmsgpack.pack({seq = e.seq, id = e.id, w = w})
    redis.call('LSET', KEYS[1], first + i - 1, ref)
    converted = converted + 1
    shrunk = shrunk + #raw - #ref
  end
end
if shrunk > 0 and redis.call('HEXISTS', KEYS[2], 'bytes') == 1 then
  if redis.call('HINCRBY', KEYS[2], 'bytes', -shrunk) < 0 then
    redis.call('HSET', KEYS[2], 'bytes', 0)
  end
end
local next_index = first + #es
if #es < n then next_index = 0 end
return {next_index, converted}
