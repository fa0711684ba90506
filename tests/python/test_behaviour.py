"""Recorder behaviour: which steps are recorded, forward passes without backward, evaluation passes, NaN in
training, tuple outputs and repeated calls, scalars, the time pyramids and series()."""

import contextlib
import io
import json
import os
import subprocess
import sys
import unittest

import numpy as np

try:
    from . import helpers
except ImportError:
    import helpers

import h5py  # noqa: E402
import torch  # noqa: E402
import torch.nn as nn  # noqa: E402

import tensorscape  # noqa: E402


class Pair(nn.Module):
    """Returns a tuple (a, (b, None), integer tensor)."""

    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(4, 6)
        self.scale = nn.Parameter(torch.full((6,), 1.5))  # owns a parameter: recorded (else a container)

    def forward(self, x):
        h = self.lin(x) * self.scale
        return h, (h[:, :2] * 2, None), torch.zeros(len(x), dtype=torch.long)


class TupleNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.pair = Pair()
        self.act = nn.ReLU()
        self.out = nn.Linear(6, 3)

    def forward(self, x):
        a, (b, _), _ = self.pair(x)
        return self.out(self.act(a)) + self.act(b).sum(1, keepdim=True)


def step_model(run, model, x, backward=True):
    loss = model(x).pow(2).mean()
    if backward:
        model.zero_grad()
        loss.backward()
    return loss


