// Fused statistics of a [64 x 1M] float32 matrix against baselines measured in the same run: a plain read of
// the same bytes (one thread and the whole pool) and the LibTorch op chain computing the same statistics.
// Table: bench/stats/compare.py. Numbers and command: docs/PERFORMANCE.md, section "Statistics".
#include <benchmark/benchmark.h>

#include <cstdint>
#include <cstring>
#include <random>
#include <vector>

#include "engine/core/thread_pool.hpp"
#include "engine/stats/cpu_reducer.hpp"
#ifdef TS_BENCH_TORCH
#include <torch/torch.h>
#endif

using namespace ts::stats;

namespace {

constexpr std::int64_t kBatch = 64;
constexpr std::int64_t kNeurons = 1 << 20;

// Activation-like data, generated once: offset normals with ~20% exact zeros (seeded, never all zeros).
const std::vector<float>& data() {
    static std::vector<float> x = [] {
        std::vector<float> v(static_cast<std::size_t>(kBatch * kNeurons));
        ts::ThreadPool::global().parallelFor(kBatch, 1, [&](std::size_t r0, std::size_t r1, unsigned) {
            for (std::size_t r = r0; r < r1; ++r) {
                std::mt19937 rng(static_cast<std::uint32_t>(1000 + r));
                std::normal_distribution<float> nd(0.3f, 1.5f);
                std::uniform_int_distribution<int> z(0, 4);
                float* row = v.data() + r * kNeurons;
                for (std::int64_t j = 0; j < kNeurons; ++j)
                    row[j] = z(rng) == 0 ? 0.0f : nd(rng);
            }
        });
        return v;
    }();
    return x;
}

constexpr std::size_t kBytes = static_cast<std::size_t>(kBatch * kNeurons) * sizeof(float);

// The bandwidth baseline: XOR of every 32-bit word (integer, so it vectorises without reassociation issues).
__attribute__((target_clones("arch=x86-64-v3", "default"))) std::uint32_t readWords(const std::uint32_t* p,
                                                                                    std::size_t n) {
    std::uint32_t acc[16] = {};
    std::size_t i = 0;
    for (; i + 16 <= n; i += 16)
        for (int k = 0; k < 16; ++k)
            acc[k] ^= p[i + k];
    for (; i < n; ++i)
        acc[0] ^= p[i];
    std::uint32_t r = 0;
    for (auto a : acc)
        r ^= a;
    return r;
}

void BM_PlainRead_1Thread(benchmark::State& state) {
    const auto& x = data();
    const auto* words = reinterpret_cast<const std::uint32_t*>(x.data());
    for (auto _ : state)
        benchmark::DoNotOptimize(readWords(words, x.size()));
    state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations()) * kBytes);
}

void BM_PlainRead_Pool(benchmark::State& state) {
    const auto& x = data();
    const auto* words = reinterpret_cast<const std::uint32_t*>(x.data());
    auto& pool = ts::ThreadPool::global();
    std::vector<std::uint32_t> part(pool.workerCount());
    const std::size_t chunk = 1 << 16; // words per task unit (256 KiB)
    const std::size_t units = (x.size() + chunk - 1) / chunk;
    for (auto _ : state) {
        std::fill(part.begin(), part.end(), 0u);
        pool.parallelFor(units, 1, [&](std::size_t b, std::size_t e, unsigned w) {
            const std::size_t end = std::min(x.size(), e * chunk);
            part[w] ^= readWords(words + b * chunk, end - b * chunk);
        });
        benchmark::DoNotOptimize(part.data());
        benchmark::ClobberMemory();
    }
    state.counters["threads"] = pool.workerCount();
    state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations()) * kBytes);
}

void runFused(benchmark::State& state, const ReduceOptions& options) {
    const auto& x = data();
    CpuReducer reducer({static_cast<int>(state.range(0)), static_cast<int>(state.range(1))});
    std::vector<float> out(statsBytes(kNeurons) / sizeof(float));
    HostStatsDestination dest(out.data(), out.size() * sizeof(float));
    const auto view = TensorView::matrix(x.data(), kBatch, kNeurons, "bench");
    for (auto _ : state) {
        auto layer = reducer.reduce(view, dest, options);
        if (!layer) {
            state.SkipWithError(layer.error().message.c_str());
            break;
        }
        benchmark::DoNotOptimize(layer->l2Norm);
        benchmark::DoNotOptimize(out.data());
        benchmark::ClobberMemory();
    }
    state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations()) * kBytes);
}

void BM_FusedStats_Cpu(benchmark::State& state) {
    runFused(state, {});
}

