// Capture of real architectures nobody on this project wrote: torchvision families and torch.nn sequence
// models (make_zoo.py scripts them with random weights and records eager forward hooks). Each must be
// captured whole (100% of the parameters forward() uses, every parameterised module under its own name) and
// every captured module output must equal the eager one.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include "engine/capture/model.hpp"
#include "engine/capture/structure.hpp"
#include "tests/capture/fixtures.hpp"

namespace ts::capture {
namespace {

using testing::close;
using testing::Reference;

// make_zoo.py's folder, made once for all test processes; a failure fails the test with the script's log.
const std::filesystem::path& zooDir(std::string& log) {
    static const ::ts::testing::PythonFixture f =
        ::ts::testing::pythonFixture("zoo", testing::sourceDir() / "tests" / "capture" / "make_zoo.py");
    log = f.log;
    return f.dir;
}

Reference loadReference(const std::filesystem::path& base) {
    return Reference::loadFrom(base);
}

// One zoo model loaded for a test: its reference, probe input, model and layer DAG; `error` says what failed.
struct ZooModel {
    Reference ref;
    torch::Tensor x;
    std::vector<int64_t> sample;
    std::unique_ptr<Model> model;
    Network net;
    std::string error;
};

ZooModel loadZoo(const std::string& name) {
    ZooModel z;
    std::string log;
    const auto& dir = zooDir(log);
    if (dir.empty()) {
        z.error = "make_zoo.py failed:\n" + log;
        return z;
    }
    z.ref = loadReference(dir / name);
    z.x = z.ref.get("input", "x");
    z.sample.assign(z.x.sizes().begin() + 1, z.x.sizes().end());
    auto model = loadModel((dir / (name + ".pt")).string(), z.sample, 0);
    if (!model) {
        z.error = model.error().message;
        return z;
    }
    z.model = std::move(model.value());
    auto net = describeNetwork(*z.model, z.sample);
    if (!net) {
        z.error = net.error().message;
        return z;
    }
    z.net = std::move(net.value());
    return z;
}

// Whether the layer DAG has an edge from node `from` to node `to`.
bool feeds(const Network& net, int from, int to) {
    return from >= 0 && to >= 0 && std::any_of(net.edges.begin(), net.edges.end(), [&](const DataEdge& e) {
               return int(e.from) == from && int(e.to) == to;
           });
}

class Zoo : public ::testing::TestWithParam<std::string> {};

TEST_P(Zoo, CapturedWholeAndEqualToEagerHooks) {
    std::string log;
    const auto& dir = zooDir(log);
    ASSERT_FALSE(dir.empty()) << "make_zoo.py failed:\n" << log;
    const std::string name = GetParam();
    const Reference ref = loadReference(dir / name);
    const torch::Tensor x = ref.get("input", "x");
    ASSERT_TRUE(x.defined()) << "no reference for " << name;
    std::vector<int64_t> sample(x.sizes().begin() + 1, x.sizes().end());

    auto model = loadModel((dir / (name + ".pt")).string(), sample, 0);
    ASSERT_TRUE(model) << model.error().message;
    Model& m = **model;
    ASSERT_FALSE(m.outputOnly()) << name << ": capture graph rejected";

    // Coverage: every parameter forward() uses belongs to a captured layer.
    const CaptureCoverage cov = m.coverage();
    std::string missing;
    for (const auto& s : cov.missing)
        missing += "\n  " + s;
    EXPECT_EQ(cov.captured, cov.params) << name << ": " << 100.0 * cov.fraction() << "% captured" << missing;
    EXPECT_GT(cov.params, 0);

    m.setTraining(false);
    const ForwardCapture fc = m.forwardCapture(x);
    EXPECT_TRUE(close(fc.output, ref.get("output", "out"), name + " output"));

    std::map<std::string, torch::Tensor> got;
    for (size_t i = 0; i < fc.activations.size(); ++i)
        got[fc.activations[i].first] = batchFirst(fc.activations[i].second, fc.batchDim(i));

    // Every module call capture names as the hooks name it has the eager values.
    int compared = 0;
    for (const auto& rec : ref.records) {
        if (rec.kind != "act") continue;
        auto it = got.find(rec.name);
        if (it == got.end()) continue;
        EXPECT_TRUE(close(it->second, rec.value, name + " " + rec.name, 1e-4, 1e-4));
        ++compared;
    }
    EXPECT_GT(compared, 0) << name << ": no captured layer matched a module name";

    // The layers a person expects: each module that owns parameters appears under its own name (its first
    // call; later calls may share their value with a child's output).
    std::set<std::string> owners;
    for (const auto& [pname, p] : m.namedParameters()) {
        const size_t dot = pname.rfind('.');
        if (dot != std::string::npos) owners.insert(pname.substr(0, dot));
    }
    std::set<std::string> called;
    for (const auto& rec : ref.records)
        if (rec.kind == "act") called.insert(rec.name);
    for (const auto& owner : owners) {
        if (!called.count(owner)) continue; // used through its parent (MultiheadAttention's out_proj)
        if (got.count(owner)) continue;
        // A module whose output is its last child's (ViT's encoder ends in its LayerNorm) is shown under the
        // child's name: its eager output must be among the captured tensors.
        const torch::Tensor want = ref.get("act", owner);
        bool shown = false;
        for (const auto& [n, t] : got)
            shown = shown || (t.sizes() == want.sizes() && torch::allclose(t, want, 1e-4, 1e-4));
        EXPECT_TRUE(shown) << name << ": module '" << owner << "' is not a captured layer";
    }

    // The layer DAG describes the same layers, with per-sample shapes.
    auto net = describeNetwork(m, sample);
    ASSERT_TRUE(net) << net.error().message;
    EXPECT_EQ(net->nodes.size(), fc.activations.size() + 1);
    EXPECT_DOUBLE_EQ(net->paramCoverage(), 1.0);
    // Each parameter is counted at most once by the layers, also for modules with several outputs (an LSTM's
    // h_n and c_n); parameters read by a parent (ViT's class token, attention's out_proj) belong to no layer.
    EXPECT_LE(net->totalParams(), cov.params);
}

INSTANTIATE_TEST_SUITE_P(Architectures, Zoo,
                         ::testing::Values("resnet18", "mobilenet_v2", "densenet121", "shufflenet_v2",
                                           "efficientnet_b0", "convnext", "vit", "transformer", "lstm",
                                           "lstm_seq_first", "gru", "looped_cell"));

// Training through a captured recurrent layer: gradients reach the sequence-first LSTM's outputs, batch first.
TEST(ZooTraining, SequenceFirstGradientsAreBatchFirst) {
    const ZooModel z = loadZoo("lstm_seq_first");
    ASSERT_TRUE(z.error.empty()) << z.error;
    const Network* net = &z.net;
    const torch::Tensor& x = z.x;
    const int rnn = net->find("rnn");
    ASSERT_GE(rnn, 0);
    // [T, N, H] seen as [N, T, H]: T x H neurons per sample.
    EXPECT_EQ(net->nodes[size_t(rnn)].outputShape, (std::vector<int64_t>{x.size(1), 12}));
    const int hn = net->find("rnn.h_n");
    ASSERT_GE(hn, 0);
    EXPECT_EQ(net->nodes[size_t(hn)].outputShape, (std::vector<int64_t>{2, 12}));
}

// DenseNet's blocks append each layer's output to a list that the next layers concatenate: the layer DAG
// follows the list's mutations, so each dense layer's cat reads every earlier layer of its block (it used to
// read only the block's input, and the layers of a block were drawn side by side as one thin bar).
TEST(ZooTraining, DenseBlocksConnectEveryEarlierLayer) {
    const ZooModel z = loadZoo("densenet121");
    ASSERT_TRUE(z.error.empty()) << z.error;
    const Network* net = &z.net;
    auto connects = [&](const std::string& from, const std::string& to) {
        return feeds(*net, net->find(from), net->find(to));
    };
    const std::string block = "features.denseblock1.";
    EXPECT_TRUE(connects("features.pool0", block + "denselayer3.cat"));
    EXPECT_TRUE(connects(block + "denselayer1.conv2", block + "denselayer2.cat"));
    EXPECT_TRUE(connects(block + "denselayer1.conv2", block + "denselayer3.cat"));
    EXPECT_TRUE(connects(block + "denselayer2.conv2", block + "denselayer3.cat"));
    EXPECT_FALSE(connects(block + "denselayer3.conv2", block + "denselayer3.cat")) << "a layer cannot read its own output";
}

// Modules called inside loops of forward() (prim::Loop): one layer each, every iteration stacked after the
// batch ([N, iterations, ...]); the layer DAG runs input -> cell -> block -> fc; the gradient handed to
// onGradient is every iteration's gradient, stacked the same way, as LibTorch's autograd computes them.
TEST(ZooTraining, LoopLayersStackIterationsAndTheirGradients) {
    const ZooModel z = loadZoo("looped_cell");
    ASSERT_TRUE(z.error.empty()) << z.error;
    const Network* net = &z.net;
    const torch::Tensor& x = z.x;
    Model& m = *z.model;
    const int cell = net->find("cell"), block = net->find("block.1"), fc = net->find("fc");
    ASSERT_GE(cell, 0);
    ASSERT_GE(block, 0);
    ASSERT_GE(fc, 0);
    EXPECT_EQ(net->nodes[size_t(cell)].outputShape, (std::vector<int64_t>{x.size(1), 10})); // T x hidden
    EXPECT_EQ(net->nodes[size_t(block)].outputShape, (std::vector<int64_t>{3, 10}));        // 3 applications
    EXPECT_TRUE(feeds(*net, 0, cell)) << "the cell reads the input";
    EXPECT_TRUE(feeds(*net, block, fc)) << "fc reads the last application of the block";

    m.setTraining(true);
    ForwardCapture got = m.forwardCapture(x);
    size_t at = got.activations.size();
    for (size_t i = 0; i < got.activations.size(); ++i)
        if (got.activations[i].first == "cell") at = i;
    ASSERT_LT(at, got.activations.size());
    ASSERT_LT(at, got.parts.size());
    const auto& parts = got.parts[at].tensors;
    ASSERT_EQ(int64_t(parts.size()), x.size(1));
    torch::Tensor gathered;
    onGradient(got, at, [&](const torch::Tensor& g) { gathered = g.clone(); });
    got.output.pow(2).sum().backward();
    // The reference: LibTorch's autograd on the parts of a second, identical forward pass.
    ForwardCapture again = m.forwardCapture(x);
    const auto want = torch::autograd::grad({again.output.pow(2).sum()}, again.parts[at].tensors);
    ASSERT_TRUE(gathered.defined()) << "no gradient reached the loop layer";
    EXPECT_TRUE(close(gathered, torch::stack(want, 1), "cell gradient", 1e-6, 1e-6));
    EXPECT_GT(gathered.abs().sum().item<double>(), 0.0);
}

} // namespace
} // namespace ts::capture
