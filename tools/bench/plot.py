#!/usr/bin/env python3
"""plot.py - draw latency percentiles against offered rate from parley-bench
ramp (or several pair) JSON files, as a self-contained SVG. Standard library
only.

    tools/bench/plot.py RESULT.json [MORE.json ...] -o latency.svg [--title T]

Each offered rate is one point per percentile (p50, p90, p99, p99.9, max):
with several files (runs), the median of that percentile over the runs that
reached the rate. The y axis is logarithmic (milliseconds). A rate that did
not hold in most runs (p99 over the bound, or anything lost) is drawn hollow;
the p99 bound of the first file is a dashed line.
"""
import argparse
import json
import math
import statistics
import sys
from xml.sax.saxutils import escape

SERIES = [("p50_ms", "p50", "#1b9e77"), ("p90_ms", "p90", "#7570b3"),
          ("p99_ms", "p99", "#d95f02"), ("p999_ms", "p99.9", "#e7298a"),
          ("max_ms", "max", "#666666")]


def load(paths):
    steps, bound = [], None
    for p in paths:
        with open(p) as f:
            d = json.load(f)
        if bound is None:
            bound = d.get("config", {}).get("p99_bound_ms")
        for s in d.get("steps", []):
            if s.get("latency", {}).get("n", 0) > 0:
                steps.append(s)
    # several runs: one point per rate, the median of each percentile; a
    # rate counts as held when most of its runs held
    by_rate = {}
    for s in steps:
        by_rate.setdefault(s["rate"], []).append(s)
    merged = []
    for rate in sorted(by_rate):
        group = by_rate[rate]
        lat = {k: statistics.median(g["latency"][k] for g in group) for k, _, _ in SERIES}
        held = sum(1 for g in group if g.get("held")) * 2 > len(group)
        merged.append({"rate": rate, "latency": lat, "held": held, "runs": len(group)})
    return merged, bound


def nice_ticks_log(lo, hi):
    ticks = []
    e = math.floor(math.log10(lo))
    while 10 ** e <= hi * 1.0001:
        for m in (1, 2, 5):
            v = m * 10 ** e
            if lo <= v <= hi:
                ticks.append(v)
        e += 1
    return ticks


def nice_ticks_lin(lo, hi, n=6):
    span = hi - lo or 1
    step = 10 ** math.floor(math.log10(span / n))
    for m in (1, 2, 5, 10):
        if span / (step * m) <= n:
            step *= m
            break
    t = math.ceil(lo / step) * step
    out = []
    while t <= hi + 1e-9:
        out.append(t)
        t += step
    return out


def fmt(v):
    if v >= 1000:
        return f"{v/1000:g}k"
    return f"{v:g}"


def render(steps, bound, title, width=860, height=480):
    ml, mr, mt, mb = 70, 130, 40, 55
    pw, ph = width - ml - mr, height - mt - mb
    rates = [s["rate"] for s in steps]
    vals = [s["latency"][k] for s in steps for k, _, _ in SERIES if s["latency"][k] > 0]
    if bound:
        vals.append(bound)
    xlo, xhi = 0, max(rates) * 1.05
    ylo = 10 ** math.floor(math.log10(min(vals)))
    yhi = 10 ** math.ceil(math.log10(max(vals)))

    def X(r):
        return ml + (r - xlo) / (xhi - xlo) * pw

    def Y(v):
        v = max(v, ylo)
        return mt + ph - (math.log10(v) - math.log10(ylo)) / (math.log10(yhi) - math.log10(ylo)) * ph

    o = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
         f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="12">',
         f'<rect width="{width}" height="{height}" fill="white"/>',
         f'<text x="{width/2}" y="22" text-anchor="middle" font-size="15">{escape(title)}</text>']
    for t in nice_ticks_log(ylo, yhi):
        y = Y(t)
        o.append(f'<line x1="{ml}" y1="{y:.1f}" x2="{ml+pw}" y2="{y:.1f}" stroke="#e5e5e5"/>')
        o.append(f'<text x="{ml-6}" y="{y+4:.1f}" text-anchor="end">{t:g}</text>')
    for t in nice_ticks_lin(xlo, xhi):
        x = X(t)
        o.append(f'<line x1="{x:.1f}" y1="{mt}" x2="{x:.1f}" y2="{mt+ph}" stroke="#f0f0f0"/>')
        o.append(f'<text x="{x:.1f}" y="{mt+ph+18}" text-anchor="middle">{fmt(t)}</text>')
    o.append(f'<rect x="{ml}" y="{mt}" width="{pw}" height="{ph}" fill="none" stroke="#333"/>')
    o.append(f'<text x="{ml+pw/2}" y="{height-12}" text-anchor="middle">offered rate (messages/s)</text>')
    o.append(f'<text transform="translate(18,{mt+ph/2}) rotate(-90)" text-anchor="middle">'
             'send → delivery latency (ms, log scale)</text>')
    if bound:
        y = Y(bound)
        o.append(f'<line x1="{ml}" y1="{y:.1f}" x2="{ml+pw}" y2="{y:.1f}" stroke="#c00" '
                 'stroke-dasharray="6,4"/>')
        o.append(f'<text x="{ml+pw+6}" y="{y+4:.1f}" fill="#c00">p99 bound {bound:g} ms</text>')
    for i, (key, name, color) in enumerate(SERIES):
        pts = [(X(s["rate"]), Y(s["latency"][key]), s.get("held", True)) for s in steps]
        path = " ".join(f"{x:.1f},{y:.1f}" for x, y, _ in pts)
        o.append(f'<polyline points="{path}" fill="none" stroke="{color}" stroke-width="2"/>')
        for x, y, held in pts:
            fill = color if held else "white"
            o.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3.5" fill="{fill}" stroke="{color}"/>')
        ly = mt + 20 + i * 20
        o.append(f'<line x1="{ml+pw+10}" y1="{ly}" x2="{ml+pw+30}" y2="{ly}" stroke="{color}" stroke-width="2"/>')
        o.append(f'<text x="{ml+pw+36}" y="{ly+4}">{name}</text>')
    o.append(f'<text x="{ml+pw+10}" y="{mt+20+len(SERIES)*20+10}" fill="#555">hollow: failed</text>')
    o.append(f'<text x="{ml+pw+10}" y="{mt+20+len(SERIES)*20+28}" fill="#555">(most runs)</text>')
    runs = max(s.get("runs", 1) for s in steps)
    if runs > 1:
        o.append(f'<text x="{ml+pw+10}" y="{mt+20+len(SERIES)*20+50}" fill="#555">median of</text>')
        o.append(f'<text x="{ml+pw+10}" y="{mt+20+len(SERIES)*20+66}" fill="#555">{runs} runs</text>')
    o.append("</svg>")
    return "\n".join(o) + "\n"


def main():
    ap = argparse.ArgumentParser(description="latency percentiles against rate, as SVG")
    ap.add_argument("json", nargs="+", help="parley-bench --json output (ramp or pair)")
    ap.add_argument("-o", "--output", required=True, help="SVG file to write")
    ap.add_argument("--title", default="Parley 1:1 latency against offered rate")
    a = ap.parse_args()
    try:
        steps, bound = load(a.json)
    except (OSError, ValueError, KeyError) as e:
        print(f"plot.py: cannot read the results: {e}", file=sys.stderr)
        return 1
    if not steps:
        print("plot.py: no step with deliveries in the input", file=sys.stderr)
        return 1
    with open(a.output, "w") as f:
        f.write(render(steps, bound, a.title))
    return 0


if __name__ == "__main__":
    sys.exit(main())
