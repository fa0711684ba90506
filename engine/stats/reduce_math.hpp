// The element-wise and combine arithmetic of the statistics reduction: ONE code path, compiled as plain
// inline functions by g++ (CPU backend) and as __host__ __device__ functions by nvcc (kernels/), so CPU tests
// exercise the arithmetic the GPU runs. No CUDA types, no std:: containers; only what both compilers take.
//
// The reduction of one neuron (a column of a [batch x neurons] matrix) runs in tiles of rows:
//   1. tileAccumulate  for each value of the tile: float sums, min, max and counts (one read of the data);
//   2. tileDeviation   for each value again (the tile is in cache / registers): sums of deviations and of
//                      squared deviations from the tile's float mean (corrected two-pass, Bjorck: the
//                      float mean's own error is removed exactly, no catastrophic cancellation);
//   3. runningAddTile  Chan et al.'s pairwise combination of the tile into a running (double) state;
//   4. runningCombine  the same combination between running states (rows split across threads, neurons of a
//                      layer); runningFinalize turns a state into the TS_STATS_* values of stats_layout.h.
// NaN and +-Inf are excluded from sums, min and max and counted instead (see stats_layout.h).
#pragma once

#include <math.h>

#if defined(__CUDACC__)
#define TS_HD __host__ __device__ __forceinline__
#else
#define TS_HD inline
#endif

#include "engine/stats/stats_layout.h"

