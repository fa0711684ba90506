"""Bad input: read_run raises RunError and init raises ValueError/TypeError, each with a one-line message
naming what is wrong."""

import os
import shutil
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


class ErrorsTest(helpers.TempDirTest):
    def make_run(self, name="good"):
        m = helpers.MLP()
        with tensorscape.init(self.path(name), m, every=1, quiet=True) as run:
            for step in range(3):
                m(torch.randn(4, 20)).sum().backward()
                run.log(step, loss=1.0)
        return self.path(name)

    def assertRunError(self, path, *fragments):
        with self.assertRaises(tensorscape.RunError) as cm:
            tensorscape.read_run(path)
        msg = str(cm.exception)
        self.assertEqual(len(msg.splitlines()), 1, msg)
        for f in fragments:
            self.assertIn(f, msg)
        return msg

    def test_missing_folder(self):
        self.assertRunError(self.path("nope"), self.path("nope"), "no such run folder")

    def test_folder_without_run(self):
        os.makedirs(self.path("empty"))
        self.assertRunError(self.path("empty"), "not a tensorscape run")
        with open(self.path("empty", "run.json"), "w") as f:
            f.write("{}")
        self.assertRunError(self.path("empty"), "no run.h5 yet")

    def test_empty_and_garbage_file(self):
        os.makedirs(self.path("bad"))
        open(self.path("bad", "run.h5"), "w").close()
        self.assertRunError(self.path("bad"), os.path.join(self.path("bad"), "run.h5"), "empty")
        with open(self.path("bad", "run.h5"), "wb") as f:
            f.write(np.random.default_rng(0).bytes(5000))
        self.assertRunError(self.path("bad"), "run.h5", "not an HDF5 file")

    def test_truncated_file(self):
        good = self.make_run()
        h5 = os.path.join(good, "run.h5")
        size = os.path.getsize(h5)
        for keep in (size // 2, size - 100, 600):
            with open(h5, "r+b") as f:
                f.truncate(keep)
            self.assertRunError(good, h5)

    def test_foreign_hdf5(self):
        os.makedirs(self.path("foreign"))
        with h5py.File(self.path("foreign", "run.h5"), "w") as f:
            f["data"] = np.arange(4)
        self.assertRunError(self.path("foreign"), "not a tensorscape run", 'format="tensorscape-run"')
        # a file path works as well as the folder
        self.assertRunError(self.path("foreign", "run.h5"), "not a tensorscape run")

    def test_newer_version(self):
        good = self.make_run()
        with h5py.File(os.path.join(good, "run.h5"), "r+") as f:
            f.attrs["version"] = np.int64(2)
        self.assertRunError(good, "newer tensorscape", "run format 2")

    def test_incomplete_file(self):
        good = self.make_run()
        with h5py.File(os.path.join(good, "run.h5"), "r+") as f:
            del f["steps"]
        self.assertRunError(good, "/steps")

    def test_good_run_reads_and_bad_queries(self):
        r = tensorscape.read_run(self.make_run())
        self.addCleanup(r.close)
        self.assertEqual(len(r.steps), 3)
        with self.assertRaises(KeyError):
            r.neuron_stat("nope", "mean")
        with self.assertRaises(IndexError):
            r.neuron_stat(99, "mean")
        with self.assertRaises(ValueError):
            r.neuron_stat(0, "median")
        with self.assertRaises(ValueError):
            r.neuron_stat(0, "mean", kind="weights")
        with self.assertRaises(IndexError):
            r.series(0, 10**6)

    def test_init_on_existing_run(self):
        good = self.make_run()
        with self.assertRaises(ValueError) as cm:
            tensorscape.init(good, helpers.MLP(), quiet=True)
        msg = str(cm.exception)
        self.assertEqual(len(msg.splitlines()), 1)
        self.assertIn("already holds a run", msg)
        self.assertIn("overwrite=True", msg)
        # a folder with only run.json (a run that never wrote run.h5) is a run too
        shutil.rmtree(good)
        os.makedirs(good)
        with open(os.path.join(good, "run.json"), "w") as f:
            f.write("{}")
        with self.assertRaises(ValueError):
            tensorscape.init(good, helpers.MLP(), quiet=True)
        # other files are fine
        os.makedirs(self.path("other"))
        open(self.path("other", "notes.txt"), "w").close()
        tensorscape.init(self.path("other"), helpers.MLP(), quiet=True).close()

    def test_init_bad_arguments(self):
        cases = [
            (TypeError, dict(model="not a model"), "torch.nn.Module"),
            (TypeError, dict(model=nn.DataParallel(nn.Linear(2, 2))), "DataParallel"),
            (ValueError, dict(every=0), "every"),
            (ValueError, dict(every="10"), "every"),
            (ValueError, dict(histogram_bins=0), "histogram_bins"),
            (ValueError, dict(start_step=-1), "start_step"),
            (ValueError, dict(scalars=["a/b"]), "scalar name"),
            (TypeError, dict(run_dir=3), "run_dir"),
        ]
        for exc, kw, fragment in cases:
            args = dict(run_dir=self.path("x"), model=helpers.MLP(), quiet=True)
            args.update(kw)
            with self.assertRaises(exc, msg=str(kw)) as cm:
                tensorscape.init(**args)
            msg = str(cm.exception)
            self.assertEqual(len(msg.splitlines()), 1, msg)
            self.assertIn(fragment, msg)
        with open(self.path("file"), "w"):
            pass
        with self.assertRaises(ValueError) as cm:
            tensorscape.init(self.path("file"), helpers.MLP(), quiet=True)
        self.assertIn("not a folder", str(cm.exception))


if __name__ == "__main__":
    unittest.main()
