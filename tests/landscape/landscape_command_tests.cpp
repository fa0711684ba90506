// The `landscape` subcommand end to end (built-in models and data from engine/capture): files written and
// read back, the loss at the origin against the model's own loss, and bad input -> exit code 2.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <iterator>

#include <unistd.h>

#include "app/landscape_cli.hpp"
#include "engine/core/image.hpp"
#include "engine/capture/dataset.hpp"
#include "engine/capture/model.hpp"
#include "engine/landscape/command.hpp"
#include "engine/landscape/h5_io.hpp"
#include "engine/landscape/tensor_io.hpp"
#include "engine/runs/checkpoint.hpp"

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
    return ts::app::runLandscapeCommand(static_cast<int>(argv.size()), argv.data());
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
    // Without --x/--y the grid is fitted to the path: a square of 1.25 times its largest coordinate.
    double reach = 0;
    for (size_t k = 0; k < px->data.size(); ++k)
        reach = std::max({reach, std::abs(px->data[k]), std::abs(py->data[k])});
    auto fitted = readSurfaceFile(out);
    ASSERT_TRUE(fitted);
    EXPECT_NEAR(fitted->x.front(), -1.25 * reach, 1e-12);
    EXPECT_NEAR(fitted->x.back(), 1.25 * reach, 1e-12);
    EXPECT_NEAR(fitted->y.back(), 1.25 * reach, 1e-12);
    ASSERT_EQ(run({"--model", dir + "/traj_4.pt", "--trajectory", traj, "--data", "xor", "--limit", "100", "--x",
                   "-2:2:3", "--y", "-1:1:3", "--out", dir + "/pca_given.h5", "--quiet"}),
              0);
    auto given = readSurfaceFile(dir + "/pca_given.h5");
    ASSERT_TRUE(given);
    EXPECT_EQ(given->x.front(), -2.0);
    EXPECT_EQ(given->y.front(), -1.0);
    EXPECT_EQ(run({"--trajectory", dir + "/traj_0.pt", "--quiet"}), 2); // needs two or more

    // The same checkpoints recorded in a run (steps 0, 5, ..., 20): `--run` gives the same directions and path,
    // with the origin at the run's last checkpoint even though --model starts from the first one.
    const auto runDir = dir + "/run";
    for (int t = 0; t < 5; ++t) {
        auto m = ts::capture::loadModel(dir + "/traj_" + std::to_string(t) + ".pt", {2}, 2);
        ASSERT_TRUE(m) << m.error().message;
        std::vector<ts::runs::CheckpointTensor> tensors;
        for (const auto& [name, p] : (*m)->namedParameters()) {
            const auto c = p.detach().to(torch::kFloat32).contiguous();
            tensors.push_back({name, c.sizes().vec(), std::vector<float>(c.data_ptr<float>(), c.data_ptr<float>() + c.numel())});
        }
        ASSERT_TRUE(ts::runs::writeCheckpoint(runDir, 5 * t, tensors).isOk());
    }
    const auto outRun = dir + "/run_pca.h5";
    ASSERT_EQ(run({"--model", dir + "/traj_0.pt", "--run", runDir, "--data", "xor", "--limit", "200", "--grid", "7",
                   "--out", outRun, "--quiet"}),
              0);
    auto runDirs = readDirectionsFile(dir + "/run_pca.directions.h5");
    ASSERT_TRUE(runDirs) << runDirs.error().message;
    EXPECT_EQ(runDirs->attributes["tensorscape_run"], runDir);
    ASSERT_EQ(runDirs->x.size(), dirs->x.size());
    for (size_t i = 0; i < dirs->x.size(); ++i) {
        ASSERT_EQ(runDirs->x[i].data.size(), dirs->x[i].data.size());
        for (size_t k = 0; k < dirs->x[i].data.size(); ++k) {
            EXPECT_NEAR(runDirs->x[i].data[k], dirs->x[i].data[k], 1e-6) << i;
            EXPECT_NEAR(runDirs->y[i].data[k], dirs->y[i].data[k], 1e-6) << i;
        }
    }
    auto rx = readArray(dir + "/run_pca.proj.h5", "proj_xcoord");
    auto steps = readArray(dir + "/run_pca.proj.h5", "proj_steps");
    ASSERT_TRUE(rx && steps);
    ASSERT_EQ(rx->data.size(), 5u);
    for (size_t k = 0; k < 5; ++k) {
        EXPECT_NEAR(rx->data[k], px->data[k], 1e-6);
        EXPECT_EQ(steps->data[k], 5.0 * double(k));
    }
    auto s1 = readSurfaceFile(out), s2 = readSurfaceFile(outRun);
    ASSERT_TRUE(s1 && s2);
    for (size_t k = 0; k < s1->loss.size(); ++k)
        EXPECT_NEAR(s2->loss[k], s1->loss[k], 1e-5 * s1->loss[k]) << k;
    // --max-steps 3 keeps the first, middle and last checkpoints.
    ASSERT_EQ(run({"--model", dir + "/traj_0.pt", "--run", runDir, "--max-steps", "3", "--data", "xor", "--limit",
                   "100", "--grid", "3", "--out", dir + "/run3.h5", "--quiet"}),
              0);
    auto steps3 = readArray(dir + "/run3.proj.h5", "proj_steps");
    ASSERT_TRUE(steps3);
    EXPECT_EQ(steps3->data, (std::vector<double>{0, 10, 20}));
    // A run without two checkpoints, or without run.json to name its model: one line, exit 2.
    std::filesystem::create_directories(dir + "/empty_run");
    EXPECT_EQ(run({"--model", dir + "/traj_0.pt", "--run", dir + "/empty_run", "--data", "xor", "--quiet",
                   "--out", dir + "/e.h5"}),
              2);
    EXPECT_EQ(run({"--run", runDir, "--data", "xor", "--quiet", "--out", dir + "/e.h5"}), 2);
    EXPECT_EQ(run({"--run", runDir, "--trajectory", traj, "--quiet", "--out", dir + "/e.h5"}), 2);
}

