-- include: login_all
--
-- login_list.lua - a user's signed-in sessions ("logins"), oldest first; expired ones are deleted
-- on the way. Callers: the gateway (GET /api/sessions) and the CLI (parley sessions).
--
-- KEYS  1 logins of the user.
-- ARGV  1 now ms.
-- Reply a flat array: sid, created ms, last seen ms, agent, expiry (seconds), for each session.
local now_s = math.floor(tonumber(ARGV[1]) / 1000)
local out = {}
for _, x in ipairs(login_all(KEYS[1], now_s)) do
  local r = x[2]
  out[#out + 1] = x[1]
  out[#out + 1] = tonumber(r.c) or 0
  out[#out + 1] = tonumber(r.l) or 0
  out[#out + 1] = tostring(r.a or '')
  out[#out + 1] = tonumber(r.e) or 0
end
return out
