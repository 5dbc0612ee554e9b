-- include: resolve
--
-- sync_page.lua - the join of sync.lua's steps: the page's entries as the frames a client gets
-- (lib/resolve.lua), with what the fork's steps read. It touches no key.
-- Caller: sync.lua's fork.
--
-- ARGV  1 stand-ins ("1"/else), 2 max bytes (B), 3 seq, 4 the plan (msgpack: per entry its step
--       and the index of its message in that step's ids, 0 for none), 5 E (entries), 6...5+E the
--       raw inbox entries in order, then the fork's replies in order (sync_member.lua's or
--       sync_hist.lua's).
-- Reply sync.lua's: {1, seq, frames...}, or {0, seq} when an entry's message has left its
-- history and there are no stand-ins. The page ends before an entry whose message its step did
-- not read (past B bytes of that conversation) and, past its first entry, before an entry that
-- would take it past B bytes.
-- Work: E entries decoded, each step's reply decoded once (when reached), each frame packed.
local stand_ins, max_b, seq = ARGV[1] == '1', tonumber(ARGV[2]), tonumber(ARGV[3])
local plan, ne = cmsgpack.unpack(ARGV[4]), tonumber(ARGV[5])
local base = 5 + ne -- the replies follow
local lists = {}
-- the reply of step b: "out" (a group the user is not in) or its decoded array
local function reply(b)
  if lists[b] == nil then
    local r = ARGV[base + b]
    if r == 'out' then lists[b] = false else lists[b] = cmsgpack.unpack(r) end
  end
  return lists[b]
end
local cur_b, cur_p = 0, 0 -- the entry being resolved: its step, its message's index there
local function member() return reply(cur_b) ~= false end
local function get()
  local l = reply(cur_b)
  local v = l and l[cur_p]
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
  if cur_p > 0 then
    local l = reply(cur_b)
    if l and l[cur_p] == 1 then break end -- not read: past B bytes of its conversation
  end
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