// --directions hessian on a smooth CNN (TorchScript; tanh and average pooling, so the loss has a curvature
// everywhere): the axes are orthonormal eigenvectors whose curvature the surface itself shows (a second
// difference of the forward-only loss along each axis equals its eigenvalue); the file is reused, and a
// directions file of another kind at that path is an error, left as it was.
TEST(LandscapeCommand, HessianDirectionsShowTheirCurvatureInTheSurface) {
    if (std::system("/usr/bin/python3 -c 'import torch, h5py, numpy' >/dev/null 2>&1") != 0)
        FAIL() << "/usr/bin/python3 lacks torch, h5py or numpy" << " (scripts/setup.sh installs it)";
    const auto fixtures = (tempDir() / "python_hessian").string();
    std::filesystem::remove_all(fixtures);
    std::filesystem::create_directories(fixtures);
    const std::string cmd = "/usr/bin/python3 " + std::string(TS_SOURCE_DIR) +
                            "/tests/landscape/reference_fixture.py make '" + fixtures + "' >/dev/null";
    ASSERT_EQ(std::system(cmd.c_str()), 0);
    const auto out = path("hessian.h5"), dirs = path("hessian.directions.h5");
    std::filesystem::remove(dirs);
    const std::vector<std::string> common = {"--model", fixtures + "/smooth_cnn.pt", "--data", "fashion-mnist",
                                             "--limit", "200", "--x", "-0.05:0.05:3", "--y", "-0.05:0.05:3",
                                             "--quiet", "--directions", "hessian", "--out", out};
    auto args = common;
    args.insert(args.end(), {"--hessian-trace", "6", "--hessian-esd", "1"});
    ASSERT_EQ(run(args), 0);
    auto file = readDirectionsFile(dirs);
    ASSERT_TRUE(file) << file.error().message;
    EXPECT_EQ(file->attributes["tensorscape_directions"], "hessian");
    auto values = readArray(dirs, "hessian_eigenvalues");
    ASSERT_TRUE(values);
    ASSERT_EQ(values->data.size(), 2u);
    EXPECT_GE(values->data[0], values->data[1]);
    EXPECT_GT(values->data[0], 0.0);
    auto trace = readArray(dirs, "hessian_trace");
    ASSERT_TRUE(trace);
    EXPECT_EQ(trace->data.size(), 3u);
    EXPECT_TRUE(readArray(dirs, "esd_weights"));
    auto d = loadDirections(dirs);
    ASSERT_TRUE(d && d->is2d());
    const auto x = flatten(d->x), y = flatten(d->y);
    EXPECT_NEAR(x.norm().item<double>(), 1.0, 1e-6);
    EXPECT_NEAR(y.norm().item<double>(), 1.0, 1e-6);
    EXPECT_NEAR(x.dot(y).item<double>(), 0.0, 1e-5);

    auto s = readSurfaceFile(out);
    ASSERT_TRUE(s) << s.error().message;
    const double h = 0.05;
    const double c = s->loss[s->index(1, 1)];
    const double curvX = (s->loss[s->index(0, 1)] + s->loss[s->index(2, 1)] - 2 * c) / (h * h);
    const double curvY = (s->loss[s->index(1, 0)] + s->loss[s->index(1, 2)] - 2 * c) / (h * h);
    EXPECT_NEAR(curvX, values->data[0], 0.05 * values->data[0] + 1e-3);
    EXPECT_NEAR(curvY, values->data[1], 0.05 * values->data[0] + 1e-3);

    // Again: the Hessian file is read back, not recomputed; the surface is the same. With --png, the figure
    // and beside it the spectral density read back from the file, the top eigenvalues marked in red.
    const auto figure = path("hessian_fig.png"), spectrum = path("hessian_fig_esd.png");
    std::filesystem::remove(spectrum);
    auto again = common;
    again.insert(again.end(), {"--png", figure});
    ASSERT_EQ(run(again), 0);
    auto s2 = readSurfaceFile(out);
    ASSERT_TRUE(s2);
    for (size_t k = 0; k < s->loss.size(); ++k)
        EXPECT_NEAR(s2->loss[k], s->loss[k], 1e-6 * s->loss[k]);
    auto esd = ts::readPng(spectrum);
    ASSERT_TRUE(esd.hasValue()) << spectrum;
    int red = 0;
    for (int yy = 0; yy < esd->height; ++yy)
        for (int xx = 0; xx < esd->width; ++xx) {
            const auto* px = esd->at(xx, yy);
            red += px[0] > 180 && px[1] < 80 && px[2] < 80;
        }
    EXPECT_GE(red, 2 * 32) << "eigenvalue markers (32-pixel triangles; the two may share a column) and the legend's";

    // A random-directions file at that path is the user's: an error, and it stays.
    const auto other = path("hessian_other.h5"), otherDirs = path("hessian_other.directions.h5");
    std::filesystem::remove(otherDirs);
    ASSERT_EQ(run({"--model", "builtin:mlp", "--data", "spirals", "--limit", "100", "--grid", "3", "--quiet",
                   "--out", other}),
              0);
    const auto size = std::filesystem::file_size(otherDirs);
    EXPECT_EQ(run({"--model", "builtin:mlp", "--data", "spirals", "--limit", "100", "--grid", "3", "--quiet",
                   "--out", other, "--directions", "hessian"}),
              2);
    EXPECT_EQ(std::filesystem::file_size(otherDirs), size);

    EXPECT_EQ(run({"--data", "spirals", "--hessian-trace", "5", "--quiet", "--out", other}), 2);
    EXPECT_EQ(run({"--data", "spirals", "--directions", "hessian", "--model2", "x.pt", "--out", other}), 2);
    EXPECT_EQ(run({"--data", "spirals", "--directions", "hessian", "--hessian-top", "1", "--out", other}), 2);
    EXPECT_EQ(run({"--data", "spirals", "--directions", "hessian", "--dir-type", "states", "--out", other}), 2);
}

