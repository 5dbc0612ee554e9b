-- fork.lua - helper: a fork and join of steps (docs/internals.md "Scripts in steps"; the tail
-- call is lib/step.lua's step_next).
--   step_fork(steps, join): the reply {"parley:fork", {name, #keys, keys..., args...}...,
--   {join's}}: steps (a list of {name, keys, args}, at most 4,096) run at the same time, each on
--   the node of its first key and each possibly a chain; when all have answered, join ({name,
--   keys, args}) runs with its args followed by their last replies in the order of steps (each a
--   string, an integer, or nil given as ""; an error reply ends the call with it). A join with no
--   keys runs on any node (pure computation: it may touch no key). Keys of one step: one slot;
--   args: strings or integers (a Lua number is sent as an integer).
--   step_fork(steps, join, true): the same as {"parley:bulk", ...}: the runner queues its steps
--   (and their chains) as bulk work, served in turn with everything else, whatever their number
--   (common/scripts_run.c, dispatch: a group message's member steps).
local function step_fork(steps, join, bulk)
  local function call(s)
    local name, keys, args = s[1], s[2], s[3]
    local c = {name, #keys}
    for i = 1, #keys do c[#c + 1] = keys[i] end
    for i = 1, #args do c[#c + 1] = args[i] end
    return c
  end
  local r = {bulk and 'parley:bulk' or 'parley:fork'}
  for _, s in ipairs(steps) do r[#r + 1] = call(s) end
  r[#r + 1] = call(join)
  return r
end
