// Directions, grid evaluation (batched vs the per-point reference), files and the command: checked against
// independent float64 computations, LibTorch's own loss, and known values.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <atomic>
#include <cmath>
#include <filesystem>
#include <fstream>

#include "engine/landscape/batched_kernels.hpp"
#include "engine/landscape/directions.hpp"
#include "engine/landscape/evaluator.hpp"
#include "engine/landscape/h5_io.hpp"
#include "engine/landscape/hessian.hpp"
#include "engine/landscape/surface_job.hpp"
#include "engine/landscape/tensor_io.hpp"
#include "tests/landscape/test_models.hpp"

using namespace ts::landscape;
using ts::landscape::testing::SequentialModel;

namespace {

std::filesystem::path tempDir() {
    auto dir = std::filesystem::path(TS_BINARY_DIR) / "landscape_test_files";
    std::filesystem::create_directories(dir);
    return dir;
}

// Seeded inputs [n, 1, 4, 4] and targets from a random teacher (so losses are not all alike).
EvalSet makeData(int64_t n, int64_t classes, uint64_t seed, torch::ScalarType dtype = torch::kFloat32) {
    auto gen = at::make_generator<at::CPUGeneratorImpl>(seed);
    EvalSet d;
    d.inputs = torch::randn({n, 1, 4, 4}, gen, torch::kFloat64).to(dtype);
    const auto teacher = torch::randn({16, classes}, gen, torch::kFloat64);
    d.targets = d.inputs.reshape({n, 16}).to(torch::kFloat64).mm(teacher).argmax(1);
    return d;
}

std::unique_ptr<SequentialModel> makeModel(const std::vector<int64_t>& widths, uint64_t seed,
                                           const std::string& act = "relu",
                                           torch::ScalarType dtype = torch::kFloat32) {
    torch::manual_seed(seed);
    auto m = std::make_unique<SequentialModel>(ts::landscape::testing::makeMlp(widths, act));
    m->module()->to(dtype);
    return m;
}

double lossOf(ts::capture::Model& model, const EvalSet& d) {
    torch::NoGradGuard g;
    model.setTraining(false);
    return torch::nn::functional::cross_entropy(model.forward(d.inputs).to(torch::kFloat64), d.targets)
        .item<double>();
}

double accOf(ts::capture::Model& model, const EvalSet& d) {
    torch::NoGradGuard g;
    return 100.0 * model.forward(d.inputs).argmax(1).eq(d.targets).to(torch::kFloat64).mean().item<double>();
}

TensorList randomWeights(uint64_t seed) {
    auto gen = at::make_generator<at::CPUGeneratorImpl>(seed);
    return {torch::randn({6, 3, 3, 3}, gen) * 0.3, torch::randn({6}, gen), torch::randn({10, 54}, gen) * 2.0,
            torch::randn({10}, gen), torch::randn({4}, gen)};
}

std::vector<std::array<double, 2>> gridPoints(int nx, int ny) {
    std::vector<std::array<double, 2>> pts;
    for (int j = 0; j < ny; ++j)
        for (int i = 0; i < nx; ++i)
            pts.push_back({-1.0 + 2.0 * i / (nx - 1), -1.0 + 2.0 * j / (ny - 1)});
    return pts;
}

} // namespace

// ---- directions ----------------------------------------------------------------------------------------

TEST(Directions, FilterNormMatchesFloat64Reference) {
    const auto weights = randomWeights(11);
    const auto dirs = randomDirections(weights, {Norm::Filter, Ignore::BiasBn}, 7, true);
    // Independent float64 computation from the same Gaussian draws.
    auto gen = at::make_generator<at::CPUGeneratorImpl>(7);
    const auto rawX = gaussianLike(weights, gen);
    for (size_t i = 0; i < weights.size(); ++i) {
        const auto& d = dirs.x[i];
        ASSERT_TRUE(d.sizes().equals(weights[i].sizes()));
        if (weights[i].dim() <= 1) {
            EXPECT_EQ(d.abs().max().item<double>(), 0.0) << "biasbn entry " << i << " must be zero";
            continue;
        }
        const auto w64 = weights[i].to(torch::kFloat64), r64 = rawX[i].to(torch::kFloat64);
        for (int64_t f = 0; f < w64.size(0); ++f) {
            const double wn = w64[f].norm().item<double>(), rn = r64[f].norm().item<double>();
            const double dn = d[f].to(torch::kFloat64).norm().item<double>();
            EXPECT_NEAR(dn, wn, 1e-5 * wn) << "tensor " << i << " filter " << f;
            const auto want = r64[f] * (wn / (rn + 1e-10));
            EXPECT_LT((d[f].to(torch::kFloat64) - want).abs().max().item<double>(),
                      1e-5 * (1 + want.abs().max().item<double>()));
        }
    }
    // y is the next draw from the same generator (as the reference: x then y after one manual_seed).
    const auto rawY = gaussianLike(weights, gen);
    const double ratio = dirs.y[2][0][0].item<double>() / rawY[2][0][0].item<double>();
    EXPECT_NEAR(ratio, weights[2][0].norm().item<double>() / rawY[2][0].norm().item<double>(), 1e-5);
}

