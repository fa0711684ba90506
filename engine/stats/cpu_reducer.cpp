// CPU backend: per block of neurons, tiles of rows are swept twice while they sit in L2 (sums/min/max/counts,
// then squared deviations), so DRAM sees each value once. Inner loops run over contiguous neurons and
// vectorise; the hot loops are compiled for AVX2 and baseline x86-64 and picked at load time (target_clones).
#include "engine/stats/cpu_reducer.hpp"

#include "engine/core/cpu_dispatch.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "engine/core/thread_pool.hpp"
#include "engine/stats/layer_partials.hpp"
#include "engine/stats/reduce_math.hpp"

namespace ts::stats {
namespace {

using Run = math::Running<double>;

#define TS_CPU_CLONES TS_CLONES_V3

// Float accumulators of one tile, one array per quantity over the block's neurons (SoA: lanes = neurons).
struct TileArrays {
    std::vector<float> sum, sumAbs, mn, mx, zeros, nans, infs, mean, dev, m2, scale;
    std::vector<std::int32_t> counts; // the sweep's integer count lanes (3 per neuron)
    explicit TileArrays(int w)
        : sum(w), sumAbs(w), mn(w), mx(w), zeros(w), nans(w), infs(w), mean(w), dev(w), m2(w), scale(w),
          counts(static_cast<std::size_t>(3 * w)) {}
};

// Eight neurons' float accumulators, held in registers for a whole column strip of a tile (GCC vector
// extensions: AVX2 registers in the x86-64-v3 clone, SSE pairs in the default one). Each lane does exactly
// the scalar arithmetic of math::tileAccumulate / tileMean / tileDeviation (the same IEEE operations in the
// same row order), so results are bit-identical to the scalar loop and to the CUDA twin's formulas.
typedef float V8 __attribute__((vector_size(32)));
typedef int I8 __attribute__((vector_size(32)));

__attribute__((always_inline)) inline V8 splat(float v) {
    return V8{v, v, v, v, v, v, v, v};
}
__attribute__((always_inline)) inline V8 load8(const float* p) {
    V8 v;
    std::memcpy(&v, p, sizeof v);
    return v;
}
__attribute__((always_inline)) inline void store8(float* p, V8 v) {
    std::memcpy(p, &v, sizeof v);
}
__attribute__((always_inline)) inline V8 select8(I8 mask, V8 a, V8 b) { // mask lanes are 0 or -1 (vector comparisons)
    return (V8)(((I8)a & mask) | ((I8)b & ~mask));
}

// The sweeps over one tile: rows [0, rows) of x (row stride ld), neurons [0, w). Rows are walked one after the
// other (each row of the tile is contiguous; walking a column strip down all rows would put every access in
// the same L1 set, rows being a power of two apart), eight rows at a time: a strip of 8 neurons keeps its
// accumulators in registers across them (one load and store per eight values), and eight rows a power of two
// apart still fit L1's eight ways. Pass 1 (sums, min, max, counts), the strips' tile means, then pass 2
// (deviations from the mean) while the tile is still in L2.
//
// Two versions of each pass: the general one handles NaN and +-Inf with selects; the finite one leaves the
// selects out, which halves the work per value. A tile is swept with the finite version first; a non-finite
// value anywhere in it makes its float sum non-finite (Inf and NaN propagate through additions, and an
// overflow of finite values ends there too), and then the tile is swept again with the general version. On a
// finite tile every select of the general version passes its value through unchanged, so both give the same
// bits (checked by CpuReducer.VectorisedSweepEqualsTheSharedScalarFormulasBitForBit on mixed tiles).
constexpr int kRowBlock = 8;

struct TileOut { // the tile's per-neuron float accumulators (TileArrays' storage)
    float *__restrict sum, *__restrict sumAbs, *__restrict mn, *__restrict mx, *__restrict zeros,
        *__restrict nans, *__restrict infs, *__restrict mean, *__restrict dev, *__restrict m2, *__restrict scale;
};

__attribute__((always_inline)) inline I8 loadI(const std::int32_t* p) {
    I8 v;
    std::memcpy(&v, p, sizeof v);
    return v;
}
__attribute__((always_inline)) inline void storeI(std::int32_t* p, I8 v) {
    std::memcpy(p, &v, sizeof v);
}
__attribute__((always_inline)) inline I8 absMask8() {
    return I8{0x7fffffff, 0x7fffffff, 0x7fffffff, 0x7fffffff, 0x7fffffff, 0x7fffffff, 0x7fffffff, 0x7fffffff};
}

// G neighbouring strips of 8 neurons from neuron j, down `nr` rows from x (kFixed > 0: exactly kFixed rows,
// unrolled), pass 1 on finite values. The G strips' accumulators are independent chains interleaved row by
// row, so the adds' latency overlaps; each neuron still adds its rows in order (the same bits).
template <int G, int kFixed>
__attribute__((always_inline)) inline void stripsOneFinite(const float* __restrict x, std::int64_t ld, int nr,
                                                           const TileOut t, int j, std::int32_t* __restrict cz) {
    const V8 zero = splat(0.0f);
    const I8 absMask = absMask8();
    V8 s[G], sa[G], lo[G], hi[G];
    I8 z[G];
#pragma GCC unroll 8
    for (int g = 0; g < G; ++g) {
        s[g] = load8(t.sum + j + 8 * g);
        sa[g] = load8(t.sumAbs + j + 8 * g);
        lo[g] = load8(t.mn + j + 8 * g);
        hi[g] = load8(t.mx + j + 8 * g);
        z[g] = loadI(cz + j + 8 * g);
    }
    const int n = kFixed > 0 ? kFixed : nr;
#pragma GCC unroll 8
    for (int r = 0; r < n; ++r) {
#pragma GCC unroll 8
        for (int g = 0; g < G; ++g) {
            const V8 v = load8(x + r * ld + j + 8 * g);
            s[g] += v;
            sa[g] += (V8)((I8)v & absMask);
            lo[g] = v < lo[g] ? v : lo[g];
            hi[g] = v > hi[g] ? v : hi[g];
            z[g] -= v == zero;
        }
    }
#pragma GCC unroll 8
    for (int g = 0; g < G; ++g) {
        store8(t.sum + j + 8 * g, s[g]);
        store8(t.sumAbs + j + 8 * g, sa[g]);
        store8(t.mn + j + 8 * g, lo[g]);
        store8(t.mx + j + 8 * g, hi[g]);
        storeI(cz + j + 8 * g, z[g]);
    }
}

// Pass 2 down G strips (as above): deviations from the tile mean; `finite` leaves out the select that drops
// NaN and Inf.
template <bool finite, int G, int kFixed>
__attribute__((always_inline)) inline void stripsTwo(const float* __restrict x, std::int64_t ld, int nr,
                                                     const TileOut t, int j) {
    const V8 zero = splat(0.0f);
    V8 shift[G], d1[G], d2[G];
#pragma GCC unroll 8
    for (int g = 0; g < G; ++g) {
        shift[g] = load8(t.mean + j + 8 * g);
        d1[g] = load8(t.dev + j + 8 * g);
        d2[g] = load8(t.m2 + j + 8 * g);
    }
    const int n = kFixed > 0 ? kFixed : nr;
#pragma GCC unroll 8
    for (int r = 0; r < n; ++r) {
#pragma GCC unroll 8
        for (int g = 0; g < G; ++g) {
            const V8 v = load8(x + r * ld + j + 8 * g);
            const V8 d = finite ? v - shift[g] : select8((v - v) == zero, v - shift[g], zero);
            d1[g] += d;
            d2[g] += d * d;
        }
    }
#pragma GCC unroll 8
    for (int g = 0; g < G; ++g) {
        store8(t.dev + j + 8 * g, d1[g]);
        store8(t.m2 + j + 8 * g, d2[g]);
    }
}

// Strips interleaved per call: pass 1 keeps 5 accumulators per strip, pass 2 three (16 AVX2 registers).
constexpr int kStripsOne = 2, kStripsTwo = 4;

// Pass 1 on a tile believed finite: strips [0, w8). Zeros counted in integer lanes (cz). Returns false when a
// strip's absolute sum is not finite (the tile holds NaN or Inf, or its finite values overflow; |sum| <=
// sumAbs, rounding being monotone): then nothing written here may be used.
__attribute__((always_inline)) inline bool passOneFinite(const float* __restrict x, std::int64_t ld, int rows,
                                                         int w8, const TileOut t, std::int32_t* __restrict cz) {
    const V8 zero = splat(0.0f);
    for (int j = 0; j < w8; j += 8) {
        store8(t.sum + j, zero);
        store8(t.sumAbs + j, zero);
        store8(t.mn + j, splat(INFINITY));
        store8(t.mx + j, splat(-INFINITY));
        storeI(cz + j, I8{});
    }
    for (int r0 = 0; r0 < rows; r0 += kRowBlock) {
        const int nr = std::min(rows, r0 + kRowBlock) - r0;
        const float* xr = x + r0 * ld;
        int j = 0;
        if (nr == kRowBlock) {
            for (; j + 8 * kStripsOne <= w8; j += 8 * kStripsOne)
                stripsOneFinite<kStripsOne, kRowBlock>(xr, ld, nr, t, j, cz);
            for (; j < w8; j += 8)
                stripsOneFinite<1, kRowBlock>(xr, ld, nr, t, j, cz);
        } else {
            for (; j < w8; j += 8)
                stripsOneFinite<1, 0>(xr, ld, nr, t, j, cz);
        }
    }
    I8 bad = I8{};
    for (int j = 0; j < w8; j += 8) {
        const V8 sa = load8(t.sumAbs + j);
        bad |= (sa - sa) != zero;
    }
    for (int k = 0; k < 8; ++k)
        if (bad[k]) return false;
    return true;
}

// Pass 1, general: NaN and +-Inf leave sums, min and max and are counted (cnf: not finite, cnan: NaN).
__attribute__((always_inline)) inline void passOne(const float* __restrict x, std::int64_t ld,
                                                   int rows, int w8, const TileOut t,
                                                   std::int32_t* __restrict cz, std::int32_t* __restrict cnf,
                                                   std::int32_t* __restrict cnan) {
    const V8 zero = splat(0.0f), inf = splat(INFINITY), ninf = splat(-INFINITY);
    const I8 absMask = absMask8();
    for (int j = 0; j < w8; j += 8) {
        store8(t.sum + j, zero);
        store8(t.sumAbs + j, zero);
        store8(t.mn + j, inf);
        store8(t.mx + j, ninf);
        storeI(cz + j, I8{});
        storeI(cnf + j, I8{});
        storeI(cnan + j, I8{});
    }
    for (int r0 = 0; r0 < rows; r0 += kRowBlock) {
        const int r1 = std::min(rows, r0 + kRowBlock);
        for (int j = 0; j < w8; j += 8) {
            V8 s = load8(t.sum + j), sa = load8(t.sumAbs + j), lo = load8(t.mn + j), hi = load8(t.mx + j);
            I8 z = loadI(cz + j), nf = loadI(cnf + j), nn = loadI(cnan + j);
            for (int r = r0; r < r1; ++r) {
                const V8 v = load8(x + r * ld + j);
                const I8 notFinite = (v - v) != zero; // NaN and +-Inf (an unordered compare is "not equal")
                const V8 fv = notFinite ? zero : v;
                s += fv;
                sa += (V8)((I8)fv & absMask);
                const V8 l = notFinite ? inf : v, h = notFinite ? ninf : v;
                lo = l < lo ? l : lo;
                hi = h > hi ? h : hi;
                z -= v == zero;
                nf -= notFinite;
                nn -= v != v;
            }
            store8(t.sum + j, s);
            store8(t.sumAbs + j, sa);
            store8(t.mn + j, lo);
            store8(t.mx + j, hi);
            storeI(cz + j, z);
            storeI(cnf + j, nf);
            storeI(cnan + j, nn);
        }
    }
}

// Counts into floats (at most a tile's rows: exact, as the scalar loop's 1.0f additions are) and the strips'
// tile means (math::tileMean per lane); deviations reset.
__attribute__((always_inline)) inline void tileMeans(int rows, int w8, const TileOut t,
                                                     const std::int32_t* __restrict cz,
                                                     const std::int32_t* __restrict cnf,
                                                     const std::int32_t* __restrict cnan) {
    const V8 zero = splat(0.0f), one = splat(1.0f), fr = splat(static_cast<float>(rows));
    for (int j = 0; j < w8; j += 8) {
        const V8 nz = __builtin_convertvector(loadI(cz + j), V8), nn = __builtin_convertvector(loadI(cnan + j), V8);
        const V8 ni = __builtin_convertvector(loadI(cnf + j) - loadI(cnan + j), V8);
        store8(t.zeros + j, nz);
        store8(t.nans + j, nn);
        store8(t.infs + j, ni);
        const V8 n = fr - nn - ni;
        const I8 any = n > zero;
        store8(t.mean + j, select8(any, load8(t.sum + j) / select8(any, n, one), zero));
        store8(t.dev + j, zero);
        store8(t.m2 + j, zero);
        store8(t.scale + j, splat(1.0f));
    }
}

// Pass 2: sums of deviations from the tile mean and of their squares.
template <bool finite>
__attribute__((always_inline)) inline void passTwo(const float* __restrict x, std::int64_t ld, int rows, int w8,
                                                   const TileOut t) {
    for (int r0 = 0; r0 < rows; r0 += kRowBlock) {
        const int nr = std::min(rows, r0 + kRowBlock) - r0;
        const float* xr = x + r0 * ld;
        int j = 0;
        if (nr == kRowBlock) {
            for (; j + 8 * kStripsTwo <= w8; j += 8 * kStripsTwo)
                stripsTwo<finite, kStripsTwo, kRowBlock>(xr, ld, nr, t, j);
            for (; j < w8; j += 8)
                stripsTwo<finite, 1, kRowBlock>(xr, ld, nr, t, j);
        } else {
            for (; j < w8; j += 8)
                stripsTwo<finite, 1, 0>(xr, ld, nr, t, j);
        }
    }
}

// Neurons [j0, j1) of a swept tile whose finite values overflowed the float sums, summed again scaled
// (math::tileRescueSums; rare: values near FLT_MAX).
__attribute__((always_inline)) inline void rescueOverflowed(const float* __restrict x, std::int64_t ld, int rows,
                                                            int j0, int j1, const TileOut t) {
    for (int j = j0; j < j1; ++j) {
        if (!math::tileOverflowed(t.sumAbs[j])) continue;
        float sum = 0.0f, sumAbs = 0.0f, dev = 0.0f, m2 = 0.0f;
        for (int r = 0; r < rows; ++r)
            math::tileRescueSums(x[r * ld + j], sum, sumAbs);
        const float shift = math::tileMean(static_cast<float>(rows), sum, t.nans[j], t.infs[j]);
        for (int r = 0; r < rows; ++r)
            math::tileRescueDeviation(x[r * ld + j], shift, dev, m2);
        t.sum[j] = sum;
        t.sumAbs[j] = sumAbs;
        t.mean[j] = shift;
        t.dev[j] = dev;
        t.m2[j] = m2;
        t.scale[j] = TS_RESCUE_UNSCALE;
    }
}

// Both sweeps over one tile (see above). `counts`: scratch of 3 * w ints.
TS_CPU_CLONES void sweepTile(const float* __restrict x, std::int64_t ld, int rows, int w,
                             const TileOut t, std::int32_t* __restrict counts) {
    const int w8 = w & ~7;
    std::int32_t* cz = counts;
    std::int32_t* cnf = cz + w8;
    std::int32_t* cnan = cnf + w8;
    if (w8 > 0) {
        if (passOneFinite(x, ld, rows, w8, t, cz)) {
            std::fill_n(cnf, 2 * w8, 0);
            tileMeans(rows, w8, t, cz, cnf, cnan);
            passTwo<true>(x, ld, rows, w8, t);
        } else {
            passOne(x, ld, rows, w8, t, cz, cnf, cnan);
            tileMeans(rows, w8, t, cz, cnf, cnan);
            passTwo<false>(x, ld, rows, w8, t);
            rescueOverflowed(x, ld, rows, 0, w8, t);
        }
    }
    if (w8 == w) return;
    // The last few neurons of a narrow block: the scalar formulas, row by row.
    const float fr = static_cast<float>(rows);
    for (int j = w8; j < w; ++j) {
        t.sum[j] = t.sumAbs[j] = t.zeros[j] = t.nans[j] = t.infs[j] = t.dev[j] = t.m2[j] = 0.0f;
        t.scale[j] = 1.0f;
        t.mn[j] = INFINITY;
        t.mx[j] = -INFINITY;
    }
    for (int r = 0; r < rows; ++r) {
        const float* __restrict row = x + r * ld;
        for (int j = w8; j < w; ++j)
            math::tileAccumulate(row[j], t.sum[j], t.sumAbs[j], t.mn[j], t.mx[j], t.zeros[j], t.nans[j],
                                 t.infs[j]);
    }
    for (int j = w8; j < w; ++j)
        t.mean[j] = math::tileMean(fr, t.sum[j], t.nans[j], t.infs[j]);
    for (int r = 0; r < rows; ++r) {
        const float* __restrict row = x + r * ld;
        for (int j = w8; j < w; ++j)
            math::tileDeviation(row[j], t.mean[j], t.dev[j], t.m2[j]);
    }
    rescueOverflowed(x, ld, rows, w8, w, t);
}

// Per-neuron running state of one block of neurons (SoA); rows are the same for every neuron. The block's
// first tile sets it (addTile with first = true).
struct BlockState {
    std::vector<double> n, mean, m2, sumAbs, zeros, nans, infs;
    std::vector<float> mn, mx;
    explicit BlockState(int w) : n(w), mean(w), m2(w), sumAbs(w), zeros(w), nans(w), infs(w), mn(w), mx(w) {}
    // The block's neurons as one layer partial: a multi-way Chan combination (grand mean first, then
    // M2 = sum M2_j + n_j (mean_j - mean)^2), the same quantity the GPU forms pairwise.
    Run layer(int w, double rows) const {
        Run r;
        math::runningInit(r);
        double s = 0;
        for (int j = 0; j < w; ++j) {
            r.n += n[j];
            s += n[j] * mean[j];
            r.sumAbs += sumAbs[j];
            r.zeros += zeros[j];
            r.nans += nans[j];
            r.infs += infs[j];
            r.min = mn[j] < r.min ? mn[j] : r.min;
            r.max = mx[j] > r.max ? mx[j] : r.max;
        }
        r.mean = r.n > 0 ? s / r.n : 0.0;
        for (int j = 0; j < w; ++j) {
            const double d = mean[j] - r.mean;
            r.m2 += m2[j] + n[j] * d * d;
        }
        r.rows = rows * w;
        return r;
    }
};

// A swept tile into the block's running state (SoA, double), neurons [0, w): vectorises over neurons. `first`:
// the block's first tile, added to the empty state (math::runningInit's values, the same operations) instead
// of to the arrays, which then need no reset.
template <bool first>
__attribute__((always_inline)) inline void addTileImpl(
    int w, float rows, const float* __restrict sumAbs, const float* __restrict mn, const float* __restrict mx,
    const float* __restrict zeros, const float* __restrict nans, const float* __restrict infs,
    const float* __restrict shift, const float* __restrict dev, const float* __restrict m2,
    const float* __restrict scale, double* __restrict rn, double* __restrict rmean, double* __restrict rm2, double* __restrict rsumAbs,
    double* __restrict rzeros, double* __restrict rnans, double* __restrict rinfs, float* __restrict rmn,
    float* __restrict rmx) {
    for (int j = 0; j < w; ++j) {
        double nb, meanb, m2b;
        math::tileMoments(rows, nans[j], infs[j], shift[j], dev[j], m2[j], scale[j], nb, meanb, m2b);
        double n = first ? 0.0 : rn[j], mean = first ? 0.0 : rmean[j], M2 = first ? 0.0 : rm2[j];
        math::chanCombine(n, mean, M2, nb, meanb, m2b);
        rn[j] = n;
        rmean[j] = mean;
        rm2[j] = M2;
        rsumAbs[j] = (first ? 0.0 : rsumAbs[j]) + double(sumAbs[j]) * double(scale[j]);
        rzeros[j] = (first ? 0.0 : rzeros[j]) + zeros[j];
        rnans[j] = (first ? 0.0 : rnans[j]) + nans[j];
        rinfs[j] = (first ? 0.0 : rinfs[j]) + infs[j];
        const float lo = first ? INFINITY : rmn[j], hi = first ? -INFINITY : rmx[j];
        rmn[j] = mn[j] < lo ? mn[j] : lo;
        rmx[j] = mx[j] > hi ? mx[j] : hi;
    }
}
TS_CPU_CLONES void addTile(bool first, int w, float rows, const TileOut t, BlockState& st) {
    if (first)
        addTileImpl<true>(w, rows, t.sumAbs, t.mn, t.mx, t.zeros, t.nans, t.infs, t.mean, t.dev, t.m2, t.scale,
                          st.n.data(), st.mean.data(), st.m2.data(), st.sumAbs.data(), st.zeros.data(),
                          st.nans.data(), st.infs.data(), st.mn.data(), st.mx.data());
    else
        addTileImpl<false>(w, rows, t.sumAbs, t.mn, t.mx, t.zeros, t.nans, t.infs, t.mean, t.dev, t.m2, t.scale,
                           st.n.data(), st.mean.data(), st.m2.data(), st.sumAbs.data(), st.zeros.data(),
                           st.nans.data(), st.infs.data(), st.mn.data(), st.mx.data());
}

// The block's final per-neuron values into the destination (one contiguous run per statistic).
TS_CPU_CLONES void finalizeBlock(int w, double rows, const double* __restrict rn,
                                 const double* __restrict rmean, const double* __restrict rm2,
                                 const double* __restrict rsumAbs, const double* __restrict rzeros,
                                 const double* __restrict rnans, const double* __restrict rinfs,
                                 const float* __restrict rmn, const float* __restrict rmx,
                                 float* __restrict oMean, float* __restrict oMeanAbs, float* __restrict oVar,
                                 float* __restrict oMin, float* __restrict oMax, float* __restrict oZero,
                                 float* __restrict oNan, float* __restrict oInf) {
    for (int j = 0; j < w; ++j)
        math::finalizeValues(rows, rn[j], rmean[j], rm2[j], rsumAbs[j], rzeros[j], rnans[j], rinfs[j], rmn[j],
                             rmx[j], oMean[j], oMeanAbs[j], oVar[j], oMin[j], oMax[j], oZero[j], oNan[j],
                             oInf[j]);
}


// How a value finds its histogram bin quickly. math::histogramBin compares a value with the published edges
// (the rule both backends share); here a vector of 8 values gets g = (x - edges[0]) * scale and floor(g) as
// the bin in a few instructions, which is that rule's answer whenever g is farther from an integer than
// g's own rounding error plus the edges' rounding (`margin`, bounded below). Lanes closer than that to an
// edge, non-finite values, and ranges where the bound is not small (edges far from zero next to narrow bins)
// take the exact comparison instead.
struct BinPlan {
    const float* edges = nullptr;
    int bins = 0;
    float scale = 0, margin = 1; // margin >= 0.25: no fast path
};

BinPlan binPlanOf(const float* edges, int bins, float scale) {
    BinPlan p;
    p.edges = edges;
    p.bins = bins;
    p.scale = scale;
    const double m = std::max(std::fabs(double(edges[0])), std::fabs(double(edges[bins])));
    const double ulp = std::ldexp(1.0, std::ilogb(std::max(m, 1e-30)) - 23); // one float ulp at magnitude m
    // g's error: three float roundings relative to |g| <= bins + 1 (x - e0, the float scale, the product);
    // the edges' position error: half an ulp at the range's magnitude, in bins. Both doubled.
    const double bound = 2.0 * (3.0 * 0x1p-24 * (bins + 2) + 0.5 * ulp * double(scale));
    if (std::isfinite(double(scale)) && scale > 0 && bound < 0.25) p.margin = static_cast<float>(bound + 1e-7);
    return p;
}

// Histogram of a tile: counts has bins + 2 slots (under, the bins, over). Eight private count tables, one
// per vector lane, so neighbouring values in one bin (activations crowd a few bins) do not wait on the same
// counter. (Tried: counting the 8 values as 4 pairs in a (bins + 2)^2 table, half the increments: no faster.)
TS_CPU_CLONES void histogramTile(const float* x, std::int64_t ld, int rows, int w, const BinPlan& plan,
                                 std::uint64_t* counts) {
    const int bins = plan.bins, S = bins + 2;
    constexpr int kMaxLocal = 1026; // bins + 2 for up to 1,024 bins in the private tables
    auto exact = [&](float v) { return math::histogramBin(v, plan.edges, bins, plan.scale); };
    if (S > kMaxLocal || plan.margin >= 0.25f) {
        for (int r = 0; r < rows; ++r) {
            const float* row = x + r * ld;
            for (int j = 0; j < w; ++j) {
                const int b = exact(row[j]);
                if (b >= -1) ++counts[b + 1];
            }
        }
        return;
    }
    // 8 tables of S slots; the exact path's values go to `single`.
    std::vector<std::uint32_t> tables(static_cast<std::size_t>(8 * S), 0u);
    std::vector<std::uint32_t> single(static_cast<std::size_t>(S), 0u);
    std::uint32_t* tab = tables.data();
    const V8 e0 = splat(plan.edges[0]), sc = splat(plan.scale), zero = splat(0.0f);
    const V8 lo = splat(plan.margin), hi = splat(1.0f - plan.margin);
    const V8 under = splat(-1.0f), over = splat(static_cast<float>(bins)), one = splat(1.0f);
    const V8 gmin = splat(-1.5f), gmax = splat(static_cast<float>(bins) + 0.5f);
    const int z = exact(0.0f) + 1;
    const I8 zeroSlot = I8{z, z, z, z, z, z, z, z};
    const I8 laneOffset = I8{0, S, 2 * S, 3 * S, 4 * S, 5 * S, 6 * S, 7 * S}; // lane k counts at k * S
    const int w8 = w & ~7;
    for (int r = 0; r < rows; ++r) {
        const float* row = x + r * ld;
        for (int j = 0; j < w8; j += 8) {
            const V8 v = load8(row + j);
            V8 g = (v - e0) * sc; // clamped so far-away values land mid-bin outside the range (and convert)
            g = g < gmin ? gmin : g;
            g = g > gmax ? gmax : g;
            const I8 t = __builtin_convertvector(g, I8); // truncation; floor below
            const V8 ft = __builtin_convertvector(t, V8);
            const V8 f = select8(ft > g, ft - one, ft);
            const V8 frac = g - f;
            const I8 isZero = v == zero; // exact zeros (a fifth to a half of activations) have their slot
            const I8 slow = ((v - v) != zero) | (((frac < lo) | (frac > hi)) & ~isZero);
            std::uint64_t m[4]; // any lane flagged: the mask's words OR-ed (lane extracts cost more)
            std::memcpy(m, &slow, sizeof m);
            if ((m[0] | m[1] | m[2] | m[3]) != 0) {
                for (int k = 0; k < 8; ++k) {
                    const int b = exact(row[j + k]);
                    if (b >= -1) ++single[b + 1];
                }
                continue;
            }
            V8 bf = f < under ? under : f;
            bf = bf > over ? over : bf;
            const I8 slotV = (__builtin_convertvector(bf + one, I8) & ~isZero) | (zeroSlot & isZero);
            const I8 laneIdx = slotV + laneOffset;
            std::int32_t idx[8];
            std::memcpy(idx, &laneIdx, sizeof idx);
            for (int k = 0; k < 8; ++k)
                ++tab[idx[k]];
        }
        for (int j = w8; j < w; ++j) {
            const int b = exact(row[j]);
            if (b >= -1) ++single[b + 1];
        }
    }
    for (int s = 0; s < S; ++s)
        counts[s] += single[s];
    for (int s = 0; s < S; ++s)
        for (int k = 0; k < 8; ++k)
            counts[s] += tab[k * S + s];
}

struct HistogramPlan {
    int bins = 0;
    std::vector<float> edges;
    float scale = 0;
    BinPlan fast;
    std::vector<std::vector<std::uint64_t>> perWorker; // bins + 2 each

