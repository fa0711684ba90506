// Training steps per second with capture off, every 10th step and every step, for the demo MLP (spirals and
// Fashion-MNIST) and a CNN with >= 1M neurons per sample (64x64 inputs). The variants run interleaved in blocks
// of 10 steps, so that load from other processes hits them alike. In three of them the consumer takes the
// snapshot and drops it; the fourth is the live view's loop without the draw: every step captured and every
// layer's activations and gradients reduced where they live (the statistics backend of the training device,
// the CUDA one for tensors on a GPU, into reused per-neuron statistics, with the live view's 48-bin histograms).
// TS_BENCH_DEVICE (auto, cpu, cuda, cuda:N; default auto) picks the training device. The draw of 1M neurons is
// render_bench's. Numbers and command: docs/PERFORMANCE.md, section "Capture".
#include <benchmark/benchmark.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>

#include <unistd.h>

#include "engine/capture/structure.hpp"
#include "engine/capture/trainer.hpp"
#include "engine/stats/reducer.hpp"

using namespace ts::capture;

namespace {

struct Variant {
    std::unique_ptr<Model> model;
    std::unique_ptr<Trainer> trainer;
    std::vector<double> blockMs; // per block of 10 steps
    int64_t snapshots = 0;
};

// TS_BENCH_DEVICE's device, or an error naming why it cannot be used.
ts::Expected<TrainingDevice> benchDevice() {
    const char* env = std::getenv("TS_BENCH_DEVICE");
    return chooseTrainingDevice(env && *env ? env : "auto");
}

// The live view's reduction of one snapshot (app/live_session.cpp, reduceMatrix): each layer's activations and
// gradients, on the device they live on, 48-bin histograms up to 2M values.
struct SnapshotReducer {
    std::unique_ptr<ts::stats::Reducer> reducer;
    ts::stats::NeuronStats scratch;
    int64_t reductions = 0;
    ts::Status reduce(Snapshot& s) {
        for (const auto& l : s.layers)
            for (const torch::Tensor* t : {&l.activation, &l.gradient}) {
                if (!t->defined() || t->numel() == 0) continue;
                torch::Tensor x = *t;
                const int64_t rows = x.size(0), cols = x.numel() / rows;
                ts::stats::TensorView v;
                if (!x.device().is_cpu() && reducer->backend() == ts::stats::Backend::Cuda) {
                    v = ts::stats::TensorView::matrix(x.data_ptr<float>(), rows, cols, l.name.c_str(),
                                                      ts::stats::MemoryKind::Device);
                    v.producer = producerStream(x.device());
                } else {
                    if (!x.device().is_cpu()) x = x.to(torch::kCPU);
                    v = ts::stats::TensorView::matrix(x.data_ptr<float>(), rows, cols, l.name.c_str());
                }
                ts::stats::ReduceOptions o;
                o.histogram.bins = x.numel() <= (int64_t(1) << 21) ? 48 : 0;
                auto r = reducer->reduce(v, scratch, o);
                if (!r) return r.error();
                ++reductions;
            }
        return ts::Status::ok();
    }
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

void runInterleaved(benchmark::State& state, const std::string& modelSpec, const DataSplit& data,
                    int64_t batch) {
    const bool copy = state.range(0) != 0; // TrainOptions::snapshotCopy
    constexpr int kBlock = 10;
    constexpr int kVariants = 4;
    const int64_t everyOf[kVariants] = {0, 10, 1, 1}; // the last one reduces its snapshots
    auto device = benchDevice();
    if (!device) return state.SkipWithError(device.error().message.c_str());
    state.SetLabel(std::string(copy ? "copy" : "move") + " on " + device->name);
    auto reducer = ts::stats::makeReducer(ts::stats::Backend::Auto, device->cuda ? device->index : -1);
    if (!reducer) return state.SkipWithError(reducer.error().message.c_str());
    SnapshotReducer reduction{std::move(reducer).value()};
    std::string failure;
    Variant v[kVariants];
    int64_t neurons = 0;
    for (int i = 0; i < kVariants; ++i) {
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
        o.snapshotCopy = copy;
        o.device = torchDevice(*device);
        auto t = Trainer::create(*v[i].model, data, o);
        if (!t) {
            state.SkipWithError(t.error().message.c_str());
            return;
        }
        v[i].trainer = std::move(t.value());
        Variant* self = &v[i];
        if (i == kVariants - 1)
            v[i].trainer->setSnapshotConsumer([self, &reduction, &failure](Snapshot& s) {
                self->snapshots += !s.layers.empty();
                if (auto st = reduction.reduce(s); !st && failure.empty()) failure = st.message();
            });
        else if (everyOf[i] > 0)
            v[i].trainer->setSnapshotConsumer([self](Snapshot& s) { self->snapshots += !s.layers.empty(); });
        for (int w = 0; w < kBlock; ++w)
            (void)v[i].trainer->step(); // warm-up: allocator, first-call paths
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
            var.blockMs.push_back(
                std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
        }
        if (!failure.empty()) return state.SkipWithError(("statistics: " + failure).c_str());
    }
    const double off = median(v[0].blockMs) / kBlock, k10 = median(v[1].blockMs) / kBlock,
                 k1 = median(v[2].blockMs) / kBlock, k1r = median(v[3].blockMs) / kBlock;
    state.counters["neurons/sample"] = double(neurons);
    state.counters["off_ms"] = off;
    state.counters["k10_ms"] = k10;
    state.counters["k1_ms"] = k1;
    state.counters["off_steps/s"] = 1000.0 / off;
    state.counters["k10_cost_%"] = 100.0 * (k10 / off - 1.0);
    state.counters["k1_cost_%"] = 100.0 * (k1 / off - 1.0);
    state.counters["k1+stats_ms"] = k1r;
    state.counters["k1+stats_cost_%"] = 100.0 * (k1r / off - 1.0);
    state.counters["snapshots"] = double(v[1].snapshots + v[2].snapshots + v[3].snapshots);
    state.counters["reductions"] = double(reduction.reductions);
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

// A TorchScript residual CNN (scripted here with /usr/bin/python3): stem conv, one residual block at 64x64
// with 32 channels, pooling, linear: 8 captured maps of 32x64x64, about 1.05M neurons per sample.
std::string scriptedResNet() {
    static const std::string path = []() -> std::string {
        const auto dir =
            std::filesystem::temp_directory_path() / ("ts_capture_bench_" + std::to_string(::getpid()));
        std::filesystem::create_directories(dir);
        const std::string pt = (dir / "resnet64.pt").string();
        const std::string py = (dir / "make.py").string();
        std::ofstream(py) << R"(import sys, torch, torch.nn as nn, torch.nn.functional as F
class Block(nn.Module):
    def __init__(s, c):
        super().__init__(); s.conv1 = nn.Conv2d(c, c, 3, padding=1); s.bn1 = nn.BatchNorm2d(c)
        s.conv2 = nn.Conv2d(c, c, 3, padding=1); s.relu = nn.ReLU()
    def forward(s, x):
        return s.relu(s.conv2(s.relu(s.bn1(s.conv1(x)))) + x)
class Net(nn.Module):
    def __init__(s):
        super().__init__(); s.stem = nn.Conv2d(1, 32, 3, padding=1); s.block = Block(32)
        s.pool = nn.AdaptiveAvgPool2d(4); s.fc = nn.Linear(32 * 16, 10)
    def forward(s, x):
        return s.fc(torch.flatten(s.pool(s.block(F.relu(s.stem(x)))), 1))
torch.manual_seed(0); torch.jit.script(Net()).save(sys.argv[1])
)";
        const std::string cmd = "/usr/bin/python3 '" + py + "' '" + pt + "' > /dev/null 2>&1";
        return std::system(cmd.c_str()) == 0 ? pt : std::string();
    }();
    return path;
}

void BM_ScriptResNet64x64(benchmark::State& state) {
    const std::string pt = scriptedResNet();
    if (pt.empty()) return state.SkipWithError("python3 with torch is needed to script the model");
    static const auto data = syntheticImages(512, 64, 10);
    runInterleaved(state, pt, data, 16);
}

} // namespace

BENCHMARK(BM_MlpSpirals)->Arg(0)->Arg(1)->Iterations(200)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_MlpFashionMnist)->Arg(0)->Arg(1)->Iterations(200)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_Cnn1MNeurons64x64)->Arg(0)->Arg(1)->Iterations(12)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_ScriptResNet64x64)->Arg(0)->Arg(1)->Iterations(12)->Unit(benchmark::kMillisecond);
BENCHMARK_MAIN();
