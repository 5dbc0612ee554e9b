-- message.lua - helper (after ref): a stored message's changes (edit, delete, reactions) and
-- the mentions of a text; used by send.lua.
local MENTION_TRIES = 64 -- '@' names looked up per text, at most
local MENTION_ATS = 1024 -- '@' signs looked at per text, at most (65,000 of them: 15 ms of Redis)
local EMOJI_MAX = 20 -- distinct emoji per message (protocol.md)
-- replaces message id (whose stored entry was old_raw) by the map m; keeps the history's byte
-- count (key hbytes) right; returns the new entry
local function msg_put(hist, hbytes, id, old_raw, m)
  local raw = cmsgpack.pack(m)
  redis.call('ZREMRANGEBYSCORE', hist, id, id)
  redis.call('ZADD', hist, id, raw)
  if #raw ~= #old_raw then
    local total = redis.call('INCRBY', hbytes, #raw - #old_raw)
    if total < 0 then redis.call('SET', hbytes, 0) end
  end
  return raw
end
-- the participants data mentions, per protocol.md: '@' not preceded by a name character, then
-- the longest run of name characters; when that run is not a participant (is_participant(name)),
-- it again without its trailing '.', '-', '_'. Distinct names in order of first mention; at most
-- MENTION_TRIES names looked up (each at most two lookups) among the first MENTION_ATS '@'. nil
-- when none.
-- Work: linear in #data (each byte is read by one pattern match or one backward step; a run's
-- trailing punctuation is found by walking back over it, never by a pattern anchored at the end,
-- which Lua tries from every start: quadratic, 14 s of Redis for 64 KB of '.').
local function mentions_of(data, is_participant)
  local found, seen, tries, ats, i = {}, {}, 0, 0, 1
  while tries < MENTION_TRIES and ats < MENTION_ATS do
    local at = string.find(data, '@', i, true)
    if not at then break end
    i, ats = at + 1, ats + 1
    local prev = at > 1 and string.byte(data, at - 1) or 0
    local namechar = (prev >= 97 and prev <= 122) or (prev >= 48 and prev <= 57) or prev == 95 or
                     prev == 46 or prev == 45
    local run = not namechar and string.match(data, '^[a-z0-9_.-]+', at + 1)
    if run then
      tries = tries + 1
      i = at + 1 + #run
      local j = #run
      while j > 0 do
        local b = string.byte(run, j)
        if b ~= 46 and b ~= 45 and b ~= 95 then break end
        j = j - 1
      end
      local cands = {}
      if #run <= 32 then cands[1] = run end
      if j < #run and j > 0 and j <= 32 then cands[#cands + 1] = string.sub(run, 1, j) end
      for _, name in ipairs(cands) do
        if seen[name] then break end
        if is_participant(name) then
          seen[name] = true
          found[#found + 1] = name
          break
        end
      end
    end
  end
  if #found == 0 then return nil end
  return found
end
-- adds (on) or takes back user's `emoji` on message m. Returns 'same' (no change), 'full' (a
-- 21st emoji) or nil (changed).
local function msg_react(m, user, emoji, on)
  local r = m.reactions
  if type(r) ~= 'table' then r = {} end
  local list = r[emoji]
  if on then
    if list then
      for _, u in ipairs(list) do if u == user then return 'same' end end
      list[#list + 1] = user
    else
      local n = 0
      for _ in pairs(r) do n = n + 1 end
      if n >= EMOJI_MAX then return 'full' end
      r[emoji] = {user}
    end
  else
    if not list then return 'same' end
    local keep = {}
    for _, u in ipairs(list) do if u ~= user then keep[#keep + 1] = u end end
    if #keep == #list then return 'same' end
    if #keep == 0 then r[emoji] = nil else r[emoji] = keep end
  end
  if next(r) == nil then m.reactions = nil else m.reactions = r end
  return nil
end
-- a message's deleted state: no text, no reactions (reply_to and mentions stay)
local function msg_delete(m, by, at)
  m.data, m.deleted, m.by, m.reactions, m.edited = '', at, by, nil, nil
end
