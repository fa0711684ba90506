"""Per-neuron statistics of a [rows x neurons] tensor, computed with torch ops on the tensor's own device.

The statistics are those of docs/RUN_FORMAT.md (the engine's engine/stats definitions), in this order::

    0 mean  1 mean_abs  2 variance  3 min  4 max  5 zero_fraction  6 nan_count  7 inf_count

NaN and +-Inf are excluded from 0-4 and counted in 6-7; 0-4 are NaN for a neuron with no finite value; the
variance is the population variance (divided by the finite count); zero_fraction is exact zeros / rows.

The reduction is split in three so that partial results merge (across the ranks of torch.distributed, or
across row blocks):

* ``neuron_moments(x2d)`` -> dict of tensors, the mergeable moments of each column (``MOMENT_KEYS``);
* ``combine(a, b)`` -> the moments of the rows of a and b together (Chan, Golub and LeVeque's pairwise
  formula for the mean and the sum of squared deviations M2);
* ``finalize(moments)`` -> float64 tensor [8, N] of the statistics above.

Accuracy: columns whose values are all finite are reduced in float32 with the corrected two-pass method
(shift by the float32 mean, sum the deviations d and d^2, then mean = shift + sum d / n and
M2 = sum d^2 - (sum d)^2 / n, so the float mean's own error is removed and nothing cancels); a tensor with any
NaN/Inf (or whose float32 sums overflow) is reduced with masks in float64. Both agree with a float64 reference
to about 1e-6 relative. Activations never leave their device: only the [N]-sized results do, when written.

Backends: ``get_reducer()`` returns the object whose ``moments(x2d)`` the recorder calls (any object with
``name``, ``describe(device)`` and ``moments(x2d)`` returning the dict above plugs in): ``NativeReducer``
when the compiled module ``tensorscape_native`` (the engine's fused reducer, python/native, built by CMake)
is importable, else ``TorchReducer`` (torch ops).
"""

import contextlib
import math

import torch

STATISTICS = ("mean", "mean_abs", "variance", "min", "max", "zero_fraction", "nan_count", "inf_count")
LAYER_STATISTICS = ("count", "mean", "std", "min", "max", "l2_norm", "nan_count", "inf_count")

# The per-column moments; "rows" is a 0-dim tensor (the same for every column), the others are float64 [N].
MOMENT_KEYS = ("rows", "n", "mean", "m2", "sum_abs", "min", "max", "zeros", "nans", "infs")


def _as_2d(x2d):
    if not torch.is_tensor(x2d):
        raise TypeError("tensorscape: neuron_moments needs a torch.Tensor, got %s" % type(x2d).__name__)
    x = x2d.detach()
    if x.dim() == 1:
        x = x.reshape(-1, 1)
    elif x.dim() != 2:
        x = x.reshape(x.shape[0], -1) if x.dim() > 0 else x.reshape(1, 1)
    if x.dtype not in (torch.float32, torch.float64):
        x = x.float()  # half, bfloat16, integers
    return x


def empty_moments(neurons, device="cpu"):
    """Moments of zero rows: the identity of combine()."""
    z = torch.zeros(neurons, dtype=torch.float64, device=device)
    return {
        "rows": torch.zeros((), dtype=torch.float64, device=device),
        "n": z,
        "mean": z.clone(),
        "m2": z.clone(),
        "sum_abs": z.clone(),
        "min": torch.full((neurons,), math.inf, dtype=torch.float64, device=device),
        "max": torch.full((neurons,), -math.inf, dtype=torch.float64, device=device),
        "zeros": z.clone(),
        "nans": z.clone(),
        "infs": z.clone(),
    }


