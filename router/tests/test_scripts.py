#!/usr/bin/env python3
"""test_scripts.py - runs every Lua script of common/scripts.c against a real
redis-server and checks replies, stored state and everything published.

usage: test_scripts.py PORT PARLEY_CLI   (the CLI loads the scripts: parley scripts --load)
The Redis at PORT is flushed."""
import os
import socket
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from rtest import Redis, RedisError, decode_env, split_envs, unpack  # noqa: E402

PORT = int(sys.argv[1])
CLI = sys.argv[2]
r = Redis(PORT)
r("FLUSHALL")
out = subprocess.run([CLI, "--redis-url", "redis://127.0.0.1:%d" % PORT, "scripts", "--load"],
                     check=True, capture_output=True, text=True).stdout
SHA = dict(line.split()[:2] for line in out.splitlines())

sub = Redis(PORT)
sub.send("PSUBSCRIBE", "parley:gw:*", "parley:presence:*", "parley:users:*")
sub.read()
sub.read()
sub.read()
sub.settimeout(0.3)

failures = 0


def check(cond, what):
    global failures
    print(("ok   " if cond else "FAIL ") + what)
    if not cond:
        failures += 1


def published(raw=False):
    """Every envelope published since the last call: [(channel, envelope)]
    (a payload on a gateway channel may hold several; raw: the payloads)."""
    out = []
    while True:
        try:
            m = sub.read()
        except socket.timeout:
            return out
        ch = m[2].decode()
        if ch.startswith("parley:gw:") and not raw:
            out.extend((ch, e) for e in split_envs(m[3]))
        else:
            out.append((ch, m[3]))


def ev(name, keys, args):
    # send is a Redis function (its "sha" is the function name), the rest EVAL scripts
    cmd = "FCALL" if SHA[name].startswith("parley_") else "EVALSHA"
    return r(cmd, SHA[name], len(keys), *keys, *args)


def U(user, what):
    return "parley:{u:%s}:%s" % (user, what)


SEND_ARGS = ["parley:gw:", 1000, 10000, 86400, U("%s", "meta"), U("%s", "inbox"),
             U("%s", "sessions"), U("%s", "unread"), "parley:gateways"]


def send_keys(frm, to, cid):
    if to.startswith("#"):
        return [U(frm, "cids"), "parley:{g:%s}:meta" % to, "parley:{g:%s}:members" % to,
                "parley:ids", "parley:{c:%s}:history" % to]
    conv = "|".join(sorted([frm, to]))
    return [U(frm, "cids"), U(to, "account"), "parley:ids",
            "parley:{c:%s}:history" % conv, U(to, "meta"), U(to, "inbox"), U(to, "sessions"),
            U(frm, "meta"), U(frm, "inbox"), U(frm, "sessions"), U(frm, "contacts"),
            U(to, "contacts"), U(to, "unread")]


def send_batch(msgs):
    """One send call for several messages (frm, to, data, cid, sess, conn):
    the router's batch. Returns the per-message results."""
    keys, args = [], list(SEND_ARGS)
    for frm, to, data, cid, sess, conn in msgs:
        keys += send_keys(frm, to, cid)
        args += [frm, to, data, cid, sess, conn]
    return ev("send", keys, args)


def send(frm, to, data, cid, sess, conn):
    res = send_batch([(frm, to, data, cid, sess, conn)])
    assert isinstance(res, list) and len(res) == 1, res
    return res[0]


def sopen(user, gw, conn):
    return ev("session_open", [U(user, "sessions"), U(user, "meta"), U(user, "inbox"),
                               "parley:online", "parley:gw:%s:sessions" % gw],
              [user, "%s#%d" % (gw, conn), "%s#%d" % (user, conn), "parley:presence:" + user])


def sclose(user, gw, conn, reaping=False):
    return ev("session_close", [U(user, "sessions"), "parley:online",
                                "parley:gw:%s:sessions" % gw, U(user, "meta"),
                                "parley:gw:%s:alive" % gw],
              [user, "%s#%d" % (gw, conn), "%s#%d" % (user, conn), "parley:presence:" + user,
               "1" if reaping else "0"])