TEST(Directions, IgnoreNoneCopiesWeightsAndOtherNorms) {
    const auto weights = randomWeights(12);
    auto gen = at::make_generator<at::CPUGeneratorImpl>(3);
    const auto raw = gaussianLike(weights, gen);
    const auto run = [&](Norm n, Ignore ig) {
        TensorList d;
        for (auto& t : raw)
            d.push_back(t.clone());
        normalizeDirection(d, weights, {n, ig});
        return d;
    };
    const auto none = run(Norm::Layer, Ignore::None);
    EXPECT_TRUE(torch::equal(none[1], weights[1])) << "1-D entries equal the weights when not ignored";
    EXPECT_TRUE(torch::equal(none[4], weights[4]));
    // layer: whole-tensor norm equals the weights' norm.
    EXPECT_NEAR(none[2].norm().item<double>(), weights[2].norm().item<double>(),
                1e-4 * weights[2].norm().item<double>());
    const auto w = run(Norm::Weight, Ignore::BiasBn);
    EXPECT_TRUE(torch::allclose(w[2], raw[2] * weights[2]));
    const auto plain = run(Norm::None, Ignore::BiasBn);
    EXPECT_TRUE(torch::equal(plain[0], raw[0]));
    const auto df = run(Norm::DFilter, Ignore::BiasBn);
    EXPECT_NEAR(df[0][3].norm().item<double>(), 1.0, 1e-5);
}

TEST(Directions, SeedIsReproducible) {
    const auto weights = randomWeights(13);
    const auto a = randomDirections(weights, {}, 42, true), b = randomDirections(weights, {}, 42, true);
    const auto c = randomDirections(weights, {}, 43, true);
    for (size_t i = 0; i < weights.size(); ++i) {
        EXPECT_TRUE(torch::equal(a.x[i], b.x[i]));
        EXPECT_TRUE(torch::equal(a.y[i], b.y[i]));
    }
    EXPECT_FALSE(torch::equal(a.x[0], c.x[0]));
    EXPECT_FALSE(torch::equal(a.x[0], a.y[0]));
}

TEST(Directions, StatesFollowStateDictOrder) {
    torch::manual_seed(5);
    SequentialModel model(ts::landscape::testing::makeCnn());
    const auto space = parameterSpace(model, DirType::States);
    // PyTorch's state_dict order for this Sequential: each module's parameters, then its buffers.
    const std::vector<std::string> want = {"0.weight",
                                           "0.bias",
                                           "1.weight",
                                           "1.bias",
                                           "1.running_mean",
                                           "1.running_var",
                                           "1.num_batches_tracked",
                                           "4.weight",
                                           "4.bias"};
    EXPECT_EQ(space.names, want);
    EXPECT_EQ(parameterSpace(model, DirType::Weights).names.size(), 6u);
}

TEST(Directions, TargetDirectionAndShapeErrors) {
    const auto a = randomWeights(1), b = randomWeights(2);
    auto d = targetDirection(a, b);
    ASSERT_TRUE(d);
    for (size_t i = 0; i < a.size(); ++i)
        EXPECT_TRUE(torch::allclose((*d)[i], b[i] - a[i]));
    auto bad = b;
    bad[2] = torch::zeros({3, 3});
    auto e = targetDirection(a, bad);
    ASSERT_FALSE(e);
    EXPECT_NE(e.error().message.find("[10, 54]"), std::string::npos) << e.error().message;
}

TEST(Directions, PcaMatchesCovarianceEigenvectors) {
    // A trajectory that moves mostly in a plane, with a little noise, towards the final weights.
    auto gen = at::make_generator<at::CPUGeneratorImpl>(21);
    TensorList final = {torch::randn({5, 4}, gen), torch::randn({5}, gen), torch::randn({3, 5}, gen)};
    const auto u = torch::randn({40}, gen, torch::kFloat64), v = torch::randn({40}, gen, torch::kFloat64);
    std::vector<TensorList> traj;
    for (int t = 0; t < 12; ++t) {
        const double s = 1.0 - t / 11.0;
        auto flat =
            u * (3.0 * s) + v * (std::sin(t * 0.9) * s) + torch::randn({40}, gen, torch::kFloat64) * 0.01;
        traj.push_back({final[0] + flat.narrow(0, 0, 20).view({5, 4}).to(torch::kFloat32),
                        final[1] + flat.narrow(0, 20, 5).to(torch::kFloat32),
                        final[2] + flat.narrow(0, 25, 15).view({3, 5}).to(torch::kFloat32)});
    }
    auto pca = pcaDirections(traj, final, Ignore::None);
    ASSERT_TRUE(pca) << pca.error().message;
    // Independent: eigen-decomposition of the covariance of the centred rows (float64).
    std::vector<torch::Tensor> rows;
    for (auto& w : traj) {
        TensorList d;
        for (size_t i = 0; i < w.size(); ++i)
            d.push_back(w[i].to(torch::kFloat64) - final[i].to(torch::kFloat64));
        rows.push_back(flatten(d));
    }
    auto m = torch::stack(rows);
    m = m - m.mean(0, true);
    auto [evals, evecs] = torch::linalg::eigh(m.t().mm(m), "L");
    const int64_t last = evals.size(0) - 1;
    const double c1 = flatten(pca->x).dot(evecs.select(1, last)).item<double>();
    const double c2 = flatten(pca->y).dot(evecs.select(1, last - 1)).item<double>();
    EXPECT_NEAR(std::abs(c1), 1.0, 1e-5);
    EXPECT_NEAR(std::abs(c2), 1.0, 1e-5);
    const double total = evals.sum().item<double>();
    ASSERT_EQ(pca->explainedVarianceRatio.size(), 2u);
    EXPECT_NEAR(pca->explainedVarianceRatio[0], evals[last].item<double>() / total, 1e-9);
    EXPECT_NEAR(pca->explainedVarianceRatio[1], evals[last - 1].item<double>() / total, 1e-9);
    EXPECT_GT(pca->explainedVarianceRatio[0] + pca->explainedVarianceRatio[1], 0.99);
}

