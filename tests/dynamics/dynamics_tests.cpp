// Views of whole runs: anomaly detection on synthetic runs with planted spikes, NaN onsets, plateaus and
// overfitting; density images against a float64 rasterisation; blue-noise sampling keeping planted outliers
// and thinning a dense bundle (float64 distances); Hinton blocks conserving sum |w|; ridgeline histograms;
// window averages and series read from a real run store against brute force over the stored statistics.
#include <gtest/gtest.h>

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <random>
#include <map>
#include <set>

#include "engine/dynamics/anomalies.hpp"
#include "engine/dynamics/distributions.hpp"
#include "engine/dynamics/hinton.hpp"
#include "engine/dynamics/run_dynamics.hpp"
#include "engine/dynamics/series_sampling.hpp"
#include "engine/dynamics/weight_atlas.hpp"

using namespace ts::dynamics;
namespace fs = std::filesystem;

namespace {

struct Run {
    std::vector<int64_t> steps;
    std::vector<double> loss, val;
};

// A decaying loss with seeded noise; validation every 50 steps.
Run syntheticRun(int n, uint64_t seed) {
    std::mt19937_64 rng(seed);
    std::normal_distribution<double> noise(0.0, 0.02);
    Run r;
    for (int i = 0; i < n; ++i) {
        r.steps.push_back(10 * i);
        r.loss.push_back(2.0 * std::exp(-i / 300.0) + 0.3 + noise(rng));
        r.val.push_back(i % 50 == 0 ? 2.0 * std::exp(-i / 300.0) + 0.35 + noise(rng) : NAN);
    }
    return r;
}

std::vector<const Anomaly*> ofKind(const std::vector<Anomaly>& as, AnomalyKind k) {
    std::vector<const Anomaly*> out;
    for (const auto& a : as)
        if (a.kind == k) out.push_back(&a);
    return out;
}

} // namespace

TEST(Anomalies, FindPlantedSpikesAndTheNaNOnsetAndNothingElse) {
    for (uint64_t seed : {1u, 2u, 3u}) {
        auto r = syntheticRun(1000, seed);
        r.loss[200] += 1.5;
        r.loss[550] += 0.8;
        r.loss[551] += 1.1; // a two-point excursion is one spike, at its peak
        for (int i = 900; i < 1000; ++i)
            r.loss[size_t(i)] = NAN;
        std::vector<NamedColumn> cols{{"loss", r.loss}, {"val_loss", r.val}};
        auto as = detectAnomalies(r.steps, cols);
        auto spikes = ofKind(as, AnomalyKind::Spike);
        ASSERT_EQ(spikes.size(), 2u) << "seed " << seed << ": " << (spikes.empty() ? "" : spikes[0]->message);
        EXPECT_EQ(spikes[0]->step, 2000);
        EXPECT_EQ(spikes[1]->step, 5510);
        EXPECT_EQ(spikes[1]->first, 550u);
        EXPECT_EQ(spikes[1]->last, 551u);
        auto nf = ofKind(as, AnomalyKind::NonFinite);
        ASSERT_EQ(nf.size(), 1u) << "the sparse validation log's end is not a NaN onset";
        EXPECT_EQ(nf[0]->series, "loss");
        EXPECT_EQ(nf[0]->step, 9000);
        EXPECT_EQ(ofKind(as, AnomalyKind::Overfitting).size(), 0u);
    }
}

TEST(Anomalies, InfIsNonFiniteAtOnceAndASpikeDownwardsCounts) {
    auto r = syntheticRun(300, 7);
    r.loss[120] = INFINITY;
    r.loss[60] -= 1.0;
    ScalarSeries s{"loss", r.steps, r.loss};
    auto nf = findNonFinite(s);
    ASSERT_EQ(nf.size(), 1u);
    EXPECT_EQ(nf[0].first, 120u);
    auto sp = findSpikes(s);
    ASSERT_EQ(sp.size(), 1u);
    EXPECT_EQ(sp[0].first, 60u);
}

TEST(Anomalies, PlateauIsFoundWhereTheLossIsFlat) {
    std::mt19937_64 rng(5);
    std::normal_distribution<double> noise(0.0, 0.001);
    std::vector<int64_t> steps;
    std::vector<double> loss;
    for (int i = 0; i < 600; ++i) {
        steps.push_back(i);
        double v = i < 200 ? 2.0 - 0.005 * i : i < 400 ? 1.0 : 1.0 - 0.002 * (i - 400);
        loss.push_back(v + noise(rng));
    }
    auto ps = findPlateaus({"loss", steps, loss});
    ASSERT_EQ(ps.size(), 1u);
    EXPECT_NEAR(double(ps[0].first), 200.0, 12.0);
    EXPECT_NEAR(double(ps[0].last), 400.0, 12.0);
    EXPECT_NEAR(ps[0].value, 1.0, 0.01);
}

