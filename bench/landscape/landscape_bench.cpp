// A 51x51 loss surface of an MLP 784-64-32-10 on 2,000 Fashion-MNIST-shaped samples: the batched path
// against the per-point path (set weights, run the model; the reference scripts' way) measured in the same
// run. Numbers and command: docs/PERFORMANCE.md, section "Loss landscape".
#include <benchmark/benchmark.h>
#include <torch/torch.h>

#include <ATen/CPUGeneratorImpl.h>

#include <cstdlib>
#include <filesystem>

#include "engine/landscape/batched_kernels.hpp"
#include "engine/landscape/evaluator.hpp"
#include "engine/landscape/hessian.hpp"

using namespace ts::landscape;

namespace {

// The benchmark's own Model: Flatten -> Linear 784-64 -> ReLU -> Linear 64-32 -> ReLU -> Linear 32-10.
class MlpModel : public ts::capture::Model {
  public:
    MlpModel() {
        torch::manual_seed(2018);
        m_seq->push_back(torch::nn::Flatten());
        m_seq->push_back(torch::nn::Linear(784, 64));
        m_seq->push_back(torch::nn::ReLU());
        m_seq->push_back(torch::nn::Linear(64, 32));
        m_seq->push_back(torch::nn::ReLU());
        m_seq->push_back(torch::nn::Linear(32, 10));
    }
    std::string name() const override { return "mlp-784-64-32-10"; }
    torch::Tensor forward(const torch::Tensor& x) override { return m_seq->forward(x); }
    ts::capture::ForwardCapture forwardCapture(const torch::Tensor& x) override { return {forward(x), {}}; }
    ts::capture::NamedTensors namedParameters() override {
        ts::capture::NamedTensors out;
        for (auto& p : m_seq->named_parameters(true))
            out.emplace_back(p.key(), p.value());
        return out;
    }
    ts::capture::NamedTensors namedBuffers() override { return {}; }
    void setTraining(bool on) override { m_seq->train(on); }

  private:
    torch::nn::Sequential m_seq;
};

struct Fixture {
    MlpModel model;
    std::unique_ptr<SurfaceEvaluator> batched, unbatched;
    GridSpec grid{{-1, 1, 51}, GridAxis{-1, 1, 51}};

    explicit Fixture(int64_t chunk) {
        auto gen = at::make_generator<at::CPUGeneratorImpl>(7);
        EvalSet data{torch::rand({2000, 1, 28, 28}, gen), torch::randint(0, 10, {2000}, gen)};
        auto space = parameterSpace(model, DirType::Weights);
        auto dirs = randomDirections(space.snapshot(), {}, 123, true);
        batched = std::move(
            SurfaceEvaluator::create(model, space, dirs, data, {EvalMode::Batched, 4096, chunk}).value());
        unbatched =
            std::move(SurfaceEvaluator::create(model, space, dirs, data, {EvalMode::Unbatched}).value());
    }
};

void BM_Surface51_Batched(benchmark::State& state) {
    Fixture f(state.range(0));
    GridRunOptions run;
    run.progressive = false;
    for (auto _ : state) {
        auto s = f.batched->evaluateGrid(f.grid, run);
        benchmark::DoNotOptimize(s->loss.data());
    }
    state.counters["points"] = 51 * 51;
    state.counters["torch_threads"] = torch::get_num_threads();
}

void BM_Surface51_Unbatched(benchmark::State& state) {
    Fixture f(0);
    GridRunOptions run;
    run.progressive = false;
    for (auto _ : state) {
        auto s = f.unbatched->evaluateGrid(f.grid, run);
        benchmark::DoNotOptimize(s->loss.data());
    }
    state.counters["points"] = 51 * 51;
    state.counters["torch_threads"] = torch::get_num_threads();
}

// The two fused inner loops alone, for the whole 51x51 grid (2,601 points), against the LibTorch ops they
// replace: first-layer combination + ReLU ([2000 x 64] per point) and cross-entropy + argmax ([10 x 2000]).
void BM_Kernel_Combine(benchmark::State& state) {
    auto gen = at::make_generator<at::CPUGeneratorImpl>(3);
    const auto s = torch::randn({3, 2000 * 64}, gen);
    auto out = torch::empty({2000 * 64});
    for (auto _ : state)
        for (int p = 0; p < 2601; ++p)
            ts::landscape::kernels::combine3(s[0].data_ptr<float>(), s[1].data_ptr<float>(),
                                             s[2].data_ptr<float>(), 0.3f, -0.2f, 2000 * 64, true,
                                             out.data_ptr<float>());
}
void BM_Torch_Combine(benchmark::State& state) {
    auto gen = at::make_generator<at::CPUGeneratorImpl>(3);
    const auto s = torch::randn({3, 2000 * 64}, gen);
    const auto coef =
        torch::tensor({{1.0f, 0.3f, -0.2f}, {1.0f, 0.1f, 0.2f}, {1.0f, 0.3f, 0.4f}, {1.0f, 0.5f, -0.2f}});
    for (auto _ : state)
        for (int p = 0; p < 2601; p += 4)
            benchmark::DoNotOptimize(coef.mm(s).relu_().data_ptr());
}
void BM_Kernel_CrossEntropy(benchmark::State& state) {
    auto gen = at::make_generator<at::CPUGeneratorImpl>(4);
    const auto z = torch::randn({10, 2000}, gen) * 3;
    const auto t = torch::randint(0, 10, {2000}, gen);
    double loss = 0;
    int64_t correct = 0;
    for (auto _ : state)
        for (int p = 0; p < 2601; ++p)
            ts::landscape::kernels::crossEntropyClassMajor(z.data_ptr<float>(), 10, 2000,
                                                           t.data_ptr<int64_t>(), &loss, &correct);
    benchmark::DoNotOptimize(loss);
}
void BM_Torch_CrossEntropy(benchmark::State& state) {
    auto gen = at::make_generator<at::CPUGeneratorImpl>(4);
    const auto z = torch::randn({4, 2000, 10}, gen) * 3;
    const auto t = torch::randint(0, 10, {2000}, gen);
    for (auto _ : state)
        for (int p = 0; p < 2601; p += 4) {
            auto l = (z.logsumexp(-1) - z.gather(2, t.view({1, 2000, 1}).expand({4, 2000, 1})).squeeze(2))
                         .to(torch::kFloat64)
                         .sum(1);
            auto c = z.argmax(-1).eq(t.view({1, 2000})).sum(1);
            benchmark::DoNotOptimize(l.data_ptr());
            benchmark::DoNotOptimize(c.data_ptr());
        }
}

} // namespace

