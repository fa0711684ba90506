"""Reading a run store (docs/RUN_FORMAT.md) with h5py: finished runs, and runs still being written (SWMR)."""

import json
import math
import numbers
import os

import numpy as np

from .errors import RunError
from .reduce import LAYER_STATISTICS, STATISTICS
from .store import FORMAT, PYRAMID_KS, VERSION

_PYRAMIDED = {("activation", 0): "activation_mean", ("gradient", 1): "gradient_mean_abs"}


def _one_line(e):
    s = str(e).strip().splitlines()
    return s[0] if s else type(e).__name__


class _Window:
    """Min, max and (weighted) mean of the finite values of one series window."""

    def __init__(self):
        self.lo, self.hi, self.sum, self.weight = math.inf, -math.inf, 0.0, 0.0

    def add(self, lo, hi, mean, weight):
        if np.isfinite(lo):
            self.lo = min(self.lo, float(lo))
        if np.isfinite(hi):
            self.hi = max(self.hi, float(hi))
        if np.isfinite(mean):
            self.sum += float(mean) * weight
            self.weight += weight

    def result(self):
        return (
            self.lo if math.isfinite(self.lo) else math.nan,
            self.hi if math.isfinite(self.hi) else math.nan,
            self.sum / self.weight if self.weight else math.nan,
        )


class Layer:
    """One recorded layer: index (forward order), name (module path; '.outK' for tuple element K, '#C' for
    the C-th call of a module in one forward pass), type (module class), shape (per sample), neurons, params
    (parameters the module owns itself), inputs (indices of the layers it reads, -1 for the model input; None
    when the file does not say)."""

    def __init__(self, index, name, type_name, shape, neurons, params, inputs=None):
        self.index = index
        self.inputs = inputs  # the layers it reads (indices; -1: the model input), None in files without them
        self.name = name
        self.type = type_name
        self.shape = shape
        self.neurons = neurons
        self.params = params

    def __repr__(self):
        return "Layer(%d, %r, %s, shape=%s, neurons=%d, params=%d)" % (
            self.index,
            self.name,
            self.type,
            self.shape,
            self.neurons,
            self.params,
        )