TEST(Anomalies, OverfittingStartsAtTheValidationMinimum) {
    std::vector<int64_t> steps;
    std::vector<double> train, val;
    for (int i = 0; i < 400; ++i) {
        steps.push_back(i);
        train.push_back(2.0 * std::exp(-i / 80.0));
        val.push_back(i % 10 == 0 ? 1.0 + 0.00005 * (i - 150) * (i - 150) : NAN);
    }
    auto fit = findFitProblems({"loss", steps, train}, {"val_loss", steps, val});
    ASSERT_EQ(fit.size(), 1u);
    EXPECT_EQ(fit[0].kind, AnomalyKind::Overfitting);
    EXPECT_EQ(fit[0].first, 150u);
    // A run that learns nothing: flat training loss, validation as high: underfitting, not overfitting.
    std::vector<double> flat(400, 2.3), vflat(400, NAN);
    for (int i = 0; i < 400; i += 10)
        vflat[size_t(i)] = 2.31;
    auto under = findFitProblems({"loss", steps, flat}, {"val_loss", steps, vflat});
    ASSERT_EQ(under.size(), 1u);
    EXPECT_EQ(under[0].kind, AnomalyKind::Underfitting);
}

namespace {

SeriesMatrix randomMatrix(int64_t T, int64_t N, uint64_t seed) {
    std::mt19937_64 rng(seed);
    std::normal_distribution<float> g(0.0f, 1.0f);
    SeriesMatrix m{T, N, std::vector<float>(size_t(T * N))};
    for (int64_t i = 0; i < N; ++i) {
        float v = g(rng);
        for (int64_t t = 0; t < T; ++t) {
            v += 0.4f * g(rng);
            m.values[size_t(t * N + i)] = v;
        }
    }
    return m;
}

// The reference rasterisation: each column's value range found by sampling the polyline densely in float64.
std::vector<uint32_t> referenceDensity(const SeriesMatrix& m, int W, int H, ValueRange r) {
    std::vector<uint32_t> counts(size_t(W * H), 0);
    const int sub = 600;
    for (int64_t i = 0; i < m.series; ++i)
        for (int x = 0; x < W; ++x) {
            double lo = INFINITY, hi = -INFINITY;
            for (int k = 0; k <= sub; ++k) {
                const double u = (double(x) + double(k) / sub) * double(m.points - 1) / W;
                const int64_t a = std::min<int64_t>(int64_t(u), m.points - 1);
                const double f = u - double(a);
                const double va = m.at(a, i), vb = a + 1 < m.points ? m.at(a + 1, i) : va;
                const double v = f < 1e-12 ? va : va + (vb - va) * f;
                if (!std::isfinite(v)) continue;
                lo = std::min(lo, v);
                hi = std::max(hi, v);
            }
            if (!(lo <= hi)) continue;
            auto row = [&](double v) { return std::clamp(int(std::floor((v - r.lo) / (r.hi - r.lo) * H)), 0, H - 1); };
            for (int y = row(lo); y <= row(hi); ++y)
                ++counts[size_t(y * W + x)];
        }
    return counts;
}

} // namespace

