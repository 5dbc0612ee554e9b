-- epoch.lua - helper: a new inbox epoch.
-- Server time in microseconds plus a short hash of something unique to this call, so a lost and
-- re-created inbox never gets the epoch it had before.
local function new_epoch(uniq)
  local t = redis.call('TIME')
  return t[1] .. string.format('%06d', tonumber(t[2])) .. '-' ..
         string.sub(redis.sha1hex(uniq), 1, 8)
end
