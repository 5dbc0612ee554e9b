-- include: step
-- flags: no-writes
--
-- read_pos.lua - a step of read.lua on the reader's slot: his position and counts (read only).
-- Callers: read.lua, read_set.lua (the counts moved meanwhile: once more).
--
-- KEYS  1 reader read, 2 reader unread, 3 reader mentions, 4 reader meta.
-- ARGV  1 the state (msgpack, from read.lua), 2.. read.lua's ARGV.
-- When upto does not pass his position: {0, position}. Else read_hist.lua with the position, the
-- old counts and his inbox's last seq (read_set.lua looks at what came after it).
local st = cmsgpack.unpack(ARGV[1])
local with, upto = ARGV[3], tonumber(ARGV[5])
st.cur = tonumber(redis.call('HGET', KEYS[1], with)) or 0
if upto <= st.cur then return {0, st.cur} end
st.old = tonumber(redis.call('HGET', KEYS[2], with)) or 0
st.old_men = tonumber(redis.call('HGET', KEYS[3], with)) or 0
st.seq = tonumber(redis.call('HGET', KEYS[4], 'seq')) or 0
local args = {cmsgpack.pack(st)}
for i = 2, #ARGV do args[#args + 1] = ARGV[i] end
return step_next('read_hist', {ARGV[9]}, args)
