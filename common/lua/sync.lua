-- sync.lua - what a session missed: the inbox entries after a seq, if they are all still there.
-- Caller: the gateway, on a client's sync and to fill a gap in deliveries (scripts_sync).
--
-- KEYS  1 user meta, 2 user inbox.
-- ARGV  1 after (the last seq the client has), 2 epoch (the inbox epoch the client knows).
-- Reply {recovered (0/1), seq, entries with seq > after...}: the entries when the epoch matches
-- and the inbox still holds seq after+1 (or after == seq: none); otherwise recovered = 0 and no
-- entries (the client starts over from the current seq).
local after, epoch = tonumber(ARGV[1]), ARGV[2]
local m = redis.call('HMGET', KEYS[1], 'seq', 'epoch')
local seq = tonumber(m[1]) or 0
if not after or m[2] ~= epoch or after > seq or after < 0 then return {0, seq} end
if after == seq then return {1, seq} end
local entries = redis.call('LRANGE', KEYS[2], -(seq - after), -1)
if #entries ~= seq - after then return {0, seq} end
local first = cmsgpack.unpack(entries[1])
if type(first) ~= 'table' or first.seq ~= after + 1 then return {0, seq} end
local out = {1, seq}
for i = 1, #entries do out[#out + 1] = entries[i] end
return out
