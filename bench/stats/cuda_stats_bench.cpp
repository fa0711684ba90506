// CUDA statistics kernels against the device's own copy bandwidth, measured in the same run (torch-free, so
// the binary runs on any machine with a CUDA driver). Each benchmark reports GB/s of bytes the kernel must
// move: the fused statistics read the tensor once (rows x cols x 4 bytes); a device-to-device copy of the
// same tensor reads and writes it (2x), which is the ceiling the kernel is compared with.
//
// Without a usable device every benchmark is skipped with the reason, unless TS_REQUIRE_GPU=1, where the
// program fails instead (so a first run on a GPU cannot pass silently).
#include <benchmark/benchmark.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <vector>

#include "engine/stats/stats_layout.h"
#include "kernels/runtime.hpp"
#include "kernels/stats_kernels.hpp"

namespace {

using namespace ts::kernels;

struct Device {
    bool ok = false;
    std::string reason;
    DeviceInfo info;
    Stream stream;
};

Device& device() {
    static Device d = [] {
        Device r;
        auto info = probeDevice();
        if (!info) {
            r.reason = info.error().message;
            return r;
        }
        auto s = Stream::create();
        if (!s) {
            r.reason = s.error().message;
            return r;
        }
        r.info = *info;
        r.stream = std::move(s.value());
        r.ok = true;
        return r;
    }();
    return d;
}

bool requireGpu() {
    const char* e = std::getenv("TS_REQUIRE_GPU");
    return e && std::string(e) == "1";
}

// A [rows x cols] float tensor of seeded uniform values on the device.
DeviceBuffer deviceTensor(int64_t rows, int64_t cols) {
    std::vector<float> h(size_t(rows * cols));
    std::mt19937 rng(7);
    std::uniform_real_distribution<float> u(-2.0f, 2.0f);
    for (auto& v : h)
        v = u(rng);
    auto d = DeviceBuffer::allocate(h.size() * sizeof(float));
    if (!d) std::abort();
    if (!copyAsync(d->data(), h.data(), h.size() * sizeof(float), device().stream.handle())) std::abort();
    if (!device().stream.synchronize()) std::abort();
    return std::move(d.value());
}

// kInner launches of fn per iteration with one synchronisation (a launch is ~0.1 ms; a sync per launch would
// add ~10%). Rates count kInner times the bytes.
constexpr int kInner = 20;
template <class Fn> void timeLoop(benchmark::State& state, Fn&& fn) {
    for (int w = 0; w < 3; ++w)
        fn();
    if (!device().stream.synchronize()) state.SkipWithError("warm-up failed");
    for (auto _ : state) {
        auto t0 = std::chrono::steady_clock::now();
        for (int i = 0; i < kInner; ++i)
            fn();
        if (!device().stream.synchronize()) state.SkipWithError("launch failed");
        state.SetIterationTime(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    }
}

bool skipWithoutDevice(benchmark::State& state) {
    if (device().ok) return false;
    state.SkipWithError(("no CUDA device: " + device().reason).c_str());
    return true;
}

void BM_DeviceCopy(benchmark::State& state) {
    if (skipWithoutDevice(state)) return;
    const int64_t rows = state.range(0), cols = state.range(1);
    DeviceBuffer src = deviceTensor(rows, cols);
    auto dst = DeviceBuffer::allocate(src.bytes());
    if (!dst) return state.SkipWithError(dst.error().message.c_str());
    timeLoop(state, [&] {
        if (!copyAsync(dst->data(), src.data(), src.bytes(), device().stream.handle())) std::abort();
    });
    state.counters["GB/s"] = benchmark::Counter(2.0 * kInner * double(src.bytes()), benchmark::Counter::kIsIterationInvariantRate);
}

void BM_FusedStats_Cuda(benchmark::State& state) {
    if (skipWithoutDevice(state)) return;
    const int64_t rows = state.range(0), cols = state.range(1);
    DeviceBuffer x = deviceTensor(rows, cols);
    const int sm = device().info.smCount;
    auto out = DeviceBuffer::allocate(ts::stats::statsBytes(cols));
    auto partials = DeviceBuffer::allocate(size_t(neuronStatsLayerPartials(cols)) * sizeof(LayerPartial));
    auto scratch = DeviceBuffer::allocate(std::max<size_t>(neuronStatsScratchBytes(rows, cols, sm), 16));
    if (!out || !partials || !scratch) return state.SkipWithError("device allocation failed");
    NeuronStatsArgs a;
    a.x = x.as<float>();
    a.rows = rows;
    a.cols = cols;
    a.ld = cols;
    a.out = out->as<float>();
    a.outStride = ts::stats::statsStride(cols);
    a.layerPartials = partials->as<LayerPartial>();
    a.scratch = scratch->data();
    a.smCount = sm;
    timeLoop(state, [&] {
        if (!launchNeuronStats(a, device().stream.handle())) std::abort();
    });
    state.counters["GB/s"] = benchmark::Counter(double(kInner) * double(x.bytes()), benchmark::Counter::kIsIterationInvariantRate);
}

// [64 x 1M] is the design's reference tensor (268 MB); the others are a wide and a tall layer.
void shapes(benchmark::internal::Benchmark* b) {
    b->Args({64, 1 << 20})->Args({4096, 16384})->Args({256, 262144})->UseManualTime()->Unit(benchmark::kMicrosecond);
}
BENCHMARK(BM_DeviceCopy)->Apply(shapes);
BENCHMARK(BM_FusedStats_Cuda)->Apply(shapes);

} // namespace

int main(int argc, char** argv) {
    if (!device().ok && requireGpu()) {
        std::fprintf(stderr, "cuda_stats_bench: TS_REQUIRE_GPU=1 but no CUDA device: %s\n", device().reason.c_str());
        return 1;
    }
    if (device().ok)
        std::printf("device: %s (sm_%d%d, %d SMs)\n", device().info.name.c_str(), device().info.major,
                    device().info.minor, device().info.smCount);
    benchmark::Initialize(&argc, argv);
    benchmark::RunSpecifiedBenchmarks();
    benchmark::Shutdown();
    return 0;
}
