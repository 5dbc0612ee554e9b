-- sync.lua - what a session missed: one bounded page of the inbox entries after a seq, if they
-- are all still there.
-- Caller: the gateway, for a client's sync, the offline push after hello and to fill a gap in
-- deliveries (scripts_sync); it asks for the next page only once the session's send queue has
-- drained (back-pressure).
--
-- KEYS  1 user meta, 2 user inbox.
-- ARGV  1 after (the last seq the client has), 2 epoch (the inbox epoch the client knows),
--       3 max entries per page (N >= 1), 4 max bytes per page (B >= 1).
-- Reply {recovered (0/1), seq, entries after+1, after+2, ...}: when the epoch matches and the
-- inbox still holds seq after+1 (or after == seq: none), the first entries after `after`, at most
-- N of them and, past the first, at most B bytes in all (the first is always given, so a page
-- moves on whatever an entry weighs); more remain when the last entry's seq < seq. Otherwise
-- recovered = 0 and no entries (the client starts over from the current seq).
-- Work per call: one HMGET, one LLEN and LRANGEs of CHUNK (8) entries until N entries or B bytes:
-- at most N entries and B + CHUNK entries' bytes read, whatever the inbox holds.
local CHUNK = 8
local after, epoch = tonumber(ARGV[1]), ARGV[2]
local max_n, max_b = tonumber(ARGV[3]) or 100, tonumber(ARGV[4]) or 262144
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
    if #out > 2 and bytes + #es[i] > max_b then bytes = max_b; break end
    out[#out + 1] = es[i]
    bytes = bytes + #es[i]
  end
  idx = idx + #es
end
local first = cmsgpack.unpack(out[3])
if type(first) ~= 'table' or first.seq ~= after + 1 then return {0, seq} end
return out
