-- include: login_put
--
-- login_store.lua - step: stores a new signed-in session after revoked_add.lua revoked the ones
-- it evicts (login_create.lua says the chain; docs/internals.md "Scripts in steps").
--
-- KEYS  1 account, 2 logins of the user.
-- ARGV  1 session id, 2 now ms, 3 expiry (Unix s), 4 agent, 5 the password hash the caller
--       verified ("": no check), 6 a new password hash ("": none), 7 n, 8.. n pairs session
--       id, expiry: the sessions revoked.
-- Checks the account again and stores the login (lib/login_put.lua). Idempotent (HDEL, HSET).
-- Reply as login_create.lua's.
local victims = {}
for i = 1, tonumber(ARGV[7]) do
  victims[i] = {ARGV[6 + 2 * i], tonumber(ARGV[7 + 2 * i])}
end
return login_put(KEYS[1], KEYS[2], ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), ARGV[4],
                 ARGV[5], ARGV[6], victims)
