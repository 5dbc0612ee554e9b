-- include: step gctx gframe notify
--
-- group_done.lua - the last step of group.lua on the group's slot (the join of group_run.lua's
-- fork): the change is complete.
-- Callers: group_run.lua.
--
-- KEYS  1 group meta, 2 members, 3 join order, 4 admins.
-- ARGV  1 the state (msgpack: p = the `pend` value, gk, again), 2.. the context (lib/gctx.lua),
--       then the replies of the forked steps (not read).
-- Builds the group frame of the change (its op, by, removed; the members and roles as they are
-- now); then, only while meta `pend` is still this change's (a step run again after another
-- finished it changes nothing): a deleted group's keys go (meta, join order, admins), else
-- `pend` is cleared. Publishes the frame to every member and to a leaver or those removed
-- (lib/notify.lua), then answers {"ok"}; a finishing run (again) starts its own op from the
-- first step instead (group.lua).
local st = cmsgpack.unpack(ARGV[1])
local c = gctx_read(2, st.nm)
local p = cmsgpack.unpack(st.p)
local f, members = gframe(st.gk, c.name, p.op, p.by, p.removed)
if redis.call('HGET', KEYS[1], 'pend') == st.p then
  if p.del then redis.call('DEL', KEYS[1], KEYS[2], KEYS[3], KEYS[4])
  else redis.call('HDEL', KEYS[1], 'pend') end
end
for _, u in ipairs(p.extra or {}) do members[#members + 1] = u end
local reply = {'ok'}
if st.again then reply = step_next('group', st.gk, c.list) end
return notify(members, c.prefix, f, nil, reply, c.gateways, c.sessions_fmt)
