// Scene benchmarks on a ~1.1M-neuron CNN: building the scene (layout + cluster tree), per-frame LOD selection
// against a flat per-neuron pass (the baseline), value refresh; hierarchical and kernel-density edge bundling
// of 10k and 100k edges against writing the same number of straight polylines (the output-bandwidth floor).
#include <benchmark/benchmark.h>

#include <atomic>
#include <cmath>
#include <map>
#include <memory>
#include <random>

#include "engine/core/thread_pool.hpp"
#include "engine/scene/bundling.hpp"
#include "engine/scene/edges.hpp"
#include "engine/scene/scene.hpp"
#include "engine/scene/synthetic.hpp"

using namespace ts;
using namespace ts::scene;

namespace {

using Model = SyntheticNetwork;

const Model& model() {
    static const Model m = makeVggLikeNetwork();
    return m;
}

const Scene& scene() {
    static const Scene s = [] {
        auto r = buildScene(model().desc, model().data);
        if (!r) std::abort();
        return std::move(r.value());
    }();
    return s;
}

Camera lookAt(glm::vec3 eye, glm::vec3 target) {
    Camera c;
    c.eye = eye;
    c.viewport = {1280, 720};
    c.viewProj = glm::perspective(glm::radians(60.0f), 1280.0f / 720.0f, 0.1f, 1e6f) *
                 glm::lookAt(eye, target, glm::vec3(0, 1, 0));
    return c;
}

// 24 views: an orbit at three distances (whole model, one layer, close to a feature map).
std::vector<Camera> cameras(const Scene& s) {
    std::vector<Camera> cams;
    const auto c = s.layout.bounds.center();
    const float size = glm::length(s.layout.bounds.extent());
    const auto& conv = s.layout.layers[2];
    for (int i = 0; i < 8; ++i) {
        const float a = float(i) * 0.785f;
        cams.push_back(lookAt(c + size * glm::vec3(std::sin(a), 0.3f, -std::cos(a)), c));
        cams.push_back(lookAt(conv.center + 0.6f * conv.halfExtent.x * glm::vec3(std::sin(a), 0.4f, -1.0f), conv.center));
        const auto p = s.position[s.offsets[2] + 4096 * i + 2080];
        cams.push_back(lookAt(p + glm::vec3(20 * std::sin(a), 10, -40), p));
    }
    return cams;
}

void BM_BuildScene1M(benchmark::State& state) {
    for (auto _ : state) {
        auto s = buildScene(model().desc, model().data);
        benchmark::DoNotOptimize(s);
    }
    state.counters["neurons"] = double(scene().position.size());
}

void BM_LodSelect1M(benchmark::State& state) {
    const auto& s = scene();
    auto sel = s.makeSelector();
    sel.setSelection({s.offsets[5] + 17, s.offsets[9] + 3});
    const auto cams = cameras(s);
    std::vector<SceneInstance> out;
    out.reserve(250000);
    LodOptions opt;
    opt.budget = static_cast<std::uint32_t>(state.range(0));
    std::size_t i = 0, total = 0;
    for (auto _ : state) {
        const auto st = sel.select(cams[i++ % cams.size()], opt, out);
        total += st.instances;
        benchmark::DoNotOptimize(out.data());
    }
    state.counters["instances/frame"] = double(total) / double(state.iterations());
}

// Baseline: no hierarchy. Every neuron is frustum-tested and projected each frame; visible ones with a
// projected radius >= 0.5 px are written (as many as the budget allows).
void BM_FlatPerNeuronPass1M(benchmark::State& state) {
    const auto& s = scene();
    const auto cams = cameras(s);
    std::vector<SceneInstance> out(200000);
    std::size_t i = 0, total = 0;
    const std::uint32_t N = static_cast<std::uint32_t>(s.position.size());
    for (auto _ : state) {
        const auto& cam = cams[i++ % cams.size()];
        const glm::mat4& m = cam.viewProj;
        const float focal = 0.5f * cam.viewport.y * glm::length(glm::vec3(m[0][1], m[1][1], m[2][1]));
        std::atomic<std::size_t> n{0};
        ThreadPool::global().parallelFor(N, 65536, [&](std::size_t b, std::size_t e, unsigned) {
            for (std::size_t k = b; k < e; ++k) {
                const glm::vec4 clip = m * glm::vec4(s.position[k], 1.0f);
                if (clip.w <= 0 || std::fabs(clip.x) > clip.w || std::fabs(clip.y) > clip.w) continue;
                if (s.radius[k] * focal / clip.w < 0.5f) continue;
                const auto slot = n.fetch_add(1, std::memory_order_relaxed);
                if (slot < out.size())
                    out[slot] = {s.position[k], s.radius[k], s.value[k], 0u, std::uint32_t(k), 1u};
            }
        });
        total += std::min(n.load(), out.size());
        benchmark::DoNotOptimize(out.data());
    }
    state.counters["instances/frame"] = double(total) / double(state.iterations());
}

void BM_RefreshValues1M(benchmark::State& state) {
    Scene s = scene();
    for (auto _ : state) {
        s.tree.computeValues(s.value);
        benchmark::DoNotOptimize(s.tree.nodes.data());
    }
}

// Edges between the two dense layers (4096 -> 1024), top-k by |w| of a random weight matrix.
struct EdgeSet {
    std::vector<BundleEdge> edges;
    Aabb box;
};
const EdgeSet& edgeSet(std::uint32_t count) {
    static std::map<std::uint32_t, std::unique_ptr<EdgeSet>> cache;
    auto& e = cache[count];
    if (!e) {
        const auto& s = scene();
        NetworkData data;
        data.dense.push_back({8, 9, uniformValues(std::size_t(4096) * 1024, 7, -1.0f, 1.0f)});
        EdgeSelectOptions opt;
        opt.topK = (count + 1023) / 1024;
        auto ne = selectDenseEdges(model().desc, data, data.dense[0], opt);
        ne.resize(count);
        e = std::make_unique<EdgeSet>();
        e->edges = toBundleEdges(s.tree, s.position, ne);
        for (auto& b : e->edges) e->box.extend(b.a), e->box.extend(b.b);
    }
    return *e;
}

void BM_BundleHierarchical(benchmark::State& state) {
    const auto& es = edgeSet(static_cast<std::uint32_t>(state.range(0)));
    const auto& s = scene();
    EdgePolylines out;
    for (auto _ : state) {
        out = bundleHierarchical(s.tree, es.edges, BundleOptions{});
        benchmark::DoNotOptimize(out.points.data());
    }
    const auto straight = straightLines(es.edges, 24);
    state.counters["ink_vs_straight"] =
        double(inkCoverage(out, es.box, 0, 2, 1024)) / double(inkCoverage(straight, es.box, 0, 2, 1024));
    state.counters["edges"] = double(es.edges.size());
}

void BM_BundleKde(benchmark::State& state) {
    const auto& es = edgeSet(static_cast<std::uint32_t>(state.range(0)));
    EdgePolylines out;
    for (auto _ : state) {
        out = bundleKde(es.edges, KdeOptions{});
        benchmark::DoNotOptimize(out.points.data());
    }
    const auto straight = straightLines(es.edges, 24);
    state.counters["ink_vs_straight"] =
        double(inkCoverage(out, es.box, 0, 2, 1024)) / double(inkCoverage(straight, es.box, 0, 2, 1024));
    state.counters["edges"] = double(es.edges.size());
}

void BM_StraightLines(benchmark::State& state) {
    const auto& es = edgeSet(static_cast<std::uint32_t>(state.range(0)));
    for (auto _ : state) {
        auto out = straightLines(es.edges, 24);
        benchmark::DoNotOptimize(out.points.data());
    }
}

void BM_SelectTopK(benchmark::State& state) {
    NetworkData data;
    data.dense.push_back({8, 9, uniformValues(std::size_t(4096) * 1024, 7, -1.0f, 1.0f)});
    EdgeSelectOptions opt;
    opt.topK = 8;
    for (auto _ : state) {
        auto e = selectDenseEdges(model().desc, data, data.dense[0], opt);
        benchmark::DoNotOptimize(e.data());
    }
}

} // namespace

BENCHMARK(BM_BuildScene1M)->Unit(benchmark::kMillisecond)->Iterations(3);
BENCHMARK(BM_LodSelect1M)->Arg(200000)->Arg(50000)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_FlatPerNeuronPass1M)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_RefreshValues1M)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_BundleHierarchical)->Arg(10000)->Arg(100000)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_BundleKde)->Arg(10000)->Arg(100000)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_StraightLines)->Arg(10000)->Arg(100000)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_SelectTopK)->Unit(benchmark::kMillisecond);
BENCHMARK_MAIN();
