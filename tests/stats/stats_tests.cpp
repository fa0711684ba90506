// Statistics CPU backend: every statistic against a float64 reference on seeded data (1..1M neurons, batches
// 1..512, several tilings), planted NaN/Inf, histogram edges and totals, top-k, LOD clusters, norm ratio,
// bad input, and the backend selector's single log line.
#include <gtest/gtest.h>

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <numeric>
#include <random>
#include <sstream>

#include "engine/core/thread_pool.hpp"
#include "engine/stats/cpu_reducer.hpp"
#include "engine/stats/reduce_math.hpp"
#include "engine/stats/reducer.hpp"
#include "kernels/device_choice.hpp"
#include "tests/stats/stats_test_util.hpp"

using namespace ts;
using namespace ts::stats;
using ts::stats::testing::makeData;
using ts::stats::testing::reference;
using ts::stats::testing::RefNeuron;

namespace {

// Tolerances: float tiles combined in double; relative to the neuron's scale (|mean| + std).
void expectMatches(const NeuronStats& got, const std::vector<RefNeuron>& ref, const std::string& where) {
    ASSERT_EQ(got.neurons, static_cast<std::int64_t>(ref.size())) << where;
    for (std::size_t j = 0; j < ref.size() && !::testing::Test::HasFailure(); ++j) {
        const RefNeuron& r = ref[j];
        const auto at = [&](Statistic s) {
            return static_cast<double>(got.at(s, static_cast<std::int64_t>(j)));
        };
        std::ostringstream ctx;
        ctx << where << " neuron " << j;
        EXPECT_EQ(at(Statistic::NanCount), r.nans) << ctx.str();
        EXPECT_EQ(at(Statistic::InfCount), r.infs) << ctx.str();
        EXPECT_NEAR(at(Statistic::ZeroFraction), r.zeroFraction, 1e-7) << ctx.str();
        if (r.n == 0) {
            for (Statistic s :
                 {Statistic::Mean, Statistic::MeanAbs, Statistic::Variance, Statistic::Min, Statistic::Max})
                EXPECT_TRUE(std::isnan(at(s))) << ctx.str() << " " << statisticName(s);
        } else {
            const double scale = std::fabs(r.mean) + std::sqrt(r.var) + 1e-30;
            EXPECT_NEAR(at(Statistic::Mean), r.mean, 2e-6 * scale) << ctx.str();
            EXPECT_NEAR(at(Statistic::MeanAbs), r.meanAbs, 2e-6 * (r.meanAbs + 1e-30)) << ctx.str();
            EXPECT_NEAR(at(Statistic::Variance), r.var, 1e-5 * scale * scale) << ctx.str();
            EXPECT_EQ(at(Statistic::Min), r.min) << ctx.str();
            EXPECT_EQ(at(Statistic::Max), r.max) << ctx.str();
        }
    }
}

struct Tiling {
    int rows, cols;
};

} // namespace

// Sizes 1, tile-1, tile, tile+1 (warp 32) and odd; batches from 1 to 512; default and small tiles so many
// tiles and partial tiles combine.
TEST(CpuReducer, EveryStatisticMatchesFloat64Reference) {
    const std::int64_t neuronSizes[] = {1, 31, 32, 33, 1000};
    const std::int64_t batches[] = {1, 2, 7, 31, 64, 65, 200, 512};
    const Tiling tilings[] = {{64, 1024}, {7, 5}, {32, 32}};
    std::uint32_t seed = 1;
    for (const Tiling& tiling : tilings) {
        CpuReducer reducer({tiling.rows, tiling.cols});
        for (std::int64_t n : neuronSizes)
            for (std::int64_t b : batches) {
                auto x = makeData(b, n, seed++);
                NeuronStats got;
                auto layer = reducer.reduce(TensorView::matrix(x.data(), b, n), got);
                ASSERT_TRUE(layer) << layer.error().message;
                std::ostringstream where;
                where << "[" << b << " x " << n << "] tile " << tiling.rows << "x" << tiling.cols;
                expectMatches(got, reference(x.data(), b, n, n), where.str());
            }
    }
}

TEST(CpuReducer, MillionNeurons) {
    const std::int64_t n = 1 << 20;
    CpuReducer reducer;
    for (std::int64_t b : {1, 5}) {
        auto x = makeData(b, n, 77 + static_cast<std::uint32_t>(b));
        NeuronStats got;
        auto layer = reducer.reduce(TensorView::matrix(x.data(), b, n), got);
        ASSERT_TRUE(layer) << layer.error().message;
        expectMatches(got, reference(x.data(), b, n, n), std::to_string(b) + " x 1M");
    }
}

// A padded row stride (a column slice of a wider matrix) is read correctly and padding is ignored.
TEST(CpuReducer, PaddedRowStride) {
    const std::int64_t b = 40, n = 33, ld = 50;
    auto wide = makeData(b, ld, 5);
    for (std::int64_t r = 0; r < b; ++r)
        for (std::int64_t j = n; j < ld; ++j)
            wide[r * ld + j] = NAN; // must never be read
    TensorView v = TensorView::matrix(wide.data(), b, n, "sliced");
    v.rowStride = ld;
    NeuronStats got;
    CpuReducer reducer({8, 16});
    ASSERT_TRUE(reducer.reduce(v, got));
    expectMatches(got, reference(wide.data(), b, n, ld), "padded");
}

// Large offset, tiny spread over 512 rows: a one-pass float sum of squares would lose every digit.
TEST(CpuReducer, VarianceIsStableForLargeOffsets) {
    const std::int64_t b = 512, n = 3;
    std::mt19937 rng(11);
    std::normal_distribution<float> nd(0.0f, 1.0f);
    std::vector<float> x(b * n);
    for (std::int64_t r = 0; r < b; ++r)
        for (std::int64_t j = 0; j < n; ++j)
            x[r * n + j] = 1e4f + 0.01f * static_cast<float>(j + 1) * nd(rng);
    NeuronStats got;
    ASSERT_TRUE(CpuReducer().reduce(TensorView::matrix(x.data(), b, n), got));
    auto ref = reference(x.data(), b, n, n);
    for (std::int64_t j = 0; j < n; ++j)
        EXPECT_NEAR(got.at(Statistic::Variance, j), ref[j].var, 1e-3 * ref[j].var);
}

