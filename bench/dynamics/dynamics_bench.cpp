// Views of whole runs: (1) blue-noise sampling and the density image of 100k series, against one pass over
// the same matrix (the baseline: the cost of touching every value once); (2) opening a layer's series view
// from the run store (read + density + sampling) for a 32k-neuron layer over 1,000 snapshots, against reading
// the same rows alone; (3) anomaly detection over a 100k-step log; (4) the every-weight view of a 30M-parameter
// transformer's shapes: the atlas layout and its reduction to a 640 x 400-cell canvas, whole and zoomed in,
// against one pass over the weights; (5) only with TS_BENCH_1M=1 (it writes about 5 GB first, minutes here): a
// run of 1,048,576 neurons over 1,000 snapshots, opened (overview) and one layer's series view, against
// reading those rows alone, with the process' peak memory. Numbers and command: docs/PERFORMANCE.md,
// section "Views of whole runs".
#include <benchmark/benchmark.h>
#include <sys/resource.h>

#include <chrono>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <random>
#include <vector>

#include "engine/dynamics/anomalies.hpp"
#include "engine/dynamics/run_dynamics.hpp"
#include "engine/dynamics/series_sampling.hpp"
#include "engine/dynamics/weight_atlas.hpp"

using namespace ts::dynamics;
namespace fs = std::filesystem;

