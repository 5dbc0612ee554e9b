-- login_put.lua - helper: stores a new signed-in session (the record format: lib/login_get.lua)
-- once the sessions it evicts are revoked (login_create.lua, login_store.lua).
-- login_put(account, logins, sid, now, exp, agent, verified, new_hash, victims): checks the
-- account again (the step may run after another changed it): 0 none, -1 disabled, -2 its
-- password is no longer `verified` ("": no check); with new_hash ("": none) it becomes the
-- password and every other login is deleted (the victims, revoked before, and any made since).
-- Deletes the victims ({sid, exp} each), stores sid's record {c, l = now, e = exp, a = agent}.
-- Returns {1, sid, exp, ...} with the victims, or the integer above.
local function login_put(acct_k, logins_k, sid, now, exp, agent, verified, new_hash, victims)
  local acct = redis.call('HMGET', acct_k, 'pw', 'disabled')
  if not acct[1] then return 0 end
  if acct[2] == '1' then return -1 end
  if verified ~= '' and acct[1] ~= verified then return -2 end
  if new_hash ~= '' then
    redis.call('HSET', acct_k, 'pw', new_hash)
    for _, other in ipairs(redis.call('HKEYS', logins_k)) do
      if other ~= sid then redis.call('HDEL', logins_k, other) end
    end
  end
  local out = {1}
  for _, x in ipairs(victims) do
    redis.call('HDEL', logins_k, x[1])
    out[#out + 1] = x[1]
    out[#out + 1] = x[2]
  end
  redis.call('HSET', logins_k, sid, cjson.encode({c = now, l = now, e = exp, a = agent}))
  return out
end
