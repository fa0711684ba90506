// Frame time of the neuron pass at 1280x720 offscreen for 10k, 100k and 1M neurons in full detail (every
// neuron drawn), against baselines measured in the same run: an empty frame (clear + submit + wait) and the
// same neurons drawn all as rasterised impostor quads (no compute splatting).
#include <benchmark/benchmark.h>
#include <chrono>

#include "engine/core/log.hpp"
#include "engine/render/context.hpp"
#include "engine/render/network_renderer.hpp"
#include "engine/render/neuron_pass.hpp"
#include "engine/render/synthetic_scene.hpp"
#include "engine/render/target.hpp"
#include "engine/scene/scene.hpp"
#include "engine/scene/synthetic.hpp"

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

void renderFrames(benchmark::State& state, bool drawNeurons, bool lit, bool splat) {
    auto& f = fixture();
    uint32_t n = uint32_t(state.range(0));
    auto scene = makeSyntheticNetwork(n, 7);
    if (!f.pass->setInstances(scene.neurons)) state.SkipWithError("upload failed");
    NeuronStyle style;
    style.colormap = Colormap::RdBu;
    style.valueMin = -1;
    style.valueMax = 1;
    style.lit = lit;
    style.splatBelowPixels = splat ? 1.5f : 0.0f;
    f.pass->setStyle(style);
    Camera cam;
    cam.fitToScene(scene.bounds, 1280.0f / 720.0f);
    for (auto _ : state) {
        auto frame = f.target->beginFrame();
        if (drawNeurons && !f.pass->prepare(*frame, cam)) state.SkipWithError("prepare failed");
        beginRendering(*frame, true, 0.035f, 0.04f, 0.06f);
        if (drawNeurons) f.pass->record(*frame, cam);
        endRendering(*frame);
        if (!f.target->endFrame(*frame)) state.SkipWithError("frame failed");
    }
    state.counters["neurons"] = double(n);
}

void BM_EmptyFrame(benchmark::State& s) {
    renderFrames(s, false, false, false);
}
void BM_ImpostorsOnlyLit(benchmark::State& s) {
    renderFrames(s, true, true, false);
}
void BM_SplatAndImpostorsLit(benchmark::State& s) {
    renderFrames(s, true, true, true);
}
void BM_SplatAndImpostorsFlat(benchmark::State& s) {
    renderFrames(s, true, false, true);
}

// A 1.1M-neuron VGG-like model drawn through level of detail (budget 200k instances). "moving": the camera
// jitters a little every frame, so every frame re-selects and re-uploads its instances.
void lodFrames(benchmark::State& state, bool moving) {
    auto& f = fixture();
    static const scene::SyntheticNetwork net = scene::makeVggLikeNetwork();
    static const scene::Scene sc = [] {
        auto r = scene::buildScene(net.desc, net.data);
        if (!r) std::abort();
        return std::move(r.value());
    }();
    auto renderer = NetworkRenderer::create(*f.ctx, kColorFormat, 1);
    if (!renderer) {
        state.SkipWithError(renderer.error().message.c_str());
        return;
    }
    auto& r = **renderer;
    r.setScene(&sc);
    r.setLod({uint32_t(state.range(0)), 3.0f, true});
    r.neurons().setStyle({Colormap::RdBu, -1.0f, 1.0f, true});
    Aabb box;
    for (size_t i = 0; i < sc.position.size(); ++i)
        box.extend(sc.position[i], sc.radius[i]);
    Camera cam;
    cam.yaw = 1.0f;
    cam.pitch = 0.3f;
    cam.fitToScene(box, 1280.0f / 720.0f);
    double prepareMs = 0;
    int step = 0;
    for (auto _ : state) {
        if (moving) cam.orbit((step++ % 2) ? 2.0f : -2.0f, 0.0f); // jitter in place: same view, new camera
        auto frame = f.target->beginFrame();
        auto t0 = std::chrono::steady_clock::now();
        if (!r.prepare(*frame, cam)) state.SkipWithError("prepare failed");
        prepareMs += std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
        beginRendering(*frame, true, 0.035f, 0.04f, 0.06f);
        r.record(*frame, cam);
        endRendering(*frame);
        if (!f.target->endFrame(*frame)) state.SkipWithError("frame failed");
    }
    state.counters["neurons"] = double(sc.position.size());
    state.counters["instances"] = double(r.lastStats().instances);
    state.counters["select_upload_ms"] = prepareMs / double(state.iterations());
}

void BM_Lod1MMovingCamera(benchmark::State& s) {
    lodFrames(s, true);
}
void BM_Lod1MStillCamera(benchmark::State& s) {
    lodFrames(s, false);
}

} // namespace

BENCHMARK(BM_Lod1MMovingCamera)->Arg(200'000)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_Lod1MStillCamera)->Arg(200'000)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_EmptyFrame)->Arg(1)->Unit(benchmark::kMillisecond)->UseRealTime();
#define TS_SIZES ->Arg(10'000)->Arg(100'000)->Arg(1'000'000)->Unit(benchmark::kMillisecond)->UseRealTime()
BENCHMARK(BM_ImpostorsOnlyLit) TS_SIZES;
BENCHMARK(BM_SplatAndImpostorsLit) TS_SIZES;
BENCHMARK(BM_SplatAndImpostorsFlat) TS_SIZES;
BENCHMARK_MAIN();
