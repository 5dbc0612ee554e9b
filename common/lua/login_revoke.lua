-- include: login_get login_all revoke
--
-- login_revoke.lua - revokes signed-in sessions ("logins"): logout, logout-all, DELETE
-- /api/sessions/ID, and the CLI's revoke / disable / enable.
-- Callers: the gateway's account routes and the CLI (scripts_login_revoke[_sync]).
--
-- KEYS  1 logins of the user, 2 parley:revoked, 3 account.
-- ARGV  1 user, 2 the revocation channel, 3 now ms, 4 what:
--         "one"     the session ARGV 5; when it is not there and ARGV 6 (the expiry of the token
--                   presented, seconds) is given, that token is still entered as revoked
--                   (a logout always ends its token);
--         "all"     every session;
--         "disable" the account is marked disabled (no login, no new session) and every session
--                   revoked;
--         "enable"  the mark is removed.
-- Every revocation also removes the expired entries of parley:revoked.
-- Reply {n, sid, exp, sid, exp, ...}: n the sessions revoked ("one": 1, or 0 when there was none
-- of that id), then each session id entered as revoked with its expiry (so the caller's gateway
-- refuses them at once, before the announcement comes back to it); "enable" {1}; {-1} no such
-- account ("disable", "enable").
local user, chan, what = ARGV[1], ARGV[2], ARGV[4]
local now_s = math.floor(tonumber(ARGV[3]) / 1000)
if what == 'enable' or what == 'disable' then
  if redis.call('EXISTS', KEYS[3]) == 0 then return {-1} end
  if what == 'enable' then
    redis.call('HDEL', KEYS[3], 'disabled')
    return {1}
  end
  redis.call('HSET', KEYS[3], 'disabled', '1')
end
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now_s)
local out = {0}
local function revoke(sid, exp)
  exp = login_revoke(KEYS[1], KEYS[2], chan, user, sid, exp, now_s)
  if exp > 0 then
    out[#out + 1] = sid
    out[#out + 1] = exp
  end
end
if what == 'one' then
  local sid = ARGV[5]
  local rec = login_get(KEYS[1], sid)
  if rec then
    out[1] = 1
    revoke(sid, rec.e)
  elseif ARGV[6] and ARGV[6] ~= '' then
    revoke(sid, ARGV[6])
  end
  return out
end
local all = login_all(KEYS[1], now_s)
for _, x in ipairs(all) do revoke(x[1], x[2].e) end
out[1] = #all
return out