TEST(SeriesSampling, DensityImageMatchesAFloat64Rasterisation) {
    auto m = randomMatrix(37, 300, 11);
    m.values[size_t(10 * 300 + 4)] = NAN; // a broken polyline
    m.values[size_t(20 * 300 + 5)] = INFINITY;
    const int W = 48, H = 40;
    auto range = finiteRange(m);
    auto img = densityImage(m, W, H, range);
    auto ref = referenceDensity(m, W, H, range);
    uint64_t total = 0, refTotal = 0, maxDiff = 0;
    for (size_t k = 0; k < ref.size(); ++k) {
        total += img.counts[k];
        refTotal += ref[k];
        maxDiff = std::max<uint64_t>(maxDiff, uint64_t(std::llabs(int64_t(img.counts[k]) - int64_t(ref[k]))));
    }
    EXPECT_GT(refTotal, uint64_t(300 * W));
    EXPECT_NEAR(double(total), double(refTotal), 0.002 * double(refTotal));
    EXPECT_LE(maxDiff, 2u);
    // The widths the series view asks for take shortcuts: a whole number of columns per segment (13 points,
    // 4 columns each) or of segments per column (97 points, 2 each); the same reference holds.
    for (int64_t points : {13, 97}) {
        auto f = randomMatrix(points, 200, 14);
        const auto fr = finiteRange(f);
        const auto fast = densityImage(f, W, H, fr);
        const auto want = referenceDensity(f, W, H, fr);
        uint64_t sum = 0, wantSum = 0, diff = 0;
        for (size_t k = 0; k < want.size(); ++k) {
            sum += fast.counts[k];
            wantSum += want[k];
            diff = std::max<uint64_t>(diff, uint64_t(std::llabs(int64_t(fast.counts[k]) - int64_t(want[k]))));
        }
        EXPECT_GT(wantSum, uint64_t(200 * W)) << points;
        EXPECT_NEAR(double(sum), double(wantSum), 0.002 * double(wantSum)) << points;
        EXPECT_LE(diff, 2u) << points;
    }
    // More columns than points and a single point.
    auto few = randomMatrix(3, 50, 12);
    auto fewRef = referenceDensity(few, 64, 20, finiteRange(few));
    EXPECT_EQ(densityImage(few, 64, 20, finiteRange(few)).counts.size(), fewRef.size());
    auto one = randomMatrix(1, 10, 13);
    auto oneImg = densityImage(one, 8, 8, finiteRange(one));
    uint64_t ones = 0;
    for (auto c : oneImg.counts)
        ones += c;
    EXPECT_EQ(ones, 10u * 8u); // each series is a flat line across every column
}

// Statistics of a diverging training reach +-3e38 before they overflow: the value range (6e38) is then wider
// than a float holds. Every path (the shortcuts, the general one, sampling) keeps rows inside the image.
TEST(SeriesSampling, ExtremeValuesStayInsideTheImage) {
    for (int64_t points : {8, 29}) { // 7 segments: whole columns per segment at 21 and 14; 28 segments: general
        SeriesMatrix m{points, 6, std::vector<float>(size_t(points * 6))};
        const float v[6] = {3e38f, -3e38f, 1e38f, -2e37f, 0.0f, 3.4e38f};
        for (int64_t t = 0; t < points; ++t)
            for (int64_t i = 0; i < 6; ++i)
                m.values[size_t(t * 6 + i)] = (t % 2 ? -1.0f : 1.0f) * v[i];
        for (int W : {21, 14, 20}) {
            const auto img = densityImage(m, W, 16, finiteRange(m));
            for (int x = 0; x < W; ++x) {
                uint64_t column = 0;
                for (int y = 0; y < 16; ++y)
                    column += img.counts[size_t(y * W + x)];
                EXPECT_GE(column, 6u) << "every series crosses column " << x << " (W " << W << ")";
            }
            const auto sample = blueNoiseSample(m, img);
            EXPECT_FALSE(sample.kept.empty());
        }
    }
}

