-- include: login_all revoke
--
-- login_create.lua - a new signed-in session ("login") of a user: at register, login, password
-- change (then with the new password), and from the CLI (parley token, bulk-users).
-- Callers: the gateway's account routes and the CLI (scripts_login_create[_sync|_append]).
--
-- KEYS  1 account, 2 logins of the user, 3 parley:revoked, 4 the user's recent creations (zset
--       session id -> creation ms).
-- ARGV  1 user, 2 session id, 3 now ms, 4 expiry (Unix seconds), 5 agent, 6 the most logins a
--       user keeps (--user-logins; the oldest are revoked to make room), 7 the revocation
--       channel, 8 the password hash the caller verified ("" none: no check), 9 a new password
--       hash ("" none; else it replaces the old one and every other login is revoked), 10 the
--       most logins created per window (--user-login-rate; 0 or absent: no limit, not recorded:
--       the CLI), 11 the window, ms (--user-login-window).
-- Expired logins are deleted first; then, while the user holds ARGV 6 or more, the oldest (by
-- creation) is revoked. A session id that exists already is replaced (the CLI's bulk session).
-- Reply {1, sid, exp, sid, exp, ...} created, then every session id entered as revoked with its
-- token's expiry (s; as login_revoke's reply: the caller enters them before it answers); 0 no
-- such account; -1 the account is disabled (nothing changes);
-- -2 the password is no longer ARGV 8 (it changed meanwhile; nothing changes);
-- {-3, ms}: ARGV 10 logins were created within the last window; the next may be created in ms
-- (nothing changes). This bounds parley:revoked: every entry is a session created within one
-- token lifetime (docs/internals.md).
local user, sid = ARGV[1], ARGV[2]
local now = tonumber(ARGV[3])
local now_s = math.floor(now / 1000)
local cap = math.max(tonumber(ARGV[6]) or 1, 1)
local acct = redis.call('HMGET', KEYS[1], 'pw', 'disabled')
if not acct[1] then return 0 end
if acct[2] == '1' then return -1 end
if (ARGV[8] or '') ~= '' and acct[1] ~= ARGV[8] then return -2 end
local rate, window = tonumber(ARGV[10]) or 0, tonumber(ARGV[11]) or 0
if rate > 0 and window > 0 then
  redis.call('ZREMRANGEBYSCORE', KEYS[4], '-inf', now - window)
  if redis.call('ZCARD', KEYS[4]) >= rate then
    local first = redis.call('ZRANGE', KEYS[4], 0, 0, 'WITHSCORES')
    return {-3, math.max(tonumber(first[2]) + window - now, 1)}
  end
  redis.call('ZADD', KEYS[4], now, sid)
  redis.call('PEXPIRE', KEYS[4], window)
end
redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', now_s)
local all = login_all(KEYS[2], now_s)
local out = {1}
local function revoked(x)
  local e = login_revoke(KEYS[2], KEYS[3], ARGV[7], user, x[1], x[2].e, now_s)
  if e > 0 then
    out[#out + 1] = x[1]
    out[#out + 1] = e
  end
end
if (ARGV[9] or '') ~= '' then
  redis.call('HSET', KEYS[1], 'pw', ARGV[9])
  for _, x in ipairs(all) do revoked(x) end
  all = {}
end
local n = #all
for _, x in ipairs(all) do
  if x[1] == sid then n = n - 1 end -- replaced, not added
end
local i = 1
while n >= cap and i <= #all do
  if all[i][1] ~= sid then
    revoked(all[i])
    n = n - 1
  end
  i = i + 1
end
redis.call('HSET', KEYS[2], sid,
           cjson.encode({c = now, l = now, e = tonumber(ARGV[4]), a = ARGV[5]}))
return out
