"""The writer of the run store (docs/RUN_FORMAT.md): RUN/run.h5 (HDF5, SWMR) and RUN/run.json.

Layout and chunking mirror the C++ writer (engine/runs/run_writer.cpp) so that both make the same files.
The commit protocol: every per-snapshot dataset grows by one row and is written, the file is flushed, then
/steps (and /scalars/step for scalars) grows by one, and the file is flushed again.

run.h5 is made under a temporary name (run.h5.tmp), its datasets created, SWMR writing switched on, and only
then renamed to run.h5: a run.h5 that exists is always in SWMR mode, so it opens with SWMR read access even
after its writer was killed with SIGKILL. That happens at the first log() after the first forward pass (the
layers must be known: SWMR creates nothing later).

Activation, gradient and pyramid rows are compressed here, chunk by chunk as HDF5's filter pipeline would
(shuffle, then deflate level 1: libdeflate through ctypes when the shared library is installed, else zlib;
both release the GIL), on a small thread pool, and written with H5Dwrite_chunk; everything else goes
through H5Dwrite. Pyramid level L4 is accumulated in memory (four floats per neuron), higher levels are made
from rows read back from the file.
"""

import concurrent.futures
import datetime
import json
import math
import os
import threading
import zlib

import h5py
import numpy as np
from h5py import h5s

FORMAT = "tensorscape-run"
VERSION = 1
# Time pyramids: levels L4, L8, ..., L24 (windows of 16, 256, ... 2^24 snapshots; each row summarises 16 rows
# of the level below), created up front (SWMR creates nothing later).
PYRAMID_STRIDE = 4
PYRAMID_FANOUT = 1 << PYRAMID_STRIDE
PYRAMID_KS = tuple(range(PYRAMID_STRIDE, 25, PYRAMID_STRIDE))  # 4, 8, ..., 24
PYRAMIDS = (("activation_mean", "activation", 0), ("gradient_mean_abs", "gradient", 1))
NEURON_CHUNK = 16384  # neurons per chunk; chunks hold one statistic (1, 1, NEURON_CHUNK) ...
SMALL_LAYER = 2048  # ... except in layers of at most this many neurons: a whole row (1, 8, N)

_pool = None
_pool_pid = None


def _thread_pool():
    """The compression threads (made again in a forked child, whose copy has no threads)."""
    global _pool, _pool_pid
    if _pool is None or _pool_pid != os.getpid():
        _pool = concurrent.futures.ThreadPoolExecutor(
            max_workers=max(1, min(8, os.cpu_count() or 1)), thread_name_prefix="tensorscape-deflate"
        )
        _pool_pid = os.getpid()
    return _pool


def _submit(fn, *args):
    """fn(*args) on the compression threads; run here when they are gone (interpreter shutdown)."""
    try:
        return _thread_pool().submit(fn, *args)
    except RuntimeError:
        f = concurrent.futures.Future()
        f.set_result(fn(*args))
        return f