// The straight line between two checkpoints (--model2, --x 0:1:N): the barrier from the surface equals the one
// computed here by setting the interpolated weights into a model and running its own forward().
TEST(LandscapeCommand, StraightLineBarrierMatchesDirectEvaluation) {
    if (std::system("/usr/bin/python3 -c 'import torch, h5py, numpy' >/dev/null 2>&1") != 0)
        FAIL() << "/usr/bin/python3 lacks torch, h5py or numpy" << " (scripts/setup.sh installs it)";
    const auto dir = (tempDir() / "python_barrier").string();
    std::filesystem::remove_all(dir);
    std::filesystem::create_directories(dir);
    const std::string cmd = "/usr/bin/python3 " + std::string(TS_SOURCE_DIR) +
                            "/tests/landscape/reference_fixture.py make '" + dir + "' >/dev/null";
    ASSERT_EQ(std::system(cmd.c_str()), 0);
    // A trained toy MLP and the same network with its hidden units permuted: one function, a barrier between.
    const auto a = dir + "/xor_trained.pt", b = dir + "/xor_trained_permuted.pt", out = dir + "/line.h5";
    ASSERT_EQ(run({"--model", a, "--model2", b, "--x", "-0.2:1.2:15", "--data", "xor", "--limit", "300", "--out",
                   out, "--quiet"}),
              0);
    auto s = readSurfaceFile(out);
    ASSERT_TRUE(s) << s.error().message;
    const auto got = linearBarrier(*s);
    ASSERT_TRUE(got);
    EXPECT_EQ(got->points, 11);

    ts::capture::DataOptions o;
    o.limit = 300;
    o.seed = 123;
    auto split = ts::capture::loadDataset("xor", o);
    ASSERT_TRUE(split);
    auto ma = ts::capture::loadModel(a, {2}, 2), mb = ts::capture::loadModel(b, {2}, 2);
    ASSERT_TRUE(ma && mb);
    torch::NoGradGuard g;
    (*ma)->setTraining(false);
    std::vector<torch::Tensor> wa, wb;
    for (const auto& [n, p] : (*ma)->namedParameters())
        wa.push_back(p.detach().clone());
    for (const auto& [n, p] : (*mb)->namedParameters())
        wb.push_back(p.detach().clone());
    std::vector<double> xs, losses;
    for (int k = 0; k <= 10; ++k) {
        const double t = k / 10.0;
        auto params = (*ma)->namedParameters();
        for (size_t i = 0; i < params.size(); ++i)
            params[i].second.copy_(wa[i] + t * (wb[i] - wa[i]));
        const auto logits = (*ma)->forward(split->train.inputs).to(torch::kFloat64);
        xs.push_back(t);
        losses.push_back(torch::nn::functional::cross_entropy(logits, split->train.labels).item<double>());
    }
    double height = 0, at = 0;
    for (size_t k = 0; k < xs.size(); ++k) {
        const double excess = losses[k] - ((1 - xs[k]) * losses.front() + xs[k] * losses.back());
        if (excess > height) height = excess, at = xs[k];
    }
    EXPECT_NEAR(got->start, losses.front(), 1e-5 * losses.front());
    EXPECT_NEAR(got->end, losses.back(), 1e-5 * losses.back());
    EXPECT_NEAR(got->height, height, 1e-5 * losses.front());
    EXPECT_NEAR(got->at, at, 1e-9);
    EXPECT_NEAR(losses.front(), losses.back(), 1e-6); // the same function at both ends
    EXPECT_GT(height, 0.01);                          // and a real barrier between them

    // Without both ends on the grid there is no barrier.
    Surface partial = *s;
    partial.computed[2] = 0; // x = 0
    EXPECT_FALSE(linearBarrier(partial));

    // --curve bezier: the trained curve between the same two models goes around the barrier (Garipov et al.).
    // Its loss at t, read from <out>.curve.h5, equals a forward pass of the weights theta(t) built here from
    // the stored bend; its straight-line profile equals the direct evaluation above.
    const auto curveOut = dir + "/curve.h5";
    ASSERT_EQ(run({"--model", a, "--model2", b, "--x", "0:1:5", "--data", "xor", "--limit", "300", "--out", curveOut,
                   "--curve", "bezier", "--quiet"}),
              0);
    const auto curveFile = dir + "/curve.curve.h5";
    auto t = readArray(curveFile, "t"), curveLoss = readArray(curveFile, "curve_loss"),
         lineLoss = readArray(curveFile, "line_loss");
    ASSERT_TRUE(t && curveLoss && lineLoss);
    ASSERT_EQ(t->data.size(), 21u);
    for (size_t k = 0; k < t->data.size(); k += 2) { // t = 0, 0.1, ...: the points evaluated above
        EXPECT_NEAR(lineLoss->data[k], losses[k / 2], 1e-5 * losses[k / 2] + 1e-7) << "t = " << t->data[k];
    }
    std::vector<torch::Tensor> bend;
    for (size_t i = 0; i < wa.size(); ++i) {
        auto arr = readArray(curveFile, "bend_" + std::to_string(i));
        ASSERT_TRUE(arr) << i;
        bend.push_back(torch::tensor(arr->data, torch::kFloat64).view(wa[i].sizes()).to(torch::kFloat32));
    }
    for (size_t k : {size_t(5), size_t(10), size_t(15)}) {
        const double tk = t->data[k];
        auto params = (*ma)->namedParameters();
        for (size_t i = 0; i < params.size(); ++i)
            params[i].second.copy_(wa[i] * (1 - tk) * (1 - tk) + bend[i] * (2 * tk * (1 - tk)) + wb[i] * (tk * tk));
        const auto logits = (*ma)->forward(split->train.inputs).to(torch::kFloat64);
        const double want = torch::nn::functional::cross_entropy(logits, split->train.labels).item<double>();
        EXPECT_NEAR(curveLoss->data[k], want, 1e-5 * want + 1e-6) << "t = " << tk;
    }
    double curveBarrier = 0;
    for (size_t k = 0; k < t->data.size(); ++k)
        curveBarrier = std::max(curveBarrier, curveLoss->data[k] - ((1 - t->data[k]) * curveLoss->data.front() +
                                                                    t->data[k] * curveLoss->data.back()));
    EXPECT_LT(curveBarrier, 0.2 * height) << "the trained curve avoids most of the straight line's barrier";
    EXPECT_EQ(run({"--model", a, "--x", "0:1:5", "--data", "xor", "--curve", "bezier", "--out", curveOut}), 2);
    EXPECT_EQ(run({"--model", a, "--model2", b, "--grid", "5", "--data", "xor", "--curve", "bezier", "--out", curveOut}), 2);
    EXPECT_EQ(run({"--model", a, "--model2", b, "--x", "0:1:5", "--data", "xor", "--curve-steps", "5", "--out", curveOut}), 2);
    EXPECT_EQ(run({"--model", a, "--model2", b, "--x", "0:1:5", "--data", "xor", "--curve", "spline", "--out", curveOut}), 2);
}

