#!/usr/bin/env python3
"""Kokkos (Serial) against the reference and omp backends at 1 thread, side by side.

    bench/kokkos/compare_backends.py [--hpcml build/jobs/hpcml] [--data data/fashion-mnist]
                                     [--rounds 3] [--steps 300] [--reference-steps 20]
                                     [--backends reference,omp,kokkos]

Trains the default job (configs/fashion_mnist_mlp.toml: 784-512-256-10 MLP, batch 64,
SGD with momentum) on 1 rank with parallel.threads = 1 and each backend, for --steps
steps (the reference backend, a naive serial oracle at about 0.6 s per step, for
--reference-steps) without evaluation or data verification; samples/s is over the
training steps only (summary.json), so the step counts do not bias it. The backends alternate round by round,
so a slow phase of a shared machine hits all alike. Prints each round's samples/s,
then per backend the median, min-max and the median step time, and the ratios of the
medians against omp and reference (per-round ratios' min-max beside them: their
spread says how large the noise is). Also checks that the final training loss of
every backend agrees with the reference within 1e-3 relative when they ran the same
number of steps (it prints the losses).

Needs a build with the Kokkos backend (cmake says "Kokkos backend: ..." when it
found Kokkos). Run it with nothing else on the machine; it prints the load average
before and after.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile


def load():
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def run_once(args, backend, out_dir, tag):
    name = f"{backend}-{tag}"
    steps = args.reference_steps if backend == "reference" else args.steps
    cmd = [args.hpcml, "train", args.config,
           "--set", f'parallel.backend="{backend}"', "--set", "parallel.threads=1",
           "--set", f"train.max_steps={steps}", "--set", "train.evaluate=false",
           "--set", "data.verify=false", "--set", f'data.path="{args.data}"',
           "--set", f'run.dir="{out_dir}"', "--set", f'run.name="{name}"',
           "--set", 'run.progress="never"']
    env = dict(os.environ, OMP_NUM_THREADS="1", OMP_WAIT_POLICY="passive")
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    if p.returncode != 0:
        sys.exit(f"compare_backends: {backend} failed ({p.returncode}): {' '.join(cmd)}\n"
                 f"{p.stdout[-2000:]}")
    with open(os.path.join(out_dir, name, "summary.json")) as f:
        s = json.load(f)
    return s["samples_per_s"], s["step_s_median"], s["final_train_loss"]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--hpcml", default="build/jobs/hpcml")
    ap.add_argument("--config", default="configs/fashion_mnist_mlp.toml")
    ap.add_argument("--data", default="data/fashion-mnist")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--reference-steps", type=int, default=20)
    ap.add_argument("--backends", default="reference,omp,kokkos")
    args = ap.parse_args()
    args.data = os.path.abspath(args.data)
    backends = args.backends.split(",")
    cpu = "?"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    print(f"# {args.hpcml} train {args.config}: 1 rank, 1 thread, {args.steps} steps "
          f"(reference: {args.reference_steps}), "
          f"{args.rounds} rounds; CPU {cpu}, {os.cpu_count()} hardware threads")
    print(f"# load average before: {load()}")
    samples = {b: [] for b in backends}
    steps = {b: [] for b in backends}
    losses = {b: [] for b in backends}
    with tempfile.TemporaryDirectory(prefix="hpcml-kokkos-bench-") as tmp:
        for r in range(args.rounds):
            # Rotate the order too, so no backend always runs first (warm caches, turbo).
            order = backends[r % len(backends):] + backends[:r % len(backends)]
            row = []
            for b in order:
                x, st, loss = run_once(args, b, tmp, str(r))
                samples[b].append(x)
                steps[b].append(st)
                losses[b].append(loss)
                row.append(f"{b} {x:.0f}")
            print(f"round {r + 1}: samples/s " + ", ".join(row), flush=True)
    print(f"# load average after: {load()}")
    print()
    print("| backend | samples/s median | min-max | step ms median | final train loss (its steps) |")
    print("|---|---:|---:|---:|---:|")
    med = {b: statistics.median(samples[b]) for b in backends}
    for b in backends:
        print(f"| {b} | {med[b]:.0f} | {min(samples[b]):.0f}-{max(samples[b]):.0f} | "
              f"{1e3 * statistics.median(steps[b]):.2f} | {losses[b][0]:.9g} "
              f"({args.reference_steps if b == 'reference' else args.steps}) |")
    print()
    for ref in ("omp", "reference"):
        if ref not in backends:
            continue
        for b in backends:
            if b == ref:
                continue
            per = [x / y for x, y in zip(samples[b], samples[ref])]
            print(f"{b} / {ref}: {med[b] / med[ref]:.3f} (per round {min(per):.3f}-{max(per):.3f})")
    bad = 0
    if "reference" in backends:
        l0 = losses["reference"][0]
        for b in backends:
            if (args.reference_steps if b == "reference" else args.steps) != args.reference_steps:
                continue
            for loss in losses[b]:
                if abs(loss - l0) > 1e-3 * abs(l0):
                    print(f"compare_backends: {b}: final train loss {loss} differs from the "
                          f"reference's {l0} by more than 1e-3 relative", file=sys.stderr)
                    bad = 1
    if "omp" in backends:  # the same step count as omp: the same loss within 1e-3
        l0 = losses["omp"][0]
        for b in backends:
            if b == "reference" and args.reference_steps != args.steps:
                continue
            for loss in losses[b]:
                if abs(loss - l0) > 1e-3 * abs(l0):
                    print(f"compare_backends: {b}: final train loss {loss} differs from omp's "
                          f"{l0} by more than 1e-3 relative", file=sys.stderr)
                    bad = 1
    return bad


if __name__ == "__main__":
    sys.exit(main())
