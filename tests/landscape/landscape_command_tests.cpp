// The `landscape` subcommand end to end (built-in models and data from engine/capture): files written and
// read back, the loss at the origin against the model's own loss, and bad input -> exit code 2.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <iterator>

#include "engine/capture/dataset.hpp"
#include "engine/capture/model.hpp"
#include "engine/landscape/command.hpp"
#include "engine/landscape/h5_io.hpp"
#include "engine/landscape/tensor_io.hpp"

using namespace ts::landscape;

namespace {

std::filesystem::path tempDir() {
    auto dir = std::filesystem::path(TS_BINARY_DIR) / "landscape_command_files";
    std::filesystem::create_directories(dir);
    return dir;
}

int run(std::vector<std::string> args) {
    std::vector<char*> argv;
    for (auto& a : args)
        argv.push_back(a.data());
    return runLandscapeCommand(static_cast<int>(argv.size()), argv.data());
}

std::string path(const char* name) {
    return (tempDir() / name).string();
}

} // namespace

TEST(LandscapeCommand, ToySurfaceMatchesModelLossAndReusesDirections) {
    const auto out = path("spirals.h5"), dirs = path("spirals.dirs.h5");
    std::filesystem::remove(dirs);
    ASSERT_EQ(run({"--model", "builtin:mlp", "--data", "spirals", "--limit", "300", "--grid", "9", "--out",
                   out, "--directions", dirs, "--seed", "5", "--quiet"}),
              0);
    auto s = readSurfaceFile(out);
    ASSERT_TRUE(s) << s.error().message;
    ASSERT_EQ(s->nx(), 9);
    ASSERT_EQ(s->ny(), 9);
    EXPECT_TRUE(s->complete());
    // Independent: the same built-in model (same seed) on the same samples, LibTorch's own loss.
    ts::capture::DataOptions o;
    o.limit = 300;
    o.seed = 5;
    auto split = ts::capture::loadDataset("spirals", o);
    ASSERT_TRUE(split);
    torch::manual_seed(5);
    auto model = ts::capture::loadModel("builtin:mlp", split->train.sampleShape, split->train.numClasses);
    ASSERT_TRUE(model);
    torch::NoGradGuard g;
    (*model)->setTraining(false);
    const double want = torch::nn::functional::cross_entropy(
                            (*model)->forward(split->train.inputs).to(torch::kFloat64), split->train.labels)
                            .item<double>();
    EXPECT_NEAR(s->loss[s->index(4, 4)], want, 1e-5 * want);
    // Second run reads the directions file: same surface.
    const auto out2 = path("spirals2.h5");
    ASSERT_EQ(run({"--data", "spirals", "--limit", "300", "--grid", "9", "--out", out2, "--directions", dirs,
                   "--seed", "5", "--quiet", "--mode", "unbatched"}),
              0);
    auto s2 = readSurfaceFile(out2);
    ASSERT_TRUE(s2);
    for (size_t k = 0; k < s->loss.size(); ++k)
        EXPECT_NEAR(s2->loss[k], s->loss[k], 1e-5 * s->loss[k]) << k;
}

