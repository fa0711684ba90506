// The bounded timeline: thinning keeps recent history dense and older history sparse, per-neuron arrays stay
// within the byte budget, and entries handed to the UI stay valid while the trainer keeps pushing.
#include <gtest/gtest.h>

#include "app/model_scene.hpp"
#include "app/timeline.hpp"

using namespace ts::app;

namespace {
SnapshotSummary snapshot(int64_t step, size_t neurons) {
    SnapshotSummary s;
    s.step = step;
    s.loss = 1.0 / double(step + 1);
    LayerSummary l;
    l.name = "fc1";
    l.meanActivation.assign(neurons, float(step));
    l.zeroFraction.assign(neurons, 0.0f);
    s.layers.push_back(l);
    return s;
}
} // namespace

TEST(Timeline, StaysBoundedAndKeepsRecentHistoryDense) {
    Timeline tl(16, size_t(1) << 30);
    for (int64_t step = 0; step < 1000; ++step)
        tl.push(snapshot(step, 4));
    ASSERT_LE(tl.size(), 16u);
    EXPECT_EQ(tl.latest()->step, 999);
    // Steps increase, the newest few are consecutive, the oldest kept is from early in training.
    for (size_t i = 1; i < tl.size(); ++i)
        EXPECT_LT(tl.at(i - 1)->step, tl.at(i)->step);
    EXPECT_EQ(tl.at(tl.size() - 2)->step, 998);
    EXPECT_LT(tl.at(0)->step, 100);
    EXPECT_EQ(tl.version(), 1000u);
}

TEST(Timeline, PerNeuronArraysRespectTheByteBudget) {
    const size_t neurons = 1000; // 2 arrays x 4 bytes x 1000 = 8 KB per snapshot
    Timeline tl(64, 3 * 8000);
    for (int64_t step = 0; step < 20; ++step)
        tl.push(snapshot(step, neurons));
    size_t withData = 0, bytes = 0;
    for (size_t i = 0; i < tl.size(); ++i) {
        withData += tl.at(i)->layers[0].hasNeuronData();
        bytes += tl.at(i)->neuronBytes();
    }
    EXPECT_EQ(withData, 3u);
    EXPECT_LE(bytes, 3u * 8000u);
    EXPECT_TRUE(tl.latest()->layers[0].hasNeuronData());
    // Scrubbing to an old entry falls back to the newest older entry that still has neuron data... or none.
    auto old = tl.withNeuronData(2);
    EXPECT_EQ(old, nullptr);
    auto recent = tl.withNeuronData(tl.size() - 1);
    ASSERT_NE(recent, nullptr);
    EXPECT_EQ(recent->step, 19);
    EXPECT_EQ(recent->layers[0].meanActivation[0], 19.0f);
}

TEST(Timeline, HeldEntriesSurviveThinning) {
    Timeline tl(8);
    tl.push(snapshot(0, 3));
    auto held = tl.at(0);
    for (int64_t step = 1; step < 100; ++step)
        tl.push(snapshot(step, 3));
    EXPECT_EQ(held->step, 0);
    EXPECT_EQ(held->layers[0].meanActivation.size(), 3u);
}

TEST(ModelScene, LayerKindsAndPerLayerNormalisation) {
    EXPECT_EQ(layerKindOf("Linear"), ts::scene::LayerKind::Dense);
    EXPECT_EQ(layerKindOf("Conv2d"), ts::scene::LayerKind::Conv);
    EXPECT_EQ(layerKindOf("relu"), ts::scene::LayerKind::Act);
    EXPECT_EQ(layerKindOf("MaxPool2d"), ts::scene::LayerKind::Pool);
    EXPECT_EQ(layerKindOf("BatchNorm2d"), ts::scene::LayerKind::Norm);
    EXPECT_EQ(layerKindOf("Input"), ts::scene::LayerKind::Input);

    ts::capture::Network net;
    net.nodes.resize(2);
    net.nodes[0].name = "input";
    net.nodes[0].type = "Input";
    net.nodes[0].outputShape = {3};
    net.nodes[0].neurons = 3;
    net.nodes[1].name = "fc1";
    net.nodes[1].type = "Linear";
    net.nodes[1].outputShape = {4};
    net.nodes[1].neurons = 4;
    net.edges.push_back({0, 1, false});
    auto desc = toSceneDesc(net);
    ASSERT_EQ(desc.layers.size(), 2u);
    EXPECT_EQ(desc.layers[1].kind, ts::scene::LayerKind::Dense);
    EXPECT_EQ(desc.edges.size(), 1u);

    SnapshotSummary s;
    LayerSummary l;
    l.name = "fc1";
    l.meanActivation = {-200.0f, 50.0f, 100.0f, 0.0f};
    s.layers.push_back(l);
    auto data = toSceneData(net, &s, NeuronStatistic::MeanActivation, true);
    ASSERT_EQ(data.layers[1].value.size(), 4u);
    // Scaled by the layer's robust max |v| into [-1, 1], sign and order kept.
    EXPECT_FLOAT_EQ(data.layers[1].value[0], -1.0f);
    EXPECT_GT(data.layers[1].value[2], data.layers[1].value[1]);
    EXPECT_FLOAT_EQ(data.layers[1].value[3], 0.0f);
    auto raw = toSceneData(net, &s, NeuronStatistic::MeanActivation, false);
    EXPECT_FLOAT_EQ(raw.layers[1].value[0], -200.0f);
    EXPECT_TRUE(data.layers[0].value.empty()) << "layers without statistics stay empty";

    // Relevance: the neurons show the explanation's values by layer name (normalised per layer, signed), the
    // snapshot still feeds the edges; a layer whose values do not fit its neurons is left empty.
    LayerValues relevance = {{"input", {0.5f, -0.25f, 0.0f}}, {"fc1", {1.0f, 2.0f}}, {"nope", {1.0f}}};
    auto rel = toSceneData(net, &s, NeuronStatistic::Relevance, true, &relevance);
    ASSERT_EQ(rel.layers[0].value.size(), 3u);
    EXPECT_FLOAT_EQ(rel.layers[0].value[0], 1.0f);
    EXPECT_FLOAT_EQ(rel.layers[0].value[1], -0.5f);
    EXPECT_FLOAT_EQ(rel.layers[0].value[2], 0.0f);
    EXPECT_TRUE(rel.layers[1].value.empty()) << "2 values for 4 neurons";
    EXPECT_EQ(rel.layers[1].activation.size(), 4u) << "the snapshot's activations still feed the edges";
    relevance[1].second = {4.0f, -8.0f, 0.0f, 2.0f};
    rel = toSceneData(net, &s, NeuronStatistic::Relevance, false, &relevance);
    EXPECT_EQ(rel.layers[1].value, (std::vector<float>{4.0f, -8.0f, 0.0f, 2.0f})) << "in the layer's neuron order";
    EXPECT_TRUE(toSceneData(net, &s, NeuronStatistic::Relevance, true, nullptr).layers[1].value.empty());
}

