#!/usr/bin/env python3
"""test_router.py - drives real parley-router processes against a private
redis-server: routing and acks, ordering, malformed envelopes, NOSCRIPT
fallback, the reaper, two routers splitting the slots 32/32, failover after
kill -9, graceful SIGTERM, and a Redis restart.

usage: test_router.py BUILD_DIR [PORT]   (starts and stops its own redis-server)"""
import os
import signal
import socket
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from rtest import Redis, decode_env, pack, split_envs, unpack  # noqa: E402

BUILD = sys.argv[1]
PORT = int(sys.argv[2]) if len(sys.argv) > 2 else 7651
URL = "redis://127.0.0.1:%d" % PORT
LOGDIR = os.environ.get("PARLEY_ARTIFACTS", "/tmp/parley-router-test")
os.makedirs(LOGDIR, exist_ok=True)
procs = []
failures = 0


def check(cond, what):
    global failures
    print(("ok   " if cond else "FAIL ") + what, flush=True)
    if not cond:
        failures += 1


def start_redis():
    p = subprocess.Popen(["redis-server", "--port", str(PORT), "--save", "", "--appendonly", "no",
                          "--bind", "127.0.0.1"], stdout=open(LOGDIR + "/redis.log", "a"),
                         stderr=subprocess.STDOUT)
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", PORT)).close()
            return p
        except OSError:
            time.sleep(0.05)
    raise SystemExit("redis-server did not start")


def start_router(rid, lease=900):
    p = subprocess.Popen([BUILD + "/parley-router", "--redis-url", URL, "--id", rid,
                          "--lease-ms", str(lease), "--reap-interval", "200"],
                         stdout=open("%s/%s.log" % (LOGDIR, rid), "a"), stderr=subprocess.STDOUT)
    procs.append(p)
    return p


def cli(*args, stdin=None):
    return subprocess.run([BUILD + "/parley", "--redis-url", URL] + list(args), input=stdin,
                          capture_output=True, text=True)


def fnv_slot(conv):
    h = 2166136261
    for b in conv.encode():
        h = ((h ^ b) * 16777619) & 0xFFFFFFFF
    return h % 64


def envelope(frm, to, data, cid, gw="gwA", conn=5):
    return pack({"t": "text", "u": frm, "g": gw, "c": conn, "to": to, "data": data, "cid": cid})


def publish_text(r, frm, to, data, cid, gw="gwA", conn=5):
    slot = fnv_slot("#" + to[1:] if to.startswith("#") else "|".join(sorted([frm, to])))
    return r("PUBLISH", "parley:rt:%d" % slot, envelope(frm, to, data, cid, gw, conn))


def owners(r):
    vals = r("MGET", *["parley:slot:%d" % i for i in range(64)])
    out = {}
    for v in vals:
        k = v.decode() if v else None
        out[k] = out.get(k, 0) + 1
    return out


def wait_for(pred, timeout=8.0):
    end = time.time() + timeout
    while time.time() < end:
        if pred():
            return True
        time.sleep(0.05)
    return pred()


class Sub:
    def __init__(self, *patterns):
        self.c = Redis(PORT)
        self.c.send("PSUBSCRIBE", *patterns)
        for _ in patterns:
            self.c.read()

    def collect(self, n=None, timeout=2.0):
        out = []
        self.c.settimeout(timeout)
        try:
            while n is None or len(out) < n:
                m = self.c.read()
                out.extend((m[2].decode(), e) for e in split_envs(m[3]))
        except socket.timeout:
            pass
        return out