TEST(CpuReducer, PlantedNanAndInfAreCountedAndExcluded) {
    const std::int64_t b = 300, n = 70;
    auto x = makeData(b, n, 21);
    std::vector<int> nanPlanted(n, 0), infPlanted(n, 0);
    std::mt19937 rng(3);
    for (int k = 0; k < 400; ++k) {
        std::int64_t r = rng() % b, j = rng() % (n - 1); // the last neuron is handled below
        float& v = x[r * n + j];
        if (std::isnan(v) || std::isinf(v)) continue;
        switch (k % 3) {
        case 0:
            v = NAN, ++nanPlanted[j];
            break;
        case 1:
            v = INFINITY, ++infPlanted[j];
            break;
        default:
            v = -INFINITY, ++infPlanted[j];
            break;
        }
    }
    for (std::int64_t r = 0; r < b; ++r)
        x[r * n + (n - 1)] = (r % 2) ? NAN : INFINITY; // no finite value
    NeuronStats got;
    auto layer = CpuReducer({16, 8}).reduce(TensorView::matrix(x.data(), b, n), got);
    ASSERT_TRUE(layer);
    for (std::int64_t j = 0; j < n - 1; ++j) {
        EXPECT_EQ(got.at(Statistic::NanCount, j), nanPlanted[j]) << j;
        EXPECT_EQ(got.at(Statistic::InfCount, j), infPlanted[j]) << j;
    }
    EXPECT_EQ(got.at(Statistic::NanCount, n - 1), b / 2);
    EXPECT_EQ(got.at(Statistic::InfCount, n - 1), b - b / 2);
    expectMatches(got, reference(x.data(), b, n, n), "planted");
    const std::uint64_t totalNan = std::accumulate(nanPlanted.begin(), nanPlanted.end(), 0) + b / 2;
    const std::uint64_t totalInf = std::accumulate(infPlanted.begin(), infPlanted.end(), 0) + (b - b / 2);
    EXPECT_EQ(layer->nanCount, totalNan);
    EXPECT_EQ(layer->infCount, totalInf);
    EXPECT_EQ(layer->finiteCount + totalNan + totalInf, static_cast<std::uint64_t>(b * n));
    EXPECT_TRUE(std::isfinite(layer->mean) && std::isfinite(layer->l2Norm));
}

TEST(CpuReducer, LayerStatisticsMatchFloat64) {
    const std::int64_t b = 97, n = 1234;
    auto x = makeData(b, n, 8);
    x[5] = NAN;
    x[77] = -INFINITY;
    NeuronStats got;
    auto layer = CpuReducer({32, 100}).reduce(TensorView::matrix(x.data(), b, n), got);
    ASSERT_TRUE(layer);
    double sum = 0, sq = 0, cnt = 0, zeros = 0, mn = INFINITY, mx = -INFINITY;
    for (float v : x) {
        if (!std::isfinite(v)) continue;
        sum += v, sq += double(v) * v, ++cnt, zeros += v == 0;
        mn = std::min<double>(mn, v), mx = std::max<double>(mx, v);
    }
    const double mean = sum / cnt;
    double m2 = 0;
    for (float v : x)
        if (std::isfinite(v)) m2 += (v - mean) * (v - mean);
    EXPECT_EQ(layer->finiteCount, static_cast<std::uint64_t>(cnt));
    EXPECT_EQ(layer->zeroCount, static_cast<std::uint64_t>(zeros));
    EXPECT_NEAR(layer->mean, mean, 1e-9 * std::sqrt(m2 / cnt));
    EXPECT_NEAR(layer->std, std::sqrt(m2 / cnt), 1e-9 * std::sqrt(m2 / cnt));
    EXPECT_NEAR(layer->l2Norm, std::sqrt(sq), 1e-9 * std::sqrt(sq));
    EXPECT_EQ(layer->min, mn);
    EXPECT_EQ(layer->max, mx);
    EXPECT_EQ(layer->batch, b);
    EXPECT_EQ(layer->neurons, n);
}

// Known values: 0, 0.25, ..., 2.0 over [0, 2] in 4 bins; 2.0 lands in the last bin; -1 and 3 outside.
TEST(CpuReducer, HistogramKnownValues) {
    std::vector<float> x = {0.0f, 0.25f, 0.5f, 0.75f, 1.0f, 1.25f, 1.5f, 1.75f, 2.0f, -1.0f, 3.0f, NAN};
    ReduceOptions o;
    o.histogram.bins = 4;
    o.histogram.lo = 0.0f;
    o.histogram.hi = 2.0f;
    NeuronStats got;
    auto layer =
        CpuReducer().reduce(TensorView::matrix(x.data(), 1, static_cast<std::int64_t>(x.size())), got, o);
    ASSERT_TRUE(layer);
    const Histogram& h = layer->histogram;
    EXPECT_EQ(h.edges, (std::vector<float>{0.0f, 0.5f, 1.0f, 1.5f, 2.0f}));
    EXPECT_EQ(h.counts, (std::vector<std::uint64_t>{2, 2, 2, 3}));
    EXPECT_EQ(h.underflow, 1u);
    EXPECT_EQ(h.overflow, 1u);
    EXPECT_EQ(h.total(), 11u); // NaN is counted in nanCount only
}

