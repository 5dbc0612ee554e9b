-- include: pair fork
-- flags: no-writes
--
-- sync.lua - what a session missed: one bounded page of the inbox entries after a seq, if they
-- are all still there, as the frames a client gets (inbox references resolved against the
-- conversations' histories: lib/resolve.lua). Steps (docs/internals.md "Scripts in steps"),
-- each inside one hash slot:
--   sync.lua (this, on the user's tag): the inbox entries; a fork of one probe per conversation
--     the page names (sync_hist.lua "size": the size of each message it names) and per group
--     (sync_member.lua: his membership, then sync_hist.lua "size");
--   sync_cut.lua (no key): where the page ends (its bytes, from the sizes), then a fork of one
--     read per conversation of the messages the page keeps (sync_hist.lua "read");
--   sync_page.lua (no key): the frames.
-- So only the page's messages travel (as the single call read them): the probes read each
-- message in Redis for its size and send back a number.
-- Caller: the gateway, for a client's sync, the offline push after hello and to fill a gap in
-- deliveries (scripts_sync); it asks for the next page only once the session's send queue has
-- drained (back-pressure).
--
-- KEYS  1 user meta, 2 user inbox.
-- ARGV  1 after (the last seq the client has), 2 epoch (the inbox epoch the client knows),
--       3 max entries per page (N >= 1), 4 max bytes per page (B >= 1), 5 the user, 6 the key
--       format of a conversation's history (%s: the conversation key), 7 stand-ins ("1": the
--       offline push and gap fetches; else a client's sync), 8 the key format of a group's
--       members.
-- Each entry is resolved (lib/resolve.lua): a text reference becomes the message's current state
-- from its history with the entry's seq (edited data, reactions, or deleted with data ""), an
-- edit reference the edit frame with the current data (or the message's delete frame when it was
-- deleted since), a delete or react reference its frame; an old full copy stays as it is. An
-- entry whose message has left its history (its caps) cannot be resolved: with stand-ins it is
-- replayed as {kind:"gone", seq, id, with} (a kind clients do not know and ignore: the push goes
-- on past it, and the seq moves), else the answer is recovered = 0, as for entries the inbox cap
-- dropped (the client reloads through history). An entry of a group the user has left (or was
-- removed from) is {kind:"gone", ...} in every mode (lib/resolve.lua).
-- Reply (this step's when the page cannot be recovered or is empty; else the last step's)
-- {recovered (0/1), seq, entries after+1, after+2, ...}: when the epoch matches and the inbox
-- still holds seq after+1 (or after == seq: none), the first entries after `after`, at most N of
-- them and, past the first, at most B bytes in all (counted as resolved; the first is always
-- given, so a page moves on whatever an entry weighs); more remain when the last entry's seq <
-- seq. A page also ends before an entry that would need a 1,025th step. Otherwise recovered = 0
-- and no entries (the client starts over from the current seq).
-- Reads only: a stop between steps leaves nothing; the gateway asks again (as after a lost
-- connection). Steps see the state of the moment each runs (a message edited between the probe
-- and the read is replayed as it is when read; one gone by then is as one gone before).
-- Work per call: this step one HMGET, one LLEN and LRANGEs of CHUNK (8) entries until N entries
-- or B bytes (at most N entries and B + CHUNK entries' bytes read, whatever the inbox holds); a
-- probe one ZRANGEBYSCORE (O(log n)) per id, nothing sent but sizes; the reads at most the page's
-- messages (B bytes plus one message, as estimated by the sizes); the joins decode those and the
-- entries, up to N.
local CHUNK = 8
local FORK_MAX = 1024 -- steps of one fork (common/scripts_run.c)
local after, epoch = tonumber(ARGV[1]), ARGV[2]
local max_n, max_b = tonumber(ARGV[3]) or 100, tonumber(ARGV[4]) or 262144
local user, hist_fmt, stand_ins, members_fmt = ARGV[5], ARGV[6], ARGV[7] or '0', ARGV[8]
local m = redis.call('HMGET', KEYS[1], 'seq', 'epoch')
local seq = tonumber(m[1]) or 0
if not after or m[2] ~= epoch or after > seq or after < 0 then return {0, seq} end
if after == seq then return {1, seq} end
local missing = seq - after
if redis.call('LLEN', KEYS[2]) < missing then return {0, seq} end
-- the fork's steps, one per conversation (w: the peer or the #group, as the entries name it)
local steps, by_w = {}, {}
-- the step and the index in its ids of what entry e needs: 0, 0 when nothing (an old full copy,
-- a malformed entry, a delete or react reference of a 1:1); nil when it would be a new step past
-- FORK_MAX
local function plan_of(e)
  local w = e.w
  if e.kind or type(w) ~= 'string' or w == '' or type(e.id) ~= 'number' then return 0, 0 end
  local group, reads = string.byte(w, 1) == 35, e.k ~= 'd' and e.k ~= 'r'
  if not group and not reads then return 0, 0 end
  local t = by_w[w]
  if not t then
    if #steps >= FORK_MAX then return nil end
    t = {w = w, ids = {}, at = {}}
    steps[#steps + 1] = t
    t.i, by_w[w] = #steps, t
  end
  if not reads then return t.i, 0 end
  local p = t.at[e.id]
  if not p then
    t.ids[#t.ids + 1] = e.id
    p = #t.ids
    t.at[e.id] = p
  end
  return t.i, p
end
local raws, plan, bytes, idx = {}, {}, 0, -missing
local want, full = math.min(missing, max_n), false
while #raws < want and bytes < max_b and not full do
  local es = redis.call('LRANGE', KEYS[2], idx, idx + math.min(CHUNK, want - #raws) - 1)
  if #es == 0 then break end
  for i = 1, #es do
    local e = cmsgpack.unpack(es[i])
    if type(e) ~= 'table' or type(e.seq) ~= 'number' then return {0, seq} end
    if #raws == 0 and e.seq ~= after + 1 then return {0, seq} end
    local b, p = plan_of(e)
    if not b then full = true; break end -- the page ends before it
    raws[#raws + 1] = es[i]
    plan[#plan + 1], plan[#plan + 2] = b, p
    bytes = bytes + #es[i]
  end
  idx = idx + #es
end
-- the probes: each message's size (sync_hist.lua "size"), a group's membership first
local fork, convs = {}, {}
for _, t in ipairs(steps) do
  local w, args = t.w, {}
  local conv = w
  if string.byte(w, 1) ~= 35 then conv = pair_key(user, w) end
  local hist = string.format(hist_fmt, conv)
  convs[#convs + 1] = hist
  if string.byte(w, 1) == 35 then
    args[1], args[2], args[3] = user, hist, 'size'
    for _, id in ipairs(t.ids) do args[#args + 1] = id end
    fork[#fork + 1] = {'sync_member', {string.format(members_fmt, w)}, args}
  else
    args[1] = 'size'
    for _, id in ipairs(t.ids) do args[#args + 1] = id end
    fork[#fork + 1] = {'sync_hist', {hist}, args}
  end
end
local args = {stand_ins, max_b, seq, cmsgpack.pack(plan), cmsgpack.pack(convs), #raws}
for _, raw in ipairs(raws) do args[#args + 1] = raw end
return step_fork(fork, {'sync_cut', {}, args})
