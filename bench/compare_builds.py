#!/usr/bin/env python3
"""Compares two builds of hpcml side by side in one run (before/after a change).

    bench/compare_builds.py OLD_BUILD_DIR NEW_BUILD_DIR [--rounds K] [--data DIR]
                            [--skip-allreduce] [--skip-train]

Runs, alternating old and new round by round so that a slow phase of the host
hits both alike:
  * `mpiexec -n 2 hpcml bench allreduce` (1 MiB - 64 MiB, every algorithm,
    out-of-place busbw, plus the same-size memcpy column as a control that
    no change to comm can move), and
  * bench/train_throughput (1 and 2 ranks, E(2)),
then prints, for each figure, the median over rounds of the old and the new
build and the ratio new/old. A ratio near 1.00 means unchanged within noise;
the spread (min-max of the per-round ratios) says how large the noise is.
"""
import argparse
import os
import re
import statistics
import subprocess
import sys


def run(cmd):
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if p.returncode != 0:
        sys.exit(f"compare_builds: failed ({p.returncode}): {' '.join(cmd)}\n{p.stdout[-2000:]}")
    return p.stdout


def allreduce(build, args):
    out = run(["mpiexec", "-n", "2", os.path.join(build, "jobs", "hpcml"), "bench", "allreduce",
               "--min-bytes", args.min_bytes, "--max-bytes", args.max_bytes, "--reps", "3"])
    rows = {}
    for line in out.splitlines():
        m = re.match(r"\s+(\d+)\s+\d+\s+(\S+)\s+\|\s+\S+\s+\S+\s+(\S+)\s+(\d+)\s+\|.*\|\s+(\S+)\s*$", line)
        if m:
            if int(m.group(4)) != 0:
                sys.exit(f"compare_builds: {build}: wrong results in: {line}")
            rows[(int(m.group(1)), m.group(2))] = float(m.group(3))
            # The same-size memcpy of each row: a control that no comm change can move.
            rows[(int(m.group(1)), "~memcpy(control)")] = float(m.group(5))
    if not rows:
        sys.exit(f"compare_builds: no table rows from {build}:\n{out[-2000:]}")
    return rows


def train(build, args):
    exe = os.path.join(build, "bench", "train_throughput", "train_throughput")
    out = run([exe, "--data", args.data, "--steps", str(args.steps), "--repeats", "1"])
    fig = {}
    for line in out.splitlines():
        m = re.match(r"^([12])\s+(\d+)\s+([\d.]+)", line)
        if m:
            fig[f"X({m.group(1)}) samples/s"] = float(m.group(2))
            fig[f"step ms, {m.group(1)} rank(s)"] = float(m.group(3))
        m = re.search(r"E\(2\) = X\(2\)/\(2 X\(1\)\) = ([\d.]+)", line)
        if m:
            fig["E(2)"] = float(m.group(1))
    if "E(2)" not in fig:
        sys.exit(f"compare_builds: no E(2) from {exe}:\n{out[-2000:]}")
    return fig


def table(title, names, old, new):
    print(f"\n{title}")
    print(f"{'figure':<40} {'old (median)':>13} {'new (median)':>13} {'new/old':>8} {'per-round ratios':>20}")
    for name in names:
        o = [r[name] for r in old]
        n = [r[name] for r in new]
        ratios = [b / a for a, b in zip(o, n) if a > 0]
        mo, mn = statistics.median(o), statistics.median(n)
        print(f"{name:<40} {mo:>13.3f} {mn:>13.3f} {mn / mo:>8.3f} "
              f"{min(ratios):>9.3f} - {max(ratios):<8.3f}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("old")
    ap.add_argument("new")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--data", default="data/fashion-mnist")
    ap.add_argument("--steps", type=int, default=400)
    ap.add_argument("--min-bytes", default="1M")
    ap.add_argument("--max-bytes", default="64M")
    ap.add_argument("--skip-allreduce", action="store_true")
    ap.add_argument("--skip-train", action="store_true")
    args = ap.parse_args()
    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
    print(f"# compare_builds: old={args.old} new={args.new} rounds={args.rounds} cpu={cpu} "
          f"cores={os.cpu_count()}")
    ar_old, ar_new, tr_old, tr_new = [], [], [], []
    for r in range(args.rounds):
        order = [(args.old, ar_old, tr_old), (args.new, ar_new, tr_new)]
        if r % 2:
            order.reverse()
        for build, ar, tr in order:
            if not args.skip_allreduce:
                ar.append(allreduce(build, args))
            if not args.skip_train:
                tr.append(train(build, args))
        print(f"# round {r + 1}/{args.rounds} done", flush=True)
    if ar_old:
        keys = sorted(ar_old[0].keys() & ar_new[0].keys())
        named = [{f"{k[0] >> 20:>4} MiB {k[1]} busbw GB/s": r[k] for k in keys} for r in ar_old]
        named_new = [{f"{k[0] >> 20:>4} MiB {k[1]} busbw GB/s": r[k] for k in keys} for r in ar_new]
        table("hpcml bench allreduce, 2 ranks, out-of-place bus bandwidth", list(named[0].keys()),
              named, named_new)
    if tr_old:
        table("bench/train_throughput (1 thread per rank, ranks bound to cores)",
              list(tr_old[0].keys()), tr_old, tr_new)


if __name__ == "__main__":
    main()
