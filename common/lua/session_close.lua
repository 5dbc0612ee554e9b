-- session_close.lua - a session closes: it leaves the user's and the gateway's session sets.
-- Callers: the gateway on a close and, at its start, for the sessions a previous process of its
-- id left; the router's reaper for the sessions of a dead gateway (scripts_session_close).
--
-- KEYS  1 user sessions, 2 parley:online, 3 gateway sessions, 4 user meta, 5 gateway alive,
--       6 parley:sessions:full (hash user -> limit, session_open.lua).
-- ARGV  1 user, 2 session id (gwid#connid), 3 gateway-set member (user#connid),
--       4 presence channel of the user, 5 reaping ("1" from the reaper, else "0"),
--       6 the session-limit channel.
-- Reaping, when the gateway's alive key exists (a late heartbeat came in between the reaper's
-- look and this call) it returns -1 and changes nothing. Otherwise SREM both; if that removed
-- the session and the user's set is now empty: SREM online, publish {kind:"offline", from} on
-- the presence channel, and, on a gateway's own close (not reaping), pushed = seq (every entry
-- so far reached some session: send does not track it per message, as while a user has
-- sessions every entry is pushed to them). Reaping leaves pushed alone: the gateway may be
-- alive (a stall made its heartbeat late) with entries still on their way to the session, or
-- dead before sending them; either way nobody knows they were sent, so the user's next new
-- session gets them again in its offline push (duplicates by id are allowed, a loss is not).
-- When that removed the session and the user is marked full (session_open.lua) with a limit
-- the set is now below: HDEL the mark and publish "free USER" on ARGV 6 (gateways take the user
-- out of the set they answer 429 for).
-- Idempotent: a second call announces nothing.
-- Reply 1 when this closed the user's last session, 0 otherwise, -1 (reaping) as above.
local user, sid, member, chan = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
if ARGV[5] == '1' and redis.call('EXISTS', KEYS[5]) == 1 then return -1 end
local removed = redis.call('SREM', KEYS[1], sid)
redis.call('SREM', KEYS[3], member)
if removed == 0 then return 0 end
local count = redis.call('SCARD', KEYS[1])
local mark = tonumber(redis.call('HGET', KEYS[6], user))
if mark and count < mark then
  redis.call('HDEL', KEYS[6], user)
  redis.call('PUBLISH', ARGV[6], 'free ' .. user)
end
if count == 0 then
  local seq = ARGV[5] ~= '1' and redis.call('HGET', KEYS[4], 'seq')
  if seq then redis.call('HSET', KEYS[4], 'pushed', seq) end
  redis.call('SREM', KEYS[2], user)
  redis.call('PUBLISH', chan, cmsgpack.pack({kind = 'offline', from = user}))
  return 1
end
return 0