# register
check(ev("register", [U("alice", "account"), "parley:users"],
         ["alice", "H1", 1000, "parley:users:new"]) == 1, "register creates alice")
check(ev("register", [U("alice", "account"), "parley:users"], ["alice", "H2", 1000]) == 0,
      "register refuses a taken name")
check(r("HGET", U("alice", "account"), "pw") == b"H1", "register keeps the first hash")
check(published() == [("parley:users:new", b"alice 1")], "register announces 'alice 1' once")
for u in ("bob", "carol"):
    ev("register", [U(u, "account"), "parley:users"], [u, "H", 1000])
check(r("ZRANGE", "parley:users", 0, -1) == [b"alice", b"bob", b"carol"], "users zset")

# session_open: first session -> online + presence
res = sopen("bob", "gw1", 7)
check(res[0] == 0 and isinstance(res[1], bytes) and len(res) == 2, "session_open bob: {0, epoch}")
bob_epoch = res[1]
p = published()
check(len(p) == 1 and p[0][0] == "parley:presence:bob" and
      unpack(p[0][1]) == {"kind": "online", "from": "bob"}, "online published once")
check(r("SISMEMBER", "parley:online", "bob") == 1, "bob online")
res = sopen("bob", "gw2", 3)
check(res[1] == bob_epoch and published() == [], "second session: same epoch, no presence")
res = sopen("alice", "gwA", 5)
published()

# send alice -> bob
res = send("alice", "bob", "hi bob", "c1", "gwA#5", 5)
check(isinstance(res, list) and res[0] == 1 and res[1] == 1 and res[2] > 1.7e12,
      "send returns {id, sender seq, sent}: %r" % (res,))
sent = res[2]
p = published()
chans = [c for c, _ in p]
check(sorted(chans) == ["parley:gw:gw1", "parley:gw:gw2", "parley:gw:gwA"],
      "one publish per gateway (bob on gw1, gw2; ack to gwA; alice has no other session): %r"
      % chans)
for c, payload in p:
    env = decode_env(payload)
    if c in ("parley:gw:gw1", "parley:gw:gw2"):
        check(env["t"] == "u" and env["u"] == "bob" and env["s"] == 1 and "x" not in env,
              "delivery envelope to " + c)
        check(env["f"] == {"kind": "text", "id": 1, "seq": 1, "from": "alice", "to": "bob",
                           "data": "hi bob", "sent": sent, "cid": "c1"}, "text frame " + c)
    else:
        check(env == {"t": "c", "c": 5, "s": 1,
                      "f": {"kind": "ack", "cid": "c1", "id": 1, "seq": 1, "sent": sent}},
              "ack envelope %r" % (env,))
hist = r("ZRANGE", "parley:{c:alice|bob}:history", 0, -1)
check(len(hist) == 1 and "seq" not in unpack(hist[0]) and unpack(hist[0])["id"] == 1,
      "history has the frame without seq")
check(unpack(r("LINDEX", U("bob", "inbox"), -1))["seq"] == 1, "bob inbox seq 1")
check(unpack(r("LINDEX", U("alice", "inbox"), -1))["seq"] == 1, "alice inbox seq 1")
check(r("HGET", U("bob", "meta"), "pushed") is None,
      "pushed not tracked per message while bob has sessions")
check(r("HGET", U("bob", "unread"), "alice") == b"1", "bob has 1 unread from alice")
check(r("HGET", U("alice", "unread"), "bob") is None, "the sender's own message is not unread")
check(r("SMEMBERS", U("alice", "contacts")) == [b"bob"] and
      r("SMEMBERS", U("bob", "contacts")) == [b"alice"], "contacts both ways")
check(r("HGET", U("alice", "cids"), "c1") is not None and
      86400 < r("TTL", U("alice", "cids")) <= 2 * 86400, "cid remembered, hash with TTL 2 x ttl")

