-- include: ref pair resolve
--
-- sync.lua - what a session missed: one bounded page of the inbox entries after a seq, if they
-- are all still there, as the frames a client gets (inbox references resolved against the
-- conversations' histories: lib/message.lua).
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
-- Each entry is resolved (ref_resolve): a text reference becomes the message's current state
-- from its history with the entry's seq (edited data, reactions, or deleted with data ""), an
-- edit reference the edit frame with the current data (or the message's delete frame when it was
-- deleted since), a delete or react reference its frame; an old full copy stays as it is. An
-- entry whose message has left its history (its caps) cannot be resolved: with stand-ins it is
-- replayed as {kind:"gone", seq, id, with} (a kind clients do not know and ignore: the push goes
-- on past it, and the seq moves), else the answer is recovered = 0, as for entries the inbox cap
-- dropped (the client reloads through history). An entry of a group the user has left (or was
-- removed from) is {kind:"gone", ...} in every mode (lib/resolve.lua). The history and member
-- reads touch keys this script does not declare (like send.lua's member keys): one Redis, not a
-- cluster.
-- Reply {recovered (0/1), seq, entries after+1, after+2, ...}: when the epoch matches and the
-- inbox still holds seq after+1 (or after == seq: none), the first entries after `after`, at most
-- N of them and, past the first, at most B bytes in all (counted as resolved; the first is always
-- given, so a page
-- moves on whatever an entry weighs); more remain when the last entry's seq < seq. Otherwise
-- recovered = 0 and no entries (the client starts over from the current seq).
-- Work per call: one HMGET, one LLEN and LRANGEs of CHUNK (8) entries until N entries or B bytes:
-- at most N entries and B + CHUNK entries' bytes read, whatever the inbox holds; each a decode and
-- at most one ZRANGEBYSCORE (O(log n)) of one history entry, decoded and packed again.
local CHUNK = 8
local after, epoch = tonumber(ARGV[1]), ARGV[2]
local max_n, max_b = tonumber(ARGV[3]) or 100, tonumber(ARGV[4]) or 262144
local user, hist_fmt, stand_ins = ARGV[5], ARGV[6], ARGV[7] == '1'
local members_fmt, memberships = ARGV[8], {}
-- whether user is in group g now (once per group per call)
local function member(g)
  if memberships[g] == nil then
    memberships[g] = not members_fmt or
                     redis.call('SISMEMBER', string.format(members_fmt, g), user) == 1
  end
  return memberships[g]
end
local m = redis.call('HMGET', KEYS[1], 'seq', 'epoch')
local seq = tonumber(m[1]) or 0
if not after or m[2] ~= epoch or after > seq or after < 0 then return {0, seq} end
if after == seq then return {1, seq} end
local missing = seq - after
if redis.call('LLEN', KEYS[2]) < missing then return {0, seq} end
local out, bytes, idx = {1, seq}, 0, -missing
local want = math.min(missing, max_n)
while #out - 2 < want and bytes < max_b do
  local n = math.min(CHUNK, want - (#out - 2))
  local es = redis.call('LRANGE', KEYS[2], idx, idx + n - 1)
  if #es == 0 then break end
  for i = 1, #es do
    local e = cmsgpack.unpack(es[i])
    if type(e) ~= 'table' or type(e.seq) ~= 'number' then return {0, seq} end
    if #out == 2 and e.seq ~= after + 1 then return {0, seq} end
    local f = ref_resolve(user, e, hist_fmt, member)
    if not f then -- its message left the history
      if not stand_ins then return {0, seq} end
      f = {kind = 'gone', seq = e.seq, id = e.id, with = e.w}
    end
    if not e.kind then f = cmsgpack.pack(f) else f = es[i] end
    if #out > 2 and bytes + #f > max_b then bytes = max_b; break end
    out[#out + 1] = f
    bytes = bytes + #f
  end
  idx = idx + #es
end
return out
