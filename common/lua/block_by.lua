-- include: step gateways
--
-- block_by.lua - a step of block.lua on by's slot: "first" (the cap, by's blocks and hidden set)
-- or "last" (an unblock's end of by's hidden set; the answer).
-- Callers: block.lua ("first"), block_peer.lua ("last").
--
-- KEYS  1 by's blocks, 2 by's hidden set, 3 by's sessions.
-- ARGV  1 "first" or "last", 2.. block.lua's ARGV (by, user, on, cap, prefix, the keys), then
--       for "last" user's answer from block_peer.lua: "1" when user blocks by, else "0".
-- first, block: over the cap (a new block) {"error", "forbidden", ...}, nothing changed; else
-- user goes into by's blocks and hidden set ({t:"h"} to by's gateways when the hidden set
-- changed); unblock: user leaves by's blocks. Then block_peer.lua.
-- last: an unblock takes user off by's hidden set unless user blocks by or by blocks user again
-- ({t:"h"} when it changed); then the `block` frame to by's gateways and the reply {"ok"}.
-- Safe to run again (set adds and removes; a changed set is announced once).
local phase, by, user, on = ARGV[1], ARGV[2], ARGV[3], ARGV[4] == '1'
local cap, prefix = tonumber(ARGV[5]) or 0, ARGV[6]
local function publish(env)
  local packed = cmsgpack.pack(env)
  for _, g in ipairs(gateways(redis.call('SMEMBERS', KEYS[3]), nil)) do
    redis.call('PUBLISH', prefix .. g, packed)
  end
end
local changed = false
if phase == 'first' then
  if on then
    if redis.call('SISMEMBER', KEYS[1], user) == 0 then
      if cap > 0 and redis.call('SCARD', KEYS[1]) >= cap then
        return {'error', 'forbidden', 'at most ' .. cap .. ' blocked users: unblock one first'}
      end
      redis.call('SADD', KEYS[1], user)
    end
    changed = redis.call('SADD', KEYS[2], user) == 1
  else
    redis.call('SREM', KEYS[1], user)
  end
  if changed then publish({t = 'h', u = by, p = user, o = true}) end
  local args = {}
  for i = 2, #ARGV do args[#args + 1] = ARGV[i] end
  return step_next('block_peer', {ARGV[10], ARGV[11], ARGV[12]}, args)
end
if not on and ARGV[13] ~= '1' and redis.call('SISMEMBER', KEYS[1], user) == 0 then
  changed = redis.call('SREM', KEYS[2], user) == 1
  if changed then publish({t = 'h', u = by, p = user, o = false}) end
end
publish({t = 'u', u = by, f = cmsgpack.pack({kind = 'block', user = user, on = on})})
return {'ok'}
