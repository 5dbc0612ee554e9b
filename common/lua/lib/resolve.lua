-- resolve.lua - helper: an inbox reference (lib/ref.lua) as the frame a client gets on replay
-- (sync_page.lua, the join of sync.lua's steps: client sync, offline push, gap fetch).
-- a replayed inbox entry e (decoded, with seq) of a user as the frame a client gets, or nil when
-- the message it names has left the history. get(w, id): the message id of the conversation w
-- names as stored in its history (a decoded map; its reader read it in another step), or nil;
-- member(w): whether the user is a member of group w now. An entry of a group he is no longer
-- in is {kind:"gone", seq, id, with} (a kind clients ignore): the group's messages now, edited
-- or reacted to since he left, are not his to read (history is refused him too). Old full copies
-- (with `kind`) are returned as they are.
local function ref_resolve(e, get, member)
  if e.kind then return e end
  local w, k = e.w, e.k
  if type(w) ~= 'string' or type(e.id) ~= 'number' then return nil end
  if string.byte(w, 1) == 35 and not member(w) then
    return {kind = 'gone', seq = e.seq, id = e.id, with = w}
  end
  if k == 'd' then
    return {kind = 'delete', seq = e.seq, id = e.id, with = w, by = e.by, deleted = e.at}
  end
  if k == 'r' then
    return {kind = 'react', seq = e.seq, id = e.id, with = w, from = e.from, emoji = e.emoji,
            on = e.on}
  end
  local m = get(w, e.id)
  if not m then return nil end
  if k == 'e' then
    if m.deleted then
      return {kind = 'delete', seq = e.seq, id = e.id, with = w, by = m.by, deleted = m.deleted}
    end
    return {kind = 'edit', seq = e.seq, id = e.id, with = w, from = e.from, data = m.data,
            edited = m.edited or e.at}
  end
  m.seq = e.seq
  return m
end
