#!/usr/bin/env python3
"""The CNN of configs/fashion_mnist_cnn.toml in PyTorch, trained with
DistributedDataParallel on CPU (gloo), for a side-by-side throughput
comparison with hpcml (bench/pytorch_ddp/compare.sh runs both).

    python3 cnn_ddp.py --ranks 2 --steps 300 --warmup 20

Each rank: 1 thread, batch 64, SGD momentum 0.9, weight decay 5e-4, lr 0.05,
the same layers (conv 5x5x16 p2, relu, maxpool 2, conv 5x5x32 p2, relu,
maxpool 2, flatten, dense 128, relu, dropout 0.25, dense 10). Prints one line:
"pytorch-ddp ranks=R steps=S samples_per_s=X". Needs Debian's python3-torch
(not installed by scripts/install-deps.sh: this is a benchmark, not a test).
"""
import argparse
import gzip
import os
import struct
import time

import numpy as np
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.nn as nn

DATA = "/usr/share/datasets/fashion-mnist"


def read_idx(path):
    with gzip.open(path, "rb") as f:
        magic = struct.unpack(">I", f.read(4))[0]
        dims = [struct.unpack(">I", f.read(4))[0] for _ in range(magic & 0xFF)]
        return np.frombuffer(f.read(), dtype=np.uint8).reshape(dims)


def model():
    return nn.Sequential(
        nn.Conv2d(1, 16, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(16, 32, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(7 * 7 * 32, 128), nn.ReLU(), nn.Dropout(0.25),
        nn.Linear(128, 10))


def worker(rank, args):
    os.environ.setdefault("MASTER_ADDR", "127.0.0.1")
    os.environ.setdefault("MASTER_PORT", str(args.port))
    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=rank, world_size=args.ranks)
    x = read_idx(f"{DATA}/train-images-idx3-ubyte.gz").astype(np.float32) / 255.0
    y = read_idx(f"{DATA}/train-labels-idx1-ubyte.gz").astype(np.int64)
    x = torch.from_numpy(x).unsqueeze(1)
    y = torch.from_numpy(y)
    torch.manual_seed(42)
    net = nn.parallel.DistributedDataParallel(model())
    opt = torch.optim.SGD(net.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4)
    loss_fn = nn.CrossEntropyLoss()
    g = torch.Generator().manual_seed(1)
    perm = torch.randperm(x.shape[0], generator=g)
    b = args.batch
    t0 = None
    for step in range(args.warmup + args.steps):
        if step == args.warmup:
            dist.barrier()
            t0 = time.perf_counter()
        i = perm[((step * args.ranks + rank) * b) % (x.shape[0] - b):][:b]
        opt.zero_grad()
        loss = loss_fn(net(x[i]), y[i])
        loss.backward()
        opt.step()
    dist.barrier()
    dt = time.perf_counter() - t0
    if rank == 0:
        print(f"pytorch-ddp ranks={args.ranks} steps={args.steps} "
              f"samples_per_s={args.steps * b * args.ranks / dt:.1f} "
              f"torch={torch.__version__} final_loss={loss.item():.4f}")
    dist.destroy_process_group()


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--ranks", type=int, default=2)
    p.add_argument("--steps", type=int, default=300)
    p.add_argument("--warmup", type=int, default=20)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--port", type=int, default=29517)
    args = p.parse_args()
    mp.spawn(worker, args=(args,), nprocs=args.ranks)


if __name__ == "__main__":
    main()