class _LibDeflate:
    """libdeflate's zlib-format compressor (about twice as fast as zlib at level 1, same format: HDF5's
    deflate filter reads it), when the shared library is installed; one compressor per thread."""

    def __init__(self):
        import ctypes
        import ctypes.util

        names = [ctypes.util.find_library("deflate"), "libdeflate.so.0", "libdeflate.so", "libdeflate.dylib"]
        lib = None
        for n in names:
            if not n:
                continue
            try:
                lib = ctypes.CDLL(n)
                break
            except OSError:
                continue
        if lib is None:
            raise OSError("libdeflate not found")
        lib.libdeflate_alloc_compressor.restype = ctypes.c_void_p
        lib.libdeflate_alloc_compressor.argtypes = [ctypes.c_int]
        lib.libdeflate_zlib_compress.restype = ctypes.c_size_t
        lib.libdeflate_zlib_compress.argtypes = [
            ctypes.c_void_p,
            ctypes.c_void_p,
            ctypes.c_size_t,
            ctypes.c_void_p,
            ctypes.c_size_t,
        ]
        lib.libdeflate_zlib_compress_bound.restype = ctypes.c_size_t
        lib.libdeflate_zlib_compress_bound.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
        self.lib = lib
        self.ctypes = ctypes
        self.local = threading.local()
        probe = np.arange(1000, dtype=np.float32).view(np.uint8)
        if zlib.decompress(self.compress(probe)) != probe.tobytes():
            raise OSError("libdeflate output does not inflate")

    def compress(self, buf):
        """zlib stream (level 1) of a contiguous uint8 numpy array."""
        loc = self.local
        c = getattr(loc, "compressor", None)
        if c is None:
            c = loc.compressor = self.lib.libdeflate_alloc_compressor(1)
            loc.out = np.empty(0, dtype=np.uint8)
        n = buf.nbytes
        bound = self.lib.libdeflate_zlib_compress_bound(c, n)
        if loc.out.size < bound:
            loc.out = np.empty(bound, dtype=np.uint8)
        m = self.lib.libdeflate_zlib_compress(c, buf.ctypes.data, n, loc.out.ctypes.data, bound)
        if m == 0:
            return zlib.compress(buf.data, 1)
        return loc.out[:m].tobytes()


try:
    _libdeflate = _LibDeflate()
except Exception:  # not installed (or unusable): zlib
    _libdeflate = None

COMPRESSOR = "libdeflate" if _libdeflate is not None else "zlib"


def _shuffle_deflate(block):
    """HDF5 shuffle (element size of block's dtype) followed by deflate level 1, as the filter pipeline
    would store the chunk."""
    b = np.ascontiguousarray(block)
    size = b.dtype.itemsize
    shuffled = b.view(np.uint8).reshape(-1, size).T.copy()
    if _libdeflate is not None:
        return _libdeflate.compress(shuffled.reshape(-1))
    return zlib.compress(shuffled.data, 1)


def iso_now():
    return datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def write_run_json(run_dir, info, closed=False):
    """run.json under a temporary name, then renamed."""
    j = {
        "format": FORMAT,
        "version": VERSION,
        "writer": "python",
        "created": info["created"],
        "model": info["model"],
        "every": int(info["every"]),
        "world_size": int(info["world_size"]),
    }
    if closed:
        j["closed"] = True
    path = os.path.join(run_dir, "run.json")
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(j, f, indent=2)
        f.write("\n")
    os.replace(tmp, path)


