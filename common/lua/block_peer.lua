-- include: step gateways
--
-- block_peer.lua - a step of block.lua on user's slot: user's hidden set.
-- Caller: block_by.lua ("first").
--
-- KEYS  1 user's hidden set, 2 user's blocks, 3 user's sessions.
-- ARGV  block.lua's ARGV (by, user, on, cap, prefix, the keys).
-- Block: by goes into user's hidden set. Unblock: by leaves it unless user blocks by. When the
-- set changed: {t:"h", u: user, p: by, o} to user's gateways. Then block_by.lua "last", told
-- whether user blocks by. Safe to run again.
local by, user, on, prefix = ARGV[1], ARGV[2], ARGV[3] == '1', ARGV[5]
local changed, blocks = false, redis.call('SISMEMBER', KEYS[2], by) == 1
if on then changed = redis.call('SADD', KEYS[1], by) == 1
elseif not blocks then changed = redis.call('SREM', KEYS[1], by) == 1 end
if changed then
  local packed = cmsgpack.pack({t = 'h', u = user, p = by, o = on})
  for _, g in ipairs(gateways(redis.call('SMEMBERS', KEYS[3]), nil)) do
    redis.call('PUBLISH', prefix .. g, packed)
  end
end
local args = {'last'}
for i = 1, #ARGV do args[#args + 1] = ARGV[i] end
args[#args + 1] = blocks and '1' or '0'
return step_next('block_by', {ARGV[6], ARGV[7], ARGV[8]}, args)
