#!/usr/bin/python3
"""The corrupt-input corpus: every case in cases.tsv must end with one clear error.

usage: run_corpus.py HPCML CONFIG [NAME...]

For each case (one row of cases.tsv) a fresh work directory W is made holding a
small valid shard directory W/data (train: 3 shards, test: 1 shard), the same
data in the single-file layout W/single (use_single() swaps it in as W/data) and
the valid inputs it was made from (W/x.npy, W/y.npy, ...). The row's `make` column is a
Python expression over the helpers below that corrupts something in W; then each
of the row's commands runs, and must:
  - exit non-zero, never by a signal (no crash, no core dump), within TIMEOUT s;
  - print one error line that contains the row's `expect` text (which names the
    file): for `verify` the first "FAIL  <problem>" line on stdout (its documented
    format: one such line per bad shard, then a summary line) or else exactly one
    stderr line; for every other command exactly one stderr line, starting with
    "hpcml: error:";
  - keep that line short (at most MAX_LINE bytes: raw input is truncated);
  - for `shard ...` commands: write nothing (no manifest.json, no .h5 under W/out).
Commands: `verify` (hpcml shard verify W/data), `train` (1 rank, tiny config,
data.verify on), `train-noverify` (data.verify off: used where the check differs,
i.e. for the shard files and their contents; a manifest is read the same way
either way), `shard ARGS` (hpcml shard
ARGS, with {w} replaced by W). Several commands are separated by ';'.
Exit status 0 when every case passes, 1 otherwise, 77 when numpy/h5py is missing.
"""
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import time
import zlib

try:
    import h5py
    import numpy as np
except ImportError as e:  # pragma: no cover
    print(f"skipped: {e}")
    sys.exit(77)

TIMEOUT = 30
MAX_LINE = 600
HERE = os.path.dirname(os.path.abspath(__file__))
W = ""  # the current case's work directory (the helpers write into it)


# ---- helpers the `make` column calls -------------------------------------------

def p(name):
    return os.path.join(W, name)


def shard(i=1):
    """Path of train shard i of 3."""
    return p(f"data/train-{i:05d}-of-00003.h5")


def use_single():
    """Makes W/data the single-file layout of the same data (train.h5, test.h5,
    read with collective MPI-IO by `train`)."""
    shutil.rmtree(p("data"))
    os.rename(p("single"), p("data"))


def single(split="train"):
    """Path of a split's file in the single-file layout (after use_single())."""
    return p(f"data/{split}.h5")


def h5_narrow(path, dataset, cols):
    """Rewrites a 2-D dataset keeping only its first `cols` columns."""
    with h5py.File(path, "r+") as f:
        v = f[dataset][...]
        del f[dataset]
        f.create_dataset(dataset, data=v[:, :cols])


def truncate(path, size):
    """Cut a file to `size` bytes, or to that fraction of its size when size < 1."""
    n = int(os.path.getsize(path) * size) if size < 1 else int(size)
    os.truncate(path, n)


def write(path, content):
    with open(path, "wb") as f:
        f.write(content.encode() if isinstance(content, str) else content)


def make_dir(path):
    os.remove(path)
    os.mkdir(path)


def remove(path):
    os.remove(path)


def data_offset(path, dataset="features"):
    with h5py.File(path, "r") as f:
        return f[dataset].id.get_offset()


def flip(path, where, xor=0xFF, after=0):
    """XOR one byte: at offset `where` (int), or `after` bytes into the first
    occurrence of the bytes `where`."""
    b = bytearray(open(path, "rb").read())
    pos = where if isinstance(where, int) else b.index(where) + after
    b[pos] ^= xor
    write(path, bytes(b))


def flip_data(path, dataset="features", byte=41, xor=0x01):
    flip(path, data_offset(path, dataset) + byte, xor)


def fix_crc(path):
    """Recomputes the manifest checksum of shard `path` (so that a content check,
    not the checksum, is what fails)."""
    with h5py.File(path, "r") as f:
        x = f["features"][...].astype("<f4").tobytes()
        y = f["labels"][...].astype("<i4").tobytes()
    crc = zlib.crc32(y, zlib.crc32(x)) & 0xFFFFFFFF
    m = load_manifest()
    for s in m["splits"].values():
        for sh in s["shards"]:
            if sh["file"] == os.path.basename(path):
                sh["checksum"] = f"crc32:{crc:08x}"
    save_manifest(m)


def set_feature(path, row, col, value, crc=True):
    """Writes a float32 straight into the file's feature bytes."""
    with h5py.File(path, "r") as f:
        cols = f["features"].shape[1]
    b = bytearray(open(path, "rb").read())
    struct.pack_into("<f", b, data_offset(path) + 4 * (row * cols + col), value)
    write(path, bytes(b))
    if crc:
        fix_crc(path)


def set_label(path, row, value, crc=True):
    b = bytearray(open(path, "rb").read())
    struct.pack_into("<i", b, data_offset(path, "labels") + 4 * row, value)
    write(path, bytes(b))
    if crc:
        fix_crc(path)


