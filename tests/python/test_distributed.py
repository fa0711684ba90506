"""torch.distributed (gloo, 2 processes): the statistics rank 0 stores equal a single-process recording of
the same global batch; a rank that dies leaves rank 0's run readable with the steps committed before."""

import os
import unittest

import numpy as np

try:
    from . import helpers, workers
except ImportError:
    import helpers
    import workers

import tensorscape  # noqa: E402

STEPS = 6


class DistributedTest(helpers.TempDirTest):
    @classmethod
    def setUpClass(cls):
        cls.server = helpers.ForkServer.get()

    def launch(self, run_dir, world=2, **kwargs):
        port = helpers.free_port()
        pids, logs = [], []
        for rank in range(world):
            log = self.path("rank%d.log" % rank)
            logs.append(log)
            pids.append(
                self.server.fork("ddp_train", log, rank=rank, world=world, port=port, run_dir=run_dir, **kwargs)
            )
        statuses = [self.server.wait(pid, timeout=90) for pid in pids]
        return statuses, logs

    def test_two_ranks_equal_single_process(self):
        ddp_dir, single_dir = self.path("ddp"), self.path("single")
        statuses, logs = self.launch(ddp_dir, steps=STEPS, every=2)
        self.assertEqual(statuses, [0, 0], [helpers.read_lines(l)[-8:] for l in logs])
        self.assertEqual(sorted(os.listdir(ddp_dir)), ["run.h5", "run.json"])  # rank 1 wrote nothing
        workers.single_train(single_dir, steps=STEPS, every=2)
        a = tensorscape.read_run(ddp_dir)
        b = tensorscape.read_run(single_dir)
        self.addCleanup(a.close)
        self.addCleanup(b.close)
        self.assertEqual(a.world_size, 2)
        np.testing.assert_array_equal(a.steps, [0, 2, 4])
        np.testing.assert_array_equal(a.steps, b.steps)
        self.assertEqual([L.name for L in a.layers], [L.name for L in b.layers])
        self.assertEqual(len(a.layers), 9)
        for L in a.layers:
            np.testing.assert_array_equal(a.rows(L.name), [12, 12, 12], err_msg=L.name)
            for i in range(len(a.steps)):
                for kind in ("activation", "gradient"):
                    helpers.assert_stats_close(
                        self, a.snapshot(L.name, i, kind), b.snapshot(L.name, i, kind), rtol=1e-5, layer_atol=1e-6,
                        what="%s %s snapshot %d" % (L.name, kind, i),
                    )
            for kind in ("weight", "weight_grad"):
                wa, wb = a.weight_stats(L.name, kind), b.weight_stats(L.name, kind)
                for k in tensorscape.LAYER_STATISTICS:
                    scale = np.nanmax(np.abs(np.concatenate([wb[k], [0.0]])))
                    if k == "mean":  # a mean near zero (the output bias gradient sums to ~0): its spread's scale
                        scale = max(scale, np.nanmax(np.concatenate([wb["std"], [0.0]])))
                    what = "%s %s %s" % (L.name, kind, k)
                    np.testing.assert_allclose(wa[k], wb[k], rtol=1e-5, atol=1e-6 * scale, err_msg=what)
                ca, ra = a.weight_histogram(L.name, kind)
                cb, rb = b.weight_histogram(L.name, kind)
                np.testing.assert_allclose(ra, rb, rtol=1e-5, atol=1e-7)
                self.assertLessEqual(np.abs(ca - cb).sum(axis=1).max(), 4, "%s %s" % (L.name, kind))
        # rank 0 logs its own scalars
        self.assertEqual(len(a.scalars["loss"][0]), STEPS)

    def test_rank_that_dies(self):
        run_dir = self.path("dies")
        statuses, logs = self.launch(run_dir, steps=50, every=1, die_after=3, timeout_s=10)
        self.assertEqual(statuses[1], 3)
        self.assertNotEqual(statuses[0], 0)  # rank 0 fails at its next collective
        printed = helpers.committed_steps(logs[0])
        self.assertGreaterEqual(len(printed), 4)
        r = tensorscape.read_run(run_dir)
        self.addCleanup(r.close)
        np.testing.assert_array_equal(r.steps, printed)
        np.testing.assert_array_equal(r.rows("conv1"), np.full(len(printed), 12))
        self.assertTrue(np.isfinite(r.snapshot("head.3", len(printed) - 1)).all())


if __name__ == "__main__":
    unittest.main()