class RunReader:
    """A run opened by tensorscape.read_run(). Everything returned covers the committed snapshots only
    (len(/steps) when opened or at the last refresh())."""

    def __init__(self, path):
        import h5py

        path = os.fspath(path)
        if not os.path.exists(path):
            raise RunError("%s: no such run folder" % path)
        if os.path.isdir(path):
            folder = path
            h5 = os.path.join(path, "run.h5")
            if not os.path.exists(h5):
                if os.path.exists(os.path.join(path, "run.json")):
                    raise RunError(
                        "%s: no run.h5 yet (it is created at the first log() after a forward pass)" % path
                    )
                raise RunError(
                    "%s: not a tensorscape run (no run.h5; record one with tensorscape.init(DIR, model))" % path
                )
        else:
            h5 = path
            folder = os.path.dirname(path) or "."
        self.folder = folder
        self.path = h5
        size = os.path.getsize(h5)
        if size == 0:
            raise RunError("%s: is empty (the writer made the file and wrote nothing)" % h5)
        if not h5py.is_hdf5(h5):
            raise RunError("%s: is not an HDF5 file, or is truncated or damaged" % h5)
        try:
            self._f = h5py.File(h5, "r", libver="latest", swmr=True)
            self._swmr = True
        except OSError as e:
            try:
                self._f = h5py.File(h5, "r")
                self._swmr = False
            except OSError:
                raise RunError("%s: cannot be opened: truncated or damaged (%s)" % (h5, _one_line(e))) from None
        try:
            self._open()
        except RunError:
            self._f.close()
            raise
        except (OSError, KeyError, ValueError, TypeError) as e:
            self._f.close()
            raise RunError("%s: damaged (%s)" % (h5, _one_line(e))) from None

    def _open(self):
        f = self._f
        a = f.attrs
        fmt = a.get("format")
        if isinstance(fmt, bytes):
            fmt = fmt.decode("utf-8", "replace")
        if fmt != FORMAT:
            raise RunError(
                '%s: is an HDF5 file but not a tensorscape run (no format="%s" attribute)' % (self.path, FORMAT)
            )
        version = a.get("version")
        try:
            version = int(np.asarray(version).reshape(-1)[0])
        except (TypeError, ValueError, IndexError):
            raise RunError("%s: has no valid format version" % self.path) from None
        if version > VERSION:
            raise RunError(
                "%s: was written by a newer tensorscape (run format %d; this reader knows up to %d); update "
                "tensorscape" % (self.path, version, VERSION)
            )
        if version < 1:
            raise RunError("%s: has an invalid format version %d" % (self.path, version))
        self.version = version

        def s(name, default=""):
            v = a.get(name, default)
            return v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v)

        def i(name, default=0):
            try:
                return int(np.asarray(a.get(name, default)).reshape(-1)[0])
            except (TypeError, ValueError, IndexError):
                return default

        self.model = s("model")
        self.writer = s("writer")
        self.every = i("every", 1)
        self.world_size = i("world_size", 1)
        self.histogram_bins = i("histogram_bins", 0)
        self.input_shape = (
            tuple(int(x) for x in np.asarray(a["input_shape"]).reshape(-1)) if "input_shape" in a else None
        )
        if "steps" not in f:
            raise RunError("%s: has no /steps (not a complete tensorscape run)" % self.path)
        if "layers" not in f:
            raise RunError("%s: has no /layers group (not a complete tensorscape run)" % self.path)
        self.layers = []
        lg = f["layers"]
        idx = 0
        while "%04d" % idx in lg:
            g = lg["%04d" % idx]
            name = g.attrs.get("name")
            if name is None or "shape" not in g.attrs or "neurons" not in g.attrs:
                raise RunError("%s: /layers/%04d lacks its name, shape or neurons attribute" % (self.path, idx))
            if isinstance(name, bytes):
                name = name.decode("utf-8", "replace")
            shape = tuple(int(x) for x in np.asarray(g.attrs["shape"]).reshape(-1))
            neurons = int(np.asarray(g.attrs["neurons"]).reshape(-1)[0])
            tname = g.attrs.get("type", "")
            if isinstance(tname, bytes):
                tname = tname.decode("utf-8", "replace")
            params = int(np.asarray(g.attrs.get("params", 0)).reshape(-1)[0])
            if int(np.prod(shape, dtype=np.int64)) != neurons or neurons <= 0:
                raise RunError(
                    "%s: layer %r says %d neurons but its shape %s holds %d"
                    % (self.path, name, neurons, shape, int(np.prod(shape, dtype=np.int64)))
                )
            for kind in ("activation", "gradient", "rows"):
                if kind not in g:
                    raise RunError("%s: layer %r lacks its %s dataset" % (self.path, name, kind))
            for kind in ("activation", "gradient"):
                shp = g[kind].shape
                if len(shp) != 3 or shp[1] != 8 or shp[2] != neurons:
                    raise RunError(
                        "%s: layer %r: %s dataset is %s, not [steps, 8, %d]" % (self.path, name, kind, shp, neurons)
                    )
            inputs = tuple(int(i) for i in g.attrs["inputs"]) if "inputs" in g.attrs else None
            self.layers.append(Layer(idx, name, str(tname), shape, neurons, params, inputs))
            idx += 1
        self._by_name = {L.name: L for L in self.layers}
        self._steps = np.zeros(0, dtype=np.int64)
        self.refresh()

    # ---- basics

    def _ds(self, path):
        d = self._f[path]
        if self._swmr:
            d.refresh()
        return d

    def _read(self, path, sel):
        try:
            return self._ds(path)[sel]
        except (OSError, KeyError, ValueError, IndexError) as e:
            raise RunError("%s: cannot read %s (%s)" % (self.path, path, _one_line(e))) from None

    def refresh(self):
        """Picks up snapshots committed since (a run being written). Returns the committed count."""
        try:
            n = self._ds("steps").shape[0]
            usable = n
            for L in self.layers:
                for kind in ("activation", "gradient", "rows"):
                    usable = min(usable, self._ds("layers/%04d/%s" % (L.index, kind)).shape[0])
            if usable > len(self._steps):
                self._steps = np.concatenate([self._steps, self._ds("steps")[len(self._steps) : usable]])
        except (OSError, KeyError, ValueError) as e:
            raise RunError("%s: cannot read /steps (%s)" % (self.path, _one_line(e))) from None
        self._steps = self._steps.astype(np.int64)
        return len(self._steps)

    @property
    def steps(self):
        """Training step of each committed snapshot (int64 [S])."""
        return self._steps.copy()

    @property
    def closed(self):
        """True when run.json says the writer closed the run."""
        try:
            with open(os.path.join(self.folder, "run.json")) as fh:
                return bool(json.load(fh).get("closed", False))
        except (OSError, ValueError, AttributeError):
            return False

    def layer(self, layer):
        """A Layer by name or index."""
        if isinstance(layer, Layer):
            return layer
        if isinstance(layer, numbers.Integral) and not isinstance(layer, bool):
            if not 0 <= layer < len(self.layers):
                raise IndexError("%s: no layer %d (the run has %d)" % (self.path, layer, len(self.layers)))
            return self.layers[int(layer)]
        L = self._by_name.get(layer)
        if L is None:
            raise KeyError("%s: no layer named %r" % (self.path, layer))
        return L

    @staticmethod
    def _stat_index(stat, names):
        if isinstance(stat, numbers.Integral) and not isinstance(stat, bool):
            if not 0 <= stat < len(names):
                raise ValueError("statistic %d: there are %d (%s)" % (stat, len(names), ", ".join(names)))
            return int(stat)
        if stat not in names:
            raise ValueError("no statistic %r (one of %s)" % (stat, ", ".join(names)))
        return names.index(stat)

    @staticmethod
    def _kind(kind):
        if kind not in ("activation", "gradient"):
            raise ValueError("kind must be 'activation' or 'gradient', not %r" % (kind,))
        return kind

    # ---- per-neuron statistics

    def neuron_stat(self, layer, stat, kind="activation"):
        """float32 [steps x neurons]: statistic `stat` (name or index, reduce.STATISTICS) of `kind`
        ('activation' or 'gradient') of every neuron of `layer` (name or index) at every committed snapshot."""
        L = self.layer(layer)
        k = self._stat_index(stat, STATISTICS)
        S = len(self._steps)
        return self._read("layers/%04d/%s" % (L.index, self._kind(kind)), np.s_[:S, k, :])

    def snapshot(self, layer, index, kind="activation"):
        """float32 [8, neurons]: all statistics of `layer` at snapshot number `index` (0-based, see .steps)."""
        L = self.layer(layer)
        S = len(self._steps)
        if not -S <= index < S:
            raise IndexError("%s: no snapshot %d (%d committed)" % (self.path, index, S))
        return self._read("layers/%04d/%s" % (L.index, self._kind(kind)), np.s_[index % S])

    def rows(self, layer):
        """int64 [steps]: the batch size each snapshot of `layer` is over (0 where the layer did not run)."""
        L = self.layer(layer)
        return self._read("layers/%04d/rows" % L.index, np.s_[: len(self._steps)])

    def series(self, layer, neuron, stat="mean", kind="activation", max_points=None):
        """One neuron's statistic over the run: (steps int64, min, max, mean float32), at most max_points
        points. With max_points None (or S <= max_points) every snapshot is a point and min == max == mean.
        Otherwise each point is a window of 2^K consecutive snapshots, steps[i] its first step, min/max/mean
        over its finite values: activation 'mean' and gradient 'mean_abs' read the time pyramids (K the finest
        of their levels 4, 8, ..., 24 that fits; the last, partial window is made of at most 15 rows of each
        finer level and of the snapshots after them), other statistics are aggregated here from every
        snapshot (K the smallest that fits)."""
        L = self.layer(layer)
        kind = self._kind(kind)
        k = self._stat_index(stat, STATISTICS)
        if isinstance(neuron, bool) or not isinstance(neuron, numbers.Integral) or not 0 <= neuron < L.neurons:
            raise IndexError("%s: layer %r has %d neurons, not neuron %r" % (self.path, L.name, L.neurons, neuron))
        S = len(self._steps)
        base = "layers/%04d/%s" % (L.index, kind)
        if max_points is None or S <= max_points:
            v = self._read(base, np.s_[:S, k, neuron]) if S else np.zeros(0, np.float32)
            return self._steps.copy(), v.copy(), v.copy(), v.copy()
        W = max(int(max_points), 1)

        def points(K):
            return (S + (1 << K) - 1) >> K

        levels = []
        pyramid = _PYRAMIDED.get((kind, k))
        if pyramid is not None:
            for K in PYRAMID_KS:
                p = "layers/%04d/pyramid/%s/L%d" % (L.index, pyramid, K)
                if p in self._f:
                    levels.append((K, p))
        steps, mins, maxs, means = [], [], [], []
        if levels:
            K, path = next(((K, p) for K, p in levels if points(K) <= W), levels[-1])
            full = S >> K
            if full:
                rows = self._read(path, np.s_[:full, :, neuron])
                mins, maxs, means = list(rows[:, 0]), list(rows[:, 1]), list(rows[:, 2])
                steps = list(self._steps[0 : full << K : 1 << K])
            start = full << K
            if start < S:  # the partial last window: finer levels' rows, then single snapshots
                tail = _Window()
                pos = start
                for K2, p2 in reversed([lv for lv in levels if lv[0] < K]):
                    r0, r1 = pos >> K2, S >> K2
                    if r1 > r0:
                        for row in self._read(p2, np.s_[r0:r1, :, neuron]):
                            tail.add(row[0], row[1], row[2], 1 << K2)
                        pos = r1 << K2
                if pos < S:
                    for v in self._read(base, np.s_[pos:S, k, neuron]):
                        tail.add(v, v, v, 1)
                steps.append(self._steps[start])
                lo, hi, mu = tail.result()
                mins.append(lo)
                maxs.append(hi)
                means.append(mu)
        else:
            K = 1
            while points(K) > W:
                K += 1
            v = self._read(base, np.s_[:S, k, neuron])
            for s0 in range(0, S, 1 << K):
                w = _Window()
                for x in v[s0 : s0 + (1 << K)]:
                    w.add(x, x, x, 1)
                lo, hi, mu = w.result()
                steps.append(self._steps[s0])
                mins.append(lo)
                maxs.append(hi)
                means.append(mu)
        return (
            np.asarray(steps, dtype=np.int64),
            np.asarray(mins, dtype=np.float32),
            np.asarray(maxs, dtype=np.float32),
            np.asarray(means, dtype=np.float32),
        )

    # ---- layer-level

    def weight_stats(self, layer, kind="weight"):
        """dict statistic -> float64 [steps] of the layer's own parameters (kind 'weight') or their gradients
        ('weight_grad'): count, mean, std, min, max, l2_norm, nan_count, inf_count (NaN without parameters)."""
        L = self.layer(layer)
        if kind not in ("weight", "weight_grad"):
            raise ValueError("kind must be 'weight' or 'weight_grad', not %r" % (kind,))
        v = self._read("layers/%04d/%s" % (L.index, kind), np.s_[: len(self._steps)])
        return {name: v[:, i].copy() for i, name in enumerate(LAYER_STATISTICS)}

    def weight_histogram(self, layer, kind="weight"):
        """(counts int64 [steps, bins], range float64 [steps, 2]) of the layer's parameters ('weight') or
        their gradients ('weight_grad'); a row's bins are equal over [lo, hi] of its range."""
        L = self.layer(layer)
        if kind not in ("weight", "weight_grad"):
            raise ValueError("kind must be 'weight' or 'weight_grad', not %r" % (kind,))
        S = len(self._steps)
        counts = self._read("layers/%04d/%s_hist" % (L.index, kind), np.s_[:S])
        rng = self._read("layers/%04d/%s_hist_range" % (L.index, kind), np.s_[:S])
        return counts, rng

    def weight_matrix(self, layer, snapshot=None):
        """The layer's stored weight matrix (docs/RUN_FORMAT.md `matrix`): float32 [rows, cols] at snapshot
        index `snapshot`, or [steps, rows, cols] when None; None when the run stores no matrix for it."""
        L = self.layer(layer)
        g = self._f["layers/%04d" % L.index]
        if "matrix" not in g or "matrix_shape" not in g.attrs:
            return None
        rows, cols = (int(v) for v in g.attrs["matrix_shape"])
        S = len(self._steps)
        if snapshot is None:
            return self._read("layers/%04d/matrix" % L.index, np.s_[:S]).reshape(S, rows, cols)
        if not 0 <= snapshot < S:
            raise IndexError("snapshot %d of %d" % (snapshot, S))
        return self._read("layers/%04d/matrix" % L.index, np.s_[snapshot]).reshape(rows, cols)

    # ---- scalars

    @property
    def scalars(self):
        """dict name -> (steps int64, values float64) of the scalars given to log(), committed rows only,
        leaving out the calls that did not give that name (stored as NaN)."""
        f = self._f
        out = {}
        if "scalars" not in f or "step" not in f["scalars"]:
            return out
        try:
            M = self._ds("scalars/step").shape[0]
            names = [n for n in f["scalars"] if n != "step"]
            for n in names:
                M = min(M, self._ds("scalars/" + n).shape[0])
            steps = self._ds("scalars/step")[:M].astype(np.int64)
            for n in names:
                v = self._ds("scalars/" + n)[:M].astype(np.float64)
                keep = ~np.isnan(v)
                out[n] = (steps[keep], v[keep])
        except (OSError, KeyError, ValueError) as e:
            raise RunError("%s: cannot read /scalars (%s)" % (self.path, _one_line(e))) from None
        return out

    # ---- lifetime

    def close(self):
        if self._f is not None:
            self._f.close()
            self._f = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def __repr__(self):
        return "<tensorscape run %s: %d layers, %d snapshots>" % (self.folder, len(self.layers), len(self._steps))


def read_run(path):
    """Opens a run folder (or its run.h5) for reading; see RunReader. Raises RunError (one line naming the
    file and what is wrong) for a missing folder, a folder without run.h5, a damaged or foreign file, or one
    of a newer format version."""
    return RunReader(path)
