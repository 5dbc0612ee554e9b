-- include: step tail
--
-- revoked_add.lua - step: signed-in sessions enter parley:revoked and are announced
-- (login_create.lua, login_revoke.lua; the format: lib/login_get.lua; docs/internals.md "Scripts
-- in steps"). It runs before the step that deletes their records, so a stop between leaves
-- them refused (every gateway's memory, and session_open's check once they are deleted) rather
-- than usable.
--
-- KEYS  1 parley:revoked.
-- ARGV  1 user, 2 the revocation channel, 3 now (Unix s), 4 n, 5.. n pairs session id, expiry
--       (Unix s), then the tail (lib/tail.lua).
-- Removes the entries past their expiry; then for each session whose token has not expired:
-- ZADD "USER SID" with the expiry, publish "USER SID EXP" on the channel (every gateway refuses
-- the token from memory and closes its sockets, 4001). Idempotent (a second announcement is
-- harmless). Reply what the tail says.
local user, chan, now_s = ARGV[1], ARGV[2], tonumber(ARGV[3])
local n = tonumber(ARGV[4])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now_s)
for i = 1, n do
  local sid, exp = ARGV[3 + 2 * i], tonumber(ARGV[4 + 2 * i])
  if exp > now_s then
    redis.call('ZADD', KEYS[1], exp, user .. ' ' .. sid)
    redis.call('PUBLISH', chan, user .. ' ' .. sid .. ' ' .. exp)
  end
end
return tail_run(ARGV, 5 + 2 * n)