BENCHMARK(BM_Kernel_Combine)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_Torch_Combine)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_Kernel_CrossEntropy)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_Torch_CrossEntropy)->Unit(benchmark::kMillisecond)->UseRealTime();
// Arg: grid points per batched pass (0: automatic, ~8 MB of activations per layer).
BENCHMARK(BM_Surface51_Batched)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime()
    ->Arg(0)
    ->Arg(1)
    ->Arg(2)
    ->Arg(4)
    ->Arg(8)
    ->Arg(16)
    ->Iterations(3);
BENCHMARK(BM_Surface51_Unbatched)->Unit(benchmark::kMillisecond)->UseRealTime()->Iterations(1);

#ifdef TS_HAVE_LANDSCAPE_COMMAND
// The reference paper's ResNet-20 for CIFAR-10 (3x32x32, 16/32/64 channels, BatchNorm, projection shortcuts;
// TorchScript written by tests/landscape/make_cnn_models.py) on 1,000 samples: 8 points of the 51x51 grid
// (its diagonal, every 7th point), per point. Arg 0: the batched layer program (points over the pool); 1: per
// point as the reference path runs it (all 1,000 samples in one forward); 2: per point in batches of 128 (the
// reference scripts' default batch size). Time per point is the `s_per_point` counter; x2601 for the grid.
struct Resnet20Fixture {
    std::unique_ptr<ts::capture::Model> model;
    std::unique_ptr<SurfaceEvaluator> ev;
    std::vector<std::array<double, 2>> points;
    std::string error;

    explicit Resnet20Fixture(int64_t mode, const char* name = "resnet20.pt", int stride = 7) {
        const auto dir = std::filesystem::temp_directory_path() / "ts_bench_resnet20";
        const auto file = dir / name;
        if (!std::filesystem::exists(file)) {
            const std::string cmd = "/usr/bin/python3 " + std::string(TS_SOURCE_DIR) +
                                    "/tests/landscape/make_cnn_models.py " + dir.string() + " --bench >/dev/null";
            if (std::system(cmd.c_str()) != 0) {
                error = "could not write resnet20.pt with " + cmd;
                return;
            }
        }
        auto loaded = ts::capture::loadModel(file.string(), {3, 32, 32}, 10);
        if (!loaded) {
            error = loaded.error().message;
            return;
        }
        model = std::move(loaded.value());
        auto gen = at::make_generator<at::CPUGeneratorImpl>(7);
        EvalSet data{torch::rand({1000, 3, 32, 32}, gen), torch::randint(0, 10, {1000}, gen)};
        auto space = parameterSpace(*model, DirType::Weights);
        auto dirs = randomDirections(space.snapshot(), {}, 123, true);
        EvaluatorOptions options;
        options.mode = mode == 0 ? EvalMode::Batched : EvalMode::Unbatched;
        options.sampleBatch = mode == 2 ? 128 : 4096;
        auto created = SurfaceEvaluator::create(*model, space, dirs, data, options);
        if (!created) {
            error = created.error().message;
            return;
        }
        ev = std::move(created.value());
        for (int i = 0; i < 51; i += stride)
            points.push_back({-1.0 + 2.0 * i / 50.0, -1.0 + 2.0 * i / 50.0});
    }
};