// Positions are steps: after the timeline thins, a step still finds its own snapshot (or the newest before
// it), where a stored index would now point at another step. ConvNeXt's block: conv [C, H, W] -> permute [H,
// W, C] -> LayerNorm -> Linear (C -> 4C) -> GELU -> Linear
// -> permute back [C, H, W]; Swin's patch merging halves H and W with the channels still last. Those in
// between are channels-last; a convolution whose C equals H is not.
TEST(ModelScene, PermutedLayersAreChannelsLast) {
    ts::capture::Network net;
    auto node = [&](const char* name, const char* type, std::vector<int64_t> shape, int from) {
        ts::capture::LayerNode n;
        n.name = name;
        n.type = type;
        n.outputShape = std::move(shape);
        net.nodes.push_back(n);
        if (from >= 0) net.edges.push_back({uint32_t(from), uint32_t(net.nodes.size() - 1), false});
    };
    node("input", "Input", {3, 8, 8}, -1);
    node("dwconv", "Conv2d", {16, 8, 8}, 0);       // 1
    node("permute", "Permute", {8, 8, 16}, 1);     // 2
    node("norm", "LayerNorm", {8, 8, 16}, 2);      // 3
    node("pw1", "Linear", {8, 8, 64}, 3);          // 4
    node("act", "GELU", {8, 8, 64}, 4);            // 5
    node("merge", "PatchMerging", {4, 4, 128}, 5); // 6
    node("back", "Permute", {128, 4, 4}, 6);       // 7
    node("relu", "relu", {128, 4, 4}, 7);          // 8
    node("conv", "Conv2d", {16, 16, 4}, 0);        // 9: C == H, not permuted
    node("relu2", "ReLU", {16, 16, 4}, 9);         // 10
    node("seq", "Linear", {8, 8, 5}, 0);           // 11: fed by a [C, H, W] input, no permute
    const auto desc = toSceneDesc(net);
    const std::vector<bool> expected = {false, false, true,  true,  true,  true,
                                        true,  false, false, false, false, false};
    ASSERT_EQ(desc.layers.size(), expected.size());
    for (size_t i = 0; i < expected.size(); ++i)
        EXPECT_EQ(desc.layers[i].channelsLast, expected[i]) << desc.layers[i].name;
    const auto chw = ts::scene::foldShape(desc.layers[4]);
    EXPECT_EQ(chw.c, 64u);
    EXPECT_EQ(chw.h, 8u);
    EXPECT_EQ(chw.w, 8u);
}

TEST(Timeline, StepsSurviveThinning) {
    ts::app::Timeline tl(16, size_t(1) << 30);
    for (int64_t s = 10; s <= 400; s += 10) {
        ts::app::SnapshotSummary snap;
        snap.step = s;
        tl.push(snap);
    }
    ASSERT_LT(tl.size(), 40u);
    for (int64_t want : {10, 200, 250, 390, 400, 405}) {
        const size_t i = tl.indexOfStep(want);
        auto e = tl.at(i);
        ASSERT_TRUE(e);
        EXPECT_LE(e->step, want);
        if (auto next = tl.at(i + 1)) {
            EXPECT_GT(next->step, want) << "the newest entry at or before " << want;
        }
    }
    EXPECT_EQ(tl.at(tl.indexOfStep(5))->step, 10) << "before the first snapshot: the first";
}

