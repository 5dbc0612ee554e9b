-- include: pair
--
-- contacts.lua - one page of the list a session's hello carries: people and groups, with their
-- counters and a preview of each conversation's newest message.
-- Caller: the gateway, for hello and the `users` pages after it (scripts_contacts), one page a
-- call, the next asked for once the session drained.
--
-- KEYS  1 parley:users, 2 user contacts, 3 parley:online, 4 user groups, 5 user unread,
--       6 user read, 7 user hidden set, 8 user blocks (block.lua), 9 user mentions.
-- ARGV  1 user, 2 everyone-limit, 3 the key format of a group's members, 4 the key format of a
--       user's read, 5 the key format of a conversation's history, 6 cursor ("" or "0" for the
--       first page), 7 page size n, 8 preview bytes, 9 the key format of a group's meta, 10 the
--       key format of a group's admins (group.lua).
-- The list: if ZCARD users <= limit, everyone but the user (mode 1: ZRANGE by index), then the
-- user's groups; else (mode 0) the user's contacts set (his 1:1 conversations), then his groups,
-- then the members of each of his groups (protocol.md: "A user's contacts are everyone they
-- share a 1:1 conversation or a group with"), skipping the user and his 1:1 contacts (listed
-- already). Groups come by name (more than SMALL: in SSCAN order, COUNT 16), each group's
-- members by name (more than SMALL: SSCAN). A member of two groups is listed once when the user
-- has at most DEDUP (32) groups (each candidate is looked up in the groups before his, by
-- name); with more, once per group (clients merge entries by name). The cursor says where the
-- next page starts: "u:<index>", "c:<sscan cursor>", "g:<sscan cursor>" (a set of up to SMALL
-- (128) members is read whole and paged by name instead: "C:<last name>", "G:<last name>"),
-- "m:..." (the member phase, below); "" when the list is done. A page takes from the next phase
-- (and the next group) when one ends with room left (at most STEPS (8) set reads), so a short
-- list is one page.
-- Reply {mode, next cursor, blocked, then per entry: name, online, unread, read, peer_read, last,
-- roles, mentions}:
-- blocked is the users the user blocks (at most --max-blocks, sorted) on the first page, an empty
-- array on the others; a person's online is -1 (shown offline) when he is in the user's hidden set
-- (a block either way: the gateway hides his presence from this session too); last is
-- the conversation's newest history entry (its current state: a deleted one has data "") with
-- its data cut to the preview bytes on a UTF-8 boundary and truncated = true when cut, and no
-- reactions (re-packed) when it weighs more than the preview bytes, or "" when there is none;
-- mentions: the user's count of unread messages that mention him there (send.lua, read.lua);
-- for a group
-- online = another member is online, peer_read 0.
-- roles: 0 for a person; for a group {owner ("" when the meta has none: a group from before
-- roles not changed since, or an empty one), role (the user's own: "owner", "admin" or
-- "member"), more (1 when the admins were cut, else 0), admins}: admins are the ADMINS_MAX (32)
-- promoted earliest (the heirs in order), sorted by name; more says there are others.
-- unread and read are as stored: send.lua and read.lua keep them, group.lua starts a member's at
-- his join (read = the group's newest id then, unread absent) and deletes them when he leaves.
-- Work per call: at most n entries (about n from an SSCAN of a set of more than 128), each a few
-- O(1) reads and one history entry decoded (at most --max-frame bytes); at most STEPS set reads,
-- each of a small set whole (<= 2 * 128 names, sorted) or one SSCAN batch; in the member phase
-- at most 4n members looked at (plus one SSCAN batch), each up to DEDUP + 1 SISMEMBERs; a
-- group entry's online flag at most EXACT_MAX (1,024) membership tests (group_online below), its
-- roles one HGET, one ZSCORE and one ZRANGE of at most ADMINS_MAX + 1 names (O(log n + 33)).
local user, limit, members_fmt, read_fmt = ARGV[1], tonumber(ARGV[2]), ARGV[3], ARGV[4]
local hist_fmt, cursor = ARGV[5], ARGV[6] or ''
local n, preview = tonumber(ARGV[7]) or 100, tonumber(ARGV[8]) or 256
local meta_fmt, admins_fmt = ARGV[9], ARGV[10]
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
  if not was and not m.reactions then return e end
  if was then m.data, m.truncated = d, true end
  m.reactions = nil -- a preview: who reacted is history's to tell
  return cmsgpack.pack(m)
end
local function num(v) return tonumber(v) or 0 end
local SMALL = 128 -- sets up to this size are paged by name, bigger ones with SSCAN
local DEDUP = 32 -- up to this many groups, a member of two of them is listed once
local STEPS = 8 -- set reads a call makes (phases, groups), at most
local GBATCH = 16 -- SSCAN COUNT over a user's groups (more than SMALL of them)
local budget = 4 * n -- members looked at a call in the member phase (plus one SSCAN batch)
local me = redis.call('SISMEMBER', KEYS[3], user)
local mode = 0
if redis.call('ZCARD', KEYS[1]) <= limit then mode = 1 end
local blocked = {} -- the first page carries the users the user blocks
if cursor == '' or cursor == '0' then
  blocked = redis.call('SMEMBERS', KEYS[8])
  table.sort(blocked)
  if mode == 1 then cursor = 'u:0' else cursor = 'c:0' end
end
-- after the groups: their members (contacts beyond the everyone limit), none in everyone mode
local after_groups = ''
if mode == 0 then after_groups = 'm:' end
-- a page counts the user himself (everyone mode) among its n: at most n entries
local out, names, groups, members = {mode, '', blocked}, {}, {}, {} -- in this order
local looked = 0
local function count() return #names + #groups + #members end

-- The member phase: "m:<order>/<group>/<position>". order: N (the user's groups by name) or
-- S<sscan cursor> (more than SMALL groups: the SSCAN batch that holds <group>, COUNT GBATCH);
-- group: "" (before the order's or the batch's first) or the group being listed; position:
-- "" (its start), N<last name> (a member set of up to SMALL, by name) or S<sscan cursor>.
local gsorted, gbatch = nil, {}
local function groups_sorted()
  if not gsorted then
    gsorted = redis.call('SMEMBERS', KEYS[4])
    table.sort(gsorted)
  end
  return gsorted
end
-- the group after g in the order ("" for the first); nil when none is left, "" when the next
-- SSCAN batch of the groups is to be read (order then names it)
local function next_group(order, g)
  if order == 'N' then
    for _, x in ipairs(groups_sorted()) do if x > g then return order, x end end
    return order, nil
  end
  local gc = string.sub(order, 2)
  if not gbatch[gc] then gbatch[gc] = redis.call('SSCAN', KEYS[4], gc, 'COUNT', GBATCH) end
  local b, i = gbatch[gc], 0
  if g ~= '' then
    -- not found (left meanwhile, or the set changed): the batch again (repeats allowed)
    for k, x in ipairs(b[2]) do if x == g then i = k; break end end
  end
  if i < #b[2] then return order, b[2][i + 1] end
  if b[1] == '0' then return order, nil end
  return 'S' .. b[1], ''
end
-- a member listed: not the user, not a 1:1 contact (listed already), and, when the user has at
-- most DEDUP groups (by name), in none of the groups before g
local function keep(u, order, g)
  if u == user or redis.call('SISMEMBER', KEYS[2], u) == 1 then return false end
  if order == 'N' then
    local gs = groups_sorted()
    if #gs <= DEDUP then
      for _, x in ipairs(gs) do
        if x >= g then break end
        if redis.call('SISMEMBER', string.format(members_fmt, x), u) == 1 then return false end
      end
    end
  end
  return true
end
-- one step of the member phase: a part of one group's members; the next cursor
local function members_step(pos)
  local order, g, at = '', '', ''
  if pos ~= '' then
    order, g, at = string.match(pos, '^([NS]%d*)/([^/]*)/(.*)$')
    if not order then return nil end
  end
  local gcard = redis.call('SCARD', KEYS[4])
  if order == '' then
    if gcard <= SMALL then order = 'N' else order = 'S0' end
  elseif order == 'N' and gcard > 2 * SMALL then
    order, g, at = 'S0', '', '' -- it grew a lot meanwhile: scanned from the start (repeats)
  end
  if g == '' then
    order, g = next_group(order, '')
    if g == nil then return '' end
    if g == '' then return 'm:' .. order .. '//' end
    at = ''
  end
  local key = string.format(members_fmt, g)
  local card = redis.call('SCARD', key)
  if at == '' then
    if card <= SMALL then at = 'N' else at = 'S0' end
  elseif string.sub(at, 1, 1) == 'N' and card > 2 * SMALL then
    at = 'S0'
  end
  local done
  if string.sub(at, 1, 1) == 'N' then
    local all, prev = redis.call('SMEMBERS', key), string.sub(at, 2)
    table.sort(all)
    done = true
    for _, u in ipairs(all) do
      if u > prev then
        if count() >= n or looked >= budget then done = false; break end
        looked, prev = looked + 1, u
        if keep(u, order, g) then members[#members + 1] = u end
      end
    end
    at = 'N' .. prev
  else
    local r = redis.call('SSCAN', key, string.sub(at, 2), 'COUNT', math.max(n - count(), 1))
    for _, u in ipairs(r[2]) do
      looked = looked + 1
      if keep(u, order, g) then members[#members + 1] = u end
    end
    done, at = r[1] == '0', 'S' .. r[1]
  end
  if not done then return 'm:' .. order .. '/' .. g .. '/' .. at end
  order, g = next_group(order, g)
  if g == nil then return '' end
  return 'm:' .. order .. '/' .. g .. '/'
end

-- fill the page from as many phases (and groups) as it takes, the steps bounded too
local steps = 0
while cursor ~= '' and count() < n and steps < STEPS and looked < budget do
  steps = steps + 1
  local phase, pos = string.match(cursor, '^(%a):(.*)$')
  if not phase then return redis.error_reply('contacts: bad cursor') end
  local room = n - #names - #groups - #members
  if phase == 'm' then
    cursor = members_step(pos)
    if not cursor then return redis.error_reply('contacts: bad cursor') end
  elseif phase == 'u' then
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
      else cursor = after_groups end
    else
      local r = redis.call('SSCAN', key, pos, 'COUNT', room)
      for _, u in ipairs(r[2]) do into[#into + 1] = u end
      if r[1] ~= '0' then cursor = phase .. ':' .. r[1]
      elseif phase == 'c' then cursor = 'g:0'
      else cursor = after_groups end
    end
  end
end
local function person(u)
  if u == user then return end
  out[#out + 1] = u
  if redis.call('SISMEMBER', KEYS[7], u) == 1 then out[#out + 1] = -1
  else out[#out + 1] = redis.call('SISMEMBER', KEYS[3], u) end
  out[#out + 1] = num(redis.call('HGET', KEYS[5], u))
  out[#out + 1] = num(redis.call('HGET', KEYS[6], u))
  out[#out + 1] = num(redis.call('HGET', string.format(read_fmt, u), user))
  out[#out + 1] = last(pair_key(user, u))
  out[#out + 1] = 0
  out[#out + 1] = num(redis.call('HGET', KEYS[9], u))
end
for _, u in ipairs(names) do person(u) end
-- whether another member of group key mk is online: SINTERCARD walks the smaller of the two
-- sets (and stops at 2), so it is exact and cheap while either has at most EXACT_MAX names;
-- past that (a big group in a big deployment) it is judged from SAMPLE random members, so the
-- work per group entry stays bounded (a big group with few members online may show offline)
local EXACT_MAX, SAMPLE = 1024, 64
local online_card
local function group_online(mk)
  online_card = online_card or redis.call('SCARD', KEYS[3])
  if online_card <= EXACT_MAX or redis.call('SCARD', mk) <= EXACT_MAX then
    return redis.call('SINTERCARD', 2, mk, KEYS[3], 'LIMIT', 2) - me > 0
  end
  local some = redis.call('SRANDMEMBER', mk, SAMPLE)
  local on = redis.call('SMISMEMBER', KEYS[3], unpack(some))
  for i, u in ipairs(some) do
    if on[i] == 1 and u ~= user then return true end
  end
  return false
end
-- a group's owner, the user's own role in it and the ADMINS_MAX admins promoted earliest
local ADMINS_MAX = 32
local function roles(g)
  local owner = redis.call('HGET', string.format(meta_fmt, g), 'owner')
  local ak = string.format(admins_fmt, g)
  local role = 'member'
  if owner and owner == user then role = 'owner'
  elseif redis.call('ZSCORE', ak, user) then role = 'admin' end
  local admins, more = redis.call('ZRANGE', ak, 0, ADMINS_MAX), 0 -- one more: were they cut
  if #admins > ADMINS_MAX then admins[#admins], more = nil, 1 end
  table.sort(admins)
  return {owner or '', role, more, admins}
end
for _, g in ipairs(groups) do
  out[#out + 1] = g
  if group_online(string.format(members_fmt, g)) then out[#out + 1] = 1 else out[#out + 1] = 0 end
  out[#out + 1] = num(redis.call('HGET', KEYS[5], g))
  out[#out + 1] = num(redis.call('HGET', KEYS[6], g))
  out[#out + 1] = 0
  out[#out + 1] = last(g)
  out[#out + 1] = roles(g)
  out[#out + 1] = num(redis.call('HGET', KEYS[9], g))
end
for _, u in ipairs(members) do person(u) end
out[2] = cursor
return out