TEST(Directions, ProjectionRecoversPlaneCoordinates) {
    const auto origin = randomWeights(31);
    const auto dirs = randomDirections(origin, {Norm::Filter, Ignore::None}, 9, true);
    const std::vector<std::array<double, 2>> coords = {{0.5, -0.25}, {-1.0, 0.75}, {0.1, 0.2}};
    std::vector<TensorList> traj;
    for (auto& c : coords) {
        TensorList w;
        for (size_t i = 0; i < origin.size(); ++i)
            w.push_back(origin[i].to(torch::kFloat64) + dirs.x[i].to(torch::kFloat64) * c[0] +
                        dirs.y[i].to(torch::kFloat64) * c[1]);
        traj.push_back(w);
    }
    auto ls = projectTrajectory(traj, origin, dirs, Projection::Lstsq);
    ASSERT_TRUE(ls);
    for (size_t t = 0; t < coords.size(); ++t) {
        EXPECT_NEAR((*ls)[t][0], coords[t][0], 1e-6);
        EXPECT_NEAR((*ls)[t][1], coords[t][1], 1e-6);
    }
    auto cs = projectTrajectory(traj, origin, dirs, Projection::Cos);
    ASSERT_TRUE(cs);
    const auto dx = flatten(dirs.x), dy = flatten(dirs.y);
    const double want =
        (dx * coords[0][0] + dy * coords[0][1]).dot(dx).item<double>() / dx.norm().item<double>();
    EXPECT_NEAR((*cs)[0][0], want, 1e-6 * std::abs(want) + 1e-9);
}

// ---- batched kernels against LibTorch ------------------------------------------------------------------

TEST(Kernels, CrossEntropyMatchesTorchIncludingNonFiniteRows) {
    for (int64_t n : {1, 127, 128, 129, 300}) {
        auto gen = at::make_generator<at::CPUGeneratorImpl>(static_cast<uint64_t>(70 + n));
        auto z = torch::randn({7, n}, gen) * 4.0; // class-major [classes, n]
        const auto t = torch::randint(0, 7, {n}, gen);
        if (n > 100) {
            z[2][5] = NAN;                                    // NaN: loss NaN
            z[3][9] = std::numeric_limits<float>::infinity(); // +inf, not the target: loss inf
            z[static_cast<int64_t>(t[11].item<int64_t>())][11] =
                std::numeric_limits<float>::infinity();         // inf - inf
            z[1][20] = -std::numeric_limits<float>::infinity(); // -inf logit: finite loss unless target
            z[4][30] = z[2][30];                                // a tie: the first class wins
        }
        const auto zs = z.t().contiguous(); // [n, classes] as the unbatched path sees it
        for (int64_t i = 0; i < n; ++i) {
            double got = 0, want = 0, wantCorrect = 0;
            int64_t correct = 0;
            const auto zi = z.narrow(1, i, 1).contiguous();
            ts::landscape::kernels::crossEntropyClassMajor(
                zi.data_ptr<float>(), 7, 1, t.narrow(0, i, 1).data_ptr<int64_t>(), &got, &correct);
            accumulateLoss(zs.narrow(0, i, 1), t.narrow(0, i, 1), want, wantCorrect);
            if (std::isnan(want))
                EXPECT_TRUE(std::isnan(got)) << "n " << n << " row " << i;
            else if (std::isinf(want))
                EXPECT_EQ(got, want) << "n " << n << " row " << i;
            else
                EXPECT_NEAR(got, want, 1e-6 * (1 + std::abs(want))) << "n " << n << " row " << i;
            EXPECT_EQ(static_cast<double>(correct), wantCorrect) << "n " << n << " row " << i;
        }
        // Whole blocks at once (the vector path) against the sum over rows.
        double got = 0, want = 0, wantCorrect = 0;
        int64_t correct = 0;
        const auto finite = z.nan_to_num(0.0, 50.0, -50.0).contiguous();
        ts::landscape::kernels::crossEntropyClassMajor(finite.data_ptr<float>(), 7, n, t.data_ptr<int64_t>(),
                                                       &got, &correct);
        accumulateLoss(finite.t().contiguous(), t, want, wantCorrect);
        EXPECT_NEAR(got, want, 1e-6 * want);
        EXPECT_EQ(static_cast<double>(correct), wantCorrect);
    }
}

// ---- evaluation ----------------------------------------------------------------------------------------

TEST(Evaluator, OriginEqualsModelsOwnLoss) {
    auto model = makeModel({16, 12, 8, 5}, 1);
    const auto data = makeData(300, 5, 2);
    const double want = lossOf(*model, data), wantAcc = accOf(*model, data);
    auto space = parameterSpace(*model, DirType::Weights);
    auto dirs = randomDirections(space.snapshot(), {}, 3, true);
    for (auto mode : {EvalMode::Unbatched, EvalMode::Batched}) {
        auto ev = SurfaceEvaluator::create(*model, space, dirs, data, {mode});
        ASSERT_TRUE(ev) << ev.error().message;
        auto v = (*ev)->evaluate({{0.0, 0.0}});
        ASSERT_TRUE(v);
        EXPECT_NEAR((*v)[0].loss, want, 1e-6 * want);
        EXPECT_DOUBLE_EQ((*v)[0].acc, wantAcc);
    }
}

