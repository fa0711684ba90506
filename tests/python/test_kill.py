"""A recording process killed with SIGKILL at random moments leaves a run that opens and holds every step it
reported committed (at most one more), with consistent values; a reader sees a growing prefix while the
writer runs."""

import os
import random
import signal
import time
import unittest

import h5py
import numpy as np

try:
    from . import helpers
except ImportError:
    import helpers

import tensorscape  # noqa: E402

KILLS = 16
MLP_LAYERS = ["fc1", "act", "fc2", "act#2", "out"]


class KillTest(helpers.TempDirTest):
    @classmethod
    def setUpClass(cls):
        cls.server = helpers.ForkServer.get()

    def check_run(self, run_dir, printed, what, background=False):
        if not os.path.exists(os.path.join(run_dir, "run.h5")):
            # killed before the first commit finished: nothing was reported either (with the writer thread,
            # log(0) returns at once and snapshot 0 may still be in flight)
            self.assertEqual(printed[:-1] if background else printed, [], what)
            with self.assertRaises(tensorscape.RunError):
                tensorscape.read_run(run_dir)
            return 0
        with h5py.File(os.path.join(run_dir, "run.h5"), "r", libver="latest", swmr=True) as f:
            # the writer's defence against a cut write(): small metadata kept inside 4 KiB file pages
            fcpl = f.id.get_create_plist()
            self.assertEqual(fcpl.get_file_space_strategy()[0], h5py.h5f.FSPACE_STRATEGY_PAGE, what)
            self.assertEqual(fcpl.get_file_space_page_size(), 4096, what)
        r = tensorscape.read_run(run_dir)
        try:
            steps = list(r.steps)
            if background:
                # log(k+1) returns only after snapshot k is committed; k+1 may still be in flight
                sure = printed[:-1]
                self.assertEqual(steps[: len(sure)], sure, what)
                self.assertIn(len(steps) - len(printed), (-1, 0, 1), what)
            else:
                self.assertEqual(steps[: len(printed)], printed, what)
                self.assertIn(len(steps) - len(printed), (0, 1), what)
            self.assertEqual(steps, list(range(len(steps))), what)
            self.assertEqual([L.name for L in r.layers], MLP_LAYERS, what)
            S = len(steps)
            if S == 0:
                return 0
            for L in r.layers:
                np.testing.assert_array_equal(r.rows(L.name), np.full(S, 8), err_msg=what)
                for kind in ("activation", "gradient"):
                    # every committed row reads (a SIGKILL that cut an index block's write left the rows it
                    # indexed unreadable before the writers kept small metadata inside file pages)
                    for stat in ("mean", "variance", "min", "max"):
                        self.assertEqual(r.neuron_stat(L.name, stat, kind).shape, (S, L.neurons), what)
                    last = r.snapshot(L.name, S - 1, kind)
                    self.assertTrue(np.isfinite(last).all(), "%s %s %s" % (what, L.name, kind))
                    self.assertTrue((last[6:] == 0).all())
                    self.assertTrue((last[2] >= 0).all() and (last[3] <= last[4]).all())
                w = r.weight_stats(L.name)
                if L.params:
                    self.assertEqual(w["count"][-1], L.params, what)
                    counts, rng = r.weight_histogram(L.name)
                    self.assertEqual(int(counts[-1].sum()), L.params, what)
            # pyramid rows that are committed match the snapshots below them
            mean = r.neuron_stat("fc1", "mean")
            s, lo, hi, mu = r.series("fc1", 3, max_points=max(1, S // 2))
            self.assertEqual(s[0], 0)
            self.assertAlmostEqual(float(lo.min()), float(mean[:, 3].min()), places=6)
            self.assertAlmostEqual(float(hi.max()), float(mean[:, 3].max()), places=6)
            loss_steps, loss = r.scalars["loss"]
            sure = printed[:-1] if background else printed
            self.assertEqual(list(loss_steps[: len(sure)]), sure, what)
            self.assertLessEqual(len(loss_steps) - len(printed), 1, what)
            return S
        finally:
            r.close()

    def test_sigkill_at_random_moments(self):
        rnd = random.Random(1234)
        totals = []
        for trial in range(KILLS):
            run_dir = self.path("kill%02d" % trial)
            log = self.path("kill%02d.log" % trial)
            background = trial % 4 == 3  # a few with the writer thread
            pid = self.server.fork("train", log, run_dir=run_dir, seed=trial, background=background)
            # mostly while steps are committed, sometimes around init and the first commit
            delay = rnd.uniform(0.0, 0.08) if trial % 4 == 0 else rnd.uniform(0.05, 0.6)
            time.sleep(delay)
            os.kill(pid, signal.SIGKILL)
            status = self.server.wait(pid, timeout=30)
            self.assertEqual(status, -signal.SIGKILL, helpers.read_lines(log)[-5:])
            printed = helpers.committed_steps(log)
            what = "trial %d (killed after %.3f s, background=%s)" % (trial, delay, background)
            totals.append((len(printed), self.check_run(run_dir, printed, what, background)))
        # the kills did land at different places, some of them after many commits
        self.assertGreater(max(t[1] for t in totals), 5, totals)

    def test_read_while_writing(self):
        run_dir = self.path("live")
        log = self.path("live.log")
        pid = self.server.fork("train", log, run_dir=run_dir, steps=40, sleep=0.02)
        self.assertTrue(helpers.wait_for(lambda: os.path.exists(os.path.join(run_dir, "run.h5")), 30))
        r = tensorscape.read_run(run_dir)
        seen = []
        first_rows = None
        try:
            while True:
                n = r.refresh()
                steps = list(r.steps)
                self.assertEqual(steps, list(range(n)))
                if seen:
                    self.assertGreaterEqual(n, seen[-1])
                if n:
                    act = r.neuron_stat("fc2", "mean")
                    self.assertEqual(act.shape[0], n)
                    self.assertTrue(np.isfinite(act).all())
                    if first_rows is None:
                        first_rows = act.copy()
                    else:
                        np.testing.assert_array_equal(act[: len(first_rows)], first_rows)
                seen.append(n)
                if n == 40:
                    break
                status = self.server.wait(pid, timeout=0)
                if status is not None:
                    self.assertEqual(status, 0, helpers.read_lines(log)[-5:])
                    pid = None
                    r.refresh()
                    seen.append(len(r.steps))
                    break
                time.sleep(0.03)
            self.assertEqual(seen[-1], 40)
            self.assertGreaterEqual(len(set(seen)), 4, seen)  # it saw the run grow
            self.assertLess(seen[0], 40)
        finally:
            r.close()
            if pid is not None:
                self.assertEqual(self.server.wait(pid, timeout=30), 0)
        r = tensorscape.read_run(run_dir)
        self.assertTrue(helpers.wait_for(lambda: r.closed, 10))
        self.assertEqual(len(r.steps), 40)
        r.close()


if __name__ == "__main__":
    unittest.main()
