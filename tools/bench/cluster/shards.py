#!/usr/bin/env python3
"""shards.py - the tables of docs/benchmarks.md "Redis Cluster (issue 15)" from
a directory of tools/bench/cluster/shards.sh results (SETUP-BENCH-RUN.json and
the Redis counters cluster/stats.sh kept: .before.txt / .after.txt).

    tools/bench/cluster/shards.py DIR

Tables: the fixed rate (medians of the runs, and every run), the ramps, the
overload (the most delivered), the idle stack (CPU per second per node), the
work of each Redis node per message (CPU, script calls, PUBLISHes, bus
relays, WAITs), and the per-shard arithmetic: the CPU one master spends per
message of the whole traffic with N masters, fitted as c(N) = a/N + b (a: the
work that splits over the shards, b: what every master does for every message
whatever it holds, e.g. relaying classic PUBLISHes), so N masters with a core
each carry at most 1e6 / c(N) msg/s, and never more than 1e6 / b. On one
shared machine b also holds the batching a master loses when it sees 1/N of
the commands: docs/benchmarks.md reads it as an upper bound. Standard library
only.
"""
import glob
import json
import os
import re
import statistics
import sys

ORDER = ["one", "one-steps", "c1", "c2", "c3", "c3r", "c3r-wait"]
LABEL = {
    "one": "one Redis, send.lua",
    "one-steps": "one Redis, --send-steps",
    "c1": "cluster, 1 master",
    "c2": "cluster, 2 masters",
    "c3": "cluster, 3 masters",
    "c3r": "cluster, 3 masters + 1 replica each",
    "c3r-wait": "the same, --wait-replicas 1",
}