// Data loss regression: an existing --directions file that cannot be read (empty, text, truncated HDF5,
// other groups) used to be replaced by new random directions with exit 0. It is an error, and the file is
// left exactly as it was.
TEST(LandscapeCommand, UnreadableDirectionsFileIsNeverOverwritten) {
    const auto good = path("good.dirs.h5");
    std::filesystem::remove(good);
    ASSERT_EQ(run({"--model", "builtin:mlp:8", "--data", "circles", "--limit", "100", "--grid", "3", "--out",
                   path("g.h5"), "--directions", good, "--quiet"}),
              0);
    std::ifstream in(good, std::ios::binary);
    const std::string h5((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    ASSERT_GT(h5.size(), 100u);
    const std::vector<std::pair<std::string, std::string>> cases = {
        {"empty.h5", ""},
        {"text.h5", "these are my notes, not directions\n"},
        {"truncated.h5", h5.substr(0, h5.size() / 3)},
    };
    for (const auto& [name, bytes] : cases) {
        const auto file = path(name.c_str());
        std::ofstream(file, std::ios::binary) << bytes;
        EXPECT_EQ(run({"--model", "builtin:mlp:8", "--data", "circles", "--limit", "100", "--grid", "3", "--out",
                       path("t.h5"), "--directions", file, "--quiet"}),
                  2)
            << name;
        std::ifstream back(file, std::ios::binary);
        const std::string after((std::istreambuf_iterator<char>(back)), std::istreambuf_iterator<char>());
        EXPECT_EQ(after, bytes) << name << " was changed";
    }
    // An HDF5 file with other groups (a surface file written by the same command).
    const auto surface = path("g.h5");
    std::ifstream sin(surface, std::ios::binary);
    const std::string before((std::istreambuf_iterator<char>(sin)), std::istreambuf_iterator<char>());
    EXPECT_EQ(run({"--model", "builtin:mlp:8", "--data", "circles", "--limit", "100", "--grid", "3", "--out",
                   path("t2.h5"), "--directions", surface, "--quiet"}),
              2);
    std::ifstream sback(surface, std::ios::binary);
    EXPECT_EQ(std::string((std::istreambuf_iterator<char>(sback)), std::istreambuf_iterator<char>()), before);
}

TEST(LandscapeCommand, OneDimensionalAxis) {
    const auto out = path("line.h5");
    ASSERT_EQ(run({"--data", "xor", "--limit", "200", "--x", "-0.5:0.5:7", "--out", out, "--quiet"}), 0);
    auto s = readSurfaceFile(out);
    ASSERT_TRUE(s);
    EXPECT_FALSE(s->is2d());
    EXPECT_EQ(s->nx(), 7);
    EXPECT_DOUBLE_EQ(s->x.front(), -0.5);
}

TEST(LandscapeCommand, BadInputExitsWithTwo) {
    EXPECT_EQ(run({"--bogus", "1"}), 2);
    EXPECT_EQ(run({"--grid", "0", "--quiet"}), 2);
    EXPECT_EQ(run({"--x", "1:0:5", "--quiet"}), 2);
    EXPECT_EQ(run({"--x", "-1:1", "--quiet"}), 2);
    EXPECT_EQ(run({"--norm", "sideways", "--quiet"}), 2);
    EXPECT_EQ(run({"--data", path("no-such-folder"), "--grid", "3", "--out", path("x.h5"), "--quiet"}), 2);
    // Directions made for another model.
    const auto dirs = path("other-model.dirs.h5");
    std::filesystem::remove(dirs);
    ASSERT_EQ(run({"--model", "builtin:mlp:8", "--data", "circles", "--limit", "100", "--grid", "3", "--out",
                   path("a.h5"), "--directions", dirs, "--quiet"}),
              0);
    EXPECT_EQ(run({"--model", "builtin:mlp:9", "--data", "circles", "--limit", "100", "--grid", "3", "--out",
                   path("b.h5"), "--directions", dirs, "--quiet"}),
              2);
}

TEST(LandscapeCommand, FashionMnistUsesBatchedPath) {
    if (!std::filesystem::exists("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz"))
        FAIL() << "Debian's dataset-fashion-mnist is not installed" << " (scripts/setup.sh installs it)";
    LandscapeArgs a;
    a.data = "fashion-mnist";
    a.limit = 300;
    a.grid = GridSpec{{-1, 1, 5}, GridAxis{-1, 1, 5}};
    a.out = path("fmnist.h5");
    a.directions = path("fmnist.dirs.h5");
    std::filesystem::remove(a.directions);
    a.png = path("fmnist.png");
    auto r = computeLandscape(a);
    ASSERT_TRUE(r) << r.error().message;
    EXPECT_TRUE(r->batched);
    EXPECT_TRUE(r->directionsWritten);
    EXPECT_TRUE(std::filesystem::exists(a.png));
    auto d = loadDirections(a.directions);
    ASSERT_TRUE(d);
    ASSERT_EQ(d->x.size(), 6u); // fc1, fc2, out: weight + bias each
    EXPECT_EQ(d->x[0].sizes(), (std::vector<int64_t>{64, 784}));
}

TEST(LandscapeCommand, TorchScriptThroughCaptureAgreesWithPythonSurface) {
    // The Python fixture's model and surface (see reference_fixture.py), loaded through capture::loadModel:
    // its parameter order must be PyTorch's so the reference directions line up.
    if (std::system("/usr/bin/python3 -c 'import torch, h5py, numpy' >/dev/null 2>&1") != 0)
        FAIL() << "/usr/bin/python3 lacks torch, h5py or numpy" << " (scripts/setup.sh installs it)";
    const auto dir = (tempDir() / "python_reference").string();
    std::filesystem::remove_all(dir);
    std::filesystem::create_directories(dir);
    const std::string cmd = "/usr/bin/python3 " + std::string(TS_SOURCE_DIR) +
                            "/tests/landscape/reference_fixture.py make '" + dir + "'";
    ASSERT_EQ(std::system(cmd.c_str()), 0);
    auto model = ts::capture::loadModel(dir + "/model.pt", {6}, 3);
    ASSERT_TRUE(model) << model.error().message;
    auto in = readArray(dir + "/data.h5", "inputs");
    auto tg = readArray(dir + "/data.h5", "targets");
    ASSERT_TRUE(in && tg);
    EvalSet data{fromHostArray(*in).to(torch::kFloat32), fromHostArray(*tg).round().to(torch::kInt64)};
    auto dirs = loadDirections(dir + "/ref_dirs.h5");
    ASSERT_TRUE(dirs);
    auto space = parameterSpace(**model, DirType::Weights);
    ASSERT_TRUE(checkDirectionShapes(dirs->x, space, "ref_dirs.h5", "xdirection"));
    auto ref = readSurfaceFile(dir + "/ref_surface.h5");
    ASSERT_TRUE(ref);
    auto ev = SurfaceEvaluator::create(**model, space, *dirs, data);
    ASSERT_TRUE(ev) << ev.error().message;
    EXPECT_TRUE((*ev)->batched()) << (*ev)->fallbackReason(); // a Linear/ReLU chain, detected through capture
    auto s = (*ev)->evaluateGrid({{-1, 1, 5}, GridAxis{-0.5, 0.5, 3}});
    ASSERT_TRUE(s);
    for (size_t k = 0; k < s->loss.size(); ++k) {
        if (!ref->computed[k]) continue;
        EXPECT_NEAR(s->loss[k], ref->loss[k], 1e-5 * ref->loss[k]) << k;
        EXPECT_DOUBLE_EQ(s->acc[k], ref->acc[k]) << k;
    }
}

TEST(LandscapeCommand, TrajectoryGivesPcaDirectionsAndProjection) {
    if (std::system("/usr/bin/python3 -c 'import torch, h5py, numpy' >/dev/null 2>&1") != 0)
        FAIL() << "/usr/bin/python3 lacks torch, h5py or numpy" << " (scripts/setup.sh installs it)";
    const auto dir = (tempDir() / "python_trajectory").string();
    std::filesystem::remove_all(dir);
    std::filesystem::create_directories(dir);
    const std::string cmd = "/usr/bin/python3 " + std::string(TS_SOURCE_DIR) +
                            "/tests/landscape/reference_fixture.py make '" + dir + "'";
    ASSERT_EQ(std::system(cmd.c_str()), 0);
    std::string traj;
    for (int t = 0; t < 5; ++t)
        traj += (t ? "," : "") + dir + "/traj_" + std::to_string(t) + ".pt";
    const auto out = dir + "/pca.h5";
    ASSERT_EQ(run({"--model", dir + "/traj_4.pt", "--trajectory", traj, "--data", "xor", "--limit", "200",
                   "--grid", "7", "--out", out, "--png", dir + "/pca.png", "--quiet"}),
              0);
    auto dirs = readDirectionsFile(dir + "/pca.directions.h5");
    ASSERT_TRUE(dirs) << dirs.error().message;
    ASSERT_EQ(dirs->explainedVarianceRatio.size(), 2u);
    EXPECT_GT(dirs->explainedVarianceRatio[0], dirs->explainedVarianceRatio[1]);
    EXPECT_EQ(dirs->attributes["tensorscape_directions"], "pca");
    auto px = readArray(dir + "/pca.proj.h5", "proj_xcoord");
    auto py = readArray(dir + "/pca.proj.h5", "proj_ycoord");
    ASSERT_TRUE(px && py);
    ASSERT_EQ(px->data.size(), 5u);
    // The last checkpoint is the model itself: the origin. Biases are ignored (biasbn), so the PCA plane is
    // spanned by weight differences and the path projects onto it exactly up to the ignored entries.
    EXPECT_NEAR(px->data.back(), 0.0, 1e-6);
    EXPECT_NEAR(py->data.back(), 0.0, 1e-6);
    EXPECT_GT(std::abs(px->data.front()), 1e-3);
    EXPECT_TRUE(std::filesystem::exists(dir + "/pca.png"));
    EXPECT_EQ(run({"--trajectory", dir + "/traj_0.pt", "--quiet"}), 2); // needs two or more
}
