-- include: login_get
--
-- login_touch.lua - signed-in sessions of one user are in use now: their last-seen time moves.
-- Caller: each gateway, every --last-seen-interval, for the sessions its open sockets use
-- (scripts_login_touch). A session gone meanwhile (revoked, expired) is left alone.
--
-- KEYS  1 logins of the user (lib/login_get.lua).
-- ARGV  1 now ms, 2.. session ids.
-- Reply the number of sessions touched.
local now = tonumber(ARGV[1])
local n = 0
for i = 2, #ARGV do
  local rec = login_get(KEYS[1], ARGV[i])
  if rec then
    rec.l = now
    redis.call('HSET', KEYS[1], ARGV[i], cjson.encode(rec))
    n = n + 1
  end
end
return n
