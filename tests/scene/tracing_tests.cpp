// Tracing: known top contributors on a hand-built 4-3-2 network, forward (|w * a|) and backward (|w * g|),
// through an activation layer (identity hop); a multi-hop float64 reference.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <map>

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

namespace {
// in [2, 6, 6] -> conv [3, 3, 3] (3x3 kernels, stride 2, padding 1, seeded weights) -> pool [3, 1, 1] (global).
struct ConvNet {
    NetworkDesc desc;
    NetworkData data;
    ConvWeights c;
    ConvNet() {
        desc.layers = {layer("in", LayerKind::Input, {2, 6, 6}), layer("conv", LayerKind::Conv, {3, 3, 3}),
                       layer("pool", LayerKind::Pool, {3, 1, 1})};
        desc.edges = {{0, 1}, {1, 2}};
        data.layers.resize(3);
        for (int i = 0; i < 72; ++i) data.layers[0].activation.push_back(0.1f + 0.05f * float((i * 7) % 13));
        for (int i = 0; i < 27; ++i) {
            data.layers[1].activation.push_back(float((i * 5) % 9) * 0.2f);
            data.layers[1].gradient.push_back(0.3f - 0.04f * float(i % 11));
        }
        data.layers[2].gradient = {1.0f, -0.5f, 0.25f};
        c.from = 0, c.to = 1, c.kh = 3, c.kw = 3, c.strideH = 2, c.strideW = 2, c.padH = 1, c.padW = 1;
        for (int i = 0; i < 3 * 2 * 9; ++i) c.w.push_back(std::sin(1.7f * float(i)) * (i / 9 % 2 ? 2.0f : 0.5f));
        data.conv.push_back(c);
    }
    // Backward credit of input neuron (ci, iy, ix) from output (co, y, x), float64, brute force over the kernel.
    double backward(int co, int y, int x, int ci, int iy, int ix) const {
        double credit = 0;
        for (int dy = 0; dy < 3; ++dy)
            for (int dx = 0; dx < 3; ++dx)
                if (y * 2 - 1 + dy == iy && x * 2 - 1 + dx == ix)
                    credit += std::fabs(double(c.w[((co * 2 + ci) * 3 + dy) * 3 + dx]) *
                                        double(data.layers[1].gradient[(co * 3 + y) * 3 + x]));
        return credit;
    }
};
} // namespace

TEST(Tracing, BackwardThroughAConvolutionShowsTheReceptiveFieldAndStrongestChannel) {
    ConvNet n;
    const int co = 1, y = 1, x = 2; // conv neuron (1, 1, 2): window rows 1..3, columns 3..5 of the 6x6 input
    const std::uint32_t start = 72 + (co * 3 + y) * 3 + x;
    auto r = traceBackward(n.desc, n.data, start, {1, 4, 1});
    ASSERT_TRUE(r) << r.error().message;
    ASSERT_EQ(r->hops.size(), 1u);
    // Every input with non-zero credit lies in the window; credits equal the float64 reference.
    std::vector<std::pair<double, std::uint32_t>> ref;
    double total = 0;
    for (int ci = 0; ci < 2; ++ci)
        for (int iy = 0; iy < 6; ++iy)
            for (int ix = 0; ix < 6; ++ix) {
                const double v = n.backward(co, y, x, ci, iy, ix);
                if (v > 0) ref.push_back({v, std::uint32_t((ci * 6 + iy) * 6 + ix)}), total += v;
            }
    ASSERT_EQ(ref.size(), 18u) << "a 3 x 3 window in each of the 2 channels";
    std::sort(ref.rbegin(), ref.rend());
    ASSERT_EQ(r->hops[0].size(), 4u);
    for (size_t k = 0; k < 4; ++k) {
        EXPECT_EQ(r->hops[0][k].neuron, ref[k].second);
        EXPECT_NEAR(r->hops[0][k].credit, ref[k].first / ref[0].first, 1e-5);
    }
    // The strongest channel (its share of all credit) and the window it was reached in.
    double share[2] = {0, 0};
    for (const auto& [v, id] : ref) share[id / 36] += v / total;
    const std::uint32_t best = share[1] > share[0] ? 1 : 0;
    ASSERT_EQ(r->channels.size(), 1u);
    ASSERT_EQ(r->channels[0].size(), 1u);
    const auto& cc = r->channels[0][0];
    EXPECT_EQ(cc.layer, 0u);
    EXPECT_EQ(cc.channel, best);
    EXPECT_NEAR(cc.share, share[best], 1e-5);
    EXPECT_EQ(cc.y0, 1u);
    EXPECT_EQ(cc.y1, 3u);
    EXPECT_EQ(cc.x0, 3u);
    EXPECT_EQ(cc.x1, 5u);
    // The receptive field in that channel is kept whole, though only 4 neurons seed the next hop.
    size_t inBest = 0;
    for (auto id : r->field) inBest += id / 36 == best;
    EXPECT_EQ(inBest, 9u);
    // At the border the window is cut by the padding: (0, 0, 0) sees rows and columns 0..1 only.
    auto corner = traceBackward(n.desc, n.data, 72 + 9 * co, {1, 100, 2});
    ASSERT_TRUE(corner);
    EXPECT_EQ(corner->hops[0].size(), 8u);
}

