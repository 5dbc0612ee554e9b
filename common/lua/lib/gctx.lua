-- gctx.lua - helper: a group change's context, as the gateway gives it to group.lua (its ARGV)
-- and every later step carries it (ARGV 2 on, after the step's state in ARGV 1):
--   1 op, 2 #name, 3 by, 4 open ("1"/"0"), 5 now ms, 6 gateway channel prefix, 7 the key format
--   of a user's sessions, 8 of a user's groups, 9 member limit, 10 the key format of a user's
--   unread, 11 of a user's read, 12 the most groups a user may have created (existing ones),
--   13 the key format of a user's meta, 14 throttle window ms ("0": no throttle), 15 the key
--   format of a user's blocks, 16 of a user's mentions, 17 of a user's recount marks, 18 of a
--   user's group throttle, 19 parley:users, 20 the group's history, 21 its byte count,
--   22 parley:groups, 23 parley:gateways, 24 the key format of a user's inbox, 25.. the members
--   named.
-- A join step gets the replies of its fork after it: the state says how many names there are
-- (nm), so the context ends where they begin.
local GCTX_FIXED = 24
-- the context at ARGV[first..] with nm names (nil: to the end): its fields by name, its names
-- (named), the whole list again (list), and args(st): a next step's ARGV, its state st (a table;
-- nm set here) packed, then the context
local function gctx_read(first, nm)
  local a = {}
  local last = nm and (first + GCTX_FIXED + nm - 1) or #ARGV
  for i = first, last do a[#a + 1] = ARGV[i] end
  local c = {list = a, op = a[1], name = a[2], by = a[3], open = a[4], now = a[5], prefix = a[6],
             sessions_fmt = a[7], groups_fmt = a[8], limit = tonumber(a[9]), unread_fmt = a[10],
             read_fmt = a[11], created_max = tonumber(a[12]), meta_fmt = a[13], window = a[14],
             blocks_fmt = a[15], mentions_fmt = a[16], recount_fmt = a[17], groupop_fmt = a[18],
             users = a[19], history = a[20], bytes = a[21], groups = a[22], gateways = a[23],
             inbox_fmt = a[24], named = {}}
  for i = GCTX_FIXED + 1, #a do c.named[#c.named + 1] = a[i] end
  function c.args(st)
    st.nm = #c.named
    local out = {cmsgpack.pack(st)}
    for _, v in ipairs(a) do out[#out + 1] = v end
    return out
  end
  return c
end
