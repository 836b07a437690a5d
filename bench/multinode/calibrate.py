#!/usr/bin/env python3
"""Calibrates the report's alpha-beta model on multi-node all-reduce runs and checks
its prediction of the 2 x 2 (nodes x ranks) training step against a measured one.

    bench/multinode/calibrate.py [--hpcml build/jobs/hpcml] [--data data/fashion-mnist]
                                 [--out bench-multinode] [--repeats 3] [--steps 150]
                                 [--tls tcp,self]

No Slurm and no root: the "nodes" are Hydra's virtual hosts
(`mpiexec -launcher fork -hosts nodea:2,nodeb:2`), which MPICH treats as two
nodes: ranks of one host talk through MPICH's shared memory, ranks of different
hosts through the netmod (UCX), forced onto TCP with UCX_TLS=--tls (default
tcp,self; "" keeps UCX's choice, which is shared memory on one machine:
docs/communication.md, "Which path inter-node traffic takes").

1. All-reduce timings (`hpcml bench allreduce`, out of place, best of --reps):
   1 x 2 (intra-node link), 2 x 1 (inter-node link), both ring, 4 KiB - 4 MiB;
   2 x 2 and 1 x 4 with every algorithm, for the comparison.
2. The default job (configs/fashion_mnist_mlp.toml: batch 64 per rank, 1 thread
   per rank, no evaluation) at 1 x 2 and 2 x 2, --repeats runs each, alternating,
   --steps steps; each run's summary.json gives the median step time and its split.
3. `hpcml report` on those runs (weak scaling: the per-rank batch is fixed) with
   --intra-allreduce-csv (1 x 2) and --allreduce-csv (2 x 1): its alpha-beta
   model's 2 x 2 step time, predicted from the 1 x 2 baseline, against the measured one;
   again with the inter-node alpha-beta fitted on the 2 x 2 ring rows (calibrated at
   the geometry it predicts), then with the step's fusion buckets (--bucket-bytes),
   where the report's "auto (size thresholds)" variant gives each bucket the
   algorithm the comm layer's default thresholds pick; and better_model(): the same
   per-bucket choice in this script, with per-algorithm alpha-beta fitted at 2 x 2.

Everything lands in --out (bench outputs, run directories, the report); the
summary is printed as Markdown (docs/scaling.md, "Calibrated on multi-node runs").
The machine's load average is printed before and after: on a shared machine the
absolute times move, so read the ratios.
"""
import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import time
import tomllib

VHOSTS = {  # (nodes, ranks per node) -> Hydra arguments
    (1, 2): ["-n", "2"],
    (1, 4): ["-n", "4"],
    (2, 1): ["-launcher", "fork", "-hosts", "nodea:1,nodeb:1", "-n", "2"],
    (2, 2): ["-launcher", "fork", "-hosts", "nodea:2,nodeb:2", "-n", "4"],
}


def load():
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def env(args):
    e = dict(os.environ, OMP_NUM_THREADS="1", OMP_WAIT_POLICY="passive")
    if args.tls:
        e["UCX_TLS"] = args.tls
    return e


def run(cmd, args, out=None):
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                       env=env(args))
    if p.returncode != 0:
        sys.exit(f"calibrate: failed ({p.returncode}): {' '.join(cmd)}\n{p.stdout[-3000:]}")
    if out:
        with open(out, "w") as f:
            f.write(p.stdout)
    return p.stdout


def run_mpi(cmd, args, log, done):
    """Runs an mpiexec command with its output in `log`. With UCX_TLS=tcp,self
    MPI_Finalize sometimes never returns (UCX 1.13: the ranks spin in
    uct_tcp_iface_progress after the work is done): once done() says the results
    are complete, the run gets 15 s to exit, then it is ended and counted as hung."""
    with open(log, "w") as out:
        p = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, text=True, env=env(args),
                             start_new_session=True)
        t0, seen, hung = time.time(), None, False
        while p.poll() is None:
            time.sleep(0.5)
            if seen is None and done():
                seen = time.time()
            if (seen is not None and time.time() - seen > 15) or time.time() - t0 > 600:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()
                hung = True
    if not done() or (p.returncode != 0 and not hung):
        with open(log) as f:
            text = f.read()
        sys.exit(f"calibrate: failed ({p.returncode}): {' '.join(cmd)}\n{text[-3000:]}")
    if hung:
        HUNG.append(" ".join(cmd[:8]) + " ...")
    return hung