TEST(Evaluator, BatchedEqualsUnbatchedFloat64) {
    // float64 end to end: both paths compute the same function, so they agree to rounding (1e-10).
    // Depths 1 (a single Linear), 2 and 3; three activations.
    const std::vector<std::pair<std::vector<int64_t>, std::string>> nets = {{{16, 24, 12, 4}, "relu"},
                                                                            {{16, 24, 12, 4}, "tanh"},
                                                                            {{16, 24, 12, 4}, "gelu"},
                                                                            {{16, 9, 4}, "relu"},
                                                                            {{16, 4}, "relu"}};
    for (const auto& [widths, act] : nets) {
        auto model = makeModel(widths, 4, act, torch::kFloat64);
        const auto data = makeData(257, 4, 5, torch::kFloat64);
        auto space = parameterSpace(*model, DirType::Weights);
        auto dirs = randomDirections(space.snapshot(), {}, 6, true);
        auto ev = SurfaceEvaluator::create(*model, space, dirs, data, {EvalMode::Auto, 0, 7});
        ASSERT_TRUE(ev) << ev.error().message;
        ASSERT_TRUE((*ev)->batched()) << act << ": " << (*ev)->fallbackReason();
        const auto pts = gridPoints(7, 5);
        auto fast = (*ev)->evaluate(pts);
        auto slow = (*ev)->evaluateUnbatched(pts);
        ASSERT_TRUE(fast && slow);
        for (size_t i = 0; i < pts.size(); ++i) {
            EXPECT_NEAR((*fast)[i].loss, (*slow)[i].loss, 1e-10 * (*slow)[i].loss) << act << " point " << i;
            EXPECT_DOUBLE_EQ((*fast)[i].acc, (*slow)[i].acc) << act << " point " << i;
        }
    }
}

TEST(Evaluator, BatchedEqualsUnbatchedFloat32) {
    // float32: summation order differs between the paths; the mean loss agrees within 1e-5 relative and
    // accuracy within one sample whose two top logits are within rounding of each other.
    auto model = makeModel({16, 64, 32, 10}, 8);
    const auto data = makeData(500, 10, 9);
    auto space = parameterSpace(*model, DirType::Weights);
    auto dirs = randomDirections(space.snapshot(), {}, 10, true);
    auto ev = SurfaceEvaluator::create(*model, space, dirs, data);
    ASSERT_TRUE(ev);
    ASSERT_TRUE((*ev)->batched()) << (*ev)->fallbackReason();
    const auto pts = gridPoints(9, 9);
    auto fast = (*ev)->evaluate(pts);
    auto slow = (*ev)->evaluateUnbatched(pts);
    ASSERT_TRUE(fast && slow);
    for (size_t i = 0; i < pts.size(); ++i) {
        EXPECT_NEAR((*fast)[i].loss, (*slow)[i].loss, 1e-5 * (*slow)[i].loss) << "point " << i;
        EXPECT_NEAR((*fast)[i].acc, (*slow)[i].acc, 100.0 / 500 + 1e-9) << "point " << i;
    }
}

TEST(Evaluator, UnsupportedModelFallsBackToPerPoint) {
    torch::manual_seed(14);
    SequentialModel cnn(ts::landscape::testing::makeCnn());
    auto gen = at::make_generator<at::CPUGeneratorImpl>(15);
    EvalSet data{torch::rand({40, 1, 6, 6}, gen), torch::randint(0, 3, {40}, gen)};
    for (auto type : {DirType::Weights, DirType::States}) {
        auto space = parameterSpace(cnn, type);
        auto dirs = randomDirections(space.snapshot(), {}, 16, true);
        auto ev = SurfaceEvaluator::create(cnn, space, dirs, data);
        ASSERT_TRUE(ev) << ev.error().message;
        EXPECT_FALSE((*ev)->batched());
        EXPECT_FALSE((*ev)->fallbackReason().empty());
        auto v = (*ev)->evaluate({{0.0, 0.0}, {0.5, 0.5}});
        ASSERT_TRUE(v);
        EXPECT_NEAR((*v)[0].loss, lossOf(cnn, data), 1e-5);
        auto forced = SurfaceEvaluator::create(cnn, space, dirs, data, {EvalMode::Batched});
        EXPECT_FALSE(forced);
    }
}

TEST(Evaluator, ModelIsRestoredAndCancelStops) {
    auto model = makeModel({16, 10, 3}, 17);
    model->setTraining(true);
    const auto data = makeData(64, 3, 18);
    auto space = parameterSpace(*model, DirType::Weights);
    const auto before = space.snapshot();
    auto dirs = randomDirections(before, {}, 19, true);
    auto ev = SurfaceEvaluator::create(*model, space, dirs, data, {EvalMode::Unbatched});
    ASSERT_TRUE(ev);
    std::atomic<bool> cancel{false};
    int calls = 0;
    GridRunOptions run;
    run.cancel = &cancel;
    run.progress = [&](int64_t, int64_t, const Surface&, int64_t) {
        if (++calls == 5) cancel = true;
    };
    GridSpec grid{{-1, 1, 11}, GridAxis{-1, 1, 11}};
    auto s = (*ev)->evaluateGrid(grid, run);
    ASSERT_TRUE(s);
    EXPECT_FALSE(s->complete());
    EXPECT_EQ(std::count(s->computed.begin(), s->computed.end(), 1), 5);
    for (size_t i = 0; i < before.size(); ++i)
        EXPECT_TRUE(torch::equal(space.live[i], before[i]));
    EXPECT_FALSE(model->isTraining()); // eval mode while the evaluator exists
    ev.value().reset();
    EXPECT_TRUE(model->isTraining()); // and training mode back afterwards
}