class BehaviourTest(helpers.TempDirTest):
    def test_start_step_and_every(self):
        torch.manual_seed(0)
        m = helpers.MLP()
        with tensorscape.init(self.path("r"), m, every=5, start_step=5, quiet=True) as run:
            for step in range(5, 23):
                step_model(run, m, torch.randn(4, 20))
                run.log(step, loss=float(step))
        r = tensorscape.read_run(self.path("r"))
        np.testing.assert_array_equal(r.steps, [5, 10, 15, 20])
        np.testing.assert_array_equal(r.scalars["loss"][0], np.arange(5, 23))
        self.assertEqual(r.every, 5)

    def test_unaligned_start_discovers_layers_without_recording(self):
        m = helpers.MLP()
        with tensorscape.init(self.path("r"), m, every=4, start_step=3, quiet=True) as run:
            for step in range(3, 10):
                step_model(run, m, torch.randn(4, 20))
                run.log(step)
        r = tensorscape.read_run(self.path("r"))
        np.testing.assert_array_equal(r.steps, [4, 8])
        self.assertEqual(len(r.layers), 5)

    def test_forward_without_backward_gives_nan_gradients(self):
        m = helpers.MLP()
        with tensorscape.init(self.path("r"), m, every=1, quiet=True) as run:
            with torch.no_grad():
                m(torch.randn(3, 20))
            run.log(0)
            step_model(run, m, torch.randn(3, 20), backward=False)
            run.log(1)
            step_model(run, m, torch.randn(3, 20))
            run.log(2)
        r = tensorscape.read_run(self.path("r"))
        g = r.neuron_stat("fc1", "mean_abs", "gradient")
        self.assertTrue(np.isnan(g[:2]).all())
        self.assertTrue(np.isfinite(g[2]).all())
        np.testing.assert_array_equal(r.rows("fc1"), [3, 3, 3])
        self.assertTrue(np.isnan(r.weight_stats("fc1", "weight_grad")["mean"][:2]).all())

    def test_evaluation_pass_does_not_replace_training_pass(self):
        torch.manual_seed(1)
        m = helpers.MLP()
        cap = helpers.Capture(m, ["out"])
        with tensorscape.init(self.path("r"), m, every=1, quiet=True) as run:
            cap.on = True
            x = torch.randn(6, 20)
            step_model(run, m, x)
            train_out = cap.outputs["out"]
            with torch.no_grad():
                m(torch.randn(2, 20))  # evaluation: kept out
            run.log(0)
            step_model(run, m, torch.randn(5, 20))  # two training passes: the last one counts
            step_model(run, m, torch.randn(7, 20))
            run.log(1)
        r = tensorscape.read_run(self.path("r"))
        np.testing.assert_array_equal(r.rows("out"), [6, 7])
        helpers.assert_stats_close(self, r.snapshot("out", 0), helpers.ref_neuron_stats(train_out))

    def test_same_step_twice_and_decreasing_step(self):
        m = helpers.MLP()
        run = tensorscape.init(self.path("r"), m, every=1, quiet=True, scalars=["acc"])
        step_model(run, m, torch.randn(3, 20))
        run.log(0, loss=1.0)
        run.log(0, acc=0.5)  # same step: scalars only
        step_model(run, m, torch.randn(3, 20))
        run.log(1, loss=2.0, acc=0.25)
        with self.assertRaises(ValueError) as cm:
            run.log(0)
        self.assertEqual(len(str(cm.exception).splitlines()), 1)
        with self.assertRaises(TypeError):
            run.log(2, loss="high")
        with self.assertRaises(TypeError):
            run.log(2.5)
        run.close()
        with self.assertRaises(RuntimeError):
            run.log(3)
        r = tensorscape.read_run(self.path("r"))
        np.testing.assert_array_equal(r.steps, [0, 1])
        s = r.scalars
        np.testing.assert_array_equal(s["loss"][0], [0, 1])
        np.testing.assert_array_equal(s["acc"][0], [0, 1])
        np.testing.assert_array_equal(s["acc"][1], [0.5, 0.25])

    def test_scalar_names_fixed_when_file_is_made(self):
        m = helpers.MLP()
        err = io.StringIO()
        with contextlib.redirect_stderr(err):
            with tensorscape.init(self.path("r"), m, every=1, scalars=["val"]) as run:
                run.log(0, early=1.0)  # before any forward pass: kept until run.h5 exists
                step_model(run, m, torch.randn(3, 20))
                run.log(1, loss=1.0)
                step_model(run, m, torch.randn(3, 20))
                run.log(2, loss=2.0, val=7.0, late=3.0)
                run.log(3, late=4.0, loss=torch.tensor(3.0))
        self.assertRegex(err.getvalue(), r"tensorscape: statistics by (torch ops|tensorscape_native .*) on cpu\n")
        self.assertEqual(err.getvalue().count("scalar 'late'"), 1)
        r = tensorscape.read_run(self.path("r"))
        s = r.scalars
        self.assertEqual(sorted(s), ["early", "loss", "val"])
        np.testing.assert_array_equal(s["early"][0], [0])
        np.testing.assert_array_equal(s["val"][0], [2])
        np.testing.assert_array_equal(s["loss"][1], [1.0, 2.0, 3.0])
        np.testing.assert_array_equal(r.steps, [1, 2])

    def test_nan_and_inf_in_training(self):
        torch.manual_seed(2)
        m = helpers.MLP()
        opt = torch.optim.SGD(m.parameters(), lr=0.1)
        with tensorscape.init(self.path("r"), m, every=1, quiet=True) as run:
            for step in range(4):
                x = torch.randn(5, 20)
                if step == 1:
                    x[0, 3] = float("nan")
                    x[1, 4] = float("inf")
                loss = nn.functional.cross_entropy(m(x), torch.zeros(5, dtype=torch.long))
                opt.zero_grad()
                loss.backward()
                opt.step()
                run.log(step, loss=loss.item())
        r = tensorscape.read_run(self.path("r"))
        nans = r.neuron_stat("fc1", "nan_count")
        self.assertEqual(nans[0].sum(), 0)
        self.assertGreater(nans[1].sum(), 0)
        self.assertTrue(np.isfinite(r.neuron_stat("fc1", "mean")[0]).all())
        w = r.weight_stats("fc1")
        self.assertGreater(w["nan_count"][2], 0)  # the update spread NaN into the weights
        self.assertEqual(w["count"][0], 20 * 33 + 33)
        self.assertTrue(np.isnan(r.scalars["loss"][1][1:]).all() or len(r.scalars["loss"][0]) < 4)

    def test_tuple_outputs_and_repeated_calls(self):
        m = TupleNet()
        with tensorscape.init(self.path("r"), m, every=1, quiet=True) as run:
            for step in range(3):
                step_model(run, m, torch.randn(4, 4))
                run.log(step)
        r = tensorscape.read_run(self.path("r"))
        names = [L.name for L in r.layers]
        self.assertEqual(names, ["pair.lin", "pair", "pair.out1", "act", "out", "act#2"])
        shapes = {L.name: L.shape for L in r.layers}
        self.assertEqual(shapes["pair"], (6,))
        self.assertEqual(shapes["pair.out1"], (2,))
        self.assertEqual(shapes["act#2"], (2,))
        self.assertEqual(r.layer("pair").params, 6)
        self.assertEqual((r.layer("pair").type, r.layer("pair.out1").type), ("Pair", "output"))
        self.assertEqual(r.layer("pair.lin").params, 30)
        self.assertEqual(r.layer("pair.out1").params, 0)  # Pair's scale belongs to its first element
        self.assertTrue(np.isfinite(r.neuron_stat("pair.out1", "mean", "gradient")).all())

    def test_a_module_called_twice_owns_its_parameters_once(self):
        tied = nn.Linear(4, 4)
        m = nn.Sequential(tied, nn.Tanh(), tied)  # weight tying: one Linear applied twice
        with tensorscape.init(self.path("r"), m, every=1, quiet=True) as run:
            for step in range(2):
                step_model(run, m, torch.randn(3, 4))
                run.log(step)
        r = tensorscape.read_run(self.path("r"))
        self.assertEqual([L.name for L in r.layers], ["0", "1", "0#2"])
        self.assertEqual((r.layer("0").params, r.layer("0#2").params), (20, 0))
        self.assertEqual(sum(L.params for L in r.layers), sum(p.numel() for p in m.parameters()))

    def test_shape_change_stores_nan(self):
        m = nn.Sequential(nn.Linear(3, 3), nn.Tanh())  # on [batch, length, 3]: the length may change
        err = io.StringIO()
        with contextlib.redirect_stderr(err):
            with tensorscape.init(self.path("r"), m, every=1) as run:
                m(torch.randn(2, 5, 3)).sum().backward()
                run.log(0)
                m(torch.randn(2, 7, 3)).sum().backward()
                run.log(1)
        self.assertEqual(err.getvalue().count("differs from the recorded"), 2)  # once per layer
        r = tensorscape.read_run(self.path("r"))
        self.assertEqual(r.layer("1").shape, (5, 3))
        np.testing.assert_array_equal(r.rows("1"), [2, 0])
        self.assertTrue(np.isnan(r.snapshot("1", 1)).all())
        self.assertTrue(np.isfinite(r.snapshot("1", 0)[:6]).all())

    def test_pyramids_and_series(self):
        torch.manual_seed(3)
        m = nn.Sequential(nn.Linear(2, 3), nn.Tanh())
        steps = 300
        with tensorscape.init(self.path("r"), m, every=1, quiet=True) as run:
            for step in range(steps):
                x = torch.randn(4, 2) * (1 + step % 7)
                if step in (5, 17, 18):
                    with torch.no_grad():
                        m(x)  # no gradient at these snapshots: NaN in the pyramid's input
                else:
                    m(x).sum().backward()
                run.log(step)
        r = tensorscape.read_run(self.path("r"))
        self.assertEqual(len(r.steps), steps)
        mean = r.neuron_stat("0", "mean").astype(np.float64)
        gabs = r.neuron_stat("0", "mean_abs", "gradient").astype(np.float64)
        self.assertTrue(np.isnan(gabs[[5, 17, 18]]).all())

        def window(values):  # min, max, mean of the finite values
            v = values[np.isfinite(values)]
            return (v.min(), v.max(), v.mean()) if v.size else (np.nan,) * 3

        with h5py.File(self.path("r", "run.h5"), "r", libver="latest", swmr=True) as f:
            for name, base in (("activation_mean", mean), ("gradient_mean_abs", gabs)):
                self.assertEqual(sorted(f["layers/0000/pyramid/" + name], key=lambda k: int(k[1:])),
                                 ["L4", "L8", "L12", "L16", "L20", "L24"])
                l4 = f["layers/0000/pyramid/%s/L4" % name][:]
                self.assertEqual(l4.shape, (steps >> 4, 3, 3))
                for j in range(l4.shape[0]):
                    for n in range(3):
                        np.testing.assert_allclose(l4[j, :, n], window(base[16 * j : 16 * j + 16, n]), rtol=1e-6)
                l8 = f["layers/0000/pyramid/%s/L8" % name][:]
                self.assertEqual(l8.shape, (1, 3, 3))
                for n in range(3):
                    lo, hi, _ = window(base[:256, n])
                    means = l4[:16, 2, n]
                    np.testing.assert_allclose(l8[0, :, n], (lo, hi, means[np.isfinite(means)].mean()), rtol=1e-6)
                self.assertEqual(f["layers/0000/pyramid/%s/L12" % name].shape[0], 0)
        # series: every point without max_points; with it, L4 windows (pyramid) or 2^K windows (others)
        s, lo, hi, mu = r.series("0", 1)
        np.testing.assert_array_equal(s, np.arange(steps))
        np.testing.assert_array_equal(mu, mean[:, 1].astype(np.float32))
        for stat, kind, base, W, window_size in (
            ("mean", "activation", mean, 20, 16),
            ("mean_abs", "gradient", gabs, 20, 16),
            ("mean", "activation", mean, 2, 256),
            ("variance", "activation", None, 20, 16),
            ("variance", "activation", None, 50, 8),
        ):
            if base is None:
                base = r.neuron_stat("0", stat, kind).astype(np.float64)
            s, lo, hi, mu = r.series("0", 2, stat=stat, kind=kind, max_points=W)
            self.assertLessEqual(len(s), W)
            np.testing.assert_array_equal(s, np.arange(0, steps, window_size), "%s W=%d" % (stat, W))
            for j in range(len(s)):
                ref = window(base[j * window_size : (j + 1) * window_size, 2])
                what = "%s W=%d point %d" % (stat, W, j)
                np.testing.assert_allclose((lo[j], hi[j], mu[j]), ref, rtol=1e-5, err_msg=what)

    def test_context_manager_and_json(self):
        m = helpers.MLP()
        with tensorscape.init(self.path("r"), m, every=3, quiet=True) as run:
            self.assertIn("every=3", repr(run))
            with open(self.path("r", "run.json")) as f:
                j = json.load(f)
            self.assertEqual(
                (j["format"], j["version"], j["writer"], j["model"], j["every"], j["world_size"]),
                ("tensorscape-run", 1, "python", "MLP", 3, 1),
            )
            self.assertNotIn("closed", j)
            step_model(run, m, torch.randn(2, 20))
            run.log(0)
            self.assertEqual(run.layers, ["fc1", "act", "fc2", "act#2", "out"])
        with open(self.path("r", "run.json")) as f:
            self.assertTrue(json.load(f)["closed"])
        with h5py.File(self.path("r", "run.h5"), "r") as f:
            a = f.attrs
            self.assertEqual(a["format"], "tensorscape-run")
            self.assertEqual((a["version"], a["every"], a["world_size"], a["histogram_bins"]), (1, 3, 1, 32))
            self.assertEqual(a["writer"], "python")
            self.assertEqual(list(a["input_shape"]), [20])
            g = f["layers/0000"]
            self.assertEqual(g.attrs["name"], "fc1")
            self.assertEqual(g.attrs["type"], "Linear")
            self.assertEqual(list(g.attrs["shape"]), [33])
            self.assertEqual(g["activation"].chunks, (1, 8, 33))  # a small layer: rows whole
            self.assertEqual(g["activation"].compression, "gzip")
            self.assertTrue(g["activation"].shuffle)
            self.assertEqual(g["activation"].dtype, np.float32)
            self.assertEqual(g["weight"].dtype, np.float64)
            self.assertEqual(g["weight_hist"].dtype, np.int64)
            self.assertEqual(g["pyramid/activation_mean/L4"].chunks, (1, 3, 33))
        self.assertFalse(os.path.exists(self.path("r", "run.h5.tmp")))

    def test_closed_at_exit(self):
        """A script that never calls close(): the run is closed (flushed, run.json says closed) at exit."""
        code = (
            "import torch, tensorscape\n"
            "m = torch.nn.Linear(3, 2)\n"
            "run = tensorscape.init(%r, m, every=1, quiet=True)\n"
            "for s in range(3):\n"
            "    m(torch.randn(4, 3)).sum().backward()\n"
            "    run.log(s, loss=float(s))\n"
            "raise SystemExit(0)\n" % self.path("r")
        )
        env = dict(os.environ, PYTHONPATH=helpers.PYTHON_DIR)
        out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
        self.assertEqual(out.returncode, 0, out.stderr)
        r = tensorscape.read_run(self.path("r"))
        self.addCleanup(r.close)
        self.assertTrue(r.closed)
        np.testing.assert_array_equal(r.steps, [0, 1, 2])
        np.testing.assert_array_equal(r.scalars["loss"][1], [0.0, 1.0, 2.0])

    def test_root_leaf_model_and_overwrite(self):
        m = nn.Linear(3, 2)
        with tensorscape.init(self.path("r"), m, every=1, quiet=True) as run:
            m(torch.randn(2, 3)).sum().backward()
            run.log(0)
        with tensorscape.init(self.path("r"), m, every=1, overwrite=True, quiet=True) as run:
            m(torch.randn(5, 3)).sum().backward()
            run.log(0)
        r = tensorscape.read_run(self.path("r"))
        self.assertEqual([L.name for L in r.layers], ["model"])
        np.testing.assert_array_equal(r.rows(0), [5])


if __name__ == "__main__":
    unittest.main()
