-- include: access step
-- flags: no-writes
--
-- history.lua - a page of a conversation's history, newest first from an id down; this first
-- step checks access, on the tag of the other user ({u:NAME}) or of the group ({g:#NAME}), and
-- its tail call reads the page on the conversation's tag (history_page.lua): two steps, each
-- inside one hash slot (docs/internals.md "Scripts in steps").
-- Caller: the gateway (scripts_history).
--
-- KEYS  1 the other user's account (group: members), 2 the same as 1 (group: meta).
-- ARGV  1 user, 2 is_group ("1"/"0"), 3 the conversation's history key, 4 before id (0: none),
--       5 limit, 6 max bytes (B; absent: no byte bound).
-- Reply "no_such_user" / "forbidden" (access), or history_page.lua's page.
-- Reads only: a stop between the steps leaves nothing; the client asks again. The access seen is
-- the one of a moment before the page is read (a member who leaves in between gets the page he
-- was allowed a moment before).
local bad = access(ARGV[2], KEYS[1], KEYS[2], ARGV[1])
if bad then return bad end
return step_next('history_page', {ARGV[3]}, {ARGV[4], ARGV[5], ARGV[6] or ''})