namespace {

// CNNs written by make_cnn_models.py, once per process (ctest runs each test as its own process, two at a
// time: each gets its own folder, removed when the process ends).
std::string cnnModels() {
    struct Folder {
        std::string path;
        ~Folder() {
            std::error_code ec;
            if (!path.empty()) std::filesystem::remove_all(path, ec);
        }
    };
    static const Folder folder = [] {
        const auto d = (tempDir() / ("cnn_models_" + std::to_string(::getpid()))).string();
        const std::string cmd = "/usr/bin/python3 " + std::string(TS_SOURCE_DIR) +
                                "/tests/landscape/make_cnn_models.py '" + d + "'";
        if (std::system(cmd.c_str()) != 0) {
            ADD_FAILURE() << cmd << " failed";
            return Folder{};
        }
        return Folder{d};
    }();
    return folder.path;
}

// Batched (the layer program) against per point (the model's own forward with the weights written into it)
// at a few points of the plane, on the same samples.
void expectProgramMatchesPerPoint(ts::capture::Model& model, const EvalSet& data, DirType type) {
    auto space = parameterSpace(model, type);
    auto dirs = randomDirections(space.snapshot(), {}, 5, true);
    auto ev = SurfaceEvaluator::create(model, space, dirs, data);
    ASSERT_TRUE(ev) << ev.error().message;
    ASSERT_TRUE((*ev)->batched()) << model.name() << ": " << (*ev)->fallbackReason();
    const std::vector<std::array<double, 2>> points = {{0, 0}, {0.5, -0.25}, {-1, 1}, {0.9, 0.8}};
    auto fast = (*ev)->evaluate(points);
    auto slow = (*ev)->evaluateUnbatched(points);
    ASSERT_TRUE(fast && slow);
    for (size_t i = 0; i < points.size(); ++i) {
        EXPECT_NEAR((*fast)[i].loss, (*slow)[i].loss, 1e-5 * (1 + std::abs((*slow)[i].loss))) << model.name() << " " << i;
        EXPECT_DOUBLE_EQ((*fast)[i].acc, (*slow)[i].acc) << model.name() << " " << i;
    }
    // The points differ from each other (the weights really moved), and the model is back at its weights.
    EXPECT_NE((*slow)[0].loss, (*slow)[2].loss);
}

} // namespace