TEST(SeriesSampling, BlueNoiseKeepsPlantedOutliersAndThinsTheBundle) {
    const int64_t T = 120, bundle = 6000, planted = 12, N = bundle + planted;
    std::mt19937_64 rng(21);
    std::normal_distribution<float> g(0.0f, 1.0f);
    SeriesMatrix m{T, N, std::vector<float>(size_t(T * N))};
    for (int64_t i = 0; i < N; ++i) {
        const bool outlier = i >= bundle;
        const float phase = 0.05f * g(rng), offset = outlier ? 2.0f + 0.45f * float(i - bundle) : 0.3f * g(rng);
        for (int64_t t = 0; t < T; ++t) {
            const float base = std::sin(0.08f * float(t) + phase);
            m.values[size_t(t * N + i)] =
                outlier ? (i % 2 ? offset - 0.04f * float(t) : -offset + 0.03f * float(t % 40)) : base + offset;
        }
    }
    auto range = finiteRange(m);
    auto img = densityImage(m, 200, 200, range);
    SamplingOptions o;
    o.target = 32;
    auto s = blueNoiseSample(m, img, o);
    ASSERT_EQ(s.kept.size(), 32u);
    // Independent float64 measure of outlyingness: L2 distance to the bundle's mean curve.
    std::vector<double> mean(size_t(T), 0.0);
    for (int64_t t = 0; t < T; ++t) {
        for (int64_t i = 0; i < bundle; ++i)
            mean[size_t(t)] += m.at(t, i);
        mean[size_t(t)] /= double(bundle);
    }
    std::vector<std::pair<double, int64_t>> dist;
    for (int64_t i = 0; i < N; ++i) {
        double d = 0;
        for (int64_t t = 0; t < T; ++t)
            d += (m.at(t, i) - mean[size_t(t)]) * (m.at(t, i) - mean[size_t(t)]);
        dist.push_back({std::sqrt(d / double(T)), i});
    }
    std::sort(dist.rbegin(), dist.rend());
    std::set<int64_t> kept(s.kept.begin(), s.kept.end());
    for (int k = 0; k < planted; ++k) {
        EXPECT_GE(dist[size_t(k)].second, bundle) << "the float64 ranking puts a planted outlier on top";
        EXPECT_TRUE(kept.count(dist[size_t(k)].second)) << "outlier " << dist[size_t(k)].second << " dropped";
    }
    // Thinning: the bundle is 99.8 % of the series but at most 80 % of the kept ones, and the kept bundle
    // series are farther apart than random pairs of the bundle (a blue-noise spread, float64 L-inf).
    int64_t fromBundle = 0;
    for (int64_t i : s.kept)
        fromBundle += i < bundle;
    EXPECT_LE(double(fromBundle) / double(s.kept.size()), 0.8);
    auto linf = [&](int64_t a, int64_t b) {
        double d = 0;
        for (int64_t t = 0; t < T; ++t)
            d = std::max(d, std::fabs(double(m.at(t, a)) - double(m.at(t, b))));
        return d;
    };
    std::vector<int64_t> kb;
    for (int64_t i : s.kept)
        if (i < bundle) kb.push_back(i);
    ASSERT_GE(kb.size(), 4u);
    double keptMin = INFINITY, randomMin = INFINITY;
    for (size_t a = 0; a < kb.size(); ++a)
        for (size_t b = a + 1; b < kb.size(); ++b)
            keptMin = std::min(keptMin, linf(kb[a], kb[b]));
    for (size_t a = 0; a < kb.size(); ++a)
        for (size_t b = a + 1; b < kb.size(); ++b)
            randomMin = std::min(randomMin, linf(int64_t(a * 97), int64_t(b * 97)));
    EXPECT_GT(keptMin, 1.5 * randomMin);
}

TEST(SeriesSampling, BrushSelectsSeriesThroughTheBox) {
    auto m = randomMatrix(50, 400, 31);
    auto sel = brushSeries(m, 30, 10, 0.5f, -0.5f); // reversed bounds are ordered
    std::set<int64_t> got(sel.begin(), sel.end());
    for (int64_t i = 0; i < 400; ++i) {
        bool inside = false;
        for (int64_t t = 10; t <= 30; ++t)
            inside |= m.at(t, i) >= -0.5f && m.at(t, i) <= 0.5f;
        EXPECT_EQ(inside, got.count(i) == 1) << i;
    }
}

TEST(Hinton, BlocksConserveTheSumOfAbsoluteWeights) {
    const int64_t R = 300, C = 517;
    std::mt19937_64 rng(3);
    std::normal_distribution<float> g(0.0f, 0.1f);
    std::vector<float> w(size_t(R * C));
    for (auto& v : w)
        v = g(rng);
    w[17] = NAN;
    auto h = hintonBlocks(w, R, C, 64, 64);
    EXPECT_EQ(h.blockRows, 5);
    EXPECT_EQ(h.blockCols, 9);
    EXPECT_EQ(h.gridRows, 60);
    EXPECT_EQ(h.gridCols, 58);
    double total = 0, blocks = 0, signedTotal = 0, signedBlocks = 0;
    int64_t count = 0;
    for (float v : w)
        if (std::isfinite(v)) {
            total += std::fabs(double(v));
            signedTotal += v;
        }
    for (size_t b = 0; b < h.sumAbs.size(); ++b) {
        blocks += h.sumAbs[b];
        signedBlocks += h.sum[b];
        count += h.count[b];
    }
    EXPECT_NEAR(blocks, total, 1e-9 * total);
    EXPECT_NEAR(signedBlocks, signedTotal, 1e-9 * total);
    EXPECT_EQ(count, R * C - 1);
    // One block by hand: rows 5..9, columns 9..17.
    double hand = 0;
    for (int64_t r = 5; r < 10; ++r)
        for (int64_t c = 9; c < 18; ++c)
            hand += std::fabs(double(w[size_t(r * C + c)]));
    EXPECT_NEAR(h.sumAbs[size_t(1 * h.gridCols + 1)], hand, 1e-12);
    // No aggregation when the matrix fits.
    auto full = hintonBlocks(std::span<const float>(w).first(size_t(8 * 9)), 8, 9, 64, 64);
    EXPECT_EQ(full.gridRows, 8);
    EXPECT_DOUBLE_EQ(full.sumAbs[3], std::fabs(double(w[3])));
}

