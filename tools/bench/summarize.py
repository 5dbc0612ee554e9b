#!/usr/bin/env python3
"""summarize.py - turn a directory of parley-bench JSON results (from
tools/bench/figures.sh: NAME-RUN.json) into Markdown tables: one row per run
and the median of the runs, with the load average each run started under; a
pair or fanout run with --ops gets one table per op (text, edit, ...).
Standard library only.

    tools/bench/summarize.py DIR
"""
import glob
import json
import os
import re
import statistics
import sys


def med(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def f(v, nd=1):
    if v is None:
        return "-"
    if isinstance(v, float) and v.is_integer() and abs(v) >= 1 or v == 0:
        return f"{int(v):,}"
    if isinstance(v, float):
        return f"{v:,.{nd}f}"
    return f"{v:,}"


def cpu_per(cpu, n, names):
    if not n:
        return {k: None for k in names}
    return {k: cpu.get(k, 0) * 1e6 / n for k in names}


def table(head, rows):
    out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    out += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(out)


def load(dirname):
    groups = {}
    for p in sorted(glob.glob(os.path.join(dirname, "*.json"))):
        m = re.match(r"(.+)-(\d+)\.json$", os.path.basename(p))
        if not m:
            continue
        try:
            with open(p) as fh:
                groups.setdefault(m.group(1), []).append((int(m.group(2)), json.load(fh)))
        except ValueError as e:
            print(f"summarize.py: {p}: {e}", file=sys.stderr)
    return groups


def connect_section(name, runs):
    rows, vals = [], []
    for run, d in sorted(runs):
        c = d["connect"]
        gws = c.get("gateways", [])
        bpc = med([g["bytes_per_connection"] for g in gws]) if gws else None
        gwcpu = sum(v for k, v in c.get("cpu_s", {}).items() if k.startswith("gw"))
        per = gwcpu * 1e6 / c["opened"] if c["opened"] else None
        redis = c.get("cpu_s", {}).get("redis", 0) * 1e6 / c["opened"] if c["opened"] else None
        v = (c["opened"], c["failed"], c["handshakes_per_s"], c["connect_time"]["p50_ms"],
             c["connect_time"]["p99_ms"], bpc, per, redis)
        vals.append(v)
        rows.append([str(run), d["load_start"]] + [f(x, 1 if isinstance(x, float) else 0) for x in v])
    m = [med([v[i] for v in vals]) for i in range(8)]
    rows.append(["**median**", ""] + [f(x) for x in m])
    head = ["run", "load avg at start", "opened", "failed", "handshakes/s", "connect p50 ms",
            "connect p99 ms", "gateway RSS bytes/conn", "gateway CPU µs/conn", "redis CPU µs/conn"]
    return f"### {name}\n\n" + table(head, rows) + "\n"


def step_row(s):
    lat = s["latency"]
    return (s["rate"], s["delivered_per_s"], lat["p50_ms"], lat["p90_ms"], lat["p99_ms"],
            lat["p999_ms"], lat["max_ms"], s["lost"], s["unacked"], s["errors"])


def pair_section(name, runs, last=False, step=0):
    rows, vals, cpus = [], [], []
    names = set()
    for _, d in runs:
        for s in d["steps"]:
            names.update(s.get("cpu_s", {}).keys())
    names = sorted(names, key=lambda k: (k != "redis", not k.startswith("router"), k))
    for run, d in sorted(runs):
        if len(d["steps"]) <= step:
            rows.append([str(run), d["load_start"], "no traffic step: " + d.get("error", "")])
            continue
        s = d["steps"][step]
        v = step_row(s)
        if last:
            v = v + (s["last_member"]["p50_ms"], s["last_member"]["p99_ms"])
        vals.append(v)
        cp = cpu_per(s.get("cpu_s", {}), s["sent"], names)
        cpus.append(cp)
        rows.append([str(run), d["load_start"]] + [f(x, 3 if isinstance(x, float) and x < 1000 else 0) for x in v]
                    + [" ".join(f"{k} {cp[k]:.0f}" for k in names if cp[k] is not None)])
    if vals:
        m = [med([v[i] for v in vals]) for i in range(len(vals[0]))]
        mc = {k: med([c[k] for c in cpus]) for k in names}
        rows.append(["**median**", ""] + [f(x, 3 if isinstance(x, float) and x < 1000 else 0) for x in m]
                    + [" ".join(f"{k} {mc[k]:.0f}" for k in names if mc[k] is not None)])
    head = ["run", "load avg at start", "offered msg/s", "delivered/s", "p50 ms", "p90 ms", "p99 ms",
            "p99.9 ms", "max ms", "lost", "unacked", "errors"]
    if last:
        head += ["last member p50 ms", "last member p99 ms"]
    head += ["CPU µs per message sent"]
    return f"### {name}\n\n" + table(head, rows) + "\n"


def ramp_section(name, runs):
    out = [f"### {name}\n"]
    best = []
    for run, d in sorted(runs):
        best.append(d.get("highest_rate_held", 0))
        rows = []
        for s in d["steps"]:
            v = step_row(s)
            rows.append([f(x, 3 if isinstance(x, float) and x < 1000 else 0) for x in v]
                        + [f(s.get("load1")), "held" if s.get("held") else "**failed**"])
        out.append(f"Run {run} (load average at start {d['load_start']}): highest rate held "
                   f"**{f(d.get('highest_rate_held', 0), 0)} msg/s**\n")
        out.append(table(["offered msg/s", "delivered/s", "p50 ms", "p90 ms", "p99 ms", "p99.9 ms",
                          "max ms", "lost", "unacked", "errors", "load1", ""], rows) + "\n")
    out.append(f"Median of the runs' highest rate held: **{f(med(best), 0)} msg/s**\n")
    return "\n".join(out)


def attacker_text(s):
    a, m, el = s.get("attacker", {}), s.get("attack", {}), s.get("duration_s") or 1
    parts = []
    if m.get("group"):
        g = a["group"]
        parts.append(f"group {f(g['acked'] / el, 1)} texts/s acked, {f(g['rate_limited'])} rate_limited")
    if m.get("sync"):
        y = a["sync"]
        mb = y["bytes"] / y["done"] / 1e6 if y["done"] else 0
        parts.append(f"{f(y['done'])} syncs of {mb:.1f} MB (p50 {f(y['time']['p50_ms'], 0)} ms)")
    if m.get("sessions"):
        c = a["sessions"]
        parts.append(f"{f(c['peak_open'])} sessions, {f(c['refused_429'])} refused 429")
    return "; ".join(parts) or "off"


def noisy_section(name, runs):
    out = [f"### {name}\n"]
    head = ["phase", "load1 start-end", "ack p50 ms", "ack p99 ms", "ack max ms", "delivery p50 ms",
            "delivery p99 ms", "delivery max ms", "p99 / off (ack, delivery)", "lost", "unacked",
            "errors", "attacker"]
    by_phase = {}
    for run, d in sorted(runs):
        steps = d.get("steps", [])
        base = next((s for s in steps if not any(s.get("attack", {}).values())), None)
        rows = []
        for s in steps:
            ack, lat = s["ack"], s["latency"]
            ratio = "-"
            if base and base["ack"]["p99_ms"] and base["latency"]["p99_ms"]:
                ratio = (f"{ack['p99_ms'] / base['ack']['p99_ms']:,.1f}, "
                         f"{lat['p99_ms'] / base['latency']['p99_ms']:,.1f}")
            v = (ack["p50_ms"], ack["p99_ms"], ack["max_ms"], lat["p50_ms"], lat["p99_ms"], lat["max_ms"])
            by_phase.setdefault(s["phase"], []).append(v)
            rows.append([s["phase"], f"{s.get('load1_start', 0):.2f}-{s.get('load1', 0):.2f}"]
                        + [f(x, 3 if x < 1000 else 0) for x in v]
                        + [ratio, f(s["lost"]), f(s["unacked"]), f(s["errors"]), attacker_text(s)])
        nz = d.get("noisy", {})
        out.append(f"Run {run} (load average at start {d['load_start']}, at the end {d['load_end']}; "
                   f"group of {f(nz.get('group_members'))}, inbox {f(nz.get('inbox_entries'))} x "
                   f"{f(nz.get('inbox_entry_bytes'))} bytes):\n")
        out.append(table(head, rows) + "\n")
    if len(runs) > 1:
        rows = []
        for phase, vs in by_phase.items():
            m = [med([v[i] for v in vs]) for i in range(6)]
            rows.append([phase] + [f(x, 3 if x < 1000 else 0) for x in m])
        out.append("Medians over the runs:\n")
        out.append(table(["phase", "ack p50 ms", "ack p99 ms", "ack max ms", "delivery p50 ms",
                          "delivery p99 ms", "delivery max ms"], rows) + "\n")
    return "\n".join(out)


def main():
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    groups = load(sys.argv[1])
    if not groups:
        print(f"summarize.py: no NAME-RUN.json files in {sys.argv[1]}", file=sys.stderr)
        return 1
    parts = []
    for name in sorted(groups):
        runs = groups[name]
        mode = runs[0][1]["mode"]
        if mode == "connect":
            parts.append(connect_section(name, runs))
        elif mode == "ramp":
            parts.append(ramp_section(name, runs))
        elif mode == "noisy":
            parts.append(noisy_section(name, runs))
        else:  # pair, fanout: one table per step (--ops: text, edit, react, delete)
            nsteps = max(len(d["steps"]) for _, d in runs)
            for i in range(max(nsteps, 1)):
                op = next((d["steps"][i].get("op") for _, d in runs if len(d["steps"]) > i), None)
                title = f"{name}: {op}" if nsteps > 1 else name
                parts.append(pair_section(title, runs, last=(mode == "fanout"), step=i))
    print("\n".join(parts))
    return 0


if __name__ == "__main__":
    sys.exit(main())
