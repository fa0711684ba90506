"""Recorder behaviour: which steps are recorded, forward passes without backward, evaluation passes, NaN in
training, tuple outputs and repeated calls, scalars, the time pyramids and series()."""

import contextlib
import io
import json
import os
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
        self.assertIn("statistics by torch ops on cpu", err.getvalue())
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
        self.assertEqual(r.layer("pair.lin").params, 30)
        self.assertTrue(np.isfinite(r.neuron_stat("pair.out1", "mean", "gradient")).all())

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
        steps = 37
        with tensorscape.init(self.path("r"), m, every=1, quiet=True) as run:
            for step in range(steps):
                x = torch.randn(4, 2)
                if step == 5:
                    with torch.no_grad():
                        m(x)  # no gradient at this snapshot: NaN rows in the pyramid input
                else:
                    m(x).sum().backward()
                run.log(step)
        r = tensorscape.read_run(self.path("r"))
        self.assertEqual(len(r.steps), steps)
        mean = r.neuron_stat("0", "mean").astype(np.float64)
        gabs = r.neuron_stat("0", "mean_abs", "gradient").astype(np.float64)
        self.assertTrue(np.isnan(gabs[5]).all())
        with h5py.File(self.path("r", "run.h5"), "r", libver="latest", swmr=True) as f:
            for name, base in (("activation_mean", mean), ("gradient_mean_abs", gabs)):
                level = [np.stack([base, base, base], axis=1)]  # [S, 3, N]
                for k in range(1, 7):
                    prev = level[-1]
                    rows = prev.shape[0] // 2
                    a, b = prev[0 : 2 * rows : 2], prev[1 : 2 * rows : 2]
                    with np.errstate(invalid="ignore"):
                        nxt = np.stack(
                            [np.fmin(a[:, 0], b[:, 0]), np.fmax(a[:, 1], b[:, 1]),
                             np.where(np.isnan(a[:, 2]), b[:, 2], np.where(np.isnan(b[:, 2]), a[:, 2], (a[:, 2] + b[:, 2]) / 2))],
                            axis=1,
                        )
                    level.append(nxt)
                    stored = f["layers/0000/pyramid/%s/L%d" % (name, k)][:]
                    self.assertEqual(stored.shape[0], steps >> k, "%s L%d" % (name, k))
                    np.testing.assert_allclose(stored, nxt, rtol=1e-6, err_msg="%s L%d" % (name, k))
            self.assertEqual(len(f["layers/0000/pyramid/activation_mean"]), 24)
        # series: every point without max_points, windows of 2^K with it
        s, lo, hi, mu = r.series("0", 1)
        np.testing.assert_array_equal(s, np.arange(steps))
        np.testing.assert_array_equal(mu, mean[:, 1].astype(np.float32))
        for stat, kind, base in (("mean", "activation", mean), ("variance", "activation", None), ("mean_abs", "gradient", gabs)):
            if base is None:
                base = r.neuron_stat("0", stat, kind).astype(np.float64)
            s, lo, hi, mu = r.series("0", 2, stat=stat, kind=kind, max_points=5)
            self.assertLessEqual(len(s), 5)
            window = 8  # ceil(37 / 8) = 5 points
            np.testing.assert_array_equal(s, np.arange(0, steps, window))
            for j in range(len(s)):
                w = base[j * window : (j + 1) * window, 2]
                w = w[~np.isnan(w)]
                self.assertAlmostEqual(lo[j], w.min(), places=6)
                self.assertAlmostEqual(hi[j], w.max(), places=6)
                if stat == "mean" or j == len(s) - 1 or stat == "variance":
                    self.assertAlmostEqual(mu[j], w.mean(), places=5)

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
            g = f["layers/0000"]
            self.assertEqual(g.attrs["name"], "fc1")
            self.assertEqual(list(g.attrs["shape"]), [33])
            self.assertEqual(g["activation"].chunks, (1, 8, 33))
            self.assertEqual(g["activation"].compression, "gzip")
            self.assertTrue(g["activation"].shuffle)
            self.assertEqual(g["activation"].dtype, np.float32)
            self.assertEqual(g["weight"].dtype, np.float64)
            self.assertEqual(g["weight_hist"].dtype, np.int64)
            self.assertEqual(g["pyramid/activation_mean/L1"].chunks, (1, 3, 33))
        self.assertFalse(os.path.exists(self.path("r", "run.h5.tmp")))

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
