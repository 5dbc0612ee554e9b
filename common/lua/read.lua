-- include: step access
-- flags: no-writes
--
-- read.lua - moves a reader's read position in a conversation and sends the receipt: the first
-- of four steps (issue 15: each on one slot).
-- Caller: the gateway (scripts_read).
--
-- KEYS  1 the other user's account (group: members), 2 the same as 1 (group: meta).
-- ARGV  1 reader, 2 with (user or #group), 3 is_group ("1"/"0"), 4 upto, 5 gateway channel
--       prefix, 6 the key format of a user's sessions, 7 reader's session id, 8 the
--       conversation's history, 9 reader read, 10 reader unread, 11 reader mentions, 12 reader
--       recount marks, 13 parley:gateways, 14 reader meta (its `seq`: his inbox's last entry),
--       15 reader inbox.
-- Steps: this one (the group's or the other user's slot: access; a group's delete count and
-- who gets the receipt), read_pos.lua (the reader's slot: his position and counts, read only),
-- read_hist.lua (the conversation's slot: the newest id, the recount), read_set.lua (the
-- reader's slot: the writes, checked again against his position and counts; when a message or
-- another read changed his counts meanwhile, read_pos.lua again), then the receipt
-- (lib/notify.lua). Only read_set writes (one call: position, counts and mark together), so a
-- stop before it changes nothing and one after it loses only the receipt; running the read again
-- answers {0, position} (already there).
-- Access as history. Clamps upto to the newest id; if that does not move the position: {0, pos}.
-- Else sets the position, recounts unread (messages after upto not from the reader and not
-- deleted; 0 deletes the field) and mentions (those of them whose `mentions` name the reader)
-- and publishes {kind:"read", from, with, upto} as {t:"m"} (fanout) to the other
-- participant(s) and the reader, except the reading session; in a group of BROADCAST_MIN (64)
-- members or more to the reader's other sessions only (SCARD, no member read): per-member
-- receipts there cost members x readers (docs/protocol.md "Read receipts in big groups"); the
-- position and unread count are stored as in any conversation.
-- Counts: see read_hist.lua. Between the steps a message can arrive: the recount saw the history
-- of its step, and a message stored after it is counted by its send as usual.
-- Reply {1, upto} when it moved, {0, position} when not, or "no_such_user" / "forbidden".
local BROADCAST_MIN = 64 -- as lib/notify.lua's NOTIFY_WIDE: a big group
local reader, with, is_group = ARGV[1], ARGV[2], ARGV[3]
local bad = access(is_group, KEYS[1], KEYS[2], reader)
if bad then return bad end
local st = {dseq = '0'}
if is_group == '1' then
  st.dseq = redis.call('HGET', KEYS[2], 'dseq') or '0'
  if redis.call('SCARD', KEYS[1]) >= BROADCAST_MIN then st.to = {reader}
  else st.to = redis.call('SMEMBERS', KEYS[1]) end
elseif with == reader then st.to = {reader}
else st.to = {with, reader} end
local args = {cmsgpack.pack(st)}
for i = 1, #ARGV do args[#args + 1] = ARGV[i] end
return step_next('read_pos', {ARGV[9], ARGV[10], ARGV[11], ARGV[14]}, args)