HUNG = []


def bench(args, geom, algo, path):
    cmd = (["mpiexec"] + VHOSTS[geom] + [args.hpcml, "bench", "allreduce", "--algo", algo,
           "-b", "4K", "-e", "4M", "-f", "4", "--reps", str(args.reps), "--target-ms", "20"])
    def done():
        with open(path) as f:
            return "# Avg bus bandwidth" in f.read()

    run_mpi(cmd, args, path, done)
    return parse_bench(path)


def parse_bench(path):
    """{size: {algo: out-of-place us}} from `hpcml bench allreduce` output."""
    with open(path) as f:
        text = f.read()
    rows = {}
    for line in text.splitlines():
        f = line.split()
        if len(f) > 5 and f[3] == "|" and f[0].isdigit():
            if int(f[7]) != 0:
                sys.exit(f"calibrate: {path}: wrong results: {line}")
            rows.setdefault(int(f[0]), {})[f[2]] = float(f[4])
    return rows


def train(args, geom, name):
    cmd = (["mpiexec"] + VHOSTS[geom] + [args.hpcml, "train", args.config,
           "--set", "parallel.threads=1", "--set", f"train.max_steps={args.steps}",
           "--set", "train.evaluate=false", "--set", "data.verify=false",
           "--set", f'data.path="{args.data}"', "--set", f'run.dir="{args.out}/runs"',
           "--set", f'run.name="{name}"', "--set", 'run.progress="never"'])
    summary = os.path.join(args.out, "runs", name, "summary.json")
    hung = run_mpi(cmd, args, os.path.join(args.out, f"train-{name}.log"),
                   lambda: os.path.exists(summary))
    with open(summary) as f:
        s = json.load(f)
    s["finalize_hung"] = hung
    # Keep the run directory small: the checkpoint is not needed.
    shutil.rmtree(os.path.join(args.out, "runs", name, "checkpoints"), ignore_errors=True)
    return s


def fit_line(points):
    """Least-squares t = a + c * bytes with a, c >= 0 over (bytes, seconds) points."""
    n = len(points)
    sx = sum(x for x, _ in points)
    sy = sum(y for _, y in points)
    sxx = sum(x * x for x, _ in points)
    sxy = sum(x * y for x, y in points)
    det = n * sxx - sx * sx
    a, c = (sxx * sy - sx * sxy) / det, (n * sxy - sx * sy) / det
    if a < 0:
        a, c = 0.0, sxy / sxx
    if c < 0:
        a, c = sy / n, 0.0
    return a, c


def thresholds(path):
    """The comm layer's size thresholds, from the bench header line '# thresholds: k=v,...'."""
    with open(path) as f:
        for line in f:
            if line.startswith("# thresholds:"):
                return dict(kv.split("=", 1) for kv in line.split(":", 1)[1].split(";")[0].strip().split(","))
    sys.exit(f"calibrate: {path}: no '# thresholds:' line")


def choose(th, nbytes, multinode):
    """What Algo::kAuto picks for one bucket (comm/src/thresholds: the multi-node table)."""
    if nbytes <= int(th["small_max_bytes"]):
        return th["small_algo"]
    if nbytes <= int(th.get("medium_max_bytes", 0)):
        return th["medium_algo"]
    return th["large_multinode_algo"] if multinode else th["large_algo"]


def buckets(config):
    """The gradient buckets of the MLP in `config`, packed as GradientReducer::plan does:
    tensors from the last to the first (W, b per layer), a bucket closed when the next
    tensor would take it past fusion_mb MiB."""
    with open(config, "rb") as f:
        c = tomllib.load(f)
    dims = [784] + list(c["model"]["hidden"]) + [10]
    limit = c.get("parallel", {}).get("fusion_mb", 1.0) * 1024 * 1024
    tensors = []
    for i in range(len(dims) - 1):
        tensors += [dims[i] * dims[i + 1], dims[i + 1]]
    out, cur = [], 0
    for n in reversed(tensors):
        if cur and (limit <= 0 or (cur + n) * 4 > limit):
            out.append(cur * 4)
            cur = 0
        cur += n
    out.append(cur * 4)
    return out