TEST(Distributions, RebinConservesCountsAndHistogramCountsEveryValue) {
    std::vector<double> c{1, 5, 0, 7, 2};
    for (auto [lo, hi] : {std::pair{-1.0, 1.0}, std::pair{-3.0, 0.5}, std::pair{0.2, 0.4}}) {
        auto r = rebin(c, -0.5, 0.75, 13, lo, hi);
        double sum = 0;
        for (double v : r)
            sum += v;
        EXPECT_NEAR(sum, 15.0, 1e-9);
    }
    // Identity geometry gives the same bins.
    auto same = rebin(c, 0, 5, 5, 0, 5);
    for (size_t b = 0; b < 5; ++b)
        EXPECT_NEAR(same[b], c[b], 1e-12);
    std::vector<float> v{0.0f, 0.1f, 0.99f, 1.0f, -5.0f, NAN, 0.5f};
    auto h = histogram(v, 4, 0.0, 1.0);
    EXPECT_EQ(h, (std::vector<double>{3, 0, 1, 2})); // -5 clamps into bin 0, 1.0 into the last, NaN skipped
}

TEST(Distributions, EarthMoversDistanceOfShiftedHistogramsIsTheShift) {
    // Independent reference: for two distributions that differ by a shift, W1 is the shift.
    std::vector<double> h{1, 4, 6, 4, 1};
    EXPECT_NEAR(wasserstein1(h, 0.0, 1.0, h, 0.3, 1.3), 0.3, 1e-3);
    EXPECT_NEAR(wasserstein1(h, 0.0, 1.0, h, 0.0, 1.0), 0.0, 1e-12);
    // Different binning of the same uniform distribution on [0, 2]: distance 0.
    std::vector<double> u4(4, 1.0), u16(16, 3.0);
    EXPECT_NEAR(wasserstein1(u4, 0.0, 2.0, u16, 0.0, 2.0), 0.0, 1e-9);
    // Two point-like masses at 0 and at 5 (narrow bins): 5.
    std::vector<double> one{1.0};
    EXPECT_NEAR(wasserstein1(one, 0.0, 1e-3, one, 5.0, 5.0 + 1e-3), 5.0, 1e-2);
    EXPECT_TRUE(std::isnan(wasserstein1(std::vector<double>{}, 0, 1, h, 0, 1)));
}

namespace {

fs::path freshDir(const std::string& name) {
    fs::path d = fs::temp_directory_path() / ("ts_dynamics_" + name + "_" + std::to_string(::getpid()));
    fs::remove_all(d);
    return d;
}

float statValue(int64_t s, int64_t i, int k, bool grad) {
    if (k == 5) return (i % 7 == 0) ? 1.0f : 0.25f; // zero fraction: neurons 0, 7, 14, .. dead
    if (k >= 6) return (grad && s >= 30 && i == 3) ? 2.0f : 0.0f; // NaN counts: layer goes bad at snapshot 30
    return float(std::sin(0.21 * double(s) + 0.13 * double(i) + double(k))) * (grad ? 0.1f : 1.0f) + (k == 2 ? 1.5f : 0.0f);
}

// A run of `snaps` snapshots of two layers (24 and 5 neurons), with a weight histogram, written by RunWriter.
fs::path writeRun(const std::string& name, int64_t snaps) {
    auto dir = freshDir(name);
    ts::runs::WriterOptions o;
    o.dir = dir.string();
    o.info.model = "dyn";
    o.info.writer = "cpp";
    o.info.histogramBins = 4;
    auto w = ts::runs::RunWriter::create(o);
    EXPECT_TRUE(w.hasValue());
    std::vector<ts::runs::RunLayer> layers{{"fc1", "Linear", {24}, 24, 100}, {"fc2", "Linear", {5}, 5, 0}};
    EXPECT_TRUE((*w)->begin(layers, {"loss"}).isOk());
    for (int64_t s = 0; s < snaps; ++s) {
        std::vector<std::vector<float>> a(2), g(2);
        std::vector<ts::runs::LayerRecord> recs(2);
        for (size_t l = 0; l < 2; ++l) {
            const int64_t n = layers[l].neurons;
            a[l].resize(size_t(8 * n));
            g[l].resize(size_t(8 * n));
            for (int k = 0; k < 8; ++k)
                for (int64_t i = 0; i < n; ++i) {
                    a[l][size_t(k * n + i)] = statValue(s, i, k, false) * float(l + 1);
                    g[l][size_t(k * n + i)] = statValue(s, i, k, true);
                }
            recs[l].activation = a[l].data();
            recs[l].activationStride = n;
            recs[l].gradient = g[l].data();
            recs[l].gradientStride = n;
            recs[l].rows = 16;
        }
        recs[0].weightHist.counts = {uint64_t(10 + s), 40, 40, uint64_t(10)};
        recs[0].weightHist.lo = -1.0 - 0.01 * double(s);
        recs[0].weightHist.hi = 1.0 + 0.02 * double(s);
        for (int k = 0; k < 8; ++k)
            recs[0].weight.v[size_t(k)] = double(s);
        EXPECT_TRUE((*w)->appendSnapshot(10 * s, recs).isOk());
        EXPECT_TRUE((*w)->appendScalars(10 * s, {{"loss", 1.0 / double(s + 1)}}).isOk());
    }
    EXPECT_TRUE((*w)->close().isOk());
    return dir;
}

} // namespace