def med(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def f(v, nd=1):
    if v is None:
        return "-"
    if isinstance(v, str):
        return v
    if abs(v) >= 100 or float(v).is_integer():
        return f"{v:,.0f}"
    return f"{v:,.{nd}f}"


def table(head, rows):
    out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    out += ["| " + " | ".join(f(c) if not isinstance(c, str) else c for c in r) + " |" for r in rows]
    return "\n".join(out)


def counters(path):
    """{node: {counter: value}} from a stats.sh snapshot"""
    nodes, cur = {}, None
    if not os.path.exists(path):
        return nodes
    for line in open(path):
        line = line.strip()
        if line.startswith("== "):
            cur = nodes.setdefault(line.split()[1], {})
            continue
        if cur is None or ":" not in line or line.startswith("#"):
            continue
        k, v = line.split(":", 1)
        if k.startswith("cmdstat_"):
            m = re.match(r"calls=(\d+)", v)
            if m:
                cur[k[8:]] = int(m.group(1))
        elif re.fullmatch(r"-?\d+", v):
            cur[k] = int(v)
        elif k.startswith("used_cpu_") and re.fullmatch(r"\d+\.\d+", v):
            cur[k] = float(v)
    return nodes


def node_work(prefix, sent):
    """{node: {what: per message}} over the traffic: between the first and the last snapshot
    stats.sh took at a new count of messages sent (else the whole run: after - before)"""
    snaps = {}
    for p in glob.glob(glob.escape(prefix) + ".snap.*.txt"):
        n = int(p.rsplit(".", 2)[-2])
        if n > 0:
            snaps[n] = p
    if len(snaps) >= 2:
        lo, hi = min(snaps), max(snaps)
        b, a, sent = counters(snaps[lo]), counters(snaps[hi]), hi - lo
    else:
        b, a = counters(prefix + ".before.txt"), counters(prefix + ".after.txt")
    out = {}
    for node, c in a.items():
        d = lambda k: c.get(k, 0) - b.get(node, {}).get(k, 0)
        out[node] = {
            "scripts": (d("fcall") + d("evalsha") + d("eval") + d("fcall_ro")) / sent,
            "publish": d("publish") / sent,
            "relayed": d("cluster_stats_messages_publish_received") / sent,
            "wait": d("wait") / sent,
            "commands": d("total_commands_processed") / sent,
        }
    return out


def idle_cpu(d):
    """{setup: {node: [CPU ms per second, each idle run]}} from the idle runs' snapshots"""
    out = {}
    for p in sorted(glob.glob(os.path.join(d, "*-idle-*.before.txt"))):
        m = re.match(r"(.+)-idle-(\d+)\.before\.txt$", os.path.basename(p))
        b, a = counters(p), counters(p.replace(".before.", ".after."))
        for node, c in a.items():
            o = b.get(node, {})
            secs = (c.get("snapshot_ms", 0) - o.get("snapshot_ms", 0)) / 1000
            if secs <= 0:
                continue
            cpu = sum(c.get(k, 0) - o.get(k, 0) for k in ("used_cpu_sys", "used_cpu_user"))
            out.setdefault(m.group(1), {}).setdefault(node, []).append(cpu * 1000 / secs)
    return out


def load(d):
    runs = {}
    for p in sorted(glob.glob(os.path.join(d, "*.json"))):
        m = re.match(r"(.+)-(pair|ramp|max)-(\d+)\.json$", os.path.basename(p))
        if not m:
            continue
        try:
            j = json.load(open(p))
        except ValueError:
            continue
        j["_prefix"] = p[:-5]
        runs.setdefault((m.group(1), m.group(2)), []).append(j)
    return runs


def cpu_per(step, per="sent"):
    n = step.get(per) or 0
    return {k: v * 1e6 / n for k, v in step.get("cpu_s", {}).items()} if n else {}


def redis_nodes(cpu):
    return sorted((k for k in cpu if k.startswith("redis")), key=lambda k: (len(k), k))


def summary(cpu):
    nodes = redis_nodes(cpu)
    masters = [k for k in nodes if "r" not in k[5:]] or nodes
    return {
        "redis": sum(cpu[k] for k in nodes),
        "masters": [cpu[k] for k in masters],
        "replicas": sum(cpu[k] for k in nodes if k not in masters),
        "router": sum(v for k, v in cpu.items() if k.startswith("router")),
        "gateways": sum(v for k, v in cpu.items() if k.startswith("gw")),
        "generator": cpu.get("generator"),
    }


def main(d):
    runs = load(d)
    setups = [s for s in ORDER if any((s, b) in runs for b in ("pair", "ramp", "max"))]
    setups += sorted({s for s, _ in runs} - set(setups))
    out = []
    machine = os.path.join(d, "machine.txt")
    if os.path.exists(machine):
        out.append("```\n" + open(machine).read().strip() + "\n```\n")

    # fixed rate
    rows, per_run, pairs = [], [], {}
    for s in setups:
        rs = runs.get((s, "pair"), [])
        if not rs:
            continue
        vals = []
        for j in rs:
            st = j["steps"][0]
            cpu = cpu_per(st)
            sm = summary(cpu)
            v = {
                "load": float(j["load_start"].split()[0]),
                "offered": st["rate"],
                "delivered": st["delivered_per_s"],
                "p50": st["latency"]["p50_ms"],
                "p99": st["latency"]["p99_ms"],
                "errors": st["errors"],
                "lost": st["lost"],
                "unacked": st["unacked"],
                "cpu": cpu,
                "work": node_work(j["_prefix"], st["sent"]) if st["sent"] else {},
                **sm,
            }
            vals.append(v)
            per_run.append([LABEL.get(s, s), j["label"].rsplit("-", 1)[-1], j["load_start"], v["delivered"], v["p50"], v["p99"], v["errors"], v["lost"],
                            " ".join(f(x) for x in v["masters"]), v["replicas"] or "-", v["redis"], v["router"], v["gateways"]])
        pairs[s] = vals
        m = lambda k: med([v[k] for v in vals])
        nm = max(len(v["masters"]) for v in vals)
        masters = [med([v["masters"][i] for v in vals if len(v["masters"]) > i]) for i in range(nm)]
        rows.append([LABEL.get(s, s), len(vals), f"{min(v['load'] for v in vals):.1f}-{max(v['load'] for v in vals):.1f}", m("offered"), m("delivered"),
                     m("p50"), m("p99"), m("errors"), m("lost"), " / ".join(f(x) for x in masters), m("replicas") or "-", m("redis"), m("router"),
                     m("gateways"), m("generator")])
    if rows:
        rate = rows[0][3]
        out.append(f"### 1:1 at a fixed rate ({f(rate)} msg/s, 1,000 pairs, 10 s): medians\n")
        out.append(table(["setup", "runs", "load1 at start", "offered msg/s", "delivered/s", "p50 ms", "p99 ms", "errors", "lost",
                          "CPU µs/msg per master", "replicas", "Redis total", "router", "gateways", "generator"], rows))
        out.append("\nEvery run:\n")
        out.append(table(["setup", "run", "load at start", "delivered/s", "p50 ms", "p99 ms", "errors", "lost", "masters µs/msg",
                          "replicas", "Redis total", "router", "gateways"], per_run))

    # ramps
    rows = []
    for s in setups:
        rs = runs.get((s, "ramp"), [])
        if not rs:
            continue
        held, p99s, reds, loads, firsts = [], [], [], [], []
        for j in rs:
            h = j.get("highest_rate_held") or 0
            held.append(h)
            loads.append(j["load_start"].split()[0])
            st = [x for x in j["steps"] if x["rate"] == h]
            if st:
                p99s.append(st[0]["latency"]["p99_ms"])
                reds.append(summary(cpu_per(st[0]))["redis"])
            bad = next((x for x in j["steps"] if not x["held"]), None)
            if bad:
                why = "p99 %s ms" % f(bad["latency"]["p99_ms"])
                if bad["errors"] or bad["lost"] or bad["unacked"]:
                    why = "errors %d lost %d unacked %d" % (bad["errors"], bad["lost"], bad["unacked"])
                firsts.append(f"{f(bad['rate'])}: {why}")
        rows.append([LABEL.get(s, s), " ".join(loads), " / ".join(f(h) for h in held), med(held), med(p99s), med(reds), "; ".join(firsts)])
    if rows:
        out.append("\n### Ramp (1,000 pairs, 5 s steps, held: p99 ≤ 10 ms and nothing lost, refused or unanswered)\n")
        out.append(table(["setup", "load1 at start", "highest held, each run", "median", "p99 ms at that step", "Redis CPU µs/msg there",
                          "first failed step, each run"], rows))

    # overload
    rows = []
    for s in setups:
        rs = runs.get((s, "max"), [])
        if not rs:
            continue
        st = [j["steps"][0] for j in rs]
        red = [summary(cpu_per(x, "acked")) for x in st]  # what was stored, not what was offered
        rows.append([LABEL.get(s, s), " ".join(j["load_start"].split()[0] for j in rs), med([x["rate"] for x in st]),
                     " / ".join(f(x["delivered_per_s"]) for x in st), med([x["delivered_per_s"] for x in st]), med([x["lost"] for x in st]),
                     med([x["unacked"] for x in st]), med([x["errors"] for x in st]), " / ".join(f(x) for x in red[0]["masters"]) if len(rs) == 1 else
                     " / ".join(f(med([r["masters"][i] for r in red if len(r["masters"]) > i])) for i in range(max(len(r["masters"]) for r in red))),
                     med([r["redis"] for r in red]), med([r["router"] for r in red]), med([r["gateways"] for r in red])])
    if rows:
        out.append("\n### Overload (1,000 pairs offering far more than is carried, 10 s): the most delivered\n")
        out.append(table(["setup", "load1 at start", "offered msg/s", "delivered/s, each run", "median", "lost", "unacked after 5 s", "errors",
                          "CPU µs/msg acked per master", "Redis total", "router", "gateways"], rows))

    # per node
    rows = []
    for s in setups:
        vals = pairs.get(s)
        if not vals:
            continue
        nodes = sorted({n for v in vals for n in v["work"]} | {n for v in vals for n in redis_nodes(v["cpu"])}, key=lambda k: (len(k), k))
        for n in nodes:
            cpu = med([v["cpu"].get(n) for v in vals])
            tot = med([v["redis"] for v in vals])
            w = lambda k: med([v["work"].get(n, {}).get(k) for v in vals])
            rows.append([LABEL.get(s, s), n, cpu, f"{100 * cpu / tot:.0f}%" if cpu is not None and tot else "-", w("scripts"), w("publish"), w("relayed"),
                         w("wait"), w("commands")])
    if rows:
        out.append("\n### Each Redis node's work per message (fixed rate, medians)\n")
        out.append(table(["setup", "node", "CPU µs/msg", "share of Redis", "script calls", "PUBLISH", "bus PUBLISH relays received", "WAIT",
                          "commands"], rows))

    # idle
    idle = idle_cpu(d)
    rows = []
    for s in ORDER + sorted(set(idle) - set(ORDER)):
        for n in sorted(idle.get(s, {}), key=lambda k: (len(k), k)):
            v = idle[s][n]
            rows.append([LABEL.get(s, s), n, " / ".join(f(x) for x in v), med(v)])
    if rows:
        out.append("\n### Idle stack (no client, 10 s): CPU each Redis node spends on its own\n")
        out.append(table(["setup", "node", "CPU ms per second, each run", "median"], rows))

    # arithmetic: per-master CPU per message c(N) = a/N + b
    pts = []
    for s, n in (("c1", 1), ("c2", 2), ("c3", 3)):
        if s in pairs:
            c = med([max(v["masters"]) for v in pairs[s]])
            avg = med([statistics.mean(v["masters"]) for v in pairs[s]])
            pts.append((n, avg, c))
    if len(pts) >= 2:
        xs = [1 / n for n, _, _ in pts]
        ys = [c for _, c, _ in pts]
        mx, my = statistics.mean(xs), statistics.mean(ys)
        a = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sum((x - mx) ** 2 for x in xs)
        b = my - a * mx
        out.append("\n### Per-shard arithmetic (fixed rate)\n")
        out.append(table(["masters N", "mean CPU µs/msg of a master", "busiest master", "msg/s one core per master carries (busiest)"],
                         [[n, avg, c, 1e6 / c] for n, avg, c in pts]))
        out.append(f"\nfit c(N) = a/N + b: a = {a:.1f} µs (splits over the shards), b = {b:.1f} µs (every master, every message)\n")
        if b > 0:
            out.append(table(["N", "c(N) µs", "msg/s (1e6 / c(N))"], [[n, a / n + b, 1e6 / (a / n + b)] for n in (1, 2, 3, 4, 6, 8, 16)]
                             + [["∞", b, 1e6 / b]]))
    print("\n".join(out))


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: shards.py DIR")
    main(sys.argv[1])