TEST(Evaluator, ProgressiveGridGoesCoarseToFineAndMatchesPoints) {
    auto model = makeModel({16, 20, 6}, 22);
    const auto data = makeData(128, 6, 23);
    auto space = parameterSpace(*model, DirType::Weights);
    auto dirs = randomDirections(space.snapshot(), {}, 24, true);
    auto ev = SurfaceEvaluator::create(*model, space, dirs, data, {EvalMode::Auto, 0, 16});
    ASSERT_TRUE(ev);
    std::vector<int64_t> strides;
    int64_t lastDone = 0;
    GridRunOptions run;
    run.progress = [&](int64_t done, int64_t total, const Surface&, int64_t stride) {
        EXPECT_GT(done, lastDone);
        EXPECT_EQ(total, 21 * 17);
        lastDone = done;
        if (strides.empty() || strides.back() != stride) strides.push_back(stride);
    };
    GridSpec grid{{-1, 1, 21}, GridAxis{-0.5, 1.5, 17}};
    auto s = (*ev)->evaluateGrid(grid, run);
    ASSERT_TRUE(s);
    EXPECT_TRUE(s->complete());
    EXPECT_EQ(lastDone, 21 * 17);
    ASSERT_GE(strides.size(), 2u);
    EXPECT_EQ(strides.back(), 1);
    for (size_t i = 1; i < strides.size(); ++i)
        EXPECT_TRUE(strides[i - 1] == 0 || strides[i - 1] > strides[i]);
    // Grid values are the point values at (x[ix], y[iy]) in flat order iy * nx + ix.
    auto pv = (*ev)->evaluateUnbatched({{s->x[3], s->y[12]}});
    ASSERT_TRUE(pv);
    EXPECT_NEAR(s->loss[s->index(3, 12)], (*pv)[0].loss, 1e-5 * (*pv)[0].loss);
}

TEST(Evaluator, InterpolationHitsBothCheckpoints) {
    auto m1 = makeModel({16, 12, 4}, 30), m2 = makeModel({16, 12, 4}, 31);
    const auto data = makeData(200, 4, 32);
    const double l1 = lossOf(*m1, data), l2 = lossOf(*m2, data);
    auto space = parameterSpace(*m1, DirType::Weights);
    auto dx = targetDirection(space.snapshot(), parameterSpace(*m2, DirType::Weights).snapshot());
    ASSERT_TRUE(dx);
    Directions dirs;
    dirs.x = *dx;
    for (auto mode : {EvalMode::Unbatched, EvalMode::Auto}) {
        auto ev = SurfaceEvaluator::create(*m1, space, dirs, data, {mode});
        ASSERT_TRUE(ev);
        GridSpec grid{{0.0, 1.0, 5}, std::nullopt};
        auto s = (*ev)->evaluateGrid(grid);
        ASSERT_TRUE(s) << s.error().message;
        ASSERT_EQ(s->loss.size(), 5u);
        EXPECT_NEAR(s->loss.front(), l1, 1e-5 * l1);
        EXPECT_NEAR(s->loss.back(), l2, 1e-5 * l2);
        EXPECT_NE(s->loss[2], l1);
    }
}

namespace {
// Returns NaN logits whenever its first weight has been pushed past a threshold: NaN at some grid points.
class NanAboveThresholdModel : public SequentialModel {
  public:
    using SequentialModel::SequentialModel;
    torch::Tensor forward(const torch::Tensor& x) override {
        auto out = SequentialModel::forward(x);
        if (namedParameters()[0].second[0][0].item<double>() > m_threshold) out.fill_(NAN);
        return out;
    }
    double m_threshold = 0;
};
} // namespace

TEST(Evaluator, NanLossesAreKept) {
    torch::manual_seed(40);
    NanAboveThresholdModel model(ts::landscape::testing::makeMlp({16, 8, 3}));
    const auto data = makeData(50, 3, 41);
    auto space = parameterSpace(model, DirType::Weights);
    Directions dirs;
    for (auto& t : space.snapshot()) {
        dirs.x.push_back(torch::zeros_like(t));
        dirs.y.push_back(torch::zeros_like(t));
    }
    dirs.x[0][0][0] = 1.0f; // a moves the watched weight by a
    // 0.3 lies between the verification probe (a = 0.61) and the origin, so the batched path sees NaN too.
    model.m_threshold = space.live[0][0][0].item<double>() + 0.3;
    auto ev = SurfaceEvaluator::create(model, space, dirs, data);
    ASSERT_TRUE(ev);
    EXPECT_FALSE((*ev)->batched());
    auto s = (*ev)->evaluateGrid({{-1, 1, 5}, GridAxis{-1, 1, 3}});
    ASSERT_TRUE(s);
    for (int64_t iy = 0; iy < 3; ++iy)
        for (int64_t ix = 0; ix < 5; ++ix) {
            const double v = s->loss[s->index(ix, iy)];
            if (s->x[static_cast<size_t>(ix)] > 0.3)
                EXPECT_TRUE(std::isnan(v)) << ix << "," << iy;
            else
                EXPECT_TRUE(std::isfinite(v)) << ix << "," << iy;
        }
    EXPECT_TRUE(s->complete());
}

TEST(Evaluator, BadInputIsAnError) {
    auto model = makeModel({16, 8, 3}, 50);
    const auto data = makeData(20, 3, 51);
    auto space = parameterSpace(*model, DirType::Weights);
    auto dirs = randomDirections(space.snapshot(), {}, 52, true);
    auto wrong = dirs;
    wrong.y[0] = torch::zeros({8, 15});
    auto e = SurfaceEvaluator::create(*model, space, wrong, data);
    ASSERT_FALSE(e);
    EXPECT_NE(e.error().message.find("'1.weight' has [8, 16]"), std::string::npos) << e.error().message;
    EXPECT_EQ(e.error().exitCode(), 2);
    auto ev = SurfaceEvaluator::create(*model, space, dirs, data);
    ASSERT_TRUE(ev);
    auto empty = (*ev)->evaluateGrid({{-1, 1, 0}, GridAxis{-1, 1, 3}});
    ASSERT_FALSE(empty);
    EXPECT_EQ(empty.error().exitCode(), 2);
    auto noData =
        SurfaceEvaluator::create(*model, space, dirs, EvalSet{torch::zeros({0, 16}), torch::zeros({0})});
    EXPECT_FALSE(noData);
}

