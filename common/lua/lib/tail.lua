-- tail.lua - helper: the rest of a chain of steps, carried at the end of a step's ARGV (the
-- account and session scripts; docs/internals.md "Scripts in steps"). A tail is a list:
--   'n', NAME, NKEYS, key..., arg...   run step NAME next with these KEYS and ARGV (its ARGV end
--                                      with its own tail; lib/chain.lua builds one);
--   'i', N                             the chain answers the integer N;
--   'a', COUNT, COUNT items            the chain answers an array; an item is 'i', N (an integer)
--                                      or 's', S (a string).
-- tail_run(t, i): what the tail t[i..] says: a step_next continuation (lib/step.lua) or the reply.
local function tail_run(t, i)
  local kind = t[i]
  if kind == 'n' then
    local nk = tonumber(t[i + 2])
    local keys, args = {}, {}
    for j = i + 3, i + 2 + nk do keys[#keys + 1] = t[j] end
    for j = i + 3 + nk, #t do args[#args + 1] = t[j] end
    return step_next(t[i + 1], keys, args)
  elseif kind == 'i' then
    return tonumber(t[i + 1])
  elseif kind == 'a' then
    local out, j = {}, i + 2
    for _ = 1, tonumber(t[i + 1]) do
      if t[j] == 'i' then out[#out + 1] = tonumber(t[j + 1]) else out[#out + 1] = t[j + 1] end
      j = j + 2
    end
    return out
  end
  return redis.error_reply('ERR tail: unknown kind ' .. tostring(kind))
end
