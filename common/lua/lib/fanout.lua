-- fanout.lua - helper: one multi-user envelope per gateway.
-- Collects (user, seq) per gateway, then publishes {t: "m", f, u: [users], s: [seqs]?, x: skip
-- session?} once per gateway: a group of 1,000 members costs one PUBLISH per gateway, not one per
-- member. fan_publish hands each envelope to emit(channel, envelope) when given (send batches
-- its publishes), else PUBLISHes it.
local function fan_new() return {per = {}, order = {}} end
local function fan_add(fan, g, user, seq)
  local e = fan.per[g]
  if not e then e = {u = {}, s = {}}; fan.per[g] = e; fan.order[#fan.order + 1] = g end
  e.u[#e.u + 1] = user
  if seq then e.s[#e.s + 1] = seq end
end
local function fan_publish(fan, prefix, frame, skip, emit)
  for _, g in ipairs(fan.order) do
    local e = fan.per[g]
    local env = {t = 'm', f = frame, u = e.u}
    if #e.s > 0 then env.s = e.s end
    if skip then env.x = skip end
    if emit then emit(prefix .. g, env)
    else redis.call('PUBLISH', prefix .. g, cmsgpack.pack(env)) end
  end
end
