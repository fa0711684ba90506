"""Shared helpers of the Python tests: float64 numpy references of the statistics, small models, an
independent capture of module outputs and gradients, and a fork server for tests that run (and kill)
training processes."""

import atexit
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import unittest

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PYTHON_DIR = os.path.join(REPO, "python")
if PYTHON_DIR not in sys.path:
    sys.path.insert(0, PYTHON_DIR)

import torch  # noqa: E402
import torch.nn as nn  # noqa: E402

STATS = ("mean", "mean_abs", "variance", "min", "max", "zero_fraction", "nan_count", "inf_count")


# ---- references (float64 numpy, written from the definitions in docs/RUN_FORMAT.md)


def ref_neuron_stats(x):
    """[8, N] float64 statistics of x [B, ...] over dimension 0."""
    x = np.asarray(x, dtype=np.float64).reshape(np.shape(x)[0], -1)
    B = x.shape[0]
    out = np.full((8, x.shape[1]), np.nan)
    for j in range(x.shape[1]):
        c = x[:, j]
        fin = c[np.isfinite(c)]
        if fin.size:
            mean = fin.sum() / fin.size
            out[0, j] = mean
            out[1, j] = np.abs(fin).sum() / fin.size
            out[2, j] = ((fin - mean) ** 2).sum() / fin.size
            out[3, j] = fin.min()
            out[4, j] = fin.max()
        out[5, j] = np.count_nonzero(c == 0) / B
        out[6, j] = np.count_nonzero(np.isnan(c))
        out[7, j] = np.count_nonzero(np.isinf(c))
    return out


def ref_neuron_stats_fast(x):
    """Vectorised ref_neuron_stats (same definitions) for large tensors."""
    x = np.asarray(x, dtype=np.float64).reshape(np.shape(x)[0], -1)
    B = x.shape[0]
    fin = np.isfinite(x)
    n = fin.sum(0)
    xf = np.where(fin, x, 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = xf.sum(0) / n
        var = (np.where(fin, x - mean, 0.0) ** 2).sum(0) / n
        mabs = np.abs(xf).sum(0) / n
    mn = np.where(fin, x, np.inf).min(0)
    mx = np.where(fin, x, -np.inf).max(0)
    none = n == 0
    for a in (mean, var, mabs, mn, mx):
        a[none] = np.nan
    return np.stack([mean, mabs, var, mn, mx, (x == 0).sum(0) / B, np.isnan(x).sum(0), np.isinf(x).sum(0)])


def ref_layer_stats(values, bins):
    """(stats [8], hist [bins], range [2]) of the finite values of a flat array, as docs/RUN_FORMAT.md
    defines them (count, mean, std, min, max, l2_norm, nan_count, inf_count)."""
    v = np.asarray(values, dtype=np.float64).reshape(-1)
    fin = v[np.isfinite(v)]
    stats = np.array(
        [
            fin.size,
            fin.mean(),
            fin.std(),
            fin.min(),
            fin.max(),
            np.sqrt((fin * fin).sum()),
            np.isnan(v).sum(),
            np.isinf(v).sum(),
        ]
    )
    lo, hi = fin.min(), fin.max()
    if lo == hi:
        lo, hi = lo - 0.5, hi + 0.5
    hist, _ = np.histogram(fin, bins=bins, range=(lo, hi))
    return stats, hist, np.array([lo, hi])


def assert_stats_close(test, got, ref, rtol=1e-5, what="", layer_atol=0.0):
    """got, ref [8, N]: NaN where the other is NaN; mean/min/max/variance/mean_abs within rtol relative (the
    mean also within 1e-6 of the neuron's standard deviation, for means near zero: float32 data's own
    rounding; and all within layer_atol times the largest |value| of that statistic over the layer's
    neurons, for comparing two trainings that round differently); counts exact."""
    got = np.asarray(got, dtype=np.float64)
    ref = np.asarray(ref, dtype=np.float64)
    test.assertEqual(got.shape, ref.shape, what)
    np.testing.assert_array_equal(np.isnan(got), np.isnan(ref), err_msg="NaN pattern " + what)
    ok = ~np.isnan(ref)
    std = np.sqrt(np.where(np.isnan(ref[2]), 0.0, ref[2]))
    scale = np.maximum(np.abs(ref), 1e-30)
    for s in range(8):
        g, r, m = got[s], ref[s], ok[s]
        if s in (5, 6, 7):
            np.testing.assert_allclose(g[m], r[m], rtol=1e-6, atol=0, err_msg="%s %s" % (STATS[s], what))
            continue
        tol = rtol * scale[s]
        if layer_atol and m.any():
            tol = tol + layer_atol * np.abs(r[m]).max()
        if s == 0:
            tol = tol + 1e-6 * std
        if s == 2:
            tol = tol + 1e-12
        bad = m & ~(np.abs(g - r) <= tol)
        if bad.any():
            j = int(np.flatnonzero(bad)[0])
            test.fail(
                "%s %s: neuron %d got %r, reference %r (%d of %d off)"
                % (STATS[s], what, j, g[j], r[j], bad.sum(), m.sum())
            )


# ---- models


class SmallCNN(nn.Module):
    def __init__(self, classes=10):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 6, 3, padding=1)
        self.act1 = nn.ReLU()
        self.pool = nn.MaxPool2d(2)
        self.conv2 = nn.Conv2d(6, 8, 3, padding=1)
        self.act2 = nn.Tanh()
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(8 * 6 * 6, 16), nn.ReLU(), nn.Linear(16, classes))

    def forward(self, x):
        x = self.pool(self.act1(self.conv1(x)))
        x = self.act2(self.conv2(x))
        return self.head(x)