namespace ts::stats::math {

// Finite test that vectorises (x - x is 0 for finite x, NaN for NaN and +-Inf). Needs IEEE semantics: never
// build this with -ffast-math or -ffinite-math-only.
TS_HD bool isFiniteValue(float x) {
    return (x - x) == 0.0f;
}
TS_HD bool isNanValue(float x) {
    return x != x;
}

// ---- Tile pass 1: one value into a neuron's float tile accumulators. Branch-free so CPU lanes vectorise.
// Initial values: sum = sumAbs = zeros = nans = infs = 0, mn = +Inf, mx = -Inf (see tileInit).
TS_HD void tileAccumulate(float x, float& sum, float& sumAbs, float& mn, float& mx, float& zeros, float& nans,
                          float& infs) {
    // Every operand is computed unconditionally and combined with selects and bitwise (not short-circuit)
    // logic, so the CPU loop if-converts into vector blends (cpu_reducer.cpp is built with
    // -fno-trapping-math, which changes no result: only whether FP exception flags may be raised
    // speculatively).
    const bool finite = isFiniteValue(x);
    const bool nan = isNanValue(x);
    const bool zero = x == 0.0f;
    const float v = finite ? x : 0.0f;
    const float a = fabsf(v);
    const float lo = finite ? x : INFINITY;
    const float hi = finite ? x : -INFINITY;
    sum += v;
    sumAbs += a;
    mn = lo < mn ? lo : mn;
    mx = hi > mx ? hi : mx;
    zeros += zero ? 1.0f : 0.0f;
    nans += nan ? 1.0f : 0.0f;
    infs += (finite | nan) ? 0.0f : 1.0f;
}

struct TileSums {
    float sum, sumAbs, min, max, zeros, nans, infs; // pass 1
    float shift;                                    // the tile mean the deviations are taken from
    float dev, m2;                                  // pass 2: sum of (x - shift), sum of (x - shift)^2
    float scale;                                    // 1, or kRescueUnscale when the tile was rescued
};

TS_HD void tileInit(TileSums& t) {
    t.sum = t.sumAbs = t.zeros = t.nans = t.infs = t.shift = t.dev = t.m2 = 0.0f;
    t.min = INFINITY;
    t.max = -INFINITY;
    t.scale = 1.0f;
}

// Mean of the finite values of a tile of `rows` values (0 when there are none: then no deviation is added).
TS_HD float tileMean(float rows, float sum, float nans, float infs) {
    const float n = rows - nans - infs;
    return n > 0.0f ? sum / n : 0.0f;
}

// ---- Tile pass 2: deviation of one value from the tile mean (`shift`, from tileMean).
TS_HD void tileDeviation(float x, float shift, float& dev, float& m2) {
    const float diff = x - shift; // unconditional, see tileAccumulate
    const float d = isFiniteValue(x) ? diff : 0.0f;
    dev += d;
    m2 += d * d;
}

// ---- Rescue of a tile whose finite values overflow the float sums (|x| within a factor of the tile's rows
// of FLT_MAX; a diverging training gets there). Its sums (pass 1 again, sums only) and deviations (pass 2)
// are taken over x * kRescueScale, which is exact for such magnitudes (values below 2^-56 lose bits, which
// next to values near 1e37 change nothing), so they stay finite for tiles of up to 64 rows; tileMoments
// multiplies them back in double (scale kRescueUnscale). min, max and the counts of pass 1 stay as they are.
// Without the rescue the sum is Inf, the tile mean Inf and every deviation -Inf: a NaN mean for finite data.
#define TS_RESCUE_SCALE 0x1p-70f
#define TS_RESCUE_UNSCALE 0x1p70f
TS_HD bool tileOverflowed(float sumAbs) {
    return !isFiniteValue(sumAbs); // |sum| <= sumAbs: the absolute sum overflows first
}
// Pass 1 again for a rescued tile, one value at a time (sum and sumAbs start at 0).
TS_HD void tileRescueSums(float x, float& sum, float& sumAbs) {
    const float v = isFiniteValue(x) ? x * TS_RESCUE_SCALE : 0.0f;
    sum += v;
    sumAbs += fabsf(v);
}
// Pass 2 for a rescued tile (shift: tileMean of the rescued sums; dev and m2 start at 0).
TS_HD void tileRescueDeviation(float x, float shift, float& dev, float& m2) {
    tileDeviation(x * TS_RESCUE_SCALE, shift, dev, m2);
}

// ---- Running state of one neuron (or of a whole layer) over any number of tiles. T is double on both
// backends: a tile's float error stays local, the combination over a large batch does not drift.
template <class T> struct Running {
    T rows;   // values seen, finite or not
    T n;      // finite values
    T mean;   // of the finite values
    T m2;     // sum of squared deviations from mean
    T sumAbs; // sum of |x| over finite values
    T zeros, nans, infs;
    float min, max;
};

template <class T> TS_HD void runningInit(Running<T>& r) {
    r.rows = r.n = r.mean = r.m2 = r.sumAbs = r.zeros = r.nans = r.infs = T(0);
    r.min = INFINITY;
    r.max = -INFINITY;
}

// ---- Scalar forms (CPU loops over SoA arrays of neurons vectorise over these; the Running<T> forms below,
// used by the GPU and for layer partials, call the same functions).

// (n, mean, M2) of a finished tile of `rows` values. Corrected two-pass: mean = shift + dev / n,
// M2 = sum d^2 - dev^2 / n, where d = x - shift and dev = sum d is tiny, so nothing cancels. `scale`: 1, or
// TS_RESCUE_UNSCALE for a rescued tile (shift, dev and m2 in scaled units; multiplying by 1 changes no bit).
template <class T>
TS_HD void tileMoments(float rows, float nans, float infs, float shift, float dev, float m2, float scale, T& n,
                       T& mean, T& M2) {
    n = T(rows) - T(nans) - T(infs);
    const T inv = n > T(0) ? T(1) / n : T(0);
    const T d = T(dev);
    const T s = T(scale);
    mean = (T(shift) + d * inv) * s;
    const T m = T(m2) - d * d * inv;
    M2 = m > T(0) ? m * (s * s) : T(0);
}

// Chan, Golub and LeVeque's pairwise update: (na, meana, M2a) += (nb, meanb, M2b).
template <class T> TS_HD void chanCombine(T& na, T& meana, T& m2a, T nb, T meanb, T m2b) {
    const T n = na + nb;
    const T delta = meanb - meana;
    const T wb = n > T(0) ? nb / n : T(0);
    meana = meana + delta * wb;
    m2a = m2a + m2b + delta * delta * na * wb;
    na = n;
}

// A neuron's final values (stats_layout.h semantics) from its running sums.
template <class T>
TS_HD void finalizeValues(T rows, T n, T mean, T m2, T sumAbs, T zeros, T nans, T infs, float mn, float mx,
                          float& outMean, float& outMeanAbs, float& outVariance, float& outMin, float& outMax,
                          float& outZeroFraction, float& outNans, float& outInfs) {
    const bool any = n > T(0);
    const T inv = any ? T(1) / n : T(0);
    const T zf = zeros / rows; // rows > 0 always (empty input is rejected)
    outMean = any ? float(mean) : NAN;
    outMeanAbs = any ? float(sumAbs * inv) : NAN;
    outVariance = any ? float(m2 * inv) : NAN;
    outMin = any ? mn : NAN;
    outMax = any ? mx : NAN;
    outZeroFraction = float(zf);
    outNans = float(nans);
    outInfs = float(infs);
}

// ---- Struct forms.
template <class T> TS_HD void runningCombine(Running<T>& a, const Running<T>& b) {
    chanCombine(a.n, a.mean, a.m2, b.n, b.mean, b.m2);
    a.rows += b.rows;
    a.sumAbs += b.sumAbs;
    a.zeros += b.zeros;
    a.nans += b.nans;
    a.infs += b.infs;
    a.min = b.min < a.min ? b.min : a.min;
    a.max = b.max > a.max ? b.max : a.max;
}

// A finished tile of `rows` values into a running state.
template <class T> TS_HD void runningAddTile(Running<T>& r, float rows, const TileSums& t) {
    Running<T> b;
    b.rows = T(rows);
    tileMoments(rows, t.nans, t.infs, t.shift, t.dev, t.m2, t.scale, b.n, b.mean, b.m2);
    b.sumAbs = T(t.sumAbs) * T(t.scale);
    b.zeros = T(t.zeros);
    b.nans = T(t.nans);
    b.infs = T(t.infs);
    b.min = t.min;
    b.max = t.max;
    runningCombine(r, b);
}

// One running state into the TS_STATS_COUNT values of stats_layout.h (out[TS_STATS_MEAN] ...).
template <class T> TS_HD void runningFinalize(const Running<T>& r, float* out) {
    finalizeValues(r.rows, r.n, r.mean, r.m2, r.sumAbs, r.zeros, r.nans, r.infs, r.min, r.max,
                   out[TS_STATS_MEAN], out[TS_STATS_MEAN_ABS], out[TS_STATS_VARIANCE], out[TS_STATS_MIN],
                   out[TS_STATS_MAX], out[TS_STATS_ZERO_FRACTION], out[TS_STATS_NAN_COUNT],
                   out[TS_STATS_INF_COUNT]);
}

// Sum of squares of the finite values behind a running state (for L2 norms): M2 + n mean^2, no cancellation.
template <class T> TS_HD T runningSumSquares(const Running<T>& r) {
    return r.m2 + r.n * r.mean * r.mean;
}

// ---- Histogram. edges[0..bins] are computed once on the host (histogramEdge) and passed to both backends,
// so a value's bin depends only on comparisons with the published edges: bin b holds edges[b] <= x <
// edges[b+1], the last bin also holds x == edges[bins]. Returns -1 below the range, `bins` above it, -2 for
// NaN/Inf.
TS_HD int histogramBin(float x, const float* edges, int bins, float scale) {
    if (!isFiniteValue(x)) return -2;
    if (x < edges[0]) return -1;
    if (x > edges[bins]) return bins;
    float guess = (x - edges[0]) * scale;
    int b = guess < 0.0f ? 0 : (guess >= float(bins) ? bins - 1 : int(guess));
    while (b > 0 && x < edges[b])
        --b;
    while (b < bins - 1 && x >= edges[b + 1])
        ++b;
    return b;
}

// Edge i of `bins` equal bins over [lo, hi], computed in double so both ends are exact.
TS_HD float histogramEdge(int i, int bins, float lo, float hi) {
    if (i <= 0) return lo;
    if (i >= bins) return hi;
    return float(double(lo) + (double(hi) - double(lo)) * double(i) / double(bins));
}

// ---- Level-of-detail clusters: one neuron's value into its cluster's accumulators (finite values only).
template <class T> TS_HD void clusterAccumulate(float v, T& sum, T& finite, float& maxAbs) {
    const bool ok = isFiniteValue(v);
    sum += ok ? T(v) : T(0);
    finite += ok ? T(1) : T(0);
    const float a = ok ? (v < 0.0f ? -v : v) : 0.0f;
    maxAbs = a > maxAbs ? a : maxAbs;
}

} // namespace ts::stats::math
