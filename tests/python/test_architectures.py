"""Real architectures: torchvision resnet18, an nn.TransformerEncoder and an nn.LSTM classifier. Every module
that owns parameters and ran is recorded, tuple outputs are named NAME.outK, shapes are right."""

import unittest

import numpy as np

try:
    from . import helpers
except ImportError:
    import helpers

import torch  # noqa: E402
import torch.nn as nn  # noqa: E402

import tensorscape  # noqa: E402


class Ran:
    """Names of the modules whose forward ran, and their outputs' per-sample shapes."""

    def __init__(self, model):
        self.shapes = {}
        self.handles = [
            m.register_forward_hook(self._hook(name)) for name, m in model.named_modules() if m is not model
        ]

    def _hook(self, name):
        def hook(module, inputs, output):
            self.shapes.setdefault(name, output)

        return hook

    def remove(self):
        for h in self.handles:
            h.remove()


class TransformerClassifier(nn.Module):
    def __init__(self, vocab=50, d=16, classes=4):
        super().__init__()
        self.embed = nn.Embedding(vocab, d)
        layer = nn.TransformerEncoderLayer(d_model=d, nhead=2, dim_feedforward=32, dropout=0.1, batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, num_layers=2)
        self.attn = nn.MultiheadAttention(d, 2, batch_first=True)  # need_weights=True: a tuple of two
        self.head = nn.Linear(d, classes)

    def forward(self, tokens):
        h = self.encoder(self.embed(tokens))
        a, weights = self.attn(h, h, h, need_weights=True)
        return self.head(a.mean(1)) + weights.sum() * 0


class LSTMClassifier(nn.Module):
    def __init__(self, vocab=40, d=8, hidden=12, classes=3):
        super().__init__()
        self.embed = nn.Embedding(vocab, d)
        self.lstm = nn.LSTM(d, hidden, batch_first=True)
        self.head = nn.Linear(hidden, classes)

    def forward(self, tokens):
        out, (h, c) = self.lstm(self.embed(tokens))
        return self.head(out[:, -1])


def reads(r, name):
    """Names of the layers that layer `name` reads in the recorded DAG ("input": the model input)."""
    return {r.layers[i].name if i >= 0 else "input" for i in r.layer(name).inputs}