TEST(SurfaceJob, BackgroundRunMatchesDirectEvaluationAndCancels) {
    auto model = makeModel({16, 12, 4}, 90);
    const auto data = makeData(150, 4, 91);
    auto space = parameterSpace(*model, DirType::Weights);
    const auto before = space.snapshot();
    auto dirs = randomDirections(before, {}, 92, true);
    const GridSpec grid{{-1, 1, 17}, GridAxis{-1, 1, 17}};
    {
        auto ev = SurfaceEvaluator::create(*model, space, dirs, data);
        ASSERT_TRUE(ev);
        SurfaceJob job(std::move(ev.value()), grid);
        job.wait();
        const auto snap = job.snapshot();
        ASSERT_TRUE(snap.finished);
        EXPECT_FALSE(snap.cancelled);
        EXPECT_FALSE(snap.error.has_value());
        EXPECT_EQ(snap.done, 17 * 17);
        EXPECT_TRUE(snap.surface.complete());
        auto direct = SurfaceEvaluator::create(*model, space, dirs, data, {EvalMode::Unbatched});
        ASSERT_TRUE(direct);
        auto want = (*direct)->evaluateGrid(grid);
        ASSERT_TRUE(want);
        for (size_t k = 0; k < want->loss.size(); ++k)
            EXPECT_NEAR(snap.surface.loss[k], want->loss[k], 1e-5 * want->loss[k]) << k;
    }
    {
        // Per point on a big grid: cancelled long before the end, model restored.
        auto ev = SurfaceEvaluator::create(*model, space, dirs, data, {EvalMode::Unbatched});
        ASSERT_TRUE(ev);
        SurfaceJob job(std::move(ev.value()), {{-1, 1, 301}, GridAxis{-1, 1, 301}});
        while (job.version() == 0)
            std::this_thread::yield();
        job.cancel();
        job.wait();
        const auto snap = job.snapshot();
        EXPECT_TRUE(snap.finished);
        EXPECT_TRUE(snap.cancelled);
        EXPECT_LT(snap.done, snap.total);
    }
    for (size_t i = 0; i < before.size(); ++i)
        EXPECT_TRUE(torch::equal(space.live[i], before[i]));
}

// ---- files ---------------------------------------------------------------------------------------------

TEST(Files, DirectionsRoundTrip) {
    const auto weights = randomWeights(60);
    auto dirs = randomDirections(weights, {}, 61, true);
    dirs.explainedVarianceRatio = {0.7, 0.2};
    dirs.singularValues = {3.0, 1.5};
    dirs.explainedVariance = {9.0, 2.25};
    const auto path = (tempDir() / "dirs_roundtrip.h5").string();
    ASSERT_TRUE(saveDirections(path, dirs, {{"tensorscape_norm", "filter"}}));
    EXPECT_TRUE(directionsFileExists(path));
    auto back = loadDirections(path);
    ASSERT_TRUE(back) << back.error().message;
    ASSERT_EQ(back->x.size(), weights.size());
    for (size_t i = 0; i < weights.size(); ++i) {
        EXPECT_TRUE(torch::equal(back->x[i], dirs.x[i]));
        EXPECT_TRUE(torch::equal(back->y[i], dirs.y[i]));
    }
    EXPECT_EQ(back->explainedVarianceRatio, dirs.explainedVarianceRatio);
    auto raw = readDirectionsFile(path);
    ASSERT_TRUE(raw);
    EXPECT_EQ(raw->attributes["tensorscape_norm"], "filter");
    EXPECT_FALSE(raw->x[0].float64); // float32 arrays, as the reference writes them
}

TEST(Files, MismatchedDirectionsNameFileAndShape) {
    auto model = makeModel({16, 8, 3}, 62);
    const auto path = (tempDir() / "dirs_wrong_model.h5").string();
    auto other = makeModel({16, 9, 3}, 63);
    ASSERT_TRUE(saveDirections(
        path, randomDirections(parameterSpace(*other, DirType::Weights).snapshot(), {}, 1, true)));
    auto dirs = loadDirections(path);
    ASSERT_TRUE(dirs);
    auto st = checkDirectionShapes(dirs->x, parameterSpace(*model, DirType::Weights), path, "xdirection");
    ASSERT_FALSE(st);
    EXPECT_NE(st.message().find(path), std::string::npos);
    EXPECT_NE(st.message().find("[9, 16]"), std::string::npos) << st.message();
    EXPECT_NE(st.message().find("1.weight"), std::string::npos) << st.message();
}

// Regression: a small HDF5 file declaring a huge dataset was read by allocating what the header claimed (a 7 KB
// file declaring 5e8 values took 9.5 GB). The declared size is checked against what the file stores first.
TEST(Files, DatasetsLargerThanTheFileAreRefusedBeforeAllocating) {
    const auto path = (tempDir() / "declares_huge.h5").string();
    const std::string cmd = "/usr/bin/python3 -c \"import h5py, numpy as np; f = h5py.File('" + path +
                            "', 'w'); f.create_dataset('huge', shape=(500000000,), dtype='f8'); "
                            "f.create_dataset('small', data=np.arange(6.0).reshape(2, 3)); f.close()\"";
    ASSERT_EQ(std::system(cmd.c_str()), 0) << "python3-h5py (scripts/setup.sh installs it)";
    ASSERT_LT(std::filesystem::file_size(path), 100000u);
    auto huge = readArray(path, "huge");
    ASSERT_FALSE(huge);
    EXPECT_NE(huge.error().message.find("declares 500000000 values"), std::string::npos) << huge.error().message;
    EXPECT_NE(huge.error().message.find(path), std::string::npos);
    auto small = readArray(path, "small");
    ASSERT_TRUE(small) << small.error().message;
    EXPECT_EQ(small->shape, (std::vector<int64_t>{2, 3}));
    EXPECT_EQ(small->data[5], 5.0);
}

// ---- interop with the reference scripts' conventions (Python fixture) ----------------------------------