namespace {

// N series over T points: bundles (sines of a few phases) with noise and 0.1 % outliers.
const SeriesMatrix& matrix(int64_t N, int64_t T) {
    static std::map<std::pair<int64_t, int64_t>, SeriesMatrix> cache;
    auto& m = cache[{N, T}];
    if (m.series == N) return m;
    m = SeriesMatrix{T, N, std::vector<float>(size_t(N * T))};
    std::mt19937 rng(3);
    std::normal_distribution<float> nd(0.0f, 1.0f);
    for (int64_t i = 0; i < N; ++i) {
        const float phase = float(i % 5), scale = (i % 1000 == 7) ? 4.0f : 1.0f, off = 0.2f * nd(rng);
        for (int64_t t = 0; t < T; ++t)
            m.values[size_t(t * N + i)] = scale * std::sin(0.03f * float(t) + phase) + off + 0.05f * nd(rng);
    }
    return m;
}

void BM_TouchEveryValue(benchmark::State& st) { // baseline
    const auto& m = matrix(st.range(0), 256);
    for (auto _ : st) {
        double s = 0;
        for (float v : m.values)
            s += v;
        benchmark::DoNotOptimize(s);
    }
    st.counters["series"] = double(m.series);
}
BENCHMARK(BM_TouchEveryValue)->Arg(100000)->Unit(benchmark::kMillisecond);

void BM_DensityImage(benchmark::State& st) {
    const auto& m = matrix(st.range(0), 256);
    const auto range = finiteRange(m);
    for (auto _ : st)
        benchmark::DoNotOptimize(densityImage(m, 384, 160, range));
}
BENCHMARK(BM_DensityImage)->Arg(100000)->Unit(benchmark::kMillisecond);

void BM_BlueNoiseSample(benchmark::State& st) {
    const auto& m = matrix(st.range(0), 256);
    const auto d = densityImage(m, 384, 160, finiteRange(m));
    size_t kept = 0;
    for (auto _ : st) {
        auto s = blueNoiseSample(m, d);
        kept = s.kept.size();
        benchmark::DoNotOptimize(s);
    }
    st.counters["kept"] = double(kept);
}
BENCHMARK(BM_BlueNoiseSample)->Arg(10000)->Arg(100000)->Unit(benchmark::kMillisecond);

// A run of one 32,768-neuron layer over 1,000 snapshots (written once per process).
constexpr int64_t kNeurons = 32768, kSnapshots = 1000;
ts::runs::RunReader& bigRun() {
    static std::unique_ptr<ts::runs::RunReader> reader = [] {
        const char* base = std::getenv("TS_BENCH_DIR");
        const fs::path dir = fs::path(base ? base : fs::temp_directory_path().string()) / "ts_bench_dynamics_run";
        fs::remove_all(dir);
        ts::runs::WriterOptions o;
        o.dir = dir.string();
        o.info.histogramBins = 8;
        auto w = ts::runs::RunWriter::create(o);
        if (!w || !(*w)->begin({{"layer", "Linear", {kNeurons}, kNeurons, 0}}, {"loss"})) std::abort();
        std::vector<float> stats(size_t(kNeurons * ts::runs::kNeuronStats));
        for (int64_t s = 0; s < kSnapshots; ++s) {
            for (int k = 0; k < ts::runs::kNeuronStats; ++k)
                for (int64_t i = 0; i < kNeurons; ++i)
                    stats[size_t(k * kNeurons + i)] = std::sin(0.01f * float(s) + 0.37f * float(i % 97)) + 0.001f * float(i % 13);
            ts::runs::LayerRecord r;
            r.activation = stats.data();
            r.activationStride = kNeurons;
            r.gradient = stats.data();
            r.gradientStride = kNeurons;
            r.rows = 64;
            if (!(*w)->appendSnapshot(s, {r})) std::abort();
        }
        (void)(*w)->close();
        auto rr = ts::runs::RunReader::open(dir.string());
        if (!rr) std::abort();
        return std::move(rr.value());
    }();
    return *reader;
}

void BM_ReadLayerRows(benchmark::State& st) { // baseline: the rows the view reads, nothing else
    auto& r = bigRun();
    for (auto _ : st)
        benchmark::DoNotOptimize(r.layerSeries(0, ts::runs::Kind::Activation, 0, int(st.range(0))));
    st.counters["neurons"] = double(kNeurons);
}
BENCHMARK(BM_ReadLayerRows)->Arg(512)->Arg(1000)->Unit(benchmark::kMillisecond);

void BM_OpenLayerSeriesView(benchmark::State& st) {
    auto& r = bigRun();
    SeriesViewOptions o;
    o.maxPoints = int(st.range(0));
    double read = 0, density = 0, sample = 0;
    for (auto _ : st) {
        auto v = loadLayerSeries(r, 0, ts::runs::Kind::Activation, 0, o);
        if (!v) std::abort();
        read += v->readMs, density += v->densityMs, sample += v->sampleMs;
        st.counters["points"] = double(v->matrix.points);
        st.counters["columns"] = double(v->density.width);
    }
    // Where the time goes (ms per open).
    st.counters["read_ms"] = read / double(st.iterations());
    st.counters["density_ms"] = density / double(st.iterations());
    st.counters["sample_ms"] = sample / double(st.iterations());
}
BENCHMARK(BM_OpenLayerSeriesView)->Arg(512)->Arg(1000)->Unit(benchmark::kMillisecond);

void BM_DetectAnomalies(benchmark::State& st) {
    const int64_t n = st.range(0);
    std::vector<int64_t> steps(static_cast<size_t>(n));
    std::vector<double> loss(static_cast<size_t>(n)), val(static_cast<size_t>(n), NAN);
    std::mt19937 rng(5);
    std::normal_distribution<double> nd(0.0, 0.02);
    for (int64_t i = 0; i < n; ++i) {
        steps[size_t(i)] = i;
        loss[size_t(i)] = 2.0 * std::exp(-double(i) / double(n / 4)) + 0.3 + nd(rng);
        if (i % 100 == 0) val[size_t(i)] = loss[size_t(i)] + 0.05;
    }
    std::vector<NamedColumn> cols{{"loss", loss}, {"val_loss", val}};
    for (auto _ : st)
        benchmark::DoNotOptimize(detectAnomalies(steps, cols));
}
BENCHMARK(BM_DetectAnomalies)->Arg(100000)->Unit(benchmark::kMillisecond);

// A 30M-parameter transformer's tensors: token embedding 16000 x 512, 8 blocks of attention (4 x 512 x 512)
// and MLP (512 x 2048, 2048 x 512), biases and norms, and the output head.
const std::vector<WeightMatrix>& transformer() {
    static std::vector<WeightMatrix> ms = [] {
        std::vector<WeightMatrix> out;
        std::mt19937 rng(11);
        std::normal_distribution<float> nd(0.0f, 0.02f);
        auto add = [&](const std::string& name, int64_t r, int64_t c) {
            WeightMatrix m{name, r, c, std::vector<float>(size_t(r * c))};
            for (auto& v : m.values)
                v = nd(rng);
            out.push_back(std::move(m));
        };
        add("embed", 16000, 512);
        for (int b = 0; b < 8; ++b) {
            const std::string p = "block" + std::to_string(b) + ".";
            for (const char* w : {"q", "k", "v", "o"})
                add(p + w, 512, 512);
            add(p + "mlp.up", 2048, 512);
            add(p + "mlp.down", 512, 2048);
            add(p + "mlp.up.bias", 1, 2048);
            add(p + "norm", 1, 512);
        }
        add("head", 16000, 512);
        return out;
    }();
    return ms;
}

void BM_WeightsTouchEvery(benchmark::State& st) { // baseline
    const auto& ms = transformer();
    int64_t n = 0;
    for (auto _ : st) {
        double s = 0;
        n = 0;
        for (const auto& m : ms) {
            for (float v : m.values)
                s += v;
            n += int64_t(m.values.size());
        }
        benchmark::DoNotOptimize(s);
    }
    st.counters["weights"] = double(n);
}
BENCHMARK(BM_WeightsTouchEvery)->Unit(benchmark::kMillisecond);

void BM_WeightAtlasLayout(benchmark::State& st) {
    const auto& ms = transformer();
    for (auto _ : st)
        benchmark::DoNotOptimize(layoutAtlas(ms));
}
BENCHMARK(BM_WeightAtlasLayout)->Unit(benchmark::kMicrosecond);

void BM_WeightAtlasRasterWhole(benchmark::State& st) {
    const auto& ms = transformer();
    const auto a = layoutAtlas(ms);
    for (auto _ : st)
        benchmark::DoNotOptimize(rasterizeAtlas(ms, a, 0, 0, double(a.width), double(a.height), 640, 400));
    st.counters["atlas_w"] = double(a.width);
    st.counters["atlas_h"] = double(a.height);
}
BENCHMARK(BM_WeightAtlasRasterWhole)->Unit(benchmark::kMillisecond);

void BM_WeightAtlasRasterOnePerCell(benchmark::State& st) {
    const auto& ms = transformer();
    const auto a = layoutAtlas(ms);
    for (auto _ : st)
        benchmark::DoNotOptimize(rasterizeAtlas(ms, a, 1000, 1000, 640, 400, 640, 400));
}
BENCHMARK(BM_WeightAtlasRasterOnePerCell)->Unit(benchmark::kMillisecond);

} // namespace