// Seeded data: edges are lo + i (hi - lo) / bins, counts agree with an independent binary search over the
// published edges, totals equal the finite count; fused (given range) and two-pass (auto range) paths agree
// with each other and across tilings.
TEST(CpuReducer, HistogramEdgesAndTotals) {
    const std::int64_t b = 129, n = 517;
    auto x = makeData(b, n, 99);
    x[3] = NAN;
    x[10] = INFINITY;
    for (bool givenRange : {true, false}) {
        ReduceOptions o;
        o.histogram.bins = 37;
        if (givenRange) o.histogram.lo = -2.5f, o.histogram.hi = 3.0f;
        for (Tiling t : {Tiling{64, 1024}, Tiling{5, 13}}) {
            NeuronStats got;
            auto layer = CpuReducer({t.rows, t.cols}).reduce(TensorView::matrix(x.data(), b, n), got, o);
            ASSERT_TRUE(layer);
            const Histogram& h = layer->histogram;
            ASSERT_EQ(h.edges.size(), 38u);
            const double lo = givenRange ? -2.5 : layer->min, hi = givenRange ? 3.0 : layer->max;
            for (int i = 0; i <= 37; ++i)
                EXPECT_NEAR(h.edges[i], lo + (hi - lo) * i / 37.0, 1e-6 * (std::fabs(hi) + std::fabs(lo)))
                    << i;
            EXPECT_EQ(h.edges.front(), static_cast<float>(lo));
            EXPECT_EQ(h.edges.back(), static_cast<float>(hi));
            std::vector<std::uint64_t> ref(37, 0);
            std::uint64_t under = 0, over = 0;
            for (float v : x) {
                if (!std::isfinite(v)) continue;
                if (v < h.edges.front())
                    ++under;
                else if (v > h.edges.back())
                    ++over;
                else {
                    auto it = std::upper_bound(h.edges.begin(), h.edges.end(), v);
                    ref[std::min<std::ptrdiff_t>(it - h.edges.begin() - 1, 36)]++;
                }
            }
            EXPECT_EQ(h.counts, ref);
            EXPECT_EQ(h.underflow, under);
            EXPECT_EQ(h.overflow, over);
            EXPECT_EQ(h.total(), layer->finiteCount);
            if (!givenRange) {
                EXPECT_EQ(under + over, 0u);
            }
        }
    }
}

TEST(CpuReducer, HistogramOfConstantDataWidensRange) {
    std::vector<float> x(20, 1.5f);
    ReduceOptions o;
    o.histogram.bins = 2;
    NeuronStats got;
    auto layer = CpuReducer().reduce(TensorView::matrix(x.data(), 4, 5), got, o);
    ASSERT_TRUE(layer);
    EXPECT_EQ(layer->histogram.edges, (std::vector<float>{1.0f, 1.5f, 2.0f}));
    EXPECT_EQ(layer->histogram.counts, (std::vector<std::uint64_t>{0, 20}));
}

TEST(CpuReducer, TopKByChosenStatistic) {
    const std::int64_t b = 50, n = 2000;
    auto x = makeData(b, n, 4);
    for (std::int64_t r = 0; r < b; ++r) {
        x[r * n + 1234] = 100.0f + static_cast<float>(r); // the largest mean|x|
        for (std::int64_t j = 5; j < n; j += 97) // ties across blocks: equal statistics, ranked by index
            x[r * n + j] = j < 1000 ? 0.5f : -3.0f;
    }
    for (Statistic s : {Statistic::MeanAbs, Statistic::Variance, Statistic::Min, Statistic::Max}) {
        for (bool largest : {true, false}) {
            ReduceOptions o;
            o.topK = 10;
            o.topKBy = s;
            o.topKLargest = largest;
            NeuronStats got;
            auto layer = CpuReducer({16, 300}).reduce(TensorView::matrix(x.data(), b, n), got, o);
            ASSERT_TRUE(layer);
            ASSERT_EQ(layer->top.size(), 10u);
            std::vector<std::int64_t> idx(n);
            std::iota(idx.begin(), idx.end(), 0);
            const float* v = got.stat(s);
            std::stable_sort(idx.begin(), idx.end(),
                             [&](auto a, auto c) { return largest ? v[a] > v[c] : v[a] < v[c]; });
            for (int i = 0; i < 10; ++i) {
                EXPECT_EQ(layer->top[i].neuron, idx[i]) << statisticName(s) << " rank " << i;
                EXPECT_EQ(layer->top[i].value, v[idx[i]]);
            }
            if (s == Statistic::MeanAbs && largest) {
                EXPECT_EQ(layer->top[0].neuron, 1234);
            }
        }
    }
    // k larger than the neuron count returns every neuron; NaN values are never ranked.
    std::vector<float> small = {1.0f, NAN, 3.0f};
    ReduceOptions o;
    o.topK = 10;
    o.topKBy = Statistic::Mean;
    NeuronStats got;
    auto layer = CpuReducer().reduce(TensorView::matrix(small.data(), 1, 3), got, o);
    ASSERT_TRUE(layer);
    ASSERT_EQ(layer->top.size(), 2u);
    EXPECT_EQ(layer->top[0].neuron, 2);
    EXPECT_EQ(layer->top[1].neuron, 0);
}

