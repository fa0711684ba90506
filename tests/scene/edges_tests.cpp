// Edges: top-k selection against a float64 brute force, channel edges, aggregation; hierarchical edge
// bundling keeps endpoints fixed and reduces ink against straight lines.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <map>
#include <random>

#include "engine/scene/bundling.hpp"
#include "engine/scene/edges.hpp"
#include "engine/scene/scene.hpp"
#include "tests/scene/scene_fixtures.hpp"

using namespace ts;
using namespace ts::scene;
using namespace ts::scene::test;

TEST(Edges, TopKMatchesBruteForce) {
    const auto d = mlp({37, 23});
    NetworkData data;
    data.layers.resize(2);
    data.layers[0].activation = randomVector(37, 1, 0.0f, 2.0f);
    data.dense.push_back({0, 1, randomVector(23 * 37, 2)});
    for (auto metric : {EdgeMetric::AbsWeight, EdgeMetric::AbsContribution}) {
        EdgeSelectOptions opt;
        opt.metric = metric;
        opt.topK = 5;
        const auto edges = selectDenseEdges(d, data, data.dense[0], opt);
        ASSERT_EQ(edges.size(), 23u * 5u);
        for (std::uint32_t k = 0; k < 23; ++k) {
            std::vector<std::pair<double, std::uint32_t>> ref;
            for (std::uint32_t j = 0; j < 37; ++j) {
                const double w = data.dense[0].w[k * 37 + j];
                ref.push_back({-std::fabs(metric == EdgeMetric::AbsWeight ? w : w * data.layers[0].activation[j]), j});
            }
            std::sort(ref.begin(), ref.end());
            for (std::uint32_t i = 0; i < 5; ++i) {
                const auto& e = edges[k * 5 + i];
                EXPECT_EQ(e.dst, 37 + k);
                EXPECT_EQ(e.src, ref[i].second);
                const double w = data.dense[0].w[k * 37 + e.src];
                EXPECT_NEAR(e.weight, metric == EdgeMetric::AbsWeight ? w : w * data.layers[0].activation[e.src], 1e-6);
            }
        }
    }
    // Threshold only: exactly the connections with |w| >= 0.9.
    EdgeSelectOptions opt;
    opt.topK = 0;
    opt.threshold = 0.9f;
    const auto edges = selectDenseEdges(d, data, data.dense[0], opt);
    std::size_t expected = 0;
    for (auto w : data.dense[0].w) expected += std::fabs(w) >= 0.9f;
    EXPECT_EQ(edges.size(), expected);
    for (const auto& e : edges) EXPECT_GE(std::fabs(e.weight), 0.9f);
}

TEST(Edges, ChannelEdgesAndAggregation) {
    NetworkDesc d;
    d.layers = {layer("a", LayerKind::Conv, {6, 4, 4}), layer("b", LayerKind::Conv, {5, 4, 4})};
    d.edges = {{0, 1}};
    KernelNorms kn{0, 1, randomVector(5 * 6, 4, 0.0f, 1.0f)};
    auto ce = selectChannelEdges(d, kn, 2);
    ASSERT_EQ(ce.size(), 10u);
    for (std::uint32_t o = 0; o < 5; ++o) {
        std::vector<float> row(kn.norms.begin() + o * 6, kn.norms.begin() + o * 6 + 6);
        std::sort(row.rbegin(), row.rend());
        EXPECT_EQ(ce[o * 2].toChannel, o);
        EXPECT_FLOAT_EQ(ce[o * 2].weight, row[0]);
        EXPECT_FLOAT_EQ(ce[o * 2 + 1].weight, row[1]);
    }
    NetworkData data;
    data.kernels.push_back(kn);
    auto s = buildScene(d, data);
    ASSERT_TRUE(s) << s.error().message;
    const auto be = toBundleEdges(s->tree, ce);
    for (std::size_t i = 0; i < ce.size(); ++i) {
        // The endpoint is the centre of that feature map.
        glm::dvec3 mean(0.0);
        const auto base = s->offsets[1] + ce[i].toChannel * 16;
        for (int k = 0; k < 16; ++k) mean += glm::dvec3(s->position[base + k]);
        EXPECT_LT(glm::length(glm::dvec3(be[i].b) - mean / 16.0), 1e-4);
    }

    // Aggregation at level 1 sums weights of the neuron edges between the same clusters.
    const auto m = mlp({300, 200});
    NetworkData md;
    md.dense.push_back({0, 1, randomVector(300 * 200, 6)});
    auto ms = buildScene(m, md);
    ASSERT_TRUE(ms);
    EdgeSelectOptions opt;
    opt.topK = 3;
    const auto ne = selectAllDenseEdges(m, md, opt);
    const auto agg = aggregateEdges(ms->tree, ne, 1);
    std::map<std::pair<std::uint32_t, std::uint32_t>, std::pair<double, std::uint32_t>> ref;
    for (const auto& e : ne) {
        auto key = std::make_pair(ms->tree.ancestorAt(ms->tree.leafOf[e.src], 1), ms->tree.ancestorAt(ms->tree.leafOf[e.dst], 1));
        EXPECT_EQ(ms->tree.nodes[key.first].level, 1u);
        ref[key].first += e.weight;
        ref[key].second += 1;
    }
    ASSERT_EQ(agg.size(), ref.size());
    std::uint32_t total = 0;
    for (const auto& a : agg) {
        const auto& r = ref.at({a.srcNode, a.dstNode});
        EXPECT_NEAR(a.weight, r.first, 1e-4);
        EXPECT_EQ(a.count, r.second);
        total += a.count;
    }
    EXPECT_EQ(total, ne.size());
}