redis_proc = start_redis()
try:
    r = Redis(PORT)
    r("FLUSHALL")
    for u in ("alice", "bob", "carol"):
        res = cli("useradd", u, "--password", "password1")
        check(res.returncode == 0, "useradd %s: %s" % (u, res.stdout.strip() or res.stderr.strip()))
    sha = dict(l.split()[:2] for l in cli("scripts", "--load").stdout.splitlines())

    def sopen(user, gw, conn):
        res = r("EVALSHA", sha["session_open"], 5, "parley:{u:%s}:sessions" % user,
                 "parley:{u:%s}:meta" % user, "parley:{u:%s}:inbox" % user, "parley:online",
                 "parley:gw:%s:sessions" % gw, user, "%s#%d" % (gw, conn), "%s#%d" % (user, conn),
                 "parley:presence:" + user)
        assert isinstance(res, list), res
        return res

    sopen("bob", "gw1", 1)
    sopen("alice", "gwA", 5)

    # --- one router ----------------------------------------------------------------
    r1 = start_router("r1")
    check(wait_for(lambda: owners(r).get("r1") == 64), "r1 claims all 64 slots")
    out = cli("routers").stdout
    check("r1" in out and "slots=64 [0-63]" in out, "parley routers: " + out.strip())

    sub = Sub("parley:gw:*")
    check(publish_text(r, "alice", "bob", "hello", "m1") == 1, "PUBLISH reaches one router")
    msgs = sub.collect(2)
    envs = {c: decode_env(p) for c, p in msgs}
    check(envs.get("parley:gw:gw1", {}).get("f", {}).get("data") == "hello",
          "bob's gateway gets the text")
    ack = envs.get("parley:gw:gwA", {})
    check(ack.get("t") == "c" and ack.get("c") == 5 and ack["f"].get("kind") == "ack" and
          ack["f"].get("cid") == "m1", "alice's gateway gets the ack: %r" % (ack,))

    # retry with the same cid: same id, no second copy
    publish_text(r, "alice", "bob", "hello", "m1")
    msgs = sub.collect(1)
    check(len(msgs) == 1 and decode_env(msgs[0][1])["f"]["id"] == ack["f"]["id"],
          "retry: only the ack again, same id")

    # unknown recipient
    publish_text(r, "alice", "nobody", "x", "m2")
    msgs = sub.collect(1)
    check(len(msgs) == 1 and decode_env(msgs[0][1])["f"].get("code") == "no_such_user",
          "no_such_user error to the sender")

    # malformed envelopes: dropped and logged, router keeps going
    r("PUBLISH", "parley:rt:0", b"\xc1garbage")
    r("PUBLISH", "parley:rt:0", pack({"t": "text", "u": "alice"}))
    r("PUBLISH", "parley:rt:0", pack([1, 2, 3]))
    r("PUBLISH", "parley:rt:0", b"")
    publish_text(r, "alice", "bob", "after garbage", "m3")
    msgs = sub.collect(2)
    check(len(msgs) == 2 and r1.poll() is None, "router survives malformed envelopes")

    # dev mode: a text without cid is stored and acked (ack without cid)
    publish_text(r, "alice", "bob", "no cid", "")
    msgs = {c: decode_env(p) for c, p in sub.collect(2)}
    check(msgs.get("parley:gw:gw1", {}).get("f", {}).get("data") == "no cid" and
          "cid" not in msgs["parley:gw:gw1"]["f"] and msgs.get("parley:gw:gwA", {}).get(
              "f", {}).get("kind") == "ack" and "cid" not in msgs["parley:gw:gwA"]["f"],
          "text without cid: delivered, acked without cid")

    # ordering: 300 messages in one conversation, pipelined
    slot = fnv_slot("alice|bob")
    for i in range(300):
        r.send("PUBLISH", "parley:rt:%d" % slot, envelope("alice", "bob", "n%d" % i, "o%d" % i))
    for i in range(300):
        r.read()
    msgs = sub.collect(600, timeout=5)
    to_bob = [decode_env(p)["f"] for c, p in msgs if c == "parley:gw:gw1"]
    acks = [decode_env(p)["f"] for c, p in msgs if c == "parley:gw:gwA"]
    check([f["data"] for f in to_bob] == ["n%d" % i for i in range(300)],
          "300 deliveries in publish order")
    ids = [f["id"] for f in to_bob]
    check(ids == sorted(ids) and len(set(ids)) == 300, "ids increase")
    check([a["cid"] for a in acks] == ["o%d" % i for i in range(300)], "300 acks in order")
    check([f["seq"] for f in to_bob] == list(range(to_bob[0]["seq"], to_bob[0]["seq"] + 300)),
          "bob's seqs are contiguous")

    # NOSCRIPT: flush the script cache under a running router
    r("SCRIPT", "FLUSH")
    publish_text(r, "alice", "bob", "after flush", "m4")
    msgs = sub.collect(2)
    check(len(msgs) == 2 and any(decode_env(p)["f"].get("data") == "after flush"
                                 for _, p in msgs), "EVAL fallback after SCRIPT FLUSH")

    # the same for the send function: FUNCTION FLUSH under a running router
    r("FUNCTION", "FLUSH")
    publish_text(r, "alice", "bob", "after function flush", "m4f")
    msgs = sub.collect(2)
    check(len(msgs) == 2 and any(decode_env(p)["f"].get("data") == "after function flush"
                                 for _, p in msgs) and len(r("FUNCTION", "LIST")) == 1,
          "FUNCTION LOAD and FCALL again after FUNCTION FLUSH")
    cli("scripts", "--load")  # for this test's own EVALSHAs

    # inbox via the CLI
    out = cli("inbox", "bob", "--count", "2").stdout
    check("seq=" in out and 'data="after flush"' in out and "from=alice to=bob" in out,
          "parley inbox: " + out.strip().replace("\n", " | "))

    # reaper: gateway gwX died with carol's session on it
    psub = Sub("parley:presence:carol")
    sopen("carol", "gwX", 9)
    psub.collect(1, timeout=0.5)  # her "online"
    r("SADD", "parley:gateways", "gwX")
    check(wait_for(lambda: r("SISMEMBER", "parley:gateways", "gwX") == 0, 5),
          "dead gateway removed from parley:gateways")
    check(r("SISMEMBER", "parley:online", "carol") == 0 and
          r("SCARD", "parley:{u:carol}:sessions") == 0, "its sessions closed, carol offline")
    pm = psub.collect(1)
    check(len(pm) == 1 and unpack(pm[0][1]) == {"kind": "offline", "from": "carol"},
          "offline announced")
    # a live gateway is left alone
    r("SET", "parley:gw:gwL:alive", 1, "PX", 5000)
    r("SADD", "parley:gateways", "gwL")
    sopen("carol", "gwL", 1)
    time.sleep(0.8)
    check(r("SISMEMBER", "parley:gateways", "gwL") == 1 and
          r("SISMEMBER", "parley:online", "carol") == 1, "live gateway not reaped: %r %r" % (
              r("SMEMBERS", "parley:gateways"), r("SMEMBERS", "parley:online")))

    # --- two routers ---------------------------------------------------------------
    r2 = start_router("r2")
    check(wait_for(lambda: owners(r) == {"r1": 32, "r2": 32}), "two routers split 32/32: %r"
          % owners(r))
    check(r("PUBSUB", "NUMSUB", *["parley:rt:%d" % i for i in range(64)])[1::2] == [1] * 64,
          "every slot channel has exactly one subscriber")
    publish_text(r, "alice", "bob", "two routers", "m5")
    check(len(sub.collect(2)) == 2, "routing works with two routers")

    # failover: kill -9 r1, r2 takes everything once the leases expire
    r1.send_signal(signal.SIGKILL)
    r1.wait()
    t0 = time.time()
    check(wait_for(lambda: owners(r) == {"r2": 64}), "r2 holds 64 after r1 is killed")
    print("     failover took %.1f s (lease 0.9 s)" % (time.time() - t0))
    publish_text(r, "alice", "bob", "after failover", "m6")
    check(len(sub.collect(2)) == 2, "routing works after failover")
    check(wait_for(lambda: r("ZSCORE", "parley:routers", "r1") is None, 5),
          "dead router pruned from parley:routers")

    # Redis restart: the router reconnects, reloads scripts, re-claims
    redis_proc.send_signal(signal.SIGKILL)
    redis_proc.wait()
    time.sleep(0.5)
    redis_proc = start_redis()
    r = Redis(PORT)
    check(wait_for(lambda: owners(r) == {"r2": 64}, 10), "r2 re-claims after a Redis restart")
    for u in ("alice", "bob"):
        cli("useradd", u, "--password", "password1")
    sub = Sub("parley:gw:*")
    publish_text(r, "alice", "bob", "after restart", "m7")
    msgs = sub.collect(1)
    check(len(msgs) == 1 and decode_env(msgs[0][1])["f"]["kind"] == "ack",
          "routing works after the restart (ack)")

    # graceful stop
    r2.send_signal(signal.SIGTERM)
    try:
        rc = r2.wait(6)
    except subprocess.TimeoutExpired:
        rc = None
    check(rc == 0, "SIGTERM: exit 0 (got %r)" % rc)
    check(owners(r) == {None: 64}, "SIGTERM: every slot released")
    check(r("ZCARD", "parley:routers") == 0, "SIGTERM: left parley:routers")
    check(r("PUBLISH", "parley:rt:0", b"x") == 0, "no subscriber left")
finally:
    for p in procs:
        if p.poll() is None:
            p.kill()
            p.wait()
    redis_proc.kill()
    redis_proc.wait()

print("%d failure(s)" % failures)
sys.exit(1 if failures else 0)