# dup
res = send("alice", "bob", "hi bob", "c1", "gwA#5", 5)
check(res == [1, 1, sent, b"dup"], "retry returns dup: %r" % (res,))
p = published()
check(len(p) == 1 and p[0][0] == "parley:gw:gwA" and decode_env(p[0][1])["f"]["id"] == 1,
      "retry re-publishes only the ack")
check(r("LLEN", U("bob", "inbox")) == 1, "no second copy")

# no such user
res = send("alice", "zed", "x", "c2", "gwA#5", 5)
check(res == b"no_such_user", "send to unknown user")
p = published()
check(len(p) == 1 and decode_env(p[0][1]) == {"t": "c", "c": 5, "f": {
    "kind": "error", "code": "no_such_user", "message": "no such user: zed", "cid": "c2"}},
    "error envelope %r" % (p,))
check(r("GET", "parley:ids") == b"1", "no id consumed")

# sender's other sessions get the copy with x
sopen("alice", "gwB", 9)
sopen("alice", "gwA", 6)
published()
res = send("alice", "bob", "second", "c3", "gwA#5", 5)
check(res[:2] == [2, 2], "second message id 2, alice seq 2")
p = published()
envs = [(c, decode_env(pl)) for c, pl in p]
alice_copies = sorted(c for c, e in envs if e["t"] == "u" and e["u"] == "alice")
check(alice_copies == ["parley:gw:gwA", "parley:gw:gwB"] and
      all(e["x"] == "gwA#5" for c, e in envs if e["t"] == "u" and e["u"] == "alice"),
      "alice's copy to gwA (conn 6) and gwB with x = sending session")

# offline inbox: carol has no session
res = send("alice", "carol", "for later", "c4", "gwA#5", 5)
published()
check(r("HGET", U("carol", "meta"), "pushed") is None, "carol pushed unset while offline")
res = sopen("carol", "gw1", 11)
check(res[0] == 1 and len(res) == 3 and unpack(res[2])["data"] == "for later",
      "session_open returns the pending entry")
check(r("HGET", U("carol", "meta"), "pushed") == b"1", "pushed set on open")
res = sopen("carol", "gw2", 12)
check(len(res) == 2, "second open: nothing pending")
published()

# self send: one entry, to all sessions but the sending one, ack
res = send("alice", "alice", "note", "c5", "gwA#5", 5)
check(res[1] == 4, "self-send: alice seq %r" % (res,))
p = [(c, decode_env(pl)) for c, pl in published()]
check(sorted(c for c, e in p if e["t"] == "u") == ["parley:gw:gwA", "parley:gw:gwB"] and
      sum(1 for c, e in p if e["t"] == "c") == 1, "self-send deliveries + one ack")
check(r("LLEN", U("alice", "inbox")) == 4, "one inbox entry for self-send")
check(r("SISMEMBER", U("alice", "contacts"), "alice") == 0, "no self contact")

# sync
seq = int(r("HGET", U("alice", "meta"), "seq"))
ep = r("HGET", U("alice", "meta"), "epoch")
res = ev("sync", [U("alice", "meta"), U("alice", "inbox")], [1, ep])
check(res[0] == 1 and res[1] == seq and [unpack(x)["seq"] for x in res[2:]] == [2, 3, 4],
      "sync after 1 returns 2..4")
res = ev("sync", [U("alice", "meta"), U("alice", "inbox")], [seq, ep])
check(res == [1, seq], "sync at head: recovered, nothing")
res = ev("sync", [U("alice", "meta"), U("alice", "inbox")], [1, "other"])
check(res == [0, seq], "sync with a different epoch: not recovered")
res = ev("sync", [U("alice", "meta"), U("alice", "inbox")], [seq + 5, ep])
check(res == [0, seq], "sync after > seq: not recovered")
r("LPOP", U("alice", "inbox"))
r("LPOP", U("alice", "inbox"))
res = ev("sync", [U("alice", "meta"), U("alice", "inbox")], [1, ep])
check(res == [0, seq], "sync past the cap: not recovered")
res = ev("sync", [U("alice", "meta"), U("alice", "inbox")], [2, ep])
check(res[0] == 1 and len(res) == 4, "sync just inside the cap: recovered")

