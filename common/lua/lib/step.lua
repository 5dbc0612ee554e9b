-- step.lua - helper: the tail call of a script split into steps (docs/internals.md "Scripts in
-- steps"). On a Redis Cluster a script may touch the keys of one hash slot only, so work that
-- spans tags (a user's and a conversation's, a group's and its members') is a chain of scripts,
-- each inside one slot. A step ends by answering what runs next; the C runner
-- (common/scripts_run.c) runs it, on the node of its first key, and its caller gets the last
-- step's reply only.
--   step_next(name, keys, args): the reply {"parley:next", name, #keys, keys..., args...}: run
--   common/lua/NAME.lua with these KEYS and ARGV. keys: one slot (the runner refuses more);
--   args: strings or integers (a Lua number is sent as an integer: format others with
--   tostring).
local function step_call(name, keys, args)
  local r = {name, #keys}
  for i = 1, #keys do r[#r + 1] = keys[i] end
  for i = 1, #args do r[#r + 1] = args[i] end
  return r
end
local function step_next(name, keys, args)
  local r = step_call(name, keys, args)
  table.insert(r, 1, 'parley:next')
  return r
end
