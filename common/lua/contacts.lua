-- include: step
-- flags: no-writes
--
-- contacts.lua - one page of the list a session's hello carries: people and groups, with their
-- counters and a preview of each conversation's newest message. Steps (docs/internals.md "Scripts
-- in steps"), each inside one hash slot:
--   contacts.lua (this, on parley:users): the mode, and the page's names in everyone mode;
--   contacts_list.lua (the user's tag): the contacts and groups sets, the member phase's order;
--     contacts_members.lua (a group's tag) reads a batch of its members, contacts_in.lua (each
--     other group's tag, a fork) tells which of them are in a group listed before, and
--     contacts_list.lua again keeps the others and goes on;
--   contacts_online.lua (parley:online): the people's presence, then one fork for the entries:
--   contacts_peer.lua per person (his read position in the conversation), contacts_last.lua per
--   conversation (its newest message), contacts_group.lua per group (roles, and whether another
--   member is online: with the online users when few, else contacts_gonline.lua, maybe
--   contacts_group.lua again); their join contacts_page.lua (the user's tag) adds the user's
--   counters and answers.
-- The state of the page travels from step to step as one msgpack map (S below).
-- Caller: the gateway, for hello and the `users` pages after it (scripts_contacts), one page a
-- call, the next asked for once the session drained.
--
-- KEYS  1 parley:users.
-- ARGV  1 user, 2 everyone-limit, 3 the key format of a group's members, 4 the key format of a
--       user's read, 5 the key format of a conversation's history, 6 cursor ("" or "0" for the
--       first page), 7 page size n, 8 preview bytes, 9 the key format of a group's meta, 10 the
--       key format of a group's admins (group.lua), 11 parley:online, then the user's keys:
--       12 contacts, 13 groups, 14 unread, 15 read, 16 hidden set, 17 blocks (block.lua),
--       18 mentions.
-- The list: if ZCARD users <= limit, everyone but the user (mode 1: ZRANGE by index), then the
-- user's groups; else (mode 0) the user's contacts set (his 1:1 conversations), then his groups,
-- then the members of each of his groups (protocol.md: "A user's contacts are everyone they
-- share a 1:1 conversation or a group with"), skipping the user and his 1:1 contacts (listed
-- already). Groups come by name (more than SMALL: in SSCAN order, COUNT 16), each group's
-- members by name (more than SMALL: SSCAN). A member of two groups is listed once when the user
-- has at most DEDUP (32) groups (each candidate is looked up in the groups before his, by
-- name); with more, once per group (clients merge entries by name). The cursor says where the
-- next page starts: "u:<index>", "c:<sscan cursor>", "g:<sscan cursor>" (a set of up to SMALL
-- (128) members is read whole and paged by name instead: "C:<last name>", "G:<last name>"),
-- "m:..." (the member phase, contacts_list.lua); "" when the list is done. A page takes from the
-- next phase (and the next group) when one ends with room left (at most STEPS (8) set reads), so
-- a short list is one page. A page holds at most PAGE_MAX (500) entries whatever n (its reads
-- are one fork of at most 1,024 steps), and in the member phase at most n members are looked at
-- per batch (those left out by the checks leave the page shorter).
-- Reply (contacts_page.lua's) {mode, next cursor, blocked, then per entry: name, online, unread,
-- read, peer_read, last, roles, mentions}:
-- blocked is the users the user blocks (at most --max-blocks, sorted) on the first page, an empty
-- array on the others; a person's online is -1 (shown offline) when he is in the user's hidden set
-- (a block either way: the gateway hides his presence from this session too); last is
-- the conversation's newest history entry (its current state: a deleted one has data "") with
-- its data cut to the preview bytes on a UTF-8 boundary and truncated = true when cut, and no
-- reactions (re-packed) when it weighs more than the preview bytes, or "" when there is none;
-- mentions: the user's count of unread messages that mention him there (send.lua, read.lua);
-- for a group online = another member is online, peer_read 0.
-- roles: 0 for a person; for a group {owner ("" when the meta has none: a group from before
-- roles not changed since, or an empty one), role (the user's own: "owner", "admin" or
-- "member"), more (1 when the admins were cut, else 0), admins}: admins are the ADMINS_MAX (32)
-- promoted earliest (the heirs in order), sorted by name; more says there are others.
-- unread and read are as stored: send.lua and read.lua keep them, group.lua starts a member's at
-- his join (read = the group's newest id then, unread absent) and deletes them when he leaves.
-- Reads only: a stop between steps leaves nothing (the gateway asks for the page again, as after
-- a lost connection); each step sees the state of the moment it runs.
-- Work per call: this step one ZCARD and at most one ZRANGE of n names; the others say theirs
-- (each bounded as the single call was: at most n entries, STEPS set reads, 4n members looked
-- at, a group's online flag at most EXACT_MAX (1,024) membership tests).
local PAGE_MAX = 500
local user, limit, cursor = ARGV[1], tonumber(ARGV[2]), ARGV[6] or ''
local n = math.min(tonumber(ARGV[7]) or 100, PAGE_MAX)
local S = {
  u = user, n = n, pv = tonumber(ARGV[8]) or 256, fm = ARGV[3], fr = ARGV[4], fh = ARGV[5],
  fmeta = ARGV[9], fadm = ARGV[10], ko = ARGV[11], kc = ARGV[12], kg = ARGV[13], kun = ARGV[14],
  krd = ARGV[15], khid = ARGV[16], kbl = ARGV[17], kmen = ARGV[18],
  mode = 0, first = false, steps = 0, looked = 0, names = {}, groups = {}, members = {},
}
if redis.call('ZCARD', KEYS[1]) <= limit then S.mode = 1 end
if cursor == '' or cursor == '0' then
  S.first = true
  if S.mode == 1 then cursor = 'u:0' else cursor = 'c:0' end
end
-- everyone mode: the first phase, the users by index (the user himself counts among the n)
local pos = string.match(cursor, '^u:(.*)$')
if pos then
  local i = tonumber(pos)
  if not i then return redis.error_reply('contacts: bad cursor') end
  S.steps = 1
  local got = redis.call('ZRANGE', KEYS[1], i, i + n - 1)
  for _, u in ipairs(got) do S.names[#S.names + 1] = u end
  if #got < n then cursor = 'g:0' else cursor = 'u:' .. (i + n) end
end
S.cur = cursor
return step_next('contacts_list', {S.kc, S.kg, S.kbl}, {cmsgpack.pack(S)})
