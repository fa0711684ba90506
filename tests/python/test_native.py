"""The compiled reducer (tensorscape_native, the engine's fused reducer built by CMake into BUILD/python)
through tensorscape.reduce.NativeReducer: the same statistics as the float64 reference and the torch-ops
reducer, mergeable across splits, and a recording with it equal to one with torch ops. Skipped when the
module has not been built."""

import glob
import importlib.util
import os
import unittest

import numpy as np

try:
    from . import helpers
    from .test_reduce import messy
except ImportError:
    import helpers
    from test_reduce import messy

import torch  # noqa: E402
import torch.nn as nn  # noqa: E402

import tensorscape  # noqa: E402
from tensorscape import reduce as R  # noqa: E402


def load_native():
    """tensorscape_native from sys.path, else from BUILD/python (TS_BUILD_DIR, default build), loaded without
    touching sys.path or sys.modules (so the other tests keep their reducer)."""
    try:
        import tensorscape_native

        return tensorscape_native
    except ImportError:
        pass
    build = os.environ.get("TS_BUILD_DIR", "build")
    build = build if os.path.isabs(build) else os.path.join(helpers.REPO, build)
    for path in glob.glob(os.path.join(build, "python", "tensorscape_native*.so")):
        spec = importlib.util.spec_from_file_location("tensorscape_native", path)
        mod = importlib.util.module_from_spec(spec)
        try:
            spec.loader.exec_module(mod)
            return mod
        except ImportError:
            continue
    return None


NATIVE = load_native()
if NATIVE is None and os.environ.get("TS_REQUIRE_NATIVE") == "1":
    # ctest builds the module first: its absence there is a build failure, not a reason to skip.
    raise RuntimeError("tensorscape_native is not built in BUILD/python (TS_REQUIRE_NATIVE=1)")


@unittest.skipIf(NATIVE is None, "tensorscape_native is not built (CMake builds it into BUILD/python)")
class NativeReducerTest(helpers.TempDirTest):
    def setUp(self):
        super().setUp()
        self.reducer = R.NativeReducer(NATIVE)

    def stats(self, x):
        return R.finalize(self.reducer.moments(torch.as_tensor(x))).numpy()

    def test_against_reference(self):
        rng = np.random.default_rng(11)
        cases = [(32, 300, 0.0, True), (257, 65, 100.0, True), (1, 9, 0.5, True), (7, 1, 1.0, False),
                 (2, 4097, 0.0, True), (64, 500, -3.0, False), (4096, 5, 1e3, False)]
        for rows, neurons, offset, special in cases:
            x = messy(rng, rows, neurons, offset, special)
            what = "%dx%d+%g special=%s" % (rows, neurons, offset, special)
            helpers.assert_stats_close(self, self.stats(x), helpers.ref_neuron_stats_fast(x), what=what)

    def test_non_contiguous_and_other_dtypes(self):
        rng = np.random.default_rng(12)
        x = torch.from_numpy(messy(rng, 9, 40, 1.0))
        helpers.assert_stats_close(self, self.stats(x.t()), helpers.ref_neuron_stats_fast(x.t().numpy()))
        helpers.assert_stats_close(self, self.stats(x[:, ::3]), helpers.ref_neuron_stats_fast(x[:, ::3].numpy()))
        h = x.half()
        helpers.assert_stats_close(self, self.stats(h), helpers.ref_neuron_stats_fast(h.float().numpy()))
        self.assertEqual(self.stats(torch.randn(3, 2, 5)).shape, (8, 10))

    def test_combine_of_splits(self):
        rng = np.random.default_rng(13)
        x = messy(rng, 50, 33, 2.0)
        m = R.empty_moments(33)
        for part in np.split(x, [7, 20, 21]):
            m = R.combine(m, self.reducer.moments(torch.from_numpy(part)))
        helpers.assert_stats_close(self, R.finalize(m).numpy(), helpers.ref_neuron_stats_fast(x), what="combined")

    def test_recording_equals_torch_ops(self):
        paths = []
        for which in ("torch", "native"):
            torch.manual_seed(0)
            model = helpers.SmallCNN()
            opt = torch.optim.SGD(model.parameters(), lr=0.05)
            path = self.path(which)
            paths.append(path)
            gen = torch.Generator().manual_seed(1)
            with tensorscape.init(path, model, every=2, quiet=True) as run:
                run.reducer = self.reducer if which == "native" else R.TorchReducer()
                for step in range(6):
                    x = torch.randn(10, 1, 12, 12, generator=gen)
                    loss = nn.functional.cross_entropy(model(x), torch.randint(0, 10, (10,), generator=gen))
                    opt.zero_grad()
                    loss.backward()
                    opt.step()
                    run.log(step, loss=loss.item())
        a, b = (tensorscape.read_run(p) for p in paths)
        self.addCleanup(a.close)
        self.addCleanup(b.close)
        np.testing.assert_array_equal(a.steps, b.steps)
        for L in a.layers:
            for i in range(len(a.steps)):
                for kind in ("activation", "gradient"):
                    helpers.assert_stats_close(
                        self, b.snapshot(L.name, i, kind), a.snapshot(L.name, i, kind), rtol=1e-5,
                        what="%s %s %d" % (L.name, kind, i),
                    )
            np.testing.assert_array_equal(a.rows(L.name), b.rows(L.name))


if __name__ == "__main__":
    unittest.main()
