-- include: gateways
--
-- block.lua - `by` blocks or unblocks `user`.
-- Caller: the gateway (scripts_block), for a client's `block {user, on}`.
--
-- KEYS  1 by's blocks (the users he blocks), 2 by's hidden set, 3 user's hidden set, 4 user's
--       blocks, 5 user's account, 6 by's sessions, 7 user's sessions.
-- ARGV  1 by, 2 user, 3 on ("1"/"0"), 4 the most users one may block (--max-blocks; "0": no
--       limit), 5 gateway channel prefix.
-- A hidden set holds everyone in a block with its user, either way: A in B's and B in A's while
-- A blocks B or B blocks A (or both). send.lua and typing.lua refuse a 1:1 text or typing whose
-- recipient's hidden set holds the sender (forbidden); contacts.lua and the gateways hide the
-- presence of hidden users.
-- Block: user must exist (else {"error", "no_such_user", ...}); a block already there changes
-- nothing; a new one past ARGV 4 blocks answers {"error", "forbidden", ...}. Unblock always
-- succeeds (also for a user who does not exist, or was not blocked); the pair leaves both hidden
-- sets only when user does not block by as well.
-- Publishes, when a hidden set changed: {t:"h", u, p: peer, o: true/false} to each gateway that
-- holds a session of by (u = by, p = user) and of user (u = user, p = by): each gateway marks the
-- peer's presence hidden (or shown again, with its current state) for those sessions; user's
-- client is told nothing. Then, always (the requesting session's answer too): {t:"u", u: by,
-- f: {kind:"block", user, on}} to each gateway holding a session of by.
-- Work: O(1) set operations, one PUBLISH per gateway of each of the two users.
-- Reply {"ok"} or {"error", code, message}.
local by, user, on = ARGV[1], ARGV[2], ARGV[3] == '1'
local cap, prefix = tonumber(ARGV[4]) or 0, ARGV[5]
local changed = false
if on then
  if redis.call('EXISTS', KEYS[5]) == 0 then
    return {'error', 'no_such_user', 'no such user: ' .. user}
  end
  if redis.call('SISMEMBER', KEYS[1], user) == 0 then
    if cap > 0 and redis.call('SCARD', KEYS[1]) >= cap then
      return {'error', 'forbidden', 'at most ' .. cap .. ' blocked users: unblock one first'}
    end
    redis.call('SADD', KEYS[1], user)
    changed = redis.call('SADD', KEYS[2], user) == 1
    redis.call('SADD', KEYS[3], by)
  end
elseif redis.call('SREM', KEYS[1], user) == 1 and redis.call('SISMEMBER', KEYS[4], by) == 0 then
  redis.call('SREM', KEYS[2], user)
  redis.call('SREM', KEYS[3], by)
  changed = true
end
local function publish(sessions, env)
  local packed = cmsgpack.pack(env)
  for _, g in ipairs(gateways(redis.call('SMEMBERS', sessions), nil)) do
    redis.call('PUBLISH', prefix .. g, packed)
  end
end
if changed then
  publish(KEYS[6], {t = 'h', u = by, p = user, o = on})
  publish(KEYS[7], {t = 'h', u = user, p = by, o = on})
end
publish(KEYS[6], {t = 'u', u = by, f = cmsgpack.pack({kind = 'block', user = user, on = on})})
return {'ok'}
