-- login_get.lua - helper: one record of a user's signed-in sessions ("logins"; the WebSocket
-- connections are "sessions" elsewhere in these scripts).
-- A user's logins are one hash (KEY_LOGINS, parley:{u:NAME}:logins): session id (32 hex digits,
-- the sid a token names) -> cjson {c = created ms, l = last seen ms, e = expiry Unix seconds (the
-- token's), a = agent}. Revoking one deletes it and, while its token is not expired, adds
-- "USER SID" to the revocation zset (parley:revoked, score = the expiry) and publishes
-- "USER SID EXP" on the revocation channel: every gateway refuses the token from memory and
-- closes its sockets (4001). Revocation entries past their expiry are removed by the next revoke.

-- the record of sid in the logins hash k, decoded, or nil (absent or unreadable)
local function login_get(k, sid)
  local raw = redis.call('HGET', k, sid)
  if not raw then return nil end
  local ok, rec = pcall(cjson.decode, raw)
  if ok and type(rec) == 'table' then return rec end
  return nil
end