// Times the fixture's points, one evaluate() per iteration; seconds per point in the `s_per_point` counter.
void timePoints(benchmark::State& state, Resnet20Fixture& f) {
    if (!f.error.empty()) {
        state.SkipWithError(f.error.c_str());
        return;
    }
    for (auto _ : state) {
        auto values = f.ev->evaluate(f.points);
        if (!values) {
            state.SkipWithError(values.error().message.c_str());
            return;
        }
        benchmark::DoNotOptimize(values->data());
    }
    state.counters["s_per_point"] = benchmark::Counter(static_cast<double>(f.points.size()),
                                                       benchmark::Counter::kIsIterationInvariantRate |
                                                           benchmark::Counter::kInvert);
}

void BM_Resnet20_PerGridPoint(benchmark::State& state) {
    Resnet20Fixture f(state.range(0));
    timePoints(state, f);
}
BENCHMARK(BM_Resnet20_PerGridPoint)->Unit(benchmark::kSecond)->UseRealTime()->Arg(0)->Arg(1)->Arg(2)->Iterations(1);

// torchvision's architectures as the tests script them (random weights, 3x32x32, 1,000 samples): 4 points of the
// diagonal (every 13th). Args: {model, mode} with model 0 ResNet-18, 1 MobileNetV2, 2 MobileNetV3-small,
// 3 SqueezeNet 1.0, 4 the two-stage ConvNeXt; mode 0 batched, 2 per point in batches of 128.
void BM_Torchvision_PerGridPoint(benchmark::State& state) {
    static const char* kNames[] = {"tv_resnet18.pt", "tv_mobilenet_v2.pt", "tv_mobilenet_v3_small.pt",
                                   "tv_squeezenet1_0.pt", "tv_convnext_mini.pt"};
    Resnet20Fixture f(state.range(1), kNames[state.range(0)], 13);
    state.SetLabel(kNames[state.range(0)]);
    timePoints(state, f);
}
BENCHMARK(BM_Torchvision_PerGridPoint)
    ->Unit(benchmark::kSecond)
    ->UseRealTime()
    ->ArgsProduct({{0, 1, 2, 3, 4}, {0, 2}})
    ->Iterations(1);
#endif

// Curvature on the same model and 2,000 samples: one Hessian-vector product (double backward) against one
// gradient (forward + backward, the baseline), and the top-2 eigenpairs by Lanczos (what --directions hessian
// costs before the grid).
struct HessianFixture {
    MlpModel model;
    EvalSet data;
    HessianFixture() {
        auto gen = at::make_generator<at::CPUGeneratorImpl>(7);
        data = {torch::rand({2000, 1, 28, 28}, gen), torch::randint(0, 10, {2000}, gen)};
    }
};

void BM_Gradient(benchmark::State& state) {
    HessianFixture f;
    std::vector<torch::Tensor> params;
    for (auto& [n, p] : f.model.namedParameters())
        params.push_back(p);
    for (auto _ : state) {
        std::vector<torch::Tensor> grads;
        for (int64_t b = 0; b < 2000; b += 512) {
            const int64_t len = std::min<int64_t>(512, 2000 - b);
            const auto loss = torch::nn::functional::cross_entropy(
                f.model.forward(f.data.inputs.narrow(0, b, len)), f.data.targets.narrow(0, b, len));
            grads = torch::autograd::grad({loss}, params);
        }
        benchmark::DoNotOptimize(grads);
    }
}

void BM_HessianVectorProduct(benchmark::State& state) {
    HessianFixture f;
    auto h = HessianOperator::create(f.model, f.data, 512);
    auto v = torch::randn({h->size()}, torch::kFloat64);
    for (auto _ : state)
        benchmark::DoNotOptimize(h->apply(v));
}

void BM_HessianTop2(benchmark::State& state) {
    HessianFixture f;
    for (auto _ : state) {
        auto r = analyseHessian(f.model, f.data, {});
        state.counters["products"] = static_cast<double>(r->products);
        state.counters["lambda1"] = r->eigenvalues.at(0);
    }
}

BENCHMARK(BM_Gradient)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_HessianVectorProduct)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_HessianTop2)->Unit(benchmark::kMillisecond)->UseRealTime()->Iterations(2);

BENCHMARK_MAIN();