namespace {
// Two dense layers of 1024 neurons; edges join random neurons of random cluster pairs.
struct BundleFixture {
    NetworkDesc desc = mlp({1024, 1024});
    Scene scene;
    std::vector<BundleEdge> edges;
};
BundleFixture makeBundleFixture(std::uint32_t count) {
    BundleFixture f;
    SceneOptions so;
    so.layers.rankGapMin = 30.0f;
    auto s = buildScene(f.desc, {}, so);
    EXPECT_TRUE(s);
    f.scene = std::move(s.value());
    std::mt19937 rng(5);
    std::vector<NeuronEdge> ne;
    auto w = randomVector(count, 8);
    for (std::uint32_t i = 0; i < count; ++i)
        ne.push_back({std::uint32_t(rng() % 1024), std::uint32_t(1024 + rng() % 1024), w[i]});
    f.edges = toBundleEdges(f.scene.tree, f.scene.position, ne);
    return f;
}
} // namespace

TEST(Bundling, EndpointsFixedAndInkReduced) {
    auto f = makeBundleFixture(3000);
    const auto straight = straightLines(f.edges, 24);
    BundleOptions opt;
    const auto bundled = bundleHierarchical(f.scene.tree, f.edges, opt);
    ASSERT_EQ(bundled.lines.size(), f.edges.size());
    float wmax = 0;
    for (const auto& e : f.edges) wmax = std::max(wmax, std::fabs(e.weight));
    for (std::size_t i = 0; i < f.edges.size(); ++i) {
        const auto& l = bundled.lines[i];
        ASSERT_EQ(l.pointCount, 24u);
        EXPECT_EQ(bundled.points[l.firstPoint].position, f.edges[i].a);
        EXPECT_EQ(bundled.points[l.firstPoint + l.pointCount - 1].position, f.edges[i].b);
        EXPECT_FLOAT_EQ(bundled.points[l.firstPoint].t, 0.0f);
        EXPECT_FLOAT_EQ(bundled.points[l.firstPoint + l.pointCount - 1].t, 1.0f);
        EXPECT_EQ(l.weight, f.edges[i].weight);
        EXPECT_NEAR(l.magnitude, std::fabs(f.edges[i].weight) / wmax, 1e-6);
    }
    // Ink: pixels covered in two orthogonal side views and the front view.
    const auto& box = f.scene.layout.bounds;
    BundleOptions rootOpt;
    rootOpt.topLevel = 0; // Holten's original: every path climbs to the layer roots
    const auto rootBundled = bundleHierarchical(f.scene.tree, f.edges, rootOpt);
    for (auto [u, v] : {std::pair{0, 2}, std::pair{1, 2}}) {
        const double inkStraight = double(inkCoverage(straight, box, u, v, 512));
        const double inkBundled = double(inkCoverage(bundled, box, u, v, 512));
        const double inkRoot = double(inkCoverage(rootBundled, box, u, v, 512));
        EXPECT_LT(inkBundled, 0.8 * inkStraight) << "axes " << u << "," << v;
        EXPECT_LT(inkRoot, 0.6 * inkStraight) << "axes " << u << "," << v;
        std::printf("ink (axes %d,%d): straight %.0f, bundled %.0f (%.2f), to roots %.0f (%.2f)\n", u, v, inkStraight,
                    inkBundled, inkBundled / inkStraight, inkRoot, inkRoot / inkStraight);
    }
    // Stronger bundling, less ink; beta = 0 is the straight line.
    opt.beta = 0.4f;
    const auto weak = bundleHierarchical(f.scene.tree, f.edges, opt);
    EXPECT_LT(inkCoverage(bundled, box, 0, 2, 512), inkCoverage(weak, box, 0, 2, 512));
    opt.beta = 0.0f;
    const auto flat = bundleHierarchical(f.scene.tree, f.edges, opt);
    for (std::size_t i = 0; i < flat.points.size(); i += 7) {
        const auto& l = flat.lines[i / 24];
        const auto& a = flat.points[l.firstPoint].position;
        const auto& b = flat.points[l.firstPoint + 23].position;
        const auto& p = flat.points[i].position;
        // Distance from the chord.
        const glm::vec3 ab = b - a;
        const float t = glm::dot(p - a, ab) / glm::dot(ab, ab);
        EXPECT_LT(glm::length(a + t * ab - p), 1e-3f);
    }
}

