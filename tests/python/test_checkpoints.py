"""Checkpoints of a recorded run (init(..., checkpoints=N)): the files hold the model's floating parameters and
buffers as they were at each step (compared with the test's own copies), and the C++ program reads them:
`tensorscape neurogram --run` measures a TorchScript copy of the model at each checkpoint, and its accuracy there
equals the test's own evaluation of the saved weights."""

import json
import os
import shutil
import subprocess
import tempfile
import unittest

try:
    from . import helpers  # noqa: F401  (puts python/ on sys.path)
except ImportError:
    import helpers  # noqa: F401

import h5py  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn as nn  # noqa: E402

import tensorscape  # noqa: E402


def spirals(n, seed):
    """Two interleaved spirals in [-1, 1]^2."""
    g = torch.Generator().manual_seed(seed)
    t = torch.rand(n, generator=g) * 3.0 + 0.3
    label = torch.randint(0, 2, (n,), generator=g)
    angle = t * 3.0 + label.float() * np.pi
    x = torch.stack([t * torch.cos(angle), t * torch.sin(angle)], 1) / 3.5
    return x + 0.02 * torch.randn(n, 2, generator=g), label


class Checkpoints(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="ts_ckpt_")

    def tearDown(self):
        shutil.rmtree(self.dir, ignore_errors=True)

    def test_every_n_steps_the_state_as_it_was(self):
        torch.manual_seed(0)
        model = nn.Sequential(nn.Linear(2, 16), nn.BatchNorm1d(16), nn.ReLU(), nn.Linear(16, 2))
        opt = torch.optim.Adam(model.parameters(), lr=0.05)
        x, y = spirals(256, 1)
        run_dir = os.path.join(self.dir, "run")
        copies = {}
        with tensorscape.init(run_dir, model, every=3, checkpoints=5, quiet=True) as run:
            for step in range(12):
                opt.zero_grad()
                loss = nn.functional.cross_entropy(model(x), y)
                loss.backward()
                opt.step()
                run.log(step, loss=loss)
                copies[step] = {k: v.detach().clone() for k, v in model.state_dict().items()}
        names = sorted(os.listdir(os.path.join(run_dir, "checkpoints")))
        self.assertEqual(names, ["step_000000000.h5", "step_000000005.h5", "step_000000010.h5"])
        for step in (0, 5, 10):
            with h5py.File(os.path.join(run_dir, "checkpoints", "step_%09d.h5" % step), "r") as f:
                self.assertEqual(f.attrs["format"], "tensorscape-checkpoint")
                self.assertEqual(int(f.attrs["version"]), 1)
                self.assertEqual(int(f.attrs["step"]), step)
                floating = {k for k, v in copies[step].items() if v.is_floating_point()}
                self.assertEqual(set(f.keys()), floating)  # num_batches_tracked (int64) is not stored
                for k in floating:
                    np.testing.assert_array_equal(f[k][()], copies[step][k].numpy(), err_msg=k)

    def test_the_program_measures_the_model_at_each_checkpoint(self):
        exe = os.path.join(os.environ.get("TS_BUILD_DIR", "build"), "app", "tensorscape")
        self.assertTrue(os.path.exists(exe), "the tensorscape program is built before the Python tests: " + exe)
        # 8x8 byte images, the class in which half is brighter, as an IDX folder the program reads (validation:
        # the t10k files, in file order; values byte / 255, shape [1, 8, 8]).
        data = os.path.join(self.dir, "data")
        os.makedirs(data)
        sets = {}
        for split, n, seed in (("train", 400, 1), ("t10k", 300, 2)):
            g = np.random.default_rng(seed)
            labels = g.integers(0, 2, n).astype(np.uint8)
            images = g.integers(0, 140, (n, 8, 8)).astype(np.int32)
            for i in range(n):
                half = slice(0, 4) if labels[i] == 0 else slice(4, 8)
                images[i, :, half] += g.integers(0, 60)
            images = np.clip(images, 0, 255).astype(np.uint8)
            write_idx(os.path.join(data, split + "-images-idx3-ubyte"), images)
            write_idx(os.path.join(data, split + "-labels-idx1-ubyte"), labels)
            sets[split] = (torch.from_numpy(images).float().div(255.0).unsqueeze(1), torch.from_numpy(labels).long())
        x, y = sets["train"]
        xv, yv = sets["t10k"]
        torch.manual_seed(0)
        model = nn.Sequential(nn.Flatten(), nn.Linear(64, 16), nn.ReLU(), nn.Linear(16, 2))
        opt = torch.optim.Adam(model.parameters(), lr=0.01)
        run_dir = os.path.join(self.dir, "run")
        saved = {}
        with tensorscape.init(run_dir, model, every=5, checkpoints=40, quiet=True) as run:
            for step in range(81):
                opt.zero_grad()
                loss = nn.functional.cross_entropy(model(x), y)
                loss.backward()
                opt.step()
                run.log(step, loss=loss)
                if step % 40 == 0:
                    saved[step] = {k: v.detach().clone() for k, v in model.state_dict().items()}
        script = os.path.join(self.dir, "model.pt")
        torch.jit.script(model.eval()).save(script)
        out = os.path.join(self.dir, "ng.png")
        r = subprocess.run([exe, "neurogram", "--run", run_dir, "--model", script, "--data", data, "--no-stability",
                            "--samples", "300", "--out", out], capture_output=True, text=True, timeout=300)
        if r.returncode != 0:
            self.fail("tensorscape neurogram failed (exit %d): %s" % (r.returncode, (r.stdout + r.stderr).strip()))
        with open(os.path.join(self.dir, "ng.json")) as f:
            report = json.load(f)
        self.assertEqual([s["step"] for s in report["steps"]], [0, 40, 80])
        accuracies = []
        for entry in report["steps"]:
            model.load_state_dict(saved[entry["step"]])
            with torch.no_grad():
                accuracy = (model(xv).argmax(1) == yv).double().mean().item()
            self.assertAlmostEqual(entry["validation"]["accuracy"], accuracy, places=9, msg="step %d" % entry["step"])
            accuracies.append(accuracy)
        self.assertGreater(accuracies[-1], accuracies[0], "training helped, so the checkpoints differ")


def write_idx(path, array):
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    with open(path, "wb") as f:
        f.write(header + array.tobytes())


if __name__ == "__main__":
    unittest.main()
