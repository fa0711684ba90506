"""Train a small CNN on Fashion-MNIST and record it with tensorscape: single process, or DistributedDataParallel
over several processes (gloo on CPU, NCCL when each process has a GPU).

The recording is three lines (marked "tensorscape" below) plus run.close():

    import tensorscape
    run = tensorscape.init(args.run, model, every=args.every)
    run.log(step, loss=loss.item())

Single process (from the repository root):

    PYTHONPATH=python /usr/bin/python3 python/examples/fashion_mnist_ddp.py --steps 200 --every 10 --run runs/fmnist

Two processes with torch.distributed (each trains on half of every global batch; rank 0 writes the run, with
the statistics of the whole global batch):

    PYTHONPATH=python /usr/bin/python3 -m torch.distributed.run --nproc_per_node 2 \\
        python/examples/fashion_mnist_ddp.py --steps 200 --every 10 --run runs/fmnist_ddp

(`torchrun` is the same command where it is installed.) Then `tensorscape open runs/fmnist` or, in Python,
`tensorscape.read_run("runs/fmnist")`.

The data are the four IDX files (gzip) of Fashion-MNIST in --data (default /usr/share/datasets/fashion-mnist).
"""

import argparse
import gzip
import os
import sys

import numpy as np
import torch
import torch.distributed as dist
import torch.nn as nn

import tensorscape  # tensorscape 1/3 (pip install ./python, or PYTHONPATH=python)


def load_idx(path):
    """An IDX file (optionally gzip'ed) as a numpy array: magic 0x0000TTNN (TT = 0x08 unsigned bytes, NN = number
    of dimensions), NN big-endian int32 sizes, then the data."""
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        data = f.read()
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] != 0x08:
        raise ValueError("%s: not an IDX file of unsigned bytes" % path)
    ndim = data[3]
    dims = [int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    arr = np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim)
    if arr.size != int(np.prod(dims)):
        raise ValueError("%s: %d values for dimensions %s (truncated?)" % (path, arr.size, dims))
    return arr.reshape(dims)


class CNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 16, 3, padding=1)
        self.relu1 = nn.ReLU()
        self.pool1 = nn.MaxPool2d(2)
        self.conv2 = nn.Conv2d(16, 32, 3, padding=1)
        self.relu2 = nn.ReLU()
        self.pool2 = nn.MaxPool2d(2)
        self.flatten = nn.Flatten()
        self.fc1 = nn.Linear(32 * 7 * 7, 64)
        self.relu3 = nn.ReLU()
        self.fc2 = nn.Linear(64, 10)

    def forward(self, x):
        x = self.pool1(self.relu1(self.conv1(x)))
        x = self.pool2(self.relu2(self.conv2(x)))
        return self.fc2(self.relu3(self.fc1(self.flatten(x))))


def main():
    ap = argparse.ArgumentParser(description="Fashion-MNIST CNN recorded with tensorscape (single process or DDP)")
    ap.add_argument("--steps", type=int, default=500, help="training steps (default 500)")
    ap.add_argument("--every", type=int, default=10, help="record a snapshot every N steps (default 10)")
    ap.add_argument("--run", default="runs/fashion_mnist", help="run folder (default runs/fashion_mnist)")
    ap.add_argument("--batch", type=int, default=64, help="global batch size (default 64)")
    ap.add_argument("--lr", type=float, default=0.05)
    ap.add_argument("--data", default="/usr/share/datasets/fashion-mnist", help="folder of the IDX .gz files")
    ap.add_argument("--overwrite", action="store_true", help="replace a run already in --run")
    args = ap.parse_args()

    distributed = int(os.environ.get("WORLD_SIZE", "1")) > 1
    if distributed:
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
        rank, world = dist.get_rank(), dist.get_world_size()
    else:
        rank, world = 0, 1
    if torch.cuda.is_available():
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        torch.cuda.set_device(device)
    else:
        device = torch.device("cpu")
        torch.set_num_threads(max(1, (os.cpu_count() or 1) // world))
    if args.batch % world:
        sys.exit("--batch %d must be a multiple of the number of processes (%d)" % (args.batch, world))

    images = load_idx(os.path.join(args.data, "train-images-idx3-ubyte.gz"))
    labels = load_idx(os.path.join(args.data, "train-labels-idx1-ubyte.gz"))
    x_all = torch.from_numpy(images.astype(np.float32) / 255.0).sub_(0.2860).div_(0.3530).unsqueeze(1)
    y_all = torch.from_numpy(labels.astype(np.int64))

    torch.manual_seed(0)
    model = CNN().to(device)
    if distributed:
        model = nn.parallel.DistributedDataParallel(model, device_ids=[device] if device.type == "cuda" else None)
    opt = torch.optim.SGD(model.parameters(), lr=args.lr, momentum=0.9)

    run = tensorscape.init(args.run, model, every=args.every, overwrite=args.overwrite)  # tensorscape 2/3

    gen = torch.Generator().manual_seed(1)  # the same global batches on every rank
    for step in range(args.steps):
        idx = torch.randint(0, len(x_all), (args.batch,), generator=gen)[rank::world]  # this rank's share
        x, y = x_all[idx].to(device), y_all[idx].to(device)
        out = model(x)
        loss = nn.functional.cross_entropy(out, y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        acc = (out.argmax(1) == y).float().mean()
        run.log(step, loss=loss.item(), accuracy=acc.item())  # tensorscape 3/3
        if rank == 0 and (step % 50 == 0 or step == args.steps - 1):
            print("step %5d  loss %.4f  batch accuracy %.3f" % (step, loss.item(), acc.item()), flush=True)
    run.close()
    if distributed:
        dist.destroy_process_group()
    if rank == 0:
        print("recorded %s (open it with: tensorscape open %s)" % (args.run, args.run))


if __name__ == "__main__":
    main()
