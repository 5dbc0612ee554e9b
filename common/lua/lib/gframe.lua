-- gframe.lua - helper: a group's `group` frame, from the group's own keys (its slot, {g:#NAME}).
-- gk: {meta, members, joined, admins}; op, by, removed (nil or a sorted list): the change it
-- tells. Returns the frame (msgpack) and the members (sorted).
local function gframe(gk, name, op, by, removed)
  local members = redis.call('SMEMBERS', gk[2])
  table.sort(members)
  local admins = redis.call('ZRANGE', gk[4], 0, -1)
  table.sort(admins)
  local isopen = redis.call('HGET', gk[1], 'open') == '1'
  local owner = redis.call('HGET', gk[1], 'owner') or nil
  return cmsgpack.pack({kind = 'group', name = name, members = members, op = op, by = by,
                        open = isopen, owner = owner, admins = admins, removed = removed}), members
end
