-- include: epoch
--
-- session_open.lua - a session opens: it joins the user's and the gateway's session sets.
-- Caller: the gateway, after the WebSocket upgrade and before hello (scripts_session_open).
--
-- KEYS  1 user sessions, 2 user meta, 3 user inbox, 4 parley:online, 5 gateway sessions.
-- ARGV  1 user, 2 session id (gwid#connid), 3 gateway-set member (user#connid),
--       4 presence channel of the user, 5 re-open ("1": a live session opened again after a
--       reconnect or a reap, "0" or absent: a new session).
-- SADD both session sets; create the inbox epoch if missing. If the user's set went from empty
-- to one: SADD online, publish {kind:"online", from} on the presence channel, and, for a new
-- session, the offline messages are the inbox entries with seq > pushed (the ones no session has
-- been sent; those the cap kept): `from` = max(pushed, seq - LLEN inbox), and pushed then = seq.
-- The gateway fetches (from, seq] page by page with sync.lua (bounded work per call, paced by the
-- reader). With another session already open there is nothing pending (from = seq: it was sent
-- everything). A re-open gets no pending entries and leaves pushed alone:
-- the session catches up from its own last seq (a sync), and only what it was really sent may
-- count as pushed (marking everything up to seq would hide the entries stored while it was
-- out of the set from the user's next session).
-- Reply {seq, epoch, from}.
local user, sid, member, chan = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local reopen = ARGV[5] == '1'
local added = redis.call('SADD', KEYS[1], sid)
redis.call('SADD', KEYS[5], member)
local m = redis.call('HMGET', KEYS[2], 'seq', 'epoch', 'pushed')
local seq, epoch, pushed = tonumber(m[1]) or 0, m[2], tonumber(m[3]) or 0
if not epoch then
  epoch = new_epoch(user .. '|' .. sid)
  redis.call('HSET', KEYS[2], 'epoch', epoch)
end
local first = added == 1 and redis.call('SCARD', KEYS[1]) == 1
if first then
  redis.call('SADD', KEYS[4], user)
  redis.call('PUBLISH', chan, cmsgpack.pack({kind = 'online', from = user}))
end
local from = seq
if first and not reopen and seq > pushed then
  from = math.max(pushed, seq - redis.call('LLEN', KEYS[3]))
  redis.call('HSET', KEYS[2], 'pushed', seq)
end
return {seq, epoch, from}