TEST(CpuReducer, ClusterAggregationMatchesFloat64) {
    const std::int64_t n = 100003;
    const std::int32_t clusters = 517;
    std::mt19937 rng(17);
    std::normal_distribution<float> nd(0.5f, 2.0f);
    std::vector<float> values(n);
    std::vector<std::int32_t> cluster(n);
    for (std::int64_t i = 0; i < n; ++i) {
        values[i] = nd(rng);
        cluster[i] = static_cast<std::int32_t>(rng() % (clusters - 1)) - (i % 97 == 0 ? 10000 : 0);
        if (cluster[i] < 0) cluster[i] = -1; // left out
    }
    values[42] = NAN;
    // The last cluster holds only non-finite values.
    cluster[7] = clusters - 1, values[7] = INFINITY;
    auto cs = CpuReducer().aggregateClusters({values.data(), n}, {cluster.data(), n}, clusters);
    ASSERT_TRUE(cs) << cs.error().message;
    std::vector<double> sum(clusters, 0), fin(clusters, 0), mx(clusters, 0);
    std::vector<std::uint32_t> count(clusters, 0);
    for (std::int64_t i = 0; i < n; ++i) {
        std::int32_t c = cluster[i];
        if (c < 0) continue;
        ++count[c];
        if (!std::isfinite(values[i])) continue;
        sum[c] += values[i], fin[c] += 1, mx[c] = std::max<double>(mx[c], std::fabs(values[i]));
    }
    for (std::int32_t c = 0; c < clusters - 1; ++c) {
        EXPECT_EQ(cs->count[c], count[c]) << c;
        EXPECT_NEAR(cs->mean[c], sum[c] / fin[c], 1e-6 * (std::fabs(sum[c] / fin[c]) + 1)) << c;
        EXPECT_EQ(cs->maxAbs[c], mx[c]) << c;
    }
    EXPECT_EQ(cs->count[clusters - 1], 1u);
    EXPECT_TRUE(std::isnan(cs->mean[clusters - 1]));
    EXPECT_TRUE(std::isnan(cs->maxAbs[clusters - 1]));
}

TEST(CpuReducer, NormRatio) {
    auto g = makeData(30, 40, 1, 0.0f), w = makeData(30, 40, 2, 0.0f);
    double gs = 0, ws = 0;
    for (std::size_t i = 0; i < g.size(); ++i)
        gs += double(g[i]) * g[i], ws += double(w[i]) * w[i];
    CpuReducer r;
    auto ratio =
        r.normRatio(TensorView::matrix(g.data(), 30, 40, "grad"), TensorView::matrix(w.data(), 30, 40));
    ASSERT_TRUE(ratio);
    EXPECT_NEAR(*ratio, std::sqrt(gs / ws), 1e-12 * std::sqrt(gs / ws));
    std::vector<float> zeros(1200, 0.0f);
    auto inf = r.normRatio(TensorView::matrix(g.data(), 30, 40), TensorView::matrix(zeros.data(), 30, 40));
    ASSERT_TRUE(inf);
    EXPECT_TRUE(std::isinf(*inf));
    g[3] = NAN; // an exploding step shows
    auto nan = r.normRatio(TensorView::matrix(g.data(), 30, 40), TensorView::matrix(w.data(), 30, 40));
    ASSERT_TRUE(nan);
    EXPECT_TRUE(std::isnan(*nan));
}

TEST(CpuReducer, ResultsDoNotDependOnThreadsOrTiling) {
    const std::int64_t b = 100, n = 3000;
    auto x = makeData(b, n, 31);
    const auto view = TensorView::matrix(x.data(), b, n);
    NeuronStats pooled, serial;
    auto lp = CpuReducer({64, 1024}).reduce(view, pooled);
    // The same reduction from inside a task of another pool: the global pool then runs it on this one thread.
    Expected<LayerStats> ls = makeError(ErrorKind::Failed, "not run");
    ThreadPool outer(2);
    outer.parallelFor(2, 1, [&](std::size_t begin, std::size_t, unsigned) {
        if (begin == 0) ls = CpuReducer({64, 1024}).reduce(view, serial);
    });
    ASSERT_TRUE(lp && ls) << ls.error().message;
    EXPECT_EQ(pooled.data, serial.data); // same tiling: bit-identical whether 1 or 2 threads ran the blocks
    EXPECT_EQ(lp->mean, ls->mean);
    EXPECT_EQ(lp->l2Norm, ls->l2Norm);
    // Other tilings add in another order: equal to float rounding.
    for (CpuReducerDesc tiling : {CpuReducerDesc{8, 64}, CpuReducerDesc{100, 256}, CpuReducerDesc{32, 2048}}) {
        NeuronStats other;
        auto lo = CpuReducer(tiling).reduce(view, other);
        ASSERT_TRUE(lo);
        ASSERT_EQ(other.data.size(), pooled.data.size());
        int differ = 0;
        for (size_t i = 0; i < other.data.size(); ++i) {
            const float a = pooled.data[i], c = other.data[i];
            if (std::isnan(a) && std::isnan(c)) continue;
            differ += std::fabs(a - c) > 1e-5f * (1.0f + std::fabs(a));
        }
        EXPECT_EQ(differ, 0) << "tiling " << tiling.tileRows << " x " << tiling.tileCols;
        EXPECT_NEAR(lo->mean, lp->mean, 1e-9 * (1.0 + std::fabs(lp->mean)));
        EXPECT_NEAR(lo->l2Norm, lp->l2Norm, 1e-9 * lp->l2Norm);
    }
}

