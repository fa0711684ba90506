// Training steps per second with capture off, every 10th step and every step, for the demo MLP (spirals and
// Fashion-MNIST) and a CNN with >= 1M neurons per sample (64x64 inputs). The three variants run interleaved
// in blocks of 10 steps, so that load from other processes hits them alike; the consumer takes the snapshot
// and drops it (the statistics reduction is the stats module's cost, measured in its own benchmark).
// Numbers and command: docs/PERFORMANCE.md, section "Capture".
#include <benchmark/benchmark.h>

#include <algorithm>
#include <chrono>
#include <filesystem>

#include "engine/capture/structure.hpp"
#include "engine/capture/trainer.hpp"

using namespace ts::capture;

namespace {

struct Variant {
    std::unique_ptr<Model> model;
    std::unique_ptr<Trainer> trainer;
    std::vector<double> blockMs; // per block of 10 steps
    int64_t snapshots = 0;
};

double median(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v.empty() ? 0.0 : v[v.size() / 2];
}

DataSplit syntheticImages(int64_t n, int64_t side, int64_t classes) {
    DataSplit s;
    auto gen = at::detail::createCPUGenerator(42);
    s.train.name = "synthetic " + std::to_string(side) + "x" + std::to_string(side);
    s.train.inputs = at::rand({n, 1, side, side}, gen);
    s.train.labels = at::randint(classes, {n}, gen);
    s.train.sampleShape = {1, side, side};
    s.train.numClasses = classes;
    s.validation = s.train.slice(0, std::min<int64_t>(n, 64));
    return s;
}

void runInterleaved(benchmark::State& state, const std::string& modelSpec, const DataSplit& data, int64_t batch) {
    constexpr int kBlock = 10;
    const int64_t everyOf[3] = {0, 10, 1};
    Variant v[3];
    int64_t neurons = 0;
    for (int i = 0; i < 3; ++i) {
        torch::manual_seed(7);
        auto m = loadModel(modelSpec, data.train.sampleShape, data.train.numClasses);
        if (!m) {
            state.SkipWithError(m.error().message.c_str());
            return;
        }
        v[i].model = std::move(m.value());
        if (i == 0) {
            auto net = describeNetwork(*v[i].model, data.train.sampleShape);
            if (net) neurons = net->totalNeurons();
        }
        TrainOptions o;
        o.learningRate = 1e-3;
        o.batchSize = batch;
        o.maxSteps = int64_t(1) << 40;
        o.captureEvery = everyOf[i];
        auto t = Trainer::create(*v[i].model, data, o);
        if (!t) {
            state.SkipWithError(t.error().message.c_str());
            return;
        }
        v[i].trainer = std::move(t.value());
        Variant* self = &v[i];
        if (everyOf[i] > 0) v[i].trainer->setSnapshotConsumer([self](Snapshot& s) { self->snapshots += !s.layers.empty(); });
        for (int w = 0; w < kBlock; ++w) (void)v[i].trainer->step(); // warm-up: allocator, first-call paths
    }
    for (auto _ : state) {
        for (auto& var : v) {
            const auto t0 = std::chrono::steady_clock::now();
            for (int s = 0; s < kBlock; ++s) {
                auto r = var.trainer->step();
                if (!r) {
                    state.SkipWithError(r.error().message.c_str());
                    return;
                }
            }
            var.blockMs.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
        }
    }
    const double off = median(v[0].blockMs) / kBlock, k10 = median(v[1].blockMs) / kBlock, k1 = median(v[2].blockMs) / kBlock;
    state.counters["neurons/sample"] = double(neurons);
    state.counters["off_ms"] = off;
    state.counters["k10_ms"] = k10;
    state.counters["k1_ms"] = k1;
    state.counters["off_steps/s"] = 1000.0 / off;
    state.counters["k10_cost_%"] = 100.0 * (k10 / off - 1.0);
    state.counters["k1_cost_%"] = 100.0 * (k1 / off - 1.0);
    state.counters["snapshots"] = double(v[1].snapshots + v[2].snapshots);
}

void BM_MlpSpirals(benchmark::State& state) {
    static const auto data = loadDataset("spirals", {.samples = 4000});
    if (!data) return state.SkipWithError(data.error().message.c_str());
    runInterleaved(state, "builtin:mlp:64,32", data.value(), 64);
}

void BM_MlpFashionMnist(benchmark::State& state) {
    static const auto data = loadDataset("fashion-mnist", {.limit = 20000});
    if (!data) return state.SkipWithError(data.error().message.c_str());
    runInterleaved(state, "builtin:mlp:64,32", data.value(), 64);
}

void BM_Cnn1MNeurons64x64(benchmark::State& state) {
    static const auto data = syntheticImages(512, 64, 10);
    runInterleaved(state, "builtin:cnn:128,32", data, 16);
}

} // namespace

BENCHMARK(BM_MlpSpirals)->Iterations(200)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_MlpFashionMnist)->Iterations(200)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_Cnn1MNeurons64x64)->Iterations(8)->Unit(benchmark::kMillisecond);
BENCHMARK_MAIN();
