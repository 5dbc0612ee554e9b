-- limits.lua - helper: the per-user send budget and the history caps, as send.lua and
-- send_step.lua both apply them (docs/internals.md "Storage caps and per-user budgets").
--
-- budget_take(key, copies, bytes, rates, bursts, now): takes one message costing `copies` inbox
-- writes and bytes x copies stored bytes from the sender's budget (KEYS budget: a hash t, m, f,
-- b: three token buckets refilled at their rate per second of Redis TIME `now` ms up to their
-- burst; rates[i] 0: that one off, kept full). nil when taken; 'rate_limited' when short (nothing
-- taken); 'too_large' when the message costs more than a burst (it could never pass). The hash
-- expires a second after every bucket is full again.
-- history_trim(history, hbytes, n, total, cap, bytes_cap): ZPOPMINs the oldest messages while
-- the history (n entries, total bytes: KEYS hbytes) holds more than cap entries or bytes_cap
-- bytes, never the newest; keeps hbytes right.
-- history_add(history, hbytes, id, base, cap, bytes_cap): a new message (its stored frame base)
-- ZADDed with score id, hbytes counted (reset when it is the only one), then history_trim.
local function budget_take(key, copies, bytes, rates, bursts, now)
  local cost = {1, copies, bytes * copies}
  local v = redis.call('HMGET', key, 't', 'm', 'f', 'b')
  local t = tonumber(v[1])
  local left, full_ms = {}, 0
  for i = 1, 3 do
    if rates[i] > 0 then
      local have = bursts[i]
      if t then
        have = math.min(bursts[i], (tonumber(v[i + 1]) or bursts[i]) + (now - t) * rates[i] / 1000)
      end
      if cost[i] > bursts[i] then return 'too_large' end -- never, whatever the wait
      if have < cost[i] then return 'rate_limited' end
      left[i] = have - cost[i]
      full_ms = math.max(full_ms, math.ceil((bursts[i] - left[i]) * 1000 / rates[i]))
    else
      left[i] = bursts[i] -- off: kept full, should it be turned on
    end
  end
  if full_ms > 0 then
    redis.call('HSET', key, 't', now, 'm', left[1], 'f', left[2], 'b', left[3])
    redis.call('PEXPIRE', key, full_ms + 1000)
  end
  return nil
end
local function history_trim(history, hbytes, n, total, cap, bytes_cap)
  if n <= cap and total <= bytes_cap then return end
  local gone = 0
  while n > 1 and (n > cap or total - gone > bytes_cap) do
    gone = gone + #redis.call('ZPOPMIN', history)[1]
    n = n - 1
  end
  if total - gone < 0 then redis.call('SET', hbytes, 0)
  else redis.call('DECRBY', hbytes, gone) end
end
local function history_add(history, hbytes, id, base, cap, bytes_cap)
  redis.call('ZADD', history, id, base)
  local n, total = redis.call('ZCARD', history), #base
  if n == 1 then redis.call('SET', hbytes, total)
  else total = redis.call('INCRBY', hbytes, total) end
  history_trim(history, hbytes, n, total, cap, bytes_cap)
end
