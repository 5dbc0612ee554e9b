-- include: step fork notify
--
-- read_set.lua - a step of read.lua on the reader's slot: the writes, then the receipt.
-- Caller: read_hist.lua.
--
-- KEYS  1 reader read, 2 reader unread, 3 reader mentions, 4 reader recount marks.
-- ARGV  1 the state (msgpack: upto, the newest id, the new counts, the group's delete count,
--       who gets the receipt), 2.. read.lua's ARGV.
-- When another read moved the position to upto or past it meanwhile: {0, position}, nothing
-- written. Else sets the position and the counts (0 deletes the field) and, for a group, the
-- recount mark "NEWEST DSEQ": a queued fan-out step of a text up to it, or of a delete up to it,
-- must not count it again (fanout.lua). Then publishes the receipt (lib/notify.lua) and answers
-- {1, upto}.
local st = cmsgpack.unpack(ARGV[1])
local reader, with, is_group = ARGV[2], ARGV[3], ARGV[4]
local cur = tonumber(redis.call('HGET', KEYS[1], with)) or 0
if st.upto <= cur then return {0, cur} end
redis.call('HSET', KEYS[1], with, st.upto)
if st.unread == 0 then redis.call('HDEL', KEYS[2], with)
else redis.call('HSET', KEYS[2], with, st.unread) end
if st.mentioned == 0 then redis.call('HDEL', KEYS[3], with)
else redis.call('HSET', KEYS[3], with, st.mentioned) end
if is_group == '1' then redis.call('HSET', KEYS[4], with, st.last .. ' ' .. st.dseq) end
local f = cmsgpack.pack({kind = 'read', from = reader, with = with, upto = st.upto})
return notify(st.to, ARGV[6], f, ARGV[8], {1, st.upto}, ARGV[14], ARGV[7])
