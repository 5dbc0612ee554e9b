-- include: step
-- flags: no-writes
--
-- contacts_list.lua - a step of contacts.lua, on the user's tag {u:NAME}: which names the page
-- lists (the contacts and groups phases, and the member phase's order of groups), then
-- contacts_online.lua (the entries' presence and the fork that reads their fields). In the
-- member phase it hands one batch of a group's members to contacts_members.lua (on the group's
-- tag) and runs again as the join of that batch's checks.
-- Caller: contacts.lua, contacts_members.lua (a tail call, or the join of its fork).
--
-- KEYS  1 user contacts, 2 user groups, 3 user blocks (block.lua).
-- ARGV  1 S: the page's state (contacts.lua), then, after a member batch, one contacts_in.lua
--       reply per group listed before the batch's (a msgpack array of 0/1 per candidate).
-- Reply the next step: contacts_members.lua or contacts_online.lua.
-- The member phase's cursor: "m:<order>/<group>/<position>". order: N (the user's groups by name)
-- or S<sscan cursor> (more than SMALL groups: the SSCAN batch that holds <group>, COUNT GBATCH);
-- group: "" (before the order's or the batch's first) or the group being listed; position: ""
-- (its start), N<last name> (a member set of up to SMALL, by name) or S<sscan cursor>. A member
-- is listed when he is not the user, not a 1:1 contact (listed already: SMISMEMBER here) and,
-- when the user has at most DEDUP groups (by name), in none of the groups before his
-- (contacts_in.lua on each of them).
-- Work per call: the first page's SMEMBERS of the blocks (at most --max-blocks); at most STEPS
-- set reads in all the page's runs, each of a small set whole (<= 2 * SMALL names, sorted) or
-- one SSCAN batch; one SMISMEMBER of a batch's candidates (at most n, or one SSCAN batch).
local SMALL = 128 -- sets up to this size are paged by name, bigger ones with SSCAN
local DEDUP = 32 -- up to this many groups, a member of two of them is listed once
local STEPS = 8 -- set reads a page makes (phases, groups), at most
local GBATCH = 16 -- SSCAN COUNT over a user's groups (more than SMALL of them)
local S = cmsgpack.unpack(ARGV[1])
local n, cursor = S.n, S.cur
local budget = 4 * n -- members looked at a page in the member phase (plus one SSCAN batch)
local function count() return #S.names + #S.groups + #S.members end
if S.first then -- the first page carries the users the user blocks
  S.bl = redis.call('SMEMBERS', KEYS[3])
  table.sort(S.bl)
  S.first = false
end
-- after the groups: their members (contacts beyond the everyone limit), none in everyone mode
local after_groups = ''
if S.mode == 0 then after_groups = 'm:' end

local gsorted, gbatch = nil, {}
local function groups_sorted()
  if not gsorted then
    gsorted = redis.call('SMEMBERS', KEYS[2])
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
  if not gbatch[gc] then gbatch[gc] = redis.call('SSCAN', KEYS[2], gc, 'COUNT', GBATCH) end
  local b, i = gbatch[gc], 0
  if g ~= '' then
    -- not found (left meanwhile, or the set changed): the batch again (repeats allowed)
    for k, x in ipairs(b[2]) do if x == g then i = k; break end end
  end
  if i < #b[2] then return order, b[2][i + 1] end
  if b[1] == '0' then return order, nil end
  return 'S' .. b[1], ''
end

-- a batch back from contacts_members.lua (and contacts_in.lua on each group before its group)
if S.b then
  local b = S.b
  S.b = nil
  if #b.cands > 0 then
    local contact = redis.call('SMISMEMBER', KEYS[1], unpack(b.cands))
    local before = {}
    for j = 2, #ARGV do before[#before + 1] = cmsgpack.unpack(ARGV[j]) end
    for i, u in ipairs(b.cands) do
      local keep = contact[i] == 0
      for _, in_g in ipairs(before) do
        if in_g[i] == 1 then keep = false; break end
      end
      if keep then S.members[#S.members + 1] = u end
    end
  end
  if not b.done then
    cursor = 'm:' .. b.order .. '/' .. b.g .. '/' .. b.at
  else
    local order, g = next_group(b.order, b.g)
    if g == nil then cursor = '' else cursor = 'm:' .. order .. '/' .. g .. '/' end
  end
end

-- the start of one step of the member phase: the next cursor when it reads no members (the
-- phase is done, or the next SSCAN batch of the groups), else the batch to read: {order, g, at,
-- earlier (the groups before g to check its members against)}; nil: a bad cursor
local function member_batch(pos)
  local order, g, at = '', '', ''
  if pos ~= '' then
    order, g, at = string.match(pos, '^([NS]%d*)/([^/]*)/(.*)$')
    if not order then return nil end
  end
  local gcard = redis.call('SCARD', KEYS[2])
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
  local earlier = {}
  if order == 'N' then
    local gs = groups_sorted()
    if #gs <= DEDUP then
      for _, x in ipairs(gs) do
        if x >= g then break end
        earlier[#earlier + 1] = x
      end
    end
  end
  return {order = order, g = g, at = at, earlier = earlier}
end

-- fill the page from as many phases (and groups) as it takes, the steps bounded too
while cursor ~= '' and count() < n and S.steps < STEPS and S.looked < budget do
  S.steps = S.steps + 1
  local phase, pos = string.match(cursor, '^(%a):(.*)$')
  -- "u:" is contacts.lua's: it leaves it only when the page is full
  if not phase or phase == 'u' then return redis.error_reply('contacts: bad cursor') end
  local room = n - count()
  if phase == 'm' then
    local b = member_batch(pos)
    if not b then return redis.error_reply('contacts: bad cursor') end
    if type(b) == 'string' then
      cursor = b
    else
      b.room, S.b, S.cur = room, b, cursor
      return step_next('contacts_members', {string.format(S.fm, b.g)}, {cmsgpack.pack(S)})
    end
  else
    local lower = string.lower(phase)
    local key, into = KEYS[1], S.names
    if lower == 'g' then key, into = KEYS[2], S.groups end
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

-- the page's names are known: their presence and the fork of their reads (contacts_online.lua)
S.cur = cursor
return step_next('contacts_online', {S.ko}, {cmsgpack.pack(S)})
