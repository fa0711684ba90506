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
    std::vector<float> sum, sumAbs, mn, mx, zeros, nans, infs, mean, dev, m2;
    explicit TileArrays(int w)
        : sum(w), sumAbs(w), mn(w), mx(w), zeros(w), nans(w), infs(w), mean(w), dev(w), m2(w) {}
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

// Both sweeps over one tile: rows [0, rows) of x (row stride ld), neurons [0, w), one strip of 8 neurons at a
// time with its accumulators in registers: pass 1 (sums, min, max, counts) down the strip, the strip's tile
// means, then pass 2 (deviations) down the same strip while its 2-4 KB are still in L1. `next`: the tile
// that follows (prefetched, spread over the strips), or nullptr.
constexpr int kPrefetchRows = 4;
TS_CPU_CLONES void sweepTile(const float* __restrict x, const float* next, std::int64_t ld, int rows, int w,
                             float* __restrict sum, float* __restrict sumAbs, float* __restrict mn,
                             float* __restrict mx, float* __restrict zeros, float* __restrict nans,
                             float* __restrict infs, float* __restrict mean, float* __restrict dev,
                             float* __restrict m2) {
    const int w8 = w & ~7;
    const int lines = (w + 15) / 16; // 64-byte lines per row of the next tile
    const V8 zero = splat(0.0f), one = splat(1.0f), inf = splat(INFINITY), ninf = splat(-INFINITY);
    const I8 absMask = (I8)splat(0.0f) | I8{0x7fffffff, 0x7fffffff, 0x7fffffff, 0x7fffffff, 0x7fffffff,
                                             0x7fffffff, 0x7fffffff, 0x7fffffff};
    const float fr = static_cast<float>(rows);
    // Row by row (each row of the tile is contiguous; walking a column strip down the rows would put every
    // access in the same L1 set, rows being a power of two apart), accumulators in the block's arrays.
    for (int j = 0; j < w8; j += 8) {
        store8(sum + j, zero);
        store8(sumAbs + j, zero);
        store8(mn + j, inf);
        store8(mx + j, ninf);
    }
    // Zeros, non-finite values and NaNs per neuron, counted in integer lanes (a true comparison lane is -1).
    std::vector<std::int32_t> counts(static_cast<std::size_t>(3 * w8), 0);
    std::int32_t* cz = counts.data();
    std::int32_t* cnf = cz + w8;
    std::int32_t* cnan = cnf + w8;
    const auto loadI = [](const std::int32_t* p) {
        I8 v;
        std::memcpy(&v, p, sizeof v);
        return v;
    };
    const auto storeI = [](std::int32_t* p, I8 v) { std::memcpy(p, &v, sizeof v); };
    // Eight rows at a time: a strip's accumulators stay in registers across them (one load and store per
    // eight values instead of per value), and eight rows a power of two apart still fit L1's eight ways.
    constexpr int kRowBlock = 8;
    for (int r0 = 0; r0 < rows; r0 += kRowBlock) {
        const int r1 = std::min(rows, r0 + kRowBlock);
        for (int r = r0; r < r1; ++r) { // the rows kPrefetchRows ahead (or the next tile's first rows)
            const float* ahead = r + kPrefetchRows < rows ? x + (r + kPrefetchRows) * ld
                                 : next                   ? next + (r + kPrefetchRows - rows) * ld
                                                          : nullptr;
            if (ahead)
                for (int j = 0; j < w; j += 16)
                    __builtin_prefetch(ahead + j, 0, 3);
        }
        for (int j = 0; j < w8; j += 8) {
            V8 s = load8(sum + j), sa = load8(sumAbs + j), lo = load8(mn + j), hi = load8(mx + j);
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
            store8(sum + j, s);
            store8(sumAbs + j, sa);
            store8(mn + j, lo);
            store8(mx + j, hi);
            storeI(cz + j, z);
            storeI(cnf + j, nf);
            storeI(cnan + j, nn);
        }
    }
    for (int j = 0; j < w8; j += 8) {
        // Counts of at most a tile's rows are exact in float, as the scalar loop's 1.0f additions are.
        const V8 nz = __builtin_convertvector(loadI(cz + j), V8), nn = __builtin_convertvector(loadI(cnan + j), V8);
        const V8 ni = __builtin_convertvector(loadI(cnf + j) - loadI(cnan + j), V8);
        store8(zeros + j, nz);
        store8(nans + j, nn);
        store8(infs + j, ni);
        const V8 n = splat(fr) - nn - ni;
        const I8 any = n > zero;
        store8(mean + j, select8(any, load8(sum + j) / select8(any, n, one), zero));
        store8(dev + j, zero);
        store8(m2 + j, zero);
    }
    for (int r0 = 0; r0 < rows; r0 += kRowBlock) {
        const int r1 = std::min(rows, r0 + kRowBlock);
        for (int j = 0; j < w8; j += 8) {
            const V8 shift = load8(mean + j);
            V8 d1 = load8(dev + j), d2 = load8(m2 + j);
            for (int r = r0; r < r1; ++r) {
                const V8 v = load8(x + r * ld + j);
                const V8 d = select8((v - v) == zero, v - shift, zero);
                d1 += d;
                d2 += d * d;
            }
            store8(dev + j, d1);
            store8(m2 + j, d2);
        }
    }
    if (w8 == w) return;
    // The last few neurons of a narrow block: the scalar formulas, row by row.
    for (int j = w8; j < w; ++j) {
        sum[j] = sumAbs[j] = zeros[j] = nans[j] = infs[j] = dev[j] = m2[j] = 0.0f;
        mn[j] = INFINITY;
        mx[j] = -INFINITY;
    }
    for (int r = 0; r < rows; ++r) {
        const float* __restrict row = x + r * ld;
        for (int j = w8; j < w; ++j)
            math::tileAccumulate(row[j], sum[j], sumAbs[j], mn[j], mx[j], zeros[j], nans[j], infs[j]);
    }
    for (int j = w8; j < w; ++j)
        mean[j] = math::tileMean(fr, sum[j], nans[j], infs[j]);
    for (int r = 0; r < rows; ++r) {
        const float* __restrict row = x + r * ld;
        for (int j = w8; j < w; ++j)
            math::tileDeviation(row[j], mean[j], dev[j], m2[j]);
    }
}

