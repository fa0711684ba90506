"""Recording a small CNN and an MLP for 30 steps (every=1 and every=7): what read_run returns equals the
test's own capture of the module outputs, output gradients and parameters, reduced with float64 numpy."""

import unittest

import numpy as np

try:
    from . import helpers
except ImportError:
    import helpers

import torch  # noqa: E402
import torch.nn as nn  # noqa: E402

import tensorscape  # noqa: E402

CNN_LAYERS = ["conv1", "act1", "pool", "conv2", "act2", "head.0", "head.1", "head.2", "head.3"]
MLP_LAYERS = ["fc1", "act", "fc2", "act#2", "out"]


def cnn_batch(gen, step):
    x = torch.randn(12, 1, 12, 12, generator=gen)
    x[:, :, :2, :] = 0.0  # exact zeros in the input and the first convolution's output rows
    return x, torch.randint(0, 10, (12,), generator=gen)


def mlp_batch(gen, step):
    return torch.randn(9, 20, generator=gen) * 2.0, torch.randint(0, 5, (9,), generator=gen)


class CountingReducer:
    def __init__(self, inner):
        self.inner, self.name, self.calls = inner, inner.name, 0

    def moments(self, x2d):
        self.calls += 1
        return self.inner.moments(x2d)


class RecordTest(helpers.TempDirTest):
    def train(self, make_model, batch, layer_names, every, check_steps, steps=30, background=False):
        torch.manual_seed(0)
        model = make_model()
        opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
        path = self.path("run_every%d" % every)
        run = tensorscape.init(path, model, every=every, histogram_bins=8, quiet=True, background=background)
        counter = CountingReducer(run.reducer)
        run.reducer = counter
        modules = dict(model.named_modules())
        cap = helpers.Capture(model, sorted({n.split("#")[0] for n in layer_names}))
        gen = torch.Generator().manual_seed(1)
        expected, losses = {}, []
        for step in range(steps):
            x, y = batch(gen, step)
            cap.reset()
            cap.on = step in check_steps
            loss = nn.functional.cross_entropy(model(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            if cap.on:
                params = {}
                for name in layer_names:
                    m = modules[name.split("#")[0]]
                    own = list(m.parameters(recurse=False))
                    params[name] = (
                        np.concatenate([p.detach().double().numpy().ravel() for p in own]) if own else None,
                        np.concatenate([p.grad.double().numpy().ravel() for p in own]) if own else None,
                    )
                expected[step] = (dict(cap.outputs), dict(cap.grads), params, len(x))
            losses.append(loss.item())
            run.log(step, loss=loss.item(), lr=0.05)
        run.close()
        recorded = [s for s in range(steps) if s % every == 0]
        # the hooks reduce only at recorded steps: one activation and one gradient per layer
        self.assertEqual(counter.calls, 2 * len(layer_names) * len(recorded))

        r = tensorscape.read_run(path)
        self.addCleanup(r.close)
        self.assertTrue(r.closed)
        np.testing.assert_array_equal(r.steps, recorded)
        self.assertEqual([L.name for L in r.layers], layer_names)
        for L in r.layers:
            own = modules[L.name.split("#")[0]].parameters(recurse=False)
            self.assertEqual(L.params, sum(p.numel() for p in own))
        s_loss, v_loss = r.scalars["loss"]
        np.testing.assert_array_equal(s_loss, np.arange(steps))
        np.testing.assert_allclose(v_loss, losses, rtol=1e-12)
        np.testing.assert_allclose(r.scalars["lr"][1], 0.05)
        for step, (outs, grads, params, batch_size) in expected.items():
            i = list(r.steps).index(step)
            for name in layer_names:
                what = "%s step %d" % (name, step)
                self.assertEqual(int(r.rows(name)[i]), batch_size, what)
                act = r.neuron_stat(name, "mean")  # [S, N]
                self.assertEqual(act.shape, (len(recorded), int(np.prod(outs[name].shape[1:]))))
                got_a = np.stack([r.neuron_stat(name, s)[i] for s in tensorscape.STATISTICS])
                ref_a = helpers.ref_neuron_stats(outs[name])
                helpers.assert_stats_close(self, got_a, ref_a, what="activation " + what)
                got_g = r.snapshot(name, i, kind="gradient")
                ref_g = helpers.ref_neuron_stats(grads[name])
                helpers.assert_stats_close(self, got_g, ref_g, what="gradient " + what)
                w, wg = params[name]
                ws = r.weight_stats(name)
                wgs = r.weight_stats(name, "weight_grad")
                counts, ranges = r.weight_histogram(name)
                gcounts, granges = r.weight_histogram(name, "weight_grad")
                if w is None:
                    self.assertTrue(np.isnan([ws[k][i] for k in ws]).all(), what)
                    self.assertTrue(np.isnan([wgs[k][i] for k in wgs]).all(), what)
                    self.assertEqual(counts[i].sum(), 0)
                    self.assertTrue(np.isnan(ranges[i]).all())
                    continue
                # The stored weight matrix is the module's weight after the step (its first numel values).
                weight = getattr(modules[name.split("#")[0]], "weight", None)
                mat = r.weight_matrix(name, i)
                if isinstance(weight, torch.Tensor) and weight.dim() >= 2 and "#" not in name:
                    self.assertIsNotNone(mat, what)
                    self.assertEqual(mat.shape, (weight.shape[0], weight.numel() // weight.shape[0]), what)
                    np.testing.assert_array_equal(mat.ravel().astype(np.float64), w[: weight.numel()], err_msg=what)
                else:
                    self.assertIsNone(mat, what)
                for values, stats, c, rg in ((w, ws, counts, ranges), (wg, wgs, gcounts, granges)):
                    rs, rh, rr = helpers.ref_layer_stats(values, 8)
                    got = [stats[k][i] for k in tensorscape.LAYER_STATISTICS]
                    np.testing.assert_allclose(got, rs, rtol=1e-9, err_msg=what)
                    np.testing.assert_allclose(rg[i], rr, rtol=1e-12, err_msg=what)
                    self.assertEqual(int(c[i].sum()), values.size, what)
                    # equal bins over the range: allow a value on a bin edge to land on either side
                    self.assertLessEqual(np.abs(c[i] - rh).sum(), 2, what)
        return r

    def test_cnn_every_1(self):
        self.train(helpers.SmallCNN, cnn_batch, CNN_LAYERS, 1, (0, 13, 29))

    def test_cnn_every_7(self):
        r = self.train(helpers.SmallCNN, cnn_batch, CNN_LAYERS, 7, (0, 14, 28))
        # zeros in the input rows reach the first convolution's output only through the bias; ReLU zeros
        zf = r.neuron_stat("act1", "zero_fraction")
        self.assertTrue((zf > 0).any())

    def test_cnn_every_1_background_writer(self):
        self.train(helpers.SmallCNN, cnn_batch, CNN_LAYERS, 1, (0, 13, 29), background=True)

    def test_mlp_every_1(self):
        self.train(helpers.MLP, mlp_batch, MLP_LAYERS, 1, (0, 17, 29))

    def test_mlp_every_7(self):
        self.train(helpers.MLP, mlp_batch, MLP_LAYERS, 7, (7, 21, 28))


if __name__ == "__main__":
    unittest.main()
