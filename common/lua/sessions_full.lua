-- include: step tail
--
-- sessions_full.lua - step: a user's session-limit mark in parley:sessions:full (hash user ->
-- the limit the user is at, --user-sessions) and its announcement (session_open.lua,
-- session_close.lua; docs/internals.md "Scripts in steps").
--
-- KEYS  1 parley:sessions:full, 2 parley:{parley:sessions:full}:v (hash user -> the version
--       last applied; in KEYS 1's slot).
-- ARGV  1 user, 2 the version of the user's session set (lib/version.lua), 3 the sessions in the
--       set, 4 the limit (0: none), 5 what happened: "open" (a session is in the set), "refused"
--       (an open refused at the limit), "close", 6 the session-limit channel, 7.. the tail.
-- Applied only from a version at least as new as the last applied one (online.lua says why).
-- "refused", or "open" with the set at the limit: the user is full: HSET the mark unless it
-- holds that limit or more already, and publish "full USER LIMIT" on the channel when it was
-- set, and always on a refusal (the gateway that let the upgrade through to the script did not
-- know). Else, when the set is below a mark (a close, or a mark left behind): HDEL it and
-- publish "free USER". Idempotent. Reply what the tail says.
local user, v = ARGV[1], tonumber(ARGV[2])
local count, limit, what = tonumber(ARGV[3]), tonumber(ARGV[4]), ARGV[5]
local applied = tonumber(redis.call('HGET', KEYS[2], user)) or -1
if v >= applied then
  if v > applied then redis.call('HSET', KEYS[2], user, ARGV[2]) end
  local mark = tonumber(redis.call('HGET', KEYS[1], user)) or 0
  if what == 'refused' or (what == 'open' and limit > 0 and count >= limit) then
    if mark < limit then redis.call('HSET', KEYS[1], user, limit) end
    if what == 'refused' or mark < limit then
      redis.call('PUBLISH', ARGV[6], 'full ' .. user .. ' ' .. math.max(mark, limit))
    end
  elseif mark > 0 and count < mark then
    redis.call('HDEL', KEYS[1], user)
    redis.call('PUBLISH', ARGV[6], 'free ' .. user)
  end
end
return tail_run(ARGV, 7)
