// Level of detail: the instance budget holds, selected and outlier neurons are always drawn, every neuron is
// drawn at most once, detail follows the camera; outlier detection; picking against brute force.
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <random>

#include "engine/scene/lod.hpp"
#include "engine/scene/picking.hpp"
#include "engine/scene/scene.hpp"
#include "tests/scene/scene_fixtures.hpp"

using namespace ts;
using namespace ts::scene;
using namespace ts::scene::test;

namespace {

struct Fixture {
    NetworkDesc desc;
    NetworkData data;
    Scene scene;
};

// ~45k neurons: conv maps, a dense layer with profiles (k-means tree), NaN / dead / extreme neurons planted.
Fixture makeFixture() {
    Fixture f;
    f.desc.layers = {layer("input", LayerKind::Input, {3, 32, 32}), layer("conv", LayerKind::Conv, {32, 32, 32}),
                     layer("fc1", LayerKind::Dense, {4096}), layer("fc2", LayerKind::Dense, {512})};
    f.desc.edges = {{0, 1}, {1, 2}, {2, 3}};
    const auto off = neuronOffsets(f.desc);
    f.data.layers.resize(4);
    for (std::uint32_t l = 0; l < 4; ++l) {
        auto& st = f.data.layers[l];
        const auto n = off[l + 1] - off[l];
        st.value = randomVector(n, 20 + l);
        st.activeFraction = randomVector(n, 40 + l, 0.1f, 1.0f);
    }
    f.data.layers[2].probeCount = 8;
    f.data.layers[2].profile = randomVector(4096 * 8, 77);
    f.data.layers[1].value[123] = std::nanf("");
    f.data.layers[2].value[77] = std::numeric_limits<float>::infinity();
    f.data.layers[2].activeFraction[4000] = 0.0f; // dead
    f.data.layers[3].value[5] = 50.0f;            // extreme (values are in [-1, 1])
    auto s = buildScene(f.desc, f.data);
    EXPECT_TRUE(s) << s.error().message;
    f.scene = std::move(*s);
    return f;
}

Camera lookAt(glm::vec3 eye, glm::vec3 target, float fovDeg = 60.0f) {
    Camera c;
    c.eye = eye;
    c.viewport = {1280, 720};
    const glm::mat4 view = glm::lookAt(eye, target, glm::vec3(0, 1, 0));
    const glm::mat4 proj = glm::perspective(glm::radians(fovDeg), 1280.0f / 720.0f, 0.1f, 1e5f);
    c.viewProj = proj * view;
    return c;
}

// How many times each neuron is represented: individually, or through a drawn proxy.
std::vector<int> coverage(const Scene& s, const std::vector<SceneInstance>& inst, std::vector<int>& individual) {
    std::vector<int> cov(s.position.size(), 0);
    individual.assign(s.position.size(), 0);
    for (const auto& i : inst) {
        if (i.flags & kInstanceGroup) continue;
        if (i.flags & kInstanceCluster) {
            const auto& nd = s.tree.nodes[i.id];
            EXPECT_EQ(i.count, nd.end - nd.begin);
            for (auto k = nd.begin; k < nd.end; ++k) ++cov[s.tree.order[k]];
        } else {
            EXPECT_EQ(i.count, 1u);
            EXPECT_EQ(i.position, s.position[i.id]);
            ++cov[i.id];
            ++individual[i.id];
        }
    }
    return cov;
}

} // namespace

TEST(Outliers, FindsNaNDeadAndExtreme) {
    auto f = makeFixture();
    const auto& s = f.scene;
    const auto off = s.offsets;
    EXPECT_TRUE(s.outliers[off[1] + 123] & kInstanceNaN);
    EXPECT_TRUE(s.outliers[off[2] + 77] & kInstanceNaN);
    EXPECT_TRUE(s.outliers[off[2] + 4000] & kInstanceDead);
    EXPECT_TRUE(s.outliers[off[3] + 5] & kInstanceExtreme);
    std::uint32_t flagged = 0;
    for (auto o : s.outliers) flagged += o != 0;
    EXPECT_EQ(flagged, 4u); // uniform values in [-1, 1] are never extreme at 8 sigma
}