// A swept tile into the block's running state (SoA, double), neurons [0, w): vectorises over neurons.
TS_CPU_CLONES void addTile(int w, float rows, const float* __restrict sumAbs, const float* __restrict mn,
                           const float* __restrict mx, const float* __restrict zeros,
                           const float* __restrict nans, const float* __restrict infs,
                           const float* __restrict shift, const float* __restrict dev,
                           const float* __restrict m2, double* __restrict rn, double* __restrict rmean,
                           double* __restrict rm2, double* __restrict rsumAbs, double* __restrict rzeros,
                           double* __restrict rnans, double* __restrict rinfs, float* __restrict rmn,
                           float* __restrict rmx) {
    for (int j = 0; j < w; ++j) {
        double nb, meanb, m2b;
        math::tileMoments(rows, nans[j], infs[j], shift[j], dev[j], m2[j], nb, meanb, m2b);
        math::chanCombine(rn[j], rmean[j], rm2[j], nb, meanb, m2b);
        rsumAbs[j] += sumAbs[j];
        rzeros[j] += zeros[j];
        rnans[j] += nans[j];
        rinfs[j] += infs[j];
        rmn[j] = mn[j] < rmn[j] ? mn[j] : rmn[j];
        rmx[j] = mx[j] > rmx[j] ? mx[j] : rmx[j];
    }
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

// Per-neuron running state of one block of neurons (SoA); rows are the same for every neuron.
struct BlockState {
    std::vector<double> n, mean, m2, sumAbs, zeros, nans, infs;
    std::vector<float> mn, mx;
    explicit BlockState(int w) : n(w), mean(w), m2(w), sumAbs(w), zeros(w), nans(w), infs(w), mn(w), mx(w) {}
    void reset(int w) {
        std::fill_n(n.begin(), w, 0.0);
        std::fill_n(mean.begin(), w, 0.0);
        std::fill_n(m2.begin(), w, 0.0);
        std::fill_n(sumAbs.begin(), w, 0.0);
        std::fill_n(zeros.begin(), w, 0.0);
        std::fill_n(nans.begin(), w, 0.0);
        std::fill_n(infs.begin(), w, 0.0);
        std::fill_n(mn.begin(), w, INFINITY);
        std::fill_n(mx.begin(), w, -INFINITY);
    }
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

// Histogram of a tile (scalar: a scatter does not vectorise); counts has bins + 2 slots: under, bins, over.
// Four neighbouring values go to four private count arrays, so a run of values in one bin (the common case:
// activations crowd a few bins) does not chain every increment through the same memory word.
TS_CPU_CLONES void histogramTile(const float* x, std::int64_t ld, int rows, int w, const float* edges, int bins,
                                 float scale, std::uint64_t* counts) {
    constexpr int kMaxLocal = 1026; // bins + 2 for up to 1,024 bins kept in four local arrays
    if (bins + 2 > kMaxLocal) {
        for (int r = 0; r < rows; ++r) {
            const float* row = x + r * ld;
            for (int j = 0; j < w; ++j) {
                const int b = math::histogramBin(row[j], edges, bins, scale);
                if (b >= -1) ++counts[b + 1];
            }
        }
        return;
    }
    std::uint32_t local[4][kMaxLocal];
    for (auto& l : local)
        std::fill_n(l, bins + 2, 0u);
    // A value's slot: -2 (NaN/Inf) goes to slot 0 of a fifth, discarded, row of `sink`.
    std::uint32_t sink[4] = {};
    for (int r = 0; r < rows; ++r) {
        const float* row = x + r * ld;
        int j = 0;
        for (; j + 4 <= w; j += 4) {
            const int b0 = math::histogramBin(row[j], edges, bins, scale);
            const int b1 = math::histogramBin(row[j + 1], edges, bins, scale);
            const int b2 = math::histogramBin(row[j + 2], edges, bins, scale);
            const int b3 = math::histogramBin(row[j + 3], edges, bins, scale);
            ++(b0 >= -1 ? local[0][b0 + 1] : sink[0]);
            ++(b1 >= -1 ? local[1][b1 + 1] : sink[1]);
            ++(b2 >= -1 ? local[2][b2 + 1] : sink[2]);
            ++(b3 >= -1 ? local[3][b3 + 1] : sink[3]);
        }
        for (; j < w; ++j) {
            const int b = math::histogramBin(row[j], edges, bins, scale);
            if (b >= -1) ++local[0][b + 1];
        }
    }
    for (int k = 0; k < bins + 2; ++k)
        counts[k] += std::uint64_t(local[0][k]) + local[1][k] + local[2][k] + local[3][k];
}

struct HistogramPlan {
    int bins = 0;
    std::vector<float> edges;
    float scale = 0;
    std::vector<std::vector<std::uint64_t>> perWorker; // bins + 2 each

    void init(int b, float lo, float hi, unsigned workers) {
        bins = b;
        edges = histogramEdges(b, lo, hi);
        scale = static_cast<float>(b / (double(edges[b]) - double(edges[0])));
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
    m_desc.tileCols = std::max(1, m_desc.tileCols);
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
    const int tileRows = m_desc.tileRows, tileCols = m_desc.tileCols;
    const std::int64_t blocks = (n + tileCols - 1) / tileCols;
    const float* src = x.floats();
    float* out = dest.data();

    const auto& ho = options.histogram;
    const bool fusedHistogram = ho.bins > 0 && ho.lo.has_value();
    HistogramPlan hist;
    if (fusedHistogram) hist.init(ho.bins, *ho.lo, *ho.hi, pool.workerCount());

    std::vector<float> topValues(options.topK > 0 ? static_cast<std::size_t>(n) : 0);
    const int topStat = static_cast<int>(options.topKBy);
    std::vector<Run> blockLayer(static_cast<std::size_t>(blocks));

    pool.parallelFor(
        static_cast<std::size_t>(blocks), 1, [&](std::size_t b0, std::size_t b1, unsigned worker) {
            TileArrays t(tileCols);
            BlockState st(tileCols);
            for (std::size_t b = b0; b < b1; ++b) {
                const std::int64_t j0 = static_cast<std::int64_t>(b) * tileCols;
                const int w = static_cast<int>(std::min<std::int64_t>(tileCols, n - j0));
                st.reset(w);
                for (std::int64_t r0 = 0; r0 < rows; r0 += tileRows) {
                    const int rr = static_cast<int>(std::min<std::int64_t>(tileRows, rows - r0));
                    const float* tile = src + r0 * ld + j0;
                    const float* next = r0 + tileRows < rows                    ? tile + tileRows * ld
                                        : (b + 1 < b1 && rows >= kPrefetchRows) ? src + j0 + tileCols
                                                                                : nullptr;
                    sweepTile(tile, next, ld, rr, w, t.sum.data(), t.sumAbs.data(), t.mn.data(), t.mx.data(),
                              t.zeros.data(), t.nans.data(), t.infs.data(), t.mean.data(), t.dev.data(),
                              t.m2.data());
                    if (fusedHistogram)
                        histogramTile(tile, ld, rr, w, hist.edges.data(), hist.bins, hist.scale,
                                      hist.perWorker[worker].data());
                    addTile(w, static_cast<float>(rr), t.sumAbs.data(), t.mn.data(), t.mx.data(),
                            t.zeros.data(), t.nans.data(), t.infs.data(), t.mean.data(), t.dev.data(),
                            t.m2.data(), st.n.data(), st.mean.data(), st.m2.data(), st.sumAbs.data(),
                            st.zeros.data(), st.nans.data(), st.infs.data(), st.mn.data(), st.mx.data());
                }
                float* o = out + j0;
                finalizeBlock(w, static_cast<double>(rows), st.n.data(), st.mean.data(), st.m2.data(),
                              st.sumAbs.data(), st.zeros.data(), st.nans.data(), st.infs.data(), st.mn.data(),
                              st.mx.data(), o + TS_STATS_MEAN * stride, o + TS_STATS_MEAN_ABS * stride,
                              o + TS_STATS_VARIANCE * stride, o + TS_STATS_MIN * stride,
                              o + TS_STATS_MAX * stride, o + TS_STATS_ZERO_FRACTION * stride,
                              o + TS_STATS_NAN_COUNT * stride, o + TS_STATS_INF_COUNT * stride);
                if (!topValues.empty()) std::copy_n(o + topStat * stride, w, topValues.data() + j0);
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
                                           static_cast<int>(r1 - r0), static_cast<int>(n), hist.edges.data(),
                                           hist.bins, hist.scale, hist.perWorker[worker].data());
                         });
    }
    if (ho.bins > 0) ls.histogram = hist.finish();
    if (options.topK > 0) ls.top = topK(topValues.data(), n, options.topK, options.topKLargest);

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