def h5_attr(path, name, value):
    with h5py.File(path, "r+") as f:
        f.attrs[name] = np.int64(value)


def h5_retype(path, dataset, dtype):
    """Rewrites a dataset with another dtype (same values, same shape)."""
    with h5py.File(path, "r+") as f:
        v = f[dataset][...]
        del f[dataset]
        f.create_dataset(dataset, data=v.astype(dtype))


def h5_unwritten(path, dataset):
    """Replaces a dataset by a chunked one of the same shape and dtype whose
    chunks were never written (it reads as fill values)."""
    with h5py.File(path, "r+") as f:
        shape, dtype = f[dataset].shape, f[dataset].dtype
        del f[dataset]
        f.create_dataset(dataset, shape=shape, dtype=dtype, chunks=(1,) + shape[1:])


def h5_huge_unwritten(path, rows, written=0):
    """Replaces both datasets by chunked ones of `rows` rows of which only the
    first `written` chunks of 1024 rows were written, and makes the manifest
    agree (a tiny file claiming a huge shard)."""
    with h5py.File(path, "r+") as f:
        cols = f["features"].shape[1]
        del f["features"], f["labels"]
        x = f.create_dataset("features", shape=(rows, cols), dtype="<f4", chunks=(1024, cols))
        y = f.create_dataset("labels", shape=(rows,), dtype="<i4", chunks=(1024,))
        if written:
            x[: 1024 * written] = 0.5
            y[: 1024 * written] = 1
    m = load_manifest()
    shards = m["splits"]["train"]["shards"]
    name = os.path.basename(path)
    first = 0
    for sh in shards:
        if sh["file"] == name:
            sh["samples"], sh["bytes"] = rows, rows * (4 * cols + 4)
        sh["first_index"] = first
        first += sh["samples"]
    m["splits"]["train"]["samples"] = first
    save_manifest(m)


def h5_delete(path, dataset):
    with h5py.File(path, "r+") as f:
        del f[dataset]


def load_manifest():
    with open(p("data/manifest.json")) as f:
        return json.load(f)


def save_manifest(m):
    with open(p("data/manifest.json"), "w") as f:
        json.dump(m, f, indent=2)


def manifest(edit):
    """Applies edit(m) to the parsed manifest and writes it back."""
    m = load_manifest()
    edit(m)
    save_manifest(m)


def set_(d, **kw):
    d.update(kw)
    return d


def train_shard(m, i):
    return m["splits"]["train"]["shards"][i]


def idx(path, magic, dims, data=None, gz=False, extra=b""):
    """An IDX file: 4 magic bytes, big-endian u32 dims, then `data` (default: a
    full payload of the declared size when it is small, else nothing)."""
    import gzip
    head = bytes(magic) + b"".join(struct.pack(">I", d) for d in dims)
    if data is None:
        n = 1
        for d in dims:
            n *= d
        data = bytes(i % 256 for i in range(n)) if n < 1 << 20 else b""
    blob = head + data + extra
    if gz:
        with gzip.open(path, "wb") as f:
            f.write(blob)
    else:
        write(path, blob)


def npy(path, descr, shape, payload=b"", version=1, header_len=None, fortran=False, magic=None):
    """A .npy file with a hand-written header (shape is the literal text)."""
    h = "{'descr': '%s', 'fortran_order': %s, 'shape': %s, }" % (descr, fortran, shape)
    pre = 10 if version == 1 else 12
    h += " " * ((64 - (pre + len(h) + 1) % 64) % 64) + "\n"
    n = len(h) if header_len is None else header_len
    size = struct.pack("<H", n) if version == 1 else struct.pack("<I", n)
    write(path, (magic or b"\x93NUMPY") + bytes([version, 0]) + size + h.encode() + payload)


def npy_array(path, array):
    np.save(path, array)


def raw(path, fmt, values):
    write(path, struct.pack(fmt, *values))


# ---- the valid base data ----------------------------------------------------------

def make_base(hpcml, base):
    rng = np.random.default_rng(7)
    x = rng.random((24, 2, 3), dtype=np.float32)
    y = (np.arange(24) % 3).astype(np.int64)
    np.save(os.path.join(base, "x.npy"), x)
    np.save(os.path.join(base, "y.npy"), y)
    np.save(os.path.join(base, "xt.npy"), x[:6])
    np.save(os.path.join(base, "yt.npy"), y[:6])
    for args in (["x.npy", "y.npy", "train", "3"], ["xt.npy", "yt.npy", "test", "1"]):
        subprocess.run([hpcml, "shard", "npy", "--features", os.path.join(base, args[0]),
                        "--labels", os.path.join(base, args[1]), "--split", args[2],
                        "--classes", "3", "--shards", args[3], "--out",
                        os.path.join(base, "data")], check=True, stdout=subprocess.DEVNULL)
        subprocess.run([hpcml, "shard", "npy", "--features", os.path.join(base, args[0]),
                        "--labels", os.path.join(base, args[1]), "--split", args[2],
                        "--classes", "3", "--layout", "single-file", "--name", "data", "--out",
                        os.path.join(base, "single")], check=True, stdout=subprocess.DEVNULL)
    with open(os.path.join(base, "ok.csv"), "w") as f:
        for i in range(6):
            f.write(f"{i % 3},{i * 0.5},{i + 1}\n")