// The CPU sweep is hand-vectorised (8 neurons per register strip, rows in blocks of 8, a shortcut for tiles
// without NaN or Inf, a rescue for tiles whose finite values overflow the float sums); the CUDA kernel runs the
// scalar formulas of reduce_math.hpp. Both must give the same bits: here the formulas run one neuron at a time,
// tile by tile, on data with NaN, +-Inf, zeros, values near FLT_MAX and a width that leaves a scalar tail. The
// one exception is the variance's last bits: on CPUs with FMA the sweep's d * d + m2 is one fused
// multiply-add (as on the GPU, where nvcc fuses it too), while this test's code is built for baseline x86-64
// and rounds twice.
TEST(CpuReducer, VectorisedSweepEqualsTheSharedScalarFormulasBitForBit) {
    const std::int64_t b = 150, n = 301; // 2 full tiles of 64 rows and one of 22; 37 blocks of 8 and a tail of 5
    auto x = makeData(b, n, 7);
    auto at = [&](std::int64_t r, std::int64_t j) -> float& { return x[static_cast<size_t>(r * n + j)]; };
    // Non-finite values in the second tile only (the first and last take the finite shortcut) ...
    for (std::int64_t k = 64 * n; k < 128 * n; k += 97)
        x[static_cast<size_t>(k)] = k % 3 == 0 ? NAN : k % 3 == 1 ? INFINITY : -INFINITY;
    // ... and finite values whose float sums overflow: a whole strip (same sign, and alternating signs whose
    // sum stays finite while the absolute sum does not), next to a NaN in the second tile, and in the tail.
    for (std::int64_t r = 0; r < b; ++r) {
        at(r, 40) = 3.0e38f;
        at(r, 41) = r % 2 ? 3.3e38f : -3.3e38f;
        for (std::int64_t j = 42; j < 48; ++j)
            at(r, j) = static_cast<float>(j - 41) * 1.1e37f * (r % 3 ? 1.0f : -0.5f);
        at(r, 299) = -2.5e38f;
    }
    at(70, 43) = NAN;
    const auto view = TensorView::matrix(x.data(), b, n);
    NeuronStats got;
    ASSERT_TRUE(CpuReducer({64, 256}).reduce(view, got));
    for (std::int64_t j = 0; j < n; ++j) {
        math::Running<double> run;
        math::runningInit(run);
        for (std::int64_t r0 = 0; r0 < b; r0 += 64) {
            const int rows = static_cast<int>(std::min<std::int64_t>(64, b - r0));
            math::TileSums t;
            math::tileInit(t);
            for (int r = 0; r < rows; ++r)
                math::tileAccumulate(at(r0 + r, j), t.sum, t.sumAbs, t.min, t.max, t.zeros, t.nans, t.infs);
            t.shift = math::tileMean(static_cast<float>(rows), t.sum, t.nans, t.infs);
            for (int r = 0; r < rows; ++r)
                math::tileDeviation(at(r0 + r, j), t.shift, t.dev, t.m2);
            if (math::tileOverflowed(t.sumAbs)) {
                t.sum = t.sumAbs = t.dev = t.m2 = 0.0f;
                for (int r = 0; r < rows; ++r)
                    math::tileRescueSums(at(r0 + r, j), t.sum, t.sumAbs);
                t.shift = math::tileMean(static_cast<float>(rows), t.sum, t.nans, t.infs);
                for (int r = 0; r < rows; ++r)
                    math::tileRescueDeviation(at(r0 + r, j), t.shift, t.dev, t.m2);
                t.scale = TS_RESCUE_UNSCALE;
            }
            math::runningAddTile(run, static_cast<float>(rows), t);
        }
        float want[TS_STATS_COUNT];
        math::runningFinalize(run, want);
        for (int s = 0; s < TS_STATS_COUNT; ++s) {
            const float g = got.at(static_cast<Statistic>(s), j);
            if (std::isnan(want[s]) && std::isnan(g)) continue;
            if (s == TS_STATS_VARIANCE && std::isfinite(want[s]))
                EXPECT_NEAR(g, want[s], 4e-7f * std::fabs(want[s])) << "neuron " << j;
            else
                EXPECT_EQ(std::memcmp(&g, &want[s], sizeof g), 0) << "neuron " << j << " statistic " << s << ": " << g
                                                                   << " vs " << want[s];
        }
        if (j >= 40 && j < 48) EXPECT_TRUE(std::isfinite(want[TS_STATS_MEAN])) << "neuron " << j; // the rescue ran
    }
}

// Finite values near FLT_MAX (a diverging training) overflow a tile's float sums; the statistics must still be
// those of the data: a finite mean and mean |x| equal to a float64 reference, and the variance that float64
// gives (Inf only where the true variance exceeds FLT_MAX). Before the rescue the mean was NaN.
TEST(CpuReducer, FiniteValuesNearFloatMaxGiveFiniteMeans) {
    const std::int64_t b = 130, n = 21;
    std::vector<float> x(static_cast<size_t>(b * n));
    std::mt19937 rng(5);
    std::uniform_real_distribution<float> mag(1e37f, 3.4e38f);
    for (std::int64_t r = 0; r < b; ++r)
        for (std::int64_t j = 0; j < n; ++j) {
            const float m = j < 10 ? mag(rng) : mag(rng) * 1e-20f; // columns 10+: ~1e18, their squares overflow float
            x[static_cast<size_t>(r * n + j)] = (j % 2 == 0 || rng() % 4 != 0) ? m : -m;
        }
    for (CpuReducerDesc tiling : {CpuReducerDesc{64, 256}, CpuReducerDesc{8, 8}, CpuReducerDesc{}}) {
        NeuronStats got;
        auto layer = CpuReducer(tiling).reduce(TensorView::matrix(x.data(), b, n), got);
        ASSERT_TRUE(layer);
        EXPECT_TRUE(std::isfinite(layer->mean)) << layer->mean;
        for (std::int64_t j = 0; j < n; ++j) {
            double s = 0, sa = 0, m2 = 0;
            for (std::int64_t r = 0; r < b; ++r) {
                s += x[static_cast<size_t>(r * n + j)];
                sa += std::fabs(double(x[static_cast<size_t>(r * n + j)]));
            }
            const double mean = s / b;
            for (std::int64_t r = 0; r < b; ++r)
                m2 += (x[static_cast<size_t>(r * n + j)] - mean) * (x[static_cast<size_t>(r * n + j)] - mean);
            const float gm = got.at(Statistic::Mean, j), ga = got.at(Statistic::MeanAbs, j);
            ASSERT_TRUE(std::isfinite(gm) && std::isfinite(ga)) << "neuron " << j << ": mean " << gm;
            EXPECT_NEAR(gm, mean, 1e-5 * sa / b) << "neuron " << j;
            EXPECT_NEAR(ga, sa / b, 1e-6 * sa / b) << "neuron " << j;
            const float wantVar = static_cast<float>(m2 / b), gv = got.at(Statistic::Variance, j);
            if (std::isinf(wantVar))
                EXPECT_TRUE(std::isinf(gv)) << "neuron " << j << ": " << gv;
            else
                EXPECT_NEAR(gv, wantVar, 1e-5 * wantVar) << "neuron " << j;
        }
    }
}

