-- include: step access
-- flags: no-writes
--
-- typing.lua - a typing notice, to a user's sessions or to a group's other members: the first of
-- three steps (issue 15: each on one slot).
-- Caller: the gateway (scripts_typing).
--
-- KEYS  1 recipient account (group: members), 2 recipient sessions (group: meta), 3 the
--       recipient's hidden set (1:1; block.lua: a block either way refuses the notice; a group:
--       its meta again, not read).
-- ARGV  1 gateway channel prefix, 2 to, 3 frame (the client frame, msgpack), 4 is_group
--       ("1"/"0"), 5 sender, 6 the key format of a user's sessions, 7 throttle window ms,
--       8 throttle window ms for a group of BROADCAST_MIN (64) members or more ("0": no
--       throttle), 9 the sender's typing throttle for `to` (parley:{u:FROM}:typing:TO),
--       10 parley:gateways.
-- Steps: this one (the recipient's or the group's slot: access, block, which window), then
-- typing_gate.lua (the sender's slot: the throttle), then typing_send.lua (the recipient's or the
-- group's slot again: the members, the delivery). Nothing is written but the throttle key, so a
-- stop anywhere loses one notice (typing is best effort).
-- Throttle (per sender and conversation, across all his sessions and gateways): after access,
-- and before any member is read (O(1): SCARD, SET NX PX), a notice while ARGV 9 exists is
-- dropped and the reply is 1 as if sent (typing is best effort); else ARGV 9 is set for the
-- window and the notice goes out.
-- Publishes {t:"u", u: to, f: frame} once per gateway holding a session of the recipient, or for
-- a group {t:"m", f, u: the other members} per gateway (lib/notify.lua); a group of 64 members
-- or more gets one such envelope listing them all on every gateway.
-- Reply 1 when sent, 0 when the user or group does not exist, -1 when the sender is not a member
-- of the group, -2 when the recipient blocks the sender or the sender blocks the recipient (1:1).
local BROADCAST_MIN = 64 -- as lib/notify.lua's NOTIFY_WIDE: a big group
local bad = access(ARGV[4], KEYS[1], KEYS[2], ARGV[5])
if bad == 'no_such_user' then return 0 end
if bad then return -1 end
if ARGV[4] ~= '1' and redis.call('SISMEMBER', KEYS[3], ARGV[5]) == 1 then return -2 end
local window = ARGV[7]
if ARGV[4] == '1' and redis.call('SCARD', KEYS[1]) >= BROADCAST_MIN then window = ARGV[8] end
local send = step_next('typing_send', {KEYS[1], KEYS[2], KEYS[3]}, ARGV)
if window == '0' then return send end
return step_next('typing_gate', {ARGV[9]}, {window, cmsgpack.pack(send)})
