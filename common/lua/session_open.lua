-- include: step tail chain epoch login_get version
--
-- session_open.lua - a session opens: it joins the user's and the gateway's session sets.
-- Caller: the gateway, after the WebSocket upgrade and before hello (scripts_session_open).
-- The call is a chain of steps, each inside one slot (docs/internals.md "Scripts in steps"):
--   gw_session.lua "add"  the gateway's set (its slot);
--   session_open.lua      this step, the user's keys;
--   online.lua            parley:online and the presence announcement;
--   sessions_full.lua     the session-limit mark and its announcement;
-- and, when this step refuses the session, sessions_full.lua ("refused": only at the limit) then
-- gw_session.lua "rem" instead. A stop between steps (a lost connection, a failover) leaves:
-- after the first, a member in the gateway's set with no session in the user's (its close, or
-- the reaper / the gateway's restart, removes it); after this step, the user's set and version
-- ahead of parley:online and the mark: the next open or close of the user (the gateway's
-- re-open after Redis comes back, the socket's close) applies its version, which is as new.
--
-- KEYS  1 user sessions, 2 user meta, 3 user inbox, 4 the user's logins (signed-in sessions,
--       lib/login_get.lua).
-- ARGV  1 user, 2 session id (gwid#connid), 3 gateway-set member (user#connid),
--       4 presence channel of the user, 5 re-open ("1": a live session opened again after a
--       reconnect or a reap, "0": a new session), 6 the most live sessions a user may have
--       (--user-sessions; "0": no limit), 7 the session-limit channel, 8 the login the token
--       names (its session id; "": none, --dev-auth), 9 now ms, 10 parley:online, 11 its
--       versions (online.lua), 12 parley:sessions:full, 13 its versions (sessions_full.lua),
--       14 the gateway's session set.
-- The login: when ARGV 8 is given and KEYS 4 holds no unexpired record of it (it was revoked,
-- evicted or never made), the reply is -1 (the gateway closes the socket, 4001): a revocation
-- whose announcement a gateway missed still shuts the token out, here, at every open and
-- re-open. Otherwise its last-seen time becomes ARGV 9.
-- The limit: a session not in the user's set yet (a new one, or a re-open after a reap) while
-- the set already holds ARGV 6 sessions is refused: the user's keys do not change, and the
-- reply is the number of sessions the user has (an integer; the gateway closes the socket,
-- 4029); sessions_full.lua marks the user full and announces it. An open that brings the set to
-- the limit marks the user too, and one that finds the set below a mark clears it (a mark left
-- behind), for which gateways ask by letting an upgrade through now and then
-- (gateway/sesscap.c).
-- SADD the session (a change moves the set's version, lib/version.lua); create the inbox epoch
-- if missing. If the user's set went from empty to one, for a new session, the offline
-- messages are the inbox entries with seq > pushed (the ones no session has been sent; those
-- the cap kept): `from` = max(pushed, seq - LLEN inbox), and pushed then = seq. The gateway
-- fetches (from, seq] page by page with sync.lua (bounded work per call, paced by the reader).
-- With another session already open there is nothing pending (from = seq: it was sent
-- everything). A re-open gets no pending entries and leaves pushed alone: the session catches
-- up from its own last seq (a sync), and only what it was really sent may count as pushed
-- (marking everything up to seq would hide the entries stored while it was out of the set from
-- the user's next session). online.lua then puts the user in parley:online (announcing
-- {kind:"online", from} when the user was not there).
-- Reply {seq, epoch, from}, or an integer when refused (-1 the login, >= 0 the limit).
local user, sid, member, chan = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local reopen = ARGV[5] == '1'
local limit = tonumber(ARGV[6]) or 0
local login = ARGV[8] or ''
local full_keys = {ARGV[12], ARGV[13]}
-- the member leaves the gateway's set again, and the chain answers `reply`
local function unlisted(reply) return chain('gw_session', {ARGV[14]}, {'rem', member}, reply) end

if login ~= '' then
  local now = tonumber(ARGV[9]) or 0
  local rec = login_get(KEYS[4], login)
  if not rec or (tonumber(rec.e) or 0) <= math.floor(now / 1000) then
    return tail_run(unlisted({'i', -1}), 1)
  end
  rec.l = now
  redis.call('HSET', KEYS[4], login, cjson.encode(rec))
end

if limit > 0 and redis.call('SISMEMBER', KEYS[1], sid) == 0 then
  local n = redis.call('SCARD', KEYS[1])
  if n >= limit then
    local v = sessions_version(KEYS[2], false)
    return tail_run(chain('sessions_full', full_keys, {user, v, n, limit, 'refused', ARGV[7]},
                          unlisted({'i', n})), 1)
  end
end
local added = redis.call('SADD', KEYS[1], sid)
local v = sessions_version(KEYS[2], added == 1)
local m = redis.call('HMGET', KEYS[2], 'seq', 'epoch', 'pushed')
local seq, epoch, pushed = tonumber(m[1]) or 0, m[2], tonumber(m[3]) or 0
if not epoch then
  epoch = new_epoch(user .. '|' .. sid)
  redis.call('HSET', KEYS[2], 'epoch', epoch)
end
local count = redis.call('SCARD', KEYS[1])
local from = seq
if added == 1 and count == 1 and not reopen and seq > pushed then
  from = math.max(pushed, seq - redis.call('LLEN', KEYS[3]))
  redis.call('HSET', KEYS[2], 'pushed', seq)
end
local reply = {'a', 3, 'i', seq, 's', epoch, 'i', from}
return tail_run(chain('online', {ARGV[10], ARGV[11]}, {user, v, 1, chan},
                      chain('sessions_full', full_keys, {user, v, count, limit, 'open', ARGV[7]},
                            reply)), 1)
