-- include: step fork gctx
-- flags: no-writes
--
-- group_users.lua - a step of group.lua on parley:users: whether every name exists; then whether
-- any blocks by (one group_blocks.lua step per name, forked, joined by group_apply.lua).
-- Caller: group_by.lua (create and add with names).
--
-- KEYS  1 parley:users.
-- ARGV  1 the state (msgpack), 2.. the context (lib/gctx.lua).
-- Reads only. The first name that is no user goes into the state (missing): group_apply.lua
-- refuses it (no blocks are looked up then).
local st = cmsgpack.unpack(ARGV[1])
local c = gctx_read(2, st.nm)
local scores = redis.call('ZMSCORE', KEYS[1], unpack(c.named))
for i, s in ipairs(c.named) do
  if not scores[i] then st.missing = s; break end
end
local forks, seen = {}, {[c.by] = true}
if not st.missing then
  for _, u in ipairs(c.named) do
    if not seen[u] then
      seen[u] = true
      forks[#forks + 1] = {'group_blocks', {string.format(c.blocks_fmt, u)}, {c.by}}
    end
  end
end
if #forks == 0 then return step_next('group_apply', st.gk, c.args(st)) end
return step_fork(forks, {'group_apply', st.gk, c.args(st)})
