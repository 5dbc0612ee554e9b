-- version.lua - helper: the version of a user's set of live sessions (field `sv` of the user's
-- meta hash): it moves on every change of the set, and the global steps (online.lua,
-- sessions_full.lua) apply a user's state only from a version at least as new as the last they
-- applied, so two steps of one user that reach them out of order leave the newer state.
-- Server time in microseconds, and past the stored one: increasing even when the meta hash is
-- lost or its slot moves to a node whose clock is behind.
-- sessions_version(meta, changed): the version now (a new one when changed), as an integer.
local function sessions_version(meta, changed)
  local v = tonumber(redis.call('HGET', meta, 'sv')) or 0
  if not changed then return v end
  local t = redis.call('TIME')
  v = math.max(v + 1, tonumber(t[1]) * 1000000 + tonumber(t[2]))
  redis.call('HSET', meta, 'sv', string.format('%.0f', v))
  return v
end