// The same reduction on the first 8,192 neurons' worth of data ([64 x 8192], 2 MB: in the two cores' caches
// after the first run): the arithmetic alone, without DRAM. Bytes per second comparable with the rows above.
void BM_FusedStats_Cpu_Cached(benchmark::State& state) {
    constexpr std::int64_t n = 8192;
    const std::vector<float> x(data().begin(), data().begin() + kBatch * n);
    CpuReducer reducer; // the defaults
    std::vector<float> out(statsBytes(n) / sizeof(float));
    HostStatsDestination dest(out.data(), out.size() * sizeof(float));
    const auto view = TensorView::matrix(x.data(), kBatch, n, "bench");
    for (auto _ : state) {
        auto layer = reducer.reduce(view, dest, {});
        if (!layer) {
            state.SkipWithError(layer.error().message.c_str());
            break;
        }
        benchmark::DoNotOptimize(out.data());
        benchmark::ClobberMemory();
    }
    state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations()) * kBatch * n * 4);
}

// The statistics plus a 64-bin histogram over a given range and the top 16 neurons by mean |x| (what the
// live view asks for), and each of the two alone on top of the statistics.
void BM_FusedStats_Cpu_Histogram64(benchmark::State& state) {
    ReduceOptions o;
    o.histogram.bins = 64;
    o.histogram.lo = -6.0f;
    o.histogram.hi = 6.0f;
    o.topK = 16;
    runFused(state, o);
}
void BM_FusedStats_Cpu_HistogramOnly(benchmark::State& state) {
    ReduceOptions o;
    o.histogram.bins = 64;
    o.histogram.lo = -6.0f;
    o.histogram.hi = 6.0f;
    runFused(state, o);
}
void BM_FusedStats_Cpu_TopKOnly(benchmark::State& state) {
    ReduceOptions o;
    o.topK = 16;
    runFused(state, o);
}

#ifdef TS_BENCH_TORCH
void BM_TorchChain(benchmark::State& state) {
    const auto& x = data();
    auto t = torch::from_blob(const_cast<float*>(x.data()), {kBatch, kNeurons}, torch::kFloat32);
    for (auto _ : state) {
        auto mean = t.mean(0);
        auto meanAbs = t.abs().mean(0);
        auto var = t.var(0, /*unbiased=*/false);
        auto mn = t.amin(0);
        auto mx = t.amax(0);
        auto zero = (t == 0).to(torch::kFloat32).mean(0);
        auto nans = t.isnan().sum(0);
        auto infs = t.isinf().sum(0);
        benchmark::DoNotOptimize(mean.data_ptr());
        benchmark::DoNotOptimize(meanAbs.data_ptr());
        benchmark::DoNotOptimize(var.data_ptr());
        benchmark::DoNotOptimize(mn.data_ptr());
        benchmark::DoNotOptimize(mx.data_ptr());
        benchmark::DoNotOptimize(zero.data_ptr());
        benchmark::DoNotOptimize(nans.data_ptr());
        benchmark::DoNotOptimize(infs.data_ptr());
    }
    state.counters["torch_threads"] = torch::get_num_threads();
    state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations()) * kBytes);
}
#endif

} // namespace

BENCHMARK(BM_PlainRead_1Thread)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_PlainRead_Pool)->Unit(benchmark::kMillisecond)->UseRealTime();
// Args: tile rows, tile columns (neurons per block; 0: the default, from the layer's width: 4096 here).
BENCHMARK(BM_FusedStats_Cpu)->Unit(benchmark::kMillisecond)->UseRealTime()->Args({64, 0}); // the defaults
BENCHMARK(BM_FusedStats_Cpu_Cached)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_FusedStats_Cpu)
    ->Name("BM_FusedStats_Cpu_Tiles")
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime()
    ->Args({64, 256}) // the default before 2026-12-07 (afternoon)
    ->Args({64, 1024})
    ->Args({128, 4096})
    ->Args({32, 4096});
BENCHMARK(BM_FusedStats_Cpu_Histogram64)->Unit(benchmark::kMillisecond)->UseRealTime()->Args({64, 0});
BENCHMARK(BM_FusedStats_Cpu_HistogramOnly)->Unit(benchmark::kMillisecond)->UseRealTime()->Args({64, 0});
BENCHMARK(BM_FusedStats_Cpu_TopKOnly)->Unit(benchmark::kMillisecond)->UseRealTime()->Args({64, 0});
#ifdef TS_BENCH_TORCH
BENCHMARK(BM_TorchChain)->Unit(benchmark::kMillisecond)->UseRealTime()->Iterations(3);
#endif

BENCHMARK_MAIN();