# typing
res = ev("typing", [U("bob", "account"), U("bob", "sessions")],
         ["parley:gw:", "bob", b"\x81\xa4kind\xa6typing"])
p = published()
check(res == 1 and sorted(c for c, _ in p) == ["parley:gw:gw1", "parley:gw:gw2"] and
      unpack(p[0][1])["t"] == "u" and "s" not in unpack(p[0][1]), "typing to bob's gateways")
res = ev("typing", [U("zed", "account"), U("zed", "sessions")], ["parley:gw:", "zed", "x"])
check(res == 0 and published() == [], "typing to unknown user")

# contacts
def contacts(user, limit):
    return ev("contacts", ["parley:users", U(user, "contacts"), "parley:online", U(user, "groups"),
                           U(user, "unread"), U(user, "read")],
              [user, limit, "parley:{g:%s}:members", "parley:{u:%s}:read", "parley:{c:%s}:history"])


res = contacts("alice", 200)
check(res[0] == 1 and res[1::6] == [b"bob", b"carol"] and res[2::6] == [1, 1],
      "contacts everyone mode %r" % (res,))
check(unpack(res[6])["data"] == "second" and unpack(res[12])["data"] == "for later",
      "last message of each conversation %r" % (res,))
res = contacts("alice", 2)
check(sorted(res[1::6]) == [b"bob", b"carol"] and res[0] == 0, "contacts set mode %r" % (res,))
res = contacts("bob", 1)
check(res[0] == 0 and res[1::6] == [b"alice"] and res[2] == 1, "bob's contacts %r" % (res,))

# session_close
r("SET", "parley:gw:gw1:alive", "1", "PX", 60000)
check(sclose("bob", "gw1", 7, reaping=True) == -1 and published() == [] and
      r("SISMEMBER", U("bob", "sessions"), "gw1#7") == 1 and
      r("SISMEMBER", "parley:gw:gw1:sessions", "bob#7") == 1,
      "reaping a gateway whose alive key is back: -1, nothing closed")
check(sclose("bob", "gw1", 7) == 0 and published() == [], "close one of two: not last")
r("DEL", "parley:gw:gw1:alive")
bob_seq = r("HGET", U("bob", "meta"), "seq")
check(sclose("bob", "gw2", 3) == 1 and r("HGET", U("bob", "meta"), "pushed") == bob_seq,
      "close the last: 1, and pushed = seq")
p = published()
check(len(p) == 1 and unpack(p[0][1]) == {"kind": "offline", "from": "bob"}, "offline published")
check(sclose("bob", "gw2", 3) == 0 and published() == [], "second close is a no-op")
check(r("SISMEMBER", "parley:online", "bob") == 0, "bob offline")
check(r("SISMEMBER", "parley:gw:gw2:sessions", "bob#3") == 0, "gateway set cleaned")

# offline bob: message goes to inbox only, pushed unchanged
send("alice", "bob", "while away", "c6", "gwA#5", 5)
p = [(c, decode_env(pl)) for c, pl in published()]
check(not any(e["t"] == "u" and e["u"] == "bob" for _, e in p), "no delivery to offline bob")
res = sopen("bob", "gw3", 1)
check(len(res) == 3 and unpack(res[2])["data"] == "while away", "bob gets it on open")
send("alice", "bob", "while online", "c6b", "gwA#5", 5)
res = sopen("bob", "gw3", 2)
check(len(res) == 2, "a second session gets nothing pending (the first had everything)")
sclose("bob", "gw3", 2)
sclose("bob", "gw3", 1)
published()

# slot leases
r("SET", "parley:slot:3", "r1", "PX", 3000)
check(ev("renew_slot", ["parley:slot:3"], ["r2", 9000]) == 0, "renew by non-owner refused")
check(ev("renew_slot", ["parley:slot:3"], ["r1", 9000]) == 1 and
      r("PTTL", "parley:slot:3") > 3000, "renew by owner")
check(ev("release_slot", ["parley:slot:3"], ["r2"]) == 0, "release by non-owner refused")
check(ev("release_slot", ["parley:slot:3"], ["r1"]) == 1 and
      r("EXISTS", "parley:slot:3") == 0, "release by owner")

