-- store.lua - helper (after epoch): what send.lua and fanout.lua share to
-- store and answer a message: msgpack pieces built by concatenation (mp_*), the per-call publish
-- buffer (emit, flush: one PUBLISH per gateway channel), inbox appends under both caps, acks and
-- cid records, and a deleted message taken off a reader's counts (uncount). The deliveries of a
-- group message to its members: lib/members.lua.
-- Call store_init(prefix, inbox_cap, inbox_bytes, ttl) at the start of every call: string
-- and math are not reachable while a function library loads, so the constants are made then.
--
-- Inbox caps: an inbox keeps at most inbox_cap entries and inbox_bytes bytes (the sum of its
-- entries' sizes, tracked in the meta field `bytes`: HINCRBY on append, less what a trim pops).
-- A trim LPOPs the oldest entries until both hold (never the newest); each entry is popped at
-- most once, so the trims cost O(1) per append amortized, never an O(inbox) scan. An inbox that
-- predates the counter is counted from its next entry on (the count is reset when the inbox
-- holds one entry, and never goes below 0).
local char, floor
local function mp_uint(n)
  if n < 128 then return char(n) end
  if n < 256 then return char(0xcc, n) end
  if n < 65536 then return char(0xcd, floor(n / 256), n % 256) end
  if n < 4294967296 then
    return char(0xce, floor(n / 16777216), floor(n / 65536) % 256, floor(n / 256) % 256, n % 256)
  end
  local hi, lo = floor(n / 4294967296), n % 4294967296
  return char(0xcf, floor(hi / 16777216), floor(hi / 65536) % 256, floor(hi / 256) % 256,
              hi % 256, floor(lo / 16777216), floor(lo / 65536) % 256, floor(lo / 256) % 256,
              lo % 256)
end
local function mp_str_head(n)
  if n < 32 then return char(0xa0 + n) end
  if n < 256 then return char(0xd9, n) end
  if n < 65536 then return char(0xda, floor(n / 256), n % 256) end
  return char(0xdb, floor(n / 16777216), floor(n / 65536) % 256, floor(n / 256) % 256, n % 256)
end
local function mp_str(s) return mp_str_head(#s) .. s end
local K_T, K_S, K_F, K_C, V_C, K_KIND_ACK, K_ID, K_SEQ, K_SENT, K_CID, ENV_C4, CIDS_MARK
local prefix, inbox_cap, inbox_bytes, ttl
local out, order
local function store_init(gw_prefix, icap, ibytes, dedupe_ttl)
  if not char then
    char, floor = string.char, math.floor
    K_T, K_S, K_F, K_C, V_C = mp_str('t'), mp_str('s'), mp_str('f'), mp_str('c'), mp_str('c')
    K_KIND_ACK, K_ID, K_SEQ = mp_str('kind') .. mp_str('ack'), mp_str('id'), mp_str('seq')
    K_SENT, K_CID = mp_str('sent'), mp_str('cid')
    ENV_C4 = char(0x84) .. K_T .. V_C .. K_C
    -- a field longer than any cid (64 bytes) and than hash-max-listpack-value
    CIDS_MARK = 'parley: a field over 64 bytes keeps this hash a hashtable (O(1) cid lookups)'
  end
  prefix, inbox_cap, inbox_bytes, ttl = gw_prefix, icap, ibytes, dedupe_ttl
  out, order = {}, {}
end
-- the frame base split once into its map header + 1 and the rest, so a seq can go first
local function split_frame(base)
  return {base = base, head = char(string.byte(base, 1) + 1), rest = string.sub(base, 2)}
end
local function with_seq(fr, seq) return fr.head .. K_SEQ .. mp_uint(seq) .. fr.rest end
local function emit(chan, bytes)
  local l = out[chan]
  if not l then l = {}; out[chan] = l; order[#order + 1] = chan end
  l[#l + 1] = bytes
end
local function emit_table(chan, env) emit(chan, cmsgpack.pack(env)) end
-- everything a gateway gets from one call in one PUBLISH, in the order it was emitted
local function flush()
  for _, c in ipairs(order) do redis.call('PUBLISH', c, table.concat(out[c])) end
end
-- the ack of message id (the sender's inbox seq, sent ms) to m = {chan, conn, cid}, the sending
-- connection
local function ack(m, id, seq, sent)
  local f
  if m.cid ~= '' then
    f = char(0x85) .. K_KIND_ACK .. K_ID .. mp_uint(id) .. K_SEQ .. mp_uint(seq) .. K_SENT ..
        mp_uint(sent) .. K_CID .. mp_str(m.cid)
  else
    f = char(0x84) .. K_KIND_ACK .. K_ID .. mp_uint(id) .. K_SEQ .. mp_uint(seq) .. K_SENT ..
        mp_uint(sent)
  end
  emit(m.chan, ENV_C4 .. mp_uint(m.conn) .. K_S .. mp_uint(seq) .. K_F .. mp_str_head(#f) .. f)
end
-- records cid -> record in the sender's cids hash (rotated to cids:old after ttl)
local function remember(cids, cid, record)
  local t = redis.call('TTL', cids)
  if t >= 0 and t < ttl then
    redis.call('RENAME', cids, cids .. ':old')
    t = -2
  end
  if t < 0 then -- a new hash: marked so it is a hashtable from the start (no listpack scans)
    redis.call('HSET', cids, cid, record, CIDS_MARK, '1')
    redis.call('EXPIRE', cids, 2 * ttl)
  else
    redis.call('HSET', cids, cid, record)
  end
end
local function cid_record(id, seq, sent) return char(0x93) .. mp_uint(id) .. mp_uint(seq) ..
  mp_uint(sent) end
-- appends the frame fr with user's next seq to user's inbox under both caps; seq, the entry
local function append(user, meta, inbox, id, fr)
  local seq = redis.call('HINCRBY', meta, 'seq', 1)
  if seq == 1 then redis.call('HSETNX', meta, 'epoch', new_epoch(user .. '|' .. id)) end
  local f = with_seq(fr, seq)
  local n = redis.call('RPUSH', inbox, f)
  local total
  if n == 1 then
    total = #f
    redis.call('HSET', meta, 'bytes', total)
  else
    total = redis.call('HINCRBY', meta, 'bytes', #f)
  end
  if n > inbox_cap or total > inbox_bytes then
    local gone = 0
    while n > 1 and (n > inbox_cap or total - gone > inbox_bytes) do
      gone = gone + #redis.call('LPOP', inbox)
      n = n - 1
    end
    if total - gone < 0 then redis.call('HSET', meta, 'bytes', 0)
    else redis.call('HINCRBY', meta, 'bytes', -gone) end
  end
  return seq, f
end
-- decrements field of hash key by one, deleting the field at 0 or below (a count of nothing)
local function hdecr(key, field)
  if redis.call('HINCRBY', key, field, -1) <= 0 then redis.call('HDEL', key, field) end
end
-- a deleted message (id, of conversation conv) its reader had not read (his position in hash
-- read_key below id) leaves his unread count (hash unread_key) and, when it mentioned him, his
-- mention count (mentions_key); send.lua inline, fanout.lua per step
local function uncount(read_key, unread_key, mentions_key, conv, id, mentioned)
  local pos = tonumber(redis.call('HGET', read_key, conv)) or 0
  if pos >= id then return end
  hdecr(unread_key, conv)
  if mentioned then hdecr(mentions_key, conv) end
end