class MLP(nn.Module):
    def __init__(self, inputs=20, hidden=33, classes=5):
        super().__init__()
        self.fc1 = nn.Linear(inputs, hidden)
        self.act = nn.ReLU()
        self.fc2 = nn.Linear(hidden, hidden)
        self.out = nn.Linear(hidden, classes)

    def forward(self, x):
        return self.out(self.act(self.fc2(self.act(self.fc1(x)))))


class Capture:
    """Independent record of chosen modules' outputs and output gradients (float64 numpy copies) on the
    forward/backward passes where .on is set; cleared with reset()."""

    def __init__(self, model, names):
        self.reset()
        self.on = False
        self.handles = []
        modules = dict(model.named_modules())
        for name in names:
            self.handles.append(modules[name].register_forward_hook(self._hook(name)))

    def _hook(self, name):
        def hook(module, inputs, output):
            if not self.on:
                return
            call = self.calls.get(name, 0)
            self.calls[name] = call + 1
            key = name + "#%d" % (call + 1) if call else name
            self.outputs[key] = output.detach().double().numpy().copy()
            if output.requires_grad:
                def keep(g, key=key):
                    self.grads[key] = g.detach().double().numpy().copy()

                output.register_hook(keep)

        return hook

    def reset(self):
        self.outputs, self.grads, self.calls = {}, {}, {}

    def remove(self):
        for h in self.handles:
            h.remove()


# ---- temporary folders


class TempDirTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="tensorscape_test_")

    def tearDown(self):
        shutil.rmtree(self.tmp, ignore_errors=True)

    def path(self, *names):
        return os.path.join(self.tmp, *names)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ---- fork server: one process that has imported torch, h5py and tensorscape forks the children that
# train (so that each costs milliseconds, not an interpreter start). Children run a function of
# tests/python/workers.py with their stdout/stderr going to a file.


class ForkServer:
    _instance = None

    @classmethod
    def get(cls):
        if cls._instance is None or cls._instance.proc.poll() is not None:
            cls._instance = cls()
        return cls._instance

    def __init__(self):
        env = dict(os.environ)
        paths = [PYTHON_DIR, REPO] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else [])
        env["PYTHONPATH"] = os.pathsep.join(paths)
        self.proc = subprocess.Popen(
            [sys.executable, os.path.join(REPO, "tests", "python", "forkserver.py")],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            cwd=REPO,
            env=env,
            text=True,
            bufsize=1,
        )
        ready = self.proc.stdout.readline()
        if not ready.startswith("ready"):
            raise RuntimeError("fork server did not start: %r" % ready)
        atexit.register(self.stop)

    def _ask(self, req):
        self.proc.stdin.write(json.dumps(req) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError("fork server died")
        return json.loads(line)

    def fork(self, target, log_path, **kwargs):
        """Starts workers.<target>(**kwargs) in a forked child; returns its pid."""
        return self._ask({"cmd": "fork", "target": target, "log": log_path, "kwargs": kwargs})["pid"]

    def wait(self, pid, timeout=60.0):
        """Exit status of the child (as os.waitstatus_to_exitcode: negative = killed by that signal), None
        if it is still running after `timeout` seconds."""
        return self._ask({"cmd": "wait", "pid": pid, "timeout": timeout})["status"]

    def stop(self):
        if self.proc.poll() is None:
            try:
                self.proc.stdin.close()
                self.proc.wait(timeout=10)
            except Exception:
                self.proc.kill()
                self.proc.wait()
        for f in (self.proc.stdin, self.proc.stdout):
            try:
                f.close()
            except Exception:
                pass


def read_lines(path):
    try:
        with open(path) as f:
            return f.read().splitlines()
    except OSError:
        return []


def committed_steps(path):
    return [int(l.split()[1]) for l in read_lines(path) if l.startswith("committed ")]


def wait_for(predicate, timeout, interval=0.02):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()