TEST(Lod, BudgetHoldsAndForcedNeuronsAlwaysDrawn) {
    auto f = makeFixture();
    const auto& s = f.scene;
    auto sel = s.makeSelector();
    const std::vector<std::uint32_t> selection = {s.offsets[0] + 5, s.offsets[2] + 1000, s.offsets[3] + 300};
    sel.setSelection(selection);
    std::vector<std::uint32_t> forced = selection;
    for (std::uint32_t i = 0; i < s.outliers.size(); ++i)
        if (s.outliers[i]) forced.push_back(i);
    const auto c = s.layout.bounds.center();
    const float size = glm::length(s.layout.bounds.extent());
    std::mt19937 rng(3);
    std::uniform_real_distribution<float> u(-1, 1);
    std::vector<SceneInstance> inst;
    for (std::uint32_t budget : {50u, 500u, 5000u, 20000u}) {
        for (int trial = 0; trial < 6; ++trial) {
            const glm::vec3 eye = c + glm::vec3(u(rng), u(rng), u(rng)) * size * (trial < 3 ? 0.3f : 1.5f);
            const auto cam = lookAt(eye, c + glm::vec3(u(rng), u(rng), u(rng)) * size * 0.2f);
            LodOptions opt;
            opt.budget = budget;
            opt.expandPixels = 1.0f;
            const auto st = sel.select(cam, opt, inst);
            EXPECT_LE(inst.size(), std::max<std::size_t>(budget, forced.size() + s.tree.layerRoot.size()));
            EXPECT_EQ(st.instances, inst.size());
            std::vector<int> individual;
            const auto cov = coverage(s, inst, individual);
            for (auto n : forced) EXPECT_EQ(individual[n], 1) << "forced neuron " << n << " budget " << budget;
            std::vector<bool> isForced(s.position.size(), false);
            for (auto n : forced) isForced[n] = true;
            for (std::size_t n = 0; n < cov.size(); ++n) {
                // Forced neurons are drawn individually exactly once (above) and may also sit inside one drawn
                // cluster; every other neuron is covered at most once.
                EXPECT_LE(cov[n], isForced[n] ? 2 : 1) << n;
            }
            for (const auto& i : inst) {
                if (!(i.flags & kInstanceCluster) && std::count(selection.begin(), selection.end(), i.id)) {
                    EXPECT_TRUE(i.flags & kInstanceSelected);
                }
            }
        }
    }
}

TEST(Lod, DetailFollowsTheCamera) {
    auto f = makeFixture();
    const auto& s = f.scene;
    auto sel = s.makeSelector();
    std::vector<SceneInstance> inst;
    LodOptions opt;
    opt.budget = 200000;
    // Far away: the whole model is a few pixels; only roots and forced neurons.
    const auto c = s.layout.bounds.center();
    const float size = glm::length(s.layout.bounds.extent());
    auto st = sel.select(lookAt(c + glm::vec3(0, 0, -200 * size), c), opt, inst);
    EXPECT_FALSE(st.budgetLimited);
    EXPECT_LE(st.instances, 4u + st.forced);
    // Close to the conv layer: neurons near the eye are drawn individually, far layers stay proxies.
    const glm::vec3 focus = s.position[s.offsets[1] + 5 * 1024 + 16 * 32 + 16]; // middle of map 5
    const glm::vec3 eye = focus + glm::vec3(0, 0, -6);
    st = sel.select(lookAt(eye, focus), opt, inst);
    std::vector<int> individual;
    coverage(s, inst, individual);
    std::uint32_t nearIndividual = 0, nearTotal = 0;
    for (std::uint32_t n = s.offsets[1]; n < s.offsets[2]; ++n)
        if (glm::length(s.position[n] - eye) < 6.5f) ++nearTotal, nearIndividual += individual[n];
    ASSERT_GT(nearTotal, 0u);
    EXPECT_EQ(nearIndividual, nearTotal);
    EXPECT_GT(st.culled, 0u); // most of the model is behind or beside the camera
    // Everything fits when the budget is larger than the model and the camera sees it all at full size.
    opt.budget = 1u << 20;
    opt.expandPixels = 0.0f;
    opt.cullOutsideFrustum = false;
    st = sel.select(lookAt(c + glm::vec3(0, 0, -size), c), opt, inst);
    EXPECT_EQ(st.clusters, 0u);
    EXPECT_EQ(st.instances, s.position.size());
}

