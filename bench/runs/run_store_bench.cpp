// The run store: (1) one neuron's series over a 10,000-snapshot run read through the time pyramids against
// reading every snapshot (the baseline: a statistic without a pyramid), and (2) committing a snapshot of a
// 1M-neuron layer against writing the same bytes raw to the same disk, with the writer's resident set before
// and after. Numbers and command: docs/PERFORMANCE.md, section "Run store".
#include <benchmark/benchmark.h>

#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <random>
#include <vector>

#include "engine/runs/run_store.hpp"

using namespace ts::runs;
namespace fs = std::filesystem;

namespace {

constexpr int64_t kSnapshots = 10000;
constexpr int64_t kNeurons = 4096;

fs::path benchDir(const char* name) {
    const char* base = std::getenv("TS_BENCH_DIR");
    return fs::path(base ? base : fs::temp_directory_path().string()) / name;
}

long rssKiB() {
    long kb = 0;
    if (FILE* f = std::fopen("/proc/self/status", "r")) {
        char line[256];
        while (std::fgets(line, sizeof line, f))
            if (std::sscanf(line, "VmRSS: %ld kB", &kb) == 1) break;
        std::fclose(f);
    }
    return kb;
}

// A 10,000-snapshot run of one 4096-neuron layer, written once per process (about 10 s here).
RunReader& longRun() {
    static std::unique_ptr<RunReader> reader = [] {
        const fs::path dir = benchDir("ts_bench_long_run");
        fs::remove_all(dir);
        WriterOptions o;
        o.dir = dir.string();
        o.info.histogramBins = 8;
        auto w = RunWriter::create(o);
        if (!w || !(*w)->begin({{"layer", "Linear", {kNeurons}, kNeurons, 0}}, {"loss"})) std::abort();
        std::vector<float> stats(size_t(kNeurons * kNeuronStats));
        std::mt19937 rng(7);
        std::normal_distribution<float> nd(0.0f, 1.0f);
        for (int64_t s = 0; s < kSnapshots; ++s) {
            for (size_t i = 0; i < stats.size(); ++i)
                stats[i] = std::sin(0.001f * float(s) + 0.01f * float(i)) + 0.05f * nd(rng);
            LayerRecord r;
            r.activation = stats.data();
            r.activationStride = kNeurons;
            r.gradient = stats.data();
            r.gradientStride = kNeurons;
            r.rows = 64;
            if (!(*w)->appendSnapshot(s, {r})) std::abort();
        }
        (void)(*w)->close();
        auto r = RunReader::open(dir.string());
        if (!r) std::abort();
        return std::move(r.value());
    }();
    return *reader;
}

void BM_SeriesFromPyramid(benchmark::State& state) {
    RunReader& r = longRun();
    std::mt19937 rng(1);
    std::uniform_int_distribution<int64_t> pick(0, kNeurons - 1);
    size_t points = 0;
    for (auto _ : state) {
        auto s = r.series(0, pick(rng), Kind::Activation, 0, int(state.range(0)));
        if (!s) state.SkipWithError("series failed");
        points = s->mean.size();
        benchmark::DoNotOptimize(s->mean.data());
    }
    state.counters["points"] = double(points);
    state.counters["snapshots"] = double(r.snapshots());
}
BENCHMARK(BM_SeriesFromPyramid)->Arg(1000)->Unit(benchmark::kMillisecond);

// Baseline: the same neuron's series from every snapshot (variance has no pyramid).
void BM_SeriesEverySnapshot(benchmark::State& state) {
    RunReader& r = longRun();
    std::mt19937 rng(1);
    std::uniform_int_distribution<int64_t> pick(0, kNeurons - 1);
    for (auto _ : state) {
        auto s = r.series(0, pick(rng), Kind::Activation, 2, 1000);
        if (!s) state.SkipWithError("series failed");
        benchmark::DoNotOptimize(s->mean.data());
    }
}
BENCHMARK(BM_SeriesEverySnapshot)->Unit(benchmark::kMillisecond);

constexpr int64_t kBigNeurons = 1 << 20;

std::vector<float>& bigStats() {
    static std::vector<float> v = [] {
        std::vector<float> x(size_t(kBigNeurons * kNeuronStats));
        std::mt19937 rng(3);
        std::normal_distribution<float> nd(0.2f, 1.0f);
        for (auto& f : x)
            f = nd(rng);
        return x;
    }();
    return v;
}

// Committing one snapshot of a 1M-neuron layer (activation and gradient statistics: 64 MB of floats).
void BM_CommitSnapshot1M(benchmark::State& state) {
    const fs::path dir = benchDir("ts_bench_big_run");
    fs::remove_all(dir);
    WriterOptions o;
    o.dir = dir.string();
    o.info.histogramBins = 8;
    auto w = RunWriter::create(o);
    if (!w || !(*w)->begin({{"big", "Conv2d", {64, 128, 128}, kBigNeurons, 0}}, {"loss"})) {
        state.SkipWithError("cannot create the run");
        return;
    }
    std::vector<float>& stats = bigStats();
    LayerRecord r;
    r.activation = stats.data();
    r.activationStride = kBigNeurons;
    r.gradient = stats.data();
    r.gradientStride = kBigNeurons;
    r.rows = 32;
    int64_t step = 0;
    for (int i = 0; i < 3; ++i) // warm-up: first chunks, first pyramid rows
        (void)(*w)->appendSnapshot(step++, {r});
    const long before = rssKiB();
    for (auto _ : state)
        if (!(*w)->appendSnapshot(step++, {r})) state.SkipWithError("append failed");
    state.counters["rss_growth_MiB"] = double(rssKiB() - before) / 1024.0;
    state.counters["snapshots"] = double(step);
    state.SetBytesProcessed(int64_t(state.iterations()) * int64_t(stats.size() * 2 * sizeof(float)));
    (void)(*w)->close();
    fs::remove_all(dir);
}
BENCHMARK(BM_CommitSnapshot1M)->Unit(benchmark::kMillisecond)->Iterations(40);

// Baseline: the same 64 MB written raw (fwrite + fflush) to the same folder.
void BM_RawWrite64MB(benchmark::State& state) {
    const fs::path path = benchDir("ts_bench_raw.bin");
    std::vector<float>& stats = bigStats();
    for (auto _ : state) {
        FILE* f = std::fopen(path.c_str(), "wb");
        std::fwrite(stats.data(), sizeof(float), stats.size(), f);
        std::fwrite(stats.data(), sizeof(float), stats.size(), f);
        std::fflush(f);
        std::fclose(f);
    }
    state.SetBytesProcessed(int64_t(state.iterations()) * int64_t(stats.size() * 2 * sizeof(float)));
    fs::remove(path);
}
BENCHMARK(BM_RawWrite64MB)->Unit(benchmark::kMillisecond)->Iterations(10);

} // namespace

BENCHMARK_MAIN();
