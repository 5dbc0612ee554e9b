-- include: step fork gctx
--
-- group_run.lua - a step of group.lua on the group's conversation slot ({c:#NAME}): what a
-- change listed in meta `pend` leaves to do, forked to each user's slot.
-- Callers: group_apply.lua (a change just made, or an earlier one it finishes first).
--
-- KEYS  1 the group's history, 2 its byte count.
-- ARGV  1 the state (msgpack: e = the change, as listed in `pend`; gk = the group's keys;
--       again, size: an op goes on after it, group_done.lua), 2.. the context (lib/gctx.lua).
-- The group deleted (del): its history and byte count go (UNLINK: freed off the main thread).
-- Users added: the history's newest id, read here (after they became members: a message stored
-- since is theirs, with a higher id, counted by its send). Then, forked: group_member.lua for
-- each user added or dropped and for the creator of a deleted group, group_index.lua when the
-- search entry changes; their join is group_done.lua.
-- Safe to run again (UNLINK of what is gone; the forked steps are).
local st = cmsgpack.unpack(ARGV[1])
local c = gctx_read(2, st.nm)
local e = cmsgpack.unpack(st.e)
local newest = ''
if e.del then redis.call('UNLINK', KEYS[1], KEYS[2])
elseif #e.add > 0 then
  newest = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')[2] or ''
end
local function keys_of(u)
  return {string.format(c.groups_fmt, u), string.format(c.read_fmt, u),
          string.format(c.unread_fmt, u), string.format(c.mentions_fmt, u),
          string.format(c.recount_fmt, u), string.format(c.meta_fmt, u),
          string.format(c.inbox_fmt, u)}
end
local forks = {}
for _, u in ipairs(e.add) do
  local made = u == e.made and '1' or '0'
  forks[#forks + 1] = {'group_member', keys_of(u), {'add', c.name, newest, made}}
end
for _, u in ipairs(e.drop) do
  forks[#forks + 1] = {'group_member', keys_of(u), {'drop', c.name, '', '0'}}
end
if e.del and e.creator then
  forks[#forks + 1] = {'group_member', keys_of(e.creator), {'unmade', c.name, '', '0'}}
end
if e.index then forks[#forks + 1] = {'group_index', {c.groups}, {e.index, c.name}} end
local join = {'group_done', st.gk, c.args(st)}
if #forks == 0 then return step_next(join[1], join[2], join[3]) end
return step_fork(forks, join)
