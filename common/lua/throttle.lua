-- throttle.lua - attempt budgets for logins, registrations and password changes: fixed-window
-- counters shared by every gateway.
-- Caller: the gateway (scripts_throttle; gateway/throttle.c).
--
-- KEYS  1..n counters (parley:throttle:addr:ADDR, parley:{u:NAME}:fails,
--       parley:{u:NAME}:fails:ADDR): only those whose budget applies.
-- ARGV  1 "take" or "give", 2 window ms, 2+i the budget of KEYS[i] (attempts per window, > 0).
-- take: when any counter is at its budget, nothing changes and the reply is the longest time
--       until one of those counters expires (ms, >= 1): the client is told to retry after it.
--       Else every counter is incremented (a new one expires after the window: memory holds only
--       the counters of the last window) and the reply is 0.
-- give: the attempt succeeded; every counter is decremented (deleted at 0). So the counters
--       hold failed attempts plus those still running. Reply 0.
local window = tonumber(ARGV[2])
if ARGV[1] == 'give' then
  for i = 1, #KEYS do
    if redis.call('EXISTS', KEYS[i]) == 1 and redis.call('DECR', KEYS[i]) <= 0 then
      redis.call('DEL', KEYS[i])
    end
  end
  return 0
end
local wait = 0
for i = 1, #KEYS do
  local n = tonumber(redis.call('GET', KEYS[i]) or '0')
  if n >= tonumber(ARGV[2 + i]) then
    local left = redis.call('PTTL', KEYS[i])
    if left < 0 then -- a counter without expiry (not made here): give it one
      redis.call('PEXPIRE', KEYS[i], window)
      left = window
    end
    if left > wait then wait = left end
  end
end
if wait > 0 then return wait end
for i = 1, #KEYS do
  if redis.call('INCR', KEYS[i]) == 1 then redis.call('PEXPIRE', KEYS[i], window) end
end
return 0
