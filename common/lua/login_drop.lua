-- login_drop.lua - step: the records of revoked signed-in sessions go, after revoked_add.lua
-- entered them in parley:revoked (login_revoke.lua says the chain; docs/internals.md "Scripts in
-- steps").
--
-- KEYS  1 logins of the user.
-- ARGV  1 the reply's n, 2 m, 3.. m pairs session id, expiry (Unix s).
-- HDEL each (idempotent). Reply {n, sid, exp, ...} (login_revoke.lua's).
local out = {tonumber(ARGV[1])}
for i = 1, tonumber(ARGV[2]) do
  local sid = ARGV[1 + 2 * i]
  redis.call('HDEL', KEYS[1], sid)
  out[#out + 1] = sid
  out[#out + 1] = tonumber(ARGV[2 + 2 * i])
end
return out
