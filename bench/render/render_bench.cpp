// Frame time of the neuron pass at 1280x720 offscreen for 10k, 100k and 1M neurons (full detail, every
// neuron drawn), against the cost of an empty frame (clear + submit + wait) measured in the same run.
#include <benchmark/benchmark.h>

#include "engine/core/log.hpp"
#include "engine/render/context.hpp"
#include "engine/render/neuron_pass.hpp"
#include "engine/render/synthetic_scene.hpp"
#include "engine/render/target.hpp"

using namespace ts;
using namespace ts::render;

namespace {

struct Fixture {
    std::unique_ptr<Context> ctx;
    std::unique_ptr<OffscreenTarget> target;
    std::unique_ptr<NeuronPass> pass;
    Fixture() {
        auto c = Context::create({.validation = 0});
        if (!c) {
            TS_LOG_ERROR("%s", c.error().message.c_str());
            std::exit(2);
        }
        ctx = std::move(c.value());
        target = std::move(OffscreenTarget::create(*ctx, 1280, 720).value());
        pass = std::move(NeuronPass::create(*ctx, kColorFormat, 1).value());
    }
};

Fixture& fixture() {
    static Fixture f;
    return f;
}

void renderFrames(benchmark::State& state, bool drawNeurons, bool lit) {
    auto& f = fixture();
    uint32_t n = uint32_t(state.range(0));
    auto scene = makeSyntheticNetwork(n, 7);
    if (!f.pass->setInstances(scene.neurons)) state.SkipWithError("upload failed");
    NeuronStyle style;
    style.colormap = Colormap::RdBu;
    style.valueMin = -1;
    style.valueMax = 1;
    style.lit = lit;
    f.pass->setStyle(style);
    Camera cam;
    cam.fitToScene(scene.bounds, 1280.0f / 720.0f);
    for (auto _ : state) {
        auto frame = f.target->beginFrame();
        beginRendering(*frame, true, 0.035f, 0.04f, 0.06f);
        if (drawNeurons) f.pass->record(*frame, cam);
        endRendering(*frame);
        if (!f.target->endFrame(*frame)) state.SkipWithError("frame failed");
    }
    state.counters["neurons"] = double(n);
    state.counters["ms_per_frame"] =
        benchmark::Counter(double(state.iterations()) * 1e-3, benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
}

void BM_EmptyFrame(benchmark::State& s) { renderFrames(s, false, false); }
void BM_NeuronsFlat(benchmark::State& s) { renderFrames(s, true, false); }
void BM_NeuronsLit(benchmark::State& s) { renderFrames(s, true, true); }

} // namespace

BENCHMARK(BM_EmptyFrame)->Arg(1)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_NeuronsFlat)->Arg(10'000)->Arg(100'000)->Arg(1'000'000)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_NeuronsLit)->Arg(10'000)->Arg(100'000)->Arg(1'000'000)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK_MAIN();
