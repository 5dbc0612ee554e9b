-- members.lua - helper (after gateways, fanout, store): the deliveries of a group message to its
-- members, for send.lua and fanout.lua.
-- The deliveries of one group message, collected member by member, then published into the
-- call's buffer: for a group of BROADCAST_MIN members or more ("wide") one {t:"m", f, u, s, x}
-- listing them to every gateway in parley:gateways (each gateway picks its own sessions: no
-- lookup of each member's sessions), else one per gateway holding a session of theirs (fanout
-- helper). x: the sending session (it has its copy). sessions_fmt: a user's session set.
local BROADCAST_MIN = 64
local function members_new(wide, sessions_fmt)
  return {wide = wide, sessions_fmt = sessions_fmt, u = {}, s = {}, fan = fan_new()}
end
local function members_add(d, user, seq, skip)
  if d.wide then
    d.u[#d.u + 1], d.s[#d.s + 1] = user, seq
  else
    local ss = redis.call('SMEMBERS', string.format(d.sessions_fmt, user))
    for _, gw in ipairs(gateways(ss, skip)) do fan_add(d.fan, gw, user, seq) end
  end
end
local function members_publish(d, gateways_key, frame, x)
  if not d.wide then return fan_publish(d.fan, prefix, frame, x, emit_table) end
  if #d.u == 0 then return end
  local env = cmsgpack.pack({t = 'm', f = frame, u = d.u, s = d.s, x = x})
  for _, gw in ipairs(redis.call('SMEMBERS', gateways_key)) do emit(prefix .. gw, env) end
end