namespace {

bool pythonHasTorchAndH5py() {
    return std::system("/usr/bin/python3 -c 'import torch, h5py, numpy' >/dev/null 2>&1") == 0;
}

int runFixture(const std::string& mode, const std::string& dir) {
    const std::string cmd = "/usr/bin/python3 " + std::string(TS_SOURCE_DIR) +
                            "/tests/landscape/reference_fixture.py " + mode + " '" + dir + "'";
    return std::system(cmd.c_str());
}

EvalSet readData(const std::string& path) {
    auto in = readArray(path, "inputs");
    auto tg = readArray(path, "targets");
    EXPECT_TRUE(in && tg);
    EvalSet d;
    d.inputs = fromHostArray(*in).to(torch::kFloat32);
    d.targets = fromHostArray(*tg).to(torch::kFloat64).round().to(torch::kInt64);
    return d;
}

} // namespace

TEST(PythonReference, DirectionsAndSurfacesMoveBothWays) {
    if (!pythonHasTorchAndH5py()) FAIL() << "/usr/bin/python3 lacks torch, h5py or numpy" << " (scripts/setup.sh installs it)";
    const auto dir = (tempDir() / "python_reference").string();
    std::filesystem::remove_all(dir);
    std::filesystem::create_directories(dir);
    ASSERT_EQ(runFixture("make", dir), 0);

    ts::landscape::testing::TorchScriptModel model(dir + "/model.pt");
    const auto data = readData(dir + "/data.h5");
    auto space = parameterSpace(model, DirType::Weights);

    // 1. Our seeded directions equal the ones Python drew with torch.manual_seed(123) and normalised.
    auto ref = loadDirections(dir + "/ref_dirs.h5");
    ASSERT_TRUE(ref) << ref.error().message;
    ASSERT_TRUE(checkDirectionShapes(ref->x, space, "ref_dirs.h5", "xdirection"));
    const auto ours = randomDirections(space.snapshot(), {Norm::Filter, Ignore::BiasBn}, 123, true);
    for (size_t i = 0; i < ours.x.size(); ++i) {
        EXPECT_TRUE(torch::allclose(ours.x[i], ref->x[i], 1e-6, 1e-7)) << "xdirection/" << i;
        EXPECT_TRUE(torch::allclose(ours.y[i], ref->y[i], 1e-6, 1e-7)) << "ydirection/" << i;
    }

    // 2. A surface written by Python the reference way reads back point for point (layout, -1 marker).
    auto refSurface = readSurfaceFile(dir + "/ref_surface.h5");
    ASSERT_TRUE(refSurface) << refSurface.error().message;
    ASSERT_EQ(refSurface->nx(), 5);
    ASSERT_EQ(refSurface->ny(), 3);
    EXPECT_FALSE(refSurface->computed[4]);
    auto ev = SurfaceEvaluator::create(model, space, *ref, data);
    ASSERT_TRUE(ev) << ev.error().message;
    EXPECT_TRUE((*ev)->batched()) << (*ev)->fallbackReason();
    GridSpec refGrid{{-1, 1, 5}, GridAxis{-0.5, 0.5, 3}};
    auto mine = (*ev)->evaluateGrid(refGrid);
    ASSERT_TRUE(mine);
    for (size_t k = 0; k < mine->loss.size(); ++k) {
        if (!refSurface->computed[k]) continue;
        EXPECT_NEAR(mine->loss[k], refSurface->loss[k], 1e-5 * refSurface->loss[k]) << "flat index " << k;
        EXPECT_DOUBLE_EQ(mine->acc[k], refSurface->acc[k]) << "flat index " << k;
    }

    // 3. Files we write are read by Python with the reference's conventions (non-square grid again).
    auto dirs = randomDirections(space.snapshot(), {Norm::Filter, Ignore::BiasBn}, 77, true);
    ASSERT_TRUE(saveDirections(dir + "/cpp_dirs.h5", dirs));
    auto ev2 = SurfaceEvaluator::create(model, space, dirs, data, {EvalMode::Unbatched});
    ASSERT_TRUE(ev2);
    auto s = (*ev2)->evaluateGrid({{-0.8, 0.6, 4}, GridAxis{-1, 1, 3}});
    ASSERT_TRUE(s);
    ASSERT_TRUE(writeSurfaceFile(dir + "/cpp_surface.h5", *s, dir + "/cpp_dirs.h5"));
    EXPECT_EQ(runFixture("check", dir), 0);

    // 4. states order follows PyTorch's state_dict() (parameters and BatchNorm buffers interleaved).
    ts::landscape::testing::TorchScriptModel bn(dir + "/model_bn.pt");
    std::ifstream keys(dir + "/bn_state_keys.txt");
    std::vector<std::string> want;
    for (std::string line; std::getline(keys, line);)
        if (!line.empty()) want.push_back(line);
    EXPECT_EQ(parameterSpace(bn, DirType::States).names, want);
}

// ---- Hessian: Lanczos, Hutchinson and SLQ against dense float64 Hessians from torch.autograd ------------

namespace {

std::vector<double> readVector(const std::string& path, const std::string& name) {
    auto a = readArray(path, name);
    EXPECT_TRUE(a) << name;
    return a ? a->data : std::vector<double>{};
}

// The reference's eigenvector `row` (flat, named_parameters order) against ours, as |cos|.
double alignment(const std::string& path, const std::string& name, int64_t row, const TensorList& ours) {
    auto a = readArray(path, name);
    EXPECT_TRUE(a) << name;
    if (!a) return 0;
    const int64_t n = a->shape[1];
    auto ref = torch::from_blob(a->data.data() + row * n, {n}, torch::kFloat64).clone();
    const auto mine = flatten(ours);
    return std::abs(ref.dot(mine).item<double>()) / (ref.norm() * mine.norm()).item<double>();
}

} // namespace

