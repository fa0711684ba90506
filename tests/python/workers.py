"""Training processes of the Python tests, run in children of the fork server (forkserver.py). Each prints
"committed STEP" after every run.log() returns."""

import datetime
import os
import time

import torch
import torch.nn as nn

import tensorscape
from tests.python import helpers

BATCH = 8


def _batch(gen, inputs=20, classes=5, batch=BATCH):
    return torch.randn(batch, inputs, generator=gen), torch.randint(0, classes, (batch,), generator=gen)


def train(run_dir, steps=100000, every=1, seed=0, sleep=0.0, hidden=33, background=False):
    """A small MLP trained and recorded until killed (or `steps` steps)."""
    torch.manual_seed(seed)
    model = helpers.MLP(hidden=hidden)
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    gen = torch.Generator().manual_seed(seed + 1)
    run = tensorscape.init(run_dir, model, every=every, quiet=True, background=background)
    print("started", flush=True)
    for step in range(steps):
        x, y = _batch(gen)
        loss = nn.functional.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        run.log(step, loss=loss.item())
        print("committed %d" % step, flush=True)
        if sleep:
            time.sleep(sleep)
    run.close()
    print("closed", flush=True)


def global_batch(gen, batch):
    x = torch.randn(batch, 1, 12, 12, generator=gen)
    return x, torch.randint(0, 10, (batch,), generator=gen)


def ddp_train(rank, world, port, run_dir, steps, every=1, batch=12, seed=0, die_after=None, timeout_s=10):
    """One rank of a gloo DDP job training SmallCNN on its 1/world share of a fixed global batch."""
    import torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel as DDP

    os.environ["MASTER_ADDR"] = "127.0.0.1"
    os.environ["MASTER_PORT"] = str(port)
    dist.init_process_group(
        "gloo", rank=rank, world_size=world, timeout=datetime.timedelta(seconds=timeout_s)
    )
    torch.manual_seed(seed)
    model = DDP(helpers.SmallCNN())
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    run = tensorscape.init(run_dir, model, every=every, quiet=True)
    gen = torch.Generator().manual_seed(seed + 1)
    share = batch // world
    for step in range(steps):
        x, y = global_batch(gen, batch)
        x, y = x[rank * share : (rank + 1) * share], y[rank * share : (rank + 1) * share]
        loss = nn.functional.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        run.log(step, loss=loss.item())
        print("committed %d" % step, flush=True)
        if die_after is not None and rank == 1 and step == die_after:
            print("dying", flush=True)
            os._exit(3)
    run.close()
    dist.destroy_process_group()
    print("closed", flush=True)


def single_train(run_dir, steps, every=1, batch=12, seed=0):
    """The same training as ddp_train in one process on the whole global batch."""
    torch.manual_seed(seed)
    model = helpers.SmallCNN()
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    run = tensorscape.init(run_dir, model, every=every, quiet=True)
    gen = torch.Generator().manual_seed(seed + 1)
    for step in range(steps):
        x, y = global_batch(gen, batch)
        loss = nn.functional.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        run.log(step, loss=loss.item())
    run.close()
