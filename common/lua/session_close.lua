-- include: step tail chain version
--
-- session_close.lua - a session closes: it leaves the user's and the gateway's session sets.
-- Callers: the gateway on a close and, at its start, for the sessions a previous process of its
-- id left; the router's reaper for the sessions of a dead gateway (scripts_session_close).
-- The call is a chain of steps, each inside one slot (docs/internals.md "Scripts in steps"):
--   reap_check.lua "alive"  reaping only: the gateway's alive key (it beat again: reply -1,
--                           nothing changes);
--   session_close.lua       this step, the user's keys;
--   online.lua              parley:online and the presence announcement;
--   sessions_full.lua       the session-limit mark and its announcement;
--   gw_session.lua "rem"    the gateway's set, last: until then the reaper or the gateway's
--                           restart finds the session there and closes it again.
-- Every step is idempotent and this one always passes the user's state on, so a close run again
-- after a stop between steps completes what the first left (its reply is then 0).
--
-- KEYS  1 user sessions, 2 user meta.
-- ARGV  1 user, 2 session id (gwid#connid), 3 gateway-set member (user#connid),
--       4 presence channel of the user, 5 reaping ("1" from the reaper, else "0"),
--       6 the session-limit channel, 7 parley:online, 8 its versions (online.lua),
--       9 parley:sessions:full, 10 its versions (sessions_full.lua), 11 the gateway's set.
-- SREM the session (a change moves the set's version, lib/version.lua). If that removed it and
-- the set is now empty, on a gateway's own close (not reaping): pushed = seq (every entry so far
-- reached some session: send does not track it per message, as while a user has sessions every
-- entry is pushed to them). Reaping leaves pushed alone: the gateway may be alive (a stall made
-- its heartbeat late) with entries still on their way to the session, or dead before sending
-- them; either way nobody knows they were sent, so the user's next new session gets them again
-- in its offline push (duplicates by id are allowed, a loss is not). online.lua takes an empty
-- set's user out of parley:online (announcing {kind:"offline", from}); sessions_full.lua clears
-- a mark the set is now below (announcing "free USER").
-- Reply 1 when this closed the user's last session, 0 otherwise, -1 (reaping) as above.
local user, sid, member, chan = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local removed = redis.call('SREM', KEYS[1], sid)
local v = sessions_version(KEYS[2], removed == 1)
local count = redis.call('SCARD', KEYS[1])
local last = removed == 1 and count == 0
if last and ARGV[5] ~= '1' then
  local seq = redis.call('HGET', KEYS[2], 'seq')
  if seq then redis.call('HSET', KEYS[2], 'pushed', seq) end
end
return tail_run(chain('online', {ARGV[7], ARGV[8]}, {user, v, count > 0 and 1 or 0, chan},
                      chain('sessions_full', {ARGV[9], ARGV[10]},
                            {user, v, count, 0, 'close', ARGV[6]},
                            chain('gw_session', {ARGV[11]}, {'rem', member},
                                  {'i', last and 1 or 0}))), 1)
