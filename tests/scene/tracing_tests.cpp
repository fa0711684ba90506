// Tracing: known top contributors on a hand-built 4-3-2 network, forward (|w * a|) and backward (|w * g|),
// through an activation layer (identity hop); a multi-hop float64 reference.
#include <gtest/gtest.h>

#include "engine/scene/tracing.hpp"
#include "tests/scene/scene_fixtures.hpp"

using namespace ts;
using namespace ts::scene;
using namespace ts::scene::test;

namespace {
// in(4) -> fc1(3) -> fc2(2). fc1 row k has weights over in; fc2 row m over fc1.
struct Hand {
    NetworkDesc desc = mlp({4, 3, 2});
    NetworkData data;
    Hand() {
        data.layers.resize(3);
        data.layers[0].activation = {1.0f, 0.1f, 2.0f, 0.5f};
        data.layers[1].activation = {0.2f, 1.0f, 3.0f};
        data.layers[1].gradient = {0.5f, -2.0f, 0.1f};
        data.layers[2].gradient = {1.0f, -0.25f};
        data.dense.push_back({0, 1, {/*k0*/ 0.9f, 5.0f, 0.1f, 0.0f, /*k1*/ -0.2f, 0.3f, 0.4f, 1.0f, /*k2*/ 0.1f, 0.1f, -0.3f, 0.2f}});
        data.dense.push_back({1, 2, {/*m0*/ 2.0f, 0.5f, -0.3f, /*m1*/ 0.1f, -1.0f, 0.2f}});
    }
};
} // namespace

TEST(Tracing, ForwardKnownContributors) {
    Hand h;
    // From in[2] (a = 2): credit to fc1 k = |W1[k][2] * 2| = {0.2, 0.8, 0.6} -> order k1, k2, k0.
    auto r = traceForward(h.desc, h.data, 2, {2, 3});
    ASSERT_TRUE(r) << r.error().message;
    ASSERT_EQ(r->hops.size(), 2u);
    ASSERT_EQ(r->hops[0].size(), 3u);
    EXPECT_EQ(r->hops[0][0].neuron, 4u + 1);
    EXPECT_EQ(r->hops[0][1].neuron, 4u + 2);
    EXPECT_EQ(r->hops[0][2].neuron, 4u + 0);
    EXPECT_FLOAT_EQ(r->hops[0][1].credit, 0.6f / 0.8f);
    EXPECT_EQ(r->hops[0][0].via, 2u);
    // Hop 2 (float64 reference): score_m = sum_k s_k |W2[m][k] a1_k|, s = {0.25, 1, 0.75}.
    const double s[3] = {0.2 / 0.8, 1.0, 0.6 / 0.8};
    const double W2[2][3] = {{2.0, 0.5, -0.3}, {0.1, -1.0, 0.2}};
    const double a1[3] = {0.2, 1.0, 3.0};
    double m[2];
    for (int i = 0; i < 2; ++i) m[i] = s[0] * std::fabs(W2[i][0] * a1[0]) + s[1] * std::fabs(W2[i][1] * a1[1]) + s[2] * std::fabs(W2[i][2] * a1[2]);
    ASSERT_EQ(r->hops[1].size(), 2u);
    const int top = m[0] > m[1] ? 0 : 1;
    EXPECT_EQ(r->hops[1][0].neuron, 7u + top);
    EXPECT_NEAR(r->hops[1][1].credit, m[1 - top] / m[top], 1e-6);
    // By |w| alone in[1] (w = 5) would win hop 1 from in[1]; with a = 0.1 its credit is 0.5 vs k1 0.03.
    auto r1 = traceForward(h.desc, h.data, 1, {1, 1});
    ASSERT_TRUE(r1);
    EXPECT_EQ(r1->hops[0][0].neuron, 4u + 0);
    ASSERT_EQ(r1->edges.size(), 1u);
    EXPECT_EQ(r1->edges[0].src, 1u);
    EXPECT_EQ(r1->edges[0].dst, 4u);
    EXPECT_FLOAT_EQ(r1->edges[0].weight, 5.0f);
}

TEST(Tracing, BackwardKnownContributors) {
    Hand h;
    // From fc2 m1 (g = -0.25): credit to fc1 j = |W2[1][j] * g| = {0.025, 0.25, 0.05} -> j1, j2, j0.
    auto r = traceBackward(h.desc, h.data, 8, {2, 2});
    ASSERT_TRUE(r) << r.error().message;
    ASSERT_EQ(r->hops.size(), 2u);
    ASSERT_EQ(r->hops[0].size(), 2u);
    EXPECT_EQ(r->hops[0][0].neuron, 5u);
    EXPECT_EQ(r->hops[0][1].neuron, 6u);
    EXPECT_NEAR(r->hops[0][1].credit, 0.05 / 0.25, 1e-6);
    // Hop 2: score_i = 1 * |W1[1][i] * g1| + 0.2 * |W1[2][i] * g2|, g1 = -2, g2 = 0.1.
    const double W1[3][4] = {{0.9, 5.0, 0.1, 0.0}, {-0.2, 0.3, 0.4, 1.0}, {0.1, 0.1, -0.3, 0.2}};
    double ref[4];
    for (int i = 0; i < 4; ++i) ref[i] = std::fabs(W1[1][i] * -2.0) + 0.2 * std::fabs(W1[2][i] * 0.1);
    // ref = {0.402, 0.602, 0.806, 2.004}: in[3] first, then in[2].
    EXPECT_EQ(r->hops[1][0].neuron, 3u);
    EXPECT_EQ(r->hops[1][1].neuron, 2u);
    EXPECT_NEAR(r->hops[1][1].credit, ref[2] / ref[3], 1e-6);
    // Edges point along the data flow (input -> output).
    for (const auto& e : r->edges) EXPECT_LT(e.src, e.dst);
    EXPECT_FALSE(traceBackward(h.desc, h.data, 99));
}

TEST(Tracing, ElementwiseLayersPassThrough) {
    NetworkDesc d;
    d.layers = {layer("in", LayerKind::Input, {3}), layer("fc", LayerKind::Dense, {3}), layer("relu", LayerKind::Act, {3}),
                layer("out", LayerKind::Dense, {2})};
    d.edges = {{0, 1}, {1, 2}, {2, 3}};
    NetworkData data;
    data.dense.push_back({0, 1, {1, 0, 0, 0, 3, 0, 0, 0, 2}});
    data.dense.push_back({2, 3, {0, 0, 1, 4, 0, 0}});
    auto r = traceForward(d, data, 1, {3, 1});
    ASSERT_TRUE(r);
    ASSERT_EQ(r->hops.size(), 3u);
    EXPECT_EQ(r->hops[0][0].neuron, 4u);  // fc[1]
    EXPECT_EQ(r->hops[1][0].neuron, 7u);  // relu[1]
    ASSERT_TRUE(r->hops[2].empty());      // out has no weight from relu[1]
    r = traceForward(d, data, 0, {3, 1});
    ASSERT_TRUE(r);
    EXPECT_EQ(r->hops[2][0].neuron, 10u); // in[0] -> fc[0] -> relu[0] -> out[1] (w = 4)
}
