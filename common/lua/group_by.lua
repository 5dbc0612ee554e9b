-- include: step gctx
--
-- group_by.lua - a step of group.lua on by's slot: the throttle, and how many groups by created.
-- Callers: group.lua, group_done.lua (an op again after an earlier change was finished).
--
-- KEYS  1 by's group throttle (parley:{u:BY}:groupop), 2 by's meta, 3 by's join/leave throttle
--       for this group (parley:{u:BY}:groupop:#NAME).
-- ARGV  1 the state (msgpack: gk, size, nm; jl: a join or leave that changes the membership;
--       throttled: the op comes again after an earlier change was finished, its throttles taken;
--       lim: see group_apply.lua), 2.. the context (lib/gctx.lua).
-- An op of size BROADCAST_MIN (64) or more while KEYS 1 exists: {"error", "rate_limited", ...},
-- nothing changed; else KEYS 1 is set for the window. A join or leave that changes the
-- membership (any group size) while KEYS 3 exists: {"error", "rate_limited", ...}, nothing
-- changed; else KEYS 3 is set for the window (one SET NX PX: so one user's join/leave flood on a
-- group makes at most one change per window). create: by's count of groups created goes into
-- the state. Then group_users.lua (create / add with names) or group_apply.lua.
local BROADCAST_MIN = 64 -- as lib/notify.lua's NOTIFY_WIDE: a big group
local st = cmsgpack.unpack(ARGV[1])
local c = gctx_read(2, st.nm)
if not st.throttled and st.size >= BROADCAST_MIN and c.window ~= '0'
   and not redis.call('SET', KEYS[1], '1', 'PX', c.window, 'NX') then
  return {'error', 'rate_limited', 'at most one change of a group of ' .. BROADCAST_MIN ..
          ' members or more per ' .. c.window .. ' ms: retry later'}
end
if st.jl and not st.throttled and c.window ~= '0'
   and not redis.call('SET', KEYS[3], '1', 'PX', c.window, 'NX') then
  return {'error', 'rate_limited', 'at most one join or leave of ' .. c.name .. ' per ' ..
          c.window .. ' ms: retry after it'}
end
-- a join or leave that changes nothing (group.lua) within the window of by's change of this group
-- finishes no pending change first (group_apply.lua): that change's own chain is likely still
-- running, and running its steps again beside it sent its frames again and lowered the creator's
-- count of groups more than once (tester15b F3b); after the window it does (a stopped change)
if st.jlq and c.window ~= '0' and redis.call('EXISTS', KEYS[3]) == 1 then st.nopend = true end
if c.op == 'create' then st.made = tonumber(redis.call('HGET', KEYS[2], 'groups')) or 0 end
if (c.op == 'create' or c.op == 'add') and #c.named > 0 then
  return step_next('group_users', {c.users}, c.args(st))
end
return step_next('group_apply', st.gk, c.args(st))
