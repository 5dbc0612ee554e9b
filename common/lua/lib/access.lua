-- access.lua - helper: who may see a conversation.
-- For a group (is_group "1") its meta must exist and user be a member; for 1:1 the other user's
-- account (who_key) must exist. Returns nil, or the error code 'no_such_user' / 'forbidden'.
local function access(is_group, who_key, meta_key, user)
  if is_group == '1' then
    if redis.call('EXISTS', meta_key) == 0 then return 'no_such_user' end
    if redis.call('SISMEMBER', who_key, user) == 0 then return 'forbidden' end
  elseif redis.call('EXISTS', who_key) == 0 then return 'no_such_user' end
  return nil
end
