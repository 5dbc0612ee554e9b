-- include: step tail chain login_all login_put
--
-- login_create.lua - a new signed-in session ("login") of a user: at register, login, password
-- change (then with the new password), and from the CLI (parley token, bulk-users).
-- Callers: the gateway's account routes and the CLI (scripts_login_create[_sync|_append]).
-- When sessions must be revoked to make room (or at a password change), the call is a chain of
-- steps, each inside one slot (docs/internals.md "Scripts in steps"): this one decides, on the
-- user's keys; revoked_add.lua enters the evicted sessions in parley:revoked and announces them;
-- login_store.lua, on the user's keys again, checks the account once more, deletes them and
-- stores the new login (what the caller answers with, so it is done last). A stop after
-- revoked_add leaves those sessions revoked and no new login (the caller retries: a new
-- attempt); with nothing to revoke this step stores the login itself.
--
-- KEYS  1 account, 2 logins of the user, 3 the user's recent creations (zset session id ->
--       creation ms).
-- ARGV  1 user, 2 session id, 3 now ms, 4 expiry (Unix seconds), 5 agent, 6 the most logins a
--       user keeps (--user-logins; the oldest are revoked to make room), 7 the revocation
--       channel, 8 the password hash the caller verified ("": no check), 9 a new password
--       hash ("": none; else it replaces the old one and every other login is revoked), 10 the
--       most logins created per window (--user-login-rate; 0: no limit, not recorded: the
--       CLI), 11 the window, ms (--user-login-window), 12 parley:revoked.
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
local exp, agent, verified, new_hash = tonumber(ARGV[4]), ARGV[5], ARGV[8] or '', ARGV[9] or ''
local acct = redis.call('HMGET', KEYS[1], 'pw', 'disabled')
if not acct[1] then return 0 end
if acct[2] == '1' then return -1 end
if verified ~= '' and acct[1] ~= verified then return -2 end
local rate, window = tonumber(ARGV[10]) or 0, tonumber(ARGV[11]) or 0
if rate > 0 and window > 0 then
  redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', now - window)
  if redis.call('ZCARD', KEYS[3]) >= rate then
    local first = redis.call('ZRANGE', KEYS[3], 0, 0, 'WITHSCORES')
    return {-3, math.max(tonumber(first[2]) + window - now, 1)}
  end
  redis.call('ZADD', KEYS[3], now, sid)
  redis.call('PEXPIRE', KEYS[3], window)
end
local all = login_all(KEYS[2], now_s)
local victims = {}
if new_hash ~= '' then
  for _, x in ipairs(all) do victims[#victims + 1] = {x[1], tonumber(x[2].e) or 0} end
else
  local n = #all
  for _, x in ipairs(all) do
    if x[1] == sid then n = n - 1 end -- replaced, not added
  end
  local i = 1
  while n >= cap and i <= #all do
    if all[i][1] ~= sid then
      victims[#victims + 1] = {all[i][1], tonumber(all[i][2].e) or 0}
      n = n - 1
    end
    i = i + 1
  end
end
if #victims == 0 then
  return login_put(KEYS[1], KEYS[2], sid, now, exp, agent, verified, new_hash, victims)
end
local flat = {}
for _, x in ipairs(victims) do
  flat[#flat + 1] = x[1]
  flat[#flat + 1] = x[2]
end
local store = {sid, now, exp, agent, verified, new_hash, #victims}
for _, x in ipairs(flat) do store[#store + 1] = x end
local revoke = {user, ARGV[7], now_s, #victims}
for _, x in ipairs(flat) do revoke[#revoke + 1] = x end
return tail_run(chain('revoked_add', {ARGV[12]}, revoke,
                      chain('login_store', {KEYS[1], KEYS[2]}, store, {})), 1)
