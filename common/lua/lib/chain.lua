-- chain.lua - helper: builds a tail (lib/tail.lua): run step `name` with keys and args, then
-- what `tail` says. Every element a string or an integer (no nil: the list would end there).
local function chain(name, keys, args, tail)
  local t = {'n', name, #keys}
  for _, x in ipairs(keys) do t[#t + 1] = x end
  for _, x in ipairs(args) do t[#t + 1] = x end
  for _, x in ipairs(tail) do t[#t + 1] = x end
  return t
end
