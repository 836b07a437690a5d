#!/usr/bin/env python3
"""The per-bucket optimizer update (parallel.overlap_update) against the whole update, side by side.

    bench/overlap_update.py [--hpcml build/jobs/hpcml] [--config configs/fashion_mnist_mlp.toml]
                            [--data data/fashion-mnist] [--ranks 2] [--rounds 3] [--steps 300]
                            [--threads 1] [--fusion-mb 0.25] [--set KEY=VALUE ...]

Trains the job (default: the default job, 784-512-256-10 MLP, batch 64 per rank, SGD with
momentum) on --ranks ranks (mpiexec -n) with parallel.overlap_update = true and = false,
alternating (the order swaps every round, so a slow phase of a shared machine hits both
alike), for --steps steps each, without evaluation or data verification.
parallel.sharded_update is set to false: on one node the sharded update would otherwise
replace both (docs/communication.md). --fusion-mb sets parallel.fusion_mb (the default
job's 1 MiB gives two buckets; smaller gives more, so more update work can overlap).

Prints each round's samples/s (summary.json: training steps only), then per setting the
median, min-max, median step time and exposed communication per step, and the ratio
true / false of the medians with the per-round ratios' min-max (their spread is the
noise). Both settings must end with the same params_digest (same bits): the script
fails otherwise. It prints the load average before and after; figures from a busy
machine say little.
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


def run_once(args, overlap, out_dir, tag):
    name = f"overlap-{'on' if overlap else 'off'}-{tag}"
    cmd = ["mpiexec", "-n", str(args.ranks), args.hpcml, "train", args.config,
           "--set", f"parallel.overlap_update={'true' if overlap else 'false'}",
           "--set", "parallel.sharded_update=false",
           "--set", f"parallel.fusion_mb={args.fusion_mb}",
           "--set", f"parallel.threads={args.threads}",
           "--set", f"train.max_steps={args.steps}", "--set", "train.evaluate=false",
           "--set", "data.verify=false", "--set", f'data.path="{args.data}"',
           "--set", f'run.dir="{out_dir}"', "--set", f'run.name="{name}"',
           "--set", 'run.progress="never"']
    for kv in args.set:
        cmd += ["--set", kv]
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads), OMP_WAIT_POLICY="passive",
               MPIR_CVAR_DEFAULT_THREAD_LEVEL="MPI_THREAD_MULTIPLE")
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    if p.returncode != 0:
        sys.exit(f"overlap_update: run failed ({p.returncode}): {' '.join(cmd)}\n{p.stdout[-2000:]}")
    with open(os.path.join(out_dir, name, "summary.json")) as f:
        return json.load(f)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--hpcml", default="build/jobs/hpcml")
    ap.add_argument("--config", default="configs/fashion_mnist_mlp.toml")
    ap.add_argument("--data", default="data/fashion-mnist")
    ap.add_argument("--ranks", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--fusion-mb", type=float, default=0.25)
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="another config override, passed on to hpcml train --set")
    args = ap.parse_args()
    args.data = os.path.abspath(args.data)
    print(f"# {args.hpcml} train {args.config}: {args.ranks} ranks x {args.threads} thread(s), "
          f"{args.steps} steps, fusion_mb {args.fusion_mb}, sharded_update false, "
          f"{args.rounds} rounds; {os.cpu_count()} hardware threads")
    print(f"# load average before: {load()}")
    keys = (True, False)
    runs = {k: [] for k in keys}
    with tempfile.TemporaryDirectory(prefix="hpcml-overlap-bench-") as tmp:
        for r in range(args.rounds):
            order = keys if r % 2 == 0 else keys[::-1]
            row = []
            for k in order:
                s = run_once(args, k, tmp, str(r))
                runs[k].append(s)
                row.append(f"overlap_update={'true' if k else 'false'} {s['samples_per_s']:.0f}")
            print(f"round {r + 1}: samples/s " + ", ".join(row), flush=True)
    print(f"# load average after: {load()}")
    print()
    print("| overlap_update | samples/s median | min-max | step ms median | "
          "exposed comm ms/step | compute ms/step |")
    print("|---|---:|---:|---:|---:|---:|")
    med = {}
    for k in keys:
        xs = [s["samples_per_s"] for s in runs[k]]
        med[k] = statistics.median(xs)
        step = statistics.median(s["step_s_median"] for s in runs[k])
        comm = statistics.median(s.get("comm_exposed_s_per_step", s.get("comm_s_per_step", 0))
                                 for s in runs[k])
        comp = statistics.median(s.get("compute_s_per_step", 0) for s in runs[k])
        print(f"| {'true' if k else 'false'} | {med[k]:.0f} | {min(xs):.0f}-{max(xs):.0f} | "
              f"{1e3 * step:.2f} | {1e3 * comm:.2f} | {1e3 * comp:.2f} |")
    print()
    per = [a["samples_per_s"] / b["samples_per_s"] for a, b in zip(runs[True], runs[False])]
    print(f"samples/s true / false: {med[True] / med[False]:.3f} "
          f"(per round {min(per):.3f}-{max(per):.3f})")
    step_per = [a["step_s_median"] / b["step_s_median"] for a, b in zip(runs[True], runs[False])]
    print(f"step time true / false: {statistics.median(step_per):.3f} "
          f"(per round {min(step_per):.3f}-{max(step_per):.3f})")
    digests = {s["params_digest"] for k in keys for s in runs[k]}
    if len(digests) != 1:
        print(f"overlap_update: the runs ended with different parameters: {sorted(digests)}",
              file=sys.stderr)
        return 1
    print(f"params_digest identical in all {2 * args.rounds} runs")
    return 0


if __name__ == "__main__":
    sys.exit(main())
