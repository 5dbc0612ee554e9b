-- include: fork
-- flags: no-writes
--
-- sync_cut.lua - the join of sync.lua's probes (no key): where the page ends, from the sizes of
-- the messages it names, then a fork that reads only those the page keeps (sync_hist.lua "read",
-- one step per conversation) joined by sync_page.lua.
-- Caller: sync.lua's fork.
--
-- ARGV  1 stand-ins ("1"/else), 2 max bytes (B), 3 seq, 4 the plan (msgpack: per entry its
--       probe and the index of its message in that probe's ids, 0 for none), 5 the history key
--       of each probe's conversation (msgpack), 6 E (entries), 7...6+E the raw inbox entries in
--       order, then the probes' replies in order ("out" or a msgpack array of sizes, 0 for a
--       message gone).
-- Reply {0, seq} when an entry (up to where the page ends) names a message gone from its history
-- and there are no stand-ins; else the fork. The page keeps the entries, at most E, up to the one
-- that would take it past B bytes (the first always), each counted as its message's size (or its
-- own) plus the frame's few fields; sync_page.lua cuts again on the exact frames.
-- Work: E entries decoded (references of a few bytes, or old full copies).
local FRAME = 24 -- bytes a frame adds to its message or reference (kind, seq, with), about
local stand_ins, max_b, seq = ARGV[1] == '1', tonumber(ARGV[2]), tonumber(ARGV[3])
local plan, convs, ne = cmsgpack.unpack(ARGV[4]), cmsgpack.unpack(ARGV[5]), tonumber(ARGV[6])
local base = 6 + ne -- the probes' replies follow
local probes = {}
-- probe b's reply: false (a group the user is not in) or the sizes
local function probe(b)
  if probes[b] == nil then
    local r = ARGV[base + b]
    if r == 'out' then probes[b] = false else probes[b] = cmsgpack.unpack(r) end
  end
  return probes[b]
end
-- the reads: per conversation, the ids of the kept entries (each once)
local reads, by_probe = {}, {}
local function read_of(b, id)
  local t = by_probe[b]
  if not t then
    t = {hist = convs[b], ids = {}, at = {}}
    reads[#reads + 1] = t
    t.i, by_probe[b] = #reads, t
  end
  local p = t.at[id]
  if not p then
    t.ids[#t.ids + 1] = id
    p = #t.ids
    t.at[id] = p
  end
  return t.i, p
end
-- the plan of sync_page.lua: per kept entry its read and index (0, 0: none; -1: a group left)
local plan2, kept, bytes = {}, {}, 0
for i = 1, ne do
  local raw = ARGV[6 + i]
  local b, p = plan[2 * i - 1], plan[2 * i]
  local size, r, q, read = #raw + FRAME, 0, 0, false
  if b > 0 then
    local sizes = probe(b)
    if sizes == false then
      r = -1
    elseif p > 0 then
      if sizes[p] == 0 then -- its message left the history
        if not stand_ins then return {0, seq} end
      else
        size, read = sizes[p] + FRAME, true
      end
    end
  end
  if #kept > 0 and bytes + size > max_b then break end
  if read then r, q = read_of(b, cmsgpack.unpack(raw).id) end
  kept[#kept + 1] = raw
  plan2[#plan2 + 1], plan2[#plan2 + 2] = r, q
  bytes = bytes + size
end
local fork = {}
for _, t in ipairs(reads) do
  local args = {'read'}
  for _, id in ipairs(t.ids) do args[#args + 1] = id end
  fork[#fork + 1] = {'sync_hist', {t.hist}, args}
end
local args = {ARGV[1], max_b, seq, cmsgpack.pack(plan2), #kept}
for _, raw in ipairs(kept) do args[#args + 1] = raw end
return step_fork(fork, {'sync_page', {}, args})