// The CPU counts most values with a computed bin (floor of (x - lo) * scale) and only values near an edge with
// the edge comparisons. Adversarial data: every published edge, the floats just below and above it, zeros of
// both signs, subnormals, values far outside the range and non-finite ones, over ranges where the computed
// bin is used (symmetric, narrow near zero, many bins) and where it may not be (edges far from zero next to
// narrow bins, over 1,024 bins). Counts must equal an independent binary search over the published edges.
TEST(CpuReducer, HistogramOfValuesAtAndBesideEveryEdgeEqualsTheEdgeComparisons) {
    struct Range {
        float lo, hi;
        int bins;
    };
    for (Range rg : {Range{-6.0f, 6.0f, 64}, Range{0.0f, 1.0f, 10}, Range{-1e-3f, 1e-3f, 7},
                     Range{1000.0f, 1000.5f, 100}, Range{1e7f, 1e7f + 2.0f, 3}, Range{-3.0f, 5.0f, 1500},
                     Range{-1.0f, 1.0f, 1}}) {
        const auto edges = histogramEdges(rg.bins, rg.lo, rg.hi);
        std::vector<float> v = {0.0f, -0.0f, 1e-40f, -1e-40f, 3e38f, -3e38f, NAN, INFINITY, -INFINITY};
        for (float e : edges)
            for (float d : {e, std::nextafter(e, -INFINITY), std::nextafter(e, INFINITY),
                            std::nextafter(std::nextafter(e, INFINITY), INFINITY)})
                v.push_back(d);
        std::mt19937 rng(static_cast<unsigned>(rg.bins));
        std::uniform_real_distribution<float> u(rg.lo - (rg.hi - rg.lo) * 0.1f, rg.hi + (rg.hi - rg.lo) * 0.1f);
        while (v.size() % 8 != 3 || v.size() < 4000) // a width that leaves a tail after the vectors of 8
            v.push_back(u(rng));
        std::shuffle(v.begin(), v.end(), rng);
        ReduceOptions o;
        o.histogram.bins = rg.bins;
        o.histogram.lo = rg.lo;
        o.histogram.hi = rg.hi;
        const std::int64_t n = static_cast<std::int64_t>(v.size());
        for (Tiling t : {Tiling{64, 0}, Tiling{1, 8}}) {
            NeuronStats got;
            auto layer = CpuReducer({t.rows, t.cols}).reduce(TensorView::matrix(v.data(), 1, n), got, o);
            ASSERT_TRUE(layer);
            const Histogram& h = layer->histogram;
            ASSERT_EQ(h.edges, edges);
            std::vector<std::uint64_t> ref(static_cast<size_t>(rg.bins), 0);
            std::uint64_t under = 0, over = 0;
            for (float x : v) {
                if (!std::isfinite(x)) continue;
                if (x < edges.front())
                    ++under;
                else if (x > edges.back())
                    ++over;
                else {
                    auto it = std::upper_bound(edges.begin(), edges.end(), x);
                    ref[std::min<std::ptrdiff_t>(it - edges.begin() - 1, rg.bins - 1)]++;
                }
            }
            EXPECT_EQ(h.counts, ref) << "range [" << rg.lo << ", " << rg.hi << "] in " << rg.bins << " bins";
            EXPECT_EQ(h.underflow, under) << rg.bins;
            EXPECT_EQ(h.overflow, over) << rg.bins;
        }
    }
}

// The default block width depends on the layer's width alone, never on the machine.
TEST(CpuReducer, DefaultBlockWidthFollowsTheLayerWidth) {
    EXPECT_EQ(autoTileCols(1 << 20), 4096);
    EXPECT_EQ(autoTileCols(50000), 3128);
    EXPECT_EQ(autoTileCols(4096), 256);
    EXPECT_EQ(autoTileCols(3), 256);
    const std::int64_t b = 70, n = 9000;
    auto x = makeData(b, n, 11);
    NeuronStats def, explicitWidth;
    auto a = CpuReducer().reduce(TensorView::matrix(x.data(), b, n), def);
    auto c = CpuReducer({64, autoTileCols(n)}).reduce(TensorView::matrix(x.data(), b, n), explicitWidth);
    ASSERT_TRUE(a && c);
    EXPECT_EQ(def.data, explicitWidth.data);
    EXPECT_EQ(a->mean, c->mean);
}