// --- (5) The scale: 16 layers of 65,536 neurons (1,048,576) over 1,000 snapshots ---
constexpr int64_t kBigLayers = 16, kBigNeurons = 65536, kBigSnapshots = 1000;
double g_millionWriteSeconds = 0;
ts::runs::RunReader* millionRun() {
    static std::unique_ptr<ts::runs::RunReader> reader = []() -> std::unique_ptr<ts::runs::RunReader> {
        const char* base = std::getenv("TS_BENCH_DIR");
        const fs::path dir = fs::path(base ? base : fs::temp_directory_path().string()) / "ts_bench_million_run";
        if (!fs::exists(dir / "run.json") || !fs::exists(dir / "run.h5")) {
            fs::remove_all(dir);
            ts::runs::WriterOptions o;
            o.dir = dir.string();
            o.info.histogramBins = 8;
            auto w = ts::runs::RunWriter::create(o);
            std::vector<ts::runs::RunLayer> layers;
            for (int64_t l = 0; l < kBigLayers; ++l)
                layers.push_back({"layer" + std::to_string(l), "Linear", {kBigNeurons}, kBigNeurons, 0});
            if (!w || !(*w)->begin(layers, {"loss"})) std::abort();
            // Per neuron a fixed profile, per snapshot a drift: smooth like real statistics, cheap to make.
            std::vector<float> profile(static_cast<size_t>(kBigNeurons));
            std::vector<float> stats(static_cast<size_t>(kBigNeurons * ts::runs::kNeuronStats));
            for (int64_t i = 0; i < kBigNeurons; ++i)
                profile[size_t(i)] = std::sin(0.37f * float(i % 97)) + 0.001f * float(i % 13);
            const auto t0 = std::chrono::steady_clock::now();
            for (int64_t s = 0; s < kBigSnapshots; ++s) {
                std::vector<ts::runs::LayerRecord> recs(static_cast<size_t>(kBigLayers));
                const float drift = std::sin(0.01f * float(s));
                for (int k = 0; k < ts::runs::kNeuronStats; ++k)
                    for (int64_t i = 0; i < kBigNeurons; ++i)
                        stats[size_t(k * kBigNeurons + i)] = profile[size_t(i)] * (1.0f + 0.1f * float(k)) + drift;
                for (auto& r : recs) {
                    r.activation = stats.data();
                    r.activationStride = kBigNeurons;
                    r.gradient = stats.data();
                    r.gradientStride = kBigNeurons;
                    r.rows = 64;
                }
                if (!(*w)->appendSnapshot(s, recs) || !(*w)->appendScalars(s, {{"loss", 1.0 / double(s + 1)}}))
                    std::abort();
            }
            (void)(*w)->close();
            g_millionWriteSeconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        }
        auto rr = ts::runs::RunReader::open(dir.string());
        if (!rr) std::abort();
        return std::move(rr.value());
    }();
    return reader.get();
}
bool millionWanted(benchmark::State& st) {
    const char* on = std::getenv("TS_BENCH_1M");
    if (on && std::string(on) == "1") return true;
    st.SkipWithError("set TS_BENCH_1M=1 to write and read the 1M-neuron x 1,000-snapshot run (about 5 GB)");
    return false;
}
void memoryCounters(benchmark::State& st) {
    rusage u{};
    getrusage(RUSAGE_SELF, &u);
    st.counters["peak_rss_MiB"] = double(u.ru_maxrss) / 1024.0;
    st.counters["write_s"] = g_millionWriteSeconds;
}