# forget_gateway: the reaper's last step
FG = ["parley:gateways", "parley:gw:gwF:alive", "parley:gw:gwF:sessions"]
r("SADD", "parley:gateways", "gwF")
r("SADD", "parley:gw:gwF:sessions", "x#1")
check(ev("forget_gateway", FG, ["gwF"]) == 0 and r("SISMEMBER", "parley:gateways", "gwF") == 1,
      "forget_gateway: kept while it has sessions")
r("DEL", "parley:gw:gwF:sessions")
r("SET", "parley:gw:gwF:alive", 1, "PX", 60000)
check(ev("forget_gateway", FG, ["gwF"]) == 0 and r("SISMEMBER", "parley:gateways", "gwF") == 1,
      "forget_gateway: kept when its alive key is back")
r("DEL", "parley:gw:gwF:alive")
check(ev("forget_gateway", FG, ["gwF"]) == 1 and r("SISMEMBER", "parley:gateways", "gwF") == 0,
      "forget_gateway: removed when dead with no session")

# epoch created by send when the recipient never had a session
ev("register", [U("dave", "account"), "parley:users"], ["dave", "H", 1])
send("alice", "dave", "hey", "c7", "gwA#5", 5)
check(r("HGET", U("dave", "meta"), "epoch") is not None, "epoch created on first inbox entry")
published()

# a batch: several messages in one call, in order, one PUBLISH per gateway
r("HSET", "parley:{g:#b}:meta", "open", 1, "created", 1, "by", "alice")
r("SADD", "parley:{g:#b}:members", "alice", "bob", "carol")
sopen("bob", "gw1", 7)
sopen("carol", "gw1", 11)
published()
res = send_batch([("alice", "bob", "b1", "k1", "gwA#5", 5),
                  ("alice", "zed", "z", "k2", "gwA#5", 5),
                  ("alice", "bob", "b1", "k1", "gwA#5", 5),
                  ("alice", "#b", "g1", "k3", "gwA#5", 5),
                  ("bob", "alice", "b2", "k4", "gw1#7", 7),
                  ("carol", "#nope", "x", "k5", "gw1#11", 11),
                  ("alice", "#b", "", "k6", "gwA#5", 5)])
check(len(res) == 7 and res[1] == b"no_such_user" and res[5] == b"no_such_user" and
      res[2] == res[0] + [b"dup"] and res[0][0] < res[3][0] < res[4][0] < res[6][0],
      "batch results in order (dup inside the batch, refusals, ids increasing): %r" % (res,))
raw = published(raw=True)
chans = [c for c, _ in raw]
check(sorted(chans) == sorted(set(chans)) and "parley:gw:gwA" in chans and
      "parley:gw:gw1" in chans, "one PUBLISH per gateway channel: %r" % chans)
envs = {c: [decode_env(e) for e in split_envs(pl)] for c, pl in raw}
to5 = [e["f"] for e in envs["parley:gw:gwA"] if e["t"] == "c" and e["c"] == 5]
check([(f["kind"], f.get("cid"), f.get("code")) for f in to5] ==
      [("ack", "k1", None), ("error", "k2", "no_such_user"), ("ack", "k1", None),
       ("ack", "k3", None), ("ack", "k6", None)] and to5[0]["id"] == to5[2]["id"],
      "alice's connection 5 gets its answers in order: %r" % to5)
gw1 = envs["parley:gw:gw1"]
bob_texts = [e["f"]["data"] for e in gw1 if e["t"] == "u" and e["u"] == "bob"]
bob_group = [e for e in gw1 if e["t"] == "m"]
check(bob_texts == ["b1"] and len(bob_group) == 2 and
      [e["f"]["data"] for e in bob_group] == ["g1", ""] and
      all("bob" in e["u"] and "carol" in e["u"] and "alice" not in e["u"] for e in bob_group),
      "gw1: bob's text once, then both group messages for bob and carol: %r" % gw1)
