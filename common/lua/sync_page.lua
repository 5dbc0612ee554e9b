-- include: resolve
-- flags: no-writes
--
-- sync_page.lua - the last step of sync.lua (no key): the page's entries as the frames a client
-- gets (lib/resolve.lua), with the messages sync_cut.lua's reads brought.
-- Caller: sync_cut.lua's fork.
--
-- ARGV  1 stand-ins ("1"/else), 2 max bytes (B), 3 seq, 4 the plan (msgpack: per entry its read
--       and the index of its message there; 0, 0 for none; -1 for a group the user is not in),
--       5 E (entries), 6...5+E the raw inbox entries in order, then the reads' replies in order
--       (sync_hist.lua "read").
-- Reply sync.lua's: {1, seq, frames...}, or {0, seq} when an entry's message has left its
-- history (since the probe) and there are no stand-ins. Past its first entry the page ends
-- before an entry that would take it past B bytes.
-- Work: E entries decoded, each read's reply decoded once (when reached), each frame packed.
local stand_ins, max_b, seq = ARGV[1] == '1', tonumber(ARGV[2]), tonumber(ARGV[3])
local plan, ne = cmsgpack.unpack(ARGV[4]), tonumber(ARGV[5])
local base = 5 + ne -- the replies follow
local lists = {}
local cur_b, cur_p = 0, 0 -- the entry being resolved: its read, its message's index there
local function member() return cur_b ~= -1 end
local function get()
  if cur_b <= 0 or cur_p <= 0 then return nil end
  if not lists[cur_b] then lists[cur_b] = cmsgpack.unpack(ARGV[base + cur_b]) end
  local v = lists[cur_b][cur_p]
  if type(v) ~= 'string' then return nil end
  local m = cmsgpack.unpack(v)
  if type(m) ~= 'table' then return nil end
  return m
end
local out, bytes = {1, seq}, 0
for i = 1, ne do
  local raw = ARGV[5 + i]
  local e = cmsgpack.unpack(raw)
  cur_b, cur_p = plan[2 * i - 1], plan[2 * i]
  local f = ref_resolve(e, get, member)
  if not f then -- its message left the history
    if not stand_ins then return {0, seq} end
    f = {kind = 'gone', seq = e.seq, id = e.id, with = e.w}
  end
  if not e.kind then f = cmsgpack.pack(f) else f = raw end
  if #out > 2 and bytes + #f > max_b then break end
  out[#out + 1] = f
  bytes = bytes + #f
end
return out
