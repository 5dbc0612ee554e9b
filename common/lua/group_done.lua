-- include: step fork gctx gframe notify
--
-- group_done.lua - the last step of a change of group.lua, on the group's slot (the join of
-- group_run.lua's fork): the change is complete.
-- Callers: group_run.lua.
--
-- KEYS  1 group meta, 2 members, 3 join order, 4 admins.
-- ARGV  1 the state (msgpack: e = the change, gk; again, size: an op goes on after it),
--       2.. the context (lib/gctx.lua), then the replies of the forked steps (not read).
-- Builds the group frame of the change (its op, by, removed; the members and roles as they are
-- now); then, while the change is still listed in meta `pend` (a run that finishes it again
-- after another did changes nothing): a deleted group's keys go (meta, members, join order,
-- admins), else the change leaves the list (`pend` deleted when empty). Publishes the frame to
-- every member and to a leaver or those removed (lib/notify.lua), then answers {"ok"}; a
-- finishing run (again) goes on instead with the op that found the change unfinished, from
-- group_by.lua (its throttle taken already).
local st = cmsgpack.unpack(ARGV[1])
local c = gctx_read(2, st.nm)
local e = cmsgpack.unpack(st.e)
local f, members = gframe(st.gk, c.name, e.op, e.by, e.removed)
local raw = redis.call('HGET', KEYS[1], 'pend')
local pend, left, found = raw and cmsgpack.unpack(raw) or {}, {}, false
for _, x in ipairs(pend) do
  if x.id == e.id then found = true else left[#left + 1] = x end
end
if found then
  if e.del then redis.call('DEL', KEYS[1], KEYS[2], KEYS[3], KEYS[4])
  elseif #left == 0 then redis.call('HDEL', KEYS[1], 'pend')
  else redis.call('HSET', KEYS[1], 'pend', cmsgpack.pack(left)) end
end
for _, u in ipairs(e.extra or {}) do members[#members + 1] = u end
local reply = {'ok'}
if st.again then
  local groupop = string.format(c.groupop_fmt, c.by)
  local by_keys = {groupop, string.format(c.meta_fmt, c.by), groupop .. ':' .. c.name}
  reply = step_next('group_by', by_keys, c.args({gk = st.gk, size = st.size, throttled = true,
                                                  lim = st.lim, lgen = st.lgen}))
end
return notify(members, c.prefix, f, nil, reply, c.gateways, c.sessions_fmt)
