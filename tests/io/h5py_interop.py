#!/usr/bin/python3
"""Shards written by hpcml read back identically with h5py and h5ls.

usage: h5py_interop.py IO_SHARD_TOOL
Exits 77 (CTest SKIP_RETURN_CODE) when h5py/numpy or h5ls are unavailable.
"""
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import zlib

try:
    import h5py
    import numpy as np
except ImportError as e:
    print(f"SKIP: {e}")
    sys.exit(77)
if shutil.which("h5ls") is None:
    print("SKIP: h5ls not found")
    sys.exit(77)

tool = sys.argv[1]
tmp = tempfile.mkdtemp(prefix="hpcml-test-h5py-")
try:
    rng = np.random.default_rng(7)
    x = rng.standard_normal((50, 4, 3)).astype("<f4")
    y = rng.integers(0, 6, size=50).astype("<i8")
    np.save(os.path.join(tmp, "x.npy"), x)
    np.save(os.path.join(tmp, "y.npy"), y)
    out = os.path.join(tmp, "shards")
    subprocess.run([tool, os.path.join(tmp, "x.npy"), os.path.join(tmp, "y.npy"), out,
                    "train", "6", "3"], check=True)

    with open(os.path.join(out, "manifest.json")) as f:
        m = json.load(f)
    assert m["format"] == "hpcml-shards" and m["format_version"] == 1, m
    assert m["features"] == 12 and m["feature_shape"] == [4, 3] and m["classes"] == 6, m
    assert m["feature_dtype"] == "float32" and m["label_dtype"] == "int32", m
    split = m["splits"]["train"]
    assert split["samples"] == 50 and len(split["shards"]) == 3, split
    flat = x.reshape(50, 12)
    for i, sh in enumerate(split["shards"]):
        path = os.path.join(out, sh["file"])
        first, n = sh["first_index"], sh["samples"]
        with h5py.File(path, "r") as f:
            fx, fy = f["features"], f["labels"]
            assert fx.dtype == np.dtype("<f4") and fx.shape == (n, 12), (fx.dtype, fx.shape)
            assert fy.dtype == np.dtype("<i4") and fy.shape == (n,), (fy.dtype, fy.shape)
            assert fx.chunks is None and fx.compression is None, "layout must be contiguous"
            xs, ys = fx[...], fy[...]
            assert np.array_equal(xs, flat[first:first + n]), f"{path}: features differ"
            assert np.array_equal(ys, y[first:first + n]), f"{path}: labels differ"
            a = f.attrs
            assert a["format_version"] == 1 and a["split"] == "train", dict(a)
            assert a["shard_index"] == i and a["shard_count"] == 3, dict(a)
            assert a["first_index"] == first and list(a["feature_shape"]) == [4, 3], dict(a)
            assert a["dataset"] == "interop", dict(a)
        crc = zlib.crc32(ys.tobytes(), zlib.crc32(xs.tobytes()))
        assert sh["checksum"] == "crc32:%08x" % crc, (sh["checksum"], crc)
        assert sh["bytes"] == xs.nbytes + ys.nbytes, sh

        listing = subprocess.run(["h5ls", "-r", path], check=True, capture_output=True,
                                 text=True).stdout
        assert re.search(r"^/features\s+Dataset \{%d, 12\}" % n, listing, re.M), listing
        assert re.search(r"^/labels\s+Dataset \{%d\}" % n, listing, re.M), listing
        dump = subprocess.run(["h5ls", "-d", path + "/labels"], check=True, capture_output=True,
                              text=True).stdout
        data = dump.split("Data:", 1)[1]
        values = [int(v) for v in re.findall(r"-?\d+", re.sub(r"\(\d+\)", "", data))]
        assert values == ys.tolist(), (values, ys.tolist())
    print("h5py and h5ls read the shards identically")
finally:
    shutil.rmtree(tmp)
