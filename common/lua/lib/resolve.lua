-- resolve.lua - helper (after ref, pair): an inbox reference (lib/ref.lua) as the frame a client
-- gets on replay (sync.lua: client sync, offline push, gap fetch).
-- the conversation key of what `user` names `w`
local function conv_of(user, w)
  if string.byte(w, 1) == 35 then return w end
  return pair_key(user, w)
end
-- a replayed inbox entry e (decoded, with seq) of `user` as the frame a client gets, or nil when
-- the message it names has left the history. hist_fmt: the history key format (%s conversation);
-- member(w): whether user is a member of group w now. An entry of a group the user is no longer
-- in is {kind:"gone", seq, id, with} (a kind clients ignore): the group's messages now, edited
-- or reacted to since he left, are not his to read (history is refused him too). Old full copies
-- (with `kind`) are returned as they are.
local function ref_resolve(user, e, hist_fmt, member)
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
  local _, m = msg_get(string.format(hist_fmt, conv_of(user, w)), e.id)
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