TEST(RunDynamics, WindowAveragesEqualBruteForceOverTheStore) {
    auto dir = writeRun("window", 48);
    auto r = ts::runs::RunReader::open(dir.string());
    ASSERT_TRUE(r.hasValue()) << r.error().message;
    auto ov = loadOverview(**r);
    ASSERT_TRUE(ov.hasValue()) << ov.error().message;
    ASSERT_EQ(ov->layers.size(), 2u);
    ASSERT_EQ(ov->layers[0].summary.size(), 48u);
    for (int64_t focus : {0, 17, 47})
        for (int64_t half : {0, 3, 100}) {
            auto avg = windowAverage<8>(ov->layers[0].summary, focus, half);
            // Brute force from the per-neuron statistics read back, in float64: mean activation (row 0 mean
            // over neurons) and dead fraction (zero_fraction == 1).
            double meanAct = 0, dead = 0;
            int64_t cnt = 0;
            for (int64_t s = std::max<int64_t>(0, focus - half); s <= std::min<int64_t>(47, focus + half); ++s) {
                auto st = (*r)->neuronStats(0, s, ts::runs::Kind::Activation);
                ASSERT_TRUE(st.hasValue());
                double m = 0, d = 0;
                for (int64_t i = 0; i < 24; ++i) {
                    m += (*st)[size_t(i)];
                    d += (*st)[size_t(5 * 24 + i)] == 1.0f;
                }
                meanAct += m / 24;
                dead += d / 24;
                ++cnt;
            }
            EXPECT_NEAR(avg[4], meanAct / double(cnt), 1e-6) << focus << " " << half;
            EXPECT_NEAR(avg[2], dead / double(cnt), 1e-12);
        }
    // The layer whose gradients hold NaN from snapshot 30 is named as the first to break.
    EXPECT_EQ(ov->layers[0].firstNonFinite, 30);
    bool named = false;
    for (const auto& a : ov->anomalies)
        named |= a.kind == AnomalyKind::NonFinite && a.series == "fc1" && a.step == 300 &&
                 a.message.find("first layer") != std::string::npos;
    EXPECT_TRUE(named);
    EXPECT_EQ(ov->snapshotAt(305), 30);
    fs::remove_all(dir);
}

