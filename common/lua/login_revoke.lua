-- include: step tail chain login_get login_all
--
-- login_revoke.lua - revokes signed-in sessions ("logins"): logout, logout-all, DELETE
-- /api/sessions/ID, and the CLI's revoke / disable / enable.
-- Callers: the gateway's account routes and the CLI (scripts_login_revoke[_sync]).
-- But for "enable", the call is a chain of steps, each inside one slot (docs/internals.md
-- "Scripts in steps"): this one, on the user's keys, finds the sessions (and marks a disabled
-- account); revoked_add.lua enters them in parley:revoked and announces them; login_drop.lua
-- deletes their records and answers. A stop after revoked_add leaves them refused with their
-- records still listed (a retry of the revocation finds and completes them; they expire with
-- their tokens).
--
-- KEYS  1 logins of the user, 2 account.
-- ARGV  1 user, 2 the revocation channel, 3 now ms, 4 what:
--         "one"     the session ARGV 5; when it is not there and ARGV 6 (the expiry of the token
--                   presented, seconds) is given, that token is still entered as revoked
--                   (a logout always ends its token);
--         "all"     every session;
--         "disable" the account is marked disabled (no login, no new session) and every session
--                   revoked;
--         "enable"  the mark is removed;
--       7 parley:revoked.
-- Every revocation also removes the expired entries of parley:revoked (revoked_add.lua).
-- Reply {n, sid, exp, sid, exp, ...}: n the sessions revoked ("one": 1, or 0 when there was none
-- of that id), then each session id entered as revoked with its expiry (so the caller's gateway
-- refuses them at once, before the announcement comes back to it); "enable" {1}; {-1} no such
-- account ("disable", "enable").
local user, chan, what = ARGV[1], ARGV[2], ARGV[4]
local now_s = math.floor(tonumber(ARGV[3]) / 1000)
if what == 'enable' or what == 'disable' then
  if redis.call('EXISTS', KEYS[2]) == 0 then return {-1} end
  if what == 'enable' then
    redis.call('HDEL', KEYS[2], 'disabled')
    return {1}
  end
  redis.call('HSET', KEYS[2], 'disabled', '1')
end
local n, found = 0, {}
if what == 'one' then
  local sid = ARGV[5]
  local rec = login_get(KEYS[1], sid)
  if rec then
    n = 1
    found[1] = {sid, tonumber(rec.e) or 0}
  elseif ARGV[6] and ARGV[6] ~= '' then
    found[1] = {sid, tonumber(ARGV[6]) or 0}
  end
else
  for _, x in ipairs(login_all(KEYS[1], now_s)) do
    found[#found + 1] = {x[1], tonumber(x[2].e) or 0}
  end
  n = #found
end
-- an expired token needs no revocation entry: its record just goes
local args = {user, chan, now_s, 0}
local drop = {n, 0}
for _, x in ipairs(found) do
  if x[2] > now_s then
    args[#args + 1] = x[1]
    args[#args + 1] = x[2]
    drop[#drop + 1] = x[1]
    drop[#drop + 1] = x[2]
  else
    redis.call('HDEL', KEYS[1], x[1])
  end
end
-- revoked_add runs even with none: every revocation removes the expired entries (this bounds
-- parley:revoked)
local live = (#args - 4) / 2
args[4], drop[2] = live, live
return tail_run(chain('revoked_add', {ARGV[7]}, args, chain('login_drop', {KEYS[1]}, drop, {})), 1)
