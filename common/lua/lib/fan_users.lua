-- fan_users.lua - helper (after gateways and fanout): adds every gateway that holds a session of
-- each of `users` (sessions_fmt: the key format of a user's session set) to a fan, without
-- seqs, skipping the session `skip` (may be nil).
local function fan_users(fan, users, sessions_fmt, skip)
  for _, user in ipairs(users) do
    local ss = redis.call('SMEMBERS', string.format(sessions_fmt, user))
    for _, g in ipairs(gateways(ss, skip)) do fan_add(fan, g, user, nil) end
  end
end
