#!/usr/bin/env python3
"""results.csv of bench/large_batch/run.sh -> an SVG line chart: final test
accuracy against the global batch (log2 axis), one line per method.
    plot.py results.csv accuracy.svg"""
import csv
import math
import sys

rows = list(csv.DictReader(open(sys.argv[1])))
methods = []
for r in rows:
    if r["method"] not in methods:
        methods.append(r["method"])
batches = sorted({int(r["global_batch"]) for r in rows})
W, H, L, R, T, B = 640, 400, 70, 130, 40, 60
x0, x1 = math.log2(batches[0]), math.log2(batches[-1])
X = lambda b: L + (math.log2(b) - x0) / (x1 - x0) * (W - L - R)
Y = lambda a: T + (1 - a) * (H - T - B)
colors = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e"]
out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" font-family="sans-serif" font-size="12">',
       f'<rect width="{W}" height="{H}" fill="white"/>',
       f'<text x="{W/2}" y="20" text-anchor="middle" font-size="14">Fashion-MNIST MLP, 2 ranks, 10 epochs: test accuracy vs global batch</text>']
for a in [0, 0.2, 0.4, 0.6, 0.8, 1.0]:
    out.append(f'<line x1="{L}" y1="{Y(a)}" x2="{W-R}" y2="{Y(a)}" stroke="#ddd"/>')
    out.append(f'<text x="{L-8}" y="{Y(a)+4}" text-anchor="end">{a:.1f}</text>')
for b in batches:
    out.append(f'<text x="{X(b)}" y="{H-B+18}" text-anchor="middle">{b}</text>')
out.append(f'<text x="{(L+W-R)/2}" y="{H-15}" text-anchor="middle">global batch (log2 scale)</text>')
out.append(f'<text x="18" y="{(T+H-B)/2}" text-anchor="middle" transform="rotate(-90 18 {(T+H-B)/2})">final test accuracy</text>')
for i, m in enumerate(methods):
    pts = sorted((int(r["global_batch"]), float(r["final_test_acc"])) for r in rows if r["method"] == m)
    path = " ".join(f"{X(b):.1f},{Y(a):.1f}" for b, a in pts)
    c = colors[i % len(colors)]
    out.append(f'<polyline points="{path}" fill="none" stroke="{c}" stroke-width="2"/>')
    for b, a in pts:
        out.append(f'<circle cx="{X(b):.1f}" cy="{Y(a):.1f}" r="3.5" fill="{c}"/>')
    out.append(f'<line x1="{W-R+15}" y1="{T+20*i+10}" x2="{W-R+35}" y2="{T+20*i+10}" stroke="{c}" stroke-width="2"/>')
    out.append(f'<text x="{W-R+40}" y="{T+20*i+14}">{m}</text>')
out.append("</svg>")
open(sys.argv[2], "w").write("\n".join(out) + "\n")
