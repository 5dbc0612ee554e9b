-- include: step tail
--
-- throttle.lua - attempt budgets for logins, registrations and password changes: fixed-window
-- counters shared by every gateway.
-- Caller: the gateway (scripts_throttle; gateway/throttle.c).
-- The counters sit in two slots (the client address's, the account's): the call is a chain of
-- up to two steps of this script, each on the counters of one slot (docs/internals.md "Scripts
-- in steps"): the address's, then the account's. A step that refuses after an earlier one took
-- runs a "give" step on that one's counters, so a refused attempt counts nowhere; a stop between
-- steps leaves the earlier counters one attempt high until their window ends.
--
-- KEYS  1..n counters of one slot (parley:throttle:addr:ADDR; or parley:{u:NAME}:fails and
--       parley:{u:NAME}:fails:ADDR): only those whose budget applies.
-- ARGV  1 "take" or "give", 2 window ms, 2+i the budget of KEYS[i] (attempts per window, > 0),
--       then m, then m counters (of one slot) the earlier step took ("take": given back when this
--       step refuses), then the tail (lib/tail.lua): what runs after this step when it does not
--       refuse.
-- take: when any counter is at its budget, nothing changes and the reply is the longest time
--       until one of those counters expires (ms, >= 1): the client is told to retry after it.
--       Else every counter is incremented (a new one expires after the window: memory holds only
--       the counters of the last window) and the reply is the tail's (0 at the end).
-- give: the attempt succeeded (or was refused by a later step); every counter is decremented
--       (deleted at 0). So the counters hold failed attempts plus those still running. Reply
--       the tail's.
local window = tonumber(ARGV[2])
local m = tonumber(ARGV[3 + #KEYS])
local tail = 4 + #KEYS + m
if ARGV[1] == 'give' then
  for i = 1, #KEYS do
    if redis.call('EXISTS', KEYS[i]) == 1 and redis.call('DECR', KEYS[i]) <= 0 then
      redis.call('DEL', KEYS[i])
    end
  end
  return tail_run(ARGV, tail)
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
if wait > 0 then
  if m == 0 then return wait end
  local taken = {}
  for j = 1, m do taken[j] = ARGV[3 + #KEYS + j] end
  local args = {'give', window}
  for _ = 1, m do args[#args + 1] = 0 end
  args[#args + 1] = 0
  args[#args + 1] = 'i'
  args[#args + 1] = wait
  return step_next('throttle', taken, args)
end
for i = 1, #KEYS do
  if redis.call('INCR', KEYS[i]) == 1 then redis.call('PEXPIRE', KEYS[i], window) end
end
return tail_run(ARGV, tail)