TEST(Lod, CollapsedGroupDrawsOneProxy) {
    const auto d = resnetLike();
    SceneOptions opt;
    opt.layers.collapsed = {"layer1"};
    auto s = buildScene(d, {}, opt);
    ASSERT_TRUE(s) << s.error().message;
    ASSERT_EQ(s->groupProxies.size(), 1u);
    EXPECT_EQ(s->groupProxies[0].count, 10u * 512u);
    auto sel = s->makeSelector();
    std::vector<SceneInstance> inst;
    const auto c = s->layout.bounds.center();
    const auto st = sel.select(lookAt(c + glm::vec3(5, 5, -80), c), LodOptions{}, inst);
    std::uint32_t groups = 0;
    for (const auto& i : inst) {
        groups += (i.flags & kInstanceGroup) != 0;
        if (!(i.flags & kInstanceGroup) && !(i.flags & kInstanceOutlierMask)) {
            EXPECT_FALSE(s->hiddenLayer[s->tree.nodes[(i.flags & kInstanceCluster) ? i.id : s->tree.leafOf[i.id]].layer]);
        }
    }
    EXPECT_EQ(groups, 1u);
    EXPECT_GT(st.instances, 1u);
}

TEST(Picking, MatchesBruteForceAndCameraRays) {
    auto f = makeFixture();
    const auto& s = f.scene;
    std::mt19937 rng(12);
    std::uniform_real_distribution<float> u(-1, 1);
    const auto c = s.layout.bounds.center();
    const auto ext = s.layout.bounds.extent();
    int hits = 0;
    for (int trial = 0; trial < 200; ++trial) {
        // Aim at a random neuron from a random direction, jittered, so both hits and misses occur.
        const auto target = s.position[std::uniform_int_distribution<std::uint32_t>(0, s.position.size() - 1)(rng)];
        const glm::vec3 origin = c + glm::vec3(u(rng) * ext.x, u(rng) * ext.y, -ext.z);
        Ray ray{origin, glm::normalize(target + glm::vec3(u(rng), u(rng), 0) * 0.6f - origin)};
        const auto got = pickNeuron(s.tree, s.position, s.radius, ray);
        // Brute force in float64.
        std::uint32_t best = ~0u;
        double bestT = 1e300;
        for (std::uint32_t n = 0; n < s.position.size(); ++n) {
            const glm::dvec3 oc = glm::dvec3(ray.origin) - glm::dvec3(s.position[n]);
            const glm::dvec3 dir(ray.dir);
            const double a = glm::dot(dir, dir), b = glm::dot(oc, dir), cc = glm::dot(oc, oc) - double(s.radius[n]) * s.radius[n];
            const double disc = b * b - a * cc;
            if (disc < 0) continue;
            const double t = (-b - std::sqrt(disc)) / a;
            if (t >= 0 && t < bestT) bestT = t, best = n;
        }
        ASSERT_EQ(got.neuron, best) << "trial " << trial << " t " << got.t << " origin " << ray.origin.x << ","
                                    << ray.origin.y << "," << ray.origin.z << " r " << (got.hit() ? s.radius[got.neuron] : 0.f)
                                    << " dist " << (got.hit() ? glm::length(glm::cross(s.position[got.neuron] - ray.origin, ray.dir)) : 0.f);
        if (best != ~0u) {
            ++hits;
            EXPECT_NEAR(got.t, bestT, 1e-3 * std::max(1.0, bestT));
        }
    }
    EXPECT_GT(hits, 50);
    // A camera ray through the pixel where a neuron projects picks that neuron.
    const auto& conv = s.layout.layers[1];
    const auto cam = lookAt(conv.center + glm::vec3(3, 2, -40), conv.center);
    const std::uint32_t n = s.offsets[1] + 5000;
    glm::vec4 clip = cam.viewProj * glm::vec4(s.position[n], 1.0f);
    const glm::vec2 ndc = glm::vec2(clip) / clip.w;
    const glm::vec2 px = (ndc * 0.5f + 0.5f) * cam.viewport;
    const auto hit = pickNeuron(s.tree, s.position, s.radius, rayFromPixel(cam, px));
    EXPECT_EQ(hit.neuron, n);
}