TEST(Bundling, NodeEdgesAndSameLayerPaths) {
    auto f = makeBundleFixture(500);
    // An edge inside one layer climbs to the lowest common ancestor only.
    const auto& t = f.scene.tree;
    const std::uint32_t a = 3, b = 900;
    std::vector<BundleEdge> e = {{f.scene.position[a], f.scene.position[b], t.leafOf[a], t.leafOf[b], -1.0f}};
    const auto pl = bundleHierarchical(t, e, {});
    ASSERT_EQ(pl.lines.size(), 1u);
    EXPECT_EQ(pl.points[0].position, f.scene.position[a]);
    EXPECT_EQ(pl.points[23].position, f.scene.position[b]);
    EXPECT_EQ(pl.lines[0].weight, -1.0f);
    // Cluster edges bundle between cluster centres.
    std::vector<NeuronEdge> ne;
    for (std::uint32_t i = 0; i < 400; ++i) ne.push_back({i, 1024 + (i * 37) % 1024, 0.5f});
    const auto agg = aggregateEdges(t, ne, 2);
    const auto be = toBundleEdges(t, agg);
    const auto pl2 = bundleHierarchical(t, be, {});
    for (std::size_t i = 0; i < be.size(); ++i) {
        EXPECT_EQ(pl2.points[pl2.lines[i].firstPoint].position, t.nodes[agg[i].srcNode].center);
        EXPECT_FLOAT_EQ(pl2.lines[i].weight, 0.5f * agg[i].count);
    }
}

TEST(Bundling, KernelDensityKeepsEndsAndReducesInk) {
    auto f = makeBundleFixture(3000);
    const auto straight = straightLines(f.edges, 24);
    KdeOptions opt;
    const auto kde = bundleKde(f.edges, opt);
    ASSERT_EQ(kde.lines.size(), f.edges.size());
    for (std::size_t i = 0; i < f.edges.size(); ++i) {
        const auto& l = kde.lines[i];
        ASSERT_EQ(l.pointCount, 24u);
        EXPECT_EQ(kde.points[l.firstPoint].position, f.edges[i].a);
        EXPECT_EQ(kde.points[l.firstPoint + 23].position, f.edges[i].b);
        // Samples move across the flow only: z is the straight line's.
        for (std::uint32_t k = 0; k < 24; ++k)
            EXPECT_FLOAT_EQ(kde.points[l.firstPoint + k].position.z, straight.points[l.firstPoint + k].position.z);
    }
    const auto& box = f.scene.layout.bounds;
    for (auto [u, v] : {std::pair{0, 2}, std::pair{1, 2}}) {
        const double inkStraight = double(inkCoverage(straight, box, u, v, 512));
        const double inkKde = double(inkCoverage(kde, box, u, v, 512));
        EXPECT_LT(inkKde, 0.8 * inkStraight) << "axes " << u << "," << v;
        std::printf("kde ink (axes %d,%d): straight %.0f, bundled %.0f (%.2f)\n", u, v, inkStraight, inkKde,
                    inkKde / inkStraight);
    }
    // No iterations: the straight lines themselves.
    opt.iterations = 0;
    const auto none = bundleKde(f.edges, opt);
    for (std::size_t k = 0; k < none.points.size(); k += 13)
        EXPECT_EQ(none.points[k].position, straight.points[k].position);
}
