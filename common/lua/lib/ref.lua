-- ref.lua - helper: inbox references and the history entries they name (docs/internals.md
-- "Inbox entries are references"): reading a stored message (msg_get). send.lua writes
-- references (with lib/message.lua for the changes), sync.lua's steps resolve them
-- (lib/resolve.lua).
--
-- The conversation's history (zset id -> msgpack text map) holds every message's current state:
-- {kind:"text", id, from, to, data, sent, cid?, reply_to?, mentions?, edited?, reactions?,
-- deleted?, by?}. An inbox holds references, not copies (so a delete or an edit changes one
-- stored copy, and a deleted text is in no inbox):
--   {seq, id, w}                          a text (w: the conversation as the inbox's user names
--                                         it: the peer, or #group)
--   {seq, k:"e", id, w, from, at}         an edit (the data is read from the history on replay)
--   {seq, k:"d", id, w, by, at}           a delete
--   {seq, k:"r", id, w, from, emoji, on}  a reaction added (on true) or taken back
-- An entry with a `kind` is an older full copy and is replayed as it is.
-- the stored message id of history key hist: its raw entry and decoded map, or nil
local function msg_get(hist, id)
  local raw = redis.call('ZRANGEBYSCORE', hist, id, id, 'LIMIT', 0, 1)[1]
  if not raw then return nil end
  local m = cmsgpack.unpack(raw)
  if type(m) ~= 'table' then return nil end
  return raw, m
end
