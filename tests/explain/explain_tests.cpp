// Attributions against independent references: float64 LRP by the rules' formulas (make_fixtures.py, numpy),
// the LRP-0 = gradient x input identity on a bias-free ReLU network and on torchvision's ResNet-18, relevance
// conservation, integrated gradients' completeness, finite differences; bad input; the heatmap picture.
#include <cmath>
#include <random>
#include <filesystem>
#include <fstream>
#include <tuple>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "engine/capture/inputs.hpp"
#include "engine/capture/model.hpp"
#include "engine/core/image.hpp"
#include "engine/explain/attribution.hpp"
#include "engine/explain/command.hpp"
#include "engine/explain/features.hpp"
#include "engine/explain/heatmap.hpp"
#include "engine/capture/checkpoint_weights.hpp"
#include "engine/explain/neurogram.hpp"
#include "engine/explain/projection.hpp"
#include "engine/explain/scatter.hpp"
#include "engine/runs/checkpoint.hpp"
#include "tests/python_fixture.hpp"

namespace ts::explain {
namespace {

namespace fs = std::filesystem;

struct Fixtures {
    fs::path dir;
    std::string log;
};

const Fixtures& fixtures() {
    static const Fixtures f = [] {
        auto p = ::ts::testing::pythonFixture("explain", fs::path(TS_SOURCE_DIR) / "tests/explain/make_fixtures.py");
        return Fixtures{p.dir, p.log};
    }();
    return f;
}

// python3-torch and python3-torchvision come from scripts/setup.sh: a fixture that cannot be made fails.
#define REQUIRE_FIXTURES() \
    ASSERT_FALSE(fixtures().dir.empty()) << "make_fixtures.py failed (/usr/bin/python3):\n" << fixtures().log

std::unique_ptr<capture::Model> load(const std::string& name) {
    auto m = capture::loadModel((fixtures().dir / name).string(), {}, 0);
    EXPECT_TRUE(bool(m)) << (m ? "" : m.error().message);
    return m ? std::move(*m) : nullptr;
}

torch::Tensor npy(const std::string& name) {
    capture::InputOptions o;
    o.path = (fixtures().dir / name).string();
    o.count = 0;
    auto d = capture::loadInputs(o);
    EXPECT_TRUE(bool(d)) << (d ? "" : d.error().message);
    return d ? d->inputs : torch::Tensor();
}

nlohmann::json fixtureJson(const std::string& name) {
    std::ifstream in(fixtures().dir / name);
    return nlohmann::json::parse(in);
}

Attribution run(capture::Model& m, const torch::Tensor& x, Method method, double eps = 1e-2, int64_t target = -1) {
    AttributionOptions o;
    o.method = method;
    o.epsilon = eps;
    o.target = target;
    auto r = attribute(m, x, o);
    EXPECT_TRUE(bool(r)) << (r ? "" : r.error().message);
    return r ? *r : Attribution{};
}

double maxAbsDiff(const torch::Tensor& a, const torch::Tensor& b) {
    return (a.to(torch::kFloat64) - b.to(torch::kFloat64)).abs().max().item<double>();
}

// ---------------------------------------------------------------------------------------------------------
// LRP against float64 references.

TEST(Lrp, EpsilonRuleMatchesFloat64ReferenceOnMlpWithBiases) {
    REQUIRE_FIXTURES();
    auto m = load("mlp.pt");
    ASSERT_TRUE(m);
    const auto ref = fixtureJson("mlp.json");
    const auto r = run(*m, npy("mlp_x.npy"), Method::LrpEpsilon, 0.1);
    EXPECT_EQ(r.target, ref["target"].get<int64_t>());
    const torch::Tensor expected = npy("mlp_lrp_eps.npy");
    const double scale = expected.abs().max().item<double>();
    EXPECT_LT(maxAbsDiff(r.map, expected), 1e-4 * scale);
    // Layer sums, output to input: out, fc2 (after relu2), fc1 (after relu1), input.
    const auto sums = ref["sums_eps"].get<std::vector<double>>();
    std::map<std::string, double> layer;
    for (const auto& l : r.layers)
        layer[l.name] = l.sum;
    EXPECT_NEAR(layer.at("out"), sums[0], 1e-4 * std::abs(sums[0]));
    EXPECT_NEAR(layer.at("relu2"), sums[1], 1e-4 * std::abs(sums[0]));
    EXPECT_NEAR(layer.at("fc2"), sums[1], 1e-4 * std::abs(sums[0]));
    EXPECT_NEAR(layer.at("relu1"), sums[2], 1e-4 * std::abs(sums[0]));
    EXPECT_NEAR(r.map.sum().item<double>(), sums[3], 1e-4 * std::abs(sums[0]));
}

// ReLU6 with saturated units and GELU: the identity rule passes relevance through them unchanged (the gradient
// would drop what reaches a saturated ReLU6 unit), against a float64 reference.
TEST(Lrp, IdentityRulePassesRelevanceThroughSaturatedReLU6AndGelu) {
    REQUIRE_FIXTURES();
    auto m = load("act_mlp.pt");
    ASSERT_TRUE(m);
    const auto ref = fixtureJson("act_mlp.json");
    ASSERT_GT(ref["saturated"].get<int>(), 0) << "the fixture must saturate some ReLU6 units";
    const auto r = run(*m, npy("act_x.npy"), Method::LrpEpsilon, 0.1);
    EXPECT_EQ(r.target, ref["target"].get<int64_t>());
    const torch::Tensor expected = npy("act_lrp_eps.npy");
    const double scale = expected.abs().max().item<double>();
    EXPECT_LT(maxAbsDiff(r.map, expected), 1e-4 * scale);
    std::map<std::string, LayerRelevance> layer;
    for (const auto& l : r.layers)
        layer[l.name] = l;
    ASSERT_TRUE(layer.count("act1") && layer.count("fc1") && layer.count("act2") && layer.count("fc2"));
    EXPECT_EQ(layer["act1"].rule, "identity");
    EXPECT_EQ(layer["act2"].rule, "identity");
    // Unchanged through each activation: the sum at its input equals the sum at its output.
    EXPECT_NEAR(layer["fc1"].sum, layer["act1"].sum, 1e-5 * scale);
    EXPECT_NEAR(layer["fc2"].sum, layer["act2"].sum, 1e-5 * scale);
}

TEST(Lrp, AlphaBetaRuleMatchesFloat64ReferenceOnMixedSignInputs) {
    REQUIRE_FIXTURES();
    auto m = load("mlp.pt");
    ASSERT_TRUE(m);
    AttributionOptions o;
    o.method = Method::LrpAlphaBeta;
    o.alpha = 2.0;
    o.beta = 1.0;
    auto r = attribute(*m, npy("mlp_x.npy"), o);
    ASSERT_TRUE(bool(r)) << r.error().message;
    const torch::Tensor expected = npy("mlp_lrp_ab.npy");
    EXPECT_LT(maxAbsDiff(r->map, expected), 1e-4 * expected.abs().max().item<double>());
    for (const auto& l : r->layers)
        if (l.name == "fc1" || l.name == "fc2" || l.name == "out") {
            EXPECT_EQ(l.rule, "alpha-beta") << l.name;
        }
    // Explaining differentiates to the input only: the model's parameter gradients are neither computed nor left
    // behind (a training loop that explains between steps keeps its own gradients).
    for (const auto& [name, p] : m->namedParameters())
        EXPECT_FALSE(p.grad().defined()) << name;
    o.method = Method::LrpEpsilon;
    ASSERT_TRUE(bool(attribute(*m, npy("mlp_x.npy"), o)));
    for (const auto& [name, p] : m->namedParameters())
        EXPECT_FALSE(p.grad().defined()) << name;
}

// ---------------------------------------------------------------------------------------------------------
// Identities and conservation.

TEST(Lrp, ZeroRuleEqualsGradientTimesInputOnBiasFreeReluNetwork) {
    REQUIRE_FIXTURES();
    auto m = load("biasfree.pt");
    ASSERT_TRUE(m);
    const torch::Tensor x = npy("biasfree_x.npy");
    const auto lrp0 = run(*m, x, Method::LrpEpsilon, 0.0);
    const auto gxi = run(*m, x, Method::GradTimesInput);
    const double scale = gxi.map.abs().max().item<double>();
    ASSERT_GT(scale, 0.0);
    EXPECT_LT(maxAbsDiff(lrp0.map, gxi.map), 1e-5 * scale);
    // Bias-free: every layer on the main path holds the whole score, and so does the input.
    EXPECT_NEAR(lrp0.map.sum().item<double>(), lrp0.score, 1e-4 * std::abs(lrp0.score));
    for (const auto& l : lrp0.layers)
        if (l.name == "conv1" || l.name == "pool" || l.name == "add" || l.name == "avg" || l.name == "fc") {
            EXPECT_NEAR(l.sum, lrp0.score, 1e-4 * std::abs(lrp0.score)) << l.name;
        }
}

TEST(Lrp, EpsilonConservesRelevanceWithinEpsilonEffects) {
    REQUIRE_FIXTURES();
    auto m = load("biasfree.pt");
    ASSERT_TRUE(m);
    const torch::Tensor x = npy("biasfree_x.npy");
    double previousDrift = -1.0;
    for (double eps : {1e-1, 1e-2, 1e-3}) { // less absorbed as epsilon shrinks
        const auto r = run(*m, x, Method::LrpEpsilon, eps);
        const double drift = std::abs(r.map.sum().item<double>() - r.score);
        EXPECT_LT(drift, 50 * eps * std::abs(r.score)) << "eps " << eps;
        if (previousDrift >= 0) {
            EXPECT_LT(drift, previousDrift) << "eps " << eps;
        }
        previousDrift = drift;
    }
}

TEST(Lrp, ResNet18ZeroRuleEqualsGradientTimesInputWithFoldedBatchNorm) {
    REQUIRE_FIXTURES();
    auto m = load("resnet18.pt");
    ASSERT_TRUE(m);
    const torch::Tensor x = npy("image_x.npy");
    const auto lrp0 = run(*m, x, Method::LrpEpsilon, 0.0);
    const auto gxi = run(*m, x, Method::GradTimesInput);
    const double scale = gxi.map.abs().max().item<double>();
    EXPECT_LT(maxAbsDiff(lrp0.map, gxi.map), 1e-3 * scale);
    int folded = 0;
    for (const auto& l : lrp0.layers)
        folded += l.rule.rfind("folded into", 0) == 0;
    EXPECT_EQ(folded, 20); // every convolution of ResNet-18 is followed by its BatchNorm
}

TEST(Lrp, ResNet18AlphaBetaConservesAcrossEveryFoldedLayer) {
    // Alpha-beta leaves biases out, so a layer whose every output neuron has both positive and negative
    // contributions (random 3x3 convolutions over many channels) hands on exactly what it gets; with epsilon 0
    // at the residual adds and the pooling, the input holds the whole score, for alpha1-beta0 and alpha2-beta1.
    REQUIRE_FIXTURES();
    auto m = load("resnet18.pt");
    ASSERT_TRUE(m);
    for (auto [alpha, beta] : {std::pair{1.0, 0.0}, std::pair{2.0, 1.0}}) {
        AttributionOptions o;
        o.method = Method::LrpAlphaBeta;
        o.alpha = alpha;
        o.beta = beta;
        o.epsilon = 0.0;
        auto r = attribute(*m, npy("image_x.npy"), o);
        ASSERT_TRUE(bool(r)) << r.error().message;
        EXPECT_NEAR(r->map.sum().item<double>(), r->score, 1e-3 * std::abs(r->score)) << alpha;
        int ab = 0;
        for (const auto& l : r->layers)
            ab += l.rule == "alpha-beta";
        EXPECT_EQ(ab, 21) << "20 convolutions folded into their BatchNorms, and fc";
    }
}

// ---------------------------------------------------------------------------------------------------------
// Gradient methods.

TEST(IntegratedGradients, CompletenessWithinTheRiemannError) {
    REQUIRE_FIXTURES();
    auto m = load("resnet18.pt");
    ASSERT_TRUE(m);
    const torch::Tensor x = npy("image_x.npy");
    double previous = INFINITY;
    for (int steps : {4, 64}) {
        AttributionOptions o;
        o.method = Method::IntegratedGradients;
        o.igSteps = steps;
        auto r = attribute(*m, x, o);
        ASSERT_TRUE(bool(r)) << r.error().message;
        const double delta = r->score - r->baselineScore;
        const double err = std::abs(r->map.sum().item<double>() - delta);
        EXPECT_LT(err, steps >= 64 ? 0.01 * std::abs(delta) + 1e-4 : 0.5 * std::abs(delta) + 1e-3) << steps;
        EXPECT_LE(err, previous + 1e-6) << steps;
        previous = err;
    }
}

TEST(Gradient, MatchesCentralDifferences) {
    REQUIRE_FIXTURES();
    auto m = load("mlp.pt");
    ASSERT_TRUE(m);
    const torch::Tensor x = npy("mlp_x.npy");
    const auto r = run(*m, x, Method::Gradient);
    torch::NoGradGuard no;
    for (int64_t j : {0, 7, 19}) {
        const double h = 1e-3;
        torch::Tensor xp = x.clone(), xm = x.clone();
        xp[0][j] += h;
        xm[0][j] -= h;
        const double fd = (m->forward(xp)[0][r.target].item<double>() - m->forward(xm)[0][r.target].item<double>()) / (2 * h);
        EXPECT_NEAR(r.map[0][j].item<double>(), fd, 2e-3 * (1 + std::abs(fd))) << j;
    }
}

TEST(SmoothGrad, WithoutNoiseIsTheGradientAndIsSeeded) {
    REQUIRE_FIXTURES();
    auto m = load("biasfree.pt");
    ASSERT_TRUE(m);
    const torch::Tensor x = npy("biasfree_x.npy");
    AttributionOptions o;
    o.method = Method::SmoothGrad;
    o.smoothNoise = 0.0;
    o.smoothSamples = 5;
    auto flat = attribute(*m, x, o);
    ASSERT_TRUE(bool(flat));
    const auto grad = run(*m, x, Method::Gradient);
    EXPECT_LT(maxAbsDiff(flat->map, grad.map), 1e-6);
    o.smoothNoise = 0.3;
    auto a = attribute(*m, x, o), b = attribute(*m, x, o);
    ASSERT_TRUE(a && b);
    EXPECT_EQ(maxAbsDiff(a->map, b->map), 0.0);   // same seed, same map
    EXPECT_GT(maxAbsDiff(a->map, grad.map), 1e-6); // the noise changes it
}

// ---------------------------------------------------------------------------------------------------------
// Bad input: one line, ErrorKind::Usage (exit 2).

TEST(BadInput, LrpNamesTheLayerWithoutARule) {
    REQUIRE_FIXTURES();
    for (auto [model, input, layer] : {std::tuple{"transformer.pt", "seq_x.npy", "'enc' (TransformerEncoderLayer)"},
                                       std::tuple{"sigmoid.pt", "mlp_x.npy", "'act' (Sigmoid)"}}) {
        auto m = load(model);
        ASSERT_TRUE(m);
        AttributionOptions o;
        o.method = Method::LrpEpsilon;
        auto r = attribute(*m, npy(input), o);
        ASSERT_FALSE(bool(r)) << model;
        EXPECT_EQ(r.error().kind, ErrorKind::Usage);
        EXPECT_NE(r.error().message.find(layer), std::string::npos) << r.error().message;
        EXPECT_EQ(r.error().message.find('\n'), std::string::npos);
        o.method = Method::IntegratedGradients; // the gradient methods work for any model
        o.igSteps = 8;
        EXPECT_TRUE(bool(attribute(*m, npy(input), o))) << model;
    }
}

TEST(BadInput, ClassOutOfRangeAndWrongShape) {
    REQUIRE_FIXTURES();
    auto m = load("mlp.pt");
    ASSERT_TRUE(m);
    AttributionOptions o;
    o.target = 5;
    auto r = attribute(*m, npy("mlp_x.npy"), o);
    ASSERT_FALSE(bool(r));
    EXPECT_EQ(r.error().kind, ErrorKind::Usage);
    EXPECT_NE(r.error().message.find("class 5 is out of range: the model has 5 classes"), std::string::npos)
        << r.error().message;
    o.target = -1;
    auto shape = attribute(*m, npy("image_x.npy"), o);
    ASSERT_FALSE(bool(shape));
    EXPECT_EQ(shape.error().kind, ErrorKind::Usage);
    EXPECT_NE(shape.error().message.find("[1, 3, 64, 64]"), std::string::npos) << shape.error().message;
    EXPECT_NE(shape.error().message.find("mat1 and mat2"), std::string::npos) << shape.error().message;
    auto batch = attribute(*m, torch::zeros({2, 20}), o);
    ASSERT_FALSE(bool(batch));
    EXPECT_NE(batch.error().message.find("one sample"), std::string::npos);
}

TEST(Command, WritesPictureAndReportAndRejectsBadFlags) {
    const fs::path dir = fs::temp_directory_path() / ("ts_explain_" + std::to_string(::getpid()));
    fs::create_directories(dir);
    ExplainArgs a;
    a.model = "builtin:cnn";
    a.data = "fashion-mnist";
    a.limit = 200;
    a.index = 4;
    a.method = "ig";
    a.steps = 16;
    a.out = (dir / "heat.png").string();
    auto r = runExplain(a);
    ASSERT_TRUE(bool(r)) << r.error().message;
    EXPECT_TRUE(fs::exists(dir / "heat.png"));
    std::ifstream in(dir / "heat.json");
    const auto j = nlohmann::json::parse(in);
    EXPECT_EQ(j["method"], "ig");
    EXPECT_EQ(j["input"], "fashion-mnist validation #4");
    EXPECT_NEAR(j["completeness"]["sum_of_attributions"].get<double>(),
                j["completeness"]["score_minus_baseline"].get<double>(),
                0.05 * std::abs(j["completeness"]["score_minus_baseline"].get<double>()) + 1e-3);
    ExplainArgs full = a; // a failing write is an error, and a device is written to, never replaced
    full.json = "/dev/full";
    auto failed = runExplain(full);
    ASSERT_FALSE(bool(failed));
    EXPECT_EQ(failed.error().kind, ErrorKind::Usage);
    EXPECT_TRUE(fs::is_character_file("/dev/full"));
    ExplainArgs layers = a; // LRP with every layer's relevance over its feature maps
    layers.method = "lrp";
    layers.layersPng = (dir / "layers.png").string();
    ASSERT_TRUE(bool(runExplain(layers)));
    EXPECT_TRUE(fs::exists(dir / "layers.png"));
    layers.method = "ig";
    auto wrongMethod = runExplain(layers);
    ASSERT_FALSE(bool(wrongMethod));
    EXPECT_NE(wrongMethod.error().message.find("--layers-out"), std::string::npos);
    for (auto [field, value, expect] :
         {std::tuple{"method", "shap", "unknown --method 'shap'"}, std::tuple{"class", "10", "class 10 is out of range"},
          std::tuple{"index", "999", "--index 999 is out of range"}}) {
        ExplainArgs b = a;
        if (std::string(field) == "method") b.method = value;
        if (std::string(field) == "class") b.target = std::stoll(value);
        if (std::string(field) == "index") b.index = std::stoll(value);
        auto e = runExplain(b);
        ASSERT_FALSE(bool(e)) << field;
        EXPECT_EQ(e.error().kind, ErrorKind::Usage);
        EXPECT_NE(e.error().message.find(expect), std::string::npos) << e.error().message;
    }
    fs::remove_all(dir);
}

// ---------------------------------------------------------------------------------------------------------
// The picture: a known map gives known colours.

TEST(Heatmap, SignedMapIsRedWherePositiveBlueWhereNegative) {
    HeatmapSource s;
    s.shape = {1, 4, 4};
    s.input.assign(16, 0.5f);
    s.attribution.assign(16, 0.0f);
    s.attribution[5] = 1.0f;   // (1, 1) positive
    s.attribution[10] = -1.0f; // (2, 2) negative
    const Map2D m = reduceMap(s);
    EXPECT_EQ(m.height, 4);
    EXPECT_EQ(m.width, 4);
    EXPECT_FLOAT_EQ(m.scale, 1.0f);
    const ImageRgba8 img = renderExplanation(s, 256); // panels 256 px: factor 64, gap 12, no title
    ASSERT_EQ(img.width, 3 * 256 + 4 * 12);
    ASSERT_EQ(img.height, 12 + 256 + 64);
    const int heatX = 2 * 12 + 256;
    auto px = [&](int cx, int cy) { return img.at(heatX + cx * 64 + 32, 12 + cy * 64 + 32); };
    EXPECT_GT(px(1, 1)[0], 150);
    EXPECT_LT(px(1, 1)[2], 100); // red
    EXPECT_GT(px(2, 2)[2], 150);
    EXPECT_LT(px(2, 2)[0], 100); // blue
    EXPECT_NEAR(px(0, 0)[0], px(0, 0)[2], 40); // zero: the neutral middle
    // Unsigned maps take the largest magnitude over channels.
    s.shape = {2, 2, 1};
    s.input = {0, 1, 0, 1};
    s.attribution = {-3, 1, 2, -0.5f};
    s.signedMap = false;
    const Map2D u = reduceMap(s);
    ASSERT_EQ(u.values.size(), 2u);
    EXPECT_FLOAT_EQ(u.values[0], 3.0f);
    EXPECT_FLOAT_EQ(u.values[1], 1.0f);
}

// ---------------------------------------------------------------------------------------------------------
// Projections: PCA against LibTorch's float64 eigendecomposition; t-SNE on planted clusters.

Matrix toMatrix(const torch::Tensor& t) {
    const torch::Tensor c = t.to(torch::kFloat32).contiguous();
    return Matrix{c.size(0), c.size(1), std::vector<float>(c.data_ptr<float>(), c.data_ptr<float>() + c.numel())};
}

void expectPcaMatchesEigh(int64_t n, int64_t d, int k) {
    torch::manual_seed(11);
    // Correlated data with a clear spectrum: independent columns scaled 1/(1 + i), then rotated.
    torch::Tensor scales = 1.0 / (torch::arange(d, torch::kFloat64) + 1.0) * 4.0;
    torch::Tensor rot = std::get<0>(torch::linalg_qr(torch::randn({d, d}, torch::kFloat64)));
    torch::Tensor x = (torch::randn({n, d}, torch::kFloat64) * scales).mm(rot) + 3.0;
    const Matrix m = toMatrix(x);
    auto p = pca(m, k);
    ASSERT_TRUE(bool(p)) << p.error().message;
    // Reference: the covariance of the same float32 values, decomposed by LAPACK in float64.
    torch::Tensor xf = x.to(torch::kFloat32).to(torch::kFloat64);
    torch::Tensor centred = xf - xf.mean(0, true);
    torch::Tensor cov = centred.t().mm(centred) / double(n - 1);
    auto [values, vectors] = torch::linalg_eigh(cov);
    for (int j = 0; j < k; ++j) {
        const double expected = values[d - 1 - j].item<double>();
        EXPECT_NEAR(p->eigenvalues[size_t(j)], expected, 1e-8 * values[d - 1].item<double>()) << j;
        torch::Tensor axis = torch::from_blob(const_cast<float*>(&p->axes.values[size_t(j * d)]), {d}, torch::kFloat32)
                                 .to(torch::kFloat64);
        EXPECT_NEAR(std::abs(axis.dot(vectors.select(1, d - 1 - j)).item<double>()), 1.0, 1e-5) << j;
    }
    EXPECT_NEAR(p->totalVariance, cov.trace().item<double>(), 1e-9 * cov.trace().item<double>());
    // Points are the centred samples on the axes.
    torch::Tensor axes = torch::from_blob(const_cast<float*>(p->axes.values.data()), {k, d}, torch::kFloat32).to(torch::kFloat64);
    torch::Tensor expectedPoints = centred.mm(axes.t());
    torch::Tensor points = torch::from_blob(const_cast<float*>(p->points.values.data()), {n, k}, torch::kFloat32).to(torch::kFloat64);
    EXPECT_LT((points - expectedPoints).abs().max().item<double>(), 1e-4 * expectedPoints.abs().max().item<double>());
}

TEST(Projection, PcaMatchesEigendecompositionJacobi) {
    expectPcaMatchesEigh(400, 12, 3);
}

TEST(Projection, PcaMatchesEigendecompositionSubspaceIteration) {
    expectPcaMatchesEigh(600, 200, 3); // above 160 dimensions: subspace iteration
}

TEST(Projection, TsneSeparatesPlantedClusters) {
    torch::manual_seed(5);
    const int64_t n = 600, d = 64, clusters = 6;
    torch::Tensor centres = torch::randn({clusters, d}) * 2.0;
    torch::Tensor ids = torch::arange(n) % clusters;
    torch::Tensor x = centres.index_select(0, ids) + torch::randn({n, d});
    std::vector<int64_t> labels(ids.data_ptr<int64_t>(), ids.data_ptr<int64_t>() + n);
    // Random labels in the same layout have purity ~1/6: the measure can fail.
    std::vector<int64_t> shuffled = labels;
    std::mt19937 rng(3);
    std::shuffle(shuffled.begin(), shuffled.end(), rng);
    TsneOptions o;
    o.perplexity = 20;
    o.iterations = 500;
    auto y = tsne(toMatrix(x), o);
    ASSERT_TRUE(bool(y)) << y.error().message;
    EXPECT_GT(knnPurity(*y, labels, 10), 0.95);
    EXPECT_LT(knnPurity(*y, shuffled, 10), 0.4);
    // The same seed gives the same embedding.
    auto again = tsne(toMatrix(x), o);
    ASSERT_TRUE(bool(again));
    EXPECT_EQ(again->values, y->values);
}

TEST(Projection, BarnesHutRepulsionIsWithinItsErrorOfExactFloat64Sums) {
    // Clustered 2D points, as an embedding looks mid-run, with two coincident points.
    const int64_t n = 3000;
    std::mt19937 rng(5);
    std::normal_distribution<float> g(0.0f, 1.0f);
    Matrix y{n, 2, std::vector<float>(size_t(2 * n))};
    for (int64_t i = 0; i < n; ++i) {
        const float cx = float(i % 7) * 6.0f, cy = float(i % 5) * 4.0f;
        y.values[size_t(2 * i)] = cx + g(rng), y.values[size_t(2 * i + 1)] = cy + 0.5f * g(rng);
    }
    y.values[2] = y.values[0], y.values[3] = y.values[1];
    std::vector<double> fx(size_t(n), 0.0), fy(size_t(n), 0.0);
    double zExact = 0;
    for (int64_t i = 0; i < n; ++i)
        for (int64_t j = 0; j < n; ++j) {
            if (i == j) continue;
            const double dx = double(y.values[size_t(2 * i)]) - y.values[size_t(2 * j)];
            const double dy = double(y.values[size_t(2 * i + 1)]) - y.values[size_t(2 * j + 1)];
            const double q = 1.0 / (1.0 + dx * dx + dy * dy);
            zExact += q, fx[size_t(i)] += q * q * dx, fy[size_t(i)] += q * q * dy;
        }
    double scale = 0;
    for (int64_t i = 0; i < n; ++i)
        scale = std::max(scale, std::hypot(fx[size_t(i)], fy[size_t(i)]));
    for (bool grouped : {false, true}) {
        double z = 0;
        const Matrix r = tsneRepulsion(y, 0.5, grouped, z);
        double worst = 0, mean = 0;
        for (int64_t i = 0; i < n; ++i) {
            const double e = std::hypot(r.values[size_t(2 * i)] - fx[size_t(i)], r.values[size_t(2 * i + 1)] - fy[size_t(i)]);
            worst = std::max(worst, e), mean += e / double(n);
        }
        SCOPED_TRACE(grouped ? "grouped walk" : "walk per point");
        EXPECT_NEAR(z, zExact, 0.01 * zExact);
        EXPECT_LT(mean, 0.01 * scale);
        EXPECT_LT(worst, 0.05 * scale);
        double zExactOnly = 0;
        const Matrix exact = tsneRepulsion(y, 0.0, grouped, zExactOnly); // theta 0: every pair
        EXPECT_NEAR(zExactOnly, zExact, 1e-4 * zExact);
        for (int64_t i = 0; i < n; ++i)
            ASSERT_NEAR(exact.values[size_t(2 * i)], fx[size_t(i)], 1e-4 * scale + 1e-4 * std::fabs(fx[size_t(i)]));
    }
}

TEST(Projection, BadInputIsOneLine) {
    Matrix tiny{3, 2, {0, 1, 2, 3, 4, 5}};
    auto t = tsne(tiny, {});
    ASSERT_FALSE(bool(t));
    EXPECT_EQ(t.error().kind, ErrorKind::Usage);
    Matrix some{50, 2, std::vector<float>(100, 1.0f)};
    auto big = tsne(some, {}); // perplexity 30 needs more than 91 samples
    ASSERT_FALSE(bool(big));
    EXPECT_NE(big.error().message.find("perplexity"), std::string::npos);
    some.values[7] = NAN;
    auto nan = pca(some, 2);
    ASSERT_FALSE(bool(nan));
    EXPECT_NE(nan.error().message.find("NaN"), std::string::npos);
}

TEST(Command, ProjectWritesEveryPointAndNamesMissingLayers) {
    const fs::path dir = fs::temp_directory_path() / ("ts_project_" + std::to_string(::getpid()));
    fs::create_directories(dir);
    ProjectArgs a;
    a.model = "builtin:mlp";
    a.data = "gaussians";
    a.samples = 150;
    a.trainSteps = 100;
    a.out = (dir / "p.png").string();
    auto r = runProject(a);
    ASSERT_TRUE(bool(r)) << r.error().message;
    std::ifstream in(dir / "p.json");
    const auto j = nlohmann::json::parse(in);
    EXPECT_EQ(j["layer"], "relu2"); // the input of the last layer
    EXPECT_EQ(j["points"].size(), 150u);
    EXPECT_EQ(j["points"][7]["index"], 7);
    EXPECT_GT(j["knn_purity_10"].get<double>(), 0.5);
    ProjectArgs bad = a;
    bad.layer = "fc9";
    auto e = runProject(bad);
    ASSERT_FALSE(bool(e));
    EXPECT_EQ(e.error().kind, ErrorKind::Usage);
    EXPECT_NE(e.error().message.find("no layer 'fc9' (layers: fc1, relu1, fc2, relu2, out)"), std::string::npos)
        << e.error().message;
    bad = a;
    bad.method = "umap";
    EXPECT_FALSE(bool(runProject(bad)));
    fs::remove_all(dir);
}

TEST(Scatter, ClassesGetDistinctColoursAndPointsLandInThePlot) {
    ScatterSource s;
    s.x = {0, 1};
    s.y = {0, 1};
    s.labels = {0, 1};
    s.classNames = {"a", "b"};
    const ImageRgba8 img = renderScatter(s, 400, 300);
    const Rgb8 c0 = classColour(0), c1 = classColour(1);
    int found0 = 0, found1 = 0;
    for (int y = 0; y < img.height; ++y)
        for (int x = 0; x < img.width; ++x) {
            const auto* p = img.at(x, y);
            found0 += std::abs(p[0] - c0.r) + std::abs(p[1] - c0.g) + std::abs(p[2] - c0.b) < 60;
            found1 += std::abs(p[0] - c1.r) + std::abs(p[1] - c1.g) + std::abs(p[2] - c1.b) < 60;
        }
    EXPECT_GT(found0, 10); // the point and its legend swatch
    EXPECT_GT(found1, 10);
    for (int64_t c = 0; c < 30; ++c)
        for (int64_t e = c + 1; e < 30; ++e) {
            const Rgb8 a = classColour(c), b = classColour(e);
            EXPECT_GT(std::abs(a.r - b.r) + std::abs(a.g - b.g) + std::abs(a.b - b.b), 12) << c << " " << e;
        }
}

// ---------------------------------------------------------------------------------------------------------
// Neurogram: mean ablations against Python forward hooks (make_fixtures.py), KPIs against a direct count.

capture::Dataset ablationData() {
    capture::Dataset d;
    d.inputs = npy("abl_x.npy");
    d.labels = npy("abl_y.npy").reshape({-1}).round().to(torch::kInt64);
    d.sampleShape = {1, 12, 12};
    d.numClasses = 5;
    return d;
}

TEST(Neurogram, MeanAblationsEqualPythonForwardHooks) {
    REQUIRE_FIXTURES();
    auto m = load("abl_cnn.pt");
    ASSERT_TRUE(m);
    const auto ref = fixtureJson("abl_cnn.json");
    const capture::Dataset d = ablationData();
    NeurogramOptions o;
    o.samples = 300;
    o.stability = false;
    auto g = computeNeurogram(*m, d, d, o);
    ASSERT_TRUE(bool(g)) << g.error().message;
    EXPECT_NEAR(g->validation.accuracy, ref["intact"]["accuracy"].get<double>(), 1e-9);
    EXPECT_NEAR(g->validation.loss, ref["intact"]["loss"].get<double>(), 1e-5);
    std::map<std::string, LayerContribution> byName;
    for (const auto& l : g->layers)
        byName[l.name] = l;
    // Every captured layer, in forward order: those without parameters too (compared with a forward written
    // out in Python that replaces the value).
    std::vector<std::string> order;
    for (const auto& l : g->layers)
        order.push_back(l.name);
    EXPECT_EQ(order, (std::vector<std::string>{"conv1", "bn1", "relu", "pool", "conv2", "bn2", "relu_1", "pool_1", "fc"}));
    for (const std::string name : {"conv1", "bn1", "relu", "pool", "conv2", "bn2", "relu_1", "pool_1", "fc"}) {
        ASSERT_TRUE(byName.count(name)) << name;
        const auto& l = byName[name];
        ASSERT_TRUE(l.ablated) << name << ": " << l.note;
        EXPECT_NEAR(l.accuracy, ref["layers"][name]["accuracy"].get<double>(), 1e-9) << name;
        EXPECT_NEAR(l.loss, ref["layers"][name]["loss"].get<double>(), 2e-5 * ref["layers"][name]["loss"].get<double>())
            << name;
        EXPECT_GT(l.accuracyDrop, 0.3) << name; // every layer of this small trained CNN matters
        EXPECT_TRUE(std::isfinite(l.taylorLossIncrease)) << name;
    }
    // conv2 has no bias: replaced directly, and the same as replacing its BatchNorm's output (affine per channel)
    EXPECT_NEAR(byName["conv2"].loss, byName["bn2"].loss, 1e-5);
    EXPECT_EQ(byName["relu"].params, 0);
    EXPECT_EQ(byName["conv1"].params, 40);
    EXPECT_TRUE(std::isfinite(g->agreement));
    EXPECT_EQ(g->params, 40 + 8 + 216 + 12 + 54 * 5 + 5); // conv1, bn1, conv2 (no bias), bn2, fc
}

// Model::forwardReplacing, which the ablations use: on the built-in MLP, a ReLU's output replaced equals the
// formula of the layers after it; on TorchScript models (ResNet-18, a Transformer encoder), replacing any layer's
// output by the value it had gives forward()'s output exactly, and another value changes it; bad requests are
// errors, not crashes.
TEST(Neurogram, ReplacingALayerOutputEqualsTheFormulaAndBadRequestsAreErrors) {
    torch::manual_seed(4);
    auto mlp = capture::loadModel("builtin:mlp", {2}, 3);
    ASSERT_TRUE(bool(mlp)) << mlp.error().message;
    std::map<std::string, torch::Tensor> p;
    for (const auto& [name, t] : (*mlp)->namedParameters())
        p[name] = t.detach();
    const torch::Tensor x = torch::randn({5, 2}), v = torch::randn({1, 64});
    auto got = (*mlp)->forwardReplacing("relu1", v, x);
    ASSERT_TRUE(bool(got)) << got.error().message;
    namespace F = torch::nn::functional;
    const torch::Tensor want = F::linear(torch::relu(F::linear(v.expand({5, 64}), p["fc2.weight"], p["fc2.bias"])),
                                         p["out.weight"], p["out.bias"]);
    EXPECT_TRUE(torch::allclose(*got, want, 1e-5, 1e-6));
    EXPECT_FALSE(bool((*mlp)->forwardReplacing("nope", v, x)));
    EXPECT_FALSE(bool((*mlp)->forwardReplacing("relu1", torch::zeros({1, 7}), x))); // does not broadcast

    REQUIRE_FIXTURES();
    for (const auto& [file, input] : {std::pair{"resnet18.pt", torch::rand({2, 3, 64, 64})},
                                      std::pair{"transformer.pt", npy("seq_x.npy").to(torch::kFloat32).repeat({2, 1, 1})}}) {
        SCOPED_TRACE(file);
        auto m = load(file);
        ASSERT_TRUE(m);
        m->setTraining(false);
        torch::NoGradGuard noGrad;
        const torch::Tensor intact = m->forward(input);
        const auto fc = m->forwardCapture(input);
        ASSERT_GE(fc.activations.size(), 3u);
        int replaced = 0;
        for (size_t i = 0; i < fc.activations.size(); ++i) {
            const auto& [name, a] = fc.activations[i];
            auto same = m->forwardReplacing(name, a, input);
            ASSERT_TRUE(bool(same)) << name << ": " << same.error().message;
            EXPECT_TRUE(torch::equal(*same, intact)) << name;
            auto other = m->forwardReplacing(name, a + 1.0, input);
            ASSERT_TRUE(bool(other)) << name << ": " << other.error().message;
            EXPECT_FALSE(torch::allclose(*other, intact)) << name;
            ++replaced;
        }
        EXPECT_EQ(size_t(replaced), fc.activations.size());
        auto missing = m->forwardReplacing("nope", torch::zeros({1}), input);
        ASSERT_FALSE(bool(missing));
        EXPECT_NE(missing.error().message.find("has no layer 'nope'"), std::string::npos) << missing.error().message;
        auto wrong = m->forwardReplacing(fc.activations[0].first, torch::zeros({3, 5, 7}), input);
        ASSERT_FALSE(bool(wrong));
        EXPECT_EQ(wrong.error().message.find('\n'), std::string::npos) << wrong.error().message;
    }
}

TEST(Neurogram, ContributionsOnASecondDataSetEqualPythonForwardHooks) {
    REQUIRE_FIXTURES();
    auto m = load("abl_cnn.pt");
    ASSERT_TRUE(m);
    const auto ref = fixtureJson("abl_cnn.json")["shifted"];
    const capture::Dataset d = ablationData();
    capture::Dataset shifted = d;
    shifted.inputs = npy("abl_x_shift.npy");
    NeurogramOptions o;
    o.samples = 300;
    o.stability = false;
    o.shifted = &shifted;
    o.shiftedName = "contrast";
    auto g = computeNeurogram(*m, d, d, o);
    ASSERT_TRUE(bool(g)) << g.error().message;
    ASSERT_EQ(g->stability.size(), 1u);
    EXPECT_EQ(g->stability[0].corruption, "data contrast");
    const double intact = ref["intact"]["accuracy"].get<double>();
    EXPECT_NEAR(g->stability[0].accuracy, intact, 1e-9);
    for (const auto& l : g->layers) {
        SCOPED_TRACE(l.name);
        ASSERT_EQ(l.shift, "data contrast");
        EXPECT_NEAR(l.shiftedAccuracyDrop, intact - ref["layers"][l.name]["accuracy"].get<double>(), 1e-9);
        EXPECT_NEAR(l.shiftedShare, l.shiftedAccuracyDrop / (intact - 0.2), 1e-9);
    }
    ASSERT_GT(intact, 0.2 + 0.1); // the shift leaves the model well above chance (5 classes), or shares mean little
    // A second data set that does not fit: other classes, another shape.
    capture::Dataset other = shifted;
    other.labels = other.labels + 5;
    o.shifted = &other;
    auto bad = computeNeurogram(*m, d, d, o);
    ASSERT_FALSE(bool(bad));
    EXPECT_NE(bad.error().message.find("labels outside the model's 5 classes"), std::string::npos) << bad.error().message;
    capture::Dataset wide = shifted;
    wide.inputs = torch::rand({10, 1, 14, 14});
    wide.labels = wide.labels.narrow(0, 0, 10);
    wide.sampleShape = {1, 14, 14};
    o.shifted = &wide;
    bad = computeNeurogram(*m, d, d, o);
    ASSERT_FALSE(bool(bad));
    EXPECT_NE(bad.error().message.find("has samples of shape"), std::string::npos) << bad.error().message;
}

TEST(Neurogram, CheckpointsOfARunAreMeasuredAsTheModelWasThen) {
    REQUIRE_FIXTURES();
    auto m = load("abl_cnn.pt");
    ASSERT_TRUE(m);
    const auto ref = fixtureJson("abl_cnn.json");
    const capture::Dataset d = ablationData();
    const fs::path run = fs::temp_directory_path() / ("ts_ng_run_" + std::to_string(::getpid()));
    fs::remove_all(run);
    // Step 10: the trained weights. Step 20: the same with the last layer's weights zeroed (logits = its bias).
    auto snapshot = [&](bool zeroFc) {
        std::vector<runs::CheckpointTensor> out;
        for (const auto& named : {m->namedParameters(), m->namedBuffers()})
            for (const auto& [name, t] : named) {
                if (!t.is_floating_point()) continue;
                torch::Tensor c = t.detach().to(torch::kFloat32).contiguous().clone();
                if (zeroFc && name == "fc.weight") c.zero_();
                out.push_back({name, c.sizes().vec(), std::vector<float>(c.data_ptr<float>(), c.data_ptr<float>() + c.numel())});
            }
        return out;
    };
    torch::Tensor bias;
    for (const auto& [name, t] : m->namedParameters())
        if (name == "fc.bias") bias = t.detach().clone();
    ASSERT_TRUE(runs::writeCheckpoint(run.string(), 10, snapshot(false)).isOk());
    ASSERT_TRUE(runs::writeCheckpoint(run.string(), 20, snapshot(true)).isOk());
    NeurogramOptions o;
    o.samples = 300;
    o.stability = false;
    std::vector<NeurogramStep> steps;
    for (int64_t step : runs::listCheckpoints(run.string())) {
        auto tensors = runs::readCheckpoint(run.string(), step);
        ASSERT_TRUE(bool(tensors)) << tensors.error().message;
        ASSERT_TRUE(capture::loadCheckpoint(*m, *tensors).isOk());
        auto g = computeNeurogram(*m, d, d, o);
        ASSERT_TRUE(bool(g)) << g.error().message;
        steps.push_back({step, std::move(*g)});
    }
    ASSERT_EQ(steps.size(), 2u);
    EXPECT_NEAR(steps[0].graph.validation.accuracy, ref["intact"]["accuracy"].get<double>(), 1e-9);
    // With fc's weights at zero every sample gets the class of the largest bias.
    const int64_t constant = bias.argmax().item<int64_t>();
    EXPECT_NEAR(steps[1].graph.validation.accuracy, d.labels.eq(constant).to(torch::kFloat64).mean().item<double>(), 1e-9);
    const auto picture = renderNeurogramRun(steps, diagnoseRun(steps), "run");
    EXPECT_GT(picture.width, 0);

    // A checkpoint of another model: a missing tensor and a wrong shape are one line each.
    auto tensors = snapshot(false);
    tensors.erase(tensors.begin());
    auto st = capture::loadCheckpoint(*m, tensors);
    ASSERT_FALSE(st.isOk());
    EXPECT_NE(st.message().find("the checkpoint has no 'conv1.weight'"), std::string::npos) << st.message();
    tensors = snapshot(false);
    tensors[0].shape = {2, 2};
    st = capture::loadCheckpoint(*m, tensors);
    ASSERT_FALSE(st.isOk());
    EXPECT_NE(st.message().find("has shape [2, 2]"), std::string::npos) << st.message();
    tensors = snapshot(false);
    tensors.push_back({"extra.weight", {1}, {1.0f}});
    st = capture::loadCheckpoint(*m, tensors);
    ASSERT_FALSE(st.isOk());
    EXPECT_NE(st.message().find("'extra.weight', which the model does not"), std::string::npos) << st.message();
    fs::remove_all(run);
}

TEST(Neurogram, RunDiagnosesFindTheOverfittingOnset) {
    // Validation loss lowest at step 200; the accuracy gap grows from 1 to 12 points after it.
    std::vector<NeurogramStep> steps(4);
    const double val[4] = {0.70, 0.80, 0.79, 0.78}, train[4] = {0.70, 0.81, 0.86, 0.90}, loss[4] = {0.9, 0.6, 0.7, 0.8};
    for (int i = 0; i < 4; ++i) {
        steps[size_t(i)].step = 100 * (i + 1);
        steps[size_t(i)].graph.classes = 10;
        steps[size_t(i)].graph.validation.accuracy = val[i];
        steps[size_t(i)].graph.validation.loss = loss[i];
        steps[size_t(i)].graph.train.accuracy = train[i];
    }
    auto d = diagnoseRun(steps);
    ASSERT_EQ(d.size(), 1u);
    EXPECT_NE(d[0].find("overfitting from step 200"), std::string::npos) << d[0];
    // Still improving: no diagnosis.
    steps[3].graph.validation.loss = 0.5;
    EXPECT_TRUE(diagnoseRun(steps).empty());
}

TEST(Neurogram, KpisAgreeWithADirectCountAndBadLabelsAreRejected) {
    REQUIRE_FIXTURES();
    auto m = load("abl_cnn.pt");
    ASSERT_TRUE(m);
    capture::Dataset d = ablationData();
    NeurogramOptions o;
    o.samples = 300;
    auto g = computeNeurogram(*m, d, d, o);
    ASSERT_TRUE(bool(g)) << g.error().message;
    torch::NoGradGuard no;
    const torch::Tensor pred = m->forward(d.inputs).argmax(1);
    double f1 = 0;
    for (int64_t c = 0; c < 5; ++c) {
        const double tp = (pred.eq(c) & d.labels.eq(c)).sum().item<double>();
        const double actual = d.labels.eq(c).sum().item<double>(), predicted = pred.eq(c).sum().item<double>();
        EXPECT_NEAR(g->validation.classAccuracy[size_t(c)], tp / actual, 1e-12) << c;
        f1 += 2 * tp / (actual + predicted) / 5;
    }
    EXPECT_NEAR(g->validation.macroF1, f1, 1e-12);
    ASSERT_EQ(g->stability.size(), 5u); // noise x2, brightness, blur, occlusion
    for (const auto& s : g->stability)
        EXPECT_LE(s.accuracy, 1.0);
    EXPECT_GT(g->latencyMs, 0.0);
    d.labels[3] = 7; // out of range for 5 outputs
    auto bad = computeNeurogram(*m, d, d, o);
    ASSERT_FALSE(bool(bad));
    EXPECT_EQ(bad.error().kind, ErrorKind::Usage);
    EXPECT_NE(bad.error().message.find("label 7 is out of range"), std::string::npos) << bad.error().message;
    d.labels.fill_(-1); // unlabelled inputs
    auto unlabelled = computeNeurogram(*m, d, d, o);
    ASSERT_FALSE(bool(unlabelled));
    EXPECT_NE(unlabelled.error().message.find("labelled"), std::string::npos);
}

TEST(Command, NeurogramWritesPictureAndReport) {
    const fs::path dir = fs::temp_directory_path() / ("ts_neurogram_" + std::to_string(::getpid()));
    fs::create_directories(dir);
    NeurogramArgs a;
    a.model = "builtin:mlp";
    a.data = "spirals";
    a.samples = 200;
    a.trainSteps = 200;
    a.out = (dir / "n.png").string();
    auto r = runNeurogram(a);
    ASSERT_TRUE(bool(r)) << r.error().message;
    std::ifstream in(dir / "n.json");
    const auto j = nlohmann::json::parse(in);
    ASSERT_EQ(j["layers"].size(), 5u); // fc1, relu1, fc2, relu2, out
    for (const auto& l : j["layers"])
        EXPECT_TRUE(l["ablated"].get<bool>()) << l.dump();
    EXPECT_EQ(j["layers"][1]["name"], "relu1");
    EXPECT_EQ(j["layers"][1]["parameters"], 0);
    // A Linear layer after a replaced layer only sees a constant: replacing its own output by its mean is the same.
    EXPECT_NEAR(j["layers"][1]["mean_ablation"]["loss"].get<double>(), j["layers"][2]["mean_ablation"]["loss"].get<double>(), 1e-5);
    EXPECT_GT(j["validation"]["accuracy"].get<double>(), 0.5);
    EXPECT_TRUE(fs::exists(dir / "n.png"));
    fs::remove_all(dir);
}

// ---------------------------------------------------------------------------------------------------------
// Feature visualisation: activation maximisation against known optima and pictures, top inputs against Python.

UnitLayer unitLayer(capture::Model& m, const torch::Tensor& pool, const std::string& name) {
    auto l = findUnitLayer(m, pool.narrow(0, 0, 1), name);
    EXPECT_TRUE(bool(l)) << (l ? "" : l.error().message);
    return l ? *l : UnitLayer{};
}

TEST(Features, LinearUnitMaximiserIsTheKnownOptimumOfItsPlantedWeights) {
    REQUIRE_FIXTURES();
    auto m = load("fv.pt");
    ASSERT_TRUE(m);
    const torch::Tensor pool = npy("fv_pool.npy");
    const UnitLayer fc = unitLayer(*m, pool, "fc");
    ASSERT_EQ(fc.units, 4);
    MaximiseOptions o;
    o.units = {0};
    auto r = maximiseActivation(*m, fc, {1, 28, 28}, o);
    ASSERT_TRUE(bool(r)) << r.error().message;
    // Over the box [0, 1], w.x + b is largest at x = [w > 0]; its value is sum(max(w, 0)) + b.
    torch::Tensor w, b;
    for (const auto& [name, t] : m->namedParameters()) {
        if (name == "fc.weight") w = t[0].detach().to(torch::kFloat64);
        if (name == "fc.bias") b = t[0].detach().to(torch::kFloat64);
    }
    const torch::Tensor optimum = (npy("fv_ring.npy").flatten() > 0).to(torch::kFloat64);
    const double best = (w.clamp_min(0).sum() + b).item<double>();
    const torch::Tensor x = r->images[0].flatten().to(torch::kFloat64);
    const double corr = torch::corrcoef(torch::stack({x, optimum})).index({0, 1}).item<double>();
    EXPECT_GT(corr, 0.9);
    // Jitter (+-2 px on a ring 6 px wide), blur and total variation smooth the ring's edges: the regularised
    // image gives up some of the optimum (80 % here) ...
    EXPECT_GT(r->activation[0], 0.7 * best);
    EXPECT_LE(r->activation[0], best + 1e-3);
    // ... and without them, projected gradient ascent reaches the optimum itself.
    MaximiseOptions plain = o;
    plain.jitter = 0, plain.blurEvery = 0, plain.tv = 0;
    auto p = maximiseActivation(*m, fc, {1, 28, 28}, plain);
    ASSERT_TRUE(bool(p)) << p.error().message;
    EXPECT_NEAR(p->activation[0], best, 1e-3 * best);
    EXPECT_LT((p->images[0].flatten().to(torch::kFloat64) - optimum).abs().max().item<double>(), 0.02);
    auto top = topInputs(*m, fc, pool, {0}, 1);
    ASSERT_TRUE(bool(top));
    EXPECT_GT(r->activation[0], top->value[0][0]); // better than every real input
    EXPECT_GT(r->activation[0], r->start[0]);
    EXPECT_GE(x.min().item<double>(), 0.0);
    EXPECT_LE(x.max().item<double>(), 1.0);
}

TEST(Features, LineDetectorChannelsMaximiseToLinesOfTheirOrientation) {
    REQUIRE_FIXTURES();
    auto m = load("fv.pt");
    ASSERT_TRUE(m);
    const torch::Tensor pool = npy("fv_pool.npy");
    const UnitLayer relu = unitLayer(*m, pool, "relu");
    ASSERT_EQ(relu.units, 2);
    MaximiseOptions o;
    o.units = {0, 1};
    auto r = maximiseActivation(*m, relu, {1, 28, 28}, o);
    ASSERT_TRUE(bool(r)) << r.error().message;
    auto top = topInputs(*m, relu, pool, {0, 1}, 1);
    ASSERT_TRUE(bool(top));
    for (int u = 0; u < 2; ++u) {
        const torch::Tensor x = r->images[u][0].to(torch::kFloat64);
        // Energy of differences across columns (vertical lines) and across rows (horizontal lines).
        const double ex = (x.narrow(1, 1, 27) - x.narrow(1, 0, 27)).pow(2).sum().item<double>();
        const double ey = (x.narrow(0, 1, 27) - x.narrow(0, 0, 27)).pow(2).sum().item<double>();
        SCOPED_TRACE("channel " + std::to_string(u) + ": across columns " + std::to_string(ex) + ", across rows " +
                     std::to_string(ey));
        if (u == 0) EXPECT_GT(ex, 4 * ey);
        else EXPECT_GT(ey, 4 * ex);
        EXPECT_GT(r->activation[size_t(u)], 2 * top->value[size_t(u)][0]);
    }
}

TEST(Features, TopInputsEqualPythonForwardHooks) {
    REQUIRE_FIXTURES();
    auto m = load("fv.pt");
    ASSERT_TRUE(m);
    const torch::Tensor pool = npy("fv_pool.npy");
    const auto ref = fixtureJson("fv_top.json");
    for (const std::string name : {"fc", "relu"}) {
        const UnitLayer l = unitLayer(*m, pool, name);
        std::vector<int64_t> units;
        for (int64_t u = 0; u < l.units; ++u)
            units.push_back(u);
        auto t = topInputs(*m, l, pool, units, 5);
        ASSERT_TRUE(bool(t)) << t.error().message;
        ASSERT_EQ(t->index.size(), ref[name]["index"].size());
        for (size_t u = 0; u < units.size(); ++u)
            for (size_t k = 0; k < 5; ++k) {
                EXPECT_EQ(t->index[u][k], ref[name]["index"][u][k].get<int64_t>()) << name << " unit " << u << " rank " << k;
                const double v = ref[name]["value"][u][k].get<double>();
                EXPECT_NEAR(t->value[u][k], v, 1e-5 * std::max(1.0, std::fabs(v)));
            }
    }
}

TEST(Features, UnitListsAndBadInputAreOneLine) {
    auto u = parseUnits("0-2,5", 8, "conv");
    ASSERT_TRUE(bool(u));
    EXPECT_EQ(*u, (std::vector<int64_t>{0, 1, 2, 5}));
    EXPECT_EQ(parseUnits("all", 3, "fc")->size(), 3u);
    for (const auto& [text, count, expect] :
         {std::tuple{"9", int64_t(4), "unit 9 is out of range: layer 'fc' has 4 units"}, std::tuple{"a-b", int64_t(4), "--units 'a-b'"},
          std::tuple{"3-1", int64_t(4), "--units '3-1'"}, std::tuple{"", int64_t(4), "--units ''"},
          std::tuple{"all", int64_t(100), "at most 64"}, std::tuple{"0-99999999999", int64_t(100000000000), "at most 64"}}) {
        auto r = parseUnits(text, count, "fc");
        ASSERT_FALSE(bool(r)) << text;
        EXPECT_NE(r.error().message.find(expect), std::string::npos) << r.error().message;
        EXPECT_EQ(r.error().message.find('\n'), std::string::npos);
        EXPECT_EQ(r.error().kind, ErrorKind::Usage);
    }
    REQUIRE_FIXTURES();
    auto m = load("fv.pt");
    ASSERT_TRUE(m);
    const torch::Tensor pool = npy("fv_pool.npy");
    auto missing = findUnitLayer(*m, pool.narrow(0, 0, 1), "nope");
    ASSERT_FALSE(bool(missing));
    EXPECT_NE(missing.error().message.find("no layer 'nope' (layers: conv, relu, fc"), std::string::npos)
        << missing.error().message;
    auto wrong = findUnitLayer(*m, torch::rand({1, 3, 5, 5}), "relu");
    ASSERT_FALSE(bool(wrong));
    EXPECT_NE(wrong.error().message.find("rejects the input"), std::string::npos) << wrong.error().message;
    const UnitLayer out = unitLayer(*m, pool, "output");
    EXPECT_EQ(out.units, 6);
    MaximiseOptions o;
    o.units = {6};
    auto r = maximiseActivation(*m, out, {1, 28, 28}, o);
    ASSERT_FALSE(bool(r));
    EXPECT_NE(r.error().message.find("unit 6 is out of range: layer 'output' has 6 units"), std::string::npos);
}

TEST(Command, FeaturesWritesPictureAndReport) {
    REQUIRE_FIXTURES();
    const fs::path dir = fs::temp_directory_path() / ("ts_features_" + std::to_string(::getpid()));
    fs::create_directories(dir);
    FeaturesArgs a;
    a.model = (fixtures().dir / "fv.pt").string();
    a.input.path = (fixtures().dir / "fv_pool.npy").string();
    a.layer = "relu";
    a.units = "all";
    a.steps = 60;
    a.topK = 3;
    a.out = (dir / "f.png").string();
    auto r = runFeatures(a);
    ASSERT_TRUE(bool(r)) << r.error().message;
    std::ifstream in(dir / "f.json");
    const auto j = nlohmann::json::parse(in);
    EXPECT_EQ(j["layer"], "relu");
    EXPECT_EQ(j["pool"]["samples"], 200);
    ASSERT_EQ(j["units"].size(), 2u);
    const auto ref = fixtureJson("fv_top.json");
    for (size_t u = 0; u < 2; ++u) {
        ASSERT_EQ(j["units"][u]["top"].size(), 3u);
        EXPECT_EQ(j["units"][u]["top"][0]["index"], ref["relu"]["index"][u][0]);
        EXPECT_GT(j["units"][u]["maximised"]["value"].get<double>(), j["units"][u]["top"][0]["value"].get<double>());
    }
    // The picture: two rows, each with an orange-framed synthetic image; the real inputs are grey.
    auto png = readPng((dir / "f.png").string());
    ASSERT_TRUE(bool(png));
    int accent = 0;
    for (size_t i = 0; i < png->pixels.size(); i += 4)
        accent += png->pixels[i] == 255 && png->pixels[i + 1] == 160 && png->pixels[i + 2] == 60;
    EXPECT_GT(accent, 2 * 4 * 80); // two frames of about 4 x 88 pixels, plus the heading and values
    // Output units by default (every class when there are at most 16), and bad flags.
    a.layer = "";
    a.units = "";
    a.steps = 0;
    r = runFeatures(a);
    ASSERT_TRUE(bool(r)) << r.error().message;
    std::ifstream in2(dir / "f.json");
    EXPECT_EQ(nlohmann::json::parse(in2)["units"].size(), 6u);
    a.topK = 0;
    r = runFeatures(a);
    ASSERT_FALSE(bool(r));
    EXPECT_NE(r.error().message.find("nothing to show"), std::string::npos);
    a.steps = 10;
    a.start = "middle";
    r = runFeatures(a);
    ASSERT_FALSE(bool(r));
    EXPECT_NE(r.error().message.find("unknown --start 'middle' (noise, top)"), std::string::npos);
    // Starting from each unit's most exciting real input: the start's value is that input's.
    a.start = "top";
    a.topK = 2;
    a.layer = "relu";
    a.units = "all";
    r = runFeatures(a);
    ASSERT_TRUE(bool(r)) << r.error().message;
    std::ifstream in3(dir / "f.json");
    const auto j3 = nlohmann::json::parse(in3);
    for (size_t u = 0; u < 2; ++u)
        EXPECT_NEAR(j3["units"][u]["maximised"]["start_value"].get<double>(),
                    j3["units"][u]["top"][0]["value"].get<double>(), 1e-5);
    a.start = "noise";
    a.topK = 2;
    a.layer = "conv";
    a.units = "7";
    r = runFeatures(a);
    ASSERT_FALSE(bool(r));
    EXPECT_NE(r.error().message.find("has 2 units"), std::string::npos) << r.error().message;
    a.input.path.clear();
    r = runFeatures(a);
    ASSERT_FALSE(bool(r));
    EXPECT_NE(r.error().message.find("--data SET or --input FILE"), std::string::npos);
    fs::remove_all(dir);
}

} // namespace
} // namespace ts::explain
