-- contacts.lua - one page of the list a session's hello carries: people and groups, with their
-- counters and a preview of each conversation's newest message.
-- Caller: the gateway, for hello and the `users` pages after it (scripts_contacts), one page a
-- call, the next asked for once the session drained.
--
-- KEYS  1 parley:users, 2 user contacts, 3 parley:online, 4 user groups, 5 user unread,
--       6 user read.
-- ARGV  1 user, 2 everyone-limit, 3 the key format of a group's members, 4 the key format of a
--       user's read, 5 the key format of a conversation's history, 6 cursor ("" or "0" for the
--       first page), 7 page size n, 8 preview bytes.
-- The list: if ZCARD users <= limit, everyone but the user (mode 1: ZRANGE by index), else the
-- user's contacts set (mode 0: SSCAN); then the user's groups (SSCAN). Members of groups are not
-- listed one by one (a group's entry stands for them: its `online` says whether another member
-- is; docs/protocol.md "Bounded reads"). The cursor says where the next page starts:
-- "u:<index>", "c:<sscan cursor>", "g:<sscan cursor>" (a set of up to SMALL (128) members is
-- read whole and paged by name instead: "C:<last name>", "G:<last name>"); "" when the list is
-- done. A page takes from the next phase when one ends with room left (at most 4 steps), so a
-- short list is one page.
-- Reply {mode, next cursor, then per entry: name, online, unread, read, peer_read, last}: last is
-- the conversation's newest history entry with its data cut to the preview bytes on a UTF-8
-- boundary and truncated = true when cut (re-packed), or "" when there is none; for a group
-- online = another member is online, peer_read 0.
-- unread and read are as stored: send.lua and read.lua keep them, group.lua starts a member's at
-- his join (read = the group's newest id then, unread absent) and deletes them when he leaves.
-- Work per call: at most n entries (about n from an SSCAN of a set of more than 128), each a few
-- O(1) reads and one history entry decoded (at most --max-frame bytes), plus reading a small set
-- whole (<= 128 names).
local user, limit, members_fmt, read_fmt = ARGV[1], tonumber(ARGV[2]), ARGV[3], ARGV[4]
local hist_fmt, cursor = ARGV[5], ARGV[6] or ''
local n, preview = tonumber(ARGV[7]) or 100, tonumber(ARGV[8]) or 256
local function cut(s, max)
  if #s <= max then return s, false end
  local i = max
  -- back off over UTF-8 continuation bytes (10xxxxxx) so no character is split
  while i > 0 and string.byte(s, i + 1) >= 0x80 and string.byte(s, i + 1) < 0xC0 do i = i - 1 end
  return string.sub(s, 1, i), true
end
local function last(conv)
  local e = redis.call('ZRANGE', string.format(hist_fmt, conv), -1, -1)[1]
  if not e then return '' end
  if #e <= preview then return e end
  local m = cmsgpack.unpack(e)
  if type(m) ~= 'table' or type(m.data) ~= 'string' then return e end
  local d, was = cut(m.data, preview)
  if not was then return e end
  m.data, m.truncated = d, true
  return cmsgpack.pack(m)
end
local function num(v) return tonumber(v) or 0 end
local SMALL = 128 -- sets up to this size are paged by name, bigger ones with SSCAN
local me = redis.call('SISMEMBER', KEYS[3], user)
local mode = 0
if redis.call('ZCARD', KEYS[1]) <= limit then mode = 1 end
if cursor == '' or cursor == '0' then
  if mode == 1 then cursor = 'u:0' else cursor = 'c:0' end
end
-- a page counts the user himself (everyone mode) among its n: at most n entries
local out, names, groups = {mode, ''}, {}, {}
-- fill the page from as many phases as it takes (the steps bounded too)
local steps = 0
while cursor ~= '' and #names + #groups < n and steps < 4 do
  steps = steps + 1
  local phase, pos = string.match(cursor, '^(%a):(.*)$')
  if not phase then return redis.error_reply('contacts: bad cursor') end
  local room = n - #names - #groups
  if phase == 'u' then
    local i = tonumber(pos)
    local got = redis.call('ZRANGE', KEYS[1], i, i + room - 1)
    for _, u in ipairs(got) do names[#names + 1] = u end
    if #got < room then cursor = 'g:0' else cursor = 'u:' .. (i + room) end
  else
    local lower = string.lower(phase)
    local key, into = KEYS[2], names
    if lower == 'g' then key, into = KEYS[4], groups end
    local card = redis.call('SCARD', key)
    if phase == lower and pos == '0' and card <= SMALL then
      phase, pos = string.upper(phase), ''
    elseif phase ~= lower and card > 2 * SMALL then
      phase, pos = lower, '0' -- it grew a lot meanwhile: scanned from the start (repeats allowed)
    end
    if phase ~= lower then
      -- a small set: sorted by name, the page after the last name given (exact page sizes,
      -- and nobody skipped when the set changes between pages)
      local all = redis.call('SMEMBERS', key)
      table.sort(all)
      local took = 0
      for _, u in ipairs(all) do
        if u > pos and took < room then into[#into + 1] = u; took = took + 1; pos = u
        elseif u > pos then took = took + 1; break end
      end
      if took > room then cursor = phase .. ':' .. pos
      elseif lower == 'c' then cursor = 'g:0'
      else cursor = '' end
    else
      local r = redis.call('SSCAN', key, pos, 'COUNT', room)
      for _, u in ipairs(r[2]) do into[#into + 1] = u end
      if r[1] ~= '0' then cursor = phase .. ':' .. r[1]
      elseif phase == 'c' then cursor = 'g:0'
      else cursor = '' end
    end
  end
end
for _, u in ipairs(names) do
  if u ~= user then
    out[#out + 1] = u
    out[#out + 1] = redis.call('SISMEMBER', KEYS[3], u)
    out[#out + 1] = num(redis.call('HGET', KEYS[5], u))
    out[#out + 1] = num(redis.call('HGET', KEYS[6], u))
    out[#out + 1] = num(redis.call('HGET', string.format(read_fmt, u), user))
    if user < u then out[#out + 1] = last(user .. '|' .. u)
    else out[#out + 1] = last(u .. '|' .. user) end
  end
end
for _, g in ipairs(groups) do
  local on = redis.call('SINTERCARD', 2, string.format(members_fmt, g), KEYS[3], 'LIMIT', 2)
  out[#out + 1] = g
  if on - me > 0 then out[#out + 1] = 1 else out[#out + 1] = 0 end
  out[#out + 1] = num(redis.call('HGET', KEYS[5], g))
  out[#out + 1] = num(redis.call('HGET', KEYS[6], g))
  out[#out + 1] = 0
  out[#out + 1] = last(g)
end
out[2] = cursor
return out
