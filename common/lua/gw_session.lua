-- include: step tail
--
-- gw_session.lua - step: a session joins or leaves its gateway's session set (session_open.lua,
-- session_close.lua; docs/internals.md "Scripts in steps").
--
-- KEYS  1 gateway sessions (parley:gw:ID:sessions).
-- ARGV  1 "add" or "rem", 2 the member (user#connid), 3.. the tail (lib/tail.lua).
-- An open adds the member first, before the user's set (so a session in a user's set is always
-- in its gateway's, where a restarted gateway and the reaper find it to close it); a close, or
-- an open that was refused, removes it last. Idempotent (SADD, SREM).
-- Reply what the tail says.
if ARGV[1] == 'add' then
  redis.call('SADD', KEYS[1], ARGV[2])
else
  redis.call('SREM', KEYS[1], ARGV[2])
end
return tail_run(ARGV, 3)
