-- broadcast.lua - helper: a frame for many users as one envelope per live gateway.
-- Looking up where each member of a big group has sessions costs one SMEMBERS per member (5,000
-- for a full group); from BROADCAST_MIN (64) members on, one {t:"m", f, u: users, x: skip?} goes
-- instead to every gateway in parley:gateways, and each delivers to the listed users it holds
-- (send.lua does the same for group messages). Work: one SMEMBERS of the gateways and one
-- PUBLISH per gateway, whatever the group's size.
local BROADCAST_MIN = 64
local function broadcast(gateways_key, prefix, frame, users, skip)
  local env = {t = 'm', f = frame, u = users}
  if skip then env.x = skip end
  local packed = cmsgpack.pack(env)
  for _, g in ipairs(redis.call('SMEMBERS', gateways_key)) do
    redis.call('PUBLISH', prefix .. g, packed)
  end
end