TEST(Tracing, ForwardThroughAConvolutionReachesEveryWindowThatHoldsTheInput) {
    ConvNet n;
    const std::uint32_t ci = 0, iy = 3, ix = 3, start = (ci * 6 + iy) * 6 + ix;
    auto r = traceForward(n.desc, n.data, start, {1, 100, 3});
    ASSERT_TRUE(r) << r.error().message;
    // Input row/col 3 is inside output rows/cols y with 2y - 1 <= 3 <= 2y + 1: y in {1, 2}: 4 positions x 3
    // channels, less those whose kernel tap is exactly 0.
    const double a = n.data.layers[0].activation[start];
    double best = 0;
    std::map<std::uint32_t, double> ref;
    for (int co = 0; co < 3; ++co)
        for (int y = 1; y <= 2; ++y)
            for (int x = 1; x <= 2; ++x) {
                const int dy = 3 - (2 * y - 1), dx = 3 - (2 * x - 1);
                const double v = std::fabs(double(n.c.w[((co * 2 + 0) * 3 + dy) * 3 + dx]) * a);
                if (v > 0) ref[std::uint32_t(72 + (co * 3 + y) * 3 + x)] = v;
                best = std::max(best, v);
            }
    EXPECT_GE(ref.size(), 10u);
    ASSERT_EQ(r->hops[0].size(), ref.size());
    for (const auto& t : r->hops[0]) {
        ASSERT_TRUE(ref.count(t.neuron)) << t.neuron;
        EXPECT_NEAR(t.credit, ref[t.neuron] / best, 1e-5);
    }
}

TEST(Tracing, GlobalPoolingDrawsOnItsWholeChannelWeightedByActivation) {
    ConvNet n;
    const std::uint32_t start = 72 + 27 + 2; // pool channel 2
    auto r = traceBackward(n.desc, n.data, start, {2, 9, 1});
    ASSERT_TRUE(r) << r.error().message;
    ASSERT_GE(r->hops.size(), 1u);
    // Only channel 2 of the conv map, credit proportional to |a|; the largest activation first.
    float top = 0;
    std::uint32_t topId = 0;
    for (std::uint32_t k = 0; k < 9; ++k)
        if (n.data.layers[1].activation[18 + k] > top) top = n.data.layers[1].activation[18 + k], topId = 72 + 18 + k;
    for (const auto& t : r->hops[0]) EXPECT_EQ((t.neuron - 72) / 9, 2u);
    EXPECT_EQ(r->hops[0][0].neuron, topId);
    ASSERT_EQ(r->channels[0].size(), 1u);
    EXPECT_EQ(r->channels[0][0].channel, 2u);
    EXPECT_NEAR(r->channels[0][0].share, 1.0, 1e-6);
    // The second hop goes on through the convolution into the input maps.
    ASSERT_EQ(r->hops.size(), 2u);
    for (const auto& t : r->hops[1]) EXPECT_LT(t.neuron, 72u);
}
