-- include: step fork notify
--
-- read_set.lua - a step of read.lua on the reader's slot: the writes, then the receipt.
-- Callers: read_hist.lua.
--
-- KEYS  1 reader read, 2 reader unread, 3 reader mentions, 4 reader recount marks, 5 reader
--       meta, 6 reader inbox.
-- ARGV  1 the state (msgpack: upto, the newest id, the new counts, the counts and inbox seq
--       read_pos.lua read, the group's delete count, who gets the receipt, tries: how many
--       times this read was counted again), 2.. read.lua's ARGV.
-- When another read moved the position to upto or past it meanwhile: {0, position}, nothing
-- written. When an entry of this conversation came into his inbox since read_pos.lua (a
-- message, a change: each counted with its entry, in one call), the recount may have looked at
-- the history before it: read_pos.lua again (at most TRIES times, and only when at most SCAN
-- entries came: each is decoded; else, or then, the recount plus the change of his counts since
-- read_pos is written: exact but for a message that came while the history was read, counted
-- twice, and never below 0). Else sets the position and the counts (0 deletes the field) and
-- the recount mark "NEWEST DSEQ" (DSEQ 0 for a 1:1): a queued fan-out step (fanout.lua) or a
-- member step of send_step.lua of a text up to it, or of a group's delete up to it, must not
-- count it again. Then publishes the receipt
-- (lib/notify.lua) and answers {1, upto}.
local TRIES = 5 -- recounts per read while entries of the conversation keep coming
local SCAN = 100 -- inbox entries looked at, at most
local st = cmsgpack.unpack(ARGV[1])
local reader, with, is_group = ARGV[2], ARGV[3], ARGV[4]
local cur = tonumber(redis.call('HGET', KEYS[1], with)) or 0
if st.upto <= cur then return {0, cur} end
-- what came into his inbox since read_pos: an entry of this conversation (or one that does not
-- say which) may be a message the recount did not see, counted already
local seq = tonumber(redis.call('HGET', KEYS[5], 'seq')) or 0
local came = seq ~= st.seq
if came and seq > st.seq and seq - st.seq <= SCAN then
  came = false
  for _, raw in ipairs(redis.call('LRANGE', KEYS[6], st.seq - seq, -1)) do
    local e = cmsgpack.unpack(raw)
    if type(e) ~= 'table' or e.w == nil or e.w == with then came = true; break end
  end
end
if came then
  st.tries = (st.tries or 0) + 1
  if st.tries < TRIES and seq > st.seq and seq - st.seq <= SCAN then
    local args = {cmsgpack.pack(st)}
    for i = 2, #ARGV do args[#args + 1] = ARGV[i] end
    return step_next('read_pos', {KEYS[1], KEYS[2], KEYS[3], KEYS[5]}, args)
  end
  local now = tonumber(redis.call('HGET', KEYS[2], with)) or 0
  local now_men = tonumber(redis.call('HGET', KEYS[3], with)) or 0
  st.unread = math.max(0, st.unread + now - st.old)
  st.mentioned = math.max(0, math.min(st.mentioned + now_men - st.old_men, st.unread))
end
redis.call('HSET', KEYS[1], with, st.upto)
if st.unread == 0 then redis.call('HDEL', KEYS[2], with)
else redis.call('HSET', KEYS[2], with, st.unread) end
if st.mentioned == 0 then redis.call('HDEL', KEYS[3], with)
else redis.call('HSET', KEYS[3], with, st.mentioned) end
redis.call('HSET', KEYS[4], with, st.last .. ' ' .. (is_group == '1' and st.dseq or 0))
local f = cmsgpack.pack({kind = 'read', from = reader, with = with, upto = st.upto})
return notify(st.to, ARGV[6], f, ARGV[8], {1, st.upto}, ARGV[14], ARGV[7])
