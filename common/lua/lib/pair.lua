-- pair.lua - helper: the key of a 1:1 conversation as common/keys.c builds it
-- (keys_conv_pair): "a|b" with a < b bytewise. Not Lua's `<` on strings: that is strcoll, and
-- Redis sets LC_COLLATE from its environment, where "a_" and "a1" may sort either way.
-- Used by contacts_online.lua (a person's preview), sync.lua (a reference's history) and
-- send_step.lua.
local function pair_key(a, b)
  local n = math.min(#a, #b)
  for i = 1, n do
    local x, y = string.byte(a, i), string.byte(b, i)
    if x ~= y then
      if x < y then return a .. '|' .. b end
      return b .. '|' .. a
    end
  end
  if #a <= #b then return a .. '|' .. b end
  return b .. '|' .. a
end
