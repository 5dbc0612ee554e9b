-- include: step tail
--
-- online.lua - step: a user's online state in parley:online, and its announcement
-- (session_open.lua, session_close.lua; docs/internals.md "Scripts in steps").
--
-- KEYS  1 parley:online, 2 parley:{parley:online}:v (hash user -> the version last applied; the
--       tag puts it in parley:online's slot).
-- ARGV  1 user, 2 the version of the user's session set (lib/version.lua), 3 "1" when the set
--       has sessions, "0" when it is empty, 4 the user's presence channel, 5.. the tail.
-- Applied only from a version at least as new as the last applied one: an older step (a close
-- and an open of one user on two gateways, whose steps reach this one in the other order) is
-- skipped, as the newer state is already here. Applying: SADD (going online) or SREM (going
-- offline) the user, and when that changed the set, publish {kind:"online"|"offline", from} on
-- the presence channel. Idempotent: the same version again changes and announces nothing.
-- Reply what the tail says.
local user, v = ARGV[1], tonumber(ARGV[2])
local applied = tonumber(redis.call('HGET', KEYS[2], user)) or -1
if v >= applied then
  if v > applied then redis.call('HSET', KEYS[2], user, ARGV[2]) end
  if ARGV[3] == '1' then
    if redis.call('SADD', KEYS[1], user) == 1 then
      redis.call('PUBLISH', ARGV[4], cmsgpack.pack({kind = 'online', from = user}))
    end
  elseif redis.call('SREM', KEYS[1], user) == 1 then
    redis.call('PUBLISH', ARGV[4], cmsgpack.pack({kind = 'offline', from = user}))
  end
end
return tail_run(ARGV, 5)
