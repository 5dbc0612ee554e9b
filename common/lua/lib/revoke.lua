-- revoke.lua - helper: revoking a signed-in session (the record format: lib/login_get.lua).
-- revokes sid of user: logins hash k, revocation zset rk, channel chan, exp the token's expiry
-- (seconds), now_s the time (seconds). A token already expired needs no revocation entry.
-- Returns the expiry entered, or 0 when none was needed.
local function login_revoke(k, rk, chan, user, sid, exp, now_s)
  redis.call('HDEL', k, sid)
  exp = tonumber(exp) or 0
  if exp <= now_s then return 0 end
  redis.call('ZADD', rk, exp, user .. ' ' .. sid)
  redis.call('PUBLISH', chan, user .. ' ' .. sid .. ' ' .. exp)
  return exp
end