class ArchitectureTest(helpers.TempDirTest):
    def record(self, model, make_input, steps=2):
        torch.manual_seed(0)
        ran = Ran(model)
        opt = torch.optim.SGD(model.parameters(), lr=0.01)
        path = self.path(type(model).__name__)
        with tensorscape.init(path, model, every=1, quiet=True) as run:
            for step in range(steps):
                x = make_input()
                out = model(x)
                loss = out.float().pow(2).mean()
                opt.zero_grad()
                loss.backward()
                opt.step()
                run.log(step, loss=loss.item())
        ran.remove()
        r = tensorscape.read_run(path)
        self.addCleanup(r.close)
        self.assertEqual(len(r.steps), steps)
        names = {L.name for L in r.layers}
        for name, m in model.named_modules():
            if m is model or name not in ran.shapes:
                continue
            if any(True for _ in m.parameters(recurse=False)) or not any(True for _ in m.children()):
                self.assertIn(name, names, "module %s (%s) ran but is not recorded" % (name, type(m).__name__))
        for L in r.layers:
            self.assertEqual(int(np.prod(L.shape)), L.neurons)
            a = r.neuron_stat(L.name, "mean")
            self.assertEqual(a.shape, (steps, L.neurons), L.name)
            base = L.name.split("#")[0].split(".out")[0]
            out = ran.shapes.get(base)
            if torch.is_tensor(out) and "#" not in L.name and ".out" not in L.name:
                self.assertEqual(L.shape, tuple(out.shape[1:]), L.name)
        return r

    def test_resnet18(self):
        import torchvision

        model = torchvision.models.resnet18(weights=None)
        r = self.record(model, lambda: torch.randn(2, 3, 64, 64))
        shapes = {L.name: L.shape for L in r.layers}
        self.assertEqual(shapes["conv1"], (64, 32, 32))
        self.assertEqual(shapes["maxpool"], (64, 16, 16))
        self.assertEqual(shapes["layer4.1.conv2"], (512, 2, 2))
        self.assertEqual(shapes["avgpool"], (512, 1, 1))
        self.assertEqual(shapes["fc"], (1000,))
        self.assertEqual(shapes["layer1.0.relu#2"], (64, 16, 16))  # the block's ReLU runs twice
        self.assertEqual(r.layer("layer2.0.downsample.0").params, 64 * 128)
        self.assertEqual(r.layer("bn1").params, 128)
        self.assertNotIn("layer1.0", shapes)  # containers are not recorded
        np.testing.assert_array_equal(r.rows("fc"), [2, 2])
        # in-place ReLU after BatchNorm: each gets the gradient of its own output
        g_bn = r.neuron_stat("layer1.0.bn2", "zero_fraction", "gradient")
        g_relu = r.neuron_stat("layer1.0.relu#2", "zero_fraction", "gradient")
        self.assertTrue(np.isfinite(g_bn).all() and np.isfinite(g_relu).all())
        self.assertTrue((g_bn >= g_relu).all())
        zf = r.neuron_stat("relu", "zero_fraction")
        self.assertGreater(zf.mean(), 0.2)
        self.assertEqual(len(r.layers), len({L.name for L in r.layers}))
        # The layer DAG: residual additions (functional, in place) are looked through to both branches.
        self.assertEqual(reads(r, "conv1"), {"input"})
        self.assertEqual(reads(r, "relu"), {"bn1"})  # in-place ReLU
        self.assertEqual(reads(r, "layer1.0.relu#2"), {"maxpool", "layer1.0.bn2"})
        self.assertEqual(reads(r, "layer2.0.downsample.0"), {"layer1.1.relu#2"})
        self.assertEqual(reads(r, "layer2.0.relu#2"), {"layer2.0.bn2", "layer2.0.downsample.1"})
        self.assertEqual(reads(r, "fc"), {"avgpool"})  # through torch.flatten
        for L in r.layers:  # every edge points back in forward order
            self.assertTrue(all(-1 <= i < L.index for i in L.inputs), L.name)

    def test_transformer_encoder(self):
        model = TransformerClassifier()
        r = self.record(model, lambda: torch.randint(0, 50, (3, 7)))
        shapes = {L.name: L.shape for L in r.layers}
        self.assertEqual(shapes["embed"], (7, 16))
        self.assertEqual(shapes["encoder.layers.0.self_attn"], (7, 16))
        self.assertEqual(shapes["encoder.layers.1.linear1"], (7, 32))
        self.assertEqual(shapes["attn"], (7, 16))
        self.assertEqual(shapes["attn.out1"], (7, 7))  # attention weights, the tuple's second element
        self.assertEqual(shapes["head"], (4,))
        self.assertEqual(r.layer("encoder.layers.0.self_attn").params, 3 * 16 * 16 + 3 * 16)
        self.assertTrue(np.isfinite(r.neuron_stat("encoder.layers.1.norm2", "mean", "gradient")).all())
        self.assertEqual(reads(r, "encoder.layers.0.self_attn"), {"embed"})
        # Attention's packed query/key/value projection is its weight matrix (Hinton and weights views).
        w = r.weight_matrix("encoder.layers.0.self_attn", 1)
        np.testing.assert_array_equal(w, model.encoder.layers[0].self_attn.in_proj_weight.detach().numpy())
        self.assertEqual(reads(r, "head"), {"attn"})  # a.mean(1); the weights join after the head

    def test_lstm(self):
        model = LSTMClassifier()
        r = self.record(model, lambda: torch.randint(0, 40, (5, 6)))
        names = [L.name for L in r.layers]
        self.assertEqual(names, ["embed", "lstm", "lstm.out1", "lstm.out2", "head"])
        shapes = {L.name: L.shape for L in r.layers}
        self.assertEqual(shapes["lstm"], (6, 12))
        # h_n and c_n are [num_layers, batch, hidden]: recorded batch first, their neurons are hidden units
        self.assertEqual(shapes["lstm.out1"], (1, 12))
        self.assertEqual(shapes["lstm.out2"], (1, 12))
        np.testing.assert_array_equal(r.rows("lstm.out1"), [5, 5])
        np.testing.assert_array_equal(r.rows("lstm"), [5, 5])
        self.assertTrue(np.isfinite(r.neuron_stat("lstm", "mean_abs", "gradient")).all())
        self.assertTrue(np.isnan(r.neuron_stat("lstm.out2", "mean", "gradient")).all())  # c_n is unused
        self.assertEqual(r.layer("lstm").params, sum(p.numel() for p in model.lstm.parameters()))
        # h_n and c_n own no parameters: the run's layers add up to the model's (they counted the LSTM's 3 times).
        self.assertEqual((r.layer("lstm.out1").params, r.layer("lstm.out2").params), (0, 0))
        self.assertEqual(sum(L.params for L in r.layers), sum(p.numel() for p in model.parameters()))
        self.assertEqual(reads(r, "lstm"), {"embed"})
        self.assertEqual(reads(r, "lstm.out2"), {"embed"})  # a tuple's elements read what the call read
        self.assertEqual(reads(r, "head"), {"lstm"})  # through the slice out[:, -1]

    def test_sequence_first_gru_is_recorded_batch_first(self):
        """nn.GRU without batch_first: output [T, N, H] and h_n [layers, N, H] hold the batch in dimension 1.
        Each is recorded over the batch, its statistics equal to those of the tensor moved batch first, for
        the activation and for its gradient (autograd's, read with retain_grad)."""

        class Seq(nn.Module):
            def __init__(self):
                super().__init__()
                self.gru = nn.GRU(4, 6, num_layers=2)
                self.head = nn.Linear(6, 3)

            def forward(self, x):
                out, h = self.gru(x)
                self.kept = (out, h)
                for t in self.kept:
                    t.retain_grad()
                return self.head(out[-1]) + h.sum(0)[:, :3]

        torch.manual_seed(3)
        model = Seq()
        path = self.path("gru")
        T, N = 7, 5
        with tensorscape.init(path, model, every=1, quiet=True) as run:
            x = torch.randn(T, N, 4)
            model(x).pow(2).mean().backward()
            run.log(0)
        r = tensorscape.read_run(path)
        self.addCleanup(r.close)
        shapes = {L.name: L.shape for L in r.layers}
        self.assertEqual(shapes["gru"], (T, 6))
        self.assertEqual(shapes["gru.out1"], (2, 6))
        out, h = model.kept
        for name, t in (("gru", out), ("gru.out1", h)):
            np.testing.assert_array_equal(r.rows(name), [N])
            for kind, v in (("activation", t.detach()), ("gradient", t.grad)):
                m = v.transpose(0, 1).reshape(N, -1).double()
                np.testing.assert_allclose(r.neuron_stat(name, "mean", kind)[0], m.mean(0).numpy(), rtol=1e-5, atol=1e-7,
                                           err_msg="%s %s" % (name, kind))
                np.testing.assert_allclose(r.neuron_stat(name, "max", kind)[0], m.max(0).values.numpy(), rtol=1e-6,
                                           err_msg="%s %s" % (name, kind))

    def test_dag_of_a_no_grad_first_pass(self):
        """Layers found in an evaluation pass (no autograd graph): tensors are matched by identity."""
        model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
        path = self.path("nograd")
        with tensorscape.init(path, model, every=1, quiet=True) as run:
            with torch.no_grad():
                model(torch.randn(3, 4))
            model(torch.randn(3, 4)).sum().backward()
            run.log(0)
        r = tensorscape.read_run(path)
        self.addCleanup(r.close)
        self.assertEqual([L.inputs for L in r.layers], [(-1,), (0,), (1,)])


if __name__ == "__main__":
    unittest.main()