def better_model(args, b, runs, cm, measured):
    """The step at 2 x 2 from the 1 x 2 run, bucket by bucket (see docs/scaling.md)."""
    th = thresholds(os.path.join(args.out, "allreduce-2x2.txt"))
    bk = buckets(args.config)
    base = runs[(1, 2)]
    work = statistics.median(s["step_s_median"] - s["comm_exposed_s_per_step"] for s in base)
    # Per-algorithm alpha-beta at the target geometry (2 x 2 bench rows, out of place).
    fits = {}
    for algo in ("ring", "hierarchical", "recursive_doubling", "mpi"):
        pts = [(size, row[algo] * 1e-6) for size, row in b[(2, 2)].items() if algo in row]
        if len(pts) >= 2:
            fits[algo] = fit_line(pts)
    # Two-level (separate intra/inter legs) from the unoversubscribed 1 x 2 and 2 x 1 fits.
    intra = (cm["intra_alpha_s"], cm["intra_beta_s_per_byte"])
    inter = (cm["alpha_s"], cm["beta_s_per_byte"])

    def two_level(nbytes, algo):
        if algo == "hierarchical":  # reduce to the leader, ring of 2 leaders, broadcast
            return 2 * (intra[0] + nbytes * intra[1]) + 2 * inter[0] + nbytes * inter[1]
        return 6 * inter[0] + 1.5 * nbytes * inter[1]  # flat ring of 4 over the slower link

    chosen = [choose(th, x, True) for x in bk]
    comm_geom = sum(fits[a][0] + fits[a][1] * x for a, x in zip(chosen, bk))
    comm_2l = sum(two_level(x, a) for a, x in zip(chosen, bk))
    cores = os.cpu_count() or 1
    share = max(1.0, 4 / cores) / max(1.0, 2 / cores)  # ranks per core, 2 x 2 against 1 x 2
    print()
    print(f"buckets (fusion): {', '.join(f'{x} B -> {a}' for a, x in zip(chosen, bk))}; "
          f"work per step at 1 x 2 (step - exposed comm): {1e3 * work:.2f} ms; "
          f"ranks per core 2 x 2 / 1 x 2: {share:g}")
    for algo, (a, c) in fits.items():
        print(f"  2 x 2 fit, {algo}: {1e6 * a:.0f} us + {1e-9 / c if c else float('inf'):.3f} GB/s")
    rows = [
        ("bucketed, two-level (1 x 2 intra + 2 x 1 inter fits)", work + comm_2l),
        ("bucketed, 2 x 2 per-algorithm fits", work + comm_geom),
        ("bucketed, 2 x 2 per-algorithm fits, compute x ranks per core", work * share + comm_geom),
    ]
    for name, t in rows:
        print(f"model, {name}: {1e3 * t:.2f} ms, {100 * (t / measured - 1):+.1f} % against the measurement")
    return rows


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--hpcml", default="build/jobs/hpcml")
    ap.add_argument("--config", default="configs/fashion_mnist_mlp.toml")
    ap.add_argument("--data", default="data/fashion-mnist")
    ap.add_argument("--out", default="bench-multinode")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--steps", type=int, default=150)
    ap.add_argument("--reps", type=int, default=3, help="bench batches per size (best kept)")
    ap.add_argument("--tls", default="tcp,self", help='UCX_TLS for every run ("" = UCX default)')
    ap.add_argument("--analyse", action="store_true",
                    help="run nothing: analyse the bench outputs and runs already in --out")
    args = ap.parse_args()
    args.hpcml = os.path.abspath(args.hpcml)
    args.data = os.path.abspath(args.data)
    args.out = os.path.abspath(args.out)
    b = {}
    runs = {(1, 2): [], (2, 2): []}
    plan = (((1, 2), "ring"), ((2, 1), "ring"), ((2, 2), "all"), ((1, 4), "all"))
    if args.analyse:
        for geom, _ in plan:
            b[geom] = parse_bench(os.path.join(args.out, f"allreduce-{geom[0]}x{geom[1]}.txt"))
        for geom in runs:
            for r in range(1000):
                path = os.path.join(args.out, "runs", f"n{geom[0]}x{geom[1]}-k{r}", "summary.json")
                if not os.path.exists(path):
                    break
                with open(path) as f:
                    runs[geom].append(json.load(f))
        return analyse(args, b, runs)
    if os.path.exists(os.path.join(args.out, "runs")):
        sys.exit(f"calibrate: {args.out}/runs exists: give another --out or remove it")
    os.makedirs(os.path.join(args.out, "runs"))
    print(f"# load average before: {load()}; UCX_TLS={args.tls or '(default)'}", flush=True)

    for geom, algo in plan:
        path = os.path.join(args.out, f"allreduce-{geom[0]}x{geom[1]}.txt")
        b[geom] = bench(args, geom, algo, path)
        print(f"# bench {geom[0]} x {geom[1]} ({algo}) -> {path}", flush=True)

    for r in range(args.repeats):
        for geom in ((1, 2), (2, 2)) if r % 2 == 0 else ((2, 2), (1, 2)):
            s = train(args, geom, f"n{geom[0]}x{geom[1]}-k{r}")
            runs[geom].append(s)
            print(f"# train {geom[0]} x {geom[1]} repeat {r}: step {1e3 * s['step_s_median']:.2f} ms"
                  + (" (MPI_Finalize hung: ended after summary.json)" if s["finalize_hung"] else ""),
                  flush=True)
    print(f"# load average after the runs: {load()}", flush=True)
    return analyse(args, b, runs)