def _moments_finite_f32(x):
    """Corrected two-pass in float32 for a float32 [B, N] whose values are all finite; None when a float32
    intermediate overflowed (then the float64 path is used). About ten passes over x, each a vectorised
    torch op; sums accumulate pairwise (cascade) on the CPU."""
    rows, neurons = x.shape
    s = x.sum(0)
    if not bool(torch.isfinite(s).all()):
        return None  # NaN/Inf present (or the float32 sum overflowed)
    mn = torch.amin(x, 0)
    mx = torch.amax(x, 0)
    shift = s / rows
    work = x - shift  # deviations d
    dsum = work.sum(0).double()
    work.mul_(work)
    m2 = work.sum(0).double()
    if bool((mn >= 0).all()):  # e.g. ReLU outputs: |x| = x
        sum_abs = s.double()
    elif bool((mx <= 0).all()):
        sum_abs = -s.double()
    else:
        torch.abs(x, out=work)
        sum_abs = work.sum(0).double()
    torch.ne(x, 0, out=work)  # 1.0 where x != 0
    nonzero = work.sum(0).double()
    if not bool(torch.isfinite(m2 + sum_abs).all()):  # a float32 sum of squares or of |x| overflowed
        return None
    n = torch.full((neurons,), float(rows), dtype=torch.float64, device=x.device)
    mean = shift.double() + dsum / rows
    m2 = torch.clamp(m2 - dsum * dsum / rows, min=0.0)
    z = torch.zeros(neurons, dtype=torch.float64, device=x.device)
    return {
        "rows": torch.tensor(float(rows), dtype=torch.float64, device=x.device),
        "n": n,
        "mean": mean,
        "m2": m2,
        "sum_abs": sum_abs,
        "min": mn.double(),
        "max": mx.double(),
        "zeros": n - nonzero,
        "nans": z,
        "infs": z.clone(),
    }


def _moments_masked_f64(x):
    """The general path: masks for NaN/Inf, float64 arithmetic (two-pass: mean, then squared deviations)."""
    rows, neurons = x.shape
    x = x.double()
    fin = torch.isfinite(x)
    n = fin.sum(0, dtype=torch.float64)
    nans = torch.isnan(x).sum(0, dtype=torch.float64)
    infs = float(rows) - n - nans
    xf = torch.where(fin, x, torch.zeros((), dtype=x.dtype, device=x.device))
    inv = torch.where(n > 0, 1.0 / torch.clamp(n, min=1.0), torch.zeros_like(n))
    mean = xf.sum(0) * inv
    d = torch.where(fin, x - mean, torch.zeros((), dtype=x.dtype, device=x.device))
    dsum = d.sum(0)
    m2 = (d * d).sum(0)
    mean = mean + dsum * inv
    m2 = torch.clamp(m2 - dsum * dsum * inv, min=0.0)
    inf = torch.tensor(math.inf, dtype=x.dtype, device=x.device)
    return {
        "rows": torch.tensor(float(rows), dtype=torch.float64, device=x.device),
        "n": n,
        "mean": mean,
        "m2": m2,
        "sum_abs": xf.abs().sum(0),
        "min": torch.where(fin, x, inf).amin(0),
        "max": torch.where(fin, x, -inf).amax(0),
        "zeros": (x == 0).sum(0, dtype=torch.float64),
        "nans": nans,
        "infs": infs,
    }


def neuron_moments(x2d):
    """Mergeable moments of each column of ``x2d`` ([rows x neurons]; a 1-D tensor is one column, more
    dimensions are flattened after the first). Returns a dict with the keys of MOMENT_KEYS: ``rows`` a 0-dim
    float64 tensor, the others float64 tensors [N] on x2d's device."""
    with torch.no_grad(), _no_autocast(x2d):
        x = _as_2d(x2d)
        rows, neurons = x.shape
        if rows == 0:
            return empty_moments(neurons, x.device)
        if x.dtype == torch.float32:
            out = _moments_finite_f32(x)
            if out is not None:
                return out
        return _moments_masked_f64(x)


def _no_autocast(x):
    """A context without autocast (mixed precision) for the reduction's own ops."""
    kind = x.device.type if torch.is_tensor(x) else "cpu"
    if kind in ("cuda", "cpu") and hasattr(torch, "autocast"):
        try:
            return torch.autocast(device_type=kind, enabled=False)
        except Exception:
            pass
    return contextlib.nullcontext()


def expand(m):
    """Full moments from a compact result of NativeReducer ({"rows", "_final"}: the final statistics only,
    which is all a single process needs); other moments unchanged."""
    if "_final" in m and "n" not in m:
        return moments_from_stats(m["_final"], float(m["rows"]))
    return m


def final_stats(m):
    """float32 numpy [8, N] of the statistics: the compact result as it is, else finalize(m) on the host."""
    if "_final" in m:
        return m["_final"]
    return finalize(m).to("cpu", torch.float32).numpy()


