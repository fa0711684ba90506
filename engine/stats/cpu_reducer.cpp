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

// Both sweeps over one tile: rows [0, rows) of x (row stride ld), neurons [0, w). `next`: the tile that
// follows (prefetched), or nullptr.
constexpr int kPrefetchRows = 4;
TS_CPU_CLONES void sweepTile(const float* __restrict x, const float* next, std::int64_t ld, int rows, int w,
                             float* __restrict sum, float* __restrict sumAbs, float* __restrict mn,
                             float* __restrict mx, float* __restrict zeros, float* __restrict nans,
                             float* __restrict infs, float* __restrict mean, float* __restrict dev,
                             float* __restrict m2) {
    for (int j = 0; j < w; ++j) {
        sum[j] = sumAbs[j] = zeros[j] = nans[j] = infs[j] = dev[j] = m2[j] = 0.0f;
        mn[j] = INFINITY;
        mx[j] = -INFINITY;
    }
    for (int r = 0; r < rows; ++r) {
        const float* __restrict row = x + r * ld;
        // Each row of a tile is a separate DRAM page the hardware prefetcher has to re-learn: ask for the row
        // kPrefetchRows ahead (the next tile's first rows near the end) so the misses overlap.
        const float* ahead = r + kPrefetchRows < rows ? row + kPrefetchRows * ld
                             : next                   ? next + (r + kPrefetchRows - rows) * ld
                                                      : nullptr;
        if (ahead)
            for (int j = 0; j < w; j += 16)
                __builtin_prefetch(ahead + j, 0, 3);
        for (int j = 0; j < w; ++j)
            math::tileAccumulate(row[j], sum[j], sumAbs[j], mn[j], mx[j], zeros[j], nans[j], infs[j]);
    }
    const float fr = static_cast<float>(rows);
    for (int j = 0; j < w; ++j)
        mean[j] = math::tileMean(fr, sum[j], nans[j], infs[j]);
    for (int r = 0; r < rows; ++r) {
        const float* __restrict row = x + r * ld;
        for (int j = 0; j < w; ++j)
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
void histogramTile(const float* x, std::int64_t ld, int rows, int w, const float* edges, int bins,
                   float scale, std::uint64_t* counts) {
    for (int r = 0; r < rows; ++r) {
        const float* row = x + r * ld;
        for (int j = 0; j < w; ++j) {
            int b = math::histogramBin(row[j], edges, bins, scale);
            if (b >= -1) ++counts[b + 1];
        }
    }
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