TEST(LandscapeProgram, ConvolutionalNetworksAreBatchedAndEqualPerPoint) {
    const std::string dir = cnnModels();
    ASSERT_FALSE(dir.empty()) << "make_cnn_models.py failed (scripts/setup.sh installs python3-torch, torchvision)";
    torch::manual_seed(3);
    // Residual CNN with BatchNorm, max-pool, view(x.size(0), -1) and dropout: scripted and traced.
    EvalSet gray{torch::rand({40, 1, 28, 28}), torch::randint(0, 10, {40})};
    for (const char* name : {"resnet_script.pt", "resnet_trace.pt"}) {
        auto model = ts::capture::loadModel(dir + "/" + name, {1, 28, 28}, 10);
        ASSERT_TRUE(model) << model.error().message;
        expectProgramMatchesPerPoint(**model, gray, DirType::Weights);
        // --dir-type states: the running statistics move with the weights, in both paths.
        expectProgramMatchesPerPoint(**model, gray, DirType::States);
    }
    // torchvision's architectures as users bring them (random weights): ResNet-18 (projection shortcuts,
    // max-pool, adaptive average pool, flatten), MobileNetV2 (depthwise convolutions, ReLU6, dropout),
    // SqueezeNet (max-pool stride decided by a branch in F.max_pool2d, cat of the Fire modules' branches) and
    // MobileNetV3 (hardswish, squeeze-and-excitation gates: a product of two activations), ConvNeXt
    // (permute, LayerNorm over channels, GELU, a learned layer scale, stochastic depth), DenseNet (one list
    // of features per block, grown by append and concatenated by every layer as it is then) and ShuffleNetV2
    // (chunk into halves, a channel shuffle that reshapes by sizes read from the tensor: x.view(n, g, c // g, h,
    // w), transpose).
    EvalSet rgb{torch::rand({6, 3, 32, 32}), torch::randint(0, 10, {6})};
    for (const char* name : {"tv_resnet18.pt", "tv_mobilenet_v2.pt", "tv_squeezenet1_0.pt", "tv_mobilenet_v3_small.pt",
                             "tv_convnext_mini.pt", "tv_densenet_mini.pt", "tv_shufflenet_v2_x0_5.pt"}) {
        auto model = ts::capture::loadModel(dir + "/" + name, {3, 32, 32}, 10);
        ASSERT_TRUE(model) << model.error().message;
        expectProgramMatchesPerPoint(**model, rgb, DirType::Weights);
    }
    // The built-in CNN (its program comes from its layer list, not a graph).
    auto builtin = ts::capture::loadModel("builtin:cnn", {1, 28, 28}, 10);
    ASSERT_TRUE(builtin) << builtin.error().message;
    expectProgramMatchesPerPoint(**builtin, gray, DirType::Weights);
}

