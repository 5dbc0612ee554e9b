-- gateways.lua - helper: the distinct gateway ids of a session list.
-- A session id is "gwid#connid", split at the last '#'. Skips the session `skip` (may be nil).
local function gateways(sessions, skip)
  if #sessions == 1 then
    local s = sessions[1]
    local g = s ~= skip and string.match(s, '^(.*)#')
    if g then return {g} end
    return {}
  end
  local out, seen = {}, {}
  for _, s in ipairs(sessions) do
    if s ~= skip then
      local g = string.match(s, '^(.*)#')
      if g and not seen[g] then seen[g] = true; out[#out + 1] = g end
    end
  end
  return out
end
