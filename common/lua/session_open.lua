-- include: epoch login_get
--
-- session_open.lua - a session opens: it joins the user's and the gateway's session sets.
-- Caller: the gateway, after the WebSocket upgrade and before hello (scripts_session_open).
--
-- KEYS  1 user sessions, 2 user meta, 3 user inbox, 4 parley:online, 5 gateway sessions,
--       6 parley:sessions:full (hash user -> the limit the user is known to be at), 7 the user's
--       logins (signed-in sessions, lib/login_get.lua; optional).
-- ARGV  1 user, 2 session id (gwid#connid), 3 gateway-set member (user#connid),
--       4 presence channel of the user, 5 re-open ("1": a live session opened again after a
--       reconnect or a reap, "0" or absent: a new session), 6 the most live sessions a user may
--       have (--user-sessions; "0" or absent: no limit), 7 the session-limit channel, 8 the
--       login the token names (its session id; "" or absent: none, --dev-auth), 9 now ms.
-- The login: when ARGV 8 is given and KEYS 7 holds no unexpired record of it (it was revoked,
-- evicted or never made), nothing changes and the reply is -1 (the gateway closes the socket,
-- 4001): a revocation whose announcement a gateway missed still shuts the token out, here, at
-- every open and re-open. Otherwise its last-seen time becomes ARGV 9.
-- The limit: a session not in the user's set yet (a new one, or a re-open after a reap) while
-- the set already holds ARGV 6 sessions is refused: nothing changes, and the reply is the number
-- of sessions the user has (an integer; the gateway closes the socket, 4029). A refusal, or an
-- open that brings the set to the limit, marks the user as full: HSET KEYS 6 user limit (unless
-- it holds that limit or more already; a refusal always) and publishes "full USER LIMIT" on
-- ARGV 7, so every gateway answers the user's next upgrades 429 without asking Redis.
-- session_close clears the mark ("free USER") once the set is below it again; so does an open
-- that finds the set below it (a mark left behind: a close by an older script, a set changed by
-- hand), for which gateways ask by letting an upgrade through now and then (gateway/sesscap.c).
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
-- Reply {seq, epoch, from}, or an integer when refused (-1 the login, >= 0 the limit).
local user, sid, member, chan = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local reopen = ARGV[5] == '1'
local limit = tonumber(ARGV[6]) or 0
local login = ARGV[8] or ''

if login ~= '' then
  local now = tonumber(ARGV[9]) or 0
  local rec = login_get(KEYS[7], login)
  if not rec or (tonumber(rec.e) or 0) <= math.floor(now / 1000) then return -1 end
  rec.l = now
  redis.call('HSET', KEYS[7], login, cjson.encode(rec))
end

-- the user is at `limit`: mark and announce it (always when `refused`: a gateway that lets an
-- upgrade through to this script did not know). m: the mark found (0: none).
local function full(m, refused)
  if m < limit then redis.call('HSET', KEYS[6], user, limit) end
  if refused or m < limit then
    redis.call('PUBLISH', ARGV[7], 'full ' .. user .. ' ' .. math.max(m, limit))
  end
end

local mark = tonumber(redis.call('HGET', KEYS[6], user)) or 0
if limit > 0 and redis.call('SISMEMBER', KEYS[1], sid) == 0 then
  local n = redis.call('SCARD', KEYS[1])
  if n >= limit then
    full(mark, true)
    return n
  end
end
local added = redis.call('SADD', KEYS[1], sid)
redis.call('SADD', KEYS[5], member)
local m = redis.call('HMGET', KEYS[2], 'seq', 'epoch', 'pushed')
local seq, epoch, pushed = tonumber(m[1]) or 0, m[2], tonumber(m[3]) or 0
if not epoch then
  epoch = new_epoch(user .. '|' .. sid)
  redis.call('HSET', KEYS[2], 'epoch', epoch)
end
local count = redis.call('SCARD', KEYS[1])
if limit > 0 and added == 1 and count >= limit then
  full(mark, false)
elseif count < mark then -- a mark left behind
  redis.call('HDEL', KEYS[6], user)
  redis.call('PUBLISH', ARGV[7], 'free ' .. user)
end
local first = added == 1 and count == 1
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
