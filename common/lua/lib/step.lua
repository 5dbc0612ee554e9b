-- step.lua - helper (placeholder until the lead's lands): continuation replies.
local function step_entry(name, keys, args)
  local e = {name, #keys}
  for _, k in ipairs(keys) do e[#e + 1] = k end
  for _, a in ipairs(args) do e[#e + 1] = a end
  return e
end
local function step_next(name, keys, args)
  local e = step_entry(name, keys, args)
  table.insert(e, 1, 'parley:next')
  return e
end
local function step_fork(steps, join)
  local r = {'parley:fork'}
  for _, s in ipairs(steps) do r[#r + 1] = step_entry(s[1], s[2], s[3]) end
  r[#r + 1] = step_entry(join[1], join[2], join[3])
  return r
end
