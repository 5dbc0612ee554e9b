-- flags: no-writes
--
-- contacts_peer.lua - a step of contacts.lua, on a person's tag {u:NAME}: how far he has read his
-- conversation with the user (the entry's peer_read).
-- Caller: contacts_list.lua's fork.
--
-- KEYS  1 the person's read positions (hash conversation name -> id).
-- ARGV  1 the user.
-- Reply the id (nil when none). Work: one HGET.
return redis.call('HGET', KEYS[1], ARGV[1])
