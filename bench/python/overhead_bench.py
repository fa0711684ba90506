"""Overhead of recording with tensorscape on a CNN whose recorded outputs total about 1M neurons per sample.

Run (from the repository root; CPU unless --device says otherwise):

    PYTHONPATH=python /usr/bin/python3 bench/python/overhead_bench.py [--steps 30] [--batch 32] [--device cpu]

With the compiled reducer (tensorscape_native, built by CMake into build/python) on the path it is used:
PYTHONPATH=python:build/python ...; TENSORSCAPE_REDUCER=torch forces the torch-ops reducer.

The model: on 1x28x28 inputs, seven blocks Conv2d(3x3, pad 1) + BatchNorm2d + ReLU at 28x28 (64 channels, the
last 32), max-pool, Flatten, Linear(6272, 128), ReLU, Linear(128, 10): its recorded outputs hold about 1.0M
values per sample (each block 3 x 64 x 784). A training step is forward, cross-entropy, backward, SGD step
(and run.log(step, loss=...) when recording). For each configuration (no recording, every=10, every=1) it
times `--steps` steps after a warm-up and prints a markdown table: mean and median time per step and the
overhead of the mean over no recording (the mean is the cost that counts for every=10: one step in ten pays
for the snapshot), then where the time of a recorded step goes (statistics in the hooks, gathering the
results, and the HDF5 commit: compression and writes).
"""

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(HERE)), "python"))

import torch  # noqa: E402
import torch.nn as nn  # noqa: E402

import tensorscape  # noqa: E402
import tensorscape.reduce  # noqa: E402
from tensorscape import store  # noqa: E402


def block(cin, cout):
    return [nn.Conv2d(cin, cout, 3, padding=1), nn.BatchNorm2d(cout), nn.ReLU()]


def make_model():
    layers = block(1, 64)
    for _ in range(5):
        layers += block(64, 64)
    layers += block(64, 32)
    layers += [nn.MaxPool2d(2), nn.Flatten(), nn.Linear(32 * 14 * 14, 128), nn.ReLU(), nn.Linear(128, 10)]
    return nn.Sequential(*layers)


def recorded_neurons(model):
    x = torch.zeros(1, 1, 28, 28)
    total = 0
    handles = []

    def hook(m, i, o):
        nonlocal total
        total += o[0].numel()

    for m in model.modules():
        if m is not model:
            handles.append(m.register_forward_hook(hook))
    with torch.no_grad():
        model(x)
    for h in handles:
        h.remove()
    return total


class Timed:
    """Wraps the reducer and the writer's commit to split a recorded step's time."""

    def __init__(self, run):
        self.reduce = 0.0
        self.commit = 0.0  # snapshot commits
        self.scalar_commit = 0.0  # commits of scalars only (the other steps)
        inner = run.reducer
        outer = self

        class R:
            name = inner.name

            @staticmethod
            def moments(x):
                t = time.perf_counter()
                out = inner.moments(x)
                outer.reduce += time.perf_counter() - t
                return out

        run.reducer = R()
        commit = store.RunWriter.commit

        def timed_commit(writer, *a, **kw):
            t = time.perf_counter()
            commit(writer, *a, **kw)
            dt = time.perf_counter() - t
            if kw.get("records") is not None:
                outer.commit += dt
            else:
                outer.scalar_commit += dt

        self._orig = commit
        store.RunWriter.commit = timed_commit

    def restore(self):
        store.RunWriter.commit = self._orig


def bench(every, steps, batch, device, tmp, background=False):
    torch.manual_seed(0)
    model = make_model().to(device)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    x = torch.randn(batch, 1, 28, 28, device=device)
    y = torch.randint(0, 10, (batch,), device=device)
    run = None
    timed = None
    if every:
        name = "every%d%s" % (every, "bg" if background else "")
        run = tensorscape.init(os.path.join(tmp, name), model, every=every, quiet=True, background=background)
        timed = Timed(run)
    times = []
    log_time = 0.0
    warm = 3
    for step in range(warm + steps):
        if step == warm and timed:
            timed.reduce = timed.commit = timed.scalar_commit = 0.0
        t0 = time.perf_counter()
        loss = nn.functional.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if run is not None:
            tl = time.perf_counter()
            run.log(step, loss=loss.item())
            if step >= warm:
                log_time += time.perf_counter() - tl
        elif device != "cpu":
            loss.item()
        if device != "cpu":
            torch.cuda.synchronize()
        if step >= warm:
            times.append(time.perf_counter() - t0)
    extra = {}
    if run is not None:
        tc = time.perf_counter()
        run.close()
        close_time = time.perf_counter() - tc
        timed.restore()
        recorded = sum(1 for s in range(warm, warm + steps) if s % every == 0)
        extra = {
            "recorded": recorded,
            "reduce": timed.reduce / max(recorded, 1),
            "commit": timed.commit / max(recorded, 1),
            "log": log_time / steps,
            "scalar_commit": timed.scalar_commit / max(steps - recorded, 1),
            "size": os.path.getsize(os.path.join(tmp, name, "run.h5")),
            "close": close_time,
        }
    return times, extra


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--steps", type=int, default=30, help="timed steps per configuration (a multiple of 10)")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="tensorscape_bench_")
    try:
        model = make_model()
        print(
            "model: %d recorded neurons per sample, %d parameters; batch %d on %s, torch %s, %d thread(s)"
            % (recorded_neurons(model), sum(p.numel() for p in model.parameters()), args.batch, args.device,
               torch.__version__, torch.get_num_threads())
        )
        configs = [(0, False, "none"), (10, False, "every=10"), (1, False, "every=1"),
                   (10, True, "every=10, background=True"), (1, True, "every=1, background=True")]
        results = {}
        for every, bg, label in configs:
            results[label] = bench(every, args.steps, args.batch, args.device, tmp, background=bg)
        base = statistics.mean(results["none"][0])
        print()
        print("| recording | mean s/step | median s/step | overhead (mean) |")
        print("|---|---|---|---|")
        for every, bg, label in configs:
            t = results[label][0]
            mean = statistics.mean(t)
            over = "" if every == 0 else "%+.1f%%" % (100.0 * (mean - base) / base)
            print("| %s | %.3f | %.3f | %s |" % (label, mean, statistics.median(t), over))
        print()
        print("Where the time of a recorded step goes (statistics: the reductions in the forward/backward hooks; "
              "commit: compression + HDF5 writes, on the writer thread with background=True; log(): the caller's "
              "time in run.log, gathering and converting results plus the commit when synchronous):")
        print()
        print(
            "| recording | statistics per recorded step | commit per recorded step | log() per step (mean) "
            "| scalars-only commit | close() | run.h5 |"
        )
        print("|---|---|---|---|---|---|---|")
        for every, bg, label in configs[1:]:
            e = results[label][1]
            print(
                "| %s | %.3f s | %.3f s | %.3f s | %.4f s | %.2f s | %.0f MB |"
                % (label, e["reduce"], e["commit"], e["log"], e["scalar_commit"], e["close"], e["size"] / 1e6)
            )
        print()
        print(
            "reducer: %s; compression: %s; %d CPU core(s) visible"
            % (tensorscape.reduce.get_reducer().describe(args.device), store.COMPRESSOR, os.cpu_count() or 1)
        )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
