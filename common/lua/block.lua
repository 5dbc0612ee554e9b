-- include: step
-- flags: no-writes
--
-- block.lua - `by` blocks or unblocks `user`: the first of three steps, each on one user's slot
-- (issue 15; docs/internals.md "Scripts in steps").
-- Caller: the gateway (scripts_block), for a client's `block {user, on}`.
--
-- KEYS  1 user's account.
-- ARGV  1 by, 2 user, 3 on ("1"/"0"), 4 the most users one may block (--max-blocks; "0": no
--       limit), 5 gateway channel prefix, 6 by's blocks (the users he blocks), 7 by's hidden set,
--       8 by's sessions, 9 user's hidden set, 10 user's blocks, 11 user's sessions.
-- A hidden set holds everyone in a block with its user, either way: A in B's and B in A's while
-- A blocks B or B blocks A (or both). send.lua and typing.lua refuse a 1:1 text or typing whose
-- recipient's hidden set holds the sender (forbidden); contacts.lua and the gateways hide the
-- presence of hidden users.
-- Block: user must exist (else {"error", "no_such_user", ...}); a block already there changes
-- nothing; a new one past ARGV 4 blocks answers {"error", "forbidden", ...}. Unblock always
-- succeeds (also for a user who does not exist, or was not blocked); the pair leaves both hidden
-- sets only when user does not block by as well.
-- Steps: this one (user's slot: his account, block only), then block_by.lua "first" (by's slot:
-- the cap, by's blocks, by's hidden set), block_peer.lua (user's slot: user's hidden set), then
-- block_by.lua "last" (by's slot: an unblock takes user off by's hidden set; the answer).
-- Publishes, when a hidden set changed, in the step that changed it: {t:"h", u, p: peer, o:
-- true/false} to each gateway that holds a session of by (u = by, p = user) and of user (u =
-- user, p = by): each gateway marks the peer's presence hidden (or shown again, with its current
-- state) for those sessions; user's client is told nothing. Then, always, in the last step (the
-- requesting session's answer too): {t:"u", u: by, f: {kind:"block", user, on}} to each gateway
-- holding a session of by.
-- A stop between steps (every step is safe to run again; running the block again finishes it):
-- after block_by "first" of a block, by blocks user (by's list, texts from user refused) but
-- by's texts to user still pass (user's hidden set lacks by); after block_peer of an unblock,
-- user's side is open again (texts from by pass) while by's list still names user. The answer
-- (the `block` frame) comes last.
-- Two blocks by one user at once can both pass the cap (each reads it before it writes).
-- Work: O(1) set operations per step, one PUBLISH per gateway of each of the two users.
-- Reply {"ok"} or {"error", code, message}.
if ARGV[3] == '1' and redis.call('EXISTS', KEYS[1]) == 0 then
  return {'error', 'no_such_user', 'no such user: ' .. ARGV[2]}
end
local args = {'first'}
for i = 1, #ARGV do args[#args + 1] = ARGV[i] end
return step_next('block_by', {ARGV[6], ARGV[7], ARGV[8]}, args)
