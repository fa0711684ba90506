// LRP's cost against the baseline it is judged by: one forward + backward pass of the same model on the same
// input (the gradient of the explained logit, parameters requiring gradients as in training). ResNet-18
// (torchvision, random weights, scripted by tests/explain/make_fixtures.py at start-up) at 1x3x224x224.
#include <benchmark/benchmark.h>

#include <cstdio>
#include <cstring>
#include <cstdlib>
#include <filesystem>
#include <string>

#include "engine/capture/model.hpp"
#include "engine/explain/attribution.hpp"
#include "engine/explain/projection.hpp"

namespace {

using namespace ts;

capture::Model& resnet() {
    static std::unique_ptr<capture::Model> model = [] {
        const auto dir = std::filesystem::temp_directory_path() / "ts_explain_bench_models";
        if (!std::filesystem::exists(dir / "resnet18.pt")) {
            const std::string cmd = std::string("/usr/bin/python3 ") + TS_SOURCE_DIR +
                                    "/tests/explain/make_fixtures.py " + dir.string() + " > /dev/null";
            if (std::system(cmd.c_str()) != 0) {
                std::fprintf(stderr, "explain_bench: make_fixtures.py failed\n");
                std::exit(2);
            }
        }
        auto m = capture::loadModel((dir / "resnet18.pt").string(), {}, 0);
        if (!m) {
            std::fprintf(stderr, "explain_bench: %s\n", m.error().message.c_str());
            std::exit(2);
        }
        (*m)->setTraining(false);
        return std::move(*m);
    }();
    return *model;
}

torch::Tensor image() {
    static torch::Tensor x = torch::rand({1, 3, 224, 224}, torch::TensorOptions().dtype(torch::kFloat32));
    return x;
}

// Baseline: forward, then backward of the predicted class's logit to the input and every parameter.
void BM_ForwardBackward(benchmark::State& state) {
    auto& m = resnet();
    for (auto _ : state) {
        torch::Tensor x = image().clone().requires_grad_(true);
        torch::Tensor logits = m.forward(x);
        const int64_t c = logits.argmax(1).item<int64_t>();
        logits[0][c].backward();
        benchmark::DoNotOptimize(x.grad().data_ptr<float>());
    }
    for (auto& [name, p] : m.namedParameters())
        if (p.grad().defined()) p.mutable_grad().reset();
}

void BM_Attribution(benchmark::State& state, explain::Method method) {
    auto& m = resnet();
    explain::AttributionOptions o;
    o.method = method;
    for (auto _ : state) {
        auto r = explain::attribute(m, image(), o);
        if (!r) {
            state.SkipWithError(r.error().message.c_str());
            return;
        }
        benchmark::DoNotOptimize(r->map.data_ptr<float>());
    }
    for (auto& [name, p] : m.namedParameters())
        if (p.grad().defined()) p.mutable_grad().reset();
}

BENCHMARK(BM_ForwardBackward)->Unit(benchmark::kMillisecond)->MinTime(2.0);
BENCHMARK_CAPTURE(BM_Attribution, GradTimesInput, explain::Method::GradTimesInput)
    ->Unit(benchmark::kMillisecond)
    ->MinTime(2.0);
BENCHMARK_CAPTURE(BM_Attribution, LrpEpsilon, explain::Method::LrpEpsilon)->Unit(benchmark::kMillisecond)->MinTime(2.0);
BENCHMARK_CAPTURE(BM_Attribution, LrpAlphaBeta, explain::Method::LrpAlphaBeta)
    ->Unit(benchmark::kMillisecond)
    ->MinTime(2.0);

// Arguments: points, Barnes-Hut theta x 10.
// 10,000 points x 512 dimensions in 10 planted Gaussian clusters (the size of a penultimate layer over a test
// set): PCA to 50 dimensions, exact 90 nearest neighbours, 750 Barnes-Hut steps. The baseline is PCA alone.
explain::Matrix clusters(int64_t n, int64_t d) {
    explain::Matrix m{n, d, std::vector<float>(size_t(n * d))};
    torch::manual_seed(3);
    torch::Tensor centres = torch::randn({10, d}) * 3.0;
    torch::Tensor x = centres.index_select(0, torch::arange(n) % 10) + torch::randn({n, d});
    std::memcpy(m.values.data(), x.contiguous().data_ptr<float>(), m.values.size() * sizeof(float));
    return m;
}

void BM_Pca50(benchmark::State& state) {
    const auto x = clusters(10000, 512);
    for (auto _ : state) {
        auto p = explain::pca(x, 50);
        benchmark::DoNotOptimize(p->points.values.data());
    }
}

void BM_Tsne(benchmark::State& state) {
    const auto x = clusters(state.range(0), 512);
    std::vector<int64_t> labels(size_t(x.rows));
    for (int64_t i = 0; i < x.rows; ++i)
        labels[size_t(i)] = i % 10;
    double purity = 0;
    for (auto _ : state) {
        explain::TsneOptions o;
        o.theta = double(state.range(1)) / 10.0;
        o.groupedWalk = state.range(2) != 0;
        auto y = explain::tsne(x, o);
        if (!y) {
            state.SkipWithError(y.error().message.c_str());
            return;
        }
        purity = explain::knnPurity(*y, labels, 10);
    }
    state.counters["purity10"] = purity; // 10-NN label purity of the embedding: the result is usable
}

BENCHMARK(BM_Pca50)->Unit(benchmark::kMillisecond)->Iterations(1);
// Arguments: points, theta x 10, grouped walk (1) or a walk per point (0, the baseline).
BENCHMARK(BM_Tsne)->Args({10000, 5, 0})->Args({10000, 5, 1})->Args({10000, 8, 1})->Unit(benchmark::kMillisecond)->Iterations(1);

} // namespace

BENCHMARK_MAIN();
