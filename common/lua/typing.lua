-- include: gateways fanout fan_users access broadcast
--
-- typing.lua - a typing notice, to a user's sessions or to a group's other members.
-- Caller: the gateway (scripts_typing).
--
-- KEYS  1 recipient account (group: members), 2 recipient sessions (group: meta),
--       3 parley:gateways, 4 the sender's typing throttle for `to` (parley:{u:FROM}:typing:TO),
--       5 the recipient's hidden set (1:1; block.lua: a block either way refuses the notice).
-- ARGV  1 gateway channel prefix, 2 to, 3 frame (the client frame, msgpack), 4 is_group
--       ("1"/"0"), 5 sender, 6 the key format of a user's sessions, 7 throttle window ms,
--       8 throttle window ms for a group of BROADCAST_MIN (64) members or more ("0": no throttle).
-- Throttle (per sender and conversation, across all his sessions and gateways): after access,
-- and before any member is read (O(1): SCARD, SET NX PX), a notice while KEYS 4 exists is
-- dropped and the reply is 1 as if sent (typing is best effort); else KEYS 4 is set for the
-- window and the notice goes out.
-- Publishes {t:"u", u: to, f: frame} once per gateway holding a session of the recipient, or for
-- a group {t:"m", f, u: the other members} per gateway (fanout); a group of BROADCAST_MIN (64)
-- members or more gets one such envelope listing them all on every gateway (broadcast).
-- Reply 1 when sent, 0 when the user or group does not exist, -1 when the sender is not a member
-- of the group, -2 when the recipient blocks the sender or the sender blocks the recipient (1:1).
local bad = access(ARGV[4], KEYS[1], KEYS[2], ARGV[5])
if bad == 'no_such_user' then return 0 end
if bad then return -1 end
if ARGV[4] ~= '1' and redis.call('SISMEMBER', KEYS[5], ARGV[5]) == 1 then return -2 end
local window = ARGV[7]
if ARGV[4] == '1' and redis.call('SCARD', KEYS[1]) >= BROADCAST_MIN then window = ARGV[8] end
if window ~= '0' and not redis.call('SET', KEYS[4], '1', 'PX', window, 'NX') then return 1 end
if ARGV[4] == '1' then
  local others = {}
  for _, m in ipairs(redis.call('SMEMBERS', KEYS[1])) do
    if m ~= ARGV[5] then others[#others + 1] = m end
  end
  if #others + 1 >= BROADCAST_MIN then
    broadcast(KEYS[3], ARGV[1], ARGV[3], others, nil)
    return 1
  end
  local fan = fan_new()
  fan_users(fan, others, ARGV[6], nil)
  fan_publish(fan, ARGV[1], ARGV[3], nil)
  return 1
end
local env = cmsgpack.pack({t = 'u', u = ARGV[2], f = ARGV[3]})
for _, g in ipairs(gateways(redis.call('SMEMBERS', KEYS[2]), nil)) do
  redis.call('PUBLISH', ARGV[1] .. g, env)
end
return 1