void BM_MillionOpenOverview(benchmark::State& st) { // the dynamics view: every layer's summaries + anomalies
    if (!millionWanted(st)) return;
    auto* r = millionRun();
    for (auto _ : st) {
        auto o = loadOverview(*r);
        if (!o) std::abort();
        benchmark::DoNotOptimize(o);
    }
    memoryCounters(st);
}
BENCHMARK(BM_MillionOpenOverview)->Unit(benchmark::kMillisecond);

void BM_MillionReadLayerRows(benchmark::State& st) { // baseline
    if (!millionWanted(st)) return;
    auto* r = millionRun();
    for (auto _ : st)
        benchmark::DoNotOptimize(r->layerSeries(7, ts::runs::Kind::Activation, 0, 512));
    memoryCounters(st);
}
BENCHMARK(BM_MillionReadLayerRows)->Unit(benchmark::kMillisecond);

void BM_MillionOpenLayerSeriesView(benchmark::State& st) {
    if (!millionWanted(st)) return;
    auto* r = millionRun();
    double read = 0, density = 0, sample = 0;
    for (auto _ : st) {
        auto v = loadLayerSeries(*r, 7, ts::runs::Kind::Activation, 0);
        if (!v) std::abort();
        read += v->readMs, density += v->densityMs, sample += v->sampleMs;
        st.counters["points"] = double(v->matrix.points);
    }
    st.counters["read_ms"] = read / double(st.iterations());
    st.counters["density_ms"] = density / double(st.iterations());
    st.counters["sample_ms"] = sample / double(st.iterations());
    memoryCounters(st);
}
BENCHMARK(BM_MillionOpenLayerSeriesView)->Unit(benchmark::kMillisecond);

BENCHMARK_MAIN();
