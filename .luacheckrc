-- .luacheckrc - luacheck's settings for the Lua that Parley runs in Redis (common/lua/).
-- Run it with tests/lint/lua.sh: it checks every script as Redis runs it (its helpers pasted in
-- front, the send library wrapped, by common/lua/embed.cmake), so a helper a script does not
-- include is an undefined global, and a helper it includes but never calls an unused function.

-- Redis's Lua: Lua 5.1 (unpack included) plus what Redis gives a script
stds.redis = {
  read_globals = {"KEYS", "ARGV", "redis", "cmsgpack", "cjson", "bit", "struct"},
}
std = "lua51+redis"

max_line_length = 100 -- as the C (.clang-format)