TEST(Hessian, EigenpairsTraceAndDensityMatchADenseFloat64Hessian) {
    if (!pythonHasTorchAndH5py()) FAIL() << "/usr/bin/python3 lacks torch, h5py or numpy" << " (scripts/setup.sh installs it)";
    const auto dir = (tempDir() / "hessian_reference").string();
    std::filesystem::remove_all(dir);
    std::filesystem::create_directories(dir);
    ASSERT_EQ(runFixture("make", dir), 0);
    ASSERT_EQ(runFixture("hessian", dir), 0);
    const std::string ref = dir + "/hessian_ref.h5";

    for (const std::string name : {"mlp", "bn"}) {
        SCOPED_TRACE(name);
        ts::landscape::testing::TorchScriptModel model(dir + (name == "mlp" ? "/model.pt" : "/model_bn.pt"));
        const auto data = readData(dir + (name == "mlp" ? "/data.h5" : "/bn_data.h5"));
        const auto before = flatten(parameterSpace(model, DirType::Weights).snapshot());
        HessianOptions opt;
        opt.topK = 3;
        opt.traceSamples = 300;
        opt.esdRuns = 2;
        opt.esdSteps = 40;
        opt.sampleBatch = 20; // several batches: the products must sum them as one mean
        auto r = analyseHessian(model, data, opt);
        ASSERT_TRUE(r) << r.error().message;
        const auto want = readVector(ref, name + "_eigenvalues");
        ASSERT_EQ(r->eigenvalues.size(), 3u);
        ASSERT_EQ(r->parameters, static_cast<int64_t>(want.size()));
        for (size_t i = 0; i < 3; ++i)
            EXPECT_NEAR(r->eigenvalues[i], want[i], 1e-4 * want[0]) << "eigenvalue " << i;
        // The two leading eigenvalues are well separated here, so their eigenvectors are well defined.
        EXPECT_GT(alignment(ref, name + "_eigenvectors", 0, r->eigenvectors[0]), 0.9999);
        EXPECT_GT(alignment(ref, name + "_eigenvectors", 1, r->eigenvectors[1]), 0.999);
        EXPECT_NEAR(flatten(r->eigenvectors[0]).norm().item<double>(), 1.0, 1e-6); // float32 like the weights
        EXPECT_LT(r->lanczosSteps, opt.maxSteps) << "Lanczos should converge before its step limit";
        EXPECT_EQ(r->products, r->lanczosSteps + opt.traceSamples + opt.esdRuns * opt.esdSteps);
        // Hutchinson: within four standard errors of the exact trace, and the error estimate is sane.
        const double trace = readVector(ref, name + "_trace").at(0);
        EXPECT_GT(r->traceStdError, 0.0);
        EXPECT_LT(r->traceStdError, 0.2 * std::abs(trace));
        EXPECT_NEAR(r->trace, trace, 4 * r->traceStdError);
        // SLQ: weights are a probability distribution whose support reaches the extreme eigenvalues.
        double wsum = 0, top = -1e300, bottom = 1e300;
        for (size_t j = 0; j < r->esdNodes.size(); ++j) {
            wsum += r->esdWeights[j];
            top = std::max(top, r->esdNodes[j]);
            bottom = std::min(bottom, r->esdNodes[j]);
        }
        EXPECT_NEAR(wsum, 1.0, 1e-9);
        EXPECT_NEAR(top, want.front(), 1e-3 * want.front());
        EXPECT_NEAR(bottom, want.back(), 1e-2 * want.front());
        // The model holds its weights and evaluation state afterwards.
        EXPECT_TRUE(torch::equal(flatten(parameterSpace(model, DirType::Weights).snapshot()), before));
    }
}

TEST(Hessian, DirectionsAreUnitEigenvectorsAndBadInputIsOneError) {
    torch::manual_seed(5);
    SequentialModel model(ts::landscape::testing::makeMlp({4, 6, 3}, "tanh"));
    EvalSet data{torch::randn({32, 4}), torch::randint(0, 3, {32})};
    auto r = analyseHessian(model, data, {});
    ASSERT_TRUE(r) << r.error().message;
    ASSERT_EQ(r->eigenvalues.size(), 2u);
    EXPECT_GE(r->eigenvalues[0], r->eigenvalues[1]);
    const auto d = hessianDirections(*r, true);
    ASSERT_TRUE(d.is2d());
    EXPECT_NEAR(flatten(d.x).dot(flatten(d.y)).item<double>(), 0.0, 1e-6);
    // H x = lambda x, checked with an independent product of the operator.
    auto h = HessianOperator::create(model, data, 0);
    ASSERT_TRUE(h);
    const auto x = flatten(d.x);
    EXPECT_LT((h->apply(x) - r->eigenvalues[0] * x).norm().item<double>(), 1e-3 * std::abs(r->eigenvalues[0]));

    auto empty = analyseHessian(model, {torch::zeros({0, 4}), torch::zeros({0}, torch::kInt64)}, {});
    ASSERT_FALSE(empty);
    EXPECT_NE(empty.error().message.find("empty"), std::string::npos);
    HessianOptions tiny;
    tiny.memoryBudget = 1000;
    auto big = analyseHessian(model, data, tiny);
    ASSERT_FALSE(big);
    EXPECT_NE(big.error().message.find("MB"), std::string::npos) << big.error().message;
    // NaN weights: a failed product, not a NaN eigenvalue.
    {
        torch::NoGradGuard g;
        model.namedParameters()[0].second.fill_(std::nan(""));
    }
    auto nan = analyseHessian(model, data, {});
    ASSERT_FALSE(nan);
    EXPECT_NE(nan.error().message.find("not finite"), std::string::npos) << nan.error().message;
}