TEST(RunDynamics, LayerSeriesAreTheStoredStatisticsAndWindowMeansBeyondMaxPoints) {
    auto dir = writeRun("series", 64);
    auto r = ts::runs::RunReader::open(dir.string());
    ASSERT_TRUE(r.hasValue());
    SeriesViewOptions o;
    o.maxPoints = 64;
    auto v = loadLayerSeries(**r, 0, ts::runs::Kind::Activation, 0, o);
    ASSERT_TRUE(v.hasValue()) << v.error().message;
    ASSERT_EQ(v->matrix.points, 64);
    ASSERT_EQ(v->matrix.series, 24);
    for (int64_t s : {0, 31, 63}) {
        auto st = (*r)->neuronStats(0, s, ts::runs::Kind::Activation);
        for (int64_t i = 0; i < 24; ++i)
            EXPECT_EQ(v->matrix.at(s, i), (*st)[size_t(i)]);
    }
    EXPECT_FALSE(v->sample.kept.empty());
    // The density image is at least as fine as asked for with fewer segments than columns (63 segments, 384
    // columns: 7 columns per segment), and as the series with more (a whole number per column).
    EXPECT_EQ(v->density.width, 63 * 7);
    // Fewer points than snapshots: level-4 window means (16 snapshots each), against brute force.
    o.maxPoints = 4;
    auto w = loadLayerSeries(**r, 0, ts::runs::Kind::Activation, 0, o);
    ASSERT_TRUE(w.hasValue());
    EXPECT_EQ(w->level, 4);
    ASSERT_EQ(w->matrix.points, 4);
    EXPECT_EQ(w->density.width, 3 * 128);
    for (int64_t j = 0; j < 4; ++j)
        for (int64_t i : {0, 5, 23}) {
            double mean = 0;
            for (int64_t s = 16 * j; s < 16 * j + 16; ++s)
                mean += (*r)->neuronStats(0, s, ts::runs::Kind::Activation).value()[size_t(i)];
            EXPECT_NEAR(w->matrix.at(j, i), mean / 16, 1e-5);
        }
    // A statistic without a pyramid: evenly spaced snapshots, first and last included.
    auto e = (*r)->layerSeries(0, ts::runs::Kind::Activation, 3, 5);
    ASSERT_TRUE(e.hasValue());
    EXPECT_EQ(e->steps, (std::vector<int64_t>{0, 150, 310, 470, 630}));
    // Over the memory budget: one line, no allocation.
    auto big = (*r)->layerSeries(0, ts::runs::Kind::Activation, 0, 64, true, 1024);
    ASSERT_FALSE(big.hasValue());
    EXPECT_NE(big.error().message.find("MiB allowed"), std::string::npos);
    fs::remove_all(dir);
}

TEST(RunDynamics, DistributionsConserveTheWeightCountsAndHistogramTheNeuronMeans) {
    auto dir = writeRun("dist", 40);
    auto r = ts::runs::RunReader::open(dir.string());
    ASSERT_TRUE(r.hasValue());
    auto d = loadDistributions(**r, 0, 8, 32);
    ASSERT_TRUE(d.hasValue()) << d.error().message;
    ASSERT_EQ(d->weights.rows(), 8u);
    EXPECT_EQ(d->weights.steps.front(), 0);
    EXPECT_EQ(d->weights.steps.back(), 390);
    EXPECT_NEAR(d->weights.lo, -1.39, 1e-9);
    EXPECT_NEAR(d->weights.hi, 1.78, 1e-9);
    for (size_t row = 0; row < 8; ++row) {
        double sum = 0;
        for (int b = 0; b < 32; ++b)
            sum += d->weights.counts[row * 32 + size_t(b)];
        const int64_t s = d->weights.steps[row] / 10;
        EXPECT_NEAR(sum, double(10 + s + 40 + 40 + 10), 1e-9);
    }
    ASSERT_EQ(d->activations.rows(), 8u);
    const int nb = d->activations.bins;
    EXPECT_EQ(nb, 12); // 24 neurons: 2 sqrt(24) < 12 bins
    auto st = (*r)->neuronStats(0, 39, ts::runs::Kind::Activation);
    auto ref = histogram(std::span<const float>(*st).first(24), nb, d->activations.lo, d->activations.hi);
    double total = 0;
    for (int b = 0; b < nb; ++b) {
        EXPECT_EQ(d->activations.counts[7 * size_t(nb) + size_t(b)], ref[size_t(b)]);
        total += ref[size_t(b)];
    }
    EXPECT_EQ(total, 24.0);
    EXPECT_EQ(d->gradients.rows(), 8u);
    // fc2 has no parameters: no weight ridgelines, but activations.
    auto d2 = loadDistributions(**r, 1, 8, 32);
    ASSERT_TRUE(d2.hasValue());
    EXPECT_EQ(d2->weights.rows(), 0u);
    EXPECT_EQ(d2->activations.rows(), 8u);
    // At given training steps (a second run compared at this one's steps): the snapshot at or before each.
    std::vector<int64_t> at{0, 105, 470, 9999, -5};
    auto same = loadDistributions(**r, 0, 8, 32, &at);
    ASSERT_TRUE(same.hasValue());
    EXPECT_EQ(same->weights.steps, (std::vector<int64_t>{0, 100, 390, 390, 0}));
    EXPECT_EQ(same->activations.steps, same->weights.steps);
    EXPECT_EQ(findLayer(**r, "fc2"), 1);
    EXPECT_EQ(findLayer(**r, "fc"), -1); // ambiguous
    EXPECT_EQ(findLayer(**r, "nope"), -1);
    fs::remove_all(dir);
}

