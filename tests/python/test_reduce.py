"""tensorscape.reduce against float64 numpy references: NaN/Inf/zeros, odd sizes, Chan combine of splits."""

import os
import unittest

import numpy as np

try:
    from . import helpers
except ImportError:  # run from tests/python directly
    import helpers

import torch  # noqa: E402

from tensorscape import reduce as R  # noqa: E402


def stats_of(x):
    return R.finalize(R.neuron_moments(torch.as_tensor(x))).numpy()


def messy(rng, rows, neurons, offset=0.0, special=True):
    """float32 data with a per-neuron scale and offset, exact zeros, and (special) NaN, +-Inf and a column
    with no finite value."""
    x = rng.standard_normal((rows, neurons)) * rng.uniform(1e-3, 10.0, neurons) + offset
    x = x.astype(np.float32)
    x[rng.random((rows, neurons)) < 0.1] = 0.0
    if special:
        x[rng.random((rows, neurons)) < 0.03] = np.nan
        x[rng.random((rows, neurons)) < 0.02] = np.inf
        x[rng.random((rows, neurons)) < 0.02] = -np.inf
        if neurons > 2:
            x[:, 1] = np.nan
            x[:, 2] = np.where(rng.random(rows) < 0.5, np.inf, np.nan)
    return x


class ReduceTest(unittest.TestCase):
    def check(self, x, what):
        helpers.assert_stats_close(self, stats_of(x), helpers.ref_neuron_stats_fast(x), what=what)

    def test_reference_implementations_agree(self):
        rng = np.random.default_rng(1)
        x = messy(rng, 9, 7)
        np.testing.assert_allclose(
            helpers.ref_neuron_stats(x), helpers.ref_neuron_stats_fast(x), rtol=1e-12, equal_nan=True
        )

    def test_random_with_nan_inf_zeros(self):
        rng = np.random.default_rng(2)
        for rows, neurons, offset in [(32, 300, 0.0), (257, 65, 100.0), (5, 1000, -3.0), (1000, 3, 1e3)]:
            self.check(messy(rng, rows, neurons, offset), "messy %dx%d+%g" % (rows, neurons, offset))

    def test_finite_fast_path(self):
        rng = np.random.default_rng(3)
        for rows, neurons, offset in [(64, 500, 0.0), (4096, 20, 100.0), (3, 4097, 1.0), (20000, 2, 1e4)]:
            self.check(messy(rng, rows, neurons, offset, special=False), "finite %dx%d+%g" % (rows, neurons, offset))

    def test_signed_fast_paths(self):
        rng = np.random.default_rng(9)
        x = messy(rng, 40, 300, 0.0, special=False)
        self.check(np.maximum(x, 0), "nonnegative (ReLU)")
        self.check(np.minimum(x, 0), "nonpositive")
        self.check(np.abs(x) + 1.0, "positive")

    def test_odd_sizes(self):
        rng = np.random.default_rng(4)
        for rows, neurons in [(1, 1), (1, 9), (7, 1), (2, 4097), (1, 4097)]:
            for special in (False, True):
                self.check(messy(rng, rows, neurons, 0.5, special), "%dx%d special=%s" % (rows, neurons, special))

    def test_one_row_values(self):
        x = np.array([[1.5, 0.0, np.nan, -np.inf, -2.0]], dtype=np.float32)
        s = stats_of(x)
        np.testing.assert_array_equal(s[0], [1.5, 0.0, np.nan, np.nan, -2.0])
        np.testing.assert_array_equal(s[2], [0, 0, np.nan, np.nan, 0])
        np.testing.assert_array_equal(s[5], [0, 1, 0, 0, 0])
        np.testing.assert_array_equal(s[6], [0, 0, 1, 0, 0])
        np.testing.assert_array_equal(s[7], [0, 0, 0, 1, 0])

    def test_large_magnitudes_fall_back_to_float64(self):
        x = np.array([[3e38, -3e38], [3e38, 1e30], [-1e38, 2.0]], dtype=np.float32)
        self.check(x, "near float32 max")

    def test_other_dtypes_and_shapes(self):
        rng = np.random.default_rng(5)
        x = rng.standard_normal((6, 3, 4)).astype(np.float32)
        s64 = R.finalize(R.neuron_moments(torch.from_numpy(x.astype(np.float64)))).numpy()
        helpers.assert_stats_close(self, s64, helpers.ref_neuron_stats_fast(x), what="float64 input")
        s = R.finalize(R.neuron_moments(torch.from_numpy(x))).numpy()
        self.assertEqual(s.shape, (8, 12))
        h = R.finalize(R.neuron_moments(torch.from_numpy(x).half())).numpy()
        ref = helpers.ref_neuron_stats_fast(torch.from_numpy(x).half().float().numpy())
        helpers.assert_stats_close(self, h, ref, what="half input")
        v = R.finalize(R.neuron_moments(torch.arange(5.0))).numpy()
        self.assertEqual(v.shape, (8, 1))
        self.assertAlmostEqual(v[0, 0], 2.0)

    def test_combine_of_splits_equals_whole(self):
        rng = np.random.default_rng(6)
        for special in (False, True):
            x = messy(rng, 103, 37, 2.0, special)
            whole = stats_of(x)
            for cuts in ([50], [1, 2, 3], [0, 100], [10, 20, 30, 40, 102]):
                parts = np.split(x, cuts)
                m = R.empty_moments(37)
                for p in parts:
                    m = R.combine(m, R.neuron_moments(torch.from_numpy(p)))
                got = R.finalize(m).numpy()
                helpers.assert_stats_close(self, got, whole, rtol=1e-6, what="cuts %s" % cuts)
                helpers.assert_stats_close(self, got, helpers.ref_neuron_stats_fast(x), what="cuts %s ref" % cuts)

    def test_empty_and_pack(self):
        e = R.finalize(R.empty_moments(4)).numpy()
        self.assertTrue(np.isnan(e).all())
        rng = np.random.default_rng(7)
        m = R.neuron_moments(torch.from_numpy(messy(rng, 8, 5)))
        back = R.unpack(R.pack(m), 5)
        for k in R.MOMENT_KEYS:
            np.testing.assert_array_equal(back[k].numpy(), m[k].numpy(), err_msg=k)
        self.assertEqual(R.pack(m).numel(), R.packed_size(5))
        x = messy(rng, 8, 5, special=False)
        scaled = R.finalize(R.scale_moments(R.neuron_moments(torch.from_numpy(x)), 0.25)).numpy()
        ref = helpers.ref_neuron_stats_fast(x.astype(np.float64) * 0.25)
        helpers.assert_stats_close(self, scaled, ref, what="scaled")

    def test_layer_stats(self):
        rng = np.random.default_rng(8)
        a = torch.from_numpy(rng.standard_normal((4, 5)).astype(np.float32))
        b = torch.from_numpy(rng.standard_normal(7).astype(np.float32))
        stats, hist, rng_ = R.layer_stats([a, b], 16)
        flat = np.concatenate([a.numpy().ravel(), b.numpy().ravel()])
        rs, rh, rr = helpers.ref_layer_stats(flat, 16)
        np.testing.assert_allclose(stats, rs, rtol=1e-12)
        np.testing.assert_array_equal(hist, rh)
        np.testing.assert_array_equal(rng_, rr)
        self.assertEqual(hist.sum(), 27)
        # constant values widen the range; NaN/Inf counted, not binned
        c = torch.tensor([2.0, 2.0, float("nan"), float("inf")])
        stats, hist, r = R.layer_stats([c], 4)
        np.testing.assert_array_equal(r, [1.5, 2.5])
        self.assertEqual(hist.sum(), 2)
        np.testing.assert_array_equal(stats[[0, 6, 7]], [2, 1, 1])
        # none: NaN stats, zero histogram
        stats, hist, r = R.layer_stats([], 4)
        self.assertTrue(np.isnan(stats).all() and np.isnan(r).all() and hist.sum() == 0)

    def test_reducer_choice(self):
        old = os.environ.get("TENSORSCAPE_REDUCER")
        os.environ["TENSORSCAPE_REDUCER"] = "torch"
        try:
            self.assertEqual(R.get_reducer().name, "torch ops")
            self.assertEqual(R.get_reducer().describe("cpu"), "torch ops")
        finally:
            if old is None:
                del os.environ["TENSORSCAPE_REDUCER"]
            else:
                os.environ["TENSORSCAPE_REDUCER"] = old


if __name__ == "__main__":
    unittest.main()