TEST(LandscapeProgram, AnOpOutsideTheProgramFallsBackPerPointAndSaysWhich) {
    const std::string dir = cnnModels();
    ASSERT_FALSE(dir.empty()) << "make_cnn_models.py failed";
    auto model = ts::capture::loadModel(dir + "/unsupported.pt", {1, 28, 28}, 10);
    ASSERT_TRUE(model) << model.error().message;
    auto program = (*model)->inferenceProgram();
    ASSERT_FALSE(program);
    EXPECT_NE(program.error().message.find("aten::abs"), std::string::npos) << program.error().message;
    EvalSet data{torch::rand({8, 1, 28, 28}), torch::randint(0, 10, {8})};
    auto space = parameterSpace(**model, DirType::Weights);
    auto dirs = randomDirections(space.snapshot(), {}, 5, true);
    auto ev = SurfaceEvaluator::create(**model, space, dirs, data);
    ASSERT_TRUE(ev) << ev.error().message;
    EXPECT_FALSE((*ev)->batched());
    EXPECT_NE((*ev)->fallbackReason().find("aten::abs"), std::string::npos) << (*ev)->fallbackReason();
    // Asked for explicitly, the batched mode is one clear error.
    auto forced = SurfaceEvaluator::create(**model, space, dirs, data, {EvalMode::Batched});
    ASSERT_FALSE(forced);
    EXPECT_NE(forced.error().message.find("batched evaluation is not available"), std::string::npos);
}

TEST(LandscapeProgram, CommandOnAResidualCnnWritesTheSameSurfaceEitherWay) {
    const std::string dir = cnnModels();
    ASSERT_FALSE(dir.empty()) << "make_cnn_models.py failed";
    const std::string model = dir + "/resnet_script.pt";
    std::filesystem::remove(path("resnet_dirs.h5"));
    for (const char* mode : {"auto", "unbatched"}) {
        const std::string out = path((std::string("resnet_") + mode + ".h5").c_str());
        ASSERT_EQ(run({"--model", model, "--data", "fashion-mnist", "--limit", "64", "--grid", "5",
                       "--mode", mode, "--directions", path("resnet_dirs.h5"), "--out", out, "--quiet"}),
                  0);
    }
    auto a = readSurfaceFile(path("resnet_auto.h5"));
    auto b = readSurfaceFile(path("resnet_unbatched.h5"));
    ASSERT_TRUE(a && b);
    ASSERT_EQ(a->loss.size(), 25u);
    for (size_t k = 0; k < a->loss.size(); ++k) {
        EXPECT_NEAR(a->loss[k], b->loss[k], 1e-5 * (1 + b->loss[k])) << k;
        EXPECT_DOUBLE_EQ(a->acc[k], b->acc[k]) << k;
    }
}