class _Appendable:
    """An extendible dataset [rows, *row_shape] appended to one row at a time with the low-level API."""

    def __init__(self, parent, name, dtype, row_shape, chunk, compress, fill_nan):
        kw = {}
        if compress:
            kw = dict(shuffle=True, compression="gzip", compression_opts=1)
        if fill_nan:
            kw["fillvalue"] = np.nan
        self.dset = parent.create_dataset(
            name,
            shape=(0,) + tuple(row_shape),
            maxshape=(None,) + tuple(row_shape),
            chunks=tuple(chunk),
            dtype=dtype,
            **kw,
        )
        self.id = self.dset.id
        self.row_shape = tuple(row_shape)
        self.dtype = np.dtype(dtype)
        self.length = 0
        self.chunk = tuple(chunk)
        self.mspace = h5s.create_simple(self.row_shape if self.row_shape else (1,))

    def grow(self, rows):
        if rows > self.length:
            self.id.set_extent((rows,) + self.row_shape)
            self.length = rows

    def write_row(self, row, values):
        self.grow(row + 1)
        arr = np.ascontiguousarray(values, dtype=self.dtype)
        if not self.row_shape:
            arr = arr.reshape(1)
        fspace = self.id.get_space()
        fspace.select_hyperslab((row,) + (0,) * len(self.row_shape), (1,) + self.row_shape)
        self.id.write(self.mspace, fspace, arr)

    def write_row_chunks(self, row, values, futures):
        """[A, N] float32 row into chunks (1, ca, c): compression is queued on the thread pool (futures gets
        (dataset, offsets, future)); write_chunks() writes them."""
        self.grow(row + 1)
        a, n = self.row_shape
        ca, c = self.chunk[1], self.chunk[2]
        values = np.ascontiguousarray(values, dtype=self.dtype)
        per_task = max(1, (1 << 16) // (ca * c * self.dtype.itemsize))  # about 64 KiB of data per task
        blocks = [(k0, c0) for k0 in range(0, a, ca) for c0 in range(0, n, c)]
        for t in range(0, len(blocks), per_task):
            group = blocks[t : t + per_task]
            futures.append(
                (self, [(row, k0, c0) for k0, c0 in group], _submit(_compress_blocks, values, group, ca, c))
            )

    def read_rows(self, start, stop, index=None):
        if index is None:
            return self.dset[start:stop]
        return self.dset[start:stop, index]


def _compress_blocks(values, blocks, ca, c):
    """The chunks (ca statistics x c neurons) at `blocks` ((first statistic, first neuron) each), compressed;
    edge chunks are padded with NaN (the fill value) as HDF5 stores them."""
    a, n = values.shape
    out = []
    for k0, c0 in blocks:
        w, h = min(c, n - c0), min(ca, a - k0)
        if w == c and h == ca:
            block = values[k0 : k0 + ca, c0 : c0 + c]
        else:
            block = np.full((ca, c), np.nan, dtype=values.dtype)
            block[:h, :w] = values[k0 : k0 + h, c0 : c0 + w]
        out.append(_shuffle_deflate(block))
    return out


def write_chunks(futures):
    for ds, offsets, fut in futures:
        for offset, data in zip(offsets, fut.result()):
            ds.id.write_direct_chunk(offset, data, 0)
    futures.clear()


class _Accumulator:
    """Running min and max of the finite values and mean of the finite means, per neuron (float32, as the C++
    writer keeps them)."""

    def __init__(self, n):
        self.mn = np.full(n, np.inf, dtype=np.float32)
        self.mx = np.full(n, -np.inf, dtype=np.float32)
        self.sum = np.zeros(n, dtype=np.float32)
        self.cnt = np.zeros(n, dtype=np.float32)

    def add(self, lo, hi, mean):
        ok = np.isfinite(lo)
        np.minimum(self.mn, lo, out=self.mn, where=ok)
        ok = np.isfinite(hi)
        np.maximum(self.mx, hi, out=self.mx, where=ok)
        ok = np.isfinite(mean)
        np.add(self.sum, mean, out=self.sum, where=ok)
        self.cnt += ok

    def finish(self):
        """[3, N]: min, max, mean; NaN where no finite value was seen."""
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = np.where(self.cnt > 0, self.sum / self.cnt, np.nan)
        return np.stack(
            [
                np.where(np.isfinite(self.mn), self.mn, np.nan),
                np.where(np.isfinite(self.mx), self.mx, np.nan),
                mean,
            ]
        ).astype(np.float32)


class LayerInfo:
    """What the file says about one layer."""

    def __init__(self, name, type_name, shape, params, matrix_shape=None, inputs=None):
        self.name = name
        self.type = type_name
        self.shape = tuple(int(s) for s in shape)
        self.neurons = int(np.prod(self.shape, dtype=np.int64)) if self.shape else 1
        self.params = int(params)
        # [rows, cols] of the weight matrix stored at every snapshot (docs/RUN_FORMAT.md `matrix`), or None
        self.matrix_shape = tuple(int(s) for s in matrix_shape) if matrix_shape else None
        # indices of the layers whose outputs this layer reads (-1: the model input), or None when unknown
        self.inputs = tuple(int(i) for i in inputs) if inputs is not None else None


class LayerRecord:
    """One layer of one snapshot. activation/gradient: float32 [8, N] or None (NaN rows)."""

    __slots__ = (
        "activation",
        "gradient",
        "rows",
        "weight",
        "weight_grad",
        "weight_hist",
        "weight_hist_range",
        "weight_grad_hist",
        "weight_grad_hist_range",
        "matrix",
    )

    def __init__(self):
        for k in self.__slots__:
            setattr(self, k, None)
        self.rows = 0


def summarize(act, grad, rows):
    """The layer's summary row (docs/RUN_FORMAT.md, `summary`) from its [8, N] statistics (either may be None):
    NaN+Inf values of the activations and of the gradients, dead fraction, gradient L2 norm over the batch,
    mean and RMS of the neurons' activations, mean of the neurons' mean |gradient|, neurons with a non-finite
    activation. The same arithmetic as the C++ writer's summarize()."""
    out = np.full(8, np.nan)
    with np.errstate(invalid="ignore", divide="ignore"):
        if act is not None:
            a = np.asarray(act, dtype=np.float64)
            bad = a[6] + a[7]
            m, var = a[0], a[2]
            ok = np.isfinite(m) & np.isfinite(var)
            out[0] = bad.sum()
            out[2] = (a[5] >= 1.0).mean() if a.shape[1] else np.nan
            out[4] = m[ok].mean() if ok.any() else np.nan
            out[5] = np.sqrt((var[ok] + m[ok] * m[ok]).mean()) if ok.any() else np.nan
            out[7] = (bad > 0).sum()
        if grad is not None:
            g = np.asarray(grad, dtype=np.float64)
            cnt = float(rows) - g[6] - g[7]
            m, var, ma = g[0], g[2], g[1]
            ok = (cnt > 0) & np.isfinite(m) & np.isfinite(var)
            fa = np.isfinite(ma)
            out[1] = (g[6] + g[7]).sum()
            out[3] = np.sqrt(((var[ok] + m[ok] * m[ok]) * cnt[ok]).sum()) if fa.any() else np.nan
            out[6] = ma[fa].mean() if fa.any() else np.nan
    return out


class _LayerSets:
    def __init__(self, group, layer, bins):
        n = layer.neurons
        self.neurons = n
        per = 8 if n <= SMALL_LAYER else 1
        self.activation = _Appendable(group, "activation", "f4", (8, n), (1, per, min(n, NEURON_CHUNK)), True, True)
        self.gradient = _Appendable(group, "gradient", "f4", (8, n), (1, per, min(n, NEURON_CHUNK)), True, True)
        self.rows = _Appendable(group, "rows", "i8", (), (1024,), False, False)
        self.weight = _Appendable(group, "weight", "f8", (8,), (64, 8), False, True)
        self.weight_grad = _Appendable(group, "weight_grad", "f8", (8,), (64, 8), False, True)
        self.weight_hist = _Appendable(group, "weight_hist", "i8", (bins,), (16, bins), True, False)
        self.weight_hist_range = _Appendable(group, "weight_hist_range", "f8", (2,), (256, 2), False, True)
        self.weight_grad_hist = _Appendable(group, "weight_grad_hist", "i8", (bins,), (16, bins), True, False)
        self.weight_grad_hist_range = _Appendable(group, "weight_grad_hist_range", "f8", (2,), (256, 2), False, True)
        self.summary = _Appendable(group, "summary", "f8", (8,), (64, 8), False, True)
        self.matrix = None
        if layer.matrix_shape:
            elems = int(layer.matrix_shape[0]) * int(layer.matrix_shape[1])
            group.attrs["matrix_shape"] = np.array(layer.matrix_shape, dtype=np.int64)
            self.matrix = _Appendable(group, "matrix", "f4", (elems,), (1, min(elems, 65536)), True, True)
        self.pyramids = []
        self.accumulators = [None, None]  # per pyramid: the L4 window in progress (in memory)
        pg = group.create_group("pyramid")
        for pname, _, _ in PYRAMIDS:
            g = pg.create_group(pname)
            self.pyramids.append(
                [
                    _Appendable(g, "L%d" % k, "f4", (3, n), (1, 3 if n <= SMALL_LAYER else 1, min(n, NEURON_CHUNK)), True, True)
                    for k in PYRAMID_KS
                ]
            )


class RunWriter:
    """Writes RUN/run.h5. begin() fixes layers and scalar names; commit() appends one log() call."""

    def __init__(self, run_dir, info):
        self.run_dir = run_dir
        self.info = info
        self.path = os.path.join(run_dir, "run.h5")
        self.file = None
        self.sets = []
        self.layers = []
        self.scalar_names = []
        self.scalar_sets = {}
        self.snapshots = 0
        self.scalar_rows = 0
        self.bins = int(info["histogram_bins"])
        self._nan_rows = {}

    @property
    def begun(self):
        return self.file is not None

    def begin(self, layers, scalar_names, input_shape=None):
        tmp = self.path + ".tmp"
        # Paged aggregation (as the C++ writer): no small metadata block straddles a 4 KiB page, so a SIGKILL that
        # cuts a write() between two pages cannot leave an index block half rewritten, its checksum failing and
        # the committed rows it indexes unreadable.
        f = h5py.File(tmp, "w", libver="latest", fs_strategy="page", fs_persist=False, fs_threshold=1,
                      fs_page_size=4096)
        try:
            f.attrs["format"] = FORMAT
            f.attrs["version"] = np.int64(VERSION)
            f.attrs["model"] = str(self.info["model"])
            f.attrs["every"] = np.int64(self.info["every"])
            f.attrs["world_size"] = np.int64(self.info["world_size"])
            f.attrs["writer"] = "python"
            f.attrs["histogram_bins"] = np.int64(self.bins)
            if input_shape is not None:
                f.attrs["input_shape"] = np.array(input_shape, dtype=np.int64)
            self.steps = _Appendable(f, "steps", "i8", (), (1024,), False, False)
            sg = f.create_group("scalars")
            self.scalar_step = _Appendable(sg, "step", "i8", (), (1024,), False, False)
            for name in scalar_names:
                self.scalar_sets[name] = _Appendable(sg, name, "f8", (), (1024,), False, True)
            self.scalar_names = list(scalar_names)
            lg = f.create_group("layers")
            for i, layer in enumerate(layers):
                g = lg.create_group("%04d" % i)
                g.attrs["name"] = layer.name
                g.attrs["type"] = layer.type
                g.attrs["shape"] = np.array(layer.shape, dtype=np.int64)
                g.attrs["neurons"] = np.int64(layer.neurons)
                g.attrs["params"] = np.int64(layer.params)
                if layer.inputs is not None:
                    g.attrs["inputs"] = np.array(layer.inputs, dtype=np.int64)
                self.sets.append(_LayerSets(g, layer, self.bins))
            self.layers = list(layers)
            f.swmr_mode = True
            f.flush()
            os.replace(tmp, self.path)
        except BaseException:
            f.close()
            raise
        self.file = f

    def _nan_row(self, n):
        r = self._nan_rows.get(n)
        if r is None:
            r = np.full((8, n), np.nan, dtype=np.float32)
            self._nan_rows[n] = r
        return r

    def commit(self, step=None, records=None, scalar_step=None, scalars=None):
        """One log() call: a snapshot (step and records, one per layer) and/or a scalars row (scalar_step and
        a dict name -> float; names not given by begin() are ignored). Committed when this returns."""
        futures = []
        row = self.snapshots
        if records is not None:
            bins = self.bins
            for s, r in zip(self.sets, records):
                n = s.neurons
                act = r.activation if r.activation is not None else self._nan_row(n)
                grad = r.gradient if r.gradient is not None else self._nan_row(n)
                s.activation.write_row_chunks(row, act, futures)
                s.gradient.write_row_chunks(row, grad, futures)
                s.rows.write_row(row, np.int64(r.rows))
                s.weight.write_row(row, r.weight if r.weight is not None else np.full(8, np.nan))
                s.weight_grad.write_row(row, r.weight_grad if r.weight_grad is not None else np.full(8, np.nan))
                s.summary.write_row(row, summarize(r.activation, r.gradient, r.rows))
                if s.matrix is not None:
                    m = r.matrix
                    if m is None or m.size != s.matrix.dset.shape[1]:
                        m = np.full(s.matrix.dset.shape[1], np.nan, dtype=np.float32)
                    s.matrix.write_row(row, m)
                for hist, rng, hs, rs in (
                    (r.weight_hist, r.weight_hist_range, s.weight_hist, s.weight_hist_range),
                    (r.weight_grad_hist, r.weight_grad_hist_range, s.weight_grad_hist, s.weight_grad_hist_range),
                ):
                    hs.write_row(row, hist if hist is not None else np.zeros(bins, dtype=np.int64))
                    rs.write_row(row, rng if rng is not None else np.full(2, np.nan))
            write_chunks(futures)
            for s, r in zip(self.sets, records):
                for p, (_, kind, stat) in enumerate(PYRAMIDS):
                    current = r.activation if kind == "activation" else r.gradient
                    self._pyramid(s, p, kind, stat, row + 1, None if current is None else current[stat].copy())
        if scalar_step is not None:
            srow = self.scalar_rows
            for name in self.scalar_names:
                v = scalars.get(name, math.nan) if scalars else math.nan
                self.scalar_sets[name].write_row(srow, np.float64(v))
        # Commit: data on disk before the counters say it exists.
        self.file.flush()
        if records is not None:
            self.steps.write_row(row, np.int64(step))
        if scalar_step is not None:
            self.scalar_step.write_row(self.scalar_rows, np.int64(scalar_step))
        self.file.flush()
        if records is not None:
            self.snapshots += 1
        if scalar_step is not None:
            self.scalar_rows += 1

    def _pyramid(self, s, p, kind, stat, committed, current):
        """Pyramid rows that snapshot number committed-1 completes. Level K (4, 8, ..., 24) row j covers
        snapshots [j 2^K, (j+1) 2^K): min and max of the finite values, mean of the finite values (L4: exact,
        accumulated in memory as snapshots arrive) or of the finite level K-4 means (above: the 16 rows of
        level K-4 it covers, read back one at a time)."""
        n = s.neurons
        acc = s.accumulators[p]
        if acc is None:
            acc = s.accumulators[p] = _Accumulator(n)
        if current is not None:
            acc.add(current, current, current)
        futures = []
        for level, k in enumerate(PYRAMID_KS):
            window = 1 << k
            if committed % window:
                break
            j = committed // window - 1
            if level == 0:
                out = acc.finish()
                s.accumulators[p] = None
            else:
                if futures:
                    write_chunks(futures)  # the row just made below is read back
                upper = _Accumulator(n)
                below = s.pyramids[p][level - 1]
                for r in range(j * PYRAMID_FANOUT, (j + 1) * PYRAMID_FANOUT):
                    rows = below.read_rows(r, r + 1)[0]
                    upper.add(rows[0], rows[1], rows[2])
                out = upper.finish()
            s.pyramids[p][level].write_row_chunks(j, out, futures)
        write_chunks(futures)

    def close(self):
        if self.file is not None:
            try:
                self.file.flush()
            finally:
                self.file.close()
                self.file = None

CHECKPOINT_FORMAT = "tensorscape-checkpoint"
CHECKPOINT_VERSION = 1


def checkpoint_path(run_dir, step):
    return os.path.join(run_dir, "checkpoints", "step_%09d.h5" % step)


def write_checkpoint(run_dir, step, module):
    """RUN/checkpoints/step_<step>.h5 (docs/RUN_FORMAT.md, "Files"): the module's floating-point parameters and
    buffers as float32 datasets named by their state-dict keys, written under a temporary name and renamed."""
    path = checkpoint_path(run_dir, step)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = path + ".tmp"
    try:
        with h5py.File(tmp, "w") as f:
            f.attrs["format"] = CHECKPOINT_FORMAT
            f.attrs["version"] = np.int64(CHECKPOINT_VERSION)
            f.attrs["step"] = np.int64(step)
            for name, t in module.state_dict().items():
                if not t.is_floating_point():
                    continue
                f.create_dataset(name, data=t.detach().cpu().float().numpy())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