def combine(a, b):
    """Moments of the rows of a and b together (Chan et al.): n = na + nb, delta = mean_b - mean_a,
    mean = mean_a + delta nb / n, M2 = M2a + M2b + delta^2 na nb / n. Either may be empty."""
    a, b = expand(a), expand(b)
    n = a["n"] + b["n"]
    delta = b["mean"] - a["mean"]
    wb = torch.where(n > 0, b["n"] / torch.clamp(n, min=1.0), torch.zeros_like(n))
    return {
        "rows": a["rows"] + b["rows"],
        "n": n,
        "mean": a["mean"] + delta * wb,
        "m2": a["m2"] + b["m2"] + delta * delta * a["n"] * wb,
        "sum_abs": a["sum_abs"] + b["sum_abs"],
        "min": torch.minimum(a["min"], b["min"]),
        "max": torch.maximum(a["max"], b["max"]),
        "zeros": a["zeros"] + b["zeros"],
        "nans": a["nans"] + b["nans"],
        "infs": a["infs"] + b["infs"],
    }


def finalize(m):
    """float64 tensor [8, N] of the statistics (STATISTICS order) from moments. Moments of zero rows (an
    output that got no gradient) give NaN everywhere."""
    m = expand(m)
    n = m["n"]
    rows = m["rows"]
    nan = torch.tensor(math.nan, dtype=torch.float64, device=n.device)
    anyf = n > 0
    inv = 1.0 / torch.clamp(n, min=1.0)
    out = torch.stack(
        [
            torch.where(anyf, m["mean"], nan),
            torch.where(anyf, m["sum_abs"] * inv, nan),
            torch.where(anyf, m["m2"] * inv, nan),
            torch.where(anyf, m["min"], nan),
            torch.where(anyf, m["max"], nan),
            m["zeros"] / rows if float(rows) > 0 else torch.full_like(n, math.nan),
            m["nans"],
            m["infs"],
        ]
    )
    if float(rows) <= 0:
        out.fill_(math.nan)
    return out


def scale_moments(m, factor):
    """Moments of factor * x (factor > 0), e.g. 1 / world_size for output gradients under DDP."""
    f = float(factor)
    m = expand(m)
    out = dict(m)
    out["mean"] = m["mean"] * f
    out["m2"] = m["m2"] * (f * f)
    out["sum_abs"] = m["sum_abs"] * f
    out["min"] = m["min"] * f
    out["max"] = m["max"] * f
    return out


def pack(m):
    """One flat float64 tensor (1 + 9 N values) of moments, for a single collective."""
    m = expand(m)
    return torch.cat([m["rows"].reshape(1).double()] + [m[k].double() for k in MOMENT_KEYS[1:]])


def unpack(flat, neurons):
    """Inverse of pack()."""
    out = {"rows": flat[0]}
    for i, k in enumerate(MOMENT_KEYS[1:]):
        out[k] = flat[1 + i * neurons : 1 + (i + 1) * neurons]
    return out


def packed_size(neurons):
    return 1 + 9 * neurons


# ---- Layer-level statistics of a module's own parameters (or their gradients).


def layer_stats(tensors, bins):
    """(stats float64 numpy [8] in LAYER_STATISTICS order, histogram int64 numpy [bins], range float64 numpy
    [2]) over all elements of ``tensors`` together; NaN stats, zero histogram and NaN range when the list is
    empty. The histogram has ``bins`` equal bins over the finite [min, max] (widened by 0.5 each side when
    min == max); NaN/Inf are not binned."""
    import numpy as np

    hist = np.zeros(bins, dtype=np.int64)
    if not tensors:
        return np.full(8, np.nan), hist, np.full(2, np.nan)
    with torch.no_grad():
        v = torch.cat([t.detach().reshape(-1).double() for t in tensors])
        total = v.numel()
        fin = torch.isfinite(v)
        count = int(fin.sum())
        nans = int(torch.isnan(v).sum())
        infs = total - count - nans
        if count < total:
            v = v[fin]
        stats = np.full(8, np.nan)
        stats[0] = count
        stats[5] = 0.0
        stats[6] = nans
        stats[7] = infs
        if count == 0:
            return stats, hist, np.full(2, np.nan)
        mean = v.mean()
        d = v - mean
        lo = float(v.min())
        hi = float(v.max())
        stats[1] = float(mean)
        stats[2] = math.sqrt(float((d * d).sum()) / count)
        stats[3] = lo
        stats[4] = hi
        stats[5] = float(torch.linalg.vector_norm(v))
        if lo == hi:
            lo -= 0.5
            hi += 0.5
        hist[:] = torch.histc(v, bins=bins, min=lo, max=hi).cpu().numpy().astype(np.int64)
        return stats, hist, np.array([lo, hi])


