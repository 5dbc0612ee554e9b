-- notify.lua - helper (after step, fork): a frame for several users delivered by steps, each on one
-- slot (issue 15): from NOTIFY_WIDE (64: a big group, as send.lua's BROADCAST_MIN) users on,
-- one envelope to every gateway (notify_all.lua: no user's sessions read); below, one
-- notify_gw.lua step per user (the gateways of his sessions, on his slot) joined by
-- notify_fan.lua (one envelope per gateway holding a session of theirs). Either way the chain
-- then answers `reply` (any value a script may return, a continuation included).
local NOTIFY_WIDE = 64
-- the continuation that delivers frame to users (skip: the session the envelopes skip, or nil),
-- then answers reply; reply itself when there is nobody. wide: one envelope to every gateway
-- (nil: when there are NOTIFY_WIDE users or more).
local function notify(users, prefix, frame, skip, reply, gateways_key, sessions_fmt, wide)
  if #users == 0 then return reply end
  local args = {prefix, frame, skip or '', cmsgpack.pack(reply)}
  if wide == nil then wide = #users >= NOTIFY_WIDE end
  if wide then
    for _, u in ipairs(users) do args[#args + 1] = u end
    return step_next('notify_all', {gateways_key}, args)
  end
  args[#args + 1] = tostring(#users)
  local forks = {}
  for _, u in ipairs(users) do
    args[#args + 1] = u
    forks[#forks + 1] = {'notify_gw', {string.format(sessions_fmt, u)}, {}}
  end
  return step_fork(forks, {'notify_fan', {gateways_key}, args})
end
