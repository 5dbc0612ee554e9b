-- include: step gctx
-- flags: no-writes
--
-- group.lua - creates a group, or joins, leaves, adds, removes, promotes or demotes members: the
-- first step of a chain whose steps each stay on one slot (issue 15; docs/internals.md "Scripts
-- in steps").
-- Caller: the gateway (scripts_group).
--
-- KEYS  1 group meta, 2 group members, 3 the group's join order (zset member -> join number),
--       4 its admins (zset admin -> promotion number): all {g:#NAME}.
-- ARGV  the context (lib/gctx.lua): op (create, join, leave, add, remove, promote, demote),
--       #name, by, open, now ms, the key formats and global keys the steps need, then the
--       members named (create, add, remove, promote, demote).
-- Roles: the creator is the owner (meta `owner`); the owner names admins (promote / demote:
-- owner only); remove: the owner or an admin, and an admin removes neither the owner nor another
-- admin (nobody names himself: leave instead); add to a closed group (not created open): the
-- owner or an admin; to an open one: any member. Every refusal of a right: forbidden, nothing
-- changed. Every member gets the next join number (meta `order`, one counter for joins and
-- promotions); when the owner leaves, the admin promoted earliest becomes owner, else the
-- member who joined earliest. A group from before roles (meta without `owner`) gets them at its
-- next op: its members' join order is filled in (all number 0: by name among them, before any
-- later joiner), and the owner is its creator if still a member, else the first of that order.
-- Consent: a create or add naming someone who blocks `by` is refused whole, forbidden.
-- A removed member is out of the member set at once, so nothing of the group reaches him after
-- the `remove` frame: send.lua writes only members, fanout.lua checks membership at each step,
-- typing reads the members per notice; his read position and unread count for the group go.
-- Throttle (per user, across all his sessions, gateways and groups): an op on a group of
-- BROADCAST_MIN (64) members or more (its members, plus those named; create: those named and
-- by) while by's group throttle exists answers {"error", "rate_limited", ...} and changes
-- nothing; else it sets it for the window (whatever the op then answers). Checked first (the
-- second step, before any member is read): O(1) (SCARD, SET NX PX). At any group size, a join
-- or leave that changes the membership (judged here: SISMEMBER) is refused rate_limited while
-- by's join/leave throttle for this group exists, else sets it for the window (F3 of issue 15:
-- a join/leave flood).
-- Unread follows membership: whoever becomes a member (create, join, add) starts with the
-- group's history read (read position = its newest id, or none when it is empty) and no unread
-- count, so what read.lua recounts later is exactly what send.lua counted since he joined; a
-- leaver's read position and unread count for the group are deleted, so a rejoiner starts
-- fresh (a removed member alike). When the last member leaves, the group is deleted: its meta,
-- its join order and admins, its history (UNLINK), its history's byte count and its search
-- entry; its name is free again, and its creator may create one more. Each creation stamps the
-- meta with `gen` (Redis TIME in microseconds): a fan-out still queued for a deleted group
-- (fanout.lua) sees another or no `gen` and writes no member of a group re-created under the
-- same name.
-- Groups created: a user's meta field `groups` counts the groups he created that still exist;
-- a create over the cap answers forbidden.
--
-- Steps (each on one slot; the state travels in ARGV 1 of each, packed):
--   group.lua        {g:}  the op's size (SCARD)
--   group_by.lua     {u:by}  the throttles (big groups; a join / leave of this group);
--                          create: how many groups by created
--   group_users.lua  parley:users  create / add with names: which do not exist; then one
--   group_blocks.lua {u:NAME} step per name (fork): does NAME block by
--   group_apply.lua  {g:}  (the join) an unfinished change touching the same users is finished
--                          first (group_run, group_done, then this op from group_by again):
--                          only those listed when the op first got here (and a deletion);
--                          every check again on the group's own keys, in the order above; the
--                          change to the group's keys, and what is left to do added to the list
--                          in meta `pend` (msgpack: id, op, by, users to add, to drop, ...); a
--                          change of roles alone publishes its frame and answers here
--   group_run.lua    {c:}  the history's newest id (for those added), or its deletion (the last
--                          member left); then, forked, group_member.lua on each user's slot
--                          ({u:NAME}: groups, read, unread, mentions, recount; the creator's
--                          count of groups) and group_index.lua (parley:groups, the search)
--   group_done.lua   {g:}  (the join) the change off `pend` (or the group's keys deleted), the
--                          frame built and published (lib/notify.lua), the reply
-- Refusals come from group_by (rate_limited) and group_apply (all others) before any write but
-- the throttle key. A stop after group_apply leaves the group changed (members, roles: what
-- send, history, typing and fan-outs see) with the change listed in `pend`, and some members'
-- own keys not yet: an added member may not list the group in his hello yet (his groups set)
-- and has no read position for it; a removed one still lists it, with his old counts; a deleted
-- group's meta and history may still exist (no members; its name not free yet). The next op on
-- the group that names one of its users or is by one (a retry of this one too), or any op once
-- the change deletes the group, finishes it first: every member step is safe to run again
-- (added: only when the name is new in his groups set; dropped: set removals), and group_done
-- takes a change off `pend` once. Not idempotent across a stop: the creator's count of groups
-- when the last member leaves (at most one decrement too many, never below 0: he may create one
-- group more), and the frame (a finishing run sends it again). Changes of different users run
-- side by side (ten joins at once: ten chains); two of one user's are ordered by `pend`, except
-- that a member step of the first still in flight after the second finished it could land
-- last (a chain delayed by a whole other chain: not seen here), and that an op does not wait
-- for a change listed after it first reached group_apply.lua (it finishes only those listed
-- then, so no stream of other ops can starve it): two such changes of one user, made within
-- one chain's time by two different users (the join/leave throttle keeps one user's own apart),
-- run side by side, and his own keys follow whichever member step lands last.
--
-- Work: O(members named, at most PROTO_MEMBERS_MAX 1,000) in group_apply and group_run (the
-- group's keys, and one fork entry each), O(1) in each forked step, plus the notification: the
-- group frame (every member, sorted) to every member, through one envelope per gateway holding
-- one (one notify_gw.lua step per member) or, from 64 members, one envelope to every gateway
-- (notify_all.lua: no session lookup per member). A pre-roles group's join order is filled in
-- once in group_apply (an SSCAN of its members).
-- On a change, publishes {kind:"group", name, members (all, sorted), op, by, open, owner,
-- admins (sorted), removed (remove: those removed)} (fanout) to every member, and to a leaver or
-- those removed.
-- Reply {"ok"} (published), {"same", frame} when nothing changed (the gateway sends the frame to
-- the requesting session only), or {"error", code, message}.
local c = gctx_read(1, nil)
local gk = {KEYS[1], KEYS[2], KEYS[3], KEYS[4]}
local size = #c.named + (c.op == 'create' and 1 or redis.call('SCARD', KEYS[2]))
-- a join or leave that changes the membership now (a hint: group_apply.lua judges again): a
-- leave of a member, a join of an open group by a non-member; a refused or unchanged one is not
-- throttled (it changes nothing, and finishes at most what was pending)
local jl = nil
if c.op == 'leave' then
  jl = redis.call('SISMEMBER', KEYS[2], c.by) == 1 or nil
elseif c.op == 'join' then
  jl = (redis.call('HGET', KEYS[1], 'open') == '1' and
        redis.call('SISMEMBER', KEYS[2], c.by) == 0) or nil
end
-- one that changes nothing (jlq): group_by.lua
local jlq = (c.op == 'join' or c.op == 'leave') and not jl or nil
local groupop = string.format(c.groupop_fmt, c.by)
return step_next('group_by', {groupop, string.format(c.meta_fmt, c.by), groupop .. ':' .. c.name},
                 c.args({gk = gk, size = size, jl = jl, jlq = jlq}))