errs = [e["f"] for e in gw1 if e["t"] == "c" and e["c"] == 11]
check(len(errs) == 1 and errs[0]["code"] == "no_such_user", "carol: no such group")
check(unpack(r("LINDEX", U("carol", "inbox"), -1))["data"] == "" and
      r("HGET", U("carol", "unread"), "#b") == b"2", "carol's inbox and unread for #b")
r("SET", U("dave", "inbox"), "not a list")
r("HSET", U("dave", "account"), "pw", "x")
res = send_batch([("alice", "dave", "d", "k7", "gwA#5", 5),
                  ("alice", "bob", "after", "k8", "gwA#5", 5)])
check(isinstance(res[0], bytes) and res[0].startswith(b"failed:") and isinstance(res[1], list),
      "a Redis error fails one message, not the batch: %r" % (res,))
p = [decode_env(e)["f"] for _, e in published() if decode_env(e)["t"] == "c"]
check([(f["kind"], f.get("code")) for f in p] == [("error", "unavailable"), ("ack", None)],
      "the failed message is answered unavailable, the next one acked")
r("DEL", U("dave", "inbox"), U("dave", "account"))

# dedupe window: the cids hash turns into cids:old once older than ttl; both are checked
r("DEL", U("erin", "cids"), U("erin", "cids:old"))
ev("register", [U("erin", "account"), "parley:users"], ["erin", "H", 1])
send("erin", "alice", "one", "e1", "gwE#1", 1)
r("EXPIRE", U("erin", "cids"), 100)  # as if created 2 x 86400 - 100 s ago
send("erin", "alice", "two", "e2", "gwE#1", 1)

def cids(key):
    return [f for f in r("HKEYS", key) if len(f) <= 64]  # without the encoding marker


check(cids(U("erin", "cids:old")) == [b"e1"] and cids(U("erin", "cids")) == [b"e2"] and
      r("TTL", U("erin", "cids")) > 86400, "rotation: old entries move to cids:old")
check(r("OBJECT", "ENCODING", U("erin", "cids")) == b"hashtable",
      "a cids hash is a hashtable from its first entry (O(1) lookups)")
res = send("erin", "alice", "one", "e1", "gwE#1", 1)
check(isinstance(res, list) and res[-1] == b"dup", "a cid in cids:old is still a duplicate")
published()

# a large group (64 members or more): one envelope listing every member to every gateway
big = ["m%02d" % i for i in range(70)]
r("HSET", "parley:{g:#big}:meta", "open", 1, "created", 1, "by", "m00")
r("SADD", "parley:{g:#big}:members", *big)
r("SADD", "parley:gateways", "gwX", "gwY")
sopen("m00", "gwX", 1)
published()
res = send_batch([("m00", "#big", "to all", "big1", "gwX#1", 1)])
raw = published(raw=True)
envs = {c: [decode_env(e) for e in split_envs(pl)] for c, pl in raw}
many = {c: [e for e in es if e["t"] == "m"] for c, es in envs.items()}
check(isinstance(res[0], list) and sorted(c for c in many if many[c]) ==
      ["parley:gw:gwX", "parley:gw:gwY"] and
      all(len(many[c]) == 1 and sorted(many[c][0]["u"]) == big and len(many[c][0]["s"]) == 70
          and many[c][0]["x"] == "gwX#1" for c in ("parley:gw:gwX", "parley:gw:gwY")),
      "70 members: one envelope with all 70 users and seqs to each gateway: %r" % sorted(many))
e = many["parley:gw:gwX"][0]
check(all(unpack(r("LINDEX", U(u, "inbox"), -1))["seq"] == sq for u, sq in zip(e["u"], e["s"])) and
      r("HGET", U("m05", "unread"), "#big") == b"1" and r("HGET", U("m00", "unread"), "#big") is None,
      "each member's inbox entry has the seq of the envelope; unread for all but the sender")
r("SREM", "parley:gateways", "gwX", "gwY")

# NOSCRIPT fallback is exercised by the router test (SCRIPT FLUSH while running)
print("%d failure(s)" % failures)
sys.exit(1 if failures else 0)
