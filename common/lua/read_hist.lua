-- include: step
-- flags: no-writes
--
-- read_hist.lua - a step of read.lua on the conversation's slot: the newest id and the recount
-- (read only).
-- Caller: read_pos.lua.
--
-- KEYS  1 the conversation's history.
-- ARGV  1 the state (msgpack: read.lua's and read_pos.lua's), 2.. read.lua's ARGV.
-- Clamps upto to the newest id; when that does not pass the position: {0, position}. Else
-- read_set.lua with upto, the newest id and the new counts.
-- Counts: with at most SCAN messages after upto they are counted exactly (a message whose group
-- fan-out is still queued included: the fan-out then skips this reader by the mark); past that,
-- reading never raises a count: the new unread is at most the old one (send.lua counts each
-- message from another once; group.lua starts a member at the history he joined with, read, and
-- unread 0), and at most the number of messages after upto.
-- Bounded recount: two ZCOUNTs and at most SCAN (100) history entries decoded, whatever the
-- history holds: no more than one history page (PROTO_HISTORY_MAX), so its cost follows the size
-- of a stored message (100 x 60 KB: ~20 ms of Redis). With n = messages after upto: n <= SCAN,
-- they are counted exactly; else, when at most SCAN messages lie between the old position and
-- upto, the others' among them are taken off the old count; else the SCAN first after upto are
-- counted and the rest taken as unread (an upper bound, then capped by the old count).
local SCAN = 100
local st = cmsgpack.unpack(ARGV[1])
local reader = ARGV[2]
local upto = tonumber(ARGV[5])
local top = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
local last = tonumber(top[2]) or 0
if upto > last then upto = last end
local cur, old, old_men = st.cur, st.old, st.old_men
if upto <= cur then return {0, cur} end
-- messages in (lo, hi] not from the reader and not deleted, among the first SCAN; how many of
-- them mention the reader; and how many were decoded
local function others(lo, hi)
  local n, men, es = 0, 0, redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. lo, hi, 'LIMIT', 0, SCAN)
  for _, e in ipairs(es) do
    local m = cmsgpack.unpack(e)
    if type(m) == 'table' and m.from ~= reader and not m.deleted then
      n = n + 1
      if type(m.mentions) == 'table' then
        for _, u in ipairs(m.mentions) do
          if u == reader then men = men + 1; break end
        end
      end
    end
  end
  return n, men, #es
end
local unread, mentioned = 0, 0
if upto < last then
  local after = redis.call('ZCOUNT', KEYS[1], '(' .. upto, '+inf')
  if after <= SCAN then
    -- exact: every message after upto is in the history (also one whose group fan-out is still
    -- queued: fanout.lua then does not count it again, by the mark read_set.lua writes)
    unread, mentioned = others(upto, '+inf')
  elseif old > 0 or old_men > 0 then
    if redis.call('ZCOUNT', KEYS[1], '(' .. cur, upto) <= SCAN then
      local n, men = others(cur, upto)
      unread, mentioned = math.min(old - n, after), old_men - men
    else
      local n, men, seen = others(upto, '+inf')
      unread, mentioned = n + after - seen, men + after - seen
    end
    unread = math.max(0, math.min(unread, old))
    mentioned = math.max(0, math.min(mentioned, old_men, unread))
  end
end
st.upto, st.last, st.unread, st.mentioned = upto, last, unread, mentioned
local args = {cmsgpack.pack(st)}
for i = 2, #ARGV do args[#args + 1] = ARGV[i] end
return step_next('read_set', {ARGV[10], ARGV[11], ARGV[12], ARGV[13], ARGV[15], ARGV[16]},
                 args)