// ---- Bad input: one clear error each, nothing written.
TEST(CpuReducer, BadInputGivesClearErrors) {
    CpuReducer r;
    std::vector<float> x(60, 1.0f);
    NeuronStats out;
    auto expectError = [&](const TensorView& v, const std::string& needle, const ReduceOptions& o = {}) {
        auto res = r.reduce(v, out, o);
        ASSERT_FALSE(res) << needle;
        EXPECT_NE(res.error().message.find(needle), std::string::npos) << res.error().message;
        EXPECT_EQ(res.error().exitCode(), 2);
        EXPECT_EQ(res.error().message.find('\n'), std::string::npos);
    };
    expectError(TensorView::matrix(x.data(), 0, 5, "fc1"), "fc1 is empty [0 x 5]");
    expectError(TensorView::matrix(x.data(), 6, 0, "fc1"), "is empty");
    expectError(TensorView::matrix(nullptr, 6, 10, "fc2"), "null pointer");
    TensorView d = TensorView::matrix(x.data(), 3, 10, "conv");
    d.dtype = DType::Float64;
    expectError(d, "conv is float64; statistics take float32");
    TensorView t = TensorView::matrix(x.data(), 3, 10, "transposed");
    t.colStride = 3;
    expectError(t, "not contiguous along neurons");
    TensorView o = TensorView::matrix(x.data(), 6, 10, "overlap");
    o.rowStride = 4;
    expectError(o, "row stride 4 smaller than its 10 neurons");
    TensorView dev = TensorView::matrix(x.data(), 6, 10, "gpu", MemoryKind::Device);
    expectError(dev, "device memory");
    ReduceOptions half;
    half.histogram.bins = 4;
    half.histogram.lo = 1.0f;
    expectError(TensorView::matrix(x.data(), 6, 10), "both lo and hi", half);
    ReduceOptions inverted;
    inverted.histogram.bins = 4;
    inverted.histogram.lo = 2.0f, inverted.histogram.hi = 1.0f;
    expectError(TensorView::matrix(x.data(), 6, 10), "lo <= hi", inverted);
    ReduceOptions negative;
    negative.topK = -1;
    expectError(TensorView::matrix(x.data(), 6, 10), "topK -1", negative);

    std::vector<float> small(10);
    HostStatsDestination tooSmall(small.data(), small.size() * sizeof(float));
    auto res = r.reduce(TensorView::matrix(x.data(), 6, 10), tooSmall);
    ASSERT_FALSE(res);
    EXPECT_NE(res.error().message.find("10 neurons need 2048"), std::string::npos) << res.error().message;
    EXPECT_EQ(tooSmall.generation(), 0u);

    std::vector<std::int32_t> idx = {0, 1, 5};
    auto cs = r.aggregateClusters({x.data(), 3}, {idx.data(), 3}, 2);
    ASSERT_FALSE(cs);
    EXPECT_NE(cs.error().message.find("neuron 2 has cluster index 5 outside [0, 2)"), std::string::npos);
    auto cs2 = r.aggregateClusters({x.data(), 3}, {idx.data(), 2}, 8);
    ASSERT_FALSE(cs2);
    EXPECT_NE(cs2.error().message.find("3 values but 2 cluster indices"), std::string::npos);
    auto nr = r.normRatio(TensorView::matrix(x.data(), 6, 10, "grad"),
                          TensorView::matrix(x.data(), 10, 6, "weight"));
    ASSERT_FALSE(nr);
    EXPECT_NE(nr.error().message.find("differ in shape"), std::string::npos);
}

TEST(HostStatsDestination, WritesTheDocumentedLayout) {
    const std::int64_t b = 9, n = 70; // stride 128
    auto x = makeData(b, n, 12);
    std::vector<float> buffer(statsBytes(n) / sizeof(float) + 16, -7.0f); // sentinel padding
    HostStatsDestination dest(buffer.data(), buffer.size() * sizeof(float));
    auto layer = CpuReducer().reduce(TensorView::matrix(x.data(), b, n), dest);
    ASSERT_TRUE(layer);
    EXPECT_EQ(dest.generation(), 1u);
    auto ref = reference(x.data(), b, n, n);
    for (std::int64_t j = 0; j < n; ++j) {
        EXPECT_NEAR(buffer[TS_STATS_MEAN * 128 + j], ref[j].mean, 1e-5);
        EXPECT_EQ(buffer[TS_STATS_MAX * 128 + j], ref[j].max);
        EXPECT_EQ(buffer[TS_STATS_NAN_COUNT * 128 + j], 0.0f);
    }
    for (int s = 0; s < kStatisticCount; ++s)
        for (std::int64_t j = n; j < 128; ++j)
            EXPECT_EQ(buffer[s * 128 + j], -7.0f) << "padding touched";
}

// The shared arithmetic on its own: Chan combination of two halves equals the whole, in any split.
TEST(ReduceMath, CombineOfSplitsEqualsWhole) {
    auto x = makeData(257, 1, 3);
    for (int split : {1, 64, 128, 200, 256}) {
        math::Running<double> a, c;
        math::runningInit(a);
        math::runningInit(c);
        auto addRange = [&](math::Running<double>& r, int from, int to) {
            math::TileSums t;
            math::tileInit(t);
            for (int i = from; i < to; ++i)
                math::tileAccumulate(x[i], t.sum, t.sumAbs, t.min, t.max, t.zeros, t.nans, t.infs);
            t.shift = math::tileMean(float(to - from), t.sum, t.nans, t.infs);
            for (int i = from; i < to; ++i)
                math::tileDeviation(x[i], t.shift, t.dev, t.m2);
            math::runningAddTile(r, float(to - from), t);
        };
        addRange(a, 0, split);
        addRange(c, split, 257);
        math::runningCombine(a, c);
        auto ref = reference(x.data(), 257, 1, 1)[0];
        EXPECT_NEAR(a.mean, ref.mean, 1e-6);
        EXPECT_NEAR(a.m2 / a.n, ref.var, 1e-5 * ref.var);
        EXPECT_EQ(a.rows, 257);
    }
    EXPECT_TRUE(math::isFiniteValue(1.0f));
    EXPECT_FALSE(math::isFiniteValue(INFINITY));
    EXPECT_FALSE(math::isFiniteValue(NAN));
}

// Auto falls back to the CPU with exactly one log line when CUDA is missing (this machine: no driver).
TEST(Backend, AutoFallsBackWithOneLogLine) {
    ::testing::internal::CaptureStderr();
    auto r = makeReducer(Backend::Auto);
    std::string err = ::testing::internal::GetCapturedStderr();
    ASSERT_TRUE(r);
    auto cpu = makeReducer(Backend::Cpu);
    ASSERT_TRUE(cpu);
    EXPECT_EQ((*cpu)->backend(), Backend::Cpu);
    auto cuda = makeReducer(Backend::Cuda);
#ifndef TS_HAVE_CUDA
    EXPECT_TRUE(err.empty()) << err; // nothing to try, nothing to report
    ASSERT_FALSE(cuda);
    EXPECT_NE(cuda.error().message.find("not built"), std::string::npos);
    return;
#endif
    if ((*r)->backend() == Backend::Cuda) {
        EXPECT_TRUE(err.empty()) << err;
        EXPECT_TRUE(cuda);
        GTEST_SKIP() << "a CUDA device is present: no fallback to check";
    }
    EXPECT_EQ(std::count(err.begin(), err.end(), '\n'), 1) << err;
    EXPECT_NE(err.find("no CUDA device ("), std::string::npos) << err;
    EXPECT_NE(err.find("); using the CPU statistics backend"), std::string::npos) << err;
    ASSERT_FALSE(cuda);
    EXPECT_EQ(cuda.error().exitCode(), 2);
}

