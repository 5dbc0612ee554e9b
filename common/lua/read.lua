-- include: gateways fanout fan_users access
--
-- read.lua - moves a reader's read position in a conversation and sends the receipt.
-- Caller: the gateway (scripts_read).
--
-- KEYS  1 conversation history, 2 the other user's account (group: members), 3 the same as 2
--       (group: meta), 4 reader read, 5 reader unread, 6 parley:gateways, 7 reader mentions,
--       8 reader recount marks.
-- ARGV  1 reader, 2 with (user or #group), 3 is_group ("1"/"0"), 4 upto, 5 gateway channel
--       prefix, 6 the key format of a user's sessions, 7 reader's session id.
-- Access as history. Clamps upto to the newest id; if that does not move the position: {0, pos}.
-- Else sets the position, recounts unread (messages after upto not from the reader and not
-- deleted; 0 deletes the field) and mentions (those of them whose `mentions` name the reader)
-- and publishes {kind:"read", from, with, upto} as {t:"m"} (fanout) to the other
-- participant(s) and the reader, except the reading session; in a group of BROADCAST_MIN (64)
-- members or more to the reader's other sessions only (SCARD, no member read): per-member
-- receipts there cost members x readers (docs/protocol.md "Read receipts in big groups"); the
-- position and unread count are stored as in any conversation.
-- Counts: with at most SCAN messages after upto they are counted exactly (a message whose group
-- fan-out is still queued included: the fan-out then skips this reader by the mark); past that,
-- reading never raises a count: the new unread is at most the old one (send.lua counts each
-- message from another once; group.lua starts a member at the history he joined with, read, and
-- unread 0), and at most the number of messages after upto.
-- Bounded recount: besides the receipt, one call does two ZCOUNTs and decodes at most SCAN (100)
-- history entries, whatever the history holds: no more than one history page (PROTO_HISTORY_MAX),
-- so its cost follows the size of a stored message (100 x 60 KB: ~20 ms of Redis). With n =
-- messages after upto: n <= SCAN, they are counted exactly; else, when at most SCAN messages lie
-- between the old position and upto, the others' among them are taken off the old count; else
-- the SCAN first after upto are counted and the rest taken as unread (an upper bound, then capped
-- by the old count).
-- Reply {1, upto} when it moved, {0, position} when not, or "no_such_user" / "forbidden".
local SCAN = 100
local BROADCAST_MIN = 64 -- as lib/broadcast.lua: a big group
local reader, with, is_group = ARGV[1], ARGV[2], ARGV[3]
local bad = access(is_group, KEYS[2], KEYS[3], reader)
if bad then return bad end
local upto = tonumber(ARGV[4])
local top = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
local last = tonumber(top[2]) or 0
if upto > last then upto = last end
local cur = tonumber(redis.call('HGET', KEYS[4], with)) or 0
if upto <= cur then return {0, cur} end
redis.call('HSET', KEYS[4], with, upto)
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
local old = tonumber(redis.call('HGET', KEYS[5], with)) or 0
local old_men = tonumber(redis.call('HGET', KEYS[7], with)) or 0
local unread, mentioned = 0, 0
if upto < last then
  local after = redis.call('ZCOUNT', KEYS[1], '(' .. upto, '+inf')
  if after <= SCAN then
    -- exact: every message after upto is in the history (also one whose group fan-out is still
    -- queued: fanout.lua then does not count it again, by the mark below)
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
if unread == 0 then redis.call('HDEL', KEYS[5], with)
else redis.call('HSET', KEYS[5], with, unread) end
if mentioned == 0 then redis.call('HDEL', KEYS[7], with)
else redis.call('HSET', KEYS[7], with, mentioned) end
-- a group's recount saw every message up to `last` and every delete so far (meta dseq): a queued
-- fan-out step of a text up to it, or of a delete up to it, must not count it again (fanout.lua)
if is_group == '1' then
  redis.call('HSET', KEYS[8], with, last .. ' ' .. (redis.call('HGET', KEYS[3], 'dseq') or '0'))
end
local to
if is_group == '1' then
  if redis.call('SCARD', KEYS[2]) >= BROADCAST_MIN then to = {reader}
  else to = redis.call('SMEMBERS', KEYS[2]) end
elseif with == reader then to = {reader}
else to = {with, reader} end
local f = cmsgpack.pack({kind = 'read', from = reader, with = with, upto = upto})
local fan = fan_new()
fan_users(fan, to, ARGV[6], nil)
fan_publish(fan, ARGV[5], f, ARGV[7])
return {1, upto}
