-- include: pair fork
-- flags: no-writes
--
-- contacts_online.lua - a step of contacts.lua, on parley:online, once the page's names are
-- known: the people's presence, then one fork for the rest of every entry (one step per tag: a
-- person's read position, a conversation's newest message, a group's roles and online flag),
-- joined by contacts_page.lua on the user's tag.
-- Caller: contacts_list.lua.
--
-- KEYS  1 parley:online.
-- ARGV  1 S: the page's state (contacts.lua), its names listed.
-- Reply the fork: contacts_peer.lua per person, contacts_last.lua per conversation,
-- contacts_group.lua per group; a person or conversation named twice is read once.
-- A group's online flag (another member online): while at most ONLINE_PASS (128) users are
-- online, their names go to each group's step (one SMISMEMBER there); else the group's step
-- goes on with contacts_gonline.lua (contacts_group.lua says how).
-- Work: one SMISMEMBER of the page's people (at most 500), SCARD, and SMEMBERS of at most
-- ONLINE_PASS names.
local ONLINE_PASS = 128
local S = cmsgpack.unpack(ARGV[1])
local user = S.u
-- the people (each once) and their presence
local people, online_at = {}, {}
local function add(u)
  if u ~= user and not online_at[u] then
    people[#people + 1] = u
    online_at[u] = #people
  end
end
for _, u in ipairs(S.names) do add(u) end
for _, u in ipairs(S.members) do add(u) end
local online = {}
if #people > 0 then online = redis.call('SMISMEMBER', KEYS[1], unpack(people)) end
-- the online users (not the user) when few: what each group's members are tested against
local few = nil
if #S.groups > 0 and redis.call('SCARD', KEYS[1]) <= ONLINE_PASS then
  few = {}
  for _, u in ipairs(redis.call('SMEMBERS', KEYS[1])) do
    if u ~= user then few[#few + 1] = u end
  end
end

local fork, at = {}, {}
local function branch(tag, name, keys, args)
  local i = at[tag]
  if not i then
    fork[#fork + 1] = {name, keys, args}
    i = #fork
    at[tag] = i
  end
  return i
end
-- per entry {name, 1 for a group, its contacts_peer.lua or contacts_group.lua step, its
-- contacts_last.lua step, a person's presence (0/1)}
local entries = {}
local function person(u)
  if u == user then return end
  local conv = pair_key(user, u)
  entries[#entries + 1] = {
    u, 0, branch('u' .. u, 'contacts_peer', {string.format(S.fr, u)}, {user}),
    branch('c' .. conv, 'contacts_last', {string.format(S.fh, conv)}, {S.pv}),
    online[online_at[u]],
  }
end
for _, u in ipairs(S.names) do person(u) end
for _, g in ipairs(S.groups) do
  local gkeys = {string.format(S.fm, g), string.format(S.fmeta, g), string.format(S.fadm, g)}
  local args = {'start', user, KEYS[1]}
  if few then
    args = {'names', user}
    for _, u in ipairs(few) do args[#args + 1] = u end
  end
  entries[#entries + 1] = {
    g, 1, branch('g' .. g, 'contacts_group', gkeys, args),
    branch('c' .. g, 'contacts_last', {string.format(S.fh, g)}, {S.pv}), 0,
  }
end
for _, u in ipairs(S.members) do person(u) end
local page = {mode = S.mode, cur = S.cur, bl = S.bl or {}, e = entries}
return step_fork(fork, {'contacts_page', {S.kun, S.krd, S.khid, S.kmen}, {cmsgpack.pack(page)}})