    void init(int b, float lo, float hi, unsigned workers) {
        bins = b;
        edges = histogramEdges(b, lo, hi);
        scale = static_cast<float>(b / (double(edges[b]) - double(edges[0])));
        fast = binPlanOf(edges.data(), b, scale);
        perWorker.assign(workers, std::vector<std::uint64_t>(static_cast<std::size_t>(b) + 2, 0));
    }
    Histogram finish() const {
        Histogram h;
        h.edges = edges;
        h.counts.assign(static_cast<std::size_t>(bins), 0);
        for (const auto& c : perWorker) {
            h.underflow += c[0];
            for (int b = 0; b < bins; ++b)
                h.counts[b] += c[b + 1];
            h.overflow += c[bins + 1];
        }
        return h;
    }
};

} // namespace

CpuReducer::CpuReducer(const CpuReducerDesc& desc) : m_desc(desc) {
    m_desc.tileRows = std::max(1, m_desc.tileRows);
    m_desc.tileCols = std::max(0, m_desc.tileCols);
}

int autoTileCols(std::int64_t n) {
    const std::int64_t w = (n / 16 + 7) / 8 * 8;
    return static_cast<int>(std::clamp<std::int64_t>(w, 256, 4096));
}

std::string CpuReducer::description() const {
    return "CPU statistics backend (" + std::to_string(ThreadPool::global().workerCount()) + " threads)";
}

Expected<LayerStats> CpuReducer::reduce(const TensorView& x, StatsDestination& dest,
                                        const ReduceOptions& options) {
    TS_TRY(validateReduce(x, options));
    if (dest.memory() != MemoryKind::Host)
        return makeError(ErrorKind::Usage,
                         "statistics: the CPU backend writes host memory; this destination is "
                         "device memory (use the CUDA backend or a host-visible buffer)");
    if (x.memory != MemoryKind::Host)
        return makeError(ErrorKind::Usage, std::string("statistics: ") + x.name +
                                               " is in device memory; the CPU backend reads host memory");
    TS_TRY(dest.checkCapacity(x.cols));
    TS_TRY(dest.beginWrite(nullptr));

    ThreadPool& pool = ThreadPool::global();
    const std::int64_t rows = x.rows, n = x.cols, ld = x.ld(), stride = statsStride(n);
    const int tileRows = m_desc.tileRows, tileCols = m_desc.tileCols > 0 ? m_desc.tileCols : autoTileCols(n);
    const std::int64_t blocks = (n + tileCols - 1) / tileCols;
    const float* src = x.floats();
    float* out = dest.data();

    const auto& ho = options.histogram;
    const bool fusedHistogram = ho.bins > 0 && ho.lo.has_value();
    HistogramPlan hist;
    if (fusedHistogram) hist.init(ho.bins, *ho.lo, *ho.hi, pool.workerCount());

    // Each block's top k while its statistics are in cache; merged below (the same result as over all).
    std::vector<std::vector<TopEntry>> blockTop(options.topK > 0 ? static_cast<std::size_t>(blocks) : 0);
    const int topStat = static_cast<int>(options.topKBy);
    std::vector<Run> blockLayer(static_cast<std::size_t>(blocks));

    pool.parallelFor(
        static_cast<std::size_t>(blocks), 1, [&](std::size_t b0, std::size_t b1, unsigned worker) {
            TileArrays t(tileCols);
            const TileOut tileOut{t.sum.data(),   t.sumAbs.data(), t.mn.data(),   t.mx.data(),  t.zeros.data(),
                              t.nans.data(),  t.infs.data(),   t.mean.data(), t.dev.data(), t.m2.data(), t.scale.data()};
            BlockState st(tileCols);
            for (std::size_t b = b0; b < b1; ++b) {
                const std::int64_t j0 = static_cast<std::int64_t>(b) * tileCols;
                const int w = static_cast<int>(std::min<std::int64_t>(tileCols, n - j0));
                for (std::int64_t r0 = 0; r0 < rows; r0 += tileRows) {
                    const int rr = static_cast<int>(std::min<std::int64_t>(tileRows, rows - r0));
                    const float* tile = src + r0 * ld + j0;
                    sweepTile(tile, ld, rr, w, tileOut, t.counts.data());
                    if (fusedHistogram)
                        histogramTile(tile, ld, rr, w, hist.fast, hist.perWorker[worker].data());
                    addTile(r0 == 0, w, static_cast<float>(rr), tileOut, st);
                }
                float* o = out + j0;
                finalizeBlock(w, static_cast<double>(rows), st.n.data(), st.mean.data(), st.m2.data(),
                              st.sumAbs.data(), st.zeros.data(), st.nans.data(), st.infs.data(), st.mn.data(),
                              st.mx.data(), o + TS_STATS_MEAN * stride, o + TS_STATS_MEAN_ABS * stride,
                              o + TS_STATS_VARIANCE * stride, o + TS_STATS_MIN * stride,
                              o + TS_STATS_MAX * stride, o + TS_STATS_ZERO_FRACTION * stride,
                              o + TS_STATS_NAN_COUNT * stride, o + TS_STATS_INF_COUNT * stride);
                if (!blockTop.empty())
                    blockTop[b] = topK(o + topStat * stride, w, options.topK, options.topKLargest, j0);
                const Run layer = st.layer(w, static_cast<double>(rows));
                blockLayer[b] = layer;
            }
        });

    // Blocks combine in index order: the layer result does not depend on the thread count.
    LayerStats ls = layerStatsFromPartials(blockLayer, rows, n);
    const bool any = ls.finiteCount > 0;

    if (ho.bins > 0 && !fusedHistogram) {
        // The range comes from this pass's min/max: a second read of the data.
        hist.init(ho.bins, any ? ls.min : 0.0f, any ? ls.max : 0.0f, pool.workerCount());
        const std::size_t grain = static_cast<std::size_t>(std::max<std::int64_t>(1, 65536 / n));
        pool.parallelFor(static_cast<std::size_t>(rows), grain,
                         [&](std::size_t r0, std::size_t r1, unsigned worker) {
                             histogramTile(src + static_cast<std::int64_t>(r0) * ld, ld,
                                           static_cast<int>(r1 - r0), static_cast<int>(n), hist.fast,
                                           hist.perWorker[worker].data());
                         });
    }
    if (ho.bins > 0) ls.histogram = hist.finish();
    if (options.topK > 0) {
        std::vector<TopEntry> candidates;
        for (const auto& t : blockTop)
            candidates.insert(candidates.end(), t.begin(), t.end());
        ls.top = mergeTopK(std::move(candidates), options.topK, options.topKLargest);
    }

    TS_TRY(dest.endWrite(nullptr));
    return ls;
}

Expected<ClusterStats> CpuReducer::aggregateClusters(const VectorView<float>& values,
                                                     const VectorView<std::int32_t>& cluster,
                                                     std::int32_t clusters) {
    TS_TRY(validateClusters(values, cluster, clusters, MemoryKind::Host));
    for (std::int64_t i = 0; i < cluster.size; ++i) {
        const std::int32_t c = cluster.data[i];
        if (c < -1 || c >= clusters)
            return makeError(ErrorKind::Usage, "clusters: neuron " + std::to_string(i) +
                                                   " has cluster index " + std::to_string(c) +
                                                   " outside [0, " + std::to_string(clusters) +
                                                   ") (-1 leaves a neuron out)");
    }
    ThreadPool& pool = ThreadPool::global();
    struct Acc {
        std::vector<double> sum, finite;
        std::vector<float> maxAbs;
        std::vector<std::uint32_t> count;
    };
    std::vector<Acc> acc(pool.workerCount());
    for (auto& a : acc) {
        a.sum.assign(static_cast<std::size_t>(clusters), 0.0);
        a.finite.assign(static_cast<std::size_t>(clusters), 0.0);
        a.maxAbs.assign(static_cast<std::size_t>(clusters), 0.0f);
        a.count.assign(static_cast<std::size_t>(clusters), 0);
    }
    pool.parallelFor(static_cast<std::size_t>(values.size), 16384,
                     [&](std::size_t b, std::size_t e, unsigned w) {
                         Acc& a = acc[w];
                         for (std::size_t i = b; i < e; ++i) {
                             const std::int32_t c = cluster.data[i];
                             if (c < 0) continue;
                             math::clusterAccumulate(values.data[i], a.sum[c], a.finite[c], a.maxAbs[c]);
                             ++a.count[c];
                         }
                     });
    ClusterStats cs;
    cs.mean.resize(static_cast<std::size_t>(clusters));
    cs.maxAbs.resize(static_cast<std::size_t>(clusters));
    cs.count.resize(static_cast<std::size_t>(clusters));
    for (std::int32_t c = 0; c < clusters; ++c) {
        double sum = 0, finite = 0;
        float maxAbs = 0;
        std::uint32_t count = 0;
        for (const Acc& a : acc) {
            sum += a.sum[c];
            finite += a.finite[c];
            maxAbs = std::max(maxAbs, a.maxAbs[c]);
            count += a.count[c];
        }
        cs.mean[c] = finite > 0 ? static_cast<float>(sum / finite) : NAN;
        cs.maxAbs[c] = finite > 0 ? maxAbs : NAN;
        cs.count[c] = count;
    }
    return cs;
}

namespace {
double sumSquares(const TensorView& x) {
    ThreadPool& pool = ThreadPool::global();
    std::vector<double> part(pool.workerCount(), 0.0);
    const std::int64_t ld = x.ld(), n = x.cols;
    const float* src = x.floats();
    const std::size_t grain = static_cast<std::size_t>(std::max<std::int64_t>(1, 65536 / n));
    pool.parallelFor(static_cast<std::size_t>(x.rows), grain,
                     [&](std::size_t r0, std::size_t r1, unsigned w) {
                         double s = 0;
                         for (std::size_t r = r0; r < r1; ++r) {
                             const float* row = src + static_cast<std::int64_t>(r) * ld;
                             for (std::int64_t j = 0; j < n; ++j)
                                 s += double(row[j]) * double(row[j]);
                         }
                         part[w] += s;
                     });
    double s = 0;
    for (double p : part)
        s += p;
    return s;
}
} // namespace

Expected<double> CpuReducer::normRatio(const TensorView& grad, const TensorView& weight) {
    TS_TRY(validateMatrix(grad, "norm ratio"));
    TS_TRY(validateMatrix(weight, "norm ratio"));
    if (grad.rows != weight.rows || grad.cols != weight.cols)
        return makeError(ErrorKind::Usage, std::string("norm ratio: ") + grad.name + " " +
                                               grad.shapeString() + " and " + weight.name + " " +
                                               weight.shapeString() + " differ in shape");
    if (grad.memory != MemoryKind::Host || weight.memory != MemoryKind::Host)
        return makeError(ErrorKind::Usage, "norm ratio: the CPU backend reads host memory");
    const double g = std::sqrt(sumSquares(grad)), w = std::sqrt(sumSquares(weight));
    if (w == 0) return g == 0 ? 0.0 : INFINITY;
    return g / w;
}

} // namespace ts::stats
