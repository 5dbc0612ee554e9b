-- login_all.lua - helper: every signed-in session of a user (the record format:
-- lib/login_get.lua).
-- every record of logins hash k as {sid, rec} sorted by creation, the expired (e <= now_s) and
-- unreadable ones deleted on the way
local function login_all(k, now_s)
  local flat = redis.call('HGETALL', k)
  local out = {}
  for i = 1, #flat, 2 do
    local ok, rec = pcall(cjson.decode, flat[i + 1])
    if ok and type(rec) == 'table' and (tonumber(rec.e) or 0) > now_s then
      out[#out + 1] = {flat[i], rec}
    else
      redis.call('HDEL', k, flat[i])
    end
  end
  table.sort(out, function(x, y)
    local cx, cy = tonumber(x[2].c) or 0, tonumber(y[2].c) or 0
    if cx ~= cy then return cx < cy end
    return x[1] < y[1]
  end)
  return out
end