class TorchReducer:
    """Statistics by torch ops on the tensor's own device."""

    name = "torch ops"

    def describe(self, device):
        return self.name

    @staticmethod
    def moments(x2d):
        return neuron_moments(x2d)


def moments_from_stats(stats, rows):
    """Mergeable moments (CPU, float64) from final statistics [8, N] of `rows` rows: n = rows - NaN - Inf,
    M2 = variance n, sum |x| = mean_abs n, zeros = zero_fraction rows."""
    import numpy as np

    s = torch.from_numpy(np.asarray(stats, dtype=np.float64))
    rows_f = float(rows)
    nans, infs = s[6], s[7]
    n = rows_f - nans - infs
    ok = n > 0
    zero = torch.zeros((), dtype=torch.float64)
    inf = torch.tensor(math.inf, dtype=torch.float64)
    return {
        "rows": torch.tensor(rows_f, dtype=torch.float64),
        "n": n,
        "mean": torch.where(ok, s[0], zero),
        "m2": torch.where(ok, s[2] * n, zero),
        "sum_abs": torch.where(ok, s[1] * n, zero),
        "min": torch.where(ok, s[3], inf),
        "max": torch.where(ok, s[4], -inf),
        "zeros": torch.round(s[5] * rows_f),
        "nans": nans.clone(),
        "infs": infs.clone(),
    }


class NativeReducer:
    """The engine's fused reducer (module tensorscape_native, built by CMake into BUILD/python): one call per
    tensor, reading it in place on its device (CPU; CUDA when the module was built with it), returning the
    final statistics [8, N] to the host, turned into moments here. Tensors on other devices, or CUDA
    tensors without a CUDA build, go to the torch ops."""

    def __init__(self, module):
        self.native = module
        self.backends = set(module.backends().split(","))
        self.name = "tensorscape_native (the engine's fused reducer)"

    def _usable(self, device):
        return device.type == "cpu" or (device.type == "cuda" and "cuda" in self.backends)

    def describe(self, device):
        return self.name if self._usable(torch.device(device)) else TorchReducer.name

    def moments(self, x2d):
        import numpy as np

        x = _as_2d(x2d)
        if not self._usable(x.device):
            return neuron_moments(x)
        if x.dtype != torch.float32:
            x = x.float()
        rows, cols = x.shape
        if rows == 0 or cols == 0:
            return empty_moments(cols, "cpu")
        if x.stride(1) != 1 or x.stride(0) < cols:
            x = x.contiguous()
        stride = self.native.stats_stride(cols)
        out = np.empty(8 * stride, dtype=np.float32)
        cuda = x.device.type == "cuda"
        stream = torch.cuda.current_stream(x.device).cuda_stream if cuda else 0
        self.native.neuron_stats(x.data_ptr(), rows, cols, x.stride(0), cuda, stream, out.ctypes.data, out.nbytes)
        # Compact: the final statistics as the engine computed them; expand() makes mergeable moments of them
        # when ranks are combined (a single process writes them as they are).
        final = out.reshape(8, stride)[:, :cols]
        return {"rows": torch.tensor(float(rows), dtype=torch.float64), "_final": final}


def get_reducer(device=None):
    """The reducer to use: NativeReducer when the compiled module tensorscape_native is importable (on
    PYTHONPATH, e.g. BUILD/python), else TorchReducer. TENSORSCAPE_REDUCER=torch (or =native) chooses."""
    import os

    choice = os.environ.get("TENSORSCAPE_REDUCER", "").strip().lower()
    if choice != "torch":
        try:
            import tensorscape_native

            return NativeReducer(tensorscape_native)
        except ImportError:
            if choice == "native":
                raise ImportError(
                    "tensorscape: TENSORSCAPE_REDUCER=native but tensorscape_native is not importable (build it "
                    "with CMake and put BUILD/python on PYTHONPATH)"
                ) from None
    return TorchReducer()