// importVulkanStatsDestination takes both file descriptors over in every case: a failed import (here: no CUDA
// device, or with one, a descriptor that is not Vulkan memory) closes them instead of leaking them.
TEST(StatsDestination, AFailedVulkanImportClosesBothFileDescriptors) {
    ExportedVulkanBuffer b;
    b.memoryFd = ::open("/dev/null", O_RDONLY);
    b.timelineSemaphoreFd = ::open("/dev/null", O_RDONLY);
    ASSERT_GE(b.memoryFd, 0);
    ASSERT_GE(b.timelineSemaphoreFd, 0);
    b.allocationSize = b.size = 4096;
    auto dest = importVulkanStatsDestination(b);
    ASSERT_FALSE(dest) << "/dev/null is not exported Vulkan memory";
    EXPECT_EQ(::fcntl(b.memoryFd, F_GETFD), -1) << "memory fd left open";
    EXPECT_EQ(::fcntl(b.timelineSemaphoreFd, F_GETFD), -1) << "semaphore fd left open";
}

// The CUDA device choice (kernels/device_choice.hpp) runs before any CUDA call that could fail here, so it is
// checked on this machine with listed devices: an index, the Vulkan device's UUID, TS_CUDA_DEVICE, the default.
TEST(CudaDeviceChoice, IndexUuidEnvironmentAndDefault) {
    using namespace ts::kernels;
    std::vector<DeviceSummary> devices(3);
    for (int i = 0; i < 3; ++i) {
        devices[size_t(i)].index = i;
        devices[size_t(i)].name = "gpu" + std::to_string(i);
        devices[size_t(i)].uuid[0] = static_cast<unsigned char>(0xa0 + i);
    }
    // The chosen index, or -1 for an error.
    auto chosen = [&](const DeviceRequest& r, const char* env) {
        auto c = chooseDevice(devices, r, env);
        return c ? *c : -1;
    };
    EXPECT_EQ(chosen({}, nullptr), 0);
    EXPECT_EQ(chosen({}, ""), 0);
    EXPECT_EQ(chosen({}, "2"), 2);
    DeviceRequest byIndex;
    byIndex.index = 1;
    EXPECT_EQ(chosen(byIndex, "2"), 1) << "an explicit index wins over the environment";
    DeviceRequest byUuid;
    byUuid.matchUuid = true;
    byUuid.uuid[0] = 0xa2;
    EXPECT_EQ(chosen(byUuid, "0"), 2) << "interop: the Vulkan device's GPU, whatever the index";

    byIndex.index = 3;
    auto bad = chooseDevice(devices, byIndex, nullptr);
    ASSERT_FALSE(bad);
    EXPECT_EQ(bad.error().kind, ts::ErrorKind::Usage);
    EXPECT_EQ(bad.error().message, "CUDA device 3 does not exist: the CUDA runtime lists 3 devices (0..2)");
    bad = chooseDevice(devices, {}, "7");
    ASSERT_FALSE(bad);
    EXPECT_EQ(bad.error().message, "TS_CUDA_DEVICE=7 does not exist: the CUDA runtime lists 3 devices (0..2)");
    for (const char* text : {"x", "-1", "1.5", "0x1"}) {
        bad = chooseDevice(devices, {}, text);
        ASSERT_FALSE(bad) << text;
        EXPECT_NE(bad.error().message.find("is not a device index"), std::string::npos) << bad.error().message;
    }
    byUuid.uuid[0] = 0x01;
    bad = chooseDevice(devices, byUuid, nullptr);
    ASSERT_FALSE(bad);
    EXPECT_EQ(bad.error().kind, ts::ErrorKind::Environment);
    EXPECT_EQ(bad.error().message, "no CUDA device has the Vulkan device's UUID 01000000-0000-0000-0000-000000000000 "
                                   "(3 devices): the renderer and CUDA must use the same GPU");
    EXPECT_FALSE(chooseDevice({}, {}, nullptr));
}

// Which GPUs a build runs on, by CUDA's compatibility rules (machine code within a major version, PTX forward).
TEST(CudaDeviceChoice, BuildArchitecturesCoverTheDevicesTheRulesSay) {
    using ts::kernels::buildRunsOn;
    // This project's default, "80;90" (machine code and PTX for each).
    EXPECT_TRUE(buildRunsOn("80;90", 8, 0));  // A100
    EXPECT_TRUE(buildRunsOn("80;90", 8, 6));  // sm_80 code runs on 8.6 (RTX 30)
    EXPECT_TRUE(buildRunsOn("80;90", 8, 9));  // and 8.9 (L40, RTX 40)
    EXPECT_TRUE(buildRunsOn("80,90", 9, 0));  // H100/H200 (the comma spelling of the compile definition)
    EXPECT_TRUE(buildRunsOn("80;90", 10, 0)); // B200: compute_90 PTX, compiled by the driver
    EXPECT_TRUE(buildRunsOn("80;90", 12, 0)); // RTX 50
    EXPECT_FALSE(buildRunsOn("80;90", 7, 5)); // T4, RTX 20: nothing old enough
    EXPECT_FALSE(buildRunsOn("80;90", 7, 0));
    // -real: machine code only, no forward compatibility; -virtual: PTX only.
    EXPECT_TRUE(buildRunsOn("80-real", 8, 6));
    EXPECT_FALSE(buildRunsOn("80-real", 9, 0));
    EXPECT_FALSE(buildRunsOn("86-real", 8, 0)); // sm_86 code does not run on 8.0
    EXPECT_TRUE(buildRunsOn("75-virtual", 9, 0));
    EXPECT_FALSE(buildRunsOn("90-virtual", 8, 9));
    EXPECT_FALSE(buildRunsOn("", 9, 0));
    EXPECT_FALSE(buildRunsOn("bogus;;", 9, 0));
}