// --- Every weight: the atlas ---
namespace {
std::vector<WeightMatrix> someMatrices() {
    std::vector<WeightMatrix> ms;
    std::mt19937_64 rng(9);
    std::normal_distribution<float> g(0.0f, 1.0f);
    for (auto [r, c] : {std::pair<int64_t, int64_t>{16, 27}, {64, 3000}, {1, 100}, {10, 64}, {3, 3}, {2000, 16}}) {
        WeightMatrix m{"m" + std::to_string(ms.size()), r, c, {}};
        for (int64_t k = 0; k < r * c; ++k)
            m.values.push_back(g(rng));
        ms.push_back(std::move(m));
    }
    return ms;
}
} // namespace

TEST(WeightAtlas, EveryWeightHasExactlyOneCell) {
    const auto ms = someMatrices();
    const auto a = layoutAtlas(ms, 4);
    ASSERT_EQ(a.tiles.size(), ms.size());
    // The [64 x 3000] matrix is folded into bands (its rows would be 47 times longer than it is tall).
    EXPECT_GT(a.tiles[1].folds, 1);
    EXPECT_LT(a.width, 3000);
    // The [2000 x 16] matrix (an embedding's shape) is folded the other way.
    EXPECT_GT(a.tiles[5].rowFolds, 1);
    EXPECT_LT(a.tiles[5].height, 2000);
    // Tiles do not overlap, and walking every cell finds every weight exactly once.
    for (size_t i = 0; i < a.tiles.size(); ++i)
        for (size_t j = i + 1; j < a.tiles.size(); ++j) {
            const auto &p = a.tiles[i], &q = a.tiles[j];
            const bool apart = p.x + p.width <= q.x || q.x + q.width <= p.x || p.y + p.height <= q.y || q.y + q.height <= p.y;
            EXPECT_TRUE(apart) << i << " " << j;
        }
    std::map<const float*, int> seen;
    for (int64_t y = 0; y < a.height; ++y)
        for (int64_t x = 0; x < a.width; ++x)
            if (const float* w = weightAt(ms, a, x, y)) ++seen[w];
    size_t total = 0;
    for (const auto& m : ms)
        total += m.values.size();
    EXPECT_EQ(seen.size(), total);
    for (const auto& [w, n] : seen)
        EXPECT_EQ(n, 1);
}

TEST(WeightAtlas, RasterIsOneWeightPerCellAtScaleOneAndBlockMeansBeyond) {
    const auto ms = someMatrices();
    const auto a = layoutAtlas(ms, 4);
    // Scale 1: cell (c, r) is the weight at atlas (c, r).
    auto full = rasterizeAtlas(ms, a, 0, 0, double(a.width), double(a.height), int(a.width), int(a.height));
    for (int64_t y = 0; y < a.height; y += 7)
        for (int64_t x = 0; x < a.width; ++x) {
            const float* w = weightAt(ms, a, x, y);
            const float got = full[size_t(y * a.width + x)];
            if (w)
                EXPECT_EQ(got, *w);
            else
                EXPECT_TRUE(std::isnan(got));
        }
    // Zoomed out 2x over the [16 x 27] tile: each cell the float64 mean of its 2 x 2 block.
    const auto& t = a.tiles[0];
    auto half = rasterizeAtlas(ms, a, double(t.x), double(t.y), 16.0, 16.0, 8, 8);
    for (int r = 0; r < 8; ++r)
        for (int c = 0; c < 8; ++c) {
            double sum = 0;
            for (int dy = 0; dy < 2; ++dy)
                for (int dx = 0; dx < 2; ++dx)
                    sum += ms[0].values[size_t((2 * r + dy) * 27 + 2 * c + dx)];
            EXPECT_NEAR(half[size_t(r * 8 + c)], sum / 4.0, 1e-5);
        }
    // Other values of the same shapes (updates, gradients) take the weights' places.
    std::vector<std::vector<float>> twice;
    for (const auto& m : ms) {
        twice.push_back(m.values);
        for (auto& v : twice.back())
            v *= 2.0f;
    }
    auto doubled = rasterizeAtlas(ms, a, double(t.x), double(t.y), 16.0, 16.0, 8, 8, twice);
    for (size_t k = 0; k < doubled.size(); ++k)
        EXPECT_NEAR(doubled[k], 2.0f * half[k], 1e-5);
}
