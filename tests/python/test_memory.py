"""The Python writer's memory stays flat while it records a large layer at every step: nothing per snapshot
stays in memory (rows are written and dropped, pyramids accumulate in fixed-size arrays). The resident set
moves by some tens of MB from one snapshot to the next (compression buffers of the writer's thread pool, the
allocator's arenas), and it can step up once by some tens of MB and stay there (CI saw 325 -> 371 MiB in the
middle of a run, flat afterwards). A writer that kept a snapshot's statistics (8 MB) would grow by 1.6 GB
between the first and the last third, one that kept an eighth of them by 200 MB. So the test compares the
highest value of the first third with the highest of the last, with a bound (96 MiB) well above the noise and
well below any leak of a sizeable part of a snapshot."""

import unittest

try:
    from . import helpers
except ImportError:
    import helpers

import torch  # noqa: E402
import torch.nn as nn  # noqa: E402

import tensorscape  # noqa: E402


def rss_kib():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


class WriterMemoryTest(helpers.TempDirTest):
    def test_recording_every_step_keeps_memory_flat(self):
        torch.manual_seed(0)
        # One 65,536-neuron conv output (4 x 128 x 128) and its ReLU: 2 x 4 MB of statistics per snapshot.
        model = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU())
        x = torch.randn(4, 1, 128, 128)
        run = tensorscape.init(self.path("run"), model, every=1, quiet=True)
        samples = []
        steps = 300
        for step in range(steps):
            out = model(x + 0.01 * step)
            out.mean().backward()
            run.log(step, loss=float(step))
            if step % 10 == 9:
                # Sampled with nothing in flight: on a loaded machine the writer's compression work queued at
                # one moment is tens of MB, noise that says nothing about what stays per snapshot.
                run.flush()
                samples.append(rss_kib())
        run.close()
        third = len(samples) // 3
        first, last = max(samples[:third]), max(samples[-third:])
        print("writer RSS (MiB) every 10 snapshots:", [s // 1024 for s in samples])
        # 200 more snapshots (1.6 GB of statistics written) between the two windows.
        self.assertLess(last - first, 96 * 1024, "peak RSS %d KiB in the first third, %d KiB in the last" % (first, last))
        r = tensorscape.read_run(self.path("run"))
        self.assertEqual(len(r.steps), steps)


if __name__ == "__main__":
    unittest.main()