# ---- running ---------------------------------------------------------------------

def command_line(hpcml, config, command):
    if command == "verify":
        return [hpcml, "shard", "verify", p("data")]
    if command in ("train", "train-noverify"):
        return [hpcml, "train", config, "--set", "data.path=" + p("data"),
                "--set", "model.hidden=[4]", "--set", "train.batch_size=4",
                "--set", "train.epochs=1", "--set", "run.dir=" + p("runs"),
                "--set", "run.name=corrupt", "--set", "parallel.threads=1",
                "--set", "data.prefetch=0",
                "--set", "data.verify=" + ("true" if command == "train" else "false")]
    if command.startswith("shard "):
        return [hpcml] + [a.replace("{w}", W) for a in command.split()]
    raise ValueError(f"unknown command '{command}'")


def check(command, r, expect):
    """Returns the problem with one command's result, or None."""
    if r is None:
        return f"timed out after {TIMEOUT} s (hang)"
    if r.returncode < 0:
        return f"killed by signal {-r.returncode} (crash)"
    if r.returncode == 0:
        return "exited 0"
    if r.returncode >= 126:
        return f"exit status {r.returncode}"
    if "core dumped" in r.stderr or "Sanitizer" in r.stderr:
        return "crash report in stderr"
    err = [line for line in r.stderr.splitlines() if line.strip()]
    fails = [line for line in r.stdout.splitlines() if line.startswith("FAIL")]
    if command == "verify" and not err:
        if not fails:
            return "no FAIL line"
        line = fails[0]
    else:
        if len(err) != 1:
            return f"expected one stderr line, got {len(err)}"
        line = err[0]
        if not line.startswith("hpcml: error:"):
            return "the stderr line does not start with 'hpcml: error:'"
    if expect not in line:
        return f"the error line lacks '{expect}'"
    if len(line) > MAX_LINE:
        return f"the error line is {len(line)} bytes long"
    if command.startswith("shard ") and os.path.isdir(p("out")):
        left = [f for f in os.listdir(p("out")) if f == "manifest.json" or ".h5" in f]
        if left:
            return f"wrote {left} before failing"
    return None


def main():
    global W
    hpcml, config = os.path.abspath(sys.argv[1]), os.path.abspath(sys.argv[2])
    only = set(sys.argv[3:])
    cases = []
    with open(os.path.join(HERE, "cases.tsv")) as f:
        for n, line in enumerate(f, 1):
            if not line.strip() or line.startswith("#"):
                continue
            cols = line.rstrip("\n").split("\t")
            if len(cols) != 4:
                sys.exit(f"cases.tsv:{n}: expected 4 tab-separated columns, got {len(cols)}")
            cases.append(cols)
    names = [c[0] for c in cases]
    if len(set(names)) != len(names):
        sys.exit("cases.tsv: duplicate case names")
    tmp = tempfile.mkdtemp(prefix="hpcml-corrupt-")
    failed = 0
    runs = 0
    start = time.monotonic()
    try:
        base = os.path.join(tmp, "base")
        os.mkdir(base)
        make_base(hpcml, base)
        for name, commands, expect, make in cases:
            if only and name not in only:
                continue
            W = os.path.join(tmp, name)
            shutil.copytree(base, W)
            try:
                eval(make, globals())
            except Exception as e:  # a broken table row
                print(f"FAIL {name}: make '{make}' raised {type(e).__name__}: {e}")
                failed += 1
                continue
            for command in commands.split(";"):
                command = command.strip()
                runs += 1
                try:
                    r = subprocess.run(command_line(hpcml, config, command), cwd=W,
                                       capture_output=True, text=True, errors="replace",
                                       timeout=TIMEOUT)
                except subprocess.TimeoutExpired:
                    r = None
                problem = check(command, r, expect)
                if problem:
                    failed += 1
                    print(f"FAIL {name} [{command}]: {problem}")
                    if r is not None:
                        print("  stdout: " + r.stdout[-2000:].replace("\n", "\n  stdout: "))
                        print("  stderr: " + r.stderr[-2000:].replace("\n", "\n  stderr: "))
                else:
                    out = r.stderr.strip() or [x for x in r.stdout.splitlines() if "FAIL" in x][0]
                    print(f"ok   {name} [{command.split()[0] if command.startswith('shard') else command}]: "
                          f"{out[:160]}")
            shutil.rmtree(W, ignore_errors=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"{len(cases)} cases, {runs} runs, {failed} failed, "
          f"{time.monotonic() - start:.1f} s")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