def analyse(args, b, runs):

    grad = runs[(1, 2)][0]["grad_bytes"]
    report_dir = os.path.join(args.out, "report")
    run([args.hpcml, "report", os.path.join(args.out, "runs"), "--out", report_dir, "--mode", "weak",
         "--allreduce-csv", os.path.join(args.out, "allreduce-2x1.txt"),
         "--intra-allreduce-csv", os.path.join(args.out, "allreduce-1x2.txt"),
         "--ranks-per-node", "2", "--holdout", "0", "--no-png",
         "--title", "alpha-beta calibration: 1 x 2 and 2 x 2, virtual hosts"], args)
    with open(os.path.join(report_dir, "report.json")) as f:
        rep = json.load(f)
    study = rep["studies"][0]
    cm = study["comm_model"]

    def med(geom, key):
        return statistics.median(s[key] for s in runs[geom])

    print()
    if not cm.get("ok"):
        sys.exit(f"calibrate: the report has no alpha-beta model: {cm.get('why_not')}")
    print(f"grad_bytes {grad}; {cm['source']}")
    print(f"inter-node: alpha {1e6 * cm['alpha_s']:.1f} us, {1e-9 / cm['beta_s_per_byte']:.3f} GB/s; "
          f"intra-node: alpha {1e6 * cm['intra_alpha_s']:.1f} us, "
          f"{1e-9 / cm['intra_beta_s_per_byte']:.3f} GB/s; "
          f"work per step at 1 x 2: {1e3 * cm['work_s_baseline']:.2f} ms")
    print()
    print("| nodes x ranks | step ms (median of runs) | compute | comm (exposed) | io | idle |")
    print("|---|---:|---:|---:|---:|---:|")
    for geom in ((1, 2), (2, 2)):
        print(f"| {geom[0]} x {geom[1]} | {1e3 * med(geom, 'step_s_median'):.2f} | "
              f"{1e3 * med(geom, 'compute_s_per_step'):.2f} | "
              f"{1e3 * med(geom, 'comm_exposed_s_per_step'):.2f} | "
              f"{1e3 * med(geom, 'io_s_per_step'):.2f} | {1e3 * med(geom, 'idle_s_per_step'):.2f} |")
    print()
    measured = med((2, 2), "step_s_median")
    each = ", ".join("%.2f" % (1e3 * s["step_s_median"]) for s in runs[(2, 2)])
    print(f"measured 2 x 2 step: {1e3 * measured:.2f} ms (runs: {each})")
    # The same report, its inter-node alpha-beta fitted on the 2 x 2 ring rows instead:
    # calibrated at the geometry it predicts.
    geo_dir = os.path.join(args.out, "report-2x2-fit")
    run([args.hpcml, "report", os.path.join(args.out, "runs"), "--out", geo_dir, "--mode", "weak",
         "--allreduce-csv", os.path.join(args.out, "allreduce-2x2.txt"),
         "--intra-allreduce-csv", os.path.join(args.out, "allreduce-1x2.txt"),
         "--ranks-per-node", "2", "--holdout", "0", "--no-png",
         "--title", "alpha-beta calibration on the 2 x 2 ring rows"], args)
    with open(os.path.join(geo_dir, "report.json")) as f:
        cm_geo = json.load(f)["studies"][0]["comm_model"]
    for p in cm_geo["points"]:
        if p["measured"] and p["ranks"] == 4:
            t = p["model"]["ring"]["step_s"]
            print(f"report's model, ring, alpha-beta fitted on the 2 x 2 ring rows "
                  f"({1e6 * cm_geo['alpha_s']:.0f} us, {1e-9 / cm_geo['beta_s_per_byte']:.3f} GB/s): "
                  f"{1e3 * t:.2f} ms, {100 * (t / measured - 1):+.1f} % against the measurement")
    # ... and with the step's fusion buckets (--bucket-bytes): one all-reduce each.
    bk = buckets(args.config)
    bkt_dir = os.path.join(args.out, "report-2x2-fit-buckets")
    run([args.hpcml, "report", os.path.join(args.out, "runs"), "--out", bkt_dir, "--mode", "weak",
         "--allreduce-csv", os.path.join(args.out, "allreduce-2x2.txt"),
         "--intra-allreduce-csv", os.path.join(args.out, "allreduce-1x2.txt"),
         "--ranks-per-node", "2", "--holdout", "0", "--no-png",
         "--bucket-bytes", ",".join(str(x) for x in bk),
         "--title", "alpha-beta calibration on the 2 x 2 ring rows, per bucket"], args)
    with open(os.path.join(bkt_dir, "report.json")) as f:
        cm_bkt = json.load(f)["studies"][0]["comm_model"]
    for p in cm_bkt["points"]:
        if p["measured"] and p["ranks"] == 4:
            for name in ("ring", "hierarchical", "auto (size thresholds)"):
                if name not in p["model"]:
                    print(f"report's model, {name}: not in the report (an older hpcml?)")
                    continue
                if name.startswith("auto"):
                    print(f"report's auto variant picks, per bucket at 2 x 2: "
                          f"{', '.join(f'{x} B -> {a}' for x, a in zip(bk, p['auto_algorithms']))}")
                t = p["model"][name]["step_s"]
                print(f"report's model, {name}, alpha-beta fitted on the 2 x 2 ring rows, "
                      f"--bucket-bytes {','.join(str(x) for x in bk)}: "
                      f"{1e3 * t:.2f} ms, {100 * (t / measured - 1):+.1f} % against the measurement")
    with open(os.path.join(args.out, "model.json"), "w") as f:
        json.dump({"comm_model": cm, "runs": {f"{g[0]}x{g[1]}": v for g, v in runs.items()},
                   "bench_us": {f"{g[0]}x{g[1]}": {str(k): v for k, v in rows.items()}
                                for g, rows in b.items()}}, f, indent=1)
    for p in cm["points"]:
        if p["measured"] and p["ranks"] == 4:
            for name, m in p["model"].items():
                t = m["step_s"]
                print(f"report's model, {name}: {1e3 * t:.2f} ms, "
                      f"{100 * (t / measured - 1):+.1f} % against the measurement")
    better_model(args, b, runs, cm, measured)
    if HUNG:
        print(f"# MPI_Finalize hung (ended 15 s after the results were complete) in {len(HUNG)} run(s)")
    print(f"# load average at the end: {load()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
