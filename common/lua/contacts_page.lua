-- flags: no-writes
--
-- contacts_page.lua - the join of contacts.lua's steps, on the user's tag {u:NAME}: the page's
-- entries with the user's own counters and what the fork read, as contacts.lua's reply.
-- Caller: contacts_online.lua's fork.
--
-- KEYS  1 user unread, 2 user read, 3 user hidden set, 4 user mentions.
-- ARGV  1 the page (msgpack {mode, cur (the next cursor), bl (blocked), e (entries: {name,
--       1 for a group, its contacts_peer.lua or contacts_group.lua reply, its contacts_last.lua
--       reply, a person's presence 0/1})}), 2... the fork's replies in order.
-- Reply contacts.lua's.
-- Work: per entry at most one SISMEMBER and three HGETs; one group's roles decoded.
local function num(v) return tonumber(v) or 0 end
local page = cmsgpack.unpack(ARGV[1])
local function rep(i) return ARGV[1 + i] end
local out = {page.mode, page.cur, page.bl}
for _, e in ipairs(page.e) do
  local name, group, a, b = e[1], e[2] == 1, e[3], e[4]
  out[#out + 1] = name
  if group then
    local r = rep(a)
    if string.sub(r, 1, 1) == '1' then out[#out + 1] = 1 else out[#out + 1] = 0 end
  elseif redis.call('SISMEMBER', KEYS[3], name) == 1 then
    out[#out + 1] = -1
  else
    out[#out + 1] = e[5]
  end
  out[#out + 1] = num(redis.call('HGET', KEYS[1], name))
  out[#out + 1] = num(redis.call('HGET', KEYS[2], name))
  if group then out[#out + 1] = 0 else out[#out + 1] = num(rep(a)) end
  out[#out + 1] = rep(b)
  if group then out[#out + 1] = cmsgpack.unpack(string.sub(rep(a), 2)) else out[#out + 1] = 0 end
  out[#out + 1] = num(redis.call('HGET', KEYS[4], name))
end
return out
